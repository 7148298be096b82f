import math

import pytest
import torch

from weak_to_strong.loss import (LOSSES, AdaptconfLoss, ConfidentLoss, KLLoss, LogconfBalancedLoss, LogconfBufferLoss,
                                  LogconfLoss, ProductLoss, WindowLoss, XentLoss, check_train_size, make_loss)


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



def logits_for(p0):
    """Logits whose softmax gives P(class 0) = p0 per row."""
    p0 = torch.tensor(p0)
    return torch.stack([torch.log(p0), torch.log(1 - p0)], dim=1)


def labels_for(y1):
    y1 = torch.tensor(y1)
    return torch.stack([1 - y1, y1], dim=1)


def row_xent(p0, y1):
    return -((1 - y1) * math.log(p0) + y1 * math.log(1 - p0))


def loss_and_grad(loss, logits, labels, step_frac=0.5, stats=None):
    x = logits.clone().requires_grad_(True)
    value = loss(x, labels, step_frac, stats)
    value.backward()
    return value.detach(), x.grad


# ---------------------------------------------------------------- kl

def test_kl_is_xent_minus_the_label_entropy_with_the_same_gradient():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([[0.25, 0.75], [1.0, 0.0]])  # a one-hot row: 0 log 0 = 0
    p = probs_of([2.0, 0.0])
    expected = (0.25 * math.log(0.25 / p[0]) + 0.75 * math.log(0.75 / p[1]) + math.log(2)) / 2
    kl, kl_grad = loss_and_grad(KLLoss(), logits, labels)
    xent, xent_grad = loss_and_grad(XentLoss(), logits, labels)
    assert kl.item() == pytest.approx(expected, rel=1e-6)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / 2
    assert xent.item() - kl.item() == pytest.approx(entropy, rel=1e-5)
    torch.testing.assert_close(kl_grad, xent_grad)
    assert KLLoss()(torch.log(labels.clamp_min(1e-30)), labels, 0.5).item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- window

def test_window_trains_only_where_the_student_is_unsure_divided_by_all_rows():
    p0, y1 = [0.9, 0.6, 0.45, 0.2], [0.3, 0.8, 0.4, 0.9]  # max prob 0.9, 0.6, 0.55, 0.8: rows 1 and 2 are < 0.65
    value, grad = loss_and_grad(WindowLoss(), logits_for(p0), labels_for(y1))
    assert WindowLoss().radius == 0.15
    assert value.item() == pytest.approx((row_xent(0.6, 0.8) + row_xent(0.45, 0.4)) / 4, rel=1e-5)
    assert grad[0].abs().sum() == 0 and grad[3].abs().sum() == 0 and grad[1].abs().sum() > 0


def test_window_with_no_unsure_row_is_zero_with_a_zero_gradient():
    value, grad = loss_and_grad(WindowLoss(), logits_for([0.9, 0.05]), labels_for([1.0, 0.0]))
    assert value.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))


# ---------------------------------------------------------------- confident

def test_confident_keeps_the_more_confident_half_of_the_weak_labels():
    p0, y1 = [0.7, 0.4, 0.3, 0.6], [0.1, 0.4, 0.8, 0.45]  # weak confidence 0.9, 0.6, 0.8, 0.55: median 0.7
    loss = ConfidentLoss()
    stats = loss.batch_stats(logits_for(p0), labels_for(y1))
    assert stats["threshold"].item() == pytest.approx(0.7) and stats["kept_share"].item() == 0.5
    value, grad = loss_and_grad(loss, logits_for(p0), labels_for(y1))
    assert value.item() == pytest.approx((row_xent(0.7, 0.1) + row_xent(0.3, 0.8)) / 2, rel=1e-5)
    assert grad[1].abs().sum() == 0 and grad[3].abs().sum() == 0


def test_confident_with_nothing_kept_is_zero_not_nan():
    stats = {"threshold": torch.tensor(1.5), "kept_share": torch.tensor(0.0)}
    value, grad = loss_and_grad(ConfidentLoss(), logits_for([0.7, 0.4]), labels_for([0.1, 0.4]), stats=stats)
    assert value.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))


# ---------------------------------------------------------------- adaptconf

def test_adaptconf_mixes_weak_label_and_own_hard_label_by_the_two_cross_entropies():
    # Row 0: the student (0.8) agrees with the weak label's class -> beta = 1/2.
    # Row 1: the student says class 0 at 0.9, the weak label class 1 -> beta = e^(a/T) / (e^(a/T) + e^(b/T)).
    p0, y1 = [0.8, 0.9], [0.3, 0.8]
    a, b = -math.log(0.9), -math.log(0.1)
    beta = math.exp(a / 0.5) / (math.exp(a / 0.5) + math.exp(b / 0.5))
    expected = (0.5 * row_xent(0.8, 0.3) + 0.5 * -math.log(0.8)
                + (1 - beta) * row_xent(0.9, 0.8) + beta * a) / 2
    assert AdaptconfLoss().temperature == 0.5
    assert AdaptconfLoss()(logits_for(p0), labels_for(y1), 0.5).item() == pytest.approx(expected, rel=1e-5)


def test_adaptconf_does_not_differentiate_its_weights():
    p0, y1 = [0.9], [0.8]
    _, grad = loss_and_grad(AdaptconfLoss(), logits_for(p0), labels_for(y1))
    a, b = -math.log(0.9), -math.log(0.1)
    beta = 1 / (1 + math.exp((b - a) / 0.5))
    # d/dz of (1 - beta) xent(y) + beta xent(onehot 0) with beta fixed: p - ((1 - beta) y + beta e_0)
    target0 = (1 - beta) * 0.2 + beta
    torch.testing.assert_close(grad, torch.tensor([[0.9 - target0, 0.1 - (1 - target0)]]), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- logconf_balanced

def test_logconf_balanced_recentres_the_weak_labels_and_hardens_at_the_median():
    p0 = [0.9, 0.7, 0.4, 0.2]
    y1 = [0.9, 0.8, 0.6, 0.7]  # a weak model leaning to class 1
    logit = [math.log(y / (1 - y)) for y in y1]
    shift = sum(logit) / 4
    balanced = [1 / (1 + math.exp(-(v - shift))) for v in logit]
    hardened_class1 = [0.0, 0.0, 1.0, 1.0]  # median p0 = 0.55, whatever the labels' balance
    w = 0.5
    expected = sum(row_xent(p, (1 - w) * b + w * h) for p, b, h in zip(p0, balanced, hardened_class1)) / 4
    loss = LogconfBalancedLoss()
    stats = loss.batch_stats(logits_for(p0), labels_for(y1))
    assert stats["threshold"].item() == pytest.approx(0.55, rel=1e-5)
    assert loss(logits_for(p0), labels_for(y1), 0.5).item() == pytest.approx(expected, rel=1e-5)
    # logconf keeps the lean instead: q = mean y1 = 0.75, so three rows of four harden to class 1.
    assert LogconfLoss().batch_stats(logits_for(p0), labels_for(y1))["threshold"].item() == pytest.approx(0.75)


# ---------------------------------------------------------------- logconf_buffer

def test_logconf_buffer_thresholds_over_whole_recent_batches():
    loss = LogconfBufferLoss(buffer_size=4)
    steps = [([0.9, 0.7], [0.0, 1.0], 0.8),  # the batch alone: median
             ([0.2, 0.4], [1.0, 1.0], 0.75),  # both batches: q = 3/4 of [0.2, 0.4, 0.7, 0.9]
             ([0.5, 0.6, 0.3], [0.0, 0.0, 0.0], 0.3),  # 3 + 2 rows > 4: this batch alone, q = 0
             ([0.8], [1.0], 0.45)]  # with the 3 before: q = 1/4 of [0.3, 0.5, 0.6, 0.8]
    for p0, y1, threshold in steps:
        assert loss.batch_stats(logits_for(p0), labels_for(y1))["threshold"].item() == pytest.approx(threshold)
    assert [len(s) for s in loss.history] == [3, 1]


def test_logconf_buffer_loss_is_logconf_at_the_buffer_threshold_and_logconf_when_no_larger_than_a_batch():
    buffered = LogconfBufferLoss(buffer_size=4)
    buffered(logits_for([0.9, 0.7]), labels_for([0.0, 1.0]), 0.0)  # a first step fills the buffer
    logits, labels = logits_for([0.2, 0.4]), labels_for([1.0, 1.0])
    at_buffer_threshold = LogconfLoss()(logits, labels, 0.5, {"threshold": torch.tensor(0.75)})
    assert buffered(logits, labels, 0.5).item() == pytest.approx(at_buffer_threshold.item(), rel=1e-6)
    small, plain = LogconfBufferLoss(buffer_size=4), LogconfLoss()
    _, logits, labels = logconf_case()
    for step in range(3):
        assert small(logits + step, labels, 0.5).item() == pytest.approx(plain(logits + step, labels, 0.5).item())


def test_a_rolling_buffer_larger_than_the_data_is_one_line_naming_the_value():
    with pytest.raises(ValueError, match=r"^--loss=logconf_buffer: its rolling buffer of 128 predictions is larger "
                                         r"than the 100 training documents"):
        check_train_size("logconf_buffer", 100)
    check_train_size("logconf_buffer", 128)
    for name in LOSSES:
        if name != "logconf_buffer":
            check_train_size(name, 1)


# ---------------------------------------------------------------- every loss

def batches(seed: int):
    """Steps of different sizes (whole-batch windows must not depend on them), with spread-out logits."""
    generator = torch.Generator().manual_seed(seed)
    for n in (48, 48, 40, 48):
        logits = 2 * torch.randn(n, 2, generator=generator)
        yield logits, labels_for(torch.rand(n, generator=generator).tolist()), generator


def minibatched(loss, logits, labels, step_frac, generator, size=7):
    """As train_step: batch statistics once over the gathered rows, which come in another order (packing and
    ranks deal rows out), then every minibatch's mean loss weighted by its share of the batch."""
    x = logits.clone().requires_grad_(True)
    parts = torch.randperm(len(x), generator=generator).split(size)
    stats = loss.batch_stats(torch.cat([x.detach()[p] for p in parts]), torch.cat([labels[p] for p in parts])) \
        if loss.needs_batch_stats else None
    total = sum(loss(x[p], labels[p], step_frac, stats) * (len(p) / len(x)) for p in parts)
    total.backward()
    return total.detach(), x.grad


@pytest.mark.parametrize("name", list(LOSSES))
def test_minibatched_equals_full_batch_over_several_steps(name):
    full_loss, mini_loss = make_loss(name), make_loss(name)
    for step, (logits, labels, generator) in enumerate(batches(0)):
        full, full_grad = loss_and_grad(full_loss, logits, labels, step_frac=step / 4)
        mini, mini_grad = minibatched(mini_loss, logits, labels, step / 4, generator)
        assert full.item() == pytest.approx(mini.item(), rel=1e-5), f"step {step}"
        torch.testing.assert_close(mini_grad, full_grad, rtol=1e-5, atol=1e-7, msg=f"step {step}")
    if name == "logconf_buffer":  # the state carried to the next step is the same too
        assert [len(s) for s in full_loss.history] == [len(s) for s in mini_loss.history] == [40, 48]
        for full_rows, mini_rows in zip(full_loss.history, mini_loss.history):
            torch.testing.assert_close(full_rows.sort(dim=0).values, mini_rows.sort(dim=0).values)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_finite_and_differentiable_on_extreme_labels(name):
    logits = torch.tensor([[30.0, -30.0], [0.0, 0.0], [-5.0, 5.0], [1.0, 1.5]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    value, grad = loss_and_grad(make_loss(name), logits, labels)
    assert torch.isfinite(value) and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_registry_and_unknown_loss():
    assert list(LOSSES) == ["xent", "product", "logconf", "logconf_buffer", "logconf_balanced", "window",
                            "confident", "adaptconf", "kl"]
    assert isinstance(make_loss("logconf"), LogconfLoss)
    with pytest.raises(ValueError, match="^unknown loss 'nope'; choose one of: xent, product, logconf, "
                                         "logconf_buffer, logconf_balanced, window, confident, adaptconf, kl$"):
        make_loss("nope")
