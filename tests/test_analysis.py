"""Results loading, PGR aggregation and the plot command, on hand-made result folders (no training)."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from weak_to_strong import atomic, plot, readers, results
from weak_to_strong.config import RunConfig, result_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_config(root: Path, model: str, weak: str | None = None, **flags) -> RunConfig:
    flags.setdefault("ds_name", "sciq")
    return RunConfig(model_size=model, weak_model_size=weak, results_folder=str(root), **flags)


def make_run(root: Path, accuracy: float | None, model: str, weak: str | None = None, auroc: float | None = None,
             **flags) -> Path:
    """A run folder as train_simple.py writes it; accuracy None leaves it unfinished, auroc None leaves it out
    (as runs from before it was written)."""
    cfg = run_config(root, model, weak, **flags)
    path = results.run_dir(cfg)
    path.mkdir(parents=True)
    atomic.write_json(path / readers.CONFIG_FILE, result_dict(cfg))
    if accuracy is not None:
        summary = {"accuracy": accuracy} if auroc is None else {"accuracy": accuracy, "auroc": auroc, "ece": 0.1}
        atomic.write_json(path / readers.SUMMARY_FILE, summary)
    return path


def make_pair(root: Path, weak_acc, strong_acc, transfer_acc, weak="gpt2", strong="gpt2-medium", loss="xent",
              **flags) -> None:
    """Floor, ceiling (unless there already) and transfer run of one pair."""
    for model, acc in ((weak, weak_acc), (strong, strong_acc)):
        if not results.run_dir(run_config(root, model, **flags)).exists():
            make_run(root, acc, model, **flags)
    make_run(root, transfer_acc, strong, weak=weak, loss=loss, **flags)


def only(rows, **where):
    found = [r for r in rows if all(r[k] == v for k, v in where.items())]
    assert len(found) == 1, found
    return found[0]


def table_for(root: Path) -> list[dict]:
    runs, _ = readers.load_runs(root)
    pair_rows, _ = plot.pair_rows_from_runs(runs)
    return plot.aggregate_pgr(pair_rows)


# ---------------------------------------------------------------- loading

def test_load_runs_reads_every_run_and_reports_broken_ones(tmp_path):
    make_pair(tmp_path, 0.6, 0.8, 0.7)
    unfinished = make_run(tmp_path, None, "gpt2-large")
    corrupt = make_run(tmp_path, 0.5, "gpt2-xl")
    (corrupt / readers.CONFIG_FILE).write_text("{not json")
    no_accuracy = make_run(tmp_path, 0.5, "gpt2", seed=3)
    atomic.write_json(no_accuracy / readers.SUMMARY_FILE, {"acc": 0.5})
    (tmp_path / "default" / ".bs=32-tmp123").mkdir()  # a half-built temporary folder: not a run
    (tmp_path / "plots").mkdir()  # the plot command's own output

    runs, problems = readers.load_runs(tmp_path)

    assert len(runs) == 3
    weak = only(runs, model_size="gpt2")
    assert weak["weak_model_size"] is None and weak["weak_model"] is None
    assert (weak["ds_name"], weak["loss"], weak["seed"], weak["accuracy"]) == ("sciq", "xent", 0, 0.6)
    assert weak["lr"] == 5e-5 and weak["optim"] == "adam"  # config fields, defaults resolved
    transfer = only(runs, weak_model_size="gpt2")
    assert transfer["model_size"] == "gpt2-medium" and transfer["accuracy"] == 0.7
    assert transfer["weak_model"]["model_size"] == "gpt2"
    reasons = {Path(p["path"]): p["problem"] for p in problems}
    assert set(reasons) == {unfinished, corrupt, no_accuracy}
    assert "unfinished" in reasons[unfinished]
    assert "unreadable config.json" in reasons[corrupt]
    assert "no numeric accuracy" in reasons[no_accuracy]


def test_load_runs_finds_runs_at_any_depth(tmp_path):
    """One results folder per seed, all under one parent, loads as one sweep."""
    for seed in (0, 1):
        make_pair(tmp_path / f"seed{seed}", 0.6, 0.8, 0.7, seed=seed)
    runs, problems = readers.load_runs(tmp_path)
    assert len(runs) == 6 and not problems
    assert only(table_for(tmp_path), loss="xent")["n_seeds"] == 2


def test_load_runs_rejects_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        readers.load_runs(tmp_path / "nope")


# ---------------------------------------------------------------- PGR

def test_pgr_is_mean_and_standard_error_over_seeds(tmp_path):
    accs = {0: (0.60, 0.80, 0.70), 1: (0.62, 0.80, 0.72), 2: (0.64, 0.80, 0.70)}
    for seed, (weak, strong, transfer) in accs.items():
        make_pair(tmp_path, weak, strong, transfer, seed=seed)

    row = only(table_for(tmp_path), weak_model_size="gpt2", strong_model_size="gpt2-medium")

    per_seed = [(t - w) / (s - w) for w, s, t in accs.values()]  # 0.5, 0.556, 0.375
    assert row["n_seeds"] == row["n_pgr_seeds"] == 3
    assert row["pgr"] == pytest.approx(statistics.mean(per_seed))
    assert row["pgr_se"] == pytest.approx(statistics.stdev(per_seed) / math.sqrt(3))
    assert row["weak_acc"] == pytest.approx(0.62)
    assert row["weak_acc_se"] == pytest.approx(statistics.stdev([0.60, 0.62, 0.64]) / math.sqrt(3))
    assert row["transfer_acc"] == pytest.approx(0.70666667)
    assert row["note"] == "" and row["variant"] == ""


def test_pgr_leaves_out_a_ceiling_not_above_the_floor(tmp_path):
    make_pair(tmp_path, 0.70, 0.80, 0.75, seed=0)  # PGR 0.5
    make_pair(tmp_path, 0.70, 0.65, 0.68, seed=1)  # ceiling below the floor
    make_pair(tmp_path, 0.70, 0.90, 0.80, weak="gpt2", strong="gpt2-large", seed=0)
    make_pair(tmp_path, 0.70, 0.70, 0.75, weak="gpt2", strong="gpt2-large", seed=1)  # ceiling = floor

    table = table_for(tmp_path)

    partly = only(table, strong_model_size="gpt2-medium")
    assert (partly["n_seeds"], partly["n_pgr_seeds"]) == (2, 1)
    assert partly["pgr"] == pytest.approx(0.5) and math.isnan(partly["pgr_se"])
    assert partly["note"] == "1 of 2 seeds left out of PGR: ceiling not above weak floor"
    assert only(table, strong_model_size="gpt2-large")["n_pgr_seeds"] == 1

    fully = tmp_path / "only_bad"
    make_pair(fully, 0.70, 0.65, 0.68)
    row = only(table_for(fully))
    assert math.isnan(row["pgr"]) and row["n_pgr_seeds"] == 0
    assert row["note"] == "PGR left out: ceiling 0.6500 not above weak floor 0.7000"
    md = plot.markdown_table([row])
    assert "| — |" in md and "PGR left out" in md


def test_same_model_pair_has_no_gap_to_recover(tmp_path):
    make_pair(tmp_path, 0.7, 0.7, 0.69, weak="gpt2", strong="gpt2")
    row = only(table_for(tmp_path))
    assert math.isnan(row["pgr"]) and row["note"] == "weak = strong: no gap to recover"


def test_floor_is_the_run_whose_labels_were_used(tmp_path):
    """A weak run trained another way (lr) is not the floor; labels of an unknown run give a note."""
    make_pair(tmp_path, 0.6, 0.8, 0.7)
    make_run(tmp_path, 0.99, "gpt2", lr=1e-3)  # same model, different run: must not be picked
    make_run(tmp_path, 0.75, "gpt2-medium", weak="gpt2-large")  # weak run missing

    runs, _ = readers.load_runs(tmp_path)
    rows, notes = plot.pair_rows_from_runs(runs)

    assert [(r["weak_acc"], r["strong_acc"], r["transfer_acc"]) for r in rows] == [(0.6, 0.8, 0.7)]
    assert len(notes) == 1 and "no finished run for its weak labels" in notes[0]


def test_ceiling_prefers_the_transfer_runs_lr_among_several(tmp_path):
    make_pair(tmp_path, 0.6, 0.8, 0.7, lr=1e-4)  # every run at lr 1e-4
    make_run(tmp_path, 0.95, "gpt2-medium", lr=3e-5)  # the strong model at another lr
    row = only(table_for(tmp_path))
    assert row["strong_acc"] == 0.8


def test_weak_labels_path_runs_find_their_floor(tmp_path):
    """train_weak_to_strong.py names a transfer run by its labels' path when lrs differ: same analysis."""
    weak = make_run(tmp_path, 0.6, "gpt2")
    make_run(tmp_path, 0.8, "gpt2-medium")
    cfg = RunConfig(model_size="gpt2-medium", weak_labels_path=str(weak / results.WEAK_LABELS_DIR), lr=1e-4,
                    results_folder=str(tmp_path))
    path = results.run_dir(cfg)
    path.mkdir(parents=True)
    atomic.write_json(path / readers.CONFIG_FILE, result_dict(cfg))
    atomic.write_json(path / readers.SUMMARY_FILE, {"accuracy": 0.75})

    row = only(table_for(tmp_path))
    assert (row["weak_model_size"], row["weak_acc"], row["strong_acc"], row["transfer_acc"]) == ("gpt2", 0.6, 0.8, 0.75)
    assert row["pgr"] == pytest.approx(0.75)


def test_settings_that_differ_are_kept_apart_and_labelled(tmp_path):
    make_pair(tmp_path, 0.6, 0.8, 0.7, n_docs=400)
    make_pair(tmp_path, 0.6, 0.9, 0.8, n_docs=800)
    table = table_for(tmp_path)
    assert sorted(r["variant"] for r in table) == ["n_docs=400", "n_docs=800"]
    assert only(table, variant="n_docs=800")["pgr"] == pytest.approx(2 / 3)


def test_a_bootstrapping_chain_is_a_pair_of_its_first_and_last_model_in_a_variant_of_its_own(tmp_path):
    for model, acc in (("tb-s", 0.6), ("tb-m", 0.7), ("tb-l", 0.8)):
        make_run(tmp_path, acc, model)
    make_run(tmp_path, 0.65, "tb-l", weak="tb-s")  # direct transfer
    chain = "tb-s,tb-m,tb-l"
    make_run(tmp_path, 0.66, "tb-m", weak="tb-s", bootstrap_chain=chain)
    make_run(tmp_path, 0.75, "tb-l", weak="tb-m", bootstrap_chain=chain)
    table = [r for r in table_for(tmp_path) if r["strong_model_size"] == "tb-l" and r["weak_model_size"] == "tb-s"]
    assert sorted(r["variant"] for r in table) == ["bootstrap_chain=None", f"bootstrap_chain={chain}"]
    assert only(table, variant="bootstrap_chain=None")["pgr"] == pytest.approx(0.25)
    assert only(table, variant=f"bootstrap_chain={chain}")["pgr"] == pytest.approx(0.75)


def test_s2s_rounds_are_pairs_of_the_weak_model_in_a_variant_per_round(tmp_path):
    make_pair(tmp_path, 0.6, 0.8, 0.7)
    for k, acc in ((0, 0.65), (1, 0.75)):
        make_run(tmp_path, acc, "gpt2-medium", weak="gpt2", s2s_round=k, s2s_total=1)
    table = table_for(tmp_path)
    assert len(table) == 3 and {r["weak_model_size"] for r in table} == {"gpt2"}
    assert sorted(r["pgr"] for r in table) == pytest.approx([0.25, 0.5, 0.75])


# ---------------------------------------------------------------- train_weak_to_strong.py summaries

def write_summary(folder: Path, weak: str, strong: str, seed: int, accs: tuple, ds_name: str = "sciq") -> Path:
    weak_acc, strong_acc, xent, logconf = accs
    return results.write_pair_summary(folder, {
        "weak_acc": weak_acc, "strong_acc": strong_acc, "transfer_acc_xent": xent, "transfer_acc_logconf": logconf,
        "ds_name": ds_name, "seed": seed, "weak_model_size": weak, "strong_model_size": strong, "settings": {}})


def test_pair_summary_name_keeps_model_ids_with_a_slash_in_one_file(tmp_path):
    path = results.pair_summary_path(tmp_path, "gpt2", "Qwen/Qwen-1_8B")
    assert path == tmp_path / "gpt2_Qwen--Qwen-1_8B.results_summary.json"


def test_load_pair_summaries_over_seed_folders(tmp_path):
    write_summary(tmp_path / "s0", "gpt2", "Qwen/Qwen-1_8B", 0, (0.6, 0.8, 0.7, 0.75))
    write_summary(tmp_path / "s1", "gpt2", "Qwen/Qwen-1_8B", 1, (0.6, 0.8, 0.66, 0.8))
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "gpt2_gpt2-xl.results_summary.json").write_text('{"weak_acc": 0.5}')
    make_run(tmp_path / "s0", 0.6, "gpt2")  # a run's own results_summary.json is not a pair summary

    rows, problems = readers.load_pair_summaries(tmp_path)
    table = plot.aggregate_pgr(rows)

    assert len(rows) == 4 and {r["loss"] for r in rows} == {"xent", "logconf"}
    assert len(problems) == 1 and "lacks" in problems[0]["problem"]
    xent = only(table, loss="xent")
    assert xent["strong_model_size"] == "Qwen/Qwen-1_8B" and xent["n_seeds"] == 2
    assert xent["pgr"] == pytest.approx((0.5 + 0.3) / 2)
    assert only(table, loss="logconf")["pgr"] == pytest.approx((0.75 + 1.0) / 2)


@pytest.mark.parametrize("differ", [dict(lora_rank=4), dict(precision="bf16")])
def test_lora_and_full_pair_summaries_stay_apart(tmp_path, differ):
    """train_weak_to_strong.py's summaries record every result field: a LoRA (or bf16) pair and a full (fp32)
    pair of the same seed are two settings, not two seeds of one."""
    from weak_to_strong.experiment import WeakToStrongConfig, make_pair_summary, plan_stages

    w2s = WeakToStrongConfig(weak_model_size="gpt2", strong_model_size="gpt2-medium", transfer_loss="xent")
    for name, flags in (("full", {}), ("other", differ)):
        base = RunConfig(results_folder=str(tmp_path / name), **{"precision": "fp32", **flags})
        summary = make_pair_summary(w2s, plan_stages(w2s, base), {"weak": 0.6, "strong": 0.8, "transfer_xent": 0.7})
        results.write_pair_summary(tmp_path / name, summary)

    rows, problems = readers.load_pair_summaries(tmp_path)
    table = plot.aggregate_pgr(rows)
    assert not problems and len(rows) == 2
    assert len(table) == 2 and all(row["n_seeds"] == 1 for row in table)
    settings = {row["path"]: row["setting"] for row in rows}
    key = next(iter(differ))
    stage_key = "strong_lora_rank" if key == "lora_rank" else key
    assert len({json.dumps(s.get(stage_key)) for s in settings.values()}) == 2


# ---------------------------------------------------------------- the plot command

def run_plot(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "weak_to_strong.plot", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=REPO_ROOT, timeout=120)


@pytest.mark.slow
def test_plot_command_writes_a_figure_and_tables_per_dataset(tmp_path):
    for ds_name in ("sciq", "boolq"):
        for seed in (0, 1):
            make_pair(tmp_path, 0.60, 0.80, 0.70 + seed / 100, ds_name=ds_name, seed=seed)
            make_pair(tmp_path, 0.60, 0.90, 0.75, strong="gpt2-large", ds_name=ds_name, seed=seed, loss="logconf")
            make_pair(tmp_path, 0.80, 0.90, 0.85, weak="gpt2-medium", strong="gpt2-large", ds_name=ds_name, seed=seed)
    make_run(tmp_path, None, "gpt2-xl")
    out = tmp_path / "figures"

    proc = run_plot(tmp_path, "--out_dir", out)

    assert proc.returncode == 0, proc.stderr
    assert "unfinished" in proc.stdout  # the broken folder is reported
    for ds_name in ("sciq", "boolq"):
        png = (out / f"{ds_name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000
        with open(out / f"{ds_name}_pgr.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 3 and {r["ds_name"] for r in rows} == {ds_name}
        assert float(only(rows, strong_model_size="gpt2-medium")["pgr"]) == pytest.approx(0.525)
        assert "gpt2-large" in (out / f"{ds_name}_pgr.md").read_text()


def test_plot_figure_draws_a_line_per_weak_model_and_a_marker_per_loss(tmp_path):
    make_pair(tmp_path, 0.60, 0.80, 0.70)
    make_pair(tmp_path, 0.60, 0.90, 0.75, strong="gpt2-large")
    make_pair(tmp_path, 0.60, 0.90, 0.78, strong="gpt2-large", loss="logconf")
    make_pair(tmp_path, 0.80, 0.90, 0.85, weak="gpt2-medium", strong="gpt2-large")
    fig = plot.plot_dataset(table_for(tmp_path), "sciq")
    lines = fig.axes[0].get_lines()
    ground_truth = [ln for ln in lines if ln.get_color() == "black"]
    assert list(ground_truth[0].get_xdata()) == pytest.approx([0.6, 0.8, 0.9])  # the diagonal
    drawn = {(ln.get_color(), ln.get_marker(), tuple(ln.get_xdata())) for ln in lines
             if ln.get_color() != "black" and ln.get_marker() in plot.LOSS_MARKERS.values()}
    assert drawn == {("C0", "o", (0.8, 0.9)), ("C0", "s", (0.9,)), ("C1", "o", (0.9,))}


@pytest.mark.slow
def test_plot_command_help():
    proc = run_plot("--help")
    helptext = proc.stdout + proc.stderr  # fire pages help to stdout only on a terminal
    assert proc.returncode == 0 and "RESULTS_FOLDER" in helptext and "--out_dir" in helptext


def test_plot_command_bad_input_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        plot.plot_results(str(tmp_path / "missing"))
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("error: results folder")
    make_run(tmp_path, 0.6, "gpt2")  # ground truth only: nothing to plot
    with pytest.raises(SystemExit) as exit_info:
        plot.plot_results(str(tmp_path))
    assert exit_info.value.code == 2 and "no weak-to-strong runs" in capsys.readouterr().err


def test_weak_error_agreement_counts_repeated_errors_on_the_weak_models_mistakes(tmp_path):
    from weak_to_strong import results
    from weak_to_strong.plot import weak_error_agreement

    weak, student = tmp_path / "weak", tmp_path / "student"
    weak.mkdir(), student.mkdir()
    # Weak is wrong on ids 1, 2 and 3; the student repeats the error on 1, corrects 2 and 3, and is
    # wrong on its own on 0 (which does not count: the weak model was right there).
    results.write_predictions(weak, [0, 1, 2, 3], [0.9, 0.8, 0.3, 0.6], [1, 0, 1, 0])
    results.write_predictions(student, [3, 2, 1, 0], [0.2, 0.7, 0.9, 0.1], [0, 1, 0, 1])
    assert weak_error_agreement(str(weak), str(student)) == pytest.approx(1 / 3)
    assert math.isnan(weak_error_agreement(str(weak), str(tmp_path / "no_predictions")))


# ---------------------------------------------------------------- PGR on AUROC

def test_pgr_on_auroc_has_columns_of_its_own_beside_accuracy(tmp_path):
    aurocs = {0: (0.70, 0.90, 0.85), 1: (0.70, 0.80, 0.72)}  # PGR on AUROC 0.75 and 0.2
    for seed, (weak, strong, transfer) in aurocs.items():
        make_run(tmp_path, 0.6, "gpt2", auroc=weak, seed=seed)
        make_run(tmp_path, 0.8, "gpt2-medium", auroc=strong, seed=seed)
        make_run(tmp_path, 0.7, "gpt2-medium", weak="gpt2", auroc=transfer, seed=seed)

    row = only(table_for(tmp_path))

    assert row["pgr"] == pytest.approx(0.5) and row["n_pgr_seeds"] == 2  # accuracy's PGR as before
    assert row["pgr_auroc"] == pytest.approx((0.75 + 0.2) / 2) and row["n_pgr_auroc_seeds"] == 2
    assert row["pgr_auroc_se"] == pytest.approx(statistics.stdev([0.75, 0.2]) / math.sqrt(2))
    assert (row["weak_auroc"], row["strong_auroc"]) == (pytest.approx(0.70), pytest.approx(0.85))
    assert row["transfer_auroc"] == pytest.approx(0.785)
    md = plot.markdown_table([row])
    assert "| PGR | transfer AUROC | PGR (AUROC) |" in md and "0.4750 ± 0.2750" in md
    plot.write_csv([row], tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as f:
        header = next(csv.reader(f))
    assert header == list(plot.TABLE_COLUMNS) and header[-3:] == ["pgr_auroc", "pgr_auroc_se", "n_pgr_auroc_seeds"]
    assert header.index("note") == 17  # the accuracy columns keep their places


def test_runs_without_auroc_leave_pgr_on_auroc_out(tmp_path):
    make_pair(tmp_path, 0.6, 0.8, 0.7)  # summaries with accuracy only, as runs before AUROC was written
    make_run(tmp_path, 0.7, "gpt2-medium", weak="gpt2", auroc=0.9, loss="logconf")  # its floor has none
    table = table_for(tmp_path)
    for loss in ("xent", "logconf"):
        row = only(table, loss=loss)
        assert math.isnan(row["pgr_auroc"]) and row["n_pgr_auroc_seeds"] == 0 and row["pgr"] == pytest.approx(0.5)
    assert only(table, loss="logconf")["transfer_auroc"] == 0.9
    assert "| — | — |" in plot.markdown_table(table)


def test_damaged_predictions_are_named_not_a_json_traceback(tmp_path):
    (tmp_path / readers.PREDICTIONS_FILE).write_text('{"id": [1, 2], "prob": [0.5]')
    with pytest.raises(ValueError, match=r"test_predictions.json is corrupted .*--force_retrain"):
        readers.read_predictions(tmp_path)
    atomic.write_json(tmp_path / readers.PREDICTIONS_FILE, {"id": [1, 2], "prob": [0.5], "label": [0, 1]})
    with pytest.raises(ValueError, match="not lists id, prob and label of one length"):
        readers.read_predictions(tmp_path)


def test_one_sweeps_seed_ensembles_group_across_seeds():
    """At seed s a run names the member trained with seed s bare: tb-s,tb-s@1,tb-s@2 at seed 0 is
    tb-s@0,tb-s,tb-s@2 at seed 1. The analysis must see one setting, not one per seed."""
    from weak_to_strong.plot import run_setting, seed_free_ensemble

    assert seed_free_ensemble("tb-s,tb-s@1,tb-s@2", 0) == seed_free_ensemble("tb-s@0,tb-s,tb-s@2", 1) \
        == "tb-s@0,tb-s@1,tb-s@2"
    assert seed_free_ensemble("gpt2,pythia", 3) == "gpt2@3,pythia@3"
    settings = [run_setting({"seed": seed, "weak_ensemble": members}, {"train_seed": floor_seed})
                for seed, members, floor_seed in ((0, "tb-s,tb-s@1,tb-s@2", None), (1, "tb-s@0,tb-s,tb-s@2", 0))]
    assert settings[0] == settings[1]
