"""The backend contract: three request kinds in, one result per request out, in order.

It is lm-evaluation-harness's ``LM`` contract over capscale's request dataclasses
(:mod:`capscale.eval.requests`). This module imports no torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ..requests import GenerationRequest, LoglikelihoodRequest, RollingRequest

__all__ = ["Backend"]


class Backend(ABC):
    """A language model that answers evaluation requests.

    Every method returns one result per request, in the order of the requests.
    """

    @abstractmethod
    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], *, progress: bool = False
    ) -> list[tuple[float, bool]]:
        """Per request: (summed log-probability of the continuation given the context,
        whether greedy decoding would produce exactly the continuation)."""

    @abstractmethod
    def loglikelihood_rolling(
        self, requests: Sequence[RollingRequest], *, progress: bool = False
    ) -> list[float]:
        """Per request: the summed log-probability of the whole text (rolling windows)."""

    @abstractmethod
    def generate_until(
        self, requests: Sequence[GenerationRequest], *, progress: bool = False
    ) -> list[str]:
        """Per request: the greedy continuation, cut before the first stop string."""

    @property
    @abstractmethod
    def max_length(self) -> int:
        """The longest token sequence the backend feeds the model (the context window)."""
