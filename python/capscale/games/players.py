"""Players: a capscale backend (model × precision), programmatic players and a scripted mock.

Every player has a ``name`` (recorded in the store) and ``respond(messages) -> str`` where
``messages`` is a chat history ``[{"role": "system"|"user"|"assistant", "content": str}]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import InvalidInputError
from .master import ContextOverflow

__all__ = ["BackendPlayer", "MockPlayer", "ProgrammaticPlayer", "format_messages"]


def format_messages(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The prompt text for ``messages``: the tokenizer's chat template with the generation
    prompt added (as clembench's HF backend does), or, when the tokenizer has no template, a
    plain transcript ``"role: content"`` per message followed by ``"assistant:"``."""
    template = getattr(tokenizer, "chat_template", None)
    if template:
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        return str(text)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    lines.append("assistant:")
    return "\n".join(lines)


class BackendPlayer:
    """A model player over a capscale generation backend (e.g. :class:`HFBackend`).

    Parameters
    ----------
    backend
        Any object with ``generate_until(list[GenerationRequest])``, ``tok_encode(text)``,
        ``max_length`` and (optionally) ``tokenizer``.
    name : str, optional
        Recorded name (default: the backend's class name).
    max_new_tokens : int, default 100
        clembench's default ``max_tokens``.
    temperature : float, default 0.0
        Only 0 (greedy, clembench's default) is supported.

    Raises
    ------
    ContextOverflow
        From :meth:`respond`, when the templated prompt plus ``max_new_tokens`` exceeds the
        backend's ``max_length`` (clembench aborts the episode then).
    """

    def __init__(
        self,
        backend: Any,
        name: str | None = None,
        *,
        max_new_tokens: int = 100,
        temperature: float = 0.0,
    ) -> None:
        if temperature != 0:
            raise InvalidInputError(
                f"temperature={temperature}: only greedy decoding (temperature 0) is supported"
            )
        if int(max_new_tokens) < 1:
            raise InvalidInputError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.backend = backend
        self.name = name or type(backend).__name__
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.last_prompt: str | None = None

    def respond(self, messages: list[dict[str, str]]) -> str:
        from ..eval.requests import GenerationRequest

        tok = getattr(self.backend, "tokenizer", None)
        prompt = format_messages(tok, messages)
        self.last_prompt = prompt
        n = len(self.backend.tok_encode(prompt))
        limit = int(self.backend.max_length)
        if n + self.max_new_tokens > limit:
            raise ContextOverflow(
                f"prompt of {n} tokens + max_new_tokens {self.max_new_tokens} exceeds the "
                f"context of {limit} tokens"
            )
        eos = getattr(tok, "eos_token", None) if tok is not None else None
        until = (eos,) if eos else ()
        if not getattr(tok, "chat_template", None):
            until = (*until, "\nuser:", "\nsystem:")
        req = GenerationRequest(prompt, until=until, max_new_tokens=self.max_new_tokens)
        (out,) = self.backend.generate_until([req])
        return str(out).strip()


class ProgrammaticPlayer:
    """A player computed by a function of the message history (clembench's programmatic
    players, e.g. a perfect guesser for tests or baselines)."""

    def __init__(self, fn: Callable[[list[dict[str, str]]], str], name: str = "programmatic"):
        self.fn = fn
        self.name = name

    def respond(self, messages: list[dict[str, str]]) -> str:
        return str(self.fn(messages))


class MockPlayer:
    """A scripted player: returns ``replies`` in order (for tests).

    An item that is an exception instance is raised instead of returned; running out of
    replies raises :class:`IndexError`. ``calls`` keeps the message histories received.
    """

    def __init__(self, replies: Iterable[str | BaseException], name: str = "mock") -> None:
        self.replies = list(replies)
        self.name = name
        self.calls: list[list[dict[str, str]]] = []

    def respond(self, messages: list[dict[str, str]]) -> str:
        self.calls.append(messages)
        k = len(self.calls) - 1
        if k >= len(self.replies):
            raise IndexError(f"mock player {self.name!r} has only {len(self.replies)} replies")
        r = self.replies[k]
        if isinstance(r, BaseException):
            raise r
        return r
