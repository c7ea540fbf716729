"""``least_squares`` and ``curve_fit`` with SciPy's argument names, on the native solver."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _native
from ..errors import FitError, InvalidInputError, ShapeError
from ._common import (
    DEFAULT_TOL,
    as_array,
    as_vector,
    build_result,
    check_start,
    default_names,
    feasible_start,
    solver_options,
)
from .result import FitResult

__all__ = ["curve_fit", "least_squares"]

_FD_SCHEMES = ("2-point", "3-point")


def _split_jac(jac: Any) -> tuple[Callable[..., Any] | None, str]:
    """A callable Jacobian, or a finite-difference scheme name."""
    if jac is None:
        return None, "3-point"
    if isinstance(jac, str):
        if jac not in _FD_SCHEMES:
            raise InvalidInputError(f"jac must be a callable, '2-point' or '3-point', got {jac!r}")
        return None, jac
    if not callable(jac):
        raise InvalidInputError(f"jac must be callable or a scheme name, got {type(jac).__name__}")
    return jac, "3-point"


def least_squares(
    fun: Callable[..., Any],
    x0: Any,
    jac: Callable[..., Any] | str | None = None,
    bounds: Any = (-np.inf, np.inf),
    *,
    loss: str = "linear",
    f_scale: float = 1.0,
    ftol: float = DEFAULT_TOL,
    xtol: float = DEFAULT_TOL,
    gtol: float = DEFAULT_TOL,
    max_nfev: int | None = None,
    diff_step: float | None = None,
    x_scale: Any = "jac",
    geodesic: bool = False,
    args: Sequence[Any] = (),
    param_names: Sequence[str] | None = None,
) -> FitResult:
    """Minimise ``½·Σ ρ(fun(x, *args)²)`` with the native Levenberg–Marquardt solver.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> array, shape (m,)``: residuals for parameters ``x`` (shape (n,)).
        Called once per residual evaluation (vectorised over residuals), ``m >= n``.
    x0 : array_like, shape (n,)
        Starting point, inside ``bounds``.
    jac : callable, '2-point' or '3-point', optional
        ``jac(x, *args) -> array, shape (m, n)``, or a finite-difference scheme with relative
        steps (default '3-point', central differences with step ``ε^(1/3)·|x_j|``).
    bounds : (lower, upper), optional
        Box bounds (scalars or arrays of length n, ±inf for none); handled inside the
        trust-region iteration (active set + projection), not by a variable transform.
    loss : {'linear', 'huber', 'soft_l1', 'cauchy', 'arctan'}
        Robust loss ρ applied to ``(r/f_scale)²`` inside the iteration.
    f_scale : float
        Soft margin between inlier and outlier residuals (units of the residuals).
    ftol, xtol, gtol : float
        Relative tolerances on the cost reduction, the scaled step and the gradient cosine
        (default 1e-15: run to the limit of double precision; a Gauss–Newton polish then
        recovers the parameter digits the cost test cannot see).
    max_nfev : int, optional
        Residual-evaluation budget (default ``500·(n+1)``).
    diff_step : float, optional
        Relative finite-difference step.
    x_scale : 'jac' or array_like
        Moré's Jacobian-column scaling (default) or fixed characteristic parameter scales.
    geodesic : bool
        Add geodesic acceleration (Transtrum & Sethna) to each step; helps in long valleys.
    args : sequence
        Extra positional arguments of ``fun`` and ``jac``.
    param_names : sequence of str, optional
        Names for the result's ``params`` (default ``p0 … p{n-1}``).

    Returns
    -------
    FitResult
        ``success`` is False (with a ConvergenceWarning) when the solver did not converge.
    """
    if not callable(fun):
        raise InvalidInputError(f"fun must be callable, got {type(fun).__name__}")
    x0 = as_vector("x0", x0)
    n = x0.shape[0]
    check_start("x0", x0, bounds)
    jac_fn, scheme = _split_jac(jac)
    opts = solver_options(
        n,
        bounds=bounds,
        loss=loss,
        f_scale=f_scale,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        max_nfev=max_nfev,
        diff_scheme=scheme,
        diff_step=diff_step,
        x_scale=x_scale,
        geodesic=geodesic,
    )
    names = default_names(n, param_names)
    try:
        f0 = np.asarray(fun(x0.copy(), *args))
    except Exception as exc:
        raise FitError(f"fun raised {type(exc).__name__}: {exc} at x0") from exc
    if f0.ndim != 1:
        raise ShapeError(f"fun must return a 1-D array of residuals, got shape {f0.shape}")
    raw = _native.least_squares(fun, x0, f0.shape[0], jac_fn, tuple(args), opts)
    return build_result(raw, names)


def _count_params(f: Callable[..., Any]) -> int:
    """Number of fit parameters of ``f(x, p1, p2, ...)``: its positional parameters − 1."""
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "p0 is required: the number of parameters cannot be read from f's signature"
        ) from None
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        raise InvalidInputError("p0 is required when f takes *args")
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        raise InvalidInputError("f must take xdata and at least one parameter: f(x, p1, ...)")
    return len(positional) - 1


def curve_fit(
    f: Callable[..., Any] | str | type,
    xdata: Any,
    ydata: Any,
    p0: Any = None,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool = True,
    bounds: Any = None,
    jac: Callable[..., Any] | str | None = None,
    *,
    loss: str = "linear",
    f_scale: float = 1.0,
    ftol: float = DEFAULT_TOL,
    xtol: float = DEFAULT_TOL,
    gtol: float = DEFAULT_TOL,
    max_nfev: int | None = None,
    diff_step: float | None = None,
    x_scale: Any = "jac",
    geodesic: bool = False,
    param_names: Sequence[str] | None = None,
) -> FitResult:
    """Fit ``ydata ≈ f(xdata, *p)`` by weighted (robust) least squares.

    Parameters
    ----------
    f : callable, law name or Law class
        A model ``f(xdata, *p) -> array, shape (m,)``, or a built-in law (``"chinchilla"``,
        ``capscale.laws.get_law("power_law")`` …) which runs fully native with its analytic
        Jacobian, data-driven ``p0`` and default bounds.
    xdata : array_like
        Inputs: anything ``f`` accepts; for laws shape (m,) or (n_inputs, m).
    ydata : array_like, shape (m,)
        Observations.
    p0 : array_like, shape (n,), optional
        Start (default: the law's ``guess``; for a callable, as SciPy does: ones, or inside
        the bounds lb + 1, ub − 1 or their midpoint).
    sigma : array_like, shape (m,), optional
        Standard deviations of ``ydata``; residuals are ``(f − y)/sigma``.
    absolute_sigma : bool
        If True the covariance is ``(JᵀJ)⁻¹``; else it is scaled by the reduced χ².
    check_finite : bool
        Reject NaN/inf in the data (always on for laws).
    bounds : (lower, upper), optional
        Box bounds; default none for callables and the law's ``default_bounds`` for laws.
    jac : callable, '2-point' or '3-point', optional
        ``jac(xdata, *p) -> array, shape (m, n)`` or a finite-difference scheme.
    loss, f_scale, ftol, xtol, gtol, max_nfev, diff_step, x_scale, geodesic
        As in :func:`least_squares`.
    param_names : sequence of str, optional
        Names for callables (laws name their own parameters).

    Returns
    -------
    FitResult
        Unpacks like SciPy: ``popt, pcov = curve_fit(...)``.
    """
    law = _as_law(f)
    solver: dict[str, Any] = dict(
        loss=loss,
        f_scale=f_scale,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        max_nfev=max_nfev,
        diff_step=diff_step,
        x_scale=x_scale,
        geodesic=geodesic,
    )
    if law is not None and law.name not in _native.law_names():
        # A user-registered law: its NumPy model and Jacobian through the callable path.
        if jac is not None or param_names is not None:
            raise InvalidInputError("a law brings its own Jacobian and parameter names")
        xl, yl = law.check_data(xdata, as_vector("ydata", ydata))
        start = law.guess(xl, yl) if p0 is None else as_vector("p0", p0)
        bnds = law.default_bounds if bounds is None else bounds
        res = curve_fit(
            law.func,
            xl,
            yl,
            start,
            sigma,
            absolute_sigma,
            check_finite,
            bnds,
            law.jac,
            param_names=law.param_names,
            **solver,
        )
        return dataclasses.replace(res, law=law.name)
    y = as_vector("ydata", ydata, check_finite)
    sig = None if sigma is None else as_vector("sigma", sigma, check_finite)
    common = dict(solver, absolute_sigma=absolute_sigma)
    if law is not None:
        if jac is not None:
            raise InvalidInputError(f"law {law.name} uses its analytic Jacobian; drop jac")
        if param_names is not None:
            raise InvalidInputError(f"law {law.name} names its parameters; drop param_names")
        x, y = law.check_data(xdata, y)
        start = law.guess(x, y) if p0 is None else as_vector("p0", p0)
        if start.shape[0] != law.n_params:
            raise ShapeError(f"p0 has {start.shape[0]} values; law {law.name} has {law.n_params}")
        if bounds is None:
            bounds = law.default_bounds
        check_start("p0", start, bounds)
        opts = solver_options(law.n_params, bounds=bounds, **common)  # type: ignore[arg-type]
        x_flat = np.array(x, dtype=np.float64, copy=True, order="C").reshape(-1)
        raw = _native.fit_law(law.name, x_flat, y, start, sig, opts)
        return build_result(raw, law.param_names, law=law.name, model=law.func)

    assert callable(f)
    jac_fn, scheme = _split_jac(jac)
    if isinstance(xdata, (list, tuple, np.ndarray)):
        # As SciPy does: array-like xdata becomes a float array (a private copy).
        xdata = as_array("xdata", xdata, check_finite)
    start = as_vector("p0", p0) if p0 is not None else feasible_start(_count_params(f), bounds)
    n = start.shape[0]
    check_start("p0", start, bounds)
    opts = solver_options(n, bounds=bounds, diff_scheme=scheme, **common)  # type: ignore[arg-type]
    names = default_names(n, param_names)
    raw = _native.curve_fit(f, xdata, y, start, sig, jac_fn, opts)
    return build_result(raw, names, model=f)


def _as_law(f: Any) -> Any:
    """The Law class for a law name or class; None for a plain callable."""
    from ..laws import Law, get_law

    if isinstance(f, str):
        return get_law(f)
    if isinstance(f, type) and issubclass(f, Law):
        return get_law(f)
    if not callable(f):
        raise InvalidInputError(f"f must be callable or a law name, got {type(f).__name__}")
    return None
