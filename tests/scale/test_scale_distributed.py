"""Data-parallel training under torchrun (gloo on CPU) matches the single-process run.

Tolerance: the same accuracy and hard weak labels; soft weak labels and every
trained weight within 1e-5 (observed: about 3e-7 for weights, 6e-8 for labels).
The ranks see the same examples in differently composed minibatches, so only
float summation order differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from weak_to_strong import readers, results
from weak_to_strong.config import RunConfig
from weak_to_strong.distributed import DataParallel
from weak_to_strong.experiment import configs_from_flags, run_weak_to_strong

from scale_helpers import REPO, TINY_FLAGS

TOL = 1e-5


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("n,size", [(32, 8), (17, 8), (1, 4), (33, 16)])
def test_fixed_minibatches_dealt_to_ranks_are_disjoint_shares_in_step(world_size, n, size):
    """A fixed per-rank minibatch size: minibatches of size x ranks rows, each dealt out over the ranks."""
    indices = torch.randperm(100)[:n]
    chunks = list(torch.split(indices, size * world_size))
    shares = [DataParallel(rank=r, world_size=world_size).deal(chunks) for r in range(world_size)]
    assert len({len(parts) for parts in shares}) == 1  # every rank runs the same number of forward passes
    real = torch.cat([p.real for parts in shares for p in parts])
    assert sorted(real.tolist()) == sorted(indices.tolist())  # disjoint, and nothing left out
    assert all(0 < len(p.indices) <= size and p.n_real <= len(p.indices) for parts in shares for p in parts)
    if world_size == 1:
        assert [p.indices.tolist() for p in shares[0]] == [c.tolist() for c in torch.split(indices, size)]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_deal_gives_every_rank_one_part_per_planned_minibatch(world_size):
    """Automatic minibatches have uneven sizes; each is dealt out over the ranks, placeholders included."""
    chunks = list(torch.split(torch.randperm(40), [1, 7, 2, 12, 5, 13]))
    shares = [DataParallel(rank=r, world_size=world_size).deal(chunks) for r in range(world_size)]
    assert all(len(parts) == len(chunks) for parts in shares)
    for i, chunk in enumerate(chunks):
        real = torch.cat([parts[i].real for parts in shares])
        assert sorted(real.tolist()) == sorted(chunk.tolist())
        assert max(parts[i].n_real for parts in shares) - min(parts[i].n_real for parts in shares) <= 1


def run_dir(results_folder: Path, **flags) -> Path:
    return results.run_dir(RunConfig(**{**TINY_FLAGS, **flags, "results_folder": str(results_folder)}))


def assert_same_run(single: Path, parallel: Path) -> None:
    from datasets import load_from_disk
    from safetensors.torch import load_file

    one, many = readers.read_summary(single), readers.read_summary(parallel)
    assert many["accuracy"] == one["accuracy"]
    assert many == pytest.approx(one, abs=TOL)  # ECE and AUROC sum probabilities gathered in another order
    assert (single / results.WEAK_LABELS_DIR).exists() == (parallel / results.WEAK_LABELS_DIR).exists()
    if (single / results.WEAK_LABELS_DIR).exists():
        a = load_from_disk(str(single / results.WEAK_LABELS_DIR))
        b = load_from_disk(str(parallel / results.WEAK_LABELS_DIR))
        assert a["id"] == b["id"] and a["hard_label"] == b["hard_label"]  # gathered back in the original order
        assert torch.allclose(torch.tensor(a["soft_label"]), torch.tensor(b["soft_label"]), atol=TOL, rtol=0)
    wa, wb = load_file(single / results.MODEL_FILE), load_file(parallel / results.MODEL_FILE)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=TOL, rtol=0), name


@pytest.mark.slow
def test_two_process_torchrun_matches_single_process(tmp_path, subprocess_env, in_process):
    """DDP for xent and logconf (global-batch threshold) ground-truth runs, a logconf transfer run on the
    xent run's weak labels, and train_weak_to_strong; FSDP2 for logconf; DDP with automatic (planned)
    minibatches against the single process's fixed ones. Only rank 0 prints and writes."""
    runs = [dict(loss="xent"), dict(loss="logconf"), dict(loss="logconf", weak_model_size="toy-small"),
            dict(loss="logconf", fsdp=True), dict(loss="logconf", minibatch_size_per_device=None)]
    folders = [tmp_path / "ddp"] * 3 + [tmp_path / "fsdp", tmp_path / "auto"]
    launch = [{**TINY_FLAGS, **run, "save_model": True, "results_folder": str(folder)}
              for run, folder in zip(runs, folders)]
    # train_weak_to_strong.py reuses the two stages above and adds an xent transfer run
    pair = dict({k: v for k, v in TINY_FLAGS.items() if k not in ("model_size", "epochs")}, gt_epochs=1,
                weak_model_size="toy-small", strong_model_size="toy-small", save_model=True)
    launch.append({"command": "train_weak_to_strong", **pair, "results_folder": str(tmp_path / "ddp")})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).with_name("distributed_driver.py")), json.dumps(launch)]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()  # rank 0 alone prints: each trained run and each stage once
    assert sum(line.startswith(str(tmp_path)) for line in lines) == len(runs) + 1
    assert sum(line.startswith("[3/4]") for line in lines) == 1 and proc.stdout.count("wrote ") == 1

    for run in runs[:3]:
        in_process(**TINY_FLAGS, **run, save_model=True, results_folder=str(tmp_path / "single"))
    w2s, base = configs_from_flags({**pair, "results_folder": str(tmp_path / "single")})
    single_pair = run_weak_to_strong(w2s, base)
    parallel_pair = json.loads(results.pair_summary_path(tmp_path / "ddp", "toy-small", "toy-small").read_text())
    for key in ("weak_acc", "strong_acc", "transfer_acc_xent", "transfer_acc_logconf"):
        assert parallel_pair[key] == single_pair[key], key
    for run, folder in zip(runs, folders):
        flags = {k: v for k, v in run.items() if k not in ("fsdp", "minibatch_size_per_device")}
        assert_same_run(run_dir(tmp_path / "single", **flags), run_dir(folder, **flags))
    assert sorted(p.name for p in (tmp_path / "ddp").rglob("*") if p.suffix == ".jsonl") == ["log.jsonl"] * 4


def test_fsdp_gives_each_dtype_its_own_group(tmp_path):
    """FSDP2 all-gathers one dtype per group: a bfloat16 backbone with float32 LoRA adapters and head trains."""
    pytest.importorskip("peft")
    import torch.distributed as dist
    from torch.distributed.fsdp import FSDPModule

    from weak_to_strong.distributed import shard_model
    from weak_to_strong.lora import add_lora
    from weak_to_strong.model import load_model
    from weak_to_strong.models import get_model_spec

    model = load_model(get_model_spec("toy-small"), torch.device("cpu"))
    model.backbone.to(torch.bfloat16)
    model = add_lora(model, rank=2)
    lora_dtypes = {p.dtype for n, p in model.named_parameters() if "lora_" in n}
    assert lora_dtypes == {torch.float32}  # peft keeps adapters in float32 on a bfloat16 model
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        shard_model(model, torch.device("cpu"))
        assert isinstance(model.score, FSDPModule) and isinstance(model, FSDPModule)
        ids = torch.tensor([[5, 6, 7, 8]])
        model(ids, torch.ones_like(ids)).sum().backward()
        assert model.score.weight.grad is not None
    finally:
        dist.destroy_process_group()


def test_fsdp_refuses_an_optimizer_that_cannot_step_sharded_parameters():
    from weak_to_strong.distributed import check_fsdp_optimizer

    check_fsdp_optimizer("adam")
    with pytest.raises(ValueError, match="--optim=adafactor cannot step FSDP's sharded parameters"):
        check_fsdp_optimizer("adafactor")
