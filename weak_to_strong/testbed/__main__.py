"""Build the testbed ladder.

    python -m weak_to_strong.testbed build               # every rung not yet built or shipped, into the cache
    python -m weak_to_strong.testbed build --fresh=True  # ignore shipped weights and the cache: pretrain again
    python -m weak_to_strong.testbed ship                # pretrain every rung into the package's weights/
    python -m weak_to_strong.testbed measure --seeds=0,1,2 [--results_folder=results/testbed]
    python -m weak_to_strong.testbed measure --linear_probe=True   # heads on frozen features, into results/testbed_lp
    python -m weak_to_strong.testbed measure --stratify=False   # random halves, into results/testbed_random_halves
    python -m weak_to_strong.testbed methods --seeds=0,1,2 [--losses=xent,window] [--linear_probe=True]
    python -m weak_to_strong.testbed report [RESULTS_FOLDER]
    python -m weak_to_strong.testbed throughput [--steps=60] [--out=FILE.json] [--compile=True]   # pretraining MFU
    python -m weak_to_strong.testbed tune_lr [--seeds=10,11,12,13,14] [--linear_probe=True]   # lr per rung, on ground truth
"""

from __future__ import annotations

import shutil

from weak_to_strong.testbed.ladder import (LADDER, SHIPPED_DIR, build_into_cache, cached_path, ensure_ladder_model,
                                           ladder_names)


def split_names(names) -> list[str]:
    """A fire flag's comma list (a string, or the tuple fire makes of `a,b`) as a list of strings."""
    names = [names] if isinstance(names, str) else list(names)
    return [n for part in names for n in str(part).split(",") if n]


def parse_names(names) -> list[str]:
    names = list(LADDER) if names is None else split_names(names)
    unknown = [n for n in names if n not in ladder_names()]
    if unknown:
        raise ValueError(f"unknown ladder model(s) {', '.join(unknown)}; choose from: {', '.join(ladder_names())}")
    return names


def build(names=None, fresh: bool = False) -> None:
    """Make every named rung available (shipped, cached, or pretrained now); print where each is."""
    for name in parse_names(names):
        if fresh:
            target = cached_path(name)
            shutil.rmtree(target, ignore_errors=True)
            path = str(build_into_cache(name, target))
        else:
            path = ensure_ladder_model(name)
        print(f"{name}: {path}")


def ship(names=None) -> None:
    """Pretrain the named rungs afresh and copy them into the package (weak_to_strong/testbed/weights/)."""
    for name in parse_names(names):
        path = ensure_ladder_model(name, use_shipped=False)
        target = SHIPPED_DIR / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(path, target)
        print(f"{name}: {target}")


def default_folder(results_folder: str | None, name: str, linear_probe: bool, stratify: bool | None = None) -> str:
    """results/<name>, with _lp for linear probes and _random_halves for --stratify=False: the report reads a
    folder of one setting."""
    suffix = ("_lp" if linear_probe else "") + ("_random_halves" if stratify is not None and not stratify else "")
    return results_folder or f"results/{name}{suffix}"


def measure(seeds="0,1,2", results_folder: str | None = None, ds_name: str = "testbed_knowledge",
            linear_probe: bool = False, stratify: bool | None = None) -> None:
    """Sweep the ladder and its random twins with xent and logconf on each seed, then print the report.

    --linear_probe=True trains heads on frozen features at each rung's probe_lr (default folder results/testbed_lp).
    --stratify=False splits the training documents at random, as the reference (the testbed's tasks stratify)."""
    from weak_to_strong.sweep import parse_int_list
    from weak_to_strong.testbed.report import run_measurement

    folder = default_folder(results_folder, "testbed", linear_probe, stratify)
    print(run_measurement(folder, parse_int_list(seeds, "seeds"), ds_name, bool(linear_probe), stratify))


def methods(seeds="0,1,2", results_folder: str | None = None, ds_name: str = "testbed_knowledge",
            losses=None, linear_probe: bool = False, stratify: bool | None = None) -> None:
    """Sweep the pretrained ladder with every transfer loss of the registry (or --losses=a,b), then the table."""
    from weak_to_strong.sweep import parse_int_list
    from weak_to_strong.testbed.report import run_methods

    chosen = None if losses is None else split_names(losses)
    folder = default_folder(results_folder, "testbed", linear_probe, stratify)
    print(run_methods(folder, parse_int_list(seeds, "seeds"), ds_name, chosen, bool(linear_probe), stratify))


def report(results_folder: str = "results/testbed", ds_name: str = "testbed_knowledge") -> None:
    """The tables and figure of finished measurement runs (see `measure`)."""
    from weak_to_strong.testbed.report import write_report

    print(write_report(results_folder, ds_name))


def throughput(steps: int = 60, out: str | None = None, compile: bool = False, rungs=None, activation=None,
               rounds: int = 1) -> None:
    """Time `steps` pretraining steps of each rung; print tokens/s, MFU against the measured matmul peak.
    --compile=True: the step through torch.compile (builds stay eager). --activation=gelu_new,gelu with
    --rounds=N: those activations' steps alternating in one process (an A/B that the machine's drift cannot fake)."""
    from weak_to_strong.testbed.throughput import format_rows, measure_ladder

    activations = None if activation is None else split_names(activation)
    print(format_rows(measure_ladder(steps, out, bool(compile), parse_names(rungs), activations, int(rounds))))


def tune_lr(seeds="10,11,12,13,14", results_folder: str | None = None, ds_name: str = "testbed_knowledge",
            linear_probe: bool = False) -> None:
    """Ground-truth accuracy and log-loss of each rung per lr; the best is the registry's default (ladder.py)."""
    from weak_to_strong.sweep import parse_int_list
    from weak_to_strong.testbed.tune import format_table, tune_learning_rates

    summaries = tune_learning_rates(default_folder(results_folder, "testbed_lr", linear_probe),
                                    parse_int_list(seeds, "seeds"), ds_name, linear_probe=bool(linear_probe))
    print(format_table(summaries, bool(linear_probe)))


def main() -> None:
    import fire

    from weak_to_strong.cli import exit_on_user_error, quiet_libraries

    quiet_libraries()
    fire.Fire({name: exit_on_user_error(fn) for name, fn in
               (("build", build), ("ship", ship), ("measure", measure), ("report", report),
                ("throughput", throughput), ("tune_lr", tune_lr), ("methods", methods))})


if __name__ == "__main__":
    main()
