"""Compute precision: autocast dtype and loss scaling, resolved when a run starts.

`--precision` picks the dtype of autocast regions (the forward pass); weights,
gradients and optimizer state keep the dtype the model was loaded in (float32
unless the model registry says otherwise). "auto" is bf16 on a CUDA device that
supports it and fp32 everywhere else: on CPU, bf16 matmuls are only fast with
AMX / AVX512-BF16, and fp16 without loss scaling is not a safe default.

Names, checks and resolution for a `DeviceKind` import no torch: config.py validates and resolves
runs with them, and analysis imports config. The functions that touch a device or a dtype import
torch when called.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS: dict[str, str | None] = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}
"""Autocast dtype per precision, by its name in torch; None runs without autocast."""
PRECISION_CHOICES = (*PRECISIONS, "auto")


def check_precision(name: str) -> None:
    if name not in PRECISION_CHOICES:
        raise ValueError(f"unknown precision {name!r}; choose one of: {', '.join(PRECISION_CHOICES)}")


@dataclass(frozen=True)
class DeviceKind:
    """What a run's resolution needs to know of the device it runs on, without that device being here:
    a sweep names the runs of a Slurm job on the login node (see `sweep.planning_device`)."""

    type: str = "cpu"
    """cpu, cuda or mps."""
    bf16: bool = False
    """bf16 autocast is supported (CUDA from Ampere on)."""


CPU = DeviceKind("cpu")
CUDA_BF16 = DeviceKind("cuda", bf16=True)


def device_kind(device: torch.device) -> DeviceKind:
    """The kind of a device that is here (queried when called, never at import)."""
    import torch

    if device.type == "cuda":
        return DeviceKind("cuda", bf16=torch.cuda.is_bf16_supported())
    return DeviceKind(device.type)


def resolve_precision(name: str, device: torch.device | DeviceKind) -> str:
    """A concrete precision (fp32, bf16 or fp16) for this device; "auto" picks bf16 where supported."""
    check_precision(name)
    if name != "auto":
        return name
    kind = device if isinstance(device, DeviceKind) else device_kind(device)
    return "bf16" if kind.type == "cuda" and kind.bf16 else "fp32"


def autocast(precision: str, device: torch.device):
    """The autocast context for a forward pass (a no-op context for fp32)."""
    import torch

    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


def make_grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Dynamic loss scaling for fp16, whose small gradients would underflow; disabled (a pass-through) otherwise."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def compute_dtype(precision: str, param_dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype matmuls run in: the autocast dtype, else the weights' dtype (float32 if not given; what the MFU
    peak is measured in)."""
    import torch

    dtype = PRECISIONS[precision]
    return getattr(torch, dtype) if dtype is not None else param_dtype or torch.float32
