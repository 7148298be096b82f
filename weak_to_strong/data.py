"""Local copies of the registered datasets, for compute nodes without internet; and a look at the registry.

    python -m weak_to_strong.data list                               # name, hub id, splits, label, template
    python -m weak_to_strong.data fetch sciq boolq --to=/shared/w2s_data   # on a login node (internet)
    python -m weak_to_strong.data show boolq --data_dir=/shared/w2s_data   # a few formatted examples
    python train_simple.py --ds_name=boolq --data_dir=/shared/w2s_data     # on the compute node

`fetch` downloads through `datasets` (the same call a run makes) and writes, per
dataset, `DIR/NAME/<hub split>.parquet` (the layout `--data_dir` reads) and
`DIR/NAME/fetch_record.json` (hub id, config, revision asked for, commit fetched,
rows per split), whose commit goes into each run's config.json as data_revision.
Each copy is written into a temporary folder and renamed into place: an
interrupted fetch leaves the previous copy (or none), never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from weak_to_strong.datasets import (DATASETS, FETCH_RECORD, DatasetSpec, formatter_template, get_dataset_spec,
                                     label_meaning, load_dataset, load_from_hub)


# ---------------------------------------------------------------- fetch

def check_fetchable(names: tuple[str, ...]) -> dict[str, DatasetSpec]:
    """Every name known and on the hub, checked before anything is downloaded."""
    if not names:
        raise ValueError("name the datasets to fetch, e.g. `fetch sciq boolq --to=DIR`; "
                         "`python -m weak_to_strong.data list` shows them")
    specs = {name: get_dataset_spec(str(name)) for name in dict.fromkeys(names)}
    built_in = [name for name, spec in specs.items() if spec.generator is not None]
    if built_in:
        raise ValueError(f"{', '.join(built_in)}: built in (generated locally); there is nothing to fetch")
    return specs


def writable_root(to) -> Path:
    """The folder copies go into, created if needed; a ValueError when it cannot be written."""
    if to is None:
        raise ValueError("--to=DIR is required: the folder that --data_dir will point at")
    root = Path(str(to)).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create {str(root)!r} ({e.strerror or e})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {str(root)!r} (permission denied)")
    return root


def resolve_commit(spec: DatasetSpec) -> str | None:
    """The commit the hub serves for the registry's revision, recorded for reproducibility; None if the hub
    cannot say (the copy is still usable, its record just says less)."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(spec.hub_id, revision=spec.revision).sha
    except Exception:  # noqa: BLE001 - provenance is best effort; the data itself was fetched
        return None


def write_copy(folder: Path, name: str, spec: DatasetSpec, splits: dict, commit: str | None) -> None:
    for split, ds in splits.items():
        ds.to_parquet(str(folder / f"{split}.parquet"))
    record = {"dataset": name, "hub_id": spec.hub_id, "config": spec.hub_config, "revision": spec.revision,
              "commit": commit, "rows": {split: len(ds) for split, ds in splits.items()}}
    (folder / FETCH_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def fetch_one(name: str, spec: DatasetSpec, root: Path) -> Path:
    """Download every hub split the dataset's train and test sets read, then write them in one rename."""
    from weak_to_strong.atomic import atomic_dir

    splits = {split: load_from_hub(spec, split) for split in spec.hub_splits()}
    commit = resolve_commit(spec)
    with atomic_dir(root / name) as folder:
        write_copy(folder, name, spec, splits, commit)
    return root / name


def fetch(*names, to=None) -> list[Path]:
    """Local copies of the named datasets in DIR (--to), in the layout --data_dir reads."""
    specs = check_fetchable(names)
    root = writable_root(to)
    written = []
    for name, spec in specs.items():
        print(f"fetching {name} ({spec.hub_id}, config {spec.hub_config}, revision {spec.revision or 'default'})",
              flush=True)
        written.append(fetch_one(name, spec, root))
        print(f"  wrote {written[-1]}")
    print(f"done; train with --data_dir={root} (or W2S_DATA_DIR={root})")
    return written


# ---------------------------------------------------------------- list, show

def describe(name: str, spec: DatasetSpec) -> str:
    source = "built in" if spec.generator is not None else spec.hub_id + (f" ({spec.hub_config})" if spec.hub_config
                                                                          else "")
    revision = f", revision {spec.revision}" if spec.revision else ""
    splits = ", ".join(f"{ours} <- {theirs}" for ours, theirs in spec.splits)
    template = formatter_template(spec.formatter).replace("\n", "\\n")
    return (f"{name}\n  source:   {source}{revision}\n  splits:   {splits}; balanced by default: "
            f"{'yes' if spec.balance else 'no'}; stratified halves by default: {'yes' if spec.stratify else 'no'}\n"
            f"  label 1:  {label_meaning(spec.formatter)}\n"
            f"  template: {template}")


def list_datasets() -> None:
    """The registry: name, hub id, splits, what label 1 means, template."""
    print("\n".join(describe(name, spec) for name, spec in DATASETS.items()))


def show(name, data_dir=None, n: int = 4, split: str = "test", seed: int = 0, balance=None) -> None:
    """A few formatted examples with their labels (from --data_dir, else the hub)."""
    if split not in ("train", "test"):
        raise ValueError(f"--split must be train or test, got {split!r}")
    docs = load_dataset(str(name), seed=seed, split_sizes={split: n}, data_dir=data_dir, balance=balance)[split]
    for row in docs:
        print(f"--- label {row['hard_label']} (id {row['id']})\n{row['txt']}")


def main() -> None:
    import fire

    from weak_to_strong.cli import exit_on_user_error

    commands = {"fetch": fetch, "list": list_datasets, "show": show}
    # fire prints a command's return value; the paths fetch returns are already printed.
    fire.Fire({name: exit_on_user_error(command) for name, command in commands.items()},
              serialize=lambda _: None)


if __name__ == "__main__":
    main()
