"""Output dtypes and buffers of the dequantization functions.

Every kernel computes exact float32 values and rounds each once into the output dtype:

* ``"float32"`` — a float32 array;
* ``"float16"`` — a float16 array (round to nearest even, as ``astype(np.float16)``);
* ``"bfloat16"`` — NumPy has no bfloat16, so a **uint16 array of bfloat16 bit patterns**
  (round to nearest even, NaN kept quiet, as torch's ``.to(torch.bfloat16)``); view it with
  ``torch.from_numpy(a).view(torch.bfloat16)``.

Outputs are allocated by NumPy (``np.empty``: pages mapped on first touch, NumPy's huge-page
aware allocator) or supplied by the caller as ``out=`` (reused buffers skip the page faults).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, ShapeError

__all__ = ["DTYPES", "prepare_out", "resolve_dtype"]

DTYPES = ("float32", "float16", "bfloat16")

_ALIASES = {
    "float32": "float32",
    "f32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "f16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def resolve_dtype(dtype: Any) -> str:
    """Normalise an output dtype (numpy dtype, torch dtype or name) to one of :data:`DTYPES`."""
    name = str(dtype).removeprefix("torch.").lower()
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt == np.float32:
        return "float32"
    if dt == np.float16:
        return "float16"
    raise InvalidInputError(f"output dtype must be float32, float16 or bfloat16, got {dtype!r}")


def _storage(dtype: str) -> np.dtype:
    return np.dtype(
        np.float32 if dtype == "float32" else np.float16 if dtype == "float16" else np.uint16
    )


def prepare_out(
    out: np.ndarray | None, shape: Sequence[int], dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """The array to return (shape ``shape``) and the flat view the native kernel fills.

    ``out`` (optional) must be a writeable C-contiguous array of the storage dtype of ``dtype``
    (float32, float16, or uint16 for bfloat16) holding ``prod(shape)`` elements.
    """
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape, dtype=np.int64))
    want = _storage(dtype)
    if out is None:
        arr = np.empty(shape, dtype=want)
    else:
        if not isinstance(out, np.ndarray):
            raise InvalidInputError(f"out must be a numpy array, got {type(out).__name__}")
        if out.dtype != want:
            raise InvalidInputError(
                f"out has dtype {out.dtype}; dtype {dtype!r} needs {want}"
                + (" (bfloat16 bit patterns)" if dtype == "bfloat16" else "")
            )
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise InvalidInputError("out must be a writeable C-contiguous array")
        if out.size != n:
            raise ShapeError(f"out holds {out.size} elements, the result has {n}")
        arr = out if out.shape == shape else out.reshape(shape)
    flat = arr.reshape(-1)
    native = flat.view(np.uint16) if dtype == "float16" else flat
    return arr, native
