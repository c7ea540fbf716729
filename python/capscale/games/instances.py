"""Game instance files: load, validate, generate (seeded) and the versioned shipped sets.

Format (clembench's ``in/instances.json``)::

    {"game": "taboo", "version": "1.0", "seed": 0,            # optional provenance keys
     "experiments": [
        {"name": "high_en", <experiment params>...,
         "game_instances": [{"game_id": 0, <instance fields>...}, ...]},
        ...]}

Shipped sets live in ``capscale/games/data/<game>.json`` and are written by
:func:`write_instances` (``python -c "from capscale.games.instances import write_instances;
write_instances('taboo')"``) from the game class's generator (a game
class defines ``generate_instances(seed: int, n: int) -> dict`` as a classmethod returning
the ``experiments`` object above); regenerating with the recorded seed reproduces the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import FormatError, InvalidInputError

__all__ = [
    "DATA_DIR",
    "generate_instances",
    "instances_path",
    "iter_instances",
    "load_instances",
    "validate_instances",
    "write_instances",
]

DATA_DIR = Path(__file__).resolve().parent / "data"


def instances_path(game: str) -> Path:
    """Path of the shipped instance set of ``game``."""
    return DATA_DIR / f"{game}.json"


def validate_instances(data: Any, source: str = "instances") -> dict[str, Any]:
    """Check the structure of an instance object; :class:`FormatError` naming the problem."""
    if not isinstance(data, Mapping):
        raise FormatError(f"{source}: top level must be an object, got {type(data).__name__}")
    exps = data.get("experiments")
    if not isinstance(exps, list) or not exps:
        raise FormatError(f"{source}: 'experiments' must be a non-empty list")
    names: set[str] = set()
    for k, exp in enumerate(exps):
        where = f"{source}: experiments[{k}]"
        if not isinstance(exp, Mapping):
            raise FormatError(f"{where} must be an object")
        name = exp.get("name")
        if not isinstance(name, str) or not name:
            raise FormatError(f"{where} needs a non-empty string 'name'")
        if name in names:
            raise FormatError(f"{where}: duplicate experiment name {name!r}")
        names.add(name)
        insts = exp.get("game_instances")
        if not isinstance(insts, list):
            raise FormatError(f"{where} ({name}) needs a list 'game_instances'")
        ids: set[str] = set()
        for j, inst in enumerate(insts):
            if not isinstance(inst, Mapping):
                raise FormatError(f"{where}.game_instances[{j}] must be an object")
            if "game_id" not in inst or not isinstance(inst["game_id"], (int, str)):
                raise FormatError(f"{where}.game_instances[{j}] needs a 'game_id' (int or str)")
            gid = str(inst["game_id"])
            if gid in ids:
                raise FormatError(f"{where}.game_instances[{j}]: duplicate game_id {gid}")
            ids.add(gid)
    return dict(data)


def load_instances(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Load and validate instances from a mapping, a JSON file path or a game name (its
    shipped set)."""
    if isinstance(source, Mapping):
        return validate_instances(source)
    s = os.fspath(source)
    path = Path(s)
    if not path.exists() and os.sep not in s and not s.endswith(".json"):
        from .master import get_game

        game = get_game(s)  # unknown name → UnknownNameError with a suggestion
        path = instances_path(game.name)
        if not path.exists():
            raise FormatError(f"game {game.name!r} ships no instance set ({path} missing)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FormatError(f"cannot read instance file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    return validate_instances(data, str(path))


def iter_instances(
    data: Mapping[str, Any], experiments: str | list[str] | None = None, limit: int | None = None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(experiment, instance)`` pairs in file order; ``experiments`` selects by name (unknown
    names raise with a suggestion); ``limit`` keeps the first ``limit`` instances of each."""
    from ..errors import UnknownNameError, did_you_mean

    exps = list(data["experiments"])
    if experiments is not None:
        wanted = [experiments] if isinstance(experiments, str) else list(experiments)
        known = [e["name"] for e in exps]
        for w in wanted:
            if w not in known:
                hint = did_you_mean(w, known)
                raise UnknownNameError(
                    f"unknown experiment {w!r}; {hint + ' ' if hint else ''}"
                    f"known: {', '.join(known)}"
                )
        exps = [e for e in exps if e["name"] in wanted]
    if limit is not None and int(limit) < 0:
        raise InvalidInputError(f"limit must be >= 0, got {limit}")
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for e in exps:
        params = {k: v for k, v in e.items() if k != "game_instances"}
        insts = e["game_instances"] if limit is None else e["game_instances"][: int(limit)]
        out.extend((params, dict(i)) for i in insts)
    return out


def generate_instances(game: str, *, seed: int = 0, n: int = 6) -> dict[str, Any]:
    """Generate a game's instances with its seeded generator (``n`` per experiment)."""
    from .master import get_game

    cls = get_game(game)
    gen = getattr(cls, "generate_instances", None)
    if gen is None:
        raise InvalidInputError(f"game {cls.name!r} has no instance generator")
    data = dict(gen(seed=seed, n=n))
    out = {"game": cls.name, "version": cls.version, "seed": seed, "n": n}
    out.update(data)
    return validate_instances(out, f"generated {cls.name}")


def write_instances(game: str, path: str | os.PathLike[str] | None = None, **kw: Any) -> Path:
    """Generate and write an instance set (default: the shipped path)."""
    data = generate_instances(game, **kw)
    out = Path(path) if path is not None else instances_path(data["game"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
