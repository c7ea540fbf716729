"""Run one evaluation cell — a model in one precision on one task at one context length —
and write every per-item result to the store, resumably.

Items are evaluated in chunks; each chunk's records are committed in one transaction, so a
killed run loses at most one chunk and a re-run skips every stored item
(:meth:`capscale.store.Store.done_items`).
"""

from __future__ import annotations

import math
import resource
import time
import warnings
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import ContextLengthWarning, InvalidInputError
from ..store import Store
from .precision import Precision, parse_precision
from .requests import GenerationRequest, LoglikelihoodRequest, RollingRequest
from .tasks import Task, get_task, pad_to_length

__all__ = [
    "CellPlan",
    "CellResult",
    "cell_result",
    "evaluate",
    "iter_cell_records",
    "open_cell",
    "plan_cell",
    "prepare_task",
]

#: Per-item metrics aggregated by a plain mean (with a bootstrap CI).
_PPL_KEYS = ("loglikelihood", "n_words", "n_bytes")


@dataclass
class CellResult:
    """Outcome of :func:`evaluate`.

    Attributes
    ----------
    run_id : int or None
        The store's run (None without a store).
    model, precision, task : str
        Names as recorded.
    context_length : int or None
        Target context length in tokens (None: the task's own prompts).
    n_items, n_new : int
        Items in the task, and items evaluated by this call (the rest were stored already).
    scores : dict
        metric → ``(estimate, ci_low, ci_high)`` (CIs for mean metrics; perplexity-type
        corpus metrics have NaN bounds).
    seconds : float
        Wall-clock time of this call.
    peak_memory_mb : float
        Peak resident memory of the process (CPU) or peak CUDA memory (GPU), MiB.
    weight_error : dict or None
        The precision's measured weight error statistics.
    skipped : bool
        True when a finished run of this cell was already stored.
    """

    run_id: int | None
    model: str
    precision: str
    task: str
    context_length: int | None
    n_items: int
    n_new: int
    scores: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    seconds: float = 0.0
    peak_memory_mb: float = math.nan
    weight_error: dict[str, Any] | None = None
    skipped: bool = False

    def line(self) -> str:
        """One line: the cell, its scores, time and memory."""
        sc = ", ".join(
            f"{k} {v[0]:.3f}" + (f" [{v[1]:.3f}, {v[2]:.3f}]" if not math.isnan(v[1]) else "")
            for k, v in self.scores.items()
        )
        ctx = "default" if self.context_length is None else str(self.context_length)
        state = "stored" if self.skipped else f"{self.n_new}/{self.n_items} new"
        return (
            f"{self.model} | {self.precision} | {self.task} | ctx {ctx} | {sc} | {state} | "
            f"{self.seconds:.1f} s | peak {self.peak_memory_mb:.0f} MiB"
        )


def prepare_task(
    task: Task | str,
    backend: Any,
    *,
    context_length: int | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    params: dict[str, Any] | None = None,
) -> Task:
    """Resolve a task name and apply the context-length axis.

    ``needle`` is built at ``context_length`` tokens; multiple-choice and generation tasks are
    padded with distractor text to ``context_length`` tokens (:func:`pad_to_length`);
    perplexity tasks keep their texts (the backend's window is set by :func:`evaluate`).
    ``limit`` keeps the first documents; ``num_fewshot`` overrides the task's.
    """
    params = dict(params or {})
    if num_fewshot is not None:
        params["num_fewshot"] = num_fewshot
    if isinstance(task, str):
        if task == "needle":
            params.setdefault("tokenizer", backend.tokenizer)
            if context_length is not None:
                params["length_tokens"] = context_length
        t = get_task(task, **params)
    else:
        t = task
        if params:
            raise InvalidInputError("task parameters apply to task names, not Task objects")
    if limit is not None:
        if limit < 1:
            raise InvalidInputError(f"limit must be >= 1, got {limit}")
        from dataclasses import replace

        t = replace(t, docs=t.docs[:limit])
    if context_length is not None and t.kind != "perplexity" and t.name != "needle":
        t = pad_to_length(t, backend.tokenizer, context_length)
    return t


def _peak_memory_mb(device: Any) -> float:
    if str(device).startswith("cuda"):
        import torch

        return float(torch.cuda.max_memory_allocated()) / 2**20
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _item_id(task: Task, i: int) -> str:
    doc = task.docs[i]
    return str(doc.get("id", i))


def _answer_chunk(backend: Any, task: Task, indices: Sequence[int]) -> list[list[Any]]:
    """Backend answers for the requests of the documents ``indices`` (batched together)."""
    reqs = [task.requests(i) for i in indices]
    flat = [r for rs in reqs for r in rs]
    if not flat:
        return [[] for _ in indices]
    kind = type(flat[0])
    if kind is LoglikelihoodRequest:
        answers: list[Any] = backend.loglikelihood(flat)
    elif kind is GenerationRequest:
        answers = backend.generate_until(flat)
    elif kind is RollingRequest:
        answers = backend.loglikelihood_rolling(flat)
    else:  # pragma: no cover - the task layer makes only these
        raise InvalidInputError(f"unknown request type {kind.__name__}")
    out, k = [], 0
    for rs in reqs:
        out.append(answers[k : k + len(rs)])
        k += len(rs)
    return out


def _record(task: Task, i: int, answers: list[Any], latency: float) -> dict[str, Any]:
    doc = task.docs[i]
    scores = task.score(i, answers)
    rec: dict[str, Any] = {"item_id": _item_id(task, i), "scores": scores, "latency_s": latency}
    if "_context_tokens" in doc:
        rec["tokens"] = int(doc["_context_tokens"])
    if task.kind == "multiple_choice":
        choices = task.doc_choices(doc)
        lls = [float(a[0]) for a in answers]
        rec["loglikelihoods"] = lls
        rec["prediction"] = choices[int(np.argmax(lls))]
        rec["request"] = {"context": task.context(i), "choices": choices}
    elif task.kind == "generation":
        rec["prediction"] = str(answers[0])
        rec["request"] = {"context": task.context(i), "target": task.doc_target(doc)}
    else:
        rec["loglikelihoods"] = [float(answers[0])]
    subtask = doc.get("subtask") or doc.get("depth")
    if subtask is not None:
        rec["subtask"] = str(subtask)
    return rec


def _summarise(task: Task, per_doc: list[dict[str, float]], seed: int) -> dict[str, Any]:
    from ..stats import bootstrap_mean

    if not per_doc:
        return {}
    if task.kind == "perplexity":
        agg = task.aggregate(per_doc)
        return {k: (float(v), math.nan, math.nan) for k, v in agg.items()}
    out = {}
    for metric in per_doc[0]:
        values = np.array([d[metric] for d in per_doc], dtype=float)
        if values.size >= 2:
            iv = bootstrap_mean(values, n_resamples=2000, seed=seed)
            out[metric] = (float(iv.estimate), float(iv.low), float(iv.high))
        else:
            out[metric] = (float(values.mean()), math.nan, math.nan)
    return out


@dataclass
class CellPlan:
    """What the driver needs to know about a cell before it is computed (picklable: a Ray
    actor builds it next to the model and sends it to the driver).

    Attributes
    ----------
    task : Task
        The prepared task (limit, few-shot and context-length padding applied).
    precision : str
        The precision's name.
    model_name : str
        The card's name.
    card, spec, task_ref, config : dict
        What :meth:`~capscale.store.Store.start_run` records.
    context_length : int or None
        Target context length in tokens.
    beyond : bool
        True when ``context_length`` exceeds the model's trained context.
    trained : int or None
        The model's trained context length.
    max_length : int
        The backend's window while the cell runs.
    """

    task: Task
    precision: str
    model_name: str
    card: dict[str, Any]
    spec: dict[str, Any]
    task_ref: dict[str, Any]
    config: dict[str, Any]
    context_length: int | None
    beyond: bool
    trained: int | None
    max_length: int

    def todo(self, done: set[str] | frozenset[str] = frozenset()) -> list[int]:
        """Indices of the documents whose item id is not in ``done``."""
        return [i for i in range(len(self.task.docs)) if _item_id(self.task, i) not in done]

    def warn_beyond(self, stacklevel: int = 2) -> None:
        """Issue the :class:`~capscale.errors.ContextLengthWarning` of a cell past the
        model's trained context (no-op otherwise)."""
        if self.beyond:
            warnings.warn(
                f"{self.model_name}: evaluating {self.task.name} at {self.context_length} "
                f"tokens, past the model's trained context of {self.trained} tokens "
                "(recorded in the run config)",
                ContextLengthWarning,
                stacklevel=stacklevel + 1,
            )


def plan_cell(
    loaded: Any,
    task: Task | str,
    *,
    precision: Precision | str = "shipped",
    context_length: int | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    task_params: dict[str, Any] | None = None,
) -> CellPlan:
    """Prepare one cell without computing it or touching a store (worker side)."""
    prec = parse_precision(precision)
    backend = loaded.backend
    card = loaded.card
    t = prepare_task(
        task,
        backend,
        context_length=context_length,
        num_fewshot=num_fewshot,
        limit=limit,
        params=task_params,
    )
    trained = card.context_length
    beyond = bool(context_length and trained and context_length > trained)
    max_length = int(backend.max_length)
    if context_length is not None:
        # room for the answer: generated tokens, or the longest scored continuation
        answer = t.max_new_tokens if t.kind == "generation" else 64
        need = context_length + answer + 8
        if t.kind == "perplexity":
            max_length = context_length
        elif need > max_length:
            max_length = need
    config = {
        "task_hash": t.content_hash,
        "num_fewshot": t.num_fewshot,
        "n_docs": len(t.docs),
        "dtype": str(backend.model.dtype).removeprefix("torch."),
        "max_length": max_length,
        "beyond_trained_context": beyond,
    }
    task_ref = {
        "name": t.name,
        "version": f"{t.version}-{t.content_hash[:12]}",
        "config": t.config(),
    }
    return CellPlan(
        task=t,
        precision=prec.name,
        model_name=card.name,
        card=card.to_dict(),
        spec=prec.store_spec(loaded.shipped),
        task_ref=task_ref,
        config=config,
        context_length=context_length,
        beyond=beyond,
        trained=trained,
        max_length=max_length,
    )


def iter_cell_records(
    loaded: Any,
    plan: CellPlan,
    indices: Sequence[int] | None = None,
    *,
    chunk_size: int = 32,
) -> Generator[list[dict[str, Any]], None, None]:
    """Compute a cell's per-item records, one list per chunk of ``chunk_size`` documents
    (worker side; no store). ``indices``: the documents to compute (default all, e.g.
    ``plan.todo(done)`` to skip stored items). The backend's window is the plan's while the
    generator runs and restored when it finishes or is closed."""
    backend = loaded.backend
    todo = list(range(len(plan.task.docs))) if indices is None else list(indices)
    old_max = backend.max_length
    backend.max_length = plan.max_length
    try:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            c0 = time.perf_counter()
            answers = _answer_chunk(backend, plan.task, chunk)
            latency = (time.perf_counter() - c0) / max(len(chunk), 1)
            yield [_record(plan.task, i, a, latency) for i, a in zip(chunk, answers, strict=True)]
    finally:
        backend.max_length = old_max


def open_cell(
    store: Store,
    plan: CellPlan,
    *,
    seed: int = 0,
    weight_error: dict[str, Any] | None = None,
    skip_done: bool = True,
) -> tuple[int, set[str], bool]:
    """Driver-side start of a cell: ``(run_id, stored item ids, finished)``. A finished run
    (with ``skip_done``) is returned as is; otherwise the run is started or resumed."""
    kw: dict[str, Any] = {"config": plan.config, "seed": seed}
    kw["context_length"] = plan.context_length
    if skip_done:
        rid = store.completed_run(plan.card, plan.spec, plan.task_ref, **kw)
        if rid is not None:
            return int(rid), set(), True
    run_id = store.start_run(plan.card, plan.spec, plan.task_ref, **kw)
    if weight_error is not None:
        store.set_weight_error(run_id, weight_error)
    return run_id, store.done_items(run_id), False


def evaluate(
    loaded: Any,
    task: Task | str,
    *,
    precision: Precision | str = "shipped",
    weight_error: dict[str, Any] | None = None,
    store: Store | None = None,
    context_length: int | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    task_params: dict[str, Any] | None = None,
    seed: int = 0,
    chunk_size: int = 32,
    progress: bool = True,
    skip_done: bool = True,
) -> CellResult:
    """Evaluate a loaded model (already in ``precision``) on one task.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`capscale.eval.load_model`; its weights are already in ``precision``
        (see :func:`capscale.eval.sweep.run_sweep`, which applies precisions).
    task : Task or str
        A task or a registered name / ``.jsonl`` path.
    precision : Precision or str
        What the weights are in (recorded with every result).
    weight_error : dict, optional
        Measured weight error statistics of the precision (stored with the run).
    store : Store, optional
        Results store; the run resumes when an unfinished run of the same cell exists.
    context_length : int, optional
        Target prompt length in tokens (the context axis); past the model's trained context
        a :class:`~capscale.errors.ContextLengthWarning` is issued and the run is recorded.
    num_fewshot, limit, task_params
        Task settings (see :func:`prepare_task`).
    seed : int
        Recorded with the run; seeds the bootstrap CIs.
    chunk_size : int
        Documents per backend call and per store commit.
    progress : bool
        Show a progress bar.
    skip_done : bool
        With a store, return the stored result when a finished run of this cell exists
        (``skipped=True``) instead of evaluating again.

    Notes
    -----
    The work splits into :func:`plan_cell` and :func:`iter_cell_records` (computation, no
    store) and :func:`open_cell` / ``add_records`` / ``finish_run`` (the store); the Ray
    executor runs the first two in an actor and the rest on the driver.
    """
    t0 = time.perf_counter()
    plan = plan_cell(
        loaded,
        task,
        precision=precision,
        context_length=context_length,
        num_fewshot=num_fewshot,
        limit=limit,
        task_params=task_params,
    )
    plan.warn_beyond(stacklevel=2)
    run_id = None
    done: set[str] = set()
    if store is not None:
        run_id, done, finished = open_cell(
            store, plan, seed=seed, weight_error=weight_error, skip_done=skip_done
        )
        if finished:
            return cell_result(
                plan,
                store,
                run_id,
                [],
                0,
                seed=seed,
                t0=t0,
                weight_error=weight_error,
                peak_memory_mb=_peak_memory_mb(loaded.backend.device),
                skipped=True,
            )
    todo = plan.todo(done)
    per_doc: list[dict[str, float]] = []
    desc = f"{plan.task.name} {plan.precision}"
    bar = tqdm(total=len(todo), desc=desc, unit="item", disable=not progress)
    gen = iter_cell_records(loaded, plan, todo, chunk_size=chunk_size)
    try:
        for records in gen:
            if store is not None and run_id is not None:
                store.add_records(run_id, records)
            per_doc.extend(r["scores"] for r in records)
            bar.update(len(records))
    finally:
        gen.close()
        bar.close()
    if store is not None and run_id is not None:
        store.finish_run(run_id)
    return cell_result(
        plan,
        store,
        run_id,
        per_doc,
        len(todo),
        seed=seed,
        t0=t0,
        weight_error=weight_error,
        peak_memory_mb=_peak_memory_mb(loaded.backend.device),
    )


def cell_result(
    plan: CellPlan,
    store: Store | None,
    run_id: int | None,
    per_doc: list[dict[str, float]],
    n_new: int,
    *,
    seed: int,
    t0: float,
    weight_error: dict[str, Any] | None,
    peak_memory_mb: float = math.nan,
    skipped: bool = False,
) -> CellResult:
    """The cell's result; with a store, scores are summarised from every stored record of
    the run (a resumed run includes the items of earlier calls)."""
    task = plan.task
    if store is not None and run_id is not None:
        df = store.records(run_id=run_id)
        names = _metric_names(task, per_doc, df)
        per_doc = [{m: float(row[f"score_{m}"]) for m in names} for _, row in df.iterrows()]
    return CellResult(
        run_id=run_id,
        model=plan.model_name,
        precision=plan.precision,
        task=task.name,
        context_length=plan.context_length,
        n_items=len(task.docs),
        n_new=n_new,
        scores=_summarise(task, per_doc, seed),
        seconds=time.perf_counter() - t0,
        peak_memory_mb=peak_memory_mb,
        weight_error=weight_error,
        skipped=skipped,
    )


def _metric_names(task: Task, per_doc: list[dict[str, float]], df: Any) -> list[str]:
    if task.kind == "perplexity":
        return list(_PPL_KEYS)
    if per_doc:
        return list(per_doc[0])
    return [c.removeprefix("score_") for c in df.columns if c.startswith("score_")]
