"""Tokenized examples held in memory, dynamic padding per (mini)batch, length-grouped minibatches, packed rows,
and the model inputs a (mini)batch is laid out as.

Token ids live in one flat tensor with per-document offsets, so padding a
minibatch is a few tensor ops rather than a Python loop over its documents.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from weak_to_strong.datasets import column_list


class Examples:
    """Token ids of N documents (flat `tokens`, with `offsets` and `lengths`) and their soft labels [N, 2]."""

    def __init__(self, input_ids: Sequence[Sequence[int]], labels: torch.Tensor):
        lengths = torch.tensor([len(ids) for ids in input_ids], dtype=torch.long)
        tokens = torch.tensor(list(itertools.chain.from_iterable(input_ids)), dtype=torch.long)
        self._set(tokens, lengths, labels)

    def _set(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> None:
        assert len(lengths) == len(labels) and int(lengths.sum()) == len(tokens)
        self.tokens, self.lengths, self.labels = tokens, lengths, labels
        self.offsets = torch.cumsum(lengths, 0) - lengths

    @classmethod
    def from_flat(cls, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> "Examples":
        examples = cls.__new__(cls)
        examples._set(tokens.long(), lengths.long(), labels)
        return examples

    @classmethod
    def from_dataset(cls, ds, label_column: str = "soft_label") -> "Examples":
        """Straight from the dataset's Arrow column: no Python list per document."""
        ids = ds.with_format("arrow")["input_ids"].combine_chunks()
        tokens = torch.from_numpy(np.array(ids.flatten(), dtype=np.int64))  # a copy: Arrow's buffers are read-only
        lengths = torch.from_numpy(np.array(ids.value_lengths(), dtype=np.int64))
        return cls.from_flat(tokens, lengths, torch.tensor(column_list(ds, label_column), dtype=torch.float32))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def input_ids(self) -> list[list[int]]:
        return [self.tokens[o:o + n].tolist() for o, n in zip(self.offsets.tolist(), self.lengths.tolist())]

    def padded(self, idx: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Documents `idx`, right-padded to the longest of them: (input_ids, attention_mask)."""
        lengths = self.lengths[idx]
        cols = torch.arange(int(lengths.max()))
        mask = cols < lengths[:, None]
        positions = (self.offsets[idx][:, None] + cols).clamp_(max=max(len(self.tokens) - 1, 0))
        return torch.where(mask, self.tokens[positions], pad_id), mask.long()

    def packed(self, idx: torch.Tensor, pad_id: int, row_of: torch.Tensor) -> "PackedRows":
        """Documents `idx` laid out in rows: document k goes into row `row_of[k]`, after the earlier ones there.

        Position ids restart at 0 for every document, which transformers' causal
        mask turns into a block-diagonal mask. A row's padding continues its last
        document's positions: that document never attends to it (causal), and a
        batch whose rows hold one document each keeps the plain causal mask.
        """
        lengths = self.lengths[idx]
        perm = torch.argsort(row_of, stable=True)  # documents row by row, in idx order inside a row
        rows, lens = row_of[perm], lengths[perm]
        n_rows = int(rows.max()) + 1 if len(rows) else 0
        row_len = torch.zeros(n_rows, dtype=torch.long).index_add_(0, rows, lens)
        width = int(row_len.max()) if n_rows else 0
        ends = torch.cumsum(lens, 0)
        row_first = torch.cumsum(row_len, 0) - row_len  # flat offset where each row's documents begin
        start_col = ends - lens - row_first[rows]
        doc_of_token = torch.repeat_interleave(torch.arange(len(lens)), lens)
        within = torch.arange(int(ends[-1]) if len(lens) else 0) - torch.repeat_interleave(ends - lens, lens)
        target = (rows * width + start_col)[doc_of_token] + within
        input_ids = torch.full((n_rows * width,), pad_id, dtype=torch.long)
        input_ids[target] = self.tokens[self.offsets[idx][perm][doc_of_token] + within]
        starts = torch.zeros(n_rows * width, dtype=torch.long)
        starts[rows * width + start_col] = start_col
        cols = torch.arange(width)
        position_ids = cols - torch.cummax(starts.view(n_rows, width), dim=1).values
        last = torch.empty_like(perm)
        last[perm] = rows * width + start_col + lens - 1
        return PackedRows(input_ids.view(n_rows, width), position_ids, (cols < row_len[:, None]).long(), last)


@dataclass(frozen=True)
class PackedRows:
    """Several documents per row: token ids, per-document position ids and real-token mask [rows, width],
    and each document's last token as a flat index into rows x width (in the documents' order)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    mask: torch.Tensor
    last_token: torch.Tensor


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence: (input_ids, attention_mask)."""
    examples = Examples(sequences, torch.zeros(len(sequences), 2))
    return examples.padded(torch.arange(len(sequences)), pad_id)


def sort_by_length(indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reorder indices by length (stable), so minibatches carry little padding."""
    order = torch.argsort(lengths[indices], stable=True)
    return indices[order]


def split_chunks(indices: torch.Tensor, size: int) -> list[torch.Tensor]:
    return list(torch.split(indices, size))


def plan_minibatches(batch: torch.Tensor, lengths: torch.Tensor, token_budget: int,
                     overhead_tokens: int) -> list[torch.Tensor]:
    """Split a batch into length-sorted minibatches that minimise padded tokens + overhead per minibatch.

    Each minibatch costs (rows x its longest length) + `overhead_tokens` (the
    fixed cost of one more forward/backward, in token-equivalents), and holds at
    most `token_budget` padded tokens (memory). An exact dynamic programme over
    the sorted lengths: dp[j] = min_i dp[i] + (j - i) * l[j-1] + overhead. Only
    which examples share a minibatch changes, never which form the batch, so the
    accumulated gradient is the same as for any other split.
    """
    order = sort_by_length(batch, lengths)
    sorted_lengths = lengths[order].numpy().astype(np.float64)
    n = len(order)
    best = np.zeros(n + 1)
    start = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        longest = sorted_lengths[j - 1]
        first = max(0, j - max(1, int(token_budget // longest)))  # memory: rows * longest <= budget
        i = np.arange(first, j)
        costs = best[first:j] + (j - i) * longest + overhead_tokens
        k = int(np.argmin(costs))
        best[j], start[j] = costs[k], first + k
    bounds = [n]
    while bounds[-1] > 0:
        bounds.append(int(start[bounds[-1]]))
    bounds.reverse()
    return [order[a:b] for a, b in zip(bounds, bounds[1:])]


def chunk_by_tokens(order: torch.Tensor, lengths: torch.Tensor, token_budget: int) -> list[torch.Tensor]:
    """Consecutive chunks of `order` (sorted by length) holding at most `token_budget` padded tokens each."""
    chunks, first = [], 0
    sorted_lengths = lengths[order].tolist()
    for j, length in enumerate(sorted_lengths):
        if j > first and (j + 1 - first) * max(length, sorted_lengths[first]) > token_budget:
            chunks.append(order[first:j])
            first = j
    if first < len(sorted_lengths):
        chunks.append(order[first:])
    return chunks


@dataclass(frozen=True)
class RowPacking:
    """How to pack a minibatch's documents into rows (see `plan_rows`)."""

    max_row_len: int
    """No row longer than this (the backbone's context: padding continues a document's positions)."""
    attention_span: float
    """The row length at which attention costs as much as the rest of the model, per token."""


def assign_rows(lengths: Sequence[int], n_rows: int) -> tuple[list[int], int]:
    """Documents into `n_rows` rows of nearly equal length: (row of each document, longest row).

    `greedy_rows`, then `balance_rows` moves and swaps documents out of the
    longest row while that shortens it. Rows padded to the longest carry that
    row's slack as padding.
    """
    return balance_rows(lengths, greedy_rows(lengths, n_rows), n_rows)


def greedy_rows(lengths: Sequence[int], n_rows: int) -> list[int]:
    """Longest document first, each into the shortest row so far (greedy multiway partitioning, LPT)."""
    heap = [(0, r) for r in range(n_rows)]
    row_of = [0] * len(lengths)
    for k in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        load, r = heapq.heappop(heap)
        row_of[k] = r
        heapq.heappush(heap, (load + lengths[k], r))
    return row_of


def balance_rows(lengths: Sequence[int], row_of: Sequence[int], n_rows: int) -> tuple[list[int], int]:
    """Local search on a row assignment: (row of each document, longest row).

    While some document of the longest row can move to another row, or swap
    with a shorter document there, leaving both rows shorter than the longest
    was, do it. Each change lowers the sum of squared row lengths, so it ends;
    LPT leaves ~5 % padding in rows of two or three documents of 20-60 tokens,
    this ~2 % (bench/RESULTS.md).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rows = np.asarray(row_of, dtype=np.int64).copy()
    loads = np.bincount(rows, weights=lengths, minlength=n_rows).astype(np.int64)
    floor = max(int(lengths.max()), -(-int(lengths.sum()) // n_rows))  # no assignment does better
    while loads.max() > floor:
        top = int(np.argmax(loads))
        mine = np.flatnonzero(rows == top)
        # Swap k (of the top row) with j (elsewhere), or move k to the shortest row: gain = what the top row
        # sheds, which the other row takes on, staying under the top row's old length.
        gains = lengths[mine][:, None] - np.append(lengths, 0)[None, :]
        room = loads[top] - np.append(loads[rows], loads.min())
        useful = (gains > 0) & (gains < room[None, :]) & (np.append(rows, -1) != top)[None, :]
        if not useful.any():
            break
        # The change that leaves the longer of the two rows shortest.
        after = np.maximum(loads[top] - gains, (loads[top] - room)[None, :] + gains)
        i, j = np.unravel_index(np.argmin(np.where(useful, after, np.iinfo(np.int64).max)), gains.shape)
        k, gain = int(mine[i]), int(gains[i, j])
        other = int(rows[j]) if j < len(lengths) else int(np.argmin(loads))
        if j < len(lengths):
            rows[j] = top
        rows[k] = other
        loads[top] -= gain
        loads[other] += gain
    return rows.tolist(), int(loads.max())


PLAN_TOLERANCE = 0.01


def plan_rows(lengths: Sequence[int], packing: RowPacking) -> torch.Tensor:
    """The row of each document, for the row count that minimises padded tokens plus attention.

    Rows of length L cost rows x L x (1 + L / attention_span) token-equivalents:
    longer rows carry less padding but attend over more tokens (a packed row
    computes attention over its whole width, masked). One row per document is the
    plain right-padded layout, so packing never plans worse than padding. Row
    counts are tried cheapest lower bound first (rows no shorter than the mean
    load or the longest document), until no untried count can beat the best by
    more than `PLAN_TOLERANCE` (at batch 512 the costs of a hundred counts lie
    within 1 %, and each try is a local search).
    """
    lengths = [int(n) for n in lengths]
    total, longest = sum(lengths), max(lengths)

    def cost(n_rows: int, width: int) -> float:
        return n_rows * width * (1 + width / packing.attention_span)

    least = math.ceil(total / packing.max_row_len)
    counts = range(max(1, least), len(lengths) + 1)
    bounds = sorted((cost(r, max(longest, math.ceil(total / r))), r) for r in counts)
    best = None
    for bound, n_rows in bounds:
        if best is not None and bound * (1 + PLAN_TOLERANCE) >= best[0]:
            break
        row_of, width = assign_rows(lengths, n_rows)
        if width > packing.max_row_len and n_rows < len(lengths):
            continue
        if best is None or cost(n_rows, width) < best[0]:
            best = cost(n_rows, width), row_of
    return torch.tensor(best[1], dtype=torch.long)


def split_for_packing(batch: torch.Tensor, lengths: torch.Tensor, token_budget: int) -> list[torch.Tensor]:
    """As few minibatches as hold at most `token_budget` real tokens each, with alike length mixes.

    Packed rows carry little padding, so one more minibatch only costs overhead:
    the batch is split only where memory needs it, dealing the length-sorted
    documents round-robin so every minibatch packs alike.
    """
    order = sort_by_length(batch, lengths)
    n = min(len(order), max(1, math.ceil(int(lengths[order].sum()) / token_budget)))
    return [order[i::n] for i in range(n)]


@dataclass(frozen=True)
class DocumentLayout:
    """Model inputs for some documents: token ids and real-token mask, plus keyword inputs (packing, padding)."""

    input_ids: torch.Tensor
    mask: torch.Tensor
    extra: dict = field(default_factory=dict)


def lay_out_documents(examples: Examples, idx: torch.Tensor, pad_id: int,
                      packing: RowPacking | None = None) -> DocumentLayout:
    """Documents `idx` as right-padded rows (one document each), or with `packing` several to a row."""
    if packing is None:
        input_ids, mask = examples.padded(idx, pad_id)
        return DocumentLayout(input_ids, mask, {"right_padded": True})
    rows = examples.packed(idx, pad_id, plan_rows(examples.lengths[idx].tolist(), packing))
    return DocumentLayout(rows.input_ids, rows.mask, {"position_ids": rows.position_ids, "last_token": rows.last_token})
