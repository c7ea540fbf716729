"""Argument checks shared by the fitting and statistics APIs (clear errors before native calls)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidInputError


def check_seed(seed: Any) -> int:
    """A seed for the native random streams: an integer in ``[0, 2**64)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidInputError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise InvalidInputError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


def check_count(name: str, value: Any, minimum: int) -> int:
    """An integer count ``>= minimum`` (e.g. ``n_resamples``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {type(value).__name__}")
    if int(value) < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_level(level: Any, owner: str = "") -> float:
    """A confidence level: a real number in (0, 1) (NumPy scalars accepted)."""
    prefix = f"{owner}: " if owner else ""
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float, np.number)):
        raise InvalidInputError(f"{prefix}ci must be a number in (0, 1), got {level!r}")
    value = float(level)
    if not 0.0 < value < 1.0:
        raise InvalidInputError(f"{prefix}ci must be in (0, 1), got {level!r}")
    return value
