"""referencegame (clembench 1.x): a describer refers to one of three 5×5 grids, a chooser picks it.

Rules, as clembench defines them (strict parsing of version 1.6):

* Player 1 (describer) sees the target grid and two distractors and must reply with one line
  starting with ``Expression:`` (case-insensitive). Anything after the first line (other than
  trailing newlines) makes the reply invalid and aborts the episode.
* Player 2 (chooser) sees the three grids in a shuffled order and the describer's reply, and must
  answer ``Answer: first|second|third`` (case-insensitive) and nothing more; anything else aborts.
* One turn. Main Score = 100 × success (NaN when aborted); Lose = 1 − Success.

Instances follow version 1.0's experiments: targets are shapes with at least ten filled cells,
and each distractor is the target with 2 (``edit_distance_2``) or 4 (``edit_distance_4``) filled
cells emptied. :func:`generate_experiments` builds them from a seed; a fixed set ships as
``data/referencegame.json``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from capscale.errors import FormatError

from .master import GameMaster, ParseError, register_game

__all__ = [
    "ANSWER_NAMES",
    "BASE_SHAPES",
    "EMPTY",
    "EXPERIMENTS",
    "GAME_NAME",
    "INSTANCE_VERSION",
    "ReferenceGame",
    "edit_distance",
    "generate_experiments",
    "main_score",
    "parse_choice",
    "parse_expression",
    "validate_instance",
]

GAME_NAME = "referencegame"
INSTANCE_VERSION = "v1"
EMPTY = "▢"
ANSWER_NAMES: tuple[str, str, str] = ("first", "second", "third")
EXPERIMENTS: tuple[tuple[str, int], ...] = (("edit_distance_2", 2), ("edit_distance_4", 4))
MIN_FILLED = 10  # clembench 1.0 skips targets with fewer filled cells

# Strict mode: the tag opens the reply, the content is the rest of the first line, and only
# newlines may follow it (clembench's "remainder" must be empty).
_EXPRESSION_RE = re.compile(r"^expression:\s*(?P<content>.+)\n*(?P<remainder>[\s\S]*)", re.I)
_CHOICE_RE = re.compile(
    r"^answer:\s*(?P<content>first|second|third)\n*(?P<remainder>[\s\S]*)", re.I
)

REASON_EXPRESSION = "Invalid generated expression"
REASON_CHOICE = "Invalid generated choice"


def _art(*rows: str) -> str:
    return "\n".join(" ".join("X" if c == "#" else EMPTY for c in row) for row in rows)


#: Base shapes (each with at least ten filled cells), shared with imagegame's compact grids.
BASE_SHAPES: tuple[str, ...] = (
    _art("#####", "#...#", "#...#", "#...#", "#####"),  # frame
    _art("#...#", "#...#", "#####", "#...#", "#...#"),  # H
    _art("#####", "#....", "#####", "#....", "#####"),  # E
    _art("#####", "...#.", "..#..", ".#...", "#####"),  # Z
    _art("#.#.#", ".#.#.", "#.#.#", ".#.#.", "#.#.#"),  # checkerboard
    _art("#####", ".....", "#####", ".....", "#####"),  # horizontal stripes
    _art("#.#.#", "#.#.#", "#.#.#", "#.#.#", "#.#.#"),  # vertical stripes
    _art("#....", "##...", "###..", "####.", "#####"),  # triangle
    _art("#...#", "#...#", "#...#", "#...#", "#####"),  # U
    _art("##...", "##...", "##...", "#####", "#####"),  # thick L
    _art("#####", "#....", "#....", "#....", "#####"),  # C
    _art("..#..", ".###.", "#####", ".###.", "..#.."),  # diamond
    _art("#####", "#....", "###..", "#....", "#...."),  # F
    _art("..#..", "..#..", "#####", "..#..", "#####"),  # cross with a floor
)


# --------------------------------------------------------------------------- parsing


def parse_expression(reply: str) -> str | None:
    """Return the describer's referring expression, or ``None`` when the reply is invalid.

    Valid: starts with ``Expression:`` (any case), a non-empty first line, nothing after it but
    newlines.
    """
    m = _EXPRESSION_RE.match(reply)
    if m is None or m.group("remainder") != "":
        return None
    return m.group("content")


def parse_choice(reply: str) -> str | None:
    """Return ``"first"``, ``"second"`` or ``"third"`` (as written), or ``None`` when invalid.

    Valid: ``Answer: <first|second|third>`` (any case) and nothing after it but newlines.
    """
    m = _CHOICE_RE.match(reply)
    if m is None or m.group("remainder") != "":
        return None
    return m.group("content")


def main_score(success: bool, aborted: bool) -> float:
    """clembench's Main Score: 100 × success, NaN when the episode was aborted."""
    return math.nan if aborted else 100.0 * float(bool(success))


# --------------------------------------------------------------------------- grids


def _cells(grid: str) -> list[list[str]]:
    return [row.split(" ") for row in grid.split("\n")]


def _render(cells: Sequence[Sequence[str]]) -> str:
    return "\n".join(" ".join(row) for row in cells)


def edit_distance(a: str, b: str) -> int:
    """Number of cells in which two grids of the same size differ."""
    ca, cb = _cells(a), _cells(b)
    if [len(r) for r in ca] != [len(r) for r in cb]:
        raise FormatError("grids of different sizes cannot be compared")
    return sum(x != y for ra, rb in zip(ca, cb, strict=False) for x, y in zip(ra, rb, strict=False))


def _blank(grid: str, k: int, rng: random.Random, avoid: Sequence[str]) -> str:
    """Empty ``k`` distinct filled cells of ``grid``; retry until the result is not in avoid."""
    cells = _cells(grid)
    filled = [(r, c) for r, row in enumerate(cells) for c, v in enumerate(row) if v != EMPTY]
    for _ in range(1000):
        out = [list(row) for row in cells]
        for r, c in rng.sample(filled, k):
            out[r][c] = EMPTY
        candidate = _render(out)
        if candidate not in avoid:
            return candidate
    raise RuntimeError("could not build a distinct distractor")  # pragma: no cover


def generate_experiments(
    seed: int = 0,
    n_instances: int = 5,
    experiments: Sequence[tuple[str, int]] = EXPERIMENTS,
    shapes: Sequence[str] = BASE_SHAPES,
) -> dict[str, Any]:
    """Generate a referencegame instance set (clembench's ``instances.json`` layout).

    Parameters
    ----------
    seed : int
        Seed of the generator; the same seed gives the same set on any machine.
    n_instances : int
        Instances per experiment (at most the number of usable shapes).
    experiments : sequence of (name, edit distance)
        Default: ``edit_distance_2`` and ``edit_distance_4`` as in clembench 1.0.
    shapes : sequence of str
        Target grids to draw from; those with fewer than ten filled cells are skipped.

    Returns
    -------
    dict
        ``{"game", "version", "seed", "experiments": [{"name", "edit_distance",
        "game_instances": [{"game_id", "target_grid", "distractor_grids", "player_2_grids",
        "target_grid_name"}]}]}``.
    """
    usable = [g for g in shapes if g.count("X") >= MIN_FILLED]
    if n_instances < 1 or n_instances > len(usable):
        raise ValueError(f"n_instances must be in 1..{len(usable)}, got {n_instances}")
    out_experiments = []
    for name, distance in experiments:
        rng = random.Random(f"{GAME_NAME}:{seed}:{name}")
        instances = []
        for game_id, target in enumerate(rng.sample(usable, n_instances)):
            second = _blank(target, distance, rng, [target])
            third = _blank(target, distance, rng, [target, second])
            order = [target, second, third]
            rng.shuffle(order)
            instances.append(
                {
                    "game_id": game_id,
                    "target_grid": target,
                    "distractor_grids": [second, third],
                    "player_2_grids": order,
                    "target_grid_name": ANSWER_NAMES[order.index(target)],
                }
            )
        out_experiments.append(
            {"name": name, "edit_distance": distance, "game_instances": instances}
        )
    return {
        "game": GAME_NAME,
        "version": INSTANCE_VERSION,
        "seed": seed,
        "experiments": out_experiments,
    }


_GRID_RE = re.compile(rf"^(?:[X{EMPTY}] ){{4}}[X{EMPTY}](?:\n(?:[X{EMPTY}] ){{4}}[X{EMPTY}]){{4}}$")


def _check_grid(value: Any, where: str) -> str:
    if not isinstance(value, str) or _GRID_RE.match(value) is None:
        raise FormatError(f"referencegame instance: {where} is not a 5x5 grid of 'X'/'{EMPTY}'")
    return value


def validate_instance(instance: Mapping[str, Any]) -> None:
    """Raise :class:`~capscale.errors.FormatError` naming the first problem of an instance."""
    if not isinstance(instance, Mapping):
        raise FormatError("referencegame instance must be a mapping")
    for key in ("game_id", "target_grid", "distractor_grids", "player_2_grids", "target_grid_name"):
        if key not in instance:
            raise FormatError(f"referencegame instance lacks the key {key!r}")
    target = _check_grid(instance["target_grid"], "target_grid")
    distractors = instance["distractor_grids"]
    if not isinstance(distractors, list) or len(distractors) != 2:
        raise FormatError("referencegame instance: distractor_grids must be a list of 2 grids")
    for i, g in enumerate(distractors):
        _check_grid(g, f"distractor_grids[{i}]")
    order = instance["player_2_grids"]
    if not isinstance(order, list) or len(order) != 3:
        raise FormatError("referencegame instance: player_2_grids must be a list of 3 grids")
    for i, g in enumerate(order):
        _check_grid(g, f"player_2_grids[{i}]")
    if sorted(order) != sorted([target, *distractors]):
        raise FormatError("referencegame instance: player_2_grids is not a reordering of the grids")
    name = instance["target_grid_name"]
    if name not in ANSWER_NAMES:
        raise FormatError(
            f"referencegame instance: target_grid_name must be one of {ANSWER_NAMES}, got {name!r}"
        )
    if order[ANSWER_NAMES.index(name)] != target:
        raise FormatError("referencegame instance: target_grid_name does not point at the target")


# --------------------------------------------------------------------------- prompts

PLAYER_1_PROMPT = """\
Let us play a game. You are given three grids, each 5 by 5 in size.
Empty cells are marked with "▢" and filled cells with "X".
Your task is to write a single referring expression that identifies the grid named "Target grid" \
and tells it apart from the other two.
Start your reply with the tag "Expression: " and write no other text.

For example, if the target grid were

X X X X X
▢ ▢ X ▢ ▢
▢ ▢ X ▢ ▢
▢ ▢ X ▢ ▢
▢ ▢ X ▢ ▢

a good reply would be:
Expression: The one shaped like the letter T.

Now do this for the following grids.

Target grid:

{target}

Second grid:

{second}

Third grid:

{third}

Write the referring expression for the target grid."""

PLAYER_2_PROMPT = """\
Let us play a game. You are given three grids, each 5 by 5 in size.
Empty cells are marked with "▢" and filled cells with "X".
You are also given a referring expression that describes exactly one of the grids.
Say which grid it describes. Reply with "Answer: first", "Answer: second" or "Answer: third" \
and write no other text.

First grid:

{first}

Second grid:

{second}

Third grid:

{third}

{expression}
Question: Which grid does the expression refer to?"""


def player_1_prompt(instance: Mapping[str, Any]) -> str:
    """The describer's prompt: target first, then the two distractors."""
    second, third = instance["distractor_grids"]
    return PLAYER_1_PROMPT.format(target=instance["target_grid"], second=second, third=third)


def player_2_prompt(instance: Mapping[str, Any], expression_reply: str) -> str:
    """The chooser's prompt with the describer's full reply (as clembench 1.6 passes it)."""
    first, second, third = instance["player_2_grids"]
    return PLAYER_2_PROMPT.format(
        first=first, second=second, third=third, expression=expression_reply.strip()
    )


# --------------------------------------------------------------------------- game master


def _expression_parser(reply: str) -> str:
    value = parse_expression(reply)
    if value is None:
        raise ParseError(REASON_EXPRESSION)
    return value


def _choice_parser(reply: str) -> str:
    value = parse_choice(reply)
    if value is None:
        raise ParseError(REASON_CHOICE)
    return value


@register_game(GAME_NAME)
class ReferenceGame(GameMaster):
    """referencegame: Player 1 describes the target grid, Player 2 picks it (one turn)."""

    roles: ClassVar[tuple[str, ...]] = ("Instruction Giver", "Instruction Follower")
    version: ClassVar[str] = "1.6"

    def __init__(self, players: Any, instance: Mapping[str, Any], experiment: Any = None):
        super().__init__(players, instance, experiment)
        validate_instance(self.instance)

    @classmethod
    def generate_instances(cls, seed: int = 0, n: int = 5) -> dict[str, Any]:
        """Seeded instances: ``n`` per experiment (see :func:`generate_experiments`)."""
        data = generate_experiments(seed, n)
        return {"experiments": data["experiments"]}

    def setup(self, **instance: Any) -> None:
        self.target_name = str(instance["target_grid_name"])
        self.expression: str | None = None

    def play(self) -> None:
        self.new_turn()
        self.add_user_message(0, player_1_prompt(self.instance))
        reply = self.ask(0)
        self.expression = self.parse_or_abort(reply, _expression_parser)
        self.add_user_message(1, player_2_prompt(self.instance, reply))
        answer = self.parse_or_abort(self.ask(1), _choice_parser)
        self.success = answer.lower() == self.target_name.lower()
        self.lose = not self.success

    def main_score(self) -> float:
        return main_score(self.success, aborted=False)

    def extra_scores(self) -> dict[str, float]:
        expr = self.expression or ""
        return {
            "Generated Expression Length": len(expr),
            "Generated Expression Number of Tokens": len(expr.split(" ")),
        }
