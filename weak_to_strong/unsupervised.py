"""Unsupervised task fine-tuning: a causal-LM pass over the task's texts, no labels, before the classifier.

The cheapest form of the weak-to-strong paper's generative fine-tuning: the strong model
learns next-token prediction on the documents it is about to be trained on, then the usual
backbone + head training starts from those weights (`--unsup_epochs`).
"""

from __future__ import annotations

import torch

from weak_to_strong.batching import Examples, split_chunks
from weak_to_strong.checks import check_finite_loss
from weak_to_strong.precision import autocast
from weak_to_strong.train import make_optimizer, plan_batches


def causal_lm_loss(lm, examples: Examples, idx: torch.Tensor, pad_id: int, device, precision: str) -> torch.Tensor:
    """Mean next-token cross-entropy over the real tokens of documents `idx` (padding is ignored)."""
    input_ids, mask = examples.padded(idx, pad_id)
    labels = input_ids.masked_fill(mask == 0, -100)  # -100: transformers' ignore index
    with autocast(precision, torch.device(device)):
        out = lm(input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
    return out.loss.float()


def train_causal_lm(lm, examples: Examples, epochs: int, batch_size: int, minibatch_size: int, lr: float,
                    device, pad_id: int, seed: int, precision: str = "fp32", optim: str = "adam") -> list[float]:
    """Train `lm` (an AutoModelForCausalLM) in place on the documents' own tokens; each step's loss.

    Full batches of `batch_size` documents at a constant lr, as minibatches of `minibatch_size` documents
    whose losses are weighted by their share of the batch's predicted tokens (so the step is the batch's
    token mean).
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(lm.parameters(), optim, lr)
    lm.train()
    losses = []
    for step, batch in enumerate(plan_batches(len(examples), batch_size, epochs, generator), 1):
        targets = (examples.lengths[batch] - 1).clamp_(min=0)  # tokens predicted per document
        total = max(int(targets.sum()), 1)
        step_loss = 0.0
        for part in split_chunks(batch, minibatch_size):
            weight = float((examples.lengths[part] - 1).clamp_(min=0).sum()) / total
            if weight == 0:
                continue  # one-token documents predict nothing
            loss = causal_lm_loss(lm, examples, part, pad_id, device, precision) * weight
            loss.backward()
            step_loss += loss.item()
        check_finite_loss(step_loss, step, lr)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
    lm.eval()
    return losses
