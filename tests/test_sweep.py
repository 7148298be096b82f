import os
import subprocess
import sys
from pathlib import Path

import pytest

from weak_to_strong import results
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


def test_commands_forward_flags_and_set_the_models():
    cmd = train_simple_command({"ds_name": "boolq", "lr": 1e-5}, PlannedRun("gpt2-medium", "gpt2"), RunConfig())
    assert cmd[-4:] == ["--ds_name=boolq", "--lr=1e-05", "--model_size=gpt2-medium", "--weak_model_size=gpt2"]


def test_loss_flag_trains_the_transfer_runs_and_ground_truth_runs_give_their_labels(tmp_path):
    """--loss=logconf: the ground-truth runs (weak floors, ceilings) stay xent, the run every transfer run
    looks up for its weak labels; the transfer runs train with logconf."""
    from weak_to_strong.config import weak_run_config

    base = RunConfig(ds_name="synthetic", loss="logconf", results_folder=str(tmp_path))
    flags = {"ds_name": "synthetic", "loss": "logconf"}
    for run in plan_sweep(["toy-small", "toy-large"]):
        cfg = run_config(base, run)
        cmd = train_simple_command(flags, run, cfg)
        if run.weak_model_size is None:
            assert cfg.loss == "xent" and "--loss=xent" in cmd
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
        assert results.is_finished(path), run.label
        accs[run.label] = results.read_summary(path)["accuracy"]
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
