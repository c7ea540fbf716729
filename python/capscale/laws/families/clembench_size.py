"""clembench size analysis (Bhavsar, Jordan, Hakimov, Schlangen; arXiv 2406.14051).

The law is an ordinary least-squares regression of clemscore on the logarithms of model
characteristics::

    clemscore = b0 + b1 · ln(params_B)                       (model 1)
    clemscore = b0 + b1 · ln(params_B) + b2 · ln(tokens_T)   (model 2)

(``params_B``: parameters in billions, ``tokens_T``: training tokens in trillions, natural
logarithms). The fit reports what statsmodels' OLS reports: coefficients with standard errors
``sqrt(diag(s²·(XᵀX)⁻¹))``, ``s² = RSS/(n − p)``, t statistics and two-sided p-values, R²,
adjusted R², the overall F test and the log-likelihood / AIC / BIC; :meth:`ClembenchSize.predict`
gives prediction intervals for new models (or confidence intervals of the mean).

Two helpers rebuild the paper's tables from the authors' public data
(``../shared/clembench/ModelAnalysis2024``, see its SOURCES.md):

- :func:`size_table` — the notebook's merge of ``model_characteristics.csv`` with the v1.6
  leaderboard (17 models with both sizes known);
- :func:`precision_table` — the precision / serving-backend comparison (Llama-3-8B/70B-Instruct
  and Command-R+ at full precision, GGUF q8 and q4, and through hosted APIs).

Example
-------
>>> from capscale.laws import get_family                                   # doctest: +SKIP
>>> table = size_table("model_characteristics.csv", "results.csv")        # doctest: +SKIP
>>> fit = get_family("clembench_size").fit(table, predictors=("params_B", "tokens_T"))
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._validate import check_level
from ...errors import FormatError, InvalidInputError, NonFiniteError, ShapeError
from ..family import LawFamily, register_family, require_columns
from ._tdist import f_sf, t_ppf, t_sf

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PRECISION_RUNS", "ClembenchSize", "precision_table", "size_table"]

_FAMILY = "clembench_size"


def _check_level(ci: float) -> float:
    return check_level(ci, _FAMILY)


def _positive_column(data: pd.DataFrame, col: str, what: str) -> np.ndarray:
    """Column ``col`` as finite, strictly positive float64 (it is log-transformed)."""
    try:
        values = np.asarray(data[col].to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{_FAMILY}: column {col!r} must be numeric") from None
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NonFiniteError(
            f"{_FAMILY}: {what} column {col!r} has {int(bad.sum())} missing/non-finite value(s) "
            f"(first at row {i}); drop those rows (or, when fitting, pass dropna=True)"
        )
    nonpos = values <= 0
    if nonpos.any():
        i = int(np.flatnonzero(nonpos)[0])
        raise InvalidInputError(
            f"{_FAMILY}: {what} column {col!r} must be > 0 (its logarithm is taken); "
            f"{int(nonpos.sum())} value(s) <= 0, first {float(values[i])!r} at row {i}"
        )
    return values


@register_family(_FAMILY)
class ClembenchSize(LawFamily):
    """OLS of a score (clemscore) on the logarithms of model characteristics.

    Fit with :meth:`fit`; the instance holds the coefficients and the training data.

    Attributes
    ----------
    y : str
        Response column (default ``"clemscore"``).
    predictors : tuple of str
        Log-transformed predictor columns, e.g. ``("params_B", "tokens_T")``.
    param_names : tuple of str
        ``("intercept", "ln_params_B", …)``.
    coef : ndarray, shape (p,)
        Coefficients; ``cov`` (p, p) is ``s²·(XᵀX)⁻¹``.
    n, df_resid : int
        Observations and residual degrees of freedom ``n − p``.
    """

    required_columns = ("clemscore", "params_B")
    description = (
        "clembench size regression (Bhavsar et al. 2024): "
        "clemscore = b0 + b1·ln(params_B) [+ b2·ln(tokens_T)], OLS with SEs and "
        "prediction intervals"
    )

    def __init__(
        self,
        *,
        y: str,
        predictors: Sequence[str],
        x_train: np.ndarray,
        y_train: np.ndarray,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.y = y
        self.predictors = tuple(predictors)
        self.param_names = ("intercept", *(f"ln_{p}" for p in self.predictors))
        self.x_train = np.array(x_train, dtype=np.float64).reshape(-1, len(self.predictors))
        self.y_train = np.array(y_train, dtype=np.float64).reshape(-1)
        self.labels = None if labels is None else [str(s) for s in labels]
        self._solve()

    # -- fitting -----------------------------------------------------------------------------

    def _design(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(x.shape[0]), np.log(x)])

    def _solve(self) -> None:
        X = self._design(self.x_train)
        yv = self.y_train
        n, p = X.shape
        q, r = np.linalg.qr(X)
        diag = np.abs(np.diag(r))
        if diag.min() <= 1e-10 * max(diag.max(), 1.0) * n:
            raise InvalidInputError(
                f"{_FAMILY}: the predictors are collinear (e.g. a predictor that is constant "
                f"across the {n} models); the coefficients are not identifiable"
            )
        self.coef = np.linalg.solve(r, q.T @ yv)
        r_inv = np.linalg.solve(r, np.eye(p))
        self.xtx_inv = r_inv @ r_inv.T
        resid = yv - X @ self.coef
        self.n = n
        self.df_resid = n - p
        self.rss = float(resid @ resid)
        self.tss = float(((yv - yv.mean()) ** 2).sum())
        self.sigma2 = self.rss / self.df_resid
        self.cov = self.sigma2 * self.xtx_inv

    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        *,
        y: str = "clemscore",
        predictors: Sequence[str] = ("params_B",),
        dropna: bool = False,
        label: str | None = "model",
        **options: Any,
    ) -> ClembenchSize:
        """Fit ``y = b0 + Σ_j b_j · ln(predictor_j)`` by ordinary least squares.

        Parameters
        ----------
        data : pandas.DataFrame
            One row per model with the response column and every predictor column, e.g.
            :func:`size_table`'s output (``clemscore``, ``params_B``, ``tokens_T``).
        y : str
            Response column.
        predictors : sequence of str
            Predictor columns, each > 0 (natural logs are taken). ``("params_B",)`` is the
            paper's model 1, ``("params_B", "tokens_T")`` its model 2.
        dropna : bool
            Drop rows with a missing response or predictor first (else they raise).
        label : str or None
            Column naming the models (kept for plots), if present.

        Raises
        ------
        UnknownNameError
            A column is missing.
        InvalidInputError
            Fewer rows than ``len(predictors) + 2`` (no residual degrees of freedom),
            non-positive sizes, collinear predictors, unknown options.
        NonFiniteError
            Missing values with ``dropna=False``.
        """
        if options:
            raise InvalidInputError(
                f"{_FAMILY}: unknown option(s) {', '.join(sorted(options))}; "
                "expected y, predictors, dropna, label"
            )
        if isinstance(predictors, str):
            predictors = (predictors,)
        predictors = tuple(predictors)
        if not predictors:
            raise InvalidInputError(f"{_FAMILY}: at least one predictor is needed")
        if len(set(predictors)) != len(predictors) or y in predictors:
            raise InvalidInputError(
                f"{_FAMILY}: predictors must be distinct columns other than y={y!r}, "
                f"got {predictors}"
            )
        require_columns(data, [y, *predictors], _FAMILY)
        if dropna:
            data = data.dropna(subset=[y, *predictors])
        p = len(predictors) + 1
        if len(data) < p + 1:
            raise InvalidInputError(
                f"{_FAMILY}: too few points: {len(data)} model(s) for {p} coefficients "
                f"(intercept + {len(predictors)} predictor(s)); need at least {p + 1} so that "
                "a residual variance (standard errors) exists"
            )
        try:
            yv = np.asarray(data[y].to_numpy(), dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{_FAMILY}: column {y!r} must be numeric") from None
        if not np.isfinite(yv).all():
            raise NonFiniteError(
                f"{_FAMILY}: response column {y!r} has missing/non-finite values; "
                "drop those rows or pass dropna=True"
            )
        x = np.column_stack([_positive_column(data, c, "predictor") for c in predictors])
        labels = None
        if label is not None and label in data.columns:
            labels = [str(v) for v in data[label].tolist()]
        return cls(y=y, predictors=predictors, x_train=x, y_train=yv, labels=labels)

    # -- statistics --------------------------------------------------------------------------

    @property
    def params(self) -> dict[str, float]:
        """Coefficient name → value."""
        return {k: float(v) for k, v in zip(self.param_names, self.coef, strict=True)}

    @property
    def stderr(self) -> np.ndarray:
        """Standard errors of the coefficients, shape (p,)."""
        return np.sqrt(np.diag(self.cov))

    @property
    def tvalues(self) -> np.ndarray:
        return self.coef / self.stderr

    @property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of the t statistics (``df_resid`` degrees of freedom)."""
        return np.array([2.0 * t_sf(abs(float(t)), self.df_resid) for t in self.tvalues])

    @property
    def rsquared(self) -> float:
        return 1.0 - self.rss / self.tss if self.tss > 0 else math.nan

    @property
    def rsquared_adj(self) -> float:
        return 1.0 - (1.0 - self.rsquared) * (self.n - 1) / self.df_resid

    @property
    def fvalue(self) -> float:
        """F statistic of "all slopes are zero"."""
        k = len(self.predictors)
        return ((self.tss - self.rss) / k) / self.sigma2 if self.sigma2 > 0 else math.inf

    @property
    def f_pvalue(self) -> float:
        return f_sf(self.fvalue, len(self.predictors), self.df_resid)

    @property
    def llf(self) -> float:
        """Gaussian log-likelihood at the OLS estimate (as statsmodels defines it)."""
        n = self.n
        return -0.5 * n * (math.log(2 * math.pi) + math.log(self.rss / n) + 1.0)

    @property
    def aic(self) -> float:
        return -2.0 * self.llf + 2.0 * len(self.coef)

    @property
    def bic(self) -> float:
        return -2.0 * self.llf + len(self.coef) * math.log(self.n)

    def conf_int(self, ci: float = 0.95) -> np.ndarray:
        """Confidence intervals of the coefficients, shape (p, 2), t quantiles."""
        level = _check_level(ci)
        t = t_ppf(0.5 + level / 2, self.df_resid)
        se = self.stderr
        return np.column_stack([self.coef - t * se, self.coef + t * se])

    # -- prediction --------------------------------------------------------------------------

    def predict(
        self, data: pd.DataFrame, *, ci: float = 0.95, interval: str = "prediction"
    ) -> pd.DataFrame:
        """Predicted scores with intervals for new models.

        Parameters
        ----------
        data : pandas.DataFrame
            The predictor columns (> 0).
        ci : float
            Interval level.
        interval : {"prediction", "confidence"}
            ``prediction``: where a new model's score falls,
            ``ŷ ± t·s·sqrt(1 + x₀ᵀ(XᵀX)⁻¹x₀)``; ``confidence``: the mean score of models
            with these characteristics, ``ŷ ± t·s·sqrt(x₀ᵀ(XᵀX)⁻¹x₀)``.

        Returns
        -------
        pandas.DataFrame
            ``data``'s columns plus ``prediction``, ``se``, ``ci_low``, ``ci_high``.
        """
        level = _check_level(ci)
        if interval not in ("prediction", "confidence"):
            raise InvalidInputError(
                f"{_FAMILY}: interval must be 'prediction' or 'confidence', got {interval!r}"
            )
        require_columns(data, list(self.predictors), _FAMILY)
        x = np.column_stack([_positive_column(data, c, "predictor") for c in self.predictors])
        X = self._design(x)
        pred = X @ self.coef
        lever = np.einsum("ij,jk,ik->i", X, self.xtx_inv, X)
        var = self.sigma2 * (lever + (1.0 if interval == "prediction" else 0.0))
        se = np.sqrt(var)
        t = t_ppf(0.5 + level / 2, self.df_resid)
        out = data.copy()
        out["prediction"] = pred
        out["se"] = se
        out["ci_low"] = pred - t * se
        out["ci_high"] = pred + t * se
        return out

    # -- reporting ---------------------------------------------------------------------------

    def summary(self) -> str:
        terms = " + ".join(f"{n}·ln({p})" for n, p in zip("bcdefgh", self.predictors, strict=False))
        lines = [
            f"clembench size regression (OLS): {self.y} = a + {terms}",
            f"  n = {self.n}, df_resid = {self.df_resid}, R² = {self.rsquared:.4f}, "
            f"adj. R² = {self.rsquared_adj:.4f}",
            f"  F({len(self.predictors)}, {self.df_resid}) = {self.fvalue:.4g}, "
            f"p = {self.f_pvalue:.3g}; s = {math.sqrt(self.sigma2):.4g}; "
            f"AIC {self.aic:.4g}, BIC {self.bic:.4g}",
            "",
            f"  {'term':<16} {'coef':>10} {'std err':>10} {'t':>8} {'P>|t|':>8} "
            f"{'[0.025':>10} {'0.975]':>10}",
        ]
        bands = self.conf_int(0.95)
        for i, name in enumerate(self.param_names):
            lines.append(
                f"  {name:<16} {self.coef[i]:>10.4f} {self.stderr[i]:>10.4f} "
                f"{self.tvalues[i]:>8.3f} {self.pvalues[i]:>8.3g} "
                f"{bands[i, 0]:>10.4f} {bands[i, 1]:>10.4f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "y": self.y,
            "predictors": list(self.predictors),
            "x_train": self.x_train.tolist(),
            "y_train": self.y_train.tolist(),
            "labels": self.labels,
            "coef": self.coef.tolist(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ClembenchSize:
        try:
            fitted = cls(
                y=str(state["y"]),
                predictors=[str(p) for p in state["predictors"]],
                x_train=np.asarray(state["x_train"], dtype=np.float64),
                y_train=np.asarray(state["y_train"], dtype=np.float64),
                labels=state.get("labels"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{_FAMILY}: not a saved clembench_size fit ({exc})") from None
        return fitted

    def plot(self, ax: Any = None) -> Any:
        """Score against the first predictor (log axis) with the fitted line and a 95 %
        prediction band; further predictors are held at their training geometric mean."""
        import matplotlib.pyplot as plt
        import pandas as pd

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        first = self.predictors[0]
        x0 = self.x_train[:, 0]
        ax.scatter(x0, self.y_train, color="C0", zorder=3, label="models")
        if self.labels is not None:
            for xv, yv, name in zip(x0, self.y_train, self.labels, strict=True):
                ax.annotate(
                    name, (xv, yv), fontsize=6, alpha=0.7, xytext=(2, 2), textcoords="offset points"
                )
        grid = np.geomspace(x0.min() / 1.5, x0.max() * 1.5, 100)
        frame = {first: grid}
        for j, name in enumerate(self.predictors[1:], start=1):
            frame[name] = np.full(grid.shape, math.exp(np.log(self.x_train[:, j]).mean()))
        pred = self.predict(pd.DataFrame(frame))
        ax.plot(grid, pred["prediction"], color="C1", label="OLS fit")
        ax.fill_between(
            grid,
            pred["ci_low"],
            pred["ci_high"],
            color="C1",
            alpha=0.2,
            label="95% prediction interval",
        )
        ax.set_xscale("log")
        ax.set_xlabel(first)
        ax.set_ylabel(self.y)
        ax.set_title(f"{self.y} vs ln({first}), R² = {self.rsquared:.3f}")
        ax.legend(fontsize=7)
        return ax


# -- rebuilding the paper's tables from the public data -----------------------------------------

_PARAMS = "Parameter Size (in billions)"
_TOKENS = "Training Data Size (in trillions)"


def _read(source: Any, what: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path}: no such file")
    return pd.read_csv(path)


def _strip_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names and text cells without surrounding spaces (the CSVs have trailing ones)."""
    import pandas as pd

    frame = frame.rename(columns={c: str(c).strip() for c in frame.columns})
    for col in frame.columns:
        kind = frame[col]
        if pd.api.types.is_object_dtype(kind) or pd.api.types.is_string_dtype(kind):
            frame[col] = frame[col].map(lambda v: v.strip() if isinstance(v, str) else v)
    return frame


def _pair_to_model(pair: str) -> str:
    """The authors' normalisation of a results.csv model pair: the ``-t0.0--…`` suffix removed,
    lower-cased, ``openchat_3.5`` spelt ``openchat-3.5``."""
    name = re.sub(r"(\w*)-t0.0.*", r"\1", str(pair)).lower()
    return "openchat-3.5" if name == "openchat_3.5" else name


def size_table(characteristics: Any, results: Any, *, complete: bool = True) -> pd.DataFrame:
    """The size-analysis table of the authors' notebook (``size_analysis.ipynb``).

    Parameters
    ----------
    characteristics : path or DataFrame
        ``model_characteristics.csv`` (names are stripped of trailing spaces).
    results : path or DataFrame
        A clembench ``results.csv`` (v1.6: ``clembench-runs_v1.6_results.csv``); its first
        column (the model pair) becomes the model name as the notebook does
        (:func:`_pair_to_model`).
    complete : bool
        Keep only models with both parameter and training-data size (the notebook's 17);
        False keeps every merged model (NaN where a size is unknown).

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model, provider, params_B, tokens_T, clemscore, played,
        quality``, in the order of ``characteristics``.
    """
    import pandas as pd

    chars = _strip_names(_read(characteristics, "characteristics"))
    res = _read(results, "results")
    need = ["Model Name", "Model Provider", _PARAMS, _TOKENS]
    missing = [c for c in need if c not in chars.columns]
    if missing:
        raise FormatError(f"characteristics table lacks column(s) {missing}")
    score_cols = ["-, clemscore", "all, Average % Played", "all, Average Quality Score"]
    if any(c not in res.columns for c in score_cols):
        raise FormatError(f"results table lacks the clembench columns {score_cols}")
    res = res.assign(_model=res.iloc[:, 0].map(_pair_to_model))
    merged = chars.merge(res, left_on="Model Name", right_on="_model", how="inner")
    out = pd.DataFrame(
        {
            "model": merged["Model Name"],
            "provider": merged["Model Provider"],
            "params_B": pd.to_numeric(merged[_PARAMS], errors="coerce"),
            "tokens_T": pd.to_numeric(merged[_TOKENS], errors="coerce"),
            "clemscore": merged["-, clemscore"].astype(float),
            "played": merged["all, Average % Played"].astype(float),
            "quality": merged["all, Average Quality Score"].astype(float),
        }
    )
    if complete:
        out = out.dropna(subset=["params_B", "tokens_T"])
    return out.reset_index(drop=True)


#: The runs of the precision / serving-backend comparison in ``clembench_model_scores.csv``:
#: row name → (model, reference row for the parameter count). Backend and precision are read
#: from each row (``Backend`` column, ``-gguf-qN`` suffix, link host).
PRECISION_RUNS: Mapping[str, str] = {
    "meta-llama-3-70b-instruct-hf": "Meta-Llama-3-70B-Instruct",
    "meta-llama-3-70b-instruct-gguf-q8": "Meta-Llama-3-70B-Instruct",
    "meta-llama-3-70b-instruct-gguf-q4": "Meta-Llama-3-70B-Instruct",
    "llama-3-70b-together.ai": "Meta-Llama-3-70B-Instruct",
    "llama-3-70b-groq": "Meta-Llama-3-70B-Instruct",
    "llama-3-70b-instruct-anyscale": "Meta-Llama-3-70B-Instruct",
    "meta-llama-3-8b-instruct-hf": "Meta-Llama-3-8B-Instruct",
    "meta-llama-3-8b-instruct-gguf-q8": "Meta-Llama-3-8B-Instruct",
    "meta-llama-3-8b-instruct-gguf-q4": "Meta-Llama-3-8B-Instruct",
    "llama-3-8b-instruct-anyscale": "Meta-Llama-3-8B-Instruct",
    "command-r-plus": "Command-R+",
    "c4ai-command-r-plus-gguf-q8": "Command-R+",
    "c4ai-command-r-plus-gguf-q4": "Command-R+",
}

#: Characteristics row giving each model's parameter count (and the nominal count if absent).
_PARAM_SOURCE = {
    "Meta-Llama-3-70B-Instruct": ("meta-llama-3-70b-instruct-hf", 70.0),
    "Meta-Llama-3-8B-Instruct": ("meta-llama-3-8b-instruct-hf", 8.0),
    "Command-R+": ("command-r-plus", 104.0),
}

_HOSTS = {"together.ai": "together.ai", "groq.com": "groq", "anyscale.com": "anyscale"}
_NOMINAL_BITS = {"full": 16.0, "q8": 8.0, "q4": 4.0}


def _backend(row: Mapping[str, Any]) -> str:
    backend = str(row["Backend"]).strip()
    if backend == "remote":
        link = str(row.get("Link", ""))
        for host, name in _HOSTS.items():
            if host in link:
                return name
    return backend


def precision_table(scores: Any, characteristics: Any = None) -> pd.DataFrame:
    """The precision / serving-backend table of the clembench analysis (laws.md §1 (b)).

    Rows of ``clembench_model_scores.csv`` listed in :data:`PRECISION_RUNS`: each model's
    full-precision reference (HF local weights; the Cohere API for Command-R+), its llama.cpp
    GGUF q8 and q4 runs, and the hosted-API runs of the same weights.

    Parameters
    ----------
    scores : path or DataFrame
        ``clembench_model_scores.csv`` (columns ``Model Name``, ``Backend``, ``Link``,
        ``clemscore``, ``all, Average % Played``, ``all, Average Quality Score``).
    characteristics : path or DataFrame, optional
        ``model_characteristics.csv`` for the parameter counts (default: the nominal 8, 70 and
        104 billion, which are that file's values).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, run, backend, precision, bits, params_B, params, clemscore, played,
        quality, delta_full``. ``precision`` is ``full``, ``q8``, ``q4`` or ``served``
        (hosted API, precision unknown); ``bits`` is the nominal width (16, 8, 4; NaN when
        served — which GGUF types "q8"/"q4" are and the dtype of the HF runs are not stated in
        the data); ``params`` is the parameter count; ``delta_full`` is clemscore − the
        model's full-precision clemscore. Rows in :data:`PRECISION_RUNS` order.
    """
    import pandas as pd

    table = _strip_names(_read(scores, "scores"))
    need = ["Model Name", "Backend", "clemscore", "all, Average % Played"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise FormatError(f"scores table lacks column(s) {missing}")
    params_b = {model: nominal for model, (_, nominal) in _PARAM_SOURCE.items()}
    if characteristics is not None:
        chars = _strip_names(_read(characteristics, "characteristics"))
        counts = pd.to_numeric(chars[_PARAMS], errors="coerce")
        sizes = dict(zip(chars["Model Name"], counts, strict=True))
        for model, (row, _) in _PARAM_SOURCE.items():
            if row in sizes and np.isfinite(sizes[row]):
                params_b[model] = float(sizes[row])
    by_name = {str(r["Model Name"]).lower(): r for r in table.to_dict("records")}
    absent = [name for name in PRECISION_RUNS if name not in by_name]
    if absent:
        raise FormatError(f"scores table lacks the precision runs {absent}")
    rows = []
    for name, model in PRECISION_RUNS.items():
        rec = by_name[name]
        backend = _backend(rec)
        match = re.search(r"-gguf-(q\d+)$", name)
        if match:
            precision = match.group(1)
        elif backend in ("huggingface-local", "cohere"):
            precision = "full"
        else:
            precision = "served"
        rows.append(
            {
                "model": model,
                "run": name,
                "backend": backend,
                "precision": precision,
                "bits": _NOMINAL_BITS.get(precision, math.nan),
                "params_B": params_b[model],
                "params": params_b[model] * 1e9,
                "clemscore": float(rec["clemscore"]),
                "played": float(rec["all, Average % Played"]),
                "quality": float(rec["all, Average Quality Score"]),
            }
        )
    out = pd.DataFrame(rows)
    full = out[out["precision"] == "full"].set_index("model")["clemscore"]
    if full.index.has_duplicates or set(full.index) != set(out["model"]):
        raise ShapeError("each model needs exactly one full-precision reference run")
    out["delta_full"] = (out["clemscore"] - out["model"].map(full)).round(2)
    return out
