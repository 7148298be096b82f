"""Sequence packing: several documents per row, each attending only to itself. Correctness only, no timing."""

import copy

import pytest
import torch
from transformers import (AutoModel, GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config)

from weak_to_strong import batching
from weak_to_strong.batching import (PLAN_TOLERANCE, Examples, RowPacking, assign_rows, balance_rows, greedy_rows,
                                    plan_rows, split_for_packing)
from weak_to_strong.logger import NullLogger
from weak_to_strong.loss import make_loss
from weak_to_strong.model import supports_packing, wrap_backbone
from weak_to_strong.planner import (EqualMinibatches, LengthGroupedMinibatches, PackedMinibatches, choose_planner,
                                    estimate_minibatch_overhead)
from weak_to_strong.train import Optimization, TrainSettings, make_scheduler, train_model, train_step

CPU = torch.device("cpu")
VOCAB = 100
PAD = VOCAB - 1
TINY_CONFIGS = {
    "gpt2": lambda: GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=VOCAB, n_positions=128,
                               bos_token_id=0, eos_token_id=0),
    "llama": lambda: LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128),
    "qwen2": lambda: Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128),
    "gpt_neox": lambda: GPTNeoXConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=128),
}
"""One tiny random model per architecture in model.PACKING_MODEL_TYPES."""


def tiny_model(arch: str = "gpt2", attn: str = "sdpa"):
    torch.manual_seed(0)
    config = TINY_CONFIGS[arch]()
    config._attn_implementation = attn
    model = wrap_backbone(AutoModel.from_config(config, attn_implementation=attn), CPU)
    torch.nn.init.normal_(model.score.weight, std=0.5)  # a zero head would make every logit test pass trivially
    return model.eval()


def random_examples(n: int, min_len: int = 1, max_len: int = 20, seed: int = 0) -> Examples:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=gen)
    tokens = torch.randint(0, VOCAB - 1, (int(lengths.sum()),), generator=gen)
    p = torch.rand(n, 1, generator=gen)
    return Examples.from_flat(tokens, lengths, torch.cat([1 - p, p], dim=1))


def packed_logits(model, examples, idx, row_len):
    rows = examples.packed(idx, PAD, plan_rows(examples.lengths[idx].tolist(), RowPacking(row_len, 10**9)))
    return model(rows.input_ids, rows.mask, position_ids=rows.position_ids, last_token=rows.last_token), rows


# ---------------------------------------------------------------- layout

def test_packed_rows_hold_every_document_once_with_restarting_positions():
    examples = random_examples(40)
    idx = torch.randperm(40, generator=torch.Generator().manual_seed(1))[:33]
    row_len = 45
    rows = examples.packed(idx, PAD, plan_rows(examples.lengths[idx].tolist(), RowPacking(row_len, 10**9)))
    width = rows.input_ids.shape[1]
    assert width <= row_len and rows.input_ids.shape[0] < len(idx)  # several documents share rows
    flat_ids, flat_pos = rows.input_ids.reshape(-1), rows.position_ids.reshape(-1)
    seen = torch.zeros(rows.input_ids.numel(), dtype=torch.long)
    for k, doc in enumerate(idx.tolist()):  # each document: its tokens, contiguous, at positions 0..n-1
        n, last = int(examples.lengths[doc]), int(rows.last_token[k])
        span = torch.arange(last - n + 1, last + 1)
        assert span[0] // width == last // width  # inside one row
        assert flat_ids[span].tolist() == examples.input_ids[doc]
        assert flat_pos[span].tolist() == list(range(n))
        seen[span] += 1
    assert seen.max() == 1 and int(seen.sum()) == int(examples.lengths[idx].sum())  # no token twice
    assert torch.equal(rows.mask.reshape(-1).bool(), seen.bool())  # the mask marks exactly the real tokens
    assert (flat_ids[seen == 0] == PAD).all()


def test_assign_rows_balances_and_plan_rows_respects_the_row_length():
    lengths = [int(n) for n in torch.randint(20, 61, (32,), generator=torch.Generator().manual_seed(0))]
    row_of, longest = assign_rows(lengths, 5)
    loads = row_loads(lengths, row_of, 5)
    assert max(loads) == longest and longest - min(loads) <= max(lengths)
    for max_row_len in (60, 100, 300, 2000):
        row_of = plan_rows(lengths, RowPacking(max_row_len, 10**9))
        loads = torch.zeros(int(row_of.max()) + 1, dtype=torch.long).index_add_(0, row_of, torch.tensor(lengths))
        assert loads.max() <= max_row_len
    # Dear attention keeps rows about as short as the longest document (short ones still pair up);
    # free attention packs everything into as few rows as the row length allows.
    row_of = plan_rows(lengths, RowPacking(2000, attention_span=1))
    loads = torch.zeros(int(row_of.max()) + 1, dtype=torch.long).index_add_(0, row_of, torch.tensor(lengths))
    assert loads.max() <= 1.2 * max(lengths) and len(loads) < len(lengths)
    # Free attention: only padding counts, and a plan within PLAN_TOLERANCE of none is taken.
    row_of = plan_rows(lengths, RowPacking(2000, attention_span=10**9))
    loads = torch.zeros(int(row_of.max()) + 1, dtype=torch.long).index_add_(0, row_of, torch.tensor(lengths))
    assert len(loads) * loads.max() <= (1 + PLAN_TOLERANCE) * sum(lengths)


def row_loads(lengths, row_of, n_rows) -> list[int]:
    return [sum(n for n, r in zip(lengths, row_of) if r == row) for row in range(n_rows)]


def test_balance_rows_shortens_the_longest_row_that_greedy_leaves():
    # Greedy puts 3 | 3 first, then 2, 2, 2 on the shorter row each time: rows of 7 and 5; 6 and 6 exists.
    row_of, longest = assign_rows([3, 3, 2, 2, 2], 2)
    assert longest == 6 and sorted(row_of) in ([0, 0, 1, 1, 1], [0, 0, 0, 1, 1])
    shortened = 0
    gen = torch.Generator().manual_seed(1)
    for _ in range(30):
        lengths = torch.randint(20, 61, (32,), generator=gen).tolist()
        n_rows = int(torch.randint(8, 17, (1,), generator=gen))
        greedy = greedy_rows(lengths, n_rows)
        loads = row_loads(lengths, greedy, n_rows)
        row_of, longest = balance_rows(lengths, greedy, n_rows)
        balanced = row_loads(lengths, row_of, n_rows)
        assert max(balanced) == longest <= max(loads)  # every document placed once, the longest row no longer
        assert sum(balanced) == sum(lengths) and all(0 <= r < n_rows for r in row_of)
        shortened += longest < max(loads)
    assert shortened >= 10


def test_split_for_packing_keeps_the_batch_and_splits_only_for_memory():
    examples = random_examples(64, 20, 60)
    batch = torch.randperm(64)[:32]
    total = int(examples.lengths[batch].sum())
    assert len(split_for_packing(batch, examples.lengths, total)) == 1
    parts = split_for_packing(batch, examples.lengths, total // 3)
    assert len(parts) >= 3 and sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())


# ---------------------------------------------------------------- the same logits and updates

@pytest.mark.parametrize("arch", sorted(TINY_CONFIGS))
def test_packed_logits_equal_each_documents_own_logits(arch):
    model = tiny_model(arch)
    assert supports_packing(model)
    examples = random_examples(24)
    idx = torch.randperm(24, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got, rows = packed_logits(model, examples, idx, row_len=48)
        alone = torch.cat([model(torch.tensor([examples.input_ids[k]]), torch.ones(1, int(examples.lengths[k])))
                           for k in idx.tolist()])
    assert rows.input_ids.shape[0] < len(idx)
    torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-5)


def step_params(model, examples, batch, loss_name, minibatch_size, packing, budget=10**6):
    model = copy.deepcopy(model)
    # SGD: the update is linear in the gradient (see tests/test_train.py).
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    planner = EqualMinibatches(examples, PAD, minibatch_size) if packing is None \
        else PackedMinibatches(examples, PAD, packing, budget)
    train_step(model, batch, make_loss(loss_name), Optimization(optimizer, make_scheduler(optimizer, "constant", 1)),
               planner, 0.5, CPU)
    return dict(model.named_parameters())


@pytest.mark.parametrize("loss_name", ["xent", "logconf"])
@pytest.mark.parametrize("budget", [10**6, 60])
def test_packed_step_gives_the_padded_full_batch_update(loss_name, budget):
    model = tiny_model()
    examples = random_examples(24)
    batch = torch.randperm(24, generator=torch.Generator().manual_seed(3))[:16]
    before = dict(copy.deepcopy(model).named_parameters())
    padded = step_params(model, examples, batch, loss_name, len(batch), None)
    packed = step_params(model, examples, batch, loss_name, None, RowPacking(40, 10**9), budget)
    assert not torch.equal(padded["backbone.h.0.attn.c_attn.weight"], before["backbone.h.0.attn.c_attn.weight"])
    for k in padded:
        torch.testing.assert_close(packed[k], padded[k], rtol=1e-4, atol=1e-6, msg=f"{loss_name}: {k} differs")


# ---------------------------------------------------------------- when packing is used

def test_packing_only_where_supported_and_minibatches_are_automatic():
    model = tiny_model()
    assert model.row_packing(3) == RowPacking(128, 3 * 64)  # the context, and the span in units of the width
    examples = random_examples(16)

    def planner(device=CPU, minibatch_size=None, pack=None, model=model):
        return choose_planner(model, examples, PAD, device, minibatch_size, token_budget=500, pack=pack)

    packed = planner()
    assert type(packed) is PackedMinibatches and packed.packing == RowPacking(128, 3 * 64)
    assert packed.token_budget == 500
    equal = planner(minibatch_size=8)  # a given minibatch size keeps its meaning, packing or not
    assert type(equal) is EqualMinibatches and equal.size == 8 and equal.packing is None
    assert type(planner(minibatch_size=8, pack=True)) is EqualMinibatches
    grouped = planner(pack=False)
    assert type(grouped) is LengthGroupedMinibatches and grouped.packing is None
    assert grouped.overhead_tokens == estimate_minibatch_overhead(model, CPU) > 0
    cuda = torch.device("cuda")
    on_gpu = planner(cuda)  # CPU only by default; a GPU prices a minibatch far above its padding
    assert type(on_gpu) is LengthGroupedMinibatches and on_gpu.overhead_tokens > 1000 * grouped.overhead_tokens
    assert type(planner(cuda, pack=True)) is PackedMinibatches
    assert type(planner(cuda, minibatch_size=8)) is EqualMinibatches
    # A model that cannot pack: a backbone without support, or a module that does not say.
    no_support = tiny_model()
    no_support.backbone.config.model_type = "someones-remote-code"
    assert no_support.row_packing(3) is None
    assert type(planner(model=no_support)) is type(planner(model=no_support, pack=True)) is LengthGroupedMinibatches
    assert type(planner(model=torch.nn.Linear(2, 2), pack=True)) is LengthGroupedMinibatches
    assert supports_packing(tiny_model(attn="eager"))
    flash = tiny_model()
    flash.backbone.config._attn_implementation = "flash_attention_2"  # would need varlen arguments instead
    assert not supports_packing(flash) and flash.row_packing(3) is None
    non_causal = tiny_model()
    non_causal.causal = False
    assert not supports_packing(non_causal)


def test_planners_keep_the_batch_and_lay_out_every_minibatch():
    examples = random_examples(32, 5, 40)
    batch = torch.randperm(32, generator=torch.Generator().manual_seed(4))[:24]
    planners = [EqualMinibatches(examples, PAD, 5), LengthGroupedMinibatches(examples, PAD, 200, 10),
                PackedMinibatches(examples, PAD, RowPacking(128, 192), 200)]
    for planner in planners:
        minibatches = planner.plan(batch)
        assert len(minibatches) > 1, type(planner).__name__
        assert sorted(torch.cat([mb.part.real for mb in minibatches]).tolist()) == sorted(batch.tolist())
        for mb in minibatches:
            assert torch.equal(mb.labels, examples.labels[mb.part.real])
            assert int(mb.layout.mask.sum()) == int(examples.lengths[mb.part.real].sum())  # each document once
            assert ("position_ids" in mb.layout.extra) == (planner.packing is not None)
    assert [len(mb.part.real) for mb in planners[0].plan(batch)] == [5, 5, 5, 5, 4]


def test_unsupported_backbones_fall_back_to_padded_rows(monkeypatch):
    model = tiny_model()
    model.backbone.config.model_type = "someones-remote-code"
    assert not supports_packing(model)
    calls = []
    monkeypatch.setattr(batching.Examples, "packed", lambda *a, **k: calls.append(1))
    examples = random_examples(16)
    settings = TrainSettings(batch_size=8, minibatch_size=None, epochs=1, lr=1e-3, pack=True)
    train_model(model, examples, make_loss("xent"), settings, CPU, PAD, NullLogger())
    assert calls == []


def test_train_model_packs_by_default_on_cpu(monkeypatch):
    calls = []
    packed = batching.Examples.packed
    monkeypatch.setattr(batching.Examples, "packed", lambda *a, **k: calls.append(1) or packed(*a, **k))
    settings = TrainSettings(batch_size=8, minibatch_size=None, epochs=1, lr=1e-3)
    train_model(tiny_model(), random_examples(16), make_loss("xent"), settings, CPU, PAD, NullLogger())
    assert len(calls) == 2  # one packed minibatch per step
