"""Tests for capscale.laws: values, Jacobians, starting points, registry and input errors.

SciPy is used only as the reference fitter for the ``guess`` tests.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from capscale.errors import (
    CapscaleError,
    InvalidInputError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)
from capscale.laws import (
    Chinchilla,
    ChinchillaLSE,
    Exponential,
    Law,
    Logistic4,
    LogLinear,
    PowerLaw,
    SaturatingPowerLaw,
    base,
    doubling_time,
    get_law,
    hoffmann_grid,
    list_laws,
    register_law,
)

pytestmark = pytest.mark.filterwarnings("error")

ALL_NAMES = [
    "power_law",
    "saturating_power_law",
    "chinchilla",
    "chinchilla_lse",
    "logistic4",
    "exponential",
    "log_linear",
]

_N, _D = np.meshgrid(np.logspace(7, 10, 12), np.logspace(9, 12, 12), indexing="ij")
X_ND = np.stack([_N.ravel(), _D.ravel()])  # (2, 144) grid of model sizes and token counts
CHIN_TRUE = (1.69, 406.4, 410.7, 0.34, 0.28)  # Hoffmann et al.'s published (E, A, B, a, b)


def _lse_true() -> tuple[float, ...]:
    return tuple(float(v) for v in ChinchillaLSE.from_chinchilla(CHIN_TRUE))


# -- values computed by hand --------------------------------------------------------------


def test_power_law_values() -> None:
    np.testing.assert_allclose(PowerLaw.func([1.0, 4.0, 100.0], 2.0, 0.5), [2.0, 1.0, 0.2])
    np.testing.assert_allclose(PowerLaw.func([2.0], 3.0, -2.0), [12.0])


def test_saturating_power_law_values() -> None:
    np.testing.assert_allclose(SaturatingPowerLaw.func([1.0, 100.0], 3.0, 1.0, 0.5), [3.5, 0.53])


def test_chinchilla_values() -> None:
    x = np.array([[100.0, 1.0], [10_000.0, 1.0]])  # columns (N, D) = (100, 1e4) and (1, 1)
    # 1 + 10/100**0.5 + 100/1e4**0.5 = 1 + 1 + 1; and E + A + B at N = D = 1
    np.testing.assert_allclose(Chinchilla.func(x, 1.0, 10.0, 100.0, 0.5, 0.5), [3.0, 111.0])


def test_chinchilla_lse_values() -> None:
    x = np.array([[1.0, 100.0], [1.0, 10_000.0]])
    # N = D = 1, a = b = e = 0: log(1 + 1 + 1)
    np.testing.assert_allclose(ChinchillaLSE.func(x[:, :1], 0.0, 0.0, 0.0, 0.5, 0.5), [math.log(3)])
    # a = log 10, b = log 100, e = 0 at (100, 1e4): log(1 + 1 + 1)
    p = (math.log(10.0), math.log(100.0), 0.0, 0.5, 0.5)
    np.testing.assert_allclose(ChinchillaLSE.func(x[:, 1:], *p), [math.log(3)])


def test_logistic4_values() -> None:
    # c = 2, k = 1, x0 = 0, d = 1: y(0) = 2, y(ln 3) = 2 / (1 + 1/3) + 1 = 2.5
    y = Logistic4.func([0.0, math.log(3.0), -math.log(3.0)], 2.0, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(y, [2.0, 2.5, 1.5])


def test_exponential_values() -> None:
    np.testing.assert_allclose(Exponential.func([0.0, 1.0, 2.0], 3.0, math.log(2.0)), [3, 6, 12])


def test_log_linear_values() -> None:
    y = LogLinear.func([1.0, math.e, math.e**2], 1.0, 2.0)
    np.testing.assert_allclose(y, [1.0, 3.0, 5.0])


def test_doubling_time() -> None:
    # laws.md: ln(2)/0.0073 = 94.95 d, ln(2)/0.007 = 99.02 d
    assert doubling_time(0.0073) == pytest.approx(94.95, abs=0.01)
    assert doubling_time(0.007) == pytest.approx(99.02, abs=0.01)
    np.testing.assert_allclose(doubling_time([math.log(2.0), -math.log(2.0)]), [1.0, -1.0])
    assert doubling_time(0.0) == math.inf


def test_logistic4_no_overflow() -> None:
    x = np.array([-1e6, -1.0, 0.0, 1.0, 1e6])
    y = Logistic4.func(x, 2.0, 1e4, 0.0, 1.0)  # |k (x - x0)| up to 1e10
    np.testing.assert_allclose(y, [1.0, 1.0, 2.0, 3.0, 3.0])
    jac = Logistic4.jac(x, 2.0, 1e4, 0.0, 1.0)
    assert np.isfinite(jac).all()


def test_chinchilla_lse_no_overflow() -> None:
    x = np.array([[1e9], [1e12]])
    y = ChinchillaLSE.func(x, 800.0, 0.0, -800.0, 0.3, 0.3)  # exp(800) overflows float64
    np.testing.assert_allclose(y, 800.0 - 0.3 * math.log(1e9))
    assert np.isfinite(ChinchillaLSE.jac(x, 800.0, 0.0, -800.0, 0.3, 0.3)).all()


# -- Jacobians: complex step ----------------------------------------------------------------

JAC_CASES = [
    (PowerLaw, np.logspace(-1, 4, 9), [(2.0, 0.5), (-3.0, 1.7), (0.2, -0.4)]),
    (
        SaturatingPowerLaw,
        np.logspace(7, 10, 9),
        [(406.4, 0.34, 1.69), (1e3, 1.2, -0.5), (0.5, 0.01, 3.0)],
    ),
    (Chinchilla, X_ND[:, ::13], [CHIN_TRUE, (0.5, 1e4, 10.0, 0.7, 0.1), (2.0, 1.0, 1.0, 0.0, 2.5)]),
    (
        ChinchillaLSE,
        X_ND[:, ::13],
        [_lse_true(), (0.0, 0.0, -1.0, 0.0, 0.0), (25.0, 20.0, 1.0, 2.0, 1.5)],
    ),
    (
        Logistic4,
        np.linspace(-6.0, 6.0, 13),
        [(1.0, 1.0, 0.0, 0.0), (-0.6, 3.0, 1.5, 0.25), (2.0, -50.0, 0.3, 1.0)],
    ),
    (Exponential, np.linspace(0.0, 700.0, 8), [(2.0, 0.0073), (-1.5, -0.01), (1e-3, 0.02)]),
    (LogLinear, np.logspace(-2, 3, 7), [(1.0, 0.3), (-2.0, -5.0), (0.0, 1e-3)]),
]


def _complex_step_jac(law: type[Law], x: np.ndarray, p: tuple[float, ...]) -> np.ndarray:
    h = 1e-30
    cols = []
    for j in range(len(p)):
        q = np.array(p, dtype=complex)
        q[j] += 1j * h
        cols.append(np.imag(law.func(x, *q)) / h)
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize(
    ("law", "x", "p"),
    [(law, x, p) for law, x, ps in JAC_CASES for p in ps],
    ids=lambda v: getattr(v, "name", None),
)
def test_jacobian_matches_complex_step(law: type[Law], x: np.ndarray, p: tuple) -> None:
    jac = law.jac(x, *p)
    m = x.shape[-1]
    assert jac.shape == (m, law.n_params)
    assert jac.dtype == np.float64
    ref = _complex_step_jac(law, x, p)
    scale = np.maximum(np.abs(ref).max(axis=0), 1e-300)
    np.testing.assert_allclose(jac / scale, ref / scale, rtol=1e-6, atol=1e-9)
    # the complex step is only valid if func is the real function for real parameters
    np.testing.assert_allclose(np.real(law.func(x, *np.asarray(p, complex))), law.func(x, *p))


# -- chinchilla_lse <-> chinchilla ----------------------------------------------------------


def test_lse_equals_log_chinchilla() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = np.concatenate([rng.uniform(-2, 12, 3), rng.uniform(0, 2, 2)])
        lhs = ChinchillaLSE.func(X_ND, *p)
        rhs = np.log(Chinchilla.func(X_ND, *ChinchillaLSE.to_chinchilla(p)))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_to_chinchilla_round_trip() -> None:
    p = np.array(_lse_true())
    np.testing.assert_allclose(ChinchillaLSE.to_chinchilla(p), CHIN_TRUE, rtol=1e-14)
    np.testing.assert_allclose(ChinchillaLSE.from_chinchilla(ChinchillaLSE.to_chinchilla(p)), p)
    grid = hoffmann_grid()
    back = ChinchillaLSE.from_chinchilla(ChinchillaLSE.to_chinchilla(grid))
    np.testing.assert_allclose(back, grid, atol=1e-12)
    with pytest.raises(InvalidInputError, match="E, A and B must be > 0"):
        ChinchillaLSE.from_chinchilla([0.0, 1.0, 1.0, 0.3, 0.3])
    with pytest.raises(ShapeError, match=r"shape \(5,\) or \(k, 5\)"):
        ChinchillaLSE.to_chinchilla([1.0, 2.0])


def test_hoffmann_grid() -> None:
    grid = hoffmann_grid()
    assert grid.shape == (4500, 5)
    np.testing.assert_array_equal(grid[0], [0, 0, -1, 0, 0])
    np.testing.assert_array_equal(grid[-1], [25, 25, 1, 2, 2])
    np.testing.assert_array_equal(grid[1], [0, 0, -1, 0, 0.5])  # beta fastest
    np.testing.assert_array_equal(grid[5], [0, 0, -1, 0.5, 0])  # then alpha
    assert np.unique(grid, axis=0).shape[0] == 4500
    np.testing.assert_array_equal(ChinchillaLSE.hoffmann_grid(), grid)
    lo, hi = ChinchillaLSE.default_bounds
    assert np.all(grid >= lo) and np.all(grid <= hi)


# -- guess(): a fit from it reaches the optimum and recovers the truth ------------------------

# (law, x, true parameters, relative tolerance against the truth per parameter). With 1 %
# noise the exponents and asymptotes come back to a few percent; scale coefficients that
# trade off against an exponent (a of the saturating law, A and B of Chinchilla) are only
# determined to 10-25 %, so for every parameter the error must also be within 4 standard
# errors (pcov).
GUESS_CASES = [
    (PowerLaw, np.logspace(0, 4, 40), (5.0, 0.5), 0.03),
    (SaturatingPowerLaw, np.logspace(7, 10, 60), (406.4, 0.34, 1.69), (0.3, 0.05, 0.03)),
    (Chinchilla, X_ND, CHIN_TRUE, (0.03, 0.3, 0.3, 0.03, 0.06)),
    (ChinchillaLSE, X_ND, _lse_true(), (0.01, 0.06, 0.06, 0.03, 0.06)),
    (Logistic4, np.linspace(-5, 5, 60), (0.6, 1.5, 0.5, 0.25), 0.05),
    (Logistic4, np.linspace(-5, 5, 60), (0.6, -1.5, 0.5, 0.25), 0.05),
    (Logistic4, np.linspace(8, 12, 40), (0.7, 2.5, 10.3, 0.25), 0.05),  # e.g. log10 FLOPs
    (Exponential, np.linspace(0, 700, 40), (2.0, 0.0073), 0.05),
    (Exponential, np.linspace(0, 10, 30), (-3.0, -0.4), 0.05),
    (LogLinear, np.logspace(0, 3, 30), (1.0, 0.3), 0.03),
]


@pytest.mark.parametrize(
    ("law", "x", "truth", "rtol"), GUESS_CASES, ids=lambda v: getattr(v, "name", None)
)
def test_guess_leads_to_truth(law: type[Law], x: np.ndarray, truth: tuple, rtol: object) -> None:
    from scipy.optimize import curve_fit

    rng = np.random.default_rng(12345)
    y_true = law.func(x, *truth)
    if law is ChinchillaLSE:  # 1 % noise on L, fitted in log space
        y = np.log(np.exp(y_true) * (1 + 0.01 * rng.standard_normal(y_true.shape)))
    else:
        y = y_true * (1 + 0.01 * rng.standard_normal(y_true.shape))
    p0 = law.guess(x, y)
    lo, hi = law.default_bounds
    assert p0.shape == (law.n_params,) and np.isfinite(p0).all()
    assert np.all(p0 > lo) and np.all(p0 < hi)
    fit, cov = curve_fit(law.func, x, y, p0=p0, jac=law.jac, maxfev=2000)
    best, _ = curve_fit(law.func, x, y, p0=truth, jac=law.jac, maxfev=2000)
    np.testing.assert_allclose(fit, best, rtol=1e-5)  # the same optimum as from the truth
    err = np.abs(fit - np.asarray(truth))
    relerr = err / np.abs(np.asarray(truth))
    zscore = err / np.sqrt(np.diag(cov))
    assert np.all(relerr <= np.asarray(rtol)), f"fit {fit}, truth {truth}, rel. error {relerr}"
    assert np.all(zscore < 4.0), f"fit {fit}, truth {truth}, |error| / stderr {zscore}"


def test_guess_compute_optimal_chinchilla() -> None:
    # runs along D = 20 N are nearly collinear in (log N, log D): the guess must stay sane
    n = np.logspace(7, 10, 30)
    x = np.stack([n, 20 * n])
    y = Chinchilla.func(x, *CHIN_TRUE) * (1 + 0.01 * np.random.default_rng(3).standard_normal(30))
    for law, yy in ((Chinchilla, y), (ChinchillaLSE, np.log(y))):
        p0 = law.guess(x, yy)
        lo, hi = law.default_bounds
        assert np.isfinite(p0).all() and np.all(p0 > lo) and np.all(p0 < hi)
        rel = np.abs(law.func(x, *p0) - yy) / np.abs(yy)
        assert rel.max() < 0.05


def _x_for(law: type[Law], m: int) -> np.ndarray:
    if law.n_inputs == 2:
        n = np.logspace(7, 10, m)
        return np.stack([n, np.logspace(12, 9, m)])
    return np.logspace(0, 3, m)


DEGENERATE_Y = {
    "constant": lambda m: np.full(m, 2.5),
    "zeros": lambda m: np.zeros(m),
    "increasing": lambda m: np.linspace(1.0, 5.0, m),
    "negative": lambda m: -np.linspace(1.0, 5.0, m),
    "mixed_sign": lambda m: np.linspace(-1.0, 1.0, m) ** 3,
    "huge": lambda m: np.linspace(1e200, 2e200, m),
    "tiny": lambda m: np.linspace(1e-200, 2e-200, m),
    "noise": lambda m: np.random.default_rng(7).standard_normal(m),
}


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("kind", sorted(DEGENERATE_Y))
@pytest.mark.parametrize("m", [1, 2, 7])
def test_guess_degenerate_data_finite_and_inside(name: str, kind: str, m: int) -> None:
    law = get_law(name)
    y = DEGENERATE_Y[kind](m)
    if law is ChinchillaLSE and kind == "huge":
        y = np.full(m, 500.0)  # log L; exp(500) is finite, the guess must survive it
    p0 = law.guess(_x_for(law, m), y)
    lo, hi = law.default_bounds
    assert p0.shape == (law.n_params,)
    assert np.isfinite(p0).all()
    assert np.all(p0 > lo) and np.all(p0 < hi)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_guess_identical_x(name: str) -> None:
    law = get_law(name)
    x = _x_for(law, 5)
    x = np.repeat(x[..., :1], 5, axis=-1)
    p0 = law.guess(x, np.linspace(1.0, 2.0, 5))
    assert np.isfinite(p0).all()


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(ALL_NAMES),
    y=arrays(
        np.float64,
        st.integers(1, 20),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
    ),
)
def test_guess_always_finite_inside_bounds(name: str, y: np.ndarray) -> None:
    law = get_law(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p0 = law.guess(_x_for(law, y.shape[0]), y)
    lo, hi = law.default_bounds
    assert np.isfinite(p0).all() and np.all(p0 > lo) and np.all(p0 < hi)


# -- registry ----------------------------------------------------------------------------


def test_registry_lookup() -> None:
    assert get_law("power_law") is PowerLaw
    assert get_law(PowerLaw) is PowerLaw
    assert set(ALL_NAMES) <= set(list_laws())
    assert list_laws() == sorted(list_laws())
    for name in ALL_NAMES:
        law = get_law(name)
        assert law.name == name
        assert law.n_params == len(law.param_names) == len(law.default_bounds[0])
        assert len(law.input_names) == law.n_inputs
        assert law.formula


def test_parameter_orders() -> None:
    # the native core implements the same ids with these orders
    assert PowerLaw.param_names == ("a", "b")
    assert SaturatingPowerLaw.param_names == ("a", "b", "c")
    assert Chinchilla.param_names == ("E", "A", "B", "alpha", "beta")
    assert ChinchillaLSE.param_names == ("a", "b", "e", "alpha", "beta")
    assert Logistic4.param_names == ("c", "k", "x0", "d")
    assert Exponential.param_names == ("a", "b")
    assert LogLinear.param_names == ("a", "b")
    assert Chinchilla.input_names == ChinchillaLSE.input_names == ("N", "D")


def test_unknown_law() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'power_law'") as info:
        get_law("powr_law")
    assert isinstance(info.value, KeyError)
    msg = str(info.value)
    assert msg.startswith("unknown law 'powr_law'") and "Known: chinchilla" in msg
    with pytest.raises(UnknownNameError, match=r"unknown law 'zzz'\. Known:"):
        get_law("zzz")
    with pytest.raises(TypeError, match="law name or a Law subclass"):
        get_law(3)  # type: ignore[arg-type]


def test_register_duplicate_raises() -> None:
    with pytest.raises(CapscaleError, match="'power_law' is already registered"):

        @register_law("power_law")
        class Again(PowerLaw):
            pass

    assert get_law("power_law") is PowerLaw


def test_register_custom_law(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    @register_law("linear_for_test")
    class Linear(Law):
        param_names = ("m", "q")
        formula = "y = m * x + q"
        default_bounds = ((-np.inf, -np.inf), (np.inf, np.inf))

        @staticmethod
        def func(x: np.ndarray, m: float, q: float) -> np.ndarray:
            return m * np.asarray(x, float) + q

        @staticmethod
        def jac(x: np.ndarray, m: float, q: float) -> np.ndarray:
            xa = np.asarray(x, float)
            return np.stack([xa, np.ones_like(xa)], axis=-1)

    assert get_law("linear_for_test") is Linear and Linear.name == "linear_for_test"
    assert Linear.n_params == 2
    np.testing.assert_array_equal(Linear.guess([1.0, 2.0], [0.0, 1.0]), [1.0, 1.0])

    with pytest.raises(CapscaleError, match="default_bounds has lengths"):

        @register_law("broken_for_test")
        class Broken(Linear):
            default_bounds = ((0.0,), (1.0,))

    with pytest.raises(CapscaleError, match="identifier"):
        register_law("not a name")


# -- bad input ---------------------------------------------------------------------------


def test_check_inputs_ok() -> None:
    x = PowerLaw.check_inputs([1, 2, 3])
    assert x.dtype == np.float64 and x.shape == (3,) and x.flags.c_contiguous
    x2 = Chinchilla.check_inputs(np.asfortranarray(X_ND))
    assert x2.shape == X_ND.shape and x2.flags.c_contiguous
    assert Logistic4.check_inputs([-3.0, 0.0]).shape == (2,)  # any finite x
    assert PowerLaw.check_inputs([[1.0, 2.0, 3.0]]).shape == (3,)  # (n_inputs, m) layout


def test_nan_input() -> None:
    with pytest.raises(NonFiniteError, match=r"power_law: x contains 1 non-finite .* x\[1\]"):
        PowerLaw.check_inputs([1.0, np.nan, 3.0])
    bad = X_ND.copy()
    bad[1, 4] = np.inf
    with pytest.raises(NonFiniteError, match=r"chinchilla: .* D \(x\[1, 4\]\)"):
        Chinchilla.check_inputs(bad)
    with pytest.raises(NonFiniteError, match=r"logistic4: y contains .* y\[0\]"):
        Logistic4.guess([1.0, 2.0], [np.nan, 1.0])


def test_wrong_shape() -> None:
    with pytest.raises(ShapeError, match=r"chinchilla: x must have shape \(2, m\) .*\(N, D\)"):
        Chinchilla.check_inputs(np.logspace(7, 9, 5))
    with pytest.raises(ShapeError, match=r"pass x\.T"):
        Chinchilla.check_inputs(X_ND.T)
    with pytest.raises(ShapeError, match=r"chinchilla_lse: x must have shape \(2, m\)"):
        ChinchillaLSE.func(np.ones(4), *_lse_true())
    with pytest.raises(ShapeError, match=r"power_law: x must be 1-D with shape \(m,\) or \(1, m\)"):
        PowerLaw.check_inputs(np.ones((2, 3)))
    with pytest.raises(ShapeError, match="x is empty"):
        LogLinear.check_inputs([])
    with pytest.raises(ShapeError, match=r"y must have shape \(3,\) to match x"):
        Exponential.guess([1.0, 2.0, 3.0], [1.0, 2.0])


def test_nonpositive_input() -> None:
    with pytest.raises(InvalidInputError, match=r"power_law: x must be > 0 .* x\[2\] = -1\.0"):
        PowerLaw.check_inputs([1.0, 2.0, -1.0])
    with pytest.raises(InvalidInputError, match=r"log_linear: x must be > 0"):
        LogLinear.guess([0.0, 1.0], [1.0, 2.0])
    bad = X_ND.copy()
    bad[0, 3] = 0.0
    msg = r"chinchilla: N and D must be > 0 .* N \(x\[0, 3\]\)"
    with pytest.raises(InvalidInputError, match=msg):
        Chinchilla.check_inputs(bad)


def test_non_numeric_input() -> None:
    with pytest.raises(InvalidInputError, match="must contain real numbers"):
        PowerLaw.check_inputs(np.array([1 + 1j, 2.0]))
    with pytest.raises(InvalidInputError, match="must contain real numbers"):
        PowerLaw.check_inputs(["1", "2"])


def test_law_is_not_instantiated() -> None:
    with pytest.raises(TypeError, match="law class"):
        PowerLaw()
