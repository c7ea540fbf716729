"""``capscale summarize``: mean scores per group of a results store, with bootstrap CIs."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InvalidInputError, UnknownNameError, did_you_mean

DOC = """Summarize the per-item scores of a results store: one row per group (default: model ×
precision) with the number of items, the mean, its standard error and a bootstrap confidence
interval. Groups also split by task when the selection holds more than one task."""


def add_parser(sub: Any) -> None:
    """Register ``capscale summarize``."""
    p = sub.add_parser("summarize", help="mean scores with bootstrap CIs", description=DOC)
    p.add_argument("store", metavar="STORE", help="results store (SQLite file)")
    p.add_argument("--by", default="model,precision", help="comma-separated grouping columns")
    p.add_argument("--metric", help="score to summarize (default: the only one stored)")
    p.add_argument("--task", action="append", help="only this task (repeatable)")
    p.add_argument("--ci", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap replicates")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--method", default="percentile", help="percentile or bca")
    p.add_argument("--stratify", action="store_true", help="resample within subtasks")
    p.add_argument("--cluster", metavar="COL", help="resample whole clusters of this column")
    p.add_argument("--nan", default="raise", help="raise or omit NaN scores")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``capscale summarize``."""
    from ..stats import summarize
    from ..store import Store

    with Store(args.store, create=False) as store:
        records = store.records(task=args.task)
    if records.empty:
        raise InvalidInputError(f"{args.store}: no records to summarize")
    metrics = [c[len("score_") :] for c in records.columns if c.startswith("score_")]
    metric = args.metric
    if metric is None:
        if len(metrics) != 1:
            raise InvalidInputError(
                f"the records hold {len(metrics)} metrics ({', '.join(metrics)}); pick one "
                "with --metric"
            )
        metric = metrics[0]
    if metric not in metrics:
        hint = did_you_mean(metric, metrics)
        raise UnknownNameError(
            f"unknown metric {metric!r}; {hint + ' ' if hint else ''}stored: {', '.join(metrics)}"
        )
    by = [c.strip() for c in args.by.split(",") if c.strip()]
    if "task" not in by and records["task"].nunique() > 1:
        by.append("task")
    table = summarize(
        records,
        by=by,
        metric=f"score_{metric}",
        ci=args.ci,
        n_resamples=args.n_resamples,
        seed=args.seed,
        method=args.method,
        strata="subtask" if args.stratify else None,
        cluster=args.cluster,
        nan=args.nan,
    )
    level = f"{args.ci:.0%}"
    print(
        f"{metric}: mean ± stderr, {level} {args.method} bootstrap CI "
        f"({args.n_resamples} resamples, seed {args.seed})"
    )
    header = [*by, "n", "mean", "stderr", f"{level} CI"]
    rows = [
        [
            *(str(getattr(r, c)) for c in by),
            str(r.n),
            f"{r.mean:.4f}",
            f"{r.stderr:.4f}",
            f"[{r.ci_low:.4f}, {r.ci_high:.4f}]",
        ]
        for r in table.itertuples(index=False)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
