"""Batched feature extraction with AMP, every visible GPU, and an on-disk cache.

One pass of a model over the dataset yields, per image, either the weak
model's class probabilities (classifier) or the strong model's embedding
(embedder), plus the ground-truth label. That pass is the expensive part of
the experiment, so its result is cached under a key built from the model,
the exact files of the dataset and the preprocessing; probe settings are not
part of the key, so rerunning with another lr / seed / n_train is free.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from weak_to_strong import atomic

from vision.data import ImageFolderDataset, ImageFolderIndex, normalize_images
from vision.models import ModelSpec, Preprocess, check_requirements, load_model

CACHE_ENV = "W2S_VISION_CACHE"
DEFAULT_CACHE_DIR = "~/.cache/weak_to_strong/vision"
CACHE_FORMAT = 1  # bump when the cached content changes meaning


@dataclass(frozen=True)
class Features:
    """One model's pass over the dataset, in dataset order (on CPU)."""

    values: torch.Tensor  # (N, C) probabilities for classifiers, (N, D) embeddings otherwise
    labels: torch.Tensor  # (N,) ground truth


def resolve_cache_dir(cache_dir: str | None) -> Path:
    """``--cache_dir``, else ``$W2S_VISION_CACHE``, else ~/.cache/weak_to_strong/vision."""
    chosen = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(chosen).expanduser()


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu. Queried at call time, never at import."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"invalid device {device!r}: {err}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    return resolved


def select_amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that support it (fp16 on older ones); full precision on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe_precision(amp_dtype: torch.dtype | None) -> str:
    return "fp32" if amp_dtype is None else str(amp_dtype).removeprefix("torch.")


def build_cache_key(
    model_name: str,
    spec: ModelSpec,
    preprocess: Preprocess,
    dataset_name: str,
    data_fingerprint: str,
    precision: str,
) -> dict[str, Any]:
    """Everything that changes a model's outputs on the dataset, and nothing else.

    Returned in JSON-normalised form (lists, not tuples) so that it compares
    equal to itself after a save/load round trip.
    """
    key = {
        "format": CACHE_FORMAT,
        "model": model_name,
        "source": spec.source,
        "kind": spec.kind,
        "preprocess": asdict(preprocess),
        "dataset": dataset_name,
        "data": data_fingerprint,
        "precision": precision,
    }
    return json.loads(json.dumps(key))


def find_cache_path(cache_dir: Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    safe_model = "".join(c if c.isalnum() or c in "-_." else "_" for c in key["model"])
    return cache_dir / safe_model / f"{key['dataset']}-{digest}.pt"


def read_cache(path: Path, key: dict[str, Any]) -> Features | None:
    """The cached features, or None when absent, unreadable or for another key."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated/corrupt file is just a miss: recompute
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        print(f"Ignoring unreadable cache {path}: {reason}")
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:  # hash collision or foreign file
        return None
    return Features(values=payload["values"], labels=payload["labels"])


def write_cache(path: Path, key: dict[str, Any], features: Features) -> None:
    """Atomic: a crash mid-write must never leave a half file under the final name."""
    with atomic.atomic_file(path) as tmp:
        torch.save({"key": key, "values": features.values, "labels": features.labels}, tmp)


class PreparedModel(nn.Module):
    """Normalise uint8 images and run the model under autocast, inside ``forward``.

    Doing both inside the module (rather than around the call) matters with
    nn.DataParallel: each replica normalises its own shard on its own GPU, and
    autocast is entered in each replica's thread with the dtype we chose
    (DataParallel's threads would otherwise fall back to fp16).
    """

    def __init__(self, model: nn.Module, kind: str, preprocess: Preprocess, amp_dtype: torch.dtype | None):
        super().__init__()
        self.model = model
        self.kind = kind
        self.amp_dtype = amp_dtype
        self.register_buffer("mean", torch.tensor(preprocess.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(preprocess.std, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalize_images(images, self.mean, self.std)
        if self.amp_dtype is None:
            out = self.model(x)
        else:
            with torch.autocast(x.device.type, dtype=self.amp_dtype):
                out = self.model(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"a {self.kind} must return a (batch, dim) tensor, got {shape}")
        out = out.float()
        # Softmax here so that the cached weak labels are probabilities.
        return out.softmax(dim=-1) if self.kind == "classifier" else out


def wrap_for_devices(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device; on CUDA without a fixed index, spread over every visible GPU."""
    model = model.to(device)
    if device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        model = nn.DataParallel(model)
    return model


def default_num_workers() -> int:
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cpus = os.cpu_count() or 1
    return min(8, n_cpus)


def run_model(
    model: nn.Module,
    dataset: ImageFolderDataset,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    desc: str,
) -> Features:
    """One inference pass in dataset order; outputs collected on CPU."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,  # order must match across models and the cached labels
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    # DataParallel scatters CPU inputs itself; otherwise copy asynchronously from pinned memory.
    scatter_itself = isinstance(model, nn.DataParallel)
    outputs, labels = [], []
    # no_grad rather than inference_mode: DataParallel's replica threads run
    # outside inference mode and may not touch inference tensors in place.
    with torch.no_grad():
        for images, y in tqdm(loader, desc=desc, unit="batch"):
            if not scatter_itself:
                images = images.to(device, non_blocking=True)
            outputs.append(model(images).cpu())
            labels.append(y)
    return Features(values=torch.cat(outputs), labels=torch.cat(labels))


def compute_features(
    model_name: str,
    spec: ModelSpec,
    preprocess: Preprocess,
    index: ImageFolderIndex,
    batch_size: int,
    num_workers: int,
    device: torch.device,
) -> Features:
    """Load the model and run it over the whole dataset."""
    amp_dtype = select_amp_dtype(device)
    model = PreparedModel(load_model(spec), spec.kind, preprocess, amp_dtype)
    model = wrap_for_devices(model, device)
    dataset = ImageFolderDataset(index, resize=preprocess.resize, crop=preprocess.crop)
    features = run_model(model, dataset, batch_size, num_workers, device, desc=f"Embedding with {model_name}")
    if spec.kind == "classifier" and spec.n_classes is not None and features.values.shape[1] != spec.n_classes:
        raise ValueError(
            f"model {model_name!r} returned {features.values.shape[1]} classes, registry says {spec.n_classes}"
        )
    return features


@dataclass(frozen=True)
class FeatureJob:
    """One model's pass: where its cache lives and whether it is already there."""

    model_name: str
    spec: ModelSpec
    preprocess: Preprocess
    key: dict[str, Any]
    path: Path


def plan_feature_job(
    model_name: str,
    spec: ModelSpec,
    preprocess: Preprocess,
    dataset_name: str,
    data_fingerprint: str,
    cache_dir: Path,
    device: torch.device,
) -> FeatureJob:
    precision = describe_precision(select_amp_dtype(device))
    key = build_cache_key(model_name, spec, preprocess, dataset_name, data_fingerprint, precision)
    return FeatureJob(model_name, spec, preprocess, key, find_cache_path(cache_dir, key))


def check_job_requirements(job: FeatureJob) -> None:
    """Only a cache miss needs the model's dependencies (e.g. torchvision)."""
    if not job.path.exists():
        check_requirements(job.model_name, job.spec)


def get_features(
    job: FeatureJob,
    index: ImageFolderIndex,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    use_cache: bool = True,
) -> Features:
    """Cached features when present, otherwise compute them and cache them."""
    if use_cache:
        cached = read_cache(job.path, job.key)
        if cached is not None:
            print(f"Loaded cached {job.spec.kind} outputs of {job.model_name} from {job.path}")
            return cached
    check_requirements(job.model_name, job.spec)
    features = compute_features(job.model_name, job.spec, job.preprocess, index, batch_size, num_workers, device)
    if use_cache:
        write_cache(job.path, job.key, features)
        print(f"Cached {job.spec.kind} outputs of {job.model_name} at {job.path}")
    return features
