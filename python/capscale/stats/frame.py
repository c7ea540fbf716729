"""DataFrame-level aggregation: one row per group with mean, stderr and bootstrap CI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _native
from .._validate import check_count, check_seed
from ..errors import InvalidInputError, UnknownNameError, did_you_mean
from .core import AVERAGES, METHODS, as_scores, check_choice, labels

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["aggregate_subtasks", "summarize"]


def _column(df: pd.DataFrame, name: str, role: str) -> str:
    if name not in df.columns:
        hint = did_you_mean(str(name), [str(c) for c in df.columns])
        raise UnknownNameError(
            f"unknown {role} column {name!r}; {hint + ' ' if hint else ''}"
            f"columns: {', '.join(map(str, df.columns))}"
        )
    return name


def summarize(
    df: pd.DataFrame,
    by: str | Sequence[str] = (),
    metric: str = "score",
    *,
    ci: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    method: str = "percentile",
    strata: str | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    average: str = "micro",
    nan: str = "raise",
    n_threads: int = 0,
) -> pd.DataFrame:
    """Mean score per group with its standard error and a bootstrap confidence interval.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per scored item.
    by : str or sequence of str
        Grouping columns (e.g. ``["model", "precision"]``); empty for one overall row.
    metric : str
        Column of per-item scores.
    ci, n_resamples, seed, method, n_threads
        As in :func:`capscale.stats.bootstrap_mean`. Group ``k`` (in sorted order of the
        group keys) draws from streams ``k·n_resamples … (k+1)·n_resamples − 1``.
    strata, cluster, weights : str, optional
        Columns with the stratum (resample within, e.g. subtask), cluster (resample whole,
        e.g. game instance) and weight of each item.
    average : {"micro", "macro"}
        Micro: mean over items; macro: mean over strata of stratum means.
    nan : {"raise", "omit"}
        NaN scores raise, or are dropped (``n`` counts the kept items).

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, n, mean, stderr, ci_low, ci_high, boot_se``; one row per group,
        sorted by the group keys.
    """
    import pandas as pd

    check_choice("method", method, METHODS)
    check_choice("average", average, AVERAGES)
    seed = check_seed(seed)
    n_resamples = check_count("n_resamples", n_resamples, 2)
    by_cols = [by] if isinstance(by, str) else list(by)
    for col in by_cols:
        _column(df, col, "grouping")
    _column(df, metric, "metric")
    for opt, role in ((strata, "strata"), (cluster, "cluster"), (weights, "weights")):
        if opt is not None:
            _column(df, opt, role)
    if len(df) == 0:
        raise InvalidInputError("the DataFrame has no rows: nothing to summarize")
    values, keep = as_scores(metric, df[metric].to_numpy(), nan)
    frame = df.loc[keep] if not keep.all() else df
    values = values[keep]
    if values.size == 0:
        raise InvalidInputError(f"every {metric!r} value is NaN: nothing to summarize")
    n = values.shape[0]
    if by_cols:
        keys = frame[by_cols].drop_duplicates().sort_values(by_cols).reset_index(drop=True)
        codes = keys.reset_index().merge(frame[by_cols], on=by_cols, how="right")["index"]
        groups = np.ascontiguousarray(codes.to_numpy(), dtype=np.uint32)
    else:
        keys = pd.DataFrame(index=[0])
        groups = np.zeros(n, dtype=np.uint32)
    w = None if weights is None else as_scores(weights, frame[weights].to_numpy())[0]
    st = None if strata is None else labels(strata, frame[strata].to_numpy(), n)
    cl = None if cluster is None else labels(cluster, frame[cluster].to_numpy(), n)
    closed = _native.summarize_groups(values, groups, w)
    small = np.flatnonzero(closed["n"] < 2)
    if small.size:
        key = keys.iloc[int(small[0])].to_dict() if by_cols else {}
        raise InvalidInputError(
            f"group {key} has a single item: a bootstrap needs at least 2 per group"
        )
    boot = _native.bootstrap_groups(
        values, groups, w, st, cl, average, n_resamples, seed, ci, method, n_threads
    )
    out = keys.copy() if by_cols else pd.DataFrame(index=[0])
    out["n"] = closed["n"].astype(np.int64)
    out["mean"] = boot["estimate"]
    out["stderr"] = closed["stderr"]
    out["ci_low"] = boot["low"]
    out["ci_high"] = boot["high"]
    out["boot_se"] = boot["boot_se"]
    return out.reset_index(drop=True)


def aggregate_subtasks(
    table: pd.DataFrame,
    weight_by_size: bool = True,
    *,
    n: str = "n",
    mean: str = "mean",
    stderr: str = "stderr",
) -> tuple[int, float, float]:
    """lm-evaluation-harness's group score from per-subtask rows: the size-weighted (or plain)
    mean of subtask means and the pooled standard error
    ``√(Σ(nᵢ−1)·nᵢ·seᵢ² / (Σnᵢ − k) / Σnᵢ)``. Returns ``(n, mean, stderr)``."""
    for col in (n, mean, stderr):
        _column(table, col, "subtask")
    return _native.pool_subtasks(
        [int(v) for v in table[n]],
        [float(v) for v in table[mean]],
        [float(v) for v in table[stderr]],
        weight_by_size,
    )
