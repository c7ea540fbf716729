"""The ``chinchilla_optimal`` law family on Epoch AI's Chinchilla runs (../shared/chinchilla_epoch):
Epoch's Huber-likelihood headline and bootstrap SEs, Hoffmann's Huber optimum and grid, the
compute-optimal closed forms against brute force, predictions, JSON, plots and bad input.
Reference values: ../shared/reference/laws.md §6 and the data's SOURCES.md."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capscale.errors import (
    FormatError,
    InestimableWarning,
    InvalidInputError,
    NonFiniteError,
    UnknownNameError,
)
from capscale.laws.families.compute_optimal import (
    HOFFMANN_2022,
    ComputeOptimal,
    huber_normaliser,
    optimal_allocation,
)
from capscale.laws.family import get_family, load_fit
from conftest import shared_path

# Epoch AI's headline (Huber likelihood, free scale) and its 4000-resample bootstrap SEs.
EPOCH = {"E": 1.8169, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3659}
EPOCH_SE = {"E": 0.0257, "A": 124.5, "B": 1293.3, "alpha": 0.0154, "beta": 0.0206}
EPOCH_A_SHARE, EPOCH_A_SE = 0.513, 0.020
DELTA = 1e-3


@pytest.fixture(scope="module")
def runs(chinchilla_runs) -> pd.DataFrame:
    n, d, loss = chinchilla_runs
    return pd.DataFrame({"N": n, "D": d, "L": loss})


@pytest.fixture(scope="module")
def headline(runs) -> ComputeOptimal:
    """Epoch's protocol: likelihood from Hoffmann's unrounded estimates, 4000 resamples."""
    fit = get_family("chinchilla_optimal").fit(
        runs, method="likelihood", start="hoffmann2022", n_resamples=4000, seed=0
    )
    assert isinstance(fit, ComputeOptimal)
    return fit


def _nll(p: np.ndarray, log_s: float, n, d, loss) -> float:
    """Epoch's objective, written out independently: −Σ log HuberPDF(log L; LSE, e^log_s)."""
    a, b, e, alpha, beta = np.log(p[1]), np.log(p[2]), np.log(p[0]), p[3], p[4]
    t = np.stack([a - alpha * np.log(n), b - beta * np.log(d), np.full(n.shape, e)])
    mu = t.max(axis=0) + np.log(np.exp(t - t.max(axis=0)).sum(axis=0))
    x = (np.log(loss) - mu) / math.exp(log_s)
    rho = np.where(np.abs(x) <= DELTA, 0.5 * x * x, DELTA * (np.abs(x) - 0.5 * DELTA))
    z = math.sqrt(2 * math.pi) * (1 - 2 * 0.5 * math.erfc(DELTA / math.sqrt(2)))
    z += 2 * math.exp(-0.5 * DELTA**2) / DELTA
    return float(rho.sum() + n.size * (math.log(z) + log_s))


def test_epoch_huber_likelihood_headline(headline, chinchilla_runs) -> None:
    assert headline.success and headline.method == "likelihood"
    for key, want in EPOCH.items():
        assert headline.params[key] == pytest.approx(want, rel=0.01), key
    # Tighter than the bar: the 6-digit notebook output (a=6.17795598, b=7.64273236, ...).
    assert headline.params["alpha"] == pytest.approx(0.34781303, abs=2e-6)
    assert headline.params["beta"] == pytest.approx(0.36585412, abs=2e-6)
    assert headline.params["A"] == pytest.approx(math.exp(6.17795598), rel=2e-5)
    assert headline.params["B"] == pytest.approx(math.exp(7.64273236), rel=2e-5)
    # The reported objective is Epoch's negative log-likelihood, and nothing nearby is lower.
    scale = headline.scale
    assert scale is not None and 1e-6 < scale < 1e-4
    p = np.array([headline.params[k] for k in ("E", "A", "B", "alpha", "beta")])
    ours = _nll(p, math.log(scale), *chinchilla_runs)
    assert headline.objective == pytest.approx(ours, rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = p * (1 + 1e-5 * rng.standard_normal(5))
        assert _nll(q, math.log(scale) + 1e-3 * rng.standard_normal(), *chinchilla_runs) > ours
    assert huber_normaliser(DELTA) == pytest.approx(math.exp(7.6009), rel=1e-4)


def test_epoch_bootstrap_standard_errors(headline) -> None:
    assert headline.bootstrap["failed_fraction"] < 0.01
    assert headline.samples.shape[0] >= 3960
    se = headline.stderr
    for key, want in EPOCH_SE.items():
        assert abs(se[key] - want) <= 0.3 * want, (key, se[key], want)
    table = headline.table(0.95)
    assert list(table.index) == ["E", "A", "B", "alpha", "beta", "a", "b", "G"]
    # Epoch's 95 % percentile intervals, e.g. alpha (0.317, 0.373), beta (0.331, 0.415).
    assert table.loc["alpha", "ci_low"] == pytest.approx(0.317, abs=0.005)
    assert table.loc["alpha", "ci_high"] == pytest.approx(0.373, abs=0.005)
    assert table.loc["beta", "ci_low"] == pytest.approx(0.331, abs=0.006)
    assert table.loc["beta", "ci_high"] == pytest.approx(0.415, abs=0.008)


def test_parameter_share_a(headline) -> None:
    # laws.md §6(b): a = 0.513 (SE 0.020) belongs to Epoch's headline (Huber-likelihood) fit.
    assert headline.a == pytest.approx(EPOCH_A_SHARE, abs=0.02)
    assert headline.a == pytest.approx(0.5126, abs=5e-4)
    assert headline.a + headline.b == pytest.approx(1.0)
    assert abs(headline.stderr["a"] - EPOCH_A_SE) <= 0.3 * EPOCH_A_SE
    assert headline.stderr["b"] == pytest.approx(headline.stderr["a"], rel=1e-9)


def test_huber_fit_reaches_the_epoch_grid_optimum(runs) -> None:
    fit = ComputeOptimal.fit(runs, start="hoffmann2022", n_resamples=0)
    assert fit.method == "huber" and fit.success
    assert fit.objective <= 1.0182741e-3
    assert abs(fit.params["alpha"] - 0.34731) < 1e-4
    assert abs(fit.params["beta"] - 0.36717) < 1e-4
    assert fit.params["E"] == pytest.approx(1.8172, abs=1e-3)
    assert fit.params["A"] == pytest.approx(477.84, rel=2e-3)
    assert fit.params["B"] == pytest.approx(2143.86, rel=2e-3)
    assert fit.a == pytest.approx(0.513, abs=0.005)  # laws.md §6(d), at the Huber optimum
    start = {k: v for k, v in HOFFMANN_2022.items()}
    same = ComputeOptimal.fit(runs, start=start, n_resamples=0)
    np.testing.assert_allclose(same.x, fit.x, rtol=1e-12)


def test_grid_from_flops_with_dropped_runs(runs) -> None:
    path = shared_path("chinchilla_epoch", "svg_extracted_data.csv")
    raw = pd.read_csv(path).rename(columns={"Model Size": "N", "Training FLOP": "C", "loss": "L"})
    assert len(raw) == 245
    fit = ComputeOptimal.fit(
        raw[["N", "C", "L"]], method="likelihood", drop_highest=5, n_resamples=0
    )
    assert fit.info["n_runs"] == 240 and fit.info["start"] == "grid"
    assert fit.info["grid_reached_best"] >= 0.45
    assert fit.info["huber_objective"] <= 1.0182741e-3
    for key, want in EPOCH.items():
        assert fit.params[key] == pytest.approx(want, rel=0.01), key
    np.testing.assert_allclose(np.sort(fit.runs[2]), np.sort(runs["L"].to_numpy()), rtol=1e-15)


def _brute_force_n_opt(c: float, p: dict[str, float]) -> float:
    """argmin_N L(N, C/(6N)) by a dense log grid, then golden-section search in log N."""

    def loss(log_n: np.ndarray) -> np.ndarray:
        n = np.exp(log_n)
        return p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * (c / (6 * n)) ** -p["beta"]

    grid = np.linspace(math.log(1e3), math.log(c / 6 / 1e3), 20001)
    k = int(np.argmin(loss(grid)))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        m1, m2 = hi - g * (hi - lo), lo + g * (hi - lo)
        if loss(np.array(m1)) < loss(np.array(m2)):
            hi = m2
        else:
            lo = m1
    return math.exp(0.5 * (lo + hi))


@pytest.mark.parametrize(
    "p",
    [
        {"E": 1.8169, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3659},
        dict(HOFFMANN_2022),
        {"E": 0.5, "A": 50.0, "B": 9000.0, "alpha": 0.25, "beta": 0.6},
    ],
)
def test_closed_forms_match_brute_force(p) -> None:
    c = np.array([1e18, 3e20, 5.76e23, 1e26])
    n_opt, d_opt = optimal_allocation(c, **p)
    np.testing.assert_allclose(6 * n_opt * d_opt, c, rtol=1e-12)
    for ci, ni in zip(c, n_opt, strict=True):
        assert ni == pytest.approx(_brute_force_n_opt(ci, p), rel=1e-6)
    # By hand: G = (αA/(βB))^(1/(α+β)), N_opt = G (C/6)^a with a = β/(α+β).
    s = p["alpha"] + p["beta"]
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    np.testing.assert_allclose(n_opt, g * (c / 6) ** (p["beta"] / s), rtol=1e-12)
    np.testing.assert_allclose(d_opt, (c / 6) ** (p["alpha"] / s) / g, rtol=1e-12)


def test_allocation_and_predict(headline) -> None:
    p = headline.params
    alloc = headline.allocation([5.76e23, 1e25])
    n_opt, d_opt = optimal_allocation(alloc["C"].to_numpy(), **p)
    np.testing.assert_allclose(alloc["N_opt"], n_opt, rtol=1e-12)
    np.testing.assert_allclose(alloc["D_opt"], d_opt, rtol=1e-12)
    for key in ("N_opt", "D_opt", "L_opt"):
        assert (alloc[f"{key}_low"] < alloc[key]).all() and (
            alloc[key] < alloc[f"{key}_high"]
        ).all()
        assert (alloc[f"{key}_se"] > 0).all()
    # Chinchilla's budget: ~70B parameters and ~1.3T tokens under Epoch's fit.
    assert 5e10 < alloc["N_opt"][0] < 1e11 and 1e12 < alloc["D_opt"][0] < 2e12

    rows = pd.DataFrame({"N": [70e9, 1e9], "D": [1.4e12, 2e10]})
    out = headline.predict(rows, ci=0.9)
    want = p["E"] + p["A"] / rows["N"] ** p["alpha"] + p["B"] / rows["D"] ** p["beta"]
    np.testing.assert_allclose(out["prediction"], want, rtol=1e-12)
    assert (out["ci_low"] < out["prediction"]).all() and (out["prediction"] < out["ci_high"]).all()
    wide = headline.predict(rows, ci=0.99)
    assert (wide["ci_low"] < out["ci_low"]).all() and (wide["ci_high"] > out["ci_high"]).all()
    by_flops = headline.predict(rows.assign(C=6 * rows["N"] * rows["D"])[["N", "C"]], ci=0.9)
    np.testing.assert_allclose(by_flops["prediction"], out["prediction"], rtol=1e-12)
    np.testing.assert_allclose(by_flops["ci_high"], out["ci_high"], rtol=1e-12)

    only_c = headline.predict(pd.DataFrame({"C": [5.76e23]}))
    assert only_c["N_opt"][0] == pytest.approx(alloc["N_opt"][0])
    assert only_c["prediction"][0] == pytest.approx(alloc["L_opt"][0])
    assert headline.loss(only_c["N_opt"], only_c["D_opt"])[0] == pytest.approx(
        only_c["prediction"][0], rel=1e-12
    )


def test_json_round_trip(headline, tmp_path) -> None:
    path = tmp_path / "chinchilla.json"
    headline.save(path)
    back = load_fit(path)
    assert isinstance(back, ComputeOptimal)
    assert back.to_dict() == headline.to_dict()
    assert back.summary() == headline.summary()
    rows = pd.DataFrame({"N": [1e8, 1e10], "C": [1e20, 1e23]})
    pd.testing.assert_frame_equal(back.predict(rows), headline.predict(rows))
    assert "alpha" in headline.summary() and "Huber likelihood" in headline.summary()
    with pytest.raises(FormatError, match="malformed saved state"):
        ComputeOptimal.from_dict({k: v for k, v in headline.to_dict().items() if k != "params"})
    with pytest.raises(FormatError, match="state version"):
        ComputeOptimal.from_dict({**headline.to_dict(), "version": 99})


@pytest.mark.parametrize("kind", ["frontier", "isoflop", "allocation"])
def test_plot_smoke(headline, kind) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert headline.plot(ax, kind=kind) is ax
        assert ax.has_data() and len(ax.get_lines()) >= 1
        if kind != "isoflop":
            assert ax.collections  # runs and the bootstrap band
    finally:
        plt.close(fig)
    own = headline.plot()
    plt.close(own.figure)
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        headline.plot(kind="heatmap")


def test_likelihood_bootstrap_option(runs) -> None:
    fit = ComputeOptimal.fit(
        runs, method="likelihood", start="hoffmann2022", bootstrap="likelihood", n_resamples=300
    )
    assert fit.bootstrap["estimator"] == "likelihood"
    assert fit.bootstrap["failed_fraction"] < 0.03
    assert 0.5 * EPOCH_SE["alpha"] < fit.stderr["alpha"] < 1.5 * EPOCH_SE["alpha"]


def test_bad_input(runs) -> None:
    fam = ComputeOptimal
    small = runs.iloc[:6]
    with pytest.raises(InvalidInputError, match="6 runs are too few for the 6 parameters"):
        fam.fit(small, method="likelihood", n_resamples=0)
    with pytest.raises(InvalidInputError, match="5 runs are too few for the 5 parameters"):
        fam.fit(runs.iloc[:5], n_resamples=0)
    for col in ("N", "D", "L"):
        bad = runs.copy()
        bad.loc[3, col] = 0.0 if col != "L" else -1.0
        with pytest.raises(InvalidInputError, match=f"column '{col}' must be > 0"):
            fam.fit(bad, n_resamples=0)
    flops = runs.assign(C=6 * runs["N"] * runs["D"]).drop(columns="D")
    flops.loc[0, "C"] = -5.0
    with pytest.raises(InvalidInputError, match="column 'C' must be > 0"):
        fam.fit(flops, n_resamples=0)
    nan = runs.copy()
    nan.loc[1, "L"] = np.nan
    with pytest.raises(NonFiniteError, match="column 'L' has 1 non-finite"):
        fam.fit(nan, n_resamples=0)
    with pytest.raises(UnknownNameError, match="missing column\\(s\\) 'L'"):
        fam.fit(runs.drop(columns="L"), n_resamples=0)
    with pytest.raises(InvalidInputError, match=r"missing column 'D' .* or 'C'"):
        fam.fit(runs.drop(columns="D"), n_resamples=0)
    with pytest.raises(InvalidInputError, match="N takes 2 distinct value"):
        fam.fit(runs.assign(N=np.where(np.arange(len(runs)) % 2, 1e8, 1e9)), n_resamples=0)
    with pytest.raises(InvalidInputError, match="must be a pandas DataFrame"):
        fam.fit(runs.to_numpy(), n_resamples=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown option 'n_resample'; did you mean"):
        fam.fit(runs, n_resample=10)
    with pytest.raises(InvalidInputError, match="method must be one of"):
        fam.fit(runs, method="lbfgs")
    with pytest.raises(InvalidInputError, match="start must be 'grid', 'hoffmann2022'"):
        fam.fit(runs, start="hoffmann")
    with pytest.raises(InvalidInputError, match="E, A, B > 0"):
        fam.fit(runs, start=[1.8, -1.0, 400.0, 0.3, 0.3])
    with pytest.raises(InvalidInputError, match="drop_highest=240 leaves no runs"):
        fam.fit(runs, drop_highest=240)


def test_no_bootstrap_means_no_intervals(runs) -> None:
    fit = ComputeOptimal.fit(runs, start="hoffmann2022", n_resamples=0)
    with pytest.warns(InestimableWarning, match="no bootstrap resamples"):
        out = fit.predict(pd.DataFrame({"N": [1e9], "D": [2e10]}))
    assert np.isfinite(out["prediction"]).all() and out["ci_low"].isna().all()
    with pytest.raises(InvalidInputError, match="ci must be in"):
        fit.predict(pd.DataFrame({"N": [1e9], "D": [2e10]}), ci=1.5)
    assert "bootstrap: none" in fit.summary()
