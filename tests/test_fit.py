"""Tests for capscale.fit: the native Levenberg–Marquardt solver through the Python API.

Every check compares with an independent reference: ``scipy.optimize`` (same problem, same
loss, same bounds), NumPy (covariance, information criteria, robust costs written out from
their formulas), NIST certified values, or numbers worked out by hand.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.optimize as so
from numpy.testing import assert_allclose, assert_array_equal

from capscale.errors import CapscaleWarning, ConvergenceWarning, InestimableWarning
from capscale.fit import (
    FitResult,
    bootstrap_fit,
    bootstrap_indices,
    curve_fit,
    fit_many,
    least_squares,
    multi_start,
)
from capscale.laws import get_law
from conftest import lre

#: SciPy run to the limit of double precision (capscale's default tolerances are 1e-15).
TIGHT = {"ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15}


def assert_cov_close(cov, ref, rtol=1e-5):
    """Covariances agree to ``rtol`` relative to ``sqrt(ref_ii · ref_jj)`` (near-zero
    off-diagonal entries are sums of cancelling terms; their scale is the correlation's)."""
    cov, ref = np.asarray(cov), np.asarray(ref)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.all(np.abs(cov - ref) <= rtol * scale), np.max(np.abs(cov - ref) / scale)


def fit_recording(fn, *args, **kwargs):
    """Call ``fn`` and return ``(result, warning categories)`` (every capscale warning kept)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CapscaleWarning)
        result = fn(*args, **kwargs)
    return result, {w.category for w in caught}


# -- models with analytic Jacobians (shape (m, n)) -------------------------------------------


def exp_decay(x, a, k, c):
    with np.errstate(over="ignore", invalid="ignore"):
        return a * np.exp(-k * x) + c


def exp_decay_jac(x, a, k, c):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-k * x)
        return np.stack([e, -a * x * e, np.ones_like(x)], axis=-1)


def gauss_peak(x, amp, mu, s, c):
    return amp * np.exp(-((x - mu) ** 2) / (2 * s**2)) + c


def gauss_peak_jac(x, amp, mu, s, c):
    g = np.exp(-((x - mu) ** 2) / (2 * s**2))
    return np.stack(
        [g, amp * g * (x - mu) / s**2, amp * g * (x - mu) ** 2 / s**3, np.ones_like(x)], axis=-1
    )


def rational(x, a, b, c):
    return (a + b * x) / (1 + c * x)


def rational_jac(x, a, b, c):
    d = 1 + c * x
    return np.stack([1 / d, x / d, -(a + b * x) * x / d**2], axis=-1)


def _data(model, x, p_true, noise, seed):
    rng = np.random.default_rng(seed)
    return x, model(x, *p_true) + noise * rng.standard_normal(x.size)


MODELS = {
    "exp_decay": (
        exp_decay,
        exp_decay_jac,
        *_data(exp_decay, np.linspace(0, 4, 40), (2.5, 1.3, 0.5), 0.05, 0),
        (1.0, 1.0, 0.0),
    ),
    "gauss_peak": (
        gauss_peak,
        gauss_peak_jac,
        *_data(gauss_peak, np.linspace(-5, 5, 60), (3.0, 0.5, 1.2, 0.2), 0.05, 1),
        (2.0, 0.0, 1.0, 0.0),
    ),
    "rational": (
        rational,
        rational_jac,
        *_data(rational, np.linspace(0, 5, 30), (1.0, 2.0, 0.5), 0.02, 2),
        (1.0, 1.0, 1.0),
    ),
}


SPL = get_law("saturating_power_law")
SPL_X = np.logspace(7, 10, 12)
SPL_Y = SPL.func(SPL_X, 406.4, 0.34, 1.69) * (
    1 + 0.01 * np.random.default_rng(5).standard_normal(12)
)


def _residuals(name):
    f, jf, x, y, p0 = MODELS[name]

    def fun(p):
        return f(x, *p) - y

    def jac(p):
        return jf(x, *p)

    return fun, jac, np.array(p0)


# == 1. parity with SciPy =====================================================================


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("jac", ["analytic", "2-point", "3-point", None])
@pytest.mark.parametrize("method", ["lm", "trf"])
def test_least_squares_matches_scipy(name, jac, method):
    fun, jfun, p0 = _residuals(name)
    ours = least_squares(fun, p0, jac=jfun if jac == "analytic" else jac)
    theirs = so.least_squares(
        fun,
        p0,
        jac=jfun if jac == "analytic" else (jac or "2-point"),
        method=method,
        max_nfev=10_000,
        **TIGHT,
    )
    assert theirs.success and ours.success, (ours.message, theirs.message)
    assert 1 <= ours.status <= 4
    assert_allclose(ours.x, theirs.x, rtol=1e-7, atol=1e-12)
    assert_allclose(ours.cost, theirs.cost, rtol=1e-10)
    assert_allclose(ours.fun, theirs.fun, rtol=1e-6, atol=1e-9)
    # The returned Jacobian is the analytic one at the solution (to FD accuracy).
    assert_allclose(ours.jac, jfun(ours.x), rtol=1e-5, atol=1e-7)


def test_least_squares_passes_args_and_names_parameters():
    f, _, x, y, p0 = MODELS["exp_decay"]
    seen = []

    def fun(p, xx, yy, tag):
        seen.append(tag)
        return f(xx, *p) - yy

    ours = least_squares(fun, p0, args=(x, y, "tag"), param_names=("a", "k", "c"))
    theirs = so.least_squares(fun, p0, args=(x, y, "tag"), method="lm", **TIGHT)
    assert set(seen) == {"tag"}
    assert_allclose(ours.x, theirs.x, rtol=1e-7)
    assert list(ours.params) == ["a", "k", "c"]
    assert ours.params["k"] == ours.x[1]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("analytic", [True, False])
@pytest.mark.parametrize("sigma_mode", ["none", "relative", "absolute"])
def test_curve_fit_matches_scipy(name, analytic, sigma_mode):
    f, jf, x, y, p0 = MODELS[name]
    sigma = None if sigma_mode == "none" else 0.05 * (1 + 0.3 * np.abs(np.sin(3 * x)))
    absolute = sigma_mode == "absolute"
    res = curve_fit(
        f, x, y, p0=p0, sigma=sigma, absolute_sigma=absolute, jac=jf if analytic else None
    )
    popt, pcov = so.curve_fit(
        f,
        x,
        y,
        p0=p0,
        sigma=sigma,
        absolute_sigma=absolute,
        jac=jf if analytic else None,
        method="lm",
        maxfev=10_000,
        **TIGHT,
    )
    assert res.success, res.message
    assert_allclose(res.x, popt, rtol=1e-7, atol=1e-12)
    assert_cov_close(res.cov, pcov)
    w = 1.0 if sigma is None else sigma
    scipy_cost = 0.5 * np.sum(((f(x, *popt) - y) / w) ** 2)
    assert_allclose(res.cost, scipy_cost, rtol=1e-10)
    # ``fun`` holds the weighted residuals (f - y) / sigma at the solution.
    assert_allclose(res.fun, (f(x, *res.x) - y) / w, rtol=1e-12, atol=1e-14)


def test_curve_fit_unpacks_like_scipy():
    f, jf, x, y, p0 = MODELS["gauss_peak"]
    res = curve_fit(f, x, y, p0=p0, jac=jf)
    popt, pcov = curve_fit(f, x, y, p0=p0, jac=jf)
    assert isinstance(res, FitResult)
    assert_array_equal(popt, res.x)
    assert_array_equal(pcov, res.cov)
    assert popt.shape == (4,) and pcov.shape == (4, 4)


def test_curve_fit_default_p0_is_ones_like_scipy():
    f, jf, x, y, _ = MODELS["rational"]
    ours = curve_fit(f, x, y, jac=jf)
    popt, _ = so.curve_fit(f, x, y, jac=jf, **TIGHT)
    assert_allclose(ours.x, popt, rtol=1e-7)


def test_absolute_sigma_semantics():
    """Hand relations: relative covariance = absolute × redchi; rescaling sigma by 10 leaves
    the relative covariance alone and multiplies the absolute one by 100."""
    f, jf, x, y, p0 = MODELS["exp_decay"]
    sigma = np.full(x.size, 0.05)
    rel = curve_fit(f, x, y, p0=p0, sigma=sigma, jac=jf)
    ab = curve_fit(f, x, y, p0=p0, sigma=sigma, jac=jf, absolute_sigma=True)
    rel10 = curve_fit(f, x, y, p0=p0, sigma=10 * sigma, jac=jf)
    ab10 = curve_fit(f, x, y, p0=p0, sigma=10 * sigma, jac=jf, absolute_sigma=True)
    assert_allclose(ab.x, rel.x, rtol=1e-12)
    assert_allclose(rel.cov, ab.cov * rel.redchi, rtol=1e-9)
    assert_allclose(rel10.cov, rel.cov, rtol=1e-8)
    assert_allclose(ab10.cov, 100 * ab.cov, rtol=1e-8)
    # Absolute covariance is (JᵀJ)⁻¹ of the weighted Jacobian, computed here with NumPy.
    jw = jf(x, *ab.x) / sigma[:, None]
    assert_allclose(ab.cov, np.linalg.inv(jw.T @ jw), rtol=1e-8)


@pytest.mark.parametrize("name", list(MODELS))
def test_covariance_formula(name):
    """cov = (JᵀJ)⁻¹ · 2·cost / (m − n), J the analytic Jacobian at the solution (NumPy)."""
    fun, jfun, p0 = _residuals(name)
    res = least_squares(fun, p0)
    j = jfun(res.x)
    m, n = j.shape
    want = np.linalg.inv(j.T @ j) * 2 * res.cost / (m - n)
    assert_allclose(res.cov, want, rtol=1e-6)
    assert_allclose(res.stderr, np.sqrt(np.diag(want)), rtol=1e-6)


# == 2. robust losses =========================================================================

_ROBUST_X = np.linspace(0, 5, 60)


def _outlier_data():
    rng = np.random.default_rng(1)
    y = exp_decay(_ROBUST_X, 3.0, 0.8, 0.4) + 0.02 * rng.standard_normal(_ROBUST_X.size)
    out = rng.choice(_ROBUST_X.size, 8, replace=False)
    y[out] += rng.choice([-1, 1], 8) * rng.uniform(1, 3, 8)
    return y


_ROBUST_Y = _outlier_data()
ROBUST_TRUE = np.array([3.0, 0.8, 0.4])


def _robust_fun(p):
    return exp_decay(_ROBUST_X, *p) - _ROBUST_Y


def _robust_jac(p):
    return exp_decay_jac(_ROBUST_X, *p)


def rho(loss, z):
    """SciPy's loss functions ρ(z) of z = (r/C)², written out (hand formulas)."""
    with np.errstate(over="ignore"):
        if loss == "linear":
            return z
        if loss == "huber":
            return np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
        if loss == "soft_l1":
            return 2 * (np.sqrt(1 + z) - 1)
        if loss == "cauchy":
            return np.log1p(z)
        if loss == "arctan":
            return np.arctan(z)
    raise AssertionError(loss)


def robust_cost(loss, f_scale, r):
    return 0.5 * f_scale**2 * float(np.sum(rho(loss, (r / f_scale) ** 2)))


ROBUST_LOSSES = ["huber", "soft_l1", "cauchy", "arctan"]


@pytest.mark.parametrize("loss", ROBUST_LOSSES)
@pytest.mark.parametrize("f_scale", [0.05, 0.3])
@pytest.mark.parametrize("analytic", [True, False])
def test_robust_loss_matches_scipy_trf(loss, f_scale, analytic):
    # (From (2, 1, 0) SciPy's trf stops in a worse local minimum of arctan, f_scale 0.05.)
    x0 = np.array([2.5, 1.0, 0.3])
    jac = _robust_jac if analytic else None
    ours = least_squares(_robust_fun, x0, jac=jac, loss=loss, f_scale=f_scale)
    theirs = so.least_squares(
        _robust_fun,
        x0,
        jac=jac or "2-point",
        method="trf",
        loss=loss,
        f_scale=f_scale,
        max_nfev=10_000,
        **TIGHT,
    )
    assert ours.success and theirs.success, ours.message
    assert_allclose(ours.x, theirs.x, rtol=1e-7)
    # SciPy's cost convention ½·C²·Σρ((r/C)²), at both solutions.
    assert_allclose(ours.cost, theirs.cost, rtol=1e-10)
    assert_allclose(ours.cost, robust_cost(loss, f_scale, ours.fun), rtol=1e-12)
    # fun is the raw residual vector (before the loss), chisqr its plain sum of squares.
    assert_allclose(ours.fun, _robust_fun(ours.x), rtol=1e-12, atol=1e-15)
    assert ours.chisqr == pytest.approx(float(ours.fun @ ours.fun), rel=1e-14)


@pytest.mark.parametrize("loss", ROBUST_LOSSES)
def test_robust_fit_resists_outliers(loss):
    x0 = np.array([2.0, 1.0, 0.0])
    robust = least_squares(_robust_fun, x0, jac=_robust_jac, loss=loss, f_scale=0.05)
    linear = least_squares(_robust_fun, x0, jac=_robust_jac)
    assert np.max(np.abs(robust.x / ROBUST_TRUE - 1)) < 0.05
    assert np.max(np.abs(linear.x / ROBUST_TRUE - 1)) > 0.2


@pytest.mark.parametrize("loss", ROBUST_LOSSES)
@pytest.mark.parametrize("f_scale", [0.05, 0.2])
def test_robust_runaway_never_reports_false_success(loss, f_scale):
    """From (1, 1, 0) a bounded loss can send k far negative, where exp(-k·x) overflows the
    scaled residuals. Whatever happens, a fit flagged as successful must be a real minimum:
    finite Jacobian, a cost that is the robust cost of its residuals and no worse than x0's,
    and SciPy's optimum (which SciPy's trf reaches from this start)."""
    x0 = np.array([1.0, 1.0, 0.0])
    ours, _ = fit_recording(
        least_squares, _robust_fun, x0, jac=_robust_jac, loss=loss, f_scale=f_scale
    )
    if not ours.success:
        assert ours.status <= 0
        return
    theirs = so.least_squares(
        _robust_fun,
        x0,
        jac=_robust_jac,
        method="trf",
        loss=loss,
        f_scale=f_scale,
        max_nfev=10_000,
        **TIGHT,
    )
    assert np.all(np.isfinite(ours.jac)), f"success with a non-finite Jacobian at {ours.x}"
    assert ours.cost <= robust_cost(loss, f_scale, _robust_fun(x0))
    assert ours.cost == pytest.approx(robust_cost(loss, f_scale, ours.fun), rel=1e-10)
    assert_allclose(ours.x, theirs.x, rtol=1e-6)


# Hand-computed costs ½·ρ(r²) (C = 1) of a residual of 1e160 (its square overflows a double).
_HUGE = 1e160
_HUGE_COST = {
    "huber": 0.5 * (2 * _HUGE - 1),
    "soft_l1": _HUGE - 1,
    "cauchy": math.log(_HUGE),  # ½·ln(1 + 1e320) = ln(1e160)
    "arctan": math.pi / 4,  # ½·arctan(inf)
}


@pytest.mark.parametrize("loss", ROBUST_LOSSES)
def test_robust_cost_of_huge_residual(loss):
    """A residual whose square overflows still has a finite robust cost; the fit must find
    x = 1 for the other residual and report that cost."""

    def fun(p):
        return np.array([p[0] - 1.0, _HUGE])

    with np.errstate(over="ignore"):  # chisqr = Σ fun² is inf here, legitimately
        res, _ = fit_recording(least_squares, fun, [0.0], loss=loss)
    assert res.success, res.message
    assert res.x[0] == pytest.approx(1.0, abs=1e-8)
    assert res.cost == pytest.approx(_HUGE_COST[loss], rel=1e-12)


def test_linear_loss_ignores_f_scale():
    fun, jfun, p0 = _residuals("exp_decay")
    a = least_squares(fun, p0, jac=jfun)
    b = least_squares(fun, p0, jac=jfun, f_scale=0.01)
    assert_array_equal(a.x, b.x)
    assert a.cost == b.cost == pytest.approx(0.5 * float(a.fun @ a.fun), rel=1e-14)


# == 3. bounds ================================================================================


@pytest.mark.parametrize("analytic", [True, False])
def test_bounds_active_at_solution_match_scipy(analytic):
    f, jf, x, y, p0 = MODELS["exp_decay"]
    free = curve_fit(f, x, y, p0=p0, jac=jf)
    lower, upper = [-np.inf, -np.inf, 0.6], [np.inf, 1.0, np.inf]
    # The unconstrained optimum violates both bounds.
    assert free.x[1] > upper[1] and free.x[2] < lower[2]
    jac = jf if analytic else None
    res = curve_fit(
        f, x, y, p0=[1.0, 0.5, 1.0], bounds=(lower, upper), jac=jac, param_names=("a", "k", "c")
    )
    popt, pcov = so.curve_fit(
        f,
        x,
        y,
        p0=[1.0, 0.5, 1.0],
        bounds=(lower, upper),
        jac=jac or "3-point",
        method="trf",
        **TIGHT,
    )
    assert res.success, res.message
    assert res.x[1] == 1.0 and res.x[2] == 0.6
    assert res.active_bounds == ("k", "c")
    assert_allclose(res.x, popt, rtol=1e-7)
    assert_allclose(res.cost, 0.5 * np.sum((f(x, *popt) - y) ** 2), rtol=1e-10)
    assert_cov_close(res.cov, pcov)
    assert "(at bound)" in res.summary()


def test_least_squares_bounds_match_scipy_trf():
    fun, jfun, _ = _residuals("gauss_peak")
    lb, ub = np.array([0.0, -1.0, 0.1, 0.25]), np.array([10.0, 1.0, 5.0, 1.0])
    x0 = np.array([2.0, 0.0, 1.0, 0.5])
    ours = least_squares(fun, x0, jac=jfun, bounds=(lb, ub))
    theirs = so.least_squares(fun, x0, jac=jfun, bounds=(lb, ub), method="trf", **TIGHT)
    assert ours.success
    assert ours.x[3] == 0.25 and ours.params["p3"] == 0.25
    assert ours.active_bounds == ("p3",)
    assert_allclose(ours.x, theirs.x, rtol=1e-7)
    assert_allclose(ours.cost, theirs.cost, rtol=1e-10)


@pytest.mark.parametrize("analytic", [True, False])
def test_start_exactly_on_bound(analytic):
    f, jf, x, y, _ = MODELS["exp_decay"]
    jac = jf if analytic else None
    free = curve_fit(f, x, y, p0=[1.0, 1.0, 0.0], jac=jac)
    # k and c start on their lower bounds, but the optimum is interior.
    res = curve_fit(f, x, y, p0=[1.0, 0.0, 0.0], bounds=([0, 0, 0], [10, 10, 10]), jac=jac)
    assert res.success and res.active_bounds == ()
    assert_allclose(res.x, free.x, rtol=1e-8)
    # Starting on the bound where the optimum sits.
    lower, upper = [-np.inf, -np.inf, 0.6], [np.inf, 1.0, np.inf]
    on = curve_fit(f, x, y, p0=[1.0, 1.0, 0.6], bounds=(lower, upper), jac=jac)
    popt, _ = so.curve_fit(
        f, x, y, p0=[1.0, 0.5, 1.0], bounds=(lower, upper), jac=jf, method="trf", **TIGHT
    )
    assert on.success and on.x[1] == 1.0 and on.x[2] == 0.6
    assert_allclose(on.x, popt, rtol=1e-7)


def test_inactive_bounds_change_nothing():
    fun, jfun, p0 = _residuals("rational")
    free = least_squares(fun, p0, jac=jfun)
    # Bounds never touched on the way (the free path stays within ±200) change nothing.
    boxed = least_squares(fun, p0, jac=jfun, bounds=([-1e6] * 3, [1e6] * 3))
    half = least_squares(fun, p0, jac=jfun, bounds=(-100.0, np.inf))
    for res in (boxed, half):
        assert res.success and res.active_bounds == ()
        assert_allclose(res.x, free.x, rtol=1e-12)
        assert_allclose(res.cov, free.cov, rtol=1e-9)
    # A box the iteration runs into (b and c reach 10 on the way) but the optimum is inside.
    tight = least_squares(fun, p0, jac=jfun, bounds=([-10] * 3, [10] * 3))
    assert tight.success and tight.active_bounds == ()
    assert_allclose(tight.x, free.x, rtol=1e-7)
    assert tight.cost == pytest.approx(free.cost, rel=1e-12)


# == 4. built-in laws =========================================================================

LAW_CASES = {
    "power_law": (np.logspace(0, 3, 30), [5.0, 0.4], 0.01),
    "saturating_power_law": (np.logspace(7, 10, 20), [406.4, 0.34, 1.69], 0.003),
    "logistic4": (np.linspace(-5, 5, 40), [0.8, 1.5, 0.3, 0.1], 0.01),
    "exponential": (np.linspace(0, 3, 25), [2.0, 0.7], 0.01),
    "log_linear": (np.logspace(0, 3, 25), [1.0, 0.3], 0.01),
    "chinchilla": (
        np.vstack(
            [g.ravel() for g in np.meshgrid(np.logspace(7.5, 10, 8), np.logspace(9, 11.5, 8))]
        ),
        [1.8, 482.0, 2085.0, 0.35, 0.37],
        0.002,
    ),
}


@pytest.mark.parametrize("name", list(LAW_CASES))
def test_law_recovers_parameters(name):
    x, p_true, noise = LAW_CASES[name]
    law = get_law(name)
    rng = np.random.default_rng(3)
    y = law.func(x, *p_true) * (1 + noise * rng.standard_normal(x.shape[-1]))
    by_name = curve_fit(name, x, y)
    by_class = curve_fit(law, x, y)
    assert by_name.success, by_name.message
    assert_array_equal(by_name.x, by_class.x)
    assert by_name.law == by_class.law == name
    assert tuple(by_name.params) == law.param_names == by_name.param_names
    assert np.all(np.isfinite(by_name.stderr))
    assert np.all(np.abs(by_name.x - p_true) <= 5 * by_name.stderr), (by_name.x, p_true)
    assert_allclose(by_name.predict(x), law.func(x, *by_name.x), rtol=1e-14)
    # SciPy on the law's own NumPy model and Jacobian, from the same start.
    p0 = law.guess(x, y)
    popt, pcov = so.curve_fit(law.func, x, y, p0=p0, jac=law.jac, maxfev=10_000, **TIGHT)
    assert_allclose(by_name.x, popt, rtol=1e-7)
    assert_cov_close(by_name.cov, pcov)
    # Explicit p0 from the same guess gives the same fit.
    assert_array_equal(curve_fit(name, x, y, p0=p0).x, by_name.x)


def test_law_fit_with_sigma_matches_callable_fit():
    x, p_true, _ = LAW_CASES["saturating_power_law"]
    law = get_law("saturating_power_law")
    rng = np.random.default_rng(4)
    sigma = 0.01 * law.func(x, *p_true)
    y = law.func(x, *p_true) + sigma * rng.standard_normal(x.size)
    native = curve_fit(law, x, y, sigma=sigma, absolute_sigma=True)
    python = curve_fit(
        law.func,
        x,
        y,
        p0=law.guess(x, y),
        sigma=sigma,
        absolute_sigma=True,
        jac=law.jac,
        bounds=law.default_bounds,
    )
    assert native.success and python.success
    assert_allclose(native.x, python.x, rtol=1e-9)
    assert_allclose(native.cov, python.cov, rtol=1e-7)
    assert native.predict(x[:3]).shape == (3,)


# == 5. FitResult =============================================================================


def test_fit_result_is_frozen():
    fun, jfun, p0 = _residuals("exp_decay")
    res = least_squares(fun, p0, jac=jfun)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.cost = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.x = np.zeros(3)  # type: ignore[misc]
    with pytest.raises(TypeError, match="no model"):
        res.predict(np.ones(3))


def test_fit_result_statistics():
    f, jf, x, y, p0 = MODELS["gauss_peak"]
    sigma = np.full(x.size, 0.05)
    res = curve_fit(f, x, y, p0=p0, sigma=sigma, jac=jf, param_names=("amp", "mu", "s", "c"))
    m, n = x.size, 4
    r = (f(x, *res.x) - y) / sigma
    chisqr = float(np.sum(r**2))
    assert res.nobs == m
    assert res.chisqr == pytest.approx(float(res.fun @ res.fun), rel=1e-14)
    assert res.chisqr == pytest.approx(chisqr, rel=1e-10)
    assert res.cost == pytest.approx(0.5 * chisqr, rel=1e-10)
    assert res.redchi == pytest.approx(chisqr / (m - n), rel=1e-10)
    # lmfit's definitions.
    assert res.aic == pytest.approx(m * math.log(chisqr / m) + 2 * n, rel=1e-10)
    assert res.bic == pytest.approx(m * math.log(chisqr / m) + math.log(m) * n, rel=1e-10)
    assert_array_equal(res.stderr, np.sqrt(np.diag(res.cov)))
    assert res.params == dict(zip(("amp", "mu", "s", "c"), res.x.tolist(), strict=True))
    assert res.success and 1 <= res.status <= 4 and res.nfev >= 1 and res.njev >= 1
    assert res.optimality < 1e-6 * max(1.0, res.cost)
    assert res.rank == n and res.inestimable == ()
    text = res.summary()
    for name in res.params:
        assert name in text
    assert f"status {res.status}" in text and "converged" in text
    assert str(res) == text


# == 6. covariance and rank ===================================================================


def test_collinear_parameters_are_inestimable():
    x = np.linspace(0, 1, 10)
    y = 3 * x + 0.1 + 0.01 * np.random.default_rng(0).standard_normal(10)

    def f(x, a, b, c):
        return a * b * x + c

    with pytest.warns(InestimableWarning, match="cannot be estimated"):
        res = curve_fit(f, x, y, p0=[1.0, 2.0, 0.0], param_names=("a", "b", "c"))
    assert res.success
    assert res.rank == 2
    assert len(res.inestimable) == 1 and set(res.inestimable) <= {"a", "b"}
    for name in res.inestimable:
        assert math.isinf(res.stderr[res.param_names.index(name)])
    assert math.isfinite(res.stderr[2])
    # The estimable combination a·b and c equal the straight-line fit (NumPy).
    slope, icept = np.polyfit(x, y, 1)
    assert res.x[0] * res.x[1] == pytest.approx(slope, rel=1e-9)
    assert res.x[2] == pytest.approx(icept, rel=1e-9)


def test_no_degrees_of_freedom():
    x, y = np.array([0.0, 1.0]), np.array([1.0, 3.0])

    def line(x, a, b):
        return a + b * x

    with pytest.warns(InestimableWarning, match="no degrees of freedom"):
        res = curve_fit(line, x, y, p0=[0.0, 0.0])
    assert res.success
    assert_allclose(res.x, [1.0, 2.0], rtol=1e-12)
    assert np.all(np.isinf(res.cov)) and math.isinf(res.redchi)
    # Known sigma: cov = (JᵀJ)⁻¹ with J = [[1, 0], [1, 1]] / 0.5 (by hand), no warning.
    res = curve_fit(line, x, y, p0=[0.0, 0.0], sigma=[0.5, 0.5], absolute_sigma=True)
    assert_allclose(res.cov, [[0.25, -0.25], [-0.25, 0.5]], rtol=1e-9)


# == 7. honest termination ====================================================================


def test_max_nfev_stops_without_success():
    fun, jfun, _ = _residuals("gauss_peak")
    with pytest.warns(ConvergenceWarning, match="status 0"):
        res = least_squares(fun, [1.0, 3.0, 0.3, 1.0], jac=jfun, max_nfev=3)
    assert res.success is False
    assert res.status == 0
    assert res.nfev <= 3
    assert "NOT CONVERGED" in res.summary()


def _boxbod(x, b1, b2):
    with np.errstate(over="ignore", invalid="ignore"):
        return b1 * (1 - np.exp(-b2 * x))


def _boxbod_jac(x, b1, b2):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-b2 * x)
        return np.stack([1 - e, b1 * x * e], axis=-1)


@pytest.mark.parametrize("jac", [None, "analytic"])
@pytest.mark.parametrize("geodesic", [False, True])
def test_boxbod_start1_never_false_success(nist, jac, geodesic):
    p = nist.load("BoxBOD")
    res, caught = fit_recording(
        curve_fit,
        _boxbod,
        p.x,
        p.y,
        p0=p.start1,
        jac=_boxbod_jac if jac else None,
        geodesic=geodesic,
    )
    if res.success:
        assert lre(res.x, p.certified) >= 4, res.x
        assert res.chisqr == pytest.approx(p.certified_rss, rel=1e-6)
    else:
        assert res.status <= 0
        assert ConvergenceWarning in caught


def test_boxbod_start2_certified(nist):
    p = nist.load("BoxBOD")
    res = curve_fit(_boxbod, p.x, p.y, p0=p.start2)
    assert res.success
    assert lre(res.x, p.certified) >= 6
    assert lre(res.stderr, p.certified_sd) >= 4
    assert res.chisqr == pytest.approx(p.certified_rss, rel=1e-9)


def test_saddle_on_bound_is_not_success():
    """Saturating power law with its default bounds (a >= 0, 0 <= b <= 10) from (1000, 0.5, 0):
    SciPy's trf reaches the optimum. A fit that stops where a = 0 (the b column is then
    identically zero and a duplicates c) sits on a saddle with ~800× the optimal cost and
    must not be reported as a success."""
    start = [1000.0, 0.5, 0.0]
    popt, _ = so.curve_fit(
        SPL.func, SPL_X, SPL_Y, p0=start, jac=SPL.jac, bounds=SPL.default_bounds, **TIGHT
    )
    best = 0.5 * float(np.sum((SPL.func(SPL_X, *popt) - SPL_Y) ** 2))
    res, caught = fit_recording(curve_fit, SPL, SPL_X, SPL_Y, p0=start)
    if res.success:
        assert res.cost == pytest.approx(best, rel=1e-8), (res.x, res.message, popt)
    else:
        assert ConvergenceWarning in caught


def test_non_finite_region_is_backed_out_of():
    """From a = 100 the first Gauss–Newton step lands at a < 0 where log(a) is NaN; the
    solver must reject it and converge to the closed form a = exp(Σxy / Σx²)."""
    x = np.linspace(0.1, 2, 20)
    y = np.log(2.0) * x + 0.01 * np.random.default_rng(0).standard_normal(20)

    def fun(p):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(p[0]) * x - y

    want = math.exp(float(x @ y) / float(x @ x))
    for jac in (None, lambda p: (x / p[0])[:, None]):
        for x0 in (100.0, 1e4):
            res = least_squares(fun, [x0], jac=jac)
            assert res.success, res.message
            assert res.x[0] == pytest.approx(want, rel=1e-10)


def test_fixed_x_scale_reaches_the_same_optimum():
    fun, jfun, p0 = _residuals("gauss_peak")
    default = least_squares(fun, p0, jac=jfun)
    fixed = least_squares(fun, p0, jac=jfun, x_scale=[1.0, 0.1, 0.1, 0.1])
    theirs = so.least_squares(fun, p0, jac=jfun, x_scale=[1.0, 0.1, 0.1, 0.1], **TIGHT)
    assert fixed.success
    assert_allclose(fixed.x, default.x, rtol=1e-7)
    assert_allclose(fixed.x, theirs.x, rtol=1e-7)


def test_zero_residuals():
    x = np.linspace(0, 1, 10)
    res = curve_fit(lambda x, a, b: a * np.exp(b * x), x, 2 * np.exp(0.5 * x), p0=[1.0, 1.0])
    assert res.success
    assert res.cost == 0.0 and res.chisqr == 0.0
    assert_allclose(res.x, [2.0, 0.5], rtol=1e-13)
    assert res.aic == -math.inf and res.bic == -math.inf


# == 8. batch fits ============================================================================


def test_fit_many_equals_one_at_a_time():
    rng = np.random.default_rng(6)
    xs = [np.logspace(7, 10, k) for k in (8, 12, 15, 30)]
    ys = [SPL.func(x, 400.0, 0.3, 1.7) * (1 + 0.01 * rng.standard_normal(x.size)) for x in xs]
    batch = fit_many(SPL, xs, ys)
    assert batch.x.shape == (4, 3) and batch.param_names == SPL.param_names
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        one = curve_fit(SPL, x, y)
        assert np.array_equal(batch.x[k], one.x)
        assert np.array_equal(batch.stderr[k], one.stderr)
        assert batch.cost[k] == one.cost
        assert batch.status[k] == one.status and batch.nfev[k] == one.nfev
    assert batch.success.all()
    cols = batch.as_dict()
    assert_array_equal(cols["b"], batch.x[:, 1])
    # A shared explicit start broadcasts to every dataset.
    start = [300.0, 0.3, 1.5]
    batch = fit_many("saturating_power_law", xs, ys, p0=start)
    for k in range(4):
        assert np.array_equal(batch.x[k], curve_fit(SPL, xs[k], ys[k], p0=start).x)


def test_bootstrap_rows_equal_refits_of_resamples():
    full = curve_fit(SPL, SPL_X, SPL_Y)
    boot = bootstrap_fit(SPL, SPL_X, SPL_Y, n_resamples=200, seed=11)
    assert boot.full is not None and np.array_equal(boot.full.x, full.x)
    idx = bootstrap_indices(SPL_X.size, 200, 11)
    assert idx.shape == (200, SPL_X.size)
    assert idx.min() >= 0 and idx.max() < SPL_X.size
    for i in range(0, 200, 7):
        one, _ = fit_recording(curve_fit, SPL, SPL_X[idx[i]], SPL_Y[idx[i]], p0=full.x)
        assert np.array_equal(boot.x[i], one.x), i
        assert boot.cost[i] == one.cost and boot.status[i] == one.status
    # An explicit p0 is used as the start of every refit.
    p0 = np.array([300.0, 0.3, 1.5])
    boot2 = bootstrap_fit(SPL, SPL_X, SPL_Y, p0=p0, n_resamples=20, seed=11)
    assert boot2.full is None
    for i in (0, 19):
        one, _ = fit_recording(curve_fit, SPL, SPL_X[idx[i]], SPL_Y[idx[i]], p0=p0)
        assert np.array_equal(boot2.x[i], one.x)


def test_bootstrap_indices_are_uniform_draws():
    idx = bootstrap_indices(10, 2000, 3)
    counts = np.bincount(idx.ravel(), minlength=10)
    # 20000 draws over 10 points: each count ~ Binomial(20000, 0.1), sd ≈ 42.
    assert np.all(np.abs(counts - 2000) < 250)
    assert_array_equal(bootstrap_indices(10, 5, 3), idx[:5])
    assert not np.array_equal(bootstrap_indices(10, 5, 4), idx[:5])


def test_bootstrap_with_sigma_resamples_sigma_too():
    sigma = 0.01 * SPL_Y
    boot = bootstrap_fit(SPL, SPL_X, SPL_Y, sigma=sigma, n_resamples=12, seed=3)
    assert boot.full is not None
    idx = bootstrap_indices(SPL_X.size, 12, 3)
    for i in (0, 5, 11):
        j = idx[i]
        one, _ = fit_recording(curve_fit, SPL, SPL_X[j], SPL_Y[j], sigma=sigma[j], p0=boot.full.x)
        assert np.array_equal(boot.x[i], one.x)


def test_batch_results_independent_of_thread_count(monkeypatch):
    def run(**kw):
        return bootstrap_fit(SPL, SPL_X, SPL_Y, p0=[400.0, 0.34, 1.7], n_resamples=300, **kw)

    one = run(seed=5, n_threads=1)
    two = run(seed=5, n_threads=2)
    monkeypatch.setenv("CAPSCALE_NUM_THREADS", "1")
    env1 = run(seed=5)
    monkeypatch.setenv("CAPSCALE_NUM_THREADS", "2")
    env2 = run(seed=5)
    for other in (two, env1, env2):
        assert np.array_equal(one.x, other.x, equal_nan=True)
        assert np.array_equal(one.cost, other.cost, equal_nan=True)
        assert np.array_equal(one.status, other.status)
        assert np.array_equal(one.nfev, other.nfev)
    other_seed = run(seed=6, n_threads=2)
    assert not np.array_equal(one.x, other_seed.x)
    xs = [SPL_X] * 6
    ys = [SPL_Y * (1 + 0.01 * k) for k in range(6)]
    assert np.array_equal(
        fit_many(SPL, xs, ys, n_threads=1).x, fit_many(SPL, xs, ys, n_threads=2).x
    )


def test_bootstrap_intervals_are_sane():
    boot = bootstrap_fit(SPL, SPL_X, SPL_Y, n_resamples=400, seed=2)
    full = boot.full
    assert full is not None
    assert boot.failed_fraction < 0.05
    lo, hi = boot.ci(0.95)
    assert np.all(lo < full.x) and np.all(full.x < hi)
    lo50, hi50 = boot.ci(0.5)
    assert np.all(lo <= lo50) and np.all(hi50 <= hi)
    ok = boot.x[boot.success]
    assert_allclose(lo, np.percentile(ok, 2.5, axis=0))
    assert_allclose(boot.std(), np.std(ok, axis=0, ddof=1))
    # The bootstrap spread of the exponent is of the order of its asymptotic stderr.
    ratio = boot.std()[1] / full.stderr[1]
    assert 0.3 < ratio < 3, ratio


def test_multi_start_picks_lowest_converged_cost():
    starts = np.array(
        [[100.0, 0.3, 1.0], [1000.0, 0.5, 0.0], [1.0, 0.1, 5.0], [406.0, 0.34, 1.69], [50, 12, 1]]
    )
    ms, _ = fit_recording(multi_start, SPL, SPL_X, SPL_Y, starts=starts)
    assert ms.x.shape == (5, 3) and np.array_equal(ms.starts, starts)
    cost = np.where(ms.success, ms.cost, np.inf)
    k = int(np.argmin(cost))
    assert ms.best is not None and ms.best.success
    assert np.array_equal(ms.best.x, ms.x[k]) and ms.best.cost == ms.cost[k]
    reference = curve_fit(SPL, SPL_X, SPL_Y, p0=starts[3])
    assert ms.best.cost == pytest.approx(reference.cost, rel=1e-10)
    assert_allclose(ms.best.x, reference.x, rtol=1e-7)
    mask = ms.reached_best()
    assert_array_equal(mask, np.abs(ms.cost - ms.best.cost) <= 1e-6 * ms.best.cost)
    assert mask[k] and mask[3]
    # Starts outside the default bounds (b in [0, 10]) are clipped into them.
    lower, upper = SPL.default_bounds
    for i, start in enumerate(starts):
        one, _ = fit_recording(curve_fit, SPL, SPL_X, SPL_Y, p0=np.clip(start, lower, upper))
        assert np.array_equal(ms.x[i], one.x) and ms.status[i] == one.status


# == 9. geodesic acceleration =================================================================


def _mgh10(x, b1, b2, b3):
    with np.errstate(over="ignore", invalid="ignore"):
        return b1 * np.exp(b2 / (x + b3))


def _mgh10_jac(x, b1, b2, b3):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(b2 / (x + b3))
        return np.stack([e, b1 * e / (x + b3), -b1 * b2 * e / (x + b3) ** 2], axis=-1)


@pytest.mark.parametrize("jac", [None, "analytic"])
def test_geodesic_mgh10_same_optimum(nist, jac):
    p = nist.load("MGH10")
    j = _mgh10_jac if jac else None
    plain = curve_fit(_mgh10, p.x, p.y, p0=p.start2, jac=j)
    geo = curve_fit(_mgh10, p.x, p.y, p0=p.start2, jac=j, geodesic=True)
    assert plain.success and geo.success, geo.message
    assert lre(geo.x, p.certified) >= 6
    assert_allclose(geo.x, plain.x, rtol=1e-7)
    assert geo.cost == pytest.approx(plain.cost, rel=1e-10)


def test_geodesic_rosenbrock():
    def fun(p):
        return np.array([10 * (p[1] - p[0] ** 2), 1 - p[0], 0.0])

    def jac(p):
        return np.array([[-20 * p[0], 10.0], [-1.0, 0.0], [0.0, 0.0]])

    for j in (None, jac):
        res = least_squares(fun, [-1.2, 1.0], jac=j, geodesic=True)
        assert res.success, res.message
        assert_allclose(res.x, [1.0, 1.0], rtol=1e-10)
        assert res.cost == pytest.approx(0.0, abs=1e-25)


# == 10. the GIL ==============================================================================


def test_python_callables_from_two_threads():
    f, _, x, _, p0 = MODELS["exp_decay"]
    rng = np.random.default_rng(9)
    ys = [f(x, 2 + 0.2 * i, 1 + 0.1 * i, 0.5) + 0.01 * rng.standard_normal(x.size) for i in (0, 1)]
    want = [least_squares(lambda p, y=y: f(x, *p) - y, p0).x for y in ys]
    got: dict[int, list[np.ndarray]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def work(i):
        try:
            for _ in range(15):
                got[i].append(least_squares(lambda p: f(x, *p) - ys[i], p0).x)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in (0, 1):
        assert len(got[i]) == 15
        assert all(np.array_equal(v, want[i]) for v in got[i])
    assert not np.allclose(want[0], want[1])


def test_native_batch_releases_the_gil():
    x = np.logspace(7, 10, 200)
    y = SPL.func(x, 406.4, 0.34, 1.69) * (1 + 0.01 * np.random.default_rng(7).standard_normal(200))
    count = 0
    stop = threading.Event()

    def counter():
        nonlocal count
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=counter)
    thread.start()
    try:
        time.sleep(0.05)
        c0, t0 = count, time.perf_counter()
        time.sleep(0.1)
        rate = (count - c0) / (time.perf_counter() - t0)  # increments per second, free
        c0, t0 = count, time.perf_counter()
        bootstrap_fit(SPL, x, y, p0=[400.0, 0.34, 1.7], n_resamples=2000, seed=1, n_threads=1)
        elapsed = time.perf_counter() - t0
        during = count - c0
    finally:
        stop.set()
        thread.join()
    assert elapsed > 0.05, "the native call was too short to tell"
    # Holding the GIL would allow at most a switch interval (5 ms) of counting.
    assert during > 0.2 * rate * elapsed, (during, rate, elapsed)
