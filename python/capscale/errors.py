"""Exceptions and warnings raised by capscale, from Python and from the native core.

Every error derives from :class:`CapscaleError`, and also from the built-in exception a
caller would expect (``ValueError`` for bad input, ``KeyError`` for an unknown name,
``RuntimeError`` for a failed fit), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CapscaleError",
    "CapscaleWarning",
    "ClusterError",
    "ContextLengthWarning",
    "ConvergenceWarning",
    "FitError",
    "FormatError",
    "InestimableWarning",
    "InvalidInputError",
    "MissingDependencyError",
    "NonFiniteError",
    "ShapeError",
    "UnknownNameError",
    "did_you_mean",
]


class CapscaleError(Exception):
    """Base class of every exception raised by capscale."""


class InvalidInputError(CapscaleError, ValueError):
    """An argument has a value the function cannot accept (domain, range, type of data)."""


class ShapeError(InvalidInputError):
    """An array argument has the wrong number of dimensions or the wrong length."""


class NonFiniteError(InvalidInputError):
    """An array argument contains NaN or infinity where finite values are required."""


class FormatError(CapscaleError, ValueError):
    """A file or buffer does not follow the format it claims (truncated, bad header, ...)."""


class MissingDependencyError(CapscaleError, ImportError):
    """An optional dependency (torch, transformers, safetensors, gguf) is not installed."""


class UnknownNameError(CapscaleError, KeyError):
    """A name looked up in a registry (law, format, backend, task) is not registered.

    Unlike ``KeyError``, ``str()`` gives the message as written, not its ``repr()``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FitError(CapscaleError, RuntimeError):
    """A fit could not be carried out at all (not merely "did not converge")."""


class ClusterError(CapscaleError, ConnectionError):
    """A distributed executor's cluster cannot be reached or cannot run the work."""


class CapscaleWarning(UserWarning):
    """Base class of every warning issued by capscale."""


class InestimableWarning(CapscaleWarning):
    """A quantity (covariance, standard error, interval) cannot be estimated from the data."""


class ContextLengthWarning(CapscaleWarning):
    """An evaluation runs past the context length the model was trained for (recorded, not
    refused: that is what a context-length sweep measures)."""


class ConvergenceWarning(CapscaleWarning):
    """An iterative procedure stopped before meeting its convergence criteria."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Suggest the closest registered names to a misspelt one.

    Parameters
    ----------
    name : str
        The name that was not found.
    choices : iterable of str
        The known names.

    Returns
    -------
    str
        ``"did you mean 'x'?"`` (or ``"did you mean 'x' or 'y'?"``) when close matches exist,
        else ``""``. Callers build messages such as
        ``"unknown law 'powr_law'; did you mean 'power_law'? Known: ..."``.
    """
    matches = difflib.get_close_matches(str(name), list(choices), n=2, cutoff=0.6)
    if not matches:
        return ""
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"
