"""Prediction, accuracy, and the performance gap recovered (PGR)."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from weak_to_strong.batching import Examples, pad_batch, sort_by_length
from weak_to_strong.distributed import DataParallel

ONE_PROCESS = DataParallel()


@torch.no_grad()
def predict_probs(model, examples: Examples, batch_size: int, device: torch.device, pad_id: int,
                  desc: str = "eval", dp: DataParallel = ONE_PROCESS) -> torch.Tensor:
    """Class probabilities [N, 2] in the original order; batches are grouped by length.

    Under torchrun each rank predicts a share of the examples, and every rank gets all of them back.
    """
    was_training = model.training
    model.eval()
    order = sort_by_length(torch.arange(len(examples)), examples.lengths)
    rows, row_probs = [torch.empty(0, dtype=torch.long)], [torch.empty((0, 2))]
    for part in tqdm(dp.parts(order, batch_size), desc=desc, leave=False, **dp.progress_options()):
        input_ids, mask = pad_batch([examples.input_ids[i] for i in part.indices.tolist()], pad_id)
        logits = model(input_ids.to(device), mask.to(device))[: part.n_real]
        rows.append(part.real)
        row_probs.append(torch.softmax(logits.float(), dim=-1).cpu())
    probs = torch.empty((len(examples), 2), dtype=torch.float32)
    probs[dp.gather_rows(torch.cat(rows))] = dp.gather_rows(torch.cat(row_probs))
    model.train(was_training)
    return probs


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose argmax matches the argmax of the (soft or one-hot) labels."""
    return (probs.argmax(dim=-1) == labels.argmax(dim=-1)).float().mean().item()


def pgr(weak_acc: float, transfer_acc: float, ceiling_acc: float) -> float:
    """(transfer - weak) / (ceiling - weak); NaN where the ceiling is not above the weak floor."""
    gap = ceiling_acc - weak_acc
    return (transfer_acc - weak_acc) / gap if gap > 0 else math.nan
