"""Observational scaling laws (Ruan, Maddison & Hashimoto, NeurIPS 2024, arXiv 2405.10938).

Capabilities of models from many families are summarised by a few principal components of their
benchmark scores; within a family the components are linear in log-compute (compute
efficiency), and a downstream metric is a sigmoid of a linear function of the components::

    σ⁻¹(Y_m) ≈ βᵀ S_m + α            downstream metric, shared across families
    S_m ≈ θ_f · log10 C_m + ν_f       family-specific compute efficiency
    S_m = PCA(benchmarks of m)        low-dimensional capability measures

The pipeline follows the authors' code (``ryoungj/ObsScaling`` ``utils/data.py``,
``utils/plot.py``, defaults of ``DEFAULT_PCA_PREPROCESS_KWARGS``):

1. split the models by a training-compute cutoff (default 8.4e22 FLOPs, Llama-2-7B; models with
   unknown FLOPs and models forced out with ``test=`` go to the test split);
2. impute missing benchmark scores on the train split by iterated 1-component PCA on the
   standardised matrix (then unscale and clip to [0, 1]); test rows are imputed by iterating
   the projection onto the train PCA;
3. PCA of the imputed train matrix (centred, not scaled unless ``standardize=True``); the first
   ``n_components`` (K = 3) scores are the capability measures;
4. fit ``Y = (1 − b)·σ(w0 + w·S) + b`` with ``b ∈ [0, 0.2]`` by least squares on the native
   Levenberg–Marquardt solver (:func:`capscale.fit.curve_fit`);
5. express ``w0 + w·S`` on the Llama-2-equivalent-FLOPs axis: fit ``w0 + w·S = w*·x + b*`` over
   the reference family's models, ``x = log10(C / 1e21)``; the printed law is ``σ(w*·x + b*)``;
6. holdout error: mean squared error on the train and test splits;
7. bootstrap: resample the train models with replacement and rerun steps 2–5 on each resample
   (per-resample random streams of :func:`capscale.fit.bootstrap_indices`, so a ``seed`` gives
   the same intervals on any machine); prediction intervals are percentiles over resamples.

Use :func:`load_obsscaling_matrix` to read the paper's data and
``get_family("obsscaling").fit(table, target=...)`` (or :class:`ObsScaling` directly) to fit.
"""

from __future__ import annotations

import base64
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..._validate import check_count, check_level, check_seed
from ...errors import (
    CapscaleError,
    CapscaleWarning,
    FormatError,
    InestimableWarning,
    InvalidInputError,
    UnknownNameError,
    did_you_mean,
)
from ..family import LawFamily, register_family, require_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BENCHMARKS",
    "DEFAULT_CUTOFF",
    "NON_GSM8K_BENCHMARKS",
    "PAPER_FAMILIES",
    "PREREGISTERED_MODELS",
    "BenchmarkPCA",
    "ObsScaling",
    "compute_efficiency",
    "flops_split",
    "load_obsscaling_matrix",
]

FloatArray = NDArray[np.float64]

#: The paper's eight standard benchmarks (accuracies in [0, 1]), in the authors' order.
BENCHMARKS: tuple[str, ...] = (
    "MMLU",
    "ARC-C",
    "HellaSwag",
    "Winograd",
    "TruthfulQA",
    "GSM8K",
    "XWinograd",
    "HumanEval",
)
#: The benchmark list for GSM8K-derived targets and arithmetic tasks (GSM8K removed).
NON_GSM8K_BENCHMARKS: tuple[str, ...] = tuple(b for b in BENCHMARKS if b != "GSM8K")

#: ``EVAL_BASE_MODEL_FAMILIES`` of the authors' ``utils/constants.py`` (snapshot 4d6e1e4).
PAPER_FAMILIES: tuple[str, ...] = (
    "Llama-2",
    "Llama",
    "Llama-3",
    "Llama-3.1",
    "Qwen2",
    "Qwen1.5",
    "Qwen",
    "Mistral",
    "Mixtral",
    "Yi",
    "Yi-1.5",
    "Gemma",
    "Gemma-2",
    "Falcon",
    "Phi",
    "Pythia",
    "BLOOM",
    "GPT-Neo/J",
    "OPT",
    "MPT",
    "XGLM",
    "CodeLlama",
    "StarCoder",
    "StarCoder2",
    "DeepSeek-Coder",
    "DeepSeek-V2",
    "DeepSeek-Coder-V2",
    "Jamba",
)

#: Models released after the paper (May 2024), pre-registered as a test set by the authors.
PREREGISTERED_MODELS: tuple[str, ...] = (
    "meta-llama/Meta-Llama-3.1-405B-FP8",
    "meta-llama/Meta-Llama-3.1-70B",
    "meta-llama/Meta-Llama-3.1-8B",
    "Qwen/Qwen1.5-110B",
    "Qwen/Qwen2-72B",
    "Qwen/Qwen2-57B-A14B",
    "Qwen/Qwen2-7B",
    "Qwen/Qwen2-1.5B",
    "Qwen/Qwen2-0.5B",
    "deepseek-ai/DeepSeek-V2",
    "deepseek-ai/DeepSeek-Coder-V2-Base",
    "google/gemma-2-27b",
    "google/gemma-2-9b",
    "google/gemma-2-2b",
    "mistralai/Mixtral-8x22B-v0.1",
    "mistralai/Mistral-Nemo-Base-2407",
    "01-ai/Yi-1.5-34B",
    "01-ai/Yi-1.5-9B",
    "01-ai/Yi-1.5-6B",
    "ai21labs/Jamba-v0.1",
)

#: Default train/test cutoff in units of 1e21 FLOPs (8.4e22 FLOPs: Llama-2-7B).
DEFAULT_CUTOFF = 84.0

_BASE_FILE = "base_llm_benchmark_eval.csv"
_MODEL, _FAMILY, _FLOPS = "Model", "Model Family", "FLOPs (1E21)"
#: Imputed cells whose largest update falls below this (standardised units) have reached the
#: fixed point of the authors' iteration; further sweeps cannot change them measurably.
_CELL_TOL = 1e-12
#: np.allclose's default relative tolerance (part of the authors' stopping rule).
_ALLCLOSE_RTOL = 1e-5


# -- data --------------------------------------------------------------------------------------


def load_obsscaling_matrix(
    path: str | Path,
    targets: str | Path | pd.DataFrame | None = None,
    *,
    paper_set: bool = True,
    preregistered: str = "drop",
) -> pd.DataFrame:
    """Read the ObsScaling benchmark matrix (models × benchmarks, with families and FLOPs).

    Parameters
    ----------
    path : str or Path
        ``base_llm_benchmark_eval.csv`` of ``ryoungj/ObsScaling`` (or a folder holding it), or
        any CSV with the columns ``Model``, ``Model Family``, ``FLOPs (1E21)`` and benchmarks.
    targets : str, Path or DataFrame, optional
        A table of downstream metrics keyed by ``Model`` (e.g.
        ``base_llm_post_training_eval.csv``), inner-joined on ``Model``.
    paper_set : bool
        Keep only the families the paper evaluated (:data:`PAPER_FAMILIES`), as the authors'
        ``load_base_llm_benchmark_eval()`` does.
    preregistered : {'drop', 'keep', 'only'}
        What to do with the 20 :data:`PREREGISTERED_MODELS`: drop them (the paper's 77-model
        base set), keep them with a boolean column ``preregistered`` (pass
        ``test="preregistered"`` to :meth:`ObsScaling.fit` to hold them out), or keep only them.

    Returns
    -------
    DataFrame
        One row per model, index ``0..n-1``; benchmark scores are accuracies in [0, 1] with NaN
        for missing cells; ``FLOPs (1E21)`` is ``6·N·D / 1e21`` (NaN when unknown).

    Raises
    ------
    FormatError
        The file lacks the ``Model``, ``Model Family`` or ``FLOPs (1E21)`` column.
    InvalidInputError
        ``preregistered`` is not one of the three choices.
    """
    import pandas as pd

    if preregistered not in ("drop", "keep", "only"):
        raise InvalidInputError(
            f"preregistered must be 'drop', 'keep' or 'only', got {preregistered!r}"
        )
    p = Path(path)
    if p.is_dir():
        p = p / _BASE_FILE
    table = pd.read_csv(p)
    missing = [c for c in (_MODEL, _FAMILY, _FLOPS) if c not in table.columns]
    if missing:
        raise FormatError(
            f"{p}: not an ObsScaling benchmark matrix (missing column(s) "
            f"{', '.join(map(repr, missing))}; columns are {', '.join(map(str, table.columns))})"
        )
    if paper_set:
        table = table[table[_FAMILY].isin(PAPER_FAMILIES)]
    pre = table[_MODEL].isin(PREREGISTERED_MODELS)
    if preregistered == "drop":
        table = table[~pre]
    elif preregistered == "only":
        table = table[pre]
    else:
        table = table.assign(preregistered=pre.to_numpy())
    if targets is not None:
        extra = targets if isinstance(targets, pd.DataFrame) else pd.read_csv(targets)
        if _MODEL not in extra.columns:
            raise FormatError(f"targets: no {_MODEL!r} column to join on")
        table = table.merge(extra, on=_MODEL, how="inner")
    return table.reset_index(drop=True)


def flops_split(
    data: pd.DataFrame,
    cutoff: float | None = DEFAULT_CUTOFF,
    *,
    flops_column: str = _FLOPS,
    test: str | Sequence[str] | None = None,
    model_column: str = _MODEL,
) -> NDArray[np.bool_]:
    """The paper's train/test split: train = models with FLOPs ``<= cutoff``.

    Parameters
    ----------
    data : DataFrame
        One row per model.
    cutoff : float or None
        Largest training compute of a train model, in the units of ``flops_column`` (default
        84 = 8.4e22 FLOPs with ``FLOPs (1E21)``); None puts every model in train.
    flops_column : str
        Training compute (NaN when unknown: such models go to test).
    test : str or sequence of str, optional
        Models forced into the test split: the name of a boolean column (e.g.
        ``"preregistered"``) or a list of model names (``model_column``).
    model_column : str
        Model names, for ``test`` given as a list.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for train rows.
    """
    require_columns(data, (flops_column,), "obsscaling")
    flops = _numeric(data, flops_column)
    if cutoff is None:
        train = np.ones(len(data), dtype=bool)
    else:
        cutoff = float(cutoff)
        if not math.isfinite(cutoff):
            raise InvalidInputError(f"cutoff must be a finite number or None, got {cutoff}")
        with np.errstate(invalid="ignore"):
            train = np.isfinite(flops) & (flops <= cutoff)
    return train & ~_forced_test(data, test, model_column)


def _forced_test(
    data: pd.DataFrame, test: str | Sequence[str] | None, model_column: str
) -> NDArray[np.bool_]:
    if test is None:
        return np.zeros(len(data), dtype=bool)
    if isinstance(test, str):
        require_columns(data, (test,), "obsscaling")
        col = data[test]
        if col.isna().any():
            raise InvalidInputError(f"obsscaling: test column {test!r} has missing values")
        values = col.to_numpy()
        if values.dtype != bool and not set(np.unique(values)).issubset({0, 1}):
            raise InvalidInputError(
                f"obsscaling: test column {test!r} must hold booleans (True = test)"
            )
        return values.astype(bool)
    require_columns(data, (model_column,), "obsscaling")
    names = [str(t) for t in test]
    known = set(data[model_column].astype(str))
    unknown = [t for t in names if t not in known]
    if unknown:
        hint = did_you_mean(unknown[0], known)
        raise UnknownNameError(
            f"obsscaling: test names unknown model(s) {', '.join(map(repr, unknown))}"
            + (f"; {hint}" if hint else "")
        )
    return data[model_column].astype(str).isin(names).to_numpy()


def _numeric(data: pd.DataFrame, column: str) -> FloatArray:
    import pandas as pd

    try:
        values = pd.to_numeric(data[column], errors="raise")
    except (TypeError, ValueError):
        raise InvalidInputError(f"obsscaling: column {column!r} must be numeric") from None
    return np.asarray(values, dtype=np.float64)


def _benchmark_matrix(data: Any, benchmarks: Sequence[str] | None) -> tuple[FloatArray, tuple]:
    """``(X, names)``: the benchmark scores as a float matrix (NaN = missing)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        names = tuple(BENCHMARKS if benchmarks is None else benchmarks)
        require_columns(data, names, "obsscaling")
        return np.column_stack([_numeric(data, b) for b in names]), names
    try:
        arr = np.array(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("benchmark scores must be a DataFrame or a 2-D array") from None
    if arr.ndim != 2:
        raise InvalidInputError(
            f"benchmark scores must be 2-D (models × benchmarks), got {arr.ndim}-D"
        )
    names = tuple(f"B{j}" for j in range(arr.shape[1])) if benchmarks is None else tuple(benchmarks)
    if len(names) != arr.shape[1]:
        raise InvalidInputError(f"{len(names)} benchmark names for {arr.shape[1]} columns")
    return arr, names


# -- batched numerical core --------------------------------------------------------------------
# Every function works on a stack of B problems (axis 0): B = 1 for a fit, B = n_resamples for
# the bootstrap, so the fit and its resamples share one implementation.


def _nan_scaler(x: FloatArray, mask: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray, Any]:
    """NaN-aware column mean and standard deviation (ddof 0; 1 for a constant column), as
    sklearn's StandardScaler; ``ok`` is False where a column has no observed value."""
    count = (~mask).sum(axis=1)
    filled = np.where(mask, 0.0, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / count
        dev = np.where(mask, 0.0, x - mean[:, None, :])
        std = np.sqrt((dev * dev).sum(axis=1) / count)
    ok = np.all(count > 0, axis=1)
    mean = np.where(count > 0, mean, 0.0)
    std = np.where((count > 0) & (std > 0), std, 1.0)
    return mean, std, ok


def _top_axes(z: FloatArray, r: int) -> tuple[FloatArray, FloatArray]:
    """Mean (B, T) and the top-``r`` principal axes (B, T, r) of each stacked matrix."""
    mean = z.mean(axis=1)
    c = z - mean[:, None, :]
    _, vecs = np.linalg.eigh(np.einsum("bmi,bmj->bij", c, c))
    return mean, vecs[:, :, ::-1][:, :, :r]


def _reconstruct(z: FloatArray, mean: FloatArray, axes: FloatArray) -> FloatArray:
    c = z - mean[:, None, :]
    out: FloatArray = mean[:, None, :] + (c @ axes) @ np.swapaxes(axes, 1, 2)
    return out


def _allclose(a: FloatArray, b: FloatArray, tol: float, axis: Any) -> Any:
    return np.all(np.abs(a - b) <= tol + _ALLCLOSE_RTOL * np.abs(b), axis=axis)


def _impute_fit(
    z: FloatArray, mask: NDArray[np.bool_], r: int, max_iter: int, tol: float
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]]:
    """The authors' ``pca_impute`` on the train split, for B stacked matrices.

    ``z`` (B, m, T) is standardised with missing cells at the column mean (0). Each sweep fits
    an ``r``-component PCA, reconstructs and overwrites the missing cells, until
    ``allclose(z, recon, atol=tol)`` (the authors' rule), the cells stop changing (fixed point)
    or ``max_iter`` sweeps. Returns the imputed ``z`` and the last PCA (mean, axes) and sweeps.
    """
    z = z.copy()
    mean, axes = _top_axes(z, r)
    todo: NDArray[np.bool_] = np.asarray(mask.any(axis=(1, 2)))
    n_iter = np.zeros(z.shape[0], dtype=np.int64)
    sweep = 0
    while todo.any() and sweep < max_iter:
        sweep += 1
        idx = np.flatnonzero(todo)
        zi, mi = z[idx], mask[idx]
        mean_i, axes_i = _top_axes(zi, r)
        mean[idx], axes[idx] = mean_i, axes_i
        recon = _reconstruct(zi, mean_i, axes_i)
        close = _allclose(zi, recon, tol, axis=(1, 2))
        new = np.where(mi, recon, zi)
        change = np.abs(new - zi).max(axis=(1, 2))
        z[idx] = np.where(close[:, None, None], zi, new)
        n_iter[idx] = sweep
        todo[idx] = ~(close | (change <= _CELL_TOL))
    return z, mean, axes, n_iter


def _impute_rows(
    z: FloatArray,
    mask: NDArray[np.bool_],
    mean: FloatArray,
    axes: FloatArray,
    max_iter: int,
    tol: float,
) -> FloatArray:
    """Impute rows with a fixed (train) PCA: iterate the projection, overwrite missing cells.

    Row by row (a row's imputation never depends on the rows predicted with it): a row stops
    when it reconstructs within ``tol`` or its missing cells reach the fixed point.
    """
    z = z.copy()
    todo: NDArray[np.bool_] = np.asarray(mask.any(axis=2))
    for _ in range(max_iter):
        if not todo.any():
            break
        recon = _reconstruct(z, mean, axes)
        close = _allclose(z, recon, tol, axis=2)
        new = np.where(mask & todo[:, :, None] & ~close[:, :, None], recon, z)
        change = np.abs(new - z).max(axis=2)
        z = new
        todo &= ~(close | (change <= _CELL_TOL))
    return z


@dataclass(frozen=True, eq=False)
class _Pipelines:
    """B fitted preprocessing pipelines (imputation + PCA), stacked along axis 0."""

    scale_mean: FloatArray  # (B, T) standardisation of the imputation
    scale_std: FloatArray  # (B, T)
    impute_mean: FloatArray  # (B, T) imputation PCA, standardised space
    impute_axes: FloatArray  # (B, T, r)
    pca_mean: FloatArray  # (B, T) PCA centre (imputed scores)
    pca_scale: FloatArray  # (B, T) ones unless standardize
    components: FloatArray  # (B, k, T) loadings, one row per PC
    clip: tuple[float, float] | None
    max_iter: int
    tol: float

    def impute(self, x: FloatArray) -> FloatArray:
        """Impute rows ``x`` (n, T) with each pipeline: (B, n, T)."""
        nan = np.isnan(x)
        with np.errstate(invalid="ignore"):
            z = (x[None] - self.scale_mean[:, None, :]) / self.scale_std[:, None, :]
        z = np.where(nan[None], 0.0, z)
        rows = np.flatnonzero(nan.any(axis=1))  # only rows with a missing cell iterate
        if rows.size:
            sub = np.broadcast_to(nan[rows], (z.shape[0], rows.size, x.shape[1]))
            z[:, rows] = _impute_rows(
                z[:, rows], sub, self.impute_mean, self.impute_axes, self.max_iter, self.tol
            )
        out = z * self.scale_std[:, None, :] + self.scale_mean[:, None, :]
        return _clip(out, self.clip)

    def project(self, imputed: FloatArray, k: int) -> FloatArray:
        """Scores of imputed rows (B, n, T) on the first ``k`` components: (B, n, k)."""
        c = (imputed - self.pca_mean[:, None, :]) / self.pca_scale[:, None, :]
        out: FloatArray = c @ np.swapaxes(self.components[:, :k, :], 1, 2)
        return out

    def scores(self, x: FloatArray, k: int) -> FloatArray:
        return self.project(self.impute(x), k)


def _clip(x: FloatArray, clip: tuple[float, float] | None) -> FloatArray:
    return x if clip is None else np.clip(x, clip[0], clip[1])


def _fit_pipelines(
    x: FloatArray,
    *,
    n_keep: int,
    standardize: bool,
    impute_components: int,
    max_iter: int,
    tol: float,
    clip: tuple[float, float] | None,
    align: FloatArray | None = None,
) -> tuple[_Pipelines, FloatArray, FloatArray, NDArray[np.bool_], NDArray[np.int64]]:
    """Fit B pipelines to stacked train matrices ``x`` (B, m, T) with NaN for missing cells.

    Returns the pipelines, the imputed train matrices (B, m, T), the explained-variance ratios
    (B, T), a mask of usable pipelines (every benchmark observed) and the imputation sweeps.
    Component signs: the largest loading positive, or (``align``, shape (k, T)) the same
    orientation as ``align``.
    """
    mask = np.isnan(x)
    mean, std, ok = _nan_scaler(x, mask)
    with np.errstate(invalid="ignore"):
        z = np.where(mask, 0.0, (x - mean[:, None, :]) / std[:, None, :])
    z, imean, iaxes, n_iter = _impute_fit(z, mask, impute_components, max_iter, tol)
    imputed = _clip(z * std[:, None, :] + mean[:, None, :], clip)
    pmean = imputed.mean(axis=1)
    if standardize:
        pscale = imputed.std(axis=1)
        pscale = np.where(pscale > 0, pscale, 1.0)
    else:
        pscale = np.ones_like(pmean)
    c = (imputed - pmean[:, None, :]) / pscale[:, None, :]
    vals, vecs = np.linalg.eigh(np.einsum("bmi,bmj->bij", c, c))
    vals = np.clip(vals[:, ::-1], 0.0, None)
    comps = np.swapaxes(vecs[:, :, ::-1], 1, 2)[:, :n_keep, :]  # (B, k, T)
    if align is None:
        big = np.take_along_axis(comps, np.abs(comps).argmax(axis=2)[:, :, None], axis=2)
        sign = np.where(big[:, :, 0] < 0, -1.0, 1.0)
    else:
        sign = np.where(np.einsum("bkt,kt->bk", comps, align[: comps.shape[1]]) < 0, -1.0, 1.0)
    comps = comps * sign[:, :, None]
    total = vals.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        evr = np.where(total > 0, vals / total, np.nan)
    pipes = _Pipelines(
        scale_mean=mean,
        scale_std=std,
        impute_mean=imean,
        impute_axes=iaxes,
        pca_mean=pmean,
        pca_scale=pscale,
        components=comps,
        clip=clip,
        max_iter=max_iter,
        tol=tol,
    )
    return pipes, imputed, evr, ok, n_iter


# -- standalone PCA ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BenchmarkPCA:
    """Imputation and PCA of a benchmark matrix, fitted as the ObsScaling authors do.

    Build with :meth:`fit`. Attributes hold the fitted state; arrays are read-only.

    Attributes
    ----------
    benchmarks : tuple of str
        Column names, in order (T of them).
    components : ndarray, shape (T, T)
        Loadings, one row per principal component, largest loading of each row positive.
    explained_variance_ratio : ndarray, shape (T,)
        Share of the (centred, optionally standardised) variance on each component.
    mean, scale : ndarray, shape (T,)
        PCA centre and scale (ones unless ``standardize``) of the imputed train matrix.
    imputed : ndarray, shape (m, T)
        The train matrix after imputation and clipping.
    n_iter : int
        Imputation sweeps run on the train matrix (0 when nothing was missing).
    """

    benchmarks: tuple[str, ...]
    components: FloatArray
    explained_variance_ratio: FloatArray
    mean: FloatArray
    scale: FloatArray
    imputed: FloatArray = field(repr=False)
    n_iter: int
    _pipes: _Pipelines = field(repr=False)

    @classmethod
    def fit(
        cls,
        data: Any,
        benchmarks: Sequence[str] | None = None,
        *,
        standardize: bool = False,
        impute_components: int = 1,
        max_iter: int = 1000,
        tol: float = 1e-4,
        clip: tuple[float, float] | None = (0.0, 1.0),
    ) -> BenchmarkPCA:
        """Impute missing scores and fit the PCA on a (train) benchmark matrix.

        Parameters
        ----------
        data : DataFrame or array_like, shape (m, T)
            Scores, NaN for missing cells. A DataFrame is indexed by ``benchmarks``.
        benchmarks : sequence of str, optional
            Columns to use (default :data:`BENCHMARKS` for a DataFrame).
        standardize : bool
            Scale each benchmark to unit variance before the PCA (the authors' default is
            False: centred only; the imputation always works on standardised scores).
        impute_components : int
            Components of the imputation PCA (the authors use 1).
        max_iter : int
            Imputation sweeps at most (1000).
        tol : float
            The authors' stopping rule ``allclose(X, X̂, atol=tol)``; the sweeps also stop once
            the imputed cells reach their fixed point (change < 1e-12).
        clip : (float, float) or None
            Range imputed matrices are clipped to (accuracies: [0, 1]).

        Returns
        -------
        BenchmarkPCA

        Raises
        ------
        InvalidInputError
            Fewer than 2 models, a benchmark column with no observed score, a model with no
            score at all, or bad settings.
        """
        x, names = _benchmark_matrix(data, benchmarks)
        _check_matrix(x, names, None, "the matrix", _check_clip(clip))
        impute_components = check_count("impute_components", impute_components, 1)
        if impute_components > x.shape[1]:
            raise InvalidInputError(
                f"impute_components={impute_components} exceeds the {x.shape[1]} benchmarks"
            )
        pipes, imputed, evr, _, n_iter = _fit_pipelines(
            x[None],
            n_keep=x.shape[1],
            standardize=bool(standardize),
            impute_components=impute_components,
            max_iter=check_count("max_iter", max_iter, 1),
            tol=_check_tol(tol),
            clip=_check_clip(clip),
        )
        return cls._from_pipes(names, pipes, evr[0], imputed[0], int(n_iter[0]))

    @classmethod
    def _from_pipes(
        cls,
        names: tuple[str, ...],
        pipes: _Pipelines,
        evr: FloatArray,
        imputed: FloatArray,
        n_iter: int,
    ) -> BenchmarkPCA:
        arrays = (pipes.components[0], evr, pipes.pca_mean[0], pipes.pca_scale[0], imputed)
        for arr in arrays:
            arr.setflags(write=False)
        return cls(names, *arrays, n_iter, pipes)

    def impute(self, data: Any) -> FloatArray:
        """Impute new rows with the fitted imputation PCA (the authors' test-set procedure).

        Parameters
        ----------
        data : DataFrame or array_like, shape (n, T)

        Returns
        -------
        ndarray, shape (n, T)
        """
        x = self._rows(data)
        out: FloatArray = self._pipes.impute(x)[0]
        return out

    def transform(self, data: Any, n_components: int | None = None) -> FloatArray:
        """Principal-component scores of new rows (imputed first), shape (n, n_components)."""
        x = self._rows(data)
        k = len(self.benchmarks) if n_components is None else int(n_components)
        if not 1 <= k <= self.components.shape[0]:
            raise InvalidInputError(
                f"n_components must be in [1, {self.components.shape[0]}], got {n_components}"
            )
        out: FloatArray = self._pipes.scores(x, k)[0]
        return out

    def loadings(self, n_components: int | None = None) -> pd.DataFrame:
        """Loadings as a table: one row per benchmark, columns ``PC-1 … PC-k``."""
        import pandas as pd

        k = self.components.shape[0] if n_components is None else int(n_components)
        return pd.DataFrame(
            self.components[:k].T,
            index=list(self.benchmarks),
            columns=[f"PC-{i + 1}" for i in range(k)],
        )

    def _rows(self, data: Any) -> FloatArray:
        x, _ = _benchmark_matrix(data, self.benchmarks)
        _check_rows(x, self.benchmarks, None, self._pipes.clip)
        return x


def _check_tol(tol: Any) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise InvalidInputError(f"tol must be a number, got {tol!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise InvalidInputError(f"tol must be a finite number >= 0, got {tol!r}")
    return value


def _check_clip(clip: Any) -> tuple[float, float] | None:
    if clip is None:
        return None
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError):
        raise InvalidInputError(f"clip must be a pair (low, high) or None, got {clip!r}") from None
    if not lo < hi:
        raise InvalidInputError(f"clip must have low < high, got {clip!r}")
    return lo, hi


def _check_range(
    x: FloatArray,
    names: Sequence[str],
    models: Sequence[str] | None,
    clip: tuple[float, float] | None,
) -> None:
    """No infinite scores, and observed scores inside ``clip`` (only imputed cells are
    clipped; an observed score outside the range is an input error, typically percent)."""
    if np.isinf(x).any():
        raise InvalidInputError("obsscaling: benchmark scores contain infinity")
    if clip is not None:
        with np.errstate(invalid="ignore"):
            out = (x < clip[0]) | (x > clip[1])
        if out.any():
            i, j = (int(v[0]) for v in np.nonzero(out))
            who = repr(models[i]) if models is not None else f"row {i}"
            raise InvalidInputError(
                f"obsscaling: benchmark score {x[i, j]} of {who} on {names[j]!r} lies outside "
                f"[{clip[0]}, {clip[1]}] (scores in percent? divide by 100; or pass clip=None)"
            )


def _check_rows(
    x: FloatArray,
    names: Sequence[str],
    models: Sequence[str] | None,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> None:
    _check_range(x, names, models, clip)
    empty = np.flatnonzero(np.isnan(x).all(axis=1))
    if empty.size:
        who = repr(models[empty[0]]) if models is not None else f"row {empty[0]}"
        raise InvalidInputError(
            f"obsscaling: model {who} has no benchmark score at all "
            f"({', '.join(names)} all missing); drop it"
        )


def _check_matrix(
    x: FloatArray,
    names: Sequence[str],
    models: Sequence[str] | None,
    where: str,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> None:
    if x.shape[0] < 2:
        raise InvalidInputError(f"obsscaling: {where} has {x.shape[0]} model(s); PCA needs >= 2")
    if x.shape[1] < 1:
        raise InvalidInputError("obsscaling: no benchmarks given")
    _check_rows(x, names, models, clip)
    empty = [names[int(j)] for j in np.flatnonzero(np.isnan(x).all(axis=0))]
    if empty:
        raise InvalidInputError(
            f"obsscaling: benchmark(s) {', '.join(map(repr, empty))} have no score on {where} "
            "(all missing): they cannot be imputed; drop them from benchmarks="
        )


# -- compute efficiency and the equivalent-FLOPs axis ------------------------------------------


def _lines(u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """OLS ``v ≈ slope·u + intercept`` along axis -2 of ``v`` (..., n, k) for shared ``u`` (n,).

    Returns slope, intercept and R², each of shape (..., k).
    """
    uc = u - u.mean()
    suu = float(uc @ uc)
    vm = v.mean(axis=-2)
    slope = np.einsum("n,...nk->...k", uc, v) / suu
    intercept = vm - slope * u.mean()
    resid = v - (slope[..., None, :] * u[:, None] + intercept[..., None, :])
    tot = ((v - vm[..., None, :]) ** 2).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(tot > 0, 1.0 - (resid**2).sum(axis=-2) / tot, np.nan)
    return slope, intercept, r2


def _group_lines(
    u: FloatArray, v: FloatArray, codes: NDArray[np.int64], n_groups: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """OLS lines ``v ≈ slope·u + intercept`` within each group, all groups at once.

    ``u`` (n,), ``v`` (..., n, k), ``codes`` (n,) in ``[0, n_groups)``; every group needs two
    distinct ``u``. Returns slope, intercept and R², each of shape (..., n_groups, k).
    """
    onehot = (codes[None, :] == np.arange(n_groups)[:, None]).astype(np.float64)  # (G, n)
    n = onehot.sum(axis=1)[:, None]
    mu = (onehot @ u)[:, None] / n  # (G, 1)
    dev = u[None, :] - mu  # (G, n): u centred within each group
    suu = (onehot * dev * dev).sum(axis=1)[:, None]
    mv = np.einsum("gn,...nk->...gk", onehot, v) / n
    suv = np.einsum("gn,...nk->...gk", onehot * dev, v)
    slope = suv / suu
    intercept = mv - slope * mu
    tot = np.einsum("gn,...nk->...gk", onehot, v * v) - n * mv * mv
    resid = tot - slope * suv
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(tot > 0, 1.0 - resid / tot, np.nan)
    return slope, intercept, r2


def _family_codes(families: Any) -> tuple[list[str], NDArray[np.int64]]:
    """Distinct family names in order of appearance and each row's code."""
    names = list(dict.fromkeys(str(f) for f in families))
    lookup = {f: i for i, f in enumerate(names)}
    return names, np.array([lookup[str(f)] for f in families], dtype=np.int64)


def _distinct_counts(codes: NDArray[np.int64], c: FloatArray, n_groups: int) -> NDArray[np.int64]:
    """Distinct finite values of ``c`` within each group."""
    ok = np.isfinite(c)
    pairs = np.unique(np.column_stack([codes[ok], c[ok]]), axis=0)
    return np.bincount(pairs[:, 0].astype(np.int64), minlength=n_groups)


def compute_efficiency(
    scores: Any, flops: Any, families: Any, *, flops_unit: float = 1e21
) -> pd.DataFrame:
    """Per-family compute-efficiency lines ``S_k = θ_f,k · log10(C / 1e21) + ν_f,k`` (eq. 4).

    Parameters
    ----------
    scores : array_like, shape (n, K)
        Capability measures (principal-component scores) of n models.
    flops : array_like, shape (n,)
        Training compute in units of ``flops_unit`` (> 0).
    families : array_like of str, shape (n,)
        Family of each model.
    flops_unit : float
        FLOPs per unit of ``flops`` (default 1e21, the ``FLOPs (1E21)`` column).

    Returns
    -------
    DataFrame
        One row per family: ``n_models`` and ``slope_PC-k``, ``intercept_PC-k``, ``r2_PC-k``.

    Raises
    ------
    InvalidInputError
        A family with fewer than 2 distinct compute values (a line needs two), non-positive
        or non-finite FLOPs, or mismatched lengths.
    """
    import pandas as pd

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    c = np.asarray(flops, dtype=np.float64)
    fam = np.asarray(families).astype(str)
    if not (s.shape[0] == c.shape[0] == fam.shape[0]) or s.ndim != 2:
        raise InvalidInputError("scores (n, K), flops (n,) and families (n,) must match in n")
    _check_flops(c, None, "flops")
    u = np.log10(c * (flops_unit / 1e21))
    names, codes = _family_codes(fam)
    distinct = _distinct_counts(codes, c, len(names))
    sizes = np.bincount(codes, minlength=len(names))
    if (distinct < 2).any():
        g = int(np.flatnonzero(distinct < 2)[0])
        raise InvalidInputError(
            f"family {names[g]!r} has {sizes[g]} model(s) with {distinct[g]} distinct compute "
            "value(s); a compute-efficiency line needs at least 2"
        )
    slope, intercept, r2 = _group_lines(u, s, codes, len(names))
    cols: dict[str, Any] = {"n_models": sizes}
    for k in range(s.shape[1]):
        cols[f"slope_PC-{k + 1}"] = slope[:, k]
        cols[f"intercept_PC-{k + 1}"] = intercept[:, k]
        cols[f"r2_PC-{k + 1}"] = r2[:, k]
    return pd.DataFrame(cols, index=pd.Index(names, name="family"))


def _check_flops(c: FloatArray, models: Sequence[str] | None, column: str) -> None:
    bad = np.flatnonzero(np.isinf(c) | (np.isfinite(c) & (c <= 0)))
    if bad.size:
        who = f" for model {models[bad[0]]!r}" if models is not None else f" at row {bad[0]}"
        raise InvalidInputError(
            f"obsscaling: {column} must be > 0 and finite (its logarithm is taken), "
            f"got {c[bad[0]]}{who}"
        )
    if models is None and np.isnan(c).any():
        raise InvalidInputError(f"obsscaling: {column} contains NaN")


@dataclass(frozen=True, eq=False)
class _EfficiencyRows:
    """The models behind the compute-efficiency lines: families with >= 2 distinct FLOPs."""

    names: list[str]
    rows: NDArray[np.bool_]  # rows of the fit data used
    codes: NDArray[np.int64]  # family code of each used row

    @classmethod
    def build(cls, families: Any, flops: FloatArray) -> _EfficiencyRows:
        names, codes = _family_codes(families)
        distinct = _distinct_counts(codes, flops, len(names))
        keep = distinct >= 2
        rows = keep[codes] & np.isfinite(flops)
        recode = np.cumsum(keep) - 1
        return cls([n for n, k in zip(names, keep, strict=True) if k], rows, recode[codes[rows]])

    def table(self, s_all: FloatArray, u: FloatArray, k: int) -> pd.DataFrame:
        import pandas as pd

        cols: dict[str, Any] = {"n_models": np.bincount(self.codes, minlength=len(self.names))}
        slope = intercept = r2 = np.empty((len(self.names), k))
        if self.names:
            slope, intercept, r2 = _group_lines(
                u[self.rows], s_all[self.rows], self.codes, len(self.names)
            )
        for j in range(k):
            cols[f"slope_PC-{j + 1}"] = slope[:, j]
            cols[f"intercept_PC-{j + 1}"] = intercept[:, j]
            cols[f"r2_PC-{j + 1}"] = r2[:, j]
        return pd.DataFrame(cols, index=pd.Index(self.names, name="family"))


# -- the fitted family -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    target: str
    benchmarks: tuple[str, ...] = BENCHMARKS
    cutoff: float | None = DEFAULT_CUTOFF
    test: str | tuple[str, ...] | None = None
    n_components: int = 3
    standardize: bool = False
    impute_components: int = 1
    max_iter: int = 1000
    tol: float = 1e-4
    clip: tuple[float, float] | None = (0.0, 1.0)
    max_floor: float = 0.2
    reference_family: str | None = "Llama-2"
    n_resamples: int = 1000
    seed: int = 0
    model_column: str = _MODEL
    family_column: str = _FAMILY
    flops_column: str = _FLOPS
    flops_unit: float = 1e21

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> _Options:
        known = [f.name for f in fields(cls)]
        for key in options:
            if key not in known:
                hint = did_you_mean(key, known)
                raise InvalidInputError(
                    f"obsscaling: unknown option {key!r}; {hint + ' ' if hint else ''}"
                    f"options are {', '.join(known)}"
                )
        if "target" not in options:
            raise InvalidInputError(
                "obsscaling: the target= option (the column of the metric to predict) is required"
            )
        opts = dict(options)
        if not isinstance(opts["target"], str):
            raise InvalidInputError("obsscaling: target must be a column name")
        bench = opts.get("benchmarks", BENCHMARKS)
        if isinstance(bench, str) or not all(isinstance(b, str) for b in bench):
            raise InvalidInputError("obsscaling: benchmarks must be a list of column names")
        opts["benchmarks"] = tuple(bench)
        if len(set(opts["benchmarks"])) != len(opts["benchmarks"]) or not opts["benchmarks"]:
            raise InvalidInputError("obsscaling: benchmarks must be non-empty and distinct")
        if opts["target"] in opts["benchmarks"]:
            raise InvalidInputError(
                f"obsscaling: the target {opts['target']!r} is also a benchmark; drop it from "
                "benchmarks= (e.g. NON_GSM8K_BENCHMARKS for GSM8K targets)"
            )
        test = opts.get("test")
        if test is not None and not isinstance(test, str):
            opts["test"] = tuple(str(t) for t in test)
        if opts.get("cutoff") is not None:
            opts["cutoff"] = float(opts["cutoff"])
        opts["n_components"] = check_count("n_components", opts.get("n_components", 3), 1)
        opts["impute_components"] = check_count(
            "impute_components", opts.get("impute_components", 1), 1
        )
        opts["max_iter"] = check_count("max_iter", opts.get("max_iter", 1000), 1)
        opts["n_resamples"] = check_count("n_resamples", opts.get("n_resamples", 1000), 0)
        opts["seed"] = check_seed(opts.get("seed", 0))
        opts["tol"] = _check_tol(opts.get("tol", 1e-4))
        opts["clip"] = _check_clip(opts.get("clip", (0.0, 1.0)))
        max_floor = float(opts.get("max_floor", 0.2))
        if not 0 < max_floor < 1:
            raise InvalidInputError(f"obsscaling: max_floor must be in (0, 1), got {max_floor}")
        opts["max_floor"] = max_floor
        unit = float(opts.get("flops_unit", 1e21))
        if not (math.isfinite(unit) and unit > 0):
            raise InvalidInputError(f"obsscaling: flops_unit must be > 0, got {unit}")
        opts["flops_unit"] = unit
        opts["standardize"] = bool(opts.get("standardize", False))
        return cls(**opts)

    def as_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("benchmarks", "test", "clip"):
            if isinstance(out[key], tuple):
                out[key] = list(out[key])
        return out


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def _model(d: FloatArray, *p: float) -> FloatArray:
    """``(1 − b)·σ(D·w) + b`` for a design matrix ``D = [1, S]`` (m, K+1), ``p = (w…, b)``."""
    w = np.asarray(p[:-1], dtype=np.float64)
    b = p[-1]
    return (1.0 - b) * _sigmoid(d @ w) + b


def _model_jac(d: FloatArray, *p: float) -> FloatArray:
    w = np.asarray(p[:-1], dtype=np.float64)
    b = p[-1]
    s = _sigmoid(d @ w)
    jac = np.empty((d.shape[0], len(p)))
    jac[:, :-1] = ((1.0 - b) * s * (1.0 - s))[:, None] * d
    jac[:, -1] = 1.0 - s
    return jac


def _predict_stack(params: FloatArray, s: FloatArray) -> FloatArray:
    """Sigmoid predictions for B parameter rows (B, K+2) and scores (B, n, K): (B, n)."""
    lin = params[:, None, 0] + np.einsum("bnk,bk->bn", s, params[:, 1:-1])
    floor = params[:, None, -1]
    out: FloatArray = (1.0 - floor) * _sigmoid(lin) + floor
    return out


@dataclass(frozen=True, eq=False)
class _Bootstrap:
    """Per-resample state (leading axis B): pipelines, sigmoid, reference axis, efficiency."""

    n_resamples: int
    seed: int
    ok: NDArray[np.bool_]
    pipes: _Pipelines
    params: FloatArray  # (B, K+2)
    reference: FloatArray  # (B, 2) slope, intercept (NaN without a reference family)
    eff_slope: FloatArray  # (B, F, K)
    eff_intercept: FloatArray  # (B, F, K)


@register_family("obsscaling")
@dataclass(frozen=True, eq=False, repr=False)
class ObsScaling(LawFamily):
    """An observational scaling law fitted to a benchmark matrix (Ruan et al., 2024).

    Fit with :meth:`fit`; predict a target metric for new models from their benchmark scores
    or, for a known family, from planned training compute (:meth:`predict`).

    Attributes
    ----------
    options : mapping
        The fit options (see :meth:`fit`).
    pca : BenchmarkPCA
        Imputation and PCA fitted on the train split.
    params : mapping of str to float
        Sigmoid parameters ``w0, w1 … wK`` (intercept and PC weights) and the floor ``b``.
    reference : (float, float) or None
        ``(w*, b*)``: the linear predictor ``w0 + w·S`` as ``w*·x + b*`` on the
        reference family's log10 FLOPs (1e21) axis.
    efficiency : DataFrame
        Per-family compute-efficiency lines (:func:`compute_efficiency`) for families with at
        least 2 distinct compute values, fitted on every model of the data with known FLOPs.
    table : DataFrame
        The fitted rows: model, family, FLOPs, split, target, PC scores, linear predictor,
        ``equivalent_log10_flops``, prediction.
    mse_train, mse_test : float
        Mean squared error of the predictions on each split (NaN for an empty split).
    """

    options: Mapping[str, Any]
    pca: BenchmarkPCA
    x: FloatArray
    cov: FloatArray
    reference: tuple[float, float] | None
    efficiency: pd.DataFrame
    table: pd.DataFrame
    mse_train: float
    mse_test: float
    n_dropped: int
    status: int
    bootstrap: _Bootstrap | None = field(default=None, repr=False)

    required_columns = (_FAMILY, _FLOPS)
    description = (
        "observational scaling (Ruan et al. 2024): benchmark PCA → sigmoid of a target, "
        "Llama-2-equivalent FLOPs, compute efficiency per family"
    )

    # -- fitting -------------------------------------------------------------------------------

    @classmethod
    def fit(cls, data: pd.DataFrame, **options: Any) -> ObsScaling:
        """Fit the observational scaling law of one target metric.

        Parameters
        ----------
        data : DataFrame
            One row per model: benchmark scores (NaN = missing), family, training FLOPs and
            the target metric, e.g. :func:`load_obsscaling_matrix` joined with targets.
        **options
            target : str (required)
                Column of the metric to predict, in [0, 1] (min–max normalise metrics whose
                chance level is not 0 first, as the paper does). Rows without it are dropped.
            benchmarks : sequence of str
                Capability benchmarks (default :data:`BENCHMARKS`; the paper drops GSM8K for
                GSM8K-derived and arithmetic targets: :data:`NON_GSM8K_BENCHMARKS`).
            cutoff : float or None
                Train = models with FLOPs ``<= cutoff`` in the flops column's units (default
                84, i.e. 8.4e22 FLOPs); None: no compute split.
            test : str or sequence of str
                Force models into the test split: a boolean column (``"preregistered"``)
                or model names.
            n_components : int
                K, the principal components used as predictors (3).
            standardize : bool
                Standardise benchmarks before the PCA (False, as the authors).
            impute_components, max_iter, tol, clip
                Imputation settings (1, 1000, 1e-4, (0, 1)); see :meth:`BenchmarkPCA.fit`.
            max_floor : float
                Upper bound of the sigmoid floor ``b`` (0.2; the height is ``1 − b``).
            reference_family : str or None
                Family defining the equivalent-FLOPs axis ("Llama-2"), fitted over all its
                models with known FLOPs, train and test, as the authors do; None skips it.
            n_resamples : int
                Bootstrap resamples of the train models for prediction intervals (1000; 0:
                delta-method intervals conditional on the PCA).
            seed : int
                Seed of the bootstrap streams (0).
            model_column, family_column, flops_column : str
                Column names ("Model", "Model Family", "FLOPs (1E21)"); the model column is
                optional (the index names models without it).
            flops_unit : float
                FLOPs per unit of the flops column (1e21).

        Returns
        -------
        ObsScaling

        Raises
        ------
        InvalidInputError
            Unknown option, missing target, non-positive FLOPs, an all-missing benchmark on the
            train split, a model without scores, a target outside [0, 1], fewer train models
            than ``n_components + 2``, or a reference family with fewer than 2 models.
        UnknownNameError
            A named column is absent.
        """
        import pandas as pd

        opts = _Options.parse(options)
        cols = (opts.family_column, opts.flops_column, opts.target, *opts.benchmarks)
        require_columns(data, cols, "obsscaling")
        keep = ~data[opts.target].isna().to_numpy()
        n_dropped = int((~keep).sum())
        extra = [c for c in (opts.model_column, opts.test) if isinstance(c, str)]
        used = list(dict.fromkeys([*cols, *(c for c in extra if c in data.columns)]))
        data = data.loc[keep, used]  # only the columns the fit reads (tables can be wide)
        y = _numeric(data, opts.target)
        if y.size == 0:
            raise InvalidInputError(f"obsscaling: target {opts.target!r} has no values")
        if np.any((y < 0) | (y > 1)) or not np.all(np.isfinite(y)):
            bad = y[~((y >= 0) & (y <= 1))][0]
            raise InvalidInputError(
                f"obsscaling: target {opts.target!r} must lie in [0, 1] (the sigmoid's range), "
                f"got {bad}; min-max normalise it first, e.g. (y - chance) / (1 - chance)"
            )
        models = cls._model_names(data, opts)
        flops = _numeric(data, opts.flops_column)
        _check_flops(flops, models, opts.flops_column)
        families = data[opts.family_column].astype(str).to_numpy()
        x, _ = _benchmark_matrix(data, opts.benchmarks)
        _check_rows(x, opts.benchmarks, models, opts.clip)
        train = flops_split(
            data,
            opts.cutoff,
            flops_column=opts.flops_column,
            test=opts.test if isinstance(opts.test, str) or opts.test is None else list(opts.test),
            model_column=opts.model_column,
        )
        k = opts.n_components
        m = int(train.sum())
        if k > len(opts.benchmarks):
            raise InvalidInputError(
                f"obsscaling: n_components={k} exceeds the {len(opts.benchmarks)} benchmarks"
            )
        if m < k + 3:
            raise InvalidInputError(
                f"obsscaling: too few train models for n_components={k}: the sigmoid has "
                f"{k + 2} parameters (intercept, {k} PC weights, floor) and needs at least "
                f"{k + 3} train models (one degree of freedom), got {m} (raise cutoff= or "
                "lower n_components=)"
            )
        _check_matrix(x[train], opts.benchmarks, None, "the train split", opts.clip)
        if opts.impute_components > len(opts.benchmarks):
            raise InvalidInputError(
                f"obsscaling: impute_components={opts.impute_components} exceeds the "
                f"{len(opts.benchmarks)} benchmarks"
            )
        u = np.log10(flops * (opts.flops_unit / 1e21))
        ref_rows = None
        if opts.reference_family is not None:
            ref_rows = (families == opts.reference_family) & np.isfinite(flops)
            n_ref = np.unique(flops[ref_rows]).size
            if n_ref < 2:
                present = sorted(set(families))
                hint = did_you_mean(opts.reference_family, present)
                raise InvalidInputError(
                    f"obsscaling: reference family {opts.reference_family!r} has "
                    f"{int(ref_rows.sum())} model(s) with known FLOPs ({n_ref} distinct); the "
                    "equivalent-FLOPs axis needs at least 2"
                    + (f"; {hint}" if hint else "")
                    + " (or pass reference_family=None)"
                )
        eff = _EfficiencyRows.build(families, flops)
        pkw: dict[str, Any] = dict(
            standardize=opts.standardize,
            impute_components=opts.impute_components,
            max_iter=opts.max_iter,
            tol=opts.tol,
            clip=opts.clip,
        )
        pipes, imputed, evr, _, n_iter = _fit_pipelines(
            x[train][None], n_keep=len(opts.benchmarks), **pkw
        )
        pca = BenchmarkPCA._from_pipes(opts.benchmarks, pipes, evr[0], imputed[0], int(n_iter[0]))
        s_train = pipes.project(imputed, k)[0]
        s_all = np.empty((len(y), k))
        s_all[train] = s_train
        if (~train).any():
            s_all[~train] = pipes.scores(x[~train], k)[0]
        res = _fit_sigmoid(s_train, y[train], _start(k), opts.max_floor, quiet=False)
        params = np.asarray(res.x, dtype=np.float64)
        lin = params[0] + s_all @ params[1:-1]
        reference = None
        equiv = np.full(len(y), np.nan)
        if ref_rows is not None:
            slope, intercept, _ = _lines(u[ref_rows], lin[ref_rows][:, None])
            reference = (float(slope[0]), float(intercept[0]))
            if reference[0] == 0:
                raise InvalidInputError(
                    f"obsscaling: the linear predictor is constant over the reference family "
                    f"{opts.reference_family!r}; no equivalent-FLOPs axis"
                )
            equiv = (lin - reference[1]) / reference[0]
        efficiency = eff.table(s_all, u, k)
        pred = _model(np.column_stack([np.ones(len(y)), s_all]), *params)
        err = (pred - y) ** 2
        mse_train = float(err[train].mean())
        mse_test = float(err[~train].mean()) if (~train).any() else math.nan
        table = pd.DataFrame(
            {
                "model": models,
                "family": families,
                "flops": flops,
                "split": np.where(train, "train", "test"),
                "target": y,
                **{f"PC-{j + 1}": s_all[:, j] for j in range(k)},
                "linear": lin,
                "equivalent_log10_flops": equiv,
                "prediction": pred,
            }
        )
        boot = None
        if opts.n_resamples > 0:
            boot = cls._bootstrap(x, y, train, u, ref_rows, eff, pipes, params, opts, pkw)
        return cls(
            options=opts.as_json(),
            pca=pca,
            x=params,
            cov=np.asarray(res.cov, dtype=np.float64),
            reference=reference,
            efficiency=efficiency,
            table=table,
            mse_train=mse_train,
            mse_test=mse_test,
            n_dropped=n_dropped,
            status=int(res.status),
            bootstrap=boot,
        )

    @staticmethod
    def _model_names(data: pd.DataFrame, opts: _Options) -> list[str]:
        if opts.model_column in data.columns:
            return [str(v) for v in data[opts.model_column]]
        return [str(v) for v in data.index]

    @classmethod
    def _bootstrap(
        cls,
        x: FloatArray,
        y: FloatArray,
        train: NDArray[np.bool_],
        u: FloatArray,
        ref_rows: NDArray[np.bool_] | None,
        eff: _EfficiencyRows,
        full: _Pipelines,
        params: FloatArray,
        opts: _Options,
        pkw: dict[str, Any],
    ) -> _Bootstrap:
        from ...fit import bootstrap_indices

        k, n_res = opts.n_components, opts.n_resamples
        xt, yt = x[train], y[train]
        idx = bootstrap_indices(xt.shape[0], n_res, opts.seed)
        pipes, imputed, _, ok, _ = _fit_pipelines(
            xt[idx], n_keep=k, align=full.components[0, :k], **pkw
        )
        s_b = pipes.project(imputed, k)
        out = np.full((n_res, k + 2), np.nan)
        for b in np.flatnonzero(ok):
            yb = yt[idx[b]]
            try:
                res = _fit_sigmoid(s_b[b], yb, params, opts.max_floor, quiet=True)
            except CapscaleError:
                ok[b] = False
                continue
            if res.success:
                out[b] = res.x
            else:
                ok[b] = False
        s_all = pipes.scores(x, k)  # (B, n, K)
        lin = out[:, None, 0] + np.einsum("bnk,bk->bn", s_all, out[:, 1:-1])
        ref = np.full((n_res, 2), np.nan)
        if ref_rows is not None:
            slope, intercept, _ = _lines(u[ref_rows], lin[:, ref_rows][:, :, None])
            ref = np.column_stack([slope[:, 0], intercept[:, 0]])
        eff_s = np.full((n_res, len(eff.names), k), np.nan)
        eff_i = np.full((n_res, len(eff.names), k), np.nan)
        if eff.names:
            eff_s, eff_i, _ = _group_lines(
                u[eff.rows], s_all[:, eff.rows, :], eff.codes, len(eff.names)
            )
        return _Bootstrap(
            n_resamples=n_res,
            seed=opts.seed,
            ok=ok,
            pipes=pipes,
            params=out,
            reference=ref,
            eff_slope=eff_s,
            eff_intercept=eff_i,
        )

    def __repr__(self) -> str:
        return (
            f"ObsScaling(target={self.options['target']!r}, law={self.equation()!r}, "
            f"n_train={self.n_train}, n_test={self.n_test}, mse_test={self.mse_test:.2e})"
        )

    # -- accessors -----------------------------------------------------------------------------

    @property
    def n_components(self) -> int:
        """K, the principal components used as predictors."""
        return int(self.options["n_components"])

    @property
    def param_names(self) -> tuple[str, ...]:
        """``("w0", "w1", …, "wK", "b")``: intercept, PC weights and sigmoid floor."""
        return _param_names(self.n_components)

    @property
    def params(self) -> dict[str, float]:
        """Sigmoid parameters by name (see :attr:`param_names`)."""
        return {n: float(v) for n, v in zip(self.param_names, self.x, strict=True)}

    @property
    def n_train(self) -> int:
        """Models in the train split."""
        return int((self.table["split"] == "train").sum())

    @property
    def n_test(self) -> int:
        """Models in the test split."""
        return int((self.table["split"] == "test").sum())

    def equation(self, digits: int = 2) -> str:
        """The fitted law as the paper prints it, e.g. ``"σ(1.09x - 4.77)"``.

        With a reference family, ``x`` is log10 of the reference-equivalent FLOPs (1e21);
        without one, the linear predictor over the PC scores is written out. The height and
        floor appear when the floor ``b`` exceeds 0.005 (``0.9·σ(…) + 0.1``).
        """
        b = float(self.x[-1])
        if self.reference is not None:
            a, c = self.reference
            inner = f"{a:.{digits}f}x {'-' if c < 0 else '+'} {abs(c):.{digits}f}"
        else:
            terms = [f"{self.x[0]:.{digits}f}"]
            for j, w in enumerate(self.x[1:-1]):
                terms.append(f"{'-' if w < 0 else '+'} {abs(w):.{digits}f}·PC-{j + 1}")
            inner = " ".join(terms)
        core = f"σ({inner})"
        if abs(b) > 0.005:
            core = f"{1 - b:.{digits}f}·{core} + {b:.{digits}f}"
        return core

    def bootstrap_ci(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals over the bootstrap resamples of the fitted constants.

        Returns
        -------
        DataFrame
            Rows ``w0 … wK, b`` and, with a reference family, ``w*`` and ``b*``; columns
            ``estimate``, ``se`` (std over resamples), ``ci_low``, ``ci_high``.

        Raises
        ------
        InvalidInputError
            The fit has no bootstrap (``n_resamples=0``) or ``level`` is outside (0, 1).
        """
        import pandas as pd

        boot = self._require_bootstrap()
        _check_level(level)
        names = list(self.param_names)
        est = list(self.x)
        draws = boot.params[boot.ok]
        if self.reference is not None:
            names += ["w*", "b*"]
            est += list(self.reference)
            draws = np.column_stack([draws, boot.reference[boot.ok]])
        tail = 100 * (1 - level) / 2
        return pd.DataFrame(
            {
                "estimate": est,
                "se": draws.std(axis=0, ddof=1),
                "ci_low": np.percentile(draws, tail, axis=0),
                "ci_high": np.percentile(draws, 100 - tail, axis=0),
            },
            index=names,
        )

    def _require_bootstrap(self) -> _Bootstrap:
        boot = self.bootstrap
        if boot is None:
            raise InvalidInputError("obsscaling: fitted with n_resamples=0: no bootstrap")
        if int(boot.ok.sum()) < 2:
            raise InvalidInputError("obsscaling: fewer than 2 usable bootstrap resamples")
        return boot

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, data: pd.DataFrame, *, ci: float = 0.95, using: str = "auto") -> pd.DataFrame:
        """Predict the target metric for new models, with confidence intervals.

        Parameters
        ----------
        data : DataFrame
            Rows to predict. With the benchmark columns, a model's capability scores come from
            its benchmarks (missing cells imputed with the train PCA); otherwise from its
            family's compute-efficiency line at its training FLOPs (family and FLOPs columns).
        ci : float
            Confidence level of the interval, in (0, 1).
        using : {'auto', 'benchmarks', 'compute'}
            'auto': benchmarks when the row has any benchmark score, else compute.

        Returns
        -------
        DataFrame
            ``data`` plus ``equivalent_log10_flops`` (the reference-equivalent compute,
            log10 of FLOPs / 1e21; NaN without a reference family), ``prediction``, ``ci_low``
            and ``ci_high``: bootstrap percentile intervals over resamples of the train models
            (delta-method normal intervals conditional on the PCA when ``n_resamples=0``).

        Raises
        ------
        InvalidInputError
            A row predicted from compute whose family has no efficiency line (fewer than 2
            models with distinct FLOPs in the fit) or whose FLOPs are not > 0, a row without
            any input, or a bad ``ci``/``using``.
        """
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise InvalidInputError("obsscaling: data must be a pandas DataFrame")
        _check_level(ci)
        if using not in ("auto", "benchmarks", "compute"):
            raise InvalidInputError(
                f"using must be 'auto', 'benchmarks' or 'compute', got {using!r}"
            )
        k = self.n_components
        n = len(data)
        bench = self.pca.benchmarks
        present = [b for b in bench if b in data.columns]
        if using == "benchmarks":
            require_columns(data, bench, "obsscaling")
        if present and len(present) < len(bench):
            # Some benchmarks given: the absent ones are missing scores to impute, never a
            # silent switch to the compute line.
            missing = [b for b in bench if b not in data.columns]
            warnings.warn(
                f"obsscaling: benchmark column(s) {', '.join(map(repr, missing))} absent; "
                "their scores are imputed from the others",
                InestimableWarning,
                stacklevel=2,
            )
            data = data.assign(**{b: np.nan for b in missing})
        x = _benchmark_matrix(data, bench)[0] if present else np.full((n, len(bench)), np.nan)
        _check_range(x, bench, None, self.pca._pipes.clip)
        by_bench = np.zeros(n, dtype=bool)
        if using != "compute":
            by_bench = np.asarray(~np.isnan(x).all(axis=1), dtype=bool)
        if using == "benchmarks" and not by_bench.all():
            raise InvalidInputError(
                f"obsscaling: row {int(np.flatnonzero(~by_bench)[0])} has no benchmark score"
            )
        comp: NDArray[np.bool_] = ~by_bench
        fam_idx = self._family_rows(data, comp)
        u = np.full(n, np.nan)
        if comp.any():
            flops = _numeric(data, str(self.options["flops_column"]))[comp]
            names = [str(v) for v in np.asarray(data.index)[comp]]
            if np.isnan(flops).any():
                who = names[int(np.flatnonzero(np.isnan(flops))[0])]
                raise InvalidInputError(
                    f"obsscaling: row {who} has neither benchmark scores nor FLOPs to predict from"
                )
            _check_flops(flops, names, str(self.options["flops_column"]))
            u[comp] = np.log10(flops * (float(self.options["flops_unit"]) / 1e21))
        eff = self.efficiency
        s = np.empty((n, k))
        if by_bench.any():
            s[by_bench] = self.pca._pipes.scores(x[by_bench], k)[0]
        if comp.any():
            slope = eff[[f"slope_PC-{j + 1}" for j in range(k)]].to_numpy()
            icpt = eff[[f"intercept_PC-{j + 1}" for j in range(k)]].to_numpy()
            s[comp] = slope[fam_idx[comp]] * u[comp, None] + icpt[fam_idx[comp]]
        design = np.column_stack([np.ones(n), s])
        pred = _model(design, *self.x)
        lin = design @ self.x[:-1]
        equiv = np.full(n, np.nan)
        if self.reference is not None:
            equiv = (lin - self.reference[1]) / self.reference[0]
        low, high = self._intervals(design, x, by_bench, comp, fam_idx, u, ci)
        out = data.copy()
        out["equivalent_log10_flops"] = equiv
        out["prediction"] = pred
        out["ci_low"] = low
        out["ci_high"] = high
        return out

    def _family_rows(self, data: pd.DataFrame, comp: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Index into :attr:`efficiency` of each compute-predicted row's family (-1 elsewhere)."""
        idx = np.full(len(data), -1, dtype=np.int64)
        if not comp.any():
            return idx
        fam_col = str(self.options["family_column"])
        require_columns(data, (fam_col, str(self.options["flops_column"])), "obsscaling")
        known = [str(f) for f in self.efficiency.index]
        lookup = {f: i for i, f in enumerate(known)}
        seen = set(self.table["family"])
        for row in np.flatnonzero(comp):
            fam = str(data[fam_col].iloc[row])
            if fam not in lookup:
                if fam in seen:
                    t = self.table
                    known_flops = t["flops"][(t["family"] == fam) & t["flops"].notna()]
                    raise InvalidInputError(
                        f"obsscaling: family {fam!r} has {len(known_flops)} model(s) with known "
                        f"FLOPs in the fit ({known_flops.nunique()} distinct): its "
                        "compute-efficiency line needs at least 2; give the row's benchmark "
                        "scores instead"
                    )
                hint = did_you_mean(fam, known)
                raise InvalidInputError(
                    f"obsscaling: family {fam!r} was not in the fit; "
                    f"{hint + ' ' if hint else ''}families with a compute-efficiency line: "
                    f"{', '.join(known)}"
                )
            idx[row] = lookup[fam]
        return idx

    def _intervals(
        self,
        design: FloatArray,
        x: FloatArray,
        by_bench: NDArray[np.bool_],
        comp: NDArray[np.bool_],
        fam_idx: NDArray[np.int64],
        u: FloatArray,
        ci: float,
    ) -> tuple[FloatArray, FloatArray]:
        n, k = design.shape[0], self.n_components
        boot = self.bootstrap
        if boot is None:
            jac = _model_jac(design, *self.x)
            with np.errstate(invalid="ignore", over="ignore"):
                se = np.sqrt(np.clip(np.einsum("ni,ij,nj->n", jac, self.cov, jac), 0, None))
            z = NormalDist().inv_cdf(0.5 + ci / 2)
            pred = _model(design, *self.x)
            return pred - z * se, pred + z * se
        boot = self._require_bootstrap()
        ok = np.flatnonzero(boot.ok)
        s = np.empty((ok.size, n, k))
        if by_bench.any():
            sub = _take_pipes(boot.pipes, ok)
            s[:, by_bench] = sub.scores(x[by_bench], k)
        if comp.any():
            fi = fam_idx[comp]
            s[:, comp] = (
                boot.eff_slope[ok][:, fi, :] * u[comp][None, :, None]
                + boot.eff_intercept[ok][:, fi, :]
            )
        draws = _predict_stack(boot.params[ok], s)
        tail = 100 * (1 - ci) / 2
        low: FloatArray = np.percentile(draws, tail, axis=0)
        high: FloatArray = np.percentile(draws, 100 - tail, axis=0)
        return low, high

    # -- reporting -----------------------------------------------------------------------------

    def summary(self) -> str:
        """A readable report: data, PCA, sigmoid constants, the equivalent-FLOPs law, holdout
        errors, compute efficiency and the bootstrap."""
        o = self.options
        k = self.n_components
        evr = self.pca.explained_variance_ratio
        n_fam = self.table["family"].nunique()
        cut = o["cutoff"]
        split = f"FLOPs <= {cut:g}" if cut is not None else "no compute cutoff"
        lines = [
            f"Observational scaling law (Ruan et al. 2024): target {o['target']!r}",
            f"models: {len(self.table)} in {n_fam} families ({self.n_dropped} without the target "
            f"dropped); train {self.n_train} ({split}), test {self.n_test}",
            f"benchmarks ({len(self.pca.benchmarks)}): {', '.join(self.pca.benchmarks)}",
            "PCA on the train split ("
            + ("standardised" if o["standardize"] else "centred")
            + "): explained variance "
            + ", ".join(f"PC-{j + 1} {v:.4f}" for j, v in enumerate(evr[:5]))
            + f"; top-{k} {evr[:k].sum():.4f}",
        ]
        for j in range(k):
            load = ", ".join(
                f"{b} {v:+.3f}"
                for b, v in zip(self.pca.benchmarks, self.pca.components[j], strict=True)
            )
            lines.append(f"  PC-{j + 1} loadings: {load}")
        ci = None
        if self.bootstrap is not None and int(self.bootstrap.ok.sum()) >= 2:
            ci = self.bootstrap_ci()
        lines.append("sigmoid: y = (1 - b)·σ(w0 + w1·PC-1 + … + wK·PC-K) + b, b in [0, 0.2]")
        for name, value in self.params.items():
            extra = ""
            if ci is not None:
                row = ci.loc[name]
                extra = f"  (se {row.se:.3g}; 95% CI [{row.ci_low:.4g}, {row.ci_high:.4g}])"
            lines.append(f"  {name:>3} = {value: .5g}{extra}")
        if self.reference is not None:
            a, c = self.reference
            lines.append(
                f"law on the {o['reference_family']}-equivalent FLOPs axis "
                f"(x = log10 FLOPs / 1e21): y = {self.equation()}"
            )
            if ci is not None:
                for name, value in (("w*", a), ("b*", c)):
                    row = ci.loc[name]
                    lines.append(
                        f"  {name} = {value:.4f} (95% CI [{row.ci_low:.4f}, {row.ci_high:.4f}])"
                    )
        else:
            lines.append(f"law: y = {self.equation()}")
        lines.append(
            f"holdout: MSE train {self.mse_train:.2e} ({self.n_train} models), "
            f"MSE test {self.mse_test:.2e} ({self.n_test} models)"
        )
        if len(self.efficiency):
            lines.append("compute efficiency, PC-1 = θ·log10(C / 1e21) + ν (R²):")
            for fam, row in self.efficiency.iterrows():
                lines.append(
                    f"  {fam:<18} θ {row['slope_PC-1']: .3f}  ν {row['intercept_PC-1']: .3f}  "
                    f"R² {row['r2_PC-1']:.3f}  ({int(row['n_models'])} models)"
                )
        if self.bootstrap is not None:
            b = self.bootstrap
            lines.append(
                f"bootstrap: {b.n_resamples} resamples of the train models (seed {b.seed}), "
                f"{int((~b.ok).sum())} failed"
            )
        else:
            lines.append("intervals: delta method on the sigmoid (no bootstrap)")
        return "\n".join(lines)

    def plot(self, ax: Any = None, kind: str = "prediction") -> Any:
        """Draw the fit on ``ax`` (a new figure when None) and return the Axes.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        kind : {'prediction', 'variance', 'loadings', 'efficiency'}
            'prediction': the target against the reference-equivalent FLOPs (train and test
            models, the fitted sigmoid and its bootstrap band); 'variance': explained variance
            per component; 'loadings': the K components' loadings; 'efficiency': PC-1 against
            log-compute with each family's line.
        """
        import matplotlib.pyplot as plt

        kinds = ("prediction", "variance", "loadings", "efficiency")
        if kind not in kinds:
            raise InvalidInputError(f"kind must be one of {', '.join(kinds)}, got {kind!r}")
        if ax is None:
            _, ax = plt.subplots()
        getattr(self, f"_plot_{kind}")(ax)
        return ax

    def _plot_prediction(self, ax: Any) -> None:
        t = self.table
        ref = self.reference is not None
        xcol = "equivalent_log10_flops" if ref else "linear"
        for split, color, marker in (("train", "C0", "o"), ("test", "C3", "x")):
            sel = t["split"] == split
            if sel.any():
                ax.scatter(
                    t.loc[sel, xcol],
                    t.loc[sel, "target"],
                    color=color,
                    marker=marker,
                    label=f"{split} ({int(sel.sum())})",
                )
        lo, hi = float(t[xcol].min()), float(t[xcol].max())
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        grid = np.linspace(lo - pad, hi + pad, 200)
        b = float(self.x[-1])
        a, c = self.reference if self.reference is not None else (1.0, 0.0)
        ax.plot(grid, (1 - b) * _sigmoid(a * grid + c) + b, color="k", label=self.equation())
        boot = self.bootstrap
        if ref and boot is not None and int(boot.ok.sum()) >= 2:
            ok = boot.ok
            rb, fb = boot.reference[ok], boot.params[ok, -1]
            curves = (1 - fb[:, None]) * _sigmoid(rb[:, :1] * grid + rb[:, 1:]) + fb[:, None]
            band = np.percentile(curves, [2.5, 97.5], axis=0)
            ax.fill_between(grid, band[0], band[1], color="k", alpha=0.15, label="95% bootstrap")
        ax.set_xlabel(
            f"log10 {self.options['reference_family']}-equivalent FLOPs (1e21)"
            if ref
            else "w0 + w·PC"
        )
        ax.set_ylabel(str(self.options["target"]))
        ax.set_title(f"MSE train {self.mse_train:.1e}, test {self.mse_test:.1e}", fontsize=9)
        ax.legend(fontsize=8)

    def _plot_variance(self, ax: Any) -> None:
        evr = self.pca.explained_variance_ratio
        pos = np.arange(1, evr.size + 1)
        ax.bar(pos, evr, color="C0", label="per component")
        ax.plot(pos, np.cumsum(evr), color="C3", marker="o", label="cumulative")
        ax.set_xticks(pos, [f"PC-{j}" for j in pos])
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("explained variance ratio")
        ax.legend(fontsize=8)

    def _plot_loadings(self, ax: Any) -> None:
        k = self.n_components
        names = self.pca.benchmarks
        pos = np.arange(len(names))
        width = 0.8 / k
        for j in range(k):
            ax.bar(
                pos + (j - (k - 1) / 2) * width, self.pca.components[j], width, label=f"PC-{j + 1}"
            )
        ax.axhline(0, color="k", linewidth=0.5)
        ax.set_xticks(pos, names, rotation=45, ha="right")
        ax.set_ylabel("loading")
        ax.legend(fontsize=8)

    def _plot_efficiency(self, ax: Any) -> None:
        t = self.table
        unit = float(self.options["flops_unit"]) / 1e21
        for j, (fam, row) in enumerate(self.efficiency.iterrows()):
            sel = (t["family"] == fam).to_numpy() & np.isfinite(t["flops"].to_numpy())
            u = np.log10(t["flops"].to_numpy()[sel] * unit)
            color = f"C{j % 10}"
            ax.scatter(u, t["PC-1"].to_numpy()[sel], color=color, s=12)
            g = np.array([u.min(), u.max()])
            ax.plot(g, row["slope_PC-1"] * g + row["intercept_PC-1"], color=color, label=fam)
        ax.set_xlabel("log10 training FLOPs (1e21)")
        ax.set_ylabel("PC-1")
        if len(self.efficiency):
            ax.legend(fontsize=6, ncol=2)

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: options, pipeline, constants, table and bootstrap (arrays
        as little-endian float64 in base64, so a reload predicts bit for bit the same)."""
        eff = self.efficiency
        state: dict[str, Any] = {
            "version": 1,
            "options": dict(self.options),
            "pca": {
                "benchmarks": list(self.pca.benchmarks),
                "explained_variance_ratio": _pack(self.pca.explained_variance_ratio),
                "imputed": _pack(self.pca.imputed),
                "n_iter": self.pca.n_iter,
                "pipeline": _pack_pipes(self.pca._pipes),
            },
            "x": _pack(self.x),
            "cov": _pack(self.cov),
            "reference": None if self.reference is None else list(self.reference),
            "efficiency": {
                "families": [str(f) for f in eff.index],
                "columns": list(eff.columns),
                "values": _pack(eff.to_numpy(dtype=np.float64)),
            },
            "table": {
                "strings": {
                    c: [str(v) for v in self.table[c]] for c in ("model", "family", "split")
                },
                "numbers": {
                    c: _pack(self.table[c].to_numpy(dtype=np.float64))
                    for c in self.table.columns
                    if c not in ("model", "family", "split")
                },
                "columns": list(self.table.columns),
            },
            "mse_train": _json_float(self.mse_train),
            "mse_test": _json_float(self.mse_test),
            "n_dropped": self.n_dropped,
            "status": self.status,
            "bootstrap": None,
        }
        boot = self.bootstrap
        if boot is not None:
            state["bootstrap"] = {
                "n_resamples": boot.n_resamples,
                "seed": boot.seed,
                "ok": _pack(boot.ok.astype(np.float64)),
                "pipeline": _pack_pipes(boot.pipes),
                "params": _pack(boot.params),
                "reference": _pack(boot.reference),
                "eff_slope": _pack(boot.eff_slope),
                "eff_intercept": _pack(boot.eff_intercept),
            }
        return state

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ObsScaling:
        """Rebuild a fit from :meth:`to_dict`'s output."""
        import pandas as pd

        try:
            if state["version"] != 1:
                raise FormatError(f"obsscaling: unsupported state version {state['version']!r}")
            opts = dict(state["options"])
            clip = (
                None if opts["clip"] is None else (float(opts["clip"][0]), float(opts["clip"][1]))
            )
            settings = (clip, int(opts["max_iter"]), float(opts["tol"]))
            p = state["pca"]
            pipes = _unpack_pipes(p["pipeline"], *settings)
            pca = BenchmarkPCA._from_pipes(
                tuple(p["benchmarks"]),
                pipes,
                _unpack(p["explained_variance_ratio"]),
                _unpack(p["imputed"]),
                int(p["n_iter"]),
            )
            e = state["efficiency"]
            eff = pd.DataFrame(
                _unpack(e["values"]).reshape(len(e["families"]), len(e["columns"])),
                index=pd.Index(e["families"], name="family"),
                columns=e["columns"],
            )
            if "n_models" in eff.columns:
                eff["n_models"] = eff["n_models"].astype(int)
            tab = state["table"]
            cols = {**tab["strings"], **{c: _unpack(v) for c, v in tab["numbers"].items()}}
            table = pd.DataFrame({c: cols[c] for c in tab["columns"]})
            boot = None
            if state["bootstrap"] is not None:
                b = state["bootstrap"]
                boot = _Bootstrap(
                    n_resamples=int(b["n_resamples"]),
                    seed=int(b["seed"]),
                    ok=_unpack(b["ok"]).astype(bool),
                    pipes=_unpack_pipes(b["pipeline"], *settings),
                    params=_unpack(b["params"]),
                    reference=_unpack(b["reference"]),
                    eff_slope=_unpack(b["eff_slope"]),
                    eff_intercept=_unpack(b["eff_intercept"]),
                )
            ref = state["reference"]
            return cls(
                options=opts,
                pca=pca,
                x=_unpack(state["x"]),
                cov=_unpack(state["cov"]),
                reference=None if ref is None else (float(ref[0]), float(ref[1])),
                efficiency=eff,
                table=table,
                mse_train=_from_json_float(state["mse_train"]),
                mse_test=_from_json_float(state["mse_test"]),
                n_dropped=int(state["n_dropped"]),
                status=int(state["status"]),
                bootstrap=boot,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(
                f"obsscaling: malformed fit state ({type(exc).__name__}: {exc})"
            ) from None


# -- helpers -----------------------------------------------------------------------------------


def _param_names(k: int) -> tuple[str, ...]:
    return ("w0", *(f"w{j + 1}" for j in range(k)), "b")


def _start(k: int) -> FloatArray:
    """The authors' start: intercept 0, PC weights 0.01, floor 0."""
    return np.concatenate([[0.0], np.full(k, 0.01), [0.0]])


def _fit_sigmoid(
    s: FloatArray, y: FloatArray, p0: FloatArray, max_floor: float, *, quiet: bool
) -> Any:
    """Least squares of ``(1 − b)·σ(w0 + w·S) + b`` on the native solver, ``b ∈ [0, max_floor]``."""
    from ...fit import curve_fit

    k = s.shape[1]
    design = np.column_stack([np.ones(s.shape[0]), s])
    lower = np.r_[np.full(k + 1, -np.inf), 0.0]
    upper = np.r_[np.full(k + 1, np.inf), max_floor]
    start = np.clip(p0, lower, upper)
    kw: dict[str, Any] = dict(
        p0=start, bounds=(lower, upper), jac=_model_jac, param_names=_param_names(k)
    )
    if not quiet:
        return curve_fit(_model, design, y, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapscaleWarning)
        return curve_fit(_model, design, y, **kw)


def _check_level(level: Any) -> None:
    check_level(level, "obsscaling")


def _take_pipes(p: _Pipelines, idx: NDArray[np.int64]) -> _Pipelines:
    return _Pipelines(
        scale_mean=p.scale_mean[idx],
        scale_std=p.scale_std[idx],
        impute_mean=p.impute_mean[idx],
        impute_axes=p.impute_axes[idx],
        pca_mean=p.pca_mean[idx],
        pca_scale=p.pca_scale[idx],
        components=p.components[idx],
        clip=p.clip,
        max_iter=p.max_iter,
        tol=p.tol,
    )


_PIPE_ARRAYS = (
    "scale_mean",
    "scale_std",
    "impute_mean",
    "impute_axes",
    "pca_mean",
    "pca_scale",
    "components",
)


def _pack_pipes(p: _Pipelines) -> dict[str, Any]:
    return {name: _pack(getattr(p, name)) for name in _PIPE_ARRAYS}


def _unpack_pipes(
    d: Mapping[str, Any], clip: tuple[float, float] | None, max_iter: int, tol: float
) -> _Pipelines:
    arrays = {name: _unpack(d[name]) for name in _PIPE_ARRAYS}
    return _Pipelines(**arrays, clip=clip, max_iter=max_iter, tol=tol)


def _pack(a: Any) -> dict[str, Any]:
    arr = np.ascontiguousarray(a, dtype="<f8")
    return {"shape": list(arr.shape), "f8": base64.b64encode(arr.tobytes()).decode("ascii")}


def _unpack(d: Mapping[str, Any]) -> FloatArray:
    raw = base64.b64decode(d["f8"], validate=True)
    out = np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(tuple(d["shape"]))
    return out


def _json_float(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _from_json_float(v: Any) -> float:
    return math.nan if v is None else float(v)
