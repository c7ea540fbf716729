"""Few-shot example selection, draw for draw as lm-evaluation-harness 0.4.13 does it.

lm-eval (``ContextSampler.sample`` in ``lm_eval/api/samplers.py``, called from
``ConfigurableTask.fewshot_context``) keeps **one** ``random.Random(fewshot_seed)`` per task
and draws from it once per evaluated document, in document order. So the shots of document
``i`` depend on the draws made for documents ``0 .. i-1``; :func:`plan_shots` replays that
stream once for all documents, which makes ``Task.context(i)`` a pure function of
``(task, i, k)`` that equals lm-eval's context for the same docs (also under ``--limit``,
which keeps a prefix of the documents).

Per document, with ``k`` shots:

- a separate few-shot pool (lm-eval: ``fewshot_split`` different from ``test_split``):
  ``rnd.sample(pool, k)``;
- the evaluated documents themselves as the pool (lm-eval: ``fewshot_split == test_split``):
  ``rnd.sample(pool, k + 1)``, drop every drawn doc equal to the current one, keep the first
  ``k``; if fewer than ``k`` remain (duplicates of the current doc were drawn), draw again
  with ``rnd.sample(pool_without_the_doc, k)`` from the same generator.

``random.sample`` picks positions from ``len(population)`` alone, so sampling indices gives
the same positions as sampling the documents. Equality ignores keys starting with ``_``
(capscale's own annotations, such as padding), so padding a task keeps its shots.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import InvalidInputError

__all__ = ["plan_shots", "public_fields"]


def public_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without capscale's annotation keys (those starting with ``_``)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def plan_shots(
    eval_docs: Sequence[Mapping[str, Any]],
    pool: Sequence[Mapping[str, Any]],
    k: int,
    seed: int,
    *,
    exclude_eval_doc: bool,
) -> list[tuple[int, ...]]:
    """Indices into ``pool`` of the ``k`` shots of every document of ``eval_docs``.

    Parameters
    ----------
    eval_docs : sequence of mapping
        The evaluated documents, in evaluation order.
    pool : sequence of mapping
        Where shots come from (the few-shot docs, or ``eval_docs`` itself).
    k : int
        Shots per document (>= 0).
    seed : int
        Seed of the single ``random.Random`` shared by all documents.
    exclude_eval_doc : bool
        Whether the pool holds the evaluated documents (draw ``k + 1``, drop the current one).

    Returns
    -------
    list of tuple of int
        ``len(eval_docs)`` tuples of ``k`` pool indices, in the order the shots appear.

    Raises
    ------
    InvalidInputError
        ``k`` is negative or larger than the pool allows.
    """
    if k < 0:
        raise InvalidInputError(f"num_fewshot must be >= 0; got {k}")
    if k == 0:
        return [() for _ in eval_docs]
    need = k + 1 if exclude_eval_doc else k
    if need > len(pool):
        where = (
            "the task's own documents (the current one excluded)"
            if exclude_eval_doc
            else ("the few-shot documents")
        )
        raise InvalidInputError(
            f"num_fewshot={k} needs {need} documents in the few-shot pool; "
            f"{where} hold only {len(pool)}"
        )
    rnd = random.Random(seed)
    n_pool = len(pool)
    if not exclude_eval_doc:
        return [tuple(rnd.sample(range(n_pool), k)) for _ in eval_docs]
    keys = [public_fields(d) for d in pool]
    plans: list[tuple[int, ...]] = []
    for doc in eval_docs:
        current = public_fields(doc)
        picks = [j for j in rnd.sample(range(n_pool), k + 1) if keys[j] != current][:k]
        if len(picks) < k:
            rest = [j for j in range(n_pool) if keys[j] != current]
            if len(rest) < k:
                raise InvalidInputError(
                    f"num_fewshot={k}: only {len(rest)} documents differ from the current one"
                )
            picks = rnd.sample(rest, k)
        plans.append(tuple(picks))
    return plans
