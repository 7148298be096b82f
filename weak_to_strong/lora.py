"""LoRA adapters on the backbone (peft, from the `scale` extra); the classification head always trains in full.

    python train_simple.py --model_size=Qwen/Qwen2.5-7B --ds_name=sciq --lora_rank=16
"""

from __future__ import annotations

import warnings

# Per architecture (transformers' config.model_type): every projection in attention and MLP.
# Architectures not listed get peft's "all-linear" (every Linear/Conv1D layer of the backbone).
LORA_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "qwen": ("c_attn", "c_proj", "w1", "w2"),  # Qwen v1 (remote code)
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
}
CONV1D_ARCHS = {"gpt2"}
"""Architectures whose projections are transformers' Conv1D (weights stored transposed): peft's fan_in_fan_out."""
LORA_ALPHA_PER_RANK = 2
"""lora_alpha = 2 * rank: the update's scale alpha / rank stays 2 whatever the rank."""


def lora_target_modules(model_type: str) -> list[str] | str:
    return list(LORA_TARGET_MODULES[model_type]) if model_type in LORA_TARGET_MODULES else "all-linear"


def add_lora(model, rank: int):
    """Freeze the backbone and train rank-`rank` adapters on it (rank 0: full fine-tuning, model unchanged).

    The head lives outside the backbone, so it stays trainable.
    """
    if rank == 0:
        return model
    try:
        import peft
    except ImportError as e:
        raise ValueError("--lora_rank needs peft: pip install 'weak-to-strong[scale]'") from e
    model_type = model.backbone.config.model_type
    config = peft.LoraConfig(r=rank, lora_alpha=LORA_ALPHA_PER_RANK * rank, lora_dropout=0.0,
                             target_modules=lora_target_modules(model_type),
                             fan_in_fan_out=model_type in CONV1D_ARCHS)
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`: not ours to fix.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model.backbone = peft.get_peft_model(model.backbone, config)
    return model
