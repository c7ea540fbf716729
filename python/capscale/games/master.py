"""The game framework: a clembench-style game master, its recorder, scoring and the registry.

This module is the stable API every game is written against (clembench 1.x's
``GameMaster``/``DialogueGameMaster`` + ``GameRecorder`` + ``GameScorer``, re-implemented).

Writing a game
--------------
Subclass :class:`GameMaster`, register it, and implement :meth:`GameMaster.setup`,
:meth:`GameMaster.play` and :meth:`GameMaster.main_score`::

    @register_game("mygame")
    class MyGame(GameMaster):
        roles = ("Describer", "Guesser")      # one entry per player (Player 1, Player 2, ...)
        version = "1.0"                        # stored as the task version

        def setup(self, **instance):           # called once with the instance's fields
            self.target = instance["target"]

        def play(self):                        # the episode loop
            self.new_turn()                    # starts round 0, 1, ... (store ``turn`` index)
            self.add_user_message(0, "Describe " + self.target)
            reply = self.ask(0)                # one model call: counted, recorded
            clue = self.parse_or_abort(reply, lambda r: r.strip())  # or self.abort("reason")
            ...
            self.success = True                # or self.lose = True; aborts raise instead

        def main_score(self):                  # only called when the episode was not aborted
            return 100.0 / self.n_turns if self.success else 0.0

Instances: a game class may define ``@classmethod generate_instances(cls, seed: int, n: int)
-> dict`` returning ``{"experiments": [{"name", <params>..., "game_instances": [{"game_id",
...}]}]}`` (``n`` instances per experiment, reproducible from ``seed``); the shipped set is
``capscale/games/data/<name>.json`` (see :mod:`capscale.games.instances`). Each instance's
fields are passed to ``setup``; the experiment's parameters are ``self.experiment``.

Running it: ``result = MyGame(players, instance, experiment).run()`` gives an
:class:`EpisodeResult` (``scores``, ``turns`` rows for :meth:`capscale.store.Store.add_episode`,
``status`` = ``"played"`` / ``"aborted"`` / ``"failed"``); :func:`capscale.games.run_game`
loops over instances and writes to the store.

Players are any objects with ``respond(messages) -> str`` (``messages`` = chat messages
``[{"role": "user"|"assistant"|"system", "content": str}]``) and a ``name``
(see :mod:`capscale.games.players`). A player raising :class:`ContextOverflow` aborts the
episode with that reason (clembench's ``ContextExceededError``); any other exception from a
player marks the episode ``failed`` with the error recorded in the events.

Recorder methods (used inside ``play``)
---------------------------------------
- ``new_turn()``: start the next round (``self.turn`` = 0-based index, ``self.n_turns``).
- ``add_user_message(i, text)`` / ``add_assistant_message(i, text)`` /
  ``set_system_message(i, text)``: edit player ``i``'s (0-based) message history.
- ``ask(i) -> str``: send player ``i`` its history, record the request (prompt, raw reply),
  append the reply to the history as an assistant message, count it in Request Count.
- ``accept(value)``: the last reply parsed to ``value`` (Parsed Request Count +1; stored as
  the turn's ``parsed``).
- ``abort(reason)``: the last reply broke a rule (Violated Request Count +1, an
  ``invalid format`` event) and the episode ends aborted; raises :class:`EpisodeAborted`.
- ``reject(reason)``: like ``abort`` but the episode goes on (the game reprompts; clembench's
  retries, e.g. wordle's invalid words).
- ``parse_or_abort(reply, parser)``: ``parser`` returns the parsed value or raises
  :class:`ParseError` (→ ``abort``); returns the value after ``accept``.
- ``log_event(type, content, from_="GM", to="GM", **extra)``: any game action
  (clembench's ``log_event``); ``log_key(key, value)``: an episode-level fact (kept in
  ``EpisodeResult.keys``).
- ``self.success`` / ``self.lose``: set one when the game ends normally.
- ``extra_scores() -> dict``: game-specific episode scores (added to the clembench ones).

Store rows (``EpisodeResult.turns``)
------------------------------------
One row per model call: ``{"turn": round, "player": "Player 1", "prompt": messages,
"raw_reply": str, "parsed": value or None, "events": None}`` (a second call of the same
player in one round is labelled ``"Player 1 (2)"``), plus one ``"GM"`` row per round
whose ``events`` is the chronological list of actions ``{"seq", "from", "to", "type",
"content", ...}`` (types as clembench: ``send message``, ``get message``, ``parse``,
``invalid format``, ``error``, ``metadata`` and game-specific ones).

Scores (clembench's names, :data:`METRICS`): ``Aborted``, ``Lose``, ``Success`` (0/1),
``Request Count``, ``Parsed Request Count``, ``Violated Request Count``,
``Request Success Ratio`` (parsed / requests; NaN without requests), ``Main Score``
(0–100, NaN when aborted). Failed episodes also carry ``Failed`` = 1 (their clembench
scores are those of an aborted episode; :func:`capscale.games.episode_table` leaves them
out of aggregation as clembench, which writes no ``scores.json`` for a crashed episode).
"""

from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from ..errors import CapscaleError, InvalidInputError, UnknownNameError, did_you_mean

__all__ = [
    "ABORTED",
    "FAILED",
    "LOSE",
    "MAIN_SCORE",
    "METRICS",
    "PARSED",
    "REQUESTS",
    "SUCCESS",
    "SUCCESS_RATIO",
    "VIOLATED",
    "ContextOverflow",
    "EpisodeAborted",
    "EpisodeResult",
    "GameMaster",
    "ParseError",
    "PlayerLike",
    "get_game",
    "list_games",
    "register_game",
]

ABORTED = "Aborted"
LOSE = "Lose"
SUCCESS = "Success"
REQUESTS = "Request Count"
PARSED = "Parsed Request Count"
VIOLATED = "Violated Request Count"
SUCCESS_RATIO = "Request Success Ratio"
MAIN_SCORE = "Main Score"
FAILED = "Failed"
#: clembench's episode scores, in clembench's order.
METRICS = (ABORTED, LOSE, SUCCESS, REQUESTS, PARSED, VIOLATED, SUCCESS_RATIO, MAIN_SCORE)


class ContextOverflow(CapscaleError, RuntimeError):
    """The prompt plus ``max_new_tokens`` exceeds the model's context (clembench's
    ``ContextExceededError``): the episode is aborted with this reason."""


class EpisodeAborted(CapscaleError):
    """Raised inside :meth:`GameMaster.play` to end the episode as aborted (rule broken)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ParseError(CapscaleError, ValueError):
    """A reply does not follow the game's format; raised by parsers given to
    :meth:`GameMaster.parse_or_abort`."""


class PlayerLike(Protocol):
    """What a game master needs from a player."""

    name: str

    def respond(self, messages: list[dict[str, str]]) -> str: ...


@dataclass
class EpisodeResult:
    """The outcome of one episode.

    Attributes
    ----------
    status : str
        ``"played"`` (ended by the rules, won or lost), ``"aborted"`` (a rule was broken or
        the context overflowed) or ``"failed"`` (a player raised an unexpected error).
    scores : dict
        Episode scores: :data:`METRICS` plus game-specific ones (and ``Failed`` when failed).
    turns : list of dict
        Store rows (see the module docstring).
    keys : dict
        Episode-level facts logged with :meth:`GameMaster.log_key`.
    reason : str or None
        Why the episode was aborted or failed.
    """

    status: str
    scores: dict[str, float]
    turns: list[dict[str, Any]]
    keys: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


class GameMaster:
    """Base class of every game: runs one episode of an instance with its players.

    Parameters
    ----------
    players : sequence of PlayerLike
        One per entry of :attr:`roles` (Player 1 first).
    instance : mapping
        The game instance (``game_id`` and the game's fields); passed to :meth:`setup`.
    experiment : mapping, optional
        The experiment's parameters (``name`` and the rest, without ``game_instances``);
        available as ``self.experiment``.
    """

    #: Registered name (set by :func:`register_game`).
    name: ClassVar[str] = ""
    #: Role of each player, Player 1 first; its length is the number of model players.
    roles: ClassVar[tuple[str, ...]] = ("Player",)
    #: Version of the game's rules and instances (stored as the task version).
    version: ClassVar[str] = "1.0"

    def __init__(
        self,
        players: Sequence[PlayerLike],
        instance: Mapping[str, Any],
        experiment: Mapping[str, Any] | None = None,
    ) -> None:
        players = list(players)
        if len(players) != len(self.roles):
            raise InvalidInputError(
                f"game {self.name or type(self).__name__!r} needs {len(self.roles)} players "
                f"({', '.join(self.roles)}), got {len(players)}"
            )
        self.players = players
        self.instance = dict(instance)
        self.experiment = {k: v for k, v in (experiment or {}).items() if k != "game_instances"}
        self.histories: list[list[dict[str, str]]] = [[] for _ in players]
        self.turn = -1
        self.success = False
        self.lose = False
        self._requests = 0
        self._parsed = 0
        self._violated = 0
        self._seq = 0
        self._rows: list[dict[str, Any]] = []
        self._gm_rows: dict[int, dict[str, Any]] = {}
        self._last_row: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}

    # -- hooks -----------------------------------------------------------------------------

    def setup(self, **instance: Any) -> None:
        """Prepare the episode from the instance's fields (override)."""

    def play(self) -> None:
        """The episode loop (override): ask players, parse, set ``success``/``lose``."""
        raise NotImplementedError

    def main_score(self) -> float:
        """The game's Main Score (0–100) of a played (not aborted) episode (override)."""
        raise NotImplementedError

    def extra_scores(self) -> dict[str, float]:
        """Game-specific episode scores (override; default none)."""
        return {}

    # -- recorder --------------------------------------------------------------------------

    @property
    def n_turns(self) -> int:
        """Rounds started so far (``turn + 1``)."""
        return self.turn + 1

    def player_label(self, i: int) -> str:
        """``"Player 1"`` for index 0, …"""
        return f"Player {i + 1}"

    def new_turn(self) -> int:
        """Start the next round; returns its 0-based index."""
        self.turn += 1
        self._last_row = None
        return self.turn

    def _gm_row(self) -> dict[str, Any]:
        t = max(self.turn, 0)
        row = self._gm_rows.get(t)
        if row is None:
            row = {"turn": t, "player": "GM", "prompt": None, "raw_reply": None}
            row.update(parsed=None, events=[])
            self._gm_rows[t] = row
        return row

    def log_event(
        self, type: str, content: Any, *, from_: str = "GM", to: str = "GM", **extra: Any
    ) -> None:
        """Record one action of the current round (clembench's ``log_event``)."""
        event = {"seq": self._seq, "from": from_, "to": to, "type": type, "content": content}
        event.update(extra)
        self._seq += 1
        self._gm_row()["events"].append(event)

    def log_key(self, key: str, value: Any) -> None:
        """Record an episode-level fact (clembench's ``log_key``)."""
        self._keys[key] = value

    def set_system_message(self, i: int, text: str) -> None:
        """Put (or replace) a system message at the start of player ``i``'s history."""
        h = self.histories[i]
        if h and h[0]["role"] == "system":
            h[0] = {"role": "system", "content": text}
        else:
            h.insert(0, {"role": "system", "content": text})

    def add_user_message(self, i: int, text: str) -> None:
        """Append a GM → player message to player ``i``'s history (merged with a preceding
        user message, as clembench does, so roles alternate)."""
        h = self.histories[i]
        if h and h[-1]["role"] == "user":
            h[-1] = {"role": "user", "content": h[-1]["content"] + "\n\n" + text}
        else:
            h.append({"role": "user", "content": text})

    def add_assistant_message(self, i: int, text: str) -> None:
        """Append a player → GM message to player ``i``'s history."""
        self.histories[i].append({"role": "assistant", "content": text})

    def ask(self, i: int) -> str:
        """One model call: send player ``i`` its history and return its raw reply.

        The request is counted and recorded (prompt, raw reply; ``send message`` and
        ``get message`` events); the reply is appended to the history. A
        :class:`ContextOverflow` from the player propagates (the episode is aborted by
        :meth:`run`); so does any other exception (the episode fails).
        """
        if self.turn < 0:
            self.new_turn()
        label = self.player_label(i)
        same = sum(
            1 for r in self._rows if r["turn"] == self.turn and r["player"].startswith(label)
        )
        player_key = label if same == 0 else f"{label} ({same + 1})"
        messages = copy.deepcopy(self.histories[i])
        self.log_event(
            "send message",
            messages[-1]["content"] if messages else "",
            to=label,
        )
        row: dict[str, Any] = {
            "turn": self.turn,
            "player": player_key,
            "prompt": messages,
            "raw_reply": None,
            "parsed": None,
            "events": None,
        }
        self._rows.append(row)
        self._last_row = row
        self._requests += 1
        reply = self.players[i].respond(messages)
        if not isinstance(reply, str):
            raise TypeError(f"player {label} returned {type(reply).__name__}, not str")
        row["raw_reply"] = reply
        self.log_event("get message", reply, from_=label)
        self.add_assistant_message(i, reply)
        return reply

    def accept(self, value: Any) -> Any:
        """The last reply parsed to ``value``: count it, store it, log a ``parse`` event."""
        self._parsed += 1
        if self._last_row is not None:
            self._last_row["parsed"] = value
        self.log_event("parse", value)
        return value

    def abort(self, reason: str) -> None:
        """The last reply broke a rule: count a violation, log ``invalid format`` and end the
        episode as aborted (raises :class:`EpisodeAborted`)."""
        self._violated += 1
        if self._last_row is not None:
            self._last_row["parsed"] = {"error": reason}
        self.log_event("invalid format", reason)
        raise EpisodeAborted(reason)

    def reject(self, reason: str) -> None:
        """The last reply broke a rule the game lets the player retry: count a violation and
        log ``invalid format`` without ending the episode (the game reprompts)."""
        self._violated += 1
        if self._last_row is not None:
            self._last_row["parsed"] = {"error": reason}
        self.log_event("invalid format", reason, retry=True)

    T = TypeVar("T")

    def parse_or_abort(self, reply: str, parser: Callable[[str], T]) -> T:
        """``parser(reply)``; a :class:`ParseError` aborts the episode with its message."""
        try:
            value = parser(reply)
        except ParseError as exc:
            self.abort(str(exc))
            raise  # pragma: no cover - abort always raises
        self.accept(value)
        return value

    # -- episode ---------------------------------------------------------------------------

    def run(self) -> EpisodeResult:
        """Set up and play the episode, then score it (never raises for player errors)."""
        status = "played"
        reason: str | None = None
        try:
            self.setup(**self.instance)
            self.log_event("metadata", {"game": self.name, "game_id": self.instance.get("game_id")})
            self.play()
            if not (self.success or self.lose):
                raise RuntimeError(f"game {self.name!r} ended without success or loss")
        except EpisodeAborted as exc:
            status, reason = "aborted", exc.reason
        except ContextOverflow as exc:
            status, reason = "aborted", f"context exceeded: {exc}"
            if self._last_row is not None:
                self._last_row["parsed"] = {"error": reason}
            self.log_event("error", reason)
        except Exception as exc:
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            self.log_event("error", reason, traceback="".join(tb[-6:]))
        scores = self._scores(status)
        return EpisodeResult(status, scores, self.turn_rows(), dict(self._keys), reason)

    def _scores(self, status: str) -> dict[str, float]:
        aborted = status != "played"
        main = math.nan
        if not aborted:
            main = float(self.main_score())
            if not 0.0 <= main <= 100.0:
                raise InvalidInputError(f"Main Score must be in [0, 100], got {main}")
        requests = self._requests
        violated = self._violated
        if status == "aborted" and violated == 0 and requests:
            violated = 1  # a context overflow: the request that could not be answered
        scores: dict[str, float] = {
            ABORTED: int(aborted),
            LOSE: int(not aborted and self.lose and not self.success),
            SUCCESS: int(not aborted and self.success),
            REQUESTS: requests,
            PARSED: self._parsed,
            VIOLATED: violated,
            SUCCESS_RATIO: self._parsed / requests if requests else math.nan,
            MAIN_SCORE: main,
        }
        if not aborted:
            scores.update(self.extra_scores())
        if status == "failed":
            scores[FAILED] = 1
        return scores

    def turn_rows(self) -> list[dict[str, Any]]:
        """Store rows of the episode so far (requests and GM rows, by round)."""
        rows = list(self._rows) + list(self._gm_rows.values())
        order = {"GM": 0}
        return sorted(rows, key=lambda r: (r["turn"], order.get(r["player"], 1), r["player"]))


# -- registry --------------------------------------------------------------------------------

_GAMES: dict[str, type[GameMaster]] = {}
G = TypeVar("G", bound=type[GameMaster])


def register_game(name: str) -> Callable[[G], G]:
    """Class decorator: register a :class:`GameMaster` subclass under ``name``."""

    def deco(cls: G) -> G:
        if not (isinstance(cls, type) and issubclass(cls, GameMaster)):
            raise InvalidInputError(f"register_game({name!r}) needs a GameMaster subclass")
        cls.name = name
        _GAMES[name] = cls
        return cls

    return deco


#: Modules of the built-in games (imported on first registry lookup; each registers itself).
BUILTIN_MODULES = ("taboo", "wordle", "referencegame", "imagegame", "privateshared")


def _load_builtin() -> None:
    import importlib

    for mod in BUILTIN_MODULES:
        full = f"{__package__}.{mod}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as exc:  # a game module not present in this build
            if exc.name != full:
                raise


def get_game(name: str) -> type[GameMaster]:
    """The game class registered as ``name``; :class:`UnknownNameError` with a suggestion."""
    _load_builtin()
    key = str(name).strip().lower()
    if key in _GAMES:
        return _GAMES[key]
    hint = did_you_mean(key, list(_GAMES))
    raise UnknownNameError(
        f"unknown game {name!r}; {hint + ' ' if hint else ''}known games: "
        f"{', '.join(sorted(_GAMES))}"
    )


def list_games() -> list[str]:
    """Names of the registered games, sorted."""
    _load_builtin()
    return sorted(_GAMES)
