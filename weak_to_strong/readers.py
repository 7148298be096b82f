"""Reading results, without torch: a run folder's files, and a results folder loaded into table rows.

Analysis (plot.py, the testbed report, notebooks) reads results through this module alone: it imports
neither the trainer nor torch, nor even the run config (tests/test_layers.py). It owns the names of the
files other code reads, and how a value appears in a file or folder name; results.py, which names and
writes run folders (see there for their layout), takes them from here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

CONFIG_FILE = "config.json"
SUMMARY_FILE = "results_summary.json"
PREDICTIONS_FILE = "test_predictions.json"
PAIR_SUMMARY_SUFFIX = ".results_summary.json"
"""train_weak_to_strong.py's `<weak>_<strong>.results_summary.json` (results.pair_summary_path)."""
TRANSFER_ACC_PREFIX = "transfer_acc_"
PLOTS_DIR = "plots"
MAX_VALUE_CHARS = 40
RUN_KEYS = ("ds_name", "model_size", "loss", "seed")
PAIR_KEYS = ("ds_name", "seed", "weak_model_size", "strong_model_size", "weak_acc", "strong_acc")


# ---------------------------------------------------------------- a run folder's files

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


def read_json_file(path: Path) -> dict:
    """A JSON object, else a ValueError saying what is wrong with the file."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable {Path(path).name}: {e}") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{Path(path).name} does not hold a JSON object")
    return obj


def is_finished(path: Path) -> bool:
    return (Path(path) / SUMMARY_FILE).exists()


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


# ---------------------------------------------------------------- loading a results folder into a table
# Problems (unfinished or unreadable runs) are collected, not raised: one broken
# folder must not hide a whole sweep, and the caller reports them.


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
    auroc, log_loss and weak_labels_prior_shift (NaN where the summary has none), path."""
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
            "accuracy": float(summary["accuracy"]), "auroc": number_or_nan(summary.get("auroc")),
            "log_loss": number_or_nan(summary.get("log_loss")),
            "weak_labels_prior_shift": number_or_nan(summary.get("weak_labels_prior_shift")),
            "path": str(path)}


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


def testbed_inheritance_path(out_dir: Path, ds_name: str) -> Path:
    """The testbed report's second figure: each student's base-rate shift against its weak labels' prior shift."""
    return Path(out_dir) / f"{ds_name}_testbed_inheritance.png"
