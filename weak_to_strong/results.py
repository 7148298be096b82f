"""The only module that knows run folders and file names.

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

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

from weak_to_strong.atomic import atomic_dir, atomic_file, write_json
from weak_to_strong.checks import soft_label_problem
from weak_to_strong.config import WEAK_LABELS_DIR, ResolvedRun, RunConfig, resolve_here, short_keys
from weak_to_strong.datasets import column_list

CONFIG_FILE = "config.json"
SUMMARY_FILE = "results_summary.json"
LOG_FILE = "log.jsonl"
MODEL_FILE = "model.safetensors"
PREDICTIONS_FILE = "test_predictions.json"
SWEEP_LOGS_DIR = "logs"
UPLOAD_MARKER = "uploaded.json"
LOCK_SUFFIX = ".lock"
LOCKS_DIR = ".locks"
MAX_VALUE_CHARS = 40


def short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def shorten_value(value) -> str:
    """A folder-safe rendering: model ids keep their org ("org--name"); long local paths get a hash."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return "none"
    text = str(value)
    if "/" in text:
        stem = text.rstrip("/")
        text = stem.replace("/", "--").lstrip("-.")
        if len(text) > MAX_VALUE_CHARS:
            text = f"{Path(stem).name[:MAX_VALUE_CHARS // 2]}-{short_hash(stem)}"
    return text


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


def is_finished(path: Path) -> bool:
    return (Path(path) / SUMMARY_FILE).exists()


def is_done(path: Path, ground_truth: bool, sync_command: str | None = None) -> bool:
    """Nothing left to do: finished, with its weak labels (a ground-truth run), uploaded (with --sync_command)."""
    path = Path(path)
    return is_finished(path) and (not ground_truth or (path / WEAK_LABELS_DIR).is_dir()) \
        and (not sync_command or uploaded_with(path) == sync_command)


def read_summary(path: Path) -> dict:
    file = Path(path) / SUMMARY_FILE
    try:
        summary = read_json_file(file)
        accuracy = summary.get("accuracy")
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
            raise ValueError("no numeric accuracy")
    except ValueError as e:
        raise ValueError(f"{file} is corrupted ({e}): delete it, or rerun with --force_retrain") from None
    return summary


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


def read_predictions(path: Path) -> dict | None:
    """A run's test predictions; None for runs written before they were kept."""
    file = Path(path) / PREDICTIONS_FILE
    if not file.exists():
        return None
    try:
        predictions = read_json_file(file)
        columns = [predictions.get(k) for k in ("id", "prob", "label")]
        if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
            raise ValueError("not lists id, prob and label of one length")
    except ValueError as e:
        raise ValueError(f"{file} is corrupted ({e}): rerun that run with --force_retrain") from None
    return predictions


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

PAIR_SUMMARY_SUFFIX = ".results_summary.json"
TRANSFER_ACC_PREFIX = "transfer_acc_"


def pair_summary_path(results_folder: str | Path, weak_model_size: str, strong_model_size: str) -> Path:
    """`<weak>_<strong>.results_summary.json` in the results folder; model ids keep their org as "org--name"."""
    name = f"{shorten_value(weak_model_size)}_{shorten_value(strong_model_size)}{PAIR_SUMMARY_SUFFIX}"
    return Path(results_folder) / name


def write_pair_summary(results_folder: str | Path, summary: dict) -> Path:
    path = pair_summary_path(results_folder, summary["weak_model_size"], summary["strong_model_size"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, summary)
    return path


# ---------------------------------------------------------------- loading a results folder into a table
# Problems (unfinished or unreadable runs) are collected, not raised: one broken
# folder must not hide a whole sweep, and the caller reports them.

RUN_KEYS = ("ds_name", "model_size", "loss", "seed")
PAIR_KEYS = ("ds_name", "seed", "weak_model_size", "strong_model_size", "weak_acc", "strong_acc")
PLOTS_DIR = "plots"


def read_json_file(path: Path) -> dict:
    """A JSON object, else a ValueError saying what is wrong with the file."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable {Path(path).name}: {e}") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{Path(path).name} does not hold a JSON object")
    return obj


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).exists() or (path / SUMMARY_FILE).exists()


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders at any depth under root (e.g. one results folder per seed), not looking inside runs."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if is_run_dir(Path(dirpath)):
            found.append(Path(dirpath))
            dirnames.clear()
        else:  # hidden folders are temporary builds (atomic.py)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def read_run(path: Path) -> dict:
    """One finished run as a table row: its config fields, `weak_model_size` (None for ground truth), accuracy,
    auroc (NaN where the summary has none), path."""
    if not (path / CONFIG_FILE).exists():
        raise ValueError(f"no {CONFIG_FILE}")
    config = read_json_file(path / CONFIG_FILE)
    missing = [k for k in RUN_KEYS if k not in config]
    if missing:
        raise ValueError(f"{CONFIG_FILE} lacks {', '.join(missing)}: not a run config")
    if not isinstance(config.get("weak_model", {}), (dict, type(None))):
        raise ValueError(f"{CONFIG_FILE}'s weak_model is not a config")
    if not is_finished(path):
        raise ValueError(f"unfinished (no {SUMMARY_FILE})")
    summary = read_summary(path)
    return {**config, "weak_model_size": config.get("weak_model_size"), "weak_model": config.get("weak_model"),
            "accuracy": float(summary["accuracy"]), "auroc": number_or_nan(summary.get("auroc")), "path": str(path)}


def number_or_nan(value) -> float:
    """A summary's optional metric: NaN where a run did not write it (runs from before it, or undefined)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def check_results_folder(results_folder: str | Path) -> Path:
    root = Path(str(results_folder)).expanduser()
    if not root.is_dir():
        raise ValueError(f"results folder {str(root)!r} does not exist")
    return root


def load_runs(results_folder: str | Path) -> tuple[list[dict], list[dict]]:
    """Every finished run under a results folder (train_simple.py, sweep.py and train_weak_to_strong.py
    all write the same layout), one row each, and the run folders that could not be read as
    [{"path", "problem"}]."""
    return read_each(find_run_dirs(check_results_folder(results_folder)), lambda path: [read_run(path)])


def read_each(paths, read) -> tuple[list[dict], list[dict]]:
    """The rows `read(path)` gives for every path, and the paths it refused (ValueError) as {"path", "problem"}."""
    rows, problems = [], []
    for path in paths:
        try:
            rows.extend(read(path))
        except ValueError as e:
            problems.append({"path": str(path), "problem": str(e)})
    return rows, problems


def read_pair_summary(path: Path) -> list[dict]:
    """A pair summary as one row per transfer loss. Summaries without their own ds_name/seed/model sizes
    (the reference code's) take them from a config.json beside them."""
    summary = read_json_file(path)
    beside = Path(path).parent / CONFIG_FILE
    meta = {**(read_json_file(beside) if beside.exists() else {}), **summary}
    missing = [k for k in PAIR_KEYS if k not in meta]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    losses = [k[len(TRANSFER_ACC_PREFIX):] for k in summary if k.startswith(TRANSFER_ACC_PREFIX)]
    if not losses:
        raise ValueError(f"holds no {TRANSFER_ACC_PREFIX}<loss>")
    base = {k: meta[k] for k in PAIR_KEYS}
    return [{**base, "loss": loss, "transfer_acc": summary[TRANSFER_ACC_PREFIX + loss],
             "setting": meta.get("settings", {}), "path": str(path)} for loss in losses]


def load_pair_summaries(results_folder: str | Path) -> tuple[list[dict], list[dict]]:
    """Every `<weak>_<strong>.results_summary.json` under a results folder, one row per (pair, loss):
    ds_name, seed, weak/strong model size, loss, weak_acc, strong_acc, transfer_acc, setting, path;
    and the files that could not be read as [{"path", "problem"}]."""
    return read_each(sorted(check_results_folder(results_folder).rglob(f"*{PAIR_SUMMARY_SUFFIX}")), read_pair_summary)


# ---------------------------------------------------------------- analysis outputs

def plots_dir(results_folder: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where the plot command writes: --out_dir, else `plots/` in the results folder."""
    return Path(str(out_dir)) if out_dir is not None else Path(str(results_folder)) / PLOTS_DIR


def figure_path(out_dir: Path, ds_name: str) -> Path:
    return Path(out_dir) / f"{shorten_value(ds_name)}.png"


def pgr_table_path(out_dir: Path, ds_name: str, ext: str) -> Path:
    """The PGR table as `<dataset>_pgr.csv` or `<dataset>_pgr.md`."""
    return Path(out_dir) / f"{shorten_value(ds_name)}_pgr.{ext}"


def testbed_methods_paths(out_dir: Path, ds_name: str) -> tuple[Path, Path]:
    """The testbed's comparison of transfer losses: Markdown table and figure."""
    return Path(out_dir) / f"{ds_name}_methods.md", Path(out_dir) / f"{ds_name}_methods_pgr.png"


def testbed_report_paths(out_dir: Path, ds_name: str) -> tuple[Path, Path]:
    """The testbed report's Markdown tables and PGR figure."""
    return Path(out_dir) / f"{ds_name}_testbed.md", Path(out_dir) / f"{ds_name}_testbed_pgr.png"
