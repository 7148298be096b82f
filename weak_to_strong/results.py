"""The only module that knows run folders and file names.

A run lives in `results_folder/sweep_subfolder/<config name>/`:
  config.json           what affects results (a transfer run adds weak_model_size and weak_model)
  results_summary.json  {"accuracy": ...}; written last, so its presence means "finished"
  weak_labels/          datasets save_to_disk: txt, soft_label, hard_label, gt_label, id (ground-truth runs)
  log.jsonl             training and eval records
  model.safetensors     only with --save_model
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from weak_to_strong.config import RunConfig, result_dict, short_keys

CONFIG_FILE = "config.json"
SUMMARY_FILE = "results_summary.json"
WEAK_LABELS_DIR = "weak_labels"
LOG_FILE = "log.jsonl"
MODEL_FILE = "model.safetensors"
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


def config_name(cfg: RunConfig) -> str:
    """Unique per result-affecting config: every key has its own short name, and weak labels are named."""
    config = result_dict(cfg)
    keys = short_keys()
    parts = [f"{keys[name]}={shorten_value(config[name])}" for name in keys]
    if cfg.weak_model_size is not None:
        parts.append(f"weak={shorten_value(cfg.weak_model_size)}")
    elif cfg.weak_labels_path is not None:
        parts.append(f"wl={short_hash(config['weak_model'])}")
    return "-".join(parts)


def run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.results_folder) / cfg.sweep_subfolder / config_name(cfg)


def weak_labels_dir(cfg: RunConfig) -> Path:
    """Where a ground-truth run writes its weak labels."""
    return run_dir(cfg) / WEAK_LABELS_DIR


def is_finished(path: Path) -> bool:
    return (Path(path) / SUMMARY_FILE).exists()


def read_summary(path: Path) -> dict:
    return json.loads((Path(path) / SUMMARY_FILE).read_text())


def write_json_atomic(path: Path, obj) -> None:
    """Write to a temporary file and rename: readers see the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def replace_dir_atomic(build, path: Path) -> None:
    """`build(tmp_dir)` fills a temporary folder, which then replaces `path`."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        build(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_weak_labels(ds, path: Path) -> None:
    replace_dir_atomic(lambda tmp: ds.save_to_disk(str(tmp)), path)


def load_weak_labels(path: str | Path):
    from datasets import load_from_disk

    return load_from_disk(str(path))


def save_model_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    save_file(state, tmp)
    os.replace(tmp, path)


def reset_run_dir(path: Path) -> None:
    """Start a run from an empty folder: stale weak labels or logs of an earlier try must not survive."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
