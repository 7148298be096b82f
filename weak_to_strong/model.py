"""A pretrained backbone with a zero-initialised linear head over the last real token."""

from __future__ import annotations

import functools
import math
from pathlib import Path
import torch
from torch import nn

from weak_to_strong.batching import RowPacking
from weak_to_strong.models import ModelSpec, get_model_spec, pick_dtype, resolve_model_path


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of the last attended token in each row, from the mask alone.

    Never from token ids: padding with id 0 and searching for `!= 0` breaks on
    GPT-2, where id 0 is "!". Works for left and right padding alike.
    """
    seq_len = attention_mask.shape[1]
    return seq_len - 1 - attention_mask.flip(dims=[1]).long().argmax(dim=1)


class TransformerWithHead(nn.Module):
    """Backbone hidden state at the last real token -> linear head (float32) -> logits."""

    def __init__(self, backbone: nn.Module, num_labels: int = 2, linear_probe: bool = False):
        super().__init__()
        self.backbone = backbone
        hidden_size = backbone.config.hidden_size
        self.score = nn.Linear(hidden_size, num_labels, bias=False)
        nn.init.zeros_(self.score.weight)  # starts at uniform predictions, as in the paper
        self.linear_probe = linear_probe
        if linear_probe:
            self.backbone.requires_grad_(False)
        self.causal = is_causal(backbone)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, right_padded: bool = False,
                position_ids: torch.Tensor | None = None, last_token: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N, num_labels]. `right_padded`: the caller guarantees every row's padding is at its end.

        Then a causal backbone runs without the mask: real tokens never attend to
        the pads after them, so the pooled states are the same, and attention
        takes its unmasked causal path (flash attention on GPUs, no mask to build).
        Packed rows (see `batching.PackedRows`, only where `supports_packing`):
        `position_ids` restart at 0 per document, `attention_mask` marks real
        tokens, and `last_token` is each document's last token as a flat index
        into rows x columns; the logits are then one per document.
        """
        packed = position_ids is not None
        backbone_mask = None if packed or (right_padded and self.causal) else attention_mask
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.linear_probe):
            # No KV cache: a classifier never generates, and filling one copies every layer's keys and values.
            hidden = self.backbone(input_ids=input_ids, attention_mask=backbone_mask, position_ids=position_ids,
                                   use_cache=False).last_hidden_state
        if packed:
            pooled = hidden.reshape(-1, hidden.shape[-1])[last_token]
        else:
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            pooled = hidden[rows, last_token_index(attention_mask)]
        with torch.autocast(hidden.device.type, enabled=False):  # the head stays float32 under autocast
            return self.score(pooled.float())

    def row_packing(self, attention_span_per_width: float) -> RowPacking | None:
        """How to pack several documents into a row of this model, or None where it cannot (`supports_packing`).

        Rows hold at most the context the config states (else 1024 tokens); the
        attention span (`batching.RowPacking`) is `attention_span_per_width` x the
        model's width. The trainer asks this instead of reading the backbone's config.
        """
        if not supports_packing(self):
            return None
        config = self.backbone.config
        return RowPacking(max_row_len=max_positions(config) or 1024,
                          attention_span=attention_span_per_width * config.hidden_size)


PACKING_MODEL_TYPES = ("gpt2", "llama", "qwen2", "gpt_neox")
"""Backbones whose transformers code builds its mask with `create_causal_mask` from the position ids: given
position ids that restart per document and no attention mask, each document attends only to itself
(tests/test_packing.py checks each against per-document logits). Remote-code models (e.g. Qwen v1) are not listed."""
PACKING_ATTENTION = ("sdpa", "eager")
"""Attention implementations that take that block-diagonal mask as is (flash kernels need varlen arguments)."""


def supports_packing(model: nn.Module) -> bool:
    """Whether several documents may share a row of this model (see `TransformerWithHead.forward`).

    A listed architecture, transformers' own code for it (not remote code that
    borrows the name), whose module builds masks with `create_causal_mask`, and an
    attention implementation that takes the resulting mask.
    """
    import sys

    if not isinstance(model, TransformerWithHead):
        return False
    backbone = model.backbone
    backbone = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone  # peft (LoRA)
    module_name = type(backbone).__module__
    config = backbone.config
    return (model.causal and getattr(config, "model_type", None) in PACKING_MODEL_TYPES
            and module_name.startswith("transformers.models.")
            and hasattr(sys.modules.get(module_name), "create_causal_mask")
            and getattr(config, "_attn_implementation", None) in PACKING_ATTENTION)


def is_causal(backbone: nn.Module) -> bool:
    """Whether every attention module of the backbone says it is causal (transformers' `is_causal`).

    Models that do not say (remote code) count as not causal: they keep their padding mask.
    """
    flags = [m.is_causal for m in backbone.modules() if isinstance(getattr(m, "is_causal", None), bool)]
    return bool(flags) and all(flags)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model",
                   "vocab.txt")
"""Any of these makes a folder loadable by AutoTokenizer (fast, GPT-2 BPE, sentencepiece or WordPiece files)."""


def check_model_dir(path: str) -> None:
    """A local model folder must hold tokenizer files; transformers' own errors for an empty or half-copied
    folder point elsewhere (e.g. "install sentencepiece")."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return  # a hub id
    if not any(folder.iterdir()):
        raise ValueError(f"model folder {str(folder)!r} is empty; save a model and its tokenizer there with "
                         "save_pretrained")
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise ValueError(f"model folder {str(folder)!r} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); "
                         "save the tokenizer there with tokenizer.save_pretrained")


def load_tokenizer(spec: ModelSpec):
    """The model's tokenizer, with a pad token set where it has none (GPT-2 has none)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(spec)
    check_model_dir(path)
    tokenizer = AutoTokenizer.from_pretrained(path, **spec.pretrained_kwargs)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return tokenizer


def load_model(spec: ModelSpec, device: torch.device, linear_probe: bool = False,
               gradient_checkpointing: bool | None = None, load_device: torch.device | None = None
               ) -> TransformerWithHead:
    """The backbone without its LM head (AutoModel), wrapped with a classification head.

    The weights get `device`'s dtype and land on `load_device` (default `device`;
    FSDP loads on the CPU and moves only each rank's shard to the GPU).
    """
    from transformers import AutoModel

    dtype = pick_dtype(spec, device)
    backbone = AutoModel.from_pretrained(resolve_model_path(spec), dtype=dtype, **spec.pretrained_kwargs)
    use_ckpt = spec.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    return wrap_backbone(backbone, load_device or device, linear_probe=linear_probe, gradient_checkpointing=use_ckpt)


def load_causal_lm(spec: ModelSpec, device: torch.device) -> nn.Module:
    """The model with its LM head (AutoModelForCausalLM), for unsupervised fine-tuning; its `base_model` is
    the backbone `load_model` would load."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(resolve_model_path(spec), dtype=pick_dtype(spec, device),
                                              **spec.pretrained_kwargs)
    return lm.to(device)


def wrap_backbone(backbone: nn.Module, device: torch.device, linear_probe: bool = False,
                  gradient_checkpointing: bool = False) -> TransformerWithHead:
    """A loaded (or randomly initialised) backbone, made fast and wrapped with the classification head."""
    use_fused_gelu(backbone)
    if gradient_checkpointing and not linear_probe:
        # transformers 5 renamed it; remote-code models may only have the old name.
        enable = getattr(backbone, "activation_checkpointing_enable", None) or backbone.gradient_checkpointing_enable
        enable({"use_reentrant": False})
    model = TransformerWithHead(backbone, linear_probe=linear_probe)
    model.score.float()
    return model.to(device)


def use_fused_gelu(backbone: nn.Module) -> None:
    """Swap GPT-2's "gelu_new" (eight elementwise ops, each a pass over memory), and transformers'
    "gelu_pytorch_tanh", for `TanhGELU`.

    The same tanh approximation, to float rounding. It is most of the non-matmul
    time of a small GPT-2 on CPU.
    """
    from transformers.activations import GELUTanh, NewGELUActivation

    for module in list(backbone.modules()):
        for name, child in module.named_children():
            if type(child) in (NewGELUActivation, GELUTanh):
                setattr(module, name, TanhGELU())


GELU_TANH_COEF = (2 / math.pi) ** 0.5


class TanhGELU(nn.Module):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): torch's fused kernel, or under torch.compile on CPU
    the same function as x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)).

    The two are equal (tanh u = 2 sigmoid(2u) - 1) to float rounding. Inductor's
    CPU code evaluates tanh precisely and slowly: its fused forward and backward
    of the tanh form took 3.7 ms on a 1360 x 1024 activation on two cores, of the
    sigmoid form 1.9 ms (eager torch's own kernels are fastest as they are).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() and x.device.type == "cpu":
            return gelu_tanh_by_sigmoid(x)
        return nn.functional.gelu(x, approximate="tanh")


def gelu_tanh_by_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(2 * GELU_TANH_COEF * (x + 0.044715 * x * x * x))


def load_model_config(spec: ModelSpec):
    """The backbone's config alone (a small file): what a run needs to know before loading weights."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model_path(spec), **spec.pretrained_kwargs)


def max_positions(config) -> int | None:
    """The context length a model config states, if any."""
    for key in ("n_positions", "max_position_embeddings"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    return None


@functools.lru_cache(maxsize=None)
def model_context(model_size: str) -> int | None:
    """A model's context length: the registry's, else its config's (None: the config states none)."""
    spec = get_model_spec(model_size)
    return spec.context if spec.context is not None else max_positions(load_model_config(spec))
