"""Readers that turn the store's tables into pandas DataFrames, and export to files.

pandas is imported inside the functions, so importing :mod:`capscale.store` stays light.
JSON columns (requests, log-likelihoods, configs, instances, turn contents) are returned as
JSON text: lossless through Parquet and CSV, and ``json.loads`` away.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from .store import Store

__all__ = ["EPISODE_SCORES", "EXPORT_FORMATS", "EXPORT_TABLES", "Filters", "export"]

#: clembench's per-episode scores, in clembench's order; always columns of ``episodes()``.
EPISODE_SCORES = (
    "Aborted",
    "Lose",
    "Success",
    "Request Count",
    "Parsed Request Count",
    "Violated Request Count",
    "Request Success Ratio",
    "Main Score",
)
EXPORT_FORMATS = ("parquet", "csv")
EXPORT_TABLES = ("models", "precisions", "tasks", "runs", "records", "episodes", "turns")

# (output column, SQL expression, kind); kinds map to dtypes in _typed().
_RUN_ID = [
    ("run_id", "r.id", "int"),
    ("model", "m.name", "str"),
    ("precision", "p.name", "str"),
    ("task", "t.name", "str"),
    ("task_version", "t.version", "str"),
    ("context_length", "r.context_length", "Int64"),
    ("seed", "r.seed", "Int64"),
]
_CARD = [
    ("family", "m.family", "str"),
    ("n_params", "m.n_params", "Int64"),
    ("n_params_non_embedding", "m.n_params_non_embedding", "Int64"),
    ("training_tokens", "m.training_tokens", "Int64"),
    ("training_flops", "m.training_flops", "float"),
    ("release_date", "m.release_date", "date"),
    ("model_context_length", "m.context_length", "Int64"),
    ("license", "m.license", "str"),
    ("precision_format", "p.format", "str"),
    ("bits", "p.bits", "float"),
    ("group_size", "p.group_size", "Int64"),
]
# The run's measured weight error (schema v3), joined onto each record.
_WEIGHT_ERROR = [
    ("weight_rel_rmse", "json_extract(r.weight_error, '$.relative_rmse')", "float"),
    ("weight_error", "r.weight_error", "str"),
]
_JOIN = (
    "JOIN models m ON m.id = r.model_id JOIN precisions p ON p.id = r.precision_id "
    "JOIN tasks t ON t.id = r.task_id"
)
_TABLES = {
    "models": [
        ("model_id", "id", "int"),
        ("name", "name", "str"),
        ("family", "family", "str"),
        ("n_params", "n_params", "Int64"),
        ("n_params_non_embedding", "n_params_non_embedding", "Int64"),
        ("training_tokens", "training_tokens", "Int64"),
        ("training_flops", "training_flops", "float"),
        ("release_date", "release_date", "date"),
        ("context_length", "context_length", "Int64"),
        ("license", "license", "str"),
        ("extra", "extra", "str"),
        ("created_at", "created_at", "time"),
    ],
    "precisions": [
        ("precision_id", "id", "int"),
        ("name", "name", "str"),
        ("format", "format", "str"),
        ("bits", "bits", "float"),
        ("group_size", "group_size", "Int64"),
        ("symmetric", "symmetric", "boolean"),
        ("settings", "settings", "str"),
        ("spec", "spec", "str"),
    ],
    "tasks": [
        ("task_id", "id", "int"),
        ("name", "name", "str"),
        ("version", "version", "str"),
        ("config", "config", "str"),
    ],
}


@dataclass(frozen=True)
class Filters:
    """Row filters of the readers; each a value, a sequence of values, or ``None`` (all)."""

    run_id: Any = None
    model: Any = None
    precision: Any = None
    task: Any = None
    game: Any = None


def _values(value: Any, what: str, kind: type) -> list[Any]:
    items = [value] if isinstance(value, (str, int, np.integer)) else value
    try:
        items = list(items)
    except TypeError:
        raise InvalidInputError(
            f"filter {what} must be a {kind.__name__} or a sequence of them, "
            f"got {type(value).__name__}"
        ) from None
    for item in items:
        ok = isinstance(item, (int, np.integer)) if kind is int else isinstance(item, str)
        if not ok or isinstance(item, bool):
            raise InvalidInputError(
                f"filter {what} must hold {kind.__name__} values, got {type(item).__name__} "
                f"{item!r}"
            )
    return [kind(item) for item in items]


def _where(conn: sqlite3.Connection, f: Filters, game_column: str | None) -> tuple[str, list[Any]]:
    """SQL ``WHERE`` clause and parameters; unknown filter values raise UnknownNameError."""
    clauses: list[str] = []
    params: list[Any] = []
    checks: list[tuple[str, Any, str, str, type]] = [
        ("run_id", f.run_id, "r.id", "SELECT id FROM runs", int),
        ("model", f.model, "m.name", "SELECT name FROM models", str),
        ("precision", f.precision, "p.name", "SELECT DISTINCT name FROM precisions", str),
        ("task", f.task, "t.name", "SELECT DISTINCT name FROM tasks", str),
    ]
    if game_column is not None:
        checks.append(("game", f.game, game_column, "SELECT DISTINCT game FROM episodes", str))
    for what, value, column, known_sql, kind in checks:
        if value is None:
            continue
        wanted = _values(value, what, kind)
        known = [row[0] for row in conn.execute(known_sql)]
        for item in wanted:
            if item not in known:
                shown = sorted(str(k) for k in known)
                hint = did_you_mean(str(item), shown)
                raise UnknownNameError(
                    f"unknown {what} {item!r}; {hint + ' ' if hint else ''}"
                    + (f"the store has: {', '.join(shown[:20])}" if shown else "the store has none")
                )
        clauses.append(f"{column} IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _str_dtype() -> Any:
    import pandas as pd

    # pandas ≥ 3 has a string dtype with NaN for missing; pandas 2 keeps Python objects.
    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def _typed(rows: list[tuple[Any, ...]], spec: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    import pandas as pd

    columns = [name for name, _, _ in spec]
    df = pd.DataFrame.from_records(rows, columns=columns, coerce_float=False)
    if not rows:
        df = pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
    for name, _, kind in spec:
        col = df[name]
        if kind == "int":
            df[name] = col.astype("int64")
        elif kind in ("Int64", "boolean"):
            df[name] = col.astype(kind)
        elif kind == "float":
            df[name] = col.astype("float64")
        elif kind == "str":
            df[name] = col.astype(_str_dtype())
        elif kind == "time":
            df[name] = pd.to_datetime(col, utc=True, format="ISO8601").dt.as_unit("us")
        elif kind == "date":
            df[name] = pd.to_datetime(col, format="ISO8601").dt.as_unit("us")
        else:  # pragma: no cover - programming error
            raise AssertionError(kind)
    return df


def _select(spec: Sequence[tuple[str, str, str]]) -> str:
    return ", ".join(expr for _, expr, _ in spec)


def _expand_scores(
    df: pd.DataFrame,
    scores_json: list[str],
    *,
    insert_after: str,
    metrics: Sequence[str] | None,
    prefix: str,
    always: Sequence[str] = (),
) -> pd.DataFrame:
    """Insert one float column per metric (``prefix + metric``) after ``insert_after``."""
    import pandas as pd

    parsed: list[dict[str, Any]] = [json.loads(s) for s in scores_json]
    names = list(dict.fromkeys(itertools.chain(always, *parsed)))
    if metrics is not None:
        wanted = _values(metrics, "metrics", str)
        if parsed:
            for name in wanted:
                if name not in names:
                    hint = did_you_mean(name, names)
                    raise UnknownNameError(
                        f"unknown metric {name!r}; {hint + ' ' if hint else ''}"
                        f"metrics in the selection: {', '.join(names)}"
                    )
        names = wanted
    if not isinstance(prefix, str):
        raise InvalidInputError(f"score_prefix must be a str, got {type(prefix).__name__}")
    columns: dict[str, np.ndarray] = {}
    for name in names:
        column = prefix + name
        if column in df.columns or column in columns:
            raise InvalidInputError(
                f"score {name!r} would become column {column!r}, which already exists; "
                "choose another score_prefix"
            )
        columns[column] = np.array([d.get(name) for d in parsed], dtype=np.float64)
    scores = pd.DataFrame(columns, index=df.index)
    cut = list(df.columns).index(insert_after) + 1
    return pd.concat([df.iloc[:, :cut], scores, df.iloc[:, cut:]], axis=1)


def runs_frame(conn: sqlite3.Connection) -> pd.DataFrame:
    spec = [
        *_RUN_ID,
        ("status", "r.status", "str"),
        ("n_records", "(SELECT COUNT(*) FROM records x WHERE x.run_id = r.id)", "int"),
        ("n_episodes", "(SELECT COUNT(*) FROM episodes e WHERE e.run_id = r.id)", "int"),
        ("started_at", "r.started_at", "time"),
        ("finished_at", "r.finished_at", "time"),
        ("code_version", "r.code_version", "str"),
        ("host", "r.host", "str"),
        ("config", "r.config", "str"),
        ("weight_error", "r.weight_error", "str"),
    ]
    rows = conn.execute(f"SELECT {_select(spec)} FROM runs r {_JOIN} ORDER BY r.id").fetchall()
    return _typed(rows, spec)


def records_frame(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    metrics: Sequence[str] | None,
    score_prefix: str,
) -> pd.DataFrame:
    where, params = _where(conn, filters, None)
    spec = [
        *_RUN_ID,
        ("item_id", "x.item_id", "str"),
        ("subtask", "x.subtask", "str"),
        ("prediction", "x.prediction", "str"),
        ("request", "x.request", "str"),
        ("loglikelihoods", "x.loglikelihoods", "str"),
        ("tokens", "x.tokens", "Int64"),
        ("latency_s", "x.latency_s", "float"),
        ("created_at", "x.created_at", "time"),
        *_CARD,
        *_WEIGHT_ERROR,
    ]
    rows = conn.execute(
        f"SELECT {_select(spec)}, x.scores FROM records x JOIN runs r ON r.id = x.run_id "
        f"{_JOIN}{where} ORDER BY x.run_id, x.id",
        params,
    ).fetchall()
    df = _typed([row[:-1] for row in rows], spec)
    return _expand_scores(
        df, [row[-1] for row in rows], insert_after="subtask", metrics=metrics, prefix=score_prefix
    )


def episodes_frame(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    metrics: Sequence[str] | None,
    score_prefix: str,
) -> pd.DataFrame:
    where, params = _where(conn, filters, "e.game")
    spec = [
        *_RUN_ID,
        ("game", "e.game", "str"),
        ("experiment", "e.experiment", "str"),
        ("episode_id", "e.episode_id", "str"),
        (
            "n_turns",
            "(SELECT COUNT(DISTINCT turn) FROM turns u WHERE u.episode_rowid = e.id)",
            "int",
        ),
        ("instance", "e.instance", "str"),
        ("created_at", "e.created_at", "time"),
        *_CARD,
    ]
    rows = conn.execute(
        f"SELECT {_select(spec)}, e.scores FROM episodes e JOIN runs r ON r.id = e.run_id "
        f"{_JOIN}{where} ORDER BY e.run_id, e.id",
        params,
    ).fetchall()
    df = _typed([row[:-1] for row in rows], spec)
    return _expand_scores(
        df,
        [row[-1] for row in rows],
        insert_after="n_turns",
        metrics=metrics,
        prefix=score_prefix,
        always=EPISODE_SCORES,
    )


def turns_frame(conn: sqlite3.Connection, filters: Filters) -> pd.DataFrame:
    where, params = _where(conn, filters, "e.game")
    spec = [
        ("run_id", "r.id", "int"),
        ("model", "m.name", "str"),
        ("game", "e.game", "str"),
        ("experiment", "e.experiment", "str"),
        ("episode_id", "e.episode_id", "str"),
        ("turn", "u.turn", "int"),
        ("player", "u.player", "str"),
        ("prompt", "u.prompt", "str"),
        ("raw_reply", "u.raw_reply", "str"),
        ("parsed", "u.parsed", "str"),
        ("events", "u.events", "str"),
        ("created_at", "u.created_at", "time"),
    ]
    rows = conn.execute(
        f"SELECT {_select(spec)} FROM turns u JOIN episodes e ON e.id = u.episode_rowid "
        f"JOIN runs r ON r.id = e.run_id {_JOIN}{where} ORDER BY e.run_id, e.id, u.turn, u.id",
        params,
    ).fetchall()
    return _typed(rows, spec)


def table_frame(conn: sqlite3.Connection, table: str) -> pd.DataFrame:
    spec = _TABLES[table]
    rows = conn.execute(f"SELECT {_select(spec)} FROM {table} ORDER BY id").fetchall()
    return _typed(rows, spec)


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: every query inside sees the same committed state (WAL)."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def export(store: Store, out_dir: str | os.PathLike[str], format: str) -> dict[str, Path]:
    if format not in EXPORT_FORMATS:
        hint = did_you_mean(str(format), EXPORT_FORMATS)
        raise UnknownNameError(
            f"unknown export format {format!r}; {hint + ' ' if hint else ''}"
            f"known formats: {', '.join(EXPORT_FORMATS)}"
        )
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(
                "Parquet export needs pyarrow (pip install pyarrow); or use format='csv'"
            ) from None
    with _snapshot(store.conn):
        frames = {
            "models": store.models(),
            "precisions": store.precisions(),
            "tasks": store.tasks(),
            "runs": store.runs(),
            "records": store.records(),
            "episodes": store.episodes(),
            "turns": store.turns(),
        }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, df in frames.items():
        path = out / f"{name}.{format}"
        partial = out / f".{name}.{format}.partial"
        if format == "parquet":
            df.to_parquet(partial, index=False)
        else:
            df.to_csv(partial, index=False)
        os.replace(partial, path)  # a reader never sees a half-written file
        written[name] = path
    return written
