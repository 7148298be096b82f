"""Model registry, defined once and used by every script.

A name is either a registry entry, a local directory holding a saved model, or
a Hugging Face hub id ("org/name"); the last two get `default_spec` settings.
Devices and dtypes are resolved when a run starts, never at import: torch is imported
by the functions that pick them, so config.py validates and names runs without it.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from weak_to_strong.testbed.ladder import ladder_names, rung

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Hub id or local path handed to `from_pretrained` (toy models: resolved by `builder`)."""
    default_lr: float = 1e-5
    """Learning rate when --lr is not given (tuned for batch size 32)."""
    probe_lr: float | None = None
    """Learning rate under --linear_probe when --lr is not given (a head alone on frozen features takes far larger
    steps than the whole model). None: default_lr."""
    eval_batch_size: int = 32
    default_optimizer: str = "adam"
    gradient_checkpointing: bool = False
    dtype: str = "float32"
    """Weights dtype on an accelerator; CPU always runs float32."""
    minibatch_size: int = 32
    """Per-device minibatch when --minibatch_size_per_device is not given."""
    pretrained_kwargs: dict = field(default_factory=dict)
    """Extra keyword arguments for `from_pretrained` (revision, trust_remote_code)."""
    builder: Callable[[], str] | None = None
    """Builds the model locally and returns its path (toy models)."""
    lora_rank: int = 0
    """Default --lora_rank: 0 trains every weight; r > 0 trains rank-r LoRA adapters and the head."""
    fsdp: bool = False
    """Default --fsdp: under torchrun, shard the model over GPUs (FSDP2) rather than replicate it (DDP)."""
    params_m: float | None = None
    """Approximate parameter count in millions: orders a bootstrapping chain (weak to strong). None: unknown."""
    context: int | None = None
    """The model's context length (its config's n_positions), where known without loading the config: runs are
    named after the max_ctx they use, so a sweep can name them offline. None: read from the model's config."""


def _builder(module: str, function: str, name: str) -> Callable[[], str]:
    """A lazy `module.function(name)`: a locally built model's path, built on first use (not at import)."""
    def build() -> str:
        return getattr(importlib.import_module(module), function)(name)

    return build


def non_embedding_params_m(n_layer: int, n_embd: int) -> float:
    """A GPT-2 block stack's non-embedding parameters (12 * layers * width^2), in millions."""
    return 12 * n_layer * n_embd ** 2 / 1e6


def toy_spec(size: str) -> ModelSpec:
    from weak_to_strong.toy import TOY_ARCHS, TOY_CONTEXT

    arch = TOY_ARCHS[size]
    return ModelSpec(size, params_m=non_embedding_params_m(arch["n_layer"], arch["n_embd"]), context=TOY_CONTEXT,
                     default_lr=1e-3, eval_batch_size=256, minibatch_size=32,
                     builder=_builder("weak_to_strong.toy", "ensure_toy_model", size))


def ladder_spec(name: str) -> ModelSpec:
    from weak_to_strong.testbed.ladder import CONTEXT

    spec = rung(name)
    return ModelSpec(name, params_m=non_embedding_params_m(spec.n_layer, spec.n_embd), context=CONTEXT,
                     default_lr=spec.finetune_lr, probe_lr=spec.probe_lr, eval_batch_size=256, minibatch_size=32,
                     builder=_builder("weak_to_strong.testbed.ladder", "ensure_ladder_model", name))


_QWEN1 = dict(trust_remote_code=True)

_SPECS = [
    # The paper's GPT-2 ladder, with the reference's tuned learning rates.
    ModelSpec("gpt2", params_m=124, context=1024, default_lr=5e-5, eval_batch_size=32, minibatch_size=32),
    ModelSpec("gpt2-medium", params_m=355, context=1024, default_lr=5e-5, eval_batch_size=32, minibatch_size=16),
    ModelSpec("gpt2-large", params_m=774, context=1024, default_lr=1e-5, eval_batch_size=32, minibatch_size=8),
    ModelSpec("gpt2-xl", params_m=1558, context=1024,
              default_lr=1e-5, eval_batch_size=2, gradient_checkpointing=True, minibatch_size=4),
    # The paper's Qwen (v1) family; it needs remote code, pinned to the reference's revisions.
    ModelSpec("Qwen/Qwen-1_8B", params_m=1800,
              default_lr=1e-5, eval_batch_size=2, gradient_checkpointing=True, dtype="bfloat16",
              minibatch_size=4, pretrained_kwargs=dict(_QWEN1, revision="5fde88dff770a7d036847211f5d9d9705f0caa69")),
    ModelSpec("Qwen/Qwen-7B", params_m=7700,
              default_lr=1e-5, eval_batch_size=2, gradient_checkpointing=True, dtype="bfloat16",
              minibatch_size=1, pretrained_kwargs=dict(_QWEN1, revision="d4efd21e866b9cb3466cb65b963933f5e98016d1")),
    # Does not fit on one GPU with its Adam state: FSDP under torchrun.
    ModelSpec("Qwen/Qwen-14B", params_m=14200,
              default_lr=1e-5, eval_batch_size=2, gradient_checkpointing=True, dtype="bfloat16",
              minibatch_size=1, fsdp=True,
              pretrained_kwargs=dict(_QWEN1, revision="8be2854218fea9054331e217fd26a06f3fd02004")),
    # Adafactor cannot step FSDP's sharded parameters: with --fsdp=True, give --optim=adam.
    ModelSpec("Qwen/Qwen-72B", params_m=72300,
              default_lr=1e-5, eval_batch_size=1, gradient_checkpointing=True, dtype="bfloat16",
              minibatch_size=1, default_optimizer="adafactor",
              pretrained_kwargs=dict(_QWEN1, revision="fec78c0e3b3b10dd9f0ce775c34a686a3255a7d1")),
    # Today's small open ladders (native transformers code, no remote code).
    ModelSpec("Qwen/Qwen2.5-0.5B", params_m=494,
              default_lr=1e-5, eval_batch_size=32, dtype="bfloat16", minibatch_size=16),
    ModelSpec("Qwen/Qwen2.5-1.5B", params_m=1540,
              default_lr=1e-5, eval_batch_size=16, dtype="bfloat16", minibatch_size=8),
    ModelSpec("Qwen/Qwen2.5-3B", params_m=3090,
              default_lr=1e-5, eval_batch_size=8, gradient_checkpointing=True, dtype="bfloat16",
              minibatch_size=4),
    ModelSpec("Qwen/Qwen2.5-7B", params_m=7620,
              default_lr=1e-5, eval_batch_size=4, gradient_checkpointing=True, dtype="bfloat16",
              minibatch_size=2),
    ModelSpec("meta-llama/Llama-3.2-1B", params_m=1240,
              default_lr=1e-5, eval_batch_size=16, dtype="bfloat16", minibatch_size=8),
    ModelSpec("meta-llama/Llama-3.2-3B", params_m=3210, default_lr=1e-5, eval_batch_size=8, gradient_checkpointing=True,
              dtype="bfloat16", minibatch_size=4),
    ModelSpec("EleutherAI/pythia-70m", params_m=70, default_lr=5e-5, eval_batch_size=64, minibatch_size=32),
    ModelSpec("EleutherAI/pythia-160m", params_m=160, default_lr=5e-5, eval_batch_size=64, minibatch_size=32),
    ModelSpec("EleutherAI/pythia-410m", params_m=410, default_lr=2e-5, eval_batch_size=32, minibatch_size=16),
    ModelSpec("EleutherAI/pythia-1b", params_m=1010,
              default_lr=1e-5, eval_batch_size=16, dtype="bfloat16", minibatch_size=8),
    ModelSpec("EleutherAI/pythia-1.4b", params_m=1410,
              default_lr=1e-5, eval_batch_size=16, dtype="bfloat16", minibatch_size=8),
    ModelSpec("EleutherAI/pythia-2.8b", params_m=2780, default_lr=1e-5, eval_batch_size=8, gradient_checkpointing=True,
              dtype="bfloat16", minibatch_size=4),
    ModelSpec("EleutherAI/pythia-6.9b", params_m=6860, default_lr=1e-5, eval_batch_size=4, gradient_checkpointing=True,
              dtype="bfloat16", minibatch_size=2),
    # Built locally from scratch (random weights, locally trained tokenizer): offline quickstart and tests.
    toy_spec("toy-small"),
    toy_spec("toy-large"),
    # The laptop testbed's ladder: pretrained locally on a generated corpus (weak_to_strong/testbed), smallest first.
    # `-random`: the same architectures never pretrained (the control).
    *(ladder_spec(name) for name in ladder_names()),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}

OPTIMIZERS = ("adam", "adafactor")

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def default_spec(name: str) -> ModelSpec:
    """Settings for a model that is not in the registry."""
    return ModelSpec(name, default_lr=1e-5, eval_batch_size=16, dtype="bfloat16", minibatch_size=8)


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up: registry entry, local directory, or hub id, else a ValueError listing the choices."""
    if name in MODELS:
        return MODELS[name]
    if os.path.isdir(name) or _HUB_ID.fullmatch(name):
        return default_spec(name)
    raise ValueError(
        f"unknown model {name!r}: not a registered name, an existing local directory, or a hub id 'org/name'. "
        f"Registered: {', '.join(MODELS)}"
    )


def resolve_model_path(spec: ModelSpec) -> str:
    """Where `from_pretrained` loads the model from (toy models are built on first use)."""
    return spec.builder() if spec.builder is not None else spec.name


def pick_device() -> torch.device:
    """CUDA when present, else MPS, else CPU; queried when a run starts."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(spec: ModelSpec, device: torch.device) -> torch.dtype:
    """The registry's dtype on an accelerator that supports it; float32 on CPU."""
    import torch

    if device.type == "cpu" or spec.dtype == "float32":
        return torch.float32
    if spec.dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return getattr(torch, spec.dtype)
