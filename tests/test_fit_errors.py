"""Every malformed-input class of capscale.fit raises its specific capscale.errors exception,
with a message that names the problem (DESIGN.md, house style 4–5). Bad input raises; it never
panics across the boundary and never comes back as a "failed fit"."""

from __future__ import annotations

import numpy as np
import pytest

from capscale.errors import (
    CapscaleError,
    FitError,
    InvalidInputError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)
from capscale.fit import bootstrap_fit, curve_fit, fit_many, least_squares, multi_start

X = np.linspace(0.0, 1.0, 10)
Y = 2.0 * X + 1.0
XP = X + 1.0  # positive inputs for laws that take logarithms
NAN, INF = np.nan, np.inf


def line(x, a, b):
    return a * x + b


def line_jac(x, a, b):
    return np.stack([x, np.ones_like(x)], axis=-1)


def res(p):
    return line(X, *p) - Y


def with_last(value, n=10):
    arr = np.ones(n)
    arr[-1] = value
    return arr


CASES = [
    # -- non-finite data and starts -----------------------------------------------------------
    pytest.param(
        lambda: curve_fit(line, np.r_[X[:-1], NAN], Y, p0=[1, 1]),
        NonFiniteError,
        "xdata",
        id="xdata-nan",
    ),
    pytest.param(
        lambda: curve_fit(line, np.r_[X[:-1], INF], Y, p0=[1, 1]),
        NonFiniteError,
        "xdata",
        id="xdata-inf",
    ),
    pytest.param(
        lambda: curve_fit("power_law", np.r_[XP[:-1], NAN], Y),
        NonFiniteError,
        r"x contains 1 non-finite.*x\[9\]",
        id="law-xdata-nan",
    ),
    pytest.param(
        lambda: curve_fit(line, X, np.r_[Y[:-1], NAN], p0=[1, 1]),
        NonFiniteError,
        r"ydata .*index 9",
        id="ydata-nan",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, np.r_[Y[:-1], INF]),
        NonFiniteError,
        r"ydata|y contains",
        id="law-ydata-inf",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], sigma=with_last(NAN)),
        NonFiniteError,
        r"sigma .*index 9",
        id="sigma-nan",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], sigma=with_last(INF)),
        NonFiniteError,
        r"sigma .*inf",
        id="sigma-inf",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, sigma=with_last(NAN)),
        NonFiniteError,
        "sigma",
        id="law-sigma-nan",
    ),
    pytest.param(lambda: least_squares(res, [NAN, 1.0]), NonFiniteError, r"x0 .*nan", id="x0-nan"),
    pytest.param(lambda: least_squares(res, [1.0, INF]), NonFiniteError, r"x0 .*inf", id="x0-inf"),
    pytest.param(lambda: curve_fit(line, X, Y, p0=[NAN, 1.0]), NonFiniteError, "p0", id="p0-nan"),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, p0=[1.0, NAN]),
        NonFiniteError,
        "p0",
        id="law-p0-nan",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], bounds=([NAN, 0], [2, 2])),
        NonFiniteError,
        "lower bound",
        id="bound-nan",
    ),
    # -- lengths and shapes -------------------------------------------------------------------
    pytest.param(
        lambda: curve_fit("power_law", XP, Y[:-1]),
        ShapeError,
        r"y must have shape \(10,\).*\(9,\)",
        id="law-ydata-length",
    ),
    pytest.param(
        lambda: curve_fit("chinchilla", XP, Y),
        ShapeError,
        r"shape \(2, m\)",
        id="law-xdata-rows",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y[:-1], p0=[1, 1]),
        ShapeError,
        r"\b9\b.*\b10\b",
        id="ydata-length",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y.reshape(10, 1), p0=[1, 1]),
        ShapeError,
        r"ydata must be 1-D",
        id="ydata-2d",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], sigma=np.ones(9)),
        ShapeError,
        r"sigma has length 9, expected 10",
        id="sigma-length",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, sigma=np.ones(11)),
        ShapeError,
        r"sigma .*11.*10",
        id="law-sigma-length",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, p0=[1.0, 1.0, 1.0]),
        ShapeError,
        r"p0 has 3 values; law power_law has 2",
        id="law-p0-length",
    ),
    pytest.param(
        lambda: least_squares(res, [[1.0, 1.0]]), ShapeError, r"x0 must be 1-D", id="x0-2d"
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], bounds=([0, 0, 0], [2, 2, 2])),
        ShapeError,
        r"lower bound .*length 2.*\(3,\)",
        id="bounds-length",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, bounds=([0, 0], [1, 1, 1])),
        ShapeError,
        r"upper bound .*length 2",
        id="law-bounds-length",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], bounds=(0, 1, 2)),
        InvalidInputError,
        r"bounds must be a pair",
        id="bounds-not-a-pair",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], param_names=["a"]),
        ShapeError,
        r"param_names has 1 names for 2",
        id="param-names-length",
    ),
    pytest.param(
        lambda: least_squares(res, [1.0, 1.0], x_scale=[1.0, 1.0, 1.0]),
        ShapeError,
        "x_scale",
        id="x-scale-length",
    ),
    pytest.param(
        lambda: fit_many("power_law", [XP], [Y], p0=[1.0, 1.0, 1.0]),
        ShapeError,
        "p0",
        id="fit-many-p0-shape",
    ),
    pytest.param(
        lambda: fit_many("power_law", [XP, XP], [Y]),
        ShapeError,
        "same number of datasets",
        id="fit-many-count",
    ),
    pytest.param(
        lambda: multi_start("power_law", XP, Y, starts=np.ones((3, 3))),
        ShapeError,
        r"starts must have shape \(k, 2\)",
        id="multi-start-shape",
    ),
    # -- bounds and starts --------------------------------------------------------------------
    pytest.param(
        lambda: least_squares(res, [5.0, 1.0], bounds=([0, 0], [2, 2])),
        InvalidInputError,
        r"x0\[0\] = 5 is outside its bounds \[0, 2\]",
        id="x0-outside-bounds",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1.0, -1.0], bounds=(0, 2)),
        InvalidInputError,
        r"\[1\] = -1 is outside its bounds",
        id="p0-outside-bounds",
    ),
    pytest.param(
        lambda: curve_fit("saturating_power_law", XP, Y, p0=[1.0, -1.0, 0.0]),
        InvalidInputError,
        r"outside its bounds \[0, 10\]",
        id="law-p0-outside-default-bounds",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], bounds=([0, 3], [2, 2])),
        InvalidInputError,
        r"lower bound 3.0 must be < upper bound 2.0 for parameter 1",
        id="lower-above-upper",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], bounds=([0, 1], [2, 1])),
        InvalidInputError,
        r"lower bound 1.0 must be < upper bound 1.0",
        id="lower-equals-upper",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], bounds=(1, 1)),
        InvalidInputError,
        r"must be < upper bound",
        id="scalar-bounds-equal",
    ),
    # -- sigma --------------------------------------------------------------------------------
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], sigma=with_last(-1.0)),
        InvalidInputError,
        r"sigma must be > 0, got -1 at index 9",
        id="sigma-negative",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], sigma=with_last(0.0)),
        InvalidInputError,
        r"sigma must be > 0, got 0 at index 9",
        id="sigma-zero",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, sigma=with_last(0.0)),
        InvalidInputError,
        r"sigma must be > 0",
        id="law-sigma-zero",
    ),
    # -- names --------------------------------------------------------------------------------
    pytest.param(
        lambda: least_squares(res, [1, 1], loss="hubr"),
        UnknownNameError,
        r"unknown loss 'hubr'; did you mean 'huber'\?",
        id="loss-misspelt",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], loss="l2"),
        UnknownNameError,
        r"unknown loss 'l2'.*soft_l1",  # no close match: the message must list the losses
        id="loss-unknown-lists-choices",
    ),
    pytest.param(
        lambda: curve_fit("powr_law", XP, Y),
        UnknownNameError,
        r"unknown law 'powr_law'; did you mean 'power_law'\?",
        id="law-misspelt",
    ),
    pytest.param(
        lambda: fit_many("no_such_law", [XP], [Y]),
        UnknownNameError,
        r"unknown law 'no_such_law'.*Known: .*power_law",
        id="law-unknown",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], jac="cs"),
        InvalidInputError,
        r"jac must be a callable, '2-point' or '3-point', got 'cs'",
        id="jac-bad-scheme",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], jac="complex-step"),
        InvalidInputError,
        r"'2-point' or '3-point'",
        id="curve-fit-jac-bad-scheme",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], jac=3),
        InvalidInputError,
        r"jac must be callable",
        id="jac-not-callable",
    ),
    pytest.param(
        lambda: curve_fit(3, X, Y), InvalidInputError, r"f must be callable", id="f-not-callable"
    ),
    # -- callbacks returning the wrong thing --------------------------------------------------
    pytest.param(
        lambda: curve_fit(lambda x, a, b: np.ones(5), X, Y, p0=[1, 1]),
        ShapeError,
        r"model function must return 10 values \(one per residual / ydata point\), got 5",
        id="model-wrong-length",
    ),
    pytest.param(
        lambda: least_squares(lambda p: np.ones((3, 2)), [1.0, 1.0]),
        ShapeError,
        r"fun must return a 1-D array .*\(3, 2\)",
        id="fun-2d",
    ),
    pytest.param(
        lambda: least_squares(lambda p: 1.0, [1.0]),
        ShapeError,
        r"1-D array",
        id="fun-scalar",
    ),
    pytest.param(
        lambda: curve_fit(lambda x, a, b: np.ones((10, 1)), X, Y, p0=[1, 1]),
        ShapeError,
        r"1-D array of 10 values, got shape \(10, 1\)",
        id="model-2d",
    ),
    pytest.param(
        lambda: least_squares(lambda p: np.array([NAN, 1.0, 2.0]), [1.0, 1.0]),
        NonFiniteError,
        r"residual 0 is NaN at x0",
        id="fun-nan-at-x0",
    ),
    pytest.param(
        lambda: curve_fit(lambda x, a, b: np.where(x > 0.5, INF, a * x + b), X, Y, p0=[1, 1]),
        NonFiniteError,
        r"residual 5 is inf at x0",
        id="model-inf-at-x0",
    ),
    pytest.param(
        lambda: least_squares(res, [1.0, 1.0], jac=lambda p: np.ones((10, 3))),
        ShapeError,
        r"jac must return an array of shape \(10, 2\), got \[10, 3\]",
        id="jac-wrong-shape",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], jac=lambda x, a, b: line_jac(x, a, b).T),
        ShapeError,
        r"shape \(10, 2\), got \[2, 10\]",
        id="jac-transposed",
    ),
    pytest.param(
        lambda: least_squares(res, [1.0, 1.0], jac=lambda p: np.ones(10)),
        ShapeError,
        r"jac must return an array of shape \(10, 2\)",
        id="jac-1d",
    ),
    pytest.param(
        lambda: least_squares(res, [1.0, 1.0], jac=lambda p: np.full((10, 2), NAN)),
        NonFiniteError,
        r"Jacobian at x0",
        id="jac-nan-at-x0",
    ),
    # -- problem size -------------------------------------------------------------------------
    pytest.param(
        lambda: least_squares(lambda p: np.array([p[0] - 1.0]), [1.0, 1.0]),
        InvalidInputError,
        r"1 residuals are fewer than the 2 parameters",
        id="fewer-residuals-than-parameters",
    ),
    pytest.param(
        lambda: curve_fit("saturating_power_law", [1.0, 2.0], [1.0, 2.0]),
        InvalidInputError,
        r"2 residuals are fewer than the 3 parameters",
        id="law-too-few-points",
    ),
    pytest.param(
        lambda: least_squares(lambda p: np.ones(3), []),
        InvalidInputError,
        r"no parameters",
        id="no-parameters",
    ),
    # -- solver options -----------------------------------------------------------------------
    pytest.param(
        lambda: least_squares(res, [1, 1], f_scale=0.0),
        InvalidInputError,
        r"f_scale must be a finite number > 0, got 0",
        id="f-scale-zero",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], loss="huber", f_scale=-1.0),
        InvalidInputError,
        r"f_scale .*-1",
        id="f-scale-negative",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], f_scale=NAN),
        InvalidInputError,
        r"f_scale .*nan",
        id="f-scale-nan",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], ftol=-1e-8),
        InvalidInputError,
        r"ftol must be a finite number >= 0",
        id="ftol-negative",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], xtol=-1.0),
        InvalidInputError,
        r"xtol must be",
        id="xtol-negative",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], gtol=-1.0),
        InvalidInputError,
        r"gtol must be",
        id="gtol-negative",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], gtol=INF),
        InvalidInputError,
        r"gtol must be a finite",
        id="gtol-inf",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], max_nfev=0),
        InvalidInputError,
        r"max_nfev must be an integer >= 1, got 0",
        id="max-nfev-zero",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, max_nfev=-5),
        InvalidInputError,
        r"max_nfev must be an integer >= 1",
        id="law-max-nfev-negative",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], diff_step=0.0),
        InvalidInputError,
        r"diff_step must be finite and > 0",
        id="diff-step-zero",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], x_scale=[-1.0, 1.0]),
        InvalidInputError,
        r"x_scale",
        id="x-scale-negative",
    ),
    pytest.param(
        lambda: bootstrap_fit("power_law", XP, Y, n_resamples=0),
        InvalidInputError,
        r"n_resamples must be >= 1",
        id="bootstrap-no-resamples",
    ),
    pytest.param(
        lambda: bootstrap_fit("power_law", XP, Y, seed=-1),
        InvalidInputError,
        r"seed must be in \[0, 2\*\*64\), got -1",
        id="bootstrap-negative-seed",
    ),
    pytest.param(
        lambda: bootstrap_fit("power_law", XP, Y, n_resamples=5, seed=1).ci(1.5),
        InvalidInputError,
        r"level must be in \(0, 1\)",
        id="bootstrap-ci-level",
    ),
    pytest.param(
        lambda: fit_many(line, [X], [Y]),
        InvalidInputError,
        r"batch fitting takes a law name or Law class",
        id="batch-needs-a-law",
    ),
    pytest.param(
        lambda: multi_start("power_law", XP, Y, starts="grid"),
        InvalidInputError,
        r"starts='hoffmann'",
        id="multi-start-bad-grid-name",
    ),
    # -- non-numeric input --------------------------------------------------------------------
    pytest.param(
        lambda: least_squares(res, ["a", "b"]),
        InvalidInputError,
        r"x0 must be an array of numbers",
        id="x0-strings",
    ),
    pytest.param(
        lambda: curve_fit(line, X, ["a"] * 10, p0=[1, 1]),
        InvalidInputError,
        r"ydata must be an array of numbers",
        id="ydata-strings",
    ),
    pytest.param(
        lambda: curve_fit(line, X, Y, p0=[1, 1], sigma=["a"] * 10),
        InvalidInputError,
        r"sigma must be an array of numbers",
        id="sigma-strings",
    ),
    pytest.param(
        lambda: curve_fit("power_law", ["a"] * 10, Y),
        InvalidInputError,
        r"x must contain real numbers",
        id="law-xdata-strings",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, ["a"] * 10),
        InvalidInputError,
        r"ydata|real numbers",
        id="law-ydata-strings",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y, p0=["a", "b"]),
        InvalidInputError,
        r"p0 must be an array of numbers",
        id="law-p0-strings",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP, Y + 1j),
        InvalidInputError,
        r"real numbers",  # the imaginary part must not be dropped silently
        id="law-ydata-complex",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], ftol="a"),
        InvalidInputError,
        r"ftol must be a finite number",
        id="ftol-string",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], f_scale="a"),
        InvalidInputError,
        r"f_scale",
        id="f-scale-string",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], max_nfev="a"),
        InvalidInputError,
        r"max_nfev",
        id="max-nfev-string",
    ),
    pytest.param(
        lambda: least_squares(res, [1, 1], bounds=("a", "b")),
        InvalidInputError,
        r"bound",
        id="bounds-strings",
    ),
    pytest.param(
        lambda: curve_fit("power_law", XP - 1.5, Y),
        InvalidInputError,
        r"x must be > 0 \(the law takes its logarithm\)",
        id="law-domain",
    ),
]


@pytest.mark.parametrize(("call", "exc", "match"), CASES)
def test_bad_input_raises_specific_error(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert isinstance(info.value, CapscaleError)


# -- exceptions raised by user callables --------------------------------------------------------


class Boom(Exception):
    pass


def _raise(*_args):
    raise Boom("kaboom")


def _fails_later(limit):
    """A residual function that works for ``limit`` calls and then raises."""
    calls = 0

    def fun(p):
        nonlocal calls
        calls += 1
        if calls > limit:
            raise Boom("kaboom")
        return res(p)

    return fun


RAISING = [
    pytest.param(lambda: least_squares(_raise, [1.0, 1.0]), id="fun-at-x0"),
    pytest.param(lambda: least_squares(_fails_later(2), [3.0, 3.0]), id="fun-mid-fit"),
    pytest.param(lambda: curve_fit(_raise, X, Y, p0=[1.0, 1.0]), id="model-at-x0"),
    pytest.param(lambda: least_squares(res, [3.0, 3.0], jac=_raise), id="jac-at-x0"),
    pytest.param(lambda: curve_fit(line, X, Y, p0=[3.0, 3.0], jac=_raise), id="model-jac"),
]


@pytest.mark.parametrize("call", RAISING)
def test_callback_exception_becomes_fit_error_with_cause(call):
    with pytest.raises(FitError, match="kaboom") as info:
        call()
    assert isinstance(info.value.__cause__, Boom)
    assert str(info.value.__cause__) == "kaboom"


def test_callback_shape_change_mid_fit_keeps_shape_error():
    calls = 0

    def fun(p):
        nonlocal calls
        calls += 1
        return res(p) if calls < 3 else np.ones(4)

    with pytest.raises(
        ShapeError, match=r"fun must return 10 values \(one per residual / ydata point\), got 4"
    ):
        least_squares(fun, [3.0, 3.0])


def test_errors_keep_builtin_bases():
    """``except ValueError`` / ``KeyError`` / ``RuntimeError`` keep working (errors.py)."""
    with pytest.raises(ValueError):
        least_squares(res, [NAN, 1.0])
    with pytest.raises(KeyError):
        least_squares(res, [1.0, 1.0], loss="hubr")
    with pytest.raises(RuntimeError):
        curve_fit(_raise, X, Y, p0=[1.0, 1.0])


def test_bad_input_in_one_batch_dataset_is_reported_not_raised():
    """fit_many validates each dataset up front (bad data raise), and a dataset that is fine
    but cannot be fitted gets status -1 rather than aborting the batch."""
    with pytest.raises(NonFiniteError, match=r"y(data)? contains"):
        fit_many("power_law", [XP, XP], [Y, np.r_[Y[:-1], NAN]])
    batch = fit_many("saturating_power_law", [XP, XP[:2]], [Y, Y[:2]], p0=[1.0, 0.5, 0.0])
    assert batch.status[1] == -1 and np.all(np.isnan(batch.x[1]))
    assert batch.status[0] != -1
