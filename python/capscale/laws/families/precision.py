"""Precision laws: score against bits per weight, and the memory-matched comparison.

Two questions of the precision studies (Badshah & Sajjad, arXiv 2405.03146; the clembench
GGUF runs of Bhavsar et al., arXiv 2406.14051):

1. **How does a model's score fall as its weights lose precision?** Per model, a saturating
   exponential in the bits per weight ``b`` is fitted on the native LM solver::

       S(b) = S∞ − Δ · exp(−λ · (b − b₀))

   ``b₀`` is the model's lowest measured width, so ``Δ = S∞ − S(b₀)`` is the loss at the
   lowest precision relative to the plateau ``S∞``, and ``ln 2 / λ`` the bits that halve the
   remaining loss. Bounds: ``λ ∈ [1e-3, 3]`` per bit (below, ``S∞`` and ``Δ`` are not
   separable; at 3 the loss left one bit above ``b₀`` is 5 %, a step at the resolution of real
   bit widths — steeper data stop on the bound, reported in ``at_bound``, instead of on a
   plateau where ∂S/∂λ vanishes), ``S∞`` and ``Δ`` free (``Δ < 0`` means scores fall with
   more bits). The start comes from a profile over λ (for fixed λ the law is
   linear in ``S∞, Δ``). Chosen over a logistic in bits because it has one parameter fewer
   (precision sweeps rarely have more than 4–6 widths) and is monotone by construction.
   Curve CIs are delta-method intervals from the fit's covariance (normal quantiles when the
   score standard errors are known, Student-t with ``m − 3`` dof otherwise), or, with
   per-item scores and ``ci_method="bootstrap"``, percentile intervals of refits to item
   resamples (the same items at every precision: a paired resample).

2. **Is a large model at low precision better than a small one at high precision for the same
   memory?** Every (model, precision) configuration has a weight memory
   ``bytes = params × bits / 8``. The **Pareto frontier** is the configurations that no other
   configuration beats with at most the same memory (ties in memory: the higher score; equal
   scores: the smaller memory). Neighbours on the frontier are compared with a **paired
   bootstrap** (:func:`capscale.stats.paired_difference`, items shared by the two
   configurations, each replicate resamples items once) when per-item scores are given; with
   aggregated scores and ``score_se``, a normal interval of the independent difference; else
   no interval. :meth:`PrecisionLaw.memory_matched` lists every pair of different models with
   nearly equal memory (the "70B at 4 bit vs 13B at 16 bit" comparison).

Input tables (one of)
---------------------
per-item
    ``model, precision, bits, params, item_id, score``: one row per item and configuration
    (e.g. 0/1 accuracy, or a per-episode quality). A configuration's score is the mean over
    its items, with standard error ``std(ddof=1)/√n``, used as ``sigma`` (absolute) in the
    curve fit.
aggregated
    ``model, precision, bits, params, score`` and optionally ``score_se`` (standard error of
    ``score``): one row per configuration.

Tables from a results store (:func:`capscale.laws.data.table_from_store`) fit as they are:
``n_params`` stands in for ``params`` and ``stderr`` for ``score_se`` when those are absent.
``params`` is the parameter count (not billions), constant within a model; ``bits`` the
effective bits per weight (e.g. 4.5 for 4-bit blocks of 32 with an fp16 scale); ``precision``
a label (default ``"<bits>bit"``) unique within a model.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._validate import check_count, check_level, check_seed
from ...errors import (
    CapscaleWarning,
    FormatError,
    InvalidInputError,
    NonFiniteError,
    UnknownNameError,
    did_you_mean,
)
from ...fit import bootstrap_indices, curve_fit
from ...stats import paired_difference
from ..family import LawFamily, register_family, require_columns
from ._tdist import norm_ppf, t_ppf

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PrecisionLaw", "pareto_frontier", "saturating_exp", "saturating_exp_jac"]

_FAMILY = "precision"
PARAM_NAMES = ("s_inf", "drop", "lam")
LAM_BOUNDS = (1e-3, 3.0)
#: Smallest score standard error used as a weight (a configuration whose items all score the
#: same has se 0; it then counts as a very precise point rather than an infinite weight).
SE_FLOOR = 1e-9
_CONFIG_FLOATS = ("bits", "params", "memory_bytes", "score", "score_se")


def saturating_exp(x: Any, s_inf: float, drop: float, lam: float) -> np.ndarray:
    """``S = s_inf − drop · exp(−lam · x)`` with ``x = b − b₀`` (bits above the lowest width)."""
    x = np.asarray(x, dtype=np.float64)
    return s_inf - drop * np.exp(-lam * x)


def saturating_exp_jac(x: Any, s_inf: float, drop: float, lam: float) -> np.ndarray:
    """Jacobian of :func:`saturating_exp` with respect to ``(s_inf, drop, lam)``, shape (m, 3)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-lam * x)
    return np.column_stack([np.ones_like(x), -e, drop * x * e])


def _guess(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Start by profiling λ on a log grid: for fixed λ the law is linear in ``(s_inf, drop)``."""
    best, start = math.inf, np.array([float(np.max(y)), float(np.max(y) - np.min(y)), 0.5])
    sw = np.sqrt(w)
    for lam in np.geomspace(LAM_BOUNDS[0] * 10, LAM_BOUNDS[1] / 2, 48):
        design = np.column_stack([np.ones_like(x), -np.exp(-lam * x)]) * sw[:, None]
        coef, *_ = np.linalg.lstsq(design, y * sw, rcond=None)
        rss = float(np.sum((design @ coef - y * sw) ** 2))
        if rss < best:
            best, start = rss, np.array([coef[0], coef[1], lam])
    return start


def pareto_frontier(memory: Any, score: Any) -> np.ndarray:
    """Indices of the Pareto-optimal points (less memory, higher score), by increasing memory.

    A point is on the frontier when every point with less or equal memory scores strictly
    lower (at equal memory only the best score survives; at equal score the smaller memory).
    """
    mem = np.asarray(memory, dtype=np.float64)
    sc = np.asarray(score, dtype=np.float64)
    order = np.lexsort((-sc, mem))  # memory ascending, then score descending
    keep, best = [], -math.inf
    for i in order:
        if sc[i] > best:
            keep.append(int(i))
            best = sc[i]
    return np.array(keep, dtype=np.int64)


# -- input handling ------------------------------------------------------------------------------


def _numeric(data: pd.DataFrame, col: str, *, positive: bool = False) -> np.ndarray:
    try:
        values = np.asarray(data[col].to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{_FAMILY}: column {col!r} must be numeric") from None
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NonFiniteError(
            f"{_FAMILY}: column {col!r} has {int(bad.sum())} missing/non-finite value(s), "
            f"first at row {i}"
        )
    if positive and (values <= 0).any():
        i = int(np.flatnonzero(values <= 0)[0])
        raise InvalidInputError(
            f"{_FAMILY}: {col} must be > 0; {int((values <= 0).sum())} value(s) <= 0, "
            f"first {float(values[i])!r} at row {i}"
        )
    return values


def _configs(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Validate the input; return the configuration table and the per-item table (or None)."""
    import pandas as pd

    params_col = "n_params" if "params" not in data.columns and "n_params" in data else "params"
    require_columns(data, ("model", "bits", params_col, "score"), _FAMILY)
    if len(data) == 0:
        raise InvalidInputError(f"{_FAMILY}: the table is empty")
    frame = pd.DataFrame(
        {
            "model": data["model"].astype(str).to_numpy(),
            "bits": _numeric(data, "bits", positive=True),
            "params": _numeric(data, params_col, positive=True),
            "score": _numeric(data, "score"),
        }
    )
    if "precision" in data.columns:
        frame["precision"] = data["precision"].astype(str).to_numpy()
    else:
        frame["precision"] = [f"{b:g}bit" for b in frame["bits"]]
    sizes = frame.groupby("model", sort=False)["params"].nunique()
    if (sizes > 1).any():
        raise InvalidInputError(
            f"{_FAMILY}: model {sizes[sizes > 1].index[0]!r} has several params values; "
            "a model has one parameter count (name its variants as separate models)"
        )
    widths = frame.groupby(["model", "precision"], sort=False)["bits"].nunique()
    if (widths > 1).any():
        model, prec = widths[widths > 1].index[0]
        raise InvalidInputError(
            f"{_FAMILY}: configuration ({model!r}, {prec!r}) has several bits values"
        )
    keys = ["model", "precision"]
    items = None
    if "item_id" in data.columns:
        frame["item_id"] = data["item_id"].to_numpy()
        dup = frame.duplicated([*keys, "item_id"])
        if dup.any():
            row = frame[dup].iloc[0]
            raise InvalidInputError(
                f"{_FAMILY}: item {row['item_id']!r} appears twice for configuration "
                f"({row['model']!r}, {row['precision']!r})"
            )
        grouped = frame.groupby(keys, sort=False)
        configs = grouped.agg(
            bits=("bits", "first"),
            params=("params", "first"),
            score=("score", "mean"),
            score_sd=("score", "std"),
            n_items=("score", "size"),
        ).reset_index()
        if (configs["n_items"] < 2).any():
            row = configs[configs["n_items"] < 2].iloc[0]
            raise InvalidInputError(
                f"{_FAMILY}: too few points: configuration ({row['model']!r}, "
                f"{row['precision']!r}) has 1 item; per-item tables need >= 2 items each"
            )
        configs["score_se"] = configs["score_sd"] / np.sqrt(configs["n_items"])
        configs = configs.drop(columns="score_sd")
        items = frame[[*keys, "item_id", "score"]].reset_index(drop=True)
    else:
        dup = frame.duplicated(keys)
        if dup.any():
            row = frame[dup].iloc[0]
            raise InvalidInputError(
                f"{_FAMILY}: configuration ({row['model']!r}, {row['precision']!r}) appears "
                "twice; aggregated tables have one row per configuration (add item_id for "
                "per-item scores)"
            )
        configs = frame[[*keys, "bits", "params", "score"]].copy()
        se_col = "stderr" if "score_se" not in data.columns and "stderr" in data else "score_se"
        if se_col in data.columns:
            se = np.asarray(data[se_col].to_numpy(), dtype=np.float64)
            if (~np.isfinite(se) | (se < 0)).any():
                raise InvalidInputError(f"{_FAMILY}: {se_col} must be finite and >= 0")
            configs["score_se"] = se
        else:
            configs["score_se"] = np.nan
        configs["n_items"] = 0
    configs["memory_bytes"] = configs["params"] * configs["bits"] / 8.0
    configs["n_items"] = configs["n_items"].astype(np.int64)
    configs = configs.sort_values(["model", "bits", "precision"], kind="stable")
    cols = ["model", "precision", "bits", "params", "memory_bytes", "score", "score_se", "n_items"]
    return configs[cols].reset_index(drop=True), items


# -- fitting ------------------------------------------------------------------------------------


def _fit_curve(x: np.ndarray, y: np.ndarray, se: np.ndarray | None, bounds: tuple[Any, Any]) -> Any:
    sigma = None if se is None else np.maximum(se, SE_FLOOR)
    w = np.ones_like(y) if sigma is None else 1.0 / sigma**2
    start = np.clip(_guess(x, y, w), bounds[0], bounds[1])
    return curve_fit(
        saturating_exp,
        x,
        y,
        p0=start,
        sigma=sigma,
        absolute_sigma=sigma is not None,
        bounds=bounds,
        jac=saturating_exp_jac,
        param_names=PARAM_NAMES,
    )


def _resampled_means(
    items: pd.DataFrame, configs: pd.DataFrame, n_resamples: int, seed: int
) -> np.ndarray:
    """Config means over item resamples of one model, shape (n_resamples, n_configs).

    Items are drawn once per replicate (stream ``i`` of ``seed``) from the model's item ids and
    every configuration is averaged over the drawn items it has (a paired resample).
    """
    ids = items["item_id"].drop_duplicates().to_numpy()
    code = {v: i for i, v in enumerate(ids.tolist())}
    draws = bootstrap_indices(len(ids), n_resamples, seed)
    counts = np.zeros((n_resamples, len(ids)))
    for r in range(n_resamples):
        counts[r] = np.bincount(draws[r], minlength=len(ids))
    out = np.empty((n_resamples, len(configs)))
    for j, prec in enumerate(configs["precision"]):
        sub = items[items["precision"] == prec]
        scores = np.zeros(len(ids))
        mask = np.zeros(len(ids))
        idx = np.array([code[v] for v in sub["item_id"].tolist()])
        scores[idx] = sub["score"].to_numpy()
        mask[idx] = 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = (counts @ scores) / (counts @ mask)
    return out


class _Curve:
    """One model's fitted curve (parameters, covariance, optional bootstrap draws)."""

    def __init__(
        self,
        *,
        b0: float,
        x: np.ndarray,
        cov: np.ndarray,
        dof: int,
        absolute: bool,
        status: int,
        success: bool,
        n_points: int,
        draws: np.ndarray | None = None,
        at_bound: tuple[str, ...] = (),
    ) -> None:
        self.b0, self.x, self.cov = float(b0), np.asarray(x, float), np.asarray(cov, float)
        self.dof, self.absolute = int(dof), bool(absolute)
        self.status, self.success, self.n_points = int(status), bool(success), int(n_points)
        self.draws = None if draws is None else np.asarray(draws, float).reshape(-1, 3)
        self.at_bound = tuple(str(v) for v in at_bound)

    @property
    def stderr(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.diag(self.cov))

    def quantile(self, level: float) -> float:
        q = 0.5 + level / 2
        return norm_ppf(q) if self.absolute else t_ppf(q, self.dof)

    def predict(self, bits: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
        x = bits - self.b0
        pred = saturating_exp(x, *self.x)
        if self.draws is not None and len(self.draws) >= 2:
            d = self.draws
            curves = d[:, :1] - d[:, 1:2] * np.exp(-d[:, 2:3] * x[None, :])
            tail = 100 * (1 - level) / 2
            return pred, np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, 0)
        g = saturating_exp_jac(x, *self.x)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.einsum("ij,jk,ik->i", g, self.cov, g))
        half = self.quantile(level) * se
        return pred, pred - half, pred + half

    def to_dict(self) -> dict[str, Any]:
        return {
            "b0": self.b0,
            "x": self.x.tolist(),
            "cov": _jsonable(self.cov.tolist()),
            "dof": self.dof,
            "absolute": self.absolute,
            "status": self.status,
            "success": self.success,
            "n_points": self.n_points,
            "draws": None if self.draws is None else self.draws.tolist(),
            "at_bound": list(self.at_bound),
        }

    @classmethod
    def from_dict(cls, s: Mapping[str, Any]) -> _Curve:
        return cls(
            b0=s["b0"],
            x=np.asarray(s["x"], float),
            cov=np.array(_unjson(s["cov"]), dtype=float),
            dof=s["dof"],
            absolute=s["absolute"],
            status=s["status"],
            success=s["success"],
            n_points=s["n_points"],
            draws=None if s.get("draws") is None else np.asarray(s["draws"], float),
            at_bound=tuple(s.get("at_bound", ())),
        )


def _jsonable(value: Any) -> Any:
    """NaN/inf → None/"inf"/"-inf" (strict JSON), recursively through lists."""
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def _unjson(value: Any) -> Any:
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return value


def _frame_to_dict(frame: pd.DataFrame) -> dict[str, Any]:
    """``{"columns": [...], "data": {column: values}}`` (the column list keeps the order
    through ``json.dumps(sort_keys=True)``); NaN becomes None."""
    data: dict[str, list[Any]] = {}
    for col in frame.columns:
        values = frame[col].tolist()
        data[str(col)] = [_jsonable(v) if isinstance(v, float) else v for v in values]
    return {"columns": [str(c) for c in frame.columns], "data": data}


def _frame_from_dict(blob: Mapping[str, Any], floats: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    columns = list(blob["columns"])
    data = blob["data"]
    frame = pd.DataFrame({c: data[c] for c in columns}, columns=columns)
    for col in floats:
        if col in frame.columns:
            frame[col] = np.array(_unjson(list(data[col])), dtype=np.float64)
    return frame


@register_family(_FAMILY)
class PrecisionLaw(LawFamily):
    """Score vs bits per weight per model, and the score/weight-memory Pareto frontier.

    Build with :meth:`fit`. Attributes:

    configs : pandas.DataFrame
        One row per (model, precision): ``bits, params, memory_bytes, score, score_se,
        n_items``.
    frontier : pandas.DataFrame
        The Pareto-optimal configurations by increasing memory, with the difference to the
        previous frontier point (``diff``, ``diff_low``, ``diff_high``, ``p_value``,
        ``n_paired``, ``method``: ``paired_bootstrap``, ``normal`` or ``none``).
    curves : dict
        Model → fitted curve (empty when fitted with ``curve=None``); see :meth:`curve_table`.
    """

    required_columns = ("model", "bits", "params", "score")
    description = (
        "precision law: per-model S(b) = S_inf - drop*exp(-lam*(b-b0)) in bits per weight, and "
        "the score vs weight-memory Pareto frontier with paired-bootstrap CIs"
    )

    def __init__(
        self,
        *,
        configs: pd.DataFrame,
        items: pd.DataFrame | None,
        curves: Mapping[str, _Curve],
        frontier: pd.DataFrame,
        options: Mapping[str, Any],
    ) -> None:
        self.configs = configs
        self.items = items
        self.curves = dict(curves)
        self.frontier = frontier
        self.options = dict(options)

    # -- fitting -----------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        *,
        curve: str | None = "exp",
        ci_method: str = "covariance",
        ci: float = 0.95,
        n_resamples: int = 10_000,
        curve_resamples: int = 1000,
        seed: int = 0,
        lam_bounds: tuple[float, float] = LAM_BOUNDS,
        **options: Any,
    ) -> PrecisionLaw:
        """Fit the per-model curves and build the memory frontier.

        Parameters
        ----------
        data : pandas.DataFrame
            Per-item or aggregated table (module docstring).
        curve : {"exp", None}
            ``"exp"``: fit ``S(b) = S∞ − Δ·exp(−λ(b − b₀))`` per model, which needs at least
            3 distinct widths per model, and 4 configurations when no standard errors are known
            (aggregated without ``score_se``: one residual dof for the covariance). ``None``:
            only the frontier (e.g. for 3-width sweeps without standard errors).
        ci_method : {"covariance", "bootstrap"}
            Curve intervals: delta method, or percentile intervals of ``curve_resamples``
            refits to item resamples (per-item tables only).
        ci : float
            Level of the frontier-difference intervals (curve intervals take theirs at
            :meth:`predict`).
        n_resamples, seed : int
            Paired bootstrap of frontier differences (:func:`capscale.stats.paired_difference`,
            the same ``seed`` for every pair) and the seed of the curve bootstrap.
        lam_bounds : (float, float)
            Bounds on λ (per bit).

        Raises
        ------
        UnknownNameError
            A required column is missing.
        InvalidInputError
            Non-positive bits or params, duplicate configurations, too few widths per model,
            bad options.
        """
        if options:
            raise InvalidInputError(
                f"{_FAMILY}: unknown option(s) {', '.join(sorted(options))}; expected curve, "
                "ci_method, ci, n_resamples, curve_resamples, seed, lam_bounds"
            )
        if curve not in ("exp", None):
            raise UnknownNameError(f"{_FAMILY}: unknown curve {curve!r}; choices: 'exp', None")
        if ci_method not in ("covariance", "bootstrap"):
            raise UnknownNameError(
                f"{_FAMILY}: unknown ci_method {ci_method!r}; choices: covariance, bootstrap"
            )
        level = _check_level(ci)
        n_resamples = check_count("n_resamples", n_resamples, 2)
        curve_resamples = check_count("curve_resamples", curve_resamples, 2)
        seed = check_seed(seed)
        lo, hi = (float(v) for v in lam_bounds)
        if not 0 < lo < hi:
            raise InvalidInputError(f"{_FAMILY}: lam_bounds must satisfy 0 < low < high")
        configs, items = _configs(data)
        if ci_method == "bootstrap" and items is None:
            raise InvalidInputError(
                f"{_FAMILY}: ci_method='bootstrap' resamples items; it needs a per-item table "
                "(an item_id column)"
            )
        curves: dict[str, _Curve] = {}
        if curve is not None:
            bounds = ((-np.inf, -np.inf, lo), (np.inf, np.inf, hi))
            for model, group in configs.groupby("model", sort=False):
                curves[str(model)] = cls._fit_model(
                    str(model), group, items, bounds, ci_method, curve_resamples, seed
                )
        opts = {
            "curve": curve,
            "ci_method": ci_method,
            "ci": level,
            "n_resamples": n_resamples,
            "curve_resamples": curve_resamples,
            "seed": seed,
            "lam_bounds": [lo, hi],
        }
        fitted = cls(
            configs=configs, items=items, curves=curves, frontier=configs.iloc[:0], options=opts
        )
        fitted.frontier = fitted._build_frontier()
        return fitted

    @staticmethod
    def _fit_model(
        model: str,
        group: pd.DataFrame,
        items: pd.DataFrame | None,
        bounds: tuple[Any, Any],
        ci_method: str,
        curve_resamples: int,
        seed: int,
    ) -> _Curve:
        bits = group["bits"].to_numpy()
        y = group["score"].to_numpy()
        se_col = group["score_se"].to_numpy()
        absolute = bool(np.isfinite(se_col).all())
        n_widths = len(np.unique(bits))
        need_points = 3 if absolute else 4
        if n_widths < 3 or len(y) < need_points:
            why = (
                "3 distinct bit widths"
                if n_widths < 3
                else "4 configurations without standard errors (3 parameters + 1 residual "
                "dof; give score_se or per-item scores)"
            )
            raise InvalidInputError(
                f"{_FAMILY}: too few points for model {model!r}: {len(y)} configuration(s), "
                f"{n_widths} distinct width(s); the 3-parameter curve needs {why}, "
                "or fit with curve=None for the frontier only"
            )
        b0 = float(bits.min())
        x = bits - b0
        res = _fit_curve(x, y, se_col if absolute else None, bounds)
        draws = None
        if ci_method == "bootstrap" and items is not None:
            sub = items[items["model"] == model]
            means = _resampled_means(sub, group, curve_resamples, seed)
            kept = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CapscaleWarning)
                for row in means:
                    if not np.isfinite(row).all():
                        continue
                    try:
                        r = curve_fit(
                            saturating_exp,
                            x,
                            row,
                            p0=res.x,
                            sigma=np.maximum(se_col, SE_FLOOR),
                            absolute_sigma=True,
                            bounds=bounds,
                            jac=saturating_exp_jac,
                        )
                    except InvalidInputError:
                        continue
                    if r.success:
                        kept.append(r.x)
            draws = np.array(kept).reshape(-1, 3)
        return _Curve(
            b0=b0,
            x=res.x,
            cov=res.cov,
            dof=len(y) - 3,
            absolute=absolute,
            status=res.status,
            success=res.success,
            n_points=len(y),
            draws=draws,
            at_bound=res.active_bounds,
        )

    # -- comparisons -------------------------------------------------------------------------

    def _item_series(self, model: str, precision: str) -> pd.Series:
        assert self.items is not None
        sel = (self.items["model"] == model) & (self.items["precision"] == precision)
        sub = self.items[sel]
        return sub.set_index("item_id")["score"]

    def _difference(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        """``score(a) − score(b)`` with its interval (paired, normal or none)."""
        level = float(self.options["ci"])
        if self.items is not None:
            sa = self._item_series(str(a["model"]), str(a["precision"]))
            sb = self._item_series(str(b["model"]), str(b["precision"]))
            common = sa.index.intersection(sb.index)
            if len(common) < 2:
                raise InvalidInputError(
                    f"{_FAMILY}: ({a['model']!r}, {a['precision']!r}) and ({b['model']!r}, "
                    f"{b['precision']!r}) share {len(common)} item(s); a paired comparison "
                    "needs at least 2 common item ids"
                )
            res = paired_difference(
                sa.loc[common],
                sb.loc[common],
                ci=level,
                n_resamples=int(self.options["n_resamples"]),
                seed=int(self.options["seed"]),
            )
            return {
                "diff": res.diff,
                "diff_low": res.low,
                "diff_high": res.high,
                "p_value": res.p_value,
                "n_paired": res.n,
                "method": "paired_bootstrap",
            }
        diff = float(a["score"]) - float(b["score"])
        se = math.hypot(float(a["score_se"]), float(b["score_se"]))
        if math.isfinite(se):
            z = norm_ppf(0.5 + level / 2)
            p = 2 * (1 - _norm_cdf(abs(diff) / se)) if se > 0 else (0.0 if diff else 1.0)
            return {
                "diff": diff,
                "diff_low": diff - z * se,
                "diff_high": diff + z * se,
                "p_value": p,
                "n_paired": 0,
                "method": "normal",
            }
        return {
            "diff": diff,
            "diff_low": math.nan,
            "diff_high": math.nan,
            "p_value": math.nan,
            "n_paired": 0,
            "method": "none",
        }

    def _build_frontier(self) -> pd.DataFrame:
        import pandas as pd

        idx = pareto_frontier(self.configs["memory_bytes"], self.configs["score"])
        front = self.configs.iloc[idx].reset_index(drop=True)
        rows: list[dict[str, Any]] = [
            {
                "diff": math.nan,
                "diff_low": math.nan,
                "diff_high": math.nan,
                "p_value": math.nan,
                "n_paired": 0,
                "method": "none",
            }
        ]
        records = front.to_dict("records")
        for prev, cur in itertools.pairwise(records):
            rows.append(self._difference(cur, prev))
        extra = pd.DataFrame(rows)
        extra["n_paired"] = extra["n_paired"].astype(np.int64)
        return pd.concat([front, extra], axis=1)

    def memory_matched(self, tolerance: float = 0.25) -> pd.DataFrame:
        """Pairs of configurations of different models with nearly equal weight memory.

        Parameters
        ----------
        tolerance : float
            Largest relative memory gap: ``max(mem) / min(mem) <= 1 + tolerance``.

        Returns
        -------
        pandas.DataFrame
            One row per pair, oriented larger model (``large_*``) minus smaller model
            (``small_*``): ``memory_ratio`` (large/small), ``diff`` = score(large) −
            score(small), ``diff_low``, ``diff_high``, ``p_value``, ``n_paired``, ``method``
            (intervals as for the frontier). Sorted by the larger configuration's memory.
        """
        import pandas as pd

        if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
            raise InvalidInputError(f"{_FAMILY}: tolerance must be >= 0, got {tolerance!r}")
        records = self.configs.to_dict("records")
        rows = []
        for i, a in enumerate(records):
            for b in records[i + 1 :]:
                if a["model"] == b["model"] or a["params"] == b["params"]:
                    continue
                large, small = (a, b) if a["params"] > b["params"] else (b, a)
                ratio = large["memory_bytes"] / small["memory_bytes"]
                if max(ratio, 1 / ratio) > 1 + tolerance + 1e-12:
                    continue
                row = {
                    "large_model": large["model"],
                    "large_precision": large["precision"],
                    "large_bits": large["bits"],
                    "large_score": large["score"],
                    "small_model": small["model"],
                    "small_precision": small["precision"],
                    "small_bits": small["bits"],
                    "small_score": small["score"],
                    "large_memory_bytes": large["memory_bytes"],
                    "memory_ratio": ratio,
                }
                row.update(self._difference(large, small))
                rows.append(row)
        columns = [
            "large_model", "large_precision", "large_bits", "large_score", "small_model",
            "small_precision", "small_bits", "small_score", "large_memory_bytes",
            "memory_ratio", "diff", "diff_low", "diff_high", "p_value", "n_paired", "method",
        ]  # fmt: skip
        out = pd.DataFrame(rows, columns=columns)
        return out.sort_values("large_memory_bytes", kind="stable").reset_index(drop=True)

    # -- prediction --------------------------------------------------------------------------

    def curve_table(self) -> pd.DataFrame:
        """One row per fitted model: ``b0``, each parameter with its stderr, ``half_bits``
        (ln 2 / λ), ``n_points``, ``dof``, ``status``, ``success``, ``at_bound`` (names of
        parameters that stopped on a bound, comma-separated)."""
        import pandas as pd

        rows = []
        for model, c in self.curves.items():
            row: dict[str, Any] = {"model": model, "b0": c.b0}
            for name, v, se in zip(PARAM_NAMES, c.x, c.stderr, strict=True):
                row[name] = float(v)
                row[f"{name}_se"] = float(se)
            row["half_bits"] = math.log(2) / float(c.x[2])
            row.update(n_points=c.n_points, dof=c.dof, status=c.status, success=c.success)
            row["at_bound"] = ",".join(c.at_bound)
            rows.append(row)
        return pd.DataFrame(rows)

    def predict(self, data: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
        """Predicted score of ``model`` at ``bits`` from its fitted curve.

        Parameters
        ----------
        data : pandas.DataFrame
            Columns ``model`` (a fitted model) and ``bits`` (> 0); with ``params`` the weight
            memory ``memory_bytes`` is added.
        ci : float
            Interval level (delta method or bootstrap percentiles, as fitted).

        Returns
        -------
        pandas.DataFrame
            ``data``'s columns plus ``prediction``, ``ci_low``, ``ci_high``.
        """
        level = _check_level(ci)
        require_columns(data, ("model", "bits"), _FAMILY)
        if not self.curves:
            raise InvalidInputError(
                f"{_FAMILY}: this fit has no curves (fitted with curve=None); nothing to predict"
            )
        bits = _numeric(data, "bits", positive=True)
        models = data["model"].astype(str).to_numpy()
        pred = np.empty(len(data))
        low = np.empty(len(data))
        high = np.empty(len(data))
        for model in dict.fromkeys(models.tolist()):
            if model not in self.curves:
                raise UnknownNameError(
                    f"{_FAMILY}: no curve for model {model!r}; "
                    f"{did_you_mean(model, self.curves)} fitted: {', '.join(self.curves)}"
                )
            sel = models == model
            pred[sel], low[sel], high[sel] = self.curves[model].predict(bits[sel], level)
        out = data.copy()
        if "params" in data.columns:
            out["memory_bytes"] = _numeric(data, "params", positive=True) * bits / 8.0
        out["prediction"] = pred
        out["ci_low"] = low
        out["ci_high"] = high
        return out

    # -- reporting ---------------------------------------------------------------------------

    def summary(self) -> str:
        lines = [
            f"Precision law: {len(self.configs)} configurations of "
            f"{self.configs['model'].nunique()} model(s) "
            f"({'per-item scores' if self.items is not None else 'aggregated scores'})",
        ]
        if self.curves:
            kind = "bootstrap" if self.options["ci_method"] == "bootstrap" else "covariance"
            lines += [
                "",
                "  S(b) = s_inf − drop·exp(−lam·(b − b0))   "
                f"(± stderr from the {kind} fit; half_bits = ln2/lam)",
                f"  {'model':<28} {'b0':>5} {'s_inf':>18} {'drop':>18} {'lam':>16} "
                f"{'half_bits':>9}",
            ]
            for _, r in self.curve_table().iterrows():
                flag = "" if r["success"] else "  NOT CONVERGED"
                if r["at_bound"]:
                    flag += f"  (at bound: {r['at_bound']})"
                lines.append(
                    f"  {r['model']:<28} {r['b0']:>5g} "
                    f"{r['s_inf']:>9.4g} ± {r['s_inf_se']:<6.2g} "
                    f"{r['drop']:>9.4g} ± {r['drop_se']:<6.2g} "
                    f"{r['lam']:>7.3g} ± {r['lam_se']:<6.2g} {r['half_bits']:>9.3g}{flag}"
                )
        level = float(self.options["ci"])
        lines += [
            "",
            f"  Pareto frontier (score vs weight memory; Δ to the previous point, {level:.0%} CI):",
            f"  {'model':<28} {'precision':<10} {'bits':>5} {'GB':>9} {'score':>9} "
            f"{'Δ':>9} {'CI':>21} {'p':>8}",
        ]
        for _, r in self.frontier.iterrows():
            ci_txt = (
                f"[{r['diff_low']:.4g}, {r['diff_high']:.4g}]"
                if math.isfinite(r["diff_low"])
                else ""
            )
            lines.append(
                f"  {r['model']:<28} {r['precision']:<10} {r['bits']:>5g} "
                f"{r['memory_bytes'] / 1e9:>9.3g} {r['score']:>9.4g} "
                f"{r['diff']:>9.4g} {ci_txt:>21} {r['p_value']:>8.3g}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "options": dict(self.options),
            "configs": _frame_to_dict(self.configs),
            "items": None if self.items is None else _frame_to_dict(self.items),
            "curves": {m: c.to_dict() for m, c in self.curves.items()},
            "frontier": _frame_to_dict(self.frontier),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> PrecisionLaw:
        try:
            floats = (*_CONFIG_FLOATS, "diff", "diff_low", "diff_high", "p_value")
            configs = _frame_from_dict(state["configs"], _CONFIG_FLOATS)
            items = None
            if state.get("items") is not None:
                items = _frame_from_dict(state["items"], ("score",))
            return cls(
                configs=configs,
                items=items,
                curves={m: _Curve.from_dict(c) for m, c in state["curves"].items()},
                frontier=_frame_from_dict(state["frontier"], floats),
                options=state["options"],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"{_FAMILY}: not a saved precision fit ({exc!r})") from None

    def plot(self, ax: Any = None) -> Any:
        """Score against weight memory (GB, log axis): every configuration by model, the
        Pareto frontier as a step line, error bars from ``score_se``."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        for k, (model, group) in enumerate(self.configs.groupby("model", sort=False)):
            gb = group["memory_bytes"].to_numpy() / 1e9
            se = group["score_se"].to_numpy()
            ax.errorbar(
                gb,
                group["score"],
                yerr=np.where(np.isfinite(se), se, 0.0),
                fmt="o",
                color=f"C{k % 10}",
                label=str(model),
                capsize=2,
            )
            for xv, yv, prec in zip(gb, group["score"], group["precision"], strict=True):
                ax.annotate(
                    str(prec), (xv, yv), fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
        front = self.frontier
        ax.step(
            front["memory_bytes"] / 1e9,
            front["score"],
            where="post",
            color="k",
            lw=1,
            alpha=0.6,
            label="Pareto frontier",
        )
        ax.set_xscale("log")
        ax.set_xlabel("weight memory (GB) = params × bits / 8")
        ax.set_ylabel("score")
        ax.set_title("Score vs weight memory")
        ax.legend(fontsize=7)
        return ax

    def plot_curves(self, ax: Any = None, *, ci: float = 0.95) -> Any:
        """Score against bits per weight: data with error bars and each model's fitted curve
        with its ``ci`` band."""
        import matplotlib.pyplot as plt
        import pandas as pd

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        for k, (model, group) in enumerate(self.configs.groupby("model", sort=False)):
            color = f"C{k % 10}"
            se = group["score_se"].to_numpy()
            ax.errorbar(
                group["bits"],
                group["score"],
                yerr=np.where(np.isfinite(se), se, 0.0),
                fmt="o",
                color=color,
                label=str(model),
                capsize=2,
            )
            if str(model) in self.curves:
                grid = np.linspace(group["bits"].min(), group["bits"].max(), 100)
                pred = self.predict(pd.DataFrame({"model": str(model), "bits": grid}), ci=ci)
                ax.plot(grid, pred["prediction"], color=color)
                ax.fill_between(grid, pred["ci_low"], pred["ci_high"], color=color, alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bits per weight")
        ax.set_ylabel("score")
        ax.set_title("Score vs precision")
        ax.legend(fontsize=7)
        return ax


def _check_level(ci: Any) -> float:
    return check_level(ci, _FAMILY)


def _norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))
