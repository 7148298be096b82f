"""Numbers are checked before they become results: diverged runs, weak labels, dataset labels."""

from __future__ import annotations

import json
import re

import pytest
from datasets import Dataset, load_from_disk

from weak_to_strong import readers, results
from weak_to_strong.checks import TrainingDiverged, soft_label_problem
from weak_to_strong.config import RunConfig
from weak_to_strong.datasets import load_dataset
from weak_to_strong.pipeline import run_train_simple


def test_a_diverged_run_stops_with_a_clear_error_and_is_not_marked_finished(tiny_flags):
    cfg = RunConfig(**{**tiny_flags, "lr": 1e6})
    with pytest.raises(TrainingDiverged, match=r"training diverged: the loss is nan at step \d+ \(--lr=1e\+06\)"):
        run_train_simple(cfg)
    run = results.run_dir(cfg)
    assert not readers.is_finished(run) and not (run / results.WEAK_LABELS_DIR).exists()


@pytest.mark.parametrize("labels, problem", [
    ([[0.2, 0.8], [float("nan"), float("nan")]], "row 1 is \\[nan, nan\\], not finite"),
    ([[0.2, 0.8], [-1.0, 2.0]], "row 1 is \\[-1.0, 2.0\\], not two probabilities summing to 1"),
    ([[0.2, 0.7]], "row 0 .* not two probabilities summing to 1"),
    ([[0.2, 0.8, 0.0]], "one \\[p0, p1\\] pair per document"),
])
def test_soft_labels_must_be_probabilities(labels, problem):
    assert soft_label_problem([[0.0, 1.0], [0.5, 0.5]]) is None
    found = soft_label_problem(labels)
    assert found is not None and re.search(problem, found), found


def test_weak_labels_are_checked_when_written_and_when_read(tmp_path):
    bad = Dataset.from_dict({"id": [0, 1], "txt": ["a", "b"], "soft_label": [[0.3, 0.7], [float("nan")] * 2]})
    with pytest.raises(ValueError, match="refusing to write weak labels .* row 1 is \\[nan, nan\\]"):
        results.save_weak_labels(bad, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    bad.save_to_disk(str(tmp_path / "tampered"))  # written by something else, or an older version
    with pytest.raises(ValueError, match="weak labels at .*tampered.* not usable .*--force_retrain"):
        results.load_weak_labels(tmp_path / "tampered")
    good = Dataset.from_dict({"id": [0], "txt": ["a"], "soft_label": [[0.3, 0.7]]})
    results.save_weak_labels(good, tmp_path / "good")
    assert load_from_disk(str(tmp_path / "good"))["soft_label"][0] == pytest.approx([0.3, 0.7])


def write_local_copy(root, name: str, rows: list[dict]) -> None:
    (root / name).mkdir(parents=True)
    for split in ("train", "test", "validation"):
        with open(root / name / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("name, row, message", [
    ("amazon_polarity", {"title": "t", "content": "c", "label": 3}, "label 3 is not 0 or 1"),
    ("boolq", {"passage": "p", "question": "q", "answer": 2}, "label 2 is not 0 or 1"),
    ("cosmos_qa", {"context": "c", "question": "q", "answer0": "a", "answer1": "b", "answer2": "c", "answer3": "d",
                   "label": 7}, "cannot be formatted \\(IndexError"),
    ("sciq", {"question": "q", "distractor1": "d"}, "cannot be formatted \\(KeyError"),
])
def test_a_bad_label_or_row_names_the_dataset_its_file_and_the_row(tmp_path, name, row, message):
    write_local_copy(tmp_path, name, [row])
    with pytest.raises(ValueError, match=f"dataset '{name}' split '\\w+' \\({tmp_path}/{name}\\), row 0: {message}"):
        load_dataset(name, data_dir=str(tmp_path))


def test_a_tilde_results_folder_is_expanded_once_and_every_file_goes_under_it(tiny_flags, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig(**{**tiny_flags, "results_folder": "~/x"})
    assert cfg.results_folder == str(tmp_path / "home" / "x")
    run_train_simple(cfg)
    run = results.run_dir(cfg)
    assert readers.is_finished(run) and (run / results.WEAK_LABELS_DIR / "dataset_info.json").exists()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("flag", ["sweep_subfolder", "results_folder", "log_prefix", "model_size"])
def test_numeric_looking_text_flags_are_text(flag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if flag == "model_size":
        with pytest.raises(ValueError, match="unknown model '123'"):
            RunConfig(model_size=123, ds_name="synthetic")
        return
    cfg = RunConfig(model_size="toy-small", ds_name="synthetic", **{flag: 20240101})
    assert getattr(cfg, flag).endswith("20240101") and isinstance(getattr(cfg, flag), str)
    results.run_dir(cfg)  # a str path, where an int used to give a TypeError


@pytest.mark.parametrize("seed", [1.5, "abc", 2**40, -1, True])
def test_bad_seeds_are_one_clear_error(seed):
    with pytest.raises(ValueError, match="--seed must be an integer from 0 to 2\\*\\*32 - 1"):
        RunConfig(model_size="toy-small", ds_name="synthetic", seed=seed)


@pytest.mark.parametrize("flags, message", [
    (dict(seeds="-1"), "--seeds must be non-negative integers"),
    (dict(seeds="0,0"), "--seeds lists 0 more than once"),
])
def test_sweep_refuses_negative_and_repeated_seeds(flags, message):
    from weak_to_strong.sweep import SweepOptions

    with pytest.raises(ValueError, match=message):
        SweepOptions(**flags)


def test_sweep_refuses_a_model_listed_twice():
    from weak_to_strong.sweep import parse_model_sizes

    with pytest.raises(ValueError, match="--model_sizes lists toy-small more than once"):
        parse_model_sizes("toy-small,toy-small")
