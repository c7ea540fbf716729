"""Regression tests for defects found in review: each failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so

from capscale import _native
from capscale.errors import InvalidInputError
from capscale.fit import bootstrap_fit, curve_fit, fit_many, least_squares, multi_start
from capscale.laws import Law, register_law

X = np.linspace(0.0, 3.0, 12)


def test_tiny_nonzero_start_is_not_frozen_by_finite_differences() -> None:
    # A relative step of 1e-14·ε^(1/3) changes no residual; the parameter must still move.
    res = least_squares(lambda p: p[0] * X + p[1] - (2 * X + 3), [1e-14, 1.0])
    assert res.success
    np.testing.assert_allclose(res.x, [2.0, 3.0], rtol=1e-10)


def test_finite_differences_at_a_bound_are_second_order() -> None:
    # Solution on the bound b = 0.5: the FD Jacobian there (one-sided, 3-point) matches the
    # analytic one far better than a first-order difference would (~1e-6).
    y = 2.0 * np.exp(-0.3 * X)

    def f(x, a, b):
        return a * np.exp(-b * x)

    def jac(x, a, b):
        e = np.exp(-b * x)
        return np.column_stack([e, -a * x * e])

    fd = curve_fit(f, X, y, p0=[1.0, 0.7], bounds=([0, 0.5], [10, 2]))
    exact = curve_fit(f, X, y, p0=[1.0, 0.7], bounds=([0, 0.5], [10, 2]), jac=jac)
    assert fd.params["p1"] == 0.5 and fd.active_bounds == ("p1",)
    np.testing.assert_allclose(fd.jac, exact.jac, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fd.stderr, exact.stderr, rtol=1e-7)


@pytest.mark.parametrize(
    ("loss", "f_scale"), [("huber", 0.05), ("soft_l1", 0.05), ("cauchy", 0.05), ("arctan", 0.2)]
)
def test_robust_covariance_matches_scipy(loss: str, f_scale: float) -> None:
    # (arctan is redescending and bounded: with f_scale 0.05 both solvers can stop in
    # different degenerate local minima from this start; 0.2 keeps one basin.)
    rng = np.random.default_rng(4)
    x = np.linspace(0, 4, 40)
    y = 3.0 * np.exp(-0.7 * x) + 0.5 + 0.02 * rng.standard_normal(40)
    y[[5, 17, 30]] += [1.0, -0.8, 1.5]

    def f(x, a, b, c):
        return a * np.exp(-b * x) + c

    ref, ref_cov = so.curve_fit(
        f,
        x,
        y,
        p0=[2.5, 1.0, 0.3],
        method="trf",
        loss=loss,
        f_scale=f_scale,
        ftol=1e-15,
        xtol=1e-15,
        gtol=1e-15,
        max_nfev=10_000,
    )
    ours = curve_fit(f, x, y, p0=[2.5, 1.0, 0.3], loss=loss, f_scale=f_scale)
    np.testing.assert_allclose(ours.x, ref, rtol=1e-7)
    np.testing.assert_allclose(ours.cov, ref_cov, rtol=1e-5)


@pytest.mark.parametrize(
    ("option", "value"), [("factor", 0.0), ("factor", -1.0), ("avmax", 0.0), ("h_fvv", 0.0)]
)
def test_invalid_solver_options_are_rejected(option: str, value: float) -> None:
    opts = _native.SolverOptions(**{option: value})
    with pytest.raises(InvalidInputError, match=f"{option} must be finite and > 0"):
        _native.least_squares(lambda p: p - 1.0, np.array([0.0]), 1, None, (), opts)


def test_bootstrap_rejects_bad_input_up_front() -> None:
    x = np.logspace(7, 10, 12)
    y = 406.4 * x**-0.34 + 1.69
    with pytest.raises(InvalidInputError, match=r"p0\[1\] = 0.3 is outside its bounds"):
        bootstrap_fit(
            "saturating_power_law",
            x,
            y,
            p0=[400, 0.3, 1],
            bounds=(0, [1e4, 0.25, 10]),
            n_resamples=10,
        )
    with pytest.raises(InvalidInputError, match="sigma must be > 0"):
        bootstrap_fit(
            "saturating_power_law", x, y, p0=[400, 0.3, 1], sigma=-np.ones(12), n_resamples=10
        )


def test_keyboard_interrupt_in_fun_propagates() -> None:
    calls = 0

    def fun(p):
        nonlocal calls
        calls += 1
        if calls > 2:
            raise KeyboardInterrupt
        return p - 1.0

    with pytest.raises(KeyboardInterrupt):
        least_squares(fun, [5.0, 5.0])


def test_scipy_argument_conventions() -> None:
    # p0=None with bounds starts inside them; keyword-only parameters are not fit parameters;
    # list xdata becomes an array.
    def g(x, a, b, *, c=1.0):
        return a * x + b * c

    res = curve_fit(g, [0, 1, 2, 3], [1, 3, 5, 7], bounds=([0, 0], [5, 6]))
    np.testing.assert_allclose(res.x, [2.0, 1.0], rtol=1e-10)
    ref, _ = so.curve_fit(g, [0, 1, 2, 3], [1, 3, 5, 7], bounds=([0, 0], [5, 6]))
    np.testing.assert_allclose(res.x, ref, rtol=1e-6)


@register_law("test_quadratic")
class _Quadratic(Law):
    param_names = ("a", "b", "c")
    formula = "y = a + b*x + c*x**2"
    default_bounds = ((-np.inf,) * 3, (np.inf,) * 3)

    @staticmethod
    def func(x, a, b, c):
        x = np.asarray(x, dtype=float)
        return a + b * x + c * x**2

    @staticmethod
    def jac(x, a, b, c):
        x = np.asarray(x, dtype=float)
        return np.column_stack([np.ones_like(x), x, x**2])


def test_user_registered_law_fits_through_every_entry_point() -> None:
    rng = np.random.default_rng(2)
    x = np.linspace(-1, 2, 30)
    y = 0.5 - 1.2 * x + 0.8 * x**2 + 0.01 * rng.standard_normal(30)
    want = np.polyfit(x, y, 2)[::-1]
    single = curve_fit("test_quadratic", x, y)
    assert single.law == "test_quadratic" and single.success
    np.testing.assert_allclose(single.x, want, rtol=1e-9)
    many = fit_many("test_quadratic", [x, x], [y, 2 * y])
    np.testing.assert_allclose(many.x, [want, 2 * want], rtol=1e-9)
    ms = multi_start("test_quadratic", x, y, starts=[[0, 0, 0], [5, 5, 5]])
    np.testing.assert_allclose(ms.best.x, want, rtol=1e-9)
    boot = bootstrap_fit("test_quadratic", x, y, n_resamples=20, seed=3)
    assert boot.success.all()
    idx = np.asarray(_native.bootstrap_indices(30, 20, 3)[7])
    np.testing.assert_allclose(boot.x[7], np.polyfit(x[idx], y[idx], 2)[::-1], rtol=1e-8)


def test_multi_start_accepts_a_scipy_bounds_object() -> None:
    x = np.logspace(7, 10, 12)
    y = 406.4 * x**-0.34 + 1.69
    ms = multi_start(
        "saturating_power_law",
        x,
        y,
        starts=[[100, 0.3, 1], [300, 0.4, 1.5]],
        bounds=so.Bounds([0, 0, 0], [np.inf, 2, np.inf]),
    )
    np.testing.assert_allclose(ms.best.x, [406.4, 0.34, 1.69], rtol=1e-6)
