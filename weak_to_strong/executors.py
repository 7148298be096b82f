"""Where a sweep's runs execute: one after another here, a local worker pool, or Slurm (submitit).

Every executor gets the same jobs: a train_simple command per run, the runs it
needs first (a transfer run needs its weak model's ground-truth run), and its
log path. A run starts as soon as the runs it needs are done. Executors know
commands and dependencies, nothing about what the runs compute.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable


@dataclass(frozen=True)
class Job:
    key: Hashable
    label: str
    command: list[str]
    log_path: Path
    """The run's log file (local executor), or its folder of Slurm logs (Slurm executor)."""
    needs: tuple = ()
    """Keys of the jobs that must succeed first."""
    finished: bool = False
    """Its results exist already: nothing to run."""
    call: Callable[[], object] | None = None
    """The same run as a function call: the serial executor runs it in its own process, so a sweep of short
    runs does not pay a fresh interpreter's imports (seconds) per run."""


@dataclass(frozen=True)
class Outcome:
    status: str  # "done", "failed" or "skipped" (a run it needs failed)
    log: str | None = None
    detail: str = ""


class Progress:
    """Prints `[sweep k/N] status label` as each run ends; runs finished beforehand count as done."""

    def __init__(self, jobs: list[Job]):
        self.total = len(jobs)
        self.done = sum(job.finished for job in jobs)
        if self.done:
            print(f"[sweep {self.done}/{self.total}] already finished, skipped: {self.done} run(s)", flush=True)

    def report(self, job: Job, outcome: Outcome) -> None:
        self.done += 1
        line = f"[sweep {self.done}/{self.total}] {outcome.status:<7} {job.label}"
        if outcome.status == "failed" and outcome.log:
            line += f"  (log: {outcome.log})"
        elif outcome.detail:
            line += f"  ({outcome.detail})"
        print(line, flush=True)


def with_torchrun(command: list[str], nproc: int) -> list[str]:
    """`python -m weak_to_strong.cli ...` as one torchrun process per GPU (standalone: a free port per run)."""
    if nproc == 1:
        return command
    assert command[1] == "-m", command
    return [command[0], "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] + command[1:]


def blocked_by(job: Job, outcomes: dict) -> str | None:
    """Why a job cannot run, if it cannot: a job it needs failed or was skipped."""
    bad = [k for k in job.needs if k in outcomes and outcomes[k].status != "done"]
    return "a run it needs did not finish" if bad else None


def is_ready(job: Job, outcomes: dict) -> bool:
    return all(k in outcomes and outcomes[k].status == "done" for k in job.needs)


def initial_outcomes(jobs: list[Job]) -> dict:
    return {job.key: Outcome("done", detail="finished before") for job in jobs if job.finished}


# ---------------------------------------------------------------- serial

def run_serial(jobs: list[Job]) -> dict:
    """One run after another, output in this terminal; the first failure stops the sweep (the default).

    A job with a `call` runs in this process, else its command in a subprocess.
    """
    progress, outcomes = Progress(jobs), initial_outcomes(jobs)
    for job in jobs:
        if job.finished:
            continue
        print(f"[sweep {progress.done + 1}/{progress.total}] starting {job.label}", flush=True)
        outcomes[job.key] = call_here(job) if job.call is not None else run_command_here(job)
        progress.report(job, outcomes[job.key])
        if outcomes[job.key].status != "done":
            break
    return outcomes


def run_command_here(job: Job) -> Outcome:
    returncode = subprocess.run(job.command).returncode
    return Outcome("done") if returncode == 0 else Outcome("failed", detail=f"exit status {returncode}; its output is above")


def call_here(job: Job) -> Outcome:
    """Run the job's call; a user error is one line, anything else its traceback, as a subprocess would print."""
    try:
        job.call()
    except ValueError as e:
        print(f"error: {e}", flush=True)
        return Outcome("failed", detail=f"error: {e}")
    except Exception as e:  # noqa: BLE001 - the sweep reports the failed run and stops, as with a subprocess
        traceback.print_exc()
        return Outcome("failed", detail=f"{type(e).__name__}: {e}; its traceback is above")
    return Outcome("done")


# ---------------------------------------------------------------- local pool

def local_slots(gpus: list[int] | None, gpus_per_run: int, max_parallel: int | None) -> list[dict]:
    """Environment overrides of each worker: its own GPUs, or on CPU its share of the cores."""
    if gpus:
        groups = [gpus[i:i + gpus_per_run] for i in range(0, len(gpus) - gpus_per_run + 1, gpus_per_run)]
        return [{"CUDA_VISIBLE_DEVICES": ",".join(map(str, g))} for g in groups]
    n = max_parallel or 1
    # Parallel CPU runs would each start a thread per core and fight over them.
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // n))
    return [{"OMP_NUM_THREADS": threads} for _ in range(n)]


def run_logged(job: Job, free_slots: queue.SimpleQueue) -> Outcome:
    """Run one job on a free slot, its output going to its log file."""
    slot = free_slots.get()
    try:
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log_path, "w") as log:
            returncode = subprocess.run(job.command, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **slot}).returncode
    finally:
        free_slots.put(slot)
    if returncode == 0:
        return Outcome("done", log=str(job.log_path))
    return Outcome("failed", log=str(job.log_path), detail=f"exit {returncode}")


def run_local(jobs: list[Job], slots: list[dict]) -> dict:
    """A pool of workers, one per slot; a job starts once the jobs it needs are done.

    A failed job is reported with its log, the jobs that need it are skipped,
    and every other job still runs.
    """
    progress, outcomes = Progress(jobs), initial_outcomes(jobs)
    waiting = [job for job in jobs if not job.finished]
    free_slots = queue.SimpleQueue()
    for slot in slots:
        free_slots.put(slot)
    running = {}
    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        while waiting or running:
            for job in list(waiting):
                reason = blocked_by(job, outcomes)
                if reason or is_ready(job, outcomes):
                    waiting.remove(job)
                if reason:
                    outcomes[job.key] = Outcome("skipped", detail=reason)
                    progress.report(job, outcomes[job.key])
                elif is_ready(job, outcomes):
                    running[pool.submit(run_logged, job, free_slots)] = job
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                outcomes[job.key] = future.result()
                progress.report(job, outcomes[job.key])
    return outcomes


# ---------------------------------------------------------------- Slurm

@dataclass(frozen=True)
class SlurmResources:
    gpus: int = 1
    cpus: int | None = None
    mem_gb: float | None = None
    time_min: int = 240
    partition: str | None = None
    cluster: str = "slurm"
    """submitit's backend: slurm; local or debug try the same path on this machine (no Slurm needed)."""
    poll_s: float = 30.0


def run_command(command: list[str]) -> None:
    """A Slurm job's body: the run's command, its output in the job's log."""
    subprocess.run(command, check=True)


def slurm_job_name(label: str) -> str:
    """A label as a Slurm job name, without spaces or shell characters.

    "gpt2->gpt2-xl seed=1" -> "gpt2_to_gpt2-xl_seed_1"
    """
    return re.sub(r"[^\w.-]+", "_", label.replace("->", "_to_"))


def slurm_parameters(job: Job, resources: SlurmResources, after: list[str]) -> dict:
    """submitit parameters for one run; on Slurm, `after` (job ids) become an afterok dependency."""
    params = dict(name=slurm_job_name(job.label), timeout_min=resources.time_min, gpus_per_node=resources.gpus,
                  tasks_per_node=1, cpus_per_task=resources.cpus, mem_gb=resources.mem_gb,
                  slurm_partition=resources.partition)
    if after and resources.cluster == "slurm":
        params["slurm_dependency"] = "afterok:" + ":".join(after)
        # A run whose weak run failed is cancelled, rather than left pending forever.
        params["slurm_additional_parameters"] = {"kill-on-invalid-dep": "yes"}
    return {k: v for k, v in params.items() if v is not None}


def job_log(handle) -> str:
    """The job's stderr file: tracebacks and progress bars (stdout is beside it)."""
    return str(handle.paths.stderr).replace("%j", str(handle.job_id))


def submit_slurm(jobs: list[Job], resources: SlurmResources, progress: Progress, outcomes: dict) -> dict:
    """Submit every unfinished job, each in its own log folder; returns submitit handles by key.

    On Slurm, dependencies are Slurm job dependencies: everything is submitted
    at once. submitit's local and debug backends have none, so a job is
    submitted only once the jobs it needs have ended.
    """
    import submitit

    handles = {}
    for job in jobs:
        if job.finished:
            continue
        if resources.cluster != "slurm":
            for key in job.needs:
                if key in handles and key not in outcomes:
                    outcomes[key] = slurm_outcome(handles[key])
                    progress.report(next(j for j in jobs if j.key == key), outcomes[key])
            reason = blocked_by(job, outcomes)
            if reason:
                outcomes[job.key] = Outcome("skipped", detail=reason)
                progress.report(job, outcomes[job.key])
                continue
        after = [handles[key].job_id for key in job.needs if key in handles]
        executor = submitit.AutoExecutor(folder=job.log_path, cluster=resources.cluster)
        executor.update_parameters(**slurm_parameters(job, resources, after))
        handles[job.key] = executor.submit(run_command, job.command)
        print(f"submitted {job.label}: job {handles[job.key].job_id}, logs in {job.log_path}", flush=True)
    return handles


def slurm_outcome(handle) -> Outcome:
    """Wait for a job; its outcome."""
    return Outcome("done" if handle.exception() is None else "failed", log=job_log(handle))


def run_slurm(jobs: list[Job], resources: SlurmResources) -> dict:
    """One job per run, with the given resources; then watch them, reporting each as it ends.

    Interrupting the watch leaves the jobs running (on Slurm).
    """
    progress, outcomes = Progress(jobs), initial_outcomes(jobs)
    handles = submit_slurm(jobs, resources, progress, outcomes)
    by_key = {job.key: job for job in jobs}
    pending = {key: h for key, h in handles.items() if key not in outcomes}
    while pending:
        for key, handle in list(pending.items()):
            # debug jobs run in this process when waited on; the others are polled
            if resources.cluster == "debug" or handle.done():
                outcome = slurm_outcome(handle)
                if outcome.status == "failed" and blocked_by(by_key[key], outcomes):
                    outcome = Outcome("skipped", log=outcome.log, detail="a run it needs did not finish")
                outcomes[key] = outcome
                progress.report(by_key[key], outcome)
                del pending[key]
        if pending:
            time.sleep(resources.poll_s if resources.cluster == "slurm" else 1.0)
    return outcomes
