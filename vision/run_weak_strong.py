"""Weak-to-strong on ImageNet: AlexNet labels, linear probe on frozen DINO features.

Run from the repository root (torchvision is needed for the real models:
``pip install -e ".[vision]"``)::

    python vision/run_weak_strong.py --data_path=DIR --weak_model_name=alexnet \\
        --strong_model_name=resnet50_dino --batch_size=128 --seed=0 \\
        --n_epochs=10 --lr=1e-3 --n_train=40000

``DIR`` holds the ImageNet validation set in ImageFolder layout, either as
``DIR/val/<wnid>/*.JPEG`` (what torchvision.datasets.ImageNet unpacks) or as
``DIR/<wnid>/*.JPEG``. ``--dataset=imagefolder`` takes any ImageFolder tree.
``python -m vision.run_weak_strong`` works too. See vision/README.md for
every flag, the caching and the reference's published numbers.

Exit status: 0 on success, 2 with a one-line ``error: ...`` on bad input.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):
    # Run as a script: Python put vision/ itself on sys.path, which would make
    # its modules importable as top-level "data", "models", ... Swap it for
    # the repository root so that the absolute "vision." imports below work.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from vision.experiment import Config, normalize_plugins, run_experiment  # noqa: E402


def main(
    data_path: str = "/root/",
    weak_model_name: str = "alexnet",
    strong_model_name: str = "resnet50_dino",
    batch_size: int = 128,
    seed: int = 0,
    n_epochs: int = 10,
    lr: float = 1e-3,
    n_train: int = 40000,
    dataset: str = "imagenet",
    probe_batch_size: int = 100,
    weight_decay: float = 0.0,
    image_size: int | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
    out_dir: str = "results/vision",
    num_workers: int | None = None,
    device: str = "auto",
    plugins: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the experiment and return the results (also written to results.json).

    Args:
        data_path: dataset directory (ImageNet: DIR/val/<wnid>/ or DIR/<wnid>/).
        weak_model_name: registered classifier giving the weak labels (alexnet).
        strong_model_name: registered embedder for the probe (resnet50_dino, vitb8_dino).
        batch_size: batch size of weak-label and embedding extraction.
        seed: seeds the train/test shuffle and the probe (init and batch order).
        n_epochs: probe training epochs.
        lr: initial Adam learning rate, cosine-annealed to 0 over all steps.
        n_train: images used to train the probe; the rest are the test set.
        dataset: registered dataset: imagenet or imagefolder.
        probe_batch_size: probe training batch size (100, as in the reference).
        weight_decay: Adam weight decay of the probe.
        image_size: centre-crop size; resize scales with it (default: 224, resize 256).
        cache_dir: embedding cache (default $W2S_VISION_CACHE or ~/.cache/weak_to_strong/vision).
        use_cache: read and write the embedding cache.
        out_dir: results go to OUT_DIR/<run name>/{config,results}.json.
        num_workers: DataLoader workers (default: min(8, CPUs)).
        device: auto (GPU if present), cpu, cuda or cuda:N (cuda uses every visible GPU).
        plugins: modules or .py files whose register(models, datasets) adds entries.
    """
    cfg = Config(
        data_path=str(data_path),
        weak_model_name=str(weak_model_name),
        strong_model_name=str(strong_model_name),
        batch_size=batch_size,
        seed=seed,
        n_epochs=n_epochs,
        lr=lr,
        n_train=n_train,
        dataset=str(dataset),
        probe_batch_size=probe_batch_size,
        weight_decay=weight_decay,
        image_size=image_size,
        cache_dir=None if cache_dir is None else str(cache_dir),
        use_cache=use_cache,
        out_dir=str(out_dir),
        num_workers=num_workers,
        device=str(device),
        plugins=normalize_plugins(plugins),
    )
    return run_experiment(cfg)


def check_flag_names(argv: Sequence[str]) -> None:
    """Unknown flags fail before any work: fire itself reports them only after main() has run."""
    valid = set(inspect.signature(main).parameters)
    unknown = []
    argv = list(argv)
    for arg in argv[:argv.index("--")] if "--" in argv else argv:  # after "--": fire's own flags (--trace, ...)
        if not arg.startswith("--") or arg == "--help":
            continue
        name = arg[2:].split("=", 1)[0].replace("-", "_")
        if name not in valid and not (name.startswith("no") and name[2:] in valid):
            unknown.append("--" + name)
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join(unknown)}; valid flags: "
                         f"{', '.join('--' + n for n in sorted(valid))}")


def cli(argv: Sequence[str] | None = None) -> int:
    """fire front end: user errors become ``error: ...`` on stderr and exit status 2."""
    import fire

    try:
        check_flag_names(sys.argv[1:] if argv is None else argv)
        # serialize: fire would otherwise print the returned results dict again.
        fire.Fire(main, command=None if argv is None else list(argv), name="run_weak_strong.py",
                  serialize=lambda _: None)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
