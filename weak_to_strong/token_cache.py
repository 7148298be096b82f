"""Tokenized datasets cached on disk, so the runs of a sweep tokenize each set of texts once per tokenizer.

The key is the texts themselves (in order), the tokenizer's content (not its
name: gpt2 and gpt2-medium share one tokenizer, so a transfer run reuses what
its weak run tokenized) and max_ctx. An entry holds the kept rows' positions and
their token ids, and lives in `<cache root>/tokenized/<key>/` ($W2S_CACHE_DIR,
as for toy models); deleting the folder only costs re-tokenization.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from weak_to_strong.datasets import tokenize_dataset

CACHE_VERSION = "v2"  # bump when tokenize_dataset's output changes (v2: documents of max_ctx tokens dropped)
ROW_COLUMN = "_row"


def default_cache_dir() -> Path:
    from weak_to_strong.toy import cache_root

    return cache_root() / "tokenized"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what the tokenizer does: its full serialisation (fast tokenizers), never its name or path."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return sha256(type(tokenizer).__name__ + backend.to_str())
    from datasets.fingerprint import Hasher  # slow tokenizers: their pickled state

    return Hasher.hash(tokenizer)


def cache_key(texts: list[str], tokenizer, max_ctx: int) -> str:
    return sha256("|".join([CACHE_VERSION, sha256(json.dumps(texts)), tokenizer_fingerprint(tokenizer), str(max_ctx)]))


def save_entry(ds, tokenizer, max_ctx: int, path: Path) -> None:
    """Tokenize into a temporary folder, then rename it into place (a concurrent writer may win the race)."""
    numbered = ds.select_columns(["txt"]).add_column(ROW_COLUMN, list(range(len(ds))))
    tokenized = tokenize_dataset(numbered, tokenizer, max_ctx).select_columns([ROW_COLUMN, "input_ids"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tokenized.save_to_disk(str(tmp / "data"))
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tokenize_cached(ds, tokenizer, max_ctx: int, cache_dir: Path | None = None):
    """`tokenize_dataset(ds, tokenizer, max_ctx)`, from the cache when these texts were tokenized before."""
    from datasets import concatenate_datasets, load_from_disk

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / cache_key(ds.with_format("arrow")["txt"].to_pylist(), tokenizer, max_ctx)
    if not path.is_dir():
        save_entry(ds, tokenizer, max_ctx, path)
    entry = load_from_disk(str(path / "data"))
    kept = ds.select(entry.with_format("arrow")[ROW_COLUMN].to_pylist())
    kept = kept.remove_columns([c for c in kept.column_names if c == "input_ids"])
    return concatenate_datasets([kept, entry.select_columns(["input_ids"])], axis=1)
