"""bitsandbytes weights: blockwise 4-bit (NF4, FP4, with plain or nested "double-quant"
absmax) and LLM.int8 row-wise int8 — native multi-threaded dequantization (GIL released,
NumPy-allocated outputs), and quantizers that follow bitsandbytes' default (pure torch) CPU
implementation in NumPy.

Layouts (bitsandbytes 0.50, ``bitsandbytes.functional`` / ``backends/default/ops.py``):

* **4-bit**: the weight (``nn.Linear`` ``[out, in]``, row-major) is flattened; every
  ``blocksize`` consecutive elements share one float32 ``absmax`` (the last block may be
  partial); packed byte ``i`` is ``(q[2i] << 4) | q[2i+1]`` — the **first** element in the
  **high** nibble; an odd element count leaves the last low nibble as padding. Element ``i`` is
  ``quant_map[q_i] · absmax[i // blocksize]`` in float32, then rounded once to the output dtype.
* **nested absmax** (``compress_statistics=True``, HF ``bnb_4bit_use_double_quant``): the
  absmax of block ``b`` is ``quant_map2[qabsmax[b]] · absmax2[b // blocksize2] + offset``
  (float32: multiply, then add).
* **LLM.int8**: ``weight`` int8 ``[out, in]``, ``SCB`` float32 ``[out]`` (row absmax);
  ``W = q · SCB[row] · f32(7.874015718698502e-3)`` evaluated left to right in float32.

Non-finite ``absmax`` / ``SCB`` values are **propagated** (as bitsandbytes does): the affected
block (row) dequantizes to NaN/Inf (``Inf · 0 = NaN``); nothing is rejected.

Speed: AVX2 kernels (runtime detection; a portable path gives the same bits elsewhere),
multi-threaded over rows/blocks with the GIL released. A reused ``out=`` buffer of 16 MiB
or more (16-byte aligned, as NumPy allocates them) is written with non-temporal stores, which
skip the caches (1.3-2.5× faster into mapped pages); fresh outputs and smaller ones take plain
stores (streaming into never-touched pages is slower, and small outputs stay in cache for
whoever reads them next).

Array arguments are read flat; non-contiguous inputs are copied once (``np.ascontiguousarray``),
wrong dtypes are rejected (no silent casts of packed data or statistics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _native
from .._validate import check_count
from ..errors import InvalidInputError, ShapeError, UnknownNameError, did_you_mean
from ._out import prepare_out, resolve_dtype

__all__ = [
    "Bnb4bitState",
    "NestedAbsmax",
    "code_table",
    "dequantize_4bit",
    "dequantize_int8",
    "quantize_4bit",
    "quantize_int8",
]

QUANT_TYPES = ("nf4", "fp4")

#: ``get_4bit_type("nf4")`` (= ``create_normal_map(0.9677083, use_extra_value=True)``) as
#: float32 bit patterns.
_NF4_BITS = (
    0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F, 0xBDBA7871, 0x00000000,
    0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A, 0x3EE1A4B8, 0x3F1007AB, 0x3F3913B3, 0x3F800000,
)  # fmt: skip

#: ``create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`` as produced by
#: bitsandbytes 0.50.2 with torch 2.15 on x86-64 (its ``torch.linspace`` rounding is part of
#: the table), float32 bit patterns, ascending.
_DYNAMIC_BITS = (
    0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
    0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
    0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
    0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
    0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
    0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
    0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
    0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
    0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
    0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
    0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
    0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
    0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
    0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
    0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
    0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
    0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
    0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
    0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
    0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
    0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
    0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
    0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
    0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
    0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
    0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
    0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
    0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
    0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
    0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
    0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
    0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
)  # fmt: skip

#: bitsandbytes' FP4 raw values in bit-pattern order (1 sign, 2 exponent, 1 mantissa bits,
#: bias 2); ``get_4bit_type("fp4")`` divides them by 12 in float32 (index 8 is +0.0).
_FP4_RAW = (0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3)

#: ``torch.argsort`` of the FP4 table (torch 2.15, CPU): bitsandbytes' quantizer buckets values
#: in sorted order and maps bucket ``k`` to code ``_FP4_ORDER[k]``. The table holds +0.0 twice
#: (codes 0 and 8): 0 and tiny negative values get code 0, tiny positive values code 8.
_FP4_ORDER = (11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3)

_TABLES = ("nf4", "fp4", "dynamic")

#: LLM.int8 dequantization constant (f32(1/127) as bitsandbytes writes it).
_INT8_SCALE = np.float32(7.874015718698502e-3)


def code_table(name: str) -> np.ndarray:
    """A bitsandbytes code table as a new float32 array.

    Parameters
    ----------
    name : {"nf4", "fp4", "dynamic"}
        ``"nf4"``/``"fp4"``: the 16-entry 4-bit tables of ``get_4bit_type`` (what checkpoints
        store as ``quant_map``); ``"dynamic"``: the 256-entry signed 8-bit dynamic map of
        ``create_dynamic_map(signed=True)`` (the ``nested_quant_map`` of double-quant).

    Returns
    -------
    ndarray of float32, shape (16,) or (256,)

    Raises
    ------
    UnknownNameError
        Any other name (with a "did you mean" hint).
    """
    key = str(name).lower()
    if key == "nf4":
        return np.array(_NF4_BITS, dtype=np.uint32).view(np.float32)
    if key == "fp4":
        return np.array(_FP4_RAW, dtype=np.float32) / np.float32(12)
    if key == "dynamic":
        return np.array(_DYNAMIC_BITS, dtype=np.uint32).view(np.float32)
    hint = did_you_mean(key, _TABLES)
    raise UnknownNameError(
        f"unknown bitsandbytes code table {name!r}; "
        + (f"{hint} " if hint else "")
        + "known: 'nf4', 'fp4', 'dynamic'"
    )


def _quant_type(quant_type: Any) -> str:
    qt = str(quant_type).lower()
    if qt not in QUANT_TYPES:
        hint = did_you_mean(qt, QUANT_TYPES)
        raise UnknownNameError(
            f"unknown 4-bit quant_type {quant_type!r}; "
            + (f"{hint} " if hint else "")
            + "known: 'nf4', 'fp4'"
        )
    return qt


def _blocksize(blocksize: Any, name: str = "blocksize") -> int:
    bs = check_count(name, blocksize, 1)
    if not 32 <= bs <= 4096 or bs & (bs - 1):
        raise InvalidInputError(
            f"{name} must be a power of two from 32 to 4096 (bitsandbytes' block sizes), got {bs}"
        )
    return bs


def _flat(arr: Any, name: str, dtype: Any) -> np.ndarray:
    """``arr`` as a C-contiguous 1-D array of exactly ``dtype`` (copied once if strided)."""
    a = np.asarray(arr)
    want = np.dtype(dtype)
    if a.dtype != want:
        raise InvalidInputError(f"{name} must be a {want} array, got dtype {a.dtype}")
    return np.ascontiguousarray(a).reshape(-1)


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError as exc:
        raise InvalidInputError(f"shape must be a sequence of ints, got {shape!r}") from exc
    if any(d < 0 for d in dims):
        raise ShapeError(f"shape must have non-negative dimensions, got {dims}")
    return dims


@dataclass(frozen=True, kw_only=True)
class NestedAbsmax:
    """Double-quantized absmax of a 4-bit tensor (bitsandbytes ``compress_statistics=True``).

    Block ``b``'s absmax is ``quant_map2[qabsmax[b]] · absmax2[b // blocksize2] + offset``
    (float32 multiply, then float32 add).

    Attributes
    ----------
    qabsmax : ndarray of uint8, shape (n_blocks,)
        8-bit codes (the checkpoint's ``W.absmax``).
    absmax2 : ndarray of float32, shape (ceil(n_blocks / blocksize2),)
        Second-level scales (``W.nested_absmax``).
    quant_map2 : ndarray of float32, shape (256,)
        Code table of the codes (``W.nested_quant_map``; :func:`code_table` ``("dynamic")``).
    offset : float
        Added after the multiplication (``nested_offset``: the mean of the original absmax),
        used as float32.
    blocksize2 : int
        Codes per ``absmax2`` entry (``nested_blocksize``, 256 in bitsandbytes).
    """

    qabsmax: np.ndarray
    absmax2: np.ndarray
    quant_map2: np.ndarray
    offset: float
    blocksize2: int = 256

    def absmax(self) -> np.ndarray:
        """The dequantized per-block absmax, float32 ``(n_blocks,)`` (NumPy, for inspection)."""
        q = _flat(self.qabsmax, "qabsmax", np.uint8)
        a2 = _flat(self.absmax2, "absmax2", np.float32)
        code = _flat(self.quant_map2, "quant_map2", np.float32)
        bs2 = check_count("blocksize2", self.blocksize2, 1)
        if code.size != 256:
            raise ShapeError(f"quant_map2 has {code.size} entries, an 8-bit code table has 256")
        if a2.size != -(-q.size // bs2):
            raise ShapeError(
                f"absmax2 has {a2.size} entries, {q.size} codes in blocks of {bs2} need "
                f"{-(-q.size // bs2)}"
            )
        scale = np.repeat(a2, bs2)[: q.size]
        return code[q] * scale + np.float32(self.offset)


@dataclass(frozen=True)
class Bnb4bitState:
    """A bitsandbytes 4-bit tensor: packed codes plus everything needed to dequantize it.

    Attributes
    ----------
    packed : ndarray of uint8, shape ((n + 1) // 2, 1)
        Two codes per byte, first element in the high nibble (bitsandbytes' storage shape).
    absmax : ndarray of float32 (n_blocks,) or NestedAbsmax
        Per-block absmax, plain or double-quantized.
    quant_map : ndarray of float32, shape (16,)
        The code table (``get_4bit_type(quant_type)``).
    quant_type : {"nf4", "fp4"}
    blocksize : int
        Elements per absmax block.
    shape : tuple of int
        Shape of the original tensor (``n = prod(shape)``).
    dtype : str
        The original tensor's dtype (``"float32"`` or ``"float16"``).
    """

    packed: np.ndarray
    absmax: np.ndarray | NestedAbsmax
    quant_map: np.ndarray
    quant_type: str
    blocksize: int
    shape: tuple[int, ...]
    dtype: str

    def dequantize(
        self, dtype: Any = None, *, out: np.ndarray | None = None, n_threads: int = 0
    ) -> np.ndarray:
        """:func:`dequantize_4bit` of this state (``dtype`` defaults to the original dtype)."""
        return dequantize_4bit(
            self.packed,
            self.absmax,
            quant_map=self.quant_map,
            quant_type=self.quant_type,
            blocksize=self.blocksize,
            shape=self.shape,
            dtype=self.dtype if dtype is None else dtype,
            out=out,
            n_threads=n_threads,
        )


def dequantize_4bit(
    packed: Any,
    absmax: Any = None,
    *,
    quant_map: Any = None,
    quant_type: str = "nf4",
    blocksize: int = 64,
    shape: Sequence[int] | int,
    nested: NestedAbsmax | None = None,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Dequantize a bitsandbytes NF4/FP4 tensor (bit-exact with bitsandbytes' float32 math).

    ``out[i] = quant_map[q_i] · absmax[i // blocksize]`` computed in float32 and rounded once
    to ``dtype``; with nested absmax, ``absmax[b] = quant_map2[qabsmax[b]] ·
    absmax2[b // blocksize2] + offset`` first (float32 multiply, then add). Non-finite absmax
    values propagate. Native, multi-threaded, GIL released.

    Parameters
    ----------
    packed : ndarray of uint8, any shape (read flat)
        ``(n + 1) // 2`` bytes, byte ``i = (q[2i] << 4) | q[2i+1]``. Storage in another dtype
        (bitsandbytes' ``quant_storage``, e.g. bf16) must be viewed as uint8 first.
    absmax : ndarray of float32 (n_blocks,) or NestedAbsmax
        Per-block absmax, ``n_blocks = ceil(n / blocksize)``; ``None`` when ``nested`` is given.
    quant_map : ndarray of float32, shape (16,), optional
        The stored code table (checkpoint key ``W.quant_map``); default
        :func:`code_table` ``(quant_type)``. Prefer the stored one.
    quant_type : {"nf4", "fp4"}
        Selects the default ``quant_map``.
    blocksize : int
        Elements per absmax block: a power of two from 32 to 4096 (default 64).
    shape : int or sequence of int
        Shape of the result; ``n = prod(shape)`` (odd counts allowed).
    nested : NestedAbsmax, optional
        Double-quantized absmax (alternative to passing it as ``absmax``).
    dtype : str, numpy or torch dtype
        ``"float32"`` (default), ``"float16"`` or ``"bfloat16"`` (a uint16 array of bfloat16
        bit patterns).
    out : ndarray, optional
        A writeable C-contiguous array of ``n`` elements of the storage dtype (float32,
        float16, uint16 for bfloat16) to fill and return, reshaped to ``shape``. Reusing one
        buffer skips the page faults of a fresh output, and buffers of 16 MiB or more are
        then written with streaming stores.
    n_threads : int
        Worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores).

    Returns
    -------
    ndarray, shape ``shape``

    Raises
    ------
    FormatError
        ``packed`` is shorter than ``(n + 1) // 2`` bytes (truncated).
    ShapeError
        ``packed`` longer than that, ``absmax``/``quant_map``/nested arrays of the wrong length,
        ``out`` of the wrong size.
    InvalidInputError
        Wrong dtypes, a blocksize outside 32…4096 or not a power of two, both or neither of
        ``absmax`` and ``nested``.
    UnknownNameError
        Unknown ``quant_type``.
    """
    qt = _quant_type(quant_type)
    bs = _blocksize(blocksize)
    dims = _shape(shape)
    dt = resolve_dtype(dtype)
    check_count("n_threads", n_threads, 0)
    if isinstance(absmax, NestedAbsmax):
        if nested is not None:
            raise InvalidInputError("pass the nested absmax either as absmax or as nested=")
        nested, absmax = absmax, None
    if (absmax is None) == (nested is None):
        raise InvalidInputError("pass exactly one of absmax (float32) and nested=NestedAbsmax")
    data = _flat(packed, "packed", np.uint8)
    code = code_table(qt) if quant_map is None else _flat(quant_map, "quant_map", np.float32)
    n = math.prod(dims)
    result, native = prepare_out(out, dims, dt)
    if nested is None:
        _native.bnb_dequantize_4bit(
            data,
            _flat(absmax, "absmax", np.float32),
            code,
            bs,
            n,
            native,
            dt,
            n_threads,
            out is not None,
        )
    else:
        _native.bnb_dequantize_4bit_nested(
            data,
            _flat(nested.qabsmax, "qabsmax", np.uint8),
            _flat(nested.absmax2, "absmax2", np.float32),
            _flat(nested.quant_map2, "quant_map2", np.float32),
            check_count("blocksize2", nested.blocksize2, 1),
            float(np.float32(nested.offset)),
            code,
            bs,
            n,
            native,
            dt,
            n_threads,
            out is not None,
        )
    return result


def _bucketize(scaled: np.ndarray, sorted_code: np.ndarray) -> np.ndarray:
    """``torch.bucketize(scaled, midpoints)``: the number of float32 midpoints
    ``(c[k] + c[k+1]) / 2`` of the sorted table below each value (a value on a midpoint takes
    the lower code; NaN takes the last)."""
    mid = (sorted_code[:-1] + sorted_code[1:]) / np.float32(2)
    return np.searchsorted(mid, scaled, side="left").astype(np.uint8)


def _quantize_blocks(x: np.ndarray, bs: int) -> tuple[np.ndarray, np.ndarray]:
    """bitsandbytes' blockwise scaling (``backends/default/ops.py``, float32).

    Whole blocks: ``absmax = max|x|``, ``scaled = x · (1 / max(absmax, 1e-38))``; a partial
    last block: ``absmax = max(max|x|, 1e-38)`` (stored clamped) and ``scaled = x / absmax``;
    then ``clamp(scaled, -1, 1)``. Returns ``(scaled, absmax)``.
    """
    n = x.size
    full = n - n % bs
    tiny = np.float32(1e-38)
    blocks = x[:full].reshape(-1, bs)
    absmax = np.abs(blocks).max(axis=1) if full else np.zeros(0, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        recip = np.float32(1) / np.maximum(absmax, tiny)
        scaled = (blocks * recip[:, None]).reshape(-1)
        if n > full:
            am = np.maximum(np.abs(x[full:]).max(), tiny)
            absmax = np.concatenate([absmax, np.array([am], np.float32)])
            scaled = np.concatenate([scaled, x[full:] / am])
    return np.clip(scaled, np.float32(-1), np.float32(1)), absmax.astype(np.float32)


def quantize_4bit(
    x: Any,
    quant_type: str = "nf4",
    blocksize: int = 64,
    compress_statistics: bool = False,
) -> Bnb4bitState:
    """Quantize a tensor to bitsandbytes NF4/FP4 exactly as bitsandbytes 0.50.2's default CPU
    code (``quantize_4bit``; pure torch) does.

    Per block of ``blocksize`` flattened elements, in float32: ``absmax = max|x|``;
    ``scaled = clamp(x · (1 / max(absmax, 1e-38)), -1, 1)`` (a partial last block divides by
    ``max(absmax, 1e-38)`` instead, and stores that clamped absmax); the code is the bucket of
    ``scaled`` among the float32 midpoints of the sorted table (``torch.bucketize``: a value on
    a midpoint takes the lower code, NaN the largest), mapped back to table order for FP4. An
    odd element count is padded with one 0.0 before packing. With ``compress_statistics``,
    ``offset = mean(absmax)`` and ``absmax − offset`` is quantized the same way in blocks of 256
    with the signed dynamic 8-bit map (``quantize_blockwise``).

    Parameters
    ----------
    x : array_like of float16 or float32, any shape
        The weight (float64 is rounded to float32 first).
    quant_type : {"nf4", "fp4"}
    blocksize : int
        Power of two from 32 to 4096 (default 64, as bitsandbytes).
    compress_statistics : bool
        Double-quantize the absmax (HF ``bnb_4bit_use_double_quant``).

    Returns
    -------
    Bnb4bitState
        ``packed`` uint8 ``((n + 1) // 2, 1)``, ``absmax`` float32 ``(n_blocks,)`` or
        :class:`NestedAbsmax`, the ``quant_map``, ``shape`` and ``dtype`` of ``x``.

    Notes
    -----
    ``offset`` is the float64 mean of the float32 absmax rounded to float32; torch's float32
    ``mean`` can differ in the last ulp (and then, rarely, one nested code). bitsandbytes' CPU
    build replaces the default ``quantize_blockwise`` with a C++ kernel; both pick the nearest
    code.
    """
    qt = _quant_type(quant_type)
    bs = _blocksize(blocksize)
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise InvalidInputError(f"x must be a float array, got dtype {arr.dtype}")
    src_dtype = "float16" if arr.dtype == np.float16 else "float32"
    flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    n = flat.size
    scaled, absmax = _quantize_blocks(flat, bs)
    if n % 2:
        scaled = np.concatenate([scaled, np.zeros(1, np.float32)])
    code = code_table(qt)
    if qt == "fp4":
        order = np.array(_FP4_ORDER, dtype=np.uint8)
        q = order[_bucketize(scaled, code[order])]
    else:
        q = _bucketize(scaled, code)
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8).reshape(-1, 1)
    stats: np.ndarray | NestedAbsmax = absmax
    if compress_statistics:
        offset = np.float32(absmax.astype(np.float64).mean()) if absmax.size else np.float32(0)
        scaled2, absmax2 = _quantize_blocks(absmax - offset, 256)
        dyn = code_table("dynamic")
        stats = NestedAbsmax(
            qabsmax=_bucketize(scaled2, dyn),
            absmax2=absmax2,
            quant_map2=dyn,
            offset=float(offset),
            blocksize2=256,
        )
    return Bnb4bitState(
        packed=packed,
        absmax=stats,
        quant_map=code,
        quant_type=qt,
        blocksize=bs,
        shape=tuple(arr.shape),
        dtype=src_dtype,
    )


def dequantize_int8(
    weight_int8: Any,
    scb: Any,
    *,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Dequantize LLM.int8 row-wise weights (``Linear8bitLt``, weight_format "row").

    ``W[r, c] = q[r, c] · SCB[r] · f32(7.874015718698502e-3)``, float32 left to right (two
    roundings; bitsandbytes multiplies by f32(1/127) rather than dividing by 127), rounded once
    to ``dtype``. Non-finite SCB entries propagate.

    Parameters
    ----------
    weight_int8 : ndarray of int8, shape (out_features, in_features)
    scb : ndarray of float32, shape (out_features,)
        Per-row absmax (checkpoint key ``SCB``).
    dtype, out, n_threads
        As :func:`dequantize_4bit`.

    Returns
    -------
    ndarray, shape (out_features, in_features)

    Raises
    ------
    InvalidInputError
        Wrong dtypes. ShapeError: not 2-D, SCB length ≠ rows, ``out`` of the wrong size.
    """
    q = np.asarray(weight_int8)
    if q.dtype != np.int8:
        raise InvalidInputError(f"weight_int8 must be an int8 array, got dtype {q.dtype}")
    if q.ndim != 2:
        raise ShapeError(f"weight_int8 must be 2-D [out_features, in_features], got {q.shape}")
    s = _flat(scb, "SCB", np.float32)
    if s.size != q.shape[0]:
        raise ShapeError(f"SCB has {s.size} entries, the weight has {q.shape[0]} rows")
    dt = resolve_dtype(dtype)
    check_count("n_threads", n_threads, 0)
    result, native = prepare_out(out, q.shape, dt)
    _native.bnb_dequantize_int8(
        np.ascontiguousarray(q).reshape(-1), s, q.shape[1], native, dt, n_threads, out is not None
    )
    return result


def quantize_int8(w: Any) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise LLM.int8 quantization, as bitsandbytes' ``int8_vectorwise_quant`` (threshold 0).

    ``SCB = max|W|`` per row (float32); ``q = round(W · (f32(1/SCB) · 127))`` in float32
    (torch evaluates ``127 / SCB`` as ``reciprocal(SCB) · 127``), round half to even, as int8.
    A NaN product (an all-zero row: ``0 · inf``; Inf/NaN weights) gives 0.

    Parameters
    ----------
    w : array_like of float16 or float32, shape (out_features, in_features)

    Returns
    -------
    weight_int8 : ndarray of int8, shape (out_features, in_features)
    scb : ndarray of float32, shape (out_features,)
    """
    arr = np.asarray(w)
    if arr.dtype.kind != "f":
        raise InvalidInputError(f"w must be a float array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"w must be 2-D [out_features, in_features], got shape {arr.shape}")
    x = arr.astype(np.float32)
    scb = (np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0], np.float32)).astype(
        np.float32
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (np.float32(1) / scb) * np.float32(127)
        r = np.rint(x * scale[:, None])
    r[np.isnan(r)] = 0
    return np.clip(r, -128, 127).astype(np.int8), scb
