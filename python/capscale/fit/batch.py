"""Batch fitting of built-in laws on the native thread pool: many datasets, bootstrap
resamples and multi-start grids. Each task has its own index (and, for the bootstrap, its own
random stream), so results are identical for any thread count (``n_threads`` or the
``CAPSCALE_NUM_THREADS`` environment variable)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _native
from .._validate import check_count, check_seed
from ..errors import CapscaleWarning, InvalidInputError, ShapeError
from ..laws.chinchilla import hoffmann_grid as _laws_hoffmann_grid
from ._common import as_vector, check_start, parse_bounds, solver_options
from .api import _as_law, curve_fit
from .result import FitResult

__all__ = [
    "BatchFit",
    "BootstrapFit",
    "MultiStartFit",
    "bootstrap_fit",
    "bootstrap_indices",
    "fit_many",
    "hoffmann_grid",
    "multi_start",
]


@dataclass(frozen=True)
class BatchFit:
    """Compact results of many fits of one law (row ``k`` = task ``k``).

    Attributes
    ----------
    law : str
    param_names : tuple of str
    x, stderr : ndarray, shape (k, n)
        Parameters and standard errors (NaN for a task rejected as bad input).
    cost : ndarray, shape (k,)
    status : ndarray of int, shape (k,)
        SciPy-style codes; −1 marks a task with bad input.
    nfev : ndarray of int, shape (k,)
    """

    law: str
    param_names: tuple[str, ...]
    x: np.ndarray
    stderr: np.ndarray
    cost: np.ndarray
    status: np.ndarray
    nfev: np.ndarray

    @property
    def success(self) -> np.ndarray:
        """Boolean mask of converged fits, shape (k,)."""
        return (self.status >= 1) & (self.status <= 4)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Columns ``{param: values, 'cost': …, 'status': …}`` (e.g. for ``pandas.DataFrame``)."""
        out = {name: self.x[:, j] for j, name in enumerate(self.param_names)}
        out.update(cost=self.cost, status=self.status, nfev=self.nfev)
        return out


@dataclass(frozen=True)
class BootstrapFit(BatchFit):
    """Bootstrap refits: ``x[i]`` is the fit to resample ``i`` (stream ``i`` of ``seed``)."""

    seed: int = 0
    full: FitResult | None = None

    @property
    def failed_fraction(self) -> float:
        """Share of resamples whose refit did not converge."""
        return float(np.mean(~self.success))

    def std(self) -> np.ndarray:
        """Bootstrap standard errors (std over converged refits, ddof=1), shape (n,)."""
        return np.std(self.x[self.success], axis=0, ddof=1)

    def ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile confidence interval ``(low, high)``, each of shape (n,)."""
        if not 0 < level < 1:
            raise InvalidInputError(f"level must be in (0, 1), got {level}")
        ok = self.x[self.success]
        if ok.shape[0] < 2:
            raise InvalidInputError("fewer than 2 converged resamples: no interval")
        tail = 100 * (1 - level) / 2
        return np.percentile(ok, tail, axis=0), np.percentile(ok, 100 - tail, axis=0)


@dataclass(frozen=True)
class MultiStartFit(BatchFit):
    """All fits of a multi-start run plus the best one as a full :class:`FitResult`."""

    starts: np.ndarray | None = None
    best: FitResult | None = None

    def reached_best(self, rtol: float = 1e-6) -> np.ndarray:
        """Mask of starts whose final cost is within ``rtol`` (relative) of the best cost."""
        if self.best is None:
            return np.zeros(self.cost.shape, dtype=bool)
        return np.abs(self.cost - self.best.cost) <= rtol * abs(self.best.cost)


def _law_data(law: Any, x: Any, y: Any, sigma: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    xa, ya = law.check_data(x, as_vector("ydata", y))
    sig = None if sigma is None else as_vector("sigma", sigma)
    return np.ascontiguousarray(xa, dtype=np.float64).reshape(-1), ya, sig


def _batch(law: Any, raw: dict[str, Any], cls: type = BatchFit, **extra: Any) -> Any:
    return cls(
        law=law.name,
        param_names=tuple(law.param_names),
        x=raw["x"],
        stderr=raw["stderr"],
        cost=raw["cost"],
        status=raw["status"],
        nfev=raw["nfev"],
        **extra,
    )


def _require_law(f: Any) -> Any:
    law = _as_law(f)
    if law is None:
        raise InvalidInputError(
            "batch fitting takes a law name or Law class "
            "(loop over capscale.fit.curve_fit for an arbitrary Python model)"
        )
    return law


def _is_native(law: Any) -> bool:
    return law.name in _native.law_names()


def _python_loop(law: Any, jobs: list[tuple[Any, Any, Any, Any]], options: dict) -> dict:
    """Fit a user-registered law (no native implementation) task by task with curve_fit.

    ``jobs`` holds ``(x, y, sigma, p0)`` per task; the result has the native batch layout.
    """
    n = law.n_params
    k = len(jobs)
    out: dict[str, Any] = {
        "x": np.full((k, n), np.nan),
        "stderr": np.full((k, n), np.nan),
        "cost": np.full(k, np.nan),
        "status": np.full(k, -1, dtype=np.int32),
        "nfev": np.zeros(k, dtype=np.uint64),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapscaleWarning)
        for i, (x, y, sig, p0) in enumerate(jobs):
            try:
                res = curve_fit(law, x, y, p0=p0, sigma=sig, **options)
            except InvalidInputError:
                continue
            out["x"][i], out["stderr"][i] = res.x, res.stderr
            out["cost"][i], out["status"][i], out["nfev"][i] = res.cost, res.status, res.nfev
    ok = np.flatnonzero((out["status"] >= 1) & (out["status"] <= 4))
    pool = ok if ok.size else np.flatnonzero(np.isfinite(out["cost"]))
    out["best"] = int(pool[np.argmin(out["cost"][pool])]) if pool.size else None
    return out


def fit_many(
    law: Any,
    xs: Sequence[Any],
    ys: Sequence[Any],
    p0: Any = None,
    sigma: Sequence[Any] | None = None,
    bounds: Any = None,
    *,
    n_threads: int = 0,
    **options: Any,
) -> BatchFit:
    """Fit one law to many datasets in parallel.

    Parameters
    ----------
    law : str or Law class
    xs, ys : sequences of array_like
        Dataset ``k`` is ``(xs[k], ys[k])``; lengths may differ between datasets.
    p0 : array_like, shape (n,) or (k, n), optional
        Starts (default: the law's ``guess`` for each dataset).
    sigma : sequence of array_like, optional
    bounds : (lower, upper), optional
        Default: the law's ``default_bounds``.
    n_threads : int
        Worker threads (0: ``CAPSCALE_NUM_THREADS`` or all cores).
    **options
        Solver settings as in :func:`capscale.fit.least_squares` (loss, f_scale, ftol …).
    """
    law = _require_law(law)
    if len(xs) != len(ys) or (sigma is not None and len(sigma) != len(xs)):
        raise ShapeError("xs, ys (and sigma) must have the same number of datasets")
    data = [
        _law_data(law, x, y, None if sigma is None else sigma[k])
        for k, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    if p0 is None:
        starts = np.array([law.guess(x.reshape(law.n_inputs, -1), y) for x, y, _ in data])
    else:
        given = np.asarray(p0, dtype=float)
        if given.shape not in ((law.n_params,), (len(data), law.n_params)):
            raise ShapeError(
                f"p0 must have shape ({law.n_params},) or ({len(data)}, {law.n_params}), "
                f"got {given.shape}"
            )
        starts = np.array(np.broadcast_to(given, (len(data), law.n_params)))
    bounds = law.default_bounds if bounds is None else bounds
    if not _is_native(law):
        jobs = [
            (x.reshape(law.n_inputs, -1), y, sig, p)
            for (x, y, sig), p in zip(data, starts, strict=True)
        ]
        return _batch(law, _python_loop(law, jobs, dict(bounds=bounds, **options)))
    opts = solver_options(law.n_params, bounds=bounds, **options)
    sigmas = None if sigma is None else [d[2] for d in data]
    raw = _native.fit_many(
        law.name,
        [d[0] for d in data],
        [d[1] for d in data],
        sigmas,
        np.ascontiguousarray(starts),
        opts,
        n_threads,
    )
    return _batch(law, raw)


def bootstrap_indices(m: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """The point indices of each bootstrap resample, shape ``(n_resamples, m)`` (int64)."""
    return _native.bootstrap_indices(m, n_resamples, seed)


def bootstrap_fit(
    law: Any,
    xdata: Any,
    ydata: Any,
    p0: Any = None,
    sigma: Any = None,
    bounds: Any = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    n_threads: int = 0,
    **options: Any,
) -> BootstrapFit:
    """Bootstrap a law fit: refit ``n_resamples`` resamples of the points (with replacement).

    Resample ``i`` draws its indices from random stream ``i`` of ``seed``
    (:func:`bootstrap_indices`) and is refitted from ``p0`` — by default the full-data
    optimum (Epoch AI's protocol), found first with :func:`curve_fit`.
    """
    law = _require_law(law)
    n_resamples = check_count("n_resamples", n_resamples, 1)
    seed = check_seed(seed)
    x, y, sig = _law_data(law, xdata, ydata, sigma)
    bounds = law.default_bounds if bounds is None else bounds
    full = None
    if p0 is None:
        full = curve_fit(law, x.reshape(law.n_inputs, -1), y, sigma=sig, bounds=bounds, **options)
        start = full.x
    else:
        start = as_vector("p0", p0)
        check_start("p0", start, bounds)
    if not _is_native(law):
        xs = x.reshape(law.n_inputs, -1)
        jobs = [
            (
                xs[:, idx].reshape(law.n_inputs, -1) if law.n_inputs > 1 else xs[0, idx],
                y[idx],
                None if sig is None else sig[idx],
                start,
            )
            for idx in bootstrap_indices(y.shape[0], n_resamples, seed)
        ]
        raw = _python_loop(law, jobs, dict(bounds=bounds, **options))
        return _batch(law, raw, BootstrapFit, seed=seed, full=full)
    opts = solver_options(law.n_params, bounds=bounds, **options)
    raw = _native.bootstrap_fit(law.name, x, y, sig, start, n_resamples, seed, opts, n_threads)
    return _batch(law, raw, BootstrapFit, seed=seed, full=full)


def hoffmann_grid() -> np.ndarray:
    """Hoffmann et al.'s 4500 starts for ``chinchilla_lse``: rows ``(a, b, e, alpha, beta)``
    (defined in :mod:`capscale.laws.chinchilla`)."""
    return _laws_hoffmann_grid()


def multi_start(
    law: Any,
    xdata: Any,
    ydata: Any,
    starts: Any = "hoffmann",
    sigma: Any = None,
    bounds: Any = None,
    *,
    n_threads: int = 0,
    **options: Any,
) -> MultiStartFit:
    """Fit from every start and keep the best (lowest cost among converged fits).

    Parameters
    ----------
    starts : array_like, shape (k, n), or "hoffmann"
        Starting points; "hoffmann" is the 4500-point grid of Hoffmann et al. (2022) for
        ``chinchilla_lse`` (fitted without bounds unless ``bounds`` is given, as in the
        paper). Starts outside ``bounds`` are clipped into them.
    bounds : (lower, upper), optional
        Default: the law's ``default_bounds``.
    """
    law = _require_law(law)
    if isinstance(starts, str):
        if starts != "hoffmann" or law.name != "chinchilla_lse":
            raise InvalidInputError("starts='hoffmann' is the grid for law 'chinchilla_lse'")
        starts = hoffmann_grid()
        if bounds is None:
            # Hoffmann et al.'s protocol is unconstrained; runs that escape to a plateau are
            # flagged (status -3) and never chosen as best. With alpha, beta in [0, 3] fewer
            # starts reach the optimum (30% vs 47%): starts on the bound stay there.
            bounds = (-np.inf, np.inf)
    starts = np.ascontiguousarray(starts, dtype=np.float64)
    if starts.ndim != 2 or starts.shape[1] != law.n_params or starts.shape[0] == 0:
        raise ShapeError(f"starts must have shape (k, {law.n_params}), got {starts.shape}")
    x, y, sig = _law_data(law, xdata, ydata, sigma)
    bounds = law.default_bounds if bounds is None else bounds
    lower, upper = parse_bounds(bounds, law.n_params)
    if _is_native(law):
        opts = solver_options(law.n_params, bounds=bounds, **options)
        raw = _native.multi_start(law.name, x, y, sig, starts, opts, n_threads)
    else:
        xs = x.reshape(law.n_inputs, -1)
        jobs = [
            (xs if law.n_inputs > 1 else xs[0], y, sig, np.clip(s0, lower, upper)) for s0 in starts
        ]
        raw = _python_loop(law, jobs, dict(bounds=bounds, **options))
    best = None
    if raw["best"] is not None:
        x0 = np.clip(starts[raw["best"]], lower, upper)
        best = curve_fit(
            law, x.reshape(law.n_inputs, -1), y, p0=x0, sigma=sig, bounds=bounds, **options
        )
    return _batch(law, raw, MultiStartFit, starts=starts, best=best)
