"""Tables for the law families, built from a results store or a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["is_store", "load_table", "table_from_store"]

#: Model-card and precision columns carried into the per-cell table.
CARD_COLUMNS = (
    "family",
    "n_params",
    "n_params_non_embedding",
    "training_tokens",
    "training_flops",
    "release_date",
    "model_context_length",
    "precision_format",
    "bits",
    "group_size",
)


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is an SQLite file (a capscale results store)."""
    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def table_from_store(
    path: str | Path,
    metric: str | None = None,
    task: str | None = None,
    *,
    ci: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (model, precision, task, context length) cell of a results store: the mean
    ``score`` of ``metric`` over ``n_items`` items with its standard error and bootstrap CI
    (capscale.stats), joined
    with the model card (parameters, training tokens and FLOPs, release date, …) and the
    precision's bits — the input the law families fit.
    """
    from ..stats import summarize
    from ..store import Store

    with Store(path, create=False) as store:
        records = store.records(task=task)
    if records.empty:
        raise InvalidInputError(f"{path}: no records" + (f" for task {task!r}" if task else ""))
    metrics = [c[len("score_") :] for c in records.columns if c.startswith("score_")]
    if metric is None:
        if len(metrics) != 1:
            raise InvalidInputError(
                f"{path} holds {len(metrics)} metrics ({', '.join(metrics)}); choose one"
            )
        metric = metrics[0]
    if metric not in metrics:
        hint = did_you_mean(metric, metrics)
        raise UnknownNameError(
            f"unknown metric {metric!r}; {hint + ' ' if hint else ''}stored: {', '.join(metrics)}"
        )
    by = ["model", "precision", "task", "context_length"]
    records = records.assign(context_length=records["context_length"].fillna(-1))
    table = summarize(
        records,
        by=by,
        metric=f"score_{metric}",
        ci=ci,
        n_resamples=n_resamples,
        seed=seed,
        nan="omit",
    ).rename(columns={"mean": "score", "n": "n_items"})
    cards = records[["model", "precision", *CARD_COLUMNS]].drop_duplicates(["model", "precision"])
    out = table.merge(cards, on=["model", "precision"], how="left")
    out["context_length"] = out["context_length"].where(out["context_length"] >= 0)
    return out


def load_table(
    source: str | Path, metric: str | None = None, task: str | None = None
) -> pd.DataFrame:
    """A CSV file as a DataFrame, or a results store as :func:`table_from_store`."""
    import pandas as pd

    if is_store(source):
        return table_from_store(source, metric=metric, task=task)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return pd.read_csv(path)
