"""--lora_rank: adapters on the backbone via peft, the head always trained, recorded in the results config."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from weak_to_strong import models, readers, results
from weak_to_strong.config import RunConfig, result_dict, with_defaults
from weak_to_strong.lora import LORA_TARGET_MODULES, add_lora
from weak_to_strong.model import load_model
from weak_to_strong.models import get_model_spec

from scale_helpers import TINY_FLAGS


def test_lora_trains_adapters_and_head_only():
    pytest.importorskip("peft")
    model = add_lora(load_model(get_model_spec("toy-small"), torch.device("cpu")), rank=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "score.weight" in trainable
    assert trainable - {"score.weight"} and all("lora_" in n for n in trainable - {"score.weight"})
    # every GPT-2 projection the table names got an adapter
    for module in LORA_TARGET_MODULES["gpt2"]:
        assert any(f".{module}.lora_A." in n for n in trainable), module


def test_lora_run_records_rank_and_keeps_base_weights(tmp_path, in_process):
    pytest.importorskip("peft")
    from safetensors.torch import load_file

    flags = dict(TINY_FLAGS, save_model=True, results_folder=str(tmp_path), lr=1e-2)
    in_process(**flags, lora_rank=4)
    in_process(**flags)
    lora_dir = results.run_dir(RunConfig(**flags, lora_rank=4))
    full_dir = results.run_dir(RunConfig(**flags))
    assert lora_dir != full_dir and "lora=4" in lora_dir.name and "lora=0" in full_dir.name
    assert json.loads((lora_dir / readers.CONFIG_FILE).read_text())["lora_rank"] == 4
    assert json.loads((full_dir / readers.CONFIG_FILE).read_text())["lora_rank"] == 0

    untrained = load_model(get_model_spec("toy-small"), torch.device("cpu")).state_dict()
    trained = load_file(lora_dir / results.MODEL_FILE)
    base = {k.replace("backbone.base_model.model.", "backbone.").replace(".base_layer.", "."): v
            for k, v in trained.items() if "lora_" not in k}
    for name, value in untrained.items():
        if name != "score.weight":
            assert torch.equal(base[name], value), f"{name} changed under LoRA"
    assert trained["score.weight"].abs().sum() > 0  # the zero-initialised head trained
    assert any(trained[k].abs().sum() > 0 for k in trained if "lora_B" in k)  # lora_B starts at zero too


def test_registry_can_make_lora_the_default(monkeypatch):
    spec = get_model_spec("toy-large")
    monkeypatch.setitem(models.MODELS, "toy-large", replace(spec, lora_rank=8))
    cfg = RunConfig(model_size="toy-large", ds_name="synthetic")
    assert with_defaults(cfg).lora_rank == 8
    assert result_dict(cfg)["lora_rank"] == 8
    assert with_defaults(replace(cfg, lora_rank=0)).lora_rank == 0  # the flag wins
    assert with_defaults(replace(cfg, linear_probe=True)).lora_rank == 0  # a probe trains only the head


@pytest.mark.parametrize("flags, match", [
    (dict(lora_rank=-1), "--lora_rank must be a non-negative integer"),
    (dict(lora_rank=1.5), "--lora_rank must be a non-negative integer"),
    (dict(lora_rank=4, linear_probe=True), "either --lora_rank or --linear_probe"),
])
def test_bad_lora_flags(flags, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(model_size="toy-small", ds_name="synthetic", **flags)
