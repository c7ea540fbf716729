"""Lazy access to the optional torch stack, with a clear error when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from ._out import resolve_dtype

__all__ = ["numpy_to_torch", "require", "round_f32", "torch_dtype"]

_EXTRA = {
    "torch": "torch",
    "transformers": "torch",
    "safetensors": "torch",
    "gguf": "torch",
}


def require(module: str) -> ModuleType:
    """Import an optional dependency or raise MissingDependencyError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRA.get(module.split(".")[0], "torch")
        raise MissingDependencyError(
            f"{module} is needed here but is not installed: pip install 'capscale[{extra}]'"
        ) from exc


def torch_dtype(dtype: Any) -> Any:
    """The torch dtype for a capscale output dtype name (float32, float16, bfloat16)."""
    torch = require("torch")
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[
        resolve_dtype(dtype)
    ]


def numpy_to_torch(arr: np.ndarray, dtype: str) -> Any:
    """Wrap a dequantized array as a torch tensor without copying (bfloat16 arrays hold
    uint16 bit patterns and are viewed as ``torch.bfloat16``)."""
    torch = require("torch")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if resolve_dtype(dtype) == "bfloat16":
        t = t.view(torch.bfloat16)
    return t


def round_f32(values: np.ndarray, dtype: str) -> np.ndarray:
    """Round float32 values once into ``dtype`` (float16: NumPy's round to nearest even;
    bfloat16: torch's, returned as uint16 bit patterns like every capscale bfloat16 array)."""
    dt = resolve_dtype(dtype)
    if dt == "float32":
        return values
    if dt == "float16":
        return values.astype(np.float16)
    torch = require("torch")
    t = torch.from_numpy(np.ascontiguousarray(values)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)
