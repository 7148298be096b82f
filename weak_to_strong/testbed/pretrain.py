"""Causal-LM pretraining of one ladder model on the generated corpus.

Documents are packed into fixed-length rows with position ids restarting at 0
for each document, so transformers builds a block-diagonal causal mask: every
document is seen as it will be at fine-tuning time, from position 0, and no
token attends across a document boundary. The optimizer is fused Adam with a
linear warmup and cosine decay.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from random import Random
from typing import Callable

import torch
import torch.nn.functional as F

IGNORE = -100


@dataclass(frozen=True)
class PretrainSettings:
    steps: int
    batch_rows: int = 16
    row_len: int = 128
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.0
    seed: int = 0


@dataclass
class PackedBatch:
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    real_tokens: int


def pack_rows(docs: list[list[int]], n_rows: int, row_len: int, pad_id: int) -> PackedBatch:
    """Fill rows with whole documents in order (a document that does not fit starts the next row)."""
    ids = torch.full((n_rows, row_len), pad_id, dtype=torch.long)
    pos = torch.zeros((n_rows, row_len), dtype=torch.long)
    targets = torch.full((n_rows, row_len), IGNORE, dtype=torch.long)
    row, col, real = 0, 0, 0
    for doc in docs:
        doc = doc[:row_len]
        if col + len(doc) > row_len:
            row, col = row + 1, 0
            if row == n_rows:
                break
        n = len(doc)
        ids[row, col:col + n] = torch.tensor(doc)
        pos[row, col:col + n] = torch.arange(n)
        targets[row, col:col + n - 1] = torch.tensor(doc[1:])
        col += n
        real += n
    # Padding gets its own position run, so it never joins the last document's block.
    for r in range(n_rows):
        used = int((targets[r] != IGNORE).nonzero().max()) + 2 if (targets[r] != IGNORE).any() else 0
        if used < row_len:
            pos[r, used:] = torch.arange(row_len - used)
    return PackedBatch(ids, pos, targets, real)


def lr_at(step: int, settings: PretrainSettings) -> float:
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


DocSource = Callable[[Random, int], list[list[int]]]
"""Draws n documents (token ids) from a seeded rng."""


def corpus_batches(make_docs: DocSource, settings: PretrainSettings, pad_id: int):
    """The packed batches a pretraining run trains on, in order: deterministic for the settings' seed."""
    rng = Random(f"pretrain-{settings.seed}")
    # More documents than fit (~30 tokens each): rows are filled, the rest of the draw is dropped.
    docs_per_batch = settings.batch_rows * settings.row_len // 24 + 8
    for _ in range(settings.steps):
        yield pack_rows(make_docs(rng, docs_per_batch), settings.batch_rows, settings.row_len, pad_id)


def make_optimizer(model, lr: float) -> torch.optim.Optimizer:
    """Fused Adam (one pass over memory per step) with beta2 0.98, usual for short LM pretraining."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), fused=True)


def lm_loss(model, batch: PackedBatch) -> torch.Tensor:
    """Mean next-token loss of a packed batch (no mask: the restarting position ids separate documents)."""
    logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), ignore_index=IGNORE)


def train_step(model, opt: torch.optim.Optimizer, batch: PackedBatch) -> float:
    """One causal-LM step on a packed batch."""
    loss = lm_loss(model, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def pretrain(model, make_docs: DocSource, settings: PretrainSettings, pad_id: int,
             progress: Callable[[int, float], None] | None = None) -> dict:
    """Train `model` (a causal LM) in place; returns the mean loss of the last tenth, tokens and seconds."""
    torch.manual_seed(settings.seed)
    model.train()
    opt = make_optimizer(model, settings.lr)
    tokens, tail_losses, start = 0, [], time.perf_counter()
    for step, batch in enumerate(corpus_batches(make_docs, settings, pad_id)):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, settings)
        loss = train_step(model, opt, batch)
        tokens += batch.real_tokens
        if step >= settings.steps * 0.9:
            tail_losses.append(loss)
        if progress is not None:
            progress(step, loss)
    return {"final_loss": sum(tail_losses) / max(1, len(tail_losses)), "tokens": tokens,
            "seconds": time.perf_counter() - start}
