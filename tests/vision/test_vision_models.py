"""The model registry, its loaders, and import-time hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vision.models import (
    DINO_HUB_REPO,
    MODELS,
    ModelSpec,
    Preprocess,
    check_requirements,
    get_model_spec,
    load_model,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_reference_models_are_registered():
    assert MODELS["alexnet"].kind == "classifier" and MODELS["alexnet"].n_classes == 1000
    assert MODELS["resnet50_dino"].kind == "embedder"
    assert MODELS["vitb8_dino"].kind == "embedder"
    for spec in (MODELS[name] for name in ("alexnet", "resnet50_dino", "vitb8_dino")):
        assert spec.preprocess == Preprocess(resize=256, crop=224)
        assert spec.preprocess.mean == (0.485, 0.456, 0.406) and spec.preprocess.std == (0.229, 0.224, 0.225)
        assert "torchvision" in spec.requires


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet18'; valid names: alexnet, resnet50_dino, vitb8_dino"):
        get_model_spec("resnet18")


def test_roles_check_the_kind():
    assert get_model_spec("alexnet", role="weak").kind == "classifier"
    with pytest.raises(ValueError, match="weak model 'vitb8_dino' is an embedder.*valid weak models: alexnet"):
        get_model_spec("vitb8_dino", role="weak")
    with pytest.raises(ValueError, match="strong model 'alexnet'.*valid strong models: resnet50_dino, vitb8_dino"):
        get_model_spec("alexnet", role="strong")


@pytest.mark.parametrize(("name", "entry"), [("resnet50_dino", "dino_resnet50"), ("vitb8_dino", "dino_vitb8")])
def test_dino_loaders_use_torch_hub(monkeypatch, name, entry):
    calls = []
    monkeypatch.setattr(torch.hub, "load", lambda repo, model: calls.append((repo, model)) or nn.Identity())
    model = load_model(MODELS[name])
    assert calls == [(DINO_HUB_REPO, entry)] and DINO_HUB_REPO == "facebookresearch/dino:main"
    assert not model.training


def test_alexnet_loader_asks_torchvision_for_imagenet_weights(monkeypatch):
    torchvision = pytest.importorskip("torchvision", reason="the AlexNet loader is torchvision's")
    seen = {}

    def fake_alexnet(weights=None):  # no download in tests
        seen["weights"] = weights
        return torchvision.models.AlexNet()

    monkeypatch.setattr(torchvision.models, "alexnet", fake_alexnet)
    model = load_model(MODELS["alexnet"])
    assert seen["weights"] == torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_missing_optional_dependency_is_one_clear_error():
    spec = ModelSpec(loader=nn.Identity, kind="embedder", source="x", requires=("surely_not_installed_mod",))
    message = r"model 'x_model' needs surely_not_installed_mod.*pip install -e \"\.\[vision\]\""
    with pytest.raises(ValueError, match=message):
        check_requirements("x_model", spec)


def test_load_model_freezes_in_eval_mode():
    spec = ModelSpec(loader=lambda: nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), kind="embedder", source="x")
    model = load_model(spec)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_importing_vision_touches_neither_torchvision_nor_cuda():
    code = (
        "import sys, torch\n"
        "import vision, vision.models, vision.data, vision.embed, vision.probe, vision.experiment\n"
        "import vision.run_weak_strong\n"
        "assert 'torchvision' not in sys.modules, 'torchvision imported at import time'\n"
        "assert not torch.cuda.is_initialized(), 'CUDA initialised at import time'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
