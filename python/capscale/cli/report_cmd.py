"""``capscale report``: a self-contained HTML report of a study."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``capscale report``."""
    p = sub.add_parser(
        "report",
        help="write an HTML report of a study",
        description="An HTML report: the store's runs and scores with CIs, and law fits.",
    )
    p.add_argument("--store", help="results store (SQLite file)")
    p.add_argument(
        "--fit",
        action="append",
        default=[],
        metavar="FIT.json",
        help="a saved law fit to include (repeatable)",
    )
    p.add_argument("--metric", help="score of the store to show")
    p.add_argument("--task", help="only this task")
    p.add_argument("--title", default="capscale study")
    p.add_argument("--out", required=True, metavar="REPORT.html")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``capscale report``."""
    from ..report import build_report

    path = build_report(
        args.out,
        store=args.store,
        fits=args.fit,
        metric=args.metric,
        task=args.task,
        title=args.title,
    )
    print(f"report written to {path}")
    return 0
