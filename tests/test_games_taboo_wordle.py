"""Rules and Main Scores of taboo and the wordle family, with scripted players."""

from __future__ import annotations

import math

import pytest

from capscale.games import MockPlayer, run_episode
from capscale.games.taboo import check_clue
from capscale.games.wordle import feedback, parse_critic, parse_guess, speed, word_error

TABOO = {"game_id": 0, "target_word": "apple", "related_word": ["fruit", "red", "tree"]}
EXP = {"name": "high_en", "max_turns": 3}


def taboo(clues, guesses):
    return run_episode("taboo", [MockPlayer(clues), MockPlayer(guesses)], TABOO, EXP)


# -- taboo ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_taboo_win_in_n_turns(n):
    clues = [f"CLUE: hint number {k}" for k in range(n)]
    guesses = ["GUESS: pear"] * (n - 1) + ["GUESS: apple"]
    res = taboo(clues, guesses)
    assert res.status == "played" and res.scores["Success"] == 1
    assert res.scores["Main Score"] == pytest.approx(100 / n)
    assert res.scores["Request Count"] == 2 * n
    assert res.scores["Repetition-Guesser"] == max(0, n - 2)


def test_taboo_loss_after_three_guesses():
    res = taboo(["CLUE: a", "CLUE: b", "CLUE: c"], ["GUESS: x", "GUESS: y", "GUESS: z"])
    s = res.scores
    assert (s["Aborted"], s["Lose"], s["Success"], s["Main Score"]) == (0, 1, 0, 0.0)
    assert s["Request Count"] == 6


@pytest.mark.parametrize(
    ("clues", "guesses", "reason"),
    [
        (["The clue is sweet"], [], "CLUE:"),
        (["clue: lowercase keyword"], [], "CLUE:"),
        (["CLUE: sweet"], ["It is an apple"], "GUESS:"),
        (["CLUE: sweet", "no keyword"], ["GUESS: pear"], "CLUE:"),
    ],
)
def test_taboo_aborts_on_format(clues, guesses, reason):
    res = taboo(clues, guesses)
    assert res.status == "aborted" and reason in res.reason
    assert res.scores["Aborted"] == 1 and math.isnan(res.scores["Main Score"])
    assert res.scores["Violated Request Count"] == 1


@pytest.mark.parametrize(
    "clue",
    [
        "CLUE: an Apple a day",
        "CLUE: apples are great",
        "CLUE: fruity... no, a fruit!",
        "CLUE: reds",
        "CLUE: Trees grow it",
    ],
)
def test_taboo_words_and_variants_lose(clue):
    res = taboo([clue], [])
    assert res.status == "played" and res.scores["Lose"] == 1 and res.scores["Main Score"] == 0
    events = [e for r in res.turns if r["events"] for e in r["events"]]
    assert any(e["type"] == "invalid clue" for e in events)


def test_check_clue_stems_and_stopwords():
    assert check_clue("CLUE: running fast", "run", ["quick"])  # stem run
    assert check_clue("CLUE: the a of", "the", []) == []  # stop words are skipped
    assert check_clue("CLUE: crimson orchard produce", "apple", ["fruit", "red", "tree"]) == []


# -- wordle ---------------------------------------------------------------------------------

WORDLE = {"game_id": 0, "target_word": "house", "target_word_clue": "a place to live"}
WEXP = {"name": "w", "max_attempts": 6, "max_retry_per_error": 2}
WRONG = ["crane", "plant", "smile", "tiger", "spoon"]


def g(word, why="because"):
    return f"guess: {word}\nexplanation: {why}"


@pytest.mark.parametrize(
    ("game", "expected"),
    [
        ("wordle", [100, 100, 100, 50, 30, 20]),
        ("wordle_withclue", [100, 50, 100 / 3, 25, 20, 100 / 6]),
    ],
)
def test_wordle_main_score_by_attempts(game, expected):
    for n in range(1, 7):
        replies = [g(w) for w in WRONG[: n - 1]] + [g("house")]
        res = run_episode(game, [MockPlayer(replies)], WORDLE, WEXP)
        assert res.status == "played" and res.scores["Success"] == 1
        assert res.scores["Main Score"] == pytest.approx(expected[n - 1])
        assert res.scores["Attempts"] == n and res.scores["Request Count"] == n


def test_wordle_loss_after_six():
    res = run_episode("wordle", [MockPlayer([g(w) for w in [*WRONG, "bread"]])], WORDLE, WEXP)
    s = res.scores
    assert (s["Lose"], s["Success"], s["Aborted"], s["Main Score"]) == (1, 0, 0, 0.0)


def test_wordle_clue_in_prompt():
    p = MockPlayer([g("house")])
    run_episode("wordle_withclue", [p], WORDLE, WEXP)
    assert "clue: a place to live" in p.calls[0][0]["content"]
    p = MockPlayer([g("house")])
    run_episode("wordle", [p], WORDLE, WEXP)
    assert "clue:" not in p.calls[0][0]["content"]


def test_wordle_feedback_is_given():
    p = MockPlayer([g("horse"), g("house")])
    run_episode("wordle", [p], WORDLE, WEXP)
    assert "h<green> o<green> r<red> s<green> e<green>" in p.calls[1][-1]["content"]


@pytest.mark.parametrize(
    ("guess", "target", "fb"),
    [
        ("apple", "apple", "a<green> p<green> p<green> l<green> e<green>"),
        ("spree", "strap", "s<green> p<yellow> r<green> e<red> e<red>"),
        ("error", "strap", "e<red> r<red> r<green> o<red> r<red>"),
        ("start", "strap", "s<green> t<green> a<yellow> r<yellow> t<red>"),
        ("boost", "stoop", "b<red> o<yellow> o<green> s<yellow> t<yellow>"),
    ],
)
def test_feedback_letter_counts(guess, target, fb):
    assert feedback(guess, target) == fb


def test_speed_edges():
    assert [speed(n, True) for n in range(1, 7)] == [100, 100, 100, 50, 30, 20]
    assert speed(4, False) == 25
    with pytest.raises(ValueError):
        speed(0, True)


@pytest.mark.parametrize("bad", ["my guess is crane", "guess: crane", "explanation: nothing", ""])
def test_wordle_aborts_on_format(bad):
    res = run_episode("wordle", [MockPlayer([bad])], WORDLE, WEXP)
    assert res.status == "aborted" and res.scores["Aborted"] == 1
    assert math.isnan(res.scores["Main Score"]) and res.scores["Violated Request Count"] == 1


@pytest.mark.parametrize("bad", ["cat", "houses", "h0use", "qzxvw"])
def test_wordle_invalid_words_retry_then_abort(bad):
    res = run_episode("wordle", [MockPlayer([g(bad), g(bad), g("house")])], WORDLE, WEXP)
    assert res.status == "played" and res.scores["Success"] == 1
    assert res.scores["Violated Request Count"] == 2 and res.scores["Request Count"] == 3
    assert res.scores["Parsed Request Count"] == 1 and res.scores["Attempts"] == 1
    res = run_episode("wordle", [MockPlayer([g(bad)] * 3)], WORDLE, WEXP)
    assert res.status == "aborted" and res.scores["Violated Request Count"] == 3


def test_word_error_and_parsers():
    assert word_error("house", frozenset({"house"})) is None
    assert "five letters" in word_error("hous", None)
    assert "word list" in word_error("qzxvw", frozenset())
    assert parse_guess("Guess: House.\nExplanation: x") == {"guess": "house", "explanation": "x"}
    assert parse_critic("agreement: Yes\nexplanation: ok")["agreement"] == "yes"


# -- wordle with critic ---------------------------------------------------------------------


def test_withcritic_agree_disagree_and_change():
    guesser = MockPlayer([g("crane"), g("horse"), g("horse"), g("house")])
    critic = MockPlayer(["agreement: no\nexplanation: no", "agreement: yes\nexplanation: fine"])
    res = run_episode("wordle_withcritic", [guesser, critic], WORDLE, WEXP)
    s = res.scores
    assert res.status == "played" and s["Success"] == 1
    assert s["Attempts"] == 2 and s["Main Score"] == 50.0
    assert s["Critic Agreements"] == 1 and s["Changed Guesses"] == 2
    assert s["Request Count"] == 6
    assert "critic agreement: no" in guesser.calls[1][-1]["content"]
    assert (
        "guess: crane" in critic.calls[0][-1]["content"]
        and "clue: a place" in critic.calls[0][-1]["content"]
    )
    players = [r["player"] for r in res.turns if r["turn"] == 0]
    assert players == ["GM", "Player 1", "Player 1 (2)", "Player 2"]


@pytest.mark.parametrize("bad", ["I agree", "agreement: maybe\nexplanation: hm", "agreement: yes"])
def test_withcritic_aborts_on_critic_format(bad):
    res = run_episode(
        "wordle_withcritic", [MockPlayer([g("crane")]), MockPlayer([bad])], WORDLE, WEXP
    )
    assert res.status == "aborted" and res.scores["Aborted"] == 1
    assert math.isnan(res.scores["Main Score"])
