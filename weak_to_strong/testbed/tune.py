"""The ladder's fine-tuning learning rates, chosen on ground truth only.

    python -m weak_to_strong.testbed tune_lr [--seeds=10,11,12,13,14] [--results_folder=results/testbed_lr]
    python -m weak_to_strong.testbed tune_lr --linear_probe=True   # the head alone, on frozen features

For each pretrained rung: ground-truth runs (xent, the registry's other defaults) at each learning
rate of the grid, on seeds disjoint from the measurement's (0-9), and the mean test accuracy and
log-loss per rate. The rate `best_lr` picks becomes the rung's `finetune_lr` (or, for linear probes,
`probe_lr`) in ladder.py, the registry's default. No weak label and no transfer run takes part, so
the choice cannot favour weak-to-strong results.
"""

from __future__ import annotations

import math
import statistics

from weak_to_strong.testbed.ladder import LADDER

LRS = (3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
PROBE_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
TUNING_SEEDS = (10, 11, 12, 13, 14)


def grid(linear_probe: bool) -> tuple[float, ...]:
    return PROBE_LRS if linear_probe else LRS


def ground_truth_summary(model_size: str, lr: float, seed: int, results_folder: str, ds_name: str,
                         linear_probe: bool = False) -> dict:
    """The results summary (accuracy, log_loss, ...) of one ground-truth run."""
    from weak_to_strong.config import RunConfig, ground_truth
    from weak_to_strong.pipeline import run_train_simple

    cfg = RunConfig(ds_name=ds_name, lr=lr, seed=seed, linear_probe=linear_probe, results_folder=results_folder)
    return run_train_simple(ground_truth(cfg, model_size))


def tune_learning_rates(results_folder: str, seeds=TUNING_SEEDS, ds_name: str = "testbed_knowledge",
                        names=tuple(LADDER), linear_probe: bool = False) -> dict[str, dict[float, list[dict]]]:
    """{rung: {lr: [ground-truth results summary per seed]}}."""
    return {name: {lr: [ground_truth_summary(name, lr, seed, results_folder, ds_name, linear_probe) for seed in seeds]
                   for lr in grid(linear_probe)} for name in names}


def standard_error(values: list[float]) -> float:
    """plot.mean_se's standard error, 0 for a single value (the table shows "± 0.000")."""
    from weak_to_strong.plot import mean_se

    se = mean_se(values)[1]
    return 0.0 if math.isnan(se) else se


def column(summaries: list[dict], metric: str) -> list[float]:
    return [s[metric] for s in summaries]


def best_lr(by_lr: dict[float, list[dict]], linear_probe: bool = False) -> float:
    """Full fine-tuning: the one-standard-error rule on accuracy, the largest lr whose mean accuracy is within one
    standard error of the best mean. Large rungs reach their zero-shot knowledge at any lr up to a point, and
    larger rates overwrite it; on that plateau the best mean is a coin toss between rates, and the smallest rate
    barely fine-tunes at all.

    Linear probe: the lowest mean test log-loss. A head on frozen features cannot overwrite what pretraining
    taught, so the only question is whether it has fit: its accuracy sits on a plateau from heads that have
    hardly moved from zero (log-loss near 0.69, the sign of tiny logits) to fitted ones, and the proper
    scoring rule tells them apart."""
    if linear_probe:
        return min(by_lr, key=lambda lr: statistics.mean(column(by_lr[lr], "log_loss")))
    accuracy = {lr: column(summaries, "accuracy") for lr, summaries in by_lr.items()}
    best = max(accuracy, key=lambda lr: statistics.mean(accuracy[lr]))
    floor = statistics.mean(accuracy[best]) - standard_error(accuracy[best])
    return max(lr for lr, accs in accuracy.items() if statistics.mean(accs) >= floor - 1e-12)


def mean_se_text(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {standard_error(values):.3f}"


def format_table(summaries: dict[str, dict[float, list[dict]]], linear_probe: bool = False) -> str:
    """Markdown: per rung and rate, mean ± standard error of ground-truth accuracy and test log-loss; the rate
    `best_lr` picks, and the registry's."""
    lrs = grid(linear_probe)
    head = "| rung | " + " | ".join(f"lr {lr:g}: accuracy / log-loss" for lr in lrs) + " | best | registry |"
    lines = [head, "|" + "---|" * (len(lrs) + 3)]
    for name, by_lr in summaries.items():
        cells = [f"{mean_se_text(column(by_lr[lr], 'accuracy'))} / {mean_se_text(column(by_lr[lr], 'log_loss'))}"
                 for lr in lrs]
        registry = LADDER[name].probe_lr if linear_probe else LADDER[name].finetune_lr
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {best_lr(by_lr, linear_probe):g} | {registry:g} |")
    return "\n".join(lines)
