"""Tiny stand-ins for the registered models, and a synthetic colour dataset.

Also a ``--plugins`` module: ``register(models, datasets)`` adds the tiny
models, so a subprocess run of ``vision/run_weak_strong.py`` can use them.

The data is four classes of noisy solid-colour images (blue, green, red,
yellow). ``tiny_weak`` scores each class from the mean colour and, by
construction, calls every yellow image green: its accuracy is exactly the
fraction of non-yellow images. ``tiny_strong`` is a seeded random conv net
whose pooled features separate the four colours linearly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vision.models import ModelSpec, Preprocess

CLASSES = ("blue", "green", "red", "yellow")  # sorted: label = index
COLORS = {
    "blue": (25, 25, 230),
    "green": (25, 230, 25),
    "red": (230, 25, 25),
    "yellow": (230, 230, 25),
}
YELLOW = CLASSES.index("yellow")
TINY_PREPROCESS = Preprocess(resize=32, crop=32)
EMBED_DIM = 16


def build_tiny_weak() -> nn.Module:
    """Mean colour -> logits; yellow's score (R+G)/2 always loses to green's G."""
    head = nn.Linear(3, len(CLASSES), bias=False)
    weights = {"blue": (0, 0, 1), "green": (0, 1, 0), "red": (1, 0, 0), "yellow": (0.5, 0.5, 0)}
    with torch.no_grad():
        # x10: confident soft labels, so the student reliably copies the mistake.
        head.weight.copy_(10 * torch.tensor([weights[c] for c in CLASSES], dtype=torch.float32))
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def build_tiny_strong() -> nn.Module:
    """A seeded random conv net: identical weights in every process."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, EMBED_DIM, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )


def tiny_model_specs() -> dict[str, ModelSpec]:
    return {
        "tiny_weak": ModelSpec(
            loader=build_tiny_weak, kind="classifier", source="test:tiny_weak:v1",
            n_classes=len(CLASSES), preprocess=TINY_PREPROCESS,
        ),
        "tiny_strong": ModelSpec(
            loader=build_tiny_strong, kind="embedder", source="test:tiny_strong:v1",
            preprocess=TINY_PREPROCESS,
        ),
    }  # fmt: skip


def register(models: dict, datasets: dict) -> None:
    """The ``--plugins`` hook."""
    models.update(tiny_model_specs())


def make_color_dataset(root: Path, n_per_class: int = 50, seed: int = 0) -> Path:
    """root/<colour>/img_XXX.png, 32 px high and 32 or 40 px wide, with pixel noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            width = 40 if i % 2 else 32
            noise = rng.integers(-25, 26, size=(32, width, 3))
            pixels = np.clip(np.array(COLORS[cls]) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"img_{i:03d}.png")
    return root
