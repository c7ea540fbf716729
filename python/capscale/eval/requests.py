"""Request types understood by every evaluation backend.

The three request kinds mirror lm-evaluation-harness 0.4.x: scoring a
continuation given a context, scoring a whole text with rolling windows, and
greedy generation until a stop string.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GenerationRequest", "LoglikelihoodRequest", "RollingRequest"]


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` given ``context`` (log-probability and greedy flag)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class RollingRequest:
    """Score the whole of ``text`` with rolling windows (perplexity)."""

    text: str


@dataclass(frozen=True)
class GenerationRequest:
    """Greedily continue ``context`` until a stop string or ``max_new_tokens``."""

    context: str
    until: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 64
