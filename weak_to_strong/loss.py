"""Loss registry: xent, product, logconf and its variants, window, confident, adaptconf, kl.

Every loss maps (logits [N, 2], soft labels [N, 2], step_frac in [0, 1]) to the
mean loss over the N rows. Losses that need batch-level statistics (logconf's
hardening threshold) expose them through `batch_stats`, so the training loop can
compute them over the whole batch even when it runs the batch as several
minibatches: minibatched training then equals full-batch training.

The training loop calls `batch_stats` exactly once per optimizer step (itself,
or through the loss when the step is one minibatch), so a loss that keeps state
across steps (logconf_buffer's rolling buffer) updates it there.

Losses that train on a subset of the rows (window, confident) give a zero loss
that still has a gradient path (a zero gradient) when no row is selected, never NaN.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

LOGIT_EPS = 1e-7
"""Keeps the log-odds of a weak label of exactly 0 or 1 finite (EleutherAI w2s uses the same)."""


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_c target_c * log_softmax(logits)_c."""
    return F.cross_entropy(logits.float(), target.float(), reduction="mean")


def row_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum_c target_c * log_softmax(logits)_c per row [N]."""
    return F.cross_entropy(logits.float(), target.float(), reduction="none")


def mean_where(selected: torch.Tensor, per_row: torch.Tensor) -> torch.Tensor:
    """sum of the selected rows' values / all rows: zero, with a (zero) gradient, when none is selected."""
    return torch.where(selected, per_row, torch.zeros_like(per_row)).mean()


class Loss:
    """What every loss offers the training loop; the defaults suit a loss without batch statistics or state."""

    needs_batch_stats = False
    stats_need_logits = True
    """False where batch_stats reads the labels only: the training loop then skips its gradient-free forward
    pass over the batch and passes logits=None."""

    def batch_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        return {}

    def train_size_problem(self, n_train: int) -> str | None:
        """Why this loss cannot train on n_train examples, or None."""
        return None


@dataclass
class XentLoss(Loss):
    """Cross-entropy against the (soft) labels.

    L = mean_i [ -sum_c y_ic log p_ic ],  p = softmax(logits).
    """

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        return soft_cross_entropy(logits, labels)


@dataclass
class KLLoss(Loss):
    """KL divergence from the weak labels to the student (EleutherAI w2s's `kl`, for reporting parity).

    L = mean_i [ sum_c y_ic (log y_ic - log p_ic) ]   (0 log 0 = 0)
      = xent - mean_i H(y_i): the same gradients as xent; the value is 0 where p = y.
    """

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        labels = labels.float()
        log_p = torch.log_softmax(logits.float(), dim=-1)
        return (torch.xlogy(labels, labels) - labels * log_p).sum(dim=-1).mean()


@dataclass
class ProductLoss(Loss):
    """Cross-entropy against the normalised product of the labels and the model's own predictions.

    t_ic = y_ic^alpha * p_ic^beta / sum_k y_ik^alpha * p_ik^beta   (t is detached)
    L = mean_i [ -sum_c t_ic log p_ic ]
    """

    alpha: float = 1.0
    beta: float = 1.0

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        preds = torch.softmax(logits.float(), dim=-1)
        target = labels.float().pow(self.alpha) * preds.pow(self.beta)
        target = (target / target.sum(dim=-1, keepdim=True)).detach()
        return soft_cross_entropy(logits, target)


@dataclass
class LogconfLoss(Loss):
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

    def weak_targets(self, labels: torch.Tensor, stats: dict) -> torch.Tensor:
        """The weak labels as this loss trains on them (variants re-balance them)."""
        return labels.float()

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        stats = stats or self.batch_stats(logits, labels)
        preds = torch.softmax(logits.float(), dim=-1)
        is_class0 = (preds[:, 0] >= stats["threshold"]).float()
        hardened = torch.stack([is_class0, 1.0 - is_class0], dim=1).detach()
        w = self.aux_weight(step_frac)
        return soft_cross_entropy(logits, self.weak_targets(labels, stats) * (1 - w) + hardened * w)


@dataclass
class LogconfBufferLoss(LogconfLoss):
    """logconf whose hardening threshold comes from a rolling buffer of recent predictions, not the batch alone.

    B_t = the rows (p_j0, y_j1) of step t's batch and of the most recent earlier steps' batches, as many whole
          batches as fit in buffer_size rows (step t's batch always; p_j0 as predicted at its own step)
    tau_t = quantile(p_:0 over B_t, q = mean_{j in B_t} y_j1)
    L = logconf's, with tau_t.

    As EleutherAI w2s's buffered logconf, a threshold from more rows than one
    batch is stable with small batches. Differences: w2s keeps the last 32
    predictions (its batch size), because it calls the loss per minibatch of one
    example and the buffer stands in for the batch; here the threshold already
    sees the whole batch, so buffer_size = 128 spans four batches of 32. The
    buffer holds whole batches, because the rows of one step have no order: which
    of them a partial batch kept would depend on how the step was split into
    minibatches and ranks. q is the weak labels' class-1 share over the buffer
    (w2s: over the current minibatch). With buffer_size <= batch_size this is
    logconf. A buffer larger than the training set (more than an epoch of stale
    predictions) is a user error.
    """

    buffer_size: int = 128
    history: deque = field(default_factory=deque, init=False, repr=False, compare=False)

    def train_size_problem(self, n_train: int) -> str | None:
        if n_train < self.buffer_size:
            return (f"its rolling buffer of {self.buffer_size} predictions is larger than the {n_train} training "
                    "documents (it would span more than an epoch); train on more documents (--n_docs) or use "
                    "--loss=logconf")
        return None

    def batch_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        preds = torch.softmax(logits.detach().float(), dim=-1)
        step = torch.stack([preds[:, 0], labels.detach().float()[:, 1]], dim=1)
        window = self.window(step)
        self.remember(step)
        return {"threshold": torch.quantile(window[:, 0], window[:, 1].mean().clamp(0.0, 1.0))}

    def window(self, step: torch.Tensor) -> torch.Tensor:
        """This step's rows and the most recent earlier batches that fit within buffer_size rows."""
        rows, n = [step], len(step)
        for earlier in reversed(self.history):
            if n + len(earlier) > self.buffer_size:
                break
            rows.append(earlier)
            n += len(earlier)
        return torch.cat(rows)

    def remember(self, step: torch.Tensor) -> None:
        self.history.append(step)
        while sum(len(s) for s in self.history) > self.buffer_size:
            self.history.popleft()


@dataclass
class LogconfBalancedLoss(LogconfLoss):
    """logconf with label balancing (EleutherAI w2s's `balance_batch`): weak labels and hardened
    predictions are both balanced to the class prior.

    s = mean_j logit(y_j1) - logit(prior)          (over the batch; logit(y) = log(y + eps) - log(1 - y + eps))
    y'_i1 = sigmoid(logit(y_i1) - s),  y'_i0 = 1 - y'_i1
    tau = quantile(p_:0 over the batch, q = prior)  (a share `prior` of the rows is hardened to class 1)
    L = mean_i [ -sum_c ((1 - w) y'_ic + w h_ic) log p_ic ]   (w and h as logconf)

    prior = 0.5 (w2s's): the weak labels' mean log-odds is moved to 0 and the
    threshold is the median, so a weak model's bias towards one class is not
    passed on. s and tau are computed over the whole batch (w2s: per minibatch,
    where a minibatch of one example turns every label into 0.5).
    """

    prior: float = 0.5

    def batch_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        preds = torch.softmax(logits.detach().float(), dim=-1)
        prior = torch.tensor(self.prior, device=preds.device)
        shift = log_odds(labels.detach().float()[:, 1]).mean() - torch.logit(prior)
        return {"threshold": torch.quantile(preds[:, 0], prior), "log_odds_shift": shift}

    def weak_targets(self, labels: torch.Tensor, stats: dict) -> torch.Tensor:
        class1 = torch.sigmoid(log_odds(labels.float()[:, 1]) - stats["log_odds_shift"])
        return torch.stack([1.0 - class1, class1], dim=1)


def log_odds(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p + LOGIT_EPS) - torch.log(1 - p + LOGIT_EPS)


@dataclass
class WindowLoss(Loss):
    """Cross-entropy only where the student is unsure (EleutherAI w2s's confidence-window loss).

    U = { i : max_c p_ic < 0.5 + radius }          (selection not differentiated)
    L = (1 / N) sum_{i in U} [ -sum_c y_ic log p_ic ]

    radius = 0.15, w2s's default: rows the student already predicts with
    probability >= 0.65 give no gradient. Divided by all N rows, as in w2s, so the
    loss (and the step) shrinks as the student grows confident; 0 when U is empty.
    """

    radius: float = 0.15

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        unsure = torch.softmax(logits.detach().float(), dim=-1).max(dim=-1).values < 0.5 + self.radius
        return mean_where(unsure, row_cross_entropy(logits, labels))


@dataclass
class ConfidentLoss(Loss):
    """Cross-entropy only on the weak labels the weak model is most confident about.

    c_i = max_c y_ic                                 (the weak label's confidence)
    K = { i : c_i >= quantile(c over the batch, q) }
    L = (1 / |K|) sum_{i in K} [ -sum_c y_ic log p_ic ]   (0 when K is empty)

    q = 0.5 keeps the more confident half of every batch. A quantile rather than
    a fixed threshold, so the kept share does not depend on how calibrated the
    weak model is. The mean is over the kept rows, as if training on the filtered
    set. Filtering weak labels by a confidence or reliability score follows Lang
    et al. 2022 (subset selection for weak supervision) and Guo & Yang 2024
    (reliability-aware weak-to-strong alignment); neither fixes q = 0.5, which is
    this project's choice.
    """

    quantile: float = 0.5
    needs_batch_stats = True
    stats_need_logits = False

    def batch_stats(self, logits: torch.Tensor | None, labels: torch.Tensor) -> dict[str, Any]:
        confidence = labels.detach().float().max(dim=-1).values
        threshold = torch.quantile(confidence, self.quantile)
        return {"threshold": threshold, "kept_share": (confidence >= threshold).float().mean()}

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        stats = stats or self.batch_stats(logits, labels)
        kept = labels.float().max(dim=-1).values >= stats["threshold"]
        # Where nothing is kept the sum is 0, and 0 / (tiny) stays 0: no NaN and no device sync to test for it.
        return mean_where(kept, row_cross_entropy(logits, labels)) / stats["kept_share"].clamp_min(1e-12)


@dataclass
class AdaptconfLoss(Loss):
    """Adaptive confidence loss (AdaptConf; Guo et al. 2024, "Vision superalignment: weak-to-strong
    generalization for vision foundation models"): per example, a mix of the weak label and the
    student's own hardened prediction, weighted by two cross-entropies.

    s_i = argmax_c p_ic,  w_i = argmax_c y_ic        (ties: class 0)
    CE_own_i = -log p_{i s_i},  CE_weak_i = -log p_{i w_i}
    beta_i = exp(CE_own_i / T) / (exp(CE_own_i / T) + exp(CE_weak_i / T))   (not differentiated)
    L = mean_i [ (1 - beta_i) (-sum_c y_ic log p_ic) + beta_i CE_own_i ]

    T = 0.5, the authors' default (`--superalignment-threshold` in their code,
    github.com/ggjy/vision_weak_to_strong, whose formula this follows). beta <= 1/2:
    it is 1/2 where the student agrees with the weak label's class and falls as the
    student disagrees more confidently. The authors' first term is the KL divergence
    to the weak labels (temperature 1): the same gradient as the cross-entropy used
    here. There is no warm-up (the authors' classification code has none).
    """

    temperature: float = 0.5

    def __call__(self, logits, labels, step_frac: float, stats: dict | None = None) -> torch.Tensor:
        labels = labels.float()
        log_p = torch.log_softmax(logits.float(), dim=-1)
        ce_own = -log_p.gather(1, log_p.argmax(dim=-1, keepdim=True))[:, 0]
        ce_weak = -log_p.gather(1, labels.argmax(dim=-1, keepdim=True))[:, 0]
        beta = torch.sigmoid((ce_own - ce_weak) / self.temperature).detach()  # = exp(a/T) / (exp(a/T) + exp(b/T))
        to_weak = -(labels * log_p).sum(dim=-1)
        return ((1 - beta) * to_weak + beta * ce_own).mean()


LOSSES = {"xent": XentLoss, "product": ProductLoss, "logconf": LogconfLoss, "logconf_buffer": LogconfBufferLoss,
          "logconf_balanced": LogconfBalancedLoss, "window": WindowLoss, "confident": ConfidentLoss,
          "adaptconf": AdaptconfLoss, "kl": KLLoss}
"""The names --loss takes, in the order tables and figures list them. A loss's hyperparameters are its
class defaults: a new setting is a new entry (a new name, hence a new run folder)."""


def make_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]()


def check_train_size(name: str, n_train: int) -> None:
    """A one-line ValueError naming the loss when it cannot train on n_train examples (before a run writes)."""
    problem = make_loss(name).train_size_problem(n_train)
    if problem is not None:
        raise ValueError(f"--loss={name}: {problem}")
