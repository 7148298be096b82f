"""The testbed's generated world: a word-level vocabulary, the pretraining corpus, and the tasks.

Two mechanisms, one corpus:

* **Bindings (in context).** A document binds a few names to colours
  ("neko gray . tina red .") and then asks for each binding ("Q tina red .").
  The colours are drawn fresh for every document, so nothing can be memorised:
  answering needs an induction circuit (find the earlier "tina", copy the token
  after it), which takes two layers of attention. The task asks whether the
  asked name's colour is warm. Without the circuit the best a model can do is
  count: the majority of warm or cool colours in the document, a shallow
  heuristic that is right about two times in three and confidently wrong on
  documents where the asked name holds the minority colour.
* **Knowledge (in weights).** A fixed population of people, each with a
  given name and a family name, and a binary fact about each ("kavu penemu
  votes north ."). Families lean one way (a family votes its majority value
  four times in five), so the family is a shallow cue; the individual fact has
  to be memorised, and small models with less pretraining memorise fewer. The
  task splits people, not facts, between train and test: fine-tuning cannot
  teach a test person's vote.

Everything is generated from fixed seeds with no download; the tasks are fixed
per split, like hub datasets (the run seed only shuffles them).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from random import Random

EOS = "<|endoftext|>"
QUERY = "Q"
STOP = "."
WARM = ("red", "orange", "amber", "gold", "pink", "coral", "rust", "rose")
COOL = ("blue", "green", "teal", "navy", "jade", "cyan", "mint", "gray")
COLORS = WARM + COOL
"""Binding values; the binding task's label is 1 for a warm colour."""
VOTE_VERB = "votes"
VOTE_VALUES = ("north", "south")
"""Knowledge: the label is 1 for the first value."""
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


@dataclass(frozen=True)
class BindingWorld:
    n_names: int = 32
    """Names that documents bind (each document draws a few)."""
    min_bindings: int = 2
    max_bindings: int = 6


@dataclass(frozen=True)
class KnowledgeWorld:
    n_people: int = 1000
    n_families: int = 40
    family_lean: float = 0.8
    """Share of a family's members who vote the family's majority value."""
    facts_per_doc: int = 6
    zipf: float = 0.5
    """People are mentioned with frequency ~ 1 / rank^zipf: rare facts are learnt last."""


BINDING = BindingWorld()
KNOWLEDGE = KnowledgeWorld()


def syllable_words(rng: Random, n: int, syllables: int, taken: set[str]) -> list[str]:
    """n distinct pronounceable words, none in `taken` (which grows)."""
    words = []
    while len(words) < n:
        word = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


@dataclass(frozen=True)
class Lexicon:
    binding_names: tuple[str, ...]
    given_names: tuple[str, ...]
    family_names: tuple[str, ...]


@lru_cache(maxsize=None)
def make_lexicon(binding: BindingWorld = BINDING, knowledge: KnowledgeWorld = KNOWLEDGE) -> Lexicon:
    rng = Random("testbed-lexicon")
    taken = {QUERY.lower(), STOP, VOTE_VERB, *VOTE_VALUES, *COLORS}
    binding_names = syllable_words(rng, binding.n_names, 2, taken)
    n_given = max(1, -(-knowledge.n_people // knowledge.n_families))
    given = syllable_words(rng, n_given, 2, taken)
    families = syllable_words(rng, knowledge.n_families, 3, taken)
    return Lexicon(tuple(binding_names), tuple(given), tuple(families))


def vocabulary(binding: BindingWorld = BINDING, knowledge: KnowledgeWorld = KNOWLEDGE) -> list[str]:
    """Every word of the world, the end-of-text token first."""
    lex = make_lexicon(binding, knowledge)
    words = [EOS, QUERY, STOP, VOTE_VERB, *VOTE_VALUES]
    return words + list(COLORS) + list(lex.binding_names) + list(lex.given_names) + list(lex.family_names)


# ---------------------------------------------------------------- bindings

def binding_statements(rng: Random, world: BindingWorld, names: tuple[str, ...],
                       asked_color: str | None = None) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    """A document's (name, colour) bindings and the asked one (the first drawn)."""
    n = rng.randint(world.min_bindings, world.max_bindings)
    bindings = [(name, rng.choice(COLORS)) for name in rng.sample(names, n)]
    if asked_color is not None:
        bindings[0] = (bindings[0][0], asked_color)
    asked = bindings[0]
    rng.shuffle(bindings)
    return bindings, asked


def render(bindings) -> str:
    return " ".join(f"{name} {color} {STOP}" for name, color in bindings)


def binding_pretraining_doc(rng: Random, world: BindingWorld = BINDING) -> str:
    """Bindings, then every one of them asked and answered, in a fresh order."""
    names = make_lexicon(world, KNOWLEDGE).binding_names
    bindings, _ = binding_statements(rng, world, names)
    asks = rng.sample(bindings, len(bindings))
    return render(bindings) + " " + " ".join(f"{QUERY} {name} {color} {STOP}" for name, color in asks)


def binding_task_row(rng: Random, world: BindingWorld = BINDING) -> dict:
    """A balanced question: the label says whether the asked name's colour is warm."""
    names = make_lexicon(world, KNOWLEDGE).binding_names
    label = int(rng.random() < 0.5)
    bindings, asked = binding_statements(rng, world, names, rng.choice(WARM if label else COOL))
    return {"txt": f"{render(bindings)} {QUERY} {asked[0]}", "hard_label": label}


BINDING_SPLIT_SIZES = {"train": 20000, "test": 2000}


@lru_cache(maxsize=None)
def binding_task_rows(split: str, world: BindingWorld = BINDING) -> tuple[dict, ...]:
    """The binding task's split, fixed by its name; a test document that also occurs in train is left out."""
    rng = Random(f"testbed-binding-{split}")
    rows = [binding_task_row(rng, world) for _ in range(BINDING_SPLIT_SIZES[split])]
    if split != "train":
        seen = {row["txt"] for row in binding_task_rows("train", world)}
        rows = [row for row in rows if row["txt"] not in seen]
    return tuple(rows)


# ---------------------------------------------------------------- knowledge

@dataclass(frozen=True)
class Person:
    given: str
    family: str
    vote: str
    weight: float


@lru_cache(maxsize=None)
def make_population(world: KnowledgeWorld = KNOWLEDGE) -> tuple[Person, ...]:
    """The fixed population; families lean to one value, individuals follow with `family_lean`."""
    lex = make_lexicon(BINDING, world)
    rng = Random("testbed-population")
    leaning = {f: rng.choice(VOTE_VALUES) for f in lex.family_names}
    pairs = [(g, f) for f in lex.family_names for g in lex.given_names][: world.n_people]
    rng.shuffle(pairs)
    people = []
    for rank, (given, family) in enumerate(pairs, start=1):
        lean = leaning[family]
        vote = lean if rng.random() < world.family_lean else next(v for v in VOTE_VALUES if v != lean)
        people.append(Person(given, family, vote, 1.0 / rank ** world.zipf))
    return tuple(people)


@lru_cache(maxsize=None)
def mention_cum_weights(world: KnowledgeWorld = KNOWLEDGE) -> tuple[float, ...]:
    """Cumulative mention weights, summed once: `choices` with them draws exactly as with the weights."""
    return tuple(itertools.accumulate(p.weight for p in make_population(world)))


def knowledge_pretraining_doc(rng: Random, world: KnowledgeWorld = KNOWLEDGE) -> str:
    people = make_population(world)
    chosen = rng.choices(people, cum_weights=mention_cum_weights(world), k=world.facts_per_doc)
    return " ".join(f"{p.given} {p.family} {VOTE_VERB} {p.vote} {STOP}" for p in chosen)


def knowledge_task_rows(split: str, world: KnowledgeWorld = KNOWLEDGE) -> list[dict]:
    """Each person once; people are split (not facts), so a test person was never fine-tuned on."""
    people = list(make_population(world))
    Random("testbed-knowledge-split").shuffle(people)
    half = len(people) // 2
    chosen = people[:half] if split == "train" else people[half:]
    return [{"txt": f"{p.given} {p.family} {VOTE_VERB}", "hard_label": int(p.vote == VOTE_VALUES[0])} for p in chosen]


# ---------------------------------------------------------------- corpus

def pretraining_doc(rng: Random, knowledge_share: float) -> str:
    """One corpus document: a list of facts, or a binding document with its questions answered."""
    return knowledge_pretraining_doc(rng) if rng.random() < knowledge_share else binding_pretraining_doc(rng)
