"""The testbed ladder: GPT-2-architecture models pretrained locally on the generated corpus.

`ensure_ladder_model(name)` returns a folder that `from_pretrained` loads (model
and tokenizer, saved with `save_pretrained`). It uses, in order: the weights
shipped in the package (`weights/<name>/`), the user cache, or a fresh build.
A build is deterministic for its recipe, runs in a temporary folder that is
renamed into place only when complete (a killed build leaves nothing a later
run would load), and shows a progress bar.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING

from weak_to_strong.atomic import atomic_dir
from weak_to_strong.toy import is_readable_weights
from weak_to_strong.testbed import world

if TYPE_CHECKING:  # pretrain.py imports torch; the model registry reads the ladder without it
    from weak_to_strong.testbed.pretrain import PretrainSettings

RECIPE_VERSION = 1
"""Bump when the corpus generators (world.py) or the pretraining code change in a way the recipe's
numbers do not show: cached builds of the old recipe are then never used."""
CONTEXT = 128
SHIPPED_DIR = Path(__file__).parent / "weights"
CORPUS_KNOWLEDGE_SHARE = 0.5
"""Share of pretraining documents that state facts; the rest are binding documents."""


@dataclass(frozen=True)
class LadderRung:
    n_layer: int
    n_embd: int
    steps: int
    lr: float = 3e-3
    n_head: int = 2
    seed: int = 0
    activation: str = "gelu"
    """The MLP's activation. Exact GELU is one fused kernel; GPT-2's tanh approximation ("gelu_new", the
    first ladder's) is eight elementwise passes and took 30 % of a `tb-xl` pretraining step."""
    finetune_lr: float = 1e-4
    """The registry's default fine-tuning lr, chosen on ground truth only: `python -m weak_to_strong.testbed
    tune_lr` (tune.py: 3e-6 ... 3e-3, seeds 10-14, the one-standard-error rule; README "The testbed")."""
    probe_lr: float = 1e-2
    """The registry's lr under --linear_probe, chosen on ground truth only: `python -m weak_to_strong.testbed
    tune_lr --linear_probe=True` (1e-3 ... 1e-1, seeds 10-14, the lowest mean test log-loss)."""

    def settings(self) -> PretrainSettings:
        from weak_to_strong.testbed.pretrain import PretrainSettings

        return PretrainSettings(steps=self.steps, lr=self.lr, seed=self.seed, row_len=CONTEXT)


LADDER: dict[str, LadderRung] = {
    "tb-s": LadderRung(n_layer=1, n_embd=32, steps=1500, finetune_lr=1e-3, probe_lr=1e-2),
    "tb-m": LadderRung(n_layer=2, n_embd=64, steps=4000, finetune_lr=3e-5, probe_lr=3e-2),
    "tb-l": LadderRung(n_layer=3, n_embd=96, steps=4000, finetune_lr=1e-5, probe_lr=3e-2),
    "tb-xl": LadderRung(n_layer=4, n_embd=128, steps=3000, lr=1e-3, finetune_lr=3e-5, probe_lr=3e-2),
}
"""Names to rungs, smallest first: more layers, width and pretraining compute up the ladder."""
FINE_TUNING_FIELDS = ("finetune_lr", "probe_lr")
"""A rung's fields that only fine-tuning reads: left out of the build recipe, so retuning keeps the weights."""
RANDOM_SUFFIX = "-random"
"""`tb-xl-random`: tb-xl's architecture and tokenizer with its initial random weights, never pretrained. The
control: fine-tuned the same way, it shows how much of an effect comes from the architecture alone."""


def rung(name: str) -> LadderRung:
    """The rung of a ladder name; a `-random` control is its rung with no pretraining steps."""
    base = name.removesuffix(RANDOM_SUFFIX)
    if base not in LADDER:
        raise ValueError(f"unknown ladder model {name!r}; choose one of: {', '.join(ladder_names())}")
    return replace(LADDER[base], steps=0) if name.endswith(RANDOM_SUFFIX) else LADDER[base]


def ladder_names() -> list[str]:
    """Every buildable name: the rungs, then their random-weight controls."""
    return list(LADDER) + [name + RANDOM_SUFFIX for name in LADDER]


def recipe(name: str) -> dict:
    """Everything a build depends on; its hash names the cache folder."""
    pretraining = {k: v for k, v in asdict(rung(name)).items() if k not in FINE_TUNING_FIELDS}
    return {"version": RECIPE_VERSION, "rung": pretraining, "context": CONTEXT,
            "knowledge_share": CORPUS_KNOWLEDGE_SHARE, "binding": asdict(world.BINDING),
            "knowledge": asdict(world.KNOWLEDGE)}


def recipe_hash(name: str) -> str:
    return hashlib.sha256(json.dumps(recipe(name), sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    from weak_to_strong.toy import cache_root as toy_cache_root

    return toy_cache_root() / "testbed"


def make_tokenizer():
    """A word-level tokenizer over the world's vocabulary (the corpus is whitespace-separated words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(world.vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=world.EOS))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=world.EOS, bos_token=world.EOS,
                                   unk_token=world.EOS, model_max_length=CONTEXT)


def make_doc_source(vocab: dict[str, int], knowledge_share: float = CORPUS_KNOWLEDGE_SHARE):
    """Draws n pretraining documents as token ids from a seeded rng."""
    def draw(rng: Random, n: int) -> list[list[int]]:
        return [[vocab[w] for w in world.pretraining_doc(rng, knowledge_share).split()] for _ in range(n)]

    return draw


def init_model(name: str, vocab_size: int, eos_id: int, **overrides):
    """The rung's GPT-2 causal LM with its initial random weights (seeded): what pretraining starts from.
    `overrides` replace fields of the rung (the throughput comparison times another activation)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    spec = replace(rung(name), **overrides)
    config = GPT2Config(vocab_size=vocab_size, n_positions=CONTEXT, n_layer=spec.n_layer, n_embd=spec.n_embd,
                        n_head=spec.n_head, activation_function=spec.activation,
                        bos_token_id=eos_id, eos_token_id=eos_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(spec.seed)
    return GPT2LMHeadModel(config)


def build_rung(name: str, out_dir: Path, progress: bool = True) -> dict:
    """Pretrain one rung and save model + tokenizer into out_dir; returns the pretraining stats."""
    from tqdm.auto import tqdm

    from weak_to_strong.testbed.evaluate import evaluate_rung
    from weak_to_strong.testbed.pretrain import pretrain

    spec = rung(name)
    tokenizer = make_tokenizer()
    vocab = tokenizer.get_vocab()
    eos = vocab[world.EOS]
    model = init_model(name, len(vocab), eos)
    bar = tqdm(total=spec.steps, desc=f"pretraining {name}", disable=not progress or not spec.steps, leave=False)

    def report(step: int, loss: float) -> None:
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")

    make_docs = make_doc_source(vocab)
    stats = pretrain(model, make_docs, spec.settings(), pad_id=eos, progress=report)
    bar.close()
    stats["eval"] = evaluate_rung(model, tokenizer, make_docs, eos)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    stats["recipe"] = recipe(name)
    (out_dir / "pretraining.json").write_text(json.dumps(stats, indent=2))
    return stats


def cached_path(name: str) -> Path:
    return cache_root() / f"{name}-{recipe_hash(name)}"


def shipped_path(name: str) -> Path | None:
    """The weights shipped in the package, if they were built with the current recipe."""
    path = SHIPPED_DIR / name
    meta = path / "pretraining.json"
    if not meta.exists():
        return None
    return path if json.loads(meta.read_text()).get("recipe") == recipe(name) else None


def is_complete(path: Path) -> bool:
    return is_readable_weights(path / "model.safetensors") and (path / "tokenizer.json").exists() \
        and (path / "pretraining.json").exists()


def build_into_cache(name: str, target: Path, progress: bool = True) -> Path:
    """Build in a temporary sibling folder, then rename it into place (atomic on one filesystem)."""
    with atomic_dir(target, replace=False, is_complete=is_complete) as tmp:
        build_rung(name, tmp, progress)
        if not is_complete(tmp):
            raise RuntimeError(f"ladder model {name!r} was built without its weights (not on rank 0?)")
    return target


def ensure_ladder_model(name: str, use_shipped: bool = True, progress: bool = True) -> str:
    """Path of a ladder model: shipped weights, else the cache, else built now (minutes on a laptop)."""
    rung(name)  # a ValueError for an unknown name
    shipped = shipped_path(name) if use_shipped else None
    if shipped is not None:
        return str(shipped)
    target = cached_path(name)
    if is_complete(target):
        return str(target)
    if target.exists():  # damaged outside the toolkit (builds are atomic): build it again
        print(f"ladder model {target} is damaged; building it again", file=sys.stderr)
        shutil.rmtree(target, ignore_errors=True)
    return str(build_into_cache(name, target, progress))
