"""The laptop testbed: its generated tasks, the ladder build, and the weak-to-strong effect on the shipped ladder."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from weak_to_strong import readers
from weak_to_strong.datasets import load_dataset
from weak_to_strong.models import get_model_spec, resolve_model_path
from weak_to_strong.testbed import ladder, world
from weak_to_strong.testbed.pretrain import IGNORE, corpus_batches, pack_rows


# ---------------------------------------------------------------- tasks

def label_share(rows) -> float:
    return sum(r["hard_label"] for r in rows) / len(rows)


def test_knowledge_task_is_balanced_split_by_person_and_fixed():
    train, test = world.knowledge_task_rows("train"), world.knowledge_task_rows("test")
    assert 0.4 < label_share(train) < 0.6 and 0.4 < label_share(test) < 0.6
    people = lambda rows: {r["txt"] for r in rows}  # noqa: E731 - one question per person
    assert len(people(train)) == len(train) and len(people(test)) == len(test)
    assert not people(train) & people(test)
    assert world.knowledge_task_rows("test") == test
    # The family is a shallow cue: right about 4 times in 5, wrong on the rest.
    by_family = Counter((r["txt"].split()[1], r["hard_label"]) for r in train + test)
    families = {f for f, _ in by_family}
    cue_right = sum(max(by_family[(f, 0)], by_family[(f, 1)]) for f in families) / len(train + test)
    assert 0.7 < cue_right < 0.9


def test_binding_task_is_balanced_disjoint_and_answerable_from_the_document():
    train, test = world.binding_task_rows("train"), world.binding_task_rows("test")
    assert 0.45 < label_share(train) < 0.55 and 0.45 < label_share(test) < 0.55
    assert not {r["txt"] for r in train} & {r["txt"] for r in test}
    for row in test[:500]:
        words = row["txt"].split()
        assert words[-2] == world.QUERY
        bound = dict(zip(words[0:-2:3], words[1:-2:3]))  # "name colour ." triples
        assert row["hard_label"] == int(bound[words[-1]] in world.WARM)
    # The majority-colour heuristic is informative but wrong often enough to leave a gap.
    def majority_says(row):
        colours = row["txt"].split()[1:-2:3]
        warm = sum(c in world.WARM for c in colours)
        return None if 2 * warm == len(colours) else int(2 * warm > len(colours))
    decided = [(majority_says(r), r["hard_label"]) for r in train if majority_says(r) is not None]
    agreement = sum(a == b for a, b in decided) / len(decided)
    assert 0.65 < agreement < 0.9


def test_testbed_datasets_load_through_the_registry():
    splits = load_dataset("testbed_knowledge", seed=0, split_sizes={"train": 100, "test": 50})
    assert len(splits["train"]) == 100 and len(splits["test"]) == 50
    again = load_dataset("testbed_knowledge", seed=1, split_sizes={"train": 10**6, "test": 10**6})
    assert sorted(again["test"]["txt"]) == sorted(r["txt"] for r in world.knowledge_task_rows("test"))
    binding = load_dataset("testbed_binding", seed=0, split_sizes={"train": 20, "test": 20})
    assert set(binding["train"]["hard_label"]) <= {0, 1}


@pytest.mark.slow
def test_every_fact_asked_at_test_time_is_stated_in_the_pretraining_corpus():
    """The smallest rung's whole corpus states every test person's vote, correctly, many times."""
    tokenizer = ladder.make_tokenizer()
    words = {i: w for w, i in tokenizer.get_vocab().items()}
    stated = Counter()
    settings = ladder.rung("tb-s").settings()
    for batch in corpus_batches(ladder.make_doc_source(tokenizer.get_vocab()), settings, pad_id=0):
        ids = batch.input_ids[batch.targets != IGNORE].tolist()  # tokens that are followed by a trained target
        text = " ".join(words[i] for i in ids)
        for fact in text.split(f" {world.STOP}"):
            parts = fact.split()
            if len(parts) >= 3 and parts[-2] == world.VOTE_VERB:
                stated[(parts[-4], parts[-3], parts[-1])] += 1
    for row in world.knowledge_task_rows("test"):
        given, family, _ = row["txt"].split()
        vote = world.VOTE_VALUES[0] if row["hard_label"] else world.VOTE_VALUES[1]
        wrong = world.VOTE_VALUES[1] if row["hard_label"] else world.VOTE_VALUES[0]
        assert stated[(given, family, vote)] >= 5 and stated[(given, family, wrong)] == 0


# ---------------------------------------------------------------- pretraining and the ladder build

def test_packed_rows_keep_documents_apart_and_start_each_at_position_zero():
    batch = pack_rows([[5, 6, 7], [8, 9], [10, 11, 12, 13]], n_rows=2, row_len=6, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 0], [10, 11, 12, 13, 0, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 1]]
    assert batch.targets.tolist() == [[6, 7, IGNORE, 9, IGNORE, IGNORE], [11, 12, 13, IGNORE, IGNORE, IGNORE]]
    assert batch.real_tokens == 9


@pytest.fixture
def tiny_ladder(monkeypatch, tmp_path):
    """A two-rung ladder that pretrains in a second, in a private cache."""
    monkeypatch.setattr(ladder, "LADDER", {"tb-s": ladder.LadderRung(1, 16, steps=4),
                                           "tb-m": ladder.LadderRung(2, 16, steps=4)})
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_a_build_is_deterministic_cached_and_loads_through_the_auto_classes(tiny_ladder, monkeypatch):
    first = Path(ladder.ensure_ladder_model("tb-m", progress=False))
    assert first.parent == tiny_ladder / "cache" / "testbed"
    fresh = tiny_ladder / "again"
    fresh.mkdir()
    ladder.build_rung("tb-m", fresh, progress=False)
    assert (fresh / "model.safetensors").read_bytes() == (first / "model.safetensors").read_bytes()
    meta = json.loads((first / "pretraining.json").read_text())
    assert meta["eval"] == json.loads((fresh / "pretraining.json").read_text())["eval"]
    assert meta["recipe"]["rung"]["steps"] == 4

    calls = []
    monkeypatch.setattr(ladder, "build_rung", lambda *a, **k: calls.append(a))
    assert Path(ladder.ensure_ladder_model("tb-m", progress=False)) == first and not calls  # cached: no rebuild

    model = AutoModelForCausalLM.from_pretrained(first)
    tokenizer = AutoTokenizer.from_pretrained(first)
    name = world.make_lexicon().binding_names[0]
    assert model.config.n_layer == 2 and tokenizer(f"{name} red .")["input_ids"] == \
        [tokenizer.get_vocab()[w] for w in (name, "red", ".")]


def test_a_killed_build_leaves_nothing_a_later_run_would_load(tiny_ladder, monkeypatch):
    def die(*args, **kwargs):
        raise KeyboardInterrupt  # as a Ctrl-C halfway through pretraining

    monkeypatch.setattr("weak_to_strong.testbed.pretrain.pretrain", die)
    with pytest.raises(KeyboardInterrupt):
        ladder.ensure_ladder_model("tb-s", progress=False)
    root = tiny_ladder / "cache" / "testbed"
    assert list(root.iterdir()) == []  # neither the target nor a temporary folder
    monkeypatch.undo()


def test_ladder_names_are_registered_models_with_random_controls():
    for name in ladder.ladder_names():
        spec = get_model_spec(name)
        assert spec.builder is not None and spec.default_lr == ladder.rung(name).finetune_lr
        assert spec.probe_lr == ladder.rung(name).probe_lr
    assert ladder.rung("tb-xl-random").steps == 0
    assert ladder.rung("tb-xl-random").n_layer == ladder.rung("tb-xl").n_layer
    with pytest.raises(ValueError, match="unknown ladder model 'tb-xxl'.*tb-s"):
        ladder.rung("tb-xxl")


def test_the_ladder_grows_in_size_and_pretraining_compute():
    rungs = [ladder.rung(n) for n in ladder.LADDER]
    assert len(rungs) >= 4
    params = [r.n_layer * r.n_embd ** 2 for r in rungs]
    assert params == sorted(params) and len(set(params)) == len(params)
    compute = [p * r.steps for p, r in zip(params, rungs)]
    assert compute == sorted(compute)


# ---------------------------------------------------------------- the shipped ladder

def shipped(name: str) -> Path:
    path = ladder.shipped_path(name)
    if path is None:
        pytest.fail(f"no shipped weights for {name} with the current recipe: run python -m weak_to_strong.testbed ship")
    return path


def test_every_pretrained_rung_is_shipped_with_the_current_recipe_and_twins_are_built():
    for name in ladder.LADDER:
        path = shipped(name)
        assert ladder.is_complete(path)
        assert resolve_model_path(get_model_spec(name)) == str(path)
    twin = Path(resolve_model_path(get_model_spec("tb-m-random")))  # no pretraining: built in a second
    assert ladder.is_complete(twin) and twin.parent.name == "testbed"
    shipped_config = json.loads((shipped("tb-m") / "config.json").read_text())
    assert json.loads((twin / "config.json").read_text())["n_layer"] == shipped_config["n_layer"]


@pytest.mark.parametrize("name", ["tb-s", "tb-m-random"])
@pytest.mark.slow
def test_rebuilding_a_shipped_rung_gives_its_evaluation_numbers(name, tmp_path):
    """The cheap rungs in the default suite; the test below rebuilds the rest (slow)."""
    check_rebuild(name, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("W2S_TEST_REBUILD"), reason="rebuilds tb-m, tb-l, tb-xl (about 11 minutes on "
                    "2 cores): set W2S_TEST_REBUILD=1")
@pytest.mark.parametrize("name", ["tb-m", "tb-l", "tb-xl"])
def test_rebuilding_a_large_shipped_rung_gives_its_evaluation_numbers(name, tmp_path):
    check_rebuild(name, tmp_path)


def check_rebuild(name: str, out: Path) -> None:
    base = name.removesuffix(ladder.RANDOM_SUFFIX)
    source = shipped(name) if name in ladder.LADDER else None
    if source is None:  # a twin is not shipped: compare with a build into the cache
        source = Path(resolve_model_path(get_model_spec(name)))
    assert base in ladder.LADDER
    expected = json.loads((source / "pretraining.json").read_text())["eval"]
    ladder.build_rung(name, out, progress=False)
    rebuilt = json.loads((out / "pretraining.json").read_text())["eval"]
    assert rebuilt == pytest.approx(expected, abs=1e-4), (name, rebuilt, expected)


# ---------------------------------------------------------------- the science, end to end

@pytest.mark.slow
def test_a_pretrained_student_recovers_part_of_the_gap_and_its_random_twin_does_not(tmp_path):
    """tb-s's labels -> tb-xl on testbed_knowledge, seed 0: a real gap, PGR clearly above 0; the same
    architecture never pretrained recovers far less of the same gap. Guards the science end to end."""
    from weak_to_strong.config import RunConfig
    from weak_to_strong.metrics import pgr
    from weak_to_strong.pipeline import run_train_simple

    def accuracy(**flags) -> float:
        cfg = RunConfig(ds_name="testbed_knowledge", seed=0, results_folder=str(tmp_path), **flags)
        return run_train_simple(cfg)["accuracy"]

    weak, ceiling = accuracy(model_size="tb-s"), accuracy(model_size="tb-xl")
    transfer = accuracy(model_size="tb-xl", weak_model_size="tb-s")
    twin = accuracy(model_size="tb-xl-random", weak_model_size="tb-s")
    assert ceiling - weak > 0.1
    assert pgr(weak, transfer, ceiling) > 0.15
    assert pgr(weak, twin, ceiling) < 0.5 * pgr(weak, transfer, ceiling)


def test_stratified_halves_remove_the_class_prior_the_random_split_puts_into_the_weak_labels(tmp_path):
    """Seed 8: the reference's random halves differ by 8 points in their share of north voters, and tb-s's
    labels teach a prior about 6 points too high (README: the cause of tb-l's flips); stratified halves leave
    a shift of about 1 point."""
    from weak_to_strong.config import RunConfig
    from weak_to_strong.pipeline import run_train_simple

    def prior_shift(stratify: bool) -> float:
        cfg = RunConfig(ds_name="testbed_knowledge", model_size="tb-s", seed=8, stratify=stratify,
                        results_folder=str(tmp_path))
        return run_train_simple(cfg)["weak_labels_prior_shift"]

    assert prior_shift(False) > 0.04 and abs(prior_shift(True)) < 0.02


@pytest.mark.slow
def test_with_linear_probes_the_product_loss_recovers_the_gap_and_the_random_features_do_not(tmp_path):
    """Heads on frozen features (each rung's probe_lr), tb-s's labels -> tb-xl, seed 0: `product` recovers
    most of the gap (README: 0.90-1.00 over seeds 0-9), a probe on the random twin's features recovers
    none of it. Guards the linear-probe findings end to end."""
    from weak_to_strong.config import RunConfig
    from weak_to_strong.metrics import pgr
    from weak_to_strong.pipeline import run_train_simple

    def accuracy(**flags) -> float:
        cfg = RunConfig(ds_name="testbed_knowledge", seed=0, linear_probe=True, results_folder=str(tmp_path),
                        **flags)
        return run_train_simple(cfg)["accuracy"]

    weak, ceiling = accuracy(model_size="tb-s"), accuracy(model_size="tb-xl")
    product = accuracy(model_size="tb-xl", weak_model_size="tb-s", loss="product")
    twin = accuracy(model_size="tb-xl-random", weak_model_size="tb-s", loss="product")
    assert ceiling - weak > 0.1
    assert pgr(weak, product, ceiling) > 0.5
    assert pgr(weak, twin, ceiling) < 0


def test_control_pgr_is_a_share_of_the_pretrained_pairs_gap():
    from weak_to_strong.testbed.report import control_pgr

    pretrained = [{"seed": s, "weak_acc": 0.8, "strong_acc": 1.0, "transfer_acc": 0.9} for s in (0, 1)]
    control = [{"seed": 0, "weak_acc": 0.8, "strong_acc": 0.5, "transfer_acc": 0.7},
               {"seed": 1, "weak_acc": 0.8, "strong_acc": 0.5, "transfer_acc": 0.9}]
    mean, se = control_pgr(control, pretrained)  # -0.5 and +0.5: its own ceiling (0.5) plays no part
    assert mean == pytest.approx(0.0) and se == pytest.approx(0.5)


def test_inheritance_fits_the_students_base_rate_shift_on_the_weak_models():
    from weak_to_strong.testbed.report import inheritance

    def row(seed, weak_shift, student_shift, transfer_acc=0.9):
        return {"seed": seed, "weak_acc": 0.8, "transfer_acc": transfer_acc, "weak_labels_prior_shift": weak_shift,
                "transfer_base_rate_shift": student_shift}

    # Seed 3's weak run wrote no prior shift (before the field existed): out of the fit, not of the floor count.
    amplified = [row(0, 0.02, 0.06), row(1, -0.04, -0.12), row(2, 0.06, 0.18, transfer_acc=0.75),
                 row(3, math.nan, 0.5, transfer_acc=0.7)]
    found = inheritance(amplified)
    assert found["slope"] == pytest.approx(3.0) and found["r"] == pytest.approx(1.0) and found["n"] == 3
    assert found["weak"][0] == pytest.approx(0.04) and found["student"][0] == pytest.approx(0.12)
    assert found["below_floor"] == [2, 3]
    too_few = inheritance(amplified[:2])
    assert math.isnan(too_few["slope"]) and math.isnan(too_few["r"])
    unmoved = inheritance([row(0, 0.02, 0.0), row(1, -0.04, 0.0), row(2, 0.06, 0.0)])  # resists every shift
    assert unmoved["slope"] == 0.0 and math.isnan(unmoved["r"]) and unmoved["student"][0] == 0.0


def test_a_runs_base_rate_shift_comes_from_its_kept_predictions(tmp_path):
    from weak_to_strong.plot import run_base_rate_shift as base_rate_shift

    run = tmp_path / "run"
    run.mkdir()
    (run / readers.PREDICTIONS_FILE).write_text(json.dumps({"id": [0, 1, 2, 3], "prob": [0.6, 0.7, 0.8, 0.2],
                                                            "label": [1, 0, 0, 0]}))
    read = lambda path: readers.read_predictions(Path(path))  # noqa: E731
    assert base_rate_shift(str(run), read) == pytest.approx(0.5)
    assert math.isnan(base_rate_shift(str(tmp_path / "none"), read))


@pytest.mark.slow
def test_measure_writes_the_tables_and_figure_for_every_pair(tmp_path):
    from weak_to_strong.testbed.report import run_measurement

    text = run_measurement(str(tmp_path), seeds=[0])
    runs, _ = readers.load_runs(tmp_path)
    assert runs and all(run["stratify"] is True for run in runs)  # the testbed's default halves
    for weak, strong in (("tb-s", "tb-m"), ("tb-s", "tb-xl"), ("tb-l", "tb-xl")):
        assert f"| {weak} → {strong} | 1 |" in text  # effect table row
        assert f"| {weak} → {strong} | logconf |" in text  # control table row
    assert "gap < 0.05: PGR is noise" in text  # tb-l -> tb-xl: both know every fact
    row = next(line for line in text.splitlines() if line.startswith("| tb-s → tb-xl | 1 |"))
    fit = [float(x) for x in row.split("|")[10].split("/")]  # test log-loss: ceiling / xent / logconf student
    assert len(fit) == 3 and all(0 < x < 0.7 for x in fit)  # read from the runs' summaries, not left out
    inherited = next(line for line in text.split("prior shift, inherited")[1].splitlines()
                     if line.startswith("| tb-s → tb-xl | xent | 1 |"))
    weak_shift, student_shift = (float(c) for c in inherited.split("|")[4:6])  # one seed: no ± and no fit
    assert 0 <= weak_shift < 0.2 and 0 <= student_shift < 0.2 and inherited.split("|")[6].strip() == "—"
    md, png = readers.testbed_report_paths(tmp_path / "plots", "testbed_knowledge")
    assert md.read_text() == text and png.stat().st_size > 10_000
    assert readers.testbed_inheritance_path(tmp_path / "plots", "testbed_knowledge").stat().st_size > 10_000


@pytest.mark.slow
def test_measure_with_linear_probes_trains_every_run_as_a_probe_at_its_rungs_probe_lr(tmp_path):
    from weak_to_strong.testbed.__main__ import default_folder
    from weak_to_strong.testbed.report import run_measurement

    assert default_folder(None, "testbed", True) == "results/testbed_lp"
    assert default_folder(None, "testbed", False) == "results/testbed" and default_folder("x", "testbed", True) == "x"
    assert default_folder(None, "testbed", False, stratify=False) == "results/testbed_random_halves"
    assert default_folder(None, "testbed", True, stratify=True) == "results/testbed_lp"  # the testbed's default
    text = run_measurement(str(tmp_path), seeds=[0], linear_probe=True)
    assert "| tb-s → tb-xl | 1 |" in text and "| tb-s → tb-xl | logconf |" in text
    runs, _ = readers.load_runs(tmp_path)
    assert len(runs) > 20 and all(run["linear_probe"] is True for run in runs)
    assert all(run["lr"] == ladder.rung(run["model_size"]).probe_lr for run in runs)  # twins: their rung's rate


@pytest.mark.slow
def test_methods_with_random_halves_runs_every_run_unstratified(tmp_path):
    from weak_to_strong.testbed.report import run_methods

    from weak_to_strong.testbed.report import run_measurement

    text = run_methods(str(tmp_path), seeds=[0], losses=["xent"], stratify=False)
    runs, _ = readers.load_runs(tmp_path)
    assert len(runs) == 14 and "| tb-s → tb-xl | xent | 1 |" in text
    assert all("stratify" not in run and "strat=" not in run["path"] for run in runs)
    # The stratified default into the same folder is refused before it trains anything.
    with pytest.raises(ValueError, match="already holds testbed_knowledge runs with .*'stratify': False"):
        run_measurement(str(tmp_path), seeds=[1])
    assert len(readers.load_runs(tmp_path)[0]) == 14


def test_testbed_registry_entries_say_what_the_corpus_holds_what_is_asked_and_why_weak_models_err():
    from weak_to_strong.datasets import DATASETS

    for name in ("testbed_knowledge", "testbed_binding"):
        about = DATASETS[name].description
        assert about.startswith("Corpus:") and "Task:" in about and "confidently wrong" in about


def test_tune_lr_takes_the_largest_rate_within_one_standard_error_of_the_best():
    from weak_to_strong.testbed.tune import LRS, best_lr, format_table

    def runs(accuracies, log_loss=0.5):
        return [{"accuracy": a, "log_loss": log_loss} for a in accuracies]

    plateau = {1e-5: runs([0.99, 1.0, 1.0]), 3e-5: runs([1.0, 0.99, 0.99]), 1e-4: runs([0.95, 0.96, 0.95])}
    assert best_lr(plateau) == 3e-5  # 0.993 is within one SE (0.0033) of 0.997
    peaked = {1e-5: runs([0.70, 0.71, 0.72]), 1e-3: runs([0.80, 0.81, 0.80]), 3e-3: runs([0.75, 0.76, 0.74])}
    assert best_lr(peaked) == 1e-3
    table = format_table({"tb-s": {lr: runs([0.5, 0.6], 0.6) for lr in LRS}})
    assert "| tb-s | 0.550 ± 0.050 / 0.600 ± 0.000 |" in table and table.rstrip().endswith("| 0.003 | 0.001 |")


def test_tune_lr_for_linear_probes_takes_the_lowest_test_log_loss():
    """On the accuracy plateau a head that has hardly moved (log-loss 0.69) ties with a fitted one; the
    log-loss does not."""
    from weak_to_strong.testbed.tune import PROBE_LRS, best_lr, format_table

    by_lr = {1e-3: [{"accuracy": 1.0, "log_loss": 0.36}] * 2, 1e-2: [{"accuracy": 1.0, "log_loss": 0.02}] * 2,
             1e-1: [{"accuracy": 1.0, "log_loss": 0.05}] * 2}
    assert best_lr(by_lr, linear_probe=True) == 1e-2
    assert best_lr(by_lr) == 1e-1  # the accuracy rule would take the largest rate on the plateau
    unfitted = [{"accuracy": 1.0, "log_loss": 0.3}] * 2
    table = format_table({"tb-l": {lr: by_lr.get(lr, unfitted) for lr in PROBE_LRS}}, linear_probe=True)
    assert table.rstrip().endswith(f"| 0.01 | {ladder.rung('tb-l').probe_lr:g} |")


def test_methods_gain_is_paired_by_seed():
    from weak_to_strong.testbed.report import paired_pgr_gain

    xent = [{"seed": s, "weak_acc": 0.8, "strong_acc": 1.0, "transfer_acc": t} for s, t in ((0, 0.9), (1, 0.95))]
    other = [{"seed": s, "weak_acc": 0.8, "strong_acc": 1.0, "transfer_acc": t} for s, t in ((0, 0.92), (1, 0.99))]
    mean, se = paired_pgr_gain(other, xent)  # +0.1 and +0.2
    assert mean == pytest.approx(0.15) and se == pytest.approx(0.05)


def test_pretraining_throughput_row_of_the_smallest_rung():
    from weak_to_strong.testbed.throughput import format_rows, measure_rung

    row = measure_rung("tb-s", steps=3, warmup=1)
    assert row["rung"] == "tb-s" and row["compile"] is False and row["steps"] == 3
    assert row["non_embedding_params"] == 12_768  # 1 layer x width 32 (README's ladder table)
    assert 0 < row["mfu"] <= row["mfu_model_steps_only"] < 1 and 0 < row["data_share"] < 1
    assert row["real_tokens_per_s"] > 1000
    assert row["activation"] == "gelu"  # the recipe's
    line = format_rows([row]).splitlines()[1]
    assert line.startswith("tb-s    gelu               no ") and "%" in line


def test_throughput_alternates_activations_round_by_round_and_refuses_unknown_ones():
    from weak_to_strong.testbed.throughput import measure_ladder

    rows = measure_ladder(steps=1, rungs=["tb-s"], activations=["gelu_new", "gelu"], rounds=2)
    assert [(r["round"], r["activation"]) for r in rows] == [(0, "gelu_new"), (0, "gelu"), (1, "gelu"),
                                                             (1, "gelu_new")]
    with pytest.raises(ValueError, match="unknown activation 'gleu'"):
        measure_ladder(steps=1, rungs=["tb-s"], activations=["gleu"])


def test_a_rungs_activation_is_part_of_its_recipe_and_of_the_built_model():
    import dataclasses
    from unittest import mock

    from weak_to_strong.testbed.ladder import LADDER, init_model, recipe_hash

    model = init_model("tb-s", vocab_size=20, eos_id=0)
    assert model.config.activation_function == LADDER["tb-s"].activation == "gelu"
    other = init_model("tb-s", vocab_size=20, eos_id=0, activation="gelu_new")
    assert other.config.activation_function == "gelu_new"
    with mock.patch.dict(LADDER, {"tb-s": dataclasses.replace(LADDER["tb-s"], activation="gelu_new")}):
        changed = recipe_hash("tb-s")
    assert changed != recipe_hash("tb-s")  # a cached build of another activation is never reused
