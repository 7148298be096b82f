"""Throughput benchmark of the project's own training and eval code paths.

    python -m weak_to_strong.bench                        # the CPU target: GPT-2 arch, 4 layers x 256, texts of 20-60 tokens
    python -m weak_to_strong.bench --batch_size=32,512 --minibatch_size=8     # peak memory at a fixed minibatch
    python -m weak_to_strong.bench --arch=gpt2-medium --min_len=256 --max_len=256 --precision=bf16
    python -m weak_to_strong.bench --model=toy-large      # a registry name or a local directory (its weights)
    python -m weak_to_strong.bench --profile              # also print where the time goes (torch.profiler)

Any setting given as a comma-separated list becomes an axis: one row per
combination, each measured in a fresh process (so peak memory is its own). A
row trains with `train.train_model` and evaluates with `eval.predict_probs` on
synthetic token sequences with lengths drawn uniformly from [min_len, max_len],
and reports examples/s, real (non-pad) tokens/s, the padded share, FLOP/s
(6 x non-embedding parameters x real tokens for training, 2 x for eval), MFU
against a matmul peak measured in the same process on the same device and
dtype just before and after each timed repeat, the CPU share the timed runs
got, and peak memory (CPU: resident set size; CUDA: max allocated). Writes JSON
(--out) and prints a table. Results and what they mean: bench/RESULTS.md.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from weak_to_strong.planner import non_embedding_params  # noqa: F401 (the FLOP count's N, re-exported)

ARCHS = {
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
}
"""GPT-2 sizes by name (n_layer, n_embd, n_head); any "LxD" (e.g. 4x256) means L layers of width D, heads of 64."""
GPT2_VOCAB_SIZE = 50257


@dataclass(frozen=True)
class BenchSettings:
    """One row of the benchmark."""

    arch: str = "4x256"
    """Random-initialised GPT-2 architecture: a name in ARCHS or "LxD"; ignored when --model is given."""
    model: str | None = None
    """A registry name or local directory, loaded with its weights through the project's load_model."""
    min_len: int = 20
    max_len: int = 60
    """Token lengths are drawn uniformly from [min_len, max_len]."""
    batch_size: int = 32
    minibatch_size: int | None = None
    """None: automatic length-grouped minibatches (as in train_simple)."""
    pack: bool | None = None
    """Several documents per row in automatic training minibatches (planner.choose_row_packing); None: the
    trainer's default (on CPU), False: right-padded rows, one document each. Eval never packs (measured: no
    gain)."""
    minibatch_tokens: int | None = None
    """Token budget of automatic minibatches; None: the trainer's default."""
    eval_tokens: int | None = None
    """Padded tokens per eval batch; None: as train_simple for a registry batch of 32 at 1024 tokens."""
    precision: str = "auto"
    device: str = "auto"
    compile: bool = False
    gradient_checkpointing: bool = False
    loss: str = "xent"
    steps: int = 32
    """Optimizer steps of each timed training run (one `train_model` call, after an untimed warmup run of
    warmup_steps). A run's one-off setup (optimizer state, the embedding-gradient table) is spread over them
    as over a real run's hundreds of steps: at 4 x 256 it is ~55 ms, 3 % of an 8-step run."""
    warmup_steps: int = 2
    eval_examples: int | None = None
    """None: steps x batch_size."""
    repeats: int = 3
    threads: int | None = None
    """torch intra-op threads; None: torch's default."""
    matmul_size: int | None = None
    """Side of the square matmul that measures the peak; None: 2048 on CPU, 8192 on CUDA."""
    seed: int = 0


# ---------------------------------------------------------------- FLOPs and peak

def model_flops(non_embedding: int, real_tokens: int, kind: str) -> int:
    """6 N per real token for a training step (forward + backward), 2 N for eval (forward only)."""
    return {"train": 6, "eval": 2}[kind] * non_embedding * real_tokens


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, size: int | None = None,
                        rounds: int = 5) -> float:
    """The best FLOP/s of a square matmul (2 n^3 per product) on this device and dtype."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    reps = 20 if device.type == "cuda" else 4
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * size**3 / best


# ---------------------------------------------------------------- memory

def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory inside the block: CUDA max allocated, else resident set size sampled every 2 ms."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = current_rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, current_rss())

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, current_rss())


# ---------------------------------------------------------------- model and data

def parse_arch(arch: str) -> tuple[int, int, int]:
    if arch in ARCHS:
        return ARCHS[arch]
    layers, _, width = arch.partition("x")
    if not (layers.isdigit() and width.isdigit() and int(width) % 64 == 0):
        raise ValueError(f"unknown --arch {arch!r}: use one of {', '.join(ARCHS)} or LxD with D a multiple of 64")
    return int(layers), int(width), int(width) // 64


def build_model(settings: BenchSettings, device: torch.device):
    """(model, vocab size, pad id) through the project's own model code."""
    from weak_to_strong.model import load_model, load_tokenizer, wrap_backbone
    from weak_to_strong.models import get_model_spec

    if settings.model is not None:
        spec = get_model_spec(settings.model)
        tokenizer = load_tokenizer(spec)
        model = load_model(spec, device, gradient_checkpointing=settings.gradient_checkpointing)
        return model, len(tokenizer), tokenizer.pad_token_id
    from transformers import GPT2Config, GPT2Model

    n_layer, n_embd, n_head = parse_arch(settings.arch)
    config = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=GPT2_VOCAB_SIZE,
                        n_positions=max(1024, settings.max_len), attn_implementation="sdpa")
    torch.manual_seed(settings.seed)
    backbone = GPT2Model(config)
    return wrap_backbone(backbone, device, gradient_checkpointing=settings.gradient_checkpointing), \
        GPT2_VOCAB_SIZE, GPT2_VOCAB_SIZE - 1


def synthetic_examples(n: int, min_len: int, max_len: int, vocab_size: int, generator: torch.Generator):
    """n random token sequences with lengths uniform in [min_len, max_len], and random soft labels."""
    from weak_to_strong.batching import Examples

    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    tokens = torch.randint(0, vocab_size, (int(lengths.sum()),), generator=generator)
    p = torch.rand(n, 1, generator=generator)
    return Examples.from_flat(tokens, lengths, torch.cat([1 - p, p], dim=1))


class TokenCounter:
    """Counts the real and padded tokens the model is called with (training: grad-enabled calls only)."""

    def __init__(self, model):
        self.real = self.padded = 0
        self.handle = model.register_forward_pre_hook(self.count)

    def count(self, module, args) -> None:
        mask = args[1]
        if torch.is_grad_enabled() or torch.is_inference_mode_enabled():  # not logconf's no-grad stats pass
            self.real += mask.sum()
            self.padded += mask.numel()

    def take(self) -> tuple[int, int]:
        real, padded = int(self.real), int(self.padded)
        self.real = self.padded = 0
        return real, padded


# ---------------------------------------------------------------- one row

def resolve_device(name: str) -> torch.device:
    from weak_to_strong.models import pick_device

    return pick_device() if name == "auto" else torch.device(name)


def check_settings(settings: BenchSettings) -> None:
    from weak_to_strong.loss import LOSSES
    from weak_to_strong.precision import check_precision

    check_precision(settings.precision)
    parse_arch(settings.arch)
    if settings.loss not in LOSSES:
        raise ValueError(f"unknown loss {settings.loss!r}; choose one of: {', '.join(LOSSES)}")
    if not 1 <= settings.min_len <= settings.max_len:
        raise ValueError(f"need 1 <= --min_len <= --max_len, got {settings.min_len} and {settings.max_len}")
    for name in ("batch_size", "steps", "repeats"):
        if getattr(settings, name) < 1:
            raise ValueError(f"--{name} must be a positive integer")
    if settings.minibatch_size is not None and settings.batch_size % settings.minibatch_size:
        raise ValueError(f"--batch_size={settings.batch_size} is not a multiple of "
                         f"--minibatch_size={settings.minibatch_size}")


def train_settings(settings: BenchSettings, precision: str, epochs: int = 1):
    from weak_to_strong.train import DEFAULT_MINIBATCH_TOKENS, TrainSettings

    return TrainSettings(batch_size=settings.batch_size, minibatch_size=settings.minibatch_size, epochs=epochs,
                         lr=1e-5, precision=precision, seed=settings.seed, pack=settings.pack,
                         minibatch_token_budget=settings.minibatch_tokens or DEFAULT_MINIBATCH_TOKENS)


class Stopwatch:
    """Wall seconds of a block, and the share of this process's threads' time it got on the CPU.

    The CPU share (process CPU seconds / (wall seconds x torch threads)) below 1
    says the threads were off the CPU part of the time (other processes held the
    cores, or the code waited). Near 1 does not say the cores ran at full speed:
    other tenants of a host's shared caches and memory slow them without taking
    them (bench/RESULTS.md), which is why MFU divides by peaks measured alongside.
    """

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        synchronize(self.device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.cpu_share = self.cpu / (self.wall * torch.get_num_threads())


def time_train(model, examples, settings, train_cfg, device, pad_id) -> Stopwatch:
    from weak_to_strong.logger import NullLogger
    from weak_to_strong.loss import make_loss
    from weak_to_strong.train import train_model

    with Stopwatch(device) as watch:
        train_model(model, examples, make_loss(settings.loss), train_cfg, device, pad_id, NullLogger())
    return watch


def time_eval(model, examples, settings, precision, device, pad_id) -> Stopwatch:
    from weak_to_strong.eval import eval_token_budget, predict_probs

    budget = settings.eval_tokens or eval_token_budget(32 * 1024, model.backbone.config.hidden_size, device)
    with Stopwatch(device) as watch:
        predict_probs(model, examples, settings.batch_size, device, pad_id, precision=precision, token_budget=budget)
    return watch


def run_row(settings: BenchSettings, profile: bool = False) -> dict:
    """Measure one setting in this process and return its row."""
    from weak_to_strong.precision import compute_dtype, resolve_precision

    check_settings(settings)
    os.environ.setdefault("TQDM_DISABLE", "1")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    precision = resolve_precision(settings.precision, device)
    model, vocab_size, pad_id = build_model(settings, device)
    if settings.compile:
        model.backbone.compile(dynamic=True)
    n_params = non_embedding_params(model)
    dtype = compute_dtype(precision, next(model.backbone.parameters()).dtype)
    gen = torch.Generator().manual_seed(settings.seed)
    make = lambda n: synthetic_examples(n, settings.min_len, settings.max_len, vocab_size, gen)  # noqa: E731
    warmup = make(settings.warmup_steps * settings.batch_size)
    train_ex = make(settings.steps * settings.batch_size)
    eval_ex = make(settings.eval_examples or settings.steps * settings.batch_size)
    counter = TokenCounter(model)
    cfg = train_settings(settings, precision)

    baseline = current_rss() if device.type != "cuda" else torch.cuda.memory_allocated(device)
    time_train(model, warmup, settings, cfg, device, pad_id)  # allocations, kernels, compilation
    time_eval(model, warmup, settings, precision, device, pad_id)
    counter.take()
    peaks, train_watches, eval_watches, train_mem, eval_mem = [], [], [], 0, 0
    for _ in range(settings.repeats):
        peaks.append(measure_matmul_peak(device, dtype, settings.matmul_size))
        with PeakMemory(device) as mem:
            train_watches.append(time_train(model, train_ex, settings, cfg, device, pad_id))
        train_mem = max(train_mem, mem.peak)
        train_tokens = counter.take()
        with PeakMemory(device) as mem:
            eval_watches.append(time_eval(model, eval_ex, settings, precision, device, pad_id))
        eval_mem = max(eval_mem, mem.peak)
        eval_tokens = counter.take()
    peaks.append(measure_matmul_peak(device, dtype, settings.matmul_size))
    if profile:
        print_profile(model, train_ex, eval_ex, settings, cfg, precision, device, pad_id)
    row = summarize(settings, train_watches, eval_watches, train_tokens, eval_tokens, len(train_ex), len(eval_ex),
                    n_params, peaks)
    row.update(precision_resolved=precision, compute_dtype=str(dtype).removeprefix("torch."),
               device_name=device_name(device), memory_kind="cuda_max_allocated" if device.type == "cuda" else "rss",
               peak_memory_train_mib=train_mem / 2**20, peak_memory_eval_mib=eval_mem / 2**20,
               memory_before_mib=baseline / 2**20, matmul_peaks=peaks,
               attn_implementation=getattr(model.backbone.config, "_attn_implementation", None),
               threads=torch.get_num_threads(), load_average=os.getloadavg(), torch=torch.__version__,
               date=datetime.date.today().isoformat())
    return row


def summarize(settings, train_watches, eval_watches, train_tokens, eval_tokens, n_train, n_eval, n_params,
              peaks) -> dict:
    """Medians over repeats; every repeat's seconds, MFU and CPU share kept alongside.

    Each repeat's MFU divides by the higher of the two matmul peaks measured
    just before and just after it: these shared cores run anywhere from ~110 to
    ~190 GFLOP/s within minutes, matmuls and training alike, so a peak measured at
    another time compares different machines. `*_mfu_vs_row_peak` divides the
    median speed by the row's highest peak instead (lower, when speeds drifted).
    """
    train_s, eval_s = [w.wall for w in train_watches], [w.wall for w in eval_watches]
    t, e = statistics.median(train_s), statistics.median(eval_s)
    (train_real, train_padded), (eval_real, eval_padded) = train_tokens, eval_tokens
    train_work, eval_work = model_flops(n_params, train_real, "train"), model_flops(n_params, eval_real, "eval")
    adjacent = [max(before, after) for before, after in zip(peaks, peaks[1:])]
    train_mfus = [train_work / s / p for s, p in zip(train_s, adjacent)]
    eval_mfus = [eval_work / s / p for s, p in zip(eval_s, adjacent)]
    return dict(
        **asdict(settings), non_embedding_params=n_params, matmul_peak_flops=max(peaks),
        train_real_tokens=train_real, eval_real_tokens=eval_real,
        train_examples_per_s=n_train / t, train_tokens_per_s=train_real / t,
        train_pad_share=1 - train_real / train_padded, train_flops=train_work / t,
        train_mfu=statistics.median(train_mfus), train_mfus=train_mfus,
        train_mfu_vs_row_peak=train_work / t / max(peaks),
        eval_examples_per_s=n_eval / e, eval_tokens_per_s=eval_real / e,
        eval_pad_share=1 - eval_real / eval_padded, eval_flops=eval_work / e,
        eval_mfu=statistics.median(eval_mfus), eval_mfus=eval_mfus, eval_mfu_vs_row_peak=eval_work / e / max(peaks),
        eval_over_train=(n_eval / e) / (n_train / t), train_seconds=train_s, eval_seconds=eval_s,
        train_cpu_share=statistics.median(w.cpu_share for w in train_watches),
        train_cpu_shares=[w.cpu_share for w in train_watches], eval_cpu_shares=[w.cpu_share for w in eval_watches],
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def print_profile(model, train_ex, eval_ex, settings, cfg, precision, device, pad_id) -> None:
    from torch.profiler import profile

    for name, run in (("train", lambda: time_train(model, train_ex, settings, cfg, device, pad_id)),
                      ("eval", lambda: time_eval(model, eval_ex, settings, precision, device, pad_id))):
        with profile() as prof:
            run()
        print(f"\n== {name}: self time by op\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


# ---------------------------------------------------------------- the grid and the table

def expand_grid(**flags) -> list[BenchSettings]:
    """Every combination of the comma-separated (tuple) values, as settings."""
    names = {f.name for f in fields(BenchSettings)}
    unknown = sorted(set(flags) - names)
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join('--' + u for u in unknown)}; see --help")
    axes = {k: list(v) if isinstance(v, (tuple, list)) else [v] for k, v in flags.items()}
    return [replace(BenchSettings(), **dict(zip(axes, combo))) for combo in itertools.product(*axes.values())]


def run_isolated(settings: BenchSettings, profile: bool) -> dict:
    """One row in a fresh process: its peak memory is its own, not an earlier row's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_row, settings, profile).result()


TABLE_COLUMNS = [
    ("model", lambda r: r["model"] or r["arch"]), ("bs", "batch_size"), ("mb", lambda r: r["minibatch_size"] or "auto"),
    ("pack", lambda r: {None: "auto", True: "on", False: "off"}[r.get("pack")]),
    ("prec", "precision_resolved"), ("compile", lambda r: "on" if r["compile"] else "off"), ("train ex/s", "train_examples_per_s"), ("train tok/s", "train_tokens_per_s"),
    ("pad %", lambda r: 100 * r["train_pad_share"]), ("train GFLOP/s", lambda r: r["train_flops"] / 1e9),
    ("train MFU %", lambda r: 100 * r["train_mfu"]), ("vs row peak %", lambda r: 100 * r["train_mfu_vs_row_peak"]),
    ("eval ex/s", "eval_examples_per_s"),
    ("eval MFU %", lambda r: 100 * r["eval_mfu"]), ("eval/train", "eval_over_train"),
    ("peak GFLOP/s", lambda r: r["matmul_peak_flops"] / 1e9), ("train mem MiB", "peak_memory_train_mib"),
    ("train CPU %", lambda r: 100 * r["train_cpu_share"] if r["memory_kind"] == "rss" else "-"),
]


def format_table(rows: list[dict]) -> str:
    def cell(row, get):
        value = get(row) if callable(get) else row[get]
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    table = [[name for name, _ in TABLE_COLUMNS]] + [[cell(r, get) for _, get in TABLE_COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in table)


def run_bench(out: str = "bench_results.json", profile: bool = False, isolate: bool = True, **flags) -> list[dict]:
    """Run every row, write them as JSON to `out`, print the table."""
    grid = expand_grid(**flags)
    for settings in grid:
        check_settings(settings)  # every row's errors before any row runs
    rows = []
    for i, settings in enumerate(grid, 1):
        print(f"[bench {i}/{len(grid)}] {settings}", flush=True)
        rows.append(run_isolated(settings, profile) if isolate else run_row(settings, profile))
        Path(out).write_text(json.dumps(rows, indent=2))
    print(format_table(rows))
    return rows


def main(out: str = "bench_results.json", profile: bool = False, isolate: bool = True, **flags) -> None:
    """Time the project's training and eval loops; comma lists (--minibatch_size=4,8,None) give one row each.

    Prints a table and writes the rows as JSON to --out (see bench/RESULTS.md for measured numbers).
    """
    from weak_to_strong.cli import exit_on_user_error  # returns nothing, so fire prints nothing more

    exit_on_user_error(run_bench)(out, profile, isolate, **flags)


def expose_bench_flags() -> None:
    """main's signature lists BenchSettings' fields, so --help shows every flag with its default."""
    import inspect

    from weak_to_strong.cli import keyword_params

    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(main).parameters.values()
           if p.kind != inspect.Parameter.VAR_KEYWORD]
    flags = inspect.Parameter("flags", inspect.Parameter.VAR_KEYWORD)
    main.__signature__ = inspect.Signature(own + keyword_params(BenchSettings) + [flags])


if __name__ == "__main__":
    import fire

    from weak_to_strong.cli import route_help_to_fire

    expose_bench_flags()
    route_help_to_fire()
    fire.Fire(main)
