"""Dataset registry: loading (hub or local copy), formatting, balancing, tokenization.

    from weak_to_strong.datasets import load_dataset
    splits = load_dataset("boolq", seed=0, split_sizes={"train": 2000, "test": 500})

Every dataset is formatted into rows with `txt`, `hard_label` (0/1),
`soft_label` ([1 - hard_label, hard_label]) and a stable `id` (the row's index
in its source split), so weak labels can always be traced back to their source.

A registry entry is data: the hub id, config and (where the default revision is
script-based, which `datasets` 4+ refuses to run) a pinned revision; which hub
split expression serves as our train and test set; and a formatter, whose
template is the documentation of what the model reads. Multiple-choice tasks
become binary by a seeded coin: the right candidate (label 1) or a random wrong
one (label 0), filled into the same template, so only the content tells them
apart (see `CoinFlip`).

Local copies: set `--data_dir=DIR` or the environment variable `W2S_DATA_DIR`.
`DIR/<ds_name>/` then holds the dataset in the hub's schema, either as a
`datasets` save_to_disk folder (a DatasetDict) or as one file per hub split:
`train.parquet`, `test.jsonl`, `validation.json`, ... `python -m weak_to_strong.data
fetch NAME --to=DIR` writes this layout (see weak_to_strong/data.py).

Hugging Face `datasets` is imported by the functions that build or read rows, not at import:
config.py reads the registry's specs, and analysis imports config.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Callable

from weak_to_strong.checks import check_binary_label

if TYPE_CHECKING:
    from datasets import Dataset

DATA_DIR_ENV = "W2S_DATA_DIR"
LOCAL_FILE_TYPES = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}
FETCH_RECORD = "fetch_record.json"
"""Written by `python -m weak_to_strong.data fetch` beside a local copy: hub id, config, revision, commit."""
PARQUET_EXPORT = "refs/convert/parquet"
"""The hub's automatic Parquet conversion of a repository: loads without running its loading script."""


# ---------------------------------------------------------------- formatters
# A formatter maps one source row (hub schema) and a seeded rng to {"txt", "hard_label"}, and names the
# columns it reads (`columns`), so a local copy without one of them, or with a null in one, fails with a
# message naming the column rather than a KeyError, or a model trained on the text "None".

ANSWER_FIELDS = ("answer", "other")
"""Template fields a CoinFlip fills itself: the candidate shown, and (two-candidate tasks) the one not shown."""


def template_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


@dataclass(frozen=True)
class Joined:
    """A list column as one text, e.g. the turns of a dialogue, one per line."""

    column: str
    sep: str = "\n"

    def __call__(self, ex: dict) -> str:
        return self.sep.join(ex[self.column])


@dataclass(frozen=True)
class Part:
    """One part of a column that packs several, e.g. ETHICS virtue's "sentence [SEP] trait"."""

    column: str
    sep: str
    index: int

    def __call__(self, ex: dict) -> str:
        parts = ex[self.column].split(self.sep)
        if len(parts) <= self.index:
            raise ValueError(f"column {self.column!r} has no {self.sep!r} separator: {ex[self.column]!r}")
        return parts[self.index].strip()


def fill(template: str, ex: dict, derived: tuple, **values) -> str:
    return template.format_map({**ex, **{name: get(ex) for name, get in derived}, **values})


def read_columns(template: str, derived: tuple, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The source columns a formatter reads: its template's fields (less the derived and answer fields),
    the columns derived fields come from, and `extra` (label or candidates)."""
    own = {name for name, _ in derived} | set(ANSWER_FIELDS)
    names = [f for f in template_fields(template) if f not in own] + [get.column for _, get in derived] + list(extra)
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Classify:
    """The label is a column of the row: `template` filled with the row's fields.

    hard_label is the `label` column (0/1 already), or, with `true_value`, whether it equals that
    value (ANLI: entailment, 0, is the positive class)."""

    template: str
    means: str
    """What label 1 says, for `python -m weak_to_strong.data list` and the README."""
    label: str = "label"
    true_value: object = None
    derived: tuple[tuple[str, Callable[[dict], str]], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return read_columns(self.template, self.derived, (self.label,))

    def __call__(self, ex: dict, rng: Random) -> dict:
        value = ex[self.label]
        # int() as the reference formatters did: a boolean or "1" counts; 2 or -1 (a hidden test label) is
        # refused by the 0/1 check afterwards.
        hard_label = int(value == self.true_value) if self.true_value is not None else int(value)
        return {"txt": fill(self.template, ex, self.derived), "hard_label": hard_label}


# Where a multiple-choice row keeps its candidates. Each returns (right answer, wrong answers); a right
# answer of None means the row can only be shown as a negative (cosmos_qa's "None of the above").

@dataclass(frozen=True)
class Fixed:
    """The right answer in one column, the wrong ones in others (sciq, anthropic_hh)."""

    right: str
    wrong: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.right, *self.wrong)

    @property
    def draws(self) -> bool:
        """One wrong column: nothing to draw (the reference drew nothing for anthropic_hh)."""
        return len(self.wrong) > 1

    def __call__(self, ex: dict) -> tuple[str | None, list]:
        # Not filtered by text, as in the reference: sciq's results stay as they were.
        return ex[self.right], [ex[c] for c in self.wrong]


@dataclass(frozen=True)
class Indexed:
    """Candidates in a list column (or in several columns), the right one's index in another."""

    options: str | tuple[str, ...]
    index: str
    base: int = 0
    """1 where the index counts from 1 (social_i_qa)."""
    unshowable: str | None = None
    """A right answer containing this text is only ever shown as a negative (it means nothing on its own)."""

    draws = True  # even from one wrong candidate left, as the reference did for cosmos_qa

    @property
    def columns(self) -> tuple[str, ...]:
        options = (self.options,) if isinstance(self.options, str) else self.options
        return (*options, self.index)

    def __call__(self, ex: dict) -> tuple[str | None, list]:
        options = list(ex[self.options]) if isinstance(self.options, str) else [ex[c] for c in self.options]
        position = int(ex[self.index]) - self.base
        if not 0 <= position < len(options):  # a hidden test label (-1, "") must not wrap around to the last
            raise IndexError(f"{self.index} {ex[self.index]!r} does not name one of the {len(options)} candidates")
        right = options[position]
        wrong = [o for o in options if o != right]
        if self.unshowable is not None and self.unshowable in right:
            return None, wrong
        return right, wrong


@dataclass(frozen=True)
class Keyed:
    """Candidates as {"text": [...], "label": ["A", "B", ...]} and the right one's key (openbookqa, quartz).

    Only the texts are ever shown, never the keys: a letter for positives and a text for negatives would
    give the label away."""

    choices: str = "choices"
    key: str = "answerKey"
    draws = True

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.choices, self.key)

    def __call__(self, ex: dict) -> tuple[str | None, list]:
        texts, keys = ex[self.choices]["text"], ex[self.choices]["label"]
        if ex[self.key] not in keys:
            raise IndexError(f"{self.key} {ex[self.key]!r} is not one of the choices' keys {keys}")
        right = texts[keys.index(ex[self.key])]
        return right, [t for t in texts if t != right]


@dataclass(frozen=True)
class ByText:
    """Candidates in a list column, the right one's text in another (dream)."""

    options: str
    answer: str
    draws = True

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.options, self.answer)

    def __call__(self, ex: dict) -> tuple[str | None, list]:
        if ex[self.answer] not in ex[self.options]:
            raise ValueError(f"the answer {ex[self.answer]!r} is not one of the candidates in {self.options!r}")
        return ex[self.answer], [o for o in ex[self.options] if o != ex[self.answer]]


@dataclass(frozen=True)
class CoinFlip:
    """Multiple choice made binary: show the right candidate (label 1) or, with p = 1/2, a random wrong one
    (label 0), drawn from the seeded rng, in the same template.

    Positives and negatives differ only in which candidate fills `{answer}` (and, in two-candidate
    templates, `{other}`): tests/test_datasets.py checks this for every CoinFlip in the registry.
    A row with no right answer to show is a negative and one with no wrong answer a positive; neither
    draws from the rng."""

    template: str
    candidates: Fixed | Indexed | Keyed | ByText
    derived: tuple[tuple[str, Callable[[dict], str]], ...] = ()
    means: str = "the shown answer is the right one (else a random wrong one; p = 1/2, seeded)"

    @property
    def columns(self) -> tuple[str, ...]:
        return read_columns(self.template, self.derived, self.candidates.columns)

    def __call__(self, ex: dict, rng: Random) -> dict:
        right, wrong = self.candidates(ex)
        for candidate in ([] if right is None else [right]) + wrong:
            if not isinstance(candidate, str):
                raise ValueError(f"candidate {candidate!r} is not text")
        if right is None:
            hard_label = 0
        elif not wrong:
            hard_label = 1
        else:
            hard_label = int(rng.random() < 0.5)
        # A wrong candidate is drawn only for a negative, as in the reference: the rng's sequence, hence
        # every later row, stays as it was.
        if hard_label:
            answer, other = right, wrong[0] if len(wrong) == 1 else None
        else:
            answer = rng.choice(wrong) if self.candidates.draws else wrong[0]
            other = right if len(wrong) == 1 else None
        return {"txt": fill(self.template, ex, self.derived, answer=answer, other=other), "hard_label": hard_label}


def format_identity(ex: dict, rng: Random) -> dict:
    return {"txt": ex["txt"], "hard_label": int(ex["hard_label"])}


def formatter_columns(formatter) -> tuple[str, ...]:
    return getattr(formatter, "columns", ("txt", "hard_label"))


def formatter_template(formatter) -> str:
    return getattr(formatter, "template", "(generated)")


def label_meaning(formatter) -> str:
    return getattr(formatter, "means", "see the dataset's description")


# ---------------------------------------------------------------- synthetic data

SYNTH_POSITIVE = "good great fine superb lovely brilliant charming solid fun moving".split()
SYNTH_NEGATIVE = "bad awful poor dull boring weak messy bland clumsy tedious".split()
SYNTH_NEUTRAL = (
    "the a movie film plot actor scene story cast music ending script camera this was is "
    "and but with very quite rather its our they it"
).split()
SYNTH_SPLIT_SIZES = {"train": 20000, "test": 4000}
SYNTH_NEGATION_RATE = 0.3


def make_synthetic_doc(rng: Random) -> dict:
    """A short review with one polarity word, which a preceding "not" flips.

    Spotting the polarity word is easy for a one-layer model; composing it with
    "not" takes more depth, so larger toy models beat smaller ones and the
    smaller ones make systematic (not random) mistakes, as weak supervisors do.
    """
    positive = rng.random() < 0.5
    negated = rng.random() < SYNTH_NEGATION_RATE
    words = rng.choices(SYNTH_NEUTRAL, k=rng.randint(2, 8))
    words += ["not"] * negated + [rng.choice(SYNTH_POSITIVE if positive else SYNTH_NEGATIVE)]
    words += rng.choices(SYNTH_NEUTRAL, k=rng.randint(0, 6))
    return {"txt": " ".join(words), "hard_label": int(positive != negated)}


def generate_synthetic(split: str) -> Dataset:
    """The built-in synthetic dataset; fixed per split, like a hub dataset (the run seed only shuffles it)."""
    from datasets import Dataset

    rng = Random(f"synthetic-{split}")
    rows = [make_synthetic_doc(rng) for _ in range(SYNTH_SPLIT_SIZES[split])]
    return Dataset.from_list(rows)


def generate_testbed_knowledge(split: str) -> Dataset:
    """Questions about the testbed population (see weak_to_strong/testbed/world.py): each person once."""
    from datasets import Dataset

    from weak_to_strong.testbed.world import knowledge_task_rows

    return Dataset.from_list(knowledge_task_rows(split))


def generate_testbed_binding(split: str) -> Dataset:
    """Binding questions (see weak_to_strong/testbed/world.py); fixed per split."""
    from datasets import Dataset

    from weak_to_strong.testbed.world import binding_task_rows

    return Dataset.from_list(list(binding_task_rows(split)))


# ---------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetSpec:
    formatter: Callable[[dict, Random], dict]
    hub_id: str | None = None
    hub_config: str | None = None
    revision: str | None = None
    """The hub revision to load: pinned (to the hub's Parquet conversion) where the default revision is
    script-based, which `datasets` 4+ no longer runs. None: the default branch."""
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    """(our split, hub split expression). Test sets without public labels use the validation split; where
    that holds under 1,000 documents, the test set adds held-out rows (`datasets` split syntax:
    "test+validation", "validation+train[:200]" with "train[200:]" for training)."""
    balance: bool = True
    """Whether runs balance the classes by undersampling unless --balance says otherwise. Off for the
    reference's 5 datasets and the built-in ones, so their results stay comparable."""
    stratify: bool = False
    """Whether runs split the training documents into the weak model's half and the labelled half stratified by
    label unless --stratify says otherwise. On for the testbed's tasks, whose runs are small: with
    testbed_knowledge's 500 training documents the reference's random halves differ in class share by up to 11
    points, which the weak labels pass on to the student (README, the testbed). Off for the rest, as the
    reference."""
    generator: Callable[[str], Dataset] | None = None
    """Builds a source split locally, with no download (synthetic data)."""
    description: str = ""
    """What the data holds and what it asks; for generated tasks also why a weak model errs."""

    def source_split(self, split: str) -> str:
        return dict(self.splits)[split]

    def hub_splits(self) -> list[str]:
        """The hub splits our splits are read from (what a local copy must hold)."""
        return list(dict.fromkeys(name for _, expr in self.splits for name in split_names(expr)))


def split_names(expr: str) -> list[str]:
    """The split names in a `datasets` split expression: "validation+train[:200]" -> validation, train."""
    return [part.split("[")[0].strip() for part in expr.split("+")]


QA = "Context: {context}\nQuestion: {question}\nAnswer: {answer}"

DATASETS: dict[str, DatasetSpec] = {
    # ---- the reference's five: unbalanced, formatted exactly as before.
    # fancyzhx/amazon_polarity: title, content, label (1 positive).
    "amazon_polarity": DatasetSpec(Classify("{title} {content}", means="the review is positive"),
                                   hub_id="fancyzhx/amazon_polarity", balance=False),
    # allenai/sciq: question, correct_answer, distractor1-3, support (unused).
    "sciq": DatasetSpec(CoinFlip("Q: {question} A: {answer}",
                                 Fixed("correct_answer", ("distractor1", "distractor2", "distractor3"))),
                        hub_id="allenai/sciq", balance=False),
    # Anthropic/hh-rlhf: chosen, rejected (whole conversations; the candidate is the whole text).
    "anthropic_hh": DatasetSpec(CoinFlip("{answer}", Fixed("chosen", ("rejected",)),
                                         means="the conversation is the chosen one (else the rejected one; "
                                               "p = 1/2, seeded)"),
                                hub_id="Anthropic/hh-rlhf", balance=False),
    # allenai/cosmos_qa: context, question, answer0-3, label (index); script-based, test labels hidden.
    "cosmos_qa": DatasetSpec(CoinFlip(QA, Indexed(("answer0", "answer1", "answer2", "answer3"), "label",
                                                  unshowable="None of the above choices")),
                             hub_id="allenai/cosmos_qa", hub_config="default", revision=PARQUET_EXPORT,
                             splits=(("train", "train"), ("test", "validation")), balance=False),
    # google/boolq: question, passage, answer (bool); test labels hidden.
    "boolq": DatasetSpec(Classify("Passage: {passage}\nQuestion: {question}", label="answer",
                                  means="the answer to the question is yes"),
                         hub_id="google/boolq", splits=(("train", "train"), ("test", "validation")), balance=False),
    # ---- the rest of the paper's 22 NLP tasks: balanced by default.
    # dataset-org/dream (script-based): dialogue (list of turns), question, choice (3 texts), answer (text).
    "dream": DatasetSpec(CoinFlip("{dialogue}\nQuestion: {question}\nAnswer: {answer}", ByText("choice", "answer"),
                                  derived=(("dialogue", Joined("dialogue")),)),
                         hub_id="dataset-org/dream", hub_config="plain_text", revision=PARQUET_EXPORT),
    # hendrycks/ethics, configs justice / deontology / virtue / utilitarianism; "test" is the hard test set.
    # justice: scenario, label (1 reasonable).
    "ethics_justice": DatasetSpec(Classify("Scenario: {scenario}\nQuestion: is this fair and reasonable?",
                                           means="the scenario is reasonable"),
                                  hub_id="hendrycks/ethics", hub_config="justice"),
    # deontology: scenario (a request or role), excuse, label (1 reasonable).
    "ethics_deontology": DatasetSpec(
        Classify("Scenario: {scenario}\nExcuse: {excuse}\nQuestion: is the excuse reasonable?",
                 means="the excuse is reasonable"),
        hub_id="hendrycks/ethics", hub_config="deontology"),
    # virtue: scenario ("sentence [SEP] trait"), label (1 the trait fits).
    "ethics_virtue": DatasetSpec(
        Classify("Sentence: {sentence}\nQuestion: does this show the trait \"{trait}\"?",
                 means="the behaviour shows the trait",
                 derived=(("sentence", Part("scenario", "[SEP]", 0)), ("trait", Part("scenario", "[SEP]", 1)))),
        hub_id="hendrycks/ethics", hub_config="virtue"),
    # utilitarianism: baseline (the more pleasant situation), less_pleasant; shown in a seeded order.
    "ethics_utilitarianism": DatasetSpec(
        CoinFlip("Situation A: {answer}\nSituation B: {other}\nQuestion: is situation A more pleasant than "
                 "situation B?", Fixed("baseline", ("less_pleasant",)),
                 means="situation A is the more pleasant one (which comes first: p = 1/2, seeded)"),
        hub_id="hendrycks/ethics", hub_config="utilitarianism"),
    # facebook/anli, round 2: premise, hypothesis, label (0 entailment, 1 neutral, 2 contradiction).
    "anli_r2": DatasetSpec(
        Classify("Premise: {premise}\nHypothesis: {hypothesis}\nQuestion: does the premise entail the hypothesis?",
                 true_value=0, means="the premise entails the hypothesis (neutral and contradiction are 0)"),
        hub_id="facebook/anli", hub_config="plain_text", splits=(("train", "train_r2"), ("test", "test_r2"))),
    # nyu-mll/glue cola: sentence, label (1 acceptable); test labels hidden.
    "cola": DatasetSpec(Classify("Sentence: {sentence}\nQuestion: is this sentence grammatical?",
                                 means="the sentence is grammatically acceptable"),
                        hub_id="nyu-mll/glue", hub_config="cola", splits=(("train", "train"), ("test", "validation"))),
    # stanfordnlp/sst2: sentence, label (1 positive); test labels hidden, validation has 872 sentences.
    "sst2": DatasetSpec(Classify("{sentence}", means="the sentence is positive"), hub_id="stanfordnlp/sst2",
                        splits=(("train", "train[200:]"), ("test", "validation+train[:200]"))),
    # Rowan/hellaswag: ctx, endings (4 texts), label (index as text); test labels hidden.
    "hellaswag": DatasetSpec(CoinFlip("Context: {ctx}\nContinuation: {answer}", Indexed("endings", "label")),
                             hub_id="Rowan/hellaswag", splits=(("train", "train"), ("test", "validation"))),
    # CogComp/mc_taco (script-based): sentence, question, answer, label (1 plausible), category. No train
    # split: the larger test split trains, validation tests.
    "mc_taco": DatasetSpec(Classify("{sentence}\nQuestion: {question}\nAnswer: {answer}",
                                    means="the answer is plausible"),
                           hub_id="CogComp/mc_taco", hub_config="plain_text", revision=PARQUET_EXPORT,
                           splits=(("train", "test"), ("test", "validation"))),
    # allenai/openbookqa main: question_stem, choices {text, label: A-D}, answerKey. Test and validation
    # hold 500 questions each.
    "openbookqa": DatasetSpec(CoinFlip("Question: {question_stem}\nAnswer: {answer}", Keyed()),
                              hub_id="allenai/openbookqa", hub_config="main",
                              splits=(("train", "train"), ("test", "test+validation"))),
    # google-research-datasets/paws labeled_final: sentence1, sentence2, label (1 paraphrase).
    "paws": DatasetSpec(Classify("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nQuestion: do both sentences "
                                 "mean the same thing?", means="the sentences are paraphrases"),
                        hub_id="google-research-datasets/paws", hub_config="labeled_final"),
    # textmachinelab/quail: context, question, answers (4 texts), correct_answer_id.
    "quail": DatasetSpec(CoinFlip(QA, Indexed("answers", "correct_answer_id")), hub_id="textmachinelab/quail",
                         hub_config="quail", splits=(("train", "train"), ("test", "validation"))),
    # ybisk/piqa (script-based): goal, sol1, sol2, label (index of the right solution); test labels hidden.
    "piqa": DatasetSpec(CoinFlip("Goal: {goal}\nSolution: {answer}", Indexed(("sol1", "sol2"), "label")),
                        hub_id="ybisk/piqa", hub_config="default", revision=PARQUET_EXPORT,
                        splits=(("train", "train"), ("test", "validation"))),
    # allenai/quartz: para, question, choices {text, label: A-B}, answerKey. Test 784, validation 384.
    "quartz": DatasetSpec(CoinFlip("Passage: {para}\nQuestion: {question}\nAnswer: {answer}", Keyed()),
                          hub_id="allenai/quartz", splits=(("train", "train"), ("test", "test+validation"))),
    # allenai/social_i_qa: context, question, answerA-C, label ("1"-"3"); test labels hidden.
    "social_i_qa": DatasetSpec(CoinFlip(QA, Indexed(("answerA", "answerB", "answerC"), "label", base=1)),
                               hub_id="allenai/social_i_qa", splits=(("train", "train"), ("test", "validation"))),
    # aps/super_glue multirc: paragraph, question, answer, label (1 correct); test labels hidden.
    "multirc": DatasetSpec(Classify("Passage: {paragraph}\nQuestion: {question}\nAnswer: {answer}",
                                    means="the answer is correct"),
                           hub_id="aps/super_glue", hub_config="multirc",
                           splits=(("train", "train"), ("test", "validation"))),
    # aps/super_glue wic: word, sentence1, sentence2, label (1 same sense); test labels hidden, validation
    # has 638 pairs.
    "wic": DatasetSpec(Classify("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nQuestion: is \"{word}\" used "
                                "in the same sense in both sentences?", means="the word has the same sense"),
                       hub_id="aps/super_glue", hub_config="wic",
                       splits=(("train", "train[400:]"), ("test", "validation+train[:400]"))),
    # EleutherAI/twitter-sentiment: text, label (1 positive).
    "twitter_sentiment": DatasetSpec(Classify("{text}", means="the tweet is positive"),
                                     hub_id="EleutherAI/twitter-sentiment"),
    # ---- built in: generated locally, no download.
    "synthetic": DatasetSpec(format_identity, generator=generate_synthetic, balance=False),
    # The laptop testbed's tasks: their labels need what the tb-* ladder learnt in pretraining.
    "testbed_knowledge": DatasetSpec(format_identity, generator=generate_testbed_knowledge, balance=False,
                                     stratify=True, description=(
        "Corpus: 1,000 generated people (given name + family name), each with one fact, 'GIVEN FAMILY votes "
        "north|south .', stated many times in lists of facts. Task: 'GIVEN FAMILY votes' -> 1 if north; people are "
        "split between train (500) and test (500), so fine-tuning cannot teach a test person's vote: only "
        "pretraining can. Weak models memorise fewer facts and fall back on the family, which votes its majority "
        "way 4 times in 5: confidently wrong on the other fifth.")),
    "testbed_binding": DatasetSpec(format_identity, generator=generate_testbed_binding, balance=False,
                                   stratify=True, description=(
        "Corpus: documents that bind 2-6 names to colours ('NAME COLOUR .'), then ask each binding back "
        "('Q NAME COLOUR .'); colours are drawn afresh per document. Task: the bindings, then 'Q NAME' -> 1 if "
        "the name's colour is warm (20,000 train / 2,000 test documents). Answering needs an induction circuit "
        "(two attention layers); without it a model can only count warm against cool colours, right about 2 "
        "times in 3 and confidently wrong when the asked name holds the minority colour.")),
}


def get_dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


# ---------------------------------------------------------------- loading

@dataclass(frozen=True)
class SourceSplit:
    """One of our splits as read from its source, before formatting."""

    rows: Dataset
    parts: tuple[tuple[str, int, int], ...] = ()
    """(file, the part's first row in `rows`, that row's position in the file), for error messages."""

    def locate(self, row: int) -> str:
        """Where source row `row` lives: ' in FILE' (and its row there when it differs); '' for the hub."""
        for file, start, offset in reversed(self.parts):
            if row >= start:
                at = row - start + offset
                return f" in {file}" + ("" if at == row else f" (its row {at})")
        return ""


def resolve_data_dir(data_dir: str | None) -> Path | None:
    """The local-copy root from the flag, else the environment; checked to exist."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise ValueError(f"local data directory {str(path)!r} does not exist (from --data_dir or ${DATA_DIR_ENV})")
    return path


def is_blank(path: Path) -> bool:
    """An empty file, or only whitespace."""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return False
    return True


def has_no_rows(path: Path, builder: str) -> bool:
    """An empty file, or a Parquet file of no rows: `datasets` would raise StopIteration or a schema error."""
    if is_blank(path):
        return True
    if builder == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows == 0
        except Exception:  # noqa: BLE001 - not Parquet at all: read_data_file says so
            return False
    return False


def read_data_file(path: Path, builder: str) -> Dataset:
    from datasets import Dataset

    if has_no_rows(path, builder):
        return Dataset.from_dict({})
    try:
        return Dataset.from_parquet(str(path)) if builder == "parquet" else Dataset.from_json(str(path))
    except Exception as e:  # noqa: BLE001 - datasets wraps parser errors in its own types; say which file
        cause = e.__cause__ or e
        raise ValueError(f"cannot read {str(path)!r} ({type(cause).__name__}: {cause})") from None


def read_local_split(ds_dir: Path, name: str) -> tuple[Dataset, str]:
    """One hub split of a local copy: a save_to_disk folder's split or a per-split data file."""
    from datasets import load_from_disk

    if (ds_dir / "dataset_dict.json").exists():
        dsd = load_from_disk(str(ds_dir))
        if name not in dsd:
            raise ValueError(f"{str(ds_dir)!r} has no split {name!r} (it has: {', '.join(dsd)})")
        return dsd[name], str(ds_dir / name)
    for suffix, builder in LOCAL_FILE_TYPES.items():
        path = ds_dir / f"{name}{suffix}"
        if path.exists():
            return read_data_file(path, builder), str(path)
    raise ValueError(
        f"no split {name!r} in {str(ds_dir)!r}: expected a save_to_disk folder or "
        f"{name}.parquet / {name}.jsonl / {name}.json"
    )


def load_local_split(ds_dir: Path, expr: str) -> SourceSplit:
    """A split expression ("train", "test+validation", "train[200:]") over a local copy, as `datasets` reads
    it from the hub."""
    from datasets import Dataset, ReadInstruction, concatenate_datasets

    read = {name: read_local_split(ds_dir, name) for name in split_names(expr)}
    if len(read) == 1 and "[" not in expr:
        ds, file = next(iter(read.values()))
        return SourceSplit(ds, ((file, 0, 0),))
    pieces, parts, start = [], [], 0
    for part in ReadInstruction.from_spec(expr).to_absolute({name: len(ds) for name, (ds, _) in read.items()}):
        if part.to <= part.from_:
            continue  # a slice beyond a small copy's end: nothing from this part
        ds, file = read[part.splitname]
        pieces.append(ds.select(range(part.from_, part.to)))
        parts.append((file, start, part.from_))
        start += part.to - part.from_
    rows = concatenate_datasets(pieces) if pieces else Dataset.from_dict({})
    return SourceSplit(rows, tuple(parts) or tuple((file, 0, 0) for _, file in read.values()))


def load_from_hub(spec: DatasetSpec, split: str) -> Dataset:
    """The one call to the hub, for runs and for `fetch`: the registry's id, config, revision and split."""
    import datasets

    try:
        return datasets.load_dataset(spec.hub_id, spec.hub_config, split=split, revision=spec.revision)
    except Exception as e:  # noqa: BLE001 - offline nodes, moved repositories: one line saying what was asked
        cause = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"cannot load {spec.hub_id} (config {spec.hub_config}, revision {spec.revision or 'default'}, "
                         f"split {split!r}) from the hub: {type(e).__name__}: {cause}. Without internet, fetch a "
                         "local copy elsewhere (python -m weak_to_strong.data fetch NAME --to=DIR) and pass "
                         "--data_dir=DIR") from e


def load_source_split(name: str, spec: DatasetSpec, split: str, data_dir: Path | None) -> SourceSplit:
    expr = spec.source_split(split)
    if spec.generator is not None:
        source = SourceSplit(spec.generator(expr))
    elif data_dir is not None:
        ds_dir = data_dir / name
        if not ds_dir.is_dir():
            raise ValueError(f"local data directory {str(ds_dir)!r} for dataset {name!r} does not exist")
        source = load_local_split(ds_dir, expr)
    else:
        source = SourceSplit(load_from_hub(spec, expr))
    if len(source.rows) == 0:
        files = ", ".join(file for file, _, _ in source.parts)
        raise ValueError(f"{describe_source(name, spec, split, data_dir)} is empty{f' ({files})' if files else ''}: "
                         "no documents to train or test on")
    return source


def locate(source: SourceSplit | None, row: int) -> str:
    return source.locate(row) if source is not None else ""


def check_columns(spec: DatasetSpec, ex: dict, where: str, source: SourceSplit | None = None) -> None:
    """Every column the formatter reads is there and not null, else one line naming it and the file."""
    for column in formatter_columns(spec.formatter):
        if column not in ex:
            present = ", ".join(c for c in ex if c != "id")
            raise ValueError(f"{where}, row {ex['id']}: cannot be formatted (KeyError: no column {column!r}"
                             f"{locate(source, ex['id'])}; it has: {present})")
        if ex[column] is None:
            raise ValueError(f"{where}, row {ex['id']}: column {column!r} is empty (null){locate(source, ex['id'])}")


def format_row(spec: DatasetSpec, ex: dict, rng: Random, where: str, source: SourceSplit | None = None) -> dict:
    """One source row through the dataset's formatter, its label checked to be 0 or 1."""
    check_columns(spec, ex, where, source)
    try:
        row = spec.formatter(ex, rng)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"{where}, row {ex['id']}: cannot be formatted ({type(e).__name__}: {e})"
                         f"{locate(source, ex['id'])}") from None
    row["hard_label"] = check_binary_label(row["hard_label"], f"{where}, row {ex['id']}")
    return row


def balanced_quotas(n_docs: int) -> dict[int, int]:
    """Documents per class in a balanced set of n_docs (label 0 takes the odd one)."""
    return {0: n_docs - n_docs // 2, 1: n_docs // 2}


def iter_rows(ds: Dataset):
    """The rows as dicts, converted from Arrow a batch at a time (a lookup per row is ten times slower)."""
    for batch in ds.iter(batch_size=1000):
        yield from (dict(zip(batch, values)) for values in zip(*batch.values()))


def select_balanced(ds: Dataset, spec: DatasetSpec, rng: Random, n_docs: int, where: str,
                    source: SourceSplit) -> list[dict]:
    """Format rows in their shuffled order until each class holds its share of n_docs. If the split runs
    out first, both classes are cut to the smaller one's count (undersampling the majority)."""
    quotas, kept = balanced_quotas(n_docs), {0: [], 1: []}
    if n_docs <= 0:
        return []
    for order, ex in enumerate(iter_rows(ds)):
        row = {"id": ex["id"], **format_row(spec, ex, rng, where, source)}
        label = row["hard_label"]
        if len(kept[label]) < quotas[label]:
            kept[label].append((order, row))
            if all(len(kept[c]) == quotas[c] for c in quotas):
                break
    else:
        smaller = min(len(kept[0]), len(kept[1]))
        kept = {c: kept[c][:smaller] for c in kept}
    return [row for _, row in sorted(kept[0] + kept[1], key=lambda pair: pair[0])]


def format_split(source: SourceSplit, spec: DatasetSpec, seed: int, n_docs: int, where: str = "dataset",
                 balance: bool = False) -> Dataset:
    """Shuffle (seeded), keep n_docs (balanced: n_docs // 2 per class, by undersampling), then format with a
    seeded rng: the same seed gives the same rows. `where` names the data in errors (dataset, split, source)."""
    from datasets import Dataset

    ds = source.rows
    # Our own stable id (the source row index): source ids differ in type across datasets, or are missing.
    ds = ds.remove_columns([c for c in ("id",) if c in ds.column_names]).add_column("id", list(range(len(ds))))
    ds = ds.shuffle(seed=seed)
    rng = Random(seed)
    if balance:
        rows = select_balanced(ds, spec, rng, n_docs, where, source)
    else:
        # One Arrow-to-Python conversion, not a formatted lookup per row (a tenth of a second per 1,000 rows).
        ds = ds.select(range(min(n_docs, len(ds))))
        rows = [{"id": ex["id"], **format_row(spec, ex, rng, where, source)} for ex in ds.to_list()]
    for row in rows:
        row["soft_label"] = [1.0 - row["hard_label"], float(row["hard_label"])]
    return Dataset.from_list(rows) if rows else Dataset.from_dict({"id": [], "txt": [], "hard_label": [], "soft_label": []})


def load_dataset(name: str, seed: int = 0, split_sizes: dict[str, int] | None = None,
                 data_dir: str | None = None, balance: bool | None = None) -> dict[str, Dataset]:
    """Formatted splits {"train": ..., "test": ...} of a registered dataset.

    split_sizes: documents per split (default: all); fewer come back where the source has fewer.
    data_dir: local copies (else $W2S_DATA_DIR, else the hub). balance: undersample the majority class
    to 50/50; None: the registry's default for the dataset."""
    spec = get_dataset_spec(name)
    root = resolve_data_dir(data_dir)
    split_sizes = split_sizes or {"train": 10**12, "test": 10**12}
    balance = spec.balance if balance is None else bool(balance)
    return {
        split: format_split(load_source_split(name, spec, split, root), spec, seed, n,
                            where=describe_source(name, spec, split, root), balance=balance)
        for split, n in split_sizes.items()
    }


def describe_source(name: str, spec: DatasetSpec, split: str, data_dir: Path | None) -> str:
    """Where a split comes from, for error messages: built in, a local copy's folder, or the hub id."""
    source_split = spec.source_split(split)
    if spec.generator is not None:
        origin = "built in"
    elif data_dir is not None:
        origin = str(data_dir / name)
    else:
        origin = f"hub {spec.hub_id}"
    return f"dataset {name!r} split {source_split!r} ({origin})"


def data_revision(name: str, data_dir: str | None) -> str | None:
    """The dataset's revision, when known: a local copy's fetched commit (else revision), or the registry's."""
    spec = get_dataset_spec(name)
    if spec.generator is not None:
        return None
    root = resolve_data_dir(data_dir)
    if root is None:
        return spec.revision
    record = root / name / FETCH_RECORD
    if not record.exists():
        return None
    fetched = json.loads(record.read_text())
    return fetched.get("commit") or fetched.get("revision")


# ---------------------------------------------------------------- tokenization

def tokenize_dataset(ds: Dataset, tokenizer, max_ctx: int) -> Dataset:
    """Add `input_ids` (batched, fast tokenizer) and keep documents shorter than max_ctx tokens (strictly, as the
    reference: a document of exactly max_ctx tokens is dropped)."""
    ds = ds.map(lambda batch: {"input_ids": tokenizer(batch["txt"])["input_ids"]}, batched=True, batch_size=1000)
    return ds.filter(lambda batch: [fits_context(len(ids), max_ctx) for ids in batch["input_ids"]], batched=True,
                     batch_size=1000)


def split_in_halves(ds: Dataset, seed: int, stratify: bool = False) -> tuple[Dataset, Dataset]:
    """The training documents' two halves: the one the weak model trains on, and the one it labels.

    Unstratified, datasets' `train_test_split(test_size=0.5, seed=seed)`, as the reference (an odd document goes
    to the labelled half). Stratified by `hard_label`: each class is shuffled (seeded) and cut in two, its odd
    document going to the half that is smaller so far (the labelled one on a tie), and each half is shuffled,
    so the halves have the reference's sizes and the same share of each class to one document."""
    if not stratify:
        halves = ds.train_test_split(test_size=0.5, seed=seed)
        return halves["train"], halves["test"]
    rng = Random(seed)
    labels = column_list(ds, "hard_label")
    first, second = [], []
    for label in sorted(set(labels)):
        rows = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(rows)
        cut = len(rows) // 2 + (len(rows) % 2 if len(first) < len(second) else 0)
        first += rows[:cut]
        second += rows[cut:]
    rng.shuffle(first)
    rng.shuffle(second)
    return ds.select(first), ds.select(second)


def fits_context(n_tokens: int, max_ctx: int) -> bool:
    """Whether a document of n_tokens is kept by the max_ctx filter: shorter than max_ctx, as in the reference."""
    return n_tokens < max_ctx


def column_list(ds: Dataset, name: str) -> list:
    """A whole column as a Python list, read in one Arrow call (datasets 5's `ds[name]` reads row by row)."""
    return ds.with_format("arrow")[name].to_pylist()
