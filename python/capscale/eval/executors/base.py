"""The executor interface, the registry (by dotted path: resolving ``local`` never imports
ray) and helpers shared by executors."""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from ...store import Store
    from ..sweep import SweepConfig

__all__ = ["EXECUTORS", "Executor", "estimate_memory_bytes", "get_executor", "load_kwargs"]

#: Executor name → "module:class" (resolved on use).
EXECUTORS: dict[str, str] = {
    "local": "capscale.eval.executors.local:LocalExecutor",
    "ray": "capscale.eval.executors.ray:RayExecutor",
}


class Executor(ABC):
    """Runs a sweep's cells into one store.

    Subclasses implement :meth:`run`; every store write happens in the calling process.
    """

    name: str = ""

    @abstractmethod
    def run(
        self,
        config: SweepConfig,
        store: Store,
        *,
        progress: bool = True,
        on_cell: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """Run every cell of ``config`` (finished cells are skipped) and return the cell
        results (``CellResult`` / ``GameRun``), calling ``on_cell`` after each."""


def get_executor(name: str, **options: Any) -> Executor:
    """An executor by name (``local``, ``ray``); ``options`` go to its constructor."""
    if name not in EXECUTORS:
        hint = did_you_mean(name, EXECUTORS)
        known = ", ".join(EXECUTORS)
        raise UnknownNameError(
            f"unknown executor {name!r}; " + (f"{hint} " if hint else "") + f"Known: {known}"
        )
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)  # type: ignore[no-any-return]


def load_kwargs(config: SweepConfig, model: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`~capscale.eval.models.load_model` for a sweep's model."""
    known = {k: v for k, v in model.items() if k not in ("source", "name", "dtype")}
    return {
        "source": model["source"],
        "name": model.get("name"),
        "dtype": model.get("dtype", config.dtype),
        "device": config.device,
        "card": known,
        "batch_size": config.batch_size,
    }


_BYTES = {"float32": 4, "fp32": 4, "float64": 8, "bfloat16": 2, "bf16": 2, "float16": 2}
_BYTES["fp16"] = 2
_WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth")


def _n_params_from_files(source: str) -> float | None:
    """A rough parameter count from the weight files on disk (None when unknown)."""
    from ..models import resolve_source

    try:
        path, known = resolve_source(source)
    except Exception:  # a built-in whose package is missing: the worker will say so
        return None
    if known.get("n_params"):
        return float(known["n_params"])
    if os.path.isfile(path) and path.lower().endswith(".gguf"):
        return os.path.getsize(path) * 2.0  # ~4 bits per weight
    if os.path.isdir(path):
        size = sum(
            os.path.getsize(os.path.join(path, f))
            for f in os.listdir(path)
            if f.endswith(_WEIGHT_FILES)
        )
        return size / 2.0 if size else None  # at least 16 bits per stored weight
    return None


def estimate_memory_bytes(model: dict[str, Any], dtype: str, gpu: bool) -> int | None:
    """Memory a worker needs for ``model``: parameters × bytes per weight of the compute
    dtype × 1.5 (activations, the CPU snapshot of the source weights). Parameters come from
    the model's card fields (``n_params``) or, failing that, from its weight files' sizes;
    None when neither is known (a hub id)."""
    n = model.get("n_params")
    n_params = float(n) if n else _n_params_from_files(str(model["source"]))
    if not n_params:
        return None
    dt = str(model.get("dtype", dtype))
    per = _BYTES.get(dt, 2 if gpu else 4) if dt != "auto" else (2 if gpu else 4)
    return int(n_params * per * 1.5)
