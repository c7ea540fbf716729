"""End-to-end self-play with real backends: a tiny config-built Llama (plumbing) and
SmolLM2-135M-Instruct (slow; small models mostly break the format, reported as % played)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _tiny_models import build_tiny_llama, smollm2_gguf
from capscale.eval.models import load_model
from capscale.games import episode_table, load_instances, run_game
from capscale.stats import clem_table
from capscale.store import Store

GAMES = (
    "taboo",
    "wordle",
    "wordle_withclue",
    "wordle_withcritic",
    "referencegame",
    "imagegame",
    "privateshared",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny"), max_positions=4096)
    return load_model(str(folder), name="tiny-llama", device="cpu")


def _check_turns(store, run_id, n_episodes):
    eps = store.episodes(run_id=run_id, score_prefix="")
    assert len(eps) == n_episodes
    turns = store.turns(run_id=run_id)
    for _, ep in eps.iterrows():
        mine = turns[(turns.experiment == ep.experiment) & (turns.episode_id == ep.episode_id)]
        calls = mine[mine.player != "GM"]
        # every model call of the episode is stored with its prompt and raw reply
        assert len(calls) == ep["Request Count"] >= 1
        assert calls["raw_reply"].notna().all()
        for p in calls["prompt"]:
            msgs = json.loads(p)
            assert msgs and msgs[-1]["role"] == "user"
        assert (mine.player == "GM").any()


@pytest.mark.parametrize("game", GAMES)
def test_tiny_model_self_play_stores_every_turn(tiny, tmp_path, game):
    with Store(tmp_path / "s.db") as store:
        res = run_game(tiny, game, "fp32", store, limit=1, max_new_tokens=8)
        n_experiments = len(load_instances(game)["experiments"])
        assert res.n_episodes == n_experiments and res.failed == 0
        _check_turns(store, res.run_id, n_experiments)
        df = episode_table(store)
        table = clem_table(df, model="system")
        assert table.loc["tiny-llama [fp32]", f"{game}, % Played"] == pytest.approx(
            100 * (1 - df["Aborted"].mean())
        )


def test_tiny_model_context_overflow_aborts_with_reason(tmp_path):
    folder = build_tiny_llama(tmp_path / "short", max_positions=64)
    loaded = load_model(str(folder), name="tiny-short", device="cpu")
    with Store(tmp_path / "s.db") as store:
        res = run_game(loaded, "taboo", "fp32", store, limit=1)
        assert res.aborted == 3 and res.failed == 0
        eps = store.episodes(score_prefix="")
        assert (eps["Aborted"] == 1).all() and eps["Main Score"].isna().all()
        ev = json.loads(store.turns().query("player == 'GM'").iloc[0]["events"])
        assert any("context exceeded" in str(e["content"]) for e in ev if e["type"] == "error")


def test_tiny_model_precision_is_applied_and_recorded(tiny, tmp_path):
    with Store(tmp_path / "s.db") as store:
        res = run_game(tiny, "wordle", "int4-g32", store, limit=1, max_new_tokens=4)
        runs = store.runs()
        assert runs["precision"].tolist() == ["int4-g32"] or "int4" in runs["precision"].iloc[0]
        rec = store.conn.execute("SELECT weight_error FROM runs").fetchone()[0]
        assert rec is not None and "relative_rmse" in rec
        assert res.n_episodes == 3
    tiny.restore()


@pytest.fixture(scope="module")
def smollm2():
    return load_model(str(smollm2_gguf()), name="smollm2-135m", device="cpu")


def test_smollm2_taboo_and_wordle(smollm2, tmp_path):
    with Store(tmp_path / "s.db") as store:
        for game, exp in (
            ("taboo", "high_en"),
            ("wordle", "high_frequency_words_no_clue_no_critic"),
        ):
            res = run_game(
                smollm2, game, "shipped", store, experiments=exp, limit=2, max_new_tokens=30
            )
            assert res.n_episodes == 2 and res.failed == 0
            _check_turns(store, res.run_id, 2)
        df = episode_table(store)
        table = clem_table(df, model="system")
        row = table.iloc[0]
        for game in ("taboo", "wordle"):
            played = row[f"{game}, % Played"]
            assert 0 <= played <= 100 and not math.isnan(played)
        assert 0 <= row["-, clemscore"] <= 100


def test_pair_of_different_models_plays_taboo(tiny, tmp_path):
    """Describer and guesser from two different models (here: the tiny model and an int8
    copy of it): the run is named after the pair and each player's calls are stored."""
    other = load_model(tiny.source, name="tiny-int8", device="cpu")
    from capscale.eval.precision import parse_precision

    parse_precision("int8").apply(other.backend.model)
    with Store(tmp_path / "pair.db") as store:
        res = run_game([tiny, other], "taboo", "shipped", store, limit=1, max_new_tokens=8)
        assert res.model == "tiny-llama--tiny-int8" and res.failed == 0
        runs = store.runs()
        assert runs["model"].tolist() == ["tiny-llama--tiny-int8"]
        turns = store.turns(run_id=res.run_id)
        assert "Player 1" in set(turns["player"])
