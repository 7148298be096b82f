import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk

from weak_to_strong import metrics, plot, readers, results
from weak_to_strong.config import RunConfig, result_dict
from weak_to_strong.loss import LOSSES
from weak_to_strong.pipeline import run_train_simple

REPO = Path(__file__).resolve().parents[1]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_ground_truth_run_writes_the_results_layout(tiny_flags):
    cfg = RunConfig(**tiny_flags)
    summary = run_train_simple(cfg)
    path = results.run_dir(cfg)
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert json.loads((path / "results_summary.json").read_text()) == summary
    assert json.loads((path / "config.json").read_text()) == result_dict(cfg)
    log = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in log) and log[-1]["final"] is True
    weak = load_from_disk(str(path / "weak_labels"))
    assert set(weak.column_names) == {"id", "txt", "soft_label", "hard_label", "gt_label"}
    assert 90 <= len(weak) <= 100  # the held-out half of 200 docs (a few may be too long)
    row = weak[0]
    assert row["soft_label"][0] + row["soft_label"][1] == pytest.approx(1.0)
    assert row["hard_label"] == int(row["soft_label"][1] > row["soft_label"][0])
    assert not any(p.startswith(".") for p in files_under(path))  # no temporary leftovers
    predictions = readers.read_predictions(path)
    # A ground-truth run has no supervisor to agree with; it says how far its labels' class prior is off.
    assert set(summary) == {"accuracy", "auroc", "ece", "log_loss", "weak_labels_prior_shift"}
    taught = sum(p[1] for p in weak["soft_label"]) / len(weak)
    assert summary["weak_labels_prior_shift"] == pytest.approx(taught - sum(weak["gt_label"]) / len(weak), abs=1e-6)
    assert readers.read_run(path)["weak_labels_prior_shift"] == summary["weak_labels_prior_shift"]
    assert summary["auroc"] == metrics.auroc(predictions["prob"], predictions["label"])
    assert summary["ece"] == metrics.ece(predictions["prob"], predictions["label"]) and 0 <= summary["ece"] <= 0.5


def test_a_stratified_run_labels_the_stratified_half_in_a_folder_of_its_own(tiny_flags):
    from weak_to_strong.datasets import split_in_halves
    from weak_to_strong.pipeline import load_splits

    cfg = RunConfig(**tiny_flags, stratify=True)
    run_train_simple(cfg)
    assert results.run_dir(cfg).name.endswith("-strat=1") and results.run_dir(cfg) != results.run_dir(
        RunConfig(**tiny_flags))  # synthetic: random halves by default
    labelled = set(load_from_disk(str(results.run_dir(cfg) / "weak_labels"))["id"])
    train = load_splits(cfg)["train"]
    stratified, plain = (set(split_in_halves(train, cfg.seed, stratify)[1]["id"]) for stratify in (True, False))
    assert labelled <= stratified and len(labelled) >= len(stratified) - 10  # a few too long for max_ctx
    assert not labelled <= plain


def test_transfer_run_trains_on_the_weak_labels_and_records_the_weak_config(tiny_flags):
    gt = RunConfig(**tiny_flags)
    run_train_simple(gt)
    cfg = RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small"})
    summary = run_train_simple(cfg)
    config = json.loads((results.run_dir(cfg) / "config.json").read_text())
    assert config["weak_model_size"] == "toy-small"
    # Agreement with the supervisor, from both runs' test predictions; the PGR table's column is the same number.
    weak, student = (readers.read_predictions(results.run_dir(c)) for c in (gt, cfg))
    assert {k: summary[k] for k in ("agreement", "agreement_on_weak_errors")} == metrics.agreement(weak, student)
    assert summary["agreement_on_weak_errors"] == plot.weak_error_agreement(results.run_dir(gt), results.run_dir(cfg))
    # The pair row carries the labels' prior shift from the floor's summary and the student's base-rate shift.
    run_train_simple(RunConfig(**{**tiny_flags, "model_size": "toy-large"}))  # the ceiling a pair row needs
    rows, _ = plot.pair_rows_from_runs(readers.load_runs(Path(tiny_flags["results_folder"]))[0])
    (row,) = [r for r in rows if Path(r["path"]).resolve() == results.run_dir(cfg).resolve()]
    assert row["weak_labels_prior_shift"] == readers.read_summary(results.run_dir(gt))["weak_labels_prior_shift"]
    assert row["transfer_base_rate_shift"] == metrics.base_rate_shift(student["prob"], student["label"])
    assert config["weak_model"] == json.loads((results.run_dir(gt) / "config.json").read_text())
    assert not (results.run_dir(cfg) / "weak_labels").exists()
    # --weak_labels_path names the same labels directly, in a folder of its own.
    by_path = RunConfig(**{**tiny_flags, "model_size": "toy-large",
                           "weak_labels_path": str(results.run_dir(gt) / "weak_labels")})
    run_train_simple(by_path)
    assert readers.is_finished(results.run_dir(by_path)) and results.run_dir(by_path) != results.run_dir(cfg)
    # The ground-truth run's folder names the same labels (the reference appended weak_labels/ too).
    by_folder = RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_labels_path": str(results.run_dir(gt)),
                             "force_retrain": True})
    assert results.run_dir(by_folder) == results.run_dir(by_path)
    assert run_train_simple(by_folder) == readers.read_summary(results.run_dir(by_path))


def test_finished_runs_are_skipped_unless_forced(tiny_flags, capsys):
    cfg = RunConfig(**tiny_flags)
    first = run_train_simple(cfg)
    summary_file = results.run_dir(cfg) / "results_summary.json"
    stamp = summary_file.stat().st_mtime_ns
    assert run_train_simple(cfg) == first
    assert "skipping" in capsys.readouterr().out
    assert summary_file.stat().st_mtime_ns == stamp
    again = run_train_simple(RunConfig(**tiny_flags, force_retrain=True))
    assert summary_file.stat().st_mtime_ns != stamp
    assert again == first  # same seed, same machine: same result


def test_an_unfinished_run_is_not_mistaken_for_a_finished_one(tiny_flags):
    cfg = RunConfig(**tiny_flags)
    path = results.run_dir(cfg)
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")  # as left by a run killed mid-training
    assert not readers.is_finished(path)
    run_train_simple(cfg)
    assert readers.is_finished(path) and (path / "weak_labels").is_dir()


def test_same_seed_gives_identical_weak_labels(tiny_flags, tmp_path):
    a = RunConfig(**{**tiny_flags, "results_folder": str(tmp_path / "a")})
    b = RunConfig(**{**tiny_flags, "results_folder": str(tmp_path / "b")})
    run_train_simple(a), run_train_simple(b)
    wa = load_from_disk(str(results.run_dir(a) / "weak_labels"))
    wb = load_from_disk(str(results.run_dir(b) / "weak_labels"))
    assert wa["soft_label"] == wb["soft_label"] and wa["id"] == wb["id"]


def test_pack_flag_changes_speed_not_results(tiny_flags, tmp_path):
    """--pack=False (one document per row) and the CPU default (packed rows): the same run up to float rounding."""
    import torch

    runs = {pack: RunConfig(**{**tiny_flags, "pack": pack, "results_folder": str(tmp_path / str(pack))})
            for pack in (None, False)}
    for cfg in runs.values():
        run_train_simple(cfg)
    packed, padded = (load_from_disk(str(results.run_dir(runs[p]) / "weak_labels")) for p in (None, False))
    assert packed["id"] == padded["id"]
    assert torch.allclose(torch.tensor(packed["soft_label"]), torch.tensor(padded["soft_label"]), atol=1e-4)
    losses = [[json.loads(line)["loss"] for line in (results.run_dir(runs[p]) / results.LOG_FILE).open()
               if '"loss"' in line] for p in (None, False)]
    assert len(losses[0]) == len(losses[1]) > 0
    assert torch.allclose(torch.tensor(losses[0]), torch.tensor(losses[1]), atol=1e-5)


def test_save_model_writes_weights(tiny_flags):
    cfg = RunConfig(**tiny_flags, save_model=True)
    run_train_simple(cfg)
    from safetensors.torch import load_file

    state = load_file(str(results.run_dir(cfg) / "model.safetensors"))
    assert state["score.weight"].abs().sum() > 0  # the trained head, not the zero init


@pytest.mark.parametrize("change, message", [
    (dict(model_size="toy-large", weak_model_size="toy-small"), "no weak labels at .*run the ground-truth run first"),
    (dict(weak_labels_path="/does/not/exist"), "--weak_labels_path='/does/not/exist' does not exist"),
    (dict(model_size="toy-large", weak_ensemble="toy-small@1,toy-small@2"),
     "no weak labels at .*run the ground-truth run first: .*--model_size=toy-small .*--train_seed=1 "),
    (dict(model_size="toy-large", weak_model_size="tb-m", bootstrap_chain="toy-small,tb-m,toy-large"),
     "run the bootstrapping link before first: .*--model_size=tb-m .*--weak_model_size=toy-small "),
    (dict(weak_labels_path=str(REPO / "tests")), "no weak labels at .*tests': neither a saved dataset nor a run folder"),
    (dict(max_ctx=1), "no train docs .* left after the max_ctx=1 token filter"),
    (dict(batch_size=128), "training documents x --epochs=1 make no full batch of --batch_size=128"),
    (dict(data_dir="/does/not/exist/either"), "local data directory '/does/not/exist/either' does not exist"),
    (dict(loss="logconf_buffer"), r"^--loss=logconf_buffer: its rolling buffer of 128 predictions is larger than the "
                                  r"\d+ training documents"),
])
def test_bad_input_fails_before_writing_anything(tiny_flags, change, message, monkeypatch):
    import weak_to_strong.pipeline as pipeline

    def refuse_to_load_weights(*args, **kwargs):
        raise AssertionError("the model's weights were loaded before the input was checked")

    monkeypatch.setattr(pipeline, "load_model", refuse_to_load_weights)  # data errors come before the (big) load
    cfg = RunConfig(**{**tiny_flags, **change})
    with pytest.raises(ValueError, match=message):
        run_train_simple(cfg)
    assert files_under(Path(tiny_flags["results_folder"])) == []


def run_script(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["--ds_name=imdb"], "error: unknown dataset 'imdb'; choose one of: amazon_polarity, sciq"),
    (["--loss=mse"], "error: unknown loss 'mse'"),
    (["--bogus_flag=1"], "error: unknown flag(s) --bogus_flag"),
    (["--batch_size=32", "--minibatch_size_per_device=5"], "error: --batch_size=32 is not a multiple"),
    (["--model_size=toy-large", "--weak_model_size=toy-small", "--ds_name=synthetic"], "error: no weak labels at"),
])
@pytest.mark.slow
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path, args, message):
    out = run_script("train_simple.py", f"--results_folder={tmp_path}/r", *args)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()


def test_sync_command_uploads_results_and_downloads_missing_weak_labels(tiny_flags, tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    script = tmp_path / "sync.sh"
    # CMD download|upload PATH RESULTS_FOLDER: mirror PATH (inside RESULTS_FOLDER) to/from the remote copy.
    script.write_text(
        '#!/usr/bin/env bash\nset -e\nrel="${2#$3/}"\n'
        'if [ "$1" = upload ]; then mkdir -p "$REMOTE/$(dirname "$rel")"; cp -r "$2" "$REMOTE/$rel";\n'
        'elif [ -d "$REMOTE/$rel" ]; then mkdir -p "$(dirname "$2")"; cp -r "$REMOTE/$rel" "$2"; fi\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("REMOTE", str(remote))
    gt = RunConfig(**tiny_flags, sync_command=str(script))
    run_train_simple(gt)
    rel = results.run_dir(gt).relative_to(tiny_flags["results_folder"])
    assert (remote / rel / "weak_labels").is_dir()
    shutil.rmtree(tiny_flags["results_folder"])  # a fresh machine: only the remote copy is left
    transfer = RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small",
                            "sync_command": str(script)})
    run_train_simple(transfer)
    assert readers.is_finished(results.run_dir(transfer))


def write_boolq_copy(root: Path, n_train: int, n_test: int, record: dict | None = None) -> None:
    from datasets import Dataset

    (root / "boolq").mkdir(parents=True)
    for split, n in (("train", n_train), ("validation", n_test)):
        rows = [{"question": f"is {i} even", "passage": f"The number {i}.", "answer": i % 2 == 0} for i in range(n)]
        Dataset.from_list(rows).to_parquet(str(root / "boolq" / f"{split}.parquet"))
    if record is not None:
        (root / "boolq" / "fetch_record.json").write_text(json.dumps(record))


def test_more_docs_than_the_dataset_has_names_the_run_after_the_docs_used(tiny_flags, tmp_path, capsys):
    """--n_docs=200 on a copy with 60 training and 24 test documents: the run uses them all, says so, and its
    folder and config.json say nd=60 and ntd=24; the same flags find it finished afterwards."""
    write_boolq_copy(tmp_path / "data", 60, 24, record={"revision": None, "commit": "feedbeef"})
    flags = {**tiny_flags, "ds_name": "boolq", "data_dir": str(tmp_path / "data")}
    asked = RunConfig(**flags)
    run_train_simple(asked)
    out = capsys.readouterr().out
    assert "dataset 'boolq' gives 60 training documents, fewer than --n_docs=200" in out
    assert "gives 24 test documents, fewer than --n_test_docs=50" in out
    used = RunConfig(**{**flags, "n_docs": 60, "n_test_docs": 24})
    assert readers.is_finished(results.run_dir(used)) and not results.run_dir(asked).exists()
    assert "-nd=60-ntd=24-" in results.run_dir(used).name
    config = json.loads((results.run_dir(used) / "config.json").read_text())
    assert (config["n_docs"], config["n_test_docs"]) == (60, 24)
    assert config["data_revision"] == "feedbeef"  # the fetched commit, beside what affects results
    assert len(load_from_disk(str(results.run_dir(used) / "weak_labels"))) == 30
    run_train_simple(asked)
    assert "skipping" in capsys.readouterr().out


def test_an_empty_split_fails_before_the_model_loads_and_writes_nothing(tiny_flags, tmp_path, monkeypatch):
    import weak_to_strong.pipeline as pipeline

    def refuse_to_load_weights(*args, **kwargs):
        raise AssertionError("the model's weights were loaded before the data was checked")

    monkeypatch.setattr(pipeline, "load_model", refuse_to_load_weights)
    write_boolq_copy(tmp_path / "data", 40, 0)
    cfg = RunConfig(**{**tiny_flags, "ds_name": "boolq", "data_dir": str(tmp_path / "data")})
    with pytest.raises(ValueError, match=r"dataset 'boolq' split 'validation' \(.*/boolq\) is empty "
                                         r"\(.*validation\.parquet\): no documents to train or test on"):
        run_train_simple(cfg)
    assert files_under(Path(tiny_flags["results_folder"])) == []


@pytest.mark.slow
def test_every_loss_trains_a_transfer_run_in_a_folder_of_its_own(tiny_flags):
    flags = {**tiny_flags, "n_docs": 300}  # ~150 weak labels: more than logconf_buffer's 128
    run_train_simple(RunConfig(**flags))
    paths = set()
    for loss in LOSSES:
        cfg = RunConfig(**{**flags, "model_size": "toy-large", "weak_model_size": "toy-small", "loss": loss})
        summary = run_train_simple(cfg)
        paths.add(results.run_dir(cfg))
        assert set(summary) == {"accuracy", "auroc", "ece", "log_loss", "agreement", "agreement_on_weak_errors"}, loss
        log = [json.loads(line) for line in (results.run_dir(cfg) / results.LOG_FILE).read_text().splitlines()]
        assert all(r["loss"] >= 0 for r in log if "loss" in r), loss  # finite (checked by the run) and not negative
    assert len(paths) == len(LOSSES)
    assert len(readers.load_runs(tiny_flags["results_folder"])[0]) == len(LOSSES) + 1


def test_early_stopping_keeps_the_checkpoint_with_the_lowest_loss_on_held_out_weak_labels(tiny_flags, monkeypatch):
    from dataclasses import replace

    from weak_to_strong import pipeline

    gt = RunConfig(**{**tiny_flags, "epochs": 4})
    run_train_simple(gt)
    seen, load = {}, pipeline.load_run_data

    def recording(cfg, *args):
        data = load(cfg, *args)
        seen["train"], seen["val"] = data.train, data.weak_val
        return data

    monkeypatch.setattr(pipeline, "load_run_data", recording)
    cfg = RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small", "epochs": 4,
                       "early_stop": 0.25})
    summary = run_train_simple(cfg)
    weak = load_from_disk(str(results.run_dir(gt) / "weak_labels"))
    # A quarter of the weak labels, and nothing else, is held out: the soft labels are the weak model's.
    assert sorted(list(seen["train"]["id"]) + list(seen["val"]["id"])) == sorted(weak["id"]) and len(seen["val"]) == 25
    by_id = dict(zip(weak["id"], weak["soft_label"]))
    assert [by_id[i] for i in seen["val"]["id"]] == list(seen["val"]["soft_label"])
    path = results.run_dir(cfg)
    assert "-es=0.25" in path.name and path != results.run_dir(replace(cfg, early_stop=None))
    records = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
    losses = {r["epoch"]: r["weak_val_loss"] for r in records if "weak_val_loss" in r}
    assert sorted(losses) == [0, 1, 2, 3]
    best = min(losses, key=losses.get)
    assert summary["early_stop_epoch"] == best == readers.read_summary(path)["early_stop_epoch"]
    # The weights were restored: measured again after training, the loss is the best epoch's.
    restored = [r for r in records if "early_stop_epoch" in r][0]["weak_val_loss_restored"]
    assert restored == pytest.approx(losses[best], rel=1e-5)
    if best != 3:
        assert restored != pytest.approx(losses[3], rel=1e-9)


def test_early_stopping_needs_weak_labels(tiny_flags):
    with pytest.raises(ValueError, match="--early_stop=0.2 applies to transfer runs"):
        run_train_simple(RunConfig(**{**tiny_flags, "early_stop": 0.2}))
    assert not Path(tiny_flags["results_folder"]).exists()
    with pytest.raises(ValueError, match="--early_stop must be a share of the weak labels strictly between 0 and 1"):
        RunConfig(**{**tiny_flags, "weak_model_size": "toy-small", "early_stop": 1.5})


# ---------------------------------------------------------------- golden: the run folders' contract

GOLDEN_TOY = ("bs=16-ctx=256-ds=synthetic-loss={loss}-nd=200-ntd=50-model={model}-lr=0.001-opt=adam-ep=1-seed=0"
              "-drop=0-lp=0-sched=cosine_anneal-lora=0-prec=fp32")
"""A tiny_flags run on CPU: the toy models' context (256) clips max_ctx, and precision auto is fp32 there."""
GOLDEN_TOY_CONFIG = dict(batch_size=16, max_ctx=256, ds_name="synthetic", loss="xent", n_docs=200, n_test_docs=50,
                         model_size="toy-small", lr=0.001, optim="adam", epochs=1, seed=0, train_with_dropout=False,
                         linear_probe=False, lr_schedule="cosine_anneal", lora_rank=0, precision="fp32")


def written(path: Path) -> tuple[str, dict]:
    return path.name, json.loads((path / "config.json").read_text())


@pytest.mark.skipif(torch.cuda.is_available(), reason="pins the names of CPU runs (prec=fp32)")
def test_golden_run_folders_and_configs(tiny_flags):
    """Pinned, not derived: the folder names and config.json files the three kinds of run write."""
    folder = Path(tiny_flags["results_folder"]) / "default"
    run_train_simple(RunConfig(**tiny_flags))
    gt_path = folder / GOLDEN_TOY.format(loss="xent", model="toy-small")
    assert written(gt_path) == (gt_path.name, GOLDEN_TOY_CONFIG)

    run_train_simple(RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small",
                                  "loss": "logconf"}))
    name = GOLDEN_TOY.format(loss="logconf", model="toy-large") + "-weak=toy-small"
    assert written(folder / name) == (name, {**GOLDEN_TOY_CONFIG, "loss": "logconf", "model_size": "toy-large",
                                             "weak_model_size": "toy-small", "weak_model": GOLDEN_TOY_CONFIG})

    labels = str(gt_path / "weak_labels")
    run_train_simple(RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_labels_path": str(gt_path)}))
    labels_hash = hashlib.sha256(json.dumps(labels).encode()).hexdigest()[:8]  # named by the labels' path
    name = GOLDEN_TOY.format(loss="xent", model="toy-large") + f"-wl={labels_hash}"
    assert written(folder / name) == (name, {**GOLDEN_TOY_CONFIG, "model_size": "toy-large",
                                             "weak_labels_path": labels, "weak_model": GOLDEN_TOY_CONFIG,
                                             "weak_model_size": "toy-small"})
    assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 3


def test_weak_labels_are_disjoint_from_the_weak_models_training_half_and_the_test_set(tiny_flags, monkeypatch):
    """The experiment's core invariant: the weak model labels documents it never trained on, and no test
    document is a training document of any stage. Ids are taken from what the run actually trained on."""
    from weak_to_strong import pipeline

    seen = {}
    load = pipeline.load_run_data

    def spy(cfg, *args, **kwargs):
        data = load(cfg, *args, **kwargs)
        seen[cfg.model_size] = data
        return data

    monkeypatch.setattr(pipeline, "load_run_data", spy)
    gt = RunConfig(**tiny_flags)
    run_train_simple(gt)
    run_train_simple(RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small"}))
    weak_train = set(seen["toy-small"].train["id"])
    labelled = set(load_from_disk(str(results.run_dir(gt) / "weak_labels"))["id"])
    test = set(seen["toy-small"].test["id"])
    assert weak_train and labelled and test
    assert not weak_train & labelled
    assert not labelled & test and not weak_train & test
    assert set(seen["toy-large"].train["id"]) == labelled  # the student trains on exactly the labelled half
    assert set(seen["toy-large"].test["id"]) == test
    assert set(readers.read_predictions(results.run_dir(gt))["id"]) == test


def test_built_in_splits_are_loaded_once_per_process_and_file_datasets_every_time(tmp_path, monkeypatch):
    from weak_to_strong import pipeline

    calls = []
    real = pipeline.load_dataset
    monkeypatch.setattr(pipeline, "load_dataset", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    pipeline.load_built_in_splits.cache_clear()
    cfg = RunConfig(ds_name="synthetic", n_docs=40, n_test_docs=20, seed=3)
    first, second = pipeline.load_splits(cfg), pipeline.load_splits(cfg)
    assert calls == ["synthetic"] and first is not second and first["train"] is second["train"]
    first["train"] = None  # a caller's dict is its own
    assert pipeline.load_splits(cfg)["train"] is second["train"]
    pipeline.load_splits(RunConfig(ds_name="synthetic", n_docs=40, n_test_docs=20, seed=4))
    assert calls == ["synthetic", "synthetic"]  # another seed: other rows
    write_boolq_copy(tmp_path / "data", 12, 6)
    boolq = RunConfig(ds_name="boolq", data_dir=str(tmp_path / "data"), n_docs=12, n_test_docs=6)
    pipeline.load_splits(boolq), pipeline.load_splits(boolq)
    assert calls[2:] == ["boolq", "boolq"]  # read from files: read every time
