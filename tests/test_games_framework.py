"""The game framework: episode loop, recorder, scores, registry, instances, runner, store,
transcripts and the CLI (scripted players only; no torch)."""

from __future__ import annotations

import json
import math

import pytest

from capscale.errors import FormatError, InvalidInputError, UnknownNameError
from capscale.games import (
    METRICS,
    ContextOverflow,
    GameMaster,
    MockPlayer,
    ProgrammaticPlayer,
    episode_table,
    get_game,
    list_games,
    load_instances,
    run_episode,
    run_game,
)
from capscale.games.instances import generate_instances, iter_instances, validate_instances
from capscale.games.players import BackendPlayer, format_messages
from capscale.games.transcript import write_transcript
from capscale.store import Store

TABOO = {"game_id": 0, "target_word": "apple", "related_word": ["fruit", "red", "tree"]}


def _taboo_players(clues, guesses):
    return [MockPlayer(clues, "m"), MockPlayer(guesses, "m")]


def test_import_is_torch_free():
    import subprocess
    import sys

    code = "import sys, capscale.games; capscale.games.list_games(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_and_did_you_mean():
    assert {"taboo", "wordle", "wordle_withclue", "wordle_withcritic"} <= set(list_games())
    assert get_game("Taboo").name == "taboo"
    with pytest.raises(UnknownNameError, match="did you mean 'taboo'"):
        get_game("tabo")
    with pytest.raises(KeyError):
        get_game("nope")


def test_metric_names_and_win_scores():
    res = run_episode(
        "taboo", _taboo_players(["CLUE: a sweet round snack"], ["GUESS: Apple."]), TABOO
    )
    assert res.status == "played"
    assert list(res.scores)[:8] == list(METRICS)
    assert res.scores["Success"] == 1 and res.scores["Lose"] == 0 and res.scores["Aborted"] == 0
    assert res.scores["Request Count"] == 2 and res.scores["Parsed Request Count"] == 2
    assert res.scores["Request Success Ratio"] == 1.0 and res.scores["Main Score"] == 100.0


def test_abort_sets_nan_main_score_and_counts():
    res = run_episode("taboo", _taboo_players(["It is a fruit"], []), TABOO)
    assert res.status == "aborted" and "CLUE:" in res.reason
    s = res.scores
    assert (s["Aborted"], s["Lose"], s["Success"]) == (1, 0, 0)
    assert math.isnan(s["Main Score"])
    assert (s["Request Count"], s["Parsed Request Count"], s["Violated Request Count"]) == (1, 0, 1)
    assert s["Request Success Ratio"] == 0.0


def test_recorder_rows_prompts_and_events():
    res = run_episode(
        "taboo",
        _taboo_players(
            ["CLUE: a sweet round snack", "CLUE: grows in orchards"],
            ["GUESS: pear", "GUESS: apple"],
        ),
        TABOO,
    )
    players = [(r["turn"], r["player"]) for r in res.turns]
    assert players == [
        (0, "GM"),
        (0, "Player 1"),
        (0, "Player 2"),
        (1, "GM"),
        (1, "Player 1"),
        (1, "Player 2"),
    ]
    p2 = res.turns[2]
    assert p2["prompt"][-1]["role"] == "user" and "CLUE: a sweet" in p2["prompt"][-1]["content"]
    assert p2["raw_reply"] == "GUESS: pear" and p2["parsed"] == "GUESS: pear"
    # the describer's second prompt alternates roles: user, assistant, user
    assert [m["role"] for m in res.turns[4]["prompt"]] == ["user", "assistant", "user"]
    types = [e["type"] for e in res.turns[0]["events"]]
    assert types[:4] == ["metadata", "send message", "get message", "parse"]
    seqs = [e["seq"] for r in res.turns if r["events"] for e in r["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert res.scores["Main Score"] == 50.0


def test_player_error_fails_episode_with_error_event():
    res = run_episode("taboo", _taboo_players([RuntimeError("GPU on fire")], []), TABOO)
    assert res.status == "failed" and "GPU on fire" in res.reason
    assert res.scores["Failed"] == 1 and res.scores["Aborted"] == 1
    ev = [e for r in res.turns if r["events"] for e in r["events"] if e["type"] == "error"]
    assert "RuntimeError: GPU on fire" in ev[0]["content"] and "traceback" in ev[0]


def test_context_overflow_aborts_with_reason():
    res = run_episode(
        "taboo", _taboo_players([ContextOverflow("prompt of 9000 tokens")], []), TABOO
    )
    assert res.status == "aborted" and "context exceeded" in res.reason
    assert res.scores["Aborted"] == 1 and math.isnan(res.scores["Main Score"])
    assert res.scores["Violated Request Count"] == 1
    assert "Failed" not in res.scores


def test_wrong_number_of_players():
    with pytest.raises(InvalidInputError, match="needs 2 players"):
        get_game("taboo")([MockPlayer([])], TABOO)


def test_custom_game_registration():
    from capscale.games import register_game

    @register_game("echo_test")
    class Echo(GameMaster):
        roles = ("Speaker",)

        def play(self):
            self.new_turn()
            self.add_user_message(0, "say hi")
            self.parse_or_abort(self.ask(0), str.strip)
            self.success = True

        def main_score(self):
            return 100.0

    assert "echo_test" in list_games()
    res = run_episode("echo_test", [ProgrammaticPlayer(lambda m: " hi ")], {"game_id": 1})
    assert res.scores["Main Score"] == 100.0 and res.turns[1]["parsed"] == "hi"

    with pytest.raises(InvalidInputError):
        register_game("bad")(int)  # type: ignore[type-var]


def test_game_ending_without_outcome_fails():
    class Stuck(GameMaster):
        roles = ("P",)

        def play(self):
            pass

    res = Stuck([MockPlayer([])], {"game_id": 0}).run()
    assert res.status == "failed" and "without success or loss" in res.reason


# -- instances -------------------------------------------------------------------------------


@pytest.mark.parametrize("game", ["taboo", "wordle", "wordle_withclue", "wordle_withcritic"])
def test_shipped_instances_are_reproducible(game):
    shipped = load_instances(game)
    assert len(shipped["experiments"]) == 3
    assert all(5 <= len(e["game_instances"]) <= 10 for e in shipped["experiments"])
    again = generate_instances(game, seed=shipped["seed"], n=shipped["n"])
    assert json.loads(json.dumps(again)) == shipped
    assert generate_instances(game, seed=1, n=shipped["n"]) != shipped


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level must be an object"),
        ('{"experiments": []}', "non-empty list"),
        ('{"experiments": [{"game_instances": []}]}', "non-empty string 'name'"),
        ('{"experiments": [{"name": "a"}]}', "list 'game_instances'"),
        ('{"experiments": [{"name": "a", "game_instances": [{"x": 1}]}]}', "needs a 'game_id'"),
        (
            '{"experiments": [{"name": "a", "game_instances": [{"game_id": 1}, {"game_id": 1}]}]}',
            "duplicate game_id",
        ),
        (
            '{"experiments": [{"name": "a", "game_instances": []}, '
            '{"name": "a", "game_instances": []}]}',
            "duplicate experiment",
        ),
    ],
)
def test_malformed_instance_files(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(FormatError, match=match):
        load_instances(p)


def test_missing_instance_file_and_unknown_experiment(tmp_path):
    with pytest.raises(FormatError, match="cannot read"):
        load_instances(tmp_path / "missing.json")
    with pytest.raises(UnknownNameError, match="did you mean 'taboo'"):
        load_instances("tabu")
    data = load_instances("taboo")
    with pytest.raises(UnknownNameError, match="did you mean 'high_en'"):
        iter_instances(data, "hgh_en")
    assert len(iter_instances(data, ["low_en"], limit=2)) == 2
    with pytest.raises(InvalidInputError):
        iter_instances(data, None, limit=-1)
    assert validate_instances({"experiments": [{"name": "x", "game_instances": []}]})


# -- players ---------------------------------------------------------------------------------


class _FakeTok:
    chat_template = None
    eos_token = "</s>"


class _FakeBackend:
    def __init__(self, max_length=50, reply="CLUE: x"):
        self.tokenizer = _FakeTok()
        self.max_length = max_length
        self.reply = reply
        self.requests = []

    def tok_encode(self, text):
        return text.split()

    def generate_until(self, reqs):
        self.requests.extend(reqs)
        return [self.reply for _ in reqs]


def test_backend_player_plain_format_and_overflow():
    b = _FakeBackend()
    p = BackendPlayer(b, "fake", max_new_tokens=10)
    assert p.respond([{"role": "user", "content": "hello there"}]) == "CLUE: x"
    req = b.requests[0]
    assert req.context == "user: hello there\nassistant:" and req.max_new_tokens == 10
    assert "</s>" in req.until and "\nuser:" in req.until
    with pytest.raises(ContextOverflow, match="exceeds the context of 50"):
        p.respond([{"role": "user", "content": "w " * 45}])
    with pytest.raises(InvalidInputError):
        BackendPlayer(b, temperature=0.7)
    with pytest.raises(InvalidInputError):
        BackendPlayer(b, max_new_tokens=0)


def test_format_messages_uses_chat_template():
    class Tok:
        chat_template = "x"

        def apply_chat_template(self, msgs, tokenize, add_generation_prompt):
            assert tokenize is False and add_generation_prompt is True
            return "|".join(m["content"] for m in msgs) + "|A:"

    assert format_messages(Tok(), [{"role": "user", "content": "q"}]) == "q|A:"


def test_mock_player_runs_out():
    with pytest.raises(IndexError, match="only 0 replies"):
        MockPlayer([]).respond([])


# -- runner + store --------------------------------------------------------------------------


class _Scripted:
    """A perfect taboo/wordle player reading the target from the prompt (deterministic)."""

    def __init__(self, name="scripted", fail_on=None):
        self.name = name
        self.fail_on = fail_on

    def respond(self, messages):
        text = messages[-1]["content"]
        first = messages[0]["content"]
        if self.fail_on and self.fail_on in first:
            raise RuntimeError("backend exploded")
        if "target word that you need to describe" in first:
            return "CLUE: something you may know"
        if first.startswith(
            "You are playing a collaborative word guessing game in which you have to guess"
        ):
            return "GUESS: wrong"
        return "guess: house\nexplanation: " + text[:5]


def test_run_game_store_resume_and_failure(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as store:
        data = load_instances("taboo")
        fail_word = data["experiments"][0]["game_instances"][1]["target_word"]
        players = [_Scripted(fail_on=f"\n{fail_word}\n"), _Scripted()]
        res = run_game(players, "taboo", "fp32", store, limit=2)
        assert res.n_episodes == 6 and res.failed == 1 and res.played == 5
        eps = store.episodes(score_prefix="")
        assert len(eps) == 6 and set(eps["model"]) == {"scripted"}
        turns = store.turns()
        # every model call is a row: 3 turns × 2 players + 3 GM rows per played episode
        per_ep = turns.groupby(["experiment", "episode_id"]).size()
        assert (per_ep.drop(("high_en", "1")) == 9).all()
        failed = eps[eps["Failed"] == 1]
        assert len(failed) == 1
        ev = json.loads(
            turns[
                (turns.episode_id == "1") & (turns.experiment == "high_en") & (turns.player == "GM")
            ].iloc[0]["events"]
        )
        assert any(e["type"] == "error" and "backend exploded" in e["content"] for e in ev)
        # aggregation leaves failed episodes out
        table = episode_table(store)
        assert len(table) == 5 and set(table["system"]) == {"scripted [fp32]"}
        # a finished run is not redone
        again = run_game(players, "taboo", "fp32", store, limit=2)
        assert again.skipped_run and again.n_episodes == 0 and again.run_id == res.run_id


def test_run_game_resumes_killed_run(tmp_path):
    with Store(tmp_path / "s.db") as store:
        calls = {"n": 0}

        class Killer:
            name = "k"

            def respond(self, messages):
                if len(messages) == 1:  # an episode's first call
                    calls["n"] += 1
                    if calls["n"] == 2 and not calls.get("done"):
                        calls["done"] = True
                        raise KeyboardInterrupt
                return "guess: house\nexplanation: x"

        with pytest.raises(KeyboardInterrupt):
            run_game(
                [Killer()],
                "wordle",
                "fp32",
                store,
                experiments="high_frequency_words_no_clue_no_critic",
                limit=3,
            )
        before = len(store.episodes())
        assert before == 1 and store.runs()["status"].tolist() == ["running"]
        res = run_game(
            [Killer()],
            "wordle",
            "fp32",
            store,
            experiments="high_frequency_words_no_clue_no_critic",
            limit=3,
        )
        assert res.n_skipped == before and res.n_episodes == 3 - before
        assert len(store.episodes()) == 3
        assert store.runs()["status"].tolist() == ["done"]


def test_run_game_bad_players():
    with pytest.raises(InvalidInputError, match="has 2 roles"):
        run_game([MockPlayer([]), MockPlayer([]), MockPlayer([])], "taboo", "fp32")
    with pytest.raises(InvalidInputError, match="respond"):
        run_game([1, 2], "taboo", "fp32")
    with pytest.raises(UnknownNameError, match="did you mean"):
        run_game([MockPlayer([])], "wordel", "fp32")


def test_transcript_and_cli(tmp_path, capsys):
    import argparse

    from capscale.cli.games_cmd import add_parser

    path = tmp_path / "s.db"
    with Store(path) as store:
        run_game([_Scripted(), _Scripted()], "taboo", "fp32", store, limit=1)
        run_game([_Scripted()], "wordle", "fp32", store, limit=1)
        rowid = store.conn.execute("SELECT id FROM episodes ORDER BY id LIMIT 1").fetchone()[0]
        out = tmp_path / "t.html"
        html = write_transcript(store, rowid, str(out))
        assert out.read_text() == html and "<html>" in html and "CLUE: something" in html
        run_id = store.runs()["run_id"].iloc[0]
        exp = store.episodes()["experiment"].iloc[0]
        assert write_transcript(store, f"{run_id}/{exp}/0") == html
        with pytest.raises(UnknownNameError):
            write_transcript(store, 9999)
        with pytest.raises(InvalidInputError):
            write_transcript(store, "a/b")

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(
        ["games", "score", "--store", str(path), "--n-resamples", "50", "--episodes"]
    )
    assert args.run(args) == 0
    text = capsys.readouterr().out
    assert "clemscore" in text and "taboo, % Played" in text and "wordle, Quality Score" in text
    args = parser.parse_args(
        [
            "games",
            "transcript",
            "--store",
            str(path),
            "--episode",
            str(rowid),
            "--out",
            str(tmp_path / "x.html"),
        ]
    )
    assert args.run(args) == 0 and (tmp_path / "x.html").exists()
    args = parser.parse_args(["games", "list"])
    assert args.run(args) == 0 and "wordle_withcritic" in capsys.readouterr().out
