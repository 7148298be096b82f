"""Model registry: which networks can act as weak supervisor or strong student.

``MODELS`` is plain data: name -> ``ModelSpec``. To add a model, write a
zero-argument loader returning an ``nn.Module`` and add an entry (here, or
from a plugin module passed with ``--plugins``; see README.md).

Conventions for a loaded module (it receives normalised ``(B, 3, H, W)``
float images):

* ``kind="classifier"``: ``forward`` returns logits ``(B, n_classes)``. Usable
  as the weak supervisor; its softmax probabilities become the weak labels.
* ``kind="embedder"``: ``forward`` returns features ``(B, dim)``. Usable as
  the strong student; a linear probe is trained on these features.

torchvision and torch.hub are only touched inside the loaders, so the
registry can be imported (and the pipeline tested) without torchvision.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Literal

import torch
from torch import nn

Kind = Literal["classifier", "embedder"]
KINDS: tuple[str, ...] = ("classifier", "embedder")
ROLE_KIND: dict[str, str] = {"weak": "classifier", "strong": "embedder"}

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
DINO_HUB_REPO = "facebookresearch/dino:main"


@dataclass(frozen=True)
class Preprocess:
    """Resize the short side to ``resize``, centre-crop ``crop``, normalise.

    This is torchvision's ``Resize(resize) -> CenterCrop(crop) -> ToTensor ->
    Normalize(mean, std)``, the reference experiment's eval transform.
    """

    resize: int = 256
    crop: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def with_image_size(self, image_size: int | None) -> "Preprocess":
        """Crop to ``image_size`` and scale ``resize`` by the same ratio (256/224)."""
        if image_size is None:
            return self
        resize = max(image_size, round(image_size * self.resize / self.crop))
        return Preprocess(resize=resize, crop=image_size, mean=self.mean, std=self.std)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model.

    ``source`` names the weights (it is part of the cache key: change it when
    the loader starts returning different weights). ``requires`` lists the
    importable modules the loader needs; they are checked up front, and only
    when the model actually has to run (a cache hit needs none of them).
    """

    loader: Callable[[], nn.Module]
    kind: Kind
    source: str
    n_classes: int | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    requires: tuple[str, ...] = ()
    description: str = ""


def load_alexnet() -> nn.Module:
    """torchvision's ImageNet AlexNet; returns logits over the 1000 classes."""
    import torchvision  # optional "vision" extra; imported only when needed

    weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    return torchvision.models.alexnet(weights=weights)


def load_dino_from_hub(entry: str) -> nn.Module:
    """A DINO backbone from torch.hub (its hubconf imports torchvision).

    ``dino_resnet50`` returns 2048-d pooled features (its fc is Identity),
    ``dino_vitb8`` the 768-d CLS token: both are embedders.
    """
    return torch.hub.load(DINO_HUB_REPO, entry)


MODELS: dict[str, ModelSpec] = {
    "alexnet": ModelSpec(
        loader=load_alexnet,
        kind="classifier",
        source="torchvision:AlexNet_Weights.IMAGENET1K_V1",
        n_classes=1000,
        requires=("torchvision",),
        description="AlexNet trained on ImageNet (weak supervisor)",
    ),
    "resnet50_dino": ModelSpec(
        loader=partial(load_dino_from_hub, "dino_resnet50"),
        kind="embedder",
        source=f"torch.hub:{DINO_HUB_REPO}:dino_resnet50",
        requires=("torchvision",),
        description="DINO ResNet-50, 2048-d features (strong student)",
    ),
    "vitb8_dino": ModelSpec(
        loader=partial(load_dino_from_hub, "dino_vitb8"),
        kind="embedder",
        source=f"torch.hub:{DINO_HUB_REPO}:dino_vitb8",
        requires=("torchvision",),
        description="DINO ViT-B/8, 768-d CLS token (strong student)",
    ),
}


def with_article(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def get_model_spec(name: str, role: str | None = None) -> ModelSpec:
    """Look ``name`` up; with ``role`` ('weak'/'strong') also check its kind."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    if spec.kind not in KINDS:
        raise ValueError(f"model {name!r} has kind {spec.kind!r}; expected one of {KINDS}")
    if role is not None:
        wanted = ROLE_KIND[role]
        if spec.kind != wanted:
            valid = sorted(n for n, s in MODELS.items() if s.kind == wanted)
            raise ValueError(
                f"{role} model {name!r} is {with_article(spec.kind)}, but the {role} model must be "
                f"{with_article(wanted)}; valid {role} models: {', '.join(valid)}"
            )
    return spec


def find_missing_requirements(spec: ModelSpec) -> list[str]:
    """The modules in ``spec.requires`` that cannot be imported here."""
    return [mod for mod in spec.requires if importlib.util.find_spec(mod) is None]


def check_requirements(name: str, spec: ModelSpec) -> None:
    """Fail early, in one line, when a model's optional dependency is absent."""
    missing = find_missing_requirements(spec)
    if missing:
        raise ValueError(
            f"model {name!r} needs {', '.join(missing)}, which is not installed; "
            f'install the vision extra: pip install -e ".[vision]"'
        )


def load_model(spec: ModelSpec) -> nn.Module:
    """Build the model frozen and in eval mode (no dropout, no grads)."""
    model = spec.loader()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model loader {spec.loader!r} returned {type(model).__name__}, not nn.Module")
    model.eval()
    model.requires_grad_(False)
    return model
