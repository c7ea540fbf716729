"""GPTQ and AWQ (GEMM) packed integer weights: native multi-threaded dequantization (GIL
released, NumPy-allocated outputs) into the ``nn.Linear`` orientation ``[out, in]``, NumPy
packers, and round-to-nearest reference quantizers with GPTQ's and AWQ's conventions.

**GPTQ** (AutoGPTQ ``cuda-old``/exllama packing; GPTQModel ``checkpoint_format`` ``"gptq"`` =
v1 and ``"gptq_v2"``), per Linear with ``in``/``out`` features and ``G`` groups:

============  ======  ======================  ==================================================
tensor        dtype   shape                   packing
============  ======  ======================  ==================================================
``qweight``   int32   ``[in·bits/32, out]``   column ``j``: LSB-first bit stream along the input
                                              dim, value ``i`` at bits ``i·bits …`` of the
                                              concatenated words (3-bit: 32 values per 3 words,
                                              values 10 and 21 straddle word boundaries)
``qzeros``    int32   ``[G, out·bits/32]``    row ``g``: the same stream along the output dim;
                                              v1 stores ``zero − 1``, v2 stores ``zero``
``scales``    f16     ``[G, out]``            —
``g_idx``     int32   ``[in]``                group of input row ``i`` (``i // group_size``
                                              unless act-order / ``desc_act``)
============  ======  ======================  ==================================================

``W[i, j] = scale[g, j] · (q[i, j] − zero[g, j])`` with ``g = g_idx[i]`` (``[in, out]``);
the functions return its transpose ``[out, in]``.

**AWQ GEMM** (AutoAWQ ``WQLinear_GEMM``, ``"version": "gemm"``): ``qweight`` int32
``[in, out/8]`` packed along the output dim with nibble ``i`` (bits ``4i``) holding column
``8c + [0,2,4,6,1,3,5,7][i]`` (so column ``8c + k`` is nibble ``[0,4,1,5,2,6,3,7][k]``);
``qzeros`` ``[in/group, out/8]`` the same way; ``scales`` ``[in/group, out]``;
``W[i, j] = (q[i, j] − zero[i // group, j]) · scale[i // group, j]`` — no ``+1``, no ``g_idx``.

Arithmetic of the dequantizers: ``q − zero`` is an exact small integer, converted to float32
and multiplied by the float32 scale (float16 scales widen exactly) — one float32 rounding —
then rounded once to the output dtype. Non-finite scales propagate (no check).

Speed: AVX2 kernels (runtime detection; a portable path gives the same bits elsewhere),
multi-threaded over output rows with the GIL released. A reused ``out=`` buffer of 16 MiB or
more whose rows start on 64-byte lines (NumPy's own buffers start 16 bytes past one) is written
with non-temporal stores, which skip the caches (about 1.6-2× faster into mapped pages); other
outputs take plain stores (streaming into never-touched pages is slower, and small outputs stay
in cache for whoever reads them next).

Array arguments: packed words must be int32 (uint32 is reinterpreted), scales float16 or
float32; non-contiguous inputs are copied once (``np.ascontiguousarray``); other dtypes are
rejected.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _native
from .._validate import check_count
from ..errors import (
    CapscaleWarning,
    InvalidInputError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
    did_you_mean,
)
from ._out import prepare_out, resolve_dtype

__all__ = [
    "AWQ_ORDER",
    "AWQ_REVERSE_ORDER",
    "AwqQuantized",
    "GptqQuantized",
    "ZeroPointWarning",
    "dequantize_awq",
    "dequantize_gptq",
    "detect_gptq_zero_convention",
    "pack_awq",
    "pack_gptq",
    "quantize_awq_rtn",
    "quantize_gptq_rtn",
    "unpack_awq",
    "unpack_gptq",
]

#: AutoAWQ's packing order: nibble ``i`` of a word holds column ``8c + AWQ_ORDER[i]``.
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
#: Column ``8c + k`` is nibble ``AWQ_REVERSE_ORDER[k]``.
AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)

CHECKPOINT_FORMATS = ("gptq", "gptq_v2")
GPTQ_BITS = (2, 3, 4, 8)


class ZeroPointWarning(CapscaleWarning):
    """A GPTQ checkpoint's zero points contradict its declared ``checkpoint_format``."""


# ---------------------------------------------------------------------------------------------
# Argument checks and bit-stream packing.
# ---------------------------------------------------------------------------------------------


def _bits(bits: Any) -> int:
    b = check_count("bits", bits, 1)
    if b not in GPTQ_BITS:
        raise InvalidInputError(f"bits must be 2, 3, 4 or 8, got {bits}")
    return b


def _zero_offset(checkpoint_format: Any) -> int:
    fmt = str(checkpoint_format).lower()
    if fmt not in CHECKPOINT_FORMATS:
        hint = did_you_mean(fmt, CHECKPOINT_FORMATS)
        raise UnknownNameError(
            f"unknown GPTQ checkpoint_format {checkpoint_format!r}; "
            + (f"{hint} " if hint else "")
            + "known: 'gptq' (v1, zero stored − 1), 'gptq_v2' (zero stored as is)"
        )
    return 1 if fmt == "gptq" else 0


def _words(arr: Any, name: str) -> np.ndarray:
    """A 2-D C-contiguous int32 array (uint32 reinterpreted)."""
    a = np.asarray(arr)
    if a.dtype == np.uint32:
        a = a.view(np.int32)
    if a.dtype != np.int32:
        raise InvalidInputError(f"{name} must be an int32 array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ShapeError(f"{name} must be 2-D, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _scales(arr: Any, name: str = "scales") -> tuple[np.ndarray, bool]:
    """2-D C-contiguous float16/float32 scales and whether they are float16."""
    a = np.asarray(arr)
    if a.dtype not in (np.float16, np.float32):
        raise InvalidInputError(
            f"{name} must be a float16 or float32 array, got dtype {a.dtype} "
            "(bfloat16 scales: convert to float32, which is exact)"
        )
    if a.ndim != 2:
        raise ShapeError(f"{name} must be 2-D [groups, out_features], got shape {a.shape}")
    return np.ascontiguousarray(a), a.dtype == np.float16


def _period(bits: int) -> tuple[int, int]:
    """Values and words per repeating period of a ``bits``-bit LSB-first stream."""
    p = 32 // math.gcd(32, bits)
    return p, p * bits // 32


def _pack_stream(vals: np.ndarray, bits: int) -> np.ndarray:
    """Pack ``vals`` (``[L, M]`` ints in ``[0, 2**bits)``) along axis 0: ``[L·bits/32, M]``."""
    p, w = _period(bits)
    rows, cols = vals.shape
    v = vals.astype(np.uint64).reshape(rows // p, p, cols)
    words = np.zeros((rows // p, w, cols), dtype=np.uint64)
    for k in range(p):
        pos = k * bits
        wi, s = divmod(pos, 32)
        words[:, wi] |= (v[:, k] << np.uint64(s)) & np.uint64(0xFFFFFFFF)
        if s + bits > 32:
            words[:, wi + 1] |= v[:, k] >> np.uint64(32 - s)
    return words.reshape(rows // p * w, cols).astype(np.uint32).view(np.int32)


def _unpack_stream(words: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`_pack_stream`: ``[R, M]`` words → ``[R·32/bits, M]`` int32 values."""
    p, w = _period(bits)
    rows, cols = words.shape
    u = words.view(np.uint32).astype(np.uint64).reshape(rows // w, w, cols)
    out = np.empty((rows // w, p, cols), dtype=np.int32)
    mask = np.uint64((1 << bits) - 1)
    for k in range(p):
        wi, s = divmod(k * bits, 32)
        v = u[:, wi] >> np.uint64(s)
        if s + bits > 32:
            v |= u[:, wi + 1] << np.uint64(32 - s)
        out[:, k] = (v & mask).astype(np.int32)
    return out.reshape(rows // w * p, cols)


def _int_values(arr: Any, name: str, hi: int, lo: int = 0) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ShapeError(f"{name} must be 2-D, got shape {a.shape}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise InvalidInputError(
            f"{name} values must be in [{lo}, {hi}], got [{int(a.min())}, {int(a.max())}]"
        )
    return a.astype(np.int64)


def _group_size(group_size: Any, in_features: int) -> int:
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
        raise InvalidInputError(f"group_size must be an integer, got {group_size!r}")
    gs = int(group_size)
    if gs == -1:
        return max(in_features, 1)
    if gs < 1:
        raise InvalidInputError(f"group_size must be positive or -1, got {gs}")
    return gs


# ---------------------------------------------------------------------------------------------
# GPTQ.
# ---------------------------------------------------------------------------------------------


def unpack_gptq(
    qweight: Any, qzeros: Any, *, bits: int = 4, checkpoint_format: str = "gptq"
) -> tuple[np.ndarray, np.ndarray]:
    """Unpack GPTQ words into integer codes and true zero points (NumPy).

    Parameters
    ----------
    qweight : ndarray of int32, shape (in·bits/32, out)
    qzeros : ndarray of int32, shape (G, out·bits/32)
    bits : {2, 3, 4, 8}
    checkpoint_format : {"gptq", "gptq_v2"}
        v1 (``"gptq"``) adds 1 to every stored zero.

    Returns
    -------
    intweight : ndarray of int32, shape (in, out)
        Codes in ``[0, 2**bits)``.
    zeros : ndarray of int32, shape (G, out)
        Zero points (v1: stored + 1, so in ``[1, 2**bits]``).
    """
    b = _bits(bits)
    off = _zero_offset(checkpoint_format)
    qw, qz = _words(qweight, "qweight"), _words(qzeros, "qzeros")
    _, w = _period(b)
    if qw.shape[0] % w or qz.shape[1] % w:
        raise ShapeError(
            f"{b}-bit words come in groups of {w}: qweight has {qw.shape[0]} rows, qzeros "
            f"{qz.shape[1]} columns"
        )
    return _unpack_stream(qw, b), _unpack_stream(qz.T.copy(), b).T.copy() + off


def pack_gptq(
    intweight: Any,
    zeros: Any,
    scales: Any,
    g_idx: Any = None,
    *,
    bits: int = 4,
    checkpoint_format: str = "gptq",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pack integer codes and zero points into GPTQ tensors (AutoGPTQ's ``pack``, NumPy).

    Parameters
    ----------
    intweight : ndarray of ints, shape (in, out)
        Codes in ``[0, 2**bits)`` in the ``[in, out]`` orientation; ``in·bits`` must be a
        multiple of 32 (3 bits: ``in`` a multiple of 32).
    zeros : ndarray of ints, shape (G, out)
        True zero points in ``[0, 2**bits)`` (v1 needs ``≥ 1``: it stores ``zero − 1``);
        ``out·bits`` must be a multiple of 32.
    scales : ndarray of float16/float32, shape (G, out)
        Returned as a C-contiguous copy (dtype kept).
    g_idx : ndarray of ints, shape (in,), optional
        Group of each input row; default ``i // (in // G)`` (requires ``G`` to divide ``in``).
    bits : {2, 3, 4, 8}
    checkpoint_format : {"gptq", "gptq_v2"}

    Returns
    -------
    qweight : int32 (in·bits/32, out)
    qzeros : int32 (G, out·bits/32)
    scales : (G, out)
    g_idx : int32 (in,)

    Raises
    ------
    InvalidInputError
        Codes or zeros out of range (including zero 0 with v1, which cannot store −1 without
        corrupting its neighbours).
    ShapeError
        Inconsistent shapes.
    """
    b = _bits(bits)
    off = _zero_offset(checkpoint_format)
    maxq = (1 << b) - 1
    q = _int_values(intweight, "intweight", maxq)
    z = _int_values(zeros, "zeros", maxq, lo=off)
    sc, _ = _scales(scales)
    n_in, n_out = q.shape
    n_groups = z.shape[0]
    if z.shape[1] != n_out or sc.shape != (n_groups, n_out):
        raise ShapeError(
            f"zeros {z.shape} and scales {sc.shape} must both be [G, {n_out}] for intweight "
            f"{q.shape}"
        )
    p, _ = _period(b)
    if n_in % p or n_out % p:
        raise ShapeError(
            f"{b}-bit GPTQ packs {p} values per word group: in ({n_in}) and out ({n_out}) "
            f"must be multiples of {p}"
        )
    gi = _g_idx(g_idx, n_in, n_groups, None)
    qweight = _pack_stream(q, b)
    qzeros = _pack_stream((z - off).T.copy(), b).T.copy()
    return qweight, qzeros, sc.copy(), gi


def _g_idx(g_idx: Any, n_in: int, n_groups: int, group_size: int | None) -> np.ndarray:
    """Validated int32 ``g_idx`` (default ``i // group_size``, or ``i // (in // G)``)."""
    if g_idx is None:
        gs = group_size
        if gs is None:
            if n_groups == 0 or n_in % n_groups:
                raise ShapeError(
                    f"cannot infer g_idx: {n_groups} groups do not divide in_features ({n_in})"
                )
            gs = n_in // n_groups
        if n_in % gs:
            raise InvalidInputError(
                f"group_size ({gs}) does not divide in_features ({n_in}); pass the checkpoint's "
                "g_idx"
            )
        if n_in // gs != n_groups:
            raise ShapeError(
                f"in_features {n_in} / group_size {gs} = {n_in // gs} groups, but scales and "
                f"qzeros have {n_groups}"
            )
        return np.arange(n_in, dtype=np.int32) // np.int32(gs)
    a = np.asarray(g_idx)
    if a.dtype.kind not in "iu":
        raise InvalidInputError(f"g_idx must be an integer array, got dtype {a.dtype}")
    a = a.reshape(-1)
    if a.size != n_in:
        raise ShapeError(f"g_idx has {a.size} entries, in_features is {n_in}")
    if a.size:
        bad = np.flatnonzero((a < 0) | (a >= n_groups))
        if bad.size:
            i = int(bad[0])
            raise InvalidInputError(
                f"g_idx[{i}] = {int(a[i])} is out of range for {n_groups} groups"
            )
    return np.ascontiguousarray(a, dtype=np.int32)


def detect_gptq_zero_convention(
    qzeros: Any, bits: int = 4, *, checkpoint_format: str | None = None
) -> str | None:
    """Which zero-point convention a **symmetric** GPTQ checkpoint's ``qzeros`` follow.

    Symmetric GPTQ zeros are all ``2**(bits−1)``: v1 (``"gptq"``) stores ``2**(bits−1) − 1``
    (``0x77777777`` words at 4 bits), v2 (``"gptq_v2"``) stores ``2**(bits−1)``
    (``0x88888888``). Some checkpoints declare ``"gptq"`` but store v2 zeros, which shifts every
    weight by one scale step (vLLM #38966).

    Parameters
    ----------
    qzeros : ndarray of int32, shape (G, out·bits/32)
    bits : {2, 3, 4, 8}
    checkpoint_format : {"gptq", "gptq_v2"}, optional
        The declared format: when the stored zeros say the other one, a
        :class:`ZeroPointWarning` is issued.

    Returns
    -------
    str or None
        ``"gptq"`` or ``"gptq_v2"`` when every stored zero is the symmetric value of that
        convention, else ``None`` (asymmetric or mixed zeros: nothing can be inferred).
    """
    b = _bits(bits)
    qz = _words(qzeros, "qzeros")
    _, w = _period(b)
    if qz.size == 0 or qz.shape[1] % w:
        return None
    stored = _unpack_stream(qz.T.copy(), b)
    half = 1 << (b - 1)
    found = "gptq_v2" if np.all(stored == half) else "gptq" if np.all(stored == half - 1) else None
    if checkpoint_format is not None and found is not None:
        declared = "gptq" if _zero_offset(checkpoint_format) else "gptq_v2"
        if declared != found:
            warnings.warn(
                f"qzeros store every zero as {half if found == 'gptq_v2' else half - 1}, the "
                f"symmetric zero of the {found!r} convention, but checkpoint_format is "
                f"{declared!r}: the checkpoint is probably mislabelled (vLLM #38966); "
                f"dequantize with checkpoint_format={found!r} if outputs look wrong",
                ZeroPointWarning,
                stacklevel=2,
            )
    return found


def dequantize_gptq(
    qweight: Any,
    qzeros: Any,
    scales: Any,
    g_idx: Any = None,
    *,
    bits: int = 4,
    group_size: int = 128,
    checkpoint_format: str = "gptq",
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Dequantize a GPTQ Linear into the ``nn.Linear`` orientation ``[out, in]``.

    ``result[j, i] = f32(scales[g, j]) · f32(q[i, j] − zero[g, j])`` with ``g = g_idx[i]`` and
    ``zero = stored + 1`` (v1 ``"gptq"``) or ``stored`` (``"gptq_v2"``): the difference is an
    exact integer, the float32 product the only rounding; then rounded once to ``dtype``.
    Native, multi-threaded, GIL released.

    Parameters
    ----------
    qweight : ndarray of int32, shape (in·bits/32, out)
        Packed codes (uint32 is reinterpreted); ``in = rows·32/bits``.
    qzeros : ndarray of int32, shape (G, out·bits/32)
    scales : ndarray of float16 or float32, shape (G, out)
    g_idx : ndarray of ints, shape (in,), optional
        Group of each input row (act-order checkpoints permute it). Default
        ``i // group_size``, which requires ``group_size`` to divide ``in``.
    bits : {2, 3, 4, 8}
    group_size : int
        Input rows per group (``-1``: one group); only used when ``g_idx`` is None.
    checkpoint_format : {"gptq", "gptq_v2"}
        Zero-point convention (see :func:`detect_gptq_zero_convention` for mislabelled
        checkpoints).
    dtype : str, numpy or torch dtype
        ``"float32"`` (default), ``"float16"`` or ``"bfloat16"`` (uint16 bit patterns).
    out : ndarray, optional
        Writeable C-contiguous array of ``out·in`` elements of the storage dtype (float32,
        float16, uint16 for bfloat16) to fill and return. Reusing one buffer skips the page
        faults of a fresh output; one of 16 MiB or more starting on a 64-byte boundary is then
        written with streaming stores.
    n_threads : int
        Worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores).

    Returns
    -------
    ndarray, shape (out, in)

    Raises
    ------
    InvalidInputError
        Wrong dtypes, ``bits`` not in {2, 3, 4, 8}, ``g_idx`` entries out of range, a
        ``group_size`` that does not divide ``in`` (without ``g_idx``).
    ShapeError
        Inconsistent shapes (qweight rows vs ``in·bits/32``, qzeros columns vs ``out·bits/32``,
        scales vs ``[G, out]``, ``g_idx`` length, ``out`` size).
    UnknownNameError
        Unknown ``checkpoint_format``.
    """
    b = _bits(bits)
    off = _zero_offset(checkpoint_format)
    qw, qz = _words(qweight, "qweight"), _words(qzeros, "qzeros")
    sc, f16 = _scales(scales)
    dt = resolve_dtype(dtype)
    check_count("n_threads", n_threads, 0)
    rows, n_out = qw.shape
    if (rows * 32) % b:
        raise ShapeError(f"qweight has {rows} rows, not a whole number of {b}-bit word groups")
    n_in = rows * 32 // b
    n_groups = sc.shape[0]
    if sc.shape[1] != n_out:
        raise ShapeError(f"scales has {sc.shape[1]} columns, qweight has {n_out} (out_features)")
    if qz.shape != (n_groups, n_out * b // 32) or (n_out * b) % 32:
        raise ShapeError(
            f"qzeros has shape {qz.shape}, expected [{n_groups}, {n_out}·{b}/32] for scales "
            f"{sc.shape}"
        )
    gi = _g_idx(g_idx, n_in, n_groups, None if g_idx is not None else _group_size(group_size, n_in))
    result, native = prepare_out(out, (n_out, n_in), dt)
    _native.gptq_dequantize(
        qw.reshape(-1),
        qz.reshape(-1),
        (sc.view(np.uint16) if f16 else sc).reshape(-1),
        gi,
        b,
        n_in,
        n_out,
        n_groups,
        off,
        native,
        dt,
        f16,
        n_threads,
        out is not None,
    )
    return result


def _finite_weight(w: Any) -> np.ndarray:
    arr = np.asarray(w)
    if arr.dtype.kind != "f":
        raise InvalidInputError(f"w must be a float array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"w must be 2-D [out_features, in_features], got shape {arr.shape}")
    x = arr.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise NonFiniteError("w contains NaN or infinite values")
    return x


@dataclass(frozen=True)
class GptqQuantized:
    """Packed GPTQ tensors (as stored in a checkpoint) and their conventions.

    Attributes
    ----------
    qweight : int32 (in·bits/32, out)
    qzeros : int32 (G, out·bits/32)
    scales : float16 or float32 (G, out)
    g_idx : int32 (in,)
    bits, group_size, checkpoint_format
    """

    qweight: np.ndarray
    qzeros: np.ndarray
    scales: np.ndarray
    g_idx: np.ndarray
    bits: int
    group_size: int
    checkpoint_format: str

    def dequantize(
        self, dtype: Any = "float32", *, out: np.ndarray | None = None, n_threads: int = 0
    ) -> np.ndarray:
        """:func:`dequantize_gptq` of these tensors: ``[out, in]``."""
        return dequantize_gptq(
            self.qweight,
            self.qzeros,
            self.scales,
            self.g_idx,
            bits=self.bits,
            group_size=self.group_size,
            checkpoint_format=self.checkpoint_format,
            dtype=dtype,
            out=out,
            n_threads=n_threads,
        )


def quantize_gptq_rtn(
    w: Any,
    bits: int = 4,
    group_size: int = 128,
    sym: bool = True,
    act_order_perm: Any = None,
    *,
    checkpoint_format: str = "gptq",
    scale_dtype: Any = np.float16,
) -> GptqQuantized:
    """Round-to-nearest quantization with GPTQ's quantizer conventions (no calibration).

    Per output row and group of input columns (float32, as GPTQ's ``Quantizer``):
    ``xmin = min(min(x), 0)``, ``xmax = max(max(x), 0)``; symmetric: ``xmax = max(|xmin|,
    xmax)`` and, if ``xmin < 0``, ``xmin = −xmax``; an all-zero group uses ``[−1, 1]``;
    ``scale = (xmax − xmin) / (2**bits − 1)``; ``zero = 2**(bits−1)`` (sym) or
    ``round(−xmin / scale)``; ``q = clamp(round(x / scale) + zero, 0, 2**bits − 1)`` (round half
    to even). Codes use the float32 scale; the stored scales are rounded to ``scale_dtype``
    (float16, as AutoGPTQ/GPTQModel checkpoints).

    Parameters
    ----------
    w : ndarray of float, shape (out, in)
        An ``nn.Linear`` weight (finite).
    bits : {2, 3, 4, 8}
    group_size : int
        Input columns per group (``-1``: one group); a partial last group is allowed.
    sym : bool
        Symmetric (GPTQ's default) or asymmetric zero points.
    act_order_perm : ndarray of ints, shape (in,), optional
        Column processing order (``desc_act``: GPTQ uses ``argsort(diag(H))`` descending):
        group ``k // group_size`` holds columns ``perm[k]``, so ``g_idx[perm[k]] = k //
        group_size``.
    checkpoint_format : {"gptq", "gptq_v2"}
        v1 cannot store a zero of 0 (asymmetric groups with no negative value): such input
        raises; use ``"gptq_v2"``.
    scale_dtype : float16 or float32

    Returns
    -------
    GptqQuantized
    """
    b = _bits(bits)
    off = _zero_offset(checkpoint_format)
    x = _finite_weight(w)
    n_out, n_in = x.shape
    gs = _group_size(group_size, n_in)
    maxq = (1 << b) - 1
    n_groups = max(-(-n_in // gs), 1)
    if act_order_perm is None:
        perm = np.arange(n_in)
    else:
        perm = np.asarray(act_order_perm).reshape(-1)
        if perm.dtype.kind not in "iu" or perm.size != n_in:
            raise InvalidInputError(f"act_order_perm must be {n_in} integers (a permutation)")
        if not np.array_equal(np.sort(perm), np.arange(n_in)):
            raise InvalidInputError("act_order_perm is not a permutation of range(in_features)")
    g_idx = np.empty(n_in, dtype=np.int32)
    g_idx[perm] = np.arange(n_in) // gs
    q = np.empty((n_in, n_out), dtype=np.int64)
    scales = np.empty((n_groups, n_out), dtype=np.float32)
    zeros = np.empty((n_groups, n_out), dtype=np.int64)
    f0 = np.float32(0)
    for g in range(n_groups):
        cols = perm[g * gs : (g + 1) * gs]
        xg = x[:, cols]
        xmin = np.minimum(xg.min(axis=1), f0)
        xmax = np.maximum(xg.max(axis=1), f0)
        if sym:
            xmax = np.maximum(np.abs(xmin), xmax)
            xmin = np.where(xmin < 0, -xmax, xmin)
        both = (xmin == 0) & (xmax == 0)
        xmin = np.where(both, np.float32(-1), xmin)
        xmax = np.where(both, np.float32(1), xmax)
        scale = (xmax - xmin) / np.float32(maxq)
        zero = np.full(n_out, (maxq + 1) // 2) if sym else np.rint(-xmin / scale).astype(np.int64)
        codes = np.clip(np.rint(xg / scale[:, None]) + zero[:, None], 0, maxq)
        q[cols] = codes.T.astype(np.int64)
        scales[g] = scale
        zeros[g] = zero
    if off and np.any(zeros == 0):
        raise InvalidInputError(
            "a group has zero point 0, which the v1 'gptq' format cannot store (it keeps "
            "zero − 1); use checkpoint_format='gptq_v2'"
        )
    sd = np.dtype(scale_dtype)
    if sd not in (np.float16, np.float32):
        raise InvalidInputError(f"scale_dtype must be float16 or float32, got {sd}")
    qweight, qzeros, sc, gi = pack_gptq(
        q, zeros, scales.astype(sd), g_idx, bits=b, checkpoint_format=checkpoint_format
    )
    return GptqQuantized(qweight, qzeros, sc, gi, b, gs, "gptq" if off else "gptq_v2")


# ---------------------------------------------------------------------------------------------
# AWQ GEMM.
# ---------------------------------------------------------------------------------------------


def _pack_awq_rows(vals: np.ndarray) -> np.ndarray:
    """``[R, out]`` nibbles → ``[R, out/8]`` int32 words in AutoAWQ's interleaved order."""
    r, n_out = vals.shape
    v = vals.astype(np.uint32).reshape(r, n_out // 8, 8)
    words = np.zeros((r, n_out // 8), dtype=np.uint32)
    for i, col in enumerate(AWQ_ORDER):
        words |= v[:, :, col] << np.uint32(4 * i)
    return words.view(np.int32)


def _unpack_awq_rows(words: np.ndarray) -> np.ndarray:
    u = words.view(np.uint32)
    r, c = u.shape
    out = np.empty((r, c, 8), dtype=np.int32)
    for k, nib in enumerate(AWQ_REVERSE_ORDER):
        out[:, :, k] = ((u >> np.uint32(4 * nib)) & np.uint32(0xF)).astype(np.int32)
    return out.reshape(r, c * 8)


def unpack_awq(qweight: Any, qzeros: Any) -> tuple[np.ndarray, np.ndarray]:
    """Unpack AWQ GEMM words: codes ``[in, out]`` and zeros ``[G, out]`` (int32, NumPy)."""
    return _unpack_awq_rows(_words(qweight, "qweight")), _unpack_awq_rows(_words(qzeros, "qzeros"))


def pack_awq(intweight: Any, zeros: Any, scales: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack 4-bit codes and zeros into AWQ GEMM tensors (AutoAWQ ``WQLinear_GEMM``, NumPy).

    Parameters
    ----------
    intweight : ndarray of ints in [0, 15], shape (in, out)
        ``out`` a multiple of 8.
    zeros : ndarray of ints in [0, 15], shape (G, out)
        ``G`` divides ``in`` (``group_size = in // G``).
    scales : ndarray of float16/float32, shape (G, out)

    Returns
    -------
    qweight : int32 (in, out/8)
    qzeros : int32 (G, out/8)
    scales : (G, out), a C-contiguous copy
    """
    q = _int_values(intweight, "intweight", 15)
    z = _int_values(zeros, "zeros", 15)
    sc, _ = _scales(scales)
    n_in, n_out = q.shape
    if n_out % 8:
        raise ShapeError(f"out_features ({n_out}) must be a multiple of 8 (8 columns per int32)")
    if z.shape[1] != n_out or sc.shape != z.shape:
        raise ShapeError(f"zeros {z.shape} and scales {sc.shape} must both be [G, {n_out}]")
    if z.shape[0] == 0 or n_in % z.shape[0]:
        raise ShapeError(f"{z.shape[0]} groups do not divide in_features ({n_in})")
    return _pack_awq_rows(q), _pack_awq_rows(z), sc.copy()


def dequantize_awq(
    qweight: Any,
    qzeros: Any,
    scales: Any,
    *,
    group_size: int = 128,
    bits: int = 4,
    dtype: Any = "float32",
    out: np.ndarray | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Dequantize an AWQ GEMM Linear into the ``nn.Linear`` orientation ``[out, in]``.

    ``result[j, i] = f32(q[i, j] − zero[i // group_size, j]) · f32(scales[i // group_size, j])``
    (exact integer difference, one float32 rounding, then rounded once to ``dtype``), with
    column ``8c + k`` of a word in nibble ``[0,4,1,5,2,6,3,7][k]``. Native, multi-threaded,
    GIL released. (GEMV-layout AWQ checkpoints are transposed and not handled here.)

    Parameters
    ----------
    qweight : ndarray of int32, shape (in, out/8)
    qzeros : ndarray of int32, shape (in/group_size, out/8)
    scales : ndarray of float16 or float32, shape (in/group_size, out)
    group_size : int
        Input rows per group; must divide ``in`` (``-1``: one group).
    bits : int
        Must be 4 (AutoAWQ's GEMM kernels support only 4 bits).
    dtype, out, n_threads
        As :func:`dequantize_gptq`.

    Returns
    -------
    ndarray, shape (out, in)

    Raises
    ------
    InvalidInputError
        Wrong dtypes, ``bits != 4``, a ``group_size`` that does not divide ``in``.
    ShapeError
        Inconsistent shapes.
    """
    if check_count("bits", bits, 1) != 4:
        raise InvalidInputError(f"AWQ GEMM weights are 4-bit; bits={bits} is not supported")
    qw, qz = _words(qweight, "qweight"), _words(qzeros, "qzeros")
    sc, f16 = _scales(scales)
    dt = resolve_dtype(dtype)
    check_count("n_threads", n_threads, 0)
    n_in, words = qw.shape
    n_out = words * 8
    gs = _group_size(group_size, n_in)
    if n_in % gs:
        raise InvalidInputError(f"group_size ({gs}) does not divide in_features ({n_in})")
    n_groups = n_in // gs
    if qz.shape != (n_groups, words):
        raise ShapeError(
            f"qzeros has shape {qz.shape}, expected [{n_groups}, {words}] (in/group_size, out/8)"
        )
    if sc.shape != (n_groups, n_out):
        raise ShapeError(
            f"scales has shape {sc.shape}, expected [{n_groups}, {n_out}] (in/group_size, out)"
        )
    result, native = prepare_out(out, (n_out, n_in), dt)
    _native.awq_dequantize(
        qw.reshape(-1),
        qz.reshape(-1),
        (sc.view(np.uint16) if f16 else sc).reshape(-1),
        n_in,
        n_out,
        gs,
        native,
        dt,
        f16,
        n_threads,
        out is not None,
    )
    return result


@dataclass(frozen=True)
class AwqQuantized:
    """Packed AWQ GEMM tensors.

    Attributes
    ----------
    qweight : int32 (in, out/8)
    qzeros : int32 (in/group_size, out/8)
    scales : float16 or float32 (in/group_size, out)
    group_size : int
    bits : int
    """

    qweight: np.ndarray
    qzeros: np.ndarray
    scales: np.ndarray
    group_size: int
    bits: int = 4

    def dequantize(
        self, dtype: Any = "float32", *, out: np.ndarray | None = None, n_threads: int = 0
    ) -> np.ndarray:
        """:func:`dequantize_awq` of these tensors: ``[out, in]``."""
        return dequantize_awq(
            self.qweight,
            self.qzeros,
            self.scales,
            group_size=self.group_size,
            bits=self.bits,
            dtype=dtype,
            out=out,
            n_threads=n_threads,
        )


def quantize_awq_rtn(
    w: Any, group_size: int = 128, bits: int = 4, *, scale_dtype: Any = np.float16
) -> AwqQuantized:
    """Round-to-nearest quantization with AWQ's conventions (``zero_point=True``), no search.

    Per output row and group of ``group_size`` input columns (float32, as AutoAWQ's
    ``pseudo_quantize_tensor``): ``scale = max(max − min, 1e-5) / 15``;
    ``zero = clamp(−round(min / scale), 0, 15)``; ``q = clamp(round(w / scale) + zero, 0, 15)``
    (round half to even). Codes use the float32 scale; stored scales are rounded to
    ``scale_dtype`` (float16, as AutoAWQ checkpoints).

    Parameters
    ----------
    w : ndarray of float, shape (out, in)
        Finite; ``out`` a multiple of 8, ``group_size`` dividing ``in``.
    group_size : int
        ``-1``: one group.
    bits : int
        Must be 4.
    scale_dtype : float16 or float32

    Returns
    -------
    AwqQuantized
    """
    if check_count("bits", bits, 1) != 4:
        raise InvalidInputError(f"AWQ GEMM weights are 4-bit; bits={bits} is not supported")
    x = _finite_weight(w)
    n_out, n_in = x.shape
    gs = _group_size(group_size, n_in)
    if n_in % gs:
        raise InvalidInputError(f"group_size ({gs}) does not divide in_features ({n_in})")
    sd = np.dtype(scale_dtype)
    if sd not in (np.float16, np.float32):
        raise InvalidInputError(f"scale_dtype must be float16 or float32, got {sd}")
    g = n_in // gs
    xg = x.reshape(n_out, g, gs)
    mx, mn = xg.max(axis=2), xg.min(axis=2)
    scale = np.maximum(mx - mn, np.float32(1e-5)) / np.float32(15)
    zero = np.clip(-np.rint(mn / scale), 0, 15)
    q = np.clip(np.rint(xg / scale[:, :, None]) + zero[:, :, None], 0, 15)
    intweight = q.reshape(n_out, n_in).T.astype(np.int64)
    qweight, qzeros, sc = pack_awq(intweight, zero.T.astype(np.int64), scale.T.astype(sd))
    return AwqQuantized(qweight, qzeros, sc, gs, 4)
