"""The versioned SQLite schema of the results store, and its migrations.

The schema version lives in the ``meta`` table (key ``schema_version``). A file is created at
:data:`SCHEMA_VERSION`; an older file is migrated step by step (``MIGRATIONS[v]`` takes a
database from version ``v`` to ``v + 1``) inside one write transaction, so a migration that
fails leaves the file as it was. A file from a *newer* capscale is refused with
:class:`~capscale.errors.FormatError`. ``docs/store-schema.md`` documents every column.

Version history
---------------
1
    models, precisions, tasks, runs, records (without ``tokens``/``latency_s``), episodes.
2
    ``records.tokens`` and ``records.latency_s``; the ``turns`` table (one row per player
    turn of a game episode).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone

from ..errors import FormatError

__all__ = [
    "DDL_V1",
    "DDL_V2",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "create_schema",
    "ensure_schema",
    "migrate_1_to_2",
    "migrate_2_to_3",
    "read_schema_version",
]

#: The schema version this code writes.
SCHEMA_VERSION = 3

_META = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_MODELS = """
CREATE TABLE models (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    family                 TEXT,
    n_params               INTEGER,
    n_params_non_embedding INTEGER,
    training_tokens        INTEGER,
    training_flops         REAL,
    release_date           TEXT,
    context_length         INTEGER,
    license                TEXT,
    extra                  TEXT NOT NULL DEFAULT '{}',
    created_at             TEXT NOT NULL
);
"""
_PRECISIONS = """
CREATE TABLE precisions (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    format     TEXT NOT NULL,
    bits       REAL,
    group_size INTEGER,
    symmetric  INTEGER CHECK (symmetric IN (0, 1)),
    settings   TEXT NOT NULL DEFAULT '{}',
    spec       TEXT NOT NULL UNIQUE
);
"""
_TASKS = """
CREATE TABLE tasks (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    version TEXT NOT NULL,
    config  TEXT NOT NULL DEFAULT '{}',
    UNIQUE (name, version)
);
"""
_RUNS_COLUMNS = """
    id             INTEGER PRIMARY KEY,
    model_id       INTEGER NOT NULL REFERENCES models (id),
    precision_id   INTEGER NOT NULL REFERENCES precisions (id),
    task_id        INTEGER NOT NULL REFERENCES tasks (id),
    context_length INTEGER,
    config         TEXT NOT NULL DEFAULT '{}',
    code_version   TEXT NOT NULL,
    seed           INTEGER,
    host           TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    status         TEXT NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'done', 'failed'))"""
_RUNS_INDEX = "\nCREATE INDEX runs_by_key ON runs (model_id, precision_id, task_id, status);\n"
# v3 appends runs.weight_error (ALTER TABLE appends, so a fresh v3 table lists it last too).
_WEIGHT_ERROR = "weight_error TEXT"
_RUNS = f"\nCREATE TABLE runs ({_RUNS_COLUMNS}\n);{_RUNS_INDEX}"
_RUNS_V3 = f"\nCREATE TABLE runs ({_RUNS_COLUMNS},\n    {_WEIGHT_ERROR}\n);{_RUNS_INDEX}"
_RECORDS_V1_COLUMNS = """
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_id        TEXT NOT NULL,
    subtask        TEXT,
    request        TEXT,
    prediction     TEXT,
    scores         TEXT NOT NULL,
    loglikelihoods TEXT,
    created_at     TEXT NOT NULL,"""
# ALTER TABLE appends columns, so v2 lists its new record columns last: a migrated file and a
# fresh one then have identical tables (a test checks this).
_TOKENS = "tokens INTEGER CHECK (tokens IS NULL OR tokens >= 0)"
_LATENCY = "latency_s REAL CHECK (latency_s IS NULL OR latency_s >= 0)"
_RECORDS_V1 = f"""
CREATE TABLE records ({_RECORDS_V1_COLUMNS}
    UNIQUE (run_id, item_id)
);
"""
_RECORDS_V2 = f"""
CREATE TABLE records ({_RECORDS_V1_COLUMNS}
    {_TOKENS},
    {_LATENCY},
    UNIQUE (run_id, item_id)
);
"""
_EPISODES = """
CREATE TABLE episodes (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    game       TEXT NOT NULL,
    experiment TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    instance   TEXT,
    scores     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, game, experiment, episode_id)
);
"""
_TURNS = """
CREATE TABLE turns (
    id            INTEGER PRIMARY KEY,
    episode_rowid INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
    turn          INTEGER NOT NULL CHECK (turn >= 0),
    player        TEXT NOT NULL,
    prompt        TEXT,
    raw_reply     TEXT,
    parsed        TEXT,
    events        TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (episode_rowid, turn, player)
);
"""

#: Version 1: the schema before per-record token counts, latencies and game turns.
DDL_V1 = _META + _MODELS + _PRECISIONS + _TASKS + _RUNS + _RECORDS_V1 + _EPISODES

#: Version 2: adds per-record token counts and latencies, and game turns.
DDL_V2 = _META + _MODELS + _PRECISIONS + _TASKS + _RUNS + _RECORDS_V2 + _EPISODES + _TURNS

#: Version 3, the current schema (a fresh store is created from it): ``runs.weight_error``,
#: the measured weight error statistics of the run's precision (JSON).
DDL_V3 = _META + _MODELS + _PRECISIONS + _TASKS + _RUNS_V3 + _RECORDS_V2 + _EPISODES + _TURNS

#: The body of :func:`migrate_1_to_2`.
_V1_TO_V2 = f"""
ALTER TABLE records ADD COLUMN {_TOKENS};
ALTER TABLE records ADD COLUMN {_LATENCY};
{_TURNS}"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _code_version() -> str:
    from .. import __version__

    return str(__version__)


def _executescript(conn: sqlite3.Connection, script: str) -> None:
    # ``Connection.executescript`` would COMMIT the open transaction first; run statement by
    # statement instead so that creation and migrations stay inside the caller's transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Migrate a version-1 store to version 2, inside the caller's transaction.

    Adds ``records.tokens`` (INTEGER, NULL for old rows) and ``records.latency_s`` (REAL,
    NULL for old rows) and creates the empty ``turns`` table. Existing rows are untouched.
    """
    _executescript(conn, _V1_TO_V2)
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated_1_to_2', ?)",
        (f"{_now()} by capscale {_code_version()}",),
    )


def migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Migrate a version-2 store to version 3, inside the caller's transaction.

    Adds ``runs.weight_error`` (TEXT JSON, NULL for old runs). Existing rows are untouched.
    """
    conn.execute(f"ALTER TABLE runs ADD COLUMN {_WEIGHT_ERROR}")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated_2_to_3', ?)",
        (f"{_now()} by capscale {_code_version()}",),
    )


#: ``MIGRATIONS[v]`` takes a store from schema version ``v`` to ``v + 1``.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: migrate_1_to_2,
    2: migrate_2_to_3,
}


def create_schema(conn: sqlite3.Connection, version: int = SCHEMA_VERSION) -> None:
    """Create the tables of schema ``version`` (1, 2 or 3) in an empty database.

    Runs inside the caller's transaction. Versions 1 and 2 exist for tests of the migrations.
    """
    ddl = {1: DDL_V1, 2: DDL_V2, 3: DDL_V3}.get(version)
    if ddl is None:
        raise ValueError(f"no DDL for schema version {version}")
    _executescript(conn, ddl)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("schema_version", str(version)),
            ("created_at", _now()),
            ("capscale_version", _code_version()),
        ],
    )


def read_schema_version(conn: sqlite3.Connection, path: str) -> int | None:
    """The schema version of an open database; ``None`` when it holds no table at all.

    Raises
    ------
    FormatError
        The database has tables but is not a capscale store (no ``meta`` table or no valid
        ``schema_version``).
    """
    tables = sorted(
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    )
    if not tables:
        return None
    if "meta" not in tables:
        raise FormatError(
            f"{path}: an SQLite database but not a capscale store (no 'meta' table; "
            f"tables: {', '.join(tables)})"
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise FormatError(
            f"{path}: not a capscale store (meta.schema_version is {row and row[0]!r})"
        ) from None


def _check_not_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise FormatError(
            f"{path}: store has schema version {version}, newer than schema version "
            f"{SCHEMA_VERSION} that capscale {_code_version()} reads and writes; upgrade capscale"
        )
    if version < 1:
        raise FormatError(f"{path}: invalid store schema version {version}")


def ensure_schema(conn: sqlite3.Connection, path: str) -> int | None:
    """Create the schema in an empty database or migrate an older one to the current version.

    The connection must be in autocommit mode (``isolation_level=None``). Creation and
    migration run in one ``BEGIN IMMEDIATE`` transaction and re-read the version under the
    write lock, so concurrent openers neither create twice nor migrate twice.

    Returns
    -------
    int or None
        The version found before migrating (``None`` for a newly created store).
    """
    version = read_schema_version(conn, path)
    if version == SCHEMA_VERSION:
        return version
    if version is not None:
        _check_not_newer(version, path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = read_schema_version(conn, path)
        found = version
        if version is None:
            create_schema(conn)
        else:
            _check_not_newer(version, path)
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
