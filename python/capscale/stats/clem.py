"""clembench aggregation: per-episode scores → % played, quality score, clemscore, exactly as
clembench computes them (NumPy's half-to-even rounding at each step), plus bootstrap intervals
over episodes, and import of clembench's own ``scores.json`` trees."""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _native
from .._validate import check_count, check_level, check_seed
from ..errors import FormatError, InvalidInputError
from .core import labels
from .frame import _column

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["clem_table", "clemscore", "read_clembench_scores"]

ABORTED = "Aborted"
MAIN_SCORE = "Main Score"


def _episodes(df: pd.DataFrame, game: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    for col in (game, ABORTED, MAIN_SCORE):
        _column(df, col, "episode")
    if len(df) == 0:
        raise InvalidInputError("no episodes to aggregate")
    games = df[game].to_numpy()
    codes = labels(game, games, len(df))
    names = sorted(set(games.tolist()))
    aborted = np.array(df[ABORTED].to_numpy(), dtype=np.float64)
    main = np.array(df[MAIN_SCORE].to_numpy(), dtype=np.float64)
    return codes, aborted, main, names


def clem_table(episodes: pd.DataFrame, *, model: str = "model", game: str = "game") -> pd.DataFrame:
    """clembench's results table (one row per model) from per-episode scores.

    Parameters
    ----------
    episodes : pandas.DataFrame
        One row per episode with columns ``model``, ``game``, ``Aborted`` (0/1) and
        ``Main Score`` (NaN when aborted), e.g. from :func:`read_clembench_scores`.

    Returns
    -------
    pandas.DataFrame
        Index: model; columns exactly as clembench's ``results.csv``:
        ``"-, clemscore"``, ``"all, Average % Played"``, ``"all, Average Quality Score"``, then
        per game ``"<game>, % Played"``, ``"<game>, Quality Score"``,
        ``"<game>, Quality Score (std)"``.
    """
    import pandas as pd

    _column(episodes, model, "model")
    rows = {}
    for name, sub in episodes.groupby(model, sort=True):
        codes, aborted, main, games = _episodes(sub, game)
        t = _native.clem_table(codes, aborted, main)
        row: dict[str, float] = {
            "-, clemscore": t["clemscore"],
            "all, Average % Played": t["avg_played"],
            "all, Average Quality Score": t["avg_quality"],
        }
        for k, g in enumerate(games):
            row[f"{g}, % Played"] = float(t["played"][k])
            row[f"{g}, Quality Score"] = float(t["quality"][k])
            row[f"{g}, Quality Score (std)"] = float(t["quality_std"][k])
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = model
    return table


def clemscore(
    episodes: pd.DataFrame,
    *,
    model: str = "model",
    game: str = "game",
    ci: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    n_threads: int = 0,
) -> pd.DataFrame:
    """clemscore per model with a bootstrap interval over episodes.

    The point numbers are clembench's (rounded as clembench rounds); the interval resamples
    episodes within each game (stream ``b`` of ``seed`` for replicate ``b``) and recomputes the
    unrounded clemscore, percentile method.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, games, episodes, played, quality, clemscore, ci_low, ci_high``.
    """
    import pandas as pd

    ci = check_level(ci)
    seed = check_seed(seed)
    n_resamples = check_count("n_resamples", n_resamples, 2)
    _column(episodes, model, "model")
    out = []
    for name, sub in episodes.groupby(model, sort=True):
        codes, aborted, main, games = _episodes(sub, game)
        t = _native.clem_table(codes, aborted, main)
        reps = _native.clemscore_replicates(codes, aborted, main, n_resamples, seed, n_threads)
        tail = 100 * (1 - ci) / 2
        lo, hi = np.percentile(reps, [tail, 100 - tail])
        out.append(
            {
                model: name,
                "games": len(games),
                "episodes": len(sub),
                "played": t["avg_played"],
                "quality": t["avg_quality"],
                "clemscore": t["clemscore"],
                "ci_low": float(lo),
                "ci_high": float(hi),
            }
        )
    return pd.DataFrame(out)


def _score_files(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for f in sorted(path.rglob("scores.json")):
            yield str(f.relative_to(path)), f.read_bytes()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in sorted(zf.namelist()):
                if name.endswith("/scores.json") or name == "scores.json":
                    yield name, zf.read(name)
    else:
        raise FormatError(f"{path}: not a directory or a zip archive of clembench runs")


def read_clembench_scores(path: str | Path) -> pd.DataFrame:
    """Per-episode scores from a clembench runs tree (a folder or a zip of it).

    The layout is ``…/<model-pair>/<game>/<experiment>/<episode>/scores.json``; each file's
    ``"episode scores"`` become columns (NaN where a game does not log a metric).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, game, experiment, episode`` and one column per episode metric
        (``Aborted``, ``Success``, ``Lose``, ``Main Score``, …).
    """
    import pandas as pd

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory")
    rows: list[dict[str, Any]] = []
    for name, raw in _score_files(root):
        parts = Path(name).parts
        if len(parts) < 5:
            raise FormatError(f"{name}: expected <model>/<game>/<experiment>/<episode>/scores.json")
        try:
            data = json.loads(raw)
            scores = data["episode scores"]
        except (ValueError, KeyError, TypeError):
            raise FormatError(
                f"{name}: not a clembench scores.json (no 'episode scores')"
            ) from None
        row: dict[str, Any] = {
            "model": parts[-5],
            "game": parts[-4],
            "experiment": parts[-3],
            "episode": parts[-2],
        }
        for k, v in scores.items():
            row[k] = math.nan if v is None else v
        rows.append(row)
    if not rows:
        raise FormatError(f"{root}: no scores.json files found")
    return pd.DataFrame(rows)
