"""Data-parallel runs under torchrun: the process group, sharding, gathers, and DDP or FSDP2 wrapping.

    torchrun --nproc_per_node=4 train_simple.py --model_size=gpt2-large --ds_name=sciq
    torchrun --nproc_per_node=8 train_simple.py --model_size=Qwen/Qwen-14B --fsdp=True

Every rank draws the same global batches (the shuffle is seeded) and takes a
disjoint share of each, so --batch_size keeps its meaning and a run matches the
single-process run up to float error. Batch-level loss statistics are computed
over the gathered global batch; eval and weak-label inference are sharded and
gathered back into the original order. Without torchrun (WORLD_SIZE unset or 1)
the same code runs with one rank, where every gather is the identity.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass, field

import torch

from weak_to_strong.models import pick_device


@dataclass(frozen=True)
class Part:
    """Rows of one forward pass; only the first `n_real` count (0: a placeholder that keeps ranks in step)."""

    indices: torch.Tensor
    n_real: int

    @property
    def real(self) -> torch.Tensor:
        return self.indices[: self.n_real]


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run: rank, number of ranks, and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that prints, logs and writes files."""
        return self.rank == 0

    def deal(self, chunks: list[torch.Tensor]) -> list[Part]:
        """This rank's share of each chunk: its rows dealt out round-robin over ranks.

        Every rank gets one part per chunk, of nearly equal length and (for
        length-sorted chunks) nearly equal padding. Where a chunk leaves a rank
        nothing, it gets a placeholder part (one row that counts for nothing):
        every rank then does the same forward passes, which FSDP's collectives
        need. One rank: the chunks themselves.
        """
        parts = []
        for chunk in chunks:
            mine = chunk[self.rank :: self.world_size]
            parts.append(Part(mine, len(mine)) if len(mine) else Part(chunk[:1], 0))
        return parts

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's rows concatenated in rank order (an all-gather; ranks may hold different row counts)."""
        if self.world_size == 1:
            return rows
        import torch.distributed as dist

        local = rows.to(self.device)
        counts = [torch.zeros(1, dtype=torch.long, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(counts, torch.tensor([len(local)], device=self.device))
        counts = [int(c) for c in counts]
        padded = local.new_zeros((max(counts), *local.shape[1:]))
        padded[: len(local)] = local
        gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(gathered, padded)
        return torch.cat([g[:n] for g, n in zip(gathered, counts)]).to(rows.device)

    def sum(self, value: float) -> float:
        """The sum of a number over ranks (e.g. each rank's share of the batch loss)."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item()

    def progress_options(self) -> dict:
        """tqdm keywords: bars on rank 0 only (left to tqdm's defaults there, TQDM_* variables included)."""
        return {} if self.is_main else {"disable": True}

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def main_first(self, fn):
        """fn() on rank 0, then on the other ranks: e.g. a download the others then find in place."""
        if self.is_main:
            out = fn()
            self.barrier()
            return out
        self.barrier()
        return fn()

    @property
    def grad_scale(self) -> float:
        """DDP and FSDP average gradients over ranks; each rank's loss is its share of the global mean, so
        scaling it by the number of ranks makes the average the global batch's gradient."""
        return float(self.world_size)

    @contextlib.contextmanager
    def gradient_sync(self, model, enabled: bool):
        """Accumulate gradients locally (no communication) unless `enabled`: sync once per optimizer step."""
        if self.world_size == 1 or enabled:
            yield
        elif is_ddp(model):
            with model.no_sync():
                yield
        else:  # FSDP2
            model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                model.set_requires_gradient_sync(True)

    def load_device(self, fsdp: bool) -> torch.device:
        """Where to load the weights: the CPU for FSDP, whose sharding moves each rank's shard to its GPU."""
        return torch.device("cpu") if fsdp and self.world_size > 1 else self.device

    def wrap(self, model, fsdp: bool = False):
        """DDP, or FSDP2 (parameters, gradients and optimizer state sharded over ranks); as is on one rank."""
        if self.world_size == 1:
            return model
        if fsdp:
            return shard_model(model, self.device)
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def unwrap(self, model):
        """The model inside a DDP wrapper (FSDP2 shards the model in place; there is nothing to unwrap)."""
        return model.module if is_ddp(model) else model

    def full_state_dict(self, model) -> dict:
        """The whole model's weights on rank 0's CPU (a collective under FSDP: every rank must call it)."""
        if self.world_size > 1 and not is_ddp(model):
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return self.unwrap(model).state_dict()


ONE_PROCESS = DataParallel()
"""A process that is the whole run (no torchrun): the default of every function that takes a `dp`."""


FSDP_OPTIMIZERS = ("adam",)
"""Optimizers that can step FSDP2's sharded parameters (DTensors); transformers' Adafactor cannot."""


def check_fsdp_optimizer(optim: str) -> None:
    if optim not in FSDP_OPTIMIZERS:
        raise ValueError(f"--optim={optim} cannot step FSDP's sharded parameters; "
                         f"use --optim={' or '.join(FSDP_OPTIMIZERS)}, or --fsdp=False (DDP)")


def is_ddp(model) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    return isinstance(model, DistributedDataParallel)


def init_data_parallel() -> DataParallel:
    """From torchrun's environment: a process group (NCCL on GPUs, else gloo) when WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DataParallel(device=pick_device())
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if not dist.is_initialized():  # once per process, however many runs it does
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(dist.destroy_process_group)
    return DataParallel(rank=rank, world_size=world_size, device=device)


def transformer_blocks(model) -> list[torch.nn.Module]:
    """The backbone's repeated blocks, named by transformers' `_no_split_modules` (e.g. GPT2Block)."""
    names = next((set(m._no_split_modules) for m in model.modules() if getattr(m, "_no_split_modules", None)), set())
    return [m for m in model.modules() if type(m).__name__ in names]


def shard_by_dtype(module: torch.nn.Module, dtype: torch.dtype, mesh) -> None:
    """fully_shard `module`, first giving submodules whose own parameters are not `dtype` groups of their own.

    FSDP2 all-gathers a group as one flat buffer, so a group holds one dtype:
    the float32 head and (float32) LoRA adapters on a bfloat16 backbone get
    their own groups.
    """
    from torch.distributed.fsdp import FSDPModule, fully_shard

    for sub in reversed(list(module.modules())):  # innermost first
        own = list(sub.parameters(recurse=False))
        if sub is not module and not isinstance(sub, FSDPModule) and any(p.dtype != dtype for p in own):
            fully_shard(sub, mesh=mesh)
    fully_shard(module, mesh=mesh)


def shard_model(model, device: torch.device):
    """FSDP2: each transformer block is a group, then the rest (embeddings, final norm, head) at the root.

    Each group is moved to `device` as it is sharded, so no GPU ever holds the whole model.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    dtype = next(model.backbone.parameters()).dtype
    for block in transformer_blocks(model):
        shard_by_dtype(block, dtype, mesh)
    shard_by_dtype(model, dtype, mesh)
    return model
