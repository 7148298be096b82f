"""Throughput work, checked for correctness only: padding, minibatch planning, precision, caches, model levers."""

import copy
import itertools

import pytest
import torch
from datasets import Dataset

from weak_to_strong import token_cache
from weak_to_strong.batching import Examples, chunk_by_tokens, plan_minibatches
from weak_to_strong.config import RunConfig
from weak_to_strong.eval import predict_probs
from weak_to_strong.logger import NullLogger
from weak_to_strong.loss import make_loss
from weak_to_strong.model import TransformerWithHead, load_model, load_tokenizer
from weak_to_strong.models import get_model_spec
from weak_to_strong.precision import resolve_precision
from weak_to_strong.results import config_name
from weak_to_strong.planner import EqualMinibatches, LengthGroupedMinibatches, estimate_minibatch_overhead
from weak_to_strong.train import (Optimization, TrainSettings, make_optimizer, make_scheduler, set_train_mode,
                                  train_model, train_step, use_sparse_embedding_grads)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def toy():
    spec = get_model_spec("toy-small")
    tokenizer = load_tokenizer(spec)
    torch.manual_seed(0)
    model = load_model(spec, CPU)
    torch.nn.init.normal_(model.score.weight, std=0.5)
    return tokenizer, model


def random_examples(n: int, min_len: int = 2, max_len: int = 12, vocab: int = 500, seed: int = 0) -> Examples:
    gen = torch.Generator().manual_seed(seed)
    ids = [torch.randint(1, vocab, (int(torch.randint(min_len, max_len + 1, (1,), generator=gen)),),
                         generator=gen).tolist() for _ in range(n)]
    p = torch.rand(n, 1, generator=gen)
    return Examples(ids, torch.cat([1 - p, p], dim=1))


# ---------------------------------------------------------------- padding and storage

def test_padded_minibatch_matches_the_documents():
    examples = Examples([[5, 6, 7], [8], [9, 10]], torch.zeros(3, 2))
    ids, mask = examples.padded(torch.tensor([2, 0, 1]), pad_id=0)
    assert ids.tolist() == [[9, 10, 0], [5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0]]


def test_examples_from_a_filtered_and_reordered_dataset():
    ds = Dataset.from_dict({"input_ids": [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10]],
                            "soft_label": [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.25, 0.75]]})
    view = ds.filter(lambda b: [len(i) > 1 for i in b["input_ids"]], batched=True).select([2, 0, 1])
    examples = Examples.from_dataset(view)
    assert examples.input_ids == [[7, 8, 9, 10], [1, 2, 3], [5, 6]]
    assert examples.lengths.tolist() == [4, 3, 2]
    assert examples.labels.tolist() == [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]


# ---------------------------------------------------------------- length-grouped minibatches

def brute_force_cost(lengths: list[int], budget: int, overhead: int) -> float:
    """The cheapest split of sorted lengths into consecutive groups, by trying every split."""
    lengths, n, best = sorted(lengths), len(lengths), float("inf")
    for cuts in itertools.product([0, 1], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        groups = [lengths[a:b] for a, b in zip(bounds, bounds[1:])]
        if all(len(g) * g[-1] <= budget for g in groups):
            best = min(best, sum(len(g) * g[-1] + overhead for g in groups))
    return best


@pytest.mark.parametrize("budget,overhead", [(10**6, 0), (10**6, 5), (10**6, 10**4), (24, 3)])
def test_planned_minibatches_are_an_optimal_partition_of_the_batch(budget, overhead):
    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 12, (40,), generator=gen)
    batch = torch.randperm(40, generator=gen)[:9]
    plan = plan_minibatches(batch, lengths, budget, overhead)
    assert sorted(torch.cat(plan).tolist()) == sorted(batch.tolist())  # every example once, no other
    assert all(len(mb) * int(lengths[mb].max()) <= budget for mb in plan)
    cost = sum(len(mb) * int(lengths[mb].max()) + overhead for mb in plan)
    assert cost == brute_force_cost(lengths[batch].tolist(), budget, overhead)


def test_length_grouped_epoch_sees_every_example_once_in_the_shuffled_batches():
    """Through the real trainer: batches are the plain shuffled draw; only their inner split follows length.

    Full batches only, as in the reference: 50 documents make 6 batches of 8; the draw's last 2 are not trained on.
    """
    n, batch_size, seed = 50, 8, 5
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 30, (n,), generator=gen)
    # Each document starts with its own index, so the model's inputs say which example they are.
    ids = [[i] + [7] * (int(length) - 1) for i, length in enumerate(lengths)]
    examples = Examples(ids, torch.tensor([[0.5, 0.5]] * n))

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2))
            self.calls = []

        def forward(self, input_ids, mask, right_padded=False):
            self.calls.append((input_ids[:, 0].tolist(), mask.sum(1).tolist()))
            return self.w.expand(len(input_ids), 2)

    model = Recorder()
    settings = TrainSettings(batch_size=batch_size, minibatch_size=None, epochs=1, lr=0.1, seed=seed,
                             minibatch_token_budget=64)
    train_model(model, examples, make_loss("xent"), settings, CPU, 0, NullLogger())
    draw = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    seen = [i for rows, _ in model.calls for i in rows]
    assert sorted(seen) == sorted(draw[: n // batch_size * batch_size].tolist())  # each once, but for the leftovers
    assert len(model.calls) > n // batch_size  # the budget forced several minibatches per batch
    for rows, real in model.calls:
        assert real == lengths[rows].tolist() and real == sorted(real)  # length-sorted, right lengths
        assert len(rows) * max(real) <= 64
    # The plain shuffled draw: a seeded permutation cut into consecutive batches.
    expected = draw.split(batch_size)[: n // batch_size]
    it = iter(model.calls)
    for batch in expected:  # minibatches arrive batch by batch, each batch exactly the shuffled draw
        got = []
        while len(got) < len(batch):
            got += next(it)[0]
        assert sorted(got) == sorted(batch.tolist())


def test_planned_minibatch_step_equals_full_batch_step(toy):
    tokenizer, model = toy
    examples = random_examples(16, vocab=len(tokenizer))

    def step(planner):
        m = copy.deepcopy(model)
        optimizer = torch.optim.SGD(m.parameters(), lr=1.0)
        train_step(m, torch.arange(16), make_loss("logconf"),
                   Optimization(optimizer, make_scheduler(optimizer, "constant", 1)), planner, 0.5, CPU)
        return dict(m.named_parameters())

    pad_id = tokenizer.pad_token_id
    full = step(EqualMinibatches(examples, pad_id, 16))
    planned = step(LengthGroupedMinibatches(examples, pad_id, token_budget=40, overhead_tokens=0))
    for k in full:
        torch.testing.assert_close(planned[k], full[k], rtol=1e-4, atol=1e-6)


def test_sparse_embedding_gradients_give_the_dense_update_and_are_switched_back(toy):
    tokenizer, model = toy
    examples = random_examples(16, vocab=len(tokenizer))

    def step(sparse):
        m = copy.deepcopy(model)
        switched = use_sparse_embedding_grads(m, CPU) if sparse else []
        assert len(switched) == (2 if sparse else 0)  # token and position tables
        optimizer = torch.optim.SGD(m.parameters(), lr=1.0)
        optimization = Optimization(optimizer, make_scheduler(optimizer, "constant", 1), sparse_embeddings=switched)
        planner = EqualMinibatches(examples, tokenizer.pad_token_id, 4)
        train_step(m, torch.arange(16), make_loss("xent"), optimization, planner, 0.5, CPU)
        optimization.close()
        assert not any(module.sparse for module in switched)
        assert all(p.grad is None for p in m.parameters())
        return dict(m.named_parameters())

    dense, sparse = step(False), step(True)
    assert not torch.equal(dense["backbone.wte.weight"], model.backbone.wte.weight)
    for k in dense:
        torch.testing.assert_close(sparse[k], dense[k], rtol=1e-5, atol=1e-7)

    trained = copy.deepcopy(model)
    settings = TrainSettings(batch_size=8, minibatch_size=4, epochs=1, lr=1e-3)
    train_model(trained, examples, make_loss("xent"), settings, CPU, tokenizer.pad_token_id, NullLogger())
    assert not any(m.sparse for m in trained.modules() if isinstance(m, torch.nn.Embedding))


def test_kept_embedding_gradient_tables_give_dense_adam_steps_and_stay_zeroed(toy):
    """Adam updates every row every step (its moments decay even where a row's gradient is zero): the
    sparse gradients gathered into kept tables must reproduce that exactly, step after step."""
    tokenizer, model = toy
    examples = random_examples(24, vocab=len(tokenizer))

    def steps(sparse):
        m = copy.deepcopy(model)
        use_sparse_embedding_grads(m, CPU) if sparse else None
        optimizer = make_optimizer(m.parameters(), "adam", 1e-2)
        optimization = Optimization(optimizer, make_scheduler(optimizer, "constant", 1))
        planner = LengthGroupedMinibatches(examples, tokenizer.pad_token_id, token_budget=32 * 1024,
                                           overhead_tokens=estimate_minibatch_overhead(m, CPU))
        for batch in torch.arange(24).split(8):
            train_step(m, batch, make_loss("xent"), optimization, planner, 0.5, CPU)
        tables = optimization.embedding_grads
        assert len(tables.tables) == (2 if sparse else 0)  # token and position tables
        assert all(not t.any() for t in tables.tables.values()) and not tables.rows  # zero between steps
        return dict(m.named_parameters())

    # Some token rows only the first batch uses: later steps move them by momentum alone.
    first, later = (set(itertools.chain.from_iterable(examples.input_ids[i] for i in b)) for b in (range(8), range(8, 24)))
    assert first - later
    dense, sparse = steps(False), steps(True)
    for k in dense:
        torch.testing.assert_close(sparse[k], dense[k], rtol=1e-5, atol=1e-6)


def test_eval_by_token_budget_gives_the_same_probabilities_in_order(toy):
    tokenizer, model = toy
    examples = random_examples(30, vocab=len(tokenizer))
    model.eval()
    by_count = predict_probs(model, examples, 30, CPU, tokenizer.pad_token_id)
    by_tokens = predict_probs(model, examples, 30, CPU, tokenizer.pad_token_id, token_budget=40)
    torch.testing.assert_close(by_tokens, by_count, rtol=1e-5, atol=1e-6)
    chunks = chunk_by_tokens(torch.argsort(examples.lengths, stable=True), examples.lengths, 40)
    assert len(chunks) > 1 and sorted(torch.cat(chunks).tolist()) == list(range(30))


# ---------------------------------------------------------------- precision

def test_precision_flag_validates_resolves_and_names_the_run():
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        RunConfig(precision="fp8")
    assert "prec=bf16" in config_name(RunConfig(precision="bf16"))
    assert config_name(RunConfig(precision="bf16")) != config_name(RunConfig(precision="fp32"))


@pytest.mark.parametrize("precision,dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16),
                                             ("fp32", torch.float32)])
def test_mixed_precision_training_runs_in_that_dtype_with_finite_losses(toy, precision, dtype):
    tokenizer, model = toy
    model = copy.deepcopy(model)
    examples = random_examples(16, vocab=len(tokenizer))
    seen_dtypes, losses = set(), []
    hook = model.backbone.h[0].mlp.c_fc.register_forward_hook(lambda m, i, out: seen_dtypes.add(out.dtype))

    class Losses(NullLogger):
        def log(self, record):
            losses.append(record["loss"])

    before = copy.deepcopy(model.state_dict())
    # 8 steps: fp16's loss scaler skips the first few, whose scaled gradients overflow.
    settings = TrainSettings(batch_size=8, minibatch_size=4, epochs=4, lr=1e-3, precision=precision)
    train_model(model, examples, make_loss("xent"), settings, CPU, tokenizer.pad_token_id, Losses())
    hook.remove()
    assert seen_dtypes == {dtype}
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fp16_scales_the_loss_so_small_gradients_survive():
    """A gradient of 1e-8 is zero in float16; scaled by the GradScaler it survives, and Adam moves."""

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, input_ids, mask, right_padded=False):
            return self.linear(torch.ones(len(input_ids), 4))

    class TinyLoss:
        needs_batch_stats = False

        def __call__(self, logits, labels, step_frac, stats=None):
            return 1e-8 * logits.float().sum()

    def weight_after(precision):
        torch.manual_seed(0)
        model = Tiny()
        before = model.linear.weight.detach().clone()
        settings = TrainSettings(batch_size=4, minibatch_size=4, epochs=1, lr=0.1, precision=precision)
        train_model(model, random_examples(4), TinyLoss(), settings, CPU, 0, NullLogger())
        return (model.linear.weight - before).abs().max().item()

    assert weight_after("fp32") > 0.01
    assert weight_after("fp16") > 0.01


def test_eval_restores_every_modules_mode(toy):
    tokenizer, _ = toy
    model = load_model(get_model_spec("toy-small"), CPU, gradient_checkpointing=True)
    set_train_mode(model, with_dropout=False)
    modes = [m.training for m in model.modules()]
    assert any(modes) and not all(modes)  # the checkpointing switches on, dropout off
    predict_probs(model, random_examples(4, vocab=len(tokenizer)), 4, CPU, tokenizer.pad_token_id)
    assert [m.training for m in model.modules()] == modes


# ---------------------------------------------------------------- tokenization cache

class CountingTokenize:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = token_cache.tokenize_dataset

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(token_cache, "tokenize_dataset", counted)
        monkeypatch.setattr(token_cache, "IN_MEMORY_CHARS", 0)  # every set through the on-disk cache


def test_small_sets_tokenized_in_memory_equal_the_cached_tokenization(tmp_path, monkeypatch, toy):
    tokenizer, _ = toy
    texts = ["the film was good", "not bad at all, and the plot was moving and the music was great", "dull", ""]
    ds = Dataset.from_dict({"txt": texts, "hard_label": [1, 1, 0, 1], "id": [10, 11, 12, 13]})
    in_memory = token_cache.tokenize_cached(ds, tokenizer, 8, tmp_path / "unused")
    assert not (tmp_path / "unused").exists()
    monkeypatch.setattr(token_cache, "IN_MEMORY_CHARS", 0)
    cached = token_cache.tokenize_cached(ds, tokenizer, 8, tmp_path / "cache")
    assert in_memory.to_dict() == cached.to_dict() and in_memory["id"] == [10, 12, 13]
    assert in_memory.features == cached.features


def test_tokenization_cache_is_reused_and_invalidated_by_tokenizer_or_max_ctx(tmp_path, monkeypatch, toy):
    tokenizer, _ = toy
    counter = CountingTokenize(monkeypatch)
    texts = ["the film was good", "not bad at all, and the plot was moving and the music was great", "dull"]
    ds = Dataset.from_dict({"txt": texts, "hard_label": [1, 1, 0], "id": [10, 11, 12]})
    cache = tmp_path / "cache"

    first = token_cache.tokenize_cached(ds, tokenizer, 8, cache)
    assert counter.calls == 1 and first["id"] == [10, 12]  # the long one is dropped at max_ctx=8
    assert first["input_ids"] == tokenizer([texts[0], texts[2]])["input_ids"]
    again = token_cache.tokenize_cached(ds, tokenizer, 8, cache)
    assert counter.calls == 1 and again.to_dict() == first.to_dict()

    tokenizer.save_pretrained(tmp_path / "copy")  # the same tokenizer from another path: still a hit
    token_cache.tokenize_cached(ds, load_tokenizer(get_model_spec(str(tmp_path / "copy"))), 8, cache)
    assert counter.calls == 1

    longer = token_cache.tokenize_cached(ds, tokenizer, 64, cache)
    assert counter.calls == 2 and longer["id"] == [10, 11, 12]

    other = copy.deepcopy(tokenizer)
    other.add_tokens(["film was"])
    changed = token_cache.tokenize_cached(ds, other, 8, cache)
    assert counter.calls == 3 and changed["input_ids"][0] != first["input_ids"][0]


def test_transfer_run_reuses_the_weak_runs_tokenization(tiny_flags, monkeypatch, tmp_path, toy):
    from weak_to_strong.pipeline import run_train_simple

    monkeypatch.setattr(token_cache, "default_cache_dir", lambda: tmp_path / "tokenized")  # empty, this test's own
    counter = CountingTokenize(monkeypatch)
    run_train_simple(RunConfig(**tiny_flags))
    assert counter.calls == 3  # train half, test, the half to label
    # toy-large shares toy-small's tokenizer: its transfer run tokenizes nothing anew.
    run_train_simple(RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small"}))
    assert counter.calls == 3


# ---------------------------------------------------------------- model levers

def test_gradient_checkpointing_recomputes_while_training_without_dropout(toy):
    tokenizer, _ = toy
    spec = get_model_spec("toy-small")
    examples = random_examples(8, vocab=len(tokenizer))

    def grads_and_block_calls(checkpointing):
        torch.manual_seed(0)
        model = load_model(spec, CPU, gradient_checkpointing=checkpointing)
        torch.nn.init.normal_(model.score.weight, std=0.5)
        calls = []
        # The layer's first module: hooks of the layer itself stay outside the checkpoint, and the recompute
        # stops once it has rebuilt the last saved tensor, before the layer's later modules return.
        model.backbone.h[0].ln_1.register_forward_hook(lambda *a: calls.append(torch.is_grad_enabled()))
        settings = TrainSettings(batch_size=8, minibatch_size=8, epochs=1, lr=0.0)
        train_model(model, examples, make_loss("xent"), settings, CPU, tokenizer.pad_token_id, NullLogger())
        dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        assert dropouts and not any(m.training for m in dropouts)
        return len(calls)

    assert grads_and_block_calls(False) == 1
    assert grads_and_block_calls(True) == 2  # the forward, and its recomputation in the backward pass


def test_model_is_backbone_and_head_only_with_fused_gelu(toy):
    from transformers.activations import GELUTanh, NewGELUActivation

    from weak_to_strong.model import TanhGELU, gelu_tanh_by_sigmoid

    tokenizer, model = toy
    names = [name for name, _ in model.named_parameters()]
    assert all(n.startswith("backbone.") or n == "score.weight" for n in names)
    assert not any("lm_head" in n for n in names)
    assert model.backbone.config._attn_implementation == "sdpa"
    acts = [m for m in model.modules() if isinstance(m, (GELUTanh, NewGELUActivation, TanhGELU))]
    assert acts and all(type(m) is TanhGELU for m in acts)
    x = (torch.randn(4096) * 4).requires_grad_(True)
    reference = NewGELUActivation()(x)
    torch.testing.assert_close(TanhGELU()(x), reference, rtol=1e-5, atol=1e-6)
    # The form torch.compile gets on CPU: same values and gradients.
    torch.testing.assert_close(gelu_tanh_by_sigmoid(x), reference, rtol=1e-5, atol=1e-6)
    grad_ref, = torch.autograd.grad(reference.sum(), x)
    grad_sig, = torch.autograd.grad(gelu_tanh_by_sigmoid(x).sum(), x)
    torch.testing.assert_close(grad_sig, grad_ref, rtol=1e-5, atol=1e-5)


def test_right_padded_causal_batches_skip_the_mask_with_the_same_logits(toy):
    from transformers import BertConfig, BertModel

    tokenizer, model = toy
    examples = random_examples(6, vocab=len(tokenizer))
    ids, mask = examples.padded(torch.arange(6), tokenizer.pad_token_id)
    assert model.causal and (mask == 0).any()
    seen = []
    hook = model.backbone.register_forward_pre_hook(lambda m, a, kw: seen.append(kw), with_kwargs=True)
    with torch.no_grad():
        masked, unmasked = model(ids, mask), model(ids, mask, right_padded=True)
    hook.remove()
    assert seen[0]["attention_mask"] is mask and seen[1]["attention_mask"] is None
    assert seen[0]["use_cache"] is False  # a classifier builds no KV cache
    torch.testing.assert_close(unmasked, masked, rtol=1e-5, atol=1e-6)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32))
    assert not TransformerWithHead(bert).causal  # bidirectional: its padding mask must stay


@pytest.mark.slow
def test_compiled_backbone_predicts_like_eager(toy):
    tokenizer, model = toy
    examples = random_examples(6, vocab=len(tokenizer))
    compiled = copy.deepcopy(model)
    compiled.backbone.compile(dynamic=True, backend="eager")  # the wiring, not inductor's codegen (seconds)
    assert isinstance(compiled, TransformerWithHead)
    assert list(compiled.state_dict()) == list(model.state_dict())  # saved weights keep their names
    torch.testing.assert_close(predict_probs(compiled, examples, 6, CPU, tokenizer.pad_token_id),
                               predict_probs(model, examples, 6, CPU, tokenizer.pad_token_id))
