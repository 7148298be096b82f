"""Optimizer, schedule, train step and train loop. Receives objects, never names of things to load."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from weak_to_strong.batching import Examples, pad_batch, sort_by_length, split_chunks
from weak_to_strong.distributed import DataParallel

ONE_PROCESS = DataParallel()


@dataclass
class TrainSettings:
    batch_size: int
    minibatch_size: int
    epochs: int
    lr: float
    optim: str = "adam"
    lr_schedule: str = "cosine_anneal"
    seed: int = 0
    train_with_dropout: bool = False
    eval_every: int | None = None


LR_SCHEDULES = ("cosine_anneal", "constant")


def make_optimizer(params, name: str, lr: float) -> torch.optim.Optimizer:
    """Adam (torch) or Adafactor (transformers), with the reference's settings."""
    params = [p for p in params if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.95))
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: adam, adafactor")


def make_scheduler(optimizer, name: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine from lr to 0 over all optimizer steps, or constant."""
    if name == "cosine_anneal":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"unknown lr_schedule {name!r}; choose one of: {', '.join(LR_SCHEDULES)}")


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's batches: a fresh permutation each epoch; the last batch may be smaller."""
    return split_chunks(torch.randperm(n, generator=generator), batch_size)


def forward_minibatch(model, examples: Examples, idx: torch.Tensor, pad_id: int, device) -> torch.Tensor:
    input_ids, mask = pad_batch([examples.input_ids[i] for i in idx.tolist()], pad_id)
    return model(input_ids.to(device), mask.to(device))


def batch_loss_stats(model, examples, parts, loss_fn, pad_id, device, dp: DataParallel) -> dict | None:
    """Batch-level loss statistics over the whole (global) batch, if the loss needs them.

    A gradient-free pass over this rank's parts, gathered over ranks.
    """
    if not loss_fn.needs_batch_stats or (len(parts) == 1 and dp.world_size == 1):
        return None  # a single minibatch computes them from its own logits
    with torch.no_grad():
        logits = torch.cat([forward_minibatch(model, examples, p.indices, pad_id, device)[: p.n_real] for p in parts])
    labels = torch.cat([examples.labels[p.real] for p in parts]).to(device)
    return loss_fn.batch_stats(dp.gather_rows(logits), dp.gather_rows(labels))


def train_step(model, examples: Examples, batch: torch.Tensor, loss_fn, optimizer, scheduler,
               minibatch_size: int, step_frac: float, pad_id: int, device, dp: DataParallel = ONE_PROCESS) -> float:
    """One optimizer step over a batch, accumulated over minibatches (this rank's share of them).

    Each minibatch's mean loss is weighted by its share of the batch, so the
    update equals the full-batch update while memory scales with the minibatch.
    """
    parts = dp.parts(sort_by_length(batch, examples.lengths), minibatch_size)
    stats = batch_loss_stats(model, examples, parts, loss_fn, pad_id, device, dp)
    total = 0.0
    for i, part in enumerate(parts):
        with dp.gradient_sync(model, enabled=i == len(parts) - 1):
            logits = forward_minibatch(model, examples, part.indices, pad_id, device)[: part.n_real]
            labels = examples.labels[part.real].to(device)
            loss = loss_fn(logits, labels, step_frac, stats) * (part.n_real / len(batch)) if part.n_real \
                else logits.sum() * 0.0  # a placeholder joins the collectives with zero gradient
            (loss * dp.grad_scale).backward()
        total += loss.item()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return dp.sum(total)


def train_model(model, examples: Examples, loss_fn, settings: TrainSettings, device, pad_id: int,
                logger, evaluate: Callable[[], dict] | None = None, dp: DataParallel = ONE_PROCESS) -> None:
    """Train in place. `evaluate` (optional) is called every settings.eval_every steps and its dict logged.

    Under torchrun, `dp` says which share of every batch this rank trains on.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    steps_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    optimizer = make_optimizer(model.parameters(), settings.optim, settings.lr)
    scheduler = make_scheduler(optimizer, settings.lr_schedule, total_steps)
    # Without dropout, train in eval mode: the same for every architecture, no config surgery.
    model.train(settings.train_with_dropout)
    step = 0
    with tqdm(total=total_steps, desc="train", **dp.progress_options()) as bar:
        for epoch in range(settings.epochs):
            for batch in shuffled_batches(len(examples), settings.batch_size, generator):
                lr = scheduler.get_last_lr()[0]
                loss = train_step(model, examples, batch, loss_fn, optimizer, scheduler,
                                  settings.minibatch_size, step / total_steps, pad_id, device, dp)
                step += 1
                logger.log({"step": step, "epoch": epoch, "loss": loss, "lr": lr})
                bar.set_postfix(loss=f"{loss:.4f}")
                bar.update()
                if evaluate is not None and settings.eval_every and step % settings.eval_every == 0 \
                        and step < total_steps:
                    logger.log({"step": step, **evaluate()})
                    model.train(settings.train_with_dropout)
    model.eval()
