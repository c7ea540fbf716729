"""capscale: how a language model's capability changes with its characteristics.

Evaluate, aggregate with honest uncertainty, and fit scaling laws on a native
Levenberg–Marquardt solver. Importing capscale never imports torch or transformers.

>>> import capscale
>>> fit = capscale.fit.curve_fit("saturating_power_law", n_params, loss)  # doctest: +SKIP
>>> print(fit.summary())  # doctest: +SKIP
"""

from . import errors, fit, laws, stats
from ._native import __version__

__all__ = ["__version__", "errors", "fit", "laws", "stats"]
