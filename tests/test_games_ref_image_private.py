"""referencegame, imagegame and privateshared: rules, Main Scores, instances, store plumbing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from capscale.errors import FormatError
from capscale.games import (
    MockPlayer,
    ProgrammaticPlayer,
    generate_instances,
    get_game,
    load_instances,
    run_episode,
    run_game,
)
from capscale.games import imagegame as ig
from capscale.games import privateshared as ps
from capscale.games import referencegame as rg
from capscale.games.instances import instances_path, iter_instances

GAMES = ("referencegame", "imagegame", "privateshared")


def first_instance(game: str, experiment: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    data = load_instances(game)
    exp = data["experiments"][experiment]
    params = {k: v for k, v in exp.items() if k != "game_instances"}
    return params, dict(exp["game_instances"][0])


# ================================================================== referencegame


def ref_episode(p1: list[str], p2: list[str], experiment: int = 0) -> Any:
    exp, inst = first_instance("referencegame", experiment)
    players = [MockPlayer(p1, "describer"), MockPlayer(p2, "chooser")]
    return run_episode("referencegame", players, inst, exp), inst, players


def test_referencegame_win() -> None:
    _, inst = first_instance("referencegame")
    res, inst, players = ref_episode(
        ["Expression: The frame with a gap."], [f"Answer: {inst['target_grid_name']}"]
    )
    assert res.status == "played"
    s = res.scores
    assert (s["Success"], s["Lose"], s["Aborted"], s["Main Score"]) == (1, 0, 0, 100.0)
    assert (s["Request Count"], s["Parsed Request Count"], s["Violated Request Count"]) == (2, 2, 0)
    assert s["Generated Expression Length"] == len("The frame with a gap.")
    assert s["Generated Expression Number of Tokens"] == 5
    # the chooser sees the three grids in its order and the describer's reply
    prompt = players[1].calls[0][-1]["content"]
    assert "Expression: The frame with a gap." in prompt
    for g in inst["player_2_grids"]:
        assert g in prompt
    assert inst["target_grid"] in players[0].calls[0][-1]["content"]


@pytest.mark.parametrize("case", ["ANSWER: {}", "answer:{}\n\n", "Answer:  {}"])
def test_referencegame_choice_is_case_insensitive(case: str) -> None:
    _, inst = first_instance("referencegame")
    res, _, _ = ref_episode(["expression: it"], [case.format(inst["target_grid_name"].upper())])
    assert res.scores["Success"] == 1


def test_referencegame_loss() -> None:
    _, inst = first_instance("referencegame")
    wrong = next(n for n in rg.ANSWER_NAMES if n != inst["target_grid_name"])
    res, _, _ = ref_episode(["Expression: it"], [f"Answer: {wrong}"])
    s = res.scores
    assert res.status == "played"
    assert (s["Success"], s["Lose"], s["Aborted"], s["Main Score"]) == (0, 1, 0, 0.0)


@pytest.mark.parametrize(
    "reply",
    [
        "The frame.",  # no tag
        "Sure! Expression: the frame",  # tag not at the start
        "Expression:",  # no expression
        "Expression: the frame\nIt has a gap.",  # a second paragraph
    ],
)
def test_referencegame_abort_describer(reply: str) -> None:
    res, _, players = ref_episode([reply], [])
    s = res.scores
    assert res.status == "aborted" and res.reason == rg.REASON_EXPRESSION
    assert s["Aborted"] == 1 and s["Success"] == 0 and s["Lose"] == 0
    assert math.isnan(s["Main Score"])
    assert (s["Request Count"], s["Parsed Request Count"], s["Violated Request Count"]) == (1, 0, 1)
    assert players[1].calls == []


@pytest.mark.parametrize(
    "reply", ["first", "Answer: fourth", "Answer: first.", "Answer: first\nbecause", "Answer: 1"]
)
def test_referencegame_abort_chooser(reply: str) -> None:
    res, _, _ = ref_episode(["Expression: it"], [reply])
    s = res.scores
    assert res.status == "aborted" and res.reason == rg.REASON_CHOICE
    assert math.isnan(s["Main Score"])
    assert (s["Request Count"], s["Parsed Request Count"], s["Violated Request Count"]) == (2, 1, 1)


def test_referencegame_parsers() -> None:
    assert rg.parse_expression("Expression: a T\n\n") == "a T"
    assert rg.parse_expression("Expression: a T\n x") is None
    assert rg.parse_choice("Answer: Third") == "Third"
    assert rg.main_score(True, aborted=False) == 100.0
    assert rg.main_score(False, aborted=False) == 0.0
    assert math.isnan(rg.main_score(True, aborted=True))


def test_referencegame_instances_follow_clembench_1_0() -> None:
    data = generate_instances("referencegame", seed=3, n=5)
    assert [e["name"] for e in data["experiments"]] == ["edit_distance_2", "edit_distance_4"]
    for exp in data["experiments"]:
        assert len(exp["game_instances"]) == 5
        for inst in exp["game_instances"]:
            rg.validate_instance(inst)
            t = inst["target_grid"]
            assert t.count("X") >= 10
            a, b = inst["distractor_grids"]
            assert a != b and t not in (a, b)
            assert rg.edit_distance(t, a) == rg.edit_distance(t, b) == exp["edit_distance"]
            # distractors only lose filled cells
            assert a.count("X") == t.count("X") - exp["edit_distance"]
    names = [i["target_grid_name"] for e in data["experiments"] for i in e["game_instances"]]
    assert len(set(names)) > 1  # the target's position for Player 2 varies


# ================================================================== imagegame

TARGET = "A A A A A\nA ▢ ▢ ▢ A\nA ▢ ▢ ▢ A\nA ▢ ▢ ▢ A\nA A A A A"
TOP_ROW = "A A A A A\n▢ ▢ ▢ ▢ ▢\n▢ ▢ ▢ ▢ ▢\n▢ ▢ ▢ ▢ ▢\n▢ ▢ ▢ ▢ ▢"
WRONG = "▢ ▢ ▢ ▢ ▢\n▢ B B B ▢\n▢ B ▢ B ▢\n▢ B B B ▢\n▢ ▢ ▢ ▢ ▢"


def image_episode(p1: list[str], p2: list[str], target: str = TARGET) -> Any:
    inst = {"game_id": 0, "target_grid": target, "grid_dimension": 5}
    players = [MockPlayer(p1, "giver"), MockPlayer(p2, "drawer")]
    return run_episode("imagegame", players, inst, {"name": "compact_grids"}), players


def test_imagegame_win_f1_100() -> None:
    res, players = image_episode(
        ["Instruction: Fill the border with A", "Instruction: DONE"], [f"\n{TARGET}\n"]
    )
    s = res.scores
    assert res.status == "played"
    assert (s["Main Score"], s["F1"], s["Success"], s["Lose"], s["Aborted"]) == (100, 100, 1, 0, 0)
    assert (s["Request Count"], s["Parsed Request Count"], s["Violated Request Count"]) == (3, 3, 0)
    # turn 0 carries the task and the target; later turns only the question
    assert TARGET in players[0].calls[0][-1]["content"]
    assert players[0].calls[1][-1]["content"] == ig.QUESTION
    assert players[1].calls[0][-1]["content"].endswith("Instruction: Fill the border with A")


def test_imagegame_partial_f1() -> None:
    res, _ = image_episode(["Instruction: Fill the top row with A", "Instruction: DONE"], [TOP_ROW])
    # precision 1, recall 5/16 = 0.3125 → F1 = 0.4762 → 48
    s = res.scores
    assert (s["Precision"], s["Recall"], s["F1"], s["Main Score"]) == (100, 31, 48, 48)
    assert s["Success"] == 0 and s["Lose"] == 1


def test_imagegame_f1_zero_and_done_at_once() -> None:
    res, _ = image_episode(["Instruction: draw a B ring", "Instruction: DONE"], [WRONG])
    assert res.scores["Main Score"] == 0 and res.scores["Lose"] == 1
    res, _ = image_episode(["Instruction: DONE"], [])
    assert res.status == "played" and res.scores["Main Score"] == 0
    assert math.isnan(res.scores["Average Changed Cell Count"])


def test_imagegame_last_grid_counts_and_empty_drawing_keeps_scores() -> None:
    res, _ = image_episode(
        ["Instruction: a", "Instruction: b", "Instruction: DONE"], [TARGET, TOP_ROW]
    )
    assert res.scores["Main Score"] == 48  # the last drawn grid, not the best
    res, _ = image_episode(
        ["Instruction: a", "Instruction: b", "Instruction: DONE"], [TARGET, ig.EMPTY_GRID]
    )
    assert res.scores["Main Score"] == 100  # clembench keeps the previous scores then


def test_imagegame_turn_limit() -> None:
    res, players = image_episode(["Instruction: again"] * 25, [TARGET] * 25)
    assert res.status == "played" and res.scores["Success"] == 1
    assert len(players[0].calls) == ig.MAX_TURNS == 25
    assert res.scores["Request Count"] == 50
    assert res.scores["Average Changed Cell Count"] == round(16 / 25, 4)


@pytest.mark.parametrize(
    "reply",
    [
        "Put an A in the top left.",  # no tag
        "Instruction:put an A",  # the tag needs one space after it
        "Instruction: ",  # no instruction
        "Instruction: put an A\nInstruction: put a B",  # two lines
    ],
)
def test_imagegame_abort_giver(reply: str) -> None:
    res, _ = image_episode([reply], [])
    assert res.status == "aborted" and res.reason == ig.REASON_INSTRUCTION
    assert math.isnan(res.scores["Main Score"]) and res.scores["Aborted"] == 1
    assert res.scores["Violated Request Count"] == 1


@pytest.mark.parametrize(
    "reply",
    [
        "Here is the grid:\n" + TARGET,  # extra text
        TARGET.lower(),  # lower-case letters
        "\n".join(TARGET.split("\n")[:4]),  # four rows
        TARGET.replace("A A A A A", "A A A A", 1),  # a short row
        TARGET.replace("▢", "."),  # another empty marker
    ],
)
def test_imagegame_abort_drawer(reply: str) -> None:
    res, _ = image_episode(["Instruction: draw"], [reply])
    assert res.status == "aborted" and res.reason == ig.REASON_GRID
    assert res.scores["Request Count"] == 2 and res.scores["Parsed Request Count"] == 1


def test_imagegame_done_variants_and_evaluator() -> None:
    assert ig.is_done("instruction: done") and ig.is_done("Instruction:DONE.")
    assert not ig.is_done("Instruction: Doneness")  # a word boundary after "done"
    assert ig.parse_instruction("Instruction: put A\n") == "Instruction: put A"
    assert ig.evaluate_grid(TARGET, TARGET) == (100.0, 100.0, 100.0)
    assert ig.evaluate_grid(TARGET, WRONG) == (0.0, 0.0, 0.0)
    assert ig.evaluate_grid(TARGET, ig.EMPTY_GRID) is None
    assert ig.evaluate_grid(TARGET, "A A\nA A") == (0.0, 0.0, 0.0)
    assert ig.changed_cells(ig.EMPTY_GRID, TARGET) == 16
    assert ig.is_success(99) and not ig.is_success(98)


def test_imagegame_instances() -> None:
    data = generate_instances("imagegame", seed=1, n=5)
    assert [e["name"] for e in data["experiments"]] == ["compact_grids", "random_grids"]
    compact, scattered = (e["game_instances"] for e in data["experiments"])
    for c, r in zip(compact, scattered, strict=False):
        ig.validate_instance(c)
        ig.validate_instance(r)
        (letter,) = set(c["target_grid"].split()) - {ig.EMPTY}
        assert set(r["target_grid"].split()) - {ig.EMPTY} == {letter}
        assert 1 <= r["number_of_letters"] <= 10
    letters = [next(iter(set(c["target_grid"].split()) - {ig.EMPTY})) for c in compact]
    assert len(set(letters)) == len(letters)


# ================================================================== privateshared


def ps_instance(experiment: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    return first_instance("privateshared", experiment)


def ps_script(
    inst: dict[str, Any],
    *,
    probe: Any = None,
    answer: Any = None,
) -> list[str]:
    """The replies of an answerer: ``probe(t, slot, gt)`` and ``answer(slot, value)``."""
    probe = probe or (lambda t, slot, gt: "ASIDE: yes" if gt else "ASIDE: no")
    answer = answer or (lambda slot, value: f"ANSWER: {value}.")
    revealed = {s: i for i, s in enumerate(inst["request_order"])}
    out = [probe(0, s, 0) for s in inst["probes"]["0"]]
    for t, slot in enumerate(inst["request_order"]):
        out.append(answer(slot, inst["slots"][slot]))
        out += [probe(t + 1, s, int(t + 1 > revealed[s])) for s in inst["probes"][str(t + 1)]]
    return out


def ps_episode(replies: list[str], experiment: int = 0) -> Any:
    exp, inst = ps_instance(experiment)
    player = MockPlayer(replies, "answerer")
    return run_episode("privateshared", [player], inst, exp), player


@pytest.mark.parametrize("experiment", [0, 1, 2])
def test_privateshared_perfect_run(experiment: int) -> None:
    _, inst = ps_instance(experiment)
    res, player = ps_episode(ps_script(inst), experiment)
    s = res.scores
    assert res.status == "played"
    assert (s["Main Score"], s["Success"], s["Lose"], s["Aborted"]) == (100.0, 1, 0, 0)
    assert s["Kappa"] == 1.0 and s["Slot-Filling-Accuracy"] == 1.0 and s["Accuracy"] == 1.0
    n_slots = len(inst["slots"])
    assert s["Request Count"] == n_slots + (n_slots + 1) * n_slots
    assert s["Violated Request Count"] == 0
    assert res.keys["Played Probe Rounds"] == n_slots + 1
    # probes are asides: never part of the dialogue history of a later call
    for call in player.calls:
        assert not any(m["content"].startswith(ps.ME) for m in call[:-1])
    assert inst["tag"] + ":" in player.calls[len(inst["probes"]["0"])][-1]["content"]


def test_privateshared_kappa_zero_and_negative_clipped() -> None:
    _, inst = ps_instance()
    res, _ = ps_episode(ps_script(inst, probe=lambda t, s, gt: "ASIDE: yes"))
    assert res.scores["Kappa"] == 0.0 and res.scores["Main Score"] == 0.0
    assert res.scores["Lose"] == 1 and res.scores["Aborted"] == 0
    res, _ = ps_episode(ps_script(inst, probe=lambda t, s, gt: "ASIDE: no" if gt else "ASIDE: yes"))
    assert res.scores["Kappa"] == -1.0
    assert res.scores["Truncated Kappa"] == 0.0 and res.scores["Main Score"] == 0.0


def test_privateshared_partial_slot_filling() -> None:
    _, inst = ps_instance()
    wrong = inst["request_order"][0]
    res, _ = ps_episode(
        ps_script(inst, answer=lambda s, v: "ANSWER: I forgot." if s == wrong else f"ANSWER: {v}")
    )
    n = len(inst["slots"])
    acc = (n - 1) / n
    assert res.scores["Slot-Filling-Accuracy"] == pytest.approx(acc)
    assert res.scores["Main Score"] == pytest.approx(100 * 2 * acc / (acc + 1))
    assert res.scores["Lose"] == 1


def test_privateshared_anticipated_slot_moves_ground_truth() -> None:
    _, inst = ps_instance()
    first, second = inst["request_order"][:2]
    both = f"ANSWER: {inst['slots'][first]} and {inst['slots'][second]}."

    def probe(t: int, s: str, gt: int) -> str:
        return "ASIDE: yes" if gt or (s == second and t >= 1) else "ASIDE: no"

    script = ps_script(
        inst, probe=probe, answer=lambda s, v: both if s == first else f"ANSWER: {v}"
    )
    res, _ = ps_episode(script)
    assert res.keys["realised_slots"][second] == 0
    assert res.scores["Main Score"] == 100.0


@pytest.mark.parametrize(
    "bad", ["I want to go to Oslo.", "answer: Oslo", "ANSWER: Oslo.\nAnything else?"]
)
def test_privateshared_abort_slot_answer(bad: str) -> None:
    _, inst = ps_instance()
    first = inst["request_order"][0]
    res, _ = ps_episode(ps_script(inst, answer=lambda s, v: bad if s == first else f"ANSWER: {v}"))
    assert res.status == "aborted" and res.reason == ps.REASON_SLOT
    assert math.isnan(res.scores["Main Score"]) and res.scores["Success"] == 0


@pytest.mark.parametrize(
    "bad", ["Yes.", "aside: yes", "ASIDE: maybe", "ASIDE: yes\nbecause I said so", "ME: no"]
)
def test_privateshared_probe_retries_then_abort(bad: str) -> None:
    _, inst = ps_instance()
    good = ps_script(inst)
    # one invalid answer, then a valid one: asked again with a reprompt, not aborted
    res, player = ps_episode([bad, *good])
    assert res.status == "played" and res.scores["Main Score"] == 100.0
    assert res.scores["Violated Request Count"] == 1
    assert res.scores["Request Count"] == len(good) + 1
    assert ps.REPROMPTS[1] in player.calls[1][-1]["content"]
    # five invalid answers to one probe abort the episode
    res, player = ps_episode([bad] * 5)
    assert res.status == "aborted" and res.reason == ps.REASON_PROBE
    assert res.scores["Violated Request Count"] == 5 and res.scores["Request Count"] == 5
    assert math.isnan(res.scores["Main Score"])


def test_privateshared_parsers_and_score_edges() -> None:
    assert ps.parse_probe("ASIDE: No, not yet.\n\n") == "no"
    assert ps.parse_probe("ASIDE:YES") == "yes"
    assert ps.parse_slot_answer("ANSWER: Oslo\n") == "Oslo"
    assert ps.main_score(1.0, 1.0) == 100.0
    assert ps.main_score(0.0, -0.5) == 0.0
    assert ps.main_score(1.0, -0.5) == 0.0
    assert ps.main_score(0.5, 0.5) == pytest.approx(50.0)
    assert ps.main_score(1.0, math.nan) == 0.0
    assert math.isnan(ps.main_score(math.nan, 1.0))
    assert math.isnan(ps.cohen_kappa([1, 1], [1, 1]))


def test_privateshared_kappa_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    cases = [
        ([0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0]),
        ([0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]),
        ([0, 1, 0, 1], [1, 0, 1, 0]),
        ([0, 0, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1]),
    ]
    for gold, pred in cases:
        assert ps.cohen_kappa(gold, pred) == pytest.approx(metrics.cohen_kappa_score(gold, pred))


def test_privateshared_instances() -> None:
    data = generate_instances("privateshared", seed=2, n=5)
    assert [e["name"] for e in data["experiments"]] == list(ps.SCENARIOS)
    for exp in data["experiments"]:
        for inst in exp["game_instances"]:
            ps.validate_instance(inst, exp["name"])
            for slot, value in inst["slots"].items():
                assert value in ps.SCENARIOS[exp["name"]]["slots"][slot]


# ================================================================== all three


@pytest.mark.parametrize("game", GAMES)
def test_generation_is_deterministic_and_reproduces_shipped_set(game: str) -> None:
    a = generate_instances(game, seed=7, n=3)
    assert a == generate_instances(game, seed=7, n=3)
    assert a != generate_instances(game, seed=8, n=3)
    shipped = json.loads(instances_path(game).read_text(encoding="utf-8"))
    assert generate_instances(game, seed=shipped["seed"], n=shipped["n"]) == shipped
    n_exp = len(shipped["experiments"])
    assert n_exp >= 2 and all(len(e["game_instances"]) == 5 for e in shipped["experiments"])
    assert get_game(game).name == game


BAD_INSTANCES = [
    ("referencegame", {"game_id": 0}, "lacks the key"),
    ("referencegame", "target_grid=X X", "not a 5x5 grid"),
    ("referencegame", "target_grid_name=fourth", "target_grid_name must be one of"),
    ("referencegame", "swap", "does not point at the target"),
    ("imagegame", {"game_id": 0}, "lacks the key 'target_grid'"),
    ("imagegame", "target_grid=a b c", "not a 5x5 grid"),
    ("imagegame", "empty", "target_grid is empty"),
    ("privateshared", "experiment=flights", "unknown scenario"),
    ("privateshared", "slots", "slots must have the keys"),
    ("privateshared", "probes", "probes must have rounds"),
    ("privateshared", "order", "request_order must be a permutation"),
]


@pytest.mark.parametrize(("game", "change", "match"), BAD_INSTANCES)
def test_malformed_instance_raises_format_error(game: str, change: Any, match: str) -> None:
    exp, inst = first_instance(game)
    if isinstance(change, dict):
        inst = change
    elif change == "swap":
        inst["player_2_grids"] = inst["player_2_grids"][::-1]
        inst["target_grid_name"] = next(
            n
            for n, g in zip(rg.ANSWER_NAMES, inst["player_2_grids"], strict=True)
            if g != inst["target_grid"]
        )
    elif change == "empty":
        inst["target_grid"] = ig.EMPTY_GRID
    elif change == "slots":
        inst["slots"] = {"from": "Oslo"}
    elif change == "probes":
        inst["probes"] = {"0": inst["probes"]["0"]}
    elif change == "order":
        inst["request_order"] = inst["request_order"][:-1]
    elif change.startswith("experiment="):
        exp = {"name": change.split("=", 1)[1]}
    else:
        key, value = change.split("=", 1)
        inst[key] = value
    players = [MockPlayer([]) for _ in get_game(game).roles]
    with pytest.raises(FormatError, match=match):
        run_episode(game, players, inst, exp)


def _programmatic(game: str) -> list[ProgrammaticPlayer]:
    if game == "referencegame":
        return [
            ProgrammaticPlayer(lambda m: "Expression: the filled one", "giver"),
            ProgrammaticPlayer(lambda m: "Answer: second", "chooser"),
        ]
    if game == "imagegame":
        return [
            ProgrammaticPlayer(
                lambda m: "Instruction: fill it" if len(m) < 3 else "Instruction: DONE", "giver"
            ),
            ProgrammaticPlayer(lambda m: TOP_ROW, "drawer"),
        ]
    return [
        ProgrammaticPlayer(
            lambda m: "ASIDE: no" if m[-1]["content"].startswith(ps.ME) else "ANSWER: not sure",
            "answerer",
        )
    ]


@pytest.mark.parametrize("game", GAMES)
def test_run_game_stores_every_turn(game: str, tmp_path: Any) -> None:
    from capscale.store import Store

    db = tmp_path / "games.db"
    with Store(db) as store:
        summary = run_game(_programmatic(game), game, store=store, limit=2)
        assert summary.n_episodes == 2 * len(load_instances(game)["experiments"])
        assert summary.failed == 0
        episodes = store.episodes(game=game, score_prefix="")
        turns = store.turns(game=game)
    assert len(episodes) == summary.n_episodes
    expected_rows = sum(len(r.turns) for r in summary.results)
    assert len(turns) == expected_rows
    n_requests = sum(r.scores["Request Count"] for r in summary.results)
    assert (turns["player"] != "GM").sum() == n_requests
    assert turns["raw_reply"].notna().sum() == n_requests
    assert set(episodes["Aborted"]) <= {0, 1}
    pairs = iter_instances(load_instances(game), limit=2)
    assert {str(i["game_id"]) for _, i in pairs} == set(episodes["episode_id"].astype(str))
