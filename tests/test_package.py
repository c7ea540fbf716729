"""Package-level contracts: light import, the error hierarchy, native error mapping."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import capscale
from capscale import _native, errors


def test_import_does_not_pull_heavy_dependencies() -> None:
    code = (
        "import sys, capscale, capscale.fit, capscale.laws, capscale.cli.main; "
        "heavy = [m for m in ('torch', 'transformers', 'scipy', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_and_public_names() -> None:
    assert capscale.__version__ == _native.__version__
    assert set(capscale.__all__) >= {"fit", "laws", "errors"}


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (errors.InvalidInputError, (errors.CapscaleError, ValueError)),
        (errors.ShapeError, (errors.InvalidInputError,)),
        (errors.NonFiniteError, (errors.InvalidInputError,)),
        (errors.FormatError, (errors.CapscaleError, ValueError)),
        (errors.UnknownNameError, (errors.CapscaleError, KeyError)),
        (errors.FitError, (errors.CapscaleError, RuntimeError)),
        (errors.InestimableWarning, (errors.CapscaleWarning, UserWarning)),
    ],
)
def test_error_hierarchy(cls, bases) -> None:
    for base in bases:
        assert issubclass(cls, base)


def test_native_errors_map_to_the_python_hierarchy() -> None:
    with pytest.raises(errors.UnknownNameError, match='unknown law "nope"; known laws'):
        _native.law_info("nope")
    with pytest.raises(errors.UnknownNameError, match="unknown loss"):
        _native.SolverOptions(loss="l2")
    with pytest.raises(errors.NonFiniteError, match="xdata contains a non-finite"):
        _native.law_eval("power_law", np.array([1.0, np.nan]), np.array([1.0, 0.5]))
    with pytest.raises(errors.ShapeError, match="params has length 3, expected 2"):
        _native.law_eval("power_law", np.array([1.0, 2.0]), np.array([1.0, 0.5, 1.0]))
    with pytest.raises(errors.InvalidInputError, match="needs xdata > 0"):
        _native.law_eval("power_law", np.array([1.0, -2.0]), np.array([1.0, 0.5]))
    assert str(errors.UnknownNameError("plain message")) == "plain message"


def test_native_laws_equal_numpy_oracles() -> None:
    from capscale.laws import get_law, list_laws

    rng = np.random.default_rng(0)
    params = {
        "power_law": [400.0, 0.3],
        "saturating_power_law": [400.0, 0.3, 1.7],
        "chinchilla": [1.8, 480.0, 2100.0, 0.34, 0.37],
        "chinchilla_lse": [6.2, 7.7, 0.6, 0.35, 0.37],
        "logistic4": [0.7, 2.0, 0.4, 0.25],
        "exponential": [1.5, 0.8],
        "log_linear": [0.1, 0.05],
    }
    # Every native law is registered in Python (tests may register extra, Python-only laws).
    assert sorted(params) == sorted(_native.law_names())
    assert set(params) <= set(list_laws())
    for name, p in params.items():
        law = get_law(name)
        assert _native.law_info(name) == (list(law.param_names), law.n_inputs)
        x = 10 ** rng.uniform(6, 11, (law.n_inputs, 25))
        if name in ("logistic4", "exponential"):
            x = rng.uniform(-2, 2, (1, 25))
        x = x[0] if law.n_inputs == 1 else x
        ours = _native.law_eval(name, np.ascontiguousarray(x).ravel(), np.array(p))
        np.testing.assert_allclose(ours, law.func(x, *p), rtol=1e-13, atol=0)
