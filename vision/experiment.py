"""The weak-to-strong vision pipeline behind ``vision/run_weak_strong.py``.

Order matters: every check on user input (names, paths, sizes, optional
dependencies) runs before any model is loaded or any image is decoded, so a
typo costs a one-line ``ValueError`` rather than an hour of embedding.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from weak_to_strong import atomic

from vision.data import DATASETS, ImageFolderIndex, fingerprint_index, load_dataset_index
from vision.embed import (
    Features,
    FeatureJob,
    check_job_requirements,
    default_num_workers,
    describe_precision,
    get_features,
    plan_feature_job,
    resolve_cache_dir,
    resolve_device,
    select_amp_dtype,
)
from vision.models import MODELS, ModelSpec, check_requirements, get_model_spec
from vision.probe import ProbeHistory, accuracy, compute_pgr, train_probe


@dataclass(frozen=True)
class Config:
    """The CLI flags. Defaults of the first eight are the reference experiment's."""

    data_path: str = "/root/"
    weak_model_name: str = "alexnet"
    strong_model_name: str = "resnet50_dino"
    batch_size: int = 128  # embedding extraction batch size
    seed: int = 0
    n_epochs: int = 10
    lr: float = 1e-3
    n_train: int = 40000
    dataset: str = "imagenet"
    probe_batch_size: int = 100  # the reference's train_logreg default (its main never overrode it)
    weight_decay: float = 0.0
    image_size: int | None = None  # centre-crop size; None keeps each model's own (224)
    cache_dir: str | None = None
    use_cache: bool = True
    out_dir: str = "results/vision"
    num_workers: int | None = None
    device: str = "auto"
    plugins: tuple[str, ...] = ()


# Flags that cannot change the numbers, left out of the run directory's hash.
NON_RESULT_FLAGS = ("cache_dir", "use_cache", "out_dir", "num_workers", "plugins")


def normalize_plugins(plugins: str | Sequence[str] | None) -> tuple[str, ...]:
    """Accept 'a,b', ('a', 'b') (what fire makes of --plugins=a,b) or None."""
    if plugins is None or plugins == "":
        return ()
    if isinstance(plugins, str):
        return tuple(p.strip() for p in plugins.split(",") if p.strip())
    return tuple(str(p) for p in plugins)


def import_plugin(name: str) -> Any:
    """A plugin is a module name on sys.path or a path to a .py file."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"plugin file {name!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"w2s_vision_plugin_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name.split(".")[0] and err.name != name:
            raise  # the plugin exists but one of its own imports is missing
        raise ValueError(f"cannot import plugin {name!r}: no such module") from None


def load_plugins(plugins: Sequence[str]) -> None:
    """Let each plugin add entries with ``register(models, datasets)``."""
    for name in plugins:
        module = import_plugin(name)
        register = getattr(module, "register", None)
        if not callable(register):
            raise ValueError(f"plugin {name!r} defines no register(models, datasets) function")
        register(MODELS, DATASETS)


def check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_number(name: str, value: Any, minimum: float, inclusive: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= minimum if inclusive else value > minimum)
    if not ok:
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a number {bound} {minimum}, got {value!r}")


def check_flags(cfg: Config) -> None:
    """Range checks on the numeric flags (fire hands over whatever was typed)."""
    for name in ("batch_size", "n_epochs", "n_train", "probe_batch_size"):
        check_int(name, getattr(cfg, name), 1)
    check_int("seed", cfg.seed, 0)
    check_number("lr", cfg.lr, 0.0, inclusive=False)
    check_number("weight_decay", cfg.weight_decay, 0.0, inclusive=True)
    if cfg.image_size is not None:
        check_int("image_size", cfg.image_size, 1)
    if cfg.num_workers is not None:
        check_int("num_workers", cfg.num_workers, 0)


def check_dataset_fits(cfg: Config, index: ImageFolderIndex, weak_spec: ModelSpec) -> None:
    """n_train must leave a test split; weak labels must share the dataset's classes."""
    if cfg.n_train >= len(index):
        raise ValueError(
            f"n_train={cfg.n_train} must be smaller than the dataset size {len(index)} "
            f"({str(index.root)!r}) so that a test split remains"
        )
    if weak_spec.n_classes is not None and weak_spec.n_classes != len(index.classes):
        raise ValueError(
            f"weak model {cfg.weak_model_name!r} predicts {weak_spec.n_classes} classes but "
            f"{str(index.root)!r} has {len(index.classes)} class folders"
        )


def split_indices(n: int, n_train: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded shuffle, as the reference (numpy default_rng(seed).shuffle), then split."""
    order = np.arange(n)
    np.random.default_rng(seed).shuffle(order)
    order_t = torch.from_numpy(order)
    return order_t[:n_train], order_t[n_train:]


def name_run(cfg: Config) -> str:
    """Readable prefix plus a hash of every flag that can change the results."""
    flags = {k: v for k, v in asdict(cfg).items() if k not in NON_RESULT_FLAGS}
    flags["data_path"] = os.path.abspath(cfg.data_path)
    digest = hashlib.sha256(json.dumps(flags, sort_keys=True).encode()).hexdigest()[:8]
    return f"{cfg.dataset}_{cfg.weak_model_name}_to_{cfg.strong_model_name}_seed{cfg.seed}_{digest}"


def to_json_safe(value: Any) -> Any:
    """NaN/inf (e.g. PGR with no gap) become null: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomic, so a reader never sees a half-written file."""
    atomic.write_json(path, to_json_safe(payload), allow_nan=False)


def describe_run(
    cfg: Config,
    index: ImageFolderIndex,
    device: torch.device,
    cache_dir: Path,
    jobs: Sequence[FeatureJob],
) -> dict[str, Any]:
    """What the flags resolved to, for config.json."""
    n_gpus = torch.cuda.device_count() if device.type == "cuda" and device.index is None else int(device.type == "cuda")
    return {
        "dataset_root": str(index.root),
        "n_images": len(index),
        "n_classes": len(index.classes),
        "n_test": len(index) - cfg.n_train,
        "device": str(device),
        "n_gpus_for_embedding": n_gpus,
        "precision": describe_precision(select_amp_dtype(device)),
        "cache_dir": str(cache_dir),
        "caches": {job.model_name: str(job.path) for job in jobs},
        "sources": {job.model_name: job.spec.source for job in jobs},
        "preprocess": {job.model_name: asdict(job.preprocess) for job in jobs},
        "torch_version": torch.__version__,
    }


def summarize(
    weak_acc: float,
    weak_acc_all: float,
    w2s: ProbeHistory,
    ceiling: ProbeHistory,
) -> dict[str, Any]:
    """Final and per-epoch metrics; PGR uses the weak accuracy on the same test split."""
    pgr_by_epoch = [compute_pgr(weak_acc, w, c) for w, c in zip(w2s.test_acc, ceiling.test_acc)]
    return {
        "weak_acc": weak_acc,
        "weak_acc_all_images": weak_acc_all,
        "weak_to_strong_acc": w2s.test_acc[-1],
        "strong_ceiling_acc": ceiling.test_acc[-1],
        "pgr": pgr_by_epoch[-1],
        "agreement": w2s.agreement[-1],
        "ceiling_agreement": ceiling.agreement[-1],
        "n_steps": w2s.n_steps,
        "by_epoch": {
            "weak_to_strong_acc": w2s.test_acc,
            "strong_ceiling_acc": ceiling.test_acc,
            "pgr": pgr_by_epoch,
            "agreement": w2s.agreement,
            "ceiling_agreement": ceiling.agreement,
            "weak_to_strong_train_acc": w2s.train_acc,
            "strong_ceiling_train_acc": ceiling.train_acc,
        },
    }


def format_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def print_summary(results: dict[str, Any]) -> None:
    by_epoch = results["by_epoch"]
    print(f"Weak-to-strong accuracy by epoch: {format_list(by_epoch['weak_to_strong_acc'])}")
    print(f"Supervisor-student agreement by epoch: {format_list(by_epoch['agreement'])}")
    print(f"Strong ceiling accuracy by epoch: {format_list(by_epoch['strong_ceiling_acc'])}")
    print(f"PGR by epoch: {format_list(by_epoch['pgr'])}")
    print("\n" + "=" * 100)
    print(f"Weak label accuracy (test split): {results['weak_acc']:.3f}")
    print(f"Weak label accuracy (all images): {results['weak_acc_all_images']:.3f}")
    print(f"Weak→Strong accuracy: {results['weak_to_strong_acc']:.3f}")
    print(f"Strong accuracy (ceiling): {results['strong_ceiling_acc']:.3f}")
    print(f"PGR: {results['pgr']:.3f}")
    print(f"Supervisor-student agreement: {results['agreement']:.3f}")
    print("=" * 100)


def prepare(cfg: Config) -> tuple[ImageFolderIndex, torch.device, Path, list[FeatureJob]]:
    """All validation and planning; nothing expensive happens here."""
    load_plugins(cfg.plugins)
    weak_spec = get_model_spec(cfg.weak_model_name, role="weak")
    strong_spec = get_model_spec(cfg.strong_model_name, role="strong")
    check_flags(cfg)
    index = load_dataset_index(cfg.dataset, str(cfg.data_path))
    check_dataset_fits(cfg, index, weak_spec)
    device = resolve_device(cfg.device)
    cache_dir = resolve_cache_dir(cfg.cache_dir)
    fingerprint = fingerprint_index(index)
    jobs = [
        plan_feature_job(
            name, spec, spec.preprocess.with_image_size(cfg.image_size), cfg.dataset, fingerprint, cache_dir, device
        )
        for name, spec in ((cfg.weak_model_name, weak_spec), (cfg.strong_model_name, strong_spec))
    ]
    for job in jobs:
        if cfg.use_cache:
            check_job_requirements(job)
        else:
            check_requirements(job.model_name, job.spec)
    return index, device, cache_dir, jobs


def run_experiment(cfg: Config) -> dict[str, Any]:
    """Weak labels -> strong embeddings -> two linear probes -> metrics, written to JSON."""
    cfg = replace(cfg, plugins=normalize_plugins(cfg.plugins))
    index, device, cache_dir, jobs = prepare(cfg)
    weak_job, strong_job = jobs
    run_dir = Path(cfg.out_dir) / name_run(cfg)
    config_path, results_path = run_dir / "config.json", run_dir / "results.json"
    write_json(config_path, {**asdict(cfg), "derived": describe_run(cfg, index, device, cache_dir, jobs)})

    num_workers = default_num_workers() if cfg.num_workers is None else cfg.num_workers
    fetch = dict(
        index=index, batch_size=cfg.batch_size, num_workers=num_workers, device=device, use_cache=cfg.use_cache
    )
    print("Getting weak labels...")
    weak: Features = get_features(weak_job, **fetch)
    if weak.values.shape[1] != len(index.classes):
        raise ValueError(
            f"weak model {cfg.weak_model_name!r} outputs {weak.values.shape[1]} classes but "
            f"{str(index.root)!r} has {len(index.classes)} class folders"
        )
    weak_acc_all = accuracy(weak.values, weak.labels)
    print(f"Weak label accuracy: {weak_acc_all:.3f}")
    print("Getting strong embeddings...")
    strong: Features = get_features(strong_job, **fetch)
    assert torch.equal(weak.labels, strong.labels), "both passes must see the dataset in the same order"

    train_idx, test_idx = split_indices(len(index), cfg.n_train, cfg.seed)
    x_train, x_test = strong.values[train_idx], strong.values[test_idx]
    y_train, y_test = strong.labels[train_idx], strong.labels[test_idx]
    weak_train, weak_test = weak.values[train_idx], weak.values[test_idx]
    probe_args = dict(
        n_classes=len(index.classes),
        n_epochs=cfg.n_epochs,
        lr=cfg.lr,
        batch_size=cfg.probe_batch_size,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        device=device,
    )
    print("Training linear probe on weak labels...")
    w2s = train_probe(x_train, weak_train, x_test, y_test, weak_test, desc="weak-to-strong probe", **probe_args)
    print("Training linear probe on ground truth labels...")
    ceiling = train_probe(x_train, y_train, x_test, y_test, weak_test, desc="strong ceiling probe", **probe_args)

    results = summarize(accuracy(weak_test, y_test), weak_acc_all, w2s, ceiling)
    results.update(
        weak_model_name=cfg.weak_model_name,
        strong_model_name=cfg.strong_model_name,
        dataset=cfg.dataset,
        n_train=cfg.n_train,
        n_test=len(test_idx),
        config_path=str(config_path),
        results_path=str(results_path),
    )
    write_json(results_path, results)
    print_summary(results)
    print(f"Wrote {results_path} (config: {config_path})")
    return to_json_safe(results)  # what results.json holds (NaN -> None)
