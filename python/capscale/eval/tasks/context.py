"""Context length as an axis: pad any task's prompts with distractor text to a token length.

Rule (:func:`pad_to_length`): for each document, the filler is the first ``w`` words of a
deterministic distractor stream, inserted with ``separator`` (default ``"\\n\\n"``) after it,
either before everything (``position="before"``: filler, separator, description, shots,
question) or right before the question (``position="question"``: description, shots, filler,
separator, question). ``w`` is the largest word count found by an exponential then binary
search such that ``count_tokens(tokenizer, context) <= target_tokens``. Token counts exclude
special tokens (``add_special_tokens=False`` when the tokenizer takes it), so a backend that
adds BOS sees one token more. The padded context never exceeds the target; when token counts
grow monotonically with ``w`` (true in practice for word-level filler and BPE tokenizers) it
is the closest length from below. A prompt already at or above the target is left as it is.

Each document records ``_target_tokens``, ``_context_tokens`` (achieved), ``_pad_words``,
and, when padded, ``_pad_text`` (filler plus separator, exactly as inserted) and
``_pad_position``. The task keeps its name; its version gains ``+pad<target>`` (so its
content hash changes) and its metadata records ``pad_target_tokens`` and ``pad_position``.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ...errors import InvalidInputError, did_you_mean
from .filler import distractor_text
from .schema import Task

__all__ = [
    "PAD_KEYS",
    "POSITIONS",
    "RegexTokenizer",
    "Tokenizer",
    "count_tokens",
    "fit_words",
    "pad_to_length",
    "strip_padding",
]

#: Where padding goes.
POSITIONS = ("before", "question")
#: Document keys written by :func:`pad_to_length` (removed before padding again).
PAD_KEYS = ("_pad_text", "_pad_position", "_pad_words", "_target_tokens", "_context_tokens")
_META_KEYS = ("pad_base_version", "pad_target_tokens", "pad_position")


class Tokenizer(Protocol):
    """Anything with ``encode(text) -> list[int]`` (HF tokenizers included)."""

    def encode(self, text: str, /) -> Sequence[int]: ...


class RegexTokenizer:
    """A fast deterministic stand-in tokenizer: one token per word or punctuation mark.

    Tokens are the matches of ``\\w+|[^\\w\\s]``; whitespace is free. Ids are CRC-32 hashes,
    so ``encode`` is stable across runs. Meant for tests and dry runs, not for models.
    """

    _TOKEN = re.compile(r"\w+|[^\w\s]")

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text`` (``add_special_tokens`` is accepted and ignored)."""
        return [zlib.crc32(m.group(0).encode("utf-8")) for m in self._TOKEN.finditer(text)]


def count_tokens(tokenizer: Any, text: str) -> int:
    """Number of tokens of ``text``, without special tokens where the tokenizer allows.

    Calls ``tokenizer.encode(text, add_special_tokens=False)``, falling back to
    ``tokenizer.encode(text)`` when that keyword is not accepted; an ``Encoding`` with
    ``.ids`` (the ``tokenizers`` library) is counted by its ids.
    """
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    if hasattr(ids, "ids"):
        ids = ids.ids
    return len(ids)


Filler = Callable[[int, int], str]


def _make_filler(filler: Callable[[int], str] | str | None, seed: int) -> Filler:
    """``fill(n_words, doc_index) -> str``."""
    if filler is None:
        return lambda n, i: distractor_text(n, seed=seed * 1_000_003 + i)
    if isinstance(filler, str):
        words = filler.split()
        if not words:
            raise InvalidInputError("filler text has no words")
        return lambda n, i: " ".join(words[j % len(words)] for j in range(n))
    if callable(filler):
        user = filler
        return lambda n, i: str(user(n))
    raise InvalidInputError(f"filler must be None, a string or a callable; got {filler!r}")


def fit_words(compose: Callable[[int], str], tokenizer: Any, target_tokens: int) -> tuple[int, int]:
    """Largest ``w`` with ``count_tokens(compose(w)) <= target_tokens``, and that count.

    ``compose(0)`` is the unpadded text; when it is already at or over the target the answer
    is ``(0, its count)``. Otherwise an exponential search (starting near
    ``0.75 × missing tokens`` words) brackets the target and a binary search narrows it; the
    returned ``w`` always fits. Searches at most ``64 × target + 64`` words.
    """
    n0 = count_tokens(tokenizer, compose(0))
    best_w, best_n = 0, n0
    if n0 >= target_tokens:
        return best_w, best_n
    max_words = 64 * target_tokens + 64
    hi = max(1, (target_tokens - n0) * 3 // 4)
    while hi <= max_words:  # grow until over the target
        n = count_tokens(tokenizer, compose(hi))
        if n > target_tokens:
            break
        best_w, best_n = hi, n
        hi *= 2
    hi = min(hi, max_words + 1)
    lo = best_w
    while hi - lo > 1:  # invariant: lo fits (or is 0), hi does not
        mid = (lo + hi) // 2
        n = count_tokens(tokenizer, compose(mid))
        if n <= target_tokens:
            lo, best_w, best_n = mid, mid, n
        else:
            hi = mid
    return best_w, best_n


def strip_padding(task: Task) -> Task:
    """``task`` without any padding from :func:`pad_to_length` (its original version back)."""
    meta = dict(task.metadata)
    if "pad_base_version" not in meta and not any(k in d for d in task.docs for k in PAD_KEYS):
        return task
    version = str(meta.get("pad_base_version", task.version))
    for key in _META_KEYS:
        meta.pop(key, None)
    docs = tuple({k: v for k, v in d.items() if k not in PAD_KEYS} for d in task.docs)
    return dataclasses.replace(task, version=version, docs=docs, metadata=meta)


def pad_to_length(
    task: Task,
    tokenizer: Any,
    target_tokens: int,
    position: str = "before",
    filler: Callable[[int], str] | str | None = None,
    *,
    seed: int = 0,
    separator: str = "\n\n",
) -> Task:
    """A copy of ``task`` whose contexts are padded to about ``target_tokens`` tokens.

    Parameters
    ----------
    task : Task
        A multiple-choice or generation task (perplexity tasks have no prompt to pad).
        Earlier padding is removed first.
    tokenizer
        Any object with ``encode(text) -> list[int]``; see :func:`count_tokens`.
    target_tokens : int
        Largest number of tokens of each full context (description, shots, filler, question).
    position : {"before", "question"}
        Filler at the very start, or between the shots and the question.
    filler : callable, str or None
        ``filler(n_words) -> str`` (the same text for every document), a text whose words
        are cycled, or ``None`` for :func:`~capscale.eval.tasks.filler.distractor_text` with
        a seed per document derived from ``seed``.
    seed : int
        Seed of the default filler.
    separator : str
        Inserted after the filler.

    Returns
    -------
    Task
        Same name, version ``<version>+pad<target_tokens>``, annotated documents (see the
        module docstring for the exact rule and keys).
    """
    if task.kind == "perplexity":
        raise InvalidInputError(
            "perplexity tasks have no prompt to pad; vary the backend's window length instead"
        )
    if isinstance(target_tokens, bool) or not isinstance(target_tokens, int) or target_tokens < 1:
        raise InvalidInputError(f"target_tokens must be an int >= 1; got {target_tokens!r}")
    if position not in POSITIONS:
        hint = did_you_mean(str(position), POSITIONS)
        raise InvalidInputError(
            f"unknown position {position!r}; "
            + (hint + " " if hint else "")
            + "Known: "
            + ", ".join(POSITIONS)
        )
    fill = _make_filler(filler, seed)
    base = strip_padding(task)
    new_docs: list[dict[str, Any]] = []
    for i, doc in enumerate(base.docs):
        ctx0 = base.context(i)
        text = base.doc_text(doc)
        head = ctx0[: len(ctx0) - len(text)]

        def compose(
            w: int, i: int = i, ctx0: str = ctx0, head: str = head, text: str = text
        ) -> str:
            if w == 0:
                return ctx0
            pad = fill(w, i) + separator
            return pad + ctx0 if position == "before" else head + pad + text

        record: dict[str, Any] = {**doc, "_target_tokens": target_tokens}
        best_w, best_n = fit_words(compose, tokenizer, target_tokens)
        if best_w > 0:
            record["_pad_text"] = fill(best_w, i) + separator
            record["_pad_position"] = position
        record["_pad_words"] = best_w
        record["_context_tokens"] = best_n
        new_docs.append(record)
    meta = {
        **base.metadata,
        "pad_base_version": base.version,
        "pad_target_tokens": target_tokens,
        "pad_position": position,
    }
    return dataclasses.replace(
        base, version=f"{base.version}+pad{target_tokens}", docs=tuple(new_docs), metadata=meta
    )
