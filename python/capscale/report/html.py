"""A self-contained HTML report of a study: runs, scores with confidence intervals per model
and precision, and each law fit's summary and figure (PNG embedded as base64)."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .figures import render_png

__all__ = ["build_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
pre { background: #f8f8f8; padding: .8em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; } .meta { color: #666; font-size: .85em; }
"""


def _figure_png(draw: Any) -> str:
    """Run ``draw(ax)`` on a new off-screen figure; return it as a base64 PNG data URI."""
    return "data:image/png;base64," + base64.b64encode(render_png(draw, dpi=110)).decode()


def _table(df: Any, float_format: str = "{:.4g}") -> str:
    return str(
        df.to_html(
            index=False,
            border=0,
            na_rep="–",
            float_format=lambda v: float_format.format(v),
            escape=True,
        )
    )


def _scores_section(store_path: str | Path, metric: str | None, task: str | None) -> list[str]:
    from ..laws.data import table_from_store
    from ..store import Store

    with Store(store_path, create=False) as store:
        runs = store.runs()
    parts = [f"<h2>Runs ({len(runs)})</h2>"]
    cols = ["run_id", "model", "precision", "task", "context_length", "status", "n_records"]
    parts.append(_table(runs[[c for c in cols if c in runs.columns]]))
    table = table_from_store(store_path, metric=metric, task=task)
    parts.append("<h2>Scores (mean, standard error, 95% bootstrap CI)</h2>")
    show = ["model", "precision", "task", "context_length", "n_items", "score", "stderr"]
    show += ["ci_low", "ci_high", "n_params", "bits"]
    parts.append(_table(table[[c for c in show if c in table.columns]]))
    if table["n_params"].notna().any():

        def draw(ax: Any) -> None:
            for precision, sub in table.dropna(subset=["n_params"]).groupby("precision"):
                sub = sub.sort_values("n_params")
                err = [sub["score"] - sub["ci_low"], sub["ci_high"] - sub["score"]]
                ax.errorbar(
                    sub["n_params"],
                    sub["score"],
                    yerr=err,
                    marker="o",
                    capsize=3,
                    label=str(precision),
                )
            ax.set_xscale("log")
            ax.set_xlabel("parameters")
            ax.set_ylabel("score")
            ax.legend(title="precision")

        parts.append(f'<img alt="score vs parameters" src="{_figure_png(draw)}">')
    return parts


def build_report(
    out: str | Path,
    *,
    store: str | Path | None = None,
    fits: Sequence[Any] = (),
    metric: str | None = None,
    task: str | None = None,
    title: str = "capscale study",
) -> Path:
    """Write an HTML report and return its path.

    Parameters
    ----------
    out : path
        The HTML file to write (self-contained: figures are embedded).
    store : path, optional
        A results store: its runs, and per-cell scores with CIs and a score-vs-size figure.
    fits : sequence of LawFamily or paths to saved fits
        Each fit's summary and figure.
    metric, task : str, optional
        Which score (and task) of the store to show.
    """
    from .. import __version__
    from ..laws.family import LawFamily, load_fit

    if store is None and not fits:
        raise InvalidInputError("nothing to report: give a store and/or fits")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>capscale {__version__}, generated {stamp}</p>",
    ]
    if store is not None:
        parts += _scores_section(store, metric, task)
    for item in fits:
        fitted = item if isinstance(item, LawFamily) else load_fit(item)
        parts.append(f"<h2>Law: {html.escape(fitted.name)}</h2>")
        parts.append(f"<pre>{html.escape(fitted.summary())}</pre>")
        parts.append(f'<img alt="{html.escape(fitted.name)}" src="{_figure_png(fitted.plot)}">')
    parts.append("</body></html>")
    path = Path(out)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
