"""Conversational games: clembench-style self-play as a capscale evaluation.

The framework (:mod:`capscale.games.master`) runs an episode of a game instance with its
players, records every prompt, raw reply, parse result and event, and scores the episode with
clembench's metric names; :func:`run_game` writes episodes into a :class:`capscale.store.Store`
(one run per model × precision × game, resumable); :func:`episode_table` and
:mod:`capscale.stats` aggregate them as clembench does. Importing this package does not import
torch: backends are loaded only by :func:`run_game` when given a model name.
"""

from __future__ import annotations

from .instances import generate_instances, instances_path, load_instances
from .master import (
    METRICS,
    ContextOverflow,
    EpisodeAborted,
    EpisodeResult,
    GameMaster,
    ParseError,
    get_game,
    list_games,
    register_game,
)
from .players import BackendPlayer, MockPlayer, ProgrammaticPlayer
from .runner import episode_table, run_episode, run_game

__all__ = [
    "METRICS",
    "BackendPlayer",
    "ContextOverflow",
    "EpisodeAborted",
    "EpisodeResult",
    "GameMaster",
    "MockPlayer",
    "ParseError",
    "ProgrammaticPlayer",
    "episode_table",
    "generate_instances",
    "get_game",
    "instances_path",
    "list_games",
    "load_instances",
    "register_game",
    "run_episode",
    "run_game",
]
