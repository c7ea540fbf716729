"""Benchmark bitsandbytes (NF4, FP4, nested NF4, LLM.int8), GPTQ (2/3/4/8-bit, act-order) and
AWQ dequantization: capscale (1 thread, all threads; fresh output and a reused ``out=``
buffer) vs hand-written NumPy (vectorised, the formula of the documented layout) and the NumPy
write ceilings, all measured in one run.

    python bench/bench_dequant_packed.py [--quick]

Every case produces 16 Mi float32 values (a 4096 × 4096 Linear; 4 Mi with ``--quick``):

* fresh: the call allocates its output (page faults included); ceiling ``x.copy()``;
* reused: ``out=buf`` into a buffer already written once, as ``np.empty`` returns it (16 bytes
  past a cache line) and starting on a 64-byte line; ceiling ``np.copyto(buf, x)``.

bfloat16 rows (uint16 bit patterns) show the cost of the rounding store. Figures are the best
of several runs (the VM is noisy; the load average and other processes' CPU use are printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import capscale
from _results import best_time, cpu_model, update_section
from capscale.quant.bnb import code_table, dequantize_int8, quantize_4bit
from capscale.quant.gptq import quantize_awq_rtn, quantize_gptq_rtn

# NumPy baselines: the documented formulas, vectorised, no Python loops over elements.


def np_4bit(packed: np.ndarray, absmax: np.ndarray, code: np.ndarray, bs: int, n: int):
    q = np.empty(2 * packed.size, np.uint8)
    q[0::2] = packed >> 4
    q[1::2] = packed & 15
    return (code[q[:n]].reshape(-1, bs) * absmax[:, None]).reshape(-1)


def np_int8(q: np.ndarray, scb: np.ndarray):
    return (q.astype(np.float32) * scb[:, None]) * np.float32(7.874015718698502e-3)


def np_gptq(qweight, qzeros, scales, g_idx, bits):
    """Stream decode with ``np.unpackbits`` + gathers; ``[out, in]``."""
    qb = np.unpackbits(qweight.T.copy().view(np.uint8), axis=1, bitorder="little")
    q = (qb.reshape(qweight.shape[1], -1, bits) << np.arange(bits, dtype=np.uint8)).sum(
        2, dtype=np.int32
    )
    zb = np.unpackbits(qzeros.view(np.uint8), axis=1, bitorder="little")
    z = (zb.reshape(qzeros.shape[0], -1, bits) << np.arange(bits, dtype=np.uint8)).sum(
        2, dtype=np.int32
    ) + 1
    s = scales.astype(np.float32)
    return s[g_idx].T * (q - z[g_idx].T).astype(np.float32)


def np_awq(qweight, qzeros, scales, group):
    rev = [0, 4, 1, 5, 2, 6, 3, 7]

    def unpack(w):
        u = w.view(np.uint32)
        out = np.empty((u.shape[0], u.shape[1], 8), np.int32)
        for k in range(8):
            out[:, :, k] = (u >> np.uint32(4 * rev[k])) & np.uint32(15)
        return out.reshape(u.shape[0], -1)

    q, z = unpack(qweight), unpack(qzeros)
    g = np.arange(q.shape[0]) // group
    return ((q - z[g]).astype(np.float32) * scales.astype(np.float32)[g]).T


def line_aligned(n: int, dtype: type) -> np.ndarray:
    """A zeroed 1-D array of ``n`` elements starting on a 64-byte boundary."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // item, dtype)
    off = (-(raw.ctypes.data // item)) % (64 // item)
    return raw[off : off + n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="4 Mi elements; no RESULTS.md")
    args = ap.parse_args()
    side = 2048 if args.quick else 4096
    n = side * side
    reps = 3 if args.quick else 5
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.02, (side, side)).astype(np.float32)
    load0 = os.getloadavg()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()

    # ceilings
    src = np.ones(n, np.float32)
    buf = np.empty(n, np.float32)
    plain = np.zeros(n, np.float32)  # NumPy's allocation: 16 bytes past a cache line
    lined = line_aligned(n, np.float32)
    lined16 = line_aligned(n, np.uint16)
    np.copyto(buf, src)
    fresh_ceiling = n / best_time(lambda: src.copy(), reps) / 1e9
    reused_ceiling = n / best_time(lambda: np.copyto(buf, src), reps) / 1e9

    cases: list[tuple[str, Callable[..., np.ndarray], Callable[[], object] | None]] = []
    nf4 = quantize_4bit(w, "nf4", 64)
    fp4 = quantize_4bit(w, "fp4", 64)
    nested = quantize_4bit(w, "nf4", 64, compress_statistics=True)
    code = code_table("nf4")
    flat_packed = nf4.packed.reshape(-1)
    nf4_absmax = np.asarray(nf4.absmax)
    cases.append(
        ("NF4 (bs 64)", nf4.dequantize, lambda: np_4bit(flat_packed, nf4_absmax, code, 64, n))
    )
    cases.append(("FP4 (bs 64)", fp4.dequantize, None))
    cases.append(("NF4 nested", nested.dequantize, None))
    q8 = rng.integers(-127, 128, (side, side), dtype=np.int8)
    scb = rng.random(side).astype(np.float32)
    cases.append(
        (
            "LLM.int8",
            lambda dtype="float32", **kw: dequantize_int8(q8, scb, dtype=dtype, **kw),
            lambda: np_int8(q8, scb),
        )
    )
    for bits in (4, 3, 2, 8):
        g = quantize_gptq_rtn(w, bits, 128)
        np_case = None
        if bits == 4:
            np_case = lambda g=g: np_gptq(g.qweight, g.qzeros, g.scales, g.g_idx, 4)  # noqa: E731
        cases.append((f"GPTQ {bits}-bit g128", g.dequantize, np_case))
    perm = rng.permutation(side)
    ga = quantize_gptq_rtn(w, 4, 128, act_order_perm=perm)
    cases.append(("GPTQ 4-bit act-order", ga.dequantize, None))
    aw = quantize_awq_rtn(w, 128)
    cases.append(
        (
            "AWQ 4-bit g128",
            aw.dequantize,
            lambda: np_awq(aw.qweight, aw.qzeros, aw.scales, 128),
        )
    )

    def rate(fn: Callable[[], object]) -> float:
        return n / best_time(fn, reps) / 1e9

    rows = []
    for name, deq, np_fn in cases:
        r1f = rate(lambda deq=deq: deq("float32", n_threads=1))
        r1e = rate(lambda deq=deq: deq("float32", out=plain, n_threads=1))
        r1r = rate(lambda deq=deq: deq("float32", out=lined, n_threads=1))
        r2r = rate(lambda deq=deq: deq("float32", out=lined, n_threads=0))
        rb = rate(lambda deq=deq: deq("bfloat16", out=lined16, n_threads=1))
        rnp = rate(np_fn) if np_fn is not None else float("nan")
        rows.append((name, r1f, r1e, r1r, r2r, rb, rnp))
        print(
            f"{name:22s} 1t fresh {r1f:5.2f}  1t np.empty {r1e:5.2f}  1t lined {r1r:5.2f}  "
            f"all lined {r2r:5.2f}  bf16 1t {rb:5.2f}  numpy {rnp:5.2f} Gelem/s"
        )

    wall = time.perf_counter() - wall0
    load1 = os.getloadavg()
    cpu_self = time.process_time() - cpu0
    print(f"ceilings: fresh copy {fresh_ceiling:.2f}, reused copyto {reused_ceiling:.2f} Gelem/s")
    print(f"load average {load0[0]:.2f} → {load1[0]:.2f}; wall {wall:.1f} s")

    if args.quick:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "## Packed-integer dequantization (bitsandbytes, GPTQ, AWQ)",
        "",
        f"Measured {stamp} with `python bench/bench_dequant_packed.py` ({n // 2**20} Mi "
        f"float32 outputs per case = a {side}×{side} Linear, best of {reps}; {wall:.0f} s wall). "
        "Gelem/s = 1e9 output elements per second. *fresh*: the call allocates its output; "
        "*reused*: `out=` a buffer written before, as NumPy allocates it (`np.empty`: 16 bytes "
        "past a 64-byte line) or starting on a line (*line-aligned*: reused buffers of 16 MiB "
        "or more are then written with streaming stores; GPTQ/AWQ need the line alignment for "
        "that); *all*: `n_threads=0` (every core); *bf16*: bfloat16 bit patterns; *numpy*: the "
        "documented formula vectorised in NumPy (one baseline per format family).",
        "",
        "|  |  |",
        "|---|---|",
        f"| CPU | {cpu_model()} |",
        f"| cores | {os.cpu_count()} logical |",
        f"| python / numpy | {platform.python_version()} / {np.__version__} |",
        f"| capscale | {capscale.__version__} |",
        f"| load average at start / end | {load0[0]:.2f} / {load1[0]:.2f} |",
        f"| CPU time of this process / wall | {cpu_self:.0f} s / {wall:.0f} s |",
        "",
        "| case | 1 thread fresh | 1 thread reused `np.empty` | 1 thread reused, line-aligned "
        "| all threads reused, line-aligned | bf16 1 thread, line-aligned | numpy "
        "| capscale reused `np.empty` ÷ numpy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r1f, r1e, r1r, r2r, rb, rnp in rows:
        ratio = f"{r1e / rnp:.1f}×" if np.isfinite(rnp) else "—"
        nps = f"{rnp:.2f}" if np.isfinite(rnp) else "—"
        lines.append(
            f"| {name} | {r1f:.2f} | {r1e:.2f} | {r1r:.2f} | {r2r:.2f} | {rb:.2f} | {nps} "
            f"| {ratio} |"
        )
    lines += [
        f"| *ceiling* (`x.copy()` / `np.copyto`) | {fresh_ceiling:.2f} | {reused_ceiling:.2f} "
        "| | | | | |",
        "",
        "Target (quant-formats.md §5.4): at the memory-write ceiling, ≥ 1 Gelem/s fresh output "
        "on one thread. This 2-vCPU VM is shared: when the load average exceeds 2 the "
        "figures are depressed and noisy; compare against the ceilings of the same run.",
    ]
    update_section("bench_dequant_packed", "\n".join(lines))
    print("updated bench/RESULTS.md")


if __name__ == "__main__":
    main()
