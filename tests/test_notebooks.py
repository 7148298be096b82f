"""Both plotting notebooks run headless (nbclient, kernel python3) on a toy sweep's results."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

from weak_to_strong.config import RunConfig
from weak_to_strong.experiment import configs_from_flags, run_weak_to_strong
from weak_to_strong.pipeline import run_train_simple
from weak_to_strong.sweep import plan_sweep, run_config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TOY = dict(ds_name="synthetic", n_docs=80, n_test_docs=40, batch_size=16)


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory) -> Path:
    """sweep.py's plan for toy-small,toy-large (in this process), then train_weak_to_strong.py for the pair,
    which reuses the sweep's runs and adds the logconf transfer run and the pair summary."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    folder = tmp_path_factory.mktemp("toy_sweep")
    base = RunConfig(epochs=1, results_folder=str(folder), **TOY)
    for run in plan_sweep(["toy-small", "toy-large"]):
        run_train_simple(run_config(base, run))
    w2s, base = configs_from_flags({"weak_model_size": "toy-small", "strong_model_size": "toy-large",
                                    "gt_epochs": 1, "results_folder": str(folder), **TOY})
    run_weak_to_strong(w2s, base)
    return folder


def execute(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def outputs(nb) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.mark.parametrize("name", ["Plotting", "Plotting_old"])
@pytest.mark.slow
def test_notebook_runs_on_a_toy_sweep(name, toy_results, monkeypatch):
    monkeypatch.setenv("RESULTS_PATH", str(toy_results))
    nb = execute(name)
    outs = outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outs) == 1  # one dataset: one figure
    tables = "".join(o["data"]["text/markdown"] for o in outs if "text/markdown" in o.get("data", {}))
    assert "| synthetic | toy-small | toy-large | logconf |" in tables
    assert "| synthetic | toy-small | toy-large | xent |" in tables
    assert "skipped" not in "".join(o.get("text", "") for o in outs)  # nothing unreadable in a clean sweep


@pytest.mark.parametrize("name", ["Plotting", "Plotting_old"])
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert sum("RESULTS_PATH =" in cell.source for cell in code) == 1  # set in exactly one cell
