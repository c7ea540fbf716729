"""The Ray executor: cells on a Ray cluster, records written by the driver.

One actor per model × precision loads the model once, applies the precision once and serves
that pair's cells: for each cell it builds the plan (:func:`~capscale.eval.runner.plan_cell`),
then computes records one chunk per call (:func:`~capscale.eval.runner.iter_cell_records`) —
the same code the local executor runs, so both give the same records. The driver does all the
bookkeeping in its SQLite store (start/resume, one transaction per chunk, ``finish_run`` only
after every record of the cell is committed); workers never touch the store file.

Faults: actors restart (``max_restarts``) and Ray retries their calls
(``max_task_retries``); should a call still fail, the driver asks again for the items the
store is missing (``done_items``), up to ``max_retries`` times. Re-running a killed sweep
skips finished cells and resumes started ones.

``game:`` tasks run on the driver with the local executor after the Ray cells (their
episodes are written turn by turn, which does not split into worker/driver halves yet).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from ...errors import ClusterError, InvalidInputError, MissingDependencyError
from .base import Executor, estimate_memory_bytes, load_kwargs

if TYPE_CHECKING:
    from ...store import Store
    from ..runner import CellPlan
    from ..sweep import SweepConfig

__all__ = ["RayExecutor"]


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in the test extra
        raise MissingDependencyError(
            "the ray executor needs Ray: pip install 'capscale[ray]'"
        ) from exc
    return ray


class _CellWorker:
    """Actor body: one model in one precision (see the module docstring)."""

    def __init__(self, kwargs: dict[str, Any], precision: str, fault_file: str | None) -> None:
        from ..models import load_model
        from ..precision import parse_precision

        self.loaded = load_model(**kwargs)
        self.weight_error = parse_precision(precision).apply(self.loaded.backend.model)
        self.precision = precision
        self.fault_file = fault_file
        self.plans: dict[Any, CellPlan] = {}

    def _plan(self, key: Any, task: dict[str, Any], context: int) -> CellPlan:
        from ..runner import plan_cell

        if key not in self.plans:
            self.plans[key] = plan_cell(
                self.loaded,
                task["name"],
                precision=self.precision,
                context_length=context or None,
                num_fewshot=task.get("num_fewshot"),
                limit=task.get("limit"),
                task_params=dict(task.get("params", {})),
            )
        return self.plans[key]

    def plan(self, key: Any, task: dict[str, Any], context: int) -> tuple[Any, Any]:
        """The cell's plan and the precision's measured weight error."""
        return self._plan(key, task, context), self.weight_error

    def records(
        self, key: Any, task: dict[str, Any], context: int, indices: list[int]
    ) -> tuple[list[dict[str, Any]], float]:
        """Records of the documents ``indices`` (one chunk), and the peak memory (MiB)."""
        from ..runner import _peak_memory_mb, iter_cell_records

        plan = self._plan(key, task, context)
        out: list[dict[str, Any]] = []
        for recs in iter_cell_records(self.loaded, plan, indices, chunk_size=max(len(indices), 1)):
            out.extend(recs)
        if self.fault_file is not None:  # test hook: die once, after computing a chunk
            try:
                os.close(os.open(self.fault_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os._exit(1)
        return out, _peak_memory_mb(self.loaded.backend.device)

    def drop(self, key: Any) -> None:
        """Forget a finished cell's plan."""
        self.plans.pop(key, None)


@dataclass
class _Group:
    """Driver-side state of one model × precision actor."""

    actor: Any
    label: str
    cells: list[tuple[dict[str, Any], int]]
    pos: int = 0
    gen: int = 0
    attempts: int = 0
    plan: Any = None
    weight_error: Any = None
    run_id: int | None = None
    outstanding: int = 0
    n_new: int = 0
    per_doc: list[dict[str, float]] = field(default_factory=list)
    peak: float = float("nan")
    t0: float = 0.0

    @property
    def cell(self) -> tuple[dict[str, Any], int]:
        return self.cells[self.pos]

    @property
    def key(self) -> tuple[int, int]:
        return (self.pos, id(self))


def _check_reachable(address: str, timeout: float) -> None:
    """A clear error, quickly, when nothing listens at ``host:port``."""
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInputError(
            f"Ray address {address!r}: expected 'auto', 'host:port' or 'ray://host:port'"
        )
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach a Ray cluster at {address!r} ({exc}); start one with "
            "'ray start --head' or check the address"
        ) from exc


class RayExecutor(Executor):
    """Run cells on a Ray cluster (see the module docstring).

    Parameters
    ----------
    address : str, optional
        ``"auto"`` (a cluster started with ``ray start`` on this machine), ``"host:port"``,
        ``"ray://host:10001"`` (Ray Client), or None: join the Ray instance this process
        already initialised, else start a local one.
    timeout : float
        Seconds to wait for the cluster's address to answer.
    max_restarts, max_task_retries : int
        Ray's fault tolerance for the actors.
    max_retries : int
        How often the driver re-requests a cell's missing items after a failure Ray did not
        recover from.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = 10.0,
        max_restarts: int = 2,
        max_task_retries: int = 2,
        max_retries: int = 2,
        _fault_file: str | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.max_restarts = max_restarts
        self.max_task_retries = max_task_retries
        self.max_retries = max_retries
        self.fault_file = _fault_file

    def _connect(self) -> tuple[Any, bool]:
        if self.address not in (None, "auto"):
            _check_reachable(str(self.address), self.timeout)
        ray = _require_ray()
        if ray.is_initialized():
            return ray, False
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            raise ClusterError(f"cannot connect to Ray at {self.address!r}: {exc}") from exc
        return ray, True

    def run(
        self,
        config: SweepConfig,
        store: Store,
        *,
        progress: bool = True,
        on_cell: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        from .local import LocalExecutor

        tasks = [t for t in config.tasks if not str(t["name"]).startswith("game:")]
        results: list[Any] = []
        if tasks:
            ray, own = self._connect()
            try:
                results = self._run_cells(ray, config, tasks, store, progress, on_cell)
            finally:
                if own:
                    ray.shutdown()
        if len(tasks) < len(config.tasks):
            games = LocalExecutor(games_only=True)
            results += games.run(config, store, progress=progress, on_cell=on_cell)
        return results

    def _resources(self, ray: Any, config: SweepConfig) -> list[dict[str, Any]]:
        """Actor options per model, checked against the cluster before anything runs."""
        total = ray.cluster_resources()
        gpus = float(total.get("GPU", 0))
        node_mem = max(
            (float(n["Resources"].get("memory", 0)) for n in ray.nodes() if n.get("Alive")),
            default=0.0,
        )
        device = str(config.device) if config.device else None
        out = []
        for m in config.models:
            name = m.get("name", m["source"])
            use_gpu = device.startswith("cuda") if device else gpus >= 1
            if use_gpu and gpus < 1:
                raise ClusterError(
                    f"model {name!r} runs on {device!r} and needs 1 GPU per cell; the Ray "
                    f"cluster has {gpus:g} GPUs (set device = 'cpu' or add GPU nodes)"
                )
            mem = estimate_memory_bytes(m, config.dtype, use_gpu)
            if mem is not None and node_mem and mem > node_mem:
                raise ClusterError(
                    f"model {name!r} needs about {mem / 2**30:.1f} GiB per worker; the largest "
                    f"Ray node has {node_mem / 2**30:.1f} GiB"
                )
            opts: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1 if use_gpu else 0}
            if mem is not None:
                opts["memory"] = mem
            kw = load_kwargs(config, m)
            kw["device"] = device or ("cuda" if use_gpu else "cpu")
            out.append({"options": opts, "kwargs": kw})
        return out

    def _run_cells(
        self,
        ray: Any,
        config: SweepConfig,
        tasks: list[dict[str, Any]],
        store: Store,
        progress: bool,
        on_cell: Callable[[Any], None] | None,
    ) -> list[Any]:
        from ray.exceptions import ActorUnavailableError, RayActorError, WorkerCrashedError

        from ..runner import cell_result, open_cell

        lost = (RayActorError, ActorUnavailableError, WorkerCrashedError)
        per_model = self._resources(ray, config)  # errors before any actor starts
        worker = ray.remote(_CellWorker)
        cells = [(t, int(c)) for t in tasks for c in t.get("contexts", config.contexts)]
        groups: list[_Group] = []
        pending: dict[Any, tuple[_Group, int, str]] = {}
        results: list[Any] = []
        bar = tqdm(total=0, desc="sweep (ray)", unit="item", disable=not progress)

        def submit_plan(g: _Group) -> None:
            t, c = g.cell
            g.t0 = time.perf_counter()
            pending[g.actor.plan.remote(g.key, t, c)] = (g, g.gen, "plan")

        def submit_todo(g: _Group, todo: list[int]) -> None:
            t, c = g.cell
            size = config.chunk_size
            for s in range(0, len(todo), size):
                ref = g.actor.records.remote(g.key, t, c, todo[s : s + size])
                pending[ref] = (g, g.gen, "records")
                g.outstanding += 1

        def next_cell(g: _Group, result: Any) -> None:
            results.append(result)
            g.actor.drop.remote(g.key)
            g.pos += 1
            g.plan, g.run_id, g.outstanding, g.per_doc = None, None, 0, []
            if on_cell is not None:
                on_cell(result)
            if g.pos < len(g.cells):
                submit_plan(g)
            else:
                ray.kill(g.actor)  # free its resources for the pairs still waiting

        def finish(g: _Group, skipped: bool = False) -> None:
            if not skipped and g.run_id is not None:
                store.finish_run(g.run_id)
            res = cell_result(
                g.plan,
                store,
                g.run_id,
                g.per_doc,
                g.n_new,
                seed=config.seed,
                t0=g.t0,
                weight_error=g.weight_error,
                peak_memory_mb=g.peak,
                skipped=skipped,
            )
            next_cell(g, res)

        try:
            for m, spec in zip(config.models, per_model, strict=True):
                for p in config.precisions:
                    actor = worker.options(
                        **spec["options"],
                        max_restarts=self.max_restarts,
                        max_task_retries=self.max_task_retries,
                    ).remote(spec["kwargs"], p, self.fault_file)
                    g = _Group(actor=actor, label=f"{m.get('name', m['source'])} {p}", cells=cells)
                    groups.append(g)
                    submit_plan(g)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                g, gen, kind = pending.pop(ready[0])
                if gen != g.gen:
                    continue  # superseded by a retry
                try:
                    value = ray.get(ready[0])
                except lost as exc:
                    g.attempts += 1
                    if g.attempts > self.max_retries:
                        raise ClusterError(
                            f"{g.label}: workers kept failing ({exc}); re-run the sweep to resume"
                        ) from exc
                    g.gen += 1
                    for ref in [r for r, v in pending.items() if v[0] is g]:
                        del pending[ref]
                    g.outstanding = 0
                    if g.plan is None or g.run_id is None:
                        submit_plan(g)
                    else:  # ask again for what the store is missing
                        submit_todo(g, g.plan.todo(store.done_items(g.run_id)))
                        if g.outstanding == 0:
                            finish(g)
                    continue
                if kind == "plan":
                    g.plan, g.weight_error = value
                    g.plan.warn_beyond()
                    run_id, done, finished = open_cell(
                        store, g.plan, seed=config.seed, weight_error=g.weight_error
                    )
                    g.run_id = run_id
                    n = len(g.plan.task.docs)
                    bar.total += n
                    if finished:
                        bar.update(n)
                        finish(g, skipped=True)
                        continue
                    todo = g.plan.todo(done)
                    g.n_new = len(todo)
                    bar.update(n - len(todo))
                    submit_todo(g, todo)
                    if g.outstanding == 0:
                        finish(g)
                else:
                    records, g.peak = value
                    assert g.run_id is not None
                    store.add_records(g.run_id, records)  # one transaction per chunk
                    g.per_doc.extend(r["scores"] for r in records)
                    bar.update(len(records))
                    g.outstanding -= 1
                    if g.outstanding == 0:
                        finish(g)
        finally:
            bar.close()
            for g in groups:
                ray.kill(g.actor)
        return results
