"""Tokenized examples held in memory, dynamic padding per (mini)batch, and length-grouped minibatches.

Token ids live in one flat tensor with per-document offsets, so padding a
minibatch is a few tensor ops rather than a Python loop over its documents.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch


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
        tokens = torch.from_numpy(np.asarray(ids.flatten(), dtype=np.int64))
        lengths = torch.from_numpy(np.asarray(ids.value_lengths(), dtype=np.int64))
        return cls.from_flat(tokens, lengths, torch.tensor(ds[label_column], dtype=torch.float32))

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


def padding_share(chunks: list[torch.Tensor], lengths: torch.Tensor) -> float:
    """Share of padded positions over the (rows x longest) rectangles of these chunks."""
    real = sum(int(lengths[c].sum()) for c in chunks)
    total = sum(len(c) * int(lengths[c].max()) for c in chunks)
    return 1 - real / total if total else 0.0
