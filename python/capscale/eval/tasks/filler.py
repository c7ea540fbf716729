"""Deterministic distractor text: varied English-like sentences built from word lists.

The text carries no digits, names or the words "secret"/"code", so it cannot be confused with
the needle or with a numeric answer. For a given ``seed`` the sentences form one endless
stream, and ``distractor_text(n, seed)`` is its first ``n`` words (a cut sentence is closed
with a full stop), so a longer text always starts with the shorter one.
"""

from __future__ import annotations

import random
from collections import OrderedDict

__all__ = ["distractor_sentences", "distractor_text"]

_ADJ = (
    "quiet bright old small gentle distant busy patient narrow curious tired careful golden "
    "silent early heavy simple clever humble modest wooden crowded calm proud eager sleepy "
    "ancient shallow steady friendly pale rough"
).split()
_NOUN = (
    "farmer teacher river village merchant painter traveler garden bridge lantern student "
    "sailor baker window forest market letter mountain kitchen engineer neighbor journey "
    "basket library tower harbor carpenter meadow musician orchard clock road"
).split()
_NOUN_PL = (
    "farmers children birds travelers students clouds merchants sailors neighbors workers "
    "visitors leaves horses bakers painters musicians"
).split()
_VERB_T = (
    "carried painted repaired watched followed described visited cleaned opened built "
    "remembered noticed admired measured borrowed polished"
).split()
_VERB_I_L = (
    "waited rested wandered listened smiled paused returned arrived worked sang laughed slept"
).split()
_VERB_PL = "gather talk walk travel sing rest argue wait work dream listen trade".split()
_ADV = (
    "slowly quietly carefully happily often rarely patiently gladly softly briefly calmly eagerly"
).split()
_PLACES = (
    "hill",
    "valley",
    "square",
    "station",
    "river bank",
    "old mill",
    "harbor",
    "school",
    "field",
    "chapel",
    "market",
    "bakery",
    "lake",
)
_TIME = "morning evening autumn winter spring summer afternoon weekend night season".split()
_PREP = "near beside behind across beyond above below along around past".split()


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _sentence(r: random.Random) -> str:
    c = r.choice
    t = r.randrange(10)
    if t == 0:
        s = (
            f"the {c(_ADJ)} {c(_NOUN)} {c(_VERB_T)} the {c(_ADJ)} {c(_NOUN)} "
            f"{c(_PREP)} the {c(_PLACES)}"
        )
    elif t == 1:
        s = f"every {c(_TIME)}, the {c(_NOUN)} {c(_VERB_I_L)} {c(_ADV)} {c(_PREP)} the {c(_PLACES)}"
    elif t == 2:
        s = (
            f"some {c(_NOUN_PL)} {c(_VERB_PL)} {c(_ADV)}, while others {c(_VERB_PL)} "
            f"{c(_PREP)} the {c(_PLACES)}"
        )
    elif t == 3:
        s = f"it was {_a(c(_ADJ))} {c(_TIME)} when the {c(_NOUN)} {c(_VERB_I_L)}"
    elif t == 4:
        s = f"nobody {c(_VERB_T)} the {c(_NOUN)} until the {c(_ADJ)} {c(_NOUN)} {c(_VERB_I_L)}"
    elif t == 5:
        s = f"{c(_NOUN_PL)} often {c(_VERB_PL)} {c(_PREP)} the {c(_ADJ)} {c(_PLACES)}"
    elif t == 6:
        s = (
            f"after the {c(_TIME)} ended, the {c(_ADJ)} {c(_NOUN)} {c(_VERB_T)} "
            f"{_a(c(_ADJ))} {c(_NOUN)}"
        )
    elif t == 7:
        s = f"the {c(_NOUN)} and the {c(_NOUN)} {c(_VERB_I_L)} together {c(_PREP)} the {c(_PLACES)}"
    elif t == 8:
        s = f"in the {c(_TIME)}, {c(_NOUN_PL)} {c(_VERB_PL)} {c(_ADV)}"
    else:
        s = f"the {c(_PLACES)} was {c(_ADJ)} and {c(_ADJ)} that {c(_TIME)}"
    return s[0].upper() + s[1:] + "."


class _Stream:
    """The growing sentence stream of one seed, with cumulative word counts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sentences: list[str] = []
        self.ends: list[int] = []  # ends[i] = words in sentences[0..i]

    def extend_to(self, n_words: int) -> None:
        total = self.ends[-1] if self.ends else 0
        while total < n_words:
            s = _sentence(self.rng)
            total += len(s.split())
            self.sentences.append(s)
            self.ends.append(total)


_CACHE: OrderedDict[int, _Stream] = OrderedDict()
_CACHE_SIZE = 256


def _stream(seed: int) -> _Stream:
    st = _CACHE.get(seed)
    if st is None:
        st = _CACHE[seed] = _Stream(seed)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(seed)
    return st


def distractor_sentences(n_words: int, seed: int = 0) -> list[str]:
    """The first ``n_words`` words of the stream of ``seed``, as sentences.

    Parameters
    ----------
    n_words : int
        Number of whitespace-separated words (>= 0).
    seed : int
        Stream seed.

    Returns
    -------
    list of str
        Sentences; the last one, if cut, ends with ``"."`` in place of its missing words.
    """
    if n_words <= 0:
        return []
    st = _stream(seed)
    st.extend_to(n_words)
    out: list[str] = []
    start = 0
    for sentence, end in zip(st.sentences, st.ends, strict=True):
        if end <= n_words:
            out.append(sentence)
            start = end
            if end == n_words:
                break
            continue
        words = sentence.split()[: n_words - start]
        out.append(" ".join(words).rstrip(",.") + ".")
        break
    return out


def distractor_text(n_words: int, seed: int = 0) -> str:
    """``n_words`` words of distractor text (sentences joined by single spaces)."""
    return " ".join(distractor_sentences(n_words, seed))
