"""Fixtures for the scale-out tests: offline, quiet, tiny toy runs, subprocesses that find the package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The tests import the package and scale_helpers.py next to this file, whatever pytest's import mode.
for path in (str(REPO), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory) -> str:
    """The toy model cache: $W2S_CACHE_DIR where set (built once per machine), else one per session."""
    return os.environ.get("W2S_CACHE_DIR") or str(tmp_path_factory.mktemp("w2s_cache"))


@pytest.fixture
def subprocess_env(toy_cache, monkeypatch) -> dict:
    """For runs in subprocesses (torchrun, sweeps): the package on the path, offline, no progress bars."""
    env = {**os.environ, "W2S_CACHE_DIR": toy_cache, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")]), "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # The executors pass their own environment on to the runs they start.
    for key in ("W2S_CACHE_DIR", "PYTHONPATH", "TQDM_DISABLE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                "TOKENIZERS_PARALLELISM"):
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture
def in_process(toy_cache, monkeypatch):
    """Run train_simple in this process (the single-process reference), quietly."""
    from weak_to_strong.cli import quiet_libraries
    from weak_to_strong.config import RunConfig
    from weak_to_strong.pipeline import run_train_simple

    monkeypatch.setenv("W2S_CACHE_DIR", toy_cache)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    quiet_libraries()

    def run(**flags) -> dict:
        return run_train_simple(RunConfig(**flags))

    return run
