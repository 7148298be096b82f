"""Pretraining throughput of each ladder rung, measured as the benchmark measures training (bench.py).

    python -m weak_to_strong.testbed throughput [--steps=60] [--out=bench/testbed-pretraining.json] [--compile=True]
    python -m weak_to_strong.testbed throughput --rungs=tb-xl --activation=gelu_new,gelu --rounds=5   # A/B, interleaved

MFU = 6 x non-embedding parameters x real (non-padding) tokens per second,
over the higher of the fp32 matmul peaks measured just before and just after
the timed steps, in the same process. The share of a step spent drawing and
packing documents (Python) is reported beside it. `compile` times the step through
`torch.compile` (its compilation falls in the untimed warm-up); the ladder's builds stay eager, so
their weights match the shipped ones bit for bit. `activation` times the step with another MLP activation
than the recipe's; with several activations and `rounds`, the rows alternate in one process, because this
machine's speed drifts between runs and only a ratio measured side by side means anything.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from weak_to_strong.bench import measure_matmul_peak, model_flops
from weak_to_strong.testbed.ladder import LADDER, init_model, make_doc_source, make_tokenizer, rung
from weak_to_strong.testbed.pretrain import corpus_batches, make_optimizer, train_step
from weak_to_strong.planner import non_embedding_params


def check_activation(name: str | None) -> None:
    from transformers.activations import ACT2FN

    if name is not None and name not in ACT2FN:
        raise ValueError(f"unknown activation {name!r}; transformers knows: {', '.join(sorted(ACT2FN))}")


def measure_rung(name: str, steps: int, warmup: int = 10, compile: bool = False,
                 activation: str | None = None) -> dict:
    spec, tokenizer = rung(name), make_tokenizer()
    activation = activation or spec.activation
    vocab = tokenizer.get_vocab()
    eos = vocab[tokenizer.eos_token]
    model = init_model(name, len(vocab), eos, activation=activation).train()
    opt = make_optimizer(model, spec.lr)
    step_model = torch.compile(model) if compile else model
    batches = corpus_batches(make_doc_source(vocab), replace(spec.settings(), steps=steps + warmup), pad_id=eos)
    for _ in range(warmup):
        train_step(step_model, opt, next(batches))
    peak_before = measure_matmul_peak(torch.device("cpu"), torch.float32)
    data_seconds, step_seconds, tokens = 0.0, 0.0, 0
    for _ in range(steps):
        start = time.perf_counter()
        batch = next(batches)
        drawn = time.perf_counter()
        train_step(step_model, opt, batch)
        data_seconds += drawn - start
        step_seconds += time.perf_counter() - drawn
        tokens += batch.real_tokens
    peak = max(peak_before, measure_matmul_peak(torch.device("cpu"), torch.float32))
    n_params = non_embedding_params(model)
    wall = data_seconds + step_seconds
    flops = model_flops(n_params, tokens, "train")
    return {"rung": name, "n_layer": spec.n_layer, "n_embd": spec.n_embd, "non_embedding_params": n_params,
            "steps": steps, "real_tokens_per_s": tokens / wall, "matmul_peak_flops": peak,
            "mfu": flops / wall / peak, "mfu_model_steps_only": flops / step_seconds / peak,
            "data_share": data_seconds / wall, "threads": torch.get_num_threads(), "compile": compile,
            "activation": activation}


def measure_ladder(steps: int = 60, out: str | None = None, compile: bool = False, rungs: list[str] | None = None,
                   activations: list[str | None] | None = None, rounds: int = 1) -> list[dict]:
    """Rows for each round, rung and activation (None: the recipe's); odd rounds take the activations in
    reverse order, so neither always runs first."""
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    activations = activations or [None]
    for act in activations:
        check_activation(act)
    rows = [dict(measure_rung(name, steps, compile=compile, activation=act), round=r)
            for r in range(rounds) for name in rungs or LADDER
            for act in (activations if r % 2 == 0 else activations[::-1])]
    if out:
        Path(out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2))
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = ["rung    activation         compiled  params   tokens/s   MFU    MFU (steps only)   data share"]
    for r in rows:
        lines.append(f"{r['rung']:<7} {r['activation']:<18} {'yes' if r.get('compile') else 'no':<9} "
                     f"{r['non_embedding_params']:>7,} "
                     f"{r['real_tokens_per_s']:>9,.0f}  "
                     f"{100 * r['mfu']:5.1f}%  {100 * r['mfu_model_steps_only']:5.1f}%  "
                     f"{100 * r['data_share']:9.1f}%")
    return "\n".join(lines)
