import math

import pytest
import torch

from weak_to_strong.loss import LOSSES, LogconfLoss, ProductLoss, XentLoss, make_loss


def probs_of(logits):
    exps = [math.exp(x) for x in logits]
    return [e / sum(exps) for e in exps]


def test_xent_matches_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([[0.25, 0.75], [1.0, 0.0]])
    p = probs_of([2.0, 0.0])
    expected = (-(0.25 * math.log(p[0]) + 0.75 * math.log(p[1])) + math.log(2)) / 2
    assert XentLoss()(logits, labels, step_frac=0.5).item() == pytest.approx(expected, rel=1e-6)


def test_product_matches_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([[0.25, 0.75]])
    p = probs_of([2.0, 0.0])
    t = [0.25 * p[0], 0.75 * p[1]]
    t = [x / sum(t) for x in t]
    expected = -(t[0] * math.log(p[0]) + t[1] * math.log(p[1]))
    assert ProductLoss()(logits, labels, step_frac=0.0).item() == pytest.approx(expected, rel=1e-6)


def test_product_with_alpha_zero_is_self_distillation():
    logits = torch.tensor([[1.0, -1.0]])
    labels = torch.tensor([[0.0, 1.0]])
    p = probs_of([1.0, -1.0])
    entropy = -sum(x * math.log(x) for x in p)
    assert ProductLoss(alpha=0.0)(logits, labels, 0.0).item() == pytest.approx(entropy, rel=1e-6)


def logconf_case():
    # p0 = 0.9, 0.7, 0.4, 0.2 ; half the weak labels are class 1 -> threshold = median(p0) = 0.55
    p0 = torch.tensor([0.9, 0.7, 0.4, 0.2])
    logits = torch.stack([torch.log(p0), torch.log(1 - p0)], dim=1)
    labels = torch.tensor([[0.6, 0.4], [0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])
    return p0.tolist(), logits, labels


def expected_logconf(p0, labels, w):
    hardened = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    total = 0.0
    for i, p in enumerate(p0):
        target = [(1 - w) * labels[i][c] + w * hardened[i][c] for c in range(2)]
        total += -(target[0] * math.log(p) + target[1] * math.log(1 - p))
    return total / len(p0)


@pytest.mark.parametrize("step_frac, weight", [(0.0, 0.0), (0.05, 0.25), (0.1, 0.5), (0.9, 0.5)])
def test_logconf_ramps_aux_weight_and_hardens_at_the_balance_quantile(step_frac, weight):
    p0, logits, labels = logconf_case()
    loss = LogconfLoss(aux_coef=0.5, warmup_frac=0.1)
    assert loss.aux_weight(step_frac) == pytest.approx(weight)
    assert loss.batch_stats(logits, labels)["threshold"].item() == pytest.approx(0.55, rel=1e-5)
    expected = expected_logconf(p0, labels.tolist(), weight)
    assert loss(logits, labels, step_frac).item() == pytest.approx(expected, rel=1e-5)


def test_logconf_uses_given_batch_stats_over_its_own():
    _, logits, labels = logconf_case()
    loss = LogconfLoss()
    # A threshold above every p0 hardens all rows to class 1, unlike the rows' own median.
    forced = loss(logits, labels, 0.5, {"threshold": torch.tensor(0.95)})
    assert forced.item() != pytest.approx(loss(logits, labels, 0.5).item())


def test_registry_and_unknown_loss():
    assert set(LOSSES) == {"xent", "product", "logconf"}
    assert isinstance(make_loss("logconf"), LogconfLoss)
    with pytest.raises(ValueError, match="unknown loss 'nope'.*xent, product, logconf"):
        make_loss("nope")
