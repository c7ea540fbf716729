"""The local executor: every cell in this process, one model loaded at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..precision import parse_precision
from ..runner import evaluate
from .base import Executor, load_kwargs

if TYPE_CHECKING:
    from ...store import Store
    from ..sweep import SweepConfig

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Run cells in-process (what ``capscale sweep`` does by default).

    Parameters
    ----------
    games_only : bool
        Run only the ``game:`` tasks (the Ray executor runs game cells this way, on the
        driver).
    """

    name = "local"

    def __init__(self, *, games_only: bool = False) -> None:
        self.games_only = games_only

    def run(
        self,
        config: SweepConfig,
        store: Store,
        *,
        progress: bool = True,
        on_cell: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        from ..models import load_model

        tasks = [
            t for t in config.tasks if str(t["name"]).startswith("game:") or not self.games_only
        ]
        results: list[Any] = []
        if not tasks:
            return results
        for m in config.models:
            loaded = load_model(**load_kwargs(config, m))
            loaded.snapshot()
            for p in config.precisions:
                prec = parse_precision(p)
                loaded.restore()
                weight_error = prec.apply(loaded.backend.model)
                for t in tasks:
                    if str(t["name"]).startswith("game:"):
                        from ...games.runner import run_game

                        game_run = run_game(
                            loaded,
                            str(t["name"])[5:],
                            prec,
                            store,
                            experiments=dict(t.get("params", {})).get("experiments"),
                            limit=t.get("limit"),
                            seed=config.seed,
                            apply_precision=False,
                            weight_error=weight_error,
                            progress=progress,
                        )
                        results.append(game_run)
                        if on_cell is not None:
                            on_cell(game_run)
                        continue
                    for c in t.get("contexts", config.contexts):
                        res = evaluate(
                            loaded,
                            t["name"],
                            precision=prec,
                            weight_error=weight_error,
                            store=store,
                            context_length=int(c) or None,
                            num_fewshot=t.get("num_fewshot"),
                            limit=t.get("limit"),
                            task_params=dict(t.get("params", {})),
                            seed=config.seed,
                            chunk_size=config.chunk_size,
                            progress=progress,
                        )
                        results.append(res)
                        if on_cell is not None:
                            on_cell(res)
            loaded.restore()
        return results
