"""Benchmark sweep executors: a 16-cell CPU sweep, local vs Ray with 2 workers, in one run;
and the driver's store write throughput.

    python bench/bench_sweep.py [--docs 40] [--no-record]

The sweep: a tiny config-built Llama (2 layers, hidden 32; ``tests/_tiny_models.py``) ×
2 precisions (shipped, int8) × 2 tasks (capitals_mc, arithmetic) × 4 context lengths
(0, 64, 128, 192 tokens) = 16 cells of ``--docs`` documents each, into a fresh SQLite store
per executor. ``local`` runs in this process with one torch thread; ``ray`` starts a local
Ray instance with 2 CPUs (two actors, one per precision, one thread each); its wall time is
given with and without Ray's start-up. Both stores are checked to hold the same records.

Store write throughput: synthetic multiple-choice records (the runner's record layout)
written by ``Store.add_records`` in chunks of 32, one transaction per chunk, as the driver
writes them.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import cpu_model, update_section
from _tiny_models import build_tiny_llama
from capscale.eval.sweep import parse_sweep, run_sweep
from capscale.store import Store


def _config(model: Path, db: Path, docs: int):
    return parse_sweep(f"""
store = "{db}"
batch_size = 8
device = "cpu"
chunk_size = 8
precisions = ["shipped", "int8"]
contexts = [0, 64, 128, 192]

[[models]]
source = "{model}"
name = "tiny"

[[tasks]]
name = "capitals_mc"
limit = {docs}

[[tasks]]
name = "arithmetic"
limit = {docs}
params = {{ digits = 1, operation = "add", n = {docs} }}
""")


def _records(db: Path) -> dict[tuple[str, ...], tuple[float, ...]]:
    with Store(db) as st:
        rec = st.records()
    cols = sorted(c for c in rec.columns if c.startswith("score_"))
    rec[cols] = rec[cols].fillna(-1.0)
    rec["context_length"] = rec["context_length"].astype(str)
    return {
        (r["model"], r["precision"], r["task"], str(r["context_length"]), r["item_id"]): tuple(
            round(float(r[c]), 9) for c in cols
        )
        for _, r in rec.iterrows()
    }


def _write_throughput(folder: Path, n: int = 20_000, chunk: int = 32) -> float:
    with Store(folder / "writes.db") as st:
        run = st.start_run(
            {"name": "synthetic", "n_params": 1},
            {"format": "fp32", "name": "fp32"},
            {"name": "synthetic", "version": "1", "config": {}},
        )
        recs = [
            {
                "item_id": str(i),
                "scores": {"acc": float(i % 2), "acc_norm": float(i % 3 == 0)},
                "latency_s": 0.01,
                "loglikelihoods": [-1.5, -2.25, -3.0, -0.5],
                "prediction": "Paris",
                "request": {"context": "The capital of France is", "choices": ["a", "b"]},
            }
            for i in range(n)
        ]
        t = time.perf_counter()
        for s in range(0, n, chunk):
            st.add_records(run, recs[s : s + chunk])
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=40, help="documents per cell")
    ap.add_argument("--no-record", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args()
    import ray

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = build_tiny_llama(folder / "tiny", max_positions=512)
        cfg = _config(model, folder / "local.db", args.docs)
        n_items = 16 * args.docs
        t = time.perf_counter()
        run_sweep(cfg, progress=False)
        local_s = time.perf_counter() - t

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        start_s = time.perf_counter() - t
        try:
            cfg_r = _config(model, folder / "ray.db", args.docs)
            t = time.perf_counter()
            run_sweep(cfg_r, executor="ray", progress=False)
            ray_s = time.perf_counter() - t
        finally:
            ray.shutdown()
        same = _records(folder / "local.db") == _records(folder / "ray.db")
        writes = _write_throughput(folder)

    rows = [
        ("local (1 process, 1 thread)", local_s, 1.0),
        ("ray, 2 workers (sweep only)", ray_s, local_s / ray_s),
        ("ray, 2 workers (+ ray.init)", ray_s + start_s, local_s / (ray_s + start_s)),
    ]
    lines = [
        "## bench_sweep — sweep executors (local vs Ray)",
        "",
        f"`python bench/bench_sweep.py --docs {args.docs}`: 16 cells (tiny Llama × "
        "2 precisions × 2 tasks × 4 contexts), "
        f"{n_items} items; {cpu_model()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}.",
        "",
        "| executor | wall s | speed-up vs local |",
        "|---|---:|---:|",
        *[f"| {name} | {s:.2f} | {r:.2f}× |" for name, s, r in rows],
        "",
        f"Stores identical (item ids and scores): {'yes' if same else 'NO'}. "
        f"Driver store writes (`Store.add_records`, chunks of 32, one transaction each): "
        f"{writes:,.0f} records/s.",
        "At this size Ray's fixed costs dominate: each actor imports torch and loads the model "
        "(seconds), and on a 2-core VM the two workers share the cores with the driver and "
        "Ray's own processes. What carries over to a cluster: the driver writes a chunk of "
        "32 records in about a millisecond, far faster than workers produce them: it is "
        "not the bottleneck.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        update_section("bench_sweep", text)


if __name__ == "__main__":
    main()
