"""Extraction wrapper (normalisation, autocast, output checks), devices and cache files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import vision.embed
from vision.embed import (
    Features,
    PreparedModel,
    find_cache_path,
    read_cache,
    resolve_cache_dir,
    resolve_device,
    write_cache,
)
from vision.models import Preprocess


def test_prepared_model_normalises_and_returns_probabilities_for_classifiers():
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    pre = Preprocess(resize=4, crop=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    embedder = PreparedModel(nn.Flatten(), "embedder", pre, amp_dtype=None)
    torch.testing.assert_close(embedder(images), torch.full((2, 48), 2.0))  # (1 - 0.5) / 0.25

    classifier = PreparedModel(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), "classifier", pre, None)
    probs = classifier(images)
    torch.testing.assert_close(probs, torch.full((2, 3), 1 / 3))


def test_prepared_model_autocast_branch_returns_float32():
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    model = PreparedModel(linear, "classifier", Preprocess(resize=2, crop=2), amp_dtype=torch.bfloat16)
    out = model(torch.randint(0, 256, (3, 3, 2, 2), dtype=torch.uint8))  # CPU autocast in bf16
    assert out.dtype == torch.float32 and out.shape == (3, 5)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(3))


def test_prepared_model_rejects_non_matrix_outputs():
    model = PreparedModel(nn.Identity(), "embedder", Preprocess(resize=2, crop=2), amp_dtype=None)
    with pytest.raises(ValueError, match=r"must return a \(batch, dim\) tensor, got \(1, 3, 2, 2\)"):
        model(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_devices_resolve_without_cuda_at_import():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="invalid device 'gpu0'"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="device 'cuda' requested but CUDA is not available"):
        resolve_device("cuda")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("W2S_VISION_CACHE", raising=False)
    assert str(resolve_cache_dir(None)).endswith("/.cache/weak_to_strong/vision")
    monkeypatch.setenv("W2S_VISION_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(None) == tmp_path / "env"
    assert resolve_cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_cache_round_trip_and_key_check(tmp_path):
    key = {"model": "m", "dataset": "d", "preprocess": {"mean": [0.5]}}
    path = find_cache_path(tmp_path, key)
    assert path.parent == tmp_path / "m" and path.name.startswith("d-")
    assert read_cache(path, key) is None
    features = Features(values=torch.randn(4, 3), labels=torch.tensor([0, 1, 2, 0]))
    write_cache(path, key, features)
    loaded = read_cache(path, key)
    assert torch.equal(loaded.values, features.values) and torch.equal(loaded.labels, features.labels)
    assert read_cache(path, {**key, "model": "other"}) is None  # a foreign file under this name
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_interrupted_cache_write_leaves_nothing(tmp_path, monkeypatch):
    def crash(obj, f):
        open(f, "wb").write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(vision.embed.torch, "save", crash)
    path = tmp_path / "m" / "d-x.pt"
    with pytest.raises(KeyboardInterrupt):
        write_cache(path, {"model": "m"}, Features(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)))
    assert list(path.parent.iterdir()) == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_end_to_end_on_gpu(tiny_models, run_kwargs):
    from vision.run_weak_strong import main

    results = main(**{**run_kwargs, "device": "cuda", "num_workers": 2})
    config = json.loads(Path(results["config_path"]).read_text())
    assert config["derived"]["precision"] in ("bfloat16", "float16")
    assert config["derived"]["n_gpus_for_embedding"] == torch.cuda.device_count()
    assert results["weak_acc_all_images"] == pytest.approx(0.75)
    assert results["strong_ceiling_acc"] >= 0.95
