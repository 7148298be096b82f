"""What a pretrained rung knows before any fine-tuning: held-out LM loss and zero-shot task accuracy.

Zero-shot, a task's document is completed by the LM; its answer is the label
whose words (north / south; warm / cool colours) get more next-token
probability. These numbers identify a build: rebuilding a rung must give them
again (tests/test_testbed.py).
"""

from __future__ import annotations

from random import Random

import torch

from weak_to_strong.batching import pad_batch
from weak_to_strong.model import last_token_index
from weak_to_strong.testbed import world
from weak_to_strong.testbed.pretrain import lm_loss, pack_rows

TASK_WORDS = {
    "testbed_knowledge": (world.VOTE_VALUES[:1], world.VOTE_VALUES[1:]),
    "testbed_binding": (world.WARM, world.COOL),
}
"""Per task: the words that mean label 1, and those that mean label 0."""


def task_rows(task: str) -> list[dict]:
    return world.knowledge_task_rows("test") if task == "testbed_knowledge" else world.binding_task_rows("test")


@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, rows: list[dict], words: tuple[tuple[str, ...], tuple[str, ...]],
                       batch_size: int = 256) -> float:
    vocab = tokenizer.get_vocab()
    positive = torch.tensor([vocab[w] for w in words[0]])
    negative = torch.tensor([vocab[w] for w in words[1]])
    model.eval()
    correct = 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids = tokenizer([r["txt"] for r in chunk])["input_ids"]
        input_ids, mask = pad_batch(ids, pad_id=0)
        logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
        last = logits[torch.arange(len(chunk)), last_token_index(mask)].softmax(-1)
        predicted = last[:, positive].sum(-1) > last[:, negative].sum(-1)
        correct += int((predicted == torch.tensor([r["hard_label"] for r in chunk]).bool()).sum())
    return correct / len(rows)


@torch.no_grad()
def heldout_loss(model, make_docs, n_rows: int = 64, row_len: int = 128, pad_id: int = 0) -> float:
    """Mean next-token loss on corpus documents the rung never trained on (their own rng)."""
    model.eval()
    batch = pack_rows(make_docs(Random("testbed-heldout"), n_rows * row_len // 24 + 8), n_rows, row_len, pad_id)
    return lm_loss(model, batch).item()


def evaluate_rung(model, tokenizer, make_docs, pad_id: int) -> dict:
    """Held-out LM loss and zero-shot accuracy on each task's test split."""
    out = {"heldout_loss": heldout_loss(model, make_docs, pad_id=pad_id)}
    for task, words in TASK_WORDS.items():
        out[f"{task}_zero_shot"] = zero_shot_accuracy(model, tokenizer, task_rows(task), words)
    return out
