import json

import pytest
from datasets import Dataset, DatasetDict

from weak_to_strong.datasets import DATASETS, load_dataset, tokenize_dataset

SCIQ_ROWS = [
    {"question": f"What is {i}?", "correct_answer": f"right{i}", "distractor1": f"w1_{i}", "distractor2": f"w2_{i}",
     "distractor3": f"w3_{i}", "support": ""}
    for i in range(40)
]
BOOLQ_ROWS = [{"question": f"is it {i}", "passage": f"passage {i}", "answer": bool(i % 2)} for i in range(10)]
COSMOS_ROWS = [
    {"id": f"c{i}", "context": f"ctx {i}", "question": f"q {i}", "answer0": f"a0_{i}", "answer1": f"a1_{i}",
     "answer2": f"a2_{i}", "answer3": "None of the above choices ." if i == 0 else f"a3_{i}", "label": 3 if i == 0 else 1}
    for i in range(10)
]
HH_ROWS = [{"chosen": f"Human: hi {i} Assistant: kind", "rejected": f"Human: hi {i} Assistant: rude"} for i in range(10)]
AMAZON_ROWS = [{"label": i % 2, "title": f"title{i}", "content": f"content{i}"} for i in range(10)]


@pytest.fixture
def local_copies(tmp_path):
    """One local copy per dataset, in the hub's schema, in each supported storage format."""
    Dataset.from_list(SCIQ_ROWS).to_parquet(str(tmp_path / "sciq_train.parquet"))
    (tmp_path / "sciq").mkdir()
    for split in ("train", "test"):
        Dataset.from_list(SCIQ_ROWS).to_parquet(str(tmp_path / "sciq" / f"{split}.parquet"))
    (tmp_path / "boolq").mkdir()
    for split in ("train", "validation"):
        with open(tmp_path / "boolq" / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in BOOLQ_ROWS)
    (tmp_path / "cosmos_qa").mkdir()
    for split in ("train", "validation"):
        (tmp_path / "cosmos_qa" / f"{split}.json").write_text("\n".join(json.dumps(r) for r in COSMOS_ROWS))
    DatasetDict({"train": Dataset.from_list(HH_ROWS), "test": Dataset.from_list(HH_ROWS)}).save_to_disk(
        str(tmp_path / "anthropic_hh"))
    (tmp_path / "amazon_polarity").mkdir()
    for split in ("train", "test"):
        Dataset.from_list(AMAZON_ROWS).to_parquet(str(tmp_path / "amazon_polarity" / f"{split}.parquet"))
    return tmp_path


def by_id(ds):
    return {row["id"]: row for row in ds}


def check_common_schema(ds):
    for row in ds:
        assert row["hard_label"] in (0, 1)
        assert row["soft_label"] == [1.0 - row["hard_label"], float(row["hard_label"])]


def test_sciq_formats_question_and_true_or_distractor_answer(local_copies):
    ds = load_dataset("sciq", seed=0, data_dir=str(local_copies))["train"]
    check_common_schema(ds)
    labels = []
    for i, row in by_id(ds).items():
        src = SCIQ_ROWS[i]
        prefix = f"Q: {src['question']} A: "
        assert row["txt"].startswith(prefix)
        answer = row["txt"][len(prefix):]
        if row["hard_label"]:
            assert answer == src["correct_answer"]
        else:
            assert answer in (src["distractor1"], src["distractor2"], src["distractor3"])
        labels.append(row["hard_label"])
    assert 5 < sum(labels) < 35  # roughly balanced coin


def test_boolq_cosmos_hh_amazon_formatters(local_copies):
    d = str(local_copies)
    boolq = by_id(load_dataset("boolq", data_dir=d)["test"])
    assert boolq[3]["txt"] == "Passage: passage 3\nQuestion: is it 3" and boolq[3]["hard_label"] == 1
    cosmos = by_id(load_dataset("cosmos_qa", data_dir=d)["test"])
    assert cosmos[0]["hard_label"] == 0  # "None of the above" as the truth is always shown as a negative
    for i, row in cosmos.items():
        assert row["txt"].startswith(f"Context: ctx {i}\nQuestion: q {i}\nAnswer: ")
        assert row["txt"].endswith(f"a1_{i}") == bool(row["hard_label"])
    hh = by_id(load_dataset("anthropic_hh", data_dir=d)["train"])
    for i, row in hh.items():
        assert row["txt"] == (HH_ROWS[i]["chosen"] if row["hard_label"] else HH_ROWS[i]["rejected"])
    amazon = by_id(load_dataset("amazon_polarity", data_dir=d)["train"])
    assert amazon[4]["txt"] == "title4 content4" and amazon[4]["hard_label"] == 0
    for ds in (boolq, cosmos, hh, amazon):
        check_common_schema(ds.values())


def test_same_seed_same_rows_other_seed_other_order(local_copies):
    d = str(local_copies)
    a = load_dataset("sciq", seed=1, split_sizes={"train": 20}, data_dir=d)["train"]
    b = load_dataset("sciq", seed=1, split_sizes={"train": 20}, data_dir=d)["train"]
    c = load_dataset("sciq", seed=2, split_sizes={"train": 20}, data_dir=d)["train"]
    assert a.to_list() == b.to_list()
    assert a["id"] != c["id"]
    assert len(a) == 20


def test_environment_variable_selects_local_copies(local_copies, monkeypatch):
    monkeypatch.setenv("W2S_DATA_DIR", str(local_copies))
    assert len(load_dataset("boolq")["train"]) == 10


def test_missing_local_paths_raise(tmp_path, local_copies):
    with pytest.raises(ValueError, match="does-not-exist.*does not exist"):
        load_dataset("sciq", data_dir=str(tmp_path / "does-not-exist"))
    with pytest.raises(ValueError, match="local data directory .*cosmos_qa.* does not exist"):
        load_dataset("cosmos_qa", data_dir=str(tmp_path / "sciq"))
    with pytest.raises(ValueError, match="unknown dataset 'imdb'.*sciq"):
        load_dataset("imdb")


def test_registry_has_every_dataset():
    assert set(DATASETS) == {"amazon_polarity", "sciq", "anthropic_hh", "cosmos_qa", "boolq", "synthetic",
                             "testbed_knowledge", "testbed_binding"}


def test_synthetic_is_balanced_fixed_and_offline():
    a = load_dataset("synthetic", seed=0, split_sizes={"train": 2000, "test": 100})
    b = load_dataset("synthetic", seed=0, split_sizes={"train": 2000, "test": 100})
    assert a["train"].to_list() == b["train"].to_list()
    assert 0.4 < sum(a["train"]["hard_label"]) / 2000 < 0.6
    assert len(set(a["train"]["id"])) == 2000
    assert any(t.split().count("not") for t in a["test"]["txt"])  # negations: what separates toy sizes


def test_tokenize_filters_by_max_ctx():
    from weak_to_strong.model import load_tokenizer
    from weak_to_strong.models import get_model_spec

    tokenizer = load_tokenizer(get_model_spec("toy-small"))
    ds = Dataset.from_list([{"txt": "good"}, {"txt": "the movie was not good and the plot was dull"}])
    out = tokenize_dataset(ds, tokenizer, max_ctx=3)
    assert out["txt"] == ["good"]
    assert out["input_ids"][0] == tokenizer("good")["input_ids"]

    # The reference keeps len(input_ids) < max_ctx: a document of exactly max_ctx tokens is dropped.
    n = len(tokenizer("good")["input_ids"])
    assert tokenize_dataset(ds, tokenizer, max_ctx=n)["txt"] == []
    assert tokenize_dataset(ds, tokenizer, max_ctx=n + 1)["txt"] == ["good"]
