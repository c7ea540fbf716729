"""A readable, self-contained HTML transcript of a stored episode (clembench's
``transcript.html``): the game master's events in order, player messages as chat bubbles,
rule violations highlighted, the episode scores on top."""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, UnknownNameError

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["episode_html", "write_transcript"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}
h1{font-size:1.3em}table.scores{border-collapse:collapse;margin:1em 0}
table.scores td{border:1px solid #ccc;padding:.2em .6em}
.turn{border-top:2px solid #ddd;margin-top:1em;padding-top:.3em;color:#666;font-size:.9em}
.ev{margin:.4em 0;padding:.5em .8em;border-radius:8px;white-space:pre-wrap;max-width:80%}
.to-player{background:#e8f0fe;margin-left:0}.from-player{background:#e6f4ea;margin-left:20%}
.gm{background:#f5f5f5;font-size:.85em;color:#555;margin-left:10%}
.bad{background:#fde8e8;border:1px solid #e57373}.who{font-size:.75em;color:#888}
"""


def _fmt(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=1, sort_keys=True)


def _score_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def episode_html(episode: dict[str, Any], turns: list[dict[str, Any]]) -> str:
    """HTML of one episode: ``episode`` has ``game``, ``experiment``, ``episode_id``,
    ``model``, ``scores`` (mapping), ``instance``; ``turns`` are the store's turn rows with
    ``events`` decoded (lists of event dicts)."""
    e = html.escape
    title = (
        f"{episode.get('game')} / {episode.get('experiment')} / episode {episode.get('episode_id')}"
    )
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>Model: <b>{e(str(episode.get('model', '')))}</b>"
        f" &middot; precision: {e(str(episode.get('precision', '')))}</p>",
        "<table class='scores'>",
    ]
    for k, v in (episode.get("scores") or {}).items():
        out.append(f"<tr><td>{e(str(k))}</td><td>{e(_score_text(v))}</td></tr>")
    out.append("</table>")
    inst = episode.get("instance")
    if inst is not None:
        out.append(f"<details><summary>Instance</summary><pre>{e(_fmt(inst))}</pre></details>")
    events = []
    for t in turns:
        for ev in t.get("events") or []:
            events.append((t["turn"], ev.get("seq", 0), ev))
    events.sort(key=lambda x: (x[0], x[1]))
    current = None
    for turn, _, ev in events:
        if turn != current:
            out.append(f"<div class='turn'>Turn {turn + 1}</div>")
            current = turn
        typ = str(ev.get("type", ""))
        src, dst = str(ev.get("from", "GM")), str(ev.get("to", "GM"))
        if typ == "send message":
            cls, who = "to-player", f"GM → {dst}"
        elif typ == "get message":
            cls, who = "from-player", f"{src} → GM"
        else:
            cls, who = "gm", f"{src}: {typ}"
        if typ in ("invalid format", "invalid clue", "error"):
            cls += " bad"
        body = e(_fmt(ev.get("content")))
        out.append(f"<div class='ev {cls}'><div class='who'>{e(who)}</div>{body}</div>")
    out.append("</body></html>")
    return "\n".join(out)


def write_transcript(store: Store, episode: int | str, out: str | None = None) -> str:
    """HTML transcript of a stored episode, by the episode's row id (the ``episodes`` table's
    ``id``, listed by ``capscale games score --episodes``) or by
    ``"run_id/experiment/episode_id"``. Writes it to ``out`` when given; returns the HTML."""
    conn = store.conn
    if isinstance(episode, str) and "/" in episode:
        parts = episode.split("/")
        if len(parts) != 3:
            raise InvalidInputError(
                f"episode {episode!r}: use a row id or 'run_id/experiment/episode_id'"
            )
        row = conn.execute(
            "SELECT id FROM episodes WHERE run_id = ? AND experiment = ? AND episode_id = ?",
            [int(parts[0]), parts[1], parts[2]],
        ).fetchone()
    else:
        try:
            rowid = int(episode)
        except ValueError:
            raise InvalidInputError(f"episode {episode!r}: not a row id") from None
        row = conn.execute("SELECT id FROM episodes WHERE id = ?", [rowid]).fetchone()
    if row is None:
        raise UnknownNameError(f"no episode {episode!r} in {store.path}")
    rowid = int(row[0])
    info = conn.execute(
        "SELECT e.game, e.experiment, e.episode_id, e.instance, e.scores, m.name, p.name "
        "FROM episodes e JOIN runs r ON r.id = e.run_id JOIN models m ON m.id = r.model_id "
        "JOIN precisions p ON p.id = r.precision_id WHERE e.id = ?",
        [rowid],
    ).fetchone()
    episode_d = {
        "game": info[0],
        "experiment": info[1],
        "episode_id": info[2],
        "instance": json.loads(info[3]) if info[3] else None,
        "scores": json.loads(info[4]) if info[4] else {},
        "model": info[5],
        "precision": info[6],
    }
    turns = [
        {"turn": r[0], "player": r[1], "events": json.loads(r[2]) if r[2] else None}
        for r in conn.execute(
            "SELECT turn, player, events FROM turns WHERE episode_rowid = ? ORDER BY turn, id",
            [rowid],
        )
    ]
    text = episode_html(episode_d, turns)
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    return text
