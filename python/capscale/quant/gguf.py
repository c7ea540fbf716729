"""GGUF block types: dequantize bytes into float32, float16 or bfloat16 and quantize floats
into bytes (native, multi-threaded, GIL released; bit-exact with ggml / the ``gguf`` package's
reference code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _native
from .._validate import check_count
from ..errors import FormatError, InvalidInputError, ShapeError
from ._out import prepare_out, resolve_dtype
from .formats import Format, get_format

__all__ = ["dequantize", "quantize"]


def _as_bytes(data: Any) -> np.ndarray:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise InvalidInputError(f"quantized data must be uint8 bytes, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr).reshape(-1)


def _gguf_format(fmt: str | Format) -> Format:
    """A registered GGUF block type (other families point to their own functions)."""
    f = get_format(fmt)
    if f.family != "gguf":
        where = {"bnb": "capscale.quant.bnb", "gptq": "capscale.quant.gptq"}.get(
            f.family, "capscale.quant.gptq"
        )
        raise InvalidInputError(
            f"{f.name} is a {f.family} format, not a GGUF block type: use {where}"
        )
    return f


def dequantize(
    data: Any,
    fmt: str | Format,
    shape: Sequence[int] | None = None,
    *,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Dequantize a buffer of whole blocks (bit-exact with ggml / ``gguf.quants.dequantize``).

    Every value is computed exactly in float32 and, for a 16-bit ``dtype``, rounded once to
    nearest even. Runs on native threads with the GIL released.

    Parameters
    ----------
    data : bytes or uint8 array
        Whole blocks of ``fmt`` (e.g. a GGUF tensor's raw data), any shape (read flat);
        ``n_bytes = n_blocks · type_size``.
    fmt : str or Format
        The block type (``"Q4_K"`` …).
    shape : sequence of int, optional
        Shape of the result; its product must be ``n_blocks · block_size``. Default: the shape
        of ``out`` when given, else flat ``(n_blocks · block_size,)``.
    dtype : str, numpy or torch dtype
        ``"float32"`` (default), ``"float16"`` or ``"bfloat16"``. NumPy has no bfloat16: that
        result is a **uint16 array of bfloat16 bit patterns** (round to nearest even, NaN kept
        quiet, as torch's ``.to(torch.bfloat16)``).
    out : ndarray, optional
        A writeable C-contiguous array to fill and return (float32, float16, or uint16 for
        bfloat16) with ``n_blocks · block_size`` elements. Reusing one buffer across calls
        skips the page faults of a fresh allocation (about 10 ms per 256 MiB). ``out`` is
        taken to be such a reused buffer: when it is larger than the last-level cache (at
        most 32 MiB) it is written with streaming stores, which bypass the caches (2-3x
        faster into mapped pages, but slower than plain stores into never-touched ones).
    n_threads : int
        Worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores).

    Returns
    -------
    ndarray
        The values, shape ``shape`` (``out`` itself when given, reshaped if ``shape`` says so).

    Raises
    ------
    FormatError
        ``data`` is not a whole number of blocks (truncated, or another type).
    ShapeError
        ``shape`` or ``out`` holds the wrong number of elements.
    InvalidInputError
        Non-uint8 ``data``, an unknown ``dtype``, or an ``out`` of the wrong dtype,
        non-contiguous or read-only.
    UnknownNameError
        ``fmt`` is not a registered format (with a "did you mean" hint).
    """
    f = _gguf_format(fmt)
    check_count("n_threads", n_threads, 0)
    dt = resolve_dtype(dtype)
    raw = _as_bytes(data)
    n_blocks, extra = divmod(raw.size, f.type_size)
    if extra:
        raise FormatError(
            f"{raw.size} bytes is not a whole number of {f.name} blocks ({f.type_size} bytes "
            "each): the buffer is truncated or of another type"
        )
    n = n_blocks * f.block_size
    if shape is None:
        shape = out.shape if isinstance(out, np.ndarray) and out.size == n else (n,)
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != n:
        raise ShapeError(f"shape {shape} holds {int(np.prod(shape))} elements, data {n}")
    result, flat = prepare_out(out, shape, dt)
    _native.gguf_dequantize(raw, f.name, flat, dt, n_threads, out is not None)
    return result


def quantize(x: Any, fmt: str | Format) -> np.ndarray:
    """Quantize float values with the reference round-to-nearest quantizer of ``fmt``
    (byte-identical to ggml's ``quantize_row_*_ref``); the last axis must be a whole number
    of blocks. Returns uint8 of shape ``(*x.shape[:-1], row_bytes)``."""
    f = _gguf_format(fmt)
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
