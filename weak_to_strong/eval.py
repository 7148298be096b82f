"""Prediction and accuracy (the PGR of accuracies is metrics.pgr)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from weak_to_strong.batching import (DocumentLayout, Examples, chunk_by_tokens, lay_out_documents, sort_by_length,
                                    split_chunks)
from weak_to_strong.distributed import ONE_PROCESS, DataParallel
from weak_to_strong.precision import autocast

CPU_EVAL_BATCH_BYTES = 16 * 2**20
"""On CPU, eval batches whose MLP activations (4 x hidden floats per token) outgrow ~16 MB fall out of
cache and run slower: 65% of the matmul peak at 4096 tokens of a width-256 model, 42% at 32768."""


def forward_documents(model, layout: DocumentLayout, device, precision: str = "fp32") -> torch.Tensor:
    """Logits of the laid-out documents, in their order, under the run's autocast."""
    def to_device(x):
        return x.to(device, non_blocking=True) if torch.is_tensor(x) else x

    with autocast(precision, torch.device(device)):
        return model(to_device(layout.input_ids), to_device(layout.mask),
                     **{k: to_device(v) for k, v in layout.extra.items()})


def eval_token_budget(memory_tokens: int, hidden_size: int, device) -> int:
    """Padded tokens per eval batch: what memory allows, and on CPU no more than stays in cache."""
    if torch.device(device).type == "cpu":
        return max(1, min(memory_tokens, CPU_EVAL_BATCH_BYTES // (16 * hidden_size)))
    return memory_tokens


def predict_probs(model, examples: Examples, batch_size: int, device: torch.device, pad_id: int,
                  desc: str = "eval", precision: str = "fp32", token_budget: int | None = None,
                  dp: DataParallel = ONE_PROCESS) -> torch.Tensor:
    """Class probabilities [N, 2] in the original order; batches are grouped by length.

    With `token_budget`, a batch holds as many length-sorted documents as fit in
    that many padded tokens per rank (short documents: large batches), else
    `batch_size` documents per rank. Under torchrun each rank predicts its share
    of every batch, and every rank gets all the probabilities back.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    order = sort_by_length(torch.arange(len(examples)), examples.lengths)
    chunks = chunk_by_tokens(order, examples.lengths, token_budget * dp.world_size) if token_budget \
        else split_chunks(order, batch_size * dp.world_size)
    # inference_mode skips autograd bookkeeping; under torchrun, plain no_grad, since FSDP may keep the
    # parameters it all-gathers here for the next training step, which inference tensors cannot join.
    grad_free = torch.inference_mode if dp.world_size == 1 else torch.no_grad
    rows, row_probs = [torch.empty(0, dtype=torch.long)], [torch.empty((0, 2))]
    for part in tqdm(dp.deal(chunks), desc=desc, leave=False, **dp.progress_options()):
        with grad_free():
            logits = forward_documents(model, lay_out_documents(examples, part.indices, pad_id), device,
                                       precision)[: part.n_real]
        rows.append(part.real)
        row_probs.append(torch.softmax(logits.float(), dim=-1).cpu())
    probs = torch.empty((len(examples), 2), dtype=torch.float32)
    probs[dp.gather_rows(torch.cat(rows))] = dp.gather_rows(torch.cat(row_probs))
    for module, training in modes:  # restored per module: training may be mixed (see train.set_train_mode)
        module.training = training
    return probs


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose argmax matches the argmax of the (soft or one-hot) labels."""
    return (probs.argmax(dim=-1) == labels.argmax(dim=-1)).float().mean().item()
