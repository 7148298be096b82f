"""Shared fixtures: an isolated toy-model cache, quiet libraries, and small run configs."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def toy_cache(tmp_path_factory):
    """Build toy models once per session, into a private cache (never the user's)."""
    cache = os.environ.get("W2S_TEST_CACHE_DIR") or str(tmp_path_factory.mktemp("w2s_cache"))
    os.environ["W2S_CACHE_DIR"] = cache
    os.environ.pop("W2S_DATA_DIR", None)
    os.environ.pop("WANDB_PROJECT", None)
    from weak_to_strong.cli import quiet_libraries

    quiet_libraries()
    return cache


@pytest.fixture
def tiny_flags(tmp_path):
    """Flags for a toy run that trains in about a second."""
    return dict(model_size="toy-small", ds_name="synthetic", n_docs=200, n_test_docs=50, epochs=1,
                batch_size=16, results_folder=str(tmp_path / "results"))
