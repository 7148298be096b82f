"""The run config: its fields, which of them affect results, validation, defaults and resolution.

Fields with a `short` key affect results: they go into config.json and the run
folder's name, as `resolve_run` resolves them for the device the run runs on
(defaults filled in, a concrete precision, the max_ctx the model allows). The others (where results go, how work is chunked, whether to
retrain) cannot change a run's results and are left out of both. A result field
added after run folders were first named (`omit_if`) is left out of both while it
holds the value every earlier run had, so earlier runs keep their folders.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

from weak_to_strong.datasets import get_dataset_spec
from weak_to_strong.loss import LOSSES
from weak_to_strong.models import OPTIMIZERS, get_model_spec
from weak_to_strong.precision import DeviceKind, check_precision, device_kind, resolve_precision
from weak_to_strong.train import LR_SCHEDULES


NOT_OMITTED = object()


def result_field(default, short: str, omit_if=NOT_OMITTED):
    """A field that affects results; `short` names it in run folder names. `omit_if`: the value every run had
    before the field existed; config.json and the folder name leave the field out while it holds it."""
    metadata = {"short": short} if omit_if is NOT_OMITTED else {"short": short, "omit_if": omit_if}
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """One train_simple.py run. Names and defaults follow the reference implementation."""

    batch_size: int = result_field(32, "bs")
    """Examples per optimizer step (the learning rates were tuned for 32)."""
    max_ctx: int = result_field(1024, "ctx")
    """Only documents shorter than this many tokens are kept (as the reference: one of exactly max_ctx is dropped).
    Lowered to the model's context length where that is shorter, and named and recorded as lowered."""
    ds_name: str = result_field("sciq", "ds")
    loss: str = result_field("xent", "loss")
    n_docs: int = result_field(20000, "nd")
    """Training documents; a ground-truth run trains on the first half and labels the second. Where the dataset
    gives fewer, the run uses all it gives, says so, and is named after that count (`with_doc_counts`)."""
    n_test_docs: int = result_field(10000, "ntd")
    """Test documents; as n_docs, lowered to what the dataset gives."""
    model_size: str = result_field("gpt2", "model")
    lr: float | None = result_field(None, "lr")
    """None: the model's default learning rate. Adam only: Adafactor ignores it (as in the reference), though it
    still names the run."""
    optim: str | None = result_field(None, "opt")
    """adam or adafactor, in any case; None: the model's default. Adafactor runs in the reference's mode: relative step
    size min(1e-2, 1/sqrt(step)) scaled by each parameter's RMS, no lr, no schedule."""
    epochs: int = result_field(2, "ep")
    seed: int = result_field(0, "seed")
    train_with_dropout: bool = result_field(False, "drop")
    linear_probe: bool = result_field(False, "lp")
    """Train only the head; the backbone stays frozen."""
    lr_schedule: str = result_field("cosine_anneal", "sched")
    lora_rank: int | None = result_field(None, "lora")
    """Train rank-r LoRA adapters (peft) and the head instead of every weight; 0: full fine-tuning.
    None: the model's default (full fine-tuning unless the registry says otherwise)."""
    precision: str = result_field("auto", "prec")
    """Autocast dtype of the forward pass: fp32, bf16, fp16, or auto (bf16 on a CUDA GPU that supports it, else fp32).
    Named and recorded as resolved: an auto run on CPU is prec=fp32."""
    balance: bool | None = result_field(None, "bal", omit_if=False)
    """Undersample the majority class of the train and test documents to 50/50. None: the dataset's default
    (on for the tasks added beyond the reference's; off for its 5 datasets and the built-in ones, so their
    results stay comparable). Named in the folder (bal=1) only when on."""
    weak_model_size: str | None = None
    """Train on the weak labels of this model's ground-truth run (same flags otherwise)."""
    weak_labels_path: str | None = None
    """Train on the weak labels saved in this folder instead."""
    force_retrain: bool = False
    minibatch_size_per_device: int | None = None
    """None: automatic, length-grouped minibatches within the model's memory budget (only memory and speed
    depend on it)."""
    pack: bool | None = None
    """Automatic minibatches: several documents per row where the backbone supports it (see README,
    Performance). None: on CPU only. Only speed depends on it."""
    compile: bool = False
    """torch.compile the backbone (faster steps after a compile of tens of seconds)."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in the backward pass to save memory; None: the model registry's setting."""
    results_folder: str = "results"
    sweep_subfolder: str = "default"
    eval_every: int | None = None
    """Evaluate on the test set every this many steps (logged); None: final eval only."""
    sync_command: str | None = None
    """Run as `CMD download|upload PATH RESULTS_FOLDER` to fetch weak labels / push results."""
    data_dir: str | None = None
    """Local copies of datasets (else $W2S_DATA_DIR, else the hub)."""
    save_model: bool = False
    """Also save the trained weights (model.safetensors) in the run folder."""
    log_prefix: str = ""
    """Prefix of the run's name in the logger (W&B), e.g. to tell experiments apart."""
    fsdp: bool | None = None
    """Under torchrun: shard the model over the GPUs (FSDP2) rather than replicate it (DDP).
    None: the model's default. Only memory and speed depend on it."""

    def __post_init__(self):
        coerce_text_flags(self)
        self.optim = canonical_optim(self.optim)
        validate_config(self)
        expand_paths(self)
        if self.weak_labels_path is not None:
            self.weak_labels_path = locate_weak_labels(self.weak_labels_path)


TEXT_FIELDS = ("ds_name", "loss", "model_size", "optim", "lr_schedule", "precision", "weak_model_size",
               "weak_labels_path", "results_folder", "sweep_subfolder", "sync_command", "data_dir", "log_prefix")
"""Fields that hold text: fire reads `--sweep_subfolder=20240101` or `--model_size=123` as numbers."""
PATH_FIELDS = ("results_folder", "weak_labels_path", "data_dir")


def coerce_text_flags(cfg: "RunConfig") -> None:
    for name in TEXT_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(cfg, name, str(value))


def canonical_optim(name):
    """An optimizer name in any case, lowercased (the reference lowercased it too): `Adam` runs, and names
    its run folder, as `adam`."""
    return name.lower() if isinstance(name, str) else name


def expand_paths(cfg: "RunConfig") -> None:
    """`~` expanded and made absolute once, up front, so every file of a run goes where its folder is
    (a `~` the shell left alone would otherwise make a literal `./~` folder for some files and not others)."""
    for name in PATH_FIELDS:
        value = getattr(cfg, name)
        if value is not None:
            setattr(cfg, name, os.path.abspath(os.path.expanduser(value)))


def check_positive_int(cfg: RunConfig, name: str, allow_none: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{name} must be a positive integer, got {value!r}")


def check_seed(seed, flag: str) -> None:
    """A seed numpy and torch both take: an integer in [0, 2**32)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"--{flag} must be an integer from 0 to 2**32 - 1, got {seed!r}")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def check_lora_rank(cfg: RunConfig) -> None:
    rank = cfg.lora_rank
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 0):
        raise ValueError(f"--lora_rank must be a non-negative integer (0: full fine-tuning), got {rank!r}")
    if rank and cfg.linear_probe:
        raise ValueError("give either --lora_rank or --linear_probe, not both (a linear probe trains only the head)")


def validate_config(cfg: RunConfig) -> None:
    """Every user error we can see before loading anything, as a ValueError naming the flag."""
    for name in ("batch_size", "max_ctx", "n_docs", "n_test_docs", "epochs"):
        check_positive_int(cfg, name)
    check_seed(cfg.seed, "seed")
    for name in ("minibatch_size_per_device", "eval_every"):
        check_positive_int(cfg, name, allow_none=True)
    check_lora_rank(cfg)
    get_dataset_spec(cfg.ds_name)
    check_choice("loss", cfg.loss, LOSSES)
    check_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    check_precision(cfg.precision)
    if cfg.optim is not None:
        check_choice("optim", cfg.optim, OPTIMIZERS)
    get_model_spec(cfg.model_size)
    if cfg.weak_model_size is not None:
        get_model_spec(cfg.weak_model_size)
    if cfg.lr is not None and (isinstance(cfg.lr, bool) or not isinstance(cfg.lr, (int, float)) or cfg.lr <= 0
                               or not math.isfinite(cfg.lr)):
        raise ValueError(f"--lr must be a positive finite number, got {cfg.lr!r}")
    if cfg.weak_model_size is not None and cfg.weak_labels_path is not None:
        raise ValueError("give either --weak_model_size or --weak_labels_path, not both")
    if cfg.minibatch_size_per_device is not None and cfg.batch_size % cfg.minibatch_size_per_device:
        raise ValueError(
            f"--batch_size={cfg.batch_size} is not a multiple of --minibatch_size_per_device="
            f"{cfg.minibatch_size_per_device}"
        )
    for name in ("pack", "fsdp", "gradient_checkpointing", "balance"):
        if getattr(cfg, name) not in (None, True, False):
            raise ValueError(f"--{name} must be True or False, got {getattr(cfg, name)!r}")
    if cfg.n_docs < 2:
        raise ValueError(f"--n_docs={cfg.n_docs} is too small to split into two halves (need at least 2)")


def is_transfer(cfg: RunConfig) -> bool:
    return cfg.weak_model_size is not None or cfg.weak_labels_path is not None


def with_defaults(cfg: RunConfig) -> RunConfig:
    """lr, optim and lora_rank filled in from the model registry, balance from the dataset's, where not given."""
    spec = get_model_spec(cfg.model_size)
    return replace(cfg, lr=spec.default_lr if cfg.lr is None else float(cfg.lr),
                   optim=spec.default_optimizer if cfg.optim is None else cfg.optim,
                   lora_rank=lora_rank(cfg), balance=balance(cfg))


def balance(cfg: RunConfig) -> bool:
    return get_dataset_spec(cfg.ds_name).balance if cfg.balance is None else bool(cfg.balance)


def with_doc_counts(cfg: RunConfig, n_train: int, n_test: int) -> RunConfig:
    """The config named after the documents a run uses: n_docs and n_test_docs lowered to the counts the
    dataset gave (after balancing), so a run folder never claims more documents than the run had.

    Loading the same dataset with the lowered counts gives the same documents, so this is resolved the
    same way wherever a run's name is needed (the run itself, a sweep's plan, train_weak_to_strong)."""
    if n_train < 2:
        raise ValueError(f"dataset {cfg.ds_name!r} gives {n_train} training document(s): too few to split into "
                         "the halves a ground-truth run trains on and labels")
    if n_test < 1:
        raise ValueError(f"dataset {cfg.ds_name!r} gives no test documents")
    return replace(cfg, n_docs=min(cfg.n_docs, n_train), n_test_docs=min(cfg.n_test_docs, n_test))


def lora_rank(cfg: RunConfig) -> int:
    """The given rank; else the registry's, except under --linear_probe, which trains only the head."""
    if cfg.lora_rank is not None:
        return cfg.lora_rank
    return 0 if cfg.linear_probe else get_model_spec(cfg.model_size).lora_rank


def use_fsdp(cfg: RunConfig) -> bool:
    return get_model_spec(cfg.model_size).fsdp if cfg.fsdp is None else bool(cfg.fsdp)


def token_budgets(cfg: RunConfig) -> tuple[int, int]:
    """Padded tokens per automatic training minibatch and per eval batch.

    What the registry's minibatch and eval batch sizes hold at the longest
    allowed document (`cfg.max_ctx`, as resolved for the model): the same memory,
    spent on more documents when they are short.
    """
    spec = get_model_spec(cfg.model_size)
    return spec.minibatch_size * cfg.max_ctx, spec.eval_batch_size * cfg.max_ctx


GROUND_TRUTH_LOSS = "xent"
"""The loss of the ground-truth runs that weak labels come from (and of a sweep's ceilings): the paper's.
Only `ground_truth` uses it."""


def ground_truth(base: RunConfig, model: str) -> RunConfig:
    """A ground-truth run of `model`: trained with GROUND_TRUTH_LOSS on the first half of the training
    documents, labelling the second. Every other flag is `base`'s (a `--loss` in it is a transfer run's).

    The one place that knows what a ground-truth run is: train_simple, sweeps and train_weak_to_strong
    build their weak floors, ceilings and the runs that transfer runs take labels from with it, so they
    all name (and share) the same folders."""
    return replace(base, model_size=model, loss=GROUND_TRUTH_LOSS, weak_model_size=None, weak_labels_path=None)


def transfer(base: RunConfig, strong: str, weak: str) -> RunConfig:
    """`strong` trained, with `base`'s loss, on the weak labels of `ground_truth(base, weak)`."""
    return replace(base, model_size=strong, weak_model_size=weak, weak_labels_path=None)


def weak_run_config(cfg: RunConfig) -> RunConfig:
    """The ground-truth run whose labels a transfer run trains on.

    Same flags, with the weak model, xent, and the weak model's own default lr
    and optimizer where the user gave none (so give it the unresolved config).
    """
    assert cfg.weak_model_size is not None
    return ground_truth(cfg, cfg.weak_model_size)


# ---------------------------------------------------------------- resolution: a run's identity

def result_fields() -> list:
    """RunConfig's result-affecting fields (those with a short name), in folder-name order."""
    return [f for f in fields(RunConfig) if "short" in f.metadata]


def result_field_names() -> tuple[str, ...]:
    return tuple(f.name for f in result_fields())


@dataclass(frozen=True)
class ResolvedRun:
    """A run resolved once, for the device it runs on: `config` has every default filled in (lr, optim,
    lora_rank, balance), a concrete precision and the max_ctx the model allows. What it uses is what
    `identity` says, and that names its folder and is its config.json."""

    config: RunConfig
    weak: ResolvedRun | None = None
    """A --weak_model_size run's ground-truth run, resolved in its own right (its model's defaults and context)."""

    def identity(self) -> dict:
        """The result fields (see `omit_if`), and what the weak labels are: the weak run's identity, or the
        labels' path. Never read from disk, so a name cannot depend on what happens to lie beside the labels."""
        cfg = self.config
        out = {f.name: getattr(cfg, f.name) for f in result_fields()
               if getattr(cfg, f.name) != f.metadata.get("omit_if", NOT_OMITTED)}
        if self.weak is not None:
            out["weak_model_size"] = cfg.weak_model_size
            out["weak_model"] = self.weak.identity()
        elif cfg.weak_labels_path is not None:
            out["weak_labels_path"] = cfg.weak_labels_path
        return out


ModelContext = Callable[[str], "int | None"]
"""A model name -> its context length in tokens (None: unlimited); `model.model_context` reads it."""


def resolve_run(cfg: RunConfig, device: DeviceKind, context: ModelContext) -> ResolvedRun:
    """The one resolution of a run: defaults (`with_defaults`), precision for `device` ("auto": bf16 on a CUDA
    GPU with bf16, else fp32) and max_ctx clipped to the model's context. The device need not be here: a sweep
    resolves its runs for the device its executor runs them on (`sweep.planning_device`).

    Document counts are not resolved here: they need the dataset (`with_doc_counts`, before this)."""
    if isinstance(cfg, ResolvedRun):
        return cfg
    model_ctx = context(cfg.model_size)
    resolved = replace(with_defaults(cfg), precision=resolve_precision(cfg.precision, device),
                       max_ctx=min(cfg.max_ctx, model_ctx or cfg.max_ctx))
    weak = resolve_run(weak_run_config(cfg), device, context) if cfg.weak_model_size is not None else None
    return ResolvedRun(resolved, weak)


def resolve_here(cfg: RunConfig | ResolvedRun) -> ResolvedRun:
    """Resolved as a run started in this process would resolve it: this machine's device (as `pick_device`
    picks it) and the model's context from its registry entry or config (a small file; toy models are built)."""
    if isinstance(cfg, ResolvedRun):
        return cfg
    from weak_to_strong.model import model_context
    from weak_to_strong.models import pick_device

    return resolve_run(cfg, device_kind(pick_device()), model_context)


WEAK_LABELS_DIR = "weak_labels"
"""A ground-truth run's weak labels: this folder in its run folder, beside its config.json."""


def locate_weak_labels(path: str) -> str:
    """The weak labels a --weak_labels_path names: a run folder stands for its `weak_labels/`.

    The reference appended `/weak_labels` to any path not ending in it; here only to a folder that
    holds one, so labels saved in a folder of another name still load.
    """
    if Path(path).name != WEAK_LABELS_DIR and (Path(path) / WEAK_LABELS_DIR).is_dir():
        return str(Path(path) / WEAK_LABELS_DIR)
    return path


def read_weak_labels_config(weak_labels_path: str) -> dict:
    """The config of the run that wrote these labels (config.json beside them), else their path."""
    config_file = Path(weak_labels_path).parent / "config.json"
    if config_file.exists():
        return json.loads(config_file.read_text())
    return {"weak_labels_path": os.path.abspath(weak_labels_path)}


def result_dict(run: RunConfig | ResolvedRun) -> dict:
    """config.json's content: the run's identity (a RunConfig is resolved for this machine, `resolve_here`).
    A --weak_labels_path run adds, as provenance, the config of the run that wrote the labels (read beside
    them, where there is one) and its model as weak_model_size."""
    run = resolve_here(run)
    out = run.identity()
    if run.config.weak_labels_path is not None:
        out["weak_model"] = read_weak_labels_config(run.config.weak_labels_path)
        out["weak_model_size"] = out["weak_model"].get("model_size")
    return out


def short_keys() -> dict[str, str]:
    return {f.name: f.metadata["short"] for f in result_fields()}
