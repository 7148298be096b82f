"""`python -m weak_to_strong.data`: fetch (local copies for offline clusters), list, show. Offline: the hub call
returns the fixture rows of tests/hub_rows.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset, ReadInstruction
from hub_rows import HUB_ROWS

from weak_to_strong import data
from weak_to_strong.datasets import DATASETS, FETCH_RECORD, data_revision, load_dataset, split_names

REPO = Path(__file__).resolve().parents[1]


def rows_in(split: str) -> int:
    """A different count per hub split, and room for sst2's train[:200] slices."""
    return 201 + len(split)


@pytest.fixture
def fake_hub(monkeypatch):
    """`datasets.load_dataset` answering from the fixture rows (a different count per split), and the commit
    lookup answering a fixed sha; records the calls."""
    import datasets

    calls = []

    def fake_load_dataset(path, config=None, split=None, revision=None, **kwargs):
        calls.append((path, config, split, revision))
        name = next(n for n, spec in DATASETS.items() if (spec.hub_id, spec.hub_config) == (path, config))
        # As the hub reads a split expression ("test+validation", "train[200:]") over its splits.
        parts = ReadInstruction.from_spec(split).to_absolute({s: rows_in(s) for s in split_names(split)})
        return Dataset.from_list([dict(HUB_ROWS[name]) for part in parts for _ in range(part.from_, part.to)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(data, "resolve_commit", lambda spec: "0123abcd")
    return calls


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name", ["sciq", "sst2", "openbookqa", "cosmos_qa"])
def test_fetch_writes_the_layout_data_dir_reads(name, fake_hub, tmp_path, monkeypatch):
    spec = DATASETS[name]
    data.fetch(name, to=str(tmp_path / "copies"))
    folder = tmp_path / "copies" / name
    hub_splits = spec.hub_splits()
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{s}.parquet" for s in hub_splits] + [FETCH_RECORD])
    record = json.loads((folder / FETCH_RECORD).read_text())
    assert record == {"dataset": name, "hub_id": spec.hub_id, "config": spec.hub_config, "revision": spec.revision,
                      "commit": "0123abcd", "rows": {s: rows_in(s) for s in hub_splits}}
    assert fake_hub == [(spec.hub_id, spec.hub_config, s, spec.revision) for s in hub_splits]
    # Round trip: the copy formats to exactly what the hub gives.
    from_copy = load_dataset(name, seed=3, data_dir=str(tmp_path / "copies"))
    from_hub = load_dataset(name, seed=3)
    assert {s: ds.to_list() for s, ds in from_copy.items()} == {s: ds.to_list() for s, ds in from_hub.items()}
    assert data_revision(name, str(tmp_path / "copies")) == "0123abcd"
    assert leftovers(tmp_path / "copies") == []


def test_fetching_again_replaces_the_copy(fake_hub, tmp_path):
    data.fetch("boolq", to=str(tmp_path))
    (tmp_path / "boolq" / "stale.parquet").write_text("old")
    data.fetch("boolq", to=str(tmp_path))
    assert not (tmp_path / "boolq" / "stale.parquet").exists() and leftovers(tmp_path) == []


def test_a_failed_download_leaves_nothing_half_written(fake_hub, tmp_path, monkeypatch):
    import datasets

    def fail_on_validation(path, config=None, split=None, revision=None, **kwargs):
        if split == "validation":
            raise ConnectionError("the hub went away")
        return Dataset.from_list([dict(HUB_ROWS["boolq"])])

    monkeypatch.setattr(datasets, "load_dataset", fail_on_validation)
    with pytest.raises(ValueError, match=r"cannot load google/boolq \(config None, revision default, split "
                                         r"'validation'\) from the hub: ConnectionError: the hub went away"):
        data.fetch("boolq", to=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("names, to, message", [
    (("sciq", "imdb"), "copies", "unknown dataset 'imdb'; choose one of: amazon_polarity, sciq"),
    (("synthetic",), "copies", "synthetic: built in"),
    ((), "copies", "name the datasets to fetch"),
    (("sciq",), None, "--to=DIR is required"),
    (("sciq",), "a_file/sub", "cannot create '.*a_file/sub'"),
])
def test_fetch_refuses_bad_input_before_downloading(names, to, message, fake_hub, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ValueError, match=message):
        data.fetch(*names, to=None if to is None else str(tmp_path / to))
    assert fake_hub == [] and not (tmp_path / "copies").exists()


def test_fetch_refuses_a_folder_it_cannot_write(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a non-root user sees a read-only folder
    with pytest.raises(ValueError, match="cannot write to .*permission denied"):
        data.fetch("sciq", to=str(tmp_path))
    assert fake_hub == []


def run_data_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "weak_to_strong.data", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_cli_list_prints_every_dataset_with_its_hub_id_splits_label_and_template():
    out = run_data_cli("list")
    assert out.returncode == 0, out.stderr
    for name, spec in DATASETS.items():
        assert f"\n{name}\n" in f"\n{out.stdout}"
        if spec.hub_id:
            assert spec.hub_id in out.stdout
    assert "test <- validation+train[:200]" in out.stdout
    assert "template: Question: {question_stem}\\nAnswer: {answer}" in out.stdout


@pytest.mark.slow
def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    out = run_data_cli("fetch", "sciq", "imdb", "--to", str(tmp_path / "copies"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("error: unknown dataset 'imdb'") and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "copies").exists()


@pytest.mark.slow
def test_cli_show_prints_formatted_examples_with_labels(tmp_path):
    (tmp_path / "piqa").mkdir()
    for split in ("train", "validation"):
        Dataset.from_list([dict(HUB_ROWS["piqa"])] * 6).to_parquet(str(tmp_path / "piqa" / f"{split}.parquet"))
    out = run_data_cli("show", "piqa", f"--data_dir={tmp_path}", "--n=4")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("--- label 1") == 2 and out.stdout.count("--- label 0") == 2  # balanced
    assert "Goal: Open a stuck jar.\nSolution: Twist the lid under hot water." in out.stdout
