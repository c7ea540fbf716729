"""Read and write task files: JSON Lines with one header line (schema in ``docs/tasks.md``).

::

    {"capscale_task": {"name": "my_mc", "version": "1", "kind": "multiple_choice"}}
    {"question": "2 + 2 =", "choices": ["3", "4"], "answer": 1}
    {"question": "Capital of Peru?", "choices": ["Lima", "Quito"], "answer": "Lima",
     "_split": "fewshot"}

(one JSON object per line in a real file; the last document is wrapped here for width).

Errors name the file and the line: malformed JSON raises :class:`~capscale.errors.FormatError`;
a missing or ill-typed field, an empty choice list, an answer out of range or an unknown kind
raise :class:`~capscale.errors.InvalidInputError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import FormatError, InvalidInputError, did_you_mean
from .schema import DEFAULT_FIELDS, MatchOptions, Task, check_doc, check_kind

__all__ = ["HEADER_KEY", "dumps_task", "load_task", "loads_task", "save_task"]

#: Key of the header object on the first line.
HEADER_KEY = "capscale_task"

_REQUIRED = ("name", "version", "kind")
_OPTIONAL = (
    "description",
    "target_delimiter",
    "fewshot_delimiter",
    "num_fewshot",
    "fewshot_seed",
    "until",
    "max_new_tokens",
    "metrics",
    "doc_to_text",
    "doc_to_choice",
    "doc_to_target",
    "exact_match",
    "metadata",
)
_SPLITS = ("test", "fewshot")
_FIELD_KEYS = ("doc_to_text", "doc_to_choice", "doc_to_target")


def _parse_line(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise FormatError(f"{where}: malformed JSON ({err.msg} at column {err.colno})") from None


def _header_kwargs(header: dict[str, Any], where: str) -> dict[str, Any]:
    for key in _REQUIRED:
        if key not in header:
            raise InvalidInputError(f"{where}: header field {key!r} is missing")
    for key in header:
        if key not in _REQUIRED and key not in _OPTIONAL:
            hint = did_you_mean(key, _REQUIRED + _OPTIONAL)
            raise InvalidInputError(f"{where}: unknown header field {key!r}. {hint}".strip())
    kwargs = dict(header)
    version = kwargs["version"]
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise InvalidInputError(f"{where}: header field 'version' must be a string")
    kwargs["version"] = str(version)
    for key in ("name", "description", "target_delimiter", "fewshot_delimiter", *_FIELD_KEYS):
        if key in kwargs and not isinstance(kwargs[key], str):
            raise InvalidInputError(f"{where}: header field {key!r} must be a string")
    for key in ("num_fewshot", "fewshot_seed", "max_new_tokens"):
        if key in kwargs and (isinstance(kwargs[key], bool) or not isinstance(kwargs[key], int)):
            raise InvalidInputError(f"{where}: header field {key!r} must be an integer")
    if "metadata" in kwargs and not isinstance(kwargs["metadata"], dict):
        raise InvalidInputError(f"{where}: header field 'metadata' must be an object")
    try:
        kwargs["kind"] = check_kind(kwargs["kind"])
        for key in ("until", "metrics"):
            if key in kwargs:
                value = kwargs[key]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InvalidInputError(f"header field {key!r} must be a list of strings")
                kwargs[key] = tuple(value)
        if "exact_match" in kwargs:
            kwargs["exact_match"] = MatchOptions.from_dict(kwargs["exact_match"])
    except InvalidInputError as err:
        raise InvalidInputError(f"{where}: {err}") from None
    return kwargs


def loads_task(lines: Iterable[str], source: str = "<string>") -> Task:
    """Parse a task from JSONL lines (the header first; blank lines are skipped).

    Parameters
    ----------
    lines : iterable of str
        The file's lines (a ``str`` is split on newlines).
    source : str
        Name used in error messages.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    header: dict[str, Any] | None = None
    header_where = f"{source} line 1"
    docs: list[dict[str, Any]] = []
    fewshot: list[dict[str, Any]] = []
    kind = ""
    fields = ("", "", "")
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{source} line {lineno}"
        obj = _parse_line(raw, where)
        if header is None:
            if not isinstance(obj, dict) or HEADER_KEY not in obj:
                raise FormatError(
                    f"{where}: the first line must be the header "
                    f'{{"{HEADER_KEY}": {{"name": ..., "version": ..., "kind": ...}}}}'
                )
            if not isinstance(obj[HEADER_KEY], dict):
                raise FormatError(f"{where}: {HEADER_KEY!r} must be a JSON object")
            header_where = where
            header = _header_kwargs(obj[HEADER_KEY], where)
            kind = header["kind"]
            defaults = DEFAULT_FIELDS[kind]
            fields = (
                header.get("doc_to_text") or defaults[0],
                header.get("doc_to_choice") or defaults[1],
                header.get("doc_to_target") or defaults[2],
            )
            continue
        if not isinstance(obj, dict):
            raise FormatError(f"{where}: a document must be a JSON object; got {obj!r}")
        split = obj.pop("_split", "test")
        if split not in _SPLITS:
            raise InvalidInputError(
                f"{where}: field '_split' must be one of {list(_SPLITS)}; got {split!r}"
            )
        check_doc(kind, fields, obj, where)
        (fewshot if split == "fewshot" else docs).append(obj)
    if header is None:
        raise FormatError(f"{source}: empty task file (no header line)")
    if not docs:
        raise InvalidInputError(f"{source}: the task has no documents after its header")
    try:
        return Task(docs=tuple(docs), fewshot_docs=tuple(fewshot) or None, **header)
    except InvalidInputError as err:
        raise InvalidInputError(f"{header_where}: {err}") from None


def load_task(path: str | os.PathLike[str]) -> Task:
    """Read a task file (UTF-8 JSONL, see :mod:`capscale.eval.tasks.loader`)."""
    p = Path(path)
    with p.open(encoding="utf-8-sig") as fh:
        return loads_task(fh, source=str(p))


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def dumps_task(task: Task) -> str:
    """The JSONL text of ``task`` (header, docs, then few-shot docs marked ``"_split"``)."""
    out = [_dump({HEADER_KEY: task.config()})]
    out.extend(_dump(doc) for doc in task.docs)
    for doc in task.fewshot_docs or ():
        out.append(_dump({**doc, "_split": "fewshot"}))
    return "\n".join(out) + "\n"


def save_task(task: Task, path: str | os.PathLike[str]) -> Path:
    """Write ``task`` to ``path`` in the format :func:`load_task` reads; returns the path."""
    p = Path(path)
    p.write_text(dumps_task(task), encoding="utf-8")
    return p
