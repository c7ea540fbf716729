"""Wordle and its variants (clembench 1.x): ``wordle``, ``wordle_withclue``, ``wordle_withcritic``.

Rules, as clembench's ``wordle`` game (re-implemented):

- The guesser answers ``guess: <word>`` and ``explanation: <text>`` (one line each, keywords
  case-insensitive). A reply without both keywords aborts the episode (``invalid format``).
- A guess that is not five letters, or not in the game's word list, is rejected and the
  guesser is reprompted with the reason, at most ``max_retry_per_error`` (2) times per attempt;
  one more invalid word aborts. Each rejected reply counts as a violated request.
- A valid guess gets feedback per letter, as clembench's ``GuessValidator``:
  ``<letter><green>`` right place, ``<yellow>`` in the word elsewhere (letters counted, greens
  first), ``<red>`` not in the word; the target found → won; 6 attempts
  (``max_attempts``) without it → lost.
- ``wordle_withclue``: the first prompt adds a clue about the target word.
- ``wordle_withcritic``: after each valid guess, a critic (Player 2) sees the clue, the guess
  and its explanation and answers ``agreement: yes|no`` and ``explanation: <text>`` (other
  agreement values or missing keywords abort); its opinion is shared with the guesser, who
  answers again (keeping or changing the guess, same rules); that guess is played.

Main Score ("speed"), **clembench 1.6** (May 2024): plain ``wordle`` won in ≤3 attempts →
100, 4 → 50, 5 → 30, 6 → 20; ``wordle_withclue`` and ``wordle_withcritic`` → 100 / attempts
(v1.0 used 100 / attempts for all three); 0 when lost, NaN when aborted. Game-specific
scores: ``Attempts`` and, with the critic, ``Critic Agreements``, ``Changed Guesses``.

Instances: ``{"game_id", "target_word", "target_word_clue", "target_word_difficulty"}``,
experiments ``high_frequency_words_*``/``medium_*``/``low_*`` from the curated lists of
:mod:`capscale.games._words`.
"""

from __future__ import annotations

import random
import re
from typing import Any, ClassVar

from . import _words
from .master import GameMaster, ParseError, register_game

__all__ = ["Wordle", "WordleWithClue", "WordleWithCritic", "feedback", "speed"]

GUESSER_PROMPT = """You are a language wizard who likes to guess words by using the given \
rules.

Welcome to Wordle! You have six attempts to guess the target word, a valid English word of \
five lowercase letters (a-z). Please use the tags "guess:" and "explanation:" to provide a \
concise explanation for each guess.

For instance, if you guess "apple", your response should be
guess: apple
explanation: this is a common five-letter English word, and I am starting my guess with this \
word.

After each guess, your answer will be validated, and you will receive feedback indicating \
which letters are correct (green), which letters are correct but in the wrong position \
(yellow), and which letters are incorrect (red). This feedback can be useful in determining \
which letters to include or exclude in your next guess.

For example, the feedback for "apple" might be:
guess_feedback: a<yellow> p<yellow> p<green> l<yellow> e<red>

Let's begin with your first guess."""

CLUE_LINE = "\n\nclue: {clue}"

CRITIC_PROMPT = """I need your assistance with a word game in which we need to find a \
5-letter word using a clue, a guess and an explanation for the guess.

Please check if the guess word is a sensible answer to the clue and to the feedback so far. \
If you agree, answer "agreement: yes", otherwise "agreement: no", and give a short reason \
on a line starting with "explanation:". For example:
agreement: no
explanation: the guess does not match the clue.

clue: {clue}
{history}guess: {guess}
explanation: {explanation}"""

_LINE = re.compile(r"^\s*(guess|explanation|agreement)\s*:\s*(.*)$", re.IGNORECASE)


def _fields(reply: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in reply.splitlines():
        m = _LINE.match(line)
        if m and m.group(1).lower() not in out:
            out[m.group(1).lower()] = m.group(2).strip()
    return out


def parse_guess(reply: str) -> dict[str, str]:
    """``{"guess", "explanation"}`` from a guesser reply; :class:`ParseError` without both
    keywords."""
    f = _fields(reply)
    if "guess" not in f or "explanation" not in f:
        raise ParseError("reply needs a 'guess:' line and an 'explanation:' line")
    return {"guess": f["guess"].strip().strip(".\"'").lower(), "explanation": f["explanation"]}


def parse_critic(reply: str) -> dict[str, str]:
    """``{"agreement": "yes"|"no", "explanation"}`` from a critic reply."""
    f = _fields(reply)
    if "agreement" not in f or "explanation" not in f:
        raise ParseError("critic reply needs an 'agreement:' line and an 'explanation:' line")
    agree = f["agreement"].strip().strip(".").lower()
    if agree not in ("yes", "no"):
        raise ParseError(f"agreement must be 'yes' or 'no', got {f['agreement']!r}")
    return {"agreement": agree, "explanation": f["explanation"]}


def feedback(guess: str, target: str) -> str:
    """Per-letter feedback ``"a<green> b<yellow> c<red> ..."`` (greens first, letters
    counted, as clembench's ``GuessValidator``)."""
    result = ["red"] * len(target)
    remaining: list[str | None] = list(target)
    for i, ch in enumerate(guess):
        if ch == target[i]:
            result[i] = "green"
            remaining[i] = None
    for i, ch in enumerate(guess):
        if result[i] != "green" and ch in remaining:
            result[i] = "yellow"
            remaining[remaining.index(ch)] = None
    return " ".join(f"{ch}<{c}>" for ch, c in zip(guess, result, strict=False))


def speed(attempts: int, plain: bool) -> float:
    """Main Score of a won game: clembench 1.6's table for plain wordle, 100/attempts else."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if not plain:
        return 100.0 / attempts
    if attempts <= 3:
        return 100.0
    return {4: 50.0, 5: 30.0}.get(attempts, 20.0)


def word_error(guess: str, words: frozenset[str] | None) -> str | None:
    """Why a guess is not a valid word (``None`` when valid)."""
    if len(guess) != 5 or not guess.isalpha() or not guess.isascii():
        return f"the word {guess!r} does not have five letters (a-z)"
    if words is not None and guess not in words:
        return f"{guess!r} is not a valid word in the game's word list"
    return None


@register_game("wordle")
class Wordle(GameMaster):
    """Plain Wordle: one guesser, programmatic feedback."""

    roles: ClassVar[tuple[str, ...]] = ("Guesser",)
    version = "1.6"
    use_clue = False
    use_critic = False

    def setup(self, **instance: Any) -> None:
        self.target = str(instance["target_word"]).strip().lower()
        self.clue = str(instance.get("target_word_clue", "")).strip()
        self.max_attempts = int(self.experiment.get("max_attempts", 6))
        self.max_retry = int(self.experiment.get("max_retry_per_error", 2))
        self.words: frozenset[str] | None = _words.VALID_GUESSES | {self.target}
        if not self.experiment.get("check_word_list", True):
            self.words = None
        self.attempts = 0
        self.history_lines: list[str] = []
        self.critic_agreements = 0
        self.changed_guesses = 0

    def _first_prompt(self) -> str:
        text = GUESSER_PROMPT
        if self.use_clue or self.use_critic:
            text += CLUE_LINE.format(clue=self.clue)
        return text

    def _get_guess(self) -> dict[str, str]:
        """Ask the guesser until it gives a valid word (retries), abort otherwise."""
        retries = 0
        while True:
            reply = self.ask(0)
            parsed = self.parse_or_abort(reply, parse_guess)
            err = word_error(parsed["guess"], self.words)
            if err is None:
                return parsed
            self._parsed -= 1  # parsed the format, but the word breaks a rule
            if retries >= self.max_retry:
                self.abort(err)
            self.reject(err)
            retries += 1
            self.add_user_message(0, f"{err}. Please try again with a valid five-letter word.")

    def _critic(self, parsed: dict[str, str]) -> dict[str, str]:
        history = "".join(f"{line}\n" for line in self.history_lines)
        self.add_user_message(
            1,
            CRITIC_PROMPT.format(
                clue=self.clue,
                history=history,
                guess=parsed["guess"],
                explanation=parsed["explanation"],
            ),
        )
        opinion = self.parse_or_abort(self.ask(1), parse_critic)
        self.log_event("critic opinion", opinion, from_="Player 2")
        if opinion["agreement"] == "yes":
            self.critic_agreements += 1
        self.add_user_message(
            0,
            f"critic agreement: {opinion['agreement']}\ncritic explanation: "
            f"{opinion['explanation']}\nYou may keep or change your guess; answer with "
            "guess: and explanation: as before.",
        )
        return opinion

    def play(self) -> None:
        self.add_user_message(0, self._first_prompt())
        while True:
            self.new_turn()
            parsed = self._get_guess()
            if self.use_critic:
                before = parsed["guess"]
                self._critic(parsed)
                parsed = self._get_guess()
                if parsed["guess"] != before:
                    self.changed_guesses += 1
            guess = parsed["guess"]
            self.attempts += 1
            fb = feedback(guess, self.target)
            self.history_lines.append(f"guess: {guess}\nguess_feedback: {fb}")
            self.log_event(
                "metadata",
                {"attempts": self.attempts, "guess": guess, "guess_feedback": fb},
            )
            if guess == self.target:
                self.log_event("correct guess", guess)
                self.success = True
                return
            if self.attempts >= self.max_attempts:
                self.log_event("max attempts reached", str(self.max_attempts))
                self.lose = True
                return
            self.add_user_message(
                0, f"guess_feedback: {fb}\n\nProvide your next guess (guess: / explanation:)."
            )

    def main_score(self) -> float:
        return (
            speed(self.attempts, plain=not (self.use_clue or self.use_critic))
            if self.success
            else 0.0
        )

    def extra_scores(self) -> dict[str, float]:
        out: dict[str, float] = {"Attempts": self.attempts}
        if self.use_critic:
            out["Critic Agreements"] = self.critic_agreements
            out["Changed Guesses"] = self.changed_guesses
        return out

    @classmethod
    def generate_instances(cls, seed: int = 0, n: int = 6) -> dict[str, Any]:
        """``n`` targets per frequency band, drawn with ``seed``."""
        rng = random.Random(seed)
        exps = []
        for band in ("high", "medium", "low"):
            words = sorted(_words.WORDLE[band])
            chosen = rng.sample(words, min(n, len(words)))
            insts = [
                {
                    "game_id": k,
                    "target_word": w,
                    "target_word_clue": _words.WORDLE[band][w],
                    "target_word_difficulty": band,
                }
                for k, w in enumerate(chosen)
            ]
            exps.append(
                {
                    "name": f"{band}_frequency_words_{cls._suffix()}",
                    "max_attempts": 6,
                    "max_retry_per_error": 2,
                    "game_instances": insts,
                }
            )
        return {"experiments": exps}

    @classmethod
    def _suffix(cls) -> str:
        if cls.use_critic:
            return "clue_with_critic"
        return "clue_no_critic" if cls.use_clue else "no_clue_no_critic"


@register_game("wordle_withclue")
class WordleWithClue(Wordle):
    """Wordle with a clue about the target word."""

    use_clue = True


@register_game("wordle_withcritic")
class WordleWithCritic(Wordle):
    """Wordle with a clue and a critic (Player 2) that agrees or disagrees with each guess."""

    roles = ("Guesser", "Critic")
    use_clue = True
    use_critic = True
