"""Built-in tasks, generated deterministically by code (no downloads).

Each generator takes a ``seed`` and returns the same :class:`Task` (same content hash) for
the same arguments. The version is bumped whenever a generator's output changes.

- ``capitals_mc``: "What is the capital of X?" with 4 choices (non-ASCII names included).
- ``arithmetic``: multi-digit addition, subtraction or multiplication, generated answers.
- ``facts_ppl``: simple generated English facts, for bits per byte and word perplexity.
- ``needle`` (in :mod:`.needle`): key–value retrieval at a chosen depth and token length.
"""

from __future__ import annotations

import random
from typing import Any

from ...errors import InvalidInputError, did_you_mean
from ._capitals import CAPITALS
from .schema import Task

__all__ = ["arithmetic", "capitals_mc", "facts_ppl"]

CAPITALS_VERSION = "1"
ARITHMETIC_VERSION = "1"
FACTS_VERSION = "1"

_OPS = {
    "add": ("plus", lambda a, b: a + b),
    "sub": ("minus", lambda a, b: a - b),
    "mul": ("times", lambda a, b: a * b),
}


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be an int; got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise InvalidInputError(f"{name} must be {rng}; got {value}")
    return value


def capitals_mc(
    n: int | None = None,
    seed: int = 0,
    num_fewshot: int = 0,
    n_choices: int = 4,
    n_fewshot_pool: int = 8,
) -> Task:
    """Multiple choice: the capital of a country among ``n_choices`` capitals.

    Parameters
    ----------
    n : int or None
        Test documents (default: every country not in the few-shot pool, 112).
    seed : int
        Shuffles the countries, picks distractors (other capitals) and the gold position.
    num_fewshot : int
        Shots per prompt, drawn from a separate few-shot pool of ``n_fewshot_pool`` countries.
    n_choices : int
        Choices per question (2..8).
    """
    _check_int("n_choices", n_choices, 2, 8)
    _check_int("n_fewshot_pool", n_fewshot_pool, 0, 32)
    rng = random.Random(seed)
    pairs = list(CAPITALS)
    rng.shuffle(pairs)
    capitals = [c for _, c in CAPITALS]

    def make(country: str, capital: str) -> dict[str, Any]:
        distractors = rng.sample([c for c in capitals if c != capital], n_choices - 1)
        gold = rng.randrange(n_choices)
        choices = [*distractors[:gold], capital, *distractors[gold:]]
        return {
            "id": country,
            "question": f"Question: What is the capital of {country}?\nAnswer:",
            "choices": choices,
            "answer": gold,
        }

    pool = [make(*p) for p in pairs[:n_fewshot_pool]]
    rest = pairs[n_fewshot_pool:]
    if n is not None:
        _check_int("n", n, 1, len(rest))
        rest = rest[:n]
    docs = [make(*p) for p in rest]
    return Task(
        name="capitals_mc",
        version=CAPITALS_VERSION,
        kind="multiple_choice",
        docs=tuple(docs),
        num_fewshot=num_fewshot,
        fewshot_docs=tuple(pool) or None,
        metadata={
            "generator": "capitals_mc",
            "n": len(docs),
            "seed": seed,
            "n_choices": n_choices,
            "n_fewshot_pool": n_fewshot_pool,
        },
    )


def arithmetic(
    digits: int = 2,
    operation: str = "add",
    n: int = 50,
    seed: int = 0,
    num_fewshot: int = 0,
    n_fewshot_pool: int = 8,
) -> Task:
    """Generation: ``"Question: What is 47 plus 385?\\nAnswer:"`` → ``" 432"``.

    Parameters
    ----------
    digits : int
        Digits per operand, 1..5 (operands uniform in ``[10^(d-1), 10^d - 1]``; 0..9 for 1).
    operation : {"add", "sub", "mul"}
        ``sub`` answers may be negative.
    n : int
        Test documents.
    seed : int
        Operand stream; the few-shot pool uses its own stream derived from ``seed``.
    num_fewshot, n_fewshot_pool : int
        Shots per prompt and size of the separate few-shot pool.

    Scored by ``exact_match`` (whitespace stripped) and ``numeric_match``; generation stops at
    a newline.
    """
    _check_int("digits", digits, 1, 5)
    _check_int("n", n, 1)
    _check_int("n_fewshot_pool", n_fewshot_pool, 0)
    if operation not in _OPS:
        hint = did_you_mean(str(operation), _OPS)
        raise InvalidInputError(
            f"unknown operation {operation!r}; "
            + (hint + " " if hint else "")
            + "Known: "
            + ", ".join(_OPS)
        )
    word, fn = _OPS[operation]
    lo, hi = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1

    def make(r: random.Random, i: int, prefix: str) -> dict[str, Any]:
        a, b = r.randint(lo, hi), r.randint(lo, hi)
        return {
            "id": f"{prefix}{i}",
            "prompt": f"Question: What is {a} {word} {b}?\nAnswer:",
            "answer": str(fn(a, b)),
        }

    r_test = random.Random(seed)
    r_shot = random.Random(f"arithmetic-fewshot-{seed}")
    docs = [make(r_test, i, "t") for i in range(n)]
    pool = [make(r_shot, i, "f") for i in range(n_fewshot_pool)]
    return Task(
        name="arithmetic",
        version=ARITHMETIC_VERSION,
        kind="generation",
        docs=tuple(docs),
        num_fewshot=num_fewshot,
        fewshot_docs=tuple(pool) or None,
        until=("\n",),
        max_new_tokens=16,
        metadata={
            "generator": "arithmetic",
            "digits": digits,
            "operation": operation,
            "n": n,
            "seed": seed,
            "n_fewshot_pool": n_fewshot_pool,
        },
    )


_ANIMALS = (
    ("dog", "mammal"),
    ("cat", "mammal"),
    ("whale", "mammal"),
    ("horse", "mammal"),
    ("eagle", "bird"),
    ("sparrow", "bird"),
    ("owl", "bird"),
    ("salmon", "fish"),
    ("shark", "fish"),
    ("trout", "fish"),
    ("frog", "amphibian"),
    ("snake", "reptile"),
    ("turtle", "reptile"),
    ("lizard", "reptile"),
    ("bee", "insect"),
    ("ant", "insect"),
)
_COLOURS = (
    ("Fresh snow", "white"),
    ("Coal", "black"),
    ("A ripe banana", "yellow"),
    ("A ripe tomato", "red"),
    ("Grass in spring", "green"),
    ("The clear sky", "blue"),
    ("A carrot", "orange"),
    ("Milk", "white"),
)
_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_OPPOSITES = (
    ("hot", "cold"),
    ("up", "down"),
    ("early", "late"),
    ("light", "dark"),
    ("full", "empty"),
    ("open", "closed"),
    ("wet", "dry"),
    ("loud", "quiet"),
    ("fast", "slow"),
    ("old", "young"),
)


def _fact(r: random.Random) -> str:
    t = r.randrange(6)
    if t == 0:
        country, capital = r.choice(CAPITALS)
        return f"{capital} is the capital of {country}."
    if t == 1:
        animal, cls = r.choice(_ANIMALS)
        art = "an" if cls[0] in "aeiou" else "a"
        return f"The {animal} is {art} {cls}."
    if t == 2:
        thing, colour = r.choice(_COLOURS)
        return f"{thing} is {colour}."
    if t == 3:
        a = r.randrange(11)
        b = r.randrange(11)
        return f"{_NUMBERS[a].capitalize()} plus {_NUMBERS[b]} is {_NUMBERS[a + b]}."
    if t == 4:
        if r.random() < 0.5:
            i = r.randrange(7)
            return f"{_DAYS[(i + 1) % 7]} comes after {_DAYS[i]}."
        i = r.randrange(12)
        return f"{_MONTHS[(i + 1) % 12]} comes after {_MONTHS[i]}."
    word, opposite = r.choice(_OPPOSITES)
    return f"The opposite of {word} is {opposite}."


def facts_ppl(n: int = 40, seed: int = 0, sentences_per_doc: int = 5) -> Task:
    """Perplexity: ``n`` documents of ``sentences_per_doc`` simple generated facts.

    The facts (capitals, animal classes, colours, small sums in words, days and months,
    opposites) are true, so a better language model gets a lower bits per byte.
    """
    _check_int("n", n, 1)
    _check_int("sentences_per_doc", sentences_per_doc, 1)
    r = random.Random(seed)
    docs = [
        {"id": f"facts{i}", "text": " ".join(_fact(r) for _ in range(sentences_per_doc))}
        for i in range(n)
    ]
    return Task(
        name="facts_ppl",
        version=FACTS_VERSION,
        kind="perplexity",
        docs=tuple(docs),
        metadata={
            "generator": "facts_ppl",
            "n": n,
            "seed": seed,
            "sentences_per_doc": sentences_per_doc,
        },
    )
