"""Score aggregation with honest uncertainty, on native kernels.

Means and standard errors, bootstrap confidence intervals (percentile or BCa; stratified by
subtask, clustered by instance, micro or macro averages, weighted items), paired differences
between systems scored on the same items, normalisation against a random baseline, and
clembench's aggregation (% played, quality score, clemscore). Every random procedure takes a
``seed`` and gives identical results for any thread count.
"""

from .clem import clem_table, clemscore, read_clembench_scores
from .core import Interval, bootstrap_mean, describe, normalize, round_half_even
from .frame import aggregate_subtasks, summarize
from .paired import PairedDifference, paired_difference

__all__ = [
    "Interval",
    "PairedDifference",
    "aggregate_subtasks",
    "bootstrap_mean",
    "clem_table",
    "clemscore",
    "describe",
    "normalize",
    "paired_difference",
    "read_clembench_scores",
    "round_half_even",
    "summarize",
]
