"""Chinchilla loss law and compute-optimal allocation (Hoffmann et al. 2022; Epoch AI 2024).

The family ``chinchilla_optimal`` fits ``L(N, D) = E + A/N^α + B/D^β`` to training runs
(``N`` parameters, ``D`` tokens or ``C`` FLOPs with ``D = C/(6N)``, final loss ``L``) and
derives the compute-optimal allocation under ``C = 6ND``::

    G     = (αA / (βB))^(1/(α+β))
    N_opt = G · (C/6)^a,      a = β/(α+β)   (the parameter share)
    D_opt = G⁻¹ · (C/6)^b,    b = α/(α+β)

Two estimators (``method``):

``"huber"`` (Hoffmann et al.'s Approach 3, summed as Epoch AI does)
    minimise ``Σ Huber_δ(LSE(a − α log N, b − β log D, e) − log L)``, ``δ = 1e-3``,
    ``A, B, E = e^a, e^b, e^e``, with capscale's native LM (robust loss inside the iteration)
    from Hoffmann's 4500-point grid or one start.
``"likelihood"`` (Epoch AI's headline fit)
    maximise the Huber likelihood with a free scale ``s`` — six parameters::

        −log ℓ(θ, s) = Σ ρ_δ(r_i / s) + m·(log s + log Z(δ)),   r_i = log L_i − LSE_i(θ)
        Z(δ) = √(2π)·(1 − erfc(δ/√2)) + 2·e^(−δ²/2)/δ

    Solved exactly by blockwise minimisation, both blocks solved to convergence: for a fixed
    scale, ``Σ ρ_δ(r_i/s)`` is the native Huber fit with ``sigma = s`` (so the θ-step is the
    same native LM as ``"huber"``); for fixed θ, the scale solves the one-dimensional convex
    problem ``Σ ψ_δ(r_i/s)·r_i/s = m`` (safeguarded Newton in ``log s``). At a point where
    neither block can improve, the smooth 6-parameter gradient vanishes. Typically 2–3 rounds
    (a few ms). The direct route (an LM on ``sqrt`` of the per-point negative log-likelihood)
    is not used: those terms are negative once ``s`` is small (the density exceeds 1), and at
    the optimum ``s ≈ 5e-6``, ``δ·s ≈ 5e-9`` — the problem is nearly least-absolute-deviations,
    where a Gauss–Newton model of non-zero "residuals" converges only linearly.

Uncertainty follows Epoch AI: ``n_resamples`` (default 4000) bootstrap resamples of the runs,
each refitted from the full-data optimum — by default of the summed Huber objective (their
protocol, whichever estimator gives the point estimate), on the native batch solver; or
``bootstrap="likelihood"`` to refit the free-scale likelihood itself (each resample's Huber
refit refined blockwise, the θ-steps batched with ``fit_many``; about 6× the time).
Standard errors (std over converged refits, ddof 1) and percentile intervals are reported for
every derived quantity: ``E, A, B, α, β, a, b, G``, and ``N_opt, D_opt`` and the optimal loss
at any ``C``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..._validate import check_level
from ...errors import (
    ConvergenceWarning,
    FitError,
    FormatError,
    InestimableWarning,
    InvalidInputError,
    NonFiniteError,
    did_you_mean,
)
from ...fit import bootstrap_fit, bootstrap_indices, curve_fit, fit_many, multi_start
from ..chinchilla import ChinchillaLSE
from ..family import LawFamily, register_family, require_columns

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "HOFFMANN_2022",
    "ComputeOptimal",
    "huber_normaliser",
    "optimal_allocation",
]

#: Training FLOPs per parameter per token (``C = 6ND``, Kaplan et al. / Hoffmann et al.).
FLOPS_PER_PARAM_TOKEN = 6.0
#: Hoffmann et al. (2022) eq. 10, unrounded (from the paper's TeX, as Epoch AI used them):
#: ``a, b, e, α, β = 6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083``.
_HOFFMANN_LSE = (6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083)
HOFFMANN_2022: Mapping[str, float] = {
    "E": math.exp(_HOFFMANN_LSE[2]),
    "A": math.exp(_HOFFMANN_LSE[0]),
    "B": math.exp(_HOFFMANN_LSE[1]),
    "alpha": _HOFFMANN_LSE[3],
    "beta": _HOFFMANN_LSE[4],
}

PARAMS = ("E", "A", "B", "alpha", "beta")
DERIVED = ("a", "b", "G")
METHODS = ("huber", "likelihood")
PLOT_KINDS = ("frontier", "isoflop", "allocation")
_LAW = ChinchillaLSE
_STATE_VERSION = 1
_FIT_OPTIONS = (
    "method",
    "start",
    "delta",
    "drop_highest",
    "n_resamples",
    "bootstrap",
    "seed",
    "n_threads",
)


# -- closed forms ------------------------------------------------------------------------------


def optimal_allocation(
    C: Any, E: Any, A: Any, B: Any, alpha: Any, beta: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Compute-optimal ``N_opt(C)`` and ``D_opt(C)`` of ``L = E + A/N^α + B/D^β`` under
    ``C = 6ND`` (``E`` does not enter; it is accepted so a parameter row can be unpacked).

    Parameters
    ----------
    C : array_like, shape (m,)
        Training FLOPs, > 0.
    E, A, B, alpha, beta : float or array_like, shape (k,)
        Law parameters; arrays give one row per parameter set.

    Returns
    -------
    N_opt, D_opt : ndarray, shape (m,) for scalar parameters, else (k, m)
        ``N_opt = G·(C/6)^(β/(α+β))``, ``D_opt = G⁻¹·(C/6)^(α/(α+β))`` with
        ``G = (αA/(βB))^(1/(α+β))``; ``6·N_opt·D_opt = C``.
    """
    c = np.asarray(C, dtype=np.float64)
    scalar = all(np.ndim(p) == 0 for p in (A, B, alpha, beta))
    A_, B_, al, be = (
        np.atleast_1d(np.asarray(p, dtype=np.float64))[:, None] for p in (A, B, alpha, beta)
    )
    s = al + be
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_g = (np.log(al * A_) - np.log(be * B_)) / s
        log_c6 = np.log(np.atleast_1d(c) / FLOPS_PER_PARAM_TOKEN)[None, :]
        n_opt = np.exp(log_g + (be / s) * log_c6)
        d_opt = np.exp(-log_g + (al / s) * log_c6)
    if scalar:
        return n_opt[0].reshape(c.shape), d_opt[0].reshape(c.shape)
    return n_opt, d_opt


def huber_normaliser(delta: float) -> float:
    """``Z(δ) = ∫ exp(−ρ_δ(x)) dx = √(2π)(1 − erfc(δ/√2)) + 2e^(−δ²/2)/δ``, the normalising
    constant of the unit-scale Huber density (Epoch AI's ``huber_normalizing_factor``)."""
    return (
        math.sqrt(2 * math.pi) * (1 - math.erfc(delta / math.sqrt(2)))
        + 2 * math.exp(-0.5 * delta * delta) / delta
    )


def _huber_rho(x: np.ndarray, delta: float) -> np.ndarray:
    ax = np.abs(x)
    return np.asarray(
        np.where(ax <= delta, 0.5 * x * x, delta * (ax - 0.5 * delta)), dtype=np.float64
    )


def _loss(params: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``E + A/N^α + B/D^β`` for params of shape (5,) → (m,) or (k, 5) → (k, m)."""
    p = np.atleast_2d(params)
    ln, ld = np.log(n)[None, :], np.log(d)[None, :]
    with np.errstate(over="ignore", under="ignore"):
        out = p[:, 0:1] + p[:, 1:2] * np.exp(-p[:, 3:4] * ln) + p[:, 2:3] * np.exp(-p[:, 4:5] * ld)
    return np.asarray(out[0] if np.ndim(params) == 1 else out, dtype=np.float64)


def _derived(p: np.ndarray) -> dict[str, np.ndarray]:
    """Every reported quantity from parameter rows (k, 5) in ``PARAMS`` order."""
    E, A, B, al, be = (p[:, j] for j in range(5))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        g = np.exp((np.log(al * A) - np.log(be * B)) / (al + be))
        return {
            "E": E,
            "A": A,
            "B": B,
            "alpha": al,
            "beta": be,
            "a": be / (al + be),
            "b": al / (al + be),
            "G": g,
        }


# -- input table -------------------------------------------------------------------------------


def _column(data: pd.DataFrame, name: str, family: str) -> np.ndarray:
    try:
        col = np.asarray(data[name], dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{family}: column {name!r} must be numeric") from None
    bad = ~np.isfinite(col)
    if bad.any():
        i = int(np.argmax(bad))
        raise NonFiniteError(
            f"{family}: column {name!r} has {int(bad.sum())} non-finite value(s); "
            f"first at row {i}: {col[i]!r}"
        )
    if not np.all(col > 0):
        i = int(np.argmax(col <= 0))
        raise InvalidInputError(
            f"{family}: column {name!r} must be > 0 (it enters as a logarithm); "
            f"row {i} is {col[i]!r}"
        )
    return col


def _tokens(data: pd.DataFrame, n: np.ndarray, family: str) -> np.ndarray:
    """``D`` from the table, else ``C/(6N)``."""
    if "D" in data.columns:
        return _column(data, "D", family)
    if "C" in data.columns:
        return _column(data, "C", family) / (FLOPS_PER_PARAM_TOKEN * n)
    raise InvalidInputError(
        f"{family}: missing column 'D' (training tokens) or 'C' (training FLOPs, D = C/6N); "
        f"columns are {', '.join(map(str, data.columns))}"
    )


def _read_runs(data: pd.DataFrame, family: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    require_columns(data, ("N", "L"), family)
    n = _column(data, "N", family)
    d = _tokens(data, n, family)
    return n, d, _column(data, "L", family)


# -- fitting -----------------------------------------------------------------------------------


def _start_lse(start: Any) -> np.ndarray | None:
    """``None`` for the grid, else a start in ``(a, b, e, α, β)``."""
    if isinstance(start, str):
        if start == "grid":
            return None
        if start == "hoffmann2022":
            return np.array(_HOFFMANN_LSE)
        raise InvalidInputError(
            f"start must be 'grid', 'hoffmann2022', or values of {PARAMS}; got {start!r}"
        )
    if isinstance(start, Mapping):
        missing = [k for k in PARAMS if k not in start]
        if missing:
            raise InvalidInputError(f"start is missing {', '.join(missing)} (needs {PARAMS})")
        values = np.array([float(start[k]) for k in PARAMS])
    else:
        values = np.asarray(start, dtype=np.float64).reshape(-1)
        if values.shape != (5,):
            raise InvalidInputError(f"start must have 5 values {PARAMS}; got {values.size}")
    if not np.all(np.isfinite(values)) or not np.all(values[:3] > 0):
        raise InvalidInputError(
            f"start needs finite values with E, A, B > 0; got {values.tolist()}"
        )
    return _LAW.from_chinchilla(values)


def _into_bounds(p: np.ndarray) -> np.ndarray:
    lo, hi = (np.asarray(b, dtype=np.float64) for b in _LAW.default_bounds)
    return np.asarray(np.clip(p, lo + 1e-12, hi - 1e-12), dtype=np.float64)


def _scale_step(r: np.ndarray, delta: float) -> np.ndarray:
    """The scale minimising ``Σ ρ_δ(r/s) + m·log s`` for each row of ``r`` (shape (k, m)).

    Root of ``g(u) = Σ ψ_δ(x)·x − m``, ``x = |r|·e^(−u)``, ``u = log s``: ``g`` is decreasing,
    so a bracketed Newton iteration converges from ``s0 = δ·mean|r|`` (where ``g ≤ 0``)."""
    ar = np.abs(np.atleast_2d(r))
    m = ar.shape[1]
    s0 = delta * ar.mean(axis=1)
    if not np.all(s0 > 0):
        raise FitError(
            "the law reproduces the data exactly: the likelihood's scale is 0 (no estimate)"
        )

    def g_h(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = ar * np.exp(-u)[:, None]
        inner = x <= delta
        g = np.where(inner, x * x, delta * x).sum(axis=1) - m
        h = np.where(inner, 2 * x * x, delta * x).sum(axis=1)
        return g, h

    hi = np.log(s0)
    lo = hi - 1.0
    for _ in range(200):
        g_lo, _ = g_h(lo)
        low = g_lo <= 0
        if not low.any():
            break
        lo = np.where(low, lo - 1.0, lo)
    u = hi.copy()
    for _ in range(100):
        g, h = g_h(u)
        lo = np.where(g > 0, u, lo)
        hi = np.where(g <= 0, u, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = u + g / h
        ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
        nxt = np.where(ok, newton, 0.5 * (lo + hi))
        step = np.abs(nxt - u)
        u = nxt
        if np.all((step <= 4e-16 * np.maximum(1.0, np.abs(u))) | (g == 0)):
            break
    return np.asarray(np.exp(u), dtype=np.float64)


def _nll(r: np.ndarray, s: float, delta: float) -> float:
    """Negative Huber log-likelihood of log-residuals ``r`` at scale ``s``."""
    return float(
        _huber_rho(r / s, delta).sum() + r.size * (math.log(s) + math.log(huber_normaliser(delta)))
    )


def _fit_huber(
    x: np.ndarray, y: np.ndarray, start: np.ndarray | None, delta: float, n_threads: int
) -> tuple[Any, float | None]:
    """The summed-Huber fit (FitResult in LSE parameters) and, for the grid, the share of
    starts that reached the best cost."""
    opts: dict[str, Any] = {"loss": "huber", "f_scale": delta}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # judged below, by the best fit
        if start is None:
            ms = multi_start(_LAW, x, y, starts="hoffmann", n_threads=n_threads, **opts)
            if ms.best is None:
                raise FitError("no start of Hoffmann's grid converged")
            return ms.best, float(ms.reached_best(1e-6).mean())
    return curve_fit(_LAW, x, y, p0=_into_bounds(start), **opts), None


def _nll_rows(r: np.ndarray, s: np.ndarray, delta: float) -> np.ndarray:
    """Per-row negative log-likelihood without the constant ``m·log Z`` (rows of ``r``)."""
    r2 = np.atleast_2d(r)
    return np.asarray(
        _huber_rho(r2 / s[:, None], delta).sum(axis=1) + r2.shape[1] * np.log(s), dtype=np.float64
    )


def _settled(
    theta: np.ndarray, new: np.ndarray, nll: np.ndarray, nll_new: np.ndarray
) -> np.ndarray:
    """Rows at the blockwise fixed point: a whole round (two exact block minimisations) moved
    no parameter by 1e-10 relative, or lowered the objective by at most 1e-12 relative (flat
    directions of the nearly-LAD objective, e.g. duplicated points in a bootstrap resample)."""
    still = np.all(np.abs(new - theta) <= 1e-10 * (1 + np.abs(theta)), axis=-1)
    flat = nll - nll_new <= 1e-12 * (1 + np.abs(nll_new))
    return np.asarray(still | flat, dtype=bool)


def _fit_likelihood(
    x: np.ndarray, y: np.ndarray, theta: np.ndarray, delta: float, max_rounds: int = 50
) -> tuple[np.ndarray, float, int, Any]:
    """Blockwise minimisation of the free-scale Huber likelihood from ``theta`` (LSE form).

    Returns ``(theta, s, rounds, last FitResult)``; ``rounds > max_rounds`` means no
    convergence."""
    theta = _into_bounds(theta)
    r = y - _LAW.func(x, *theta)
    s = _scale_step(r, delta)
    nll = _nll_rows(r, s, delta)
    res = None
    for rounds in range(1, max_rounds + 1):
        res = curve_fit(
            _LAW, x, y, p0=theta, sigma=np.full(y.size, s[0]), loss="huber", f_scale=delta
        )
        new = np.asarray(res.x, dtype=np.float64)
        r = y - _LAW.func(x, *new)
        s = _scale_step(r, delta)
        nll_new = _nll_rows(r, s, delta)
        done = bool(_settled(theta, new, nll, nll_new)[0])
        theta, nll = new, nll_new
        if done:
            return theta, float(s[0]), rounds, res
    return theta, float(s[0]), max_rounds + 1, res


def _bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    theta_huber: np.ndarray,
    estimator: str,
    delta: float,
    n_resamples: int,
    seed: int,
    n_threads: int,
) -> tuple[np.ndarray, float]:
    """Bootstrap refits → (converged parameter rows in ``PARAMS`` order, failed fraction)."""
    bs = bootstrap_fit(
        _LAW,
        x,
        y,
        p0=_into_bounds(theta_huber),
        n_resamples=n_resamples,
        seed=seed,
        n_threads=n_threads,
        loss="huber",
        f_scale=delta,
    )
    ok = bs.success & np.all(np.isfinite(bs.x), axis=1)
    theta = bs.x
    if estimator == "likelihood":
        # The same resamples (stream i of seed), each refitted blockwise on the native batch
        # solver: scales by vectorised Newton, θ by fit_many with sigma = s_i; only the
        # resamples that have not settled are refitted in the next round.
        idx = bootstrap_indices(y.size, n_resamples, seed)
        xs = [x[:, row] for row in idx]
        ys = [y[row] for row in idx]
        theta = _into_bounds(np.where(ok[:, None], theta, theta_huber))
        resid = np.stack([yi - _LAW.func(xi, *t) for xi, yi, t in zip(xs, ys, theta, strict=True)])
        s = _scale_step(resid, delta)
        nll = _nll_rows(resid, s, delta)
        active = np.ones(n_resamples, dtype=bool)
        ok = np.zeros(n_resamples, dtype=bool)
        for _ in range(50):
            rows = np.flatnonzero(active)
            batch = fit_many(
                _LAW,
                [xs[i] for i in rows],
                [ys[i] for i in rows],
                p0=theta[rows],
                sigma=[np.full(y.size, s[i]) for i in rows],
                n_threads=n_threads,
                loss="huber",
                f_scale=delta,
            )
            new = np.where(np.isfinite(batch.x), batch.x, theta[rows])
            resid = np.stack([ys[i] - _LAW.func(xs[i], *t) for i, t in zip(rows, new, strict=True)])
            s_new = _scale_step(resid, delta)
            nll_new = _nll_rows(resid, s_new, delta)
            settled = _settled(theta[rows], new, nll[rows], nll_new)
            theta[rows], s[rows], nll[rows] = new, s_new, nll_new
            ok[rows] = batch.success
            active[rows] = ~settled
            if not active.any():
                break
        ok &= ~active
    return _LAW.to_chinchilla(theta[ok]), float(1 - ok.mean())


# -- the family --------------------------------------------------------------------------------


@register_family("chinchilla_optimal")
class ComputeOptimal(LawFamily):
    """Chinchilla loss law ``L = E + A/N^α + B/D^β`` with compute-optimal allocation and
    bootstrap uncertainty (Hoffmann et al. 2022, Approach 3; Epoch AI 2024).

    Build it with :meth:`fit`; the attributes below describe the fitted state.

    Attributes
    ----------
    params : dict
        Point estimates ``E, A, B, alpha, beta`` (nats per token; ``A`` in nats·params^α,
        ``B`` in nats·tokens^β).
    method : str
        ``"huber"`` or ``"likelihood"``.
    scale : float or None
        The likelihood's fitted scale ``s`` (log-loss units), for ``method="likelihood"``.
    objective : float
        ``Σ Huber_δ`` (huber) or the negative log-likelihood (likelihood) at the optimum.
    samples : ndarray, shape (k, 5)
        Converged bootstrap refits in ``(E, A, B, alpha, beta)`` order (k = 0 without one).
    """

    required_columns = ("N", "L")
    description = (
        "Chinchilla L = E + A/N^alpha + B/D^beta (Hoffmann Huber fit or Epoch's Huber "
        "likelihood), compute-optimal N_opt(C), D_opt(C), bootstrap SEs; needs N, L and D or C"
    )

    @classmethod
    def from_store(
        cls, path: Any, metric: str | None = None, task: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """Runs from a results store: ``metric`` is the final loss (e.g. a perplexity task's
        nats per token), ``N`` and ``D`` come from the model cards (``n_params``,
        ``training_tokens``)."""
        from ..data import table_from_store

        t = table_from_store(path, metric=metric, task=task)
        return t.rename(columns={"n_params": "N", "training_tokens": "D", "score": "L"})

    def __init__(
        self,
        params: Sequence[float] | np.ndarray,
        *,
        method: str,
        delta: float,
        runs: tuple[np.ndarray, np.ndarray, np.ndarray],
        objective: float,
        scale: float | None = None,
        success: bool = True,
        message: str = "",
        samples: np.ndarray | None = None,
        bootstrap: Mapping[str, Any] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.x = np.asarray(params, dtype=np.float64).reshape(5)
        self.method = method
        self.delta = float(delta)
        self.runs = tuple(np.asarray(r, dtype=np.float64) for r in runs)
        self.objective = float(objective)
        self.scale = None if scale is None else float(scale)
        self.success = bool(success)
        self.message = message
        self.samples = (
            np.zeros((0, 5)) if samples is None else np.asarray(samples, dtype=np.float64)
        )
        self.bootstrap = dict(bootstrap or {})
        self.info = dict(info or {})

    # -- fitting -------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        *,
        method: str = "huber",
        start: Any = "grid",
        delta: float = 1e-3,
        drop_highest: int = 0,
        n_resamples: int = 4000,
        bootstrap: str = "huber",
        seed: int = 0,
        n_threads: int = 0,
        **unknown: Any,
    ) -> ComputeOptimal:
        """Fit the law to training runs.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per run: ``N`` (parameters), ``L`` (final loss, nats/token) and ``D``
            (tokens) or ``C`` (FLOPs; ``D = C/(6N)``); all > 0.
        method : {"huber", "likelihood"}
            Hoffmann's summed Huber objective on log-loss residuals, or Epoch AI's Huber
            likelihood with a free scale (its optimum is refined from the Huber optimum).
        start : "grid", "hoffmann2022", mapping or sequence
            Hoffmann's 4500-point grid (best of all starts), Hoffmann's unrounded published
            estimates, or explicit ``E, A, B, alpha, beta``.
        delta : float
            Huber threshold δ (in log-loss units for ``"huber"``, in units of ``s`` for
            ``"likelihood"``); 1e-3 as in both papers.
        drop_highest : int
            Drop this many highest-loss runs first (Epoch AI drops 5 of Hoffmann's 245).
        n_resamples : int
            Bootstrap resamples (0: none; then predictions have no intervals).
        bootstrap : {"huber", "likelihood"}
            Objective refitted on each resample, from the full-data optimum: ``"huber"`` is
            Epoch AI's protocol (also for their likelihood headline); ``"likelihood"`` refits
            the free-scale likelihood (about 6× the time).
        seed : int
            Bootstrap seed (resample i uses random stream i: identical for any thread count).
        n_threads : int
            Native worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores).

        Raises
        ------
        InvalidInputError
            Missing columns, non-positive or non-finite values, too few runs, bad options.
        """
        name = cls.name
        if unknown:
            key = next(iter(unknown))
            hint = did_you_mean(key, _FIT_OPTIONS)
            raise InvalidInputError(
                f"{name}: unknown option {key!r}; {hint + ' ' if hint else ''}"
                f"options are {', '.join(_FIT_OPTIONS)}"
            )
        if method not in METHODS:
            raise InvalidInputError(f"{name}: method must be one of {METHODS}, got {method!r}")
        if bootstrap not in METHODS:
            raise InvalidInputError(
                f"{name}: bootstrap must be one of {METHODS}, got {bootstrap!r}"
            )
        if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
            raise InvalidInputError(f"{name}: delta must be a finite number > 0, got {delta!r}")
        for opt, val in (("drop_highest", drop_highest), ("n_resamples", n_resamples)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 0:
                raise InvalidInputError(f"{name}: {opt} must be an integer >= 0, got {val!r}")
        theta0 = _start_lse(start)
        n, d, loss = _read_runs(data, name)
        if drop_highest:
            if drop_highest >= n.size:
                raise InvalidInputError(
                    f"{name}: drop_highest={drop_highest} leaves no runs of {n.size}"
                )
            keep = np.sort(np.argsort(loss, kind="stable")[: n.size - drop_highest])
            n, d, loss = n[keep], d[keep], loss[keep]
        n_params = 5 if method == "huber" else 6
        if n.size <= n_params:
            raise InvalidInputError(
                f"{name}: {n.size} runs are too few for the {n_params} parameters of the "
                f"{method} fit (need at least {n_params + 1})"
            )
        for label, col in (("N", n), ("D", d)):
            if np.unique(col).size < 3:
                raise InvalidInputError(
                    f"{name}: {label} takes {np.unique(col).size} distinct value(s); "
                    f"the law needs at least 3 to separate its constant, scale and exponent"
                )
        x, y = np.vstack([n, d]), np.log(loss)

        huber, reached = _fit_huber(x, y, theta0, float(delta), n_threads)
        theta_huber = np.asarray(huber.x, dtype=np.float64)
        info: dict[str, Any] = {
            "n_runs": int(n.size),
            "dropped": int(drop_highest),
            "start": start if isinstance(start, str) else "given",
            "huber_objective": float(huber.cost),
            "huber_params": _LAW.to_chinchilla(theta_huber).tolist(),
            "nfev": int(huber.nfev),
        }
        if reached is not None:
            info["grid_reached_best"] = reached
        success, message = bool(huber.success), str(huber.message)
        scale = None
        objective = float(huber.cost)
        theta = theta_huber
        if method == "likelihood":
            theta, scale, rounds, last = _fit_likelihood(x, y, theta_huber, float(delta))
            objective = _nll(y - _LAW.func(x, *theta), scale, float(delta))
            info["rounds"] = rounds
            success = bool(last.success) and rounds <= 50
            message = (
                f"blockwise optimum after {rounds} round(s); last θ-step: {last.message}"
                if rounds <= 50
                else "the blockwise iteration did not settle in 50 rounds"
            )
        if not success:
            warnings.warn(
                f"{name}: the {method} fit did not converge ({message})",
                ConvergenceWarning,
                stacklevel=2,
            )

        samples = None
        boot: dict[str, Any] = {"n_resamples": int(n_resamples)}
        if n_resamples:
            samples, failed = _bootstrap(
                x, y, theta_huber, bootstrap, float(delta), int(n_resamples), seed, n_threads
            )
            boot.update(estimator=bootstrap, seed=int(seed), failed_fraction=failed)
        return cls(
            _LAW.to_chinchilla(theta),
            method=method,
            delta=float(delta),
            runs=(n, d, loss),
            objective=objective,
            scale=scale,
            success=success,
            message=message,
            samples=samples,
            bootstrap=boot,
            info=info,
        )

    # -- derived quantities --------------------------------------------------------------------

    @property
    def params(self) -> dict[str, float]:
        """Point estimates ``{E, A, B, alpha, beta}``."""
        return dict(zip(PARAMS, map(float, self.x), strict=True))

    @property
    def a(self) -> float:
        """Parameter share ``a = β/(α+β)``: ``N_opt ∝ C^a``."""
        return float(self.x[4] / (self.x[3] + self.x[4]))

    @property
    def b(self) -> float:
        """Token share ``b = α/(α+β)``: ``D_opt ∝ C^b``."""
        return float(self.x[3] / (self.x[3] + self.x[4]))

    def loss(self, N: Any, D: Any) -> np.ndarray:
        """Point prediction ``E + A/N^α + B/D^β`` (broadcast arrays of N and D)."""
        n, d = np.broadcast_arrays(np.asarray(N, np.float64), np.asarray(D, np.float64))
        return _loss(self.x, n.reshape(-1), d.reshape(-1)).reshape(n.shape)

    def _check_ci(self, ci: float) -> bool:
        """Validate the level; True when intervals can be computed from the bootstrap."""
        check_level(ci, self.name)
        if self.samples.shape[0] < 2:
            warnings.warn(
                f"{self.name}: no bootstrap resamples (fit with n_resamples > 1): "
                "standard errors and intervals are NaN",
                InestimableWarning,
                stacklevel=3,
            )
            return False
        return True

    def _interval(self, values: np.ndarray, ci: float, ok: bool) -> tuple[np.ndarray, ...]:
        """(stderr, low, high) over the sample axis 0."""
        shape = values.shape[1:]
        if not ok:
            nan = np.full(shape, np.nan)
            return nan, nan, nan.copy()
        tail = 100 * (1 - ci) / 2
        lo, hi = np.percentile(values, [tail, 100 - tail], axis=0)
        return np.std(values, axis=0, ddof=1), lo, hi

    def table(self, ci: float = 0.95) -> pd.DataFrame:
        """Every fitted and derived quantity with its bootstrap standard error and percentile
        interval: rows ``E, A, B, alpha, beta, a, b, G``; columns ``estimate, stderr,
        ci_low, ci_high``."""
        ok = self._check_ci(ci)
        point = _derived(self.x[None, :])
        boot = _derived(self.samples)
        rows = []
        for key in (*PARAMS, *DERIVED):
            se, lo, hi = self._interval(boot[key][:, None], ci, ok)
            rows.append((key, float(point[key][0]), float(se[0]), float(lo[0]), float(hi[0])))
        return pd.DataFrame(
            rows, columns=["quantity", "estimate", "stderr", "ci_low", "ci_high"]
        ).set_index("quantity")

    @property
    def stderr(self) -> dict[str, float]:
        """Bootstrap standard errors of ``E, A, B, alpha, beta, a, b, G``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InestimableWarning)
            return {k: float(v) for k, v in self.table()["stderr"].items()}

    def allocation(self, C: Any, *, ci: float = 0.95) -> pd.DataFrame:
        """Compute-optimal allocation at FLOPs ``C`` with bootstrap uncertainty.

        Returns
        -------
        DataFrame
            Columns ``C``, then for each of ``N_opt``, ``D_opt`` and ``L_opt`` (the loss at
            the allocation): the estimate, ``_se``, ``_low`` and ``_high``.
        """
        c = np.atleast_1d(np.asarray(C, dtype=np.float64)).reshape(-1)
        if not np.all(np.isfinite(c) & (c > 0)):
            raise InvalidInputError(f"{self.name}: C must be finite and > 0")
        ok = self._check_ci(ci)
        out: dict[str, Any] = {"C": c}
        point = self._optimum(self.x[None, :], c)
        boot = self._optimum(self.samples, c) if ok else None
        for j, key in enumerate(("N_opt", "D_opt", "L_opt")):
            se, lo, hi = self._interval(
                boot[j] if boot is not None else np.empty((0, c.size)), ci, ok
            )
            out.update({key: point[j][0], f"{key}_se": se, f"{key}_low": lo, f"{key}_high": hi})
        return pd.DataFrame(out)

    @staticmethod
    def _optimum(p: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_opt, d_opt = optimal_allocation(c, *(p[:, j] for j in range(5)))
        with np.errstate(over="ignore", under="ignore"):
            l_opt = (
                p[:, 0:1] + p[:, 1:2] * n_opt ** (-p[:, 3:4]) + p[:, 2:3] * d_opt ** (-p[:, 4:5])
            )
        return n_opt, d_opt, l_opt

    # -- LawFamily contract --------------------------------------------------------------------

    def predict(self, data: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
        """Predict the loss of runs (columns ``N`` and ``D`` or ``C``), or — for a table with
        ``C`` only — the compute-optimal allocation and its loss.

        Returns
        -------
        DataFrame
            The input columns plus ``prediction`` (loss), ``ci_low``, ``ci_high`` (bootstrap
            percentile interval at level ``ci``); for allocation rows also ``N_opt``,
            ``D_opt`` and their ``_low``/``_high`` bounds.
        """
        if not isinstance(data, pd.DataFrame):
            raise InvalidInputError(f"{self.name}: data must be a pandas DataFrame")
        if "N" not in data.columns and "C" in data.columns:
            alloc = self.allocation(_column(data, "C", self.name), ci=ci)
            out = data.copy()
            for key in ("N_opt", "D_opt"):
                for suffix in ("", "_low", "_high"):
                    out[key + suffix] = alloc[key + suffix].to_numpy()
            out["prediction"] = alloc["L_opt"].to_numpy()
            out["ci_low"] = alloc["L_opt_low"].to_numpy()
            out["ci_high"] = alloc["L_opt_high"].to_numpy()
            return out
        require_columns(data, ("N",), self.name)
        n = _column(data, "N", self.name)
        d = _tokens(data, n, self.name)
        ok = self._check_ci(ci)
        _, lo, hi = self._interval(
            _loss(self.samples, n, d) if ok else np.empty((0, n.size)), ci, ok
        )
        return data.assign(prediction=_loss(self.x, n, d), ci_low=lo, ci_high=hi)

    def summary(self) -> str:
        """The fit, its constants and derived quantities with bootstrap SEs and 95 % CIs."""
        flag = "converged" if self.success else "NOT CONVERGED"
        title = {
            "huber": "Hoffmann et al. Approach 3: Σ Huber_δ(log-residuals)",
            "likelihood": "Epoch AI: Huber likelihood with a free scale",
        }[self.method]
        info = self.info
        lines = [
            f"chinchilla_optimal — L = E + A/N^alpha + B/D^beta; {title}",
            f"  {flag}: {self.message}",
            f"  runs {info.get('n_runs', self.runs[0].size)} (dropped {info.get('dropped', 0)} "
            f"highest-loss), delta {self.delta:g}, start {info.get('start', '?')}",
            f"  objective {self.objective:.10g}"
            + (f", scale s = {self.scale:.6g}" if self.scale is not None else ""),
        ]
        if "grid_reached_best" in info:
            lines.append(
                f"  grid: {info['grid_reached_best']:.1%} of 4500 starts reach the optimum"
            )
        boot = self.bootstrap
        k = self.samples.shape[0]
        if k >= 2:
            lines.append(
                f"  bootstrap: {boot.get('n_resamples')} resamples refitting the "
                f"{boot.get('estimator')} objective from the full-data optimum (seed "
                f"{boot.get('seed')}), {boot.get('failed_fraction', 0.0):.2%} failed"
            )
        else:
            lines.append("  bootstrap: none (no standard errors)")
        lines += ["", f"  {'quantity':<10} {'estimate':>14} {'stderr':>12} {'95% CI':>30}"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InestimableWarning)
            tab = self.table(0.95)
        for key, row in tab.iterrows():
            interval = f"[{row['ci_low']:.6g}, {row['ci_high']:.6g}]" if k >= 2 else "-"
            lines.append(
                f"  {key!s:<10} {row['estimate']:>14.6g} {row['stderr']:>12.4g} {interval:>30}"
            )
        lines.append(
            "  (a = beta/(alpha+beta): N_opt ∝ C^a; b = alpha/(alpha+beta): D_opt ∝ C^b; "
            "G = (alpha A/(beta B))^(1/(alpha+beta)))"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: estimates, settings, the runs and the bootstrap refits."""
        return {
            "version": _STATE_VERSION,
            "method": self.method,
            "delta": self.delta,
            "params": self.params,
            "scale": self.scale,
            "objective": self.objective,
            "success": self.success,
            "message": self.message,
            "runs": {k: v.tolist() for k, v in zip(("N", "D", "L"), self.runs, strict=True)},
            "bootstrap": dict(self.bootstrap),
            "samples": self.samples.tolist(),
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ComputeOptimal:
        """Rebuild a fit from :meth:`to_dict`'s output (FormatError if malformed)."""
        try:
            if state["version"] != _STATE_VERSION:
                raise FormatError(
                    f"{cls.name}: state version {state['version']!r} is not {_STATE_VERSION}"
                )
            method = state["method"]
            if method not in METHODS:
                raise FormatError(f"{cls.name}: unknown method {method!r} in saved state")
            samples = np.asarray(state["samples"], dtype=np.float64).reshape(-1, 5)
            runs = tuple(np.asarray(state["runs"][k], dtype=np.float64) for k in ("N", "D", "L"))
            return cls(
                [float(state["params"][k]) for k in PARAMS],
                method=method,
                delta=float(state["delta"]),
                runs=(runs[0], runs[1], runs[2]),
                objective=float(state["objective"]),
                scale=None if state["scale"] is None else float(state["scale"]),
                success=bool(state["success"]),
                message=str(state["message"]),
                samples=samples,
                bootstrap=state["bootstrap"],
                info=state["info"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"{cls.name}: malformed saved state ({exc!r})") from None

    def plot(self, ax: Any = None, *, kind: str = "frontier", ci: float = 0.95) -> Any:
        """Draw the fit (matplotlib, imported here).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            New figure when None.
        kind : {"frontier", "isoflop", "allocation"}
            ``frontier``: runs' loss vs compute (coloured by N) and the compute-optimal loss
            ``L_opt(C)`` with its bootstrap band; ``isoflop``: loss vs N at five compute
            budgets with ``N_opt`` marked; ``allocation``: ``N_opt(C)`` and ``D_opt(C)`` with
            bands.
        """
        import matplotlib.pyplot as plt

        if kind not in PLOT_KINDS:
            raise InvalidInputError(f"{self.name}: kind must be one of {PLOT_KINDS}, got {kind!r}")
        if ax is None:
            _, ax = plt.subplots()
        n, d, loss = self.runs
        c_runs = FLOPS_PER_PARAM_TOKEN * n * d
        lo_c, hi_c = float(c_runs.min()), float(c_runs.max())
        grid_c = np.logspace(np.log10(lo_c) - 0.5, np.log10(hi_c) + 1.0, 120)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InestimableWarning)
            alloc = self.allocation(grid_c, ci=ci)
        band = self.samples.shape[0] >= 2
        pct = f"{ci:.0%} bootstrap band"
        if kind == "frontier":
            points = ax.scatter(c_runs, loss, c=np.log10(n), s=10, cmap="viridis", label="runs")
            ax.plot(grid_c, alloc["L_opt"], color="C3", label="compute-optimal L(C)")
            if band:
                ax.fill_between(
                    grid_c,
                    alloc["L_opt_low"],
                    alloc["L_opt_high"],
                    color="C3",
                    alpha=0.25,
                    label=pct,
                )
            ax.figure.colorbar(points, ax=ax, label="log10 N")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("training FLOPs C")
            ax.set_ylabel("loss L")
        elif kind == "isoflop":
            budgets = np.logspace(np.log10(lo_c), np.log10(hi_c), 5)
            for i, c in enumerate(budgets):
                n_opt, _ = optimal_allocation(c, *self.x)
                ns = float(n_opt) * np.logspace(-1.5, 1.5, 100)
                ax.plot(
                    ns,
                    self.loss(ns, c / (FLOPS_PER_PARAM_TOKEN * ns)),
                    color=f"C{i}",
                    label=f"C = {c:.1e}",
                )
                ax.plot(
                    [float(n_opt)],
                    self.loss(n_opt, c / (FLOPS_PER_PARAM_TOKEN * n_opt)),
                    "o",
                    color=f"C{i}",
                )
            ax.set_xscale("log")
            ax.set_xlabel("parameters N")
            ax.set_ylabel("loss L")
        else:
            for key, color in (("N_opt", "C0"), ("D_opt", "C1")):
                ax.plot(grid_c, alloc[key], color=color, label=key)
                if band:
                    ax.fill_between(
                        grid_c, alloc[f"{key}_low"], alloc[f"{key}_high"], color=color, alpha=0.25
                    )
            ax.scatter(c_runs, n, s=6, color="0.6", label="runs (N)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("training FLOPs C")
            ax.set_ylabel("parameters / tokens")
            ax.set_title(f"a = {self.a:.3f}, b = {self.b:.3f}")
        ax.legend(fontsize="small")
        return ax
