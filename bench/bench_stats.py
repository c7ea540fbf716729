"""Benchmark the native bootstrap against a vectorised NumPy implementation, in one run.

    python bench/bench_stats.py [--quick]

Workload (issue 5): 10,000 bootstrap resamples of the mean of 100,000 item scores. capscale
runs `capscale.stats.bootstrap_mean` on 1 thread and on all threads; the NumPy baseline draws
the resample indices in blocks (`Generator.integers`, 100 resamples × n at a time) and takes
`x[idx].mean(axis=1)` — the usual vectorised formulation. Prints a markdown table of times and
ratios (NumPy time / capscale time); also a paired bootstrap and a stratified one.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import capscale
from _results import cpu_model
from capscale.stats import bootstrap_mean, paired_difference


def numpy_bootstrap(x: np.ndarray, n_resamples: int, seed: int, block: int = 100) -> np.ndarray:
    """Vectorised NumPy bootstrap of the mean: replicate means, shape (n_resamples,)."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        idx = rng.integers(0, x.size, (b, x.size))
        out[start : start + b] = x[idx].mean(axis=1)
    return out


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1,000 resamples instead of 10,000")
    args = ap.parse_args()
    n_items, n_res = 100_000, (1_000 if args.quick else 10_000)
    threads = os.cpu_count() or 1
    x = np.random.default_rng(0).binomial(1, 0.62, n_items).astype(np.float64)

    t_np, reps = timed(lambda: numpy_bootstrap(x, n_res, 0))
    lo_np, hi_np = np.percentile(reps, [2.5, 97.5])
    t_1, iv_1 = timed(lambda: bootstrap_mean(x, n_resamples=n_res, n_threads=1), 2)
    t_all, iv_all = timed(lambda: bootstrap_mean(x, n_resamples=n_res, n_threads=threads), 2)
    assert iv_1 == iv_all  # identical for any thread count

    y = np.clip(x + np.random.default_rng(1).binomial(1, 0.03, n_items), 0, 1)
    t_pair, pd_ = timed(lambda: paired_difference(x, y, n_resamples=n_res, n_threads=threads))
    strata = np.arange(n_items) % 57
    t_strat, st = timed(
        lambda: bootstrap_mean(x, strata=strata, n_resamples=n_res, n_threads=threads)
    )

    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line)
        lines.append(line)

    out(
        f"## Statistics: bootstrap ({'quick' if args.quick else 'full'} run of "
        f"`python bench/bench_stats.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"
    )
    out(
        f"CPU: {cpu_model()}, {threads} threads; numpy {np.__version__}; "
        f"capscale {capscale.__version__}; python {platform.python_version()}"
    )
    out()
    out(f"{n_res:,} bootstrap resamples of the mean of {n_items:,} items (0/1 scores)")
    out()
    out("| implementation | time (s) | NumPy / this | 95% CI |")
    out("|---|---|---|---|")
    out(
        f"| NumPy vectorised (blocks of 100 resamples) | {t_np:.2f} | 1.0× | "
        f"[{lo_np:.5f}, {hi_np:.5f}] |"
    )
    out(
        f"| capscale, 1 thread | {t_1:.2f} | {t_np / t_1:.1f}× | "
        f"[{iv_1.low:.5f}, {iv_1.high:.5f}] |"
    )
    out(
        f"| capscale, {threads} threads | {t_all:.2f} | {t_np / t_all:.1f}× | "
        f"[{iv_all.low:.5f}, {iv_all.high:.5f}] |"
    )
    out(
        f"| capscale paired difference, {threads} threads | {t_pair:.2f} | — | "
        f"[{pd_.low:.5f}, {pd_.high:.5f}], p = {pd_.p_value:.4f} |"
    )
    out(
        f"| capscale stratified (57 strata), {threads} threads | {t_strat:.2f} | — | "
        f"[{st.low:.5f}, {st.high:.5f}] |"
    )
    out()
    out(
        f"target: >= 20x NumPy with all threads -> "
        f"{'met' if t_np / t_all >= 20 else 'not met'} ({t_np / t_all:.1f}x)"
    )
    out(
        "Interval endpoints differ from NumPy's only by resampling noise (different random "
        "streams); the capscale rows are identical for any thread count."
    )
    if not args.quick:
        from _results import update_section

        update_section("bench_stats", "\n".join(lines))


if __name__ == "__main__":
    main()
