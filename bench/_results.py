"""Helpers shared by the benchmark scripts: each script rewrites only its own section of
bench/RESULTS.md (between HTML comment markers), so the file always holds the latest figures
of all; the machine description they print; and best-of-N timing."""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# capscale benchmark results\n\n"
    "Latest figures of each `bench/bench_*.py` script, measured on this project's machine; "
    "each section says how it was produced. Re-run a script to refresh its section.\n"
)


def update_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section of benchmark ``name`` in ``path`` with ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        if not text.startswith("# capscale benchmark results"):
            text = HEADER  # an old single-report file: start the sectioned layout
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
