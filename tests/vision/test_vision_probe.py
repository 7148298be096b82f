"""Metrics on hand-made tensors, and the probe's training schedule."""

from __future__ import annotations

import math

import pytest
import torch

from vision.probe import accuracy, agreement, compute_pgr, count_steps, train_probe


def test_accuracy_accepts_ids_scores_and_probabilities():
    labels = torch.tensor([0, 1, 2, 1])
    assert accuracy(torch.tensor([0, 1, 1, 1]), labels) == pytest.approx(0.75)
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0], [0, 0, 5.0]])
    assert accuracy(logits, labels) == pytest.approx(0.5)
    soft = torch.tensor([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9], [0.5, 0.4, 0.1]])
    assert accuracy(logits, soft) == pytest.approx(0.25)  # soft labels compared by argmax


def test_accuracy_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="matching"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0, 1, 2]))


def test_agreement_counts_student_matching_supervisor():
    student = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    supervisor = torch.tensor([0, 1, 1, 1, 0])
    assert agreement(student, supervisor) == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    ("weak", "w2s", "ceiling", "pgr"),
    [
        (0.5, 0.6, 0.7, 0.5),
        (0.566, 0.619, 0.645, (0.619 - 0.566) / (0.645 - 0.566)),
        (0.5, 0.5, 0.9, 0.0),
        (0.5, 0.9, 0.9, 1.0),
        (0.5, 0.4, 0.9, -0.25),
    ],
)
def test_pgr(weak, w2s, ceiling, pgr):
    assert compute_pgr(weak, w2s, ceiling) == pytest.approx(pgr)


def test_pgr_without_gap_is_nan():
    assert math.isnan(compute_pgr(0.6, 0.7, 0.6))


def test_count_steps_includes_partial_batches():
    assert count_steps(n_train=40000, batch_size=100, n_epochs=10) == 4000
    assert count_steps(n_train=40000, batch_size=128, n_epochs=10) == 10 * 313
    assert count_steps(n_train=10, batch_size=4, n_epochs=3) == 9


def make_blobs(n: int, dim: int = 8, n_classes: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centers = 4 * torch.randn(n_classes, dim, generator=generator)
    y = torch.arange(n) % n_classes
    x = centers[y] + 0.3 * torch.randn(n, dim, generator=generator)
    return x, y


@pytest.mark.parametrize(("n_train", "batch_size", "n_epochs"), [(10, 4, 3), (64, 16, 5), (7, 100, 2)])
def test_cosine_schedule_spans_every_optimizer_step(n_train, batch_size, n_epochs):
    x, y = make_blobs(n_train + 6)
    lr = 1e-2
    history = train_probe(
        x[:n_train], y[:n_train], x[n_train:], y[n_train:], y[n_train:],
        n_classes=3, n_epochs=n_epochs, lr=lr, batch_size=batch_size,
    )  # fmt: skip
    n_steps = n_epochs * math.ceil(n_train / batch_size)
    assert history.n_steps == n_steps
    assert len(history.lrs) == n_steps
    assert history.lrs[0] == pytest.approx(lr)
    # One cosine half-period over all steps: strictly decreasing, still > 0 at
    # the last step, and 0 right after it. (A period of n_epochs, as in the
    # reference's first versions, would hit 0 after n_epochs batches and climb back up.)
    expected = [lr * (1 + math.cos(math.pi * k / n_steps)) / 2 for k in range(n_steps)]
    assert history.lrs == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert all(a > b for a, b in zip(history.lrs, history.lrs[1:]))
    assert history.lrs[-1] > 0
    assert history.final_lr == pytest.approx(0.0, abs=1e-12)


def test_probe_learns_hard_and_soft_labels_and_tracks_agreement():
    x, y = make_blobs(300)
    x_train, y_train, x_test, y_test = x[:200], y[:200], x[200:], y[200:]
    wrong_supervisor = (y_test + 1) % 3  # disagrees with the truth everywhere
    kwargs = dict(n_classes=3, n_epochs=5, lr=5e-2, batch_size=32, seed=1)
    hard = train_probe(x_train, y_train, x_test, y_test, wrong_supervisor, **kwargs)
    assert hard.test_acc[-1] == pytest.approx(1.0)
    assert hard.agreement[-1] == pytest.approx(0.0)
    assert len(hard.test_acc) == len(hard.agreement) == len(hard.train_acc) == 5

    soft_labels = torch.nn.functional.one_hot(y_train, 3).float() * 0.7 + 0.1
    soft = train_probe(x_train, soft_labels, x_test, y_test, y_test, **kwargs)
    assert soft.test_acc[-1] == pytest.approx(1.0)
    assert soft.agreement[-1] == pytest.approx(1.0)


def test_probe_is_deterministic_given_seed():
    x, y = make_blobs(120)
    kwargs = dict(n_classes=3, n_epochs=3, lr=1e-3, batch_size=16)
    runs = [train_probe(x[:80], y[:80], x[80:], y[80:], y[80:], seed=s, **kwargs) for s in (3, 3)]
    assert runs[0].train_acc == runs[1].train_acc and runs[0].test_acc == runs[1].test_acc
    rng_state = torch.get_rng_state()
    train_probe(x[:80], y[:80], x[80:], y[80:], y[80:], seed=5, **kwargs)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global RNG is left alone
