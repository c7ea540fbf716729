"""Context-aware scaling law (Montgomery et al., arXiv 2510.14919), with a pluggable penalty.

The law (``../shared/reference/laws.md`` §5)::

    P(C, n, n_ctx) = [1 − exp(−A (C/C_c)^α)] · [1 − exp(−B (n/n_c)^β)] · pen(n, n_ctx)

``C`` is training compute (FLOPs; ``≈ 6·N·D``) or, with ``size="N"``, the parameter count;
``n`` the prompt length in tokens; ``n_ctx`` the model's context limit; ``P`` the task score
in [0, 1]. Only ``A·C_c^−α`` is identifiable from data, so the scales ``C_c`` and ``n_c`` are
fixed (``c_ref``, ``n_ref``; default the geometric means of the data) and ``A``, ``α``,
``B``, ``β`` (plus the penalty's own parameters) are fitted: ``A`` is the compute term's
rate at ``C = C_c``.

The published penalty is "a sharp sigmoid" in ``n − n_ctx`` whose exact form is
UNCONFIRMED, so it is a registry (:func:`register_penalty`, :func:`get_penalty`); built in:

``"sigmoid"``
    ``1 / (1 + exp(s·(n − n_ctx)))``, sharpness ``s`` per token (fitted, ``s ≥ 0``).
``"log_sigmoid"``
    ``1 / (1 + (n/n_ctx)^s)``, the same sigmoid in log-tokens (fitted ``s ≥ 0``).
``"none"``
    ``1`` (the paper's ablation).

A :class:`Penalty`, or any callable ``pen(n, n_ctx) -> array`` without parameters, is
accepted as well (it survives :meth:`~ContextLaw.to_dict` only when registered).

Two registered families: ``"context"`` (several models: the full law) and
``"context_only"`` (one model: ``P = K·[1 − exp(−B (n/n_c)^β)]·pen(n, n_ctx)``, with
``K ∈ (0, 1]`` standing for that model's compute term).

The fit is least squares on the native solver (:func:`capscale.fit.curve_fit`) with box
bounds, from the best of a small grid of starts (the paper's global search is differential
evolution; the grid plays its part). Intervals: a bootstrap over rows (``n_boot``
resamples, stream ``k`` of ``seed``, each refitted from the optimum), or with
``n_boot=0`` the delta method on the covariance.
"""

from __future__ import annotations

import copy
import math
import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..._validate import check_count, check_level, check_seed
from ...errors import (
    CapscaleWarning,
    FitError,
    FormatError,
    InvalidInputError,
    NonFiniteError,
    UnknownNameError,
    did_you_mean,
)
from ..basic import stable_sigmoid
from ..family import LawFamily, register_family, require_columns
from ._common import decode_array, encode_array, percentile_interval

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ContextLaw",
    "ContextOnlyLaw",
    "Penalty",
    "context_law",
    "get_penalty",
    "list_penalties",
    "register_penalty",
]


# --------------------------------------------------------------------------- penalties


@dataclass(frozen=True)
class Penalty:
    """A context penalty ``pen(n, n_ctx, *theta)`` with values in [0, 1].

    Attributes
    ----------
    name : str
        Registry name (what :meth:`ContextLaw.to_dict` stores).
    func : callable
        ``func(n, n_ctx, *theta) -> ndarray`` (broadcasting NumPy code).
    param_names : tuple of str
        Names of ``theta`` (empty for a fixed penalty).
    start : callable or sequence of float
        Starting ``theta``, or ``start(n, n_ctx) -> sequence`` computed from the data.
    lower, upper : tuple of float
        Bounds of ``theta``.
    formula : str
        For summaries.
    """

    name: str
    func: Callable[..., Any]
    param_names: tuple[str, ...] = ()
    start: Callable[[np.ndarray, np.ndarray], Sequence[float]] | Sequence[float] = ()
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    formula: str = ""

    def __post_init__(self) -> None:
        k = len(self.param_names)
        if len(self.lower) != k or len(self.upper) != k:
            raise InvalidInputError(
                f"penalty {self.name!r}: lower and upper need {k} bound(s) each"
            )
        if not callable(self.start) and len(self.start) != k:
            raise InvalidInputError(f"penalty {self.name!r}: start needs {k} value(s)")

    def x0(self, n: np.ndarray, n_ctx: np.ndarray) -> np.ndarray:
        """The starting ``theta`` for data ``(n, n_ctx)``."""
        s = self.start(n, n_ctx) if callable(self.start) else self.start
        return np.asarray(s, dtype=float).reshape(len(self.param_names))

    def __call__(self, n: Any, n_ctx: Any, *theta: Any) -> np.ndarray:
        return np.asarray(self.func(np.asarray(n, float), np.asarray(n_ctx, float), *theta))


_PENALTIES: dict[str, Penalty] = {}


def register_penalty(penalty: Penalty) -> Penalty:
    """Add a :class:`Penalty` to the registry under ``penalty.name`` (returns it)."""
    if not isinstance(penalty, Penalty):
        raise InvalidInputError("register_penalty takes a Penalty")
    old = _PENALTIES.get(penalty.name)
    if old is not None and old != penalty:
        raise InvalidInputError(f"penalty {penalty.name!r} is already registered")
    _PENALTIES[penalty.name] = penalty
    return penalty


def list_penalties() -> list[str]:
    """Names of the registered penalties."""
    return sorted(_PENALTIES)


def get_penalty(penalty: str | Penalty | Callable[..., Any]) -> Penalty:
    """A registered name, a :class:`Penalty`, or a parameter-free ``pen(n, n_ctx)``."""
    if isinstance(penalty, Penalty):
        return penalty
    if isinstance(penalty, str):
        if penalty not in _PENALTIES:
            hint = did_you_mean(penalty, _PENALTIES)
            raise UnknownNameError(
                f"unknown penalty {penalty!r}; {hint + ' ' if hint else ''}"
                f"known: {', '.join(list_penalties())} (or register_penalty)"
            )
        return _PENALTIES[penalty]
    if callable(penalty):
        name = getattr(penalty, "__name__", type(penalty).__name__)
        return Penalty(f"callable:{name}", penalty, formula=f"{name}(n, n_ctx)")
    raise InvalidInputError(
        f"penalty must be a name, a Penalty or a callable, got {type(penalty).__name__}"
    )


def _no_penalty(n: np.ndarray, n_ctx: np.ndarray) -> np.ndarray:
    return np.ones(np.broadcast(n, n_ctx).shape)


def _sigmoid_penalty(n: np.ndarray, n_ctx: np.ndarray, s: Any) -> np.ndarray:
    return np.asarray(stable_sigmoid(-s * (n - n_ctx)), dtype=float)


def _log_sigmoid_penalty(n: np.ndarray, n_ctx: np.ndarray, s: Any) -> np.ndarray:
    return np.asarray(stable_sigmoid(-s * np.log(n / n_ctx)), dtype=float)


register_penalty(Penalty("none", _no_penalty, formula="1"))
register_penalty(
    Penalty(
        "sigmoid",
        _sigmoid_penalty,
        ("s",),
        start=lambda n, n_ctx: (4.0 / float(np.median(n_ctx)),),
        lower=(0.0,),
        upper=(math.inf,),
        formula="1/(1 + exp(s·(n − n_ctx)))",
    )
)
register_penalty(
    Penalty(
        "log_sigmoid",
        _log_sigmoid_penalty,
        ("s",),
        start=(4.0,),
        lower=(0.0,),
        upper=(1e4,),
        formula="1/(1 + (n/n_ctx)^s)",
    )
)


# --------------------------------------------------------------------------- the law


def context_law(
    C: Any,
    n: Any,
    n_ctx: Any,
    A: float,
    alpha: float,
    B: float,
    beta: float,
    *theta: float,
    c_ref: float = 1.0,
    n_ref: float = 1.0,
    penalty: str | Penalty | Callable[..., Any] = "sigmoid",
) -> np.ndarray:
    """Evaluate ``[1 − e^{−A(C/c_ref)^α}]·[1 − e^{−B(n/n_ref)^β}]·pen(n, n_ctx, *theta)``.

    Parameters
    ----------
    C, n, n_ctx : array_like
        Compute (or size), prompt length and context limit (tokens); broadcast together.
    A, alpha, B, beta : float
        The law's constants.
    *theta : float
        The penalty's parameters.
    c_ref, n_ref : float
        The scales ``C_c`` and ``n_c``.
    penalty : str, Penalty or callable
    """
    pen = get_penalty(penalty)
    if len(theta) != len(pen.param_names):
        raise InvalidInputError(
            f"penalty {pen.name!r} takes {len(pen.param_names)} parameter(s), got {len(theta)}"
        )
    with np.errstate(over="ignore", under="ignore"):
        fc = -np.expm1(-A * (np.asarray(C, float) / c_ref) ** alpha)
        fn = -np.expm1(-B * (np.asarray(n, float) / n_ref) ** beta)
    return np.asarray(fc * fn * pen(n, n_ctx, *theta), dtype=float)


def _float(df: Any, col: str, family: str) -> np.ndarray:
    import pandas as pd

    try:
        values = pd.to_numeric(df[col], errors="raise")
        arr = np.asarray(pd.Series(values).to_numpy(dtype=float, na_value=np.nan), dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{family}: column {col!r} must be numeric: {exc}") from None
    if not np.all(np.isfinite(arr)):
        j = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise NonFiniteError(f"{family}: column {col!r} has a non-finite value at row {j}")
    return arr


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


_ALPHAS = (0.2, 0.5, 1.5)
_RATES = (0.5, 2.0)


class _ContextBase(LawFamily):
    """Shared machinery of ``context`` and ``context_only``."""

    uses_size: ClassVar[bool] = True
    core_names: ClassVar[tuple[str, ...]] = ("A", "alpha", "B", "beta")

    def __init__(self, state: Mapping[str, Any], penalty: Penalty | None = None) -> None:
        self._state = copy.deepcopy(dict(state))
        st = self._state
        self.penalty = get_penalty(st["penalty"]) if penalty is None else penalty
        self.param_names: tuple[str, ...] = tuple(st["param_names"])
        self.x = decode_array(st["x"]).reshape(-1)
        self.cov = decode_array(st["cov"]).reshape(self.x.shape[0], self.x.shape[0])
        self.stderr = np.sqrt(np.clip(np.diag(self.cov), 0, None))
        self.c_ref = float(st["c_ref"])
        self.n_ref = float(st["n_ref"])
        self.size: str = str(st["size"])
        self._draws = decode_array(st["draws"]).reshape(-1, self.x.shape[0])

    @property
    def params(self) -> dict[str, float]:
        """Fitted constants by name."""
        return {k: float(v) for k, v in zip(self.param_names, self.x, strict=True)}

    # ------------------------------------------------------------------ the model

    def _model(self, X: np.ndarray, *p: Any) -> np.ndarray:
        """``X`` rows ``(size/c_ref, n/n_ref, n, n_ctx)``."""
        k = len(self.core_names)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            fn = -np.expm1(-p[k - 2] * X[1] ** p[k - 1])
            if self.uses_size:
                front = -np.expm1(-p[0] * X[0] ** p[1])
            else:
                front = p[0]
            return np.asarray(front * fn * self.penalty(X[2], X[3], *p[k:]), dtype=float)

    def _design(self, size: np.ndarray, n: np.ndarray, n_ctx: np.ndarray) -> np.ndarray:
        return np.stack([size / self.c_ref, n / self.n_ref, n, n_ctx])

    # ------------------------------------------------------------------ input

    @classmethod
    def _read(
        cls, data: Any, size: str | None, sigma: str | None, for_fit: bool
    ) -> tuple[np.ndarray, ...]:
        family = cls.name
        require_columns(data, [], family)
        if cls.uses_size:
            if size is None:
                size = "C" if "C" in data.columns else "N"
            if size not in ("C", "N"):
                raise InvalidInputError(f"{family}: size must be 'C' or 'N', got {size!r}")
            require_columns(data, [size, "n", "n_ctx"], family)
        else:
            require_columns(data, ["n", "n_ctx"], family)
        if for_fit:
            require_columns(data, ["P"], family)
        if len(data) == 0:
            raise InvalidInputError(f"{family}: the table has no rows")
        sz = _float(data, size, family) if (cls.uses_size and size) else np.ones(len(data))
        n, n_ctx = _float(data, "n", family), _float(data, "n_ctx", family)
        for col, arr in ((size or "size", sz), ("n", n), ("n_ctx", n_ctx)):
            if np.any(arr <= 0):
                j = int(np.flatnonzero(arr <= 0)[0])
                raise InvalidInputError(
                    f"{family}: {col} must be > 0 (compute, sizes and token counts are "
                    f"positive), got {arr[j]} at row {j}"
                )
        P = _float(data, "P", family) if for_fit else np.zeros(0)
        if for_fit and np.any((P < 0) | (P > 1)):
            j = int(np.flatnonzero((P < 0) | (P > 1))[0])
            raise InvalidInputError(f"{family}: P must be a score in [0, 1], got {P[j]} at row {j}")
        sig = None
        if for_fit and sigma is not None:
            require_columns(data, [sigma], family)
            sig = _float(data, sigma, family)
            if np.any(sig <= 0):
                raise InvalidInputError(f"{family}: sigma column {sigma!r} must be > 0")
        return sz, n, n_ctx, P, (np.zeros(0) if sig is None else sig)

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        data: pd.DataFrame,
        *,
        penalty: str | Penalty | Callable[..., Any] = "sigmoid",
        size: str | None = None,
        c_ref: float | None = None,
        n_ref: float | None = None,
        sigma: str | None = None,
        n_boot: int = 200,
        seed: int = 0,
        **options: Any,
    ) -> Any:
        """Fit the law to a context sweep.

        Parameters
        ----------
        data : pandas.DataFrame
            Columns ``n`` (prompt tokens), ``n_ctx`` (context limit, tokens), ``P`` (score in
            [0, 1]) and, for ``context``, ``C`` (training FLOPs) or ``N`` (parameters).
        penalty : str, Penalty or callable
            ``"sigmoid"`` (default), ``"log_sigmoid"``, ``"none"``, a registered name, a
            :class:`Penalty` or ``pen(n, n_ctx)``.
        size : {"C", "N"}, optional
            The size column (default ``C`` when present, else ``N``); ``context`` only.
        c_ref, n_ref : float, optional
            The scales ``C_c`` and ``n_c`` (default: geometric means of the data).
        sigma : str, optional
            Column of standard errors of ``P`` (weights ``1/sigma``).
        n_boot : int
            Bootstrap resamples over rows (0: delta-method intervals from the covariance).
        seed : int
            Bootstrap seed.
        **options
            Solver settings for :func:`capscale.fit.curve_fit` (``loss``, ``f_scale``,
            ``max_nfev`` …).

        Raises
        ------
        InvalidInputError
            Too few rows for the parameters, non-positive sizes or lengths, scores outside
            [0, 1], one size for ``context`` (use ``context_only``) or several for
            ``context_only``, a fitted penalty with no row beyond ``n_ctx``.
        """
        from ...fit import bootstrap_indices, curve_fit

        family = cls.name
        pen = get_penalty(penalty)
        n_boot = check_count("n_boot", n_boot, 0)
        if n_boot == 1:
            raise InvalidInputError("n_boot must be 0 (delta-method intervals) or at least 2")
        seed = check_seed(seed)
        sz, n, n_ctx, P, sig_arr = cls._read(data, size, sigma, for_fit=True)
        if cls.uses_size and size is None:
            size = "C" if "C" in data.columns else "N"
        names = (*cls.core_names, *pen.param_names)
        k = len(names)
        m = P.shape[0]
        if m <= k:
            raise InvalidInputError(
                f"{family}: {m} rows for {k} parameters ({', '.join(names)}): need at least {k + 1}"
            )
        n_sizes = np.unique(sz).shape[0]
        if cls.uses_size and n_sizes < 2:
            raise InvalidInputError(
                f"{family}: one {size} value cannot fix A and alpha; use 'context_only' for "
                "one model"
            )
        for col in ("C", "N"):
            if not cls.uses_size and col in data.columns:
                if np.unique(_float(data, col, family)).shape[0] > 1:
                    raise InvalidInputError(
                        f"{family}: the table has several {col} values (models); use 'context'"
                    )
        if np.unique(n).shape[0] < 2:
            raise InvalidInputError(f"{family}: the prompt length n must take at least 2 values")
        if pen.param_names and not np.any(n > n_ctx):
            raise InvalidInputError(
                f"{family}: penalty {pen.name!r} has parameter(s) {', '.join(pen.param_names)} "
                "but no row has n > n_ctx to fix them; use penalty='none'"
            )
        cr = float(np.exp(np.mean(np.log(sz)))) if c_ref is None else float(c_ref)
        nr = float(np.exp(np.mean(np.log(n)))) if n_ref is None else float(n_ref)
        for nm, v in (("c_ref", cr), ("n_ref", nr)):
            if not (math.isfinite(v) and v > 0):
                raise InvalidInputError(f"{family}: {nm} must be > 0, got {v}")
        stub: dict[str, Any] = {"penalty": pen.name, "param_names": names, "x": [0.0] * k}
        stub.update(cov=[[0.0] * k] * k, c_ref=cr, n_ref=nr, size=size or "", draws=[])
        shell = cls(stub, penalty=pen)
        X = shell._design(sz, n, n_ctx)
        sig = sig_arr if sig_arr.size else None
        if cls.uses_size:
            lower = [0.0, 0.0, 0.0, 0.0]
            upper = [math.inf, 20.0, math.inf, 20.0]
        else:
            lower = [0.0, 0.0, 0.0]
            upper = [1.0, math.inf, 20.0]
        bounds = ([*lower, *pen.lower], [*upper, *pen.upper])
        theta0 = pen.x0(n, n_ctx)
        starts = []
        for rate_b in _RATES:
            for beta in _ALPHAS:
                tail = [rate_b, beta, *theta0]
                if cls.uses_size:
                    starts += [[a, al, *tail] for a in _RATES for al in _ALPHAS]
                else:
                    starts.append([min(1.0, max(float(P.max()), 0.05)), *tail])
        best = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CapscaleWarning)
            for p0 in starts:
                p0c = np.clip(np.asarray(p0, float), bounds[0], bounds[1])
                try:
                    r = curve_fit(
                        shell._model, X, P, p0c, sig, bounds=bounds, param_names=names, **options
                    )
                except FitError:
                    continue
                if not np.all(np.isfinite(r.x)):
                    continue
                if best is None or (r.success, -r.cost) > (best.success, -best.cost):
                    best = r
        if best is None:
            raise FitError(f"{family}: no start gave a fit")
        # Refit from the best start with warnings on (converges at once; reports problems).
        res = curve_fit(
            shell._model, X, P, best.x, sig, bounds=bounds, param_names=names, **options
        )
        draws = np.full((n_boot, k), np.nan)
        if n_boot:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CapscaleWarning)
                for b, idx in enumerate(bootstrap_indices(m, n_boot, seed)):
                    try:
                        rb = curve_fit(
                            shell._model,
                            X[:, idx],
                            P[idx],
                            res.x,
                            None if sig is None else sig[idx],
                            bounds=bounds,
                            param_names=names,
                            **options,
                        )
                    except FitError:
                        continue
                    if rb.success:
                        draws[b] = rb.x
        fitted = shell._model(X, *res.x)
        err = np.abs(fitted - P)
        inside = n <= n_ctx
        state = {
            "version": 1,
            "penalty": pen.name,
            "penalty_formula": pen.formula,
            "param_names": list(names),
            "x": encode_array(res.x),
            "cov": encode_array(res.cov),
            "c_ref": cr,
            "n_ref": nr,
            "size": size or "",
            "seed": seed,
            "n_boot": n_boot,
            "draws": encode_array(draws),
            "success": bool(res.success),
            "cost": float(res.cost),
            "mae": {
                "all": float(err.mean()),
                "inside": encode_array(err[inside].mean() if inside.any() else math.nan),
                "beyond": encode_array(err[~inside].mean() if (~inside).any() else math.nan),
            },
            "data": {
                "size": encode_array(sz),
                "n": encode_array(n),
                "n_ctx": encode_array(n_ctx),
                "P": encode_array(P),
            },
        }
        return cls(state, penalty=pen)

    # ------------------------------------------------------------------ the contract

    def predict(self, data: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
        """Predicted score for rows with ``n``, ``n_ctx`` (and the size column for
        ``context``): ``prediction``, ``ci_low``, ``ci_high`` (bootstrap percentiles, or the
        delta method when fitted with ``n_boot=0``; clipped to [0, 1])."""
        import pandas as pd

        check_level(ci, self.name)
        sz, n, n_ctx, _, _ = self._read(data, self.size or None, None, for_fit=False)
        X = self._design(sz, n, n_ctx)
        pred = self._model(X, *self.x)
        if self._draws.shape[0]:
            rows = np.array([self._model(X, *p) for p in self._draws if np.all(np.isfinite(p))])
            lo, hi = percentile_interval(rows, ci) if rows.shape[0] >= 2 else (pred * np.nan,) * 2
        else:
            grad = np.empty((self.x.shape[0], pred.shape[0]))
            for j in range(self.x.shape[0]):
                h = 1e-6 * max(abs(self.x[j]), 1e-3)
                up, dn = self.x.copy(), self.x.copy()
                up[j] += h
                dn[j] -= h
                grad[j] = (self._model(X, *up) - self._model(X, *dn)) / (2 * h)
            with np.errstate(invalid="ignore"):
                se = np.sqrt(np.clip(np.einsum("im,ij,jm->m", grad, self.cov, grad), 0, None))
            z = statistics.NormalDist().inv_cdf(0.5 + ci / 2)
            lo, hi = np.clip(pred - z * se, 0, 1), np.clip(pred + z * se, 0, 1)
        out = pd.DataFrame(data).copy()
        out["prediction"] = pred
        out["ci_low"] = lo
        out["ci_high"] = hi
        return out

    def params_ci(self, ci: float = 0.95) -> dict[str, tuple[float, float]]:
        """Bootstrap percentile intervals (``x ± z·stderr`` when fitted with ``n_boot=0``)."""
        check_level(ci, self.name)
        if self._draws.shape[0] >= 2:
            lo, hi = percentile_interval(self._draws, ci)
        else:
            z = statistics.NormalDist().inv_cdf(0.5 + ci / 2)
            lo, hi = self.x - z * self.stderr, self.x + z * self.stderr
        return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(self.param_names)}

    def summary(self) -> str:
        st = self._state
        head = (
            "[1 - exp(-A (C/C_c)^alpha)]·[1 - exp(-B (n/n_c)^beta)]·pen(n, n_ctx)"
            if self.uses_size
            else "K·[1 - exp(-B (n/n_c)^beta)]·pen(n, n_ctx)"
        )
        cis = self.params_ci()
        ref = f"C_c = {self.c_ref:.4g} ({self.size}), " if self.uses_size else ""
        lines = [
            f"Context-aware law ({self.name}; Montgomery et al., arXiv 2510.14919)",
            f"  P = {head}",
            f"  penalty {self.penalty.name!r}: {st.get('penalty_formula') or self.penalty.formula}",
            f"  {ref}n_c = {self.n_ref:.4g} tokens; {len(st['data']['P'])} rows; "
            f"{'converged' if st['success'] else 'NOT CONVERGED'}",
        ]
        for i, k in enumerate(self.param_names):
            lo, hi = cis[k]
            lines.append(
                f"    {k:<6} {self.x[i]:>12.6g}  stderr {self.stderr[i]:10.4g}  "
                f"95% CI [{lo:.6g}, {hi:.6g}]"
            )
        mae = st["mae"]
        lines.append(
            f"  mean |P - P_hat|: all {_fmt(mae['all'])}, n <= n_ctx {_fmt(mae['inside'])}, "
            f"n > n_ctx {_fmt(mae['beyond'])}"
        )
        if st["n_boot"]:
            bad = int(np.count_nonzero(np.any(~np.isfinite(self._draws), axis=1)))
            lines.append(
                f"  bootstrap: {st['n_boot']} resamples (seed {st['seed']}), {bad} failed refits"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; a penalty must be registered to load it back."""
        return copy.deepcopy(self._state)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Any:
        """Rebuild from :meth:`to_dict` (UnknownNameError for an unregistered penalty)."""
        try:
            return cls(state)
        except UnknownNameError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"not a {cls.name} fit state: {type(exc).__name__}: {exc}") from None

    def plot(self, ax: Any = None) -> Any:
        """Score over prompt length (log x): the data and the fitted curve with its 95% band
        for each (size, n_ctx) pair, a dotted line at each ``n_ctx``."""
        import matplotlib.pyplot as plt
        import pandas as pd

        if ax is None:
            _, ax = plt.subplots()
        d = {k: decode_array(v) for k, v in self._state["data"].items()}
        keys = sorted(set(zip(d["size"], d["n_ctx"], strict=True)))
        grid = np.geomspace(d["n"].min(), d["n"].max(), 200)
        for i, (s, c) in enumerate(keys[:12]):
            sel = (d["size"] == s) & (d["n_ctx"] == c)
            color = f"C{i % 10}"
            label = (f"{self.size}={s:.3g}, " if self.uses_size else "") + f"n_ctx={c:.0f}"
            ax.plot(d["n"][sel], d["P"][sel], "o", color=color, alpha=0.6, label=label)
            X = self._design(np.full_like(grid, s), grid, np.full_like(grid, c))
            ax.plot(grid, self._model(X, *self.x), "-", color=color)
            rows = {"n": grid, "n_ctx": np.full_like(grid, c)}
            if self.uses_size:
                rows[str(self.size)] = np.full_like(grid, s)
            band = self.predict(pd.DataFrame(rows), ci=0.95)
            ax.fill_between(grid, band["ci_low"], band["ci_high"], color=color, alpha=0.15, lw=0)
            ax.axvline(c, color=color, ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("prompt length n (tokens)")
        ax.set_ylabel("score P")
        ax.legend(fontsize="small")
        return ax


@register_family("context")
class ContextLaw(_ContextBase):
    """Montgomery et al.'s context-aware law over models (compute or size) and prompt
    lengths; see the module docstring."""

    required_columns = ("C", "n", "n_ctx", "P")
    description = (
        "context-aware law [1-e^{-A(C/Cc)^α}]·[1-e^{-B(n/nc)^β}]·pen(n, n_ctx), pluggable penalty"
    )
    uses_size = True
    core_names = ("A", "alpha", "B", "beta")

    @classmethod
    def from_store(
        cls, path: Any, metric: str | None = None, task: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """A context sweep from a results store: one row per (model, precision, context
        length) cell with ``C`` (training FLOPs), ``N`` (parameters), ``n`` (the cell's
        context length in tokens), ``n_ctx`` (the model's training context) and ``P`` (the
        mean score)."""
        return _context_table(path, metric, task)


@register_family("context_only")
class ContextOnlyLaw(_ContextBase):
    """The context-only variant for one model: ``K·[1 − e^{−B(n/n_c)^β}]·pen(n, n_ctx)``."""

    required_columns = ("n", "n_ctx", "P")
    description = "context-only law K·[1-e^{-B(n/nc)^β}]·pen(n, n_ctx) for one model"
    uses_size = False
    core_names = ("K", "B", "beta")

    @classmethod
    def from_store(
        cls, path: Any, metric: str | None = None, task: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """As :meth:`ContextLaw.from_store` (filter to one model before fitting)."""
        return _context_table(path, metric, task)


def _context_table(path: Any, metric: str | None, task: str | None) -> pd.DataFrame:
    from ..data import table_from_store

    t = table_from_store(path, metric=metric, task=task)
    t = t[t["context_length"].notna()]
    if t.empty:
        raise InvalidInputError(
            "context: the store has no records with a context length (run context sweeps)"
        )
    return t.rename(
        columns={
            "training_flops": "C",
            "n_params": "N",
            "context_length": "n",
            "model_context_length": "n_ctx",
            "score": "P",
        }
    )
