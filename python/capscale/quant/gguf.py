"""GGUF block types: dequantize bytes into floats and quantize floats into bytes (native,
multi-threaded, GIL released; bit-exact with ggml / the ``gguf`` package's reference code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _native
from .._validate import check_count
from ..errors import InvalidInputError, ShapeError
from .formats import Format, get_format

__all__ = ["dequantize", "quantize"]


def _as_bytes(data: Any) -> np.ndarray:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise InvalidInputError(f"quantized data must be uint8 bytes, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr).reshape(-1)


def dequantize(
    data: Any,
    fmt: str | Format,
    shape: Sequence[int] | None = None,
    *,
    dtype: Any = np.float32,
    n_threads: int = 0,
) -> np.ndarray:
    """Dequantize a buffer of whole blocks.

    Parameters
    ----------
    data : bytes or uint8 array
        Whole blocks of ``fmt`` (e.g. a GGUF tensor's raw data), any shape (read flat).
    fmt : str or Format
        The block type (``"Q4_K"`` …).
    shape : sequence of int, optional
        Shape of the result (its product must equal the number of elements); default flat.
    dtype : float32 or float16
        Output dtype (float16 is a rounding cast of the exact float32 values).
    n_threads : int
        Worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores).

    Returns
    -------
    ndarray
        ``n_blocks · block_size`` values.
    """
    f = get_format(fmt)
    check_count("n_threads", n_threads, 0)
    out = _native.gguf_dequantize(_as_bytes(data), f.name, n_threads)
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != out.size:
            raise ShapeError(f"shape {shape} holds {int(np.prod(shape))} elements, data {out.size}")
        out = out.reshape(shape)
    dt = np.dtype(dtype)
    if dt == np.float32:
        return out
    if dt == np.float16:
        return out.astype(np.float16)
    raise InvalidInputError(f"dtype must be float32 or float16, got {dt}")


def quantize(x: Any, fmt: str | Format) -> np.ndarray:
    """Quantize float values with the reference round-to-nearest quantizer of ``fmt``
    (byte-identical to ggml's ``quantize_row_*_ref``); the last axis must be a whole number
    of blocks. Returns uint8 of shape ``(*x.shape[:-1], row_bytes)``."""
    f = get_format(fmt)
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise InvalidInputError(f"values must be real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim == 0 or arr.shape[-1] % f.block_size:
        raise ShapeError(
            f"the last axis ({arr.shape[-1] if arr.ndim else 'scalar'}) must be a whole number "
            f"of {f.name} blocks ({f.block_size} elements)"
        )
    raw = _native.gguf_quantize(arr.reshape(-1), f.name)
    return raw.reshape(*arr.shape[:-1], arr.shape[-1] // f.block_size * f.type_size)
