"""Test-set metrics of a run's predictions, and PGR, as pure functions of plain lists and numbers (no torch:
analysis uses them too).

Predictions are what a run keeps in test_predictions.json: {"id": [...], "prob": [P(label 1)], "label": [0/1]}.
A prediction says class 1 where P(label 1) > 0.5; a tie says class 0, as eval.accuracy's argmax does.
"""

from __future__ import annotations

import math

ECE_BINS = 10
"""Expected calibration error uses 10 equal-width bins of the predicted class's confidence over [0, 1]."""


def predicted_class(prob: float) -> int:
    return int(prob > 0.5)


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks of the values, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def auroc(probs: list[float], labels: list[int]) -> float:
    """Area under the ROC curve: the chance that a random positive gets a higher P(label 1) than a random
    negative, ties counting one half (the Mann-Whitney U statistic over n_pos * n_neg). NaN with one class."""
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(list(probs))
    pos_rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def ece(probs: list[float], labels: list[int], n_bins: int = ECE_BINS) -> float:
    """Expected calibration error (Guo et al. 2017): sum over bins b of (n_b / n) |accuracy_b - confidence_b|.

    The confidence is the predicted class's probability, max(p, 1 - p); bin b holds confidences in
    [b / n_bins, (b + 1) / n_bins), the last bin also 1.0. With two classes confidences are >= 0.5, so only
    the upper half of the bins fill. NaN without predictions.
    """
    if not probs:
        return math.nan
    bins = [[0, 0.0, 0.0] for _ in range(n_bins)]  # count, sum of confidences, correct predictions
    for p, y in zip(probs, labels, strict=True):
        confidence = max(p, 1.0 - p)
        b = bins[min(int(confidence * n_bins), n_bins - 1)]
        b[0] += 1
        b[1] += confidence
        b[2] += predicted_class(p) == y
    return sum(abs(correct - conf_sum) for _, conf_sum, correct in bins) / len(probs)


LOG_LOSS_FLOOR = 1e-12
"""Probabilities are clipped to [floor, 1 - floor] so one confidently wrong prediction costs ~27.6 nats, not inf."""


def log_loss(probs: list[float], labels: list[int]) -> float:
    """Mean cross-entropy (nats) of the true labels under P(label 1). 0.693 is a prediction of 0.5 everywhere:
    a head that has hardly moved from its zero start, whatever its accuracy. NaN without predictions."""
    if not probs:
        return math.nan
    clip = lambda p: min(max(p, LOG_LOSS_FLOOR), 1.0 - LOG_LOSS_FLOOR)  # noqa: E731
    return -sum(math.log(clip(p) if y else 1.0 - clip(p)) for p, y in zip(probs, labels, strict=True)) / len(probs)


def base_rate_shift(probs: list[float], labels: list[int]) -> float:
    """The share of documents predicted 1 minus the share labelled 1: how far a model's predicted class
    prior sits from the truth, whatever it gets right. A student fine-tuned for a few steps on weak labels
    inherits its supervisor's shift (sign included), which can cost it far more accuracy than the supervisor
    lost. NaN without predictions."""
    return prior_shift([predicted_class(p) for p in probs], labels)


def prior_shift(probs: list[float], labels: list[int]) -> float:
    """The mean P(class 1) minus the share labelled 1: the class prior that soft labels teach, against the
    truth. A student trained on them with a cross-entropy learns this prior first. NaN without predictions."""
    if not probs:
        return math.nan
    return sum(p - y for p, y in zip(probs, labels, strict=True)) / len(probs)


def agreement(weak: dict, student: dict) -> dict[str, float]:
    """How often the student predicts the class its weak supervisor predicts, on the test documents both have
    (matched by id): overall, and on the documents the weak model gets wrong (1: it repeats every error,
    0: it corrects every one). NaN where there is nothing to count."""
    student_says = {i: predicted_class(p) for i, p in zip(student["id"], student["prob"], strict=True)}
    shared = [(i, predicted_class(p), y) for i, p, y in zip(weak["id"], weak["prob"], weak["label"], strict=True)
              if i in student_says]
    errors = [(i, says) for i, says, y in shared if says != y]
    return {"agreement": share(student_says[i] == says for i, says, _ in shared),
            "agreement_on_weak_errors": share(student_says[i] == says for i, says in errors)}


def share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else math.nan


def summary_metrics(student: dict, weak: dict | None = None) -> dict[str, float]:
    """A run's results_summary.json metrics besides accuracy: auroc, ece and log_loss of its test predictions, and for a
    transfer run (given the weak run's test predictions) agreement and agreement_on_weak_errors. Undefined
    ones (NaN: AUROC of a one-class test set, no weak errors) are left out, never written as numbers."""
    found = {"auroc": auroc(student["prob"], student["label"]), "ece": ece(student["prob"], student["label"]),
             "log_loss": log_loss(student["prob"], student["label"])}
    if weak is not None:
        found.update(agreement(weak, student))
    return {name: value for name, value in found.items() if not math.isnan(value)}


def pgr(weak_acc: float, transfer_acc: float, ceiling_acc: float) -> float:
    """The performance gap recovered: (transfer - weak) / (ceiling - weak), of accuracies or AUROCs; NaN where
    the ceiling is not above the weak floor."""
    gap = ceiling_acc - weak_acc
    return (transfer_acc - weak_acc) / gap if gap > 0 else math.nan
