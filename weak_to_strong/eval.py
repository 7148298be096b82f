"""Prediction, accuracy, and the performance gap recovered (PGR)."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from weak_to_strong.batching import Examples, pad_batch, sort_by_length, split_chunks


@torch.no_grad()
def predict_probs(model, examples: Examples, batch_size: int, device: torch.device, pad_id: int,
                  desc: str = "eval") -> torch.Tensor:
    """Class probabilities [N, 2] in the original order; batches are grouped by length."""
    was_training = model.training
    model.eval()
    order = sort_by_length(torch.arange(len(examples)), examples.lengths)
    probs = torch.empty((len(examples), 2), dtype=torch.float32)
    for chunk in tqdm(split_chunks(order, batch_size), desc=desc, leave=False):
        input_ids, mask = pad_batch([examples.input_ids[i] for i in chunk.tolist()], pad_id)
        logits = model(input_ids.to(device), mask.to(device))
        probs[chunk] = torch.softmax(logits.float(), dim=-1).cpu()
    model.train(was_training)
    return probs


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose argmax matches the argmax of the (soft or one-hot) labels."""
    return (probs.argmax(dim=-1) == labels.argmax(dim=-1)).float().mean().item()


def pgr(weak_acc: float, transfer_acc: float, ceiling_acc: float) -> float:
    """(transfer - weak) / (ceiling - weak); NaN where the ceiling is not above the weak floor."""
    gap = ceiling_acc - weak_acc
    return (transfer_acc - weak_acc) / gap if gap > 0 else math.nan
