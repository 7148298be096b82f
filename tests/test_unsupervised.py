import copy

import torch

from weak_to_strong import readers, results
from weak_to_strong.batching import Examples
from weak_to_strong.config import RunConfig
from weak_to_strong.model import load_causal_lm, load_tokenizer
from weak_to_strong.models import get_model_spec
from weak_to_strong.pipeline import run_train_simple
from weak_to_strong.unsupervised import causal_lm_loss, train_causal_lm

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the cat ran to the dog", "a bird sat on a tree"] * 4


def test_the_causal_lm_pass_lowers_the_lm_loss_on_the_texts_and_changes_the_backbone():
    spec = get_model_spec("toy-small")
    tokenizer = load_tokenizer(spec)
    examples = Examples(tokenizer(TEXTS)["input_ids"], torch.zeros(len(TEXTS), 2))
    lm = load_causal_lm(spec, torch.device("cpu"))
    before = copy.deepcopy(lm.base_model.state_dict())
    everything = torch.arange(len(TEXTS))
    with torch.no_grad():
        start = causal_lm_loss(lm, examples, everything, tokenizer.pad_token_id, "cpu", "fp32").item()
    losses = train_causal_lm(lm, examples, epochs=5, batch_size=8, minibatch_size=3, lr=3e-3, device="cpu",
                             pad_id=tokenizer.pad_token_id, seed=0)
    with torch.no_grad():
        end = causal_lm_loss(lm, examples, everything, tokenizer.pad_token_id, "cpu", "fp32").item()
    assert len(losses) == 10 and end < start - 0.5
    changed = [k for k, v in lm.base_model.state_dict().items() if not torch.equal(v, before[k])]
    assert "wte.weight" in changed and len(changed) > len(before) // 2


def test_a_transfer_run_with_unsupervised_fine_tuning_logs_the_pass_and_has_its_own_folder(tiny_flags):
    import json

    run_train_simple(RunConfig(**tiny_flags))
    plain = RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small"})
    tuned = RunConfig(**{**tiny_flags, "model_size": "toy-large", "weak_model_size": "toy-small", "unsup_epochs": 1})
    for cfg in (plain, tuned):
        run_train_simple(cfg)
    assert results.run_dir(tuned).name.endswith("-uft=1-weak=toy-small") and "uft" not in results.run_dir(plain).name
    records = [json.loads(line) for line in (results.run_dir(tuned) / "log.jsonl").read_text().splitlines()]
    lm_losses = [r["lm_loss"] for r in records if "lm_loss" in r]
    assert len(lm_losses) == 100 // 16  # one epoch over the 100 weak-labelled documents, full batches of 16
    prediction = [readers.read_predictions(results.run_dir(c))["prob"] for c in (plain, tuned)]
    assert prediction[0] != prediction[1]
