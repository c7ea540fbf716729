"""The :class:`Task` model: versioned documents plus the settings that turn them into requests.

A task is data, not code: a name, a version, a kind, a tuple of JSON documents and a few
settings (delimiters, few-shot count and seed, generation limits, metrics). Everything a
result depends on is hashed into :attr:`Task.content_hash` (sha256 of the canonical JSON of
the settings and the documents), which the runner records beside every score.

Prompts follow lm-evaluation-harness 0.4.13 (``ConfigurableTask.fewshot_context`` without a
chat template)::

    context = description
              + Σ_shots (text(shot) + target_delimiter + target(shot) + fewshot_delimiter)
              + text(doc)

Keys of a document that start with ``_`` are capscale annotations (padding, measured token
counts); they never change which shots are drawn.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ...errors import InvalidInputError, did_you_mean
from ..requests import GenerationRequest, LoglikelihoodRequest, RollingRequest
from . import metrics as _m
from .fewshot import plan_shots

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_METRICS",
    "KINDS",
    "MatchOptions",
    "Request",
    "Task",
    "check_doc",
]

Request = LoglikelihoodRequest | GenerationRequest | RollingRequest

#: The three kinds of task.
KINDS = ("multiple_choice", "generation", "perplexity")

#: Metrics computed when a task lists none.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "multiple_choice": ("acc", "acc_norm", "acc_bytes"),
    "generation": ("exact_match", "numeric_match"),
    "perplexity": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
}

#: Default document field names per kind: (text, choices, target). Perplexity has only text.
DEFAULT_FIELDS: dict[str, tuple[str, str, str]] = {
    "multiple_choice": ("question", "choices", "answer"),
    "generation": ("prompt", "", "answer"),
    "perplexity": ("text", "", ""),
}


def check_kind(kind: object) -> str:
    """Return ``kind`` if it is one of :data:`KINDS`, else raise with a suggestion."""
    if isinstance(kind, str) and kind in KINDS:
        return kind
    hint = did_you_mean(str(kind), KINDS)
    raise InvalidInputError(
        f"unknown task kind {kind!r}; "
        + (hint + " " if hint else "")
        + "Known: "
        + ", ".join(KINDS)
    )


@dataclass(frozen=True)
class MatchOptions:
    """Normalisations applied before ``exact_match`` (see :func:`metrics.exact_match`).

    ``strip`` defaults to True because the model's output starts with the target delimiter
    (``" 432"`` for the answer ``"432"``); the other flags are lm-eval's metric arguments.
    """

    strip: bool = True
    ignore_case: bool = False
    ignore_punctuation: bool = False
    ignore_numbers: bool = False
    regexes_to_ignore: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``exact_match`` entry of a task header)."""
        return {
            "strip": self.strip,
            "ignore_case": self.ignore_case,
            "ignore_punctuation": self.ignore_punctuation,
            "ignore_numbers": self.ignore_numbers,
            "regexes_to_ignore": list(self.regexes_to_ignore),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchOptions:
        """Build from a header's ``exact_match`` object; unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"exact_match must be an object; got {data!r}")
        known = ("strip", "ignore_case", "ignore_punctuation", "ignore_numbers")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                if not isinstance(value, bool):
                    raise InvalidInputError(f"exact_match.{key} must be true or false")
                kwargs[key] = value
            elif key == "regexes_to_ignore":
                if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
                    raise InvalidInputError("exact_match.regexes_to_ignore must be a list of str")
                kwargs[key] = tuple(value)
            else:
                hint = did_you_mean(key, (*known, "regexes_to_ignore"))
                raise InvalidInputError(f"unknown exact_match option {key!r}. {hint}".strip())
        return cls(**kwargs)


def _field_error(where: str, name: str, what: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: field {name!r} {what}")


def check_doc(kind: str, fields: tuple[str, str, str], doc: object, where: str) -> None:
    """Validate one document of a task of ``kind``; raise :class:`InvalidInputError` naming
    the field and ``where`` (e.g. ``"tasks.jsonl line 7"``).

    ``fields`` are the (text, choices, target) field names in use.
    """
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"{where}: a document must be a JSON object; got {doc!r}")
    text_f, choice_f, target_f = fields
    if text_f not in doc:
        raise _field_error(where, text_f, "is missing")
    if not isinstance(doc[text_f], str):
        raise _field_error(where, text_f, f"must be a string; got {doc[text_f]!r}")
    if kind == "perplexity":
        if doc[text_f] == "":
            raise _field_error(where, text_f, "is empty")
        return
    if target_f not in doc:
        raise _field_error(where, target_f, "is missing")
    target = doc[target_f]
    if kind == "generation":
        if isinstance(target, bool) or not isinstance(target, (str, int)):
            raise _field_error(where, target_f, f"must be a string (or an int); got {target!r}")
        return
    if choice_f not in doc:
        raise _field_error(where, choice_f, "is missing")
    choices = doc[choice_f]
    if not isinstance(choices, list):
        raise _field_error(where, choice_f, f"must be a list of strings; got {choices!r}")
    if len(choices) == 0:
        raise _field_error(where, choice_f, "is an empty list; give at least one choice")
    for j, c in enumerate(choices):
        if not isinstance(c, str) or c == "":
            raise _field_error(where, choice_f, f"item {j} must be a non-empty string; got {c!r}")
    try:
        _m.resolve_gold(target, choices)
    except InvalidInputError as err:
        raise _field_error(where, target_f, f"is invalid: {err}") from None


def _canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


@dataclass(frozen=True, repr=False)
class Task:
    """A versioned evaluation task: documents plus prompt and scoring settings.

    Parameters
    ----------
    name, version : str
        Identity; the version changes whenever documents or settings change meaningfully.
    kind : {"multiple_choice", "generation", "perplexity"}
    docs : sequence of dict
        Documents (JSON objects). Field names: see ``doc_to_text`` etc.
    description : str
        Text put before everything else in each context (lm-eval's ``description``).
    target_delimiter : str
        Between a prompt and its answer (shots, and before every MC choice). Default ``" "``.
    fewshot_delimiter : str
        After each shot. Default ``"\\n\\n"``.
    num_fewshot : int
        Shots per context (0 for perplexity tasks).
    fewshot_seed : int
        Seed of the single generator that draws every document's shots (lm-eval: 1234).
    fewshot_docs : sequence of dict or None
        Separate pool for shots; ``None`` draws from ``docs`` minus the current document.
    until, max_new_tokens :
        Stop strings and token budget of generation requests.
    metrics : sequence of str
        Metric names; empty means :data:`DEFAULT_METRICS` for the kind.
    doc_to_text, doc_to_choice, doc_to_target : str
        Document field names; empty means :data:`DEFAULT_FIELDS` for the kind.
    exact_match : MatchOptions
        Normalisation before ``exact_match``.
    metadata : mapping
        Free JSON data recorded with the task (generator parameters, padding targets).
    """

    name: str
    version: str
    kind: str
    docs: tuple[dict[str, Any], ...]
    description: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    num_fewshot: int = 0
    fewshot_seed: int = 1234
    fewshot_docs: tuple[dict[str, Any], ...] | None = None
    until: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 64
    metrics: tuple[str, ...] = ()
    doc_to_text: str = ""
    doc_to_choice: str = ""
    doc_to_target: str = ""
    exact_match: MatchOptions = MatchOptions()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    _plans: dict[int, list[tuple[int, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        put = object.__setattr__
        for attr in (
            "name",
            "version",
            "description",
            "target_delimiter",
            "fewshot_delimiter",
            "doc_to_text",
            "doc_to_choice",
            "doc_to_target",
        ):
            if not isinstance(getattr(self, attr), str):
                raise InvalidInputError(f"{attr} must be a string; got {getattr(self, attr)!r}")
        if self.name == "":
            raise InvalidInputError("name must not be empty")
        if self.version == "":
            raise InvalidInputError("version must not be empty")
        kind = check_kind(self.kind)
        for attr in ("num_fewshot", "fewshot_seed", "max_new_tokens"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"{attr} must be an int; got {value!r}")
        if self.num_fewshot < 0:
            raise InvalidInputError(f"num_fewshot must be >= 0; got {self.num_fewshot}")
        if kind == "perplexity" and self.num_fewshot != 0:
            raise InvalidInputError("perplexity tasks take no shots; set num_fewshot to 0")
        if self.max_new_tokens < 1:
            raise InvalidInputError(f"max_new_tokens must be >= 1; got {self.max_new_tokens}")
        if isinstance(self.until, str) or not all(isinstance(u, str) for u in self.until):
            raise InvalidInputError(f"until must be a list of strings; got {self.until!r}")
        put(self, "until", tuple(self.until))
        if not isinstance(self.exact_match, MatchOptions):
            raise InvalidInputError("exact_match must be a MatchOptions")

        defaults = DEFAULT_FIELDS[kind]
        put(self, "doc_to_text", self.doc_to_text or defaults[0])
        put(self, "doc_to_choice", self.doc_to_choice or defaults[1])
        put(self, "doc_to_target", self.doc_to_target or defaults[2])

        metrics = tuple(self.metrics) or DEFAULT_METRICS[kind]
        allowed = DEFAULT_METRICS[kind]
        for metric in metrics:
            if metric not in allowed:
                hint = did_you_mean(metric, allowed)
                raise InvalidInputError(
                    f"metric {metric!r} is not available for {kind} tasks; "
                    + (hint + " " if hint else "")
                    + "Available: "
                    + ", ".join(allowed)
                )
        put(self, "metrics", metrics)

        if isinstance(self.docs, Mapping) or not isinstance(self.docs, Sequence):
            raise InvalidInputError("docs must be a sequence of documents (dicts)")
        docs = tuple(dict(d) if isinstance(d, Mapping) else d for d in self.docs)
        if not docs:
            raise InvalidInputError(f"task {self.name!r} has no documents")
        fields = self.fields
        for i, doc in enumerate(docs):
            check_doc(kind, fields, doc, f"task {self.name!r} doc {i}")
        put(self, "docs", docs)
        if self.fewshot_docs is not None:
            fs = tuple(dict(d) if isinstance(d, Mapping) else d for d in self.fewshot_docs)
            for i, doc in enumerate(fs):
                check_doc(kind, fields, doc, f"task {self.name!r} few-shot doc {i}")
            put(self, "fewshot_docs", fs or None)
        if not isinstance(self.metadata, Mapping):
            raise InvalidInputError("metadata must be a mapping")
        put(self, "metadata", dict(self.metadata))

    # ------------------------------------------------------------------ identity
    @property
    def fields(self) -> tuple[str, str, str]:
        """The (text, choices, target) document field names in use."""
        return (self.doc_to_text, self.doc_to_choice, self.doc_to_target)

    def config(self) -> dict[str, Any]:
        """Every setting except the documents, JSON-ready (the JSONL header object)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "description": self.description,
            "target_delimiter": self.target_delimiter,
            "fewshot_delimiter": self.fewshot_delimiter,
            "num_fewshot": self.num_fewshot,
            "fewshot_seed": self.fewshot_seed,
            "until": list(self.until),
            "max_new_tokens": self.max_new_tokens,
            "metrics": list(self.metrics),
            "doc_to_text": self.doc_to_text,
            "doc_to_choice": self.doc_to_choice,
            "doc_to_target": self.doc_to_target,
            "exact_match": self.exact_match.to_dict(),
            "metadata": dict(self.metadata),
        }

    @cached_property
    def content_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of ``{"config", "docs", "fewshot_docs"}``.

        Canonical: sorted keys, no whitespace, UTF-8 (not ASCII-escaped), no NaN.
        """
        payload = {
            "config": self.config(),
            "docs": list(self.docs),
            "fewshot_docs": None if self.fewshot_docs is None else list(self.fewshot_docs),
        }
        try:
            return hashlib.sha256(_canonical_json(payload)).hexdigest()
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"task {self.name!r} is not JSON-serialisable: {err}") from None

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        return (
            f"Task(name={self.name!r}, version={self.version!r}, kind={self.kind!r}, "
            f"n_docs={len(self.docs)}, num_fewshot={self.num_fewshot}, "
            f"hash={self.content_hash[:12]})"
        )

    def __len__(self) -> int:
        return len(self.docs)

    # ------------------------------------------------------------------ documents
    def _doc(self, doc_index: int) -> dict[str, Any]:
        if isinstance(doc_index, bool) or not isinstance(doc_index, int):
            raise InvalidInputError(f"doc_index must be an int; got {doc_index!r}")
        if not 0 <= doc_index < len(self.docs):
            raise InvalidInputError(
                f"doc_index {doc_index} is out of range for task {self.name!r} "
                f"with {len(self.docs)} documents"
            )
        return self.docs[doc_index]

    def doc_text(self, doc: Mapping[str, Any]) -> str:
        """The prompt text of a document (its ``doc_to_text`` field)."""
        return str(doc[self.doc_to_text])

    def doc_choices(self, doc: Mapping[str, Any]) -> list[str]:
        """The choices of a multiple-choice document."""
        return list(doc[self.doc_to_choice])

    def doc_target(self, doc: Mapping[str, Any]) -> str:
        """The answer text of a document, as a shot shows it.

        Multiple choice: the gold choice (an index, or the first index of a list; a string
        gold is shown as it is). Generation: the answer as a string.
        """
        target = doc[self.doc_to_target]
        if self.kind == "multiple_choice":
            if isinstance(target, str):
                return target
            choices = self.doc_choices(doc)
            return choices[_m.resolve_gold(target, choices)[0]]
        return str(target)

    def gold(self, doc_index: int) -> tuple[int, ...]:
        """Correct choice indices of a multiple-choice document."""
        doc = self._doc(doc_index)
        if self.kind != "multiple_choice":
            raise InvalidInputError(f"gold() is for multiple_choice tasks; this is {self.kind}")
        return _m.resolve_gold(doc[self.doc_to_target], self.doc_choices(doc))

    # ------------------------------------------------------------------ prompts
    def shots(self, doc_index: int, num_fewshot: int | None = None) -> list[dict[str, Any]]:
        """The few-shot documents of ``doc_index``, in prompt order (see :mod:`.fewshot`)."""
        self._doc(doc_index)
        k = self.num_fewshot if num_fewshot is None else num_fewshot
        if k == 0:
            return []
        if self.kind == "perplexity":
            raise InvalidInputError("perplexity tasks take no shots")
        plans = self._plans
        pool = self.docs if self.fewshot_docs is None else self.fewshot_docs
        if k not in plans:
            plans[k] = plan_shots(
                self.docs, pool, k, self.fewshot_seed, exclude_eval_doc=self.fewshot_docs is None
            )
        return [pool[j] for j in plans[k][doc_index]]

    def _shot_text(self, shot: Mapping[str, Any]) -> str:
        answer = self.doc_target(shot)
        if answer == "":  # lm-eval: no answer → no delimiters either (build_qa_turn)
            return self.doc_text(shot)
        return self.doc_text(shot) + self.target_delimiter + answer + self.fewshot_delimiter

    def context(self, doc_index: int, num_fewshot: int | None = None) -> str:
        """The prompt of ``doc_index``: lm-eval's ``fewshot_context`` (plus any padding).

        ``description + shot_1 + … + shot_k + text(doc)``, each shot being
        ``text + target_delimiter + target + fewshot_delimiter``. Padding recorded by
        :func:`capscale.eval.tasks.pad_to_length` (``_pad_text``) goes first
        (``_pad_position == "before"``) or right before ``text(doc)`` (``"question"``).
        Perplexity tasks have no context: ``""``.
        """
        doc = self._doc(doc_index)
        if self.kind == "perplexity":
            if num_fewshot:
                raise InvalidInputError("perplexity tasks take no shots")
            return ""
        head = self.description + "".join(
            self._shot_text(s) for s in self.shots(doc_index, num_fewshot)
        )
        pad = str(doc.get("_pad_text", ""))
        if pad and doc.get("_pad_position") == "question":
            return head + pad + self.doc_text(doc)
        return pad + head + self.doc_text(doc)

    def requests(self, doc_index: int, num_fewshot: int | None = None) -> list[Request]:
        """The backend requests of one document.

        multiple_choice: one ``LoglikelihoodRequest(ctx, target_delimiter + choice)`` per
        choice; generation: one ``GenerationRequest(ctx, until, max_new_tokens)``;
        perplexity: one ``RollingRequest(text)``.
        """
        doc = self._doc(doc_index)
        if self.kind == "perplexity":
            return [RollingRequest(self.doc_text(doc))]
        ctx = self.context(doc_index, num_fewshot)
        if self.kind == "generation":
            return [GenerationRequest(ctx, until=self.until, max_new_tokens=self.max_new_tokens)]
        return [LoglikelihoodRequest(ctx, self.target_delimiter + c) for c in self.doc_choices(doc)]

    # ------------------------------------------------------------------ scoring
    def score(self, doc_index: int, responses: Sequence[Any] | str | float) -> dict[str, float]:
        """Per-document metrics from the backend's answers to :meth:`requests`.

        Parameters
        ----------
        responses
            multiple_choice: one per choice, each a log-likelihood (float, nats) or a
            ``(loglikelihood, is_greedy)`` pair; generation: the generated string (or a
            one-item list); perplexity: the rolling log-likelihood (float, or a one-item list).

        Returns
        -------
        dict
            multiple_choice / generation: the task's metrics, each 0.0 or 1.0;
            perplexity: ``loglikelihood``, ``n_words`` and ``n_bytes`` of the document (the
            corpus metrics come from :meth:`aggregate`).
        """
        doc = self._doc(doc_index)
        if self.kind == "multiple_choice":
            if isinstance(responses, (str, float, int)):
                raise InvalidInputError("multiple-choice responses must be one per choice")
            lls = [_loglikelihood(r) for r in responses]
            scores = _m.multiple_choice_scores(lls, self.doc_choices(doc), doc[self.doc_to_target])
            return {k: scores[k] for k in self.metrics}
        if self.kind == "generation":
            out = _single(responses, str, "generation")
            target = str(doc[self.doc_to_target])
            values = {
                "exact_match": _m.exact_match(out, target, **_match_kwargs(self.exact_match)),
                "numeric_match": _m.numeric_match(out, target),
            }
            return {k: values[k] for k in self.metrics}
        ll = _single(responses, numbers.Real, "perplexity")
        text = self.doc_text(doc)
        return {
            "loglikelihood": float(ll),
            "n_words": float(_m.count_words(text)),
            "n_bytes": float(_m.count_bytes(text)),
        }

    def aggregate(self, per_doc: Sequence[Mapping[str, float]]) -> dict[str, float]:
        """Corpus metrics (mean, or lm-eval's weighted perplexities) of :meth:`score` dicts."""
        return _m.aggregate(per_doc, self.metrics)


def _loglikelihood(response: Any) -> float:
    """A log-likelihood from a float or a ``(loglikelihood, is_greedy)`` pair."""
    if isinstance(response, (str, bytes)):
        raise InvalidInputError(f"bad multiple-choice response {response!r}")
    try:
        return float(response)
    except TypeError:
        return float(response[0])


def _single(responses: Any, types: type, kind: str) -> Any:
    value = responses
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 1:
            raise InvalidInputError(f"{kind} expects one response; got {len(value)}")
        value = value[0]
        if isinstance(value, tuple) and kind == "perplexity":
            value = value[0]
    if isinstance(value, bool) or not isinstance(value, types):
        raise InvalidInputError(f"bad {kind} response {value!r}")
    return value


def _match_kwargs(opts: MatchOptions) -> dict[str, Any]:
    d = opts.to_dict()
    d["regexes_to_ignore"] = tuple(d["regexes_to_ignore"])
    return d
