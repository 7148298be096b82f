"""Checks on numbers before they become results: a NaN in results_summary.json looks like a result.

Each failure is a ValueError subclass, so the CLIs print it as one line, and it is raised before
the run's summary is written: a run that fails a check is never marked finished.

No torch import: datasets.py checks labels with it while the model registry and config stay torch-free,
and a model's predictions come as tensors whose own methods suffice.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

PROBABILITY_SUM_TOLERANCE = 1e-3


class TrainingDiverged(ValueError):
    """The loss or the model's predictions stopped being finite numbers."""


def check_finite_loss(loss: float, step: int, lr: float) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(f"training diverged: the loss is {loss} at step {step} (--lr={lr:g}); "
                               "the run is not marked finished. Lower --lr and run it again")


def check_predictions(probs: torch.Tensor, what: str) -> None:
    """Class probabilities [N, 2] from the model: finite (they are softmaxes, so the rest follows)."""
    finite = probs.isfinite()
    if not bool(finite.all()):
        bad = int((~finite.all(dim=-1)).sum())
        raise TrainingDiverged(f"the model's {what} are not finite numbers for {bad} of {len(probs)} documents: "
                               "training diverged and the run is not marked finished. Lower --lr and run it again")


def soft_label_problem(soft_labels) -> str | None:
    """Why these [N, 2] soft labels are not probabilities (finite, in [0, 1], each row summing to 1), or None."""
    try:
        labels = np.asarray(list(soft_labels), dtype=np.float64)
    except (TypeError, ValueError):
        return "expected one [p0, p1] pair of numbers per document"
    if labels.ndim != 2 or labels.shape[1] != 2:
        return f"expected one [p0, p1] pair per document, got shape {tuple(labels.shape)}"
    not_finite = np.flatnonzero(~np.isfinite(labels).all(axis=-1))
    if len(not_finite):
        return f"row {int(not_finite[0])} is {labels[not_finite[0]].tolist()}, not finite"
    bad = np.flatnonzero(((labels < 0) | (labels > 1)).any(axis=-1)
                         | (np.abs(labels.sum(-1) - 1) > PROBABILITY_SUM_TOLERANCE))
    if len(bad):
        return f"row {int(bad[0])} is {labels[bad[0]].tolist()}, not two probabilities summing to 1"
    return None


def check_binary_label(label, where: str) -> int:
    """A formatted document's hard label: 0 or 1 (booleans count), else a ValueError naming `where`."""
    if isinstance(label, bool) or (isinstance(label, int) and label in (0, 1)):
        return int(label)
    raise ValueError(f"{where}: label {label!r} is not 0 or 1")
