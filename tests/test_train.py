import copy
import math

import pytest
import torch

from weak_to_strong.batching import Examples, pad_batch
from weak_to_strong.loss import LOSSES, make_loss
from weak_to_strong.model import load_model, load_tokenizer
from weak_to_strong.models import get_model_spec
from weak_to_strong.planner import EqualMinibatches
from weak_to_strong.train import (Optimization, TrainSettings, count_steps, make_optimizer, make_scheduler,
                                  plan_batches, train_model, train_step)
from weak_to_strong.logger import NullLogger


class ListLogger(NullLogger):
    """Keeps every record in the list it is given."""

    def __init__(self, records: list):
        self.records = records

    def log(self, record):
        self.records.append(record)


TEXTS = [
    "the film was good", "not bad", "the plot was not great and the ending was dull", "fun", "a lovely cast",
    "the music is very poor", "it was not boring at all in the end", "solid", "the camera was messy",
    "quite charming", "the story was not fun", "bland script", "this was superb", "the cast was weak",
    "our actor was brilliant and moving", "not tedious",
]


@pytest.fixture(scope="module")
def setup():
    spec = get_model_spec("toy-small")
    tokenizer = load_tokenizer(spec)
    torch.manual_seed(0)
    labels = torch.rand(len(TEXTS), 1)
    examples = Examples(tokenizer(TEXTS)["input_ids"], torch.cat([1 - labels, labels], dim=1))
    model = load_model(spec, torch.device("cpu"))
    torch.nn.init.normal_(model.score.weight, std=0.5)  # non-zero head: logconf's threshold then matters
    return tokenizer, examples, model


STEPS = (torch.arange(0, 8), torch.arange(8, 16), torch.arange(4, 12))


def params_after_steps(model, examples, loss_name, minibatch_size, pad_id):
    """Three optimizer steps with one loss object, so a loss's state (logconf_buffer) carries across them."""
    model = copy.deepcopy(model)
    model.eval()
    # SGD: the update is linear in the gradient. Adam's first step is ~lr * sign(grad), which flips on
    # float noise for parameters whose true gradient is zero (attention key biases).
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    optimization = Optimization(optimizer, make_scheduler(optimizer, "constant", 10))
    planner = EqualMinibatches(examples, pad_id, minibatch_size)
    loss = make_loss(loss_name)
    for step, batch in enumerate(STEPS):
        train_step(model, batch, loss, optimization, planner, step_frac=step / len(STEPS), device=torch.device("cpu"))
    return {k: v.detach().clone() for k, v in model.named_parameters()}, loss


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_minibatched_steps_equal_full_batch_steps(setup, loss_name):
    tokenizer, examples, model = setup
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    full, full_loss = params_after_steps(model, examples, loss_name, len(STEPS[0]), tokenizer.pad_token_id)
    mini, mini_loss = params_after_steps(model, examples, loss_name, 2, tokenizer.pad_token_id)
    assert any(not torch.equal(before[k], full[k]) for k in full), "the steps changed nothing"
    for k in full:
        torch.testing.assert_close(mini[k], full[k], rtol=1e-4, atol=1e-6, msg=f"{loss_name}: {k} differs")
    if loss_name == "logconf_buffer":  # its buffer ends holding the same three batches' predictions
        assert [len(s) for s in mini_loss.history] == [len(s) for s in full_loss.history] == [8, 8, 8]
        for a, b in zip(mini_loss.history, full_loss.history):
            torch.testing.assert_close(a.sort(dim=0).values, b.sort(dim=0).values, rtol=1e-4, atol=1e-6)


def test_cosine_schedule_reaches_zero_at_the_last_step():
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(1))], "adam", 1.0)
    scheduler = make_scheduler(optimizer, "cosine_anneal", 4)
    lrs = []
    for _ in range(4):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1.0, 0.5 * (1 + 2**-0.5), 0.5, 0.5 * (1 - 2**-0.5)])
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_adafactor_comes_from_transformers_and_bad_names_raise():
    params = [torch.nn.Parameter(torch.zeros(2, 2))]
    assert type(make_optimizer(params, "adafactor", 1e-3)).__module__.startswith("transformers")
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer(params, "sgd", 1e-3)
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'"):
        make_scheduler(make_optimizer(params, "adam", 1e-3), "linear", 10)


def gradients(shape, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(steps)]


def test_adam_is_torchs_default_adam_as_in_the_reference():
    """The reference: torch.optim.Adam(model.parameters(), lr=lr), i.e. betas (0.9, 0.999), eps 1e-8."""
    start = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    ours, ref = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizer, reference = make_optimizer([ours], "adam", 1e-2), torch.optim.Adam([ref], lr=1e-2)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    for grad in gradients(start.shape, 5):
        for p, opt in ((ours, optimizer), (ref, reference)):
            p.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-6, atol=1e-7)


def rms(t: torch.Tensor) -> float:
    return float(t.norm(2) / t.numel() ** 0.5)


def reference_adafactor(start: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    """One parameter under the reference's torch_optimizer.Adafactor(params, lr=lr), written from its code.

    Its defaults: relative_step=True, scale_parameter=True, warmup_init=False, eps2=(1e-30, 1e-3),
    decay_rate -0.8, clip_threshold 1, no first moment; `lr` is never read.
    """
    p = start.clone()
    factored = p.dim() >= 2
    row, col, sq = torch.zeros(p.shape[:-1]), torch.zeros(p.shape[:-2] + p.shape[-1:]), torch.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        lr = min(1e-2, 1 / math.sqrt(t)) * max(1e-3, rms(p))
        beta2t = 1.0 - t ** -0.8
        update = g ** 2 + 1e-30
        if factored:
            row = beta2t * row + (1 - beta2t) * update.mean(dim=-1)
            col = beta2t * col + (1 - beta2t) * update.mean(dim=-2)
            update = (row / row.mean(dim=-1)).rsqrt().unsqueeze(-1) * col.unsqueeze(-2).rsqrt() * g
        else:
            sq = beta2t * sq + (1 - beta2t) * update
            update = sq.rsqrt() * g
        update = update / max(1.0, rms(update))
        p = p - lr * update
    return p


@pytest.mark.parametrize("schedule", ["cosine_anneal", "constant"])
def test_adafactor_steps_as_the_reference_whatever_the_lr_and_schedule(schedule):
    gen = torch.Generator().manual_seed(2)
    starts = [2.0 * torch.randn(4, 3, generator=gen), torch.zeros(4)]  # a weight (factored), a zero bias
    params = [torch.nn.Parameter(s.clone()) for s in starts]
    optimizer = make_optimizer(params, "adafactor", 1e-5)
    scheduler = make_scheduler(optimizer, schedule, 2)  # a cosine over 2 steps would zero an lr by step 3
    grads = [gradients(s.shape, 3, seed=i) for i, s in enumerate(starts)]
    lrs = []
    for step in range(3):
        for p, g in zip(params, grads):
            p.grad = g[step].clone()
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs == [1e-2] * 3  # the relative step size min(1e-2, 1/sqrt(t)), before parameter scaling
    for p, start, g in zip(params, starts, grads):
        torch.testing.assert_close(p.detach(), reference_adafactor(start, g), rtol=1e-5, atol=1e-9)
    # The first step's size: 1e-2 x the parameter's RMS (floored at 1e-3); the bias's update is ~sign(grad).
    one = torch.nn.Parameter(starts[0][0].clone())
    optimizer = make_optimizer([one], "adafactor", 1e-5)
    one.grad = grads[0][0][0].clone()
    optimizer.step()
    torch.testing.assert_close((starts[0][0] - one.detach()).abs(), torch.full((3,), 1e-2 * rms(starts[0][0])))


def test_adafactor_trains_through_train_model(setup):
    tokenizer, examples, model = setup
    records = []
    trained = copy.deepcopy(model)
    settings = TrainSettings(batch_size=8, minibatch_size=4, epochs=1, lr=1e-5, optim="adafactor")
    train_model(trained, examples, make_loss("xent"), settings, torch.device("cpu"), tokenizer.pad_token_id,
                ListLogger(records))
    assert [r["lr"] for r in records] == [1e-2, 1e-2]
    # A step of ~1e-2 x RMS: far more than lr=1e-5 would move the head.
    moved = (trained.score.weight - model.score.weight).abs().max()
    assert moved > 1e-3 * model.score.weight.abs().max()


def test_optimization_steps_optimizer_and_schedule_and_clears_the_gradients():
    w = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([w], lr=1.0)
    optimization = Optimization(optimizer, make_scheduler(optimizer, "cosine_anneal", 2))
    lrs = []
    for _ in range(2):
        lrs.append(optimization.lr)
        optimization.backward((w * torch.tensor([1.0, 2.0])).sum())
        optimization.backward(w.sum())  # minibatches accumulate until the step
        optimization.step()
        assert w.grad is None
    assert lrs == [1.0, 0.5]
    assert w.tolist() == [-1.5 * 2, -1.5 * 3]  # gradient [2, 3] at lr 1, then at lr 0.5


def test_sparse_embedding_gradients_are_switched_back_when_training_raises(setup):
    tokenizer, examples, model = setup
    model = copy.deepcopy(model)
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    seen = []

    class FailingLoss(type(make_loss("xent"))):
        def __call__(self, *args):
            seen.append([m.sparse for m in embeddings])
            if len(seen) == 3:
                raise RuntimeError("out of memory, say")
            return super().__call__(*args)

    settings = TrainSettings(batch_size=8, minibatch_size=4, epochs=1, lr=1e-3)
    with pytest.raises(RuntimeError, match="out of memory, say"):
        train_model(model, examples, FailingLoss(), settings, torch.device("cpu"), tokenizer.pad_token_id,
                    NullLogger())
    assert seen == [[True, True]] * 3  # on CPU, token and position tables trained with sparse gradients
    assert not any(m.sparse for m in embeddings)
    with pytest.raises(RuntimeError, match="raised inside"):
        with Optimization.for_run(model, settings, 1, torch.device("cpu")) as optimization:
            assert optimization.sparse_embeddings == embeddings and all(m.sparse for m in embeddings)
            raise RuntimeError("raised inside")
    assert not any(m.sparse for m in embeddings)


def test_epochs_are_chained_and_cut_into_full_batches_as_in_the_reference():
    # The reference: nsteps = len(ds) * epochs // batch_size over the epochs chained.
    batches = plan_batches(100, 32, 2, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [32] * 6
    gen = torch.Generator().manual_seed(0)
    epochs = torch.cat([torch.randperm(100, generator=gen), torch.randperm(100, generator=gen)])
    assert torch.equal(torch.cat(batches), epochs[:192])  # each epoch its own permutation, as before
    assert count_steps(100, 32, 2) == 6 and count_steps(31, 32, 2) == 1
    with pytest.raises(ValueError, match="make no full batch of --batch_size=32"):
        count_steps(10, 32, 3)


def test_train_model_never_steps_on_a_partial_batch(setup):
    tokenizer, examples, model = setup
    seen = []

    class Recording(type(make_loss("logconf"))):
        def batch_stats(self, logits, labels):
            seen.append(len(labels))
            return super().batch_stats(logits, labels)

    records = []
    settings = TrainSettings(batch_size=6, minibatch_size=2, epochs=2, lr=1e-3)
    train_model(copy.deepcopy(model), examples, Recording(), settings, torch.device("cpu"), tokenizer.pad_token_id,
                ListLogger(records))
    assert seen == [6] * 5  # 16 documents x 2 epochs // 6; logconf's threshold always over a full batch
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["epoch"] for r in records] == [0, 0, 0, 1, 1]  # the epoch of each batch's first document
    with pytest.raises(ValueError, match="16 training documents x --epochs=1 make no full batch"):
        train_model(copy.deepcopy(model), examples, make_loss("xent"), TrainSettings(batch_size=17, minibatch_size=1,
                    epochs=1, lr=1e-3), torch.device("cpu"), tokenizer.pad_token_id, NullLogger())


def test_pad_batch_right_pads_with_mask():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_train_model_learns_and_is_deterministic(setup):
    tokenizer, examples, model = setup
    settings = TrainSettings(batch_size=8, minibatch_size=4, epochs=2, lr=1e-2, seed=3)

    def trained():
        m = copy.deepcopy(model)
        train_model(m, examples, make_loss("xent"), settings, torch.device("cpu"), tokenizer.pad_token_id,
                    NullLogger())
        return m

    a, b = trained(), trained()
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), model.parameters()))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_eval_every_logs_intermediate_evals(setup):
    tokenizer, examples, model = setup
    records = []
    settings = TrainSettings(batch_size=4, minibatch_size=4, epochs=1, lr=1e-3, eval_every=2)
    train_model(copy.deepcopy(model), examples, make_loss("xent"), settings, torch.device("cpu"),
                tokenizer.pad_token_id, ListLogger(records), evaluate=lambda: {"eval_accuracy": 0.5})
    assert [r["step"] for r in records if "eval_accuracy" in r] == [2]  # steps 2 of 4; the final eval is the caller's
    assert len([r for r in records if "loss" in r]) == 4


def test_after_epoch_runs_once_after_the_last_step_of_every_epoch(setup):
    """16 documents, batches of 6: steps start in epochs 0, 0, 0, 1, 1 (the third spans both); 5 steps."""
    tokenizer, examples, model = setup
    seen = []

    class StepLogger(NullLogger):
        def log(self, record):
            seen.append(("step", record["step"]))

    settings = TrainSettings(batch_size=6, minibatch_size=6, epochs=2, lr=1e-3)
    train_model(copy.deepcopy(model), examples, make_loss("xent"), settings, torch.device("cpu"),
                tokenizer.pad_token_id, StepLogger(), after_epoch=lambda epoch: seen.append(("epoch", epoch)))
    assert len(examples) == 16
    assert seen == [("step", 1), ("step", 2), ("step", 3), ("epoch", 0), ("step", 4), ("step", 5), ("epoch", 1)]
