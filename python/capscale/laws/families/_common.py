"""Helpers shared by the law families: percentile intervals over bootstrap draws and JSON
encoding of float arrays (NaN/inf as null)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..._validate import check_level

__all__ = ["decode_array", "encode_array", "percentile_interval"]


def percentile_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 of bootstrap ``draws``.

    A draw may be NaN (the quantity is undefined in that resample, e.g. a score beyond the
    reference family's reach). An interval is only reported where at least a share ``level``
    of the draws is finite — otherwise the undefined draws could hide in either tail — and
    where there are at least 2 draws; elsewhere it is NaN.
    """
    level = check_level(level)
    draws = np.asarray(draws, dtype=float)
    tail = 100 * (1 - level) / 2
    if draws.shape[0] < 2:
        nan = np.full(draws.shape[1:], np.nan)
        return nan, nan.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.asarray(np.nanpercentile(draws, tail, axis=0), dtype=float)
        hi = np.asarray(np.nanpercentile(draws, 100 - tail, axis=0), dtype=float)
    finite = np.isfinite(draws).mean(axis=0)
    unreliable = finite < level
    lo = np.where(unreliable, np.nan, lo)
    hi = np.where(unreliable, np.nan, hi)
    return lo, hi


def encode_array(arr: Any) -> Any:
    """Nested lists of floats for JSON, non-finite values as ``None``."""
    a = np.asarray(arr, dtype=float)
    if a.ndim == 0:
        v = float(a)
        return v if math.isfinite(v) else None
    return [encode_array(x) for x in a]


def decode_array(value: Any) -> np.ndarray:
    """Inverse of :func:`encode_array` (``None`` → NaN)."""

    def conv(v: Any) -> Any:
        if isinstance(v, list):
            return [conv(x) for x in v]
        return math.nan if v is None else float(v)

    return np.array(conv(value), dtype=float)
