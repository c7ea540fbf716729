"""Evaluation: request types, tasks, backends and the runner.

Importing ``capscale.eval`` never imports torch or transformers; backends load them when
they are used.
"""

from __future__ import annotations

from . import requests, tasks
from .cards import ModelCard
from .models import LoadedModel, load_model
from .precision import Precision, parse_precision
from .requests import GenerationRequest, LoglikelihoodRequest, RollingRequest
from .runner import CellResult, evaluate
from .sweep import SweepConfig, load_sweep, run_sweep
from .tasks import Task, get_task, list_tasks, load_task, save_task

__all__ = [
    "CellResult",
    "GenerationRequest",
    "LoadedModel",
    "LoglikelihoodRequest",
    "ModelCard",
    "Precision",
    "RollingRequest",
    "SweepConfig",
    "Task",
    "evaluate",
    "get_task",
    "list_tasks",
    "load_model",
    "load_sweep",
    "load_task",
    "parse_precision",
    "requests",
    "run_sweep",
    "save_task",
    "tasks",
]
