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
import shutil
import sys
from pathlib import Path

from weak_to_strong.atomic import atomic_dir
from weak_to_strong.datasets import fits_context, tokenize_dataset

CACHE_VERSION = "v2"  # bump when tokenize_dataset's output changes (v2: documents of max_ctx tokens dropped)
ROW_COLUMN = "_row"
IN_MEMORY_CHARS = 1_000_000


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
    with atomic_dir(path, replace=False) as tmp:
        tokenized.save_to_disk(str(tmp / "data"))


def tokenize_in_memory(ds, texts: list[str], tokenizer, max_ctx: int):
    """What `tokenize_dataset` gives, without datasets' map/filter (whose fingerprint hashing would cost more than
    tokenizing a small set)."""
    from datasets import List, Value
    from datasets.fingerprint import generate_random_fingerprint

    ids = tokenizer(texts)["input_ids"]
    keep = [i for i, doc in enumerate(ids) if fits_context(len(doc), max_ctx)]
    kept = ds.select(keep) if len(keep) < len(ds) else ds
    kept = kept.remove_columns([c for c in kept.column_names if c == "input_ids"])
    # int32, as datasets' map stores token ids (tokenize_dataset): both paths give the same features
    return kept.add_column("input_ids", [ids[i] for i in keep], new_fingerprint=generate_random_fingerprint(),
                           feature=List(Value("int32")))


def tokenize_cached(ds, tokenizer, max_ctx: int, cache_dir: Path | None = None):
    """`tokenize_dataset(ds, tokenizer, max_ctx)`, from the cache when these texts were tokenized before.

    Small sets (under IN_MEMORY_CHARS characters) are tokenized in memory instead: writing and reading a cache
    entry costs more than tokenizing them, and a sweep of short runs pays that on every run."""
    from datasets import concatenate_datasets, load_from_disk

    texts = ds.with_format("arrow")["txt"].to_pylist()
    if sum(map(len, texts)) < IN_MEMORY_CHARS:
        return tokenize_in_memory(ds, texts, tokenizer, max_ctx)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / cache_key(texts, tokenizer, max_ctx)
    if not path.is_dir():
        save_entry(ds, tokenizer, max_ctx, path)
    try:
        entry = load_from_disk(str(path / "data"))
        rows = entry.with_format("arrow")[ROW_COLUMN].to_pylist()
    except Exception as e:  # damaged outside the toolkit (its writes are atomic): heal by tokenizing again
        print(f"token cache entry {path} is unreadable ({type(e).__name__}); tokenizing again", file=sys.stderr)
        shutil.rmtree(path, ignore_errors=True)
        save_entry(ds, tokenizer, max_ctx, path)
        entry = load_from_disk(str(path / "data"))
        rows = entry.with_format("arrow")[ROW_COLUMN].to_pylist()
    kept = ds.select(rows)
    kept = kept.remove_columns([c for c in kept.column_names if c == "input_ids"])
    return concatenate_datasets([kept, entry.select_columns(["input_ids"])], axis=1)
