"""Sweep executors: where a sweep's cells run.

``local`` (the default) runs every cell in this process; ``ray`` runs them on a Ray cluster
(``pip install capscale[ray]``), one actor per model × precision, and writes every record on
the driver. Importing this package never imports ray.
"""

from __future__ import annotations

from .base import EXECUTORS, Executor, get_executor

__all__ = ["EXECUTORS", "Executor", "get_executor"]
