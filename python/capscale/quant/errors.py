"""Reconstruction error of a quantized tensor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NonFiniteError, ShapeError

__all__ = ["ErrorStats", "error_stats"]


@dataclass(frozen=True)
class ErrorStats:
    """How far a reconstruction is from its reference.

    Attributes
    ----------
    rmse : float
        Root-mean-square error (units of the weights).
    relative_rmse : float
        ``rmse / rms(reference)``.
    max_abs : float
        Largest absolute error.
    sqnr_db : float
        Signal-to-quantization-noise ratio, ``10·log10(Σref² / Σerr²)`` dB (inf if exact).
    bits_per_weight : float
        Storage cost of the format (NaN when not given).
    n : int
        Number of elements.
    """

    rmse: float
    relative_rmse: float
    max_abs: float
    sqnr_db: float
    bits_per_weight: float
    n: int


def error_stats(reference: Any, approx: Any, bits_per_weight: float = math.nan) -> ErrorStats:
    """Error statistics of ``approx`` against ``reference`` (same shape, finite reference)."""
    ref = np.asarray(reference, dtype=np.float64)
    app = np.asarray(approx, dtype=np.float64)
    if ref.shape != app.shape:
        raise ShapeError(f"reference has shape {ref.shape}, approximation {app.shape}")
    if ref.size == 0:
        raise ShapeError("empty tensors have no error statistics")
    if not np.all(np.isfinite(ref)):
        raise NonFiniteError("the reference contains NaN or inf")
    err = app - ref
    sig = float(np.sum(ref * ref))
    noise = float(np.sum(err * err))
    rmse = math.sqrt(noise / ref.size)
    rms = math.sqrt(sig / ref.size)
    return ErrorStats(
        rmse=rmse,
        relative_rmse=rmse / rms if rms > 0 else math.inf,
        max_abs=float(np.max(np.abs(err))),
        sqnr_db=10 * math.log10(sig / noise) if noise > 0 else math.inf,
        bits_per_weight=float(bits_per_weight),
        n=int(ref.size),
    )
