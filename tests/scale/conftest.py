"""Fixtures for the scale-out tests: runs in this process, and subprocesses that find the package offline.

The toy-model cache and quiet libraries come from tests/conftest.py (autouse).
"""

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


@pytest.fixture
def subprocess_env(monkeypatch) -> dict:
    """For runs in subprocesses (torchrun, sweep executors): the package on the path, offline, no bars.

    Set in os.environ too, since the executors hand their own environment on to the runs they start.
    """
    overrides = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
                 "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                 "TOKENIZERS_PARALLELISM": "false"}
    for key, value in overrides.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return dict(os.environ)


@pytest.fixture
def in_process(monkeypatch):
    """Run train_simple in this process: the single-process, one-after-another reference."""
    from weak_to_strong.config import RunConfig
    from weak_to_strong.pipeline import run_train_simple

    monkeypatch.delenv("WORLD_SIZE", raising=False)

    def run(**flags) -> dict:
        return run_train_simple(RunConfig(**flags))

    return run
