"""``capscale laws``: list, fit and predict with the law families of the source papers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import InvalidInputError

DOC = """Fit the laws of the source papers (Chinchilla allocation, observational scaling,
capability density, context-aware, precision, clembench size) to a CSV table or a results
store, save the fit as JSON, and predict new models with confidence intervals."""


def add_parser(sub: Any) -> None:
    """Register ``capscale laws list|fit|predict``."""
    p = sub.add_parser("laws", help="fit and predict with the papers' laws", description=DOC)
    lsub = p.add_subparsers(dest="laws_command", metavar="ACTION")
    ls = lsub.add_parser("list", help="list the law families and the columns they need")
    ls.set_defaults(run=run_list)

    f = lsub.add_parser("fit", help="fit a law family to a CSV table or a results store")
    f.add_argument("--law", required=True, help="law family (see `capscale laws list`)")
    f.add_argument("--data", required=True, help="CSV file or results store (SQLite)")
    f.add_argument("--metric", help="for a store: the score to fit")
    f.add_argument("--task", help="for a store: only this task")
    f.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="family option (value parsed as JSON when possible); repeatable",
    )
    f.add_argument("--save", metavar="FIT.json", help="write the fit as JSON")
    f.add_argument("--plot", metavar="FIG.png", help="save the family's figure")
    f.set_defaults(run=run_fit)

    pr = lsub.add_parser("predict", help="predict new rows with a saved fit")
    pr.add_argument("--fit", required=True, metavar="FIT.json", help="a fit saved by `laws fit`")
    pr.add_argument("--data", required=True, help="CSV of the rows to predict")
    pr.add_argument("--ci", type=float, default=0.95, help="confidence level (default 0.95)")
    pr.add_argument("--out", metavar="OUT.csv", help="write the predictions here")
    pr.set_defaults(run=run_predict)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings → a dict (values parsed as JSON, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--option must look like KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def run_list(args: argparse.Namespace) -> int:
    """Execute ``capscale laws list``."""
    from ..laws.family import get_family, list_families

    for name in list_families():
        fam = get_family(name)
        cols = ", ".join(fam.required_columns) or "-"
        print(f"{name:<20} {fam.description}\n{'':<20} columns: {cols}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    """Execute ``capscale laws fit``."""
    from ..laws.data import is_store, load_table
    from ..laws.family import get_family

    family = get_family(args.law)
    if is_store(args.data):
        table = family.from_store(args.data, metric=args.metric, task=args.task)
    else:
        table = load_table(args.data)
    fitted = family.fit(table, **parse_options(args.option))
    print(fitted.summary())
    if args.save:
        fitted.save(args.save)
        print(f"\nfit saved to {args.save}")
    if args.plot:
        save_plot(fitted, args.plot)
        print(f"figure saved to {args.plot}")
    return 0


def save_plot(fitted: Any, path: str) -> None:
    """Draw ``fitted.plot`` on a new off-screen figure and save it as PNG."""
    from ..report.figures import render_png

    with open(path, "wb") as fh:
        fh.write(render_png(fitted.plot))


def run_predict(args: argparse.Namespace) -> int:
    """Execute ``capscale laws predict``."""
    import pandas as pd

    from ..laws.family import load_fit

    fitted = load_fit(args.fit)
    rows = pd.read_csv(args.data)
    pred = fitted.predict(rows, ci=args.ci)
    if args.out:
        pred.to_csv(args.out, index=False)
        print(f"{len(pred)} predictions written to {args.out}")
    else:
        print(pred.to_string(index=False))
    return 0
