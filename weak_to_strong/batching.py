"""Tokenized examples held in memory, and dynamic padding per (mini)batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Examples:
    """Token ids of each document and its soft label ([N, 2] float)."""

    input_ids: list[list[int]]
    labels: torch.Tensor
    lengths: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.lengths = torch.tensor([len(ids) for ids in self.input_ids], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.input_ids)

    @classmethod
    def from_dataset(cls, ds, label_column: str = "soft_label") -> "Examples":
        return cls(list(ds["input_ids"]), torch.tensor(ds[label_column], dtype=torch.float32))


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence: (input_ids, attention_mask)."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids, mask


def sort_by_length(indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reorder indices by length (stable), so minibatches carry little padding."""
    order = torch.argsort(lengths[indices], stable=True)
    return indices[order]


def split_chunks(indices: torch.Tensor, size: int) -> list[torch.Tensor]:
    return list(torch.split(indices, size))
