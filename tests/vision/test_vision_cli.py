"""The whole experiment end to end, with tiny registered models on synthetic images."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tiny_vision_models
from conftest import N_IMAGES
from vision.run_weak_strong import check_flag_names, cli, main

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "vision" / "run_weak_strong.py"
PLUGIN = Path(tiny_vision_models.__file__).resolve()


def expected_weak_acc(n_train: int, seed: int) -> float:
    """tiny_weak is right on every image but the yellow ones; the split is the reference's shuffle."""
    labels = np.repeat(np.arange(len(tiny_vision_models.CLASSES)), N_IMAGES // len(tiny_vision_models.CLASSES))
    order = np.arange(N_IMAGES)
    np.random.default_rng(seed).shuffle(order)
    return float(np.mean(labels[order[n_train:]] != tiny_vision_models.YELLOW))


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def list_cache_files(cache_dir: str | Path) -> list[Path]:
    return sorted(p for p in Path(cache_dir).rglob("*") if p.is_file())


def test_main_end_to_end(tiny_models, run_kwargs):
    returned = main(**run_kwargs)
    results_path = Path(returned["results_path"])
    config_path = Path(returned["config_path"])
    assert results_path.parent == config_path.parent
    assert results_path.parent.parent == Path(run_kwargs["out_dir"])
    results, config = read_json(results_path), read_json(config_path)
    assert results == returned

    n_epochs, n_train = run_kwargs["n_epochs"], run_kwargs["n_train"]
    assert results["n_train"] == n_train and results["n_test"] == N_IMAGES - n_train
    assert results["weak_acc"] == pytest.approx(expected_weak_acc(n_train, seed=0))
    assert results["weak_acc_all_images"] == pytest.approx(0.75)
    assert results["strong_ceiling_acc"] >= 0.95  # colours are linearly separable in tiny_strong's features
    assert results["agreement"] >= 0.9  # the student imitates its supervisor's yellow -> green mistake
    assert results["weak_to_strong_acc"] < results["strong_ceiling_acc"]
    expected_pgr = (results["weak_to_strong_acc"] - results["weak_acc"]) / (
        results["strong_ceiling_acc"] - results["weak_acc"]
    )
    assert results["pgr"] == pytest.approx(expected_pgr)
    assert results["n_steps"] == n_epochs * math.ceil(n_train / run_kwargs["probe_batch_size"])

    by_epoch = results["by_epoch"]
    for key in ("weak_to_strong_acc", "strong_ceiling_acc", "pgr", "agreement", "ceiling_agreement"):
        assert len(by_epoch[key]) == n_epochs, key
    assert by_epoch["weak_to_strong_acc"][-1] == results["weak_to_strong_acc"]
    assert by_epoch["strong_ceiling_acc"][-1] == results["strong_ceiling_acc"]
    assert by_epoch["agreement"][-1] == results["agreement"]

    for flag, value in run_kwargs.items():
        assert config[flag] == value, flag
    derived = config["derived"]
    assert derived["n_images"] == N_IMAGES and derived["n_classes"] == 4
    assert derived["n_test"] == N_IMAGES - n_train
    assert derived["device"] == "cpu" and derived["precision"] == "fp32"
    assert set(derived["caches"]) == {"tiny_weak", "tiny_strong"}
    assert all(Path(p).is_file() for p in derived["caches"].values())
    assert tiny_models == {"tiny_weak": 1, "tiny_strong": 1}


def test_second_run_reuses_cached_embeddings(tiny_models, run_kwargs, monkeypatch):
    first = main(**run_kwargs)
    cached = list_cache_files(run_kwargs["cache_dir"])
    assert len(cached) == 2 and all(p.suffix == ".pt" for p in cached)  # atomic writes leave no tmp files
    assert tiny_models == {"tiny_weak": 1, "tiny_strong": 1}

    import vision.embed

    def fail(*args, **kwargs):
        raise AssertionError("the embedding pass ran despite a cache hit")

    monkeypatch.setattr(vision.embed, "compute_features", fail)
    second = main(**{**run_kwargs, "lr": 5e-3, "seed": 1, "n_train": 100, "probe_batch_size": 32})
    assert tiny_models == {"tiny_weak": 1, "tiny_strong": 1}  # no model was even loaded
    assert list_cache_files(run_kwargs["cache_dir"]) == cached
    assert second["results_path"] != first["results_path"]
    assert second["weak_acc_all_images"] == first["weak_acc_all_images"]
    assert second["weak_acc"] == pytest.approx(expected_weak_acc(100, seed=1))
    assert second["strong_ceiling_acc"] >= 0.95
    assert read_json(second["results_path"])["n_train"] == 100


def test_cache_is_keyed_by_preprocessing_and_can_be_bypassed(tiny_models, run_kwargs):
    main(**run_kwargs)
    main(**{**run_kwargs, "image_size": 24})  # other crop: other embeddings
    assert tiny_models == {"tiny_weak": 2, "tiny_strong": 2}
    assert len(list_cache_files(run_kwargs["cache_dir"])) == 4
    main(**{**run_kwargs, "use_cache": False})
    assert tiny_models == {"tiny_weak": 3, "tiny_strong": 3}
    assert len(list_cache_files(run_kwargs["cache_dir"])) == 4


def test_corrupt_cache_is_recomputed(tiny_models, run_kwargs):
    main(**run_kwargs)
    for path in list_cache_files(run_kwargs["cache_dir"]):
        path.write_bytes(b"truncated")
    results = main(**run_kwargs)
    assert tiny_models == {"tiny_weak": 2, "tiny_strong": 2}
    assert results["weak_acc_all_images"] == pytest.approx(0.75)
    main(**run_kwargs)  # and the rewritten cache is good again
    assert tiny_models == {"tiny_weak": 2, "tiny_strong": 2}


def test_cache_dir_defaults_to_env_override(tiny_models, run_kwargs, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_VISION_CACHE", str(tmp_path / "env_cache"))
    main(**{**run_kwargs, "cache_dir": None})
    assert len(list_cache_files(tmp_path / "env_cache")) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"data_path": "/no/such/dir"}, r"data_path '/no/such/dir' does not exist"),
        ({"weak_model_name": "tiny_wek"}, r"unknown model 'tiny_wek'; valid names: .*tiny_weak"),
        ({"strong_model_name": "vitb16_dino"}, r"unknown model 'vitb16_dino'; valid names: .*vitb8_dino"),
        ({"weak_model_name": "tiny_strong"}, r"weak model 'tiny_strong' is an embedder"),
        ({"strong_model_name": "tiny_weak"}, r"strong model 'tiny_weak' is a classifier"),
        ({"n_train": N_IMAGES}, rf"n_train={N_IMAGES} must be smaller than the dataset size {N_IMAGES}"),
        ({"n_train": 10**6}, rf"n_train=1000000 must be smaller than the dataset size {N_IMAGES}"),
        ({"n_train": 0}, r"n_train must be an integer >= 1, got 0"),
        ({"lr": 0.0}, r"lr must be a number > 0"),
        ({"n_epochs": 0}, r"n_epochs must be an integer >= 1"),
        ({"dataset": "cifar10"}, r"unknown dataset 'cifar10'"),
        ({"weak_model_name": "alexnet"}, r"weak model 'alexnet' predicts 1000 classes but .* has 4 class folders"),
        ({"dataset": "imagenet"}, r"dataset 'imagenet' expects 1000 class folders"),
        ({"plugins": "no_such_plugin_module"}, r"cannot import plugin 'no_such_plugin_module'"),
        ({"device": "tpu:7"}, r"device"),
    ],
)
def test_bad_input_fails_fast(tiny_models, run_kwargs, override, message):
    with pytest.raises(ValueError, match=message):
        main(**{**run_kwargs, **override})
    assert tiny_models == {"tiny_weak": 0, "tiny_strong": 0}  # before any model was loaded
    assert not Path(run_kwargs["out_dir"]).exists()


def test_missing_dependency_fails_before_embedding(tiny_models, run_kwargs, monkeypatch):
    import dataclasses

    from vision.models import MODELS

    monkeypatch.setitem(MODELS, "tiny_strong", dataclasses.replace(MODELS["tiny_strong"], requires=("not_a_real_mod",)))
    with pytest.raises(ValueError, match=r"model 'tiny_strong' needs not_a_real_mod"):
        main(**run_kwargs)
    assert tiny_models == {"tiny_weak": 0, "tiny_strong": 0}


def test_cli_reports_errors_on_one_line(tiny_models, run_kwargs, capsys):
    argv = [f"--{k}={v}" for k, v in {**run_kwargs, "n_train": 999}.items()]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: n_train=999 must be smaller than the dataset size 200")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_unknown_flag_fails_before_any_work(tiny_models, run_kwargs, capsys):
    argv = [f"--{k}={v}" for k, v in run_kwargs.items()] + ["--n_epoch=5"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown flag(s) --n_epoch; valid flags: ") and "--n_epochs" in err
    assert tiny_models == {"tiny_weak": 0, "tiny_strong": 0}  # no model was loaded
    assert not any(Path(run_kwargs["out_dir"]).rglob("*.json"))


def test_flags_after_the_separator_are_fires_own():
    check_flag_names(["--n_epochs=1", "--", "--trace"])
    with pytest.raises(ValueError, match=r"unknown flag\(s\) --trace"):
        check_flag_names(["--n_epochs=1", "--trace"])


def run_script(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "W2S_VISION_CACHE": str(tmp_path / "cache"), "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_script_runs_as_a_subprocess(color_images, tmp_path):
    common = [
        f"--data_path={color_images}",
        "--dataset=imagefolder",
        "--weak_model_name=tiny_weak",
        "--strong_model_name=tiny_strong",
        f"--plugins={PLUGIN}",
        "--device=cpu",
    ]
    proc = run_script(*common, "--n_train=120", "--n_epochs=3", "--lr=1e-2", "--probe_batch_size=16", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Weak→Strong accuracy" in proc.stdout and "PGR" in proc.stdout
    (results_path,) = (tmp_path / "results" / "vision").glob("*/results.json")  # default out_dir, under cwd
    results = read_json(results_path)
    config = read_json(results_path.parent / "config.json")
    assert results["weak_acc"] == pytest.approx(expected_weak_acc(120, seed=0))
    assert len(results["by_epoch"]["pgr"]) == 3
    assert config["n_epochs"] == 3 and config["batch_size"] == 128 and config["plugins"] == [str(PLUGIN)]
    assert config["derived"]["cache_dir"] == str(tmp_path / "cache")

    bad = run_script(*common, "--n_train=5000", tmp_path=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"error: n_train=5000 must be smaller than the dataset size {N_IMAGES} "
        f"({str(color_images)!r}) so that a test split remains"
    )
