"""Failure behaviour: locked runs, retried uploads, readable modes, damaged inputs, leftovers, and a rerun after a kill
at every write point that gives the uninterrupted run's results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk

from weak_to_strong import atomic, readers, results
from weak_to_strong.config import RunConfig
from weak_to_strong.datasets import tokenize_dataset
from weak_to_strong.locks import hold_lock
from weak_to_strong.model import load_tokenizer
from weak_to_strong.models import get_model_spec
from weak_to_strong.pipeline import check_no_empty_documents, run_train_simple
from weak_to_strong.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent


def run_cli(flags: dict, *, script: str = "train_simple.py", pre: tuple = (), **popen) -> subprocess.Popen:
    args = [sys.executable, str(ROOT / script), *pre, *(f"--{k}={v}" for k, v in flags.items())]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen)


def run_outputs(run: Path) -> dict:
    """Everything a finished ground-truth run's results consist of (not its timing log)."""
    labels = load_from_disk(str(run / results.WEAK_LABELS_DIR)).to_dict()
    return {"config": json.loads((run / readers.CONFIG_FILE).read_text()), "summary": readers.read_summary(run),
            "predictions": readers.read_predictions(run), "weak_labels": labels}


# ---------------------------------------------------------------- the per-run lock

@pytest.mark.slow
def test_a_second_identical_run_waits_for_the_lock_and_never_deletes_finished_results(tiny_flags, tmp_path):
    """The reproduction: run A is under way (it holds the lock) when B starts; A finishes while B waits."""
    import shutil

    finished_elsewhere = RunConfig(**{**tiny_flags, "results_folder": str(tmp_path / "elsewhere")})
    run_train_simple(finished_elsewhere)
    cfg = RunConfig(**tiny_flags)
    run = results.run_dir(cfg)
    with hold_lock(results.run_lock_path(run), "test holds the lock"):  # A is running
        second = run_cli(tiny_flags)
        line = second.stderr.readline()  # blocks until B reports that it waits
        assert "waiting for another process that is running" in line, line
        time.sleep(0.5)
        assert second.poll() is None and not run.exists()  # B waits, and has touched nothing
        shutil.copytree(results.run_dir(finished_elsewhere), run)  # A finishes
    before = run_outputs(run)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "skipping" in out and run_outputs(run) == before


@pytest.mark.slow
def test_two_identical_runs_started_together_end_with_one_finished_run(tiny_flags):
    procs = [run_cli(tiny_flags) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    stdout = "".join(out for out, _ in outs)
    assert stdout.count("skipping") == 1 and stdout.count(": accuracy") == 2  # one trained, one reused it
    run = results.run_dir(RunConfig(**tiny_flags))
    assert results.is_done(run, ground_truth=True) and run_outputs(run)["summary"]["accuracy"] > 0


# ---------------------------------------------------------------- uploads

def write_sync_script(tmp_path: Path) -> tuple[Path, Path]:
    """A sync program that fails while `fail` exists and records every upload in `calls`."""
    script, calls, fail = tmp_path / "sync.sh", tmp_path / "calls.txt", tmp_path / "fail"
    script.write_text(f'#!/bin/sh\necho "$1 $2" >> {calls}\n[ -e {fail} ] && exit 3\nexit 0\n')
    script.chmod(0o755)
    return script, fail


def test_a_failed_upload_is_reported_and_retried_by_the_next_invocation(tiny_flags, tmp_path):
    script, fail = write_sync_script(tmp_path)
    fail.touch()
    cfg = RunConfig(**tiny_flags, sync_command=str(script))
    run = results.run_dir(cfg)
    with pytest.raises(ValueError, match=r"is finished, but its upload failed .*status 3.*rerun the same command"):
        run_train_simple(cfg)
    assert readers.is_finished(run) and not results.is_done(run, True, cfg.sync_command)
    fail.unlink()
    run_train_simple(cfg)  # reuses the finished run, uploads it
    run_train_simple(cfg)  # nothing left to do
    uploads = [line for line in (tmp_path / "calls.txt").read_text().splitlines() if line.startswith("upload")]
    assert uploads == [f"upload {run}"] * 2 and results.uploaded_with(run) == str(script)


def test_a_missing_sync_program_fails_before_training(tiny_flags):
    cfg = RunConfig(**tiny_flags, sync_command="no-such-sync-program --bucket x")
    with pytest.raises(ValueError, match="'no-such-sync-program' is not a program on PATH"):
        run_train_simple(cfg)
    assert not Path(tiny_flags["results_folder"]).exists()


# ---------------------------------------------------------------- modes

def test_results_and_caches_get_the_modes_the_umask_gives(tiny_flags, monkeypatch):
    import weak_to_strong.token_cache as token_cache

    monkeypatch.setattr(token_cache, "IN_MEMORY_CHARS", 0)  # tokenize through the on-disk cache
    old = os.umask(0o022)
    try:
        cfg = RunConfig(**tiny_flags)
        run_train_simple(cfg)
    finally:
        os.umask(old)
    run = results.run_dir(cfg)
    for file in (readers.CONFIG_FILE, readers.SUMMARY_FILE, readers.PREDICTIONS_FILE):
        assert (run / file).stat().st_mode & 0o777 == 0o644, file
    assert (run / results.WEAK_LABELS_DIR).stat().st_mode & 0o777 == 0o755
    for entry in (Path(os.environ["W2S_CACHE_DIR"]) / "tokenized").iterdir():
        assert entry.stat().st_mode & 0o777 == 0o755, entry


# ---------------------------------------------------------------- damaged or mismatched inputs

def transfer_flags(tiny_flags) -> dict:
    return {**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small"}


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_damaged_weak_labels_name_the_path_and_the_fix(tiny_flags, damage):
    run_train_simple(RunConfig(**tiny_flags))
    labels = results.run_dir(RunConfig(**tiny_flags)) / results.WEAK_LABELS_DIR
    arrow = next(labels.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2] if damage == "truncate" else b"")
    with pytest.raises(ValueError, match=rf"weak labels at '{labels}' are not usable \(unreadable.*--force_retrain"):
        run_train_simple(RunConfig(**transfer_flags(tiny_flags)))


def test_a_ground_truth_run_whose_weak_labels_were_deleted_trains_again(tiny_flags, capsys):
    cfg = RunConfig(**tiny_flags)
    run_train_simple(cfg)
    run = results.run_dir(cfg)
    before = run_outputs(run)
    import shutil

    shutil.rmtree(run / results.WEAK_LABELS_DIR)
    run_train_simple(cfg)
    assert "weak labels are missing: training it again" in capsys.readouterr().out
    assert run_outputs(run) == before


def test_a_corrupted_summary_names_the_file_and_the_fix(tiny_flags):
    cfg = RunConfig(**tiny_flags)
    run_train_simple(cfg)
    summary = results.run_dir(cfg) / readers.SUMMARY_FILE
    summary.write_text('{"accuracy": 0.9')
    with pytest.raises(ValueError, match=rf"{summary} is corrupted \(unreadable.*\): delete it, or rerun with "
                                         r"--force_retrain"):
        run_train_simple(cfg)
    run_train_simple(replace(cfg, force_retrain=True))
    assert readers.read_summary(results.run_dir(cfg))["accuracy"] > 0


def test_a_transfer_run_refuses_labels_of_an_unfinished_ground_truth_run(tiny_flags):
    run_train_simple(RunConfig(**tiny_flags))
    weak_run = results.run_dir(RunConfig(**tiny_flags))
    (weak_run / readers.SUMMARY_FILE).unlink()  # as if killed between its weak labels and its summary
    with pytest.raises(ValueError, match=r"has weak labels but no results_summary.json \(was it killed\?\); finish "
                                         r"it first: python train_simple.py --model_size=toy-small"):
        run_train_simple(RunConfig(**transfer_flags(tiny_flags)))


def test_weak_labels_of_another_dataset_are_refused(tiny_flags, tmp_path):
    run_train_simple(RunConfig(**tiny_flags))
    labels = results.run_dir(RunConfig(**tiny_flags)) / results.WEAK_LABELS_DIR
    flags = {**tiny_flags, "model_size": "toy-large", "ds_name": "testbed_knowledge", "weak_labels_path": str(labels)}
    with pytest.raises(ValueError, match=r"holds weak labels of 'synthetic' .* not of --ds_name='testbed_knowledge'"):
        run_train_simple(RunConfig(**flags))


def test_a_damaged_token_cache_entry_heals_itself(tiny_flags, capsys, monkeypatch):
    import weak_to_strong.token_cache as token_cache

    monkeypatch.setattr(token_cache, "IN_MEMORY_CHARS", 0)
    cfg = RunConfig(**tiny_flags)
    run_train_simple(cfg)
    expected = run_outputs(results.run_dir(cfg))
    cache = Path(os.environ["W2S_CACHE_DIR"]) / "tokenized"
    for arrow in cache.rglob("*.arrow"):
        arrow.write_bytes(arrow.read_bytes()[:100])
    run_train_simple(replace(cfg, force_retrain=True))
    assert "is unreadable" in capsys.readouterr().err
    assert run_outputs(results.run_dir(cfg)) == expected


def test_a_damaged_toy_model_is_built_again(tiny_flags, tmp_path, monkeypatch, capsys):
    from weak_to_strong.toy import ensure_toy_model

    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    weights = Path(ensure_toy_model("toy-small")) / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    assert Path(ensure_toy_model("toy-small")) == weights.parent
    assert "damaged" in capsys.readouterr().err and weights.read_bytes() == good


# ---------------------------------------------------------------- bad flags and models, checked up front

def test_a_results_folder_under_a_regular_file_fails_before_any_work(tiny_flags, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    flags = {**tiny_flags, "results_folder": str(tmp_path / "file" / "results")}
    with pytest.raises(ValueError, match=r"'.*file' is a file, not a folder; choose another --results_folder"):
        run_train_simple(RunConfig(**flags))
    with pytest.raises(ValueError, match="is a file, not a folder"):
        run_sweep("toy-small,toy-large", **{k: v for k, v in flags.items() if k != "model_size"},
                  executor="local")


def test_model_folders_without_weights_config_or_tokenizer_are_named(tmp_path):
    from weak_to_strong.toy import ensure_toy_model

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"model folder '.*empty' is empty"):
        load_tokenizer(get_model_spec(str(empty)))
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text(Path(ensure_toy_model("toy-small"), "config.json").read_text())
    with pytest.raises(ValueError, match=r"has no tokenizer files .*tokenizer.save_pretrained"):
        load_tokenizer(get_model_spec(str(no_tokenizer)))


def test_documents_without_tokens_are_rejected_before_training():
    tokenizer = load_tokenizer(get_model_spec("toy-small"))
    ds = tokenize_dataset(Dataset.from_dict({"txt": ["a sentence", ""], "hard_label": [0, 1]}), tokenizer, 64)
    with pytest.raises(ValueError, match=r"document 1 of 'x' \(train\), '', has no tokens for 'toy-small'"):
        check_no_empty_documents(ds, "'x' (train)", "toy-small")
    check_no_empty_documents(ds.select([0]), "'x' (train)", "toy-small")


# ---------------------------------------------------------------- leftovers

def test_stale_temporaries_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = os.uname().nodename
    stale_dead = tmp_path / f".a.json{atomic.TMP_MARK}{host}-{dead.stdout.strip()}-00000000"
    live = tmp_path / f".b.json{atomic.TMP_MARK}{host}-{os.getpid()}-00000000"
    old_elsewhere = tmp_path / f".c{atomic.TMP_MARK}other-node-1-00000000"
    fresh_elsewhere = tmp_path / f".d{atomic.TMP_MARK}other-node-1-00000000"
    for path in (stale_dead, live, old_elsewhere, fresh_elsewhere):
        path.mkdir()
    day_ago = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(old_elsewhere, (day_ago, day_ago))
    atomic.write_json(tmp_path / "x.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.json", live.name, fresh_elsewhere.name])


def test_a_failed_write_leaves_neither_a_temporary_nor_a_half_file(tmp_path):
    atomic.write_json(tmp_path / "x.json", {"old": True})
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "x.json", {"new": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"old": True}


# ---------------------------------------------------------------- fault injection

@pytest.mark.slow
def test_a_rerun_after_a_kill_at_every_write_point_gives_the_uninterrupted_results(tiny_flags, tmp_path, monkeypatch):
    """Each try starts from an empty cache, so it publishes the same things in the same order: the toy model,
    config.json, the weak labels, the predictions and the summary (these small sets skip the token cache). One thread everywhere:
    the killed runs (subprocesses) and the reruns (here) must compute bit-identical numbers."""
    import torch

    from kill_at_write import PublishCounter

    def use_cache(name: str) -> dict:
        monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / name / "cache"))
        return {**tiny_flags, "results_folder": str(tmp_path / name)}

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        flags = use_cache("reference")
        counter = PublishCounter(kill_after=0)
        monkeypatch.setattr(atomic, "os", counter)
        run_train_simple(RunConfig(**flags))
        monkeypatch.setattr(atomic, "os", os)
        expected = run_outputs(results.run_dir(RunConfig(**flags)))
        assert counter.count >= 5
        for k in range(1, counter.count + 1):
            flags = use_cache(f"killed_after_{k}")
            killed = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_at_write.py"), str(k),
                                     *(f"--{key}={v}" for key, v in flags.items())], capture_output=True, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
            assert killed.returncode == 137, killed.stderr
            run_train_simple(RunConfig(**flags))
            assert run_outputs(results.run_dir(RunConfig(**flags))) == expected, f"killed after write {k}"
    finally:
        torch.set_num_threads(threads)
