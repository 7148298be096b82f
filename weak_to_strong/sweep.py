"""Sweep planning, the sweep-only options, and the summary behind sweep.py.

A sweep is, for each seed, a ground-truth run per model size and a transfer run
per (weak, strong) pair with the strong model at or after the weak one. Each
transfer run needs only its own weak model's ground-truth run. With --bootstrap=True
the plan adds a chain over all the sizes, each link trained on the labels of the
link before (see `pipeline.label_slices`), and --s2s_rounds=K adds K rounds
after each transfer pair, each trained on the round before's predictions; executors.py
runs the plan one after another (default), in a local pool, or on Slurm.
"""

from __future__ import annotations

import functools
import math
import shlex
import sys
from dataclasses import dataclass, fields, replace

from weak_to_strong import executors, readers, results
from weak_to_strong.config import (ResolvedRun, RunConfig, ground_truth, parse_chain, resolve_run, transfer,
                                   writes_weak_labels)
from weak_to_strong.metrics import pgr
from weak_to_strong.precision import CUDA_BF16, DeviceKind, device_kind

SWEEP_OWNED_FLAGS = ("model_size", "weak_model_size", "weak_labels_path", "bootstrap_chain", "weak_ensemble",
                     "train_seed", "s2s_round", "s2s_total")
EXECUTORS = ("serial", "local", "slurm")
SUBMITIT_CLUSTERS = ("slurm", "local", "debug")


class SweepFailed(RuntimeError):
    """Some runs failed (each already reported with its log); the others ran."""


def parse_int_list(value, flag: str) -> list[int] | None:
    """fire hands "0,1,2" over as a tuple, "0" as an int; a plain string may also come with commas."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    try:
        out = [int(str(v).strip()) for v in items if str(v).strip()]
    except ValueError:
        raise ValueError(f"--{flag} must be a comma-separated list of integers, e.g. --{flag}=0,1,2; got {value!r}")
    if not out:
        raise ValueError(f"--{flag} is empty; give a comma-separated list of integers, e.g. --{flag}=0,1,2")
    if any(v < 0 for v in out):
        raise ValueError(f"--{flag} must be non-negative integers, got {value!r}")
    return out


@dataclass
class SweepOptions:
    """How sweep.py runs its runs (sweep-only flags; none of them changes a run's results)."""

    executor: str = "serial"
    """serial: one after another in this terminal, stopping at the first failure.
    local: a pool of workers on this machine (--gpus or --max_parallel), logs per run.
    slurm: one Slurm job per run via submitit, with Slurm job dependencies."""
    seeds: object = None
    """Run the sweep once per seed, e.g. --seeds=0,1,2 (default: --seed alone)."""
    dry_run: bool = False
    """Print the plan (runs, dependencies, commands, logs) and run nothing."""
    gpus: object = None
    """local: the GPU ids to share out, e.g. --gpus=0,1,2,3; each run gets --gpus_per_run of them."""
    gpus_per_run: int = 1
    """local and slurm: GPUs per run; more than one runs it data-parallel under torchrun."""
    max_parallel: int | None = None
    """local without --gpus: runs at once (default 1), e.g. CPU runs."""
    slurm_partition: str | None = None
    slurm_cpus_per_run: int | None = None
    slurm_mem_gb: float | None = None
    slurm_time_min: int = 240
    slurm_cluster: str = "slurm"
    """submitit backend: slurm, or local / debug to try the Slurm path on this machine."""
    bootstrap: bool = False
    """Also run a bootstrapping chain over --model_sizes (in size order): each size trained on the labels of
    the one before it, the last compared with direct transfer from the first. Adds runs; changes none."""
    s2s_rounds: int | None = None
    """Also run, for every pair of two different models, a series of K + 1 transfer runs of the strong model:
    round 0 on the weak model's labels, round k on round k - 1's predictions (see `pipeline.label_slices`)."""
    ensemble_seeds: object = None
    """Also train each pair's strong model on the mean soft labels of its weak model's ground-truth runs with
    these training seeds (--train_seed; the documents follow --seed), e.g. --ensemble_seeds=0,1,2."""

    def __post_init__(self):
        if self.bootstrap not in (True, False):
            raise ValueError(f"--bootstrap must be True or False, got {self.bootstrap!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; choose one of: {', '.join(EXECUTORS)}")
        if self.slurm_cluster not in SUBMITIT_CLUSTERS:
            raise ValueError(f"unknown --slurm_cluster {self.slurm_cluster!r}; "
                             f"choose one of: {', '.join(SUBMITIT_CLUSTERS)}")
        self.seeds = parse_int_list(self.seeds, "seeds")
        if self.seeds is not None:
            refuse_repeats(self.seeds, "seeds")
        self.ensemble_seeds = parse_int_list(self.ensemble_seeds, "ensemble_seeds")
        if self.ensemble_seeds is not None:
            refuse_repeats(self.ensemble_seeds, "ensemble_seeds")
            if len(self.ensemble_seeds) < 2:
                raise ValueError(f"--ensemble_seeds={self.ensemble_seeds[0]} is one seed; an ensemble needs at least 2")
        self.gpus = parse_int_list(self.gpus, "gpus")
        for name in ("gpus_per_run", "max_parallel", "slurm_cpus_per_run", "slurm_time_min", "s2s_rounds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name} must be a positive integer, got {value!r}")
        if self.executor != "local" and (self.gpus is not None or self.max_parallel is not None):
            raise ValueError("--gpus and --max_parallel apply to --executor=local")
        if self.gpus is not None and self.max_parallel is not None:
            raise ValueError("give either --gpus (one run per GPU group) or --max_parallel (CPU runs), not both")
        if self.gpus is not None and len(self.gpus) < self.gpus_per_run:
            raise ValueError(f"--gpus={','.join(map(str, self.gpus))} has fewer than --gpus_per_run="
                             f"{self.gpus_per_run} GPUs")
        if self.executor == "local" and self.gpus is None and self.gpus_per_run > 1:
            raise ValueError("--gpus_per_run > 1 with --executor=local needs --gpus")

    def slurm_resources(self) -> executors.SlurmResources:
        return executors.SlurmResources(gpus=self.gpus_per_run, cpus=self.slurm_cpus_per_run,
                                        mem_gb=self.slurm_mem_gb, time_min=self.slurm_time_min,
                                        partition=self.slurm_partition, cluster=self.slurm_cluster)


def sweep_option_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(SweepOptions))


@dataclass(frozen=True)
class PlannedRun:
    model_size: str
    weak_model_size: str | None = None
    seed: int | None = None
    """None: the sweep's --seed."""
    chain: tuple[str, ...] | None = None
    """A bootstrapping chain this run is a link of (weak model first)."""
    train_seed: int | None = None
    """A ground-truth run's --train_seed (a weak ensemble's member); None: its seed."""
    ensemble: tuple[int | None, ...] | None = None
    """A weak ensemble's members: the train seeds of weak_model_size's ground-truth runs (None: the plain run)."""
    s2s: tuple[int, int] | None = None
    """A strong-to-strong round: (this round, the rounds after round 0)."""

    @property
    def label(self) -> str:
        name = self.model_size if self.weak_model_size is None else f"{self.weak_model_size}->{self.model_size}"
        if self.chain is not None:
            name = "->".join(self.chain[:self.chain.index(self.model_size) + 1]) + " (bootstrap)"
        if self.ensemble is not None:
            name = f"{self.weak_ensemble}->{self.model_size}"
        if self.s2s is not None:
            name += f" s2s round {self.s2s[0]}/{self.s2s[1]}"
        if self.train_seed is not None:
            name += f" train_seed={self.train_seed}"
        return name if self.seed is None else f"{name} seed={self.seed}"

    @property
    def weak_ensemble(self) -> str | None:
        """The --weak_ensemble value: "model" for the plain run, "model@train_seed" for the others."""
        if self.ensemble is None:
            return None
        return ",".join(self.weak_model_size if t is None else f"{self.weak_model_size}@{t}" for t in self.ensemble)

    def members(self) -> tuple["PlannedRun", ...]:
        return tuple(PlannedRun(self.weak_model_size, seed=self.seed, train_seed=t) for t in self.ensemble)

    def floor(self) -> "PlannedRun":
        """The ground-truth run that is this transfer run's weak floor: a chain's first model's, an ensemble's
        first member (as config.json's weak_model)."""
        if self.ensemble is not None:
            return self.members()[0]
        return PlannedRun(self.chain[0] if self.chain is not None else self.weak_model_size, seed=self.seed)


def parse_model_sizes(model_sizes) -> list[str]:
    """fire hands "a,b" over as a tuple; a plain string may also come with commas."""
    sizes = [s.strip() for s in model_sizes.split(",")] if isinstance(model_sizes, str) else [str(s) for s in model_sizes]
    sizes = [s for s in sizes if s]
    if not sizes:
        raise ValueError("--model_sizes is empty; give a comma-separated list, e.g. --model_sizes=gpt2,gpt2-medium")
    refuse_repeats(sizes, "model_sizes")
    return sizes


def refuse_repeats(values: list, flag: str) -> None:
    """Two identical runs in one sweep would write the same folder at once."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"--{flag} lists {', '.join(repeated)} more than once; give each once")


def plan_sweep(model_sizes: list[str], seeds: list[int] | None = None, bootstrap: bool = False,
               ensemble_seeds: list[int] | None = None, base_seed: int = 0,
               s2s_rounds: int | None = None) -> list[PlannedRun]:
    """Per seed: ground-truth runs for each size, then every pair whose strong model is at or after the weak one,
    then (bootstrap) the links of the chain through all the sizes, then (ensemble_seeds) the ensemble members
    and each pair trained on its weak model's ensemble, then (s2s_rounds) the strong-to-strong rounds of each
    pair of two different models. `base_seed`: the seed of runs planned with seed None."""
    plan = []
    for seed in seeds or [None]:
        plan += [PlannedRun(size, seed=seed) for size in model_sizes]
        plan += [PlannedRun(strong, weak, seed) for i, weak in enumerate(model_sizes) for strong in model_sizes[i:]]
        if bootstrap:
            chain = tuple(model_sizes)
            plan += [PlannedRun(strong, weak, seed, chain) for weak, strong in zip(chain, chain[1:])]
        if ensemble_seeds:
            plan += plan_ensembles(model_sizes, seed, ensemble_seeds, base_seed if seed is None else seed)
        if s2s_rounds:
            plan += [PlannedRun(strong, weak, seed, s2s=(k, s2s_rounds)) for i, weak in enumerate(model_sizes)
                     for strong in model_sizes[i + 1:] for k in range(s2s_rounds + 1)]
    return plan


def plan_ensembles(model_sizes: list[str], seed: int | None, train_seeds: list[int],
                   data_seed: int) -> list[PlannedRun]:
    """The member runs not planned already (a train seed equal to the data seed is the plain run), then a
    transfer run per pair on the members' mean labels."""
    ensemble = tuple(None if t == data_seed else t for t in train_seeds)
    plan = [PlannedRun(weak, seed=seed, train_seed=t) for weak in model_sizes for t in ensemble if t is not None]
    return plan + [PlannedRun(strong, weak, seed, ensemble=ensemble)
                   for i, weak in enumerate(model_sizes) for strong in model_sizes[i:]]


def dependencies(run: PlannedRun) -> tuple[PlannedRun, ...]:
    """A transfer run needs the runs whose labels it trains on: its weak model's ground-truth run, an
    ensemble's members, the s2s round before or the chain's link before (those two need, through the runs
    before them, the ground-truth run whose held-out half they slice)."""
    if run.weak_model_size is None:
        return ()
    if run.ensemble is not None:
        return run.members()
    if run.s2s is not None and run.s2s[0] > 0:
        return (replace(run, s2s=(run.s2s[0] - 1, run.s2s[1])),)
    if run.chain is not None and run.chain.index(run.model_size) > 1:
        return (PlannedRun(run.weak_model_size, run.chain[run.chain.index(run.weak_model_size) - 1], run.seed,
                           run.chain),)
    return (PlannedRun(run.weak_model_size, seed=run.seed),)


def run_config(base: RunConfig, run: PlannedRun) -> RunConfig:
    """The run's config. A ground-truth run is the run a transfer run takes its weak labels from (see
    `config.ground_truth`: xent, no early stopping or unsupervised fine-tuning), so `--loss`, `--early_stop` and
    `--unsup_epochs` apply to the transfer runs and they find their labels."""
    seeded = base if run.seed is None else replace(base, seed=run.seed)
    if run.weak_model_size is None:
        return ground_truth(replace(seeded, train_seed=run.train_seed), run.model_size)
    chain = None if run.chain is None else ",".join(run.chain)
    weak = None if run.ensemble is not None else run.weak_model_size
    s2s_round, s2s_total = run.s2s or (None, None)
    return replace(transfer(seeded, run.model_size, weak), bootstrap_chain=chain, weak_ensemble=run.weak_ensemble,
                   s2s_round=s2s_round, s2s_total=s2s_total)


def explicit_flags(flags: dict) -> dict:
    """The flags that differ from RunConfig's defaults (unknown names kept, for RunConfig to refuse)."""
    defaults = {f.name: f.default for f in fields(RunConfig)}
    return {k: v for k, v in flags.items() if k not in defaults or v != defaults[k]}


def changed_fields(cfg: RunConfig) -> dict:
    """The fields of a config that differ from RunConfig's defaults, in field order."""
    return explicit_flags({f.name: getattr(cfg, f.name) for f in fields(RunConfig)})


def check_forwarded_flags(flags: dict, options: SweepOptions) -> None:
    owned = [f for f in SWEEP_OWNED_FLAGS if flags.get(f) is not None]
    if owned:
        raise ValueError(f"sweep.py sets {', '.join('--' + f for f in owned)} itself; use --model_sizes instead")
    if options.seeds is not None and "seed" in flags:
        raise ValueError("give either --seed or --seeds, not both")


def format_flag(name: str, value) -> str:
    return f"--{name}={value}"


def train_simple_command(cfg: RunConfig) -> list[str]:
    """The command of one planned run, derived from its config (`run_config`): every field that differs from
    RunConfig's default becomes a flag, so the subprocess builds the same config (tests/test_sweep.py parses
    the commands back as fire does)."""
    return [sys.executable, "-m", "weak_to_strong.cli", "train_simple"] + [
        format_flag(k, v) for k, v in changed_fields(cfg).items()
    ]


def planning_device(executor: str, slurm_cluster: str = "slurm") -> DeviceKind:
    """The kind of device the executor runs the runs on, which a run's precision is resolved for (and named
    after) before any run starts. serial, local, and submitit's local/debug backends: this machine's (CUDA
    when it has a GPU, else MPS or CPU). Slurm: a CUDA GPU with bf16, as Slurm GPU nodes have; on older GPUs
    give --precision=fp16 or fp32, else their runs resolve "auto" to fp32 and the sweep's summary will not
    find their folders."""
    if executor == "slurm" and slurm_cluster == "slurm":
        return CUDA_BF16
    from weak_to_strong.models import pick_device

    return device_kind(pick_device())


def planning_context(model_size: str) -> int | None:
    """The model's context, for naming a planned run; None where its config cannot be read now. That run
    then fails, reported with its log, while the rest of the sweep goes on."""
    from weak_to_strong.model import model_context

    try:
        return model_context(model_size)
    except (OSError, ValueError) as e:
        print(f"warning: cannot read {model_size!r}'s config to name its runs ({e}); its runs will likely fail")
        return None


def resolve_run_configs(base: RunConfig, plan: list[PlannedRun],
                        device: DeviceKind | None = None) -> dict[PlannedRun, ResolvedRun]:
    """Each run resolved as the run itself will resolve it: document counts against the dataset
    (`pipeline.resolve_doc_counts`), then `config.resolve_run` for `device` (default: this machine's) and
    the model's context. The data loads once per seed, the only field of the plan the counts can depend
    on (through balancing)."""
    from weak_to_strong.pipeline import resolve_doc_counts

    device = planning_device("serial") if device is None else device
    counts: dict[int, RunConfig] = {}
    configs = {}
    for run in plan:
        cfg = run_config(base, run)
        if cfg.seed not in counts:
            counts[cfg.seed] = resolve_doc_counts(cfg)
        cfg = replace(cfg, n_docs=counts[cfg.seed].n_docs, n_test_docs=counts[cfg.seed].n_test_docs)
        configs[run] = resolve_run(cfg, device, planning_context)
    return configs


def make_jobs(base: RunConfig, plan: list[PlannedRun], options: SweepOptions,
              configs: dict[PlannedRun, ResolvedRun] | None = None) -> list[executors.Job]:
    """What the executors run: commands (under torchrun for several GPUs per run), dependencies, logs.
    `configs`: the plan's resolved runs, if already at hand (`resolve_run_configs`)."""
    configs = configs or resolve_run_configs(base, plan, planning_device(options.executor, options.slurm_cluster))
    jobs = []
    for run in plan:
        resolved = configs[run]
        # As asked (the run resolves it itself), with the document counts the plan found.
        cfg = replace(run_config(base, run), n_docs=resolved.config.n_docs, n_test_docs=resolved.config.n_test_docs)
        jobs.append(executors.Job(
            key=run, label=run.label,
            command=executors.with_torchrun(train_simple_command(cfg), options.gpus_per_run),
            log_path=results.slurm_log_dir(resolved) if options.executor == "slurm"
            else results.sweep_log_path(resolved),
            needs=dependencies(run),
            finished=results.is_done(results.run_dir(resolved), writes_weak_labels(cfg), cfg.sync_command)
                     and not cfg.force_retrain,
            call=functools.partial(run_here, cfg) if options.executor == "serial" else None,
        ))
    return jobs


def run_here(cfg: RunConfig) -> None:
    """One run of a serial sweep, in the sweep's own process."""
    from weak_to_strong.cli import quiet_libraries
    from weak_to_strong.pipeline import run_train_simple

    quiet_libraries()
    run_train_simple(cfg)


def print_plan(jobs: list[executors.Job], options: SweepOptions) -> None:
    todo = [job for job in jobs if not job.finished]
    print(f"plan: {len(jobs)} runs, {len(jobs) - len(todo)} already finished, {len(todo)} to run "
          f"(executor: {options.executor})")
    labels = {job.key: job.label for job in jobs}
    for i, job in enumerate(jobs, 1):
        status = "finished, skip" if job.finished else "to run"
        after = ", ".join(labels[k] for k in job.needs) or "-"
        print(f"[{i}/{len(jobs)}] {job.label}  ({status}; after: {after})")
        if not job.finished:
            print(f"    {shlex.join(job.command)}")
            if options.executor != "serial":
                print(f"    log: {job.log_path}")


def execute(jobs: list[executors.Job], options: SweepOptions) -> dict:
    if options.executor == "local":
        return executors.run_local(jobs, executors.local_slots(options.gpus, options.gpus_per_run,
                                                               options.max_parallel))
    if options.executor == "slurm":
        return executors.run_slurm(jobs, options.slurm_resources())
    return executors.run_serial(jobs)


def run_sweep(model_sizes, **flags) -> list[dict]:
    """Plan, run (or with --dry_run only print) the sweep; print accuracies and PGR.

    Raises SweepFailed, after the summary of what did finish, when runs failed.
    """
    if model_sizes is None:
        raise ValueError("--model_sizes is required, e.g. --model_sizes=gpt2,gpt2-medium")
    options = SweepOptions(**{k: flags.pop(k) for k in sweep_option_names() if k in flags})
    sizes = parse_model_sizes(model_sizes)
    if options.bootstrap:
        parse_chain(",".join(sizes), flag="model_sizes")
    check_forwarded_flags(flags, options)
    flags = explicit_flags(flags)
    base = RunConfig(**flags)  # validates every forwarded flag before any run starts
    results.check_folder_path(base.results_folder)
    plan = plan_sweep(sizes, options.seeds, options.bootstrap, options.ensemble_seeds, base.seed, options.s2s_rounds)
    configs = resolve_run_configs(base, plan, planning_device(options.executor, options.slurm_cluster))
    jobs = make_jobs(base, plan, options, configs)
    if options.dry_run:
        print_plan(jobs, options)
        return []
    outcomes = execute(jobs, options)
    rows = summarize_sweep(base, plan, configs)
    print_summary(rows)
    statuses = [outcomes[job.key].status if job.key in outcomes else "not started" for job in jobs]
    if any(status != "done" for status in statuses):
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("failed", "skipped", "not started") if s in statuses)
        raise SweepFailed(f"{counts} of {len(jobs)} runs (failures are listed above with their logs)")
    return rows


def summarize_sweep(base: RunConfig, plan: list[PlannedRun], configs: dict[PlannedRun, ResolvedRun]) -> list[dict]:
    """Accuracy of every finished run, and the PGR of each transfer run against its weak floor (`PlannedRun.floor`)
    and strong ceiling (`configs`: each planned run resolved, as the sweep named it)."""
    acc = {}
    for run in plan:
        path = results.run_dir(configs[run])
        acc[run] = readers.read_summary(path)["accuracy"] if readers.is_finished(path) else None
    rows = []
    for run in plan:
        row = {"run": run.label, "accuracy": acc[run], "pgr": None}
        if run.weak_model_size is not None:
            weak = acc[run.floor()]
            ceiling = acc[PlannedRun(run.model_size, seed=run.seed)]
            if None not in (weak, acc[run], ceiling):
                row["pgr"] = pgr(weak, acc[run], ceiling)
        rows.append(row)
    return rows


def print_summary(rows: list[dict]) -> None:
    print(f"\n{'run':<40} {'accuracy':>9} {'PGR':>8}")
    for row in rows:
        if row["pgr"] is None:
            shown = ""
        elif math.isnan(row["pgr"]):
            shown = "n/a"  # ceiling not above the weak floor
        else:
            shown = f"{row['pgr']:.3f}"
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        print(f"{row['run']:<40} {accuracy:>9} {shown:>8}")
