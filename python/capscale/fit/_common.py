"""Argument handling shared by the fitting functions: arrays, bounds, solver options, results."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from .. import _native
from ..errors import (
    ConvergenceWarning,
    InestimableWarning,
    InvalidInputError,
    NonFiniteError,
    ShapeError,
)
from .result import FitResult

LOSSES = ("linear", "huber", "soft_l1", "cauchy", "arctan")

#: Default ftol, xtol and gtol (the native core's defaults). Tolerances below machine
#: epsilon act as epsilon: the fit runs until no further progress is representable.
DEFAULT_TOL = 1e-15


def as_vector(name: str, value: Any, check_finite: bool = True) -> np.ndarray:
    """Convert to a contiguous 1-D float64 array (a private copy: the native solver reads it
    with the GIL released), naming ``name`` and the first bad index in errors."""
    arr = as_array(name, value, check_finite=False)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be 1-D, got shape {arr.shape}")
    if check_finite and not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise NonFiniteError(f"{name} contains a non-finite value ({arr[bad]}) at index {bad}")
    return arr


def as_array(name: str, value: Any, check_finite: bool = True) -> np.ndarray:
    """A private float64 copy of an array of any shape, naming ``name`` in errors."""
    if np.iscomplexobj(value):
        raise InvalidInputError(f"{name} must contain real numbers, got complex values")
    try:
        arr = np.array(value, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be an array of numbers: {exc}") from None
    if check_finite and not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{name} contains NaN or inf")
    return arr


def parse_bounds(bounds: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lb, ub)`` (scalars or arrays) or an object with ``lb``/``ub`` → two arrays of length n."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lb, ub = bounds.lb, bounds.ub
    else:
        try:
            lb, ub = bounds
        except (TypeError, ValueError):
            raise InvalidInputError("bounds must be a pair (lower, upper)") from None
    out = []
    for name, b in (("lower bound", lb), ("upper bound", ub)):
        try:
            arr = np.asarray(b, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{name} must be a number or an array of numbers") from None
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        if arr.shape != (n,):
            raise ShapeError(f"{name} must be a scalar or have length {n}, got shape {arr.shape}")
        if np.any(np.isnan(arr)):
            raise NonFiniteError(f"{name} contains NaN")
        out.append(np.ascontiguousarray(arr))
    lower, upper = out
    bad = np.flatnonzero(lower >= upper)
    if bad.size:
        j = int(bad[0])
        raise InvalidInputError(
            f"lower bound {lower[j]} must be < upper bound {upper[j]} for parameter {j}"
        )
    return lower, upper


def solver_options(
    n: int,
    *,
    bounds: Any = None,
    loss: str = "linear",
    f_scale: float = 1.0,
    ftol: float = DEFAULT_TOL,
    xtol: float = DEFAULT_TOL,
    gtol: float = DEFAULT_TOL,
    max_nfev: int | None = None,
    diff_scheme: str = "3-point",
    diff_step: float | None = None,
    x_scale: Any = "jac",
    geodesic: bool = False,
    absolute_sigma: bool = False,
) -> _native.SolverOptions:
    """Build the native solver settings (validated here, once)."""
    if loss not in LOSSES:
        from ..errors import UnknownNameError, did_you_mean

        hint = did_you_mean(str(loss), LOSSES)
        raise UnknownNameError(
            f"unknown loss {loss!r}; {hint + ' ' if hint else ''}known losses: {', '.join(LOSSES)}"
        )
    for name, tol in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        if not (_is_real(tol) and math.isfinite(tol) and tol >= 0):
            raise InvalidInputError(f"{name} must be a finite number >= 0, got {tol!r}")
    if not (_is_real(f_scale) and math.isfinite(f_scale) and f_scale > 0):
        raise InvalidInputError(f"f_scale must be a finite number > 0, got {f_scale!r}")
    if max_nfev is not None and not (isinstance(max_nfev, (int, np.integer)) and max_nfev >= 1):
        raise InvalidInputError(f"max_nfev must be an integer >= 1, got {max_nfev!r}")
    lower, upper = parse_bounds(bounds, n)
    scale = None
    if not (isinstance(x_scale, str) and x_scale == "jac"):
        xs = np.atleast_1d(np.asarray(x_scale, dtype=float)) if _is_numeric(x_scale) else None
        if xs is None or xs.ndim != 1 or xs.shape[0] not in (1, n):
            raise ShapeError(f"x_scale must be 'jac', a number or an array of length {n}")
        scale = [float(v) for v in np.broadcast_to(xs, (n,))]
    return _native.SolverOptions(
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        max_nfev=max_nfev,
        loss=loss,
        f_scale=f_scale,
        lower=lower.tolist() if np.isfinite(lower).any() else None,
        upper=upper.tolist() if np.isfinite(upper).any() else None,
        diff_scheme=diff_scheme,
        diff_step=diff_step,
        geodesic=geodesic,
        x_scale=scale,
        absolute_sigma=absolute_sigma,
    )


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_numeric(v: Any) -> bool:
    try:
        return np.asarray(v).dtype.kind in "iuf"
    except (TypeError, ValueError):
        return False


def feasible_start(n: int, bounds: Any) -> np.ndarray:
    """SciPy's default start inside ``bounds``: 1, lb + 1, ub − 1 or the midpoint."""
    lower, upper = parse_bounds(bounds, n)
    start = np.ones(n)
    lo, hi = np.isfinite(lower), np.isfinite(upper)
    both = lo & hi
    start[both] = 0.5 * (lower[both] + upper[both])
    start[lo & ~hi] = lower[lo & ~hi] + 1
    start[hi & ~lo] = upper[hi & ~lo] - 1
    return start


def check_start(name: str, x0: np.ndarray, bounds: Any) -> None:
    """Raise naming ``name`` (``x0`` or ``p0``) when the start lies outside ``bounds``."""
    lower, upper = parse_bounds(bounds, x0.shape[0])
    bad = np.flatnonzero((x0 < lower) | (x0 > upper))
    if bad.size:
        j = int(bad[0])
        lo, x, hi = (_num(v) for v in (lower[j], x0[j], upper[j]))
        raise InvalidInputError(f"{name}[{j}] = {x} is outside its bounds [{lo}, {hi}]")


def _num(v: float) -> str:
    """Shortest round-trip text of a float, without a trailing '.0' (as the core prints)."""
    return str(np.format_float_positional(v, trim="-")) if math.isfinite(v) else str(v)


def build_result(
    raw: dict[str, Any],
    param_names: Sequence[str],
    *,
    law: str | None = None,
    model: Callable[..., Any] | None = None,
    warn: bool = True,
) -> FitResult:
    """Turn the native report into a :class:`FitResult`, warning about what needs attention."""
    x = raw["x"]
    fun = raw["fun"]
    m, n = fun.shape[0], x.shape[0]
    with np.errstate(over="ignore"):
        chisqr = float(fun @ fun)
    dof = m - n
    redchi = chisqr / dof if dof > 0 else math.inf
    if chisqr > 0:
        aic = m * math.log(chisqr / m) + 2 * n
        bic = m * math.log(chisqr / m) + math.log(m) * n
    else:
        aic = bic = -math.inf
    cov = raw["cov"]
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    names = tuple(param_names)
    inestimable = tuple(names[i] for i in raw["inestimable"])
    if warn and inestimable:
        warnings.warn(
            f"the Jacobian has rank {raw['rank']} < {n} at the solution: "
            f"{', '.join(inestimable)} cannot be estimated (stderr = inf); the other "
            "parameters' covariance is conditional on them",
            InestimableWarning,
            stacklevel=3,
        )
    elif warn and dof <= 0 and not np.all(np.isfinite(cov)):
        warnings.warn(
            f"{m} points for {n} parameters leave no degrees of freedom: the covariance "
            "cannot be estimated (inf); pass absolute_sigma=True with known sigma",
            InestimableWarning,
            stacklevel=3,
        )
    if warn and not raw["success"]:
        warnings.warn(
            f"the fit did not converge (status {raw['status']}): {raw['message']}",
            ConvergenceWarning,
            stacklevel=3,
        )
    for arr in (x, cov, stderr, fun, raw["jac"]):
        arr.setflags(write=False)
    return FitResult(
        x=x,
        params=MappingProxyType({k: float(v) for k, v in zip(names, x, strict=True)}),
        cov=cov,
        stderr=stderr,
        fun=fun,
        jac=raw["jac"],
        cost=float(raw["cost"]),
        chisqr=chisqr,
        redchi=redchi,
        aic=aic,
        bic=bic,
        nfev=int(raw["nfev"]),
        njev=int(raw["njev"]),
        status=int(raw["status"]),
        message=str(raw["message"]),
        success=bool(raw["success"]),
        optimality=float(raw["optimality"]),
        rank=int(raw["rank"]),
        inestimable=inestimable,
        active_bounds=tuple(names[i] for i in raw["active_bounds"]),
        nobs=m,
        law=law,
        model=model,
    )


def default_names(n: int, given: Sequence[str] | None) -> tuple[str, ...]:
    """Parameter names: the given ones (length-checked) or ``p0 … p{n-1}``."""
    if given is None:
        return tuple(f"p{i}" for i in range(n))
    names = tuple(given)
    if len(names) != n:
        raise ShapeError(f"param_names has {len(names)} names for {n} parameters")
    return names
