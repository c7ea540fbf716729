"""imagegame (clembench 1.x): an instruction giver describes a 5×5 letter grid, a drawer redraws it.

Rules, as clembench defines them:

* Each turn the game master asks Player 1 ``What is your next instruction?`` (the first turn also
  carries the instructions and the target grid). A reply matching ``Instruction: DONE``
  (case-insensitive, ``^instruction:\\s*done\\b``) ends the game normally. Otherwise the reply
  must be exactly one line ``Instruction: <text>`` (case-insensitive tag, one space, non-empty
  text, at most one trailing newline); anything else aborts the episode.
* Player 2 receives the instruction and must reply with the whole grid: five rows of five cells,
  each an upper-case letter or ``▢``, separated by single whitespace (blank lines around it
  allowed). Anything else aborts.
* At most 25 turns (grid size squared).
* Main Score = F1 (0–100) between the last drawn grid and the target, counted over non-empty
  cells (precision over the drawn letters, recall over the target's, letters compared
  case-insensitively, rounded as clembench rounds); Success when F1 ≥ 99, else Lose; NaN and
  Aborted when a reply broke the rules. A game ended with DONE before any drawing scores 0.

Experiments (as in clembench 1.x): ``compact_grids`` (a shape filled with one letter) and
``random_grids`` (5–10 random cells with one letter).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from capscale.errors import FormatError

from .master import GameMaster, ParseError, register_game
from .referencegame import BASE_SHAPES, EMPTY

__all__ = [
    "EMPTY_GRID",
    "EXPERIMENTS",
    "GAME_NAME",
    "GRID_DIMENSION",
    "INSTANCE_VERSION",
    "MAX_TURNS",
    "ImageGame",
    "changed_cells",
    "evaluate_grid",
    "generate_experiments",
    "is_done",
    "main_score",
    "parse_grid",
    "parse_instruction",
    "validate_instance",
]

GAME_NAME = "imagegame"
INSTANCE_VERSION = "v1"
GRID_DIMENSION = 5
MAX_TURNS = GRID_DIMENSION * GRID_DIMENSION
EXPERIMENTS: tuple[str, ...] = ("compact_grids", "random_grids")
EMPTY_GRID = "\n".join(" ".join([EMPTY] * GRID_DIMENSION) for _ in range(GRID_DIMENSION))
QUESTION = "What is your next instruction?"

_DONE_RE = re.compile(r"^instruction:\s*done\b", re.I)
# ``$`` without MULTILINE: the end, or just before one final newline.
_INSTRUCTION_RE = re.compile(r"^instruction: [^\n]+$", re.I)
_CELL = f"[A-Z{EMPTY}]"
_GRID_REPLY_RE = re.compile(
    rf"^\n*(?:{_CELL}\s){{4}}{_CELL}(?:\n(?:{_CELL}\s){{4}}{_CELL}){{4}}\n*$"
)

REASON_INSTRUCTION = "Invalid instruction format"
REASON_GRID = "Invalid grid format"


# --------------------------------------------------------------------------- parsing


def is_done(reply: str) -> bool:
    """True when Player 1 ends the game (``Instruction: DONE``, any case)."""
    return _DONE_RE.match(reply) is not None


def parse_instruction(reply: str) -> str | None:
    """Return the instruction line (tag included, as passed on to the drawer), or ``None``.

    Check :func:`is_done` first: ``Instruction: DONE`` also parses as an instruction.
    """
    if _INSTRUCTION_RE.match(reply) is None:
        return None
    return reply.split("\n")[0]


def parse_grid(reply: str) -> str | None:
    """Return the drawn grid (blank lines around it stripped), or ``None`` when invalid."""
    if _GRID_REPLY_RE.match(reply) is None:
        return None
    return reply.strip("\n")


# --------------------------------------------------------------------------- scoring


def _rows(grid: str) -> list[list[str]]:
    return [row.split(" ") for row in grid.strip().split("\n")]


def _size(grid: str) -> tuple[int, int]:
    rows = _rows(grid)
    return len(rows), len(rows[0])


def evaluate_grid(target: str, drawn: str) -> tuple[float, float, float] | None:
    """Precision, recall and F1 (each 0–100) of a drawn grid against the target.

    Follows clembench's evaluator: recall over the target's non-empty cells, precision over the
    drawn non-empty cells, letters compared case-insensitively; precision and recall rounded to
    4 decimals, F1 computed from them and rounded to 4 decimals, then all three scaled to 0–100
    and rounded to integers. Grids of different sizes score ``(0, 0, 0)``. A drawn grid with no
    letter has no precision: ``None`` is returned (clembench then keeps the previous turn's
    scores).
    """
    if _size(target) != _size(drawn):
        return 0.0, 0.0, 0.0
    t_rows, d_rows = _rows(target), _rows(drawn)
    hit_r = tot_r = hit_p = tot_p = 0
    for t_row, d_row in zip(t_rows, d_rows, strict=False):
        for t, d in zip(t_row, d_row, strict=False):
            same = t.lower() == d.lower()
            if t != EMPTY:
                tot_r += 1
                hit_r += same
            if d != EMPTY:
                tot_p += 1
                hit_p += same
    if tot_p == 0 or tot_r == 0:
        return None
    recall = round(hit_r / tot_r, 4)
    precision = round(hit_p / tot_p, 4)
    f1 = 0.0 if precision == 0 or recall == 0 else 2 * precision * recall / (precision + recall)
    f1 = round(f1, 4)
    return float(round(100 * precision)), float(round(100 * recall)), float(round(100 * f1))


def changed_cells(previous: str, current: str) -> int:
    """Number of cells that differ (case-insensitively) between two grids of the same size."""
    return sum(
        a.lower() != b.lower()
        for ra, rb in zip(_rows(previous), _rows(current), strict=False)
        for a, b in zip(ra, rb, strict=False)
    )


def main_score(f1: float, aborted: bool) -> float:
    """clembench's Main Score: the last turn's F1 (0–100), NaN when the episode was aborted."""
    return math.nan if aborted else float(f1)


def is_success(f1: float) -> bool:
    """Success threshold of clembench: F1 ≥ 99."""
    return f1 >= 99


# --------------------------------------------------------------------------- instances

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _random_grid(n_letters: int, letter: str, rng: random.Random) -> str:
    cells = [[EMPTY] * GRID_DIMENSION for _ in range(GRID_DIMENSION)]
    for _ in range(n_letters):  # positions may repeat, as in clembench
        cells[rng.randrange(GRID_DIMENSION)][rng.randrange(GRID_DIMENSION)] = letter
    return "\n".join(" ".join(row) for row in cells)


def generate_experiments(
    seed: int = 0, n_instances: int = 5, shapes: Sequence[str] = BASE_SHAPES
) -> dict[str, Any]:
    """Generate an imagegame instance set (clembench's ``instances.json`` layout).

    For each of ``n_instances`` shapes (drawn with the seed) a letter is drawn without
    replacement; the compact grid is the shape written with that letter, the random grid puts
    the letter into ``randint(5, min(filled, 10))`` random cells (repeats allowed).

    Returns
    -------
    dict
        ``{"game", "version", "seed", "experiments": [{"name", "game_instances":
        [{"game_id", "target_grid", "grid_dimension", "number_of_letters"}]}]}``.
    """
    if n_instances < 1 or n_instances > len(shapes):
        raise ValueError(f"n_instances must be in 1..{len(shapes)}, got {n_instances}")
    rng = random.Random(f"{GAME_NAME}:{seed}")
    alphabet = list(_ALPHABET)
    compact, scattered = [], []
    for shape in rng.sample(list(shapes), n_instances):
        letter = alphabet.pop(rng.randrange(len(alphabet)))
        n_random = rng.randint(5, max(5, min(shape.count("X"), 10)))
        compact.append(shape.replace("X", letter))
        scattered.append(_random_grid(n_random, letter, rng))
    experiments = []
    for name, grids in zip(EXPERIMENTS, (compact, scattered), strict=False):
        experiments.append(
            {
                "name": name,
                "game_instances": [
                    {
                        "game_id": i,
                        "target_grid": g,
                        "grid_dimension": GRID_DIMENSION,
                        "number_of_letters": sum(c != EMPTY for c in g.split()),
                    }
                    for i, g in enumerate(grids)
                ],
            }
        )
    return {
        "game": GAME_NAME,
        "version": INSTANCE_VERSION,
        "seed": seed,
        "experiments": experiments,
    }


_TARGET_RE = re.compile(rf"^(?:{_CELL} ){{4}}{_CELL}(?:\n(?:{_CELL} ){{4}}{_CELL}){{4}}$")


def validate_instance(instance: Mapping[str, Any]) -> None:
    """Raise :class:`~capscale.errors.FormatError` naming the first problem of an instance."""
    if not isinstance(instance, Mapping):
        raise FormatError("imagegame instance must be a mapping")
    for key in ("game_id", "target_grid"):
        if key not in instance:
            raise FormatError(f"imagegame instance lacks the key {key!r}")
    grid = instance["target_grid"]
    if not isinstance(grid, str) or _TARGET_RE.match(grid) is None:
        raise FormatError(
            f"imagegame instance: target_grid is not a 5x5 grid of capital letters and '{EMPTY}'"
        )
    if grid == EMPTY_GRID:
        raise FormatError("imagegame instance: target_grid is empty")
    if instance.get("grid_dimension", GRID_DIMENSION) != GRID_DIMENSION:
        raise FormatError(f"imagegame instance: grid_dimension must be {GRID_DIMENSION}")


# --------------------------------------------------------------------------- prompts

PLAYER_1_PROMPT = """\
Let us do the following task. The goal is to fill an empty grid that looks like this:

{empty}

A filled 5 by 5 grid can look like this:

▢ ▢ ▢ ▢ ▢
▢ ▢ E ▢ ▢
▢ ▢ ▢ ▢ ▢
▢ ▢ ▢ ▢ ▢
X X X X X

I want you to describe a grid to me step by step. Do not describe the empty cells, marked \
"▢"; only say where the letters are. Then wait until I say "What is your next instruction?" \
and give the next step. When you have described everything, say "Instruction: DONE".

For the filled grid above, the steps could be:

What is your next instruction?
Instruction: Put an E in the second row, third column

What is your next instruction?
Instruction: Fill the last row with X

What is your next instruction?
Instruction: DONE

Now do this for the following 5 by 5 grid.
{target}
"""

PLAYER_2_PROMPT = """\
Let us draw something together. There is an empty grid of size 5 by 5:

{empty}

I will give you instructions like "put an X in the top left", and you return the grid after \
applying the instruction, like so:

Instruction: put an X in the top left

X ▢ ▢ ▢ ▢
▢ ▢ ▢ ▢ ▢
▢ ▢ ▢ ▢ ▢
▢ ▢ ▢ ▢ ▢
▢ ▢ ▢ ▢ ▢

Now start from an empty 5 by 5 grid and apply the following instructions one at a time. \
After each one, return only the grid and no other text.
"""


def player_1_message(instance: Mapping[str, Any], turn: int) -> str:
    """What the game master sends Player 1 at ``turn`` (the full task on turn 0)."""
    if turn == 0:
        header = PLAYER_1_PROMPT.format(empty=EMPTY_GRID, target=instance["target_grid"])
        return header + "\n" + QUESTION
    return QUESTION


def player_2_message(instruction: str, turn: int) -> str:
    """What the game master sends Player 2 at ``turn`` (the task on turn 0)."""
    if turn == 0:
        return PLAYER_2_PROMPT.format(empty=EMPTY_GRID) + "\n" + instruction
    return instruction


# --------------------------------------------------------------------------- game master


def _instruction_parser(reply: str) -> str:
    if is_done(reply):
        return "DONE"
    value = parse_instruction(reply)
    if value is None:
        raise ParseError(REASON_INSTRUCTION)
    return value


def _grid_parser(reply: str) -> str:
    value = parse_grid(reply)
    if value is None:
        raise ParseError(REASON_GRID)
    return value


@register_game(GAME_NAME)
class ImageGame(GameMaster):
    """imagegame: Player 1 gives drawing instructions, Player 2 returns the grid each turn."""

    roles: ClassVar[tuple[str, ...]] = ("Instruction Giver", "Instruction Follower")
    version: ClassVar[str] = "1.0"

    def __init__(self, players: Any, instance: Mapping[str, Any], experiment: Any = None):
        super().__init__(players, instance, experiment)
        validate_instance(self.instance)

    @classmethod
    def generate_instances(cls, seed: int = 0, n: int = 5) -> dict[str, Any]:
        """Seeded instances: ``n`` per experiment (see :func:`generate_experiments`)."""
        data = generate_experiments(seed, n)
        return {"experiments": data["experiments"]}

    def setup(self, **instance: Any) -> None:
        self.target = str(instance["target_grid"])
        self.precision = self.recall = self.f1 = 0.0
        self.grids: list[str] = []
        self.changed: list[int] = []
        self.instruction_lengths: list[int] = []
        self.instruction_tokens: list[int] = []

    def play(self) -> None:
        previous = EMPTY_GRID
        while self.n_turns < MAX_TURNS:
            t = self.new_turn()
            self.add_user_message(0, player_1_message(self.instance, t))
            instruction = self.parse_or_abort(self.ask(0), _instruction_parser)
            if instruction == "DONE":
                self.log_event("metadata", "found terminate pattern")
                break
            self.add_user_message(1, player_2_message(instruction, t))
            grid = self.parse_or_abort(self.ask(1), _grid_parser)
            scores = evaluate_grid(self.target, grid)
            if scores is not None:  # an empty drawing keeps the previous scores (clembench)
                self.precision, self.recall, self.f1 = scores
            self.log_event(
                "metadata",
                {"Precision": self.precision, "Recall": self.recall, "F1": self.f1},
            )
            self.grids.append(grid)
            self.changed.append(changed_cells(previous, grid))
            previous = grid
            text = instruction.split(":", 1)[1].strip()
            self.instruction_lengths.append(len(text))
            self.instruction_tokens.append(len(text.split(" ")))
        else:
            self.log_event("metadata", "turn limit reached")
        self.success = is_success(self.f1)
        self.lose = not self.success

    def main_score(self) -> float:
        return main_score(self.f1, aborted=False)

    def extra_scores(self) -> dict[str, float]:
        n = len(self.grids)

        def avg(xs: list[int]) -> float:
            return round(sum(xs) / n, 4) if n else math.nan

        return {
            "Precision": self.precision,
            "Recall": self.recall,
            "F1": self.f1,
            "Average Changed Cell Count": avg(self.changed),
            "Average Generated Instruction Length": avg(self.instruction_lengths),
            "Average Generated Expression Number of Tokens": avg(self.instruction_tokens),
        }
