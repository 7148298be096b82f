import pytest
import torch

from weak_to_strong.model import last_token_index, load_model, load_tokenizer
from weak_to_strong.models import MODELS, get_model_spec, pick_device, pick_dtype


@pytest.fixture(scope="module")
def toy():
    spec = get_model_spec("toy-small")
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, torch.device("cpu"))
    torch.manual_seed(0)
    torch.nn.init.normal_(model.score.weight)  # a zero head would make every pooling test pass trivially
    model.eval()
    return tokenizer, model


def test_last_token_index_from_mask_left_and_right_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert last_token_index(mask).tolist() == [2, 4, 4, 0]


def test_tokenizer_gets_a_pad_token(toy):
    tokenizer, _ = toy
    assert tokenizer.pad_token is not None
    assert tokenizer.pad_token_id == tokenizer.eos_token_id


def test_head_starts_at_zero():
    spec = get_model_spec("toy-small")
    model = load_model(spec, torch.device("cpu"))
    assert torch.count_nonzero(model.score.weight) == 0


def test_pooling_picks_last_real_token_even_when_it_is_bang(toy):
    tokenizer, model = toy
    ids = tokenizer("the plot was good!")["input_ids"]
    bang = tokenizer.convert_tokens_to_ids("!")
    assert ids[-1] == bang
    alone = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    # Pad with the "!" id itself: a pooler searching token ids would pick a padding position.
    padded = torch.tensor([ids + [bang] * 5])
    mask = torch.tensor([[1] * len(ids) + [0] * 5])
    torch.testing.assert_close(model(padded, mask), alone, rtol=1e-5, atol=1e-5)


def test_logits_do_not_change_with_extra_padding(toy):
    tokenizer, model = toy
    texts = ["a not bad film", "the movie was great and the cast was fine"]
    short = tokenizer(texts, padding=True, return_tensors="pt")
    long = tokenizer(texts, padding="max_length", max_length=40, return_tensors="pt")
    torch.testing.assert_close(
        model(short["input_ids"], short["attention_mask"]), model(long["input_ids"], long["attention_mask"]),
        rtol=1e-5, atol=1e-5,
    )


def test_linear_probe_trains_only_the_head():
    model = load_model(get_model_spec("toy-small"), torch.device("cpu"), linear_probe=True)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["score.weight"]


def test_model_registry_names_and_unknown_model(tmp_path):
    for name in ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "Qwen/Qwen-7B", "Qwen/Qwen2.5-0.5B",
                 "meta-llama/Llama-3.2-1B", "EleutherAI/pythia-160m", "toy-small", "toy-large"]:
        assert name in MODELS
    assert get_model_spec("someorg/some-model").name == "someorg/some-model"
    assert get_model_spec(str(tmp_path)).name == str(tmp_path)
    with pytest.raises(ValueError, match="unknown model 'gpt5'.*gpt2-medium"):
        get_model_spec("gpt5")


def test_cpu_runs_float32_and_device_is_picked_at_call_time():
    assert pick_dtype(get_model_spec("Qwen/Qwen2.5-0.5B"), torch.device("cpu")) == torch.float32
    assert isinstance(pick_device(), torch.device)


@pytest.mark.slow
def test_import_touches_no_cuda():
    import subprocess
    import sys

    code = (
        "import torch; torch.cuda.is_available = lambda: (_ for _ in ()).throw(RuntimeError('cuda queried'));"
        "import weak_to_strong.pipeline, weak_to_strong.sweep, weak_to_strong.cli"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
