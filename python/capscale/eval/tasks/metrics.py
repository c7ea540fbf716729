"""Per-document metrics and corpus aggregations, defined as lm-evaluation-harness 0.4.13 does.

Multiple choice (``ConfigurableTask.process_results``, ``output_type: multiple_choice``):

- ``acc``: ``argmax(lls) == gold``, ``lls`` the summed log-probability of
  ``target_delimiter + choice`` after the context (natural log, one float per choice);
- ``acc_norm``: ``argmax(lls / len(choice))``, the length in **characters**, delimiter not
  included;
- ``acc_bytes``: ``argmax(lls / len(choice.encode("utf-8")))``.

``np.argmax`` returns the first maximum, so ties go to the first choice. ``gold`` may be an
index, a choice string (its first occurrence) or a list of indices (any of them is correct).

Generation: ``exact_match`` is lm-eval's ``exact_match_hf_evaluate`` for one prediction
(``regexes_to_ignore``, ``ignore_case``, ``ignore_punctuation``, ``ignore_numbers`` in that
order) plus an optional ``strip`` of surrounding whitespace applied first (lm-eval tasks do
that with a filter). ``numeric_match`` (capscale's own) compares the first number in the
output with the first number in the target.

Perplexity (``loglikelihood_rolling``): a document contributes ``(loglikelihood, n_words)``
and ``(loglikelihood, n_bytes)``; the corpus values are ratios of sums (lm-eval's
``weighted_mean``), never means of per-document ratios.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

import numpy as np

from ...errors import InvalidInputError

__all__ = [
    "MEAN_METRICS",
    "PERPLEXITY_METRICS",
    "aggregate",
    "bits_per_byte",
    "byte_perplexity",
    "count_bytes",
    "count_words",
    "exact_match",
    "first_number",
    "multiple_choice_scores",
    "numeric_match",
    "resolve_gold",
    "word_perplexity",
]

#: Metrics whose corpus value is the mean of the per-document values (each 0.0 or 1.0).
MEAN_METRICS = ("acc", "acc_norm", "acc_bytes", "exact_match", "numeric_match")
#: Corpus metrics computed from per-document ``loglikelihood``, ``n_words``, ``n_bytes``.
PERPLEXITY_METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")

Gold = int | str | Sequence[int]

_NUMBER = re.compile(r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?")
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)
_DIGIT_TABLE = str.maketrans("", "", string.digits)


def resolve_gold(gold: Gold, choices: Sequence[str]) -> tuple[int, ...]:
    """Turn a multiple-choice target into the tuple of correct choice indices.

    Parameters
    ----------
    gold : int, str or sequence of int
        An index into ``choices``, a choice string (its first occurrence counts, as
        ``list.index``), or several correct indices.
    choices : sequence of str
        The answer options.

    Returns
    -------
    tuple of int
        One index for int/str gold, every index for a list.

    Raises
    ------
    InvalidInputError
        An index outside ``[0, len(choices))``, a string that is not a choice, an empty
        list, or a value of another type. (lm-eval turns these into -100 with a warning, so
        the document always scores 0; capscale refuses them instead.)
    """
    n = len(choices)
    if isinstance(gold, bool):
        raise InvalidInputError(f"answer must be an int, a str or a list of ints; got {gold!r}")
    if isinstance(gold, int):
        if not 0 <= gold < n:
            raise InvalidInputError(
                f"answer index {gold} is out of range for {n} choices (valid: 0..{n - 1})"
            )
        return (gold,)
    if isinstance(gold, str):
        if gold not in choices:
            raise InvalidInputError(f"answer {gold!r} is not one of the choices {list(choices)!r}")
        return (list(choices).index(gold),)
    if isinstance(gold, Sequence) and not isinstance(gold, (str, bytes)):
        if len(gold) == 0:
            raise InvalidInputError("answer list is empty; give at least one correct index")
        out = []
        for g in gold:
            if isinstance(g, bool) or not isinstance(g, int):
                raise InvalidInputError(f"answer list must hold ints; got {g!r}")
            if not 0 <= g < n:
                raise InvalidInputError(
                    f"answer index {g} is out of range for {n} choices (valid: 0..{n - 1})"
                )
            out.append(g)
        return tuple(out)
    raise InvalidInputError(f"answer must be an int, a str or a list of ints; got {gold!r}")


def multiple_choice_scores(
    lls: Sequence[float], choices: Sequence[str], gold: Gold
) -> dict[str, float]:
    """``acc``, ``acc_norm`` and ``acc_bytes`` of one multiple-choice document.

    Parameters
    ----------
    lls : sequence of float, shape (n_choices,)
        Summed log-probability (nats) of ``target_delimiter + choice`` for each choice.
    choices : sequence of str, shape (n_choices,)
        The choice strings, without the delimiter (their lengths normalise ``lls``).
    gold : int, str or sequence of int
        See :func:`resolve_gold`.

    Returns
    -------
    dict
        ``{"acc": 0.0|1.0, "acc_norm": ..., "acc_bytes": ...}``.
    """
    if len(lls) != len(choices):
        raise InvalidInputError(
            f"got {len(lls)} log-likelihoods for {len(choices)} choices; need one per choice"
        )
    golds = resolve_gold(gold, choices)
    ll = np.asarray(lls, dtype=np.float64)
    n_chars = np.array([float(len(c)) for c in choices])
    n_bytes = np.array([float(len(c.encode("utf-8"))) for c in choices])
    pred = int(np.argmax(ll))
    pred_norm = int(np.argmax(ll / n_chars))
    pred_bytes = int(np.argmax(ll / n_bytes))
    return {
        "acc": 1.0 if pred in golds else 0.0,
        "acc_norm": 1.0 if pred_norm in golds else 0.0,
        "acc_bytes": 1.0 if pred_bytes in golds else 0.0,
    }


def exact_match(
    prediction: str,
    reference: str,
    *,
    strip: bool = False,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
    regexes_to_ignore: Iterable[str] = (),
) -> float:
    """1.0 when ``prediction`` equals ``reference`` after the requested normalisations.

    The steps run in lm-eval's order: ``strip`` (capscale), each regex removed, lower case,
    punctuation (``string.punctuation``) removed, digits removed.
    """
    pred, ref = prediction, reference
    if strip:
        pred, ref = pred.strip(), ref.strip()
    for pattern in regexes_to_ignore:
        pred, ref = re.sub(pattern, "", pred), re.sub(pattern, "", ref)
    if ignore_case:
        pred, ref = pred.lower(), ref.lower()
    if ignore_punctuation:
        pred, ref = pred.translate(_PUNCT_TABLE), ref.translate(_PUNCT_TABLE)
    if ignore_numbers:
        pred, ref = pred.translate(_DIGIT_TABLE), ref.translate(_DIGIT_TABLE)
    return 1.0 if pred == ref else 0.0


def first_number(text: str) -> Decimal | None:
    """The first number in ``text`` (optional sign, ``1,234`` thousands commas, decimals).

    Returns ``None`` when there is none. ``Decimal`` keeps the comparison exact:
    ``"432.0"`` equals ``"432"``.
    """
    m = _NUMBER.search(text)
    if m is None:
        return None
    try:
        return Decimal(m.group(0).replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex only matches valid literals
        return None


def numeric_match(prediction: str, reference: str) -> float:
    """1.0 when the first number in ``prediction`` equals the first number in ``reference``."""
    want = first_number(reference)
    got = first_number(prediction)
    return 1.0 if want is not None and got is not None and got == want else 0.0


def count_words(text: str) -> int:
    """Words as lm-eval counts them: ``len(re.split(r"\\s+", text))``."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    """UTF-8 bytes of ``text``."""
    return len(text.encode("utf-8"))


def _totals(lls: Sequence[float], counts: Sequence[float]) -> tuple[float, float]:
    if len(lls) != len(counts) or len(lls) == 0:
        raise InvalidInputError(
            f"need one count per log-likelihood and at least one document; "
            f"got {len(lls)} log-likelihoods and {len(counts)} counts"
        )
    total = math.fsum(float(c) for c in counts)
    if total <= 0:
        raise InvalidInputError(f"total count must be > 0; got {total}")
    return math.fsum(float(x) for x in lls), total


def word_perplexity(lls: Sequence[float], n_words: Sequence[float]) -> float:
    """``exp(-Σ ll / Σ words)`` over documents (lls in nats)."""
    ll, words = _totals(lls, n_words)
    return math.exp(-ll / words)


def byte_perplexity(lls: Sequence[float], n_bytes: Sequence[float]) -> float:
    """``exp(-Σ ll / Σ bytes)`` over documents (lls in nats)."""
    ll, nb = _totals(lls, n_bytes)
    return math.exp(-ll / nb)


def bits_per_byte(lls: Sequence[float], n_bytes: Sequence[float]) -> float:
    """``-Σ ll / Σ bytes / ln 2`` over documents (lls in nats)."""
    ll, nb = _totals(lls, n_bytes)
    return -ll / nb / math.log(2)


def aggregate(per_doc: Sequence[Mapping[str, float]], metrics: Iterable[str]) -> dict[str, float]:
    """Corpus values of ``metrics`` from per-document scores (as :meth:`Task.score` returns).

    Parameters
    ----------
    per_doc : sequence of mapping
        One mapping per document. Mean metrics need their own key; perplexity metrics need
        ``loglikelihood``, ``n_words`` (word_perplexity) and ``n_bytes``.
    metrics : iterable of str
        Names from :data:`MEAN_METRICS` and :data:`PERPLEXITY_METRICS`.

    Returns
    -------
    dict
        Metric name → corpus value (mean, or ratio of sums for perplexities).
    """
    if len(per_doc) == 0:
        raise InvalidInputError("cannot aggregate zero documents")
    out: dict[str, float] = {}
    for name in metrics:
        try:
            if name in MEAN_METRICS:
                out[name] = math.fsum(float(d[name]) for d in per_doc) / len(per_doc)
                continue
            lls = [float(d["loglikelihood"]) for d in per_doc]
            if name == "word_perplexity":
                out[name] = word_perplexity(lls, [float(d["n_words"]) for d in per_doc])
            elif name == "byte_perplexity":
                out[name] = byte_perplexity(lls, [float(d["n_bytes"]) for d in per_doc])
            elif name == "bits_per_byte":
                out[name] = bits_per_byte(lls, [float(d["n_bytes"]) for d in per_doc])
            else:
                raise InvalidInputError(
                    f"unknown metric {name!r}; known: "
                    + ", ".join(MEAN_METRICS + PERPLEXITY_METRICS)
                )
        except KeyError as err:
            raise InvalidInputError(
                f"metric {name!r} needs the per-document key {err.args[0]!r}"
            ) from None
    return out
