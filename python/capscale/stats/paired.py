"""Paired comparison of two systems scored on the same items (e.g. fp16 vs int4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _native
from .._validate import check_count, check_seed
from ..errors import InvalidInputError, ShapeError
from .core import AVERAGES, METHODS, as_scores, check_choice, labels

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Result of :func:`paired_difference`.

    Attributes
    ----------
    mean_a, mean_b : float
        Mean score of each system on the shared items.
    diff : float
        ``mean_a − mean_b``.
    low, high : float
        Bootstrap interval of the difference at ``level``.
    boot_se : float
        Bootstrap standard error of the difference.
    p_value : float
        Two-sided bootstrap p-value of "no difference":
        ``(1 + #{b : |d*_b − d| ≥ |d|}) / (B + 1)``.
    n : int
        Number of paired items.
    """

    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    boot_se: float
    p_value: float
    n: int
    level: float
    method: str


def _align(a: Any, b: Any) -> tuple[Any, Any]:
    """Pandas Series are paired on their index (item ids); arrays by position."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return a, b
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        if a.index.has_duplicates or b.index.has_duplicates:
            raise InvalidInputError("paired Series need unique item ids in their index")
        common = a.index.intersection(b.index)
        if len(common) == 0:
            raise InvalidInputError("the two systems share no item ids: nothing to pair")
        if len(common) != len(a) or len(common) != len(b):
            raise ShapeError(
                f"mismatched pairs: {len(a)} and {len(b)} items, {len(common)} in common; "
                "compare on the shared items explicitly (a.loc[ids], b.loc[ids])"
            )
        return a.loc[common].to_numpy(), b.loc[common].to_numpy()
    return a, b


def paired_difference(
    a: Any,
    b: Any,
    *,
    clusters: Any = None,
    strata: Any = None,
    weights: Any = None,
    average: str = "micro",
    ci: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    method: str = "percentile",
    n_threads: int = 0,
) -> PairedDifference:
    """Paired bootstrap of the difference in mean score between systems A and B.

    Each replicate resamples the items once and scores both systems on them, so the item
    difficulty shared by both cancels (far narrower intervals than two independent CIs).

    Parameters
    ----------
    a, b : array_like, shape (n,), or pandas.Series indexed by item id
        Per-item scores of the two systems on the same items (Series are paired by index).
    clusters, strata, weights, average, ci, n_resamples, seed, method, n_threads
        As in :func:`capscale.stats.bootstrap_mean`.
    """
    check_choice("method", method, METHODS)
    check_choice("average", average, AVERAGES)
    seed = check_seed(seed)
    n_resamples = check_count("n_resamples", n_resamples, 2)
    a, b = _align(a, b)
    va, _ = as_scores("a", a)
    vb, _ = as_scores("b", b)
    if va.shape != vb.shape:
        raise ShapeError(f"mismatched pairs: a has {va.shape[0]} items, b has {vb.shape[0]}")
    n = va.shape[0]
    w = None if weights is None else as_scores("weights", weights)[0]
    st = None if strata is None else labels("strata", strata, n)
    cl = None if clusters is None else labels("clusters", clusters, n)
    raw = _native.paired_difference(
        va, vb, w, st, cl, average, n_resamples, seed, ci, method, n_threads
    )
    return PairedDifference(
        mean_a=raw["mean_a"],
        mean_b=raw["mean_b"],
        diff=raw["estimate"],
        low=raw["low"],
        high=raw["high"],
        boot_se=raw["boot_se"],
        p_value=raw["p_value"],
        n=n,
        level=ci,
        method=method,
    )
