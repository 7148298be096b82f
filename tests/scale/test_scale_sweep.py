"""Sweeps: the plan, the local worker pool, the Slurm path (submitit), dry runs, skipping finished runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from weak_to_strong import atomic, executors, readers, results
from weak_to_strong.config import RunConfig
from weak_to_strong.sweep import (PlannedRun, SweepFailed, SweepOptions, dependencies, plan_sweep, run_config,
                                  run_sweep)

from scale_helpers import REPO, TINY_FLAGS

SWEEP_FLAGS = {k: v for k, v in TINY_FLAGS.items() if k != "model_size"}


# ---------------------------------------------------------------- the plan

def test_plan_pairs_and_dependency_edges():
    plan = plan_sweep(["a", "b", "c"], seeds=[0, 1])
    for seed in (0, 1):
        runs = [r for r in plan if r.seed == seed]
        assert [r.model_size for r in runs if r.weak_model_size is None] == ["a", "b", "c"]
        assert [(r.weak_model_size, r.model_size) for r in runs if r.weak_model_size] == [
            ("a", "a"), ("a", "b"), ("a", "c"), ("b", "b"), ("b", "c"), ("c", "c")]
    assert len(plan) == 18
    # a transfer run waits for its own weak run of the same seed, and for nothing else
    assert dependencies(PlannedRun("c", "a", 1)) == (PlannedRun("a", seed=1),)
    assert dependencies(PlannedRun("c", seed=1)) == ()
    assert all(dep in plan for run in plan for dep in dependencies(run))
    assert plan_sweep(["a"]) == [PlannedRun("a"), PlannedRun("a", "a")]  # without --seeds: the --seed flag


def mark_finished(cfg: RunConfig) -> None:
    """What a finished run leaves behind, as far as skipping it goes."""
    (results.run_dir(cfg) / results.WEAK_LABELS_DIR).mkdir(parents=True)  # a ground-truth run's
    atomic.write_json(results.run_dir(cfg) / readers.SUMMARY_FILE, {"accuracy": 0.5})


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    mark_finished(RunConfig(**TINY_FLAGS, results_folder=str(tmp_path), seed=1))
    out = run_sweep("toy-small,toy-large", **SWEEP_FLAGS, results_folder=str(tmp_path), seeds="0,1",
                    executor="local", max_parallel=2, dry_run=True)
    printed = capsys.readouterr().out
    assert out == []
    assert "plan: 10 runs, 1 already finished, 9 to run (executor: local)" in printed
    assert "toy-small seed=1  (finished, skip; after: -)" in printed
    assert "toy-small->toy-large seed=0  (to run; after: toy-small seed=0)" in printed
    assert "toy-large->toy-large seed=1  (to run; after: toy-large seed=1)" in printed
    commands = [line for line in printed.splitlines() if "weak_to_strong.cli train_simple" in line]
    # Seed 0 is RunConfig's default, so its 5 runs' commands leave --seed out; seed 1 has 4 left to run.
    assert len(commands) == 9 and sum("--seed=1" in c for c in commands) == 4
    assert sum("--seed=" not in c for c in commands) == 5
    assert any("--model_size=toy-large" in c and "--weak_model_size=toy-small" in c and "--seed=1" in c
               for c in commands)  # seed 0 is the default: not repeated
    assert printed.count("    log: ") == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default"]  # no logs, no new runs


@pytest.mark.parametrize("options, match", [
    (dict(executor="cluster"), "unknown executor"),
    (dict(executor="serial", max_parallel=2), "apply to --executor=local"),
    (dict(executor="local", gpus="0,1", max_parallel=2), "either --gpus"),
    (dict(executor="local", gpus="0", gpus_per_run=2), "fewer than --gpus_per_run"),
    (dict(executor="local", gpus_per_run=2), "needs --gpus"),
    (dict(seeds="0,x"), "--seeds must be a comma-separated list of integers"),
    (dict(executor="slurm", slurm_cluster="aws"), "unknown --slurm_cluster"),
])
def test_bad_sweep_options(options, match):
    with pytest.raises(ValueError, match=match):
        SweepOptions(**options)


def test_seed_and_seeds_conflict(tmp_path):
    with pytest.raises(ValueError, match="either --seed or --seeds"):
        run_sweep("toy-small", ds_name="synthetic", seed=3, seeds="0,1", dry_run=True, results_folder=str(tmp_path))


def test_fire_hands_lists_over_as_tuples():
    assert SweepOptions(seeds=(0, 1, 2), executor="local", gpus=(0, 1)).seeds == [0, 1, 2]
    assert SweepOptions(seeds=3).seeds == [3]


def test_local_slots_and_torchrun_commands():
    assert executors.local_slots([0, 1, 2, 3, 4], 2, None) == [{"CUDA_VISIBLE_DEVICES": "0,1"},
                                                               {"CUDA_VISIBLE_DEVICES": "2,3"}]
    assert len(executors.local_slots(None, 1, 3)) == 3
    cmd = [sys.executable, "-m", "weak_to_strong.cli", "train_simple", "--model_size=gpt2"]
    assert executors.with_torchrun(cmd, 1) == cmd
    assert executors.with_torchrun(cmd, 4) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                               "--nproc_per_node=4", "-m", "weak_to_strong.cli", "train_simple",
                                               "--model_size=gpt2"]


# ---------------------------------------------------------------- the local pool, with stand-in commands

def stand_in(tmp_path: Path, name: str, seconds: float = 0.0, fail: bool = False) -> list[str]:
    """A command that records when it ran (start, end) and sleeps; or fails."""
    code = (f"import json, time, sys; start = time.time(); time.sleep({seconds}); "
            f"open({str(tmp_path / (name + '.json'))!r}, 'w').write(json.dumps([start, time.time()])); "
            f"print('ran {name}'); sys.exit({int(fail)})")
    return [sys.executable, "-c", code]


def times(tmp_path: Path, name: str) -> tuple[float, float]:
    return tuple(json.loads((tmp_path / f"{name}.json").read_text()))


def job(tmp_path, name, needs=(), **kwargs) -> executors.Job:
    return executors.Job(name, name, stand_in(tmp_path, name, **kwargs), tmp_path / "logs" / f"{name}.log", needs)


@pytest.mark.slow
def test_transfer_waits_only_for_its_own_weak_run(tmp_path, capsys):
    jobs = [job(tmp_path, "slow_gt", seconds=3.0), job(tmp_path, "fast_gt"),
            job(tmp_path, "fast_to_x", needs=("fast_gt",)), job(tmp_path, "slow_to_x", needs=("slow_gt",))]
    outcomes = executors.run_local(jobs, [{}, {}])
    assert {k: o.status for k, o in outcomes.items()} == dict.fromkeys(["slow_gt", "fast_gt", "fast_to_x",
                                                                        "slow_to_x"], "done")
    assert times(tmp_path, "fast_to_x")[0] >= times(tmp_path, "fast_gt")[1]
    assert times(tmp_path, "fast_to_x")[1] < times(tmp_path, "slow_gt")[1]  # did not wait for the slow run
    assert times(tmp_path, "slow_to_x")[0] >= times(tmp_path, "slow_gt")[1]
    assert (tmp_path / "logs" / "fast_gt.log").read_text() == "ran fast_gt\n"
    printed = capsys.readouterr().out
    assert "[sweep 1/4] done" in printed and "[sweep 4/4] done    slow_to_x" in printed


def test_a_failed_run_is_reported_and_the_rest_go_on(tmp_path, capsys):
    jobs = [job(tmp_path, "bad_gt", fail=True), job(tmp_path, "good_gt"),
            job(tmp_path, "bad_to_x", needs=("bad_gt",)), job(tmp_path, "good_to_x", needs=("good_gt",)),
            executors.Job("old", "old", ["false"], tmp_path / "old.log", finished=True)]
    outcomes = executors.run_local(jobs, [{}, {}])
    assert outcomes["bad_gt"].status == "failed"
    assert outcomes["bad_to_x"].status == "skipped" and not (tmp_path / "bad_to_x.json").exists()
    assert outcomes["good_to_x"].status == "done" and (tmp_path / "good_to_x.json").exists()
    assert outcomes["old"].status == "done"  # finished before: not run again
    printed = capsys.readouterr().out
    assert "[sweep 1/5] already finished" in printed
    assert f"failed  bad_gt  (log: {tmp_path / 'logs' / 'bad_gt.log'})" in printed
    assert "skipped bad_to_x  (a run it needs did not finish)" in printed
    assert "[sweep 5/5]" in printed


def test_serial_stops_at_the_first_failure(tmp_path):
    jobs = [job(tmp_path, "a", fail=True), job(tmp_path, "b")]
    outcomes = executors.run_serial(jobs)
    assert outcomes["a"].status == "failed" and "b" not in outcomes


def test_serial_runs_calls_in_process_and_stops_at_a_failed_one(tmp_path, capsys):
    ran = []

    def bad_input():
        raise ValueError("no such dataset")

    jobs = [executors.Job("a", "a", ["false"], tmp_path / "a.log", call=lambda: ran.append("a")),
            executors.Job("b", "b", ["true"], tmp_path / "b.log", needs=("a",), call=bad_input),
            executors.Job("c", "c", ["true"], tmp_path / "c.log", call=lambda: ran.append("c"))]
    outcomes = executors.run_serial(jobs)
    assert ran == ["a"]  # a's command ("false") never ran: its call did
    assert outcomes["a"].status == "done" and outcomes["b"].status == "failed" and "c" not in outcomes
    assert "error: no such dataset" in capsys.readouterr().out


def test_a_serial_sweep_makes_in_process_calls_and_the_others_commands(tmp_path):
    from weak_to_strong.sweep import make_jobs

    base = RunConfig(**SWEEP_FLAGS, model_size="toy-small", results_folder=str(tmp_path))
    plan = plan_sweep(["toy-small"])
    assert all(j.call is not None for j in make_jobs(base, plan, SweepOptions()))
    assert all(j.call is None for j in make_jobs(base, plan, SweepOptions(executor="local")))


# ---------------------------------------------------------------- real toy sweeps

@pytest.mark.slow
def test_local_pool_of_two_cpu_workers_gives_the_serial_results(tmp_path, subprocess_env, in_process, capsys):
    """Two transfer runs train at once, each as a train_simple subprocess (as the serial sweep runs them); their
    results equal the same runs done one after another in this process. The ground-truth runs are finished
    beforehand (in this process), so the pool skips them: the slow test below runs whole sweeps both ways."""
    base = RunConfig(**SWEEP_FLAGS, results_folder=str(tmp_path / "local"))
    plan = plan_sweep(["toy-small"], seeds=[0, 1])
    for run in plan:
        if run.weak_model_size is None:
            in_process(**vars(run_config(base, run)))
    rows = run_sweep("toy-small", **SWEEP_FLAGS, results_folder=str(tmp_path / "local"), seeds="0,1",
                     executor="local", max_parallel=2)
    printed = capsys.readouterr().out
    assert "[sweep 2/4] already finished" in printed and "[sweep 4/4] done" in printed
    for run in plan:
        single = in_process(**{**vars(run_config(base, run)), "results_folder": str(tmp_path / "serial")})
        pooled = readers.read_summary(results.run_dir(run_config(base, run)))
        assert pooled["accuracy"] == single["accuracy"], run.label
        assert pooled == pytest.approx(single, abs=1e-6), run.label  # workers run 1 thread: last-digit noise
        assert results.sweep_log_path(run_config(base, run)).exists() == (run.weak_model_size is not None)
    assert [r["run"] for r in rows] == ["toy-small seed=0", "toy-small->toy-small seed=0",
                                        "toy-small seed=1", "toy-small->toy-small seed=1"]


@pytest.mark.slow
def test_serial_and_local_sweeps_agree_end_to_end(tmp_path, subprocess_env):
    """The CLI both ways, a failing model included: same accuracies, the failure reported, exit status 1."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    outputs = {}
    for executor, extra in (("serial", []), ("local", ["--max_parallel=2"])):
        folder = tmp_path / executor
        cmd = [sys.executable, "sweep.py", "--model_sizes=toy-small,toy-large", f"--results_folder={folder}",
               f"--executor={executor}", *extra, *(f"--{k}={v}" for k, v in SWEEP_FLAGS.items())]
        proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[executor] = {p.parent.name: json.loads(p.read_text()) for p in folder.rglob(readers.SUMMARY_FILE)}
    assert len(outputs["serial"]) == 5 and outputs["serial"].keys() == outputs["local"].keys()
    for name, summary in outputs["serial"].items():  # workers run 1 thread: metrics may differ in the last digits
        assert outputs["local"][name]["accuracy"] == summary["accuracy"]
        assert outputs["local"][name] == pytest.approx(summary, abs=1e-6), name
    cmd = [sys.executable, "sweep.py", f"--model_sizes=toy-small,{broken}", f"--results_folder={tmp_path / 'bad'}",
           "--executor=local", "--max_parallel=2", *(f"--{k}={v}" for k, v in SWEEP_FLAGS.items())]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1 and "2 failed, 1 skipped of 5 runs" in proc.stderr
    assert proc.stdout.count("failed  ") == 2 and "done    toy-small->toy-small" in proc.stdout


# ---------------------------------------------------------------- Slurm (submitit)

def test_slurm_jobs_carry_resources_and_afterok_dependencies(tmp_path):
    pytest.importorskip("submitit")
    from submitit.slurm.test_slurm import mocked_slurm

    jobs = [executors.Job("gt", "gpt2 seed=0", ["true"], tmp_path / "gt"),
            executors.Job("tr", "gpt2->gpt2-xl seed=0", ["true"], tmp_path / "tr", needs=("gt",)),
            executors.Job("old", "old", ["true"], tmp_path / "old", finished=True)]
    resources = executors.SlurmResources(gpus=2, cpus=8, mem_gb=64, time_min=90, partition="gpu")
    with mocked_slurm():
        handles = executors.submit_slurm(jobs, resources, executors.Progress(jobs), {})
    assert set(handles) == {"gt", "tr"}  # a finished run is not submitted
    gt_script = (tmp_path / "gt" / f"{handles['gt'].job_id}_submission.sh").read_text()
    tr_script = (tmp_path / "tr" / f"{handles['tr'].job_id}_submission.sh").read_text()
    for line in ("--gpus-per-node=2", "--cpus-per-task=8", "--mem=64GB", "--time=90", "--partition=gpu"):
        assert f"#SBATCH {line}\n" in tr_script
    assert "--dependency" not in gt_script
    assert f"#SBATCH --dependency=afterok:{handles['gt'].job_id}\n" in tr_script
    assert "#SBATCH --kill-on-invalid-dep=yes\n" in tr_script
    assert "#SBATCH --job-name=gpt2_to_gpt2-xl_seed_0\n" in tr_script
    assert f"{tmp_path / 'tr'}/%j_0_log.err" in tr_script  # logs per run


@pytest.mark.slow
def test_slurm_path_runs_with_submitits_local_backend(tmp_path, subprocess_env, in_process, capsys):
    pytest.importorskip("submitit")
    folder = str(tmp_path)
    in_process(**TINY_FLAGS, results_folder=folder)  # the weak run is finished: only the transfer is submitted
    rows = run_sweep("toy-small", **SWEEP_FLAGS, results_folder=folder, executor="slurm", slurm_cluster="local",
                     slurm_time_min=10)
    printed = capsys.readouterr().out
    assert "[sweep 1/2] already finished" in printed and "[sweep 2/2] done    toy-small->toy-small" in printed
    transfer = run_config(RunConfig(**SWEEP_FLAGS, results_folder=folder), PlannedRun("toy-small", "toy-small"))
    assert readers.is_finished(results.run_dir(transfer))
    assert list(results.slurm_log_dir(transfer).glob("*_log.err"))
    assert rows[1]["accuracy"] == readers.read_summary(results.run_dir(transfer))["accuracy"]


def test_failed_sweep_raises_after_the_summary(tmp_path, capsys, monkeypatch):
    def fail_everything(jobs, options):
        return {job.key: executors.Outcome("failed", log="x.log") for job in jobs}

    monkeypatch.setattr("weak_to_strong.sweep.execute", fail_everything)
    with pytest.raises(SweepFailed, match="2 failed of 2 runs"):
        run_sweep("toy-small", ds_name="synthetic", results_folder=str(tmp_path))
    assert "toy-small->toy-small" in capsys.readouterr().out
