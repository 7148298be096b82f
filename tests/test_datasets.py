import json
from random import Random

import pytest
from datasets import Dataset, DatasetDict, ReadInstruction
from hub_rows import HUB_ROWS

from weak_to_strong.datasets import DATASETS, CoinFlip, load_dataset, split_names, tokenize_dataset

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


PAPER_TASKS = ("boolq", "cosmos_qa", "dream", "ethics_justice", "ethics_deontology", "ethics_virtue",
               "ethics_utilitarianism", "anli_r2", "cola", "sst2", "hellaswag", "mc_taco", "openbookqa", "paws",
               "quail", "piqa", "quartz", "sciq", "social_i_qa", "multirc", "wic", "twitter_sentiment")
REFERENCE_TASKS = ("amazon_polarity", "sciq", "anthropic_hh", "cosmos_qa", "boolq")
BUILT_IN = ("synthetic", "testbed_knowledge", "testbed_binding")
HUB_DATASETS = [name for name, spec in DATASETS.items() if spec.generator is None]


def test_registry_has_every_dataset():
    assert len(PAPER_TASKS) == 22
    assert set(DATASETS) == set(PAPER_TASKS) | set(REFERENCE_TASKS) | set(BUILT_IN)
    assert set(HUB_ROWS) == set(HUB_DATASETS)  # every hub dataset has a fixture row below


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

# ---------------------------------------------------------------- formatters, on their hub schema

GOLDEN = {  # (dataset, seed): (txt, hard_label). Coin flips: seed 0 draws a negative, seed 1 a positive.
    ("amazon_polarity", 0): ("Great kettle Boils water fast.", 1),
    ("sciq", 0): ("Q: What gas do plants absorb? A: helium", 0),
    ("sciq", 1): ("Q: What gas do plants absorb? A: carbon dioxide", 1),
    ("anthropic_hh", 0): ("\n\nHuman: Hi\n\nAssistant: Go away.", 0),
    ("anthropic_hh", 1): ("\n\nHuman: Hi\n\nAssistant: Hello, how can I help?", 1),
    ("cosmos_qa", 0): ("Context: I missed the bus.\nQuestion: Why was I late?\nAnswer: I walked .", 0),
    ("cosmos_qa", 1): ("Context: I missed the bus.\nQuestion: Why was I late?\nAnswer: The bus left early .", 1),
    ("boolq", 0): ("Passage: The sky looks blue by day.\nQuestion: is the sky blue", 1),
    ("dream", 0): ("M: Is the shop open?\nW: Yes, until nine.\nQuestion: When does the shop close?\nAnswer: At ten.", 0),
    ("dream", 1): ("M: Is the shop open?\nW: Yes, until nine.\nQuestion: When does the shop close?\nAnswer: At nine.",
                   1),
    ("ethics_justice", 0): ("Scenario: I deserve a raise because I worked extra hours.\n"
                            "Question: is this fair and reasonable?", 1),
    ("ethics_deontology", 0): ("Scenario: Could you walk the dog?\nExcuse: But the dog likes walks.\n"
                               "Question: is the excuse reasonable?", 0),
    ("ethics_virtue", 0): ("Sentence: She gave her lunch to a hungry stranger.\n"
                           "Question: does this show the trait \"generous\"?", 1),
    ("ethics_utilitarianism", 0): ("Situation A: I ate stale bread at the party.\nSituation B: I ate cake at the "
                                   "party.\nQuestion: is situation A more pleasant than situation B?", 0),
    ("ethics_utilitarianism", 1): ("Situation A: I ate cake at the party.\nSituation B: I ate stale bread at the "
                                   "party.\nQuestion: is situation A more pleasant than situation B?", 1),
    ("anli_r2", 0): ("Premise: The cat sleeps on the mat.\nHypothesis: An animal is resting.\n"
                     "Question: does the premise entail the hypothesis?", 1),
    ("cola", 0): ("Sentence: The book was read by Sam.\nQuestion: is this sentence grammatical?", 1),
    ("sst2", 0): ("a gorgeous, witty film", 1),
    ("hellaswag", 0): ("Context: A man puts a tray in the oven. He\nContinuation: paints the tray blue.", 0),
    ("hellaswag", 1): ("Context: A man puts a tray in the oven. He\nContinuation: closes the door.", 1),
    ("mc_taco", 0): ("He boiled an egg.\nQuestion: How long did it take?\nAnswer: ten minutes", 1),
    ("openbookqa", 0): ("Question: Which of these conducts electricity?\nAnswer: a rubber band", 0),
    ("openbookqa", 1): ("Question: Which of these conducts electricity?\nAnswer: a copper wire", 1),
    ("paws", 0): ("Sentence 1: The river flows north.\nSentence 2: North is where the river flows.\n"
                  "Question: do both sentences mean the same thing?", 1),
    ("quail", 0): ("Context: Tom lost his keys at the park.\nQuestion: Where did Tom lose his keys?\nAnswer: at school",
                   0),
    ("quail", 1): ("Context: Tom lost his keys at the park.\nQuestion: Where did Tom lose his keys?\n"
                   "Answer: at the park", 1),
    ("piqa", 0): ("Goal: Open a stuck jar.\nSolution: Freeze the jar.", 0),
    ("piqa", 1): ("Goal: Open a stuck jar.\nSolution: Twist the lid under hot water.", 1),
    ("quartz", 0): ("Passage: Longer wires have more resistance.\nQuestion: A longer wire has a resistance that is\n"
                    "Answer: smaller", 0),
    ("quartz", 1): ("Passage: Longer wires have more resistance.\nQuestion: A longer wire has a resistance that is\n"
                    "Answer: greater", 1),
    ("social_i_qa", 0): ("Context: Jan shared her umbrella with Sam.\nQuestion: How would Sam feel?\nAnswer: bored", 0),
    ("social_i_qa", 1): ("Context: Jan shared her umbrella with Sam.\nQuestion: How would Sam feel?\nAnswer: grateful",
                         1),
    ("multirc", 0): ("Passage: Mia bought apples and pears.\nQuestion: What did Mia buy?\nAnswer: apples", 1),
    ("wic", 0): ("Sentence 1: She sat on the river bank.\nSentence 2: He robbed the bank.\n"
                 "Question: is \"bank\" used in the same sense in both sentences?", 0),
    ("twitter_sentiment", 0): ("loving this sunny day", 1),
}


@pytest.mark.parametrize("name, seed", sorted(GOLDEN))
def test_formatter_golden_example(name, seed):
    txt, label = GOLDEN[name, seed]
    assert DATASETS[name].formatter(dict(HUB_ROWS[name]), Random(seed)) == {"txt": txt, "hard_label": label}


def test_every_hub_formatter_has_a_golden_example_and_every_coin_flip_both_labels():
    for name in HUB_DATASETS:
        labels = {label for (ds, _), (_, label) in GOLDEN.items() if ds == name}
        assert labels == ({0, 1} if isinstance(DATASETS[name].formatter, CoinFlip) else labels) and labels, name


def test_label_variants_of_the_hub_schemas():
    """Labels stored as text or counted from 1, booleans, and classes folded into two."""
    hellaswag = {**HUB_ROWS["hellaswag"], "label": "3"}
    assert DATASETS["hellaswag"].formatter(hellaswag, Random(1))["txt"].endswith("Continuation: flies away.")
    siqa = {**HUB_ROWS["social_i_qa"], "label": "3"}
    assert DATASETS["social_i_qa"].formatter(siqa, Random(1))["txt"].endswith("Answer: bored")
    for anli_label, hard_label in ((0, 1), (1, 0), (2, 0)):
        row = {**HUB_ROWS["anli_r2"], "label": anli_label}
        assert DATASETS["anli_r2"].formatter(row, Random(0))["hard_label"] == hard_label
    quartz = {**HUB_ROWS["quartz"], "answerKey": "B"}
    assert DATASETS["quartz"].formatter(quartz, Random(1))["txt"].endswith("Answer: smaller")


def shown_without_candidates(name: str, txt: str) -> str:
    """The text with every candidate answer of the row blanked out."""
    right, wrong = DATASETS[name].formatter.candidates(dict(HUB_ROWS[name]))
    for candidate in sorted({c for c in [right, *wrong] if c}, key=len, reverse=True):
        txt = txt.replace(candidate, "<candidate>")
    return txt


@pytest.mark.parametrize("name", [n for n in HUB_DATASETS if isinstance(DATASETS[n].formatter, CoinFlip)])
def test_coin_flip_positives_and_negatives_differ_only_in_the_candidate_shown(name):
    """The leak guard: a peer's openbookqa showed the answer letter for positives and the answer text for
    negatives, so the label was readable from the form. Here both must read alike once the candidates are
    blanked out, and each must show a candidate of the right kind."""
    spec = DATASETS[name]
    right, wrong = spec.formatter.candidates(dict(HUB_ROWS[name]))
    shown = {0: set(), 1: set()}
    for seed in range(40):
        row = spec.formatter(dict(HUB_ROWS[name]), Random(seed))
        shown[row["hard_label"]].add(row["txt"])
    assert shown[0] and shown[1], "the coin never came up both ways"
    skeletons = {shown_without_candidates(name, txt) for txts in shown.values() for txt in txts}
    assert len(skeletons) == 1, f"positives and negatives are told apart by their form: {skeletons}"
    assert all(right in txt for txt in shown[1])
    assert all(any(w in txt for w in wrong) for txt in shown[0])
    assert len(skeletons.pop().split("<candidate>")) > 1


def test_the_leak_guard_catches_a_letter_for_positives():
    """The guard itself, on the peer's openbookqa bug: letter for positives, text for negatives."""
    row = HUB_ROWS["openbookqa"]

    def leaky(label: int) -> str:
        return f"Question: {row['question_stem']}\nAnswer: " + ("A" if label else "a wooden spoon")

    assert shown_without_candidates("openbookqa", leaky(1)) != shown_without_candidates("openbookqa", leaky(0))


# ---------------------------------------------------------------- the hub call and the split mapping

@pytest.mark.parametrize("name", HUB_DATASETS)
def test_the_hub_call_gets_the_registrys_id_config_revision_and_split(name, monkeypatch):
    import datasets

    calls, rows = [], [dict(HUB_ROWS[name])] * 4

    def fake_load_dataset(path, config=None, split=None, revision=None, **kwargs):
        calls.append((path, config, split, revision, kwargs))
        return Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load_dataset(name, balance=False)
    spec = DATASETS[name]
    assert calls == [(spec.hub_id, spec.hub_config, spec.source_split(split), spec.revision, {})
                     for split in ("train", "test")]
    assert len(splits["train"]) == len(splits["test"]) == 4


def test_a_hub_failure_is_one_line_saying_what_was_asked_and_how_to_work_offline(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'Rowan/hellaswag' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ValueError, match=r"^cannot load Rowan/hellaswag \(config None, revision default, split "
                                         r"'train'\) from the hub: ConnectionError: Couldn't reach .*\. Without "
                                         r"internet, fetch a local copy .*--data_dir=DIR$") as e:
        load_dataset("hellaswag")
    assert "\n" not in str(e.value)


def test_script_based_hub_datasets_load_from_the_parquet_conversion():
    for name in ("cosmos_qa", "piqa", "mc_taco", "dream"):
        assert DATASETS[name].revision == "refs/convert/parquet"
    assert all(spec.revision in (None, "refs/convert/parquet") for spec in DATASETS.values())


DOCUMENTED_SIZES = {  # rows per hub split, from the dataset cards: the test sets are held out and >= 1,000 rows
    "amazon_polarity": {"train": 3600000, "test": 400000}, "sciq": {"train": 11679, "test": 1000},
    "anthropic_hh": {"train": 160800, "test": 8552}, "cosmos_qa": {"train": 25262, "validation": 2985},
    "boolq": {"train": 9427, "validation": 3270}, "dream": {"train": 6116, "test": 2041},
    "ethics_justice": {"train": 21791, "test": 2052}, "ethics_deontology": {"train": 18164, "test": 3536},
    "ethics_virtue": {"train": 28245, "test": 4780}, "ethics_utilitarianism": {"train": 13737, "test": 4271},
    "anli_r2": {"train_r2": 45460, "test_r2": 1000}, "cola": {"train": 8551, "validation": 1043},
    "sst2": {"train": 67349, "validation": 872}, "hellaswag": {"train": 39905, "validation": 10042},
    "mc_taco": {"test": 9442, "validation": 3783}, "openbookqa": {"train": 4957, "test": 500, "validation": 500},
    "paws": {"train": 49401, "test": 8000}, "quail": {"train": 10246, "validation": 2164},
    "piqa": {"train": 16113, "validation": 1838}, "quartz": {"train": 2696, "test": 784, "validation": 384},
    "social_i_qa": {"train": 33410, "validation": 1954}, "multirc": {"train": 27243, "validation": 4848},
    "wic": {"train": 5428, "validation": 638}, "twitter_sentiment": {"train": 1570000, "test": 10000},
}


def absolute_rows(expr: str, sizes: dict) -> set[tuple[str, int]]:
    return {(part.splitname, row) for part in ReadInstruction.from_spec(expr).to_absolute(sizes)
            for row in range(part.from_, part.to)}


def row_ranges(expr: str, sizes: dict) -> list[tuple[str, int, int]]:
    """(hub split, first row, end) per part: amazon_polarity's 3.6 M rows as ranges, not a set of rows."""
    return [(part.splitname, part.from_, part.to) for part in ReadInstruction.from_spec(expr).to_absolute(sizes)]


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_test_sets_are_held_out_and_hold_at_least_1000_documents(name):
    spec, sizes = DATASETS[name], DOCUMENTED_SIZES[name]
    train, test = (row_ranges(spec.source_split(split), sizes) for split in ("train", "test"))
    overlap = sum(max(0, min(b_end, t_end) - max(b, t)) for split, b, b_end in train
                  for test_split, t, t_end in test if split == test_split)
    assert overlap == 0, "a document in both train and test"
    n_train, n_test = (sum(end - start for _, start, end in ranges) for ranges in (train, test))
    assert n_test >= 1000 and n_train > n_test


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_each_split_reads_the_hub_splits_the_registry_maps_it_to(name, tmp_path):
    """A local copy with a different number of rows per hub split: our split sizes tell which were read."""
    spec = DATASETS[name]
    sizes = {split: 3 + 2 * i for i, split in enumerate(spec.hub_splits())}
    (tmp_path / name).mkdir()
    for split, n in sizes.items():
        Dataset.from_list([dict(HUB_ROWS[name])] * n).to_parquet(str(tmp_path / name / f"{split}.parquet"))
    if any("[" in spec.source_split(s) for s in ("train", "test")):
        sizes = {split: 450 for split in sizes}  # room for the slices (train[:400] and the like)
        for split in sizes:
            Dataset.from_list([dict(HUB_ROWS[name])] * 450).to_parquet(str(tmp_path / name / f"{split}.parquet"))
    splits = load_dataset(name, data_dir=str(tmp_path), balance=False)
    for split in ("train", "test"):
        assert len(splits[split]) == len(absolute_rows(spec.source_split(split), sizes)), split


def test_sliced_splits_take_the_rows_they_name(tmp_path):
    """sst2: test = validation + train[:200], train = train[200:]; ids index the combined split."""
    (tmp_path / "sst2").mkdir()
    Dataset.from_list([{"idx": i, "sentence": f"train {i}", "label": i % 2} for i in range(250)]).to_parquet(
        str(tmp_path / "sst2" / "train.parquet"))
    Dataset.from_list([{"idx": i, "sentence": f"validation {i}", "label": i % 2} for i in range(10)]).to_parquet(
        str(tmp_path / "sst2" / "validation.parquet"))
    splits = load_dataset("sst2", data_dir=str(tmp_path), balance=False)
    assert sorted(splits["train"]["txt"]) == sorted(f"train {i}" for i in range(200, 250))
    test = by_id(splits["test"])
    assert len(test) == 210
    assert test[3]["txt"] == "validation 3" and test[10]["txt"] == "train 0" and test[209]["txt"] == "train 199"
    assert split_names("validation+train[:200]") == ["validation", "train"]


# ---------------------------------------------------------------- balancing

def write_boolq(root, answers: list[bool], split_names=("train", "validation")) -> None:
    (root / "boolq").mkdir(parents=True, exist_ok=True)
    rows = [{"question": f"q{i}", "passage": f"p{i}", "answer": a} for i, a in enumerate(answers)]
    for split in split_names:
        Dataset.from_list(rows).to_parquet(str(root / "boolq" / f"{split}.parquet"))


def test_balance_undersamples_the_majority_class(tmp_path):
    write_boolq(tmp_path, [True] * 30 + [False] * 10)
    d = str(tmp_path)
    unbalanced = load_dataset("boolq", data_dir=d)["train"]  # the reference's datasets: off by default
    assert len(unbalanced) == 40 and sum(unbalanced["hard_label"]) == 30
    every = load_dataset("boolq", data_dir=d, balance=True)["train"]
    assert len(every) == 20 and sum(every["hard_label"]) == 10  # all 10 negatives, 10 of the 30 positives
    some = load_dataset("boolq", data_dir=d, balance=True, split_sizes={"train": 9})["train"]
    assert len(some) == 9 and sorted(some["hard_label"]) == [0] * 5 + [1] * 4
    # The same documents whatever the request above what the split gives, so a run named after the count it
    # used (20) is the run that asked for more.
    again = load_dataset("boolq", data_dir=d, balance=True, split_sizes={"train": 20})["train"]
    assert again.to_list() == every.to_list()


def test_balance_defaults_come_from_the_registry():
    for name in REFERENCE_TASKS + BUILT_IN:
        assert DATASETS[name].balance is False, name
    for name in set(PAPER_TASKS) - set(REFERENCE_TASKS):
        assert DATASETS[name].balance is True, name


def test_only_the_testbeds_tasks_stratify_their_halves_by_default():
    assert {name for name, spec in DATASETS.items() if spec.stratify} == {"testbed_knowledge", "testbed_binding"}


def test_new_tasks_are_balanced_by_default(tmp_path):
    (tmp_path / "cola").mkdir()
    rows = [{"sentence": f"s{i}", "label": int(i < 7), "idx": i} for i in range(10)]
    for split in ("train", "validation"):
        Dataset.from_list(rows).to_parquet(str(tmp_path / "cola" / f"{split}.parquet"))
    test = load_dataset("cola", data_dir=str(tmp_path))["test"]
    assert sorted(test["hard_label"]) == [0, 0, 0, 1, 1, 1]


# ---------------------------------------------------------------- the two halves of the training documents

@pytest.mark.parametrize("n_zero, n_one", [(253, 247), (30, 10), (7, 0), (1, 2)])
def test_stratified_halves_have_the_reference_sizes_and_the_same_class_shares(n_zero, n_one):
    from weak_to_strong.datasets import split_in_halves

    labels = [0] * n_zero + [1] * n_one
    ds = Dataset.from_dict({"id": list(range(len(labels))), "hard_label": labels})
    first, second = split_in_halves(ds, seed=3, stratify=True)
    reference = ds.train_test_split(test_size=0.5, seed=3)
    assert (len(first), len(second)) == (len(reference["train"]), len(reference["test"]))
    assert sorted(list(first["id"]) + list(second["id"])) == list(range(len(labels)))  # disjoint, nothing lost
    for label, count in ((0, n_zero), (1, n_one)):
        assert abs(list(first["hard_label"]).count(label) - list(second["hard_label"]).count(label)) <= 1, (label, count)
    if n_zero > 20 and n_one > 5:  # each half shuffled, not class by class (chains cut it into slices)
        assert list(second["hard_label"]) != sorted(second["hard_label"])
    again = split_in_halves(ds, seed=3, stratify=True)
    assert list(again[0]["id"]) == list(first["id"]) and list(again[1]["id"]) == list(second["id"])  # fixed for a seed
    assert list(split_in_halves(ds, seed=4, stratify=True)[0]["id"]) != list(first["id"]) or len(ds) < 5


def test_unstratified_halves_are_the_references_split_and_can_differ_in_class_share():
    from weak_to_strong.datasets import split_in_halves

    labels = [i % 2 for i in range(500)]
    ds = Dataset.from_dict({"id": list(range(500)), "hard_label": labels})
    first, second = split_in_halves(ds, seed=8)
    reference = ds.train_test_split(test_size=0.5, seed=8)
    assert list(first["id"]) == list(reference["train"]["id"]) and list(second["id"]) == list(reference["test"]["id"])
    shares = [sum(list(half["hard_label"])) / len(half) for half in (first, second)]
    strat = [sum(list(half["hard_label"])) / len(half) for half in split_in_halves(ds, seed=8, stratify=True)]
    assert abs(shares[0] - shares[1]) > abs(strat[0] - strat[1]) == 0.0


# ---------------------------------------------------------------- malformed local copies

def write_jsonl(root, name: str, splits: tuple[str, ...], rows: list[dict]) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    for split in splits:
        with open(root / name / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def test_a_missing_column_is_one_line_naming_dataset_file_and_column(tmp_path):
    row = {k: v for k, v in HUB_ROWS["quail"].items() if k != "correct_answer_id"}
    write_jsonl(tmp_path, "quail", ("train", "validation"), [row])
    with pytest.raises(ValueError, match=r"^dataset 'quail' split 'train' \(.*/quail\), row 0: cannot be formatted "
                                         r"\(KeyError: no column 'correct_answer_id' in .*/quail/train\.jsonl; "
                                         r"it has: .*answers") as e:
        load_dataset("quail", data_dir=str(tmp_path))
    assert "\n" not in str(e.value)


def test_a_null_is_an_error_naming_the_column_and_row_not_the_text_none(tmp_path):
    rows = [dict(HUB_ROWS["boolq"]), {**HUB_ROWS["boolq"], "passage": None}]
    write_jsonl(tmp_path, "boolq", ("train", "validation"), rows)
    with pytest.raises(ValueError, match=r"dataset 'boolq' split 'train' .*, row 1: column 'passage' is empty "
                                         r"\(null\) in .*/boolq/train\.jsonl"):
        load_dataset("boolq", data_dir=str(tmp_path))
    candidates = {**HUB_ROWS["quail"], "answers": ["at the park", None, "at school", "not enough information"]}
    write_jsonl(tmp_path, "quail", ("train", "validation"), [candidates])
    with pytest.raises(ValueError, match=r"row 0: cannot be formatted \(ValueError: candidate None is not text\)"):
        load_dataset("quail", data_dir=str(tmp_path))


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_an_empty_file_is_an_empty_split_not_a_stopiteration(tmp_path, suffix):
    write_boolq(tmp_path, [True, False], split_names=("train",))
    (tmp_path / "boolq" / f"validation{suffix}").write_bytes(b"" if suffix != ".json" else b"\n")
    with pytest.raises(ValueError, match=r"dataset 'boolq' split 'validation' \(.*\) is empty \(.*validation"
                                         r"\.\w+\): no documents to train or test on"):
        load_dataset("boolq", data_dir=str(tmp_path))


def test_a_row_error_in_a_sliced_split_names_its_row_in_the_file(tmp_path):
    (tmp_path / "wic").mkdir()
    rows = [dict(HUB_ROWS["wic"]) for _ in range(450)]
    rows[401]["label"] = -1  # the hidden-label marker of the hub's test split
    for split in ("train", "validation"):
        Dataset.from_list(rows).to_parquet(str(tmp_path / "wic" / f"{split}.parquet"))
    with pytest.raises(ValueError, match=r"split 'train\[400:\]' .*, row 1: label -1 is not 0 or 1"):
        load_dataset("wic", data_dir=str(tmp_path), balance=False)
    rows[401]["word"] = None
    Dataset.from_list(rows).to_parquet(str(tmp_path / "wic" / "train.parquet"))
    with pytest.raises(ValueError, match=r"row 1: column 'word' is empty \(null\) in .*/wic/train\.parquet "
                                         r"\(its row 401\)"):
        load_dataset("wic", data_dir=str(tmp_path), balance=False)


def test_the_readme_table_lists_every_dataset_with_its_hub_id():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("### Datasets"):readme.index("### Models")]
    for name, spec in DATASETS.items():
        assert f"| `{name}` | " + (f"`{spec.hub_id}`" if spec.hub_id else "built in") in table, name
