"""Run folders: their names, locks and upload markers, and writing a run's files (weak labels, predictions,
weights). Reading finished runs back, and the names of the files that are read, are readers.py's: analysis
imports that alone, without the run config or torch.

A run lives in `results_folder/sweep_subfolder/<config name>/`:
  config.json           the run's identity, as resolved (config.resolve_run): what affects results (a transfer
                        run adds weak_model_size and weak_model, a --weak_labels_path run weak_labels_path)
  results_summary.json  {"accuracy", "auroc", "ece"[, "agreement", "agreement_on_weak_errors"]}; written last,
                        so its presence means "finished"
  test_predictions.json the final model's P(label 1) per test document: id, prob, label
  weak_labels/          datasets save_to_disk: txt, soft_label, hard_label, gt_label, id (ground-truth runs,
                        and the links of a bootstrapping chain but its last)
  log.jsonl             training and eval records
  model.safetensors     only with --save_model
  uploaded.json         with --sync_command: the command that uploaded the finished run
Beside it, `.locks/<config name>.lock` is the lock a run holds while it writes (see pipeline.py).

A sweep run by the local or Slurm executor logs to `results_folder/logs/sweep_subfolder/`:
`<config name>.log` (local) or `<config name>/` (submitit's files, Slurm).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from weak_to_strong.atomic import atomic_dir, atomic_file, write_json
from weak_to_strong.checks import soft_label_problem
from weak_to_strong.config import WEAK_LABELS_DIR, ResolvedRun, RunConfig, resolve_here, short_keys
from weak_to_strong.datasets import column_list
from weak_to_strong.readers import PAIR_SUMMARY_SUFFIX, PREDICTIONS_FILE, is_finished, short_hash, shorten_value

LOG_FILE = "log.jsonl"
MODEL_FILE = "model.safetensors"
SWEEP_LOGS_DIR = "logs"
UPLOAD_MARKER = "uploaded.json"
LOCK_SUFFIX = ".lock"
LOCKS_DIR = ".locks"


def config_name(run: RunConfig | ResolvedRun) -> str:
    """Unique per run identity (`ResolvedRun.identity`): every key has its own short name, and weak labels are
    named, by the weak model or by the labels' path. A RunConfig is resolved for this machine (`resolve_here`)."""
    identity = resolve_here(run).identity()
    keys = short_keys()
    parts = [f"{keys[name]}={shorten_value(identity[name])}" for name in keys if name in identity]  # see omit_if
    if "weak_model_size" in identity:
        parts.append(f"weak={shorten_value(identity['weak_model_size'])}")
    elif "weak_labels_path" in identity:
        parts.append(f"wl={short_hash(identity['weak_labels_path'])}")
    return "-".join(parts)


def run_dir(run: RunConfig | ResolvedRun) -> Path:
    run = resolve_here(run)
    cfg = run.config
    return Path(cfg.results_folder) / cfg.sweep_subfolder / config_name(run)


def sweep_log_path(run: RunConfig | ResolvedRun) -> Path:
    """A run's log file when a sweep runs it in the background (local executor)."""
    run = resolve_here(run)
    cfg = run.config
    return Path(cfg.results_folder) / SWEEP_LOGS_DIR / cfg.sweep_subfolder / f"{config_name(run)}.log"


def slurm_log_dir(run: RunConfig | ResolvedRun) -> Path:
    """A run's folder of submitit/Slurm logs."""
    run = resolve_here(run)
    cfg = run.config
    return Path(cfg.results_folder) / SWEEP_LOGS_DIR / cfg.sweep_subfolder / config_name(run)


def weak_labels_dir(run: RunConfig | ResolvedRun) -> Path:
    """Where a ground-truth run writes its weak labels."""
    return run_dir(run) / WEAK_LABELS_DIR


def is_done(path: Path, ground_truth: bool, sync_command: str | None = None) -> bool:
    """Nothing left to do: finished, with its weak labels (a ground-truth run), uploaded (with --sync_command)."""
    path = Path(path)
    return is_finished(path) and (not ground_truth or (path / WEAK_LABELS_DIR).is_dir()) \
        and (not sync_command or uploaded_with(path) == sync_command)


def run_lock_path(path: Path) -> Path:
    """In `.locks/` beside the run folder, not in it: a rerun empties the folder while it holds the lock."""
    path = Path(path)
    return path.parent / LOCKS_DIR / f"{path.name}{LOCK_SUFFIX}"


def uploaded_with(path: Path) -> str | None:
    """The --sync_command that uploaded this finished run, if one did."""
    try:
        return json.loads((Path(path) / UPLOAD_MARKER).read_text()).get("sync_command")
    except (OSError, ValueError, AttributeError):
        return None


def mark_uploaded(path: Path, sync_command: str) -> None:
    write_json(Path(path) / UPLOAD_MARKER, {"sync_command": sync_command})


def check_folder_path(folder: str | Path, flag: str = "--results_folder") -> None:
    """A ValueError, before any work, when a regular file sits where a folder of the path must go."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise ValueError(f"{flag}={str(folder)!r}: {str(part)!r} is a file, not a folder; choose another {flag}")


def write_predictions(path: Path, ids: list[int], probs: list[float], labels: list[int]) -> None:
    """The final model's P(label 1) on every test document, with the document ids and ground truth."""
    write_json(Path(path) / PREDICTIONS_FILE, {"id": ids, "prob": probs, "label": labels})


def save_weak_labels(ds, path: Path) -> None:
    problem = soft_label_problem(column_list(ds, "soft_label"))
    if problem is not None:
        raise ValueError(f"refusing to write weak labels to {str(path)!r}: {problem}")
    with atomic_dir(path) as tmp:
        ds.save_to_disk(str(tmp))


def load_weak_labels(path: str | Path):
    """Weak labels as saved by a ground-truth run, checked to be probabilities."""
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(path))
        problem = soft_label_problem(column_list(ds, "soft_label")) if "soft_label" in ds.column_names \
            else "no soft_label column"
    except FileNotFoundError:
        raise ValueError(f"no weak labels at {str(path)!r}: neither a saved dataset nor a run folder holding "
                         f"{WEAK_LABELS_DIR}/ (has its ground-truth run finished?)") from None
    except Exception as e:  # datasets and Arrow raise many types for a truncated or emptied file
        problem = f"unreadable: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if problem is not None:
        raise ValueError(f"weak labels at {str(path)!r} are not usable ({problem}); "
                         "rerun the ground-truth run that wrote them with --force_retrain")
    return ds


def save_model_weights(model, path: Path) -> None:
    save_state_dict(model.state_dict(), path)


def save_state_dict(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_file(path) as tmp:
        save_file(state, tmp)


def reset_run_dir(path: Path) -> None:
    """Start a run from an empty folder: stale weak labels or logs of an earlier try must not survive."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


# ---------------------------------------------------------------- train_weak_to_strong.py's pair summary

def pair_summary_path(results_folder: str | Path, weak_model_size: str, strong_model_size: str) -> Path:
    """`<weak>_<strong>.results_summary.json` in the results folder; model ids keep their org as "org--name"."""
    name = f"{shorten_value(weak_model_size)}_{shorten_value(strong_model_size)}{PAIR_SUMMARY_SUFFIX}"
    return Path(results_folder) / name


def write_pair_summary(results_folder: str | Path, summary: dict) -> Path:
    path = pair_summary_path(results_folder, summary["weak_model_size"], summary["strong_model_size"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, summary)
    return path
