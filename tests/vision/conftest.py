"""Fixtures for the vision tests: synthetic images and tiny registered models."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# The tests import the repo's vision/ package and the helper module next to
# this file, whether or not the project is pip-installed and whatever pytest's
# import mode.
for path in (str(REPO_ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import tiny_vision_models  # noqa: E402
from vision.data import DATASETS  # noqa: E402
from vision.models import MODELS  # noqa: E402

N_PER_CLASS = 50
N_IMAGES = N_PER_CLASS * len(tiny_vision_models.CLASSES)


@pytest.fixture(autouse=True)
def restore_registries():
    """Whatever a test (or a plugin it loads) registers is gone afterwards."""
    models, datasets = dict(MODELS), dict(DATASETS)
    yield
    MODELS.clear()
    MODELS.update(models)
    DATASETS.clear()
    DATASETS.update(datasets)


@pytest.fixture(autouse=True)
def single_thread_torch():
    """Tiny tensors gain nothing from intra-op threads, and on a busy 2-core box
    thread hand-offs make each op ~100x slower; restored afterwards."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="session")
def color_images(tmp_path_factory) -> Path:
    return tiny_vision_models.make_color_dataset(tmp_path_factory.mktemp("colors"), N_PER_CLASS)


@pytest.fixture
def tiny_models(monkeypatch) -> dict[str, int]:
    """Register tiny_weak / tiny_strong; returns how often each was loaded."""
    calls = {name: 0 for name in tiny_vision_models.tiny_model_specs()}
    for name, spec in tiny_vision_models.tiny_model_specs().items():

        def counting_loader(name=name, build=spec.loader):
            calls[name] += 1
            return build()

        monkeypatch.setitem(MODELS, name, dataclasses.replace(spec, loader=counting_loader))
    return calls


@pytest.fixture
def run_kwargs(tmp_path, color_images) -> dict:
    """Flags for a fast CPU run of the whole pipeline on the colour images."""
    return dict(
        data_path=str(color_images),
        dataset="imagefolder",
        weak_model_name="tiny_weak",
        strong_model_name="tiny_strong",
        batch_size=64,
        n_train=120,
        n_epochs=4,
        lr=1e-2,
        probe_batch_size=16,
        seed=0,
        num_workers=0,
        device="cpu",
        cache_dir=str(tmp_path / "cache"),
        out_dir=str(tmp_path / "out"),
    )
