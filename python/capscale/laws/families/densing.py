"""Capability density: the densing law of Xiao et al. (arXiv 2412.04315 v2).

The law has two fitted pieces, an inversion and a trend (``../shared/reference/laws.md`` §3)::

    loss law (reference family)   L(N, D) = a·N^−α + b·D^−β                      (eq. 2)
    loss → score                  S(L)    = c / (1 + exp(−γ (L − l))) + d         (eq. 3)
    effective size                L̂(S)    = l − ln(c / (S − d) − 1) / γ
                                  N̂(S)    = ((L̂(S) − b·D₀^−β) / a)^(−1/α)        (eq. 4)
    density of a model M          ρ(M)    = N̂(S_M) / N_M                          (eq. 1)
    trend                         ln ρ_max(t) = A·t + B,  doubling time ln 2 / A  (eq. 5)

``N̂`` is the size the reference family would need, trained on the fixed budget ``D₀``
(1T tokens in arXiv v2; the Nature version reportedly uses 5T), to reach score ``S``. It is
defined only for ``d < S < c + d`` (with ``c > 0``) and ``L̂ > b·D₀^−β``; elsewhere the free
functions raise :class:`~capscale.errors.InvalidInputError` (``errors="raise"``) or return
NaN (``errors="nan"``), and a fit reports NaN densities with an
:class:`~capscale.errors.InestimableWarning`. ``t`` is in days since ``origin`` (default
2023-02-24, the release of Llama-1, as in the paper).

The input table
---------------
One row per observation, with columns ``N`` (parameters), ``D`` (training tokens), ``loss``
(the conditional loss on the test set, nats per token), ``score`` (benchmark score), and
optionally ``model`` (a name), ``release_date`` (ISO ``YYYY-MM-DD`` or datetime; needed for
the trend) and ``role``. A cell that a row does not need may be NaN. Each row plays a role:

``reference``
    a reference-family run: ``N``, ``D`` and ``loss`` fit the loss law; with a ``score``
    it also calibrates the score law.
``calibration``
    a (``loss``, ``score``) pair that calibrates the score law only (the paper's MiniCPM-3
    checkpoints).
``evaluated``
    a model whose density is measured: ``N`` and ``score`` (its loss is not used: losses
    of models with different tokenizers and data are not comparable), ``release_date``.

Without a ``role`` column the role is inferred: rows with ``N``, ``D`` and ``loss`` are
``reference``; other rows with ``loss`` and ``score`` are ``calibration``; rows without a
``loss`` but with ``N`` and ``score`` are ``evaluated``. ``columns={"N": "n_params", ...}``
maps these names onto a table's own.

The trend's envelope (how ``ρ_max`` points are chosen) is UNCONFIRMED in the paper; three
choices are offered: ``"record"`` (default: the models that set a new maximum density when
released, i.e. the jump points of the running maximum), ``"running_max"`` (the running
maximum ``max{ρ_j : t_j ≤ t}`` at every release date) and ``"all"`` (every model).

Uncertainty is a joint bootstrap, deterministic in ``seed``: resample ``k`` refits the loss
law on reference rows drawn from stream ``k`` of ``seed``, the score law on calibration rows
from stream ``k`` of ``seed + 1``, recomputes every density with those two laws, and refits
the trend on the evaluated models drawn from stream ``k`` of ``seed + 2``
(:func:`capscale.fit.bootstrap_indices`). Confidence intervals are bootstrap percentiles.

From capscale's store
---------------------
:func:`densing_table_from_store` aggregates the per-item records of one task and metric per
model with :func:`capscale.stats.summarize` and takes ``N``, ``D`` and ``release_date`` from
the model cards (``n_params``, ``training_tokens``, ``release_date``); with
``loss_metric`` and ``reference`` (model names or a family), the reference family's mean
per-item loss becomes its ``loss`` and those models are the ``reference`` rows::

    with open_store("study.db") as store:
        table = densing_table_from_store(store, "mmlu", "acc", loss_metric="cond_loss",
                                         reference="my-ref-family")
    law = get_family("densing").fit(table)
    print(law.summary()); law.plot()
"""

from __future__ import annotations

import datetime as _dt
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._validate import check_count, check_seed
from ...errors import (
    CapscaleWarning,
    FitError,
    FormatError,
    InestimableWarning,
    InvalidInputError,
    NonFiniteError,
    UnknownNameError,
    did_you_mean,
)
from ..basic import doubling_time, stable_sigmoid
from ..family import LawFamily, register_family, require_columns
from ._common import decode_array, encode_array, percentile_interval

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_D0",
    "DEFAULT_ORIGIN",
    "ENVELOPES",
    "DensingLaw",
    "DensityTrend",
    "densing_table_from_store",
    "density_trend",
    "effective_params",
    "loss_from_score",
    "loss_law",
    "score_law",
]

#: The fixed data budget of the inversion (tokens): 1T in arXiv v2.
DEFAULT_D0 = 1e12
#: Day zero of the trend's time axis: the release of Llama-1.
DEFAULT_ORIGIN = "2023-02-24"
#: Ways to pick the points of ``ln ρ_max(t)`` (see the module docstring).
ENVELOPES = ("record", "running_max", "all")
ROLES = ("reference", "calibration", "evaluated")
LOSS_NAMES = ("a", "alpha", "b", "beta")
SCORE_NAMES = ("c", "gamma", "l", "d")
_CANONICAL = ("model", "N", "D", "loss", "score", "release_date")
_ERRORS = ("raise", "nan")
_QUANTITIES = ("auto", "density", "effective_params", "score", "density_max", "loss")
_MIN_TREND = 3


# --------------------------------------------------------------------------- the equations


def loss_law(N: Any, D: Any, a: Any, alpha: Any, b: Any, beta: Any) -> np.ndarray:
    """Reference-family loss ``L = a·N^−α + b·D^−β`` (eq. 2; broadcasts).

    Parameters
    ----------
    N, D : array_like
        Parameters and training tokens (counts, > 0).
    a, alpha, b, beta : float or array_like
        Constants (``a``, ``b`` in nats per token).
    """
    with np.errstate(over="ignore", under="ignore"):
        out = np.asarray(a) * np.asarray(N, dtype=float) ** (-np.asarray(alpha)) + np.asarray(
            b
        ) * np.asarray(D, dtype=float) ** (-np.asarray(beta))
    return np.asarray(out, dtype=float)


def score_law(L: Any, c: Any, gamma: Any, l: Any, d: Any) -> np.ndarray:  # noqa: E741
    """Score from loss ``S = c / (1 + exp(−γ (L − l))) + d`` (eq. 3; ``γ < 0`` for a score
    that falls with loss; broadcasts, overflow-free)."""
    z = np.asarray(gamma) * (np.asarray(L, dtype=float) - np.asarray(l))
    return np.asarray(np.asarray(c) * stable_sigmoid(z) + np.asarray(d), dtype=float)


def _check_errors(errors: str) -> None:
    if errors not in _ERRORS:
        raise InvalidInputError(f"errors must be 'raise' or 'nan', got {errors!r}")


def loss_from_score(
    S: Any,
    c: Any,
    gamma: Any,
    l: Any,  # noqa: E741
    d: Any,
    *,
    errors: str = "raise",
) -> np.ndarray:
    """Invert the score law: ``L̂ = l − ln(c / (S − d) − 1) / γ`` (broadcasts).

    Defined for ``(S − d)/c`` in ``(0, 1)``, i.e. ``d < S < c + d`` when ``c > 0``.

    Parameters
    ----------
    S : array_like
        Scores.
    c, gamma, l, d : float or array_like
        Score-law constants.
    errors : {"raise", "nan"}
        A score outside the range raises :class:`InvalidInputError`, or gives NaN.
    """
    _check_errors(errors)
    s = np.asarray(S, dtype=float)
    with np.errstate(all="ignore"):
        # c/(S − d) − 1 = (c + d − S)/(S − d), without the cancellation near S = c + d
        ratio = (np.asarray(c) + np.asarray(d) - s) / (s - np.asarray(d))
        ok = np.isfinite(ratio) & (ratio > 0)
        out = np.where(
            ok, np.asarray(l) - np.log(np.where(ok, ratio, 1.0)) / np.asarray(gamma), np.nan
        )
    if errors == "raise" and not np.all(ok):
        j = int(np.flatnonzero(~np.broadcast_to(ok, out.shape).ravel())[0])
        s_bad = np.broadcast_to(s, out.shape).ravel()[j]
        lo = np.broadcast_to(np.minimum(d, np.asarray(d) + np.asarray(c)), out.shape).ravel()[j]
        hi = np.broadcast_to(np.maximum(d, np.asarray(d) + np.asarray(c)), out.shape).ravel()[j]
        raise InvalidInputError(
            f"score {s_bad:.6g} is outside the score law's open range ({lo:.6g}, {hi:.6g}): "
            "it has no loss, hence no effective size (errors='nan' gives NaN)"
        )
    return np.asarray(out, dtype=float)


def effective_params(
    S: Any,
    *,
    a: Any,
    alpha: Any,
    b: Any,
    beta: Any,
    c: Any,
    gamma: Any,
    l: Any,  # noqa: E741
    d: Any,
    d0: float = DEFAULT_D0,
    errors: str = "raise",
) -> np.ndarray:
    """Effective parameter size ``N̂(S) = ((L̂(S) − b·D₀^−β)/a)^(−1/α)`` (eq. 4; broadcasts).

    The size a reference-family model trained on ``d0`` tokens needs to score ``S``.

    Parameters
    ----------
    S : array_like
        Scores.
    a, alpha, b, beta, c, gamma, l, d : float or array_like
        Loss-law and score-law constants.
    d0 : float
        The fixed data budget in tokens (default 1e12, arXiv v2).
    errors : {"raise", "nan"}
        For a score outside ``(d, c + d)`` or one whose loss ``L̂`` is at or below the data
        term ``b·d0^−β`` (no size reaches it): raise :class:`InvalidInputError`, or NaN.

    Returns
    -------
    ndarray
        Parameters (count), same broadcast shape as the inputs.
    """
    _check_errors(errors)
    if not (math.isfinite(d0) and d0 > 0):
        raise InvalidInputError(f"d0 must be a finite number of tokens > 0, got {d0!r}")
    L_hat = loss_from_score(S, c, gamma, l, d, errors=errors)
    with np.errstate(all="ignore"):
        floor = np.asarray(b) * float(d0) ** (-np.asarray(beta))
        excess = (L_hat - floor) / np.asarray(a)
        ok = np.isfinite(excess) & (excess > 0)
        out = np.where(ok, np.where(ok, excess, 1.0) ** (-1.0 / np.asarray(alpha)), np.nan)
    if errors == "raise" and not np.all(ok):
        j = int(np.flatnonzero(~np.broadcast_to(ok, out.shape).ravel())[0])
        lb = np.broadcast_to(L_hat, out.shape).ravel()[j]
        fl = np.broadcast_to(floor, out.shape).ravel()[j]
        raise InvalidInputError(
            f"score implies loss {lb:.6g}, at or below the data term b·D0^-beta = {fl:.6g} at "
            f"D0 = {d0:.3g} tokens: no model size reaches it (errors='nan' gives NaN)"
        )
    return np.asarray(out, dtype=float)


# --------------------------------------------------------------------------- the trend


@dataclass(frozen=True)
class DensityTrend:
    """OLS fit of ``ln ρ = A·t + B`` on the envelope points.

    Attributes
    ----------
    A, B : float
        Slope (1/day) and intercept (ln density at ``t = 0``).
    A_stderr, B_stderr : float
        OLS standard errors (NaN with fewer than 3 points).
    r2 : float
        Coefficient of determination on the envelope points.
    t, log_density : ndarray
        The envelope points used (days, ln ρ).
    envelope : str
        How the points were chosen (one of :data:`ENVELOPES`).
    """

    A: float
    B: float
    A_stderr: float
    B_stderr: float
    r2: float
    t: np.ndarray
    log_density: np.ndarray
    envelope: str

    @property
    def n_points(self) -> int:
        """Number of envelope points."""
        return int(self.t.shape[0])

    @property
    def doubling_time(self) -> float:
        """``ln 2 / A`` in days."""
        return float(doubling_time(self.A))


def _check_envelope(envelope: str) -> None:
    if envelope not in ENVELOPES:
        hint = did_you_mean(str(envelope), ENVELOPES)
        raise UnknownNameError(
            f"unknown envelope {envelope!r}; {hint + ' ' if hint else ''}"
            f"choose one of {', '.join(ENVELOPES)}"
        )


def _record_mask(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Models that set a new maximum when released (ties in date: the best of the day)."""
    order = np.lexsort((-y, t))
    ys = y[order]
    prev = np.concatenate([[-np.inf], np.maximum.accumulate(ys)[:-1]])
    mask = np.zeros(t.shape[0], dtype=bool)
    mask[order[ys > prev]] = True
    return mask


def _envelope(t: np.ndarray, y: np.ndarray, envelope: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(t, ln ρ_max)`` points of an envelope, sorted by date."""
    if envelope == "all":
        order = np.argsort(t, kind="stable")
        return t[order], y[order]
    if envelope == "record":
        m = _record_mask(t, y)
        order = np.argsort(t[m], kind="stable")
        return t[m][order], y[m][order]
    order = np.lexsort((-y, t))
    ts, run = t[order], np.maximum.accumulate(y[order])
    last = np.concatenate([ts[1:] != ts[:-1], [True]])
    return ts[last], run[last]


def _ols(t: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float]:
    """``(A, B, se_A, se_B, r2)`` of ``y = A t + B``; NaNs when the dates do not vary."""
    n = t.shape[0]
    tm, ym = float(t.mean()), float(y.mean())
    sxx = float(((t - tm) ** 2).sum())
    if n < 2 or sxx <= 0:
        return (math.nan,) * 5
    A = float(((t - tm) * (y - ym)).sum() / sxx)
    B = ym - A * tm
    ssr = float(((y - A * t - B) ** 2).sum())
    sst = float(((y - ym) ** 2).sum())
    r2 = 1.0 - ssr / sst if sst > 0 else 1.0
    if n > 2:
        s2 = ssr / (n - 2)
        se_a, se_b = math.sqrt(s2 / sxx), math.sqrt(s2 * (1.0 / n + tm * tm / sxx))
    else:
        se_a = se_b = math.nan
    return A, B, se_a, se_b, r2


def density_trend(t: Any, density: Any, *, envelope: str = "record") -> DensityTrend:
    """Fit ``ln ρ_max(t) = A·t + B`` by OLS on an envelope of (date, density) points.

    Parameters
    ----------
    t : array_like, shape (m,)
        Release dates in days (since any origin: only ``B`` depends on it).
    density : array_like, shape (m,)
        Densities (> 0).
    envelope : {"record", "running_max", "all"}
        Which points form ``ρ_max`` (see the module docstring).

    Returns
    -------
    DensityTrend

    Raises
    ------
    InvalidInputError
        Non-positive densities, mismatched lengths, or fewer than 3 envelope points on
        distinct dates (a line with an uncertainty needs 3).
    """
    _check_envelope(envelope)
    tt = np.asarray(t, dtype=float).ravel()
    rho = np.asarray(density, dtype=float).ravel()
    if tt.shape != rho.shape:
        raise InvalidInputError(f"t and density differ in length: {tt.shape[0]} vs {rho.shape[0]}")
    if not (np.all(np.isfinite(tt)) and np.all(np.isfinite(rho))):
        raise NonFiniteError("t and density must be finite (drop models without a density)")
    if np.any(rho <= 0):
        j = int(np.flatnonzero(rho <= 0)[0])
        raise InvalidInputError(f"density must be > 0, got {rho[j]} at index {j}")
    te, ye = _envelope(tt, np.log(rho), envelope)
    if np.unique(te).shape[0] < _MIN_TREND:
        raise InvalidInputError(
            f"the trend ln rho = A*t + B needs at least {_MIN_TREND} envelope points on distinct "
            f"dates, got {np.unique(te).shape[0]} ({envelope!r} envelope of {tt.shape[0]} models)"
        )
    A, B, se_a, se_b, r2 = _ols(te, ye)
    te.setflags(write=False)
    ye.setflags(write=False)
    return DensityTrend(A, B, se_a, se_b, r2, te, ye, envelope)


# --------------------------------------------------------------------------- input handling


def _float_column(df: Any, col: str) -> np.ndarray:
    import pandas as pd

    try:
        values = pd.to_numeric(df[col], errors="raise")
        arr = np.asarray(pd.Series(values).to_numpy(dtype=float, na_value=np.nan), dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"densing: column {col!r} must be numeric: {exc}") from None
    if np.any(np.isinf(arr)):
        raise NonFiniteError(f"densing: column {col!r} contains inf")
    return arr


def _to_date(value: Any, what: str) -> Any:
    """A ``numpy.datetime64[D]`` (NaT for a missing value); raise for anything else."""
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return np.datetime64("NaT", "D")
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date, np.datetime64)):
        ts = pd.Timestamp(value)
        return np.datetime64("NaT", "D") if ts is pd.NaT else np.datetime64(ts.date(), "D")
    if isinstance(value, str):
        if not value.strip():
            return np.datetime64("NaT", "D")
        try:
            ts = pd.Timestamp(value.strip())
        except (TypeError, ValueError):
            ts = pd.NaT
        if ts is not pd.NaT:
            return np.datetime64(ts.date(), "D")
    raise InvalidInputError(
        f"{what} = {value!r} is not a date (use ISO 'YYYY-MM-DD' text or a datetime)"
    )


def _days(dates: np.ndarray, origin: np.datetime64) -> np.ndarray:
    return np.asarray((dates - origin) / np.timedelta64(1, "D"), dtype=float)


def _iso(date: Any) -> str | None:
    return None if np.isnat(date) else str(np.datetime64(date, "D"))


def _prepare(data: Any, columns: Mapping[str, str] | None, need_dates: bool) -> dict[str, Any]:
    """Validate the table and split it by role."""
    import pandas as pd

    require_columns(data, [], "densing")
    df = data
    if columns:
        unknown = [k for k in columns if k not in (*_CANONICAL, "role")]
        if unknown:
            raise UnknownNameError(
                f"densing: columns= maps unknown name(s) {unknown}; known: "
                f"{', '.join((*_CANONICAL, 'role'))}"
            )
        df = df.rename(columns={v: k for k, v in columns.items()})
    require_columns(df, ["N", "D", "loss", "score"], "densing")
    if need_dates:
        require_columns(df, ["release_date"], "densing")
    if len(df) == 0:
        raise InvalidInputError("densing: the table has no rows")
    names = (
        [str(v) for v in df["model"]]
        if "model" in df.columns
        else [f"row {i}" for i in range(len(df))]
    )
    N, D, L, S = (_float_column(df, c) for c in ("N", "D", "loss", "score"))
    has = {k: np.isfinite(v) for k, v in (("N", N), ("D", D), ("loss", L), ("score", S))}
    if "role" in df.columns:
        role = np.array([str(r) for r in df["role"]], dtype=object)
        bad = [r for r in role if r not in ROLES]
        if bad:
            hint = did_you_mean(bad[0], ROLES)
            raise UnknownNameError(
                f"densing: unknown role {bad[0]!r}; {hint + ' ' if hint else ''}"
                f"roles are {', '.join(ROLES)}"
            )
        needs = {"reference": ("N", "D", "loss"), "calibration": ("loss", "score")}
        needs["evaluated"] = ("N", "score")
        for i, r in enumerate(role):
            missing = [c for c in needs[r] if not has[c][i]]
            if missing:
                raise InvalidInputError(f"densing: {r} row {names[i]!r} lacks {', '.join(missing)}")
    else:
        ref = has["N"] & has["D"] & has["loss"]
        cal = ~ref & has["loss"] & has["score"]
        ev = ~has["loss"] & has["N"] & has["score"]
        role = np.where(
            ref, "reference", np.where(cal, "calibration", np.where(ev, "evaluated", ""))
        )
        if np.any(role == ""):
            i = int(np.flatnonzero(role == "")[0])
            raise InvalidInputError(
                f"densing: row {names[i]!r} has no role: give N, D and loss (reference), loss "
                "and score (calibration), or N and score without a loss (evaluated)"
            )
    is_ref = role == "reference"
    is_cal = (role == "calibration") | (is_ref & has["score"])
    is_ev = role == "evaluated"
    for col, arr, mask in (
        ("N", N, is_ref | is_ev),
        ("D", D, is_ref),
        ("loss", L, is_ref | is_cal),
    ):
        bad_rows = np.flatnonzero(mask & ~(arr > 0))
        if bad_rows.size:
            i = int(bad_rows[0])
            raise InvalidInputError(
                f"densing: {col} must be > 0 (sizes, token counts and losses are positive), "
                f"got {arr[i]} for {names[i]!r}"
            )
    ev_idx = np.flatnonzero(is_ev)
    ev_names = [names[i] for i in ev_idx]
    seen: set[str] = set()
    for name in ev_names:
        if name in seen:
            raise InvalidInputError(
                f"densing: evaluated model {name!r} appears more than once (one row per model)"
            )
        seen.add(name)
    if "release_date" in df.columns:
        raw = list(pd.Series(df["release_date"]).iloc[ev_idx])
        dates = np.array(
            [_to_date(v, f"release_date of {n!r}") for v, n in zip(raw, ev_names, strict=True)],
            dtype="datetime64[D]",
        )
    else:
        dates = np.full(ev_idx.shape[0], np.datetime64("NaT"), dtype="datetime64[D]")
    return {
        "ref": (N[is_ref], D[is_ref], L[is_ref]),
        "cal": (L[is_cal], S[is_cal]),
        "ev": (ev_names, N[ev_idx], S[ev_idx], dates),
    }


# --------------------------------------------------------------------------- the two fits


def _loss_start(N: np.ndarray, D: np.ndarray, L: np.ndarray, ns: float, ds: float) -> np.ndarray:
    """Grid over (α, β) with (a', b') by non-negative weighted least squares; internal units."""
    grid = np.geomspace(0.02, 2.0, 25)
    al, be = (g.ravel() for g in np.meshgrid(grid, grid, indexing="ij"))
    u = (N / ns)[None, :] ** (-al[:, None]) / L[None, :]
    v = (D / ds)[None, :] ** (-be[:, None]) / L[None, :]
    suu, svv, suv = (u * u).sum(1), (v * v).sum(1), (u * v).sum(1)
    su, sv = u.sum(1), v.sum(1)
    det = suu * svv - suv * suv
    with np.errstate(all="ignore"):
        ap = (su * svv - sv * suv) / det
        bp = (sv * suu - su * suv) / det
        rss = ((ap[:, None] * u + bp[:, None] * v - 1.0) ** 2).sum(1)
    rss = np.where((ap > 0) & (bp > 0) & np.isfinite(rss), rss, np.inf)
    g = int(np.argmin(rss))
    if not np.isfinite(rss[g]):
        return np.array(
            [math.log(float(np.mean(L)) / 2), 0.3, math.log(float(np.mean(L)) / 2), 0.3]
        )
    return np.array([math.log(ap[g]), al[g], math.log(bp[g]), be[g]])


_LOSS_BOUNDS = ([-np.inf, 1e-6, -np.inf, 1e-6], [np.inf, 10.0, np.inf, 10.0])


def _loss_residuals(q: np.ndarray, ln_n: np.ndarray, ln_d: np.ndarray, ln_l: np.ndarray) -> Any:
    with np.errstate(over="ignore", under="ignore"):
        m = np.exp(q[0] - q[1] * ln_n) + np.exp(q[2] - q[3] * ln_d)
        return np.log(m) - ln_l


def _loss_jac(q: np.ndarray, ln_n: np.ndarray, ln_d: np.ndarray, ln_l: np.ndarray) -> Any:
    with np.errstate(over="ignore", under="ignore"):
        u = np.exp(q[0] - q[1] * ln_n)
        v = np.exp(q[2] - q[3] * ln_d)
    m = u + v
    return np.stack([u / m, -u * ln_n / m, v / m, -v * ln_d / m], axis=1)


def _fit_loss(
    N: np.ndarray, D: np.ndarray, L: np.ndarray, ns: float, ds: float, q0: np.ndarray | None
) -> Any:
    """Least squares on log loss in internal parameters ``(ln a', α, ln b', β)`` where
    ``a·N^−α = a'·(N/ns)^−α``."""
    from ...fit import least_squares

    args = (np.log(N / ns), np.log(D / ds), np.log(L))
    start = _loss_start(N, D, L, ns, ds) if q0 is None else q0
    return least_squares(
        _loss_residuals,
        start,
        jac=_loss_jac,
        bounds=_LOSS_BOUNDS,
        args=args,
        param_names=("ln_a_scaled", "alpha", "ln_b_scaled", "beta"),
    )


def _loss_params(q: np.ndarray, ns: float, ds: float) -> np.ndarray:
    """Internal ``(ln a', α, ln b', β)`` (rows) → ``(a, α, b, β)``."""
    q = np.atleast_2d(q)
    with np.errstate(over="ignore"):
        a = np.exp(q[:, 0] + q[:, 1] * math.log(ns))
        b = np.exp(q[:, 2] + q[:, 3] * math.log(ds))
    return np.stack([a, q[:, 1], b, q[:, 3]], axis=1)


def _loss_stderr(q: np.ndarray, cov: np.ndarray, ns: float, ds: float) -> np.ndarray:
    p = _loss_params(q, ns, ds)[0]
    T = np.zeros((4, 4))
    T[0, 0], T[0, 1] = p[0], p[0] * math.log(ns)
    T[1, 1] = 1.0
    T[2, 2], T[2, 3] = p[2], p[2] * math.log(ds)
    T[3, 3] = 1.0
    with np.errstate(invalid="ignore"):
        c = T @ cov @ T.T
    return np.asarray(np.sqrt(np.clip(np.diag(c), 0, None)), dtype=float)


def _canonical_score(x: np.ndarray) -> np.ndarray:
    """``(c, γ, l, d)`` rows with ``c > 0`` (``(−c, −γ, l, d + c)`` is the same curve)."""
    x = np.array(np.atleast_2d(x), dtype=float)
    flip = x[:, 0] < 0
    x[flip, 0], x[flip, 1], x[flip, 3] = -x[flip, 0], -x[flip, 1], x[flip, 3] - x[flip, 0]
    return x


def _fit_score(L: np.ndarray, S: np.ndarray) -> Any:
    from ...fit import curve_fit

    res = curve_fit("logistic4", L, S)
    if res.x[0] < 0:
        res = curve_fit("logistic4", L, S, p0=_canonical_score(res.x)[0])
    return res


# --------------------------------------------------------------------------- JSON helpers


def _date_or_none(value: Any, what: str) -> np.datetime64 | None:
    if value is None:
        return None
    date = _to_date(value, what)
    return None if np.isnat(date) else date


# --------------------------------------------------------------------------- the family


@register_family("densing")
class DensingLaw(LawFamily):
    """Capability density and its exponential trend (Xiao et al., the densing law).

    Build with :meth:`fit` (or :meth:`from_dict`). Fitted constants: :attr:`loss_params`
    ``(a, alpha, b, beta)``, :attr:`score_params` ``(c, gamma, l, d)``, :attr:`trend`
    (a :class:`DensityTrend` or None) and the bootstrap draws behind every interval.
    """

    required_columns = ("model", "N", "D", "loss", "score", "release_date")
    description = (
        "capability density: loss law a·N^-α + b·D^-β on a reference family, sigmoid "
        "loss→score, effective size, ln ρ_max = A·t + B and its doubling time"
    )

    @classmethod
    def from_store(
        cls, path: Any, metric: str | None = None, task: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """:func:`densing_table_from_store` on the store at ``path`` (``task`` and ``metric``
        required; options ``loss_metric``, ``reference``, ``precision``)."""
        from ...store import Store

        if task is None or metric is None:
            raise InvalidInputError("densing: from a store, give the task and the metric")
        with Store(path, create=False) as store:
            return densing_table_from_store(store, task, metric, **options)

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)
        st = self._state
        self.d0: float = float(st["d0"])
        self.origin: np.datetime64 = np.datetime64(st["origin"], "D")
        self.envelope: str = str(st["envelope"])
        self.seed: int = int(st["seed"])
        self.loss_params: dict[str, float] = {k: float(st["loss"]["params"][k]) for k in LOSS_NAMES}
        self.score_params: dict[str, float] = {
            k: float(st["score"]["params"][k]) for k in SCORE_NAMES
        }
        self._loss_draws = decode_array(st["draws"]["loss"]).reshape(-1, 4)
        self._score_draws = decode_array(st["draws"]["score"]).reshape(-1, 4)
        self._trend_draws = decode_array(st["draws"]["trend"]).reshape(-1, 2)
        models = st["models"]
        self._names: list[str] = list(models["model"])
        self._N = decode_array(models["N"]).reshape(-1)
        self._S = decode_array(models["score"]).reshape(-1)
        self._dates = np.array(
            [
                np.datetime64("NaT") if v is None else np.datetime64(v, "D")
                for v in models["release_date"]
            ],
            dtype="datetime64[D]",
        )
        tr = st["trend"]
        self.trend: DensityTrend | None = None
        if tr is not None:
            te = decode_array(tr["t"]).reshape(-1)
            ye = decode_array(tr["log_density"]).reshape(-1)
            te.setflags(write=False)
            ye.setflags(write=False)
            self.trend = DensityTrend(
                float(tr["A"]),
                float(tr["B"]),
                math.nan if tr["A_stderr"] is None else float(tr["A_stderr"]),
                math.nan if tr["B_stderr"] is None else float(tr["B_stderr"]),
                float(tr["r2"]),
                te,
                ye,
                self.envelope,
            )

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        *,
        d0: float = DEFAULT_D0,
        origin: Any = DEFAULT_ORIGIN,
        envelope: str = "record",
        window: tuple[Any, Any] | None = None,
        trend: bool = True,
        n_boot: int = 200,
        seed: int = 0,
        columns: Mapping[str, str] | None = None,
        **options: Any,
    ) -> DensingLaw:
        """Fit the loss law, the score law, every density and the trend.

        Parameters
        ----------
        data : pandas.DataFrame
            The table described in the module docstring.
        d0 : float
            Data budget of the inversion, tokens (default 1e12).
        origin : date-like
            Day zero of ``t`` (default 2023-02-24).
        envelope : {"record", "running_max", "all"}
            Points of ``ln ρ_max``.
        window : (start, end), optional
            Fit the trend on models released in ``[start, end]`` (either may be None), e.g.
            ``("2022-11-30", None)`` for the post-ChatGPT trend. Densities cover all models.
        trend : bool
            Fit the trend (needs ``release_date`` and at least 3 envelope points).
        n_boot : int
            Bootstrap resamples (0: no intervals; otherwise at least 2).
        seed : int
            Seed of the bootstrap streams.
        columns : mapping, optional
            Canonical name → the table's column name.

        Raises
        ------
        InvalidInputError
            Too few rows for a law (5 for each 4-parameter law, 3 envelope points for the
            trend), non-positive sizes, token counts or losses, unparsable dates, a window
            whose dates are out of order.
        """
        if options:
            raise InvalidInputError(f"densing: unknown option(s) {sorted(options)}")
        if not (isinstance(d0, (int, float)) and math.isfinite(d0) and d0 > 0):
            raise InvalidInputError(f"d0 must be a finite number of tokens > 0, got {d0!r}")
        _check_envelope(envelope)
        n_boot = check_count("n_boot", n_boot, 0)
        if n_boot == 1:
            raise InvalidInputError("n_boot must be 0 (no intervals) or at least 2")
        seed = check_seed(seed)
        origin_d = _to_date(origin, "origin")
        if np.isnat(origin_d):
            raise InvalidInputError("origin must be a date")
        win = (None, None) if window is None else tuple(window)
        if len(win) != 2:
            raise InvalidInputError("window must be a pair (start, end)")
        w0 = _date_or_none(win[0], "window start")
        w1 = _date_or_none(win[1], "window end")
        if w0 is not None and w1 is not None and w0 > w1:
            raise InvalidInputError(f"window dates are out of order: start {w0} is after end {w1}")
        parts = _prepare(data, columns, need_dates=trend)
        N_ref, D_ref, L_ref = parts["ref"]
        L_cal, S_cal = parts["cal"]
        names, N_ev, S_ev, dates = parts["ev"]
        for what, count, formula in (
            ("reference", N_ref.shape[0], "loss law a*N^-alpha + b*D^-beta"),
            ("calibration", L_cal.shape[0], "score law c/(1+exp(-gamma(L-l))) + d"),
        ):
            if count < 5:
                raise InvalidInputError(
                    f"densing: the {formula} has 4 parameters: it needs at least 5 {what} "
                    f"rows, got {count}"
                )

        # Loss law (internal, well-scaled parameters) and score law (native logistic4).
        ns = float(np.exp(np.mean(np.log(N_ref))))
        ds = float(np.exp(np.mean(np.log(D_ref))))
        loss_res = _fit_loss(N_ref, D_ref, L_ref, ns, ds, None)
        loss_p = _loss_params(loss_res.x, ns, ds)[0]
        loss_se = _loss_stderr(loss_res.x, loss_res.cov, ns, ds)
        score_res = _fit_score(L_cal, S_cal)
        score_p = np.asarray(score_res.x, dtype=float)
        if score_p[1] >= 0:
            warnings.warn(
                f"densing: the fitted score law rises with loss (gamma = {score_p[1]:.4g} >= 0); "
                "check the calibration rows",
                CapscaleWarning,
                stacklevel=2,
            )

        def dens(lp: np.ndarray, sp: np.ndarray) -> np.ndarray:
            """Densities of the evaluated models; rows of lp/sp broadcast as draws."""
            kw = dict(zip(LOSS_NAMES, lp.T[..., None] if lp.ndim == 2 else lp, strict=True))
            kw.update(zip(SCORE_NAMES, sp.T[..., None] if sp.ndim == 2 else sp, strict=True))
            return effective_params(S_ev, d0=float(d0), errors="nan", **kw) / N_ev

        rho = dens(loss_p, score_p) if N_ev.size else np.zeros(0)
        bad = [n for n, r in zip(names, rho, strict=True) if not np.isfinite(r)]
        if bad:
            warnings.warn(
                f"densing: no density for {len(bad)} model(s) whose score lies outside the "
                f"fitted score law's range or beyond the reference family's reach at D0: "
                f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''} (NaN, left out of the trend)",
                InestimableWarning,
                stacklevel=2,
            )
        t_all = _days(dates, origin_d)
        in_win = np.ones(N_ev.shape[0], dtype=bool)
        if w0 is not None:
            in_win &= dates >= w0
        if w1 is not None:
            in_win &= dates <= w1
        trend_state = None
        trend_idx = np.zeros(0, dtype=np.int64)
        if trend:
            undated = [n for n, dt in zip(names, dates, strict=True) if np.isnat(dt)]
            if undated:
                raise InvalidInputError(
                    f"densing: evaluated model(s) without a release_date: {', '.join(undated[:5])}"
                    " (give dates, or fit with trend=False)"
                )
            trend_idx = np.flatnonzero(in_win)
            use = trend_idx[np.isfinite(rho[trend_idx])]
            fitted = density_trend(t_all[use], rho[use], envelope=envelope)
            trend_state = {
                "A": fitted.A,
                "B": fitted.B,
                "A_stderr": encode_array(fitted.A_stderr),
                "B_stderr": encode_array(fitted.B_stderr),
                "r2": fitted.r2,
                "t": encode_array(fitted.t),
                "log_density": encode_array(fitted.log_density),
            }

        loss_draws = np.full((n_boot, 4), np.nan)
        score_draws = np.full((n_boot, 4), np.nan)
        trend_draws = np.full((n_boot, 2), np.nan)
        if n_boot:
            from ...fit import bootstrap_fit, bootstrap_indices

            idx_ref = bootstrap_indices(N_ref.shape[0], n_boot, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CapscaleWarning)
                for k, idx in enumerate(idx_ref):
                    try:
                        r = _fit_loss(N_ref[idx], D_ref[idx], L_ref[idx], ns, ds, loss_res.x)
                    except FitError:
                        continue
                    if r.success:
                        loss_draws[k] = _loss_params(r.x, ns, ds)[0]
            boot = bootstrap_fit(
                "logistic4", L_cal, S_cal, p0=score_p, n_resamples=n_boot, seed=(seed + 1) % 2**64
            )
            ok = boot.success & np.all(np.isfinite(boot.x), axis=1)
            score_draws[ok] = _canonical_score(boot.x[ok])
            if trend and trend_idx.size:
                rho_draws = dens(loss_draws, score_draws)
                idx_models = bootstrap_indices(trend_idx.shape[0], n_boot, (seed + 2) % 2**64)
                for k in range(n_boot):
                    sel = trend_idx[idx_models[k]]
                    r_k = rho_draws[k, sel]
                    good = np.isfinite(r_k) & (r_k > 0)
                    if np.count_nonzero(good) < 2:
                        continue
                    te, ye = _envelope(t_all[sel][good], np.log(r_k[good]), envelope)
                    A, B, *_ = _ols(te, ye)
                    trend_draws[k] = (A, B)

        state = {
            "version": 1,
            "d0": float(d0),
            "origin": str(origin_d),
            "envelope": envelope,
            "window": [None if w0 is None else str(w0), None if w1 is None else str(w1)],
            "seed": seed,
            "n_boot": n_boot,
            "columns": dict(columns or {}),
            "loss": {
                "params": dict(zip(LOSS_NAMES, map(float, loss_p), strict=True)),
                "stderr": dict(zip(LOSS_NAMES, map(encode_array, loss_se), strict=True)),
                "n": int(N_ref.shape[0]),
                "success": bool(loss_res.success),
                "data": {
                    "N": encode_array(N_ref),
                    "D": encode_array(D_ref),
                    "loss": encode_array(L_ref),
                },
            },
            "score": {
                "params": dict(zip(SCORE_NAMES, map(float, score_p), strict=True)),
                "stderr": dict(zip(SCORE_NAMES, map(encode_array, score_res.stderr), strict=True)),
                "n": int(L_cal.shape[0]),
                "success": bool(score_res.success),
                "data": {"loss": encode_array(L_cal), "score": encode_array(S_cal)},
            },
            "models": {
                "model": list(names),
                "N": encode_array(N_ev),
                "score": encode_array(S_ev),
                "release_date": [_iso(x) for x in dates],
                "in_window": [bool(x) for x in in_win],
            },
            "trend": trend_state,
            "draws": {
                "loss": encode_array(loss_draws),
                "score": encode_array(score_draws),
                "trend": encode_array(trend_draws),
            },
        }
        return cls(state)

    # ------------------------------------------------------------------ derived quantities

    def _param_rows(self, boot: bool) -> tuple[np.ndarray, np.ndarray]:
        if boot:
            return self._loss_draws, self._score_draws
        lp = np.array([self.loss_params[k] for k in LOSS_NAMES])[None, :]
        sp = np.array([self.score_params[k] for k in SCORE_NAMES])[None, :]
        return lp, sp

    def _neff(self, S: np.ndarray, boot: bool) -> np.ndarray:
        """N̂ for scores S: shape (k, m) with k = 1 (the fit) or the number of draws."""
        lp, sp = self._param_rows(boot)
        kw = dict(zip(LOSS_NAMES, lp.T[..., None], strict=True))
        kw.update(zip(SCORE_NAMES, sp.T[..., None], strict=True))
        return effective_params(S[None, :], d0=self.d0, errors="nan", **kw)

    def _trend_rows(self, boot: bool) -> np.ndarray:
        if boot:
            return self._trend_draws
        if self.trend is None:
            raise InvalidInputError("this densing fit has no trend (fitted with trend=False)")
        return np.array([[self.trend.A, self.trend.B]])

    def effective_params(self, score: Any, *, errors: str = "raise") -> np.ndarray:
        """Effective size ``N̂(score)`` under the fitted laws at ``d0`` (see
        :func:`effective_params`; ``errors="nan"`` for NaN instead of an error)."""
        kw = {**self.loss_params, **self.score_params}
        return effective_params(score, d0=self.d0, errors=errors, **kw)

    def densities(self, ci: float = 0.95) -> pd.DataFrame:
        """The evaluated models: ``model``, ``N``, ``score``, ``release_date``, ``t`` (days
        since the origin), ``N_eff``, ``density`` with ``ci_low``/``ci_high`` (bootstrap over
        the two laws), ``envelope`` (True for the models on the trend's envelope)."""
        import pandas as pd

        n_eff = self._neff(self._S, False)[0]
        rho = n_eff / self._N
        lo, hi = percentile_interval(self._neff(self._S, True) / self._N[None, :], ci)
        t = _days(self._dates, self.origin)
        on = np.zeros(rho.shape[0], dtype=bool)
        usable = (
            np.isfinite(rho)
            & np.isfinite(t)
            & np.array(self._state["models"].get("in_window", [True] * rho.shape[0]), dtype=bool)
        )
        if self.trend is not None and np.any(usable):
            sub = np.flatnonzero(usable)
            if self.envelope == "all":
                on[sub] = True
            else:
                on[sub[_record_mask(t[sub], np.log(rho[sub]))]] = True
        return pd.DataFrame(
            {
                "model": self._names,
                "N": self._N,
                "score": self._S,
                "release_date": pd.to_datetime(self._dates),
                "t": t,
                "N_eff": n_eff,
                "density": rho,
                "ci_low": lo,
                "ci_high": hi,
                "envelope": on,
            }
        )

    @property
    def A(self) -> float:
        """Slope of ``ln ρ_max`` (1/day)."""
        return self._trend_rows(False)[0, 0].item()

    @property
    def doubling_time(self) -> float:
        """``ln 2 / A`` in days."""
        return float(doubling_time(self.A))

    def doubling_time_ci(self, ci: float = 0.95) -> tuple[float, float]:
        """Bootstrap percentile interval of the doubling time (days), from that of ``A``
        (``inf`` as the upper end when the interval of ``A`` reaches 0)."""
        lo, hi = percentile_interval(self._trend_rows(True)[:, :1], ci)
        a_lo, a_hi = float(lo[0]), float(hi[0])
        if not (math.isfinite(a_lo) and math.isfinite(a_hi)):
            return math.nan, math.nan
        upper = math.log(2) / a_lo if a_lo > 0 else math.inf
        lower = math.log(2) / a_hi if a_hi > 0 else math.nan
        return lower, upper

    def params_ci(self, ci: float = 0.95) -> dict[str, tuple[float, float]]:
        """Bootstrap percentile intervals of every constant (``a`` … ``d``, ``A``, ``B``)."""
        out: dict[str, tuple[float, float]] = {}
        for names, draws in (
            (LOSS_NAMES, self._loss_draws),
            (SCORE_NAMES, self._score_draws),
            (("A", "B"), self._trend_draws),
        ):
            if names == ("A", "B") and self.trend is None:
                continue
            lo, hi = percentile_interval(draws, ci)
            out.update({n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)})
        return out

    # ------------------------------------------------------------------ the contract

    def predict(
        self, data: pd.DataFrame, *, ci: float = 0.95, quantity: str = "auto"
    ) -> pd.DataFrame:
        """Predict from the fitted laws, with bootstrap percentile intervals.

        Parameters
        ----------
        data : pandas.DataFrame
            Rows to predict for (column names as in the fit, ``columns=`` applied).
        ci : float
            Interval level.
        quantity : str
            ``"density"`` (needs ``N``, ``score``): ``N̂(S)/N``;
            ``"effective_params"`` (``score``): ``N̂(S)``;
            ``"score"`` (``N``, ``release_date``): the score of a model of size ``N`` at the
            trend's frontier density on its release date, ``S(L(ρ_max(t)·N, D₀))``;
            ``"density_max"`` (``release_date``): ``exp(A·t + B)``;
            ``"loss"`` (``N``, ``D``): the reference loss law.
            ``"auto"`` takes the first of density, score, density_max, loss whose columns
            are present.

        Returns
        -------
        pandas.DataFrame
            ``data`` plus ``prediction``, ``ci_low``, ``ci_high`` (NaN where undefined, e.g.
            a score outside the score law's range).
        """
        import pandas as pd

        if quantity not in _QUANTITIES:
            hint = did_you_mean(str(quantity), _QUANTITIES)
            raise UnknownNameError(
                f"unknown quantity {quantity!r}; {hint + ' ' if hint else ''}"
                f"choose one of {', '.join(_QUANTITIES)}"
            )
        require_columns(data, [], "densing")
        cols = self._state.get("columns") or {}
        df = data.rename(columns={v: k for k, v in cols.items()}) if cols else data
        have = set(df.columns)
        if quantity == "auto":
            for q, need in (
                ("density", {"N", "score"}),
                ("score", {"N", "release_date"}),
                ("density_max", {"release_date"}),
                ("loss", {"N", "D"}),
            ):
                if need <= have:
                    quantity = q
                    break
            else:
                raise InvalidInputError(
                    "densing.predict: give N and score (density), N and release_date (score), "
                    "release_date (density_max) or N and D (loss)"
                )
        needs = {
            "density": ["N", "score"],
            "effective_params": ["score"],
            "score": ["N", "release_date"],
            "density_max": ["release_date"],
            "loss": ["N", "D"],
        }[quantity]
        require_columns(df, needs, "densing")
        arrays = {c: _float_column(df, c) for c in needs if c != "release_date"}
        for c in ("N", "D"):
            if c in arrays and np.any(~(arrays[c] > 0)):
                raise InvalidInputError(f"densing.predict: {c} must be > 0")
        if "release_date" in needs:
            dates = np.array(
                [_to_date(v, "release_date") for v in df["release_date"]], dtype="datetime64[D]"
            )
            if np.any(np.isnat(dates)):
                raise InvalidInputError("densing.predict: release_date is missing")
            arrays["t"] = _days(dates, self.origin)

        def compute(boot: bool) -> np.ndarray:
            if quantity in ("density", "effective_params"):
                n_eff = self._neff(arrays["score"], boot)
                return n_eff / arrays["N"][None, :] if quantity == "density" else n_eff
            lp, sp = self._param_rows(boot)
            if quantity == "loss":
                return loss_law(arrays["N"][None, :], arrays["D"][None, :], *lp.T[..., None])
            tr = self._trend_rows(boot)
            with np.errstate(over="ignore"):
                rho_max = np.exp(tr[:, :1] * arrays["t"][None, :] + tr[:, 1:])
            if quantity == "density_max":
                return rho_max
            loss = loss_law(rho_max * arrays["N"][None, :], self.d0, *lp.T[..., None])
            return score_law(loss, *sp.T[..., None])

        pred = compute(False)[0]
        lo, hi = percentile_interval(compute(True), ci)
        out = pd.DataFrame(data).copy()
        out["prediction"] = pred
        out["ci_low"] = lo
        out["ci_high"] = hi
        return out

    def summary(self) -> str:
        """Constants with bootstrap intervals, the densities and the trend."""
        st = self._state
        cis = self.params_ci() if st["n_boot"] else {}

        def line(name: str, value: float, se: Any, unit: str = "") -> str:
            lo, hi = cis.get(name, (math.nan, math.nan))
            se_txt = "   n/a" if se is None else f"{se:10.4g}"
            return (
                f"    {name:<6} {value:>12.6g}{unit}  stderr {se_txt}  95% CI [{lo:.6g}, {hi:.6g}]"
            )

        out = [
            "Densing law (capability density; Xiao et al., arXiv 2412.04315)",
            f"  loss law  L = a·N^-alpha + b·D^-beta   ({st['loss']['n']} reference rows, "
            "least squares on log loss)",
        ]
        out += [line(k, self.loss_params[k], st["loss"]["stderr"][k]) for k in LOSS_NAMES]
        out.append(
            f"  score law S = c/(1+exp(-gamma(L-l))) + d   ({st['score']['n']} calibration rows)"
        )
        out += [line(k, self.score_params[k], st["score"]["stderr"][k]) for k in SCORE_NAMES]
        out.append(f"  effective size at D0 = {self.d0:.3g} tokens")
        dens = self.densities()
        if len(dens):
            fin = dens[np.isfinite(dens["density"])]
            shown = dens if len(dens) <= 30 else dens[dens["envelope"]]
            note = "" if len(dens) <= 30 else "; envelope models shown"
            out.append(
                f"  densities of {len(dens)} evaluated models ({len(dens) - len(fin)} NaN{note}):"
            )
            for row in shown.sort_values("release_date").itertuples():
                out.append(
                    f"    {row.model!s:<24} N {row.N:9.3g}  score {row.score:7.4f}  rho "
                    f"{row.density:9.4g} [{row.ci_low:.4g}, {row.ci_high:.4g}]"
                    f"{'  *' if row.envelope else ''}"
                )
        if self.trend is not None:
            tr = self.trend
            lo, hi = self.doubling_time_ci() if st["n_boot"] else (math.nan, math.nan)
            out += [
                f"  trend ln rho_max = A·t + B on the {tr.envelope!r} envelope ({tr.n_points} "
                f"points, * above), t = days since {self.origin}",
                line("A", tr.A, encode_array(tr.A_stderr), " /day"),
                line("B", tr.B, encode_array(tr.B_stderr)),
                f"    R² {tr.r2:.4f}",
                f"    doubling time ln2/A = {tr.doubling_time:.2f} days  "
                f"95% CI [{lo:.2f}, {hi:.2f}]",
            ]
        else:
            out.append("  trend: not fitted")
        if st["n_boot"]:
            failed = [
                int(np.count_nonzero(np.any(~np.isfinite(d), axis=1)))
                for d in (self._loss_draws, self._score_draws, self._trend_draws)
            ]
            out.append(
                f"  bootstrap: {st['n_boot']} resamples (seed {self.seed}); failed refits: "
                f"loss {failed[0]}, score {failed[1]}"
                + (f", trend {failed[2]}" if self.trend is not None else "")
            )
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (NaN as null)."""
        import copy

        return copy.deepcopy(self._state)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> DensingLaw:
        """Rebuild from :meth:`to_dict`."""
        try:
            return cls(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"not a densing fit state: {type(exc).__name__}: {exc}") from None

    def plot(self, ax: Any = None, *, kind: str = "density") -> Any:
        """``kind="density"``: densities over release date (log scale), envelope points and
        the trend with its 95% bootstrap band; ``kind="score"``: the score law over loss
        with its calibration points."""
        import matplotlib.pyplot as plt

        if kind not in ("density", "score"):
            raise InvalidInputError(f"kind must be 'density' or 'score', got {kind!r}")
        if ax is None:
            _, ax = plt.subplots()
        if kind == "score" or not self._names:
            data = self._state["score"]["data"]
            L, S = decode_array(data["loss"]), decode_array(data["score"])
            grid = np.linspace(L.min(), L.max(), 200)
            ax.plot(L, S, "o", label="calibration")
            ax.plot(grid, score_law(grid, *self.score_params.values()), "-", label="score law")
            ax.set_xlabel("loss (nats/token)")
            ax.set_ylabel("score")
            ax.legend()
            return ax
        dens = self.densities()
        dates = dens["release_date"].to_numpy()
        ax.plot(dates, dens["density"], "o", alpha=0.6, label="models")
        env = dens[dens["envelope"]]
        ax.plot(
            env["release_date"].to_numpy(), env["density"], "o", mfc="none", ms=10, label="envelope"
        )
        if self.trend is not None:
            t = dens["t"].to_numpy()
            grid = np.linspace(np.nanmin(t), np.nanmax(t), 100)
            gd = self.origin + np.round(grid).astype("timedelta64[D]")
            ax.plot(
                gd,
                np.exp(self.trend.A * grid + self.trend.B),
                "-",
                label=(
                    f"ln rho = {self.trend.A:.4g} t + {self.trend.B:.3g} "
                    f"(doubling {self.trend.doubling_time:.0f} d)"
                ),
            )
            if self._state["n_boot"]:
                tr = self._trend_draws
                lo, hi = percentile_interval(np.exp(tr[:, :1] * grid[None, :] + tr[:, 1:]), 0.95)
                ax.fill_between(gd, lo, hi, alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("release date")
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_ylabel("capability density N_eff / N")
        ax.legend()
        return ax


# --------------------------------------------------------------------------- the store


def densing_table_from_store(
    store: Any,
    task: str,
    metric: str,
    *,
    loss_metric: str | None = None,
    reference: str | Sequence[str] | None = None,
    precision: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Build the densing table from a capscale store.

    Records of ``task`` are averaged per model with :func:`capscale.stats.summarize`; the
    model cards give ``N`` (``n_params``), ``D`` (``training_tokens``) and
    ``release_date``.

    Parameters
    ----------
    store : capscale.store.Store
    task : str
        Task name.
    metric : str
        The score metric (e.g. ``"acc"``): the ``score`` column.
    loss_metric : str, optional
        A per-item loss metric (the conditional loss, nats/token): the ``loss`` of the
        reference models. Requires ``reference``.
    reference : str or sequence of str, optional
        The reference family: a family name (as in the cards) or model names. These rows
        get role ``reference``; all others ``evaluated``.
    precision : str, optional
        Keep one precision (required when a model was run at several).
    n_resamples, seed : int
        Passed to :func:`capscale.stats.summarize` (only the means are used; ``score_stderr``
        is its standard error).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``N``, ``D``, ``loss``, ``score``, ``score_stderr``, ``release_date``,
        ``role``.
    """
    import pandas as pd

    from ...stats import summarize

    if (loss_metric is None) != (reference is None):
        raise InvalidInputError(
            "densing_table_from_store: give loss_metric and reference together (the reference "
            "family's losses fit the loss law)"
        )
    recs = store.records(task=task, precision=precision)
    if len(recs) == 0:
        raise InvalidInputError(f"the store has no records for task {task!r}")
    col = f"score_{metric}"
    score_cols = [c[6:] for c in recs.columns if str(c).startswith("score_")]
    for m in (metric, loss_metric):
        if m is not None and f"score_{m}" not in recs.columns:
            hint = did_you_mean(m, score_cols)
            raise UnknownNameError(
                f"task {task!r} has no metric {m!r}; {hint + ' ' if hint else ''}"
                f"metrics: {', '.join(score_cols)}"
            )
    per_model = recs.groupby("model")["precision"].nunique()
    multi = per_model[per_model > 1]
    if len(multi):
        raise InvalidInputError(
            f"model {multi.index[0]!r} was run at {int(multi.iloc[0])} precisions; pick one "
            "with precision="
        )
    agg = summarize(recs, by="model", metric=col, n_resamples=n_resamples, seed=seed, nan="omit")
    cards = recs.groupby("model", sort=True)[
        ["family", "n_params", "training_tokens", "release_date"]
    ].first()
    table = pd.DataFrame(
        {
            "model": agg["model"].astype(str).to_numpy(),
            "N": cards.loc[agg["model"], "n_params"].to_numpy(dtype=float, na_value=np.nan),
            "D": cards.loc[agg["model"], "training_tokens"].to_numpy(dtype=float, na_value=np.nan),
            "loss": np.nan,
            "score": agg["mean"].to_numpy(dtype=float),
            "score_stderr": agg["stderr"].to_numpy(dtype=float),
            "release_date": cards.loc[agg["model"], "release_date"].to_numpy(),
            "role": "evaluated",
        }
    )
    if reference is not None:
        names = [reference] if isinstance(reference, str) else list(reference)
        fam = cards["family"].astype(object).to_numpy()
        is_ref = np.array(
            [m in names or fam_m in names for m, fam_m in zip(cards.index, fam, strict=True)]
        )
        ref_models = [str(m) for m in cards.index[is_ref]]
        if not ref_models:
            raise UnknownNameError(
                f"reference {reference!r} matches no model name or family in task {task!r}"
            )
        recs_ref = recs[recs["model"].isin(ref_models)]
        lagg = summarize(
            recs_ref,
            by="model",
            metric=f"score_{loss_metric}",
            n_resamples=n_resamples,
            seed=seed,
            nan="omit",
        )
        loss = dict(zip(lagg["model"].astype(str), lagg["mean"].astype(float), strict=True))
        mask = table["model"].isin(ref_models).to_numpy()
        table.loc[mask, "loss"] = [loss[m] for m in table.loc[mask, "model"]]
        table.loc[mask, "role"] = "reference"
    return table
