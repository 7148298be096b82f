"""Loss registry: xent, product, logconf.

Every loss maps (logits [N, 2], soft labels [N, 2], step_frac in [0, 1]) to the
mean loss over the N rows. Losses that need batch-level statistics (logconf's
hardening threshold) expose them through `batch_stats`, so the training loop can
compute them over the whole batch even when it runs the batch as several
minibatches: minibatched training then equals full-batch training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_c target_c * log_softmax(logits)_c."""
    return F.cross_entropy(logits.float(), target.float(), reduction="mean")


@dataclass
class XentLoss:
    """Cross-entropy against the (soft) labels.

    L = mean_i [ -sum_c y_ic log p_ic ],  p = softmax(logits).
    """

    needs_batch_stats = False

    def batch_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        return {}

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        return soft_cross_entropy(logits, labels)


@dataclass
class ProductLoss:
    """Cross-entropy against the normalised product of the labels and the model's own predictions.

    t_ic = y_ic^alpha * p_ic^beta / sum_k y_ik^alpha * p_ik^beta   (t is detached)
    L = mean_i [ -sum_c t_ic log p_ic ]
    """

    alpha: float = 1.0
    beta: float = 1.0
    needs_batch_stats = False

    def batch_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        return {}

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        preds = torch.softmax(logits.float(), dim=-1)
        target = labels.float().pow(self.alpha) * preds.pow(self.beta)
        target = (target / target.sum(dim=-1, keepdim=True)).detach()
        return soft_cross_entropy(logits, target)


@dataclass
class LogconfLoss:
    """Cross-entropy with an auxiliary confidence term (the paper's "aux loss").

    w = aux_coef * min(1, step_frac / warmup_frac)      (linear warm-up from 0)
    h_i = hardened strong prediction: class 0 where p_i0 >= tau, else class 1,
          tau = quantile(p_:0 over the batch, q = mean_i y_i1)
          so the hardened predictions match the weak labels' class balance.
    L = mean_i [ -sum_c ((1 - w) y_ic + w h_ic) log p_ic ]

    tau is a batch-level statistic: `batch_stats` computes it over the whole
    batch, and the training loop passes it to every minibatch.
    """

    aux_coef: float = 0.5
    warmup_frac: float = 0.1
    needs_batch_stats = True

    def aux_weight(self, step_frac: float) -> float:
        if self.warmup_frac <= 0:
            return self.aux_coef
        return self.aux_coef * min(1.0, step_frac / self.warmup_frac)

    def batch_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        preds = torch.softmax(logits.detach().float(), dim=-1)
        weak_class1_frac = labels.float().mean(dim=0)[1].clamp(0.0, 1.0)
        return {"threshold": torch.quantile(preds[:, 0], weak_class1_frac)}

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        stats = stats or self.batch_stats(logits, labels)
        preds = torch.softmax(logits.float(), dim=-1)
        is_class0 = (preds[:, 0] >= stats["threshold"]).float()
        hardened = torch.stack([is_class0, 1.0 - is_class0], dim=1).detach()
        w = self.aux_weight(step_frac)
        return soft_cross_entropy(logits, labels.float() * (1 - w) + hardened * w)


LOSSES = {"xent": XentLoss, "product": ProductLoss, "logconf": LogconfLoss}


def make_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]()
