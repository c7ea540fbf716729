"""The :class:`Store`: one SQLite connection, transactional idempotent writers, pandas readers."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CapscaleError, FormatError, InvalidInputError, UnknownNameError, did_you_mean
from . import _values as v
from . import reader
from .schema import SCHEMA_VERSION, _code_version, _now, ensure_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RUN_STATUSES", "Store", "open_store"]

#: Values of ``runs.status``: ``running`` until :meth:`Store.finish_run` sets ``done`` or
#: ``failed``.
RUN_STATUSES = ("running", "done", "failed")

ModelRef = str | int | Mapping[str, Any]
PrecisionRef = str | int | Mapping[str, Any]
TaskRef = str | int | tuple[str, str | int] | Mapping[str, Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _unknown(kind: str, name: Any, known: Sequence[str]) -> UnknownNameError:
    hint = did_you_mean(str(name), known)
    shown = ", ".join(repr(k) for k in known[:20]) + (" …" if len(known) > 20 else "")
    return UnknownNameError(
        f"unknown {kind} {name!r}; {hint + ' ' if hint else ''}"
        f"{'known: ' + shown if known else 'the store has none'}"
    )


class Store:
    """A results store: an SQLite file of models, precisions, tasks, runs and their records.

    Opening creates the file (when ``create``) or migrates an older schema to
    :data:`~capscale.store.SCHEMA_VERSION`. The connection uses WAL journaling (readers never
    block the writer nor see a half-written transaction), ``foreign_keys = ON``,
    ``synchronous = NORMAL`` (a committed transaction survives the process being killed) and a
    busy timeout, so several processes may read while one writes. One ``Store`` object belongs
    to one thread; open one per thread or process.

    Every writer is one transaction (all or nothing) and idempotent: records and episodes are
    keyed by ``(run_id, item_id)`` and ``(run_id, game, experiment, episode_id)``, and writing
    a key that is already stored is a no-op (the first write wins), so a study killed at any
    point resumes with nothing lost or duplicated (see :meth:`start_run`).

    Parameters
    ----------
    path : str or os.PathLike
        The database file (``":memory:"`` for a private in-memory store).
    create : bool, default True
        Create the file when it does not exist; otherwise raise :class:`FileNotFoundError`.
    timeout : float, default 30.0
        Seconds to wait for another connection's write lock before failing.

    Raises
    ------
    FormatError
        The file is not an SQLite database, not a capscale store, or was written by a newer
        capscale (its schema version is above ``SCHEMA_VERSION``; the message names both).
    FileNotFoundError
        ``create=False`` and there is no file at ``path``.

    Examples
    --------
    >>> with Store("results.db") as store:  # doctest: +SKIP
    ...     run = store.start_run({"name": "gpt2", "n_params": 124_439_808}, "fp16",
    ...                           ("hellaswag", "1"), config={"shots": 0}, seed=0)
    ...     todo = [x for x in items if x.id not in store.done_items(run)]
    ...     store.add_records(run, [{"item_id": x.id, "scores": {"acc": 1.0}} for x in todo])
    ...     store.finish_run(run)
    ...     df = store.records(task="hellaswag")
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, timeout: float = 30.0
    ) -> None:
        self.path = os.fspath(path)
        self._conn: sqlite3.Connection | None = None
        if self.path != ":memory:":
            if os.path.isdir(self.path):
                raise IsADirectoryError(f"{self.path} is a directory, not a capscale store")
            if not create and not os.path.exists(self.path):
                raise FileNotFoundError(f"no capscale store at {self.path}")
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            #: Schema version the file had when opened (``None``: created by this call).
            self.opened_version = ensure_schema(conn, self.path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise
            raise FormatError(f"{self.path}: not an SQLite database ({exc})") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- connection ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """The open ``sqlite3`` connection (autocommit mode; for ad-hoc read queries)."""
        if self._conn is None:
            raise CapscaleError(f"store {self.path} is closed")
        return self._conn

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always ``SCHEMA_VERSION`` after opening)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the connection (idempotent). Committed data is already on disk."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"schema {SCHEMA_VERSION}"
        return f"Store({self.path!r}, {state})"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- models, precisions, tasks -------------------------------------------------------------

    def _upsert_model(self, conn: sqlite3.Connection, card: Any) -> int:
        row = v.model_row(card)
        cols = [c for c in row if c != "name"]
        update = ", ".join(f"{c} = excluded.{c}" for c in cols)
        conn.execute(
            f"INSERT INTO models (name, created_at{''.join(', ' + c for c in cols)}) "
            f"VALUES (?, ?{', ?' * len(cols)}) ON CONFLICT (name) DO "
            + (f"UPDATE SET {update}" if cols else "NOTHING"),
            [row["name"], _now(), *(row[c] for c in cols)],
        )
        return int(
            conn.execute("SELECT id FROM models WHERE name = ?", [row["name"]]).fetchone()[0]
        )

    def upsert_model(self, card: Mapping[str, Any]) -> int:
        """Insert a model card, or update the stored card of the same ``name``.

        Parameters
        ----------
        card : mapping (or dataclass / object with ``to_dict()``)
            ``name`` (required, unique), ``family``, ``n_params`` (parameters, count),
            ``n_params_non_embedding`` (count), ``training_tokens`` (count),
            ``training_flops`` (total training compute, FLOPs), ``release_date`` (ISO date
            ``YYYY-MM-DD`` or ``datetime.date``), ``context_length`` (tokens), ``license``,
            ``extra`` (a JSON-serialisable mapping). Fields that are absent or ``None`` keep
            their stored value; given fields overwrite it.

        Returns
        -------
        int
            The model's id.

        Raises
        ------
        UnknownNameError
            An unknown field (with a did-you-mean suggestion).
        InvalidInputError
            A field of the wrong type or range (e.g. ``n_params <= 0``, a malformed date).
        """
        with self._write() as conn:
            return self._upsert_model(conn, card)

    def _upsert_precision(self, conn: sqlite3.Connection, spec: Any) -> int:
        row = v.precision_row(spec)
        conn.execute(
            "INSERT OR IGNORE INTO precisions (name, format, bits, group_size, symmetric, "
            "settings, spec) VALUES (:name, :format, :bits, :group_size, :symmetric, "
            ":settings, :spec)",
            row,
        )
        found = conn.execute("SELECT id FROM precisions WHERE spec = ?", [row["spec"]]).fetchone()
        return int(found[0])

    def upsert_precision(self, spec: Mapping[str, Any]) -> int:
        """Insert a numeric-precision spec unless an identical one is stored.

        Parameters
        ----------
        spec : mapping
            ``format`` (required; one of :data:`~capscale.store.PRECISION_FORMATS`),
            ``bits`` (nominal bits per weight; filled in for fixed-width formats such as
            fp16 → 16, nf4 → 4), ``group_size`` (weights per quantization group),
            ``symmetric`` (bool), ``settings`` (a JSON-serialisable mapping of anything else,
            e.g. ``{"type": "Q4_K"}`` for GGUF), ``name`` (default derived, e.g.
            ``"affine-4bit-g128"``). A spec is identified by the canonical JSON of all six
            fields, so the same spec always maps to the same id.

        Returns
        -------
        int
            The precision's id.
        """
        with self._write() as conn:
            return self._upsert_precision(conn, spec)

    def _upsert_task(
        self, conn: sqlite3.Connection, name: Any, version: Any, config: Any = None
    ) -> int:
        name = v.text(name, "task name", required=True)
        version = v.identifier(version, f"task {name!r} version")
        if config is not None and not isinstance(config, Mapping):
            raise InvalidInputError(f"task {name!r} config must be a mapping")
        config_json = None if config is None else v.dumps(config, f"task {name!r} config")
        row = conn.execute(
            "SELECT id, config FROM tasks WHERE name = ? AND version = ?", [name, version]
        ).fetchone()
        if row is None:
            cur = conn.execute(
                "INSERT INTO tasks (name, version, config) VALUES (?, ?, ?)",
                [name, version, config_json or "{}"],
            )
            return int(cur.lastrowid or 0)
        if config_json is not None and config_json != row[1]:
            if row[1] != "{}":
                raise InvalidInputError(
                    f"task {name!r} version {version!r} is stored with a different config "
                    f"({row[1]}); a changed task needs a new version"
                )
            conn.execute("UPDATE tasks SET config = ? WHERE id = ?", [config_json, row[0]])
        return int(row[0])

    def upsert_task(
        self, name: str, version: str | int, config: Mapping[str, Any] | None = None
    ) -> int:
        """Insert a task ``(name, version)`` unless stored; returns its id.

        Parameters
        ----------
        name : str
            Task name, e.g. ``"hellaswag"``.
        version : str or int
            Task version (ints are stored as their decimal string).
        config : mapping, optional
            The task's configuration (JSON-serialisable). A version's config is fixed: giving
            a different config for a stored version raises :class:`InvalidInputError`.
        """
        with self._write() as conn:
            return self._upsert_task(conn, name, version, config)

    def _model_id(self, conn: sqlite3.Connection, model: Any) -> int:
        if _is_int(model):
            if conn.execute("SELECT 1 FROM models WHERE id = ?", [int(model)]).fetchone():
                return int(model)
            raise UnknownNameError(f"unknown model id {int(model)}")
        if isinstance(model, str):
            row = conn.execute("SELECT id FROM models WHERE name = ?", [model]).fetchone()
            if row is None:
                raise _unknown("model", model, self._names(conn, "models"))
            return int(row[0])
        return self._upsert_model(conn, model)

    def _precision_id(self, conn: sqlite3.Connection, precision: Any) -> int:
        if _is_int(precision):
            if conn.execute("SELECT 1 FROM precisions WHERE id = ?", [int(precision)]).fetchone():
                return int(precision)
            raise UnknownNameError(f"unknown precision id {int(precision)}")
        if isinstance(precision, str):
            ids = [
                r[0] for r in conn.execute("SELECT id FROM precisions WHERE name = ?", [precision])
            ]
            if len(ids) == 1:
                return int(ids[0])
            if len(ids) > 1:
                raise InvalidInputError(
                    f"precision name {precision!r} is ambiguous (ids {ids}); pass the id or spec"
                )
            if precision in v.PRECISION_FORMATS:  # shorthand: "fp16" → {"format": "fp16"}
                return self._upsert_precision(conn, {"format": precision})
            known = sorted(set(self._names(conn, "precisions")) | set(v.PRECISION_FORMATS))
            raise _unknown("precision", precision, known)
        return self._upsert_precision(conn, precision)

    def _task_id(self, conn: sqlite3.Connection, task: Any) -> int:
        if _is_int(task):
            if conn.execute("SELECT 1 FROM tasks WHERE id = ?", [int(task)]).fetchone():
                return int(task)
            raise UnknownNameError(f"unknown task id {int(task)}")
        if isinstance(task, str):
            rows = conn.execute("SELECT id, version FROM tasks WHERE name = ?", [task]).fetchall()
            if len(rows) == 1:
                return int(rows[0][0])
            if len(rows) > 1:
                versions = ", ".join(repr(r[1]) for r in rows)
                raise InvalidInputError(
                    f"task {task!r} has several versions ({versions}); pass (name, version)"
                )
            raise _unknown("task", task, self._names(conn, "tasks"))
        if isinstance(task, tuple) and len(task) == 2:
            return self._upsert_task(conn, task[0], task[1])
        if isinstance(task, Mapping):
            v.check_fields(task, ("name", "version", "config"), "task")
            return self._upsert_task(
                conn, task.get("name"), task.get("version"), task.get("config")
            )
        raise InvalidInputError(
            "task must be a task id, a name, a (name, version) tuple or a mapping with "
            f"name/version/config, got {type(task).__name__}"
        )

    @staticmethod
    def _names(conn: sqlite3.Connection, table: str) -> list[str]:
        return [r[0] for r in conn.execute(f"SELECT DISTINCT name FROM {table} ORDER BY name")]

    # -- runs ----------------------------------------------------------------------------------

    def start_run(
        self,
        model: ModelRef,
        precision: PrecisionRef,
        task: TaskRef,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        context_length: int | None = None,
        *,
        code_version: str | None = None,
        host: str | None = None,
    ) -> int:
        """Start a run, or resume the unfinished run of the same configuration.

        A run is identified by (model, precision, task, context length, canonical JSON of
        ``config``, seed). When a run with that identity has status ``running`` (its writer was
        killed, or is still writing), its id is returned and nothing is created: the caller
        skips :meth:`done_items` and writes the rest. Finished runs (``done`` or ``failed``)
        are never reopened; the same call then starts a new run (a repeat measurement).

        Parameters
        ----------
        model : str, int or mapping
            A stored model's name or id, or a model card (upserted; see :meth:`upsert_model`).
        precision : str, int or mapping
            A stored precision's name or id, a format name as shorthand for ``{"format": name}``
            (e.g. ``"fp16"``), or a spec (upserted; see :meth:`upsert_precision`).
        task : str, int, (name, version) or mapping
            A stored task's name (when it has one version) or id, or ``(name, version)`` /
            ``{"name", "version", "config"}`` (upserted).
        config : mapping, optional
            Run configuration (batch size, few-shot count, generation settings …);
            JSON-serialisable. Part of the run's identity.
        seed : int, optional
            The run's random seed; part of its identity.
        context_length : int, optional
            Context length the run evaluates at (tokens); ``None`` means the model's default.
        code_version : str, optional
            Recorded version of the evaluating code (default: capscale's version).
        host : str, optional
            Recorded host name (default: ``socket.gethostname()``).

        Returns
        -------
        int
            The run id.
        """
        if config is not None and not isinstance(config, Mapping):
            raise InvalidInputError(f"run config must be a mapping, got {type(config).__name__}")
        config_json = v.dumps(dict(config or {}), "run config")
        if seed is not None and not _is_int(seed):
            raise InvalidInputError(f"seed must be an int or None, got {type(seed).__name__}")
        ctx = v.count(context_length, "context_length")
        with self._write() as conn:
            ids = (self._model_id(conn, model), self._precision_id(conn, precision))
            key = (*ids, self._task_id(conn, task), ctx, config_json, seed)
            row = conn.execute(
                "SELECT id FROM runs WHERE model_id = ? AND precision_id = ? AND task_id = ? "
                "AND context_length IS ? AND config = ? AND seed IS ? AND status = 'running' "
                "ORDER BY id DESC LIMIT 1",
                key,
            ).fetchone()
            if row is not None:
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO runs (model_id, precision_id, task_id, context_length, config, "
                "seed, code_version, host, started_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                [
                    *key,
                    code_version or _code_version(),
                    host or socket.gethostname(),
                    _now(),
                ],
            )
            return int(cur.lastrowid or 0)

    def completed_run(
        self,
        model: ModelRef,
        precision: PrecisionRef,
        task: TaskRef,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        context_length: int | None = None,
    ) -> int | None:
        """The newest ``done`` run with this identity (arguments as :meth:`start_run`), or
        ``None``: what a sweep checks to skip a finished cell."""
        if config is not None and not isinstance(config, Mapping):
            raise InvalidInputError(f"run config must be a mapping, got {type(config).__name__}")
        config_json = v.dumps(dict(config or {}), "run config")
        ctx = v.count(context_length, "context_length")
        with self._write() as conn:
            ids = (self._model_id(conn, model), self._precision_id(conn, precision))
            key = (*ids, self._task_id(conn, task), ctx, config_json, seed)
            row = conn.execute(
                "SELECT id FROM runs WHERE model_id = ? AND precision_id = ? AND task_id = ? "
                "AND context_length IS ? AND config = ? AND seed IS ? AND status = 'done' "
                "ORDER BY id DESC LIMIT 1",
                key,
            ).fetchone()
        return None if row is None else int(row[0])

    def set_weight_error(self, run_id: int, stats: Mapping[str, Any] | None) -> None:
        """Record the measured weight error statistics of a run's precision (JSON object:
        e.g. ``relative_rmse``, ``sqnr_db``, ``bits_per_weight``, per-layer details), or clear
        them with ``None``. Allowed on finished runs too (it describes, not measures)."""
        if stats is not None and not isinstance(stats, Mapping):
            raise InvalidInputError(f"weight error stats must be a mapping, got {type(stats)}")
        text = None if stats is None else v.dumps(dict(stats), "weight error stats")
        with self._write() as conn:
            self._run_status(conn, run_id)
            conn.execute("UPDATE runs SET weight_error = ? WHERE id = ?", [text, int(run_id)])

    def _run_status(self, conn: sqlite3.Connection, run_id: Any) -> str:
        if not _is_int(run_id):
            raise InvalidInputError(f"run_id must be an int, got {type(run_id).__name__}")
        row = conn.execute("SELECT status FROM runs WHERE id = ?", [int(run_id)]).fetchone()
        if row is None:
            known = [str(r[0]) for r in conn.execute("SELECT id FROM runs ORDER BY id")]
            shown = ", ".join(known[-20:]) if known else "none"
            raise UnknownNameError(f"unknown run id {run_id!r}; the store's runs: {shown}")
        return str(row[0])

    def _check_running(self, conn: sqlite3.Connection, run_id: Any) -> None:
        status = self._run_status(conn, run_id)
        if status != "running":
            raise InvalidInputError(
                f"run {run_id} is finished (status {status!r}); start a new run to add to it"
            )

    def finish_run(self, run_id: int, status: str = "done") -> None:
        """Mark a run finished: ``status`` ``"done"`` or ``"failed"``, ``finished_at`` now.

        Finishing a run again with the same status is a no-op (``finished_at`` is kept).
        """
        if status not in RUN_STATUSES[1:]:
            hint = did_you_mean(str(status), RUN_STATUSES[1:])
            raise UnknownNameError(
                f"unknown final run status {status!r}; {hint + ' ' if hint else ''}"
                "use 'done' or 'failed'"
            )
        with self._write() as conn:
            if self._run_status(conn, run_id) != status:
                conn.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                    [status, _now(), int(run_id)],
                )

    def done_items(self, run_id: int) -> set[str]:
        """The ``item_id`` of every record stored for a run (what a resumed run skips)."""
        conn = self.conn
        self._run_status(conn, run_id)
        rows = conn.execute("SELECT item_id FROM records WHERE run_id = ?", [int(run_id)])
        return {r[0] for r in rows}

    def add_records(self, run_id: int, records: Iterable[Mapping[str, Any]]) -> int:
        """Store per-item records of a running run, in one transaction; returns how many were new.

        Each record is a mapping with ``item_id`` (str, or int stored as str; required,
        unique within the run), ``scores`` (required mapping metric → number; bools become
        0/1, NaN and None are stored as null and read back as NaN, ±inf raises), and
        optionally ``subtask`` (str), ``request`` (JSON-serialisable: the prompt/request
        sent), ``prediction`` (str), ``loglikelihoods`` (JSON-serialisable, e.g. a list of
        per-choice log-likelihoods in nats), ``tokens`` (count of tokens processed) and
        ``latency_s`` (wall-clock seconds).

        The call is all or nothing: the records are validated first, then inserted in one
        transaction. It is idempotent: a record whose ``item_id`` is already stored for the
        run is skipped (the stored one wins).

        Raises
        ------
        UnknownNameError
            Unknown run id, or an unknown record field (with a did-you-mean suggestion).
        InvalidInputError
            A malformed record (missing ``item_id``/``scores``, scores not a mapping, a value
            of the wrong type), the same ``item_id`` twice in one call, or a finished run.
        NonFiniteError
            An infinite score or value.
        """
        rows = [v.record_row(record, i) for i, record in enumerate(records)]
        seen: set[str] = set()
        for row in rows:
            if row[0] in seen:
                raise InvalidInputError(f"item_id {row[0]!r} appears twice in one add_records call")
            seen.add(row[0])
        now = _now()
        with self._write() as conn:
            self._check_running(conn, run_id)
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO records (run_id, item_id, subtask, request, prediction, "
                "scores, loglikelihoods, tokens, latency_s, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(int(run_id), *row, now) for row in rows],
            )
            return conn.total_changes - before

    def add_episode(
        self,
        run_id: int,
        episode: Mapping[str, Any],
        turns: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """Store one game episode and its turns, in one transaction; ``False`` if already stored.

        Parameters
        ----------
        run_id : int
            A running run.
        episode : mapping
            ``game``, ``experiment`` (str), ``episode_id`` (str or int), ``instance``
            (JSON-serialisable game instance), ``scores`` (mapping name → number: clembench's
            episode scores ``Aborted``, ``Lose``, ``Success``, ``Request Count``,
            ``Parsed Request Count``, ``Violated Request Count``, ``Request Success Ratio``,
            ``Main Score`` and any game-specific ones; NaN/None stored as null).
        turns : iterable of mapping
            One per player turn: ``turn`` (0-based index), ``player`` (e.g. ``"Player 1"``),
            ``prompt`` (JSON: the messages sent), ``raw_reply`` (str), ``parsed`` (JSON),
            ``events`` (JSON: the game master's logged actions). ``(turn, player)`` is unique.

        Returns
        -------
        bool
            ``True`` when the episode was new; ``False`` when ``(run_id, game, experiment,
            episode_id)`` was stored already (nothing is written then, turns included).
        """
        game, experiment, episode_id, instance, scores = v.episode_row(episode)
        turn_rows = v.turn_rows(turns, f"episode {game}/{experiment}/{episode_id}")
        now = _now()
        with self._write() as conn:
            self._check_running(conn, run_id)
            cur = conn.execute(
                "INSERT OR IGNORE INTO episodes (run_id, game, experiment, episode_id, instance, "
                "scores, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [int(run_id), game, experiment, episode_id, instance, scores, now],
            )
            if cur.rowcount == 0:
                return False
            rowid = cur.lastrowid
            conn.executemany(
                "INSERT INTO turns (episode_rowid, turn, player, prompt, raw_reply, parsed, "
                "events, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(rowid, *row, now) for row in turn_rows],
            )
            return True

    def done_episodes(self, run_id: int) -> set[tuple[str, str, str]]:
        """``(game, experiment, episode_id)`` of every episode stored for a run."""
        conn = self.conn
        self._run_status(conn, run_id)
        rows = conn.execute(
            "SELECT game, experiment, episode_id FROM episodes WHERE run_id = ?", [int(run_id)]
        )
        return {(r[0], r[1], r[2]) for r in rows}

    # -- readers (pandas) ----------------------------------------------------------------------

    def runs(self) -> pd.DataFrame:
        """One row per run: names, identity, status, times and counts.

        Columns: ``run_id``, ``model``, ``precision``, ``task``, ``task_version``,
        ``context_length`` (tokens; <NA> = model default), ``seed``, ``status``,
        ``n_records``, ``n_episodes``, ``started_at``, ``finished_at`` (UTC timestamps),
        ``code_version``, ``host``, ``config`` (JSON text).
        """
        return reader.runs_frame(self.conn)

    def records(
        self,
        run_id: int | Sequence[int] | None = None,
        model: str | Sequence[str] | None = None,
        precision: str | Sequence[str] | None = None,
        task: str | Sequence[str] | None = None,
        *,
        metrics: Sequence[str] | None = None,
        score_prefix: str = "score_",
    ) -> pd.DataFrame:
        """Per-item records, one row each, with scores expanded and the model card joined.

        Parameters
        ----------
        run_id, model, precision, task : optional
            Filters: a value or a sequence of values (names for model/precision/task). An
            unknown value raises :class:`UnknownNameError` with a did-you-mean suggestion.
        metrics : sequence of str, optional
            Keep only these score columns (an unknown metric raises). Default: all metrics.
        score_prefix : str, default ``"score_"``
            Score ``m`` becomes column ``score_prefix + m`` (``score_acc``); NaN where a record
            has no such score or stored null. ``""`` keeps the bare names (a name that
            collides with another column then raises).

        Returns
        -------
        pandas.DataFrame
            ``run_id``, ``model``, ``precision``, ``task``, ``task_version``,
            ``context_length``, ``seed``, ``item_id``, ``subtask``, the score columns,
            ``prediction``, ``request`` and ``loglikelihoods`` (JSON text), ``tokens``,
            ``latency_s`` (seconds), ``created_at`` (UTC), then the model card (``family``,
            ``n_params``, ``n_params_non_embedding``, ``training_tokens``,
            ``training_flops`` (FLOPs), ``release_date``, ``model_context_length``,
            ``license``) and precision (``precision_format``, ``bits``, ``group_size``).
            Rows are in insertion order within each run.
        """
        return reader.records_frame(
            self.conn,
            reader.Filters(run_id, model, precision, task),
            metrics=metrics,
            score_prefix=score_prefix,
        )

    def episodes(
        self,
        run_id: int | Sequence[int] | None = None,
        model: str | Sequence[str] | None = None,
        precision: str | Sequence[str] | None = None,
        task: str | Sequence[str] | None = None,
        game: str | Sequence[str] | None = None,
        *,
        metrics: Sequence[str] | None = None,
        score_prefix: str = "score_",
    ) -> pd.DataFrame:
        """Game episodes, one row each, with the clembench episode scores as columns.

        Filters and ``metrics``/``score_prefix`` as in :meth:`records`, plus ``game``. The
        eight clembench scores (:data:`~capscale.store.EPISODE_SCORES`) are always present,
        in clembench's order (NaN where absent, e.g. ``Main Score`` of an aborted episode),
        followed by any game-specific scores. Other columns: ``run_id``, ``model``,
        ``precision``, ``task``, ``task_version``, ``context_length``, ``seed``, ``game``,
        ``experiment``, ``episode_id``, ``n_turns``, ``instance`` (JSON text),
        ``created_at``, then the model card and precision columns as in :meth:`records`.
        """
        return reader.episodes_frame(
            self.conn,
            reader.Filters(run_id, model, precision, task, game),
            metrics=metrics,
            score_prefix=score_prefix,
        )

    def turns(
        self,
        run_id: int | Sequence[int] | None = None,
        game: str | Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Player turns of game episodes: ``run_id``, ``model``, ``game``, ``experiment``,
        ``episode_id``, ``turn``, ``player``, ``prompt``, ``raw_reply``, ``parsed``,
        ``events`` (JSON text except ``raw_reply``), ``created_at``."""
        return reader.turns_frame(self.conn, reader.Filters(run_id, game=game))

    def models(self) -> pd.DataFrame:
        """The model cards: ``model_id`` and the ``models`` columns (``extra`` as JSON text)."""
        return reader.table_frame(self.conn, "models")

    def precisions(self) -> pd.DataFrame:
        """The precision specs: ``precision_id`` and the ``precisions`` columns."""
        return reader.table_frame(self.conn, "precisions")

    def tasks(self) -> pd.DataFrame:
        """The tasks: ``task_id``, ``name``, ``version``, ``config`` (JSON text)."""
        return reader.table_frame(self.conn, "tasks")

    def export(self, out_dir: str | os.PathLike[str], format: str = "parquet") -> dict[str, Path]:
        """Write every table as a file: models, precisions, tasks, runs, records, episodes, turns.

        Each file holds what the reader of the same name returns (``records.parquet`` is
        :meth:`records` with scores expanded and the model card joined).

        Parameters
        ----------
        out_dir : path
            Directory to write into (created if missing); files are overwritten.
        format : {"parquet", "csv"}
            Parquet needs pyarrow. CSV timestamps are ISO 8601 text.

        Returns
        -------
        dict
            Table name → written path.

        Raises
        ------
        UnknownNameError
            An unknown format (with a did-you-mean suggestion).
        """
        return reader.export(self, out_dir, format)


def open_store(
    path: str | os.PathLike[str], *, create: bool = True, timeout: float = 30.0
) -> Store:
    """Open (create or migrate) a results store; same as :class:`Store` (a context manager)."""
    return Store(path, create=create, timeout=timeout)
