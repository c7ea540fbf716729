"""``capscale fit``: fit a scaling law to a CSV file and print the result.

Without a CSV it generates one from a known law with noise (the embedded default job), so a
newcomer sees the whole loop — data, native fit, uncertainty — with no input at all.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import tempfile
from typing import Any

import numpy as np

from ..errors import InvalidInputError, ShapeError

#: The example dataset: a loss curve over model size, L(N) = a·N^(−b) + c, with 1% noise.
EXAMPLE_LAW = "saturating_power_law"
EXAMPLE_PARAMS = {"a": 406.4, "b": 0.34, "c": 1.69}
EXAMPLE_POINTS = 12
EXAMPLE_NOISE = 0.01


def write_example_csv(path: str, seed: int = 0) -> None:
    """Write the example CSV (columns ``params,loss``) generated from :data:`EXAMPLE_PARAMS`."""
    rng = np.random.default_rng(seed)
    n = np.logspace(7, 10, EXAMPLE_POINTS)
    p = EXAMPLE_PARAMS
    loss = (p["a"] * n ** (-p["b"]) + p["c"]) * (1 + EXAMPLE_NOISE * rng.standard_normal(n.size))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["params", "loss"])
        for row in zip(n, loss, strict=True):
            w.writerow([f"{row[0]:.6g}", f"{row[1]:.10g}"])


def read_csv(path: str) -> tuple[list[str], np.ndarray]:
    """Header and float matrix (rows × columns) of a CSV file with a header line."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise InvalidInputError(f"{path}: needs a header line and at least one data row")
    header = [h.strip() for h in rows[0]]
    data = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ShapeError(f"{path}:{lineno}: {len(row)} fields, header has {len(header)}")
        try:
            data.append([float(c) for c in row])
        except ValueError:
            raise InvalidInputError(f"{path}:{lineno}: non-numeric field in {row}") from None
    return header, np.array(data, dtype=np.float64)


def _column(header: list[str], name: str, path: str) -> int:
    if name in header:
        return header.index(name)
    raise InvalidInputError(f"{path}: no column {name!r}; columns are {header}")


def add_parser(sub: Any) -> None:
    """Register ``capscale fit``."""
    p = sub.add_parser(
        "fit",
        help="fit a scaling law to a CSV file (default: a generated example)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("csv", nargs="?", help="CSV with a header line (default: generated example)")
    p.add_argument("--law", default=None, help=f"law name (default {EXAMPLE_LAW}); see --list")
    p.add_argument("--x", nargs="+", metavar="COL", help="input column(s) (default: first)")
    p.add_argument("--y", metavar="COL", help="response column (default: the next one)")
    p.add_argument("--sigma", metavar="COL", help="column of standard deviations of y")
    p.add_argument("--log-y", action="store_true", help="fit log(y) (e.g. chinchilla_lse)")
    p.add_argument("--loss", default="linear", help="linear, huber, soft_l1, cauchy, arctan")
    p.add_argument("--f-scale", type=float, default=1.0, help="robust loss scale")
    p.add_argument("--p0", nargs="+", type=float, help="starting point (default: law's guess)")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for 95%% intervals (0: none; default 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap / example-data seed")
    p.add_argument("--threads", type=int, default=0, help="worker threads (0: all cores)")
    p.add_argument("--write-example", metavar="PATH", help="write the example CSV here")
    p.add_argument("--list", action="store_true", help="list the built-in laws and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``capscale fit``."""
    from ..fit import bootstrap_fit, curve_fit
    from ..laws import get_law, list_laws

    if args.list:
        for name in list_laws():
            law = get_law(name)
            print(f"{name:<22} {law.formula}   params: {', '.join(law.param_names)}")
        return 0
    generated = args.csv is None
    if generated:
        path = args.write_example or os.path.join(tempfile.mkdtemp(), "example_loss.csv")
        write_example_csv(path, seed=args.seed)
        law = get_law(args.law or EXAMPLE_LAW)
        truth = ", ".join(f"{k}={v}" for k, v in EXAMPLE_PARAMS.items())
        print(
            f"data: {path} (generated: {EXAMPLE_LAW} with {truth}, "
            f"{EXAMPLE_NOISE:.0%} noise, seed {args.seed})"
        )
    else:
        path = args.csv
        law = get_law(args.law or EXAMPLE_LAW)
        print(f"data: {path}")
    header, data = read_csv(path)
    k = law.n_inputs
    x_cols = [_column(header, c, path) for c in args.x] if args.x else list(range(k))
    if len(x_cols) != k:
        raise ShapeError(f"law {law.name} takes {k} input column(s), got {len(x_cols)}")
    y_col = _column(header, args.y, path) if args.y else max(x_cols) + 1
    if y_col >= data.shape[1]:
        raise ShapeError(f"{path}: no response column after the input column(s)")
    x = data[:, x_cols].T if k > 1 else data[:, x_cols[0]]
    y = data[:, y_col]
    sigma = data[:, _column(header, args.sigma, path)] if args.sigma else None
    if args.log_y:
        if np.any(y <= 0):
            raise InvalidInputError("--log-y needs y > 0")
        if sigma is not None:
            sigma = sigma / y  # first-order error propagation: sd(log y) ≈ sd(y) / y
        y = np.log(y)
    opts = {"loss": args.loss, "f_scale": args.f_scale}
    res = curve_fit(law, x, y, p0=args.p0, sigma=sigma, **opts)
    ylabel = f"log({header[y_col]})" if args.log_y else header[y_col]
    inputs = ", ".join(header[c] for c in x_cols)
    print(f"law: {law.name}: {law.formula}   ({ylabel} vs {inputs}, {y.size} points)")
    print(res.summary())
    if args.bootstrap > 0:
        bs = bootstrap_fit(
            law,
            x,
            y,
            p0=res.x,
            sigma=sigma,
            n_resamples=args.bootstrap,
            seed=args.seed,
            n_threads=args.threads,
            **opts,
        )
        lo, hi = bs.ci(0.95)
        print(
            f"\n  bootstrap ({args.bootstrap} resamples, seed {args.seed}, "
            f"{bs.failed_fraction:.1%} failed refits): 95% percentile intervals"
        )
        for j, name in enumerate(law.param_names):
            mark = ""
            if generated and name in EXAMPLE_PARAMS:
                true = EXAMPLE_PARAMS[name]
                mark = f"   true {true:g} {'inside' if lo[j] <= true <= hi[j] else 'OUTSIDE'}"
            print(f"  {name:<12} [{lo[j]:.6g}, {hi[j]:.6g}]{mark}")
    return 0 if res.success and math.isfinite(res.cost) else 1
