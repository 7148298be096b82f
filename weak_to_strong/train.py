"""Optimizer, schedule, train step and train loop. Receives objects, never names of things to load."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from weak_to_strong.batching import (Examples, RowPacking, plan_minibatches, sort_by_length, split_chunks,
                                    split_for_packing)
from weak_to_strong.checks import check_finite_loss
from weak_to_strong.distributed import DataParallel, Part
from weak_to_strong.batching import DocumentLayout, lay_out_documents
from weak_to_strong.eval import forward_documents
from weak_to_strong.precision import make_grad_scaler

ONE_PROCESS = DataParallel()
LR_SCHEDULES = ("cosine_anneal", "constant")
DEFAULT_MINIBATCH_TOKENS = 32 * 1024
MINIBATCH_OVERHEAD = {"cpu": 2e8}
"""The fixed cost of one more minibatch (forward + backward), in parameter-tokens: divided by the model's
non-embedding parameters, it is the number of tokens whose compute costs as much. CPU: about 10 ms of
per-op overhead, the compute of ~60 tokens of a 3M-parameter model (fitted in bench/RESULTS.md).
Elsewhere a minibatch costs kernel launches and syncs worth far more than its padding: automatic
minibatches are then as few as the token budget allows."""
DEFAULT_MINIBATCH_OVERHEAD = 1e15
ATTENTION_SPAN_PER_WIDTH = 3
"""Packed rows: per token, attention over a row of L tokens costs ~12 x width x L FLOPs a layer (forward and
backward) against ~72 x width^2 for the rest of the layer, which would match at L = 6 x width; but masked
attention runs at a fraction of the matmul rate on CPU, and 3 x width measured fastest (bench/RESULTS.md:
61 % median MFU against 55 % at 6 x width and 58 % at 1.5 x width, width 256)."""


@dataclass
class TrainSettings:
    batch_size: int
    minibatch_size: int | None
    """None: length-grouped minibatches sized automatically (see `make_minibatches`)."""
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
    """Automatic minibatches only: several documents per row (see `choose_packing`). None: on CPU only."""


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
    Returns the switched modules (switch them back with `.sparse = False`).
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


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside embedding tables (token and position embeddings), each counted once."""
    embedding = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    params = {id(p): p for p in model.parameters() if id(p) not in embedding}
    return sum(p.numel() for p in params.values())


def estimate_minibatch_overhead(model: torch.nn.Module, device) -> int:
    """What one more minibatch costs, in tokens of this model's compute (see MINIBATCH_OVERHEAD)."""
    overhead = MINIBATCH_OVERHEAD.get(torch.device(device).type, DEFAULT_MINIBATCH_OVERHEAD)
    return int(min(overhead / max(non_embedding_params(model), 1), 1 << 30))


def make_minibatches(examples: Examples, batch: torch.Tensor, minibatch_size: int | None, token_budget: int,
                     overhead_tokens: int, world_size: int = 1) -> list[torch.Tensor]:
    """The batch sorted by length and split: into equal minibatches, or (None) into planned ones.

    Batch membership never changes: the batch stays a uniformly shuffled draw and
    only the order inside it, hence which examples share a minibatch, follows length.
    Under torchrun each minibatch is later dealt out over the ranks, so sizes and
    budgets here are per rank times the number of ranks.
    """
    if minibatch_size is not None:
        return split_chunks(sort_by_length(batch, examples.lengths), minibatch_size * world_size)
    return plan_minibatches(batch, examples.lengths, token_budget * world_size, overhead_tokens * world_size)


def choose_packing(model, device, minibatch_size: int | None, pack: bool | None) -> RowPacking | None:
    """How to pack documents into rows, or None for right-padded rows (one document each).

    Only for automatic minibatches (a given minibatch size keeps its meaning:
    that many documents a forward pass) and backbones that support it. By
    default only on CPU: there every padded token costs its full compute and a
    minibatch ~10 ms of overhead, while on GPUs padding costs little and a packed
    (block-diagonal) mask would lose the flash-attention path.
    """
    from weak_to_strong.model import max_positions, supports_packing

    if minibatch_size is not None or pack is False or (pack is None and torch.device(device).type != "cpu"):
        return None
    if not supports_packing(model):
        return None
    width = model.backbone.config.hidden_size
    return RowPacking(max_row_len=max_positions(model.backbone.config) or 1024,
                      attention_span=ATTENTION_SPAN_PER_WIDTH * width)


def batch_loss_stats(model, examples, parts: list[Part], layouts: list[DocumentLayout], loss_fn, device,
                     precision: str = "fp32", dp: DataParallel = ONE_PROCESS) -> dict | None:
    """Batch-level loss statistics over the whole (global) batch, if the loss needs them.

    A gradient-free pass over this rank's parts (laid out as `layouts`), gathered over ranks.
    """
    if not loss_fn.needs_batch_stats or (len(parts) == 1 and dp.world_size == 1):
        return None  # a single minibatch computes them from its own logits
    labels = dp.gather_rows(torch.cat([examples.labels[p.real] for p in parts]).to(device))
    if not loss_fn.stats_need_logits:
        return loss_fn.batch_stats(None, labels)
    with torch.no_grad():
        logits = torch.cat([forward_documents(model, layout, device, precision)[: p.n_real]
                            for p, layout in zip(parts, layouts)])
    return loss_fn.batch_stats(dp.gather_rows(logits), labels)


def train_step(model, examples: Examples, batch: torch.Tensor, loss_fn, optimizer, scheduler,
               minibatch_size: int | None, step_frac: float, pad_id: int, device, precision: str = "fp32",
               scaler: torch.amp.GradScaler | None = None,
               minibatch_token_budget: int = DEFAULT_MINIBATCH_TOKENS,
               minibatch_overhead_tokens: int | None = None, dp: DataParallel = ONE_PROCESS,
               packing: RowPacking | None = None, embedding_grads: EmbeddingGradTables | None = None) -> float:
    """One optimizer step over a batch, accumulated over minibatches (this rank's share of them).

    Each minibatch's mean loss is weighted by its share of the batch, so the
    update equals the full-batch update while memory scales with the minibatch.
    The loss is read back once per step, not per minibatch (a device sync).
    With `packing` (automatic minibatches only), each rank packs the documents
    dealt to it into rows. Sparse embedding gradients are gathered in
    `embedding_grads` (kept by the caller across steps; else fresh per step).
    """
    scaler = scaler or make_grad_scaler("fp32", torch.device(device))
    if embedding_grads is None:
        embedding_grads = EmbeddingGradTables()
    if packing is not None and minibatch_size is None:
        # Split only where memory needs it; under torchrun the budget is per rank, each minibatch dealt over ranks.
        minibatches = split_for_packing(batch, examples.lengths, minibatch_token_budget * dp.world_size)
    else:
        packing = None
        if minibatch_size is None and minibatch_overhead_tokens is None:
            minibatch_overhead_tokens = estimate_minibatch_overhead(model, device)
        minibatches = make_minibatches(examples, batch, minibatch_size, minibatch_token_budget,
                                       minibatch_overhead_tokens, dp.world_size)
    parts = dp.deal(minibatches)
    # Laid out once: the statistics pass (logconf) and the training pass see the same rows.
    layouts = [lay_out_documents(examples, part.indices, pad_id, packing) for part in parts]
    stats = batch_loss_stats(model, examples, parts, layouts, loss_fn, device, precision, dp)
    total = torch.zeros((), device=device)
    for i, (part, layout) in enumerate(zip(parts, layouts)):
        with dp.gradient_sync(model, enabled=i == len(parts) - 1):
            logits = forward_documents(model, layout, device, precision)[: part.n_real]
            labels = examples.labels[part.real].to(device)
            loss = loss_fn(logits, labels, step_frac, stats) * (part.n_real / len(batch)) if part.n_real \
                else logits.sum() * 0.0  # a placeholder joins the collectives with zero gradient
            scaler.scale(loss * dp.grad_scale).backward()
            embedding_grads.collect(optimizer)
        total += loss.detach()
    embedding_grads.attach()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    embedding_grads.reset()
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
    optimizer = make_optimizer(model.parameters(), settings.optim, settings.lr)
    scheduler = make_scheduler(optimizer, settings.lr_schedule, total_steps)
    scaler = make_grad_scaler(settings.precision, torch.device(device))
    # Without dropout, train in eval mode: the same for every architecture, no config surgery.
    set_train_mode(model, settings.train_with_dropout)
    sparse_embeddings = use_sparse_embedding_grads(model, device)
    overhead_tokens = estimate_minibatch_overhead(model, device)
    packing = choose_packing(dp.unwrap(model), device, settings.minibatch_size, settings.pack)
    embedding_grads = EmbeddingGradTables()
    with tqdm(total=total_steps, desc="train", **dp.progress_options()) as bar:
        for done, batch in enumerate(batches):
            lr = scheduler.get_last_lr()[0]
            loss = train_step(model, examples, batch, loss_fn, optimizer, scheduler, settings.minibatch_size,
                              done / total_steps, pad_id, device, precision=settings.precision, scaler=scaler,
                              minibatch_token_budget=settings.minibatch_token_budget,
                              minibatch_overhead_tokens=overhead_tokens, dp=dp, packing=packing,
                              embedding_grads=embedding_grads)
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
    for module in sparse_embeddings:
        module.sparse = False
    model.eval()
