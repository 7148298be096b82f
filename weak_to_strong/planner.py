"""How a training batch becomes minibatches, and which way suits a run's model and device.

A planner is chosen once per run (`choose_planner`); every step then asks it for
this rank's minibatches, laid out as model inputs:

    planner = choose_planner(model, examples, pad_id, device, minibatch_size=None)
    for minibatch in planner.plan(batch, dp):
        logits = forward_documents(model, minibatch.layout, device)[: minibatch.part.n_real]

Batch membership never changes: the batch stays a uniformly shuffled draw and
only the order inside it, hence which documents share a minibatch, follows length.
Under torchrun each minibatch is dealt out over the ranks, so sizes and budgets
here are per rank times the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weak_to_strong.batching import (DocumentLayout, Examples, RowPacking, lay_out_documents, plan_minibatches,
                                    sort_by_length, split_chunks, split_for_packing)
from weak_to_strong.distributed import ONE_PROCESS, DataParallel, Part

DEFAULT_MINIBATCH_TOKENS = 32 * 1024
MINIBATCH_OVERHEAD = {"cpu": 2e8}
"""The fixed cost of one more minibatch (forward + backward), in parameter-tokens: divided by the model's
non-embedding parameters, it is the number of tokens whose compute costs as much. CPU: about 10 ms of
per-op overhead, the compute of ~60 tokens of a 3M-parameter model (fitted in bench/RESULTS.md).
Elsewhere a minibatch costs kernel launches and syncs worth far more than its padding: automatic
minibatches are then as few as the token budget allows."""
DEFAULT_MINIBATCH_OVERHEAD = 1e15
ATTENTION_SPAN_PER_WIDTH = 3
"""Packed rows: per token, attention over a row of L tokens costs ~12 x width x L FLOPs a layer (forward and
backward) against ~72 x width^2 for the rest of the layer, which would match at L = 6 x width; but masked
attention runs at a fraction of the matmul rate on CPU, and 3 x width measured fastest (bench/RESULTS.md:
61 % median MFU against 55 % at 6 x width and 58 % at 1.5 x width, width 256)."""


@dataclass(frozen=True)
class Minibatch:
    """This rank's documents of one forward pass: which rows (`part`), laid out as model inputs, and labels."""

    part: Part
    layout: DocumentLayout
    labels: torch.Tensor
    """Soft labels [part.n_real, 2] of the real rows, where the examples keep them (CPU)."""


class MinibatchPlanner:
    """Splits a batch into minibatches (each subclass its own way), deals them over ranks, lays them out.

    Bound to a run's documents and pad id. A subclass defines `split`; `packing`
    (None: right-padded rows, one document each) says how rows are laid out.
    """

    packing: RowPacking | None = None

    def __init__(self, examples: Examples, pad_id: int):
        self.examples, self.pad_id = examples, pad_id

    def split(self, batch: torch.Tensor, world_size: int) -> list[torch.Tensor]:
        """The batch's documents, grouped into minibatches over all ranks."""
        raise NotImplementedError

    def plan(self, batch: torch.Tensor, dp: DataParallel = ONE_PROCESS) -> list[Minibatch]:
        """This rank's share of every minibatch, laid out once: a loss's statistics pass (logconf) and the
        training pass then see the same rows."""
        parts = dp.deal(self.split(batch, dp.world_size))
        return [Minibatch(part, lay_out_documents(self.examples, part.indices, self.pad_id, self.packing),
                          self.examples.labels[part.real]) for part in parts]


class EqualMinibatches(MinibatchPlanner):
    """A given number of documents a minibatch (per rank), grouped by length."""

    def __init__(self, examples: Examples, pad_id: int, size: int):
        super().__init__(examples, pad_id)
        self.size = size

    def split(self, batch: torch.Tensor, world_size: int) -> list[torch.Tensor]:
        return split_chunks(sort_by_length(batch, self.examples.lengths), self.size * world_size)


class LengthGroupedMinibatches(MinibatchPlanner):
    """Minibatches of alike lengths, sized to minimise padded tokens plus `overhead_tokens` a minibatch
    (`batching.plan_minibatches`), each within `token_budget` padded tokens per rank."""

    def __init__(self, examples: Examples, pad_id: int, token_budget: int, overhead_tokens: int):
        super().__init__(examples, pad_id)
        self.token_budget, self.overhead_tokens = token_budget, overhead_tokens

    def split(self, batch: torch.Tensor, world_size: int) -> list[torch.Tensor]:
        return plan_minibatches(batch, self.examples.lengths, self.token_budget * world_size,
                                self.overhead_tokens * world_size)


class PackedMinibatches(MinibatchPlanner):
    """Several documents a row (`packing`), split into minibatches only where memory needs it: at most
    `token_budget` real tokens per rank (`batching.split_for_packing`). Each rank packs what it is dealt."""

    def __init__(self, examples: Examples, pad_id: int, packing: RowPacking, token_budget: int):
        super().__init__(examples, pad_id)
        self.packing, self.token_budget = packing, token_budget

    def split(self, batch: torch.Tensor, world_size: int) -> list[torch.Tensor]:
        return split_for_packing(batch, self.examples.lengths, self.token_budget * world_size)


def choose_planner(model, examples: Examples, pad_id: int, device, minibatch_size: int | None = None,
                   token_budget: int = DEFAULT_MINIBATCH_TOKENS, pack: bool | None = None) -> MinibatchPlanner:
    """A run's planner: equal minibatches of a given size; else packed rows where `choose_row_packing`
    allows; else length-grouped minibatches priced by this model's per-minibatch overhead on `device`.

    `model` is the bare model (not a DDP wrapper): it is asked whether it packs.
    """
    if minibatch_size is not None:  # a given minibatch size keeps its meaning: that many documents a pass
        return EqualMinibatches(examples, pad_id, minibatch_size)
    packing = choose_row_packing(model, device, pack)
    if packing is not None:
        return PackedMinibatches(examples, pad_id, packing, token_budget)
    return LengthGroupedMinibatches(examples, pad_id, token_budget, estimate_minibatch_overhead(model, device))


def choose_row_packing(model, device, pack: bool | None) -> RowPacking | None:
    """How to pack documents into rows, or None for right-padded rows (one document each).

    Only for models that say how (`row_packing`, see model.TransformerWithHead).
    By default (`pack` None) only on CPU: there every padded token costs its full
    compute and a minibatch ~10 ms of overhead, while on GPUs padding costs little
    and a packed (block-diagonal) mask would lose the flash-attention path.
    """
    if pack is False or (pack is None and torch.device(device).type != "cpu"):
        return None
    row_packing = getattr(model, "row_packing", None)  # models that cannot pack (test stand-ins) lack it
    return row_packing(ATTENTION_SPAN_PER_WIDTH) if row_packing is not None else None


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside embedding tables (token and position embeddings), each counted once."""
    embedding = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    params = {id(p): p for p in model.parameters() if id(p) not in embedding}
    return sum(p.numel() for p in params.values())


def estimate_minibatch_overhead(model: torch.nn.Module, device) -> int:
    """What one more minibatch costs, in tokens of this model's compute (see MINIBATCH_OVERHEAD)."""
    overhead = MINIBATCH_OVERHEAD.get(torch.device(device).type, DEFAULT_MINIBATCH_OVERHEAD)
    return int(min(overhead / max(non_embedding_params(model), 1), 1 << 30))
