"""Command-line entry points, shared by the top-level scripts and sweep subprocesses.

    python -m weak_to_strong.cli train_simple --model_size=toy-small --ds_name=synthetic
    python -m weak_to_strong.cli sweep --model_sizes=toy-small,toy-large --ds_name=synthetic
    python -m weak_to_strong.cli train_weak_to_strong --weak_model_size=toy-small --strong_model_size=toy-large
"""

from __future__ import annotations

import functools
import inspect
import sys
from dataclasses import fields


def exit_on_user_error(fn):
    """User errors (ValueError) become one line on stderr and exit status 2, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def quiet_libraries() -> None:
    """Keep our own progress bars; silence the per-call bars of datasets and transformers."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def check_flag_names(flags: dict, extra: tuple[str, ...] = ()) -> None:
    from weak_to_strong.config import RunConfig

    valid = {f.name for f in fields(RunConfig)} | set(extra)
    unknown = sorted(set(flags) - valid)
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join('--' + u for u in unknown)}; see --help for the valid ones")


@exit_on_user_error
def train_simple(**flags) -> None:
    from weak_to_strong.config import RunConfig
    from weak_to_strong.pipeline import run_train_simple

    check_flag_names(flags)
    cfg = RunConfig(**flags)
    quiet_libraries()
    run_train_simple(cfg)


@exit_on_user_error
def sweep(model_sizes=None, **flags) -> None:
    from weak_to_strong.sweep import SweepFailed, run_sweep, sweep_option_names

    check_flag_names(flags, extra=sweep_option_names())
    try:
        run_sweep(model_sizes, **flags)
    except SweepFailed as e:  # each failure was reported with its log; say so once more and fail
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


@exit_on_user_error
def train_weak_to_strong(**flags) -> None:
    """Weak model and strong ceiling on ground truth, then the strong model on the weak labels per transfer loss."""
    from weak_to_strong.experiment import configs_from_flags, run_weak_to_strong

    w2s, base = configs_from_flags(flags)
    quiet_libraries()
    run_weak_to_strong(w2s, base)


def keyword_params(cls) -> list[inspect.Parameter]:
    """A dataclass's fields as keyword-only parameters (with their defaults), for a fire signature."""
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(cls).parameters.values()]


def route_help_to_fire() -> None:
    """fire would hand --help to a **flags entry point; send it to fire's own help instead."""
    if any(a in ("--help", "-h") for a in sys.argv[1:]) and "--" not in sys.argv:
        sys.argv = [a for a in sys.argv if a not in ("--help", "-h")] + ["--", "--help"]


def expose_config_flags() -> None:
    """Give the entry points RunConfig's signature, so fire lists its flags in --help and rejects unknown ones."""
    from weak_to_strong.config import RunConfig
    from weak_to_strong.experiment import flag_defaults
    from weak_to_strong.sweep import SweepOptions

    keyword = inspect.Parameter.KEYWORD_ONLY
    config_params = keyword_params(RunConfig)
    sweep_params = keyword_params(SweepOptions)
    # A trailing **flags makes fire hand unknown flags to us (we reject them before any work) rather
    # than calling the command first and complaining afterwards.
    flags = inspect.Parameter("flags", inspect.Parameter.VAR_KEYWORD)
    train_simple.__signature__ = inspect.Signature(config_params + [flags])
    sweep.__signature__ = inspect.Signature([inspect.Parameter("model_sizes", keyword)] + sweep_params
                                            + config_params + [flags])
    w2s_params = [inspect.Parameter(name, keyword, default=default) for name, default in flag_defaults().items()]
    train_weak_to_strong.__signature__ = inspect.Signature(w2s_params + [flags])


def main(command: str | None = None) -> None:
    """fire entry point: one command (the top-level scripts) or all (python -m weak_to_strong.cli)."""
    import fire

    expose_config_flags()
    route_help_to_fire()
    commands = {"train_simple": train_simple, "sweep": sweep, "train_weak_to_strong": train_weak_to_strong}
    fire.Fire(commands[command] if command else commands)


if __name__ == "__main__":
    main()
