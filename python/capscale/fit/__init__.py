"""Nonlinear least squares on capscale's native Levenberg–Marquardt solver.

SciPy's argument names (``x0``, ``bounds``, ``sigma``, ``absolute_sigma``, ``loss``,
``f_scale``, ``ftol``, ``xtol``, ``gtol``, ``max_nfev``) and a frozen :class:`FitResult`.
"""

from .api import curve_fit, least_squares
from .batch import (
    BatchFit,
    BootstrapFit,
    MultiStartFit,
    bootstrap_fit,
    bootstrap_indices,
    fit_many,
    hoffmann_grid,
    multi_start,
)
from .result import STATUS_MESSAGES, FitResult

__all__ = [
    "STATUS_MESSAGES",
    "BatchFit",
    "BootstrapFit",
    "FitResult",
    "MultiStartFit",
    "bootstrap_fit",
    "bootstrap_indices",
    "curve_fit",
    "fit_many",
    "hoffmann_grid",
    "least_squares",
    "multi_start",
]
