"""train_weak_to_strong's recipe: one weak->strong pair in one process.

Three stages, each an ordinary train_simple run (`pipeline.run_train_simple`) in
the standard results layout:
  weak      the weak model on ground truth (it also writes its weak labels)
  strong    the strong model on ground truth: the ceiling
  transfer  the strong model on the weak labels, once per transfer loss
So finished stages are reused, also across train_simple.py and sweep.py runs in
the same results folder, and the analysis reads one layout. The pair's
accuracies also go to `<weak>_<strong>.results_summary.json` in the results folder.

Unlike the reference script, the ceiling trains on the same (first) half of the
training docs as every train_simple ground-truth run, so a ceiling is one run
shared by all pairs and sweeps; the transfer runs train on the second half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from weak_to_strong import readers, results
from weak_to_strong.config import (RunConfig, canonical_optim, check_choice, ground_truth, result_dict,
                                   result_field_names, transfer, weak_run_config)
from weak_to_strong.loss import LOSSES
from weak_to_strong.metrics import pgr
from weak_to_strong.models import OPTIMIZERS, get_model_spec

STAGE_FLAGS = ("model_size", "loss", "lr", "optim", "epochs", "weak_model_size", "weak_labels_path")
"""RunConfig fields this script sets per stage; every other RunConfig flag is shared by all stages."""
SCRIPT_DEFAULTS = {"n_docs": 10000, "n_test_docs": 200}
"""The reference script's defaults where they differ from train_simple's."""
STAGE_RESULT_FIELDS = ("lr", "optim", "epochs", "lora_rank", "max_ctx")
"""Result fields a pair summary records per stage: set per stage, or resolved from each stage's model."""
SHARED_RESULT_FIELDS = tuple(name for name in result_field_names()
                             if name not in (*STAGE_FLAGS, *STAGE_RESULT_FIELDS, "ds_name", "seed"))
"""Every other result field (derived, never listed): the same in all stages, recorded once."""


@dataclass
class WeakToStrongConfig:
    """The flags of train_weak_to_strong.py that are not train_simple.py flags."""

    weak_model_size: str = "gpt2"
    strong_model_size: str = "gpt2-xl"
    transfer_loss: tuple[str, ...] | str = "xent,logconf"
    """Comma-separated losses; one transfer run each."""
    weak_lr: float | None = None
    """None: the model's default learning rate (likewise strong_lr)."""
    strong_lr: float | None = None
    transfer_lr: float | None = None
    """None: strong_lr."""
    weak_optim: str | None = None
    """None: the model's default optimizer (likewise strong_optim)."""
    strong_optim: str | None = None
    transfer_optim: str | None = None
    """None: strong_optim."""
    gt_epochs: int = 2
    """Epochs of the two ground-truth runs."""
    transfer_epochs: int | None = None
    """None: gt_epochs."""

    def __post_init__(self):
        self.transfer_loss = parse_losses(self.transfer_loss)
        for stage in ("weak", "strong", "transfer"):
            setattr(self, f"{stage}_optim", canonical_optim(getattr(self, f"{stage}_optim")))
        validate_w2s_config(self)


def parse_losses(transfer_loss) -> tuple[str, ...]:
    """fire hands "a,b" over as a tuple and "a" as a string; keep the order, drop repeats."""
    if isinstance(transfer_loss, str):
        transfer_loss = transfer_loss.split(",")
    losses = tuple(dict.fromkeys(str(loss).strip() for loss in transfer_loss if str(loss).strip()))
    if not losses:
        raise ValueError("--transfer_loss is empty; give a comma-separated list, e.g. --transfer_loss=xent,logconf")
    for loss in losses:
        check_choice("loss in --transfer_loss", loss, LOSSES)
    return losses


def check_optional_positive(name: str, value, kind: type) -> None:
    if value is None:
        return
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int) and value > 0 \
        and math.isfinite(value)
    if not ok:
        raise ValueError(f"--{name} must be a positive {'finite number' if kind is float else 'integer'}, "
                         f"got {value!r}")


def validate_w2s_config(cfg: WeakToStrongConfig) -> None:
    get_model_spec(cfg.weak_model_size)
    get_model_spec(cfg.strong_model_size)
    for stage in ("weak", "strong", "transfer"):
        check_optional_positive(f"{stage}_lr", getattr(cfg, f"{stage}_lr"), float)
        optim = getattr(cfg, f"{stage}_optim")
        if optim is not None:
            check_choice(f"--{stage}_optim", optim, OPTIMIZERS)
    if cfg.gt_epochs is None:
        raise ValueError("--gt_epochs must be a positive integer, got None")
    check_optional_positive("gt_epochs", cfg.gt_epochs, int)
    check_optional_positive("transfer_epochs", cfg.transfer_epochs, int)


def flag_defaults() -> dict:
    """Every flag of the script with its default, in --help order."""
    own = {f.name: f.default for f in fields(WeakToStrongConfig)}
    shared = {f.name: SCRIPT_DEFAULTS.get(f.name, f.default) for f in fields(RunConfig) if f.name not in STAGE_FLAGS}
    return {**own, **shared}


def configs_from_flags(flags: dict) -> tuple[WeakToStrongConfig, RunConfig]:
    """Split the command line into this script's own flags and the RunConfig shared by every stage."""
    own_names = {f.name for f in fields(WeakToStrongConfig)}
    per_stage = sorted(set(flags) & set(STAGE_FLAGS) - own_names)
    if per_stage:
        raise ValueError(f"{', '.join('--' + f for f in per_stage)}: set per stage here; use the "
                         "--weak_*, --strong_* and --transfer_* flags (see --help)")
    unknown = sorted(set(flags) - set(flag_defaults()))
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join('--' + u for u in unknown)}; see --help for the valid ones")
    w2s = WeakToStrongConfig(**{k: v for k, v in flags.items() if k in own_names})
    base = RunConfig(**{**SCRIPT_DEFAULTS, **{k: v for k, v in flags.items() if k not in own_names}})
    return w2s, base


# ---------------------------------------------------------------- stages

def pick(value, fallback):
    return fallback if value is None else value


def weak_stage(w2s: WeakToStrongConfig, base: RunConfig) -> RunConfig:
    return ground_truth(replace(base, lr=w2s.weak_lr, optim=w2s.weak_optim, epochs=w2s.gt_epochs), w2s.weak_model_size)


def strong_stage(w2s: WeakToStrongConfig, base: RunConfig) -> RunConfig:
    return ground_truth(replace(base, lr=w2s.strong_lr, optim=w2s.strong_optim, epochs=w2s.gt_epochs),
                        w2s.strong_model_size)


def transfer_stage(w2s: WeakToStrongConfig, base: RunConfig, loss: str, weak: RunConfig) -> RunConfig:
    """The strong model on the weak stage's labels.

    Named by the weak model (as train_simple.py --weak_model_size would do it) when
    that names the weak stage's own run, so the very same run is shared with
    sweep.py; otherwise (e.g. --weak_lr differs from --transfer_lr) by the labels' path.
    """
    cfg = transfer(replace(base, loss=loss, lr=pick(w2s.transfer_lr, w2s.strong_lr),
                           optim=pick(w2s.transfer_optim, w2s.strong_optim),
                           epochs=pick(w2s.transfer_epochs, w2s.gt_epochs)), w2s.strong_model_size, w2s.weak_model_size)
    if result_dict(weak_run_config(cfg)) == result_dict(weak):
        return cfg
    return replace(cfg, weak_model_size=None, weak_labels_path=str(results.weak_labels_dir(weak)))


def plan_stages(w2s: WeakToStrongConfig, base: RunConfig) -> dict[str, RunConfig]:
    """{"weak", "strong", "transfer_<loss>"...}: every stage's config, validated before anything runs."""
    weak = weak_stage(w2s, base)
    stages = {"weak": weak, "strong": strong_stage(w2s, base)}
    for loss in w2s.transfer_loss:
        stages[f"transfer_{loss}"] = transfer_stage(w2s, base, loss, weak)
    return stages


def describe_stage(name: str, cfg: RunConfig) -> str:
    if name == "weak":
        return f"weak model {cfg.model_size} on ground truth"
    if name == "strong":
        return f"strong model {cfg.model_size} on ground truth (ceiling)"
    return f"strong model {cfg.model_size} on the weak labels, loss {cfg.loss}"


# ---------------------------------------------------------------- summary

def pair_settings(stages: dict[str, RunConfig]) -> dict:
    """What, besides dataset, seed and models, the pair's results depend on (resolved defaults)."""
    weak = result_dict(stages["weak"])
    transfer_config = result_dict(next(cfg for name, cfg in stages.items() if name.startswith("transfer_")))
    settings = {k: weak.get(k) for k in SHARED_RESULT_FIELDS}
    for name, config in (("weak", weak), ("strong", result_dict(stages["strong"])), ("transfer", transfer_config)):
        settings.update({f"{name}_{k}": config[k] for k in STAGE_RESULT_FIELDS})
    return settings


def make_pair_summary(w2s: WeakToStrongConfig, stages: dict[str, RunConfig], accs: dict[str, float]) -> dict:
    """weak_acc, strong_acc, transfer_acc_<loss> (as in the reference), then what they belong to."""
    weak = stages["weak"]
    summary = {"weak_acc": accs["weak"], "strong_acc": accs["strong"]}
    summary.update({f"{readers.TRANSFER_ACC_PREFIX}{loss}": accs[f"transfer_{loss}"] for loss in w2s.transfer_loss})
    summary.update(ds_name=weak.ds_name, seed=weak.seed, weak_model_size=w2s.weak_model_size,
                   strong_model_size=w2s.strong_model_size, settings=pair_settings(stages),
                   runs={name: str(results.run_dir(cfg).relative_to(weak.results_folder))
                         for name, cfg in stages.items()})
    return summary


def format_pgr(value: float) -> str:
    return "n/a (ceiling not above the weak floor)" if math.isnan(value) else f"{value:.4f}"


def print_pair_summary(summary: dict, losses: tuple[str, ...]) -> None:
    print(f"weak acc ({summary['weak_model_size']}): {summary['weak_acc']:.4f}")
    print(f"strong acc ({summary['strong_model_size']}): {summary['strong_acc']:.4f}")
    for loss in losses:
        acc = summary[f"{readers.TRANSFER_ACC_PREFIX}{loss}"]
        gap_recovered = pgr(summary["weak_acc"], acc, summary["strong_acc"])
        print(f"transfer acc ({loss}): {acc:.4f}   PGR {format_pgr(gap_recovered)}")


def run_weak_to_strong(w2s: WeakToStrongConfig, base: RunConfig) -> dict:
    """Run (or reuse) the three stages, write the pair summary and return it.

    Under torchrun every rank trains every stage; rank 0 alone prints and writes.
    """
    from weak_to_strong.distributed import init_data_parallel
    from weak_to_strong.pipeline import load_splits, resolve_doc_counts, run_train_simple

    dp = init_data_parallel()
    is_main = dp.is_main
    # Every stage shares the dataset flags: its documents are loaded once, and the stages are named as
    # their runs will be.
    splits = dp.main_first(lambda: load_splits(base))
    base = resolve_doc_counts(base, splits, announce=is_main)
    stages = plan_stages(w2s, base)
    accs = {}
    for i, (name, cfg) in enumerate(stages.items(), 1):
        if is_main:
            print(f"[{i}/{len(stages)}] {describe_stage(name, cfg)}", flush=True)
        accs[name] = run_train_simple(cfg, splits)["accuracy"]
    summary = make_pair_summary(w2s, stages, accs)
    if is_main:
        path = results.write_pair_summary(base.results_folder, summary)
        print_pair_summary(summary, w2s.transfer_loss)
        print(f"wrote {path}")
    return summary
