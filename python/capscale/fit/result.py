"""Frozen result objects of capscale's fitting functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["STATUS_MESSAGES", "FitResult"]

#: Meaning of each status code (SciPy's ``least_squares`` codes plus capscale's negatives).
STATUS_MESSAGES: Mapping[int, str] = {
    0: "the evaluation budget (max_nfev) was exhausted",
    1: "gtol: the gradient is orthogonal to the residuals",
    2: "ftol: the relative cost reduction fell below ftol",
    3: "xtol: the relative step fell below xtol",
    4: "ftol and xtol both satisfied",
    -1: "bad input",
    -3: "plateau: a Jacobian column vanished, the result is not a trustworthy minimum",
    -4: "non-finite residuals or Jacobian",
}


@dataclass(frozen=True)
class FitResult:
    """Outcome of a least-squares fit, like SciPy's ``OptimizeResult`` but typed and frozen.

    Attributes
    ----------
    x : ndarray, shape (n,)
        Best-fit parameters.
    params : Mapping[str, float]
        Parameter name → value.
    cov : ndarray, shape (n, n)
        Parameter covariance (scaled by the reduced χ² unless ``absolute_sigma``); ``inf``
        rows/columns for inestimable parameters.
    stderr : ndarray, shape (n,)
        Standard errors ``sqrt(diag(cov))``.
    fun : ndarray, shape (m,)
        Residuals at ``x`` (weighted by ``1/sigma`` for curve fits), before the robust loss.
    jac : ndarray, shape (m, n)
        Jacobian of the (loss-transformed) residuals at ``x``.
    cost : float
        Robust cost ``½·C²·Σρ((r/C)²)``; ``½·Σr²`` for the linear loss.
    chisqr, redchi : float
        ``Σ fun²`` and ``chisqr / (m − n)``.
    aic, bic : float
        Akaike and Bayesian information criteria from ``chisqr`` (as lmfit defines them).
    nfev, njev : int
        Residual evaluations (finite-difference evaluations excluded) and Jacobian evaluations.
    status : int
        SciPy's codes (0 max_nfev, 1 gtol, 2 ftol, 3 xtol, 4 ftol+xtol) or capscale's negatives
        (−3 plateau / vanishing Jacobian column, −4 non-finite values).

    The result is immutable: ``params`` is a read-only mapping and the arrays are read-only.
    message : str
        Why the solver stopped.
    success : bool
        True only for convergence to a trustworthy minimum (status 1–4).
    """

    x: np.ndarray
    params: Mapping[str, float]
    cov: np.ndarray
    stderr: np.ndarray
    fun: np.ndarray
    jac: np.ndarray
    cost: float
    chisqr: float
    redchi: float
    aic: float
    bic: float
    nfev: int
    njev: int
    status: int
    message: str
    success: bool
    optimality: float = 0.0
    rank: int = 0
    inestimable: tuple[str, ...] = ()
    active_bounds: tuple[str, ...] = ()
    nobs: int = 0
    law: str | None = None
    model: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the parameters, in order."""
        return tuple(self.params)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Unpack like SciPy's ``curve_fit``: ``popt, pcov = capscale.fit.curve_fit(...)``."""
        return iter((self.x, self.cov))

    def predict(self, x: Any) -> np.ndarray:
        """Evaluate the fitted model at inputs ``x`` (same layout as the fitted ``xdata``)."""
        if self.model is None:
            raise TypeError("this result has no model to evaluate (it came from least_squares)")
        return np.asarray(self.model(x, *self.x), dtype=np.float64)

    def summary(self) -> str:
        """A readable table of the fit: status, statistics and each parameter ± stderr."""
        title = f"Fit of {self.law}" if self.law else "Least-squares fit"
        flag = "converged" if self.success else "NOT CONVERGED"
        lines = [
            f"{title}: {flag} (status {self.status}: {self.message})",
            f"  points {self.nobs}, parameters {len(self.x)}, nfev {self.nfev}, njev {self.njev}",
            f"  cost {self.cost:.10g}   chisqr {self.chisqr:.6g}   redchi {self.redchi:.6g}",
            f"  aic {self.aic:.6g}   bic {self.bic:.6g}",
            "",
            f"  {'parameter':<12} {'value':>16} {'stderr':>14} {'rel. err':>10}",
        ]
        for i, (name, value) in enumerate(self.params.items()):
            se = float(self.stderr[i])
            rel = abs(se / value) if value != 0 and math.isfinite(se) else math.inf
            note = "  (at bound)" if name in self.active_bounds else ""
            lines.append(f"  {name:<12} {value:>16.8g} {se:>14.6g} {rel:>10.2%}{note}")
        if self.inestimable:
            lines.append(f"  inestimable: {', '.join(self.inestimable)} (stderr = inf)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
