"""Dataset registry: loading (hub or local copy), formatting, tokenization.

Every dataset is formatted into rows with `txt`, `hard_label` (0/1),
`soft_label` ([1 - hard_label, hard_label]) and a stable `id` (the row's index
in its source split), so weak labels can always be traced back to their source.

Local copies: set `--data_dir=DIR` or the environment variable `W2S_DATA_DIR`.
`DIR/<ds_name>/` then holds the dataset in the hub's schema, either as a
`datasets` save_to_disk folder (a DatasetDict) or as one file per hub split:
`train.parquet`, `test.jsonl`, `validation.json`, ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Callable

from datasets import Dataset, load_from_disk

from weak_to_strong.checks import check_binary_label

DATA_DIR_ENV = "W2S_DATA_DIR"
LOCAL_FILE_TYPES = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}


# ---------------------------------------------------------------- formatters
# Each maps one source row (hub schema) and a seeded rng to {"txt", "hard_label"}.

def format_amazon_polarity(ex: dict, rng: Random) -> dict:
    return {"txt": f"{ex['title']} {ex['content']}", "hard_label": int(ex["label"])}


def format_sciq(ex: dict, rng: Random) -> dict:
    hard_label = int(rng.random() < 0.5)
    if hard_label:
        answer = ex["correct_answer"]
    else:
        answer = rng.choice([ex["distractor1"], ex["distractor2"], ex["distractor3"]])
    return {"txt": f"Q: {ex['question']} A: {answer}", "hard_label": hard_label}


def format_anthropic_hh(ex: dict, rng: Random) -> dict:
    hard_label = int(rng.random() < 0.5)
    return {"txt": ex["chosen"] if hard_label else ex["rejected"], "hard_label": hard_label}


def format_cosmos_qa(ex: dict, rng: Random) -> dict:
    candidates = [ex[f"answer{i}"] for i in range(4)]
    true_answer = candidates[int(ex["label"])]
    # Every wrong candidate may be shown; "None of the above" as the truth is
    # always shown as a negative, as in the reference.
    hard_label = 0 if "None of the above choices" in true_answer else int(rng.random() < 0.5)
    if hard_label:
        answer = true_answer
    else:
        answer = rng.choice([c for c in candidates if c != true_answer])
    txt = f"Context: {ex['context']}\nQuestion: {ex['question']}\nAnswer: {answer}"
    return {"txt": txt, "hard_label": hard_label}


def format_boolq(ex: dict, rng: Random) -> dict:
    return {"txt": f"Passage: {ex['passage']}\nQuestion: {ex['question']}", "hard_label": int(ex["answer"])}


def format_identity(ex: dict, rng: Random) -> dict:
    return {"txt": ex["txt"], "hard_label": int(ex["hard_label"])}


# ---------------------------------------------------------------- synthetic data

SYNTH_POSITIVE = "good great fine superb lovely brilliant charming solid fun moving".split()
SYNTH_NEGATIVE = "bad awful poor dull boring weak messy bland clumsy tedious".split()
SYNTH_NEUTRAL = (
    "the a movie film plot actor scene story cast music ending script camera this was is "
    "and but with very quite rather its our they it"
).split()
SYNTH_SPLIT_SIZES = {"train": 20000, "test": 4000}
SYNTH_NEGATION_RATE = 0.3


def make_synthetic_doc(rng: Random) -> dict:
    """A short review with one polarity word, which a preceding "not" flips.

    Spotting the polarity word is easy for a one-layer model; composing it with
    "not" takes more depth, so larger toy models beat smaller ones and the
    smaller ones make systematic (not random) mistakes, as weak supervisors do.
    """
    positive = rng.random() < 0.5
    negated = rng.random() < SYNTH_NEGATION_RATE
    words = rng.choices(SYNTH_NEUTRAL, k=rng.randint(2, 8))
    words += ["not"] * negated + [rng.choice(SYNTH_POSITIVE if positive else SYNTH_NEGATIVE)]
    words += rng.choices(SYNTH_NEUTRAL, k=rng.randint(0, 6))
    return {"txt": " ".join(words), "hard_label": int(positive != negated)}


def generate_synthetic(split: str) -> Dataset:
    """The built-in synthetic dataset; fixed per split, like a hub dataset (the run seed only shuffles it)."""
    rng = Random(f"synthetic-{split}")
    rows = [make_synthetic_doc(rng) for _ in range(SYNTH_SPLIT_SIZES[split])]
    return Dataset.from_list(rows)


def generate_testbed_knowledge(split: str) -> Dataset:
    """Questions about the testbed population (see weak_to_strong/testbed/world.py): each person once."""
    from weak_to_strong.testbed.world import knowledge_task_rows

    return Dataset.from_list(knowledge_task_rows(split))


def generate_testbed_binding(split: str) -> Dataset:
    """Binding questions (see weak_to_strong/testbed/world.py); fixed per split."""
    from weak_to_strong.testbed.world import binding_task_rows

    return Dataset.from_list(list(binding_task_rows(split)))


# ---------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetSpec:
    formatter: Callable[[dict, Random], dict]
    hub_id: str | None = None
    hub_config: str | None = None
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    """(our split, source split): test sets without public labels use the validation split."""
    generator: Callable[[str], Dataset] | None = None
    """Builds a source split locally, with no download (synthetic data)."""
    description: str = ""
    """What the data holds and what it asks; for generated tasks also why a weak model errs."""

    def source_split(self, split: str) -> str:
        return dict(self.splits)[split]


DATASETS: dict[str, DatasetSpec] = {
    "amazon_polarity": DatasetSpec(format_amazon_polarity, hub_id="fancyzhx/amazon_polarity"),
    "sciq": DatasetSpec(format_sciq, hub_id="allenai/sciq"),
    "anthropic_hh": DatasetSpec(format_anthropic_hh, hub_id="Anthropic/hh-rlhf"),
    "cosmos_qa": DatasetSpec(format_cosmos_qa, hub_id="allenai/cosmos_qa",
                             splits=(("train", "train"), ("test", "validation"))),
    "boolq": DatasetSpec(format_boolq, hub_id="google/boolq", splits=(("train", "train"), ("test", "validation"))),
    "synthetic": DatasetSpec(format_identity, generator=generate_synthetic),
    # The laptop testbed's tasks: their labels need what the tb-* ladder learnt in pretraining.
    "testbed_knowledge": DatasetSpec(format_identity, generator=generate_testbed_knowledge, description=(
        "Corpus: 1,000 generated people (given name + family name), each with one fact, 'GIVEN FAMILY votes "
        "north|south .', stated many times in lists of facts. Task: 'GIVEN FAMILY votes' -> 1 if north; people are "
        "split between train (500) and test (500), so fine-tuning cannot teach a test person's vote: only "
        "pretraining can. Weak models memorise fewer facts and fall back on the family, which votes its majority "
        "way 4 times in 5: confidently wrong on the other fifth.")),
    "testbed_binding": DatasetSpec(format_identity, generator=generate_testbed_binding, description=(
        "Corpus: documents that bind 2-6 names to colours ('NAME COLOUR .'), then ask each binding back "
        "('Q NAME COLOUR .'); colours are drawn afresh per document. Task: the bindings, then 'Q NAME' -> 1 if "
        "the name's colour is warm (20,000 train / 2,000 test documents). Answering needs an induction circuit "
        "(two attention layers); without it a model can only count warm against cool colours, right about 2 "
        "times in 3 and confidently wrong when the asked name holds the minority colour.")),
}


def get_dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


# ---------------------------------------------------------------- loading

def resolve_data_dir(data_dir: str | None) -> Path | None:
    """The local-copy root from the flag, else the environment; checked to exist."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise ValueError(f"local data directory {str(path)!r} does not exist (from --data_dir or ${DATA_DIR_ENV})")
    return path


def load_local_split(ds_dir: Path, source_split: str) -> Dataset:
    """One split of a local copy: a save_to_disk folder or a per-split data file."""
    if (ds_dir / "dataset_dict.json").exists():
        dsd = load_from_disk(str(ds_dir))
        if source_split not in dsd:
            raise ValueError(f"{str(ds_dir)!r} has no split {source_split!r} (it has: {', '.join(dsd)})")
        return dsd[source_split]
    for suffix, builder in LOCAL_FILE_TYPES.items():
        path = ds_dir / f"{source_split}{suffix}"
        if path.exists():
            return Dataset.from_parquet(str(path)) if builder == "parquet" else Dataset.from_json(str(path))
    raise ValueError(
        f"no split {source_split!r} in {str(ds_dir)!r}: expected a save_to_disk folder or "
        f"{source_split}.parquet / {source_split}.jsonl / {source_split}.json"
    )


def load_source_split(name: str, spec: DatasetSpec, split: str, data_dir: Path | None) -> Dataset:
    source_split = spec.source_split(split)
    if spec.generator is not None:
        return spec.generator(source_split)
    if data_dir is not None:
        ds_dir = data_dir / name
        if not ds_dir.is_dir():
            raise ValueError(f"local data directory {str(ds_dir)!r} for dataset {name!r} does not exist")
        return load_local_split(ds_dir, source_split)
    import datasets

    return datasets.load_dataset(spec.hub_id, spec.hub_config, split=source_split)


def format_row(spec: DatasetSpec, ex: dict, rng: Random, where: str) -> dict:
    """One source row through the dataset's formatter, its label checked to be 0 or 1."""
    try:
        row = spec.formatter(ex, rng)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"{where}, row {ex['id']}: cannot be formatted ({type(e).__name__}: {e})") from None
    row["hard_label"] = check_binary_label(row["hard_label"], f"{where}, row {ex['id']}")
    return row


def format_split(ds: Dataset, spec: DatasetSpec, seed: int, n_docs: int, where: str = "dataset") -> Dataset:
    """Shuffle (seeded), keep n_docs, then format with a seeded rng: the same seed gives the same rows.

    `where` names the data in errors (dataset, split and source)."""
    # Our own stable id (the source row index): source ids differ in type across datasets, or are missing.
    ds = ds.remove_columns([c for c in ("id",) if c in ds.column_names]).add_column("id", list(range(len(ds))))
    ds = ds.shuffle(seed=seed).select(range(min(n_docs, len(ds))))
    rng = Random(seed)
    # One Arrow-to-Python conversion, not a formatted lookup per row (a tenth of a second per 1,000 rows).
    rows = [{"id": ex["id"], **format_row(spec, ex, rng, where)} for ex in ds.to_list()]
    for row in rows:
        row["soft_label"] = [1.0 - row["hard_label"], float(row["hard_label"])]
    return Dataset.from_list(rows) if rows else Dataset.from_dict({"id": [], "txt": [], "hard_label": [], "soft_label": []})


def load_dataset(name: str, seed: int = 0, split_sizes: dict[str, int] | None = None,
                 data_dir: str | None = None) -> dict[str, Dataset]:
    """Formatted splits {"train": ..., "test": ...} of a registered dataset."""
    spec = get_dataset_spec(name)
    root = resolve_data_dir(data_dir)
    split_sizes = split_sizes or {"train": 10**12, "test": 10**12}
    return {
        split: format_split(load_source_split(name, spec, split, root), spec, seed, n,
                            where=describe_source(name, spec, split, root))
        for split, n in split_sizes.items()
    }


def describe_source(name: str, spec: DatasetSpec, split: str, data_dir: Path | None) -> str:
    """Where a split comes from, for error messages: built in, a local copy's folder, or the hub id."""
    source_split = spec.source_split(split)
    if spec.generator is not None:
        origin = "built in"
    elif data_dir is not None:
        origin = str(data_dir / name)
    else:
        origin = f"hub {spec.hub_id}"
    return f"dataset {name!r} split {source_split!r} ({origin})"


# ---------------------------------------------------------------- tokenization

def tokenize_dataset(ds: Dataset, tokenizer, max_ctx: int) -> Dataset:
    """Add `input_ids` (batched, fast tokenizer) and keep documents shorter than max_ctx tokens (strictly, as the
    reference: a document of exactly max_ctx tokens is dropped)."""
    ds = ds.map(lambda batch: {"input_ids": tokenizer(batch["txt"])["input_ids"]}, batched=True, batch_size=1000)
    return ds.filter(lambda batch: [fits_context(len(ids), max_ctx) for ids in batch["input_ids"]], batched=True,
                     batch_size=1000)


def fits_context(n_tokens: int, max_ctx: int) -> bool:
    """Whether a document of n_tokens is kept by the max_ctx filter: shorter than max_ctx, as in the reference."""
    return n_tokens < max_ctx


def column_list(ds: Dataset, name: str) -> list:
    """A whole column as a Python list, read in one Arrow call (datasets 5's `ds[name]` reads row by row)."""
    return ds.with_format("arrow")[name].to_pylist()
