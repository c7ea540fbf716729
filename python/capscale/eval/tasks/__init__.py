"""Evaluation tasks: versioned documents in JSONL, lm-eval-compatible prompts and metrics.

>>> from capscale.eval.tasks import get_task
>>> task = get_task("arithmetic", digits=3, n=5)
>>> task.requests(0)[0].context
'Question: What is 964 plus 494?\\nAnswer:'

See ``docs/tasks.md`` for the file schema. Nothing here imports torch or transformers.
"""

from __future__ import annotations

from . import metrics
from .builtin import arithmetic, capitals_mc, facts_ppl
from .context import (
    RegexTokenizer,
    count_tokens,
    fit_words,
    pad_to_length,
    strip_padding,
)
from .filler import distractor_sentences, distractor_text
from .loader import dumps_task, load_task, loads_task, save_task
from .needle import needle
from .registry import get_task, list_tasks, register_task
from .schema import DEFAULT_METRICS, KINDS, MatchOptions, Request, Task

__all__ = [
    "DEFAULT_METRICS",
    "KINDS",
    "MatchOptions",
    "RegexTokenizer",
    "Request",
    "Task",
    "arithmetic",
    "capitals_mc",
    "count_tokens",
    "distractor_sentences",
    "distractor_text",
    "dumps_task",
    "facts_ppl",
    "fit_words",
    "get_task",
    "list_tasks",
    "load_task",
    "loads_task",
    "metrics",
    "needle",
    "pad_to_length",
    "register_task",
    "save_task",
    "strip_padding",
]
