"""Taboo (clembench 1.x): a describer explains a target word without the taboo words; a guesser
has ``max_turns`` (3) guesses.

Rules, as clembench's ``taboo/master.py`` (re-implemented):

- The describer must answer ``CLUE: <text>`` and the guesser ``GUESS: <word>``; a reply that
  does not start with its keyword aborts the episode (``invalid format``).
- A clue is checked word by word (lower-cased, punctuation removed, English stop words
  skipped): a word whose Snowball stem equals the stem of the target or of a taboo word breaks
  the rule. clembench ends the game then with an ``invalid clue`` event and scores it as
  **lost** (Main Score 0), not aborted; so do we.
- The guess (after ``GUESS:``, lower-cased, punctuation removed) equals the target → won.
- Main Score: 100 / (number of turns) when guessed, 0 when not guessed after ``max_turns``,
  NaN when aborted. Game-specific scores: ``Repetition-Guesser``, ``Repetition-Describer``.

Differences, documented: Request Count counts model calls (clembench's taboo scorer counts
one request per turn); the stemmer is NLTK's Snowball (English), as clembench, and the stop
word list is a compact English list written here (clembench downloads NLTK's list, which
needs network access).

Instances: ``game_instances`` = ``{"game_id", "target_word", "related_word": [3 taboo
words]}``, experiments ``high_en``/``medium_en``/``low_en`` (word frequency bands of a curated
list in :mod:`capscale.games._words`).
"""

from __future__ import annotations

import random
import re
from typing import Any

from ..errors import MissingDependencyError
from . import _words
from .master import GameMaster, ParseError, register_game

__all__ = ["Taboo", "check_clue", "normalize"]

DESCRIBER_PROMPT = """You are playing a collaborative word guessing game in which you have to \
describe a target word for another player to guess.

Rules:
(a) You have to reply in the form: CLUE: <some text>. Guesses from the other player will \
start with GUESS.
(b) You cannot use the target word itself, parts or morphological variants of it in your \
description.
(c) In addition, the same rules apply for related words which are provided below.

End conditions:
(i) If you use the target word or a related word in your description, then you lose.
(ii) If the other player can guess the target word in $N$ tries, you both win.

Let us start.

This is the target word that you need to describe and that the other player needs to guess:

$TARGET_WORD$

Related words are:

$REL_WORD$

Important: You are under time pressure, give short descriptions that are to the point!"""

GUESSER_PROMPT = """You are playing a collaborative word guessing game in which you have to \
guess a target word that another player describes to you.

You can make one guess at each trial. You win when you guess the target word. You lose when \
you cannot guess it in $N$ tries.

After each trial you will get a new hint from the other player which starts with CLUE.

Make your guesses by just saying the word using the following form: GUESS: <a word>

Let us start."""

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalize(text: str) -> str:
    """Lower-case and remove punctuation (clembench's ``remove_punctuation``), strip."""
    return _PUNCT.sub("", text).strip().lower()


_STEMMER: Any = None


def _stem(word: str) -> str:
    global _STEMMER
    if _STEMMER is None:
        try:
            from nltk.stem.snowball import SnowballStemmer
        except ImportError:  # pragma: no cover - nltk is a dependency of the games
            raise MissingDependencyError(
                "taboo checks clues with NLTK's Snowball stemmer: pip install nltk"
            ) from None
        _STEMMER = SnowballStemmer("english")
    return str(_STEMMER.stem(word))


def check_clue(clue: str, target: str, related: list[str]) -> list[str]:
    """Rule violations of a clue (empty when valid): clue words whose stem is the stem of the
    target word or of a related (taboo) word."""
    words = [w for w in normalize(clue.replace("CLUE:", "")).split() if w not in STOP_WORDS]
    target_stem = _stem(target.lower())
    related_stems = [(r, _stem(r.lower())) for r in related]
    errors = []
    for w in words:
        s = _stem(w)
        if s == target_stem:
            errors.append(
                f"target word {target!r} (stem {target_stem}) is similar to clue word {w!r}"
            )
        for r, rs in related_stems:
            if s == rs:
                errors.append(f"related word {r!r} (stem {rs}) is similar to clue word {w!r}")
    return errors


def _keyword_parser(keyword: str) -> Any:
    def parse(reply: str) -> str:
        if not reply.startswith(keyword):
            raise ParseError(f"reply does not start with {keyword!r}")
        return reply

    return parse


@register_game("taboo")
class Taboo(GameMaster):
    """Taboo: Player 1 describes (``CLUE:``), Player 2 guesses (``GUESS:``)."""

    roles = ("Describer", "Guesser")
    version = "1.0"

    def setup(self, **instance: Any) -> None:
        self.target = str(instance["target_word"])
        self.related = [str(w) for w in instance["related_word"]]
        self.max_turns = int(self.experiment.get("max_turns", 3))
        rel = "\n".join(f"- {w}" for w in self.related)
        self.describer_prompt = (
            DESCRIBER_PROMPT.replace("$TARGET_WORD$", self.target)
            .replace("$REL_WORD$", rel)
            .replace("$N$", str(self.max_turns))
        )
        self.guesser_prompt = GUESSER_PROMPT.replace("$N$", str(self.max_turns))
        self.guesses: list[str] = []
        self.clues: list[str] = []

    def play(self) -> None:
        self.add_user_message(0, self.describer_prompt)
        while True:
            self.new_turn()
            clue_reply = self.ask(0)
            self.parse_or_abort(clue_reply, _keyword_parser("CLUE:"))
            clue = normalize(clue_reply.replace("CLUE:", ""))
            errors = check_clue(clue_reply, self.target, self.related)
            if errors:
                self.log_event("invalid clue", errors[0])
                self.lose = True
                return
            self.clues.append(clue)
            self.log_event("clue", clue)
            if self.turn == 0:
                self.add_user_message(1, f"{self.guesser_prompt}\n\n{clue_reply}")
            else:
                self.add_user_message(1, clue_reply)
            guess_reply = self.ask(1)
            self.parse_or_abort(guess_reply, _keyword_parser("GUESS:"))
            guess = normalize(guess_reply.replace("GUESS:", ""))
            self.guesses.append(guess)
            self.log_event("guess", guess)
            if guess == self.target.lower():
                self.log_event("correct guess", "end game")
                self.success = True
                return
            if self.n_turns >= self.max_turns:
                self.log_event("max turns reached", str(self.max_turns))
                self.lose = True
                return
            self.add_user_message(0, guess_reply)

    def main_score(self) -> float:
        return 100.0 / self.n_turns if self.success else 0.0

    def extra_scores(self) -> dict[str, float]:
        rep_g = sum(1 for a, b in zip(self.guesses, self.guesses[1:], strict=False) if a == b)
        rep_d = sum(1 for a, b in zip(self.clues, self.clues[1:], strict=False) if a == b)
        return {"Repetition-Guesser": rep_g, "Repetition-Describer": rep_d}

    @classmethod
    def generate_instances(cls, seed: int = 0, n: int = 6) -> dict[str, Any]:
        """``n`` targets per frequency band (high/medium/low), drawn with ``seed``."""
        rng = random.Random(seed)
        exps = []
        for band in ("high", "medium", "low"):
            words = sorted(_words.TABOO[band])
            chosen = rng.sample(words, min(n, len(words)))
            insts = [
                {"game_id": k, "target_word": w, "related_word": list(_words.TABOO[band][w])}
                for k, w in enumerate(chosen)
            ]
            exps.append({"name": f"{band}_en", "max_turns": 3, "game_instances": insts})
        return {"experiments": exps}
