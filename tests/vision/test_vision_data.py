"""The torchvision-free ImageFolder reader, transforms and dataset registry."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vision.data import (
    DATASETS,
    ImageFolderDataset,
    compute_center_crop_box,
    compute_resized_size,
    fingerprint_index,
    get_dataset_spec,
    load_dataset_index,
    load_image,
    normalize_images,
    scan_image_folder,
)


def save_png(path: Path, width: int, height: int, color=(10, 20, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), color).save(path)


@pytest.mark.parametrize(
    ("size", "resize", "expected"),
    [((500, 375), 256, (341, 256)), ((375, 500), 256, (256, 341)), ((300, 300), 256, (256, 256)),
     ((40, 32), 32, (40, 32)), ((33, 100), 10, (10, 30))],
)  # fmt: skip
def test_resized_size_follows_torchvision_resize_int(size, resize, expected):
    assert compute_resized_size(*size, resize) == expected


def test_center_crop_box_rounds_like_torchvision():
    assert compute_center_crop_box(341, 256, 224) == (58, 16, 282, 240)  # round(58.5) -> 58
    assert compute_center_crop_box(256, 256, 224) == (16, 16, 240, 240)
    with pytest.raises(ValueError, match="larger"):
        compute_center_crop_box(100, 256, 224)


def test_load_image_resizes_crops_and_keeps_uint8(tmp_path):
    save_png(tmp_path / "a.png", 80, 40, color=(200, 100, 0))
    image = load_image(tmp_path / "a.png", resize=20, crop=16)
    assert image.shape == (3, 16, 16) and image.dtype == torch.uint8
    assert image[:, 5, 5].tolist() == [200, 100, 0]

    grey = tmp_path / "g.png"
    Image.new("L", (16, 16), 77).save(grey)
    assert load_image(grey, 16, 16)[:, 0, 0].tolist() == [77, 77, 77]  # converted to RGB


def test_normalize_matches_to_tensor_then_normalize():
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = (images.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(normalize_images(images, mean, std), expected)


def test_scan_image_folder_orders_like_imagefolder(tmp_path):
    save_png(tmp_path / "b_cls" / "z.png", 8, 8)
    save_png(tmp_path / "b_cls" / "sub" / "a.JPG".lower(), 8, 8)
    save_png(tmp_path / "a_cls" / "y.png", 8, 8)
    save_png(tmp_path / "a_cls" / "x.PNG", 8, 8)
    (tmp_path / "a_cls" / "notes.txt").write_text("not an image")
    (tmp_path / "stray.png").write_bytes(b"")  # files at the root are not samples

    index = scan_image_folder(tmp_path)
    assert index.classes == ("a_cls", "b_cls")
    assert index.samples == (
        (os.path.join("a_cls", "x.PNG"), 0),
        (os.path.join("a_cls", "y.png"), 0),
        (os.path.join("b_cls", "z.png"), 1),
        (os.path.join("b_cls", "sub", "a.jpg"), 1),
    )
    assert index.labels.tolist() == [0, 0, 1, 1]

    dataset = ImageFolderDataset(index, resize=8, crop=8)
    image, label = dataset[2]
    assert len(dataset) == 4 and label == 1 and image.shape == (3, 8, 8)


def test_scan_rejects_empty_layouts(tmp_path):
    with pytest.raises(ValueError, match="no class folders"):
        scan_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="empty_class"):
        scan_image_folder(tmp_path)


def test_missing_data_path_is_named(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=f"data_path '{missing}' does not exist"):
        load_dataset_index("imagefolder", missing)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*imagefolder, imagenet"):
        get_dataset_spec("cifar")


def test_imagenet_uses_val_subfolder_and_checks_class_count(tmp_path):
    for wnid in ("n01440764", "n01443537"):
        save_png(tmp_path / "val" / wnid / "ILSVRC2012_val_00000001.JPEG".lower(), 8, 8)
    with pytest.raises(ValueError, match="expects 1000 class folders.*has 2"):
        load_dataset_index("imagenet", str(tmp_path))
    # With the class count relaxed, the val/ folder is what gets read.
    DATASETS["imagenet_small"] = dataclasses.replace(DATASETS["imagenet"], n_classes=2)  # undone by conftest
    index = load_dataset_index("imagenet_small", str(tmp_path))
    assert index.root == tmp_path / "val" and index.classes == ("n01440764", "n01443537")
    # A class-folder directory passed directly works too.
    assert load_dataset_index("imagenet_small", str(tmp_path / "val")).root == tmp_path / "val"


def test_imagenet_tarball_without_unpacked_val_gets_a_hint(tmp_path):
    (tmp_path / "ILSVRC2012_img_val.tar").write_bytes(b"")
    with pytest.raises(ValueError, match="unpack"):
        load_dataset_index("imagenet", str(tmp_path))


def test_fingerprint_changes_with_the_files(tmp_path):
    save_png(tmp_path / "a" / "1.png", 8, 8)
    save_png(tmp_path / "b" / "1.png", 8, 8)
    before = fingerprint_index(scan_image_folder(tmp_path))
    assert fingerprint_index(scan_image_folder(tmp_path)) == before
    save_png(tmp_path / "b" / "2.png", 8, 8)
    added = fingerprint_index(scan_image_folder(tmp_path))
    assert added != before
    save_png(tmp_path / "b" / "2.png", 9, 9)  # rewritten: new size and mtime
    assert fingerprint_index(scan_image_folder(tmp_path)) != added


def test_matches_torchvision_transform(tmp_path):
    torchvision = pytest.importorskip("torchvision", reason="parity check against torchvision's own transform")
    transform = torchvision.transforms.Compose(
        [torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224), torchvision.transforms.ToTensor()]
    )
    rng = np.random.default_rng(0)
    for width, height in [(500, 375), (375, 500), (224, 224), (640, 427), (257, 300)]:
        path = tmp_path / f"{width}x{height}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        expected = transform(Image.open(path).convert("RGB"))
        actual = load_image(path, resize=256, crop=224).float() / 255
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_scan_matches_torchvision_imagefolder(color_images):
    torchvision = pytest.importorskip("torchvision", reason="parity check against torchvision's ImageFolder")
    folder = torchvision.datasets.ImageFolder(str(color_images))
    index = scan_image_folder(color_images)
    assert list(index.classes) == folder.classes
    assert [(str(color_images / p), y) for p, y in index.samples] == folder.samples
