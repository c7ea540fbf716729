"""Summary of a study's store: one line per model × precision × task × context length with
the task's main metric, its bootstrap CI, the paired difference to the shipped weights on the
same items, and the precision's bits per weight and measured weight error; plus a plot."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from ..stats import paired_difference, summarize
from ..store import Store

__all__ = ["MAIN_METRIC", "games_summary", "study_table", "summarize_study"]

#: The metric a task is summarised by (others stay in the store).
MAIN_METRIC = {
    "capitals_mc": "acc",
    "arithmetic": "exact_match",
    "needle": "numeric_match",
    "facts_ppl": "loglikelihood",
}


def _metric_for(task: str, columns: list[str]) -> str | None:
    m = MAIN_METRIC.get(task)
    if m and f"score_{m}" in columns:
        return f"score_{m}"
    for pref in ("score_acc", "score_exact_match"):
        if pref in columns:
            return pref
    scores = [c for c in columns if c.startswith("score_")]
    return scores[0] if scores else None


def study_table(store: Store, *, seed: int = 0, n_resamples: int = 4000) -> pd.DataFrame:
    """The summary as a DataFrame: model, precision, task, context, metric, n, mean,
    ci_low, ci_high, diff (vs shipped, paired), diff_low, diff_high, bits, weight_rel_rmse."""
    rec = store.records()
    rows: list[dict[str, Any]] = []
    if rec.empty:
        return pd.DataFrame(rows)
    rec["context"] = rec["context_length"].fillna(0).astype(int)
    keys = ["model", "task", "context"]
    for (model, task, ctx), part in rec.groupby(keys, sort=True):
        metric = _metric_for(str(task), list(part.dropna(axis=1, how="all").columns))
        if metric is None:
            continue
        base = part[part["run_id"] == part["run_id"].min()]  # the first precision run
        base_prec = base["precision"].iloc[0]
        for prec, grp in part.groupby("precision", sort=False):
            grp = grp.dropna(subset=[metric])
            if len(grp) < 2:
                continue
            s = summarize(grp, metric=metric, n_resamples=n_resamples, seed=seed).iloc[0]
            row: dict[str, Any] = {
                "model": model,
                "precision": prec,
                "task": task,
                "context": ctx,
                "metric": metric.removeprefix("score_"),
                "n": int(s["n"]),
                "mean": float(s["mean"]),
                "ci_low": float(s["ci_low"]),
                "ci_high": float(s["ci_high"]),
                "bits": float(grp["bits"].iloc[0]) if pd.notna(grp["bits"].iloc[0]) else math.nan,
                "weight_rel_rmse": float(grp["weight_rel_rmse"].iloc[0]),
                "diff": math.nan,
                "diff_low": math.nan,
                "diff_high": math.nan,
            }
            if prec != base_prec:
                a = grp.set_index("item_id")[metric]
                b = base.dropna(subset=[metric]).set_index("item_id")[metric]
                common = a.index.intersection(b.index)
                if len(common) >= 2:
                    d = paired_difference(
                        a.loc[common], b.loc[common], n_resamples=n_resamples, seed=seed
                    )
                    row.update(diff=d.diff, diff_low=d.low, diff_high=d.high)
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(table: pd.DataFrame) -> str:
    if table.empty:
        return "(the store holds no records)"
    lines = [
        f"{'model':<22} {'precision':<20} {'bits':>5} {'w.rRMSE':>7} {'task':<12} {'ctx':>5} "
        f"{'metric':<13} {'n':>4} {'mean [95% CI]':<22} {'Δ vs first [95% CI]':<24}"
    ]
    lines.append("-" * len(lines[0]))
    for _, r in table.iterrows():
        ci = f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        diff = (
            "—"
            if math.isnan(r["diff"])
            else f"{r['diff']:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
        )
        bits = "" if math.isnan(r["bits"]) else f"{r['bits']:.2f}"
        err = "" if math.isnan(r["weight_rel_rmse"]) else f"{r['weight_rel_rmse']:.3f}"
        ctx = "task" if r["context"] == 0 else str(r["context"])
        lines.append(
            f"{str(r['model'])[:22]:<22} {str(r['precision'])[:20]:<20} {bits:>5} {err:>7} "
            f"{str(r['task'])[:12]:<12} {ctx:>5} {r['metric'][:13]:<13} {r['n']:>4} "
            f"{ci:<22} {diff:<24}"
        )
    return "\n".join(lines)


def _plot(table: pd.DataFrame, path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tasks = sorted(table["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        part = table[table["task"] == task]
        for ctx, grp in part.groupby("context"):
            x = np.arange(len(grp))
            yerr = [grp["mean"] - grp["ci_low"], grp["ci_high"] - grp["mean"]]
            label = "task prompts" if ctx == 0 else f"{ctx} tokens"
            ax.errorbar(x, grp["mean"], yerr=yerr, marker="o", capsize=3, label=label)
            ax.set_xticks(
                x,
                [str(p).replace("-rtn_asym", "")[:16] for p in grp["precision"]],
                rotation=35,
                ha="right",
            )
        ax.set_title(f"{task} ({part['metric'].iloc[0]})")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def games_summary(store: Store, *, seed: int = 0, n_resamples: int = 2000) -> str:
    """clembench's % played, quality and clemscore per model [precision], with a bootstrap
    CI of the clemscore over episodes ("" when the store holds no game episodes)."""
    from ..games import episode_table
    from ..stats import clemscore

    df = episode_table(store)
    if len(df) == 0:
        return ""
    ci = clemscore(df, model="system", n_resamples=n_resamples, seed=seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        return "games (clembench aggregation, episodes resampled within games):\n" + ci.to_string(
            index=False
        )


def summarize_study(
    store: str | os.PathLike[str] | Store,
    *,
    plot: str | None = None,
    cells: Any = None,
    seed: int = 0,
) -> str:
    """The study's summary table as text (and a PNG plot when ``plot`` is given and
    matplotlib is installed)."""
    if isinstance(store, Store):
        table = study_table(store, seed=seed)
        games = games_summary(store, seed=seed)
    else:
        with Store(store, create=False) as st:
            table = study_table(st, seed=seed)
            games = games_summary(st, seed=seed)
    text = _fmt(table)
    if games:
        text += "\n\n" + games
    if plot and not table.empty and not _plot(table, plot):
        text += "\n(no plot: matplotlib is not installed; pip install 'capscale[plot]')"
    return text
