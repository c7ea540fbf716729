"""Validation and canonical JSON for what the store writes.

Every JSON column holds strict JSON (RFC 8259): keys sorted, no NaN or infinity. A NaN float
anywhere is stored as ``null`` (and score columns read it back as NaN); an infinite float is
refused with :class:`~capscale.errors.NonFiniteError`, because no reader could tell it apart
from a bug.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np

from ..errors import InvalidInputError, NonFiniteError, UnknownNameError, did_you_mean

#: Precision format families the store accepts (``precisions.format``).
PRECISION_FORMATS = (
    "fp32",
    "fp16",
    "bf16",
    "fp8",
    "affine",
    "nf4",
    "fp4",
    "mxfp4",
    "bnb-int8",
    "gguf",
    "gptq",
    "awq",
)
#: Nominal bits per weight filled in when a spec of these formats gives none.
_FIXED_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "nf4": 4, "fp4": 4, "bnb-int8": 8}

MODEL_FIELDS = (
    "name",
    "family",
    "n_params",
    "n_params_non_embedding",
    "training_tokens",
    "training_flops",
    "release_date",
    "context_length",
    "license",
    "extra",
)
PRECISION_FIELDS = ("name", "format", "bits", "group_size", "symmetric", "settings")
RECORD_FIELDS = (
    "item_id",
    "subtask",
    "request",
    "prediction",
    "scores",
    "loglikelihoods",
    "tokens",
    "latency_s",
)
EPISODE_FIELDS = ("game", "experiment", "episode_id", "instance", "scores")
TURN_FIELDS = ("turn", "player", "prompt", "raw_reply", "parsed", "events")


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise NonFiniteError(
                f"{where} is {value}; only finite numbers (or NaN, stored as null) can be stored"
            )
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise InvalidInputError(
                    f"{where} has a key {key!r} of type {type(key).__name__}; keys must be str"
                )
            out[str(key)] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (np.generic, np.ndarray)):
        return _jsonable(value.tolist(), where)
    raise InvalidInputError(f"{where}: a {type(value).__name__} cannot be stored as JSON")


def dumps(value: Any, where: str) -> str:
    """Canonical strict JSON of ``value`` (sorted keys, no spaces, NaN → null)."""
    return json.dumps(
        _jsonable(value, where),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def dumps_or_none(value: Any, where: str) -> str | None:
    return None if value is None else dumps(value, where)


def as_mapping(obj: Any, what: str) -> dict[str, Any]:
    """A dict from a mapping, a dataclass instance or an object with ``to_dict()``."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    raise InvalidInputError(f"{what} must be a mapping, got {type(obj).__name__}")


def check_fields(data: Mapping[str, Any], known: Sequence[str], what: str) -> None:
    for key in data:
        if key not in known:
            hint = did_you_mean(str(key), known)
            raise UnknownNameError(
                f"{what}: unknown field {key!r}; {hint + ' ' if hint else ''}"
                f"known fields: {', '.join(known)}"
            )


def text(value: Any, where: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidInputError(f"{where} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a str, got {type(value).__name__}")
    if required and not value:
        raise InvalidInputError(f"{where} must not be empty")
    return value


def identifier(value: Any, where: str) -> str:
    """A required id: a non-empty str, or an int (stored as its decimal string)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, str) and value:
        return value
    if value is None:
        raise InvalidInputError(f"{where} is required")
    raise InvalidInputError(
        f"{where} must be a non-empty str or an int, got {type(value).__name__} {value!r}"
    )


def count(value: Any, where: str, *, minimum: int = 1) -> int | None:
    """An integer count ≥ ``minimum`` (integral floats such as ``7e9`` are accepted)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InvalidInputError(f"{where} must be an integer, got {type(value).__name__}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise NonFiniteError(f"{where} is {value}; it must be a finite integer")
    if isinstance(value, (float, np.floating)) and not as_float.is_integer():
        raise InvalidInputError(f"{where} must be an integer, got {value!r}")
    result = int(value)
    if result < minimum:
        raise InvalidInputError(f"{where} must be >= {minimum}, got {result}")
    return result


def positive(value: Any, where: str, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InvalidInputError(f"{where} must be a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise NonFiniteError(f"{where} is {result}; it must be finite")
    if result < 0 or (result == 0 and not allow_zero):
        raise InvalidInputError(f"{where} must be {'>=' if allow_zero else '>'} 0, got {result}")
    return result


def scores_json(value: Any, where: str) -> str:
    """JSON of a ``metric → value`` mapping: numbers and bools as floats, NaN/None as null."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{where} must be a mapping metric → number, got {type(value).__name__}"
        )
    out: dict[str, float | None] = {}
    for metric, score in value.items():
        if not isinstance(metric, str) or not metric:
            raise InvalidInputError(f"{where}: metric names must be non-empty str, got {metric!r}")
        if score is None:
            out[metric] = None
            continue
        if not isinstance(score, (int, float, np.number, np.bool_)):
            raise InvalidInputError(
                f"{where}[{metric!r}] must be a number, got {type(score).__name__} {score!r}"
            )
        number = float(score)
        if math.isinf(number):
            raise NonFiniteError(
                f"{where}[{metric!r}] is {number}; scores must be finite (NaN is stored as null)"
            )
        out[metric] = None if math.isnan(number) else number
    return dumps(out, where)


def model_row(card: Any) -> dict[str, Any]:
    """Validated model-card columns (only the fields given; ``name`` always)."""
    data = as_mapping(card, "model card")
    check_fields(data, MODEL_FIELDS, "model card")
    name = text(data.get("name"), "model card 'name'", required=True)
    row: dict[str, Any] = {"name": name}
    where = f"model card {name!r}"
    for key in ("family", "license"):
        if data.get(key) is not None:
            row[key] = text(data[key], f"{where} {key!r}")
    for key in ("n_params", "n_params_non_embedding", "training_tokens", "context_length"):
        if data.get(key) is not None:
            row[key] = count(data[key], f"{where} {key!r}")
    if data.get("training_flops") is not None:
        row["training_flops"] = positive(data["training_flops"], f"{where} 'training_flops'")
    release = data.get("release_date")
    if release is not None:
        if isinstance(release, date):
            row["release_date"] = release.isoformat()[:10]
        elif isinstance(release, str):
            try:
                row["release_date"] = date.fromisoformat(release).isoformat()
            except ValueError:
                raise InvalidInputError(
                    f"{where} 'release_date' must be an ISO date YYYY-MM-DD, got {release!r}"
                ) from None
        else:
            raise InvalidInputError(
                f"{where} 'release_date' must be an ISO date string or a datetime.date, "
                f"got {type(release).__name__}"
            )
    if data.get("extra") is not None:
        if not isinstance(data["extra"], Mapping):
            raise InvalidInputError(f"{where} 'extra' must be a mapping")
        row["extra"] = dumps(data["extra"], f"{where} 'extra'")
    return row


def precision_row(spec: Any) -> dict[str, Any]:
    """Validated precision columns plus ``spec``, the canonical JSON that identifies it."""
    data = as_mapping(spec, "precision spec")
    check_fields(data, PRECISION_FIELDS, "precision spec")
    fmt = text(data.get("format"), "precision spec 'format'", required=True)
    assert fmt is not None
    if fmt not in PRECISION_FORMATS:
        hint = did_you_mean(fmt, PRECISION_FORMATS)
        raise UnknownNameError(
            f"unknown precision format {fmt!r}; {hint + ' ' if hint else ''}"
            f"known formats: {', '.join(PRECISION_FORMATS)}"
        )
    bits = positive(data.get("bits"), "precision spec 'bits'")
    if bits is None and fmt in _FIXED_BITS:
        bits = float(_FIXED_BITS[fmt])
    group_size = count(data.get("group_size"), "precision spec 'group_size'")
    symmetric = data.get("symmetric")
    if symmetric is not None and not isinstance(symmetric, (bool, np.bool_)):
        raise InvalidInputError(
            f"precision spec 'symmetric' must be a bool, got {type(symmetric).__name__}"
        )
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise InvalidInputError("precision spec 'settings' must be a mapping")
    name = text(data.get("name"), "precision spec 'name'")
    if not name:
        name = fmt
        if bits is not None and fmt not in _FIXED_BITS:
            name += f"-{bits:g}bit"
        if group_size is not None:
            name += f"-g{group_size}"
    row: dict[str, Any] = {
        "name": name,
        "format": fmt,
        "bits": bits,
        "group_size": group_size,
        "symmetric": None if symmetric is None else bool(symmetric),
        "settings": dumps(settings, "precision spec 'settings'"),
    }
    row["spec"] = dumps({**row, "settings": json.loads(row["settings"])}, "precision spec")
    if row["symmetric"] is not None:
        row["symmetric"] = int(row["symmetric"])
    return row


def record_row(record: Any, index: int) -> tuple[Any, ...]:
    """``(item_id, subtask, request, prediction, scores, loglikelihoods, tokens, latency_s)``."""
    if not isinstance(record, Mapping):
        raise InvalidInputError(f"record {index} must be a mapping, got {type(record).__name__}")
    if "item_id" not in record:
        raise InvalidInputError(f"record {index}: missing 'item_id'")
    item_id = identifier(record["item_id"], f"record {index} 'item_id'")
    where = f"record {index} (item_id {item_id!r})"
    check_fields(record, RECORD_FIELDS, where)
    if "scores" not in record:
        raise InvalidInputError(f"{where}: missing 'scores'")
    prediction = record.get("prediction")
    return (
        item_id,
        text(record.get("subtask"), f"{where} 'subtask'"),
        dumps_or_none(record.get("request"), f"{where} 'request'"),
        text(prediction, f"{where} 'prediction'"),
        scores_json(record["scores"], f"{where} 'scores'"),
        dumps_or_none(record.get("loglikelihoods"), f"{where} 'loglikelihoods'"),
        count(record.get("tokens"), f"{where} 'tokens'", minimum=0),
        positive(record.get("latency_s"), f"{where} 'latency_s'", allow_zero=True),
    )


def episode_row(episode: Any) -> tuple[str, str, str, str | None, str]:
    """``(game, experiment, episode_id, instance, scores)``."""
    if not isinstance(episode, Mapping):
        raise InvalidInputError(f"episode must be a mapping, got {type(episode).__name__}")
    check_fields(episode, EPISODE_FIELDS, "episode")
    game = text(episode.get("game"), "episode 'game'", required=True)
    experiment = text(episode.get("experiment"), "episode 'experiment'", required=True)
    assert game is not None and experiment is not None
    episode_id = identifier(episode.get("episode_id"), "episode 'episode_id'")
    where = f"episode {game}/{experiment}/{episode_id}"
    if "scores" not in episode:
        raise InvalidInputError(f"{where}: missing 'scores'")
    return (
        game,
        experiment,
        episode_id,
        dumps_or_none(episode.get("instance"), f"{where} 'instance'"),
        scores_json(episode["scores"], f"{where} 'scores'"),
    )


def turn_rows(turns: Iterable[Any], where: str) -> list[tuple[Any, ...]]:
    """``(turn, player, prompt, raw_reply, parsed, events)`` per turn; (turn, player) unique."""
    rows = []
    seen: set[tuple[int, str]] = set()
    for i, turn in enumerate(turns):
        at = f"{where} turn {i}"
        if not isinstance(turn, Mapping):
            raise InvalidInputError(f"{at} must be a mapping, got {type(turn).__name__}")
        check_fields(turn, TURN_FIELDS, at)
        if turn.get("turn") is None:
            raise InvalidInputError(f"{at}: missing 'turn' (the 0-based turn index)")
        index = count(turn["turn"], f"{at} 'turn'", minimum=0)
        player = text(turn.get("player"), f"{at} 'player'", required=True)
        assert index is not None and player is not None
        if (index, player) in seen:
            raise InvalidInputError(f"{at}: turn {index} of player {player!r} appears twice")
        seen.add((index, player))
        rows.append(
            (
                index,
                player,
                dumps_or_none(turn.get("prompt"), f"{at} 'prompt'"),
                text(turn.get("raw_reply"), f"{at} 'raw_reply'"),
                dumps_or_none(turn.get("parsed"), f"{at} 'parsed'"),
                dumps_or_none(turn.get("events"), f"{at} 'events'"),
            )
        )
    return rows
