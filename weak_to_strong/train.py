"""Optimizer, schedule, train step and train loop. Receives objects, never names of things to load."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from weak_to_strong.batching import Examples, split_chunks
from weak_to_strong.checks import check_finite_loss
from weak_to_strong.distributed import ONE_PROCESS, DataParallel
from weak_to_strong.names import LR_SCHEDULE_NAMES
from weak_to_strong.eval import forward_documents
from weak_to_strong.planner import DEFAULT_MINIBATCH_TOKENS, Minibatch, MinibatchPlanner, choose_planner
from weak_to_strong.precision import make_grad_scaler

LR_SCHEDULES = LR_SCHEDULE_NAMES  # the schedules make_scheduler knows; defined in names.py for config.py


@dataclass
class TrainSettings:
    batch_size: int
    minibatch_size: int | None
    """None: minibatches planned automatically (see `planner.choose_planner`)."""
    epochs: int
    lr: float
    """Adam's learning rate; Adafactor sets its own step size and ignores it, as in the reference."""
    optim: str = "adam"
    lr_schedule: str = "cosine_anneal"
    seed: int = 0
    train_with_dropout: bool = False
    eval_every: int | None = None
    precision: str = "fp32"
    """A resolved precision: fp32, bf16 or fp16 (see precision.py)."""
    minibatch_token_budget: int = DEFAULT_MINIBATCH_TOKENS
    """Automatic minibatches hold at most this many padded tokens (memory)."""
    pack: bool | None = None
    """Automatic minibatches only: several documents per row (see `planner.choose_row_packing`). None: on CPU
    only."""


def make_optimizer(params, name: str, lr: float) -> torch.optim.Optimizer:
    """The reference's optimizers: torch's Adam with its defaults (betas 0.9, 0.999), or Adafactor.

    Adafactor runs as the reference's `torch_optimizer.Adafactor(params, lr=lr)` did, in its default
    mode (relative step and parameter scaling on, warmup_init off), here through transformers'
    implementation of the same algorithm: each step moves a parameter by
    min(1e-2, 1/sqrt(t)) x max(1e-3, RMS(parameter)) (before update clipping), so `lr` and the
    lr schedule play no part (see `make_scheduler`). Any case of `name` is accepted.
    """
    params = [p for p in params if p.requires_grad]
    name = name.lower()
    if name == "adam":
        # The fused kernel does the whole update in one pass over memory (CPU and CUDA alike).
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return torch.optim.Adam(params, lr=lr, fused=fused or None)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        # transformers refuses an lr beside relative_step (torch_optimizer kept it and never read it).
        return Adafactor(params, lr=None, relative_step=True, scale_parameter=True, warmup_init=False)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: adam, adafactor")


class RelativeStepSize:
    """The schedule of an optimizer that sets its own step size (Adafactor's relative step, lr None).

    The reference wrapped Adafactor in its cosine (or constant) schedule too, but that schedule
    changed a group lr that relative-step Adafactor never reads; here nothing is scheduled.
    `get_last_lr` reports the relative step size of the next step, min(1e-2, 1/sqrt(t)), before
    Adafactor scales it by each parameter's RMS.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.steps_done = 0

    def step(self) -> None:
        self.steps_done += 1

    def get_last_lr(self) -> list[float]:
        # The optimizer's own formula, without the per-parameter scale.
        return [type(self.optimizer)._get_lr({**group, "scale_parameter": False}, {"step": self.steps_done + 1})
                for group in self.optimizer.param_groups]


def make_scheduler(optimizer, name: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR | RelativeStepSize:
    """Cosine from lr to 0 over all optimizer steps, or constant; no schedule for relative-step Adafactor."""
    if name not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {name!r}; choose one of: {', '.join(LR_SCHEDULES)}")
    if any(group["lr"] is None for group in optimizer.param_groups):
        return RelativeStepSize(optimizer)
    if name == "cosine_anneal":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def count_steps(n: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of a run, as in the reference: full batches of the epochs chained, floor(n x epochs / batch).

    A ValueError (naming the flags) if that is no step at all.
    """
    steps = n * epochs // batch_size
    if steps == 0:
        raise ValueError(f"{n} training documents x --epochs={epochs} make no full batch of --batch_size={batch_size}; "
                         "lower --batch_size, or raise --epochs or --n_docs")
    return steps


def plan_batches(n: int, batch_size: int, epochs: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Every step's batch: a fresh permutation per epoch, the epochs chained and cut into full batches.

    As in the reference, a batch may span two epochs, and the documents left over after the last
    full batch are not trained on: no step ever trains on a fraction of a batch (which would make
    logconf's batch threshold a quantile over a handful of documents).
    """
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)])
    steps = count_steps(n, batch_size, epochs)
    return split_chunks(order[: steps * batch_size], batch_size)


def set_train_mode(model, with_dropout: bool) -> None:
    """Train mode, or (without dropout) eval mode for every module but the gradient-checkpointing switches.

    transformers checkpoints a layer only when the layer itself is in training
    mode; flipping just that flag keeps checkpointing on while every dropout
    module (a child) stays off.
    """
    model.train(with_dropout)
    if not with_dropout:
        for module in model.modules():
            if getattr(module, "gradient_checkpointing", False) is True:
                module.training = True


def use_sparse_embedding_grads(model, device) -> list[torch.nn.Embedding]:
    """On CPU, make trainable embedding tables' gradients sparse: only the rows a minibatch used.

    A dense embedding gradient is a fresh vocab x width tensor per minibatch
    (GPT-2: 50257 rows), which costs a small model more memory traffic than the
    minibatch's whole forward and backward. `EmbeddingGradTables` adds the sparse
    rows into one dense table kept across steps, so the optimizer still sees the
    dense gradient and memory stays one table however large the batch. Not under
    torch.distributed, whose gradient buckets are dense, and pointless on GPUs,
    where filling the table takes microseconds.
    Returns the switched modules (`Optimization.close` switches them back).
    """
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if torch.device(device).type != "cpu" or distributed:
        return []
    switched = [m for m in model.modules()
                if isinstance(m, torch.nn.Embedding) and m.weight.requires_grad and not m.sparse]
    for module in switched:
        module.sparse = True
    return switched


class EmbeddingGradTables:
    """Dense gradient tables for sparse embedding gradients, kept all-zero between steps.

    After each backward, `collect` adds every sparse gradient into its table and
    notes the rows; `attach` hands the tables to the optimizer as dense gradients
    (dense Adam then updates every row every step, as without sparse gradients);
    `reset` zeroes just the noted rows. A table is allocated and zero-filled
    once per run instead of once per step (the 50257 x width fill was ~6 % of a
    small GPT-2's CPU step).
    """

    def __init__(self):
        self.tables: dict[torch.Tensor, torch.Tensor] = {}
        self.rows: dict[torch.Tensor, list[torch.Tensor]] = {}

    def collect(self, optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    if p not in self.tables:
                        self.tables[p] = torch.zeros_like(p)
                    rows = p.grad._indices()[0]  # uncoalesced: index_add_ sums repeated rows
                    self.tables[p].index_add_(0, rows, p.grad._values())
                    self.rows.setdefault(p, []).append(rows)
                    p.grad = None

    def attach(self) -> None:
        for p in self.rows:
            p.grad = self.tables[p]

    def reset(self) -> None:
        for p, rows in self.rows.items():
            self.tables[p].index_fill_(0, torch.cat(rows), 0.0)
        self.rows.clear()


class Optimization:
    """The optimizer and what steps with it: lr schedule, fp16 loss scaler, kept embedding-gradient tables.

    A context manager: leaving it switches embedding tables made sparse for the
    run (`use_sparse_embedding_grads`) back to dense, whether training ended or
    raised, so the model leaves as it came.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler, scaler: torch.amp.GradScaler | None = None,
                 sparse_embeddings: list[torch.nn.Embedding] | None = None):
        self.optimizer, self.scheduler = optimizer, scheduler
        self.scaler = scaler or make_grad_scaler("fp32", torch.device("cpu"))  # disabled: a pass-through
        self.embedding_grads = EmbeddingGradTables()
        self.sparse_embeddings = list(sparse_embeddings or [])

    @classmethod
    def for_run(cls, model, settings: TrainSettings, total_steps: int, device) -> "Optimization":
        """The run's optimizer, schedule and scaler; on CPU, sparse embedding gradients (see
        `use_sparse_embedding_grads`)."""
        optimizer = make_optimizer(model.parameters(), settings.optim, settings.lr)
        return cls(optimizer, make_scheduler(optimizer, settings.lr_schedule, total_steps),
                   make_grad_scaler(settings.precision, torch.device(device)),
                   use_sparse_embedding_grads(model, device))

    @property
    def lr(self) -> float:
        """The learning rate of the next step (Adafactor: its relative step size, see `RelativeStepSize`)."""
        return self.scheduler.get_last_lr()[0]

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the loss's gradients (scaled for fp16); sparse embedding gradients go into the tables."""
        self.scaler.scale(loss).backward()
        self.embedding_grads.collect(self.optimizer)

    def step(self) -> None:
        """Update with the accumulated gradients, advance the schedule, and clear gradients and tables."""
        self.embedding_grads.attach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.embedding_grads.reset()

    def close(self) -> None:
        """Switch the run's sparse embedding tables back (idempotent)."""
        for module in self.sparse_embeddings:
            module.sparse = False
        self.sparse_embeddings = []

    def __enter__(self) -> "Optimization":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def batch_loss_stats(model, minibatches: list[Minibatch], loss_fn, device, precision: str = "fp32",
                     dp: DataParallel = ONE_PROCESS) -> dict | None:
    """Batch-level loss statistics over the whole (global) batch, if the loss needs them.

    A gradient-free pass over this rank's minibatches, gathered over ranks.
    """
    if not loss_fn.needs_batch_stats or (len(minibatches) == 1 and dp.world_size == 1):
        return None  # a single minibatch computes them from its own logits
    labels = dp.gather_rows(torch.cat([mb.labels for mb in minibatches]).to(device))
    if not loss_fn.stats_need_logits:
        return loss_fn.batch_stats(None, labels)
    with torch.no_grad():
        logits = torch.cat([forward_documents(model, mb.layout, device, precision)[: mb.part.n_real]
                            for mb in minibatches])
    return loss_fn.batch_stats(dp.gather_rows(logits), labels)


def train_step(model, batch: torch.Tensor, loss_fn, optimization: Optimization, planner: MinibatchPlanner,
               step_frac: float, device, precision: str = "fp32", dp: DataParallel = ONE_PROCESS) -> float:
    """One optimizer step over a batch, accumulated over minibatches (this rank's share of them).

    Each minibatch's mean loss is weighted by its share of the batch, so the
    update equals the full-batch update while memory scales with the minibatch.
    The loss is read back once per step, not per minibatch (a device sync).
    """
    minibatches = planner.plan(batch, dp)
    stats = batch_loss_stats(model, minibatches, loss_fn, device, precision, dp)
    total = torch.zeros((), device=device)
    for i, mb in enumerate(minibatches):
        # Under torchrun, gradients are summed over ranks once a step: after the last minibatch.
        with dp.gradient_sync(model, enabled=i == len(minibatches) - 1):
            logits = forward_documents(model, mb.layout, device, precision)[: mb.part.n_real]
            loss = loss_fn(logits, mb.labels.to(device), step_frac, stats) * (mb.part.n_real / len(batch)) \
                if mb.part.n_real else logits.sum() * 0.0  # a placeholder joins the collectives with zero gradient
            optimization.backward(loss * dp.grad_scale)
        total += loss.detach()
    optimization.step()
    return dp.sum(total.item())


def train_model(model, examples: Examples, loss_fn, settings: TrainSettings, device, pad_id: int,
                logger, evaluate: Callable[[], dict] | None = None, dp: DataParallel = ONE_PROCESS,
                after_epoch: Callable[[int], None] | None = None) -> None:
    """Train in place. `evaluate` (optional) is called every settings.eval_every steps and its dict logged;
    `after_epoch(epoch)` (optional) after the last step of every epoch, e.g. to keep a checkpoint.

    Under torchrun, `dp` says which share of every batch this rank trains on.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    batches = plan_batches(len(examples), settings.batch_size, settings.epochs, generator)
    total_steps = len(batches)
    planner = choose_planner(dp.unwrap(model), examples, pad_id, device, settings.minibatch_size,
                             settings.minibatch_token_budget, settings.pack)
    # Without dropout, train in eval mode: the same for every architecture, no config surgery.
    set_train_mode(model, settings.train_with_dropout)
    with Optimization.for_run(model, settings, total_steps, device) as optimization, \
            tqdm(total=total_steps, desc="train", **dp.progress_options()) as bar:
        for done, batch in enumerate(batches):
            lr = optimization.lr
            loss = train_step(model, batch, loss_fn, optimization, planner, done / total_steps, device,
                              settings.precision, dp)
            epoch = done * settings.batch_size // len(examples)  # the epoch of the batch's first document
            step = done + 1
            check_finite_loss(loss, step, settings.lr)
            logger.log({"step": step, "epoch": epoch, "loss": loss, "lr": lr})
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update()
            if evaluate is not None and settings.eval_every and step % settings.eval_every == 0 \
                    and step < total_steps:
                logger.log({"step": step, **evaluate()})
                set_train_mode(model, settings.train_with_dropout)
            if after_epoch is not None and (step == total_steps
                                            or step * settings.batch_size // len(examples) != epoch):
                after_epoch(epoch)
                set_train_mode(model, settings.train_with_dropout)
    model.eval()
