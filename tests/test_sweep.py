import os
import subprocess
import sys
from pathlib import Path

import pytest

from weak_to_strong import readers, results
from weak_to_strong.config import RunConfig
from weak_to_strong.sweep import PlannedRun, parse_model_sizes, plan_sweep, run_config, train_simple_command

REPO = Path(__file__).resolve().parents[1]


def test_plan_is_ground_truth_runs_then_pairs_with_strong_at_or_after_weak():
    plan = plan_sweep(["gpt2", "gpt2-medium", "gpt2-large"])
    assert [r.label for r in plan] == [
        "gpt2", "gpt2-medium", "gpt2-large",
        "gpt2->gpt2", "gpt2->gpt2-medium", "gpt2->gpt2-large",
        "gpt2-medium->gpt2-medium", "gpt2-medium->gpt2-large",
        "gpt2-large->gpt2-large",
    ]


def test_model_sizes_parse_from_fire_tuples_and_strings():
    assert parse_model_sizes(("gpt2", "gpt2-medium")) == ["gpt2", "gpt2-medium"]
    assert parse_model_sizes("gpt2, gpt2-medium") == ["gpt2", "gpt2-medium"]
    with pytest.raises(ValueError, match="--model_sizes is empty"):
        parse_model_sizes("")


def parse_command(cmd: list[str]) -> RunConfig:
    """The config train_simple builds from a sweep's command, each value parsed as fire parses it."""
    from fire.parser import DefaultParseValue

    assert cmd[1:4] == ["-m", "weak_to_strong.cli", "train_simple"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in cmd[4:])
    return RunConfig(**{name: DefaultParseValue(value) for name, value in flags.items()})


def test_commands_forward_flags_and_set_the_models():
    base = RunConfig(ds_name="boolq", lr=1e-5)
    cmd = train_simple_command(run_config(base, PlannedRun("gpt2-medium", "gpt2")))
    assert {"--ds_name=boolq", "--lr=1e-05", "--model_size=gpt2-medium", "--weak_model_size=gpt2"} <= set(cmd)
    assert not any(arg.startswith(("--loss", "--epochs", "--seed=")) for arg in cmd)  # defaults are not repeated


@pytest.mark.parametrize("flags, options", [
    (dict(ds_name="synthetic"), {}),
    (dict(ds_name="synthetic", loss="logconf", lr=3e-5, linear_probe=True, sweep_subfolder="20240101",
          sync_command="rsync -a {run_dir} host:/backup", n_docs=400, optim="adafactor", stratify=True), {}),
    (dict(ds_name="synthetic", early_stop=0.2, unsup_epochs=1), dict(s2s_rounds=2)),
    (dict(ds_name="synthetic"), dict(bootstrap=True)),
    (dict(ds_name="synthetic", seed=4), dict(ensemble_seeds=[3, 1])),
    (dict(ds_name="synthetic"), dict(seeds=[0, 7])),
])
def test_every_sweep_command_parses_back_to_its_runs_config(tmp_path, flags, options):
    """The subprocess of a run builds exactly the config the sweep planned and named it after."""
    base = RunConfig(results_folder=str(tmp_path), **flags)
    sizes = ["tb-s", "tb-m", "tb-l"] if options.get("bootstrap") else ["toy-small", "toy-large"]
    plan = plan_sweep(sizes, options.get("seeds"), options.get("bootstrap", False), options.get("ensemble_seeds"),
                      base.seed, options.get("s2s_rounds", 0))
    assert len(plan) > 2
    for run in plan:
        cfg = run_config(base, run)
        assert parse_command(train_simple_command(cfg)) == cfg, run.label


def test_loss_flag_trains_the_transfer_runs_and_ground_truth_runs_give_their_labels(tmp_path):
    """--loss=logconf: the ground-truth runs (weak floors, ceilings) stay xent, the run every transfer run
    looks up for its weak labels; the transfer runs train with logconf."""
    from weak_to_strong.config import weak_run_config

    base = RunConfig(ds_name="synthetic", loss="logconf", results_folder=str(tmp_path))
    for run in plan_sweep(["toy-small", "toy-large"]):
        cfg = run_config(base, run)
        cmd = train_simple_command(cfg)
        if run.weak_model_size is None:
            assert cfg.loss == "xent" and parse_command(cmd).loss == "xent"
        else:
            assert cfg.loss == "logconf" and "--loss=logconf" in cmd
            weak_run = run_config(base, PlannedRun(run.weak_model_size))
            assert results.run_dir(weak_run_config(cfg)) == results.run_dir(weak_run)


@pytest.mark.parametrize("flag", ["--model_size=gpt2", "--weak_model_size=gpt2", "--weak_labels_path=/x"])
@pytest.mark.slow
def test_sweep_refuses_flags_it_sets_itself(tmp_path, flag):
    out = subprocess.run([sys.executable, "sweep.py", "--model_sizes=toy-small", flag,
                          f"--results_folder={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2 and f"sweep.py sets {flag.split('=')[0]} itself" in out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_end_to_end_sweep_of_two_toy_sizes(tmp_path):
    folder = tmp_path / "results"
    out = subprocess.run(
        [sys.executable, "sweep.py", "--model_sizes=toy-small,toy-large", "--ds_name=synthetic", "--n_docs=200",
         "--n_test_docs=50", "--epochs=1", "--batch_size=16", f"--results_folder={folder}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    base = RunConfig(ds_name="synthetic", n_docs=200, n_test_docs=50, epochs=1, batch_size=16,
                     results_folder=str(folder))
    plan = plan_sweep(["toy-small", "toy-large"])
    accs = {}
    for run in plan:
        path = results.run_dir(run_config(base, run))
        assert readers.is_finished(path), run.label
        accs[run.label] = readers.read_summary(path)["accuracy"]
        assert (path / "weak_labels").is_dir() == (run.weak_model_size is None)
    assert len([p for p in (folder / "default").iterdir() if not p.name.startswith(".")]) == 5
    # The summary table: every run's accuracy, and the PGR of the transfer runs.
    table = out.stdout[out.stdout.index("PGR"):].splitlines()[1:]
    assert [line.split()[0] for line in table] == [r.label for r in plan]
    w, s, t = accs["toy-small"], accs["toy-large"], accs["toy-small->toy-large"]
    shown = table[3].split()[2]
    assert shown == ("n/a" if s <= w else f"{(t - w) / (s - w):.3f}")


def test_a_sweep_finds_runs_named_after_the_docs_they_used(tmp_path, capsys):
    """More documents asked for than the dataset gives: the plan, the runs and the summary agree on the names."""
    from datasets import Dataset

    from weak_to_strong.sweep import run_sweep

    (tmp_path / "data" / "boolq").mkdir(parents=True)
    for split, n in (("train", 80), ("validation", 30)):
        rows = [{"question": f"is {i} even", "passage": f"The number {i}.", "answer": i % 2 == 0} for i in range(n)]
        Dataset.from_list(rows).to_parquet(str(tmp_path / "data" / "boolq" / f"{split}.parquet"))
    rows = run_sweep("toy-small,toy-large", ds_name="boolq", data_dir=str(tmp_path / "data"), n_docs=500,
                     n_test_docs=100, epochs=1, batch_size=16, results_folder=str(tmp_path / "results"))
    assert [row["accuracy"] is not None for row in rows] == [True] * 5
    names = [p.name for p in (tmp_path / "results" / "default").iterdir() if not p.name.startswith(".")]
    assert len(names) == 5 and all("-nd=80-ntd=30-" in name for name in names)


CHAIN = ("tb-s", "tb-m", "tb-l")


def record_training_sets(monkeypatch) -> dict:
    """Every run's training set as the pipeline loads it, keyed by (model, weak model, chain, ensemble or round)."""
    from weak_to_strong import pipeline

    seen, load = {}, pipeline.load_run_data

    def recording(cfg, *args):
        data = load(cfg, *args)
        s2s = None if cfg.s2s_round is None else f"round {cfg.s2s_round}"
        seen[(cfg.model_size, cfg.weak_model_size, cfg.bootstrap_chain or cfg.weak_ensemble or s2s)] = data.train
        return data

    monkeypatch.setattr(pipeline, "load_run_data", recording)
    return seen


def test_bootstrap_trains_each_link_on_the_labels_of_the_link_before(tmp_path, monkeypatch):
    from datasets import load_from_disk

    from weak_to_strong.sweep import run_sweep

    seen = record_training_sets(monkeypatch)
    flags = dict(ds_name="synthetic", n_docs=240, n_test_docs=50, epochs=1, batch_size=16,
                 results_folder=str(tmp_path / "results"))
    rows = run_sweep(",".join(CHAIN), bootstrap=True, **flags)
    base = RunConfig(**flags)
    gt_labels = load_from_disk(str(results.run_dir(run_config(base, PlannedRun("tb-s"))) / "weak_labels"))
    first, last = PlannedRun("tb-m", "tb-s", chain=CHAIN), PlannedRun("tb-l", "tb-m", chain=CHAIN)
    first_dir, last_dir = (results.run_dir(run_config(base, run)) for run in (first, last))
    handed_on = load_from_disk(str(first_dir / "weak_labels"))
    # Two links: link 1 trains on the weak model's labels of the first half of its held-out documents and
    # labels the second half (keeping the ground truth); link 2 trains on exactly those labels.
    half = len(gt_labels) // 2
    first_train, last_train = seen[("tb-m", "tb-s", "tb-s,tb-m,tb-l")], seen[("tb-l", "tb-m", "tb-s,tb-m,tb-l")]
    assert list(first_train["id"]) == gt_labels["id"][:half]
    assert list(first_train["soft_label"]) == gt_labels["soft_label"][:half]
    assert handed_on["id"] == gt_labels["id"][half:] and handed_on["gt_label"] == gt_labels["gt_label"][half:]
    assert handed_on["soft_label"] != gt_labels["soft_label"][half:]  # link 1's own predictions
    assert list(last_train["id"]) == handed_on["id"] and list(last_train["soft_label"]) == handed_on["soft_label"]
    assert not (last_dir / "weak_labels").exists()
    # The last link's config names the whole chain down to the weak model's ground-truth run.
    config = readers.read_json_file(last_dir / "config.json")
    assert config["bootstrap_chain"] == "tb-s,tb-m,tb-l"
    assert config["weak_model"] == readers.read_json_file(first_dir / "config.json")
    assert config["weak_model"]["weak_model"]["model_size"] == "tb-s"
    # Every run has a folder of its own: 3 ground-truth runs, 6 pairs, 2 links; direct transfer is one of them.
    assert len([p for p in (tmp_path / "results" / "default").iterdir() if not p.name.startswith(".")]) == 11
    by_label = {row["run"]: row for row in rows}
    assert by_label["tb-s->tb-m->tb-l (bootstrap)"]["accuracy"] is not None and "tb-s->tb-l" in by_label


def test_bootstrap_plans_links_after_the_sweep_and_each_waits_for_the_one_before():
    from weak_to_strong.sweep import dependencies

    plan = plan_sweep(list(CHAIN), bootstrap=True)
    links = [run for run in plan if run.chain is not None]
    assert [r.label for r in links] == ["tb-s->tb-m (bootstrap)", "tb-s->tb-m->tb-l (bootstrap)"]
    assert dependencies(links[0]) == (PlannedRun("tb-s"),) and dependencies(links[1]) == (links[0],)
    assert plan[:len(plan) - 2] == plan_sweep(list(CHAIN))
    cmd = train_simple_command(run_config(RunConfig(), links[1]))
    assert "--bootstrap_chain=tb-s,tb-m,tb-l" in cmd and "--weak_model_size=tb-m" in cmd


@pytest.mark.slow  # a subprocess per case: the CLI's own parsing and one-line errors
@pytest.mark.parametrize("args, message", [
    (["--model_sizes=tb-m,tb-s,tb-l", "--bootstrap=True"],
     "--model_sizes='tb-m,tb-s,tb-l' is not in size order"),
    (["--model_sizes=tb-s,tb-l", "--bootstrap=True"],
     "--model_sizes='tb-s,tb-l': a bootstrapping chain needs at least 3"),
    (["--model_sizes=tb-s,tb-m,tb-l", "--bootstrap=yes"], "--bootstrap must be True or False, got 'yes'"),
    (["--model_sizes=tb-s,tb-m,tb-l", "--bootstrapp=True"], "unknown flag(s) --bootstrapp"),
    (["--model_sizes=tb-s,tb-m,tb-l", "--bootstrap_chain=tb-s,tb-m,tb-l"], "sweep.py sets --bootstrap_chain itself"),
    (["--model_sizes=tb-s,tb-m", "--ensemble_seeds=1"], "--ensemble_seeds=1 is one seed; an ensemble needs at least 2"),
    (["--model_sizes=tb-s,tb-m", "--ensemble_seeds=1,1"], "--ensemble_seeds lists 1 more than once"),
    (["--model_sizes=tb-s,tb-m", "--ensemble_seeds=a,b"], "--ensemble_seeds must be a comma-separated list"),
    (["--model_sizes=tb-s,tb-m", "--s2s_rounds=0"], "--s2s_rounds must be a positive integer, got 0"),
    (["--model_sizes=tb-s,tb-m", "--s2s_round=1"], "sweep.py sets --s2s_round itself"),
])
def test_bad_stage_input_is_one_line_before_anything_is_written(tmp_path, args, message):
    out = subprocess.run([sys.executable, "sweep.py", *args, "--ds_name=synthetic", f"--results_folder={tmp_path}"],
                         cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_ensembles_labels_are_the_mean_of_its_members(tmp_path, monkeypatch):
    from datasets import load_from_disk

    from weak_to_strong.sweep import run_sweep

    seen = record_training_sets(monkeypatch)
    flags = dict(ds_name="synthetic", n_docs=200, n_test_docs=50, epochs=1, batch_size=16,
                 results_folder=str(tmp_path / "results"))
    rows = run_sweep("toy-small,toy-large", ensemble_seeds="0,1", **flags)
    base = RunConfig(**flags)
    # Member 0 is the sweep's own ground-truth run (train seed = --seed); member 1 trains with --train_seed=1
    # on the same documents.
    members = [results.run_dir(run_config(base, PlannedRun("toy-small", train_seed=t))) for t in (None, 1)]
    assert "-tseed=" not in members[0].name and members[1].name.endswith("-tseed=1")
    labels = [load_from_disk(str(path / "weak_labels")) for path in members]
    assert labels[0]["id"] == labels[1]["id"] and labels[0]["soft_label"] != labels[1]["soft_label"]
    mean = [[(a + b) / 2 for a, b in zip(x, y)] for x, y in zip(labels[0]["soft_label"], labels[1]["soft_label"])]
    trained = seen[("toy-large", None, "toy-small,toy-small@1")]
    assert list(trained["id"]) == labels[0]["id"]
    assert [p for row in trained["soft_label"] for p in row] == pytest.approx([p for row in mean for p in row])
    assert list(trained["hard_label"]) == [int(p[1] > p[0]) for p in mean]
    # Plain pairs are untouched: the plain toy-small->toy-large run trained on member 0's labels alone.
    ensemble_dir = results.run_dir(run_config(base, PlannedRun("toy-large", "toy-small", ensemble=(None, 1))))
    plain_dir = results.run_dir(run_config(base, PlannedRun("toy-large", "toy-small")))
    assert ensemble_dir.name.endswith("-ens=toy-small,toy-small@1") and "ens=" not in plain_dir.name
    config = readers.read_json_file(ensemble_dir / "config.json")
    assert [m.get("train_seed") for m in config["weak_ensemble_members"]] == [None, 1]
    # 2 ground-truth runs, 3 pairs, 2 more members, 3 ensemble pairs: each in a folder of its own.
    assert len([p for p in (tmp_path / "results" / "default").iterdir() if not p.name.startswith(".")]) == 10
    row = {r["run"]: r for r in rows}["toy-small,toy-small@1->toy-large"]
    assert row["accuracy"] is not None and row["pgr"] is not None


def test_ensemble_plan_reuses_the_plain_run_and_waits_for_every_member():
    from weak_to_strong.sweep import dependencies

    plan = plan_sweep(["toy-small", "toy-large"], ensemble_seeds=[3, 0, 1], base_seed=0)
    members = [r for r in plan if r.train_seed is not None]
    assert [(r.model_size, r.train_seed) for r in members] == [("toy-small", 3), ("toy-small", 1),
                                                               ("toy-large", 3), ("toy-large", 1)]
    ensembles = [r for r in plan if r.ensemble is not None]
    assert ensembles[1].label == "toy-small@3,toy-small,toy-small@1->toy-large"
    assert len({r.label for r in plan}) == len(plan)
    assert dependencies(ensembles[0]) == (PlannedRun("toy-small", train_seed=3), PlannedRun("toy-small"),
                                          PlannedRun("toy-small", train_seed=1))
    cmd = train_simple_command(run_config(RunConfig(), ensembles[0]))
    assert "--weak_ensemble=toy-small@3,toy-small,toy-small@1" in cmd and not any("--weak_model_size" in a for a in cmd)
    assert "--train_seed=3" in train_simple_command(run_config(RunConfig(), members[0]))


def test_s2s_round_k_trains_on_round_k_minus_1s_labels(tmp_path, monkeypatch):
    from datasets import load_from_disk

    from weak_to_strong.sweep import run_sweep

    seen = record_training_sets(monkeypatch)
    flags = dict(ds_name="synthetic", n_docs=240, n_test_docs=50, epochs=1, batch_size=16,
                 results_folder=str(tmp_path / "results"))
    rows = run_sweep("toy-small,toy-large", s2s_rounds=2, **flags)
    base = RunConfig(**flags)
    weak = load_from_disk(str(results.run_dir(run_config(base, PlannedRun("toy-small"))) / "weak_labels"))
    rounds = [results.run_dir(run_config(base, PlannedRun("toy-large", "toy-small", s2s=(k, 2)))) for k in range(3)]
    assert [path.name.endswith(f"-round={k}-rounds=2-weak=toy-small") for k, path in enumerate(rounds)] == [True] * 3
    third = len(weak) // 3
    trained = [seen[("toy-large", "toy-small", f"round {k}")] for k in range(3)]
    # Round 0 trains on the weak model's labels of the first third of its held-out half; rounds 0 and 1 label
    # the next third (ground truth kept), and round k trains on exactly round k - 1's labels.
    assert list(trained[0]["id"]) == weak["id"][:third]
    assert list(trained[0]["soft_label"]) == weak["soft_label"][:third]
    for k in (1, 2):
        handed_on = load_from_disk(str(rounds[k - 1] / "weak_labels"))
        assert handed_on["id"] == weak["id"][k * third:(k + 1) * third]
        assert handed_on["gt_label"] == weak["gt_label"][k * third:(k + 1) * third]
        assert list(trained[k]["id"]) == handed_on["id"] and list(trained[k]["soft_label"]) == handed_on["soft_label"]
        config = readers.read_json_file(rounds[k] / "config.json")
        assert config["weak_model"] == readers.read_json_file(rounds[k - 1] / "config.json")
    assert not (rounds[2] / "weak_labels").exists()
    # 2 ground-truth runs, 3 pairs, 3 rounds of toy-small->toy-large: each in a folder of its own.
    assert len([p for p in (tmp_path / "results" / "default").iterdir() if not p.name.startswith(".")]) == 8
    assert {r["run"]: r for r in rows}["toy-small->toy-large s2s round 2/2"]["pgr"] is not None


def test_s2s_plan_chains_each_round_to_the_one_before():
    from weak_to_strong.sweep import dependencies

    plan = plan_sweep(["toy-small", "toy-large"], s2s_rounds=2)
    rounds = [r for r in plan if r.s2s is not None]
    assert [r.label for r in rounds] == [f"toy-small->toy-large s2s round {k}/2" for k in range(3)]
    assert dependencies(rounds[0]) == (PlannedRun("toy-small"),)
    assert dependencies(rounds[2]) == (rounds[1],)
    cmd = train_simple_command(run_config(RunConfig(), rounds[1]))
    assert "--s2s_round=1" in cmd and "--s2s_total=2" in cmd and "--weak_model_size=toy-small" in cmd


def test_early_stop_and_unsup_apply_to_the_transfer_runs_and_ground_truth_runs_give_their_labels(tmp_path):
    from weak_to_strong.config import weak_run_config

    base = RunConfig(ds_name="synthetic", early_stop=0.2, unsup_epochs=1, results_folder=str(tmp_path))
    for run in plan_sweep(["toy-small", "toy-large"], s2s_rounds=1):
        cfg = run_config(base, run)
        cmd = train_simple_command(cfg)
        if run.weak_model_size is None:
            assert cfg.early_stop is None and not any(a.startswith("--early_stop") for a in cmd)
            assert cfg.unsup_epochs is None and not any(a.startswith("--unsup_epochs") for a in cmd)
        else:
            assert cfg.early_stop == 0.2 and "--early_stop=0.2" in cmd
            assert cfg.unsup_epochs == 1 and "--unsup_epochs=1" in cmd
            # Each finds the labels of the run it waits for (the ground-truth run, or the s2s round before).
            assert results.run_dir(weak_run_config(cfg)) == results.run_dir(run_config(base, dependencies_of(run)))


def dependencies_of(run):
    from weak_to_strong.sweep import dependencies

    (needed,) = dependencies(run)
    return needed


def test_a_sweep_names_its_runs_for_the_device_its_executor_runs_them_on(tmp_path):
    """Planned before any GPU is present: Slurm runs as bf16 (CUDA), this machine's runs as they run here."""
    from weak_to_strong.precision import CPU, CUDA_BF16
    from weak_to_strong.sweep import planning_device, resolve_run_configs

    assert planning_device("slurm") == CUDA_BF16
    assert planning_device("slurm", slurm_cluster="local") == planning_device("serial") == planning_device("local")
    base = RunConfig(ds_name="synthetic", n_docs=200, n_test_docs=50, results_folder=str(tmp_path))
    plan = plan_sweep(["toy-small", "toy-large"])
    on_gpu, on_cpu = resolve_run_configs(base, plan, CUDA_BF16), resolve_run_configs(base, plan, CPU)
    for run in plan:
        gpu_name, cpu_name = results.config_name(on_gpu[run]), results.config_name(on_cpu[run])
        assert "-ctx=256-" in gpu_name and "-prec=bf16" in gpu_name and "-prec=fp32" in cpu_name
        assert gpu_name.replace("-prec=bf16", "-prec=fp32") == cpu_name
