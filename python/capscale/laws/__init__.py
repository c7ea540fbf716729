"""Parametric laws of capability: registered classes with a NumPy model, analytic Jacobian,
data-driven starting point and default bounds.

Built-in laws (registry name: formula, parameters in order):

- ``power_law``: ``y = a * x**(-b)``; ``(a, b)``
- ``saturating_power_law``: ``y = a * x**(-b) + c``; ``(a, b, c)``
- ``chinchilla``: ``L = E + A / N**alpha + B / D**beta``; ``(E, A, B, alpha, beta)``,
  ``x`` of shape ``(2, m)`` with rows ``(N, D)``
- ``chinchilla_lse``: ``log L = LSE(a - alpha log N, b - beta log D, e)``;
  ``(a, b, e, alpha, beta)``
- ``logistic4``: ``y = c / (1 + exp(-k (x - x0))) + d``; ``(c, k, x0, d)``
- ``exponential``: ``y = a * exp(b x)``; ``(a, b)``
- ``log_linear``: ``y = a + b ln x``; ``(a, b)``

Examples
--------
>>> import numpy as np
>>> from capscale.laws import get_law
>>> law = get_law("power_law")
>>> law.param_names
('a', 'b')
>>> law.func(np.array([1.0, 4.0]), 2.0, 0.5)
array([2., 1.])
"""

from .base import Law, get_law, list_laws, register_law
from .basic import (
    Exponential,
    Logistic4,
    LogLinear,
    PowerLaw,
    SaturatingPowerLaw,
    doubling_time,
)
from .chinchilla import Chinchilla, ChinchillaLSE, hoffmann_grid

__all__ = [
    "Chinchilla",
    "ChinchillaLSE",
    "Exponential",
    "Law",
    "LogLinear",
    "Logistic4",
    "PowerLaw",
    "SaturatingPowerLaw",
    "doubling_time",
    "get_law",
    "hoffmann_grid",
    "list_laws",
    "register_law",
]
