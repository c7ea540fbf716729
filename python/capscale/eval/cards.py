"""Model cards: the characteristics a capability is related to (parameters, training tokens and
compute, family, release date, context length)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InvalidInputError

__all__ = ["ModelCard"]


@dataclass(frozen=True)
class ModelCard:
    """What is known about a model.

    Attributes
    ----------
    name : str
        Unique name (a Hugging Face id, a file name, a label).
    family : str, optional
        Model family (``"smollm2"``, ``"pythia"`` …).
    n_params : int, optional
        Parameters, counted from the loaded model (shared tensors once).
    n_params_non_embedding : int, optional
        Parameters without the input embedding and an untied output head.
    training_tokens : int, optional
        Training tokens (user supplied).
    training_flops : float, optional
        Training compute in FLOPs; user supplied, else ``6·N·D`` with N the non-embedding
        parameters when both are known (Kaplan et al.'s approximation; ``flops_source`` says
        which).
    release_date : str, optional
        ISO date ``YYYY-MM-DD``.
    context_length : int, optional
        Trained context length in tokens (from the model's config).
    license : str, optional
    extra : dict
        Anything else (stored as JSON).
    """

    name: str
    family: str | None = None
    n_params: int | None = None
    n_params_non_embedding: int | None = None
    training_tokens: int | None = None
    training_flops: float | None = None
    release_date: str | None = None
    context_length: int | None = None
    license: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError("a model card needs a non-empty name")
        if self.release_date is not None:
            try:
                _dt.date.fromisoformat(str(self.release_date))
            except ValueError:
                raise InvalidInputError(
                    f"release_date must be an ISO date YYYY-MM-DD, got {self.release_date!r}"
                ) from None
        for f in ("n_params", "n_params_non_embedding", "training_tokens", "context_length"):
            v = getattr(self, f)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise InvalidInputError(f"{f} must be a non-negative int, got {v!r}")
        if self.training_flops is not None and not self.training_flops >= 0:
            raise InvalidInputError(f"training_flops must be >= 0, got {self.training_flops!r}")

    @classmethod
    def from_backend(cls, backend: Any, name: str, **known: Any) -> ModelCard:
        """A card for a loaded backend: parameters counted from the model, context length
        from its config; ``known`` fields (family, training_tokens, training_flops,
        release_date, license, extra …) supplied by the user (parameter counts given there
        are replaced by the counted ones). FLOPs default to 6·N·D."""
        total, non_emb = backend.count_parameters()
        # counted from the loaded model: they win over user-supplied figures (which a sweep
        # file may give for the Ray executor's memory estimate before anything is loaded)
        known.pop("n_params", None)
        known.pop("n_params_non_embedding", None)
        cfg = backend.model.config
        ctx = None
        for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
            if getattr(cfg, attr, None):
                ctx = int(getattr(cfg, attr))
                break
        card = cls(
            name=name,
            n_params=total,
            n_params_non_embedding=non_emb,
            context_length=known.pop("context_length", ctx),
            **known,
        )
        return card.with_estimated_flops()

    def with_estimated_flops(self) -> ModelCard:
        """Fill ``training_flops`` with ``6·N·D`` (N non-embedding parameters, D training
        tokens) when it is missing and both are known."""
        if self.training_flops is not None or not self.training_tokens:
            return self
        n = self.n_params_non_embedding or self.n_params
        if not n:
            return self
        extra = {**self.extra, "flops_source": "6ND"}
        return replace(self, training_flops=6.0 * n * self.training_tokens, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The card as the store's ``models`` row expects it."""
        return asdict(self)
