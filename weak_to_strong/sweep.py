"""Sweep planning and the serial subprocess runner behind sweep.py."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass, fields, replace

from weak_to_strong import results
from weak_to_strong.config import RunConfig
from weak_to_strong.eval import pgr

SWEEP_OWNED_FLAGS = ("model_size", "weak_model_size", "weak_labels_path")


@dataclass(frozen=True)
class PlannedRun:
    model_size: str
    weak_model_size: str | None = None

    @property
    def label(self) -> str:
        return self.model_size if self.weak_model_size is None else f"{self.weak_model_size}->{self.model_size}"


def parse_model_sizes(model_sizes) -> list[str]:
    """fire hands "a,b" over as a tuple; a plain string may also come with commas."""
    sizes = [s.strip() for s in model_sizes.split(",")] if isinstance(model_sizes, str) else [str(s) for s in model_sizes]
    sizes = [s for s in sizes if s]
    if not sizes:
        raise ValueError("--model_sizes is empty; give a comma-separated list, e.g. --model_sizes=gpt2,gpt2-medium")
    return sizes


def plan_sweep(model_sizes: list[str]) -> list[PlannedRun]:
    """Ground-truth runs for each size, then every pair whose strong model is at or after the weak one."""
    gt = [PlannedRun(size) for size in model_sizes]
    pairs = [PlannedRun(strong, weak) for i, weak in enumerate(model_sizes) for strong in model_sizes[i:]]
    return gt + pairs


def run_config(base: RunConfig, run: PlannedRun) -> RunConfig:
    return replace(base, model_size=run.model_size, weak_model_size=run.weak_model_size)


def explicit_flags(flags: dict) -> dict:
    """The flags that differ from RunConfig's defaults: the ones worth forwarding."""
    defaults = {f.name: f.default for f in fields(RunConfig)}
    return {k: v for k, v in flags.items() if k not in defaults or v != defaults[k]}


def check_forwarded_flags(flags: dict) -> None:
    owned = [f for f in SWEEP_OWNED_FLAGS if flags.get(f) is not None]
    if owned:
        raise ValueError(f"sweep.py sets {', '.join('--' + f for f in owned)} itself; use --model_sizes instead")


def format_flag(name: str, value) -> str:
    return f"--{name}={value}"


def train_simple_command(flags: dict, run: PlannedRun) -> list[str]:
    args = {**flags, "model_size": run.model_size}
    if run.weak_model_size is not None:
        args["weak_model_size"] = run.weak_model_size
    return [sys.executable, "-m", "weak_to_strong.cli", "train_simple"] + [
        format_flag(k, v) for k, v in args.items()
    ]


def run_sweep(model_sizes, **flags) -> list[dict]:
    """Run the planned runs one after another as train_simple subprocesses; print accuracies and PGR."""
    if model_sizes is None:
        raise ValueError("--model_sizes is required, e.g. --model_sizes=gpt2,gpt2-medium")
    sizes = parse_model_sizes(model_sizes)
    check_forwarded_flags(flags)
    flags = explicit_flags(flags)
    base = RunConfig(**flags)  # validates every forwarded flag before any run starts
    plan = plan_sweep(sizes)
    for i, run in enumerate(plan, 1):
        print(f"[sweep {i}/{len(plan)}] {run.label}", flush=True)
        subprocess.run(train_simple_command(flags, run), check=True)
    rows = summarize_sweep(base, plan)
    print_summary(rows)
    return rows


def summarize_sweep(base: RunConfig, plan: list[PlannedRun]) -> list[dict]:
    """Accuracy of every run, and the PGR of each transfer run against its weak floor and strong ceiling."""
    acc = {run: results.read_summary(results.run_dir(run_config(base, run)))["accuracy"] for run in plan}
    rows = []
    for run in plan:
        row = {"run": run.label, "accuracy": acc[run], "pgr": None}
        if run.weak_model_size is not None:
            weak, ceiling = acc[PlannedRun(run.weak_model_size)], acc[PlannedRun(run.model_size)]
            row["pgr"] = pgr(weak, acc[run], ceiling)
        rows.append(row)
    return rows


def print_summary(rows: list[dict]) -> None:
    print(f"\n{'run':<40} {'accuracy':>9} {'PGR':>8}")
    for row in rows:
        if row["pgr"] is None:
            shown = ""
        elif math.isnan(row["pgr"]):
            shown = "n/a"  # ceiling not above the weak floor
        else:
            shown = f"{row['pgr']:.3f}"
        print(f"{row['run']:<40} {row['accuracy']:>9.4f} {shown:>8}")
