"""train_weak_to_strong.py end to end on toy models: stages, pair summary, reuse, analysis, CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from weak_to_strong import cli, plot, readers, results
from weak_to_strong.config import RunConfig
from weak_to_strong.experiment import configs_from_flags, run_weak_to_strong

REPO_ROOT = Path(__file__).resolve().parents[1]
TOY_FLAGS = dict(weak_model_size="toy-small", strong_model_size="toy-large", ds_name="synthetic", n_docs=120,
                 n_test_docs=40, batch_size=16, gt_epochs=1)
ACC_KEYS = ("weak_acc", "strong_acc", "transfer_acc_xent", "transfer_acc_logconf")


def run_w2s(results_folder: Path, **flags) -> dict:
    w2s, base = configs_from_flags({**TOY_FLAGS, "results_folder": str(results_folder), **flags})
    return run_weak_to_strong(w2s, base)


def pair_rows(results_folder: Path) -> list[dict]:
    runs, problems = readers.load_runs(results_folder)
    assert not problems
    rows, notes = plot.pair_rows_from_runs(runs)
    assert not notes
    return rows


@pytest.fixture(scope="module")
def w2s_folder(tmp_path_factory) -> Path:
    """One finished toy pair (xent and logconf); tests copy it before adding to it."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    folder = tmp_path_factory.mktemp("w2s")
    run_w2s(folder)
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "results"))


def test_writes_the_pair_summary_from_three_standard_runs(w2s_folder):
    summary = json.loads((w2s_folder / "toy-small_toy-large.results_summary.json").read_text())
    assert all(0.0 <= summary[k] <= 1.0 for k in ACC_KEYS)
    assert (summary["ds_name"], summary["seed"], summary["settings"]["transfer_epochs"]) == ("synthetic", 0, 1)
    # weak model, strong ceiling, one transfer run per loss, each in train_simple's layout
    assert sorted(summary["runs"]) == ["strong", "transfer_logconf", "transfer_xent", "weak"]
    for name, run in summary["runs"].items():
        assert readers.is_finished(w2s_folder / run), name
    # the transfer run is the very run train_simple.py --weak_model_size would do
    same_as_train_simple = RunConfig(model_size="toy-large", weak_model_size="toy-small", loss="logconf",
                                     ds_name="synthetic", n_docs=120, n_test_docs=40, batch_size=16, epochs=1,
                                     results_folder=str(w2s_folder))
    assert str(results.run_dir(same_as_train_simple)) == str(w2s_folder / summary["runs"]["transfer_logconf"])
    # and the analysis, reading the runs, finds the same accuracies
    by_loss = {r["loss"]: r for r in pair_rows(w2s_folder)}
    for loss in ("xent", "logconf"):
        row = by_loss[loss]
        assert (row["weak_acc"], row["strong_acc"], row["transfer_acc"]) == (
            summary["weak_acc"], summary["strong_acc"], summary[f"transfer_acc_{loss}"])


def test_second_call_reuses_every_stage(w2s_folder, tmp_path, capsys):
    folder = copy_of(w2s_folder, tmp_path)
    before = json.loads((folder / "toy-small_toy-large.results_summary.json").read_text())
    summary = run_w2s(folder)
    out = capsys.readouterr().out
    assert out.count("skipping") == 4
    assert {k: summary[k] for k in ACC_KEYS} == {k: before[k] for k in ACC_KEYS}
    assert f"weak acc (toy-small): {before['weak_acc']:.4f}" in out
    assert f"transfer acc (logconf): {before['transfer_acc_logconf']:.4f}" in out


def test_transfer_lr_of_its_own_trains_on_the_weak_stages_labels(w2s_folder, tmp_path, capsys):
    folder = copy_of(w2s_folder, tmp_path)
    summary = run_w2s(folder, transfer_lr=3e-3, transfer_loss="xent")
    assert capsys.readouterr().out.count("skipping") == 2  # weak and strong reused, transfer trained
    transfer_dir = folder / summary["runs"]["transfer_xent"]
    assert "-wl=" in transfer_dir.name  # named by its labels, not by train_simple's weak_model_size
    config = json.loads((transfer_dir / readers.CONFIG_FILE).read_text())
    weak_config = json.loads((folder / summary["runs"]["weak"] / readers.CONFIG_FILE).read_text())
    assert config["lr"] == 3e-3 and config["weak_model"] == weak_config
    row = next(r for r in pair_rows(folder) if r["setting"]["lr"] == 3e-3)
    assert (row["weak_acc"], row["transfer_acc"]) == (summary["weak_acc"], summary["transfer_acc_xent"])


def test_model_path_with_slashes_gets_one_summary_file(w2s_folder, tmp_path):
    from weak_to_strong.toy import ensure_toy_model

    folder = copy_of(w2s_folder, tmp_path)
    (folder / "toy-small_toy-large.results_summary.json").unlink()
    strong_path = ensure_toy_model("toy-large")  # a local directory: any model id with "/" works the same
    summary = run_w2s(folder, strong_model_size=strong_path, transfer_loss="xent")
    written = list(folder.glob("*.results_summary.json"))
    assert written == [results.pair_summary_path(folder, "toy-small", strong_path)]
    assert json.loads(written[0].read_text())["strong_model_size"] == strong_path == summary["strong_model_size"]


# ---------------------------------------------------------------- the script

def run_script(*args, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(REPO_ROOT / "train_weak_to_strong.py"), *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_script_parses_the_loss_list_and_reuses_the_runs(w2s_folder, tmp_path):
    folder = copy_of(w2s_folder, tmp_path)
    flags = [f"--{k}={v}" for k, v in TOY_FLAGS.items()]
    proc = run_script(*flags, "--transfer_loss=xent,logconf", f"--results_folder={folder}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("skipping") == 4 and "transfer acc (logconf)" in proc.stdout


def run_main(monkeypatch, *args) -> None:
    """The script's entry point in this process: fire's parsing without a new interpreter."""
    monkeypatch.setattr(sys, "argv", ["train_weak_to_strong.py", *args])
    cli.main("train_weak_to_strong")


def test_script_help_lists_the_reference_flags(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(monkeypatch, "--help")
    helptext = "".join(capsys.readouterr())
    assert exit_info.value.code == 0
    for flag in ("--transfer_loss", "--weak_lr", "--transfer_optim", "--gt_epochs", "--transfer_epochs",
                 "--log_prefix", "--eval_every", "--linear_probe", "--n_docs=N_DOCS\n        Default: 10000"):
        assert flag in helptext


def test_script_bad_flag_is_one_error_line(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_main(monkeypatch, "--transfer_loss=nope", f"--results_folder={tmp_path}")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown loss in --transfer_loss 'nope'; choose one of: xent, product, logconf")
    assert err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_stage_optimizers_are_accepted_in_any_case(tmp_path):
    w2s, _ = configs_from_flags({**TOY_FLAGS, "results_folder": str(tmp_path), "weak_optim": "Adam",
                                 "strong_optim": "ADAFACTOR", "transfer_optim": "AdaFactor"})
    assert (w2s.weak_optim, w2s.strong_optim, w2s.transfer_optim) == ("adam", "adafactor", "adafactor")


@pytest.mark.parametrize("flags, message", [
    ({"transfer_loss": "xent,nope"}, "unknown loss in --transfer_loss 'nope'"),
    ({"transfer_loss": ""}, "--transfer_loss is empty"),
    ({"lr": 0.001, "model_size": "gpt2"}, "--lr, --model_size: set per stage here"),
    ({"weak_lr": -1}, "--weak_lr must be a positive finite number"),
    ({"weak_lr": float("inf")}, "--weak_lr must be a positive finite number"),
    ({"strong_optim": "sgd"}, "unknown --strong_optim 'sgd'"),
    ({"transfer_epochs": 0}, "--transfer_epochs must be a positive integer"),
    ({"weak_model_size": "nosuchmodel"}, "unknown model 'nosuchmodel'"),
    ({"n_docs": 1}, "--n_docs=1 is too small"),
    ({"bogus": 1}, "unknown flag"),
])
def test_bad_flags_fail_before_any_work(tmp_path, flags, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        configs_from_flags({**TOY_FLAGS, "results_folder": str(tmp_path), **flags})
    assert not any(tmp_path.iterdir())


def test_pair_summaries_record_every_result_field():
    """Derived from the field metadata: a result field added to RunConfig reaches the pair summary's settings."""
    from weak_to_strong.config import result_field_names
    from weak_to_strong.experiment import SHARED_RESULT_FIELDS, STAGE_FLAGS, STAGE_RESULT_FIELDS

    covered = {*SHARED_RESULT_FIELDS, *STAGE_RESULT_FIELDS, *STAGE_FLAGS, "ds_name", "seed"}
    assert set(result_field_names()) <= covered
    assert {"lora_rank", "precision", "balance"} <= {*SHARED_RESULT_FIELDS, *STAGE_RESULT_FIELDS}
