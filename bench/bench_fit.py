#!/usr/bin/env python
"""Benchmark capscale's native Levenberg–Marquardt fitting against SciPy, in one run.

Workloads (``../shared/reference/lm-fitting.md`` §1–3 define them, §6 sets the bars):

1. bootstrap of a 3-parameter saturating power law (12 points, 1000 resamples, bounds);
2. the 27 NIST StRD problems from start 2 with analytic Jacobians as Python callables;
3. Chinchilla Approach 3 (240 runs, Huber δ = 1e-3 on log L): one fit, Hoffmann's
   4500-start grid, and a 4000-resample bootstrap.

Every comparison is timed in this run on this machine; ratios are baseline time / capscale
time (> 1: capscale is faster). Nothing here asserts a time (DESIGN.md item 13).

Usage::

    python bench/bench_fit.py            # full run (~1 min on 2 cores); writes bench/RESULTS.md
    python bench/bench_fit.py --quick    # fewer repeats, SciPy grid on 300 starts; no RESULTS.md
"""

from __future__ import annotations

import os

# One BLAS thread, as the reference measurements used (set before numpy/scipy load).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.optimize as so  # noqa: E402

import capscale  # noqa: E402
import capscale.fit as cf  # noqa: E402
from capscale import _native  # noqa: E402
from capscale.errors import CapscaleError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NIST_DIR = SHARED / "nist_strd"
CHINCHILLA_CSV = SHARED / "chinchilla_epoch" / "svg_extracted_data.csv"
SEED = 0
INF = math.inf

# Hoffmann et al.'s unrounded Approach-3 estimates (a, b, e, alpha, beta), lm-fitting.md §3.
HOFFMANN_START = np.array([6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083])
HUBER_DELTA = 1e-3
CHIN_LOWER = [-INF, -INF, -INF, 0.0, 0.0]  # chinchilla_lse default bounds
CHIN_UPPER = [INF, INF, INF, 3.0, 3.0]
EPOCH_OPTIMUM = 1.0182740346e-3
EPOCH_ALPHA_SE = 0.0154


# --------------------------------------------------------------------------- helpers


@dataclass
class Timing:
    """Wall times of repeated runs of one workload (seconds)."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def n(self) -> int:
        return len(self.times)


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> tuple[Timing, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times timed; return the last output."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return Timing(times), out


def fmt_t(seconds: float) -> str:
    """A duration with a sensible unit."""
    if not math.isfinite(seconds):
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_x(ratio: float) -> str:
    return f"{ratio:.2f}×" if math.isfinite(ratio) else "n/a"


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Section:
    title: str
    tables: list[tuple[str, str]] = field(default_factory=list)  # (caption, markdown)
    notes: list[str] = field(default_factory=list)


@dataclass
class Target:
    workload: str
    bar: str
    measured: str
    met: bool


def _busy_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat; 0 if unreadable)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def log(msg: str) -> None:
    print(f"[bench_fit] {msg}", file=sys.stderr, flush=True)


def machine_info() -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    native = Path(_native.__file__)
    built = dt.datetime.fromtimestamp(native.stat().st_mtime, dt.timezone.utc)
    return [
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} logical, {usable} usable"),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("scipy", scipy.__version__),
        ("capscale", f"{capscale.__version__} (git {rev or 'unknown'})"),
        ("native module", f"{native.name}, built {built:%Y-%m-%d %H:%M} UTC"),
        ("BLAS threads", os.environ.get("OPENBLAS_NUM_THREADS", "?")),
        ("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())),
    ]


# ------------------------------------------------------- 1. power-law bootstrap (§2)


def power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * x ** (-b) + c


def bench_bootstrap(quick: bool) -> tuple[Section, list[Target]]:
    sec = Section("1. Bootstrap: saturating power law, 12 points, 1000 resamples, bounds")
    x = np.logspace(7, 10, 12)
    rng = np.random.default_rng(0)
    y_true = power(x, 406.4, 0.34, 1.69)
    y = y_true * (1.0 + 0.01 * rng.standard_normal(x.size))
    p0 = np.array([100.0, 0.3, 1.0])
    lower, upper = [0.0, 0.0, 0.0], [INF, 2.0, INF]
    n_res = 1000
    idx = cf.bootstrap_indices(x.size, n_res, SEED)
    reps = 3 if quick else 9
    rows_t: dict[str, tuple[Timing, np.ndarray, np.ndarray]] = {}

    log("bootstrap: capscale")
    for nt in (1, 2):
        t, r = timed(
            lambda nt=nt: cf.bootstrap_fit(
                "saturating_power_law",
                x,
                y,
                p0=p0,
                bounds=(lower, upper),
                n_resamples=n_res,
                seed=SEED,
                n_threads=nt,
            ),
            reps,
        )
        rows_t[f"capscale bootstrap_fit, {nt} thread{'s' * (nt > 1)}"] = (t, r.x, r.success)
    opts = _native.SolverOptions(lower=lower, upper=upper)
    for nt in (1, 2):
        t, raw = timed(
            lambda nt=nt: _native.bootstrap_fit(
                "saturating_power_law", x, y, None, p0, n_res, SEED, opts, nt
            ),
            reps,
        )
        ok = (raw["status"] >= 1) & (raw["status"] <= 4)
        rows_t[f"capscale native `_native.bootstrap_fit`, {nt} thread{'s' * (nt > 1)}"] = (
            t,
            raw["x"],
            ok,
        )

    def scipy_loop(bounded: bool) -> tuple[np.ndarray, np.ndarray]:
        est = np.full((n_res, 3), np.nan)
        ok = np.zeros(n_res, dtype=bool)
        kw: dict[str, Any] = {"bounds": (lower, upper)} if bounded else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, i in enumerate(idx):
                try:
                    est[k], _ = so.curve_fit(power, x[i], y[i], p0=p0, **kw)
                    ok[k] = True
                except RuntimeError:
                    pass
        return est, ok

    log("bootstrap: scipy curve_fit loop")
    t, (est, ok) = timed(lambda: scipy_loop(False), 1 if quick else 3)
    rows_t["scipy `curve_fit` loop (unbounded, lm)"] = (t, est, ok)
    log("bootstrap: scipy curve_fit+bounds loop")
    t, (est, ok) = timed(lambda: scipy_loop(True), 1, warmup=0)
    rows_t["scipy `curve_fit` loop with bounds (trf)"] = (t, est, ok)

    cap1 = rows_t["capscale bootstrap_fit, 1 thread"]
    cf_t = rows_t["scipy `curve_fit` loop (unbounded, lm)"][0].median
    cfb_t = rows_t["scipy `curve_fit` loop with bounds (trf)"][0].median
    header = [
        "method",
        "runs",
        "total (median)",
        "total (min)",
        "per fit",
        "converged",
        "curve_fit / this",
        "curve_fit+bounds / this",
    ]
    rows = []
    for name, (t, _, ok) in rows_t.items():
        rows.append(
            [
                name,
                t.n,
                fmt_t(t.median),
                fmt_t(t.min),
                f"{t.median / n_res * 1e6:.1f} µs",
                f"{int(ok.sum())}/{n_res}",
                fmt_x(cf_t / t.median),
                fmt_x(cfb_t / t.median),
            ]
        )
    sec.tables.append(("Time for all 1000 refits (start (100, 0.3, 1))", md_table(header, rows)))

    b_ref = cap1[1][:, 1]
    header = ["method", "b median", "b 2.5%", "b 97.5%", "max |Δb| vs capscale, same resample"]
    rows = []
    for name, (_, est, ok) in rows_t.items():
        if "native" in name or "2 threads" in name:
            continue
        b = est[ok, 1]
        q = np.percentile(b, [50, 2.5, 97.5])
        diff = np.nanmax(np.abs(est[:, 1] - b_ref))
        rows.append([name, f"{q[0]:.4f}", f"{q[1]:.4f}", f"{q[2]:.4f}", f"{diff:.1e}"])
    sec.tables.append(
        (
            "Same bootstrap distribution of b (identical resamples on both sides)",
            md_table(header, rows),
        )
    )
    t1 = cap1[0].median
    t2 = rows_t["capscale bootstrap_fit, 2 threads"][0].median
    sec.notes.append(
        f"Data: y = 406.4·x^-0.34 + 1.69 at x = logspace(7, 10, 12), ×(1 + 0.01·N(0,1)), "
        f"rng seed 0; resamples `bootstrap_indices(12, 1000, {SEED})`; bounds a, b, c >= 0, "
        f"b <= 2. (lm-fitting.md §2 drew its resamples with NumPy, hence its slightly different "
        f"b interval.) Ratios use medians. 2-thread speed-up of `bootstrap_fit`: {t1 / t2:.2f}×."
    )
    targets = [
        Target("1 bootstrap", "1000 bounded fits <= 20 ms, 1 thread", fmt_t(t1), t1 <= 0.020),
        Target(
            "1 bootstrap",
            ">= 12× scipy curve_fit (unbounded) loop",
            fmt_x(cf_t / t1),
            cf_t / t1 >= 12,
        ),
        Target(
            "1 bootstrap",
            ">= 150× scipy curve_fit+bounds (trf) loop",
            fmt_x(cfb_t / t1),
            cfb_t / t1 >= 150,
        ),
        Target(
            "1 bootstrap",
            "near-linear speed-up on 2 cores (>= 1.7×)",
            fmt_x(t1 / t2),
            t1 / t2 >= 1.7,
        ),
    ]
    return sec, targets


# -------------------------------------------------------------- 2. NIST StRD (§1)


def bench_nist(quick: bool) -> tuple[Section, list[Target]]:
    sec = Section("2. NIST StRD: 27 problems from start 2, analytic Jacobian (Python callables)")
    sys.path.insert(0, str(NIST_DIR))
    import models  # type: ignore[import-not-found]

    probs = models.load_all(str(NIST_DIR))

    def capscale_fit(p: Any) -> tuple[np.ndarray, int]:
        m, jac, x, y = p.model, p.jacobian, p.x, p.y_fit
        r = cf.least_squares(lambda b: m(b, x) - y, p.start2, jac=lambda b: jac(b, x))
        return r.x, r.nfev + r.njev

    def curve_fit_jac(p: Any) -> tuple[np.ndarray, int]:
        m, jac = p.model, p.jacobian
        popt, _, info, _, _ = so.curve_fit(
            lambda xx, *b: m(b, xx),
            p.x,
            p.y_fit,
            p0=p.start2,
            jac=lambda xx, *b: jac(b, xx),
            full_output=True,
        )
        return popt, info["nfev"] + info.get("njev", 0)

    def curve_fit_fd(p: Any) -> tuple[np.ndarray, int]:
        m = p.model
        popt, _, info, _, _ = so.curve_fit(
            lambda xx, *b: m(b, xx), p.x, p.y_fit, p0=p.start2, full_output=True
        )
        return popt, info["nfev"]

    def ls_lm_tight_jac(p: Any) -> tuple[np.ndarray, int]:
        m, jac, x, y = p.model, p.jacobian, p.x, p.y_fit
        r = so.least_squares(
            lambda b: m(b, x) - y,
            p.start2,
            jac=lambda b: jac(b, x),
            method="lm",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        return r.x, r.nfev + r.njev

    configs = [
        ("capscale `fit.least_squares(res, b0, jac=jac)`", capscale_fit),
        ("scipy `curve_fit(f, x, y, p0, jac=jac)` (defaults)", curve_fit_jac),
        ("scipy `curve_fit(f, x, y, p0)` (defaults, FD; §6 reference)", curve_fit_fd),
        ("scipy `least_squares(lm, tol 1e-15, jac)`", ls_lm_tight_jac),
    ]

    def one_pass(fit: Callable[[Any], tuple[np.ndarray, int]]) -> tuple[list[np.ndarray], int]:
        ests, evals = [], 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for p in probs:
                try:
                    est, ne = fit(p)
                except (RuntimeError, ValueError, CapscaleError):
                    est, ne = np.full(p.n_params, np.nan), 0
                ests.append(est)
                evals += ne
        return ests, evals

    reps = 2 if quick else 7
    results = {}
    for name, fit in configs:
        log(f"nist: {name}")
        t, (ests, evals) = timed(lambda fit=fit: one_pass(fit), reps)
        lres = np.array(
            [models.lre(e, p.certified).min() for e, p in zip(ests, probs, strict=True)]
        )
        results[name] = (t, lres, evals)

    cap_name = configs[0][0]
    cap_t = results[cap_name][0].median
    header = [
        "config",
        "passes",
        "27 fits (median)",
        "27 fits (min)",
        ">= 6 digits",
        ">= 8 digits",
        "evaluations (f + J)",
        "this / capscale",
    ]
    rows = []
    for name, (t, lres, evals) in results.items():
        rows.append(
            [
                name,
                t.n,
                fmt_t(t.median),
                fmt_t(t.min),
                f"{int((lres >= 6).sum())}/27",
                f"{int((lres >= 8).sum())}/27",
                evals,
                fmt_x(t.median / cap_t),
            ]
        )
    sec.tables.append(("Total time of one pass over the 27 problems", md_table(header, rows)))
    names = list(results)
    header = ["problem", *("capscale" if k == 0 else f"({k})" for k in range(len(names)))]
    rows = [[p.name, *(f"{results[n][1][i]:.1f}" for n in names)] for i, p in enumerate(probs)]
    sec.tables.append(
        (
            "Minimum LRE (digits) per problem; columns in the order of the table above",
            md_table(header, rows),
        )
    )
    sec.notes.append(
        "LRE = -log10(|est - cert| / |cert|), min over parameters, capped at 11 "
        "(`models.lre`). Nelson fits log(y) with 2-column x. A raised error counts as 0 digits. "
        "'this / capscale' > 1 means capscale is faster."
    )
    cap_lre = results[cap_name][1]
    cf_fd_t = results[configs[2][0]][0].median
    cf_jac_t = results[configs[1][0]][0].median
    targets = [
        Target(
            "2 NIST",
            "27/27 problems >= 6 digits (start 2, analytic J)",
            f"{int((cap_lre >= 6).sum())}/27",
            bool((cap_lre >= 6).all()),
        ),
        Target(
            "2 NIST",
            ">= 24/27 problems >= 8 digits (start 2)",
            f"{int((cap_lre >= 8).sum())}/27",
            int((cap_lre >= 8).sum()) >= 24,
        ),
        Target(
            "2 NIST",
            "27-fit total <= scipy curve_fit (defaults, FD) total",
            f"{fmt_t(cap_t)} vs {fmt_t(cf_fd_t)}",
            cap_t <= cf_fd_t,
        ),
        Target(
            "2 NIST (extra, not a §6 bar)",
            "27-fit total <= scipy curve_fit with the same analytic jac",
            f"{fmt_t(cap_t)} vs {fmt_t(cf_jac_t)}",
            cap_t <= cf_jac_t,
        ),
    ]
    return sec, targets


# -------------------------------------------------------------- 3. Chinchilla (§3)


def load_chinchilla() -> tuple[np.ndarray, np.ndarray]:
    """(x, y): x of shape (2, 240) with rows N, D = C / (6 N); y = log L."""
    with CHINCHILLA_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(loss, kind="stable")[:-5])  # drop the 5 highest losses
    n, d, loss = n[keep], c[keep] / (6.0 * n[keep]), loss[keep]
    return np.ascontiguousarray(np.vstack([n, d])), np.log(loss)


class ChinchillaScipy:
    """Residuals, Jacobian and summed-Huber objective of ``chinchilla_lse`` in NumPy."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.ln, self.ld, self.y = np.log(x[0]), np.log(x[1]), y

    def _terms(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b, e, alpha, beta = p
        t = np.stack([a - alpha * self.ln, b - beta * self.ld, np.full_like(self.ln, e)])
        top = t.max(axis=0)
        w = np.exp(t - top)
        s = w.sum(axis=0)
        return top + np.log(s), w / s

    def residuals(self, p: np.ndarray) -> np.ndarray:
        return self._terms(p)[0] - self.y

    def jac(self, p: np.ndarray) -> np.ndarray:
        w = self._terms(p)[1]
        return np.column_stack([w[0], w[1], w[2], -w[0] * self.ln, -w[1] * self.ld])

    def huber(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        """Σ Huber_δ(r) and its gradient (Hoffmann/Epoch's objective)."""
        pred, w = self._terms(p)
        r = pred - self.y
        ar = np.abs(r)
        f = np.where(ar <= HUBER_DELTA, 0.5 * r * r, HUBER_DELTA * (ar - 0.5 * HUBER_DELTA))
        psi = np.clip(r, -HUBER_DELTA, HUBER_DELTA)
        g = np.array(
            [psi @ w[0], psi @ w[1], psi @ w[2], -(psi * self.ln) @ w[0], -(psi * self.ld) @ w[1]]
        )
        return float(f.sum()), g

    def huber_cost(self, p: np.ndarray) -> float:
        return self.huber(p)[0]


def bench_chinchilla(quick: bool) -> tuple[list[Section], list[Target]]:
    # L-BFGS-B and LM from far grid starts overflow exp(); scipy warns on flat Jacobians.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _bench_chinchilla(quick)


def _bench_chinchilla(quick: bool) -> tuple[list[Section], list[Target]]:
    x, y = load_chinchilla()
    xf = x.reshape(-1)
    sp = ChinchillaScipy(x, y)
    robust = {"loss": "huber", "f_scale": HUBER_DELTA}
    opts = _native.SolverOptions(lower=CHIN_LOWER, upper=CHIN_UPPER, **robust)
    targets: list[Target] = []
    # (a) one fit from Hoffmann's unrounded estimates
    log("chinchilla: single fit")
    sec_a = Section(
        f"3a. Chinchilla: one Huber fit ({y.size} runs) from Hoffmann's unrounded estimates"
    )
    h0 = HOFFMANN_START
    fits: dict[str, tuple[Timing, np.ndarray, float, int]] = {}
    t, raw = timed(lambda: _native.fit_law("chinchilla_lse", xf, y, h0, None, opts), 50)
    fits["capscale native `_native.fit_law` (bounds α, β ∈ [0, 3])"] = (
        t,
        raw["x"],
        float(raw["cost"]),
        int(raw["nfev"]),
    )
    p_opt = np.array(raw["x"])
    t, r = timed(lambda: cf.curve_fit("chinchilla_lse", x, y, p0=h0, **robust), 30)
    fits["capscale `fit.curve_fit('chinchilla_lse', …)`"] = (t, r.x, r.cost, r.nfev)
    t, s = timed(
        lambda: so.least_squares(
            sp.residuals, h0, jac=sp.jac, method="trf", loss="huber", f_scale=HUBER_DELTA
        ),
        30,
    )
    fits["scipy `least_squares(trf, huber, f_scale=1e-3, jac)`"] = (t, s.x, s.cost, s.nfev)
    t, o = timed(
        lambda: so.minimize(sp.huber, h0, jac=True, method="L-BFGS-B"),
        30,
    )
    fits["scipy `minimize(L-BFGS-B, analytic grad)` (Epoch's optimiser)"] = (
        t,
        o.x,
        float(o.fun),
        int(o.nfev),
    )
    trf_t = fits["scipy `least_squares(trf, huber, f_scale=1e-3, jac)`"][0].median
    header = ["method", "time (median)", "min", "nfev", "reported cost", "Σ Huber (NumPy)"]
    header += ["α", "β"]
    header.append("scipy trf / this")
    rows = []
    for name, (t, p, cost, nfev) in fits.items():
        rows.append(
            [
                name,
                fmt_t(t.median),
                fmt_t(t.min),
                nfev,
                f"{cost:.10e}",
                f"{sp.huber_cost(np.asarray(p)):.10e}",
                f"{p[3]:.5f}",
                f"{p[4]:.5f}",
                fmt_x(trf_t / t.median),
            ]
        )
    sec_a.tables.append(("", md_table(header, rows)))
    cap_cost = sp.huber_cost(p_opt)
    sec_a.notes.append(
        f"Objective recomputed in NumPy for every row (capscale's own cost: "
        f"{raw['cost']:.10e}); Epoch's grid optimum {EPOCH_OPTIMUM:.10e}. Repeats: 50 "
        "native, 30 otherwise."
    )
    t_nat = fits["capscale native `_native.fit_law` (bounds α, β ∈ [0, 3])"][0].median
    targets += [
        Target("3a Chinchilla fit", "one fit <= 1 ms (native)", fmt_t(t_nat), t_nat <= 1e-3),
        Target(
            "3a Chinchilla fit",
            "objective <= 1.0182741e-3; α, β within 1e-4 of 0.34731 / 0.36717",
            f"{cap_cost:.10e}; α {p_opt[3]:.5f}, β {p_opt[4]:.5f}",
            cap_cost <= 1.0182741e-3
            and abs(p_opt[3] - 0.34731) <= 1e-4
            and abs(p_opt[4] - 0.36717) <= 1e-4,
        ),
    ]

    # (b) the 4500-start Hoffmann grid
    sec_b = Section("3b. Chinchilla: Hoffmann's 4500-start grid")
    grid = cf.hoffmann_grid()
    ms_runs = {}
    for nt in (1, 2):
        log(f"chinchilla: multi_start, {nt} thread(s)")
        t, ms = timed(
            lambda nt=nt: cf.multi_start(
                "chinchilla_lse", x, y, starts="hoffmann", n_threads=nt, **robust
            ),
            1,
            warmup=0,
        )
        ms_runs[nt] = (t, ms)
    ms = ms_runs[1][1]
    rng = np.random.default_rng(SEED)
    order = rng.permutation(grid.shape[0])
    n_sub = 300
    log(f"chinchilla: scipy L-BFGS-B on {n_sub} random grid starts")

    def lbfgs(rows_: np.ndarray) -> np.ndarray:
        return np.array(
            [so.minimize(sp.huber, grid[i], jac=True, method="L-BFGS-B").fun for i in rows_]
        )

    t0 = time.perf_counter()
    costs = lbfgs(order[:n_sub])
    t_sub = time.perf_counter() - t0
    est_full = t_sub / n_sub * grid.shape[0]
    if quick or est_full > 60:
        scipy_total, scipy_label = est_full, f"{n_sub} random starts, extrapolated to 4500"
    else:
        log(f"chinchilla: scipy L-BFGS-B on the other {grid.shape[0] - n_sub} starts")
        t0 = time.perf_counter()
        costs = np.concatenate([costs, lbfgs(order[n_sub:])])
        scipy_total, scipy_label = t_sub + time.perf_counter() - t0, "all 4500 (measured)"
    best = min(float(ms.cost.min()), float(np.nanmin(costs)))
    if ms.best is not None:
        best = min(best, ms.best.cost)

    def reach(c: np.ndarray) -> float:
        return float(np.mean(np.abs(c - best) <= 1e-6 * best))

    header = [
        "method",
        "starts timed",
        "time for 4500 starts",
        "per start",
        "reach optimum",
        "best objective",
        "L-BFGS-B / this",
    ]
    rows = []
    for nt, (t, m) in ms_runs.items():
        rows.append(
            [
                f"capscale `multi_start(…, starts='hoffmann')`, {nt} thread{'s' * (nt > 1)}",
                "4500",
                fmt_t(t.median),
                fmt_t(t.median / grid.shape[0]),
                f"{reach(m.cost):.1%}",
                f"{m.best.cost:.10e}" if m.best is not None else "n/a",
                fmt_x(scipy_total / t.median),
            ]
        )
    rows.append(
        [
            "scipy `minimize(L-BFGS-B, analytic grad)` per start, unbounded",
            scipy_label,
            fmt_t(scipy_total),
            fmt_t(scipy_total / grid.shape[0]),
            f"{reach(costs):.1%}",
            f"{np.nanmin(costs):.10e}",
            fmt_x(1.0),
        ]
    )
    sec_b.tables.append(("", md_table(header, rows)))
    sec_b.notes.append(
        f"'Reach optimum' = final objective within 1e-6 (relative) of the best found by "
        f"either ({best:.10e}); for scipy, over the starts it ran. capscale's time includes "
        "the Python-side refit of the best start. capscale uses the law's default bounds "
        "(α, β ∈ [0, 3])."
    )
    t1, t2 = ms_runs[1][0].median, ms_runs[2][0].median
    frac = reach(ms.cost)
    targets += [
        Target("3b Chinchilla grid", "4500 starts <= 10 s, 1 thread", fmt_t(t1), t1 <= 10),
        Target("3b Chinchilla grid", "4500 starts <= 6 s, 2 threads", fmt_t(t2), t2 <= 6),
        Target(
            "3b Chinchilla grid",
            "reaches the optimum (<= 1.0182741e-3)",
            f"{ms.best.cost:.10e}" if ms.best is not None else "n/a",
            ms.best is not None and ms.best.cost <= 1.0182741e-3,
        ),
        Target("3b Chinchilla grid", ">= 45% of starts reach it", f"{frac:.1%}", frac >= 0.45),
    ]

    # (c) 4000-resample bootstrap from the full-data optimum
    sec_c = Section("3c. Chinchilla: 4000-resample bootstrap from the full-data optimum")
    n_res = 4000
    bs_runs = {}
    for nt in (1, 2):
        log(f"chinchilla: bootstrap_fit 4000, {nt} thread(s)")
        t, bs = timed(
            lambda nt=nt: cf.bootstrap_fit(
                "chinchilla_lse",
                x,
                y,
                p0=p_opt,
                n_resamples=n_res,
                seed=SEED,
                n_threads=nt,
                **robust,
            ),
            1,
            warmup=0,
        )
        bs_runs[nt] = (t, bs)
    bs = bs_runs[1][1]
    n_sp = 100
    idx = cf.bootstrap_indices(y.size, n_res, SEED)[:n_sp]
    log(f"chinchilla: scipy trf on {n_sp} resamples")

    def scipy_boot() -> tuple[np.ndarray, np.ndarray]:
        out = np.full((n_sp, 5), np.nan)
        ok = np.zeros(n_sp, dtype=bool)
        for k, i in enumerate(idx):
            spk = ChinchillaScipy(x[:, i], y[i])
            res = so.least_squares(
                spk.residuals,
                p_opt,
                jac=spk.jac,
                method="trf",
                loss="huber",
                f_scale=HUBER_DELTA,
            )
            out[k], ok[k] = res.x, res.success
        return out, ok

    t_sp, (sp_x, sp_ok) = timed(scipy_boot, 1, warmup=0)
    sp_total = t_sp.median / n_sp * n_res
    header = [
        "method",
        "resamples timed",
        "time for 4000",
        "per refit",
        "converged",
        "α SE",
        "α 95% interval",
        "α SE, first 100",
        "scipy / this",
    ]
    rows = []
    for nt, (t, b) in bs_runs.items():
        a = b.x[b.success, 3]
        lo, hi = np.percentile(a, [2.5, 97.5])
        rows.append(
            [
                f"capscale `bootstrap_fit`, {nt} thread{'s' * (nt > 1)}",
                "4000",
                fmt_t(t.median),
                fmt_t(t.median / n_res),
                f"{int(b.success.sum())}/{n_res}",
                f"{b.std()[3]:.4f}",
                f"[{lo:.4f}, {hi:.4f}]",
                f"{np.std(b.x[:n_sp, 3], ddof=1):.4f}",
                fmt_x(sp_total / t.median),
            ]
        )
    lo, hi = np.percentile(sp_x[:, 3], [2.5, 97.5])
    rows.append(
        [
            "scipy `least_squares(trf, huber, jac)` loop, unbounded",
            f"{n_sp}, extrapolated to 4000",
            fmt_t(sp_total),
            fmt_t(t_sp.median / n_sp),
            f"{int(sp_ok.sum())}/{n_sp}",
            "—",
            f"[{lo:.4f}, {hi:.4f}] (100 only)",
            f"{np.std(sp_x[:, 3], ddof=1):.4f}",
            fmt_x(1.0),
        ]
    )
    sec_c.tables.append(("", md_table(header, rows)))
    diff = float(np.max(np.abs(sp_x[:, 3] - bs.x[:n_sp, 3])))
    sec_c.notes.append(
        f"Resample i is `bootstrap_indices(240, 4000, {SEED})[i]` on both sides; each refit "
        f"starts from the full-data optimum. Max |Δα| capscale vs scipy over the first "
        f"{n_sp} resamples: {diff:.1e}. Epoch's α SE: {EPOCH_ALPHA_SE}."
    )
    tb1 = bs_runs[1][0].median
    se = float(bs.std()[3])
    targets += [
        Target("3c Chinchilla bootstrap", "4000 refits <= 4 s", fmt_t(tb1), tb1 <= 4),
        Target(
            "3c Chinchilla bootstrap",
            "α SE within 30% of Epoch's 0.0154",
            f"{se:.4f} ({se / EPOCH_ALPHA_SE - 1:+.0%})",
            abs(se / EPOCH_ALPHA_SE - 1) <= 0.30,
        ),
    ]
    return [sec_a, sec_b, sec_c], targets


# ------------------------------------------------------------------------- report


def render(
    info: list[tuple[str, str]],
    sections: list[Section],
    targets: list[Target],
    command: str,
    elapsed: float,
    quick: bool,
) -> str:
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# capscale fitting benchmarks vs SciPy",
        "",
        f"Measured {today} with `{command}` ({'quick' if quick else 'full'} mode, "
        f"{elapsed:.0f} s wall). Workloads and bars: `../shared/reference/lm-fitting.md` "
        "§1–3 and §6. Ratios are baseline time / capscale time (> 1: capscale faster); all "
        "numbers come from this one run on this machine. Single-thread rows pass "
        "`n_threads=1`; the parallel rows `n_threads=2`.",
        "",
        "## Machine",
        "",
        md_table(["", ""], [[k, v] for k, v in info]),
        "",
        "The §6 absolute bars (ms/s) were set on a 2-vCPU AMD EPYC (Zen 3) with scipy 1.17.1; "
        "ratios against the SciPy baselines measured here are the portable comparison.",
        "",
        "## Targets (lm-fitting.md §6)",
        "",
        md_table(
            ["workload", "bar", "measured", "met"],
            [[t.workload, t.bar, t.measured, "yes" if t.met else "**no**"] for t in targets],
        ),
    ]
    for sec in sections:
        out += ["", f"## {sec.title}"]
        for caption, table in sec.tables:
            out += [""]
            if caption:
                out += [f"{caption}:", ""]
            out += [table]
        for note in sec.notes:
            out += ["", note]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="fewer repeats; SciPy grid on 300 starts only"
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=None,
        help="write the markdown report here (default: bench/RESULTS.md in full mode, "
        "nothing with --quick)",
    )
    args = ap.parse_args(argv)
    results_path = args.results
    if results_path is None and not args.quick:
        results_path = ROOT / "bench" / "RESULTS.md"
    command = "python bench/bench_fit.py" + (" --quick" if args.quick else "")

    info = machine_info()
    print("# capscale fitting benchmark")
    for k, v in info:
        print(f"- {k}: {v}")
    print(flush=True)

    start = time.perf_counter()
    busy0, own0 = _busy_cpu_seconds(), _own_cpu_seconds()
    sections: list[Section] = []
    targets: list[Target] = []
    sec, tg = bench_bootstrap(args.quick)
    sections.append(sec)
    targets += tg
    if NIST_DIR.is_dir():
        sec, tg = bench_nist(args.quick)
        sections.append(sec)
        targets += tg
    else:
        log(f"skipping NIST StRD: {NIST_DIR} not found (needs ../shared beside the checkout)")
    if CHINCHILLA_CSV.is_file():
        secs, tg = bench_chinchilla(args.quick)
        sections += secs
        targets += tg
    else:
        log(f"skipping Chinchilla: {CHINCHILLA_CSV} not found (needs ../shared)")
    elapsed = time.perf_counter() - start
    info.append(("load average at end", " ".join(f"{v:.2f}" for v in os.getloadavg())))
    others = (_busy_cpu_seconds() - busy0) - (_own_cpu_seconds() - own0)
    share = max(others, 0.0) / (elapsed * (os.cpu_count() or 1))
    info.append(("CPU used by other processes during the run", f"{share:.0%} of the machine"))
    if share > 0.10:
        log(f"other processes used {share:.0%} of the CPUs during the run: timings are unreliable")

    report = render(info, sections, targets, command, elapsed, args.quick)
    print(report)
    if results_path is not None:
        from _results import update_section

        # One level down: this report becomes the fitting section of RESULTS.md.
        section = "\n".join("#" + ln if ln.startswith("#") else ln for ln in report.splitlines())
        update_section("bench_fit", section, results_path)
        log(f"updated the bench_fit section of {results_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
