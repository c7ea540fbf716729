"""The ``needle`` task: retrieve a key's value from distractor text of a given token length.

Each prompt is::

    Read the text below and remember any secret code it mentions.\\n\\n
    <filler sentences, with "The secret code for <name> is <5 digits>." inserted>\\n\\n
    Question: What is the secret code for <name>?\\nAnswer: The secret code for <name> is

The needle goes before filler sentence ``round(depth × n_sentences)``: depth 0.0 puts it
first, 1.0 last (right before the question), 0.5 in the middle. The number of filler words
is the largest whose whole prompt has at most ``length_tokens`` tokens (exponential then
binary search, :func:`~capscale.eval.tasks.context.fit_words`; special tokens not counted).
The expected answer is the number; generation stops at a newline and is scored by
``exact_match`` (stripped) and ``numeric_match``.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from typing import Any

from ...errors import InvalidInputError
from .context import fit_words
from .filler import distractor_sentences
from .schema import MatchOptions, Task

__all__ = ["NEEDLE_VERSION", "needle"]

NEEDLE_VERSION = "2"

INSTRUCTION = "Read the text below and remember any secret code it mentions.\n\n"

_NAMES = (
    "Alice Bruno Clara Daniel Elena Felix Greta Hugo Irene Jonas Karla Leon Maria Nadia Oscar "
    "Paula Quentin Rosa Stefan Tamara Ulrich Vera Walter Xenia Yusuf Zora Amir Bianca Carlos "
    "Dmitri Emma Farid Gloria Henrik Ingrid Julian Kenji Lucia Marco Nora"
).split()


def _tokenizer_name(tokenizer: Any) -> str:
    """The tokenizer's hub id or folder name (not its absolute path: hashes stay portable)."""
    name = str(getattr(tokenizer, "name_or_path", "") or "").rstrip("/\\")
    return os.path.basename(name) if os.path.isabs(name) else name or type(tokenizer).__name__


def _prompt(sentences: list[str], needle: str, depth: float, name: str) -> tuple[str, int]:
    pos = round(depth * len(sentences))
    body = " ".join([*sentences[:pos], needle, *sentences[pos:]])
    # The answer is primed ("… is") so that base and instruction-tuned models alike complete
    # the number instead of opening with a line break (which the "\n" stop string would cut).
    question = (
        f"Question: What is the secret code for {name}?\nAnswer: The secret code for {name} is"
    )
    return INSTRUCTION + body + "\n\n" + question, pos


def needle(
    tokenizer: Any = None,
    length_tokens: int = 512,
    depth: float | Sequence[float] = 0.5,
    n: int = 10,
    seed: int = 0,
) -> Task:
    """Key–value retrieval at a chosen depth and prompt length in tokens.

    Parameters
    ----------
    tokenizer
        Object with ``encode(text) -> list[int]`` that measures lengths (the model's own
        tokenizer, usually). Required.
    length_tokens : int
        Largest prompt length in tokens; each prompt is filled as close to it as the filler's
        word granularity allows.
    depth : float or sequence of float
        Relative needle position(s) in [0, 1]; ``n`` documents per depth.
    n : int
        Documents per depth.
    seed : int
        Names, codes and filler streams.

    Returns
    -------
    Task
        Generation task; each document records ``name``, ``depth``, ``needle_sentence``
        (index among ``n_sentences``), ``_target_tokens``, ``_context_tokens`` and
        ``_filler_words``.

    Raises
    ------
    InvalidInputError
        No tokenizer, a depth outside [0, 1], or ``length_tokens`` below the prompt without
        filler.
    """
    if tokenizer is None or not hasattr(tokenizer, "encode"):
        raise InvalidInputError(
            "needle needs tokenizer= (an object with encode(text) -> list[int]) to measure "
            "prompt lengths in tokens"
        )
    if isinstance(length_tokens, bool) or not isinstance(length_tokens, int) or length_tokens < 1:
        raise InvalidInputError(f"length_tokens must be an int >= 1; got {length_tokens!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"n must be an int >= 1; got {n!r}")
    depths = [depth] if isinstance(depth, (int, float)) else list(depth)
    if not depths:
        raise InvalidInputError("depth must be a number or a non-empty list of numbers")
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d):
            raise InvalidInputError(f"depth must be a number in [0, 1]; got {d!r}")
        if not 0.0 <= d <= 1.0:
            raise InvalidInputError(f"depth must be in [0, 1]; got {d}")
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for d in depths:
        for _ in range(n):
            i = len(docs)
            name = rng.choice(_NAMES)
            code = rng.randrange(10_000, 100_000)
            needle_text = f"The secret code for {name} is {code}."
            fseed = seed * 1_000_003 + i

            def compose(
                w: int,
                d: float = float(d),
                name: str = name,
                nt: str = needle_text,
                fs: int = fseed,
            ) -> str:
                return _prompt(distractor_sentences(w, fs), nt, d, name)[0]

            w, n_tok = fit_words(compose, tokenizer, length_tokens)
            if w == 0 and n_tok > length_tokens:
                raise InvalidInputError(
                    f"length_tokens={length_tokens} is below the needle prompt without filler "
                    f"({n_tok} tokens)"
                )
            sentences = distractor_sentences(w, fseed)
            prompt, pos = _prompt(sentences, needle_text, float(d), name)
            docs.append(
                {
                    "id": f"needle{i}",
                    "prompt": prompt,
                    "answer": str(code),
                    "name": name,
                    "depth": float(d),
                    "needle_sentence": pos,
                    "n_sentences": len(sentences),
                    "_target_tokens": length_tokens,
                    "_context_tokens": n_tok,
                    "_filler_words": w,
                }
            )
    return Task(
        name="needle",
        version=NEEDLE_VERSION,
        kind="generation",
        docs=tuple(docs),
        until=("\n",),
        max_new_tokens=16,
        # the primed answer is a sentence ending: " 43936." is a correct retrieval
        exact_match=MatchOptions(ignore_punctuation=True),
        metadata={
            "generator": "needle",
            "length_tokens": length_tokens,
            "depth": [float(d) for d in depths],
            "n": n,
            "seed": seed,
            "tokenizer": _tokenizer_name(tokenizer),
        },
    )
