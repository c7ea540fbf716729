"""Evaluation backends, registered by dotted path and imported only when used.

Importing this package never imports torch or transformers: :func:`get_backend` resolves a
registered name (``"hf"``) or a dotted path (``"package.module:Class"``) on first use.

>>> from capscale.eval.backends import get_backend
>>> HFBackend = get_backend("hf")          # imports torch + transformers now
>>> lm = HFBackend.from_pretrained("path/to/model")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import InvalidInputError, UnknownNameError, did_you_mean
from .base import Backend

__all__ = ["BACKENDS", "Backend", "get_backend", "list_backends", "register_backend"]

#: Registered backend names and the dotted path ("module:attribute") of their class.
BACKENDS: dict[str, str] = {
    "hf": "capscale.eval.backends.hf:HFBackend",
}


def register_backend(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:Class"``) under ``name`` (not imported yet)."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"backend name must be a non-empty string, got {name!r}")
    if not isinstance(target, str) or ":" not in target:
        raise InvalidInputError(
            f"backend target must be a dotted path 'package.module:Class', got {target!r}"
        )
    BACKENDS[name] = target


def list_backends() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(BACKENDS)


def get_backend(name: str) -> Any:
    """The backend class registered as ``name``, or named by a dotted path.

    Parameters
    ----------
    name : str
        A registered name (``"hf"``) or a dotted path: ``"package.module:Class"`` or
        ``"package.module.Class"``.

    Returns
    -------
    type
        The backend class (imported now).

    Raises
    ------
    UnknownNameError
        ``name`` is neither registered nor an importable dotted path.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"backend name must be a non-empty string, got {name!r}")
    target = BACKENDS.get(name)
    if target is None:
        if ":" not in name and "." not in name:
            hint = did_you_mean(name, BACKENDS)
            raise UnknownNameError(
                f"unknown backend {name!r}; {hint + ' ' if hint else ''}"
                f"Known: {', '.join(list_backends())} (or a dotted path 'package.module:Class')"
            )
        target = name
    module_name, _, attr = target.partition(":") if ":" in target else target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UnknownNameError(
                f"backend {name!r}: module {module_name!r} cannot be imported"
            ) from exc
        raise  # a dependency of the backend is missing: keep the original error
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise UnknownNameError(f"backend {name!r}: {module_name!r} has no {attr!r}") from exc
