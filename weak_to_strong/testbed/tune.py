"""The ladder's fine-tuning learning rates, chosen on ground truth only.

    python -m weak_to_strong.testbed tune_lr [--seeds=10,11,12,13,14] [--results_folder=results/testbed_lr]

For each pretrained rung: ground-truth runs (xent, the registry's other defaults) at each learning
rate of LRS, on seeds disjoint from the measurement's (0, 1, 2), and the mean test accuracy per
rate. The rate the one-standard-error rule picks (`best_lr`) becomes the rung's `finetune_lr`
(ladder.py), the registry's default. No weak
label and no transfer run takes part, so the choice cannot favour weak-to-strong results.
"""

from __future__ import annotations

import math
import statistics
from weak_to_strong.testbed.ladder import LADDER

LRS = (3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
TUNING_SEEDS = (10, 11, 12, 13, 14)


def ground_truth_accuracy(model_size: str, lr: float, seed: int, results_folder: str, ds_name: str) -> float:
    from weak_to_strong.config import RunConfig, ground_truth
    from weak_to_strong.pipeline import run_train_simple

    cfg = RunConfig(ds_name=ds_name, lr=lr, seed=seed, results_folder=results_folder)
    return run_train_simple(ground_truth(cfg, model_size))["accuracy"]


def tune_learning_rates(results_folder: str, seeds=TUNING_SEEDS, ds_name: str = "testbed_knowledge",
                        names=tuple(LADDER)) -> dict[str, dict[float, list[float]]]:
    """{rung: {lr: [ground-truth accuracy per seed]}}."""
    return {name: {lr: [ground_truth_accuracy(name, lr, seed, results_folder, ds_name) for seed in seeds]
                   for lr in LRS} for name in names}


def standard_error(values: list[float]) -> float:
    """plot.mean_se's standard error, 0 for a single value (the table shows "± 0.000")."""
    from weak_to_strong.plot import mean_se

    se = mean_se(values)[1]
    return 0.0 if math.isnan(se) else se


def best_lr(by_lr: dict[float, list[float]]) -> float:
    """The one-standard-error rule: the largest lr whose mean is within one standard error of the best mean.

    Large rungs reach their zero-shot knowledge at any lr up to a point; on that plateau the best mean is
    a coin toss between rates, and the smallest rate barely fine-tunes at all."""
    best = max(by_lr, key=lambda lr: statistics.mean(by_lr[lr]))
    floor = statistics.mean(by_lr[best]) - standard_error(by_lr[best])
    return max(lr for lr, accs in by_lr.items() if statistics.mean(accs) >= floor - 1e-12)


def format_table(accuracies: dict[str, dict[float, list[float]]]) -> str:
    """Markdown: mean ± standard error of ground-truth accuracy per rung and rate; the best rate marked."""
    head = "| rung | " + " | ".join(f"lr {lr:g}" for lr in LRS) + " | best | registry |"
    lines = [head, "|" + "---|" * (len(LRS) + 3)]
    for name, by_lr in accuracies.items():
        cells = []
        for lr in LRS:
            cells.append(f"{statistics.mean(by_lr[lr]):.3f} ± {standard_error(by_lr[lr]):.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {best_lr(by_lr):g} | {LADDER[name].finetune_lr:g} |")
    return "\n".join(lines)
