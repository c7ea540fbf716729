"""Array-level aggregation on the native kernels: mean ± stderr and bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _native
from .._validate import check_count, check_seed
from ..errors import InvalidInputError, NonFiniteError, ShapeError, UnknownNameError, did_you_mean

__all__ = ["Interval", "bootstrap_mean", "describe", "labels", "normalize", "round_half_even"]

METHODS = ("percentile", "bca")
AVERAGES = ("micro", "macro")


@dataclass(frozen=True)
class Interval:
    """A mean with its closed-form standard error and a bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The (micro or macro, weighted) mean of the data.
    stderr : float
        Closed-form standard error (sample std, ddof 1, / √n; NaN for n < 2).
    low, high : float
        Interval at ``level`` from the bootstrap replicates.
    boot_se : float
        Standard deviation of the bootstrap replicates.
    n : int
        Number of items.
    level : float
    method : str
        ``"percentile"`` or ``"bca"``.
    n_resamples, seed : int
    """

    estimate: float
    stderr: float
    low: float
    high: float
    boot_se: float
    n: int
    level: float
    method: str
    n_resamples: int
    seed: int


def as_scores(name: str, values: Any, nan: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    """Float64 copy of 1-D scores and the mask of kept entries (``nan='omit'`` drops NaN)."""
    if nan not in ("raise", "omit"):
        raise UnknownNameError(f"unknown nan policy {nan!r}; expected 'raise' or 'omit'")
    try:
        arr = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be numeric") from None
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be 1-D, got shape {arr.shape}")
    keep = np.ones(arr.shape, dtype=bool)
    bad = ~np.isfinite(arr)
    if bad.any():
        if nan == "omit" and not np.isinf(arr).any():
            keep = ~bad
        else:
            i = int(np.flatnonzero(bad)[0])
            hint = (
                "infinite scores are never dropped"
                if nan == "omit"
                else "pass nan='omit' to drop NaN"
            )
            raise NonFiniteError(
                f"{name} has {int(bad.sum())} non-finite value(s) (first {arr[i]} at index {i}); "
                + hint
            )
    return arr, keep


def labels(name: str, values: Any, n: int) -> np.ndarray:
    """Codes ``0..k-1`` (uint32, in sorted order of the labels) for arbitrary group labels."""
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ShapeError(f"{name} must have one label per item ({n}), got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise NonFiniteError(f"{name} contains NaN labels")
    _, codes = np.unique(arr, return_inverse=True)
    return np.ascontiguousarray(codes.reshape(-1), dtype=np.uint32)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else an UnknownNameError."""
    if value not in choices:
        raise UnknownNameError(
            f"unknown {name} {value!r}; {did_you_mean(str(value), choices)} "
            f"choices: {', '.join(choices)}".replace(";  ", "; ")
        )
    return value


def describe(values: Any, weights: Any = None) -> tuple[int, float, float]:
    """``(n, mean, stderr)`` of scores (stderr = sample std with ddof 1 / √n, NaN if n < 2).

    With ``weights`` the mean is weighted and the standard error is the ratio estimator's.
    """
    v, _ = as_scores("values", values)
    w = None if weights is None else as_scores("weights", weights)[0]
    return _native.summarize(v, w)


def bootstrap_mean(
    values: Any,
    *,
    weights: Any = None,
    strata: Any = None,
    clusters: Any = None,
    average: str = "micro",
    ci: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    method: str = "percentile",
    n_threads: int = 0,
    nan: str = "raise",
) -> Interval:
    """Bootstrap confidence interval of a mean score.

    Parameters
    ----------
    values : array_like, shape (n,)
        Per-item scores (e.g. 0/1 accuracy).
    weights : array_like, shape (n,), optional
        Non-negative item weights.
    strata : array_like, shape (n,), optional
        Stratum label per item (e.g. subtask): items are resampled within strata.
    clusters : array_like, shape (n,), optional
        Cluster label per item (e.g. game instance): whole clusters are resampled.
    average : {"micro", "macro"}
        Mean over items, or mean over strata of stratum means (needs ``strata``).
    ci : float
        Confidence level in (0, 1).
    n_resamples, seed : int
        Replicate ``b`` draws from random stream ``b`` of ``seed`` (identical for any thread
        count; see ``capscale_core::stats::bootstrap`` for the exact stream).
    method : {"percentile", "bca"}
    n_threads : int
        0: ``CAPSCALE_NUM_THREADS`` or all cores.
    nan : {"raise", "omit"}
        What to do with NaN scores.
    """
    check_choice("method", method, METHODS)
    check_choice("average", average, AVERAGES)
    v, keep = as_scores("values", values, nan)
    n = v.shape[0]
    w = None if weights is None else as_scores("weights", weights)[0]
    st = None if strata is None else labels("strata", strata, n)
    cl = None if clusters is None else labels("clusters", clusters, n)
    if not keep.all():
        v = v[keep]
        w = None if w is None else w[keep]
        st = None if st is None else labels("strata", st[keep], v.shape[0])
        cl = None if cl is None else labels("clusters", cl[keep], v.shape[0])
    seed = check_seed(seed)
    n_resamples = check_count("n_resamples", n_resamples, 2)
    raw = _native.bootstrap_mean(v, w, st, cl, average, n_resamples, seed, ci, method, n_threads)
    _, _, se = _native.summarize(v, w)
    return Interval(
        estimate=raw["estimate"],
        stderr=se,
        low=raw["low"],
        high=raw["high"],
        boot_se=raw["boot_se"],
        n=int(v.shape[0]),
        level=ci,
        method=method,
        n_resamples=n_resamples,
        seed=seed,
    )


def normalize(values: Any, baseline: float, maximum: float = 1.0) -> np.ndarray:
    """Scores relative to a random baseline: ``(x − baseline) / (maximum − baseline)``.

    0 is chance level (e.g. 0.25 for 4-way multiple choice), 1 is a perfect score.
    """
    v, _ = as_scores("values", values)
    return _native.normalize(v, float(baseline), float(maximum))


def round_half_even(x: Any, decimals: int = 2) -> Any:
    """Round like NumPy/pandas (``rint(x·10^d)/10^d``), as clembench does — not Python's
    ``round``, which differs at ties such as 90.975."""
    scale = 10.0**decimals
    return np.rint(np.asarray(x, dtype=np.float64) * scale) / scale
