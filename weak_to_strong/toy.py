"""Built-in toy models: small GPT-2-architecture models with a locally trained tokenizer.

They are built deterministically on first use (random weights from a fixed seed,
a byte-level BPE tokenizer trained on the synthetic dataset's text), saved with
`save_pretrained` into a cache folder, and from then on loaded through the Auto
classes like any hub model. Nothing is downloaded. They are trained from
scratch: they exercise the pipeline, not the weak-to-strong effect.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from weak_to_strong.atomic import atomic_dir

CACHE_ENV = "W2S_CACHE_DIR"
RECIPE_VERSION = "v1"  # bump when the recipe changes, so stale caches are not reused
TOY_ARCHS = {
    "toy-small": dict(n_layer=1, n_embd=32, n_head=2),
    "toy-large": dict(n_layer=2, n_embd=128, n_head=4),
}
TOY_VOCAB_SIZE = 512
TOY_CONTEXT = 256
TOKENIZER_CORPUS_DOCS = 2000


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "weak_to_strong").expanduser()


def train_toy_tokenizer():
    """A byte-level BPE tokenizer (GPT-2 style) trained on synthetic reviews."""
    from random import Random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from weak_to_strong.datasets import make_synthetic_doc

    rng = Random("toy-tokenizer")
    corpus = [make_synthetic_doc(rng)["txt"] for _ in range(TOKENIZER_CORPUS_DOCS)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOY_VOCAB_SIZE,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    # Like GPT-2: no pad token; the model wrapper sets one.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>",
        model_max_length=TOY_CONTEXT,
    )


def build_toy_model(size: str, out_dir: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2Model

    tokenizer = train_toy_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=TOY_CONTEXT, bos_token_id=eos, eos_token_id=eos, **TOY_ARCHS[size]
    )
    torch.manual_seed(0)
    model = GPT2Model(config)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)


def is_readable_weights(path: Path) -> bool:
    """A safetensors file with its whole header and every tensor's bytes (a truncated copy fails)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
        return True
    except Exception:  # safetensors raises its own error types, and OSError for a missing file
        return False


def ensure_toy_model(size: str) -> str:
    """Path of the cached toy model, building it first if needed.

    Built in a temporary folder and renamed into place, so concurrent sweep
    processes never see a half-written model.
    """
    if size not in TOY_ARCHS:
        raise ValueError(f"unknown toy model {size!r}; choose one of: {', '.join(TOY_ARCHS)}")
    target = cache_root() / "toy_models" / f"{size}-{RECIPE_VERSION}"
    if (target / "config.json").exists():
        if is_readable_weights(target / "model.safetensors"):
            return str(target)
        # Damaged outside the toolkit (its builds are atomic): build it again.
        print(f"toy model {target} is damaged (unreadable weights); building it again", file=sys.stderr)
        shutil.rmtree(target, ignore_errors=True)
    with atomic_dir(target, replace=False, is_complete=lambda p: (p / "config.json").exists()) as tmp:
        build_toy_model(size, tmp)
        # transformers writes weights on torch.distributed rank 0 only: a build elsewhere is incomplete
        # and must never be renamed into place (the pipeline builds on rank 0 first).
        if not (tmp / "model.safetensors").exists():
            raise RuntimeError(f"toy model {size!r} was built without its weights (not on rank 0?)")
    return str(target)
