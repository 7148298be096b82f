"""Layers run one way: the config and the analysis of results import neither torch nor the trainer.

Each check imports modules in a fresh interpreter (this test process has long imported torch) and reads
sys.modules there. The same check on the trainer must see torch, so a check that cannot see anything fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "datasets", "weak_to_strong.train")
"""What the light layers must not import: torch, Hugging Face datasets, the trainer."""
LIGHT_MODULES = ("weak_to_strong.config", "weak_to_strong.plot", "weak_to_strong.readers", "weak_to_strong.names",
                 "weak_to_strong.metrics")
"""Run configs (validated, named and resolved for a device kind) and the analysis of a results folder."""


def heavy_imports(*modules: str) -> list[str]:
    """The HEAVY modules that importing `modules` in a fresh interpreter loads."""
    code = (f"import importlib, json, sys\nfor m in {list(modules)!r}: importlib.import_module(m)\n"
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_layers_import_no_torch_and_no_trainer(module):
    assert heavy_imports(module) == []


def test_readers_import_nothing_of_the_package():
    """Analysis reads results JSON through readers.py alone: not even the run config comes with it."""
    code = ("import sys\nimport weak_to_strong.readers\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('weak_to_strong'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["weak_to_strong", "weak_to_strong.readers"]


def test_the_check_sees_torch_where_it_is_imported():
    assert {"torch", "weak_to_strong.train"} <= set(heavy_imports("weak_to_strong.train"))


def test_a_config_validates_and_resolves_without_torch():
    """Not just the import: building, naming and resolving a run for a device kind stays torch-free."""
    code = ("import sys\nfrom weak_to_strong.config import RunConfig, resolve_run\n"
            "from weak_to_strong.precision import CUDA_BF16\n"
            "run = resolve_run(RunConfig(model_size='gpt2', ds_name='sciq', loss='logconf'), CUDA_BF16, "
            "lambda model: 1024)\n"
            "assert run.config.precision == 'bf16', run.config\n"
            "print('torch' in sys.modules, 'datasets' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_name_lists_are_their_registries_keys():
    """names.py copies the names of registries whose modules import torch; a copy must not drift."""
    from weak_to_strong import names
    from weak_to_strong.loss import LOSSES

    assert names.LOSS_NAMES == tuple(LOSSES)
