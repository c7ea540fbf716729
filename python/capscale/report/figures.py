"""Render matplotlib figures off-screen without touching pyplot or the caller's backend."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

__all__ = ["render_png"]


def render_png(
    draw: Callable[[Any], Any], size: tuple[float, float] = (6.4, 4.4), dpi: int = 120
) -> bytes:
    """Call ``draw(ax)`` on a fresh Agg-rendered figure and return the PNG bytes.

    The figure is a plain :class:`matplotlib.figure.Figure` on its own Agg canvas, so the
    user's pyplot state and backend (e.g. a notebook's inline backend) are left untouched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
