"""Task registry: names → generator functions, plus task files by path.

``get_task("arithmetic", digits=3)`` calls the registered generator; ``get_task("x.jsonl")``
(any existing file, or a name ending in ``.jsonl``) loads a task file. Keyword arguments that
the generator does not take but that are task settings (``num_fewshot``, ``fewshot_seed``,
``description``, ...) are applied to the result, so the same overrides work for files.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ...errors import InvalidInputError, UnknownNameError, did_you_mean
from .builtin import arithmetic, capitals_mc, facts_ppl
from .loader import load_task
from .needle import needle
from .schema import MatchOptions, Task

__all__ = ["SETTINGS", "get_task", "list_tasks", "register_task"]

TaskFactory = Callable[..., Task]
F = TypeVar("F", bound=TaskFactory)

_REGISTRY: dict[str, TaskFactory] = {}

#: Task settings that ``get_task`` can override on any task.
SETTINGS = (
    "description",
    "target_delimiter",
    "fewshot_delimiter",
    "num_fewshot",
    "fewshot_seed",
    "until",
    "max_new_tokens",
    "metrics",
    "exact_match",
)


def register_task(name: str, factory: F | None = None, *, overwrite: bool = False) -> Any:
    """Register ``factory(**params) -> Task`` under ``name`` (also usable as a decorator).

    Raises
    ------
    InvalidInputError
        ``name`` is already registered and ``overwrite`` is False.
    """

    def add(f: F) -> F:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"task name must be a non-empty string; got {name!r}")
        if name in _REGISTRY and not overwrite:
            raise InvalidInputError(f"task {name!r} is already registered")
        _REGISTRY[name] = f
        return f

    return add if factory is None else add(factory)


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(_REGISTRY)


def _apply_settings(task: Task, settings: dict[str, Any]) -> Task:
    if not settings:
        return task
    changes = dict(settings)
    if isinstance(changes.get("exact_match"), dict):
        changes["exact_match"] = MatchOptions.from_dict(changes["exact_match"])
    for key in ("until", "metrics"):
        if key in changes and not isinstance(changes[key], str):
            changes[key] = tuple(changes[key])
    return dataclasses.replace(task, **changes)


def _looks_like_path(name: str | os.PathLike[str]) -> bool:
    if isinstance(name, os.PathLike):
        return True
    return name.endswith(".jsonl") or os.sep in name or Path(name).is_file()


def get_task(name: str | os.PathLike[str], **params: Any) -> Task:
    """The task called ``name`` (registered) or stored at ``name`` (a ``.jsonl`` path).

    Parameters
    ----------
    name : str or path
        A registered name (see :func:`list_tasks`) or a task file.
    **params
        The generator's parameters (e.g. ``digits=3``) and/or task settings from
        :data:`SETTINGS` (e.g. ``num_fewshot=5``).

    Raises
    ------
    UnknownNameError
        Neither a registered name nor a file (the message suggests close names).
    InvalidInputError
        A parameter neither the generator nor the task settings know.
    FileNotFoundError
        ``name`` looks like a path (ends in ``.jsonl``) but no such file exists.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise InvalidInputError(f"task name must be a string or a path; got {name!r}")
    if isinstance(name, str) and name in _REGISTRY:
        factory = _REGISTRY[name]
        sig = inspect.signature(factory)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        own = {k: v for k, v in params.items() if takes_any or k in sig.parameters}
        rest = {k: v for k, v in params.items() if k not in own}
        _check_settings(name, rest, list(sig.parameters))
        return _apply_settings(factory(**own), rest)
    if _looks_like_path(name):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"task file {str(path)!r} does not exist")
        _check_settings(str(path), params, [])
        return _apply_settings(load_task(path), params)
    known = list_tasks()
    hint = did_you_mean(str(name), known)
    raise UnknownNameError(
        f"unknown task {name!r}; "
        + (hint + " " if hint else "")
        + "Known: "
        + ", ".join(known)
        + " (or give a path to a .jsonl task file)"
    )


def _check_settings(name: str, params: dict[str, Any], own: list[str]) -> None:
    for key in params:
        if key not in SETTINGS:
            allowed = [*own, *SETTINGS]
            hint = did_you_mean(key, allowed)
            raise InvalidInputError(
                f"task {name!r} takes no parameter {key!r}; "
                + (hint + " " if hint else "")
                + "Known: "
                + ", ".join(allowed)
            )


register_task("capitals_mc", capitals_mc)
register_task("arithmetic", arithmetic)
register_task("needle", needle)
register_task("facts_ppl", facts_ppl)
