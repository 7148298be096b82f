"""Dataset registry and a torchvision-free ImageFolder reader.

``DATASETS`` is plain data: name -> ``DatasetSpec``. Every dataset is read as
a torchvision ``ImageFolder`` layout (``root/<class>/**/<image>``, classes in
sorted order, label = class index), so any such directory works.

The reader and transform are written with PIL and torch only, following
torchvision's ``ImageFolder`` scan and its ``Resize -> CenterCrop ->
ToTensor`` eval transform step by step (same sizes, rounding and PIL
bilinear filter), so results match the reference without needing torchvision.
Normalisation is left to the embedding step (on the device), which is why
samples are returned as uint8: 4x less data through workers and PCIe.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

# torchvision.datasets.folder.IMG_EXTENSIONS
IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
)  # fmt: skip


def find_imagefolder_root(data_path: str) -> Path:
    """A generic ImageFolder dataset lives directly at ``data_path``."""
    return Path(data_path)


def find_imagenet_val_root(data_path: str) -> Path:
    """``data_path/val`` (torchvision ImageNet's unpacked layout) or ``data_path`` itself.

    The reference passed ``data_path`` to ``torchvision.datasets.ImageNet``,
    which unpacks the val tarball into ``data_path/val/<wnid>/*.JPEG``; a path
    that already is such a class-folder directory is accepted too.
    """
    root = Path(data_path)
    val = root / "val"
    if val.is_dir():
        return val
    if (root / "ILSVRC2012_img_val.tar").exists():
        raise ValueError(
            f"data_path {data_path!r} holds the ImageNet val tarball but no unpacked 'val/' "
            "folder; unpack it once, e.g. python -c \"import torchvision; "
            f"torchvision.datasets.ImageNet({data_path!r}, split='val')\""
        )
    return root


@dataclass(frozen=True)
class DatasetSpec:
    """How a ``--data_path`` maps to an ImageFolder root, and what it must hold."""

    find_root: Callable[[str], Path]
    n_classes: int | None = None  # required number of class folders, if fixed
    description: str = ""
    layout: str = "DATA_PATH/<class>/<image>"  # shown when the folder does not fit


DATASETS: dict[str, DatasetSpec] = {
    "imagenet": DatasetSpec(
        find_root=find_imagenet_val_root,
        n_classes=1000,
        description="ImageNet validation set (50,000 images) in ImageFolder layout",
        layout="DATA_PATH/val/<wnid>/<image> or DATA_PATH/<wnid>/<image>",
    ),
    "imagefolder": DatasetSpec(
        find_root=find_imagefolder_root,
        description="any directory in torchvision ImageFolder layout",
    ),
}


@dataclass(frozen=True)
class ImageFolderIndex:
    """The scanned file list: ``samples`` are (path relative to root, label)."""

    root: Path
    classes: tuple[str, ...]
    samples: tuple[tuple[str, int], ...]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples], dtype=torch.long)


def get_dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def has_image_extension(filename: str) -> bool:
    return filename.lower().endswith(IMG_EXTENSIONS)


def find_classes(root: Path) -> list[str]:
    """Class names: the sorted sub-directories of root, as torchvision's ImageFolder."""
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise ValueError(f"no class folders in {str(root)!r}; expected ImageFolder layout root/<class>/<image>")
    return classes


def scan_image_folder(root: Path, classes: list[str] | None = None) -> ImageFolderIndex:
    """List images the way torchvision's ImageFolder does (sorted classes, sorted walk)."""
    if classes is None:
        classes = find_classes(root)
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for label, cls in enumerate(classes):
        n_before = len(samples)
        for dirpath, _, filenames in sorted(os.walk(root / cls, followlinks=True)):
            for filename in sorted(filenames):
                if has_image_extension(filename):
                    path = os.path.join(dirpath, filename)
                    samples.append((os.path.relpath(path, root), label))
        if len(samples) == n_before:
            empty.append(cls)
    if empty:
        raise ValueError(f"class folders without images in {str(root)!r}: {', '.join(empty[:5])}")
    return ImageFolderIndex(root=root, classes=tuple(classes), samples=tuple(samples))


def load_dataset_index(name: str, data_path: str) -> ImageFolderIndex:
    """Resolve and scan a registered dataset, with one-line errors for bad paths."""
    spec = get_dataset_spec(name)
    if not os.path.exists(data_path):
        raise ValueError(f"data_path {data_path!r} does not exist")
    root = spec.find_root(data_path)
    if not root.is_dir():
        raise ValueError(f"data_path {data_path!r}: {str(root)!r} is not a directory")
    classes = find_classes(root)
    if spec.n_classes is not None and len(classes) != spec.n_classes:
        raise ValueError(
            f"dataset {name!r} expects {spec.n_classes} class folders but {str(root)!r} "
            f"has {len(classes)} (expected layout: {spec.layout})"
        )
    return scan_image_folder(root, classes)


def fingerprint_index(index: ImageFolderIndex) -> str:
    """Hash of the root, the classes and each file's (path, label, size, mtime).

    Cheap (one stat per file, no reads) yet changes whenever files are added,
    removed, relabelled or rewritten, so a cache keyed on it cannot go stale.
    """
    digest = hashlib.sha256()
    digest.update(str(index.root.resolve()).encode())
    digest.update("\0".join(index.classes).encode())
    for relpath, label in index.samples:
        stat = os.stat(index.root / relpath)
        digest.update(f"\0{relpath}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def compute_resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after torchvision ``Resize(size)``: short side -> size, long side truncated."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def compute_center_crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """PIL crop box of torchvision ``CenterCrop(crop)`` (offsets rounded, not floored)."""
    if crop > width or crop > height:
        raise ValueError(f"crop {crop} is larger than the resized image {width}x{height}")
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return left, top, left + crop, top + crop


def load_image(path: str | Path, resize: int, crop: int) -> torch.Tensor:
    """Read an image as RGB, resize the short side, centre-crop: uint8 (3, crop, crop)."""
    import numpy as np
    from PIL import Image  # Pillow ships with torchvision and matplotlib

    with open(path, "rb") as f:
        image = Image.open(f).convert("RGB")
    width, height = image.size
    new_size = compute_resized_size(width, height, resize)
    if new_size != (width, height):
        image = image.resize(new_size, Image.Resampling.BILINEAR)
    image = image.crop(compute_center_crop_box(*image.size, crop))
    array = np.asarray(image, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def normalize_images(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, as ToTensor (/255) then Normalize(mean, std)."""
    return images.float().div_(255).sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))


class ImageFolderDataset(Dataset):
    """(uint8 image, label) pairs of an ``ImageFolderIndex`` at one preprocessing size."""

    def __init__(self, index: ImageFolderIndex, resize: int, crop: int):
        if crop > resize:
            raise ValueError(f"crop size {crop} must not exceed resize size {resize}")
        self.index = index
        self.resize = resize
        self.crop = crop

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        relpath, label = self.index.samples[i]
        return load_image(self.index.root / relpath, self.resize, self.crop), label
