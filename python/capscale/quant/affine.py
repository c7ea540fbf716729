"""Affine group quantization for precision sweeps ("fake quant"), on a native one-pass kernel.

For every group of ``group_size`` consecutive values along the **last axis** (rows of
``nn.Linear.weight [out, in]``, so groups run along the input features; per-channel = the
whole row) the kernel takes the group's min and max, computes a scale and a zero point, rounds
every value onto the ``2**bits``-level integer grid and maps it back — the values a model would
see after quantization. It runs multi-threaded over groups with the GIL released, and matches
the reference implementations to the last bit of float32.

Conventions (``preset``; ``b`` bits, ``qmax = 2^b − 1``, ``half = 2^(b−1)``, ``R`` the rounding,
every step one float32 operation in the order written):

* ``rtn_asym`` (AWQ ``pseudo_quantize_tensor``, most papers; the default):
  ``s = max(max − min, eps) / qmax``, ``z = clamp(−R(min / s), 0, qmax)``;
  ``q = clamp(R(w / s) + z, 0, qmax)``, value ``(q − z) · s``.
* ``rtn_sym`` (AWQ without zero point): ``s = max(absmax, eps) / (half − 1)``;
  ``clamp(R(w / s), −half, half − 1) · s``, stored as codes offset by ``z = half``.
* ``gptq_sym`` (AutoGPTQ, sym): ``s = 2·absmax / qmax`` (absmax 0 → 1), ``z = half``;
  ``q = clamp(R(w / s) + z, 0, qmax)``, value ``(q − z) · s``.
* ``hqq`` (HQQ without the optimizer): ``i = min((1 / (max − min)) · qmax, 1/eps)``,
  ``z = −min · i`` (float), ``s = 1 / i``; ``q = clamp(R(w · i + z), 0, qmax)``, value
  ``(q − z) · s``.
* ``torchao_int4`` (torchao ``ZeroPointDomain.FLOAT``): ``s₀ = (max − min) / qmax``,
  ``z = min + s₀ · half`` (float, weight domain), ``s = max(s₀, eps)``, ``m = z − s · half``;
  ``q = clamp(R((w − m) / s), 0, qmax)``, value ``(q − half) · s + z``.

Default ``eps`` per preset: 1e-5 (AWQ's clamp of the range / absmax), 0 for ``gptq_sym`` (GPTQ
maps an all-zero group to absmax 1 instead), 5e-5 for ``hqq`` (HQQ clamps the inverse scale at
2e4 = 1/5e-5), 1e-6 for ``torchao_int4`` (torchao clamps the scale after computing the zero).
HQQ's ``1 / (max − min) · qmax`` is how torch evaluates ``qmax / t`` (a reciprocal, then a
product); every other division is a true division. The min and max read −0 as +0. torchao's
tinygemm path rounds scale and zero to bfloat16; here they stay float32. ``gptq_sym`` uses
``2·absmax/qmax`` for every group, where AutoGPTQ's ``find_params`` keeps ``xmin = 0`` for a
group with no negative value (``s = max/qmax``); real weight groups practically always hold one.

Rounding: ``"half_even"`` (``np.rint``/``torch.round``, the default) or ``"half_away"`` (C
``roundf``, as ggml rounds). Inputs are converted to contiguous float32 first (float16 exactly;
float64 and integers rounded to float32), so results are those of the float32 reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, overload

import numpy as np

from .. import _native
from .._validate import check_count
from ..errors import InvalidInputError, ShapeError, UnknownNameError, did_you_mean
from ._out import prepare_out, resolve_dtype

__all__ = [
    "PRESETS",
    "ROUNDINGS",
    "AffineQuantized",
    "AffineScheme",
    "affine_dequantize",
    "affine_quantize",
    "fake_quantize",
]

#: The named conventions (exact op orders), see the module docstring.
PRESETS: tuple[str, ...] = ("rtn_asym", "rtn_sym", "gptq_sym", "hqq", "torchao_int4")
#: Tie rounding modes.
ROUNDINGS: tuple[str, ...] = ("half_even", "half_away")
#: Zero-point kinds.
ZEROS: tuple[str, ...] = ("int", "float")

# preset -> (symmetric, zero kind, default scale_eps, tag in describe())
_INFO: dict[str, tuple[bool, str, float, str]] = {
    "rtn_asym": (False, "int", 1e-5, ""),
    "rtn_sym": (True, "int", 1e-5, ""),
    "gptq_sym": (True, "int", 0.0, "gptq"),
    "hqq": (False, "float", 5e-5, "hqq"),
    "torchao_int4": (False, "float", 1e-6, "torchao"),
}
# (sym, zero) -> the preset used when none is named.
_DEFAULT_PRESET = {(False, "int"): "rtn_asym", (True, "int"): "rtn_sym", (False, "float"): "hqq"}
_ROUNDING_ALIASES = {
    "half_even": "half_even",
    "rne": "half_even",
    "half_away": "half_away",
    "rna": "half_away",
}
_F32_TINY = float(np.finfo(np.float32).tiny)


def _unknown(what: str, name: Any, known: tuple[str, ...]) -> UnknownNameError:
    hint = did_you_mean(str(name), known)
    return UnknownNameError(
        f"unknown {what} {name!r}; {hint + ' ' if hint else ''}known: {', '.join(known)}"
    )


def _check_bits(bits: Any) -> int:
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise InvalidInputError(f"bits must be an integer in 2..8, got {bits!r}")
    if not 2 <= int(bits) <= 8:
        raise InvalidInputError(f"bits must be an integer in 2..8, got {bits}")
    return int(bits)


def _check_group(group_size: Any) -> int | None:
    if group_size is None:
        return None
    if isinstance(group_size, (bool, np.bool_)) or not isinstance(group_size, (int, np.integer)):
        raise InvalidInputError(
            f"group_size must be a positive integer (or -1/None for per-channel), "
            f"got {group_size!r}"
        )
    g = int(group_size)
    if g == -1:
        return None
    if g <= 0:
        raise InvalidInputError(
            f"group_size must be a positive integer (or -1/None for per-channel), got {g}"
        )
    return g


def _check_rounding(rounding: Any) -> str:
    r = _ROUNDING_ALIASES.get(str(rounding).lower()) if isinstance(rounding, str) else None
    if r is None:
        raise _unknown("rounding", rounding, ROUNDINGS)
    return r


class _PresetFactory(Protocol):
    def __call__(
        self,
        name: str,
        bits: int = 4,
        group_size: int | None = 128,
        *,
        rounding: str = "half_even",
        scale_eps: float | None = None,
    ) -> AffineScheme: ...


class _Preset:
    """``AffineScheme.preset(name, bits, group_size)`` builds a scheme from a named
    convention; ``scheme.preset`` (on an instance) is that convention's name."""

    @overload
    def __get__(self, obj: None, owner: type[AffineScheme]) -> _PresetFactory: ...
    @overload
    def __get__(self, obj: AffineScheme, owner: type[AffineScheme] | None = None) -> str: ...
    def __get__(
        self, obj: AffineScheme | None, owner: type[AffineScheme] | None = None
    ) -> _PresetFactory | str:
        if obj is None:
            cls = owner if owner is not None else AffineScheme
            return cls._from_preset
        return obj.convention


@dataclass(frozen=True, init=False)
class AffineScheme:
    """An affine (integer-grid) group quantization scheme.

    Parameters
    ----------
    bits : int
        Bits per code, 2..8.
    group_size : int or None
        Values per group along the last axis (a divisor of the row length); ``-1`` or ``None``
        for per-channel (one group per row).
    sym : bool, optional
        Symmetric grid (no zero point). Default: the preset's, else ``False``.
    zero : {"int", "float"}, optional
        Integer zero point (clamped to the code range) or a float one (HQQ/torchao). Default:
        the preset's, else ``"int"``.
    rounding : {"half_even", "half_away"}
        Tie rounding (``np.rint``/``torch.round``, or C ``roundf``).
    scale_eps : float, optional
        Scale clamp (meaning per preset, see the module docstring); default: the preset's
        (1e-5 for ``rtn_asym``/``rtn_sym``).
    preset : str, optional
        Named convention (:data:`PRESETS`); default: ``rtn_asym`` for asymmetric integer zero,
        ``rtn_sym`` for symmetric, ``hqq`` for a float zero. ``sym``/``zero`` given with a
        preset must agree with it.

    Attributes
    ----------
    convention : str
        The resolved preset (also readable as ``scheme.preset``).

    Examples
    --------
    >>> AffineScheme(4).describe()
    'int4-g128-asym-intzero-rne'
    >>> AffineScheme.preset("gptq_sym", bits=3, group_size=64).describe()
    'int3-g64-sym-intzero-rne-gptq'
    """

    bits: int
    group_size: int | None
    sym: bool
    zero: str
    rounding: str
    scale_eps: float
    convention: str

    preset: ClassVar[_Preset] = _Preset()

    def __init__(
        self,
        bits: int,
        group_size: int | None = 128,
        sym: bool | None = None,
        zero: str | None = None,
        rounding: str = "half_even",
        scale_eps: float | None = None,
        preset: str | None = None,
    ) -> None:
        b = _check_bits(bits)
        g = _check_group(group_size)
        r = _check_rounding(rounding)
        if zero is not None and zero not in ZEROS:
            raise _unknown("zero kind", zero, ZEROS)
        if preset is not None:
            if preset not in _INFO:
                raise _unknown("affine preset", preset, PRESETS)
            psym, pzero, _, _ = _INFO[preset]
            if sym is not None and bool(sym) != psym:
                raise InvalidInputError(
                    f"preset {preset!r} is {'symmetric' if psym else 'asymmetric'}; got sym={sym!r}"
                )
            if zero is not None and zero != pzero:
                raise InvalidInputError(f"preset {preset!r} has a {pzero} zero; got zero={zero!r}")
            conv = preset
        else:
            key = (bool(sym) if sym is not None else False, zero if zero is not None else "int")
            if key not in _DEFAULT_PRESET:
                raise InvalidInputError(
                    "a symmetric scheme has no zero point to make a float: use zero='int', "
                    "or preset 'hqq' / 'torchao_int4' for float zeros"
                )
            conv = _DEFAULT_PRESET[key]
        psym, pzero, peps, _ = _INFO[conv]
        eps = peps if scale_eps is None else scale_eps
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.number)):
            raise InvalidInputError(f"scale_eps must be a number, got {scale_eps!r}")
        eps = float(eps)
        if not math.isfinite(eps) or eps < 0 or (0 < eps < _F32_TINY):
            raise InvalidInputError(
                f"scale_eps must be 0 or a finite number >= {_F32_TINY:g}, got {scale_eps!r}"
            )
        if eps == 0 and conv != "gptq_sym":
            raise InvalidInputError(
                f"scale_eps must be positive for preset {conv!r} (a constant group would "
                "divide by zero); only gptq_sym allows 0"
            )
        for name, value in (
            ("bits", b),
            ("group_size", g),
            ("sym", psym),
            ("zero", pzero),
            ("rounding", r),
            ("scale_eps", eps),
            ("convention", conv),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def _from_preset(
        cls,
        name: str,
        bits: int = 4,
        group_size: int | None = 128,
        *,
        rounding: str = "half_even",
        scale_eps: float | None = None,
    ) -> AffineScheme:
        """The scheme of a named convention (:data:`PRESETS`)."""
        if name not in _INFO:
            raise _unknown("affine preset", name, PRESETS)
        return cls(bits, group_size, rounding=rounding, scale_eps=scale_eps, preset=name)

    @property
    def qmax(self) -> int:
        """Largest code, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    def describe(self) -> str:
        """A compact name recorded with results, e.g. ``"int4-g128-asym-intzero-rne"``
        (``-gptq``/``-hqq``/``-torchao`` for those presets, ``-eps…`` for a non-default
        clamp)."""
        g = f"g{self.group_size}" if self.group_size else "perchannel"
        parts = [
            f"int{self.bits}",
            g,
            "sym" if self.sym else "asym",
            f"{self.zero}zero",
            "rne" if self.rounding == "half_even" else "rna",
        ]
        tag = _INFO[self.convention][3]
        if tag:
            parts.append(tag)
        if self.scale_eps != _INFO[self.convention][2]:
            parts.append(f"eps{self.scale_eps:g}")
        return "-".join(parts)

    def bits_per_weight(
        self,
        scale_bits: int = 16,
        zero_bits: int | None = None,
        row_length: int | None = None,
    ) -> float:
        """Storage bits per weight, the per-group scale and zero included.

        Parameters
        ----------
        scale_bits : int
            Bits of each stored scale (16 for fp16/bf16).
        zero_bits : int, optional
            Bits of each stored zero point. Default: ``bits`` for an integer zero (packed like
            AWQ/GPTQ ``qzeros``), ``scale_bits`` for a float zero, 0 for the symmetric presets
            (their zero is the constant ``2**(bits-1)``).
        row_length : int, optional
            Row length, for per-channel schemes; without it their per-row overhead is
            neglected (``bits`` is returned).
        """
        if zero_bits is None:
            zero_bits = 0 if self.sym else (scale_bits if self.zero == "float" else self.bits)
        g = self.group_size or row_length
        if not g:
            return float(self.bits)
        return self.bits + (scale_bits + zero_bits) / g


@dataclass(frozen=True, eq=False)
class AffineQuantized:
    """The stored form of an affine-quantized array (from :func:`affine_quantize`).

    Attributes
    ----------
    codes : ndarray of uint8, shape ``shape``
        Codes ``0..2**bits - 1`` (``rtn_sym`` stores ``q + 2**(bits-1)``).
    scales : ndarray of float32, shape ``(*shape[:-1], G)``
        Scale per group (``G = shape[-1] / group_size``).
    zeros : ndarray of float32, shape ``(*shape[:-1], G)``
        Zero point per group: an integer code (``rtn_asym``; ``2**(bits-1)`` for the symmetric
        presets), a float code (``hqq``), or a weight-domain value (``torchao_int4``).
    scheme : AffineScheme
    shape : tuple of int
        Shape of the original array.

    Compared by identity (the fields are arrays).
    """

    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray
    scheme: AffineScheme
    shape: tuple[int, ...]

    def dequantize(
        self, dtype: Any = "float32", *, out: np.ndarray | None = None, n_threads: int = 0
    ) -> np.ndarray:
        """:func:`affine_dequantize` of this array."""
        return affine_dequantize(self, dtype, out=out, n_threads=n_threads)


def _as_float32(x: Any) -> tuple[np.ndarray, np.dtype]:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise InvalidInputError(f"x must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ShapeError(
            "x must have at least one dimension (groups run along the last axis), got a 0-d array"
        )
    if arr.size == 0:
        raise ShapeError(f"cannot quantize an empty array (shape {arr.shape})")
    with np.errstate(over="ignore"):  # float64 beyond float32: inf, then NonFiniteError
        return np.ascontiguousarray(arr, dtype=np.float32), arr.dtype


def _out_dtype(dtype: Any, src: np.dtype) -> str:
    if dtype is None:
        if src == np.float16:
            return "float16"
        return "float64" if src == np.float64 else "float32"
    name = str(dtype).removeprefix("torch.").lower()
    if name in ("float64", "f64", "fp64", "double"):
        return "float64"
    try:
        if np.dtype(dtype) == np.float64:
            return "float64"
    except TypeError:
        pass
    return resolve_dtype(dtype)


def _to_scheme(
    scheme: Any, bits: int, group_size: int | None, sym: bool, zero: str, rounding: str
) -> AffineScheme:
    if scheme is None:
        return AffineScheme(bits, group_size, sym=sym, zero=zero, rounding=rounding)
    if isinstance(scheme, str):
        return AffineScheme.preset(scheme, bits=bits, group_size=group_size, rounding=rounding)
    if isinstance(scheme, AffineScheme):
        return scheme
    raise InvalidInputError(
        f"scheme must be an AffineScheme or a preset name, got {type(scheme).__name__}"
    )


def _fill(
    shape: tuple[int, ...],
    dtype: str,
    out: np.ndarray | None,
    guard: tuple[np.ndarray, ...],
    kernel: Any,
) -> np.ndarray:
    """Allocate (or check) the output and run ``kernel(native_view, dtype)`` into it; float64
    goes through a float32 buffer (an exact widening), and an ``out`` overlapping an input
    through a temporary."""
    if dtype == "float64":
        tmp = np.empty(shape, dtype=np.float32)
        kernel(tmp.reshape(-1), "float32")
        if out is None:
            return tmp.astype(np.float64)
        if not isinstance(out, np.ndarray) or out.dtype != np.float64:
            raise InvalidInputError("out must be a float64 array for dtype 'float64'")
        if out.size != tmp.size:
            raise ShapeError(f"out holds {out.size} elements, the result has {tmp.size}")
        np.copyto(out, tmp.reshape(out.shape))
        return out
    result, native = prepare_out(out, shape, dtype)
    if out is not None and any(np.may_share_memory(native, g) for g in guard):
        tmp_result, tmp_native = prepare_out(None, shape, dtype)
        kernel(tmp_native, dtype)
        np.copyto(result, tmp_result)
        return result
    kernel(native, dtype)
    return result


def fake_quantize(
    x: Any,
    bits: int = 4,
    group_size: int | None = 128,
    sym: bool = False,
    *,
    scheme: AffineScheme | str | None = None,
    zero: str = "int",
    rounding: str = "half_even",
    dtype: Any = None,
    out: np.ndarray | None = None,
    n_threads: int = 0,
    allow_nonfinite: bool = False,
) -> np.ndarray:
    """Quantize and dequantize ``x`` group-wise along its last axis, in one native pass.

    Parameters
    ----------
    x : array_like, shape ``(..., n)``
        Values (float32, float16, float64 or integers; converted to contiguous float32 first).
        ``n`` must be a multiple of ``group_size``.
    bits, group_size, sym, zero, rounding
        The scheme (see :class:`AffineScheme`); ignored when ``scheme`` is an AffineScheme.
    scheme : AffineScheme or str, optional
        A scheme, or a preset name (:data:`PRESETS`) used with ``bits``, ``group_size`` and
        ``rounding`` (its own ``sym``/``zero``).
    dtype : optional
        Output dtype: ``"float32"``, ``"float16"``, ``"bfloat16"`` (uint16 bit patterns) or
        ``"float64"``; default x's float dtype (float32 for integers). Each value is rounded
        once from the exact float32 result.
    out : ndarray, optional
        Preallocated C-contiguous output of that dtype's storage type (may be ``x`` itself).
    n_threads : int
        Worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores); results do not depend on it.
    allow_nonfinite : bool
        Propagate NaN through groups holding NaN/inf instead of raising NonFiniteError.

    Returns
    -------
    ndarray, shape of ``x``
    """
    sch = _to_scheme(scheme, bits, group_size, sym, zero, rounding)
    check_count("n_threads", n_threads, 0)
    arr, src_dtype = _as_float32(x)
    dt = _out_dtype(dtype, src_dtype)
    row = arr.shape[-1]

    def kernel(native: np.ndarray, name: str) -> None:
        _native.affine_quantize(
            arr,
            row,
            sch.convention,
            sch.bits,
            sch.group_size or row,
            sch.rounding,
            sch.scale_eps,
            bool(allow_nonfinite),
            out=native,
            dtype=name,
            n_threads=n_threads,
        )

    return _fill(arr.shape, dt, out, (arr,), kernel)


def affine_quantize(
    x: Any,
    scheme: AffineScheme | str | None = None,
    *,
    n_threads: int = 0,
    allow_nonfinite: bool = False,
) -> AffineQuantized:
    """Quantize ``x`` group-wise along its last axis: codes, scales and zeros.

    Parameters
    ----------
    x : array_like, shape ``(..., n)``
        Values (converted to contiguous float32).
    scheme : AffineScheme or str, optional
        Scheme, or a preset name (4 bits, groups of 128); default ``AffineScheme(4)``.
    n_threads, allow_nonfinite
        As for :func:`fake_quantize`.

    Returns
    -------
    AffineQuantized
        ``affine_dequantize(affine_quantize(x, s))`` equals ``fake_quantize(x, scheme=s)`` bit
        for bit.
    """
    sch = _to_scheme(scheme, 4, 128, False, "int", "half_even")
    check_count("n_threads", n_threads, 0)
    arr, _ = _as_float32(x)
    row = arr.shape[-1]
    g = sch.group_size or row
    n_groups = row // g if row % g == 0 else 0  # the native call reports the mismatch
    codes = np.empty(arr.shape, dtype=np.uint8)
    scales = np.empty((*arr.shape[:-1], n_groups), dtype=np.float32)
    zeros = np.empty((*arr.shape[:-1], n_groups), dtype=np.float32)
    _native.affine_quantize(
        arr,
        row,
        sch.convention,
        sch.bits,
        g,
        sch.rounding,
        sch.scale_eps,
        bool(allow_nonfinite),
        codes=codes,
        scales=scales,
        zeros=zeros,
        n_threads=n_threads,
    )
    return AffineQuantized(codes, scales, zeros, sch, tuple(arr.shape))


def affine_dequantize(
    q: AffineQuantized,
    dtype: Any = "float32",
    *,
    out: np.ndarray | None = None,
    n_threads: int = 0,
) -> np.ndarray:
    """Values of an :class:`AffineQuantized` array: ``(codes − zeros) · scales`` per group
    (``(codes − 2**(bits-1)) · scales + zeros`` for ``torchao_int4``).

    Parameters
    ----------
    q : AffineQuantized
    dtype : optional
        ``"float32"`` (default), ``"float16"``, ``"bfloat16"`` (uint16 bit patterns) or
        ``"float64"``.
    out : ndarray, optional
        Preallocated C-contiguous output.
    n_threads : int
        Worker threads (0: all cores).

    Returns
    -------
    ndarray, shape ``q.shape``
    """
    if not isinstance(q, AffineQuantized):
        raise InvalidInputError(f"q must be an AffineQuantized, got {type(q).__name__}")
    check_count("n_threads", n_threads, 0)
    sch = q.scheme
    shape = tuple(int(s) for s in q.shape)
    if not shape:
        raise ShapeError("q.shape must have at least one dimension")
    codes = np.ascontiguousarray(q.codes, dtype=np.uint8)
    if codes.shape != shape:
        raise ShapeError(f"codes have shape {codes.shape}, expected {shape}")
    row = shape[-1]
    g = sch.group_size or row
    n_groups = row // g if g and row % g == 0 else 0
    want = (*shape[:-1], n_groups)
    scales = np.ascontiguousarray(q.scales, dtype=np.float32)
    zeros = np.ascontiguousarray(q.zeros, dtype=np.float32)
    for name, arr in (("scales", scales), ("zeros", zeros)):
        if n_groups and arr.shape != want:
            raise ShapeError(f"{name} have shape {arr.shape}, expected {want}")
    dt = _out_dtype(dtype, np.dtype(np.float32))

    def kernel(native: np.ndarray, name: str) -> None:
        _native.affine_dequantize(
            codes,
            scales,
            zeros,
            row,
            sch.convention,
            sch.bits,
            g,
            native,
            dtype=name,
            n_threads=n_threads,
        )

    return _fill(shape, dt, out, (codes, scales, zeros), kernel)
