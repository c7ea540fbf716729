"""Run a game over its instances and write every episode into the results store.

One store run per (model or model pair, precision, game, run configuration); a killed run is
resumed (episodes already stored are skipped); a finished run is returned as is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from .instances import iter_instances, load_instances
from .master import FAILED, EpisodeResult, GameMaster, PlayerLike, get_game
from .players import BackendPlayer

if TYPE_CHECKING:
    import pandas as pd

    from ..store import Store

__all__ = ["GameRun", "episode_table", "run_episode", "run_game"]


@dataclass
class GameRun:
    """Summary of :func:`run_game`.

    ``n_episodes`` counts the episodes stored by this call (``n_skipped`` were stored
    already); ``played``/``aborted``/``failed`` split them by outcome.
    """

    run_id: int | None
    game: str
    model: str
    precision: str
    n_episodes: int = 0
    n_skipped: int = 0
    played: int = 0
    aborted: int = 0
    failed: int = 0
    skipped_run: bool = False
    seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        """True when the finished run was already stored (as ``CellResult.skipped``)."""
        return self.skipped_run

    def line(self) -> str:
        """One line: the cell, its outcomes and time (what sweeps print)."""
        state = "stored" if self.skipped_run else f"{self.n_episodes} new"
        return (
            f"{self.model} | {self.precision} | game:{self.game} | played {self.played}, "
            f"aborted {self.aborted}, failed {self.failed} | {state} | {self.seconds:.1f} s"
        )

    results: list[EpisodeResult] = field(default_factory=list, repr=False)


def run_episode(
    game: str | type[GameMaster],
    players: Sequence[PlayerLike],
    instance: Mapping[str, Any],
    experiment: Mapping[str, Any] | None = None,
) -> EpisodeResult:
    """Play one episode of ``instance`` (see :meth:`GameMaster.run`)."""
    cls = get_game(game) if isinstance(game, str) else game
    return cls(players, instance, experiment).run()


def _is_loaded(obj: Any) -> bool:
    return hasattr(obj, "backend") and hasattr(obj, "card") and hasattr(obj, "shipped")


def _players_for(
    cls: type[GameMaster], players: Any, max_new_tokens: int
) -> tuple[list[PlayerLike], list[Any]]:
    """Players for each role and the distinct LoadedModels among them (self-play expands one
    model to every role)."""
    if isinstance(players, str):
        from ..eval.models import load_model

        players = load_model(players)
    n = len(cls.roles)
    items = (
        [players] * n
        if (_is_loaded(players) or not isinstance(players, Sequence))
        else list(players)
    )
    if len(items) == 1 and n > 1:
        items = items * n
    if len(items) != n:
        raise InvalidInputError(
            f"game {cls.name!r} has {n} roles ({', '.join(cls.roles)}); got {len(items)} players"
        )
    loaded: list[Any] = []
    out: list[PlayerLike] = []
    cache: dict[int, PlayerLike] = {}
    for it in items:
        if _is_loaded(it):
            if id(it) not in cache:
                cache[id(it)] = BackendPlayer(
                    it.backend, it.card.name, max_new_tokens=max_new_tokens
                )
                loaded.append(it)
            out.append(cache[id(it)])
        elif hasattr(it, "respond"):
            out.append(it)
        else:
            raise InvalidInputError(
                f"a player must be a LoadedModel, a model name or have respond(); got "
                f"{type(it).__name__}"
            )
    return out, loaded


def run_game(
    players: Any,
    game: str,
    precision: Any = "shipped",
    store: Store | str | os.PathLike[str] | None = None,
    *,
    experiments: str | list[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    instances: Any = None,
    max_new_tokens: int = 100,
    apply_precision: bool = True,
    weight_error: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> GameRun:
    """Play every selected instance of ``game`` and store the episodes.

    Parameters
    ----------
    players
        A :class:`~capscale.eval.models.LoadedModel` or model name (self-play: the model
        plays every role, clembench's ``[m, m]``), a sequence of them (one per role: pairs of
        models/precisions), or players with ``respond()`` (programmatic, mock).
    game : str
        A registered game (:func:`~capscale.games.list_games`).
    precision : str, Precision or mapping
        The precision (``"shipped"``, ``"fp16"``, ``"int4-g128"`` …). With one LoadedModel and
        ``apply_precision``, its weights are snapshotted once, restored and put in this
        precision (the measured weight error is stored with the run). A mapping is a store
        precision spec used as is (a label for non-model players).
    apply_precision, weight_error
        ``apply_precision=False``: the caller already put the weights in ``precision`` (a
        sweep does); ``weight_error`` is then its measured weight error, stored with the run.
    store : Store or path, optional
        Where episodes go (``None``: play without storing).
    experiments, limit
        Select experiments by name and the first ``limit`` instances of each.
    seed : int
        Recorded with the run (decoding is greedy; instance sets are fixed files).
    instances : path or mapping, optional
        An instance set (default: the game's shipped set).
    max_new_tokens : int
        Generation budget per model call (clembench's 100).
    """
    t0 = time.perf_counter()
    cls = get_game(game)
    data = load_instances(instances if instances is not None else cls.name)
    pairs = iter_instances(data, experiments, limit)
    plist, loaded = _players_for(cls, players, max_new_tokens)

    from ..eval.precision import parse_precision

    measured = None if weight_error is None else dict(weight_error)
    if isinstance(precision, Mapping):
        spec = dict(precision)
        prec_name = str(spec.get("name") or spec.get("format"))
    else:
        prec = parse_precision(precision)
        prec_name = prec.name
        spec = prec.store_spec(loaded[0].shipped if len(loaded) == 1 else None)
        if apply_precision and len(loaded) == 1 and prec.kind != "shipped":
            lm = loaded[0]
            if getattr(lm, "_snapshot", None) is None:
                lm.snapshot()
            else:
                lm.restore()
            measured = prec.apply(lm.backend.model)
        elif (
            apply_precision
            and len(loaded) == 1
            and getattr(lm_snapshot := loaded[0], "_snapshot", None)
        ):
            lm_snapshot.restore()

    names = [p.name for p in plist]
    model_name = names[0] if len(set(names)) == 1 else "--".join(names)
    card: dict[str, Any]
    if len(loaded) == 1 and len(set(names)) == 1:
        card = loaded[0].card.to_dict()
    else:
        card = {"name": model_name}
    config = {
        "game": cls.name,
        "instances": data.get("version", "file"),
        "instances_seed": data.get("seed"),
        "experiments": sorted([experiments] if isinstance(experiments, str) else experiments)
        if experiments is not None
        else None,
        "limit": limit,
        "players": names,
        "max_new_tokens": max_new_tokens,
        "temperature": 0.0,
    }
    summary = GameRun(None, cls.name, model_name, prec_name)
    task = {"name": cls.name, "version": str(cls.version), "config": {"roles": list(cls.roles)}}

    st: Store | None = None
    own = False
    if store is not None:
        from ..store import Store

        if isinstance(store, Store):
            st = store
        else:
            st, own = Store(store), True
    try:
        done: set[tuple[str, str, str]] = set()
        if st is not None:
            rid = st.completed_run(card, spec, task, config=config, seed=seed)
            if rid is not None:
                summary.run_id, summary.skipped_run = rid, True
                summary.n_skipped = len(st.done_episodes(rid))
                return summary
            summary.run_id = st.start_run(card, spec, task, config=config, seed=seed)
            if measured is not None:
                st.set_weight_error(summary.run_id, measured)
            done = st.done_episodes(summary.run_id)
        from tqdm.auto import tqdm

        for exp, inst in tqdm(pairs, desc=f"{cls.name} {prec_name}", disable=not progress):
            key = (cls.name, str(exp["name"]), str(inst["game_id"]))
            if key in done:
                summary.n_skipped += 1
                continue
            res = cls(plist, inst, exp).run()
            summary.results.append(res)
            summary.n_episodes += 1
            setattr(summary, res.status, getattr(summary, res.status) + 1)
            if st is not None and summary.run_id is not None:
                episode = {
                    "game": cls.name,
                    "experiment": key[1],
                    "episode_id": key[2],
                    "instance": inst,
                    "scores": res.scores,
                }
                st.add_episode(summary.run_id, episode, res.turns)
        if st is not None and summary.run_id is not None:
            st.finish_run(summary.run_id, "done")
    finally:
        if own and st is not None:
            st.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def episode_table(
    store: Store, *, include_failed: bool = False, label: str = "model+precision", **filters: Any
) -> pd.DataFrame:
    """Episodes of a store ready for :func:`capscale.stats.clem_table` / ``clemscore``.

    Bare score names (``Aborted``, ``Main Score`` …); a ``system`` column labels what is
    compared: ``"model [precision]"`` (``label="model+precision"``) or the model name
    (``label="model"``). Failed episodes (a backend error, ``Failed`` = 1) are left out, as
    clembench has no scores for a crashed episode, unless ``include_failed``.
    """
    if label not in ("model+precision", "model"):
        raise InvalidInputError(f"label must be 'model+precision' or 'model', got {label!r}")
    df = store.episodes(score_prefix="", **filters)
    if not include_failed and FAILED in df.columns:
        df = df[~(df[FAILED] == 1)]
    df = df.copy()
    if label == "model":
        df["system"] = df["model"].astype(str)
    else:
        df["system"] = df["model"].astype(str) + " [" + df["precision"].astype(str) + "]"
    return df
