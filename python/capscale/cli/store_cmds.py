"""``capscale runs`` and ``capscale export``: look into a results store and export it.

Both open an existing store (an older schema is migrated on opening) and never create one.
"""

from __future__ import annotations

import argparse
from typing import Any

RUNS_DOC = """List the runs of a results store, one line each: id, model, precision, task,
context length, seed, status, number of records and episodes, start and finish times (UTC)."""

EXPORT_DOC = """Export every table of a results store (models, precisions, tasks, runs, records
with one score_<metric> column per metric, episodes, turns) as one file per table."""


def add_parser(sub: Any) -> None:
    """Register ``capscale runs`` and ``capscale export``."""
    p = sub.add_parser("runs", help="list the runs of a results store", description=RUNS_DOC)
    p.add_argument("store", metavar="STORE", help="results store (SQLite file)")
    p.add_argument("--status", help="only runs with this status (running, done, failed)")
    p.set_defaults(run=run_runs)

    p = sub.add_parser("export", help="export a results store", description=EXPORT_DOC)
    p.add_argument("store", metavar="STORE", help="results store (SQLite file)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--format", default="parquet", help="parquet (default; needs pyarrow) or csv")
    p.set_defaults(run=run_export)


def _format_runs(df: Any) -> str:
    import pandas as pd

    def when(ts: Any) -> str:
        return "-" if pd.isna(ts) else ts.strftime("%Y-%m-%d %H:%M:%S")

    def opt(value: Any) -> str:
        return "-" if pd.isna(value) else str(value)

    header = ["id", "model", "precision", "task", "ctx", "seed", "status", "records"]
    header += ["episodes", "started", "finished"]
    rows = [
        [
            str(r.run_id),
            r.model,
            r.precision,
            f"{r.task}@{r.task_version}",
            opt(r.context_length),
            opt(r.seed),
            r.status,
            str(r.n_records),
            str(r.n_episodes),
            when(r.started_at),
            when(r.finished_at),
        ]
        for r in df.itertuples(index=False)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {0, 4, 5, 7, 8}
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run_runs(args: argparse.Namespace) -> int:
    """Execute ``capscale runs``."""
    from ..errors import UnknownNameError, did_you_mean
    from ..store import RUN_STATUSES, Store

    if args.status is not None and args.status not in RUN_STATUSES:
        hint = did_you_mean(args.status, RUN_STATUSES)
        raise UnknownNameError(
            f"unknown status {args.status!r}; {hint + ' ' if hint else ''}"
            f"use one of {', '.join(RUN_STATUSES)}"
        )
    with Store(args.store, create=False) as store:
        df = store.runs()
    if args.status is not None:
        df = df[df["status"] == args.status]
    if df.empty:
        print(f"{args.store}: no runs" + (f" with status {args.status!r}" if args.status else ""))
        return 0
    print(_format_runs(df))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Execute ``capscale export``."""
    from ..store import Store

    with Store(args.store, create=False) as store:
        written = store.export(args.out, format=args.format)
    for name, path in written.items():
        print(f"{name:<10} {path}")
    return 0
