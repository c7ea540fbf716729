"""Benchmark GGUF dequantization: capscale (1 thread, all threads; fresh output and a reused
``out=`` buffer) vs the gguf package's reference NumPy code and the NumPy copy ceilings, all
measured in one run.

    python bench/bench_dequant.py [--quick]

Each type dequantizes 16 Mi elements (Gaussian weights quantized by the reference quantizer
where one exists, else random bytes) into float32:

* fresh: ``dequantize(data, fmt)`` allocates its output (page faults included), as a one-off
  call does; its ceiling is ``x.copy()`` of a float32 array of the same element count;
* reused: ``dequantize(data, fmt, out=buf)`` into a buffer already written once, as a loader
  that reuses one buffer does (``stores="auto"``: streaming stores when the output is larger
  than the last-level cache, at most 32 MiB); its ceiling is ``np.copyto(buf, x)``.
  ``reused plain`` forces plain stores into the same buffer, to show what streaming buys.

``gguf.quants.dequantize`` is timed on the same full-size input. All figures are the best of
several runs (the VM is noisy). A second table times cache-resident rows of 4096 elements.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

import capscale
from _results import best_time, cpu_model, update_section
from capscale import _native
from capscale.quant import dequantize, list_formats

# What the gguf package does for the types whose reference is a single cheap NumPy pass.
CHEAP_REFERENCE = {
    "F16": "one `astype`",
    "BF16": "one 16-bit shift",
    "Q8_0": "one int8 x scale multiply",
    "TQ2_0": "shifts and one multiply",
}
IN_CACHE_TYPES = ("Q4_0", "Q8_0", "Q4_K", "Q6_K", "IQ4_XS", "BF16")


def blocks(name: str, n_elems: int, rng: np.random.Generator) -> np.ndarray:
    qtype = GGMLQuantizationType[name]
    bs, ts = GGML_QUANT_SIZES[qtype]
    x = rng.normal(0, 0.02, n_elems).astype(np.float32)
    try:
        q = gguf_quantize(x.reshape(-1, 4096), qtype)
        return np.ascontiguousarray(q).view(np.uint8).reshape(-1)
    except NotImplementedError:
        # No reference quantizer (K-quants, IQ4_*): random payload and scale bytes. Some
        # scales are NaN/Inf; both implementations process those at the same cost.
        return rng.integers(0, 256, n_elems // bs * ts, dtype=np.uint8)


def ceilings(n: int, buf: np.ndarray) -> tuple[float, float]:
    """NumPy copy rates (Gelem/s, 1 thread): into a fresh array, into the reused ``buf``."""
    x = np.ones(n, dtype=np.float32)
    fresh = n / best_time(lambda: x.copy(), 9) / 1e9
    reused = n / best_time(lambda: np.copyto(buf, x), 9) / 1e9
    return fresh, reused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="4 Mi elements; no RESULTS.md")
    args = ap.parse_args()
    n = (1 << 22) if args.quick else (1 << 24)
    threads = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    buf = np.zeros(n, dtype=np.float32)  # the reused output, pages mapped
    fresh_ceil, reused_ceil = ceilings(n, buf)

    def rate(fn: Callable[[], object], repeats: int = 9) -> float:
        return n / best_time(fn, repeats) / 1e9

    rows = []
    for f in list_formats():
        if f.name == "F32":
            continue
        data = blocks(f.name, n, rng)
        qtype = GGMLQuantizationType[f.name]
        nm = f.name

        fresh1 = rate(lambda d=data, nm=nm: dequantize(d, nm, n_threads=1))
        fresh_n = rate(lambda d=data, nm=nm: dequantize(d, nm, n_threads=threads))
        reused1 = rate(lambda d=data, nm=nm: dequantize(d, nm, out=buf, n_threads=1))
        reused_n = rate(lambda d=data, nm=nm: dequantize(d, nm, out=buf, n_threads=threads))
        plain1 = rate(
            lambda d=data, nm=nm: _native.gguf_dequantize(d, nm, buf, "float32", 1, True, "plain")
        )
        with np.errstate(all="ignore"):
            ref = rate(lambda d=data, q=qtype: gguf_dequantize(d, q), 3)
        rows.append((nm, fresh1, fresh_n, reused1, reused_n, plain1, ref))

    # The ceilings again after the loop (the VM drifts); keep the faster, the stricter bar.
    f2, r2 = ceilings(n, buf)
    fresh_ceil, reused_ceil = max(fresh_ceil, f2), max(reused_ceil, r2)

    # Cache-resident rows of 4096 elements: one row per call (16 KiB of float32, L1; Python
    # call overhead included), and 64 rows per call (1 MiB, L2) in float32/float16/bfloat16.
    cache_rows = []
    small = {dt: np.zeros(64 * 4096, s) for dt, s in (("float32", np.float32), ("u16", np.uint16))}
    for nm in IN_CACHE_TYPES:
        data = blocks(nm, 64 * 4096, rng)
        row = data[: data.size // 64]
        one = small["float32"][:4096]
        t_row = best_time(lambda r=row, nm=nm, o=one: dequantize(r, nm, out=o, n_threads=1), 2000)
        rates = [4096 / t_row / 1e9]
        for dt in ("float32", "float16", "bfloat16"):
            o = small["float32" if dt == "float32" else "u16"]
            t = best_time(
                lambda d=data, nm=nm, o=o, dt=dt: _native.gguf_dequantize(d, nm, o, dt, 1, True),
                200,
            )
            rates.append(64 * 4096 / t / 1e9)
        cache_rows.append((nm, *rates))

    llc_size = _llc_size()
    llc = f"last-level cache (sysfs) {llc_size}"
    lines = [
        f"## Dequantization: GGUF types ({'quick' if args.quick else 'full'} run of "
        f"`python bench/bench_dequant.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        f"CPU: {cpu_model()}, {threads} threads, {llc}; numpy {np.__version__}; "
        f"capscale {capscale.__version__}; python {platform.python_version()}",
        "",
        f"{n // (1 << 20)} Mi elements of float32 output ({4 * n >> 20} MiB), Gelem/s, best of "
        "9 (gguf: best of 3, same full-size input). NumPy copy ceilings, 1 thread, measured "
        f"before and after the types (faster kept): fresh `x.copy()` {fresh_ceil:.2f}, reused "
        f"`np.copyto(buf, x)` {reused_ceil:.2f} Gelem/s.",
        "",
        "| type | fresh 1 thr | fresh all | reused 1 thr | reused all | reused plain 1 thr | "
        "gguf | reused 1 thr / gguf | fresh 1 thr / ceiling | reused 1 thr / ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for nm, f1, fn_, r1, rn, p1, g in rows:
        lines.append(
            f"| {nm} | {f1:.2f} | {fn_:.2f} | {r1:.2f} | {rn:.2f} | {p1:.2f} | {g:.3f} | "
            f"{r1 / g:.1f}× | {f1 / fresh_ceil:.0%} | {r1 / reused_ceil:.0%} |"
        )
    lines += [
        "",
        "Cache-resident rows of 4096 elements, reused output, 1 thread, Gelem/s: one row per "
        "call (16 KiB of float32, L1; includes ~2 µs of Python call overhead) and 64 rows per "
        "call (1 MiB of float32, L2) per output dtype.",
        "",
        "| type | 1 row / call, float32 | 64 rows, float32 | 64 rows, float16 | "
        "64 rows, bfloat16 |",
        "|---|---|---|---|---|",
    ]
    for nm, r_one, r32, r16, rb16 in cache_rows:
        lines.append(f"| {nm} | {r_one:.2f} | {r32:.2f} | {r16:.2f} | {rb16:.2f} |")

    def below(i: int, bar: float, target: float) -> str:
        miss = [f"{r[0]} {r[i] / bar:.2f}" for r in rows if r[i] / bar < target]
        return ", ".join(miss) if miss else "none"

    slow = [r for r in rows if r[3] / r[6] < 20]
    best1 = max(r[3] for r in rows)
    scale = sorted(r[4] / r[3] for r in rows)
    lines += [
        "",
        "Targets (issue 3), single thread: >= 80% of the matching copy ceiling for every type "
        f"(below it, fresh: {below(1, fresh_ceil, 0.8)}; reused: "
        f"{below(3, reused_ceil, 0.8)}) and >= 20x `gguf.quants.dequantize` (reused 1 thread; "
        "below it: " + (", ".join(f"{r[0]} {r[3] / r[6]:.1f}x" for r in slow) or "none") + ").",
        "",
        "Reading: a fresh output is bounded by first-touch page faults, which the copy ceiling "
        "pays too (streaming stores into fresh pages are slower still, so fresh outputs use "
        "plain stores). Into a reused buffer larger than the last-level cache (the sysfs size, "
        f"{llc_size}, capped at 32 MiB: a VM guest sees the host's whole L3), `auto` writes "
        "with streaming stores, which skip the read-for-ownership of plain stores (`reused "
        "plain` column) and beat NumPy's copy, which reads 4 bytes per element where the "
        "quantized types read 0.5-1. All threads vs 1 thread into the reused buffer: "
        f"{scale[0]:.1f}-{scale[-1]:.1f}x (the VM's second thread is erratic).",
    ]
    if slow:
        lines += [
            "",
            "Where 20x is missed, the gguf package's path is cheap NumPy at memory speed ("
            + "; ".join(f"{r[0]}: {CHEAP_REFERENCE.get(r[0], 'a few passes')}" for r in slow)
            + "): 20x its rate would need "
            + ", ".join(f"{r[0]} {20 * r[6]:.1f}" for r in slow)
            + f" Gelem/s single-threaded, against {best1:.2f} Gelem/s for the fastest type "
            "here, which reads about half a byte per element where F16/BF16 read 2 (6 bytes of "
            "memory traffic per element instead of 4.5), so their memory bound is lower still. "
            "The kernels themselves run at 9-20 Gelem/s in cache (table above).",
        ]
    lines += [
        "",
        "bfloat16 outputs round with AVX2 integer arithmetic and are compute-bound at about "
        "half the float16 rate (F16C `vcvtps2ph`) in cache; from DRAM both are bound by memory.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        update_section("bench_dequant", text)


def _llc_size() -> str:
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
