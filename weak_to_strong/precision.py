"""Compute precision: autocast dtype and loss scaling, resolved when a run starts.

`--precision` picks the dtype of autocast regions (the forward pass); weights,
gradients and optimizer state keep the dtype the model was loaded in (float32
unless the model registry says otherwise). "auto" is bf16 on a CUDA device that
supports it and fp32 everywhere else: on CPU, bf16 matmuls are only fast with
AMX / AVX512-BF16, and fp16 without loss scaling is not a safe default.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Autocast dtype per precision; None runs without autocast."""
PRECISION_CHOICES = (*PRECISIONS, "auto")


def check_precision(name: str) -> None:
    if name not in PRECISION_CHOICES:
        raise ValueError(f"unknown precision {name!r}; choose one of: {', '.join(PRECISION_CHOICES)}")


def resolve_precision(name: str, device: torch.device) -> str:
    """A concrete precision (fp32, bf16 or fp16) for this device; "auto" picks bf16 where supported."""
    check_precision(name)
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device):
    """The autocast context for a forward pass (a no-op context for fp32)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Dynamic loss scaling for fp16, whose small gradients would underflow; disabled (a pass-through) otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def compute_dtype(precision: str, param_dtype: torch.dtype = torch.float32) -> torch.dtype:
    """The dtype matmuls run in: the autocast dtype, else the weights' dtype (what the MFU peak is measured in)."""
    return PRECISIONS[precision] or param_dtype
