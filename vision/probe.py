"""Linear probe training on in-memory features, and the experiment's metrics.

The probe is ``nn.Linear`` trained with Adam and a cosine learning-rate
schedule whose period is the total number of optimizer steps
(``n_epochs * ceil(n_train / batch_size)``), stepped once per batch, so the
learning rate reaches 0 exactly at the last step, as in the reference's
current code (its first versions set the period to ``n_epochs``).

Features and labels stay on the device; each epoch draws a ``randperm`` and
slices it into batches, which avoids DataLoader overhead entirely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

EVAL_CHUNK = 8192  # rows per forward pass at evaluation, bounds activation memory


def to_class_ids(values: torch.Tensor) -> torch.Tensor:
    """Class ids from ids (N,) or scores/probabilities (N, C)."""
    return values.argmax(dim=-1) if values.dim() == 2 else values


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows where the predicted class equals the label.

    Either argument may be class ids (N,) or scores/probabilities (N, C).
    """
    pred, true = to_class_ids(predictions), to_class_ids(labels)
    if pred.shape != true.shape or pred.numel() == 0:
        raise ValueError(f"accuracy needs matching non-empty inputs, got {tuple(pred.shape)} and {tuple(true.shape)}")
    return (pred == true.to(pred.device)).float().mean().item()


def agreement(student: torch.Tensor, supervisor: torch.Tensor) -> float:
    """How often the student predicts the supervisor's (argmax) label."""
    return accuracy(student, supervisor)


def compute_pgr(weak_acc: float, w2s_acc: float, ceiling_acc: float) -> float:
    """Performance gap recovered, (w2s - weak) / (ceiling - weak); NaN when the gap is 0."""
    gap = ceiling_acc - weak_acc
    if gap == 0:
        return float("nan")
    return (w2s_acc - weak_acc) / gap


def count_steps(n_train: int, batch_size: int, n_epochs: int) -> int:
    """Total optimizer steps: the last batch of an epoch may be partial."""
    return n_epochs * math.ceil(n_train / batch_size)


@dataclass
class ProbeHistory:
    """Per-epoch metrics of one probe run; the last entry is the final value."""

    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)  # with the weak supervisor, on test
    lrs: list[float] = field(default_factory=list)  # lr used at each optimizer step
    final_lr: float = float("nan")  # lr after the last step: 0 when the schedule spans the run
    n_steps: int = 0


def make_probe(dim: int, n_classes: int, seed: int, device: torch.device) -> nn.Linear:
    """A seeded linear layer, without disturbing the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = nn.Linear(dim, n_classes)
    return probe.to(device)


@torch.no_grad()
def predict(probe: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predicted class ids, in chunks."""
    return torch.cat([probe(chunk).argmax(dim=-1) for chunk in x.split(EVAL_CHUNK)])


def train_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    weak_test: torch.Tensor,
    *,
    n_classes: int,
    n_epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    desc: str = "probe",
) -> ProbeHistory:
    """Train a linear probe on (x_train, y_train), evaluating on test every epoch.

    ``y_train`` is either class ids (N,) or soft labels (N, C) (cross-entropy
    against probabilities). ``weak_test`` holds the weak supervisor's labels
    (ids or probabilities) on the test set, for student-supervisor agreement.
    """
    device = torch.device(device)
    x_train = x_train.to(device, torch.float32)
    y_train = y_train.to(device, torch.float32 if y_train.dim() == 2 else torch.long)
    x_test = x_test.to(device, torch.float32)
    y_test = to_class_ids(y_test).to(device)
    weak_test = to_class_ids(weak_test).to(device)
    n_train = x_train.shape[0]
    assert y_train.shape[0] == n_train, "features and labels must align"

    probe = make_probe(x_train.shape[1], n_classes, seed, device)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    n_steps = count_steps(n_train, batch_size, n_epochs)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_steps)
    generator = torch.Generator().manual_seed(seed)  # CPU: same batches on any device

    history = ProbeHistory(n_steps=n_steps)
    for _ in (bar := tqdm(range(n_epochs), desc=desc, unit="epoch")):
        order = torch.randperm(n_train, generator=generator).to(device)
        correct = torch.zeros((), device=device)  # accumulate on device: no sync per batch
        for idx in order.split(batch_size):
            logits = probe(x_train[idx])
            target = y_train[idx]
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            history.lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
            correct += (logits.argmax(dim=-1) == to_class_ids(target)).sum()
        history.train_acc.append(correct.item() / n_train)
        test_pred = predict(probe, x_test)
        history.test_acc.append(accuracy(test_pred, y_test))
        history.agreement.append(agreement(test_pred, weak_test))
        bar.set_postfix(train_acc=f"{history.train_acc[-1]:.3f}", test_acc=f"{history.test_acc[-1]:.3f}")
    assert len(history.lrs) == n_steps, "schedule length must equal the number of optimizer steps"
    history.final_lr = optimizer.param_groups[0]["lr"]
    return history
