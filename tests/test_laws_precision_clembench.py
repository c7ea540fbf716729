"""Precision laws and the clembench size regression (capscale.laws.families.precision,
capscale.laws.families.clembench_size).

Reproduces the clembench size analysis (Bhavsar et al. 2024; laws.md §1) from the authors'
public data in ../shared/clembench, checks the OLS against NumPy and the textbook (statsmodels)
formulas, and checks the precision family on synthetic curves and hand-built tables.
"""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from capscale.errors import (
    FormatError,
    InvalidInputError,
    NonFiniteError,
    UnknownNameError,
)
from capscale.laws.families._tdist import f_sf, t_ppf, t_sf
from capscale.laws.families.clembench_size import (
    ClembenchSize,
    precision_table,
    size_table,
)
from capscale.laws.families.precision import (
    PrecisionLaw,
    pareto_frontier,
    saturating_exp,
    saturating_exp_jac,
)
from capscale.laws.family import get_family, list_families, load_fit
from capscale.stats import paired_difference
from conftest import shared_path

pytestmark = pytest.mark.filterwarnings("error")

MA = "clembench/ModelAnalysis2024"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- clembench size analysis (laws.md §1 (d) 3) -----------------------------------------------


@pytest.fixture(scope="module")
def clem_size() -> pd.DataFrame:
    return size_table(
        shared_path(MA, "model_characteristics.csv"),
        shared_path("clembench", "clembench-runs_v1.6_results.csv"),
    )


def _ols_reference(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray | float]:
    """OLS written out as statsmodels computes it: lstsq, s² = RSS/(n−p), cov = s²(XᵀX)⁻¹."""
    X = np.column_stack([np.ones(len(y)), np.log(x)])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    n, p = X.shape
    resid = y - X @ beta
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    s2 = rss / (n - p)
    xtx_inv = np.linalg.inv(X.T @ X)
    se = np.sqrt(np.diag(s2 * xtx_inv))
    r2 = 1 - rss / tss
    fval = ((tss - rss) / (p - 1)) / s2
    return {
        "X": X,
        "beta": beta,
        "se": se,
        "s2": s2,
        "xtx_inv": xtx_inv,
        "r2": r2,
        "r2_adj": 1 - (1 - r2) * (n - 1) / (n - p),
        "t": beta / se,
        "p": 2 * scipy.stats.t.sf(np.abs(beta / se), n - p),
        "F": fval,
        "F_p": scipy.stats.f.sf(fval, p - 1, n - p),
        "llf": -n / 2 * (math.log(2 * math.pi) + math.log(rss / n) + 1),
    }


def test_size_table_merges_17_models(clem_size: pd.DataFrame) -> None:
    assert len(clem_size) == 17
    assert list(clem_size.columns) == [
        "model",
        "provider",
        "params_B",
        "tokens_T",
        "clemscore",
        "played",
        "quality",
    ]
    names = set(clem_size["model"])
    # trailing spaces stripped, -hf kept, the 6 Qwen1.5 chat models in
    assert {"meta-llama-3-8b-instruct-hf", "meta-llama-3-70b-instruct-hf"} <= names
    assert sum(n.startswith("qwen1.5-") for n in names) == 6
    # the v1.6 leaderboard value, not the analysis table's 41.72
    gem = clem_size.set_index("model").loc["gemini-1.5-pro-latest"]
    assert gem["clemscore"] == 41.9 and gem["params_B"] == 1500 and gem["tokens_T"] == 30
    everything = size_table(
        shared_path(MA, "model_characteristics.csv"),
        shared_path("clembench", "clembench-runs_v1.6_results.csv"),
        complete=False,
    )
    assert len(everything) == 45  # every characteristics row has a v1.6 result (openchat_3.5)
    assert "openchat-3.5" in set(everything["model"])


def test_size_regression_reproduces_the_notebook(clem_size: pd.DataFrame) -> None:
    fam = get_family("clembench_size")
    assert fam is ClembenchSize
    m1 = fam.fit(clem_size)
    assert isinstance(m1, ClembenchSize) and m1.n == 17
    np.testing.assert_allclose(m1.coef, [-2.8970, 5.4638], atol=1e-3)
    np.testing.assert_allclose(m1.stderr, [4.266, 1.224], atol=1e-3)
    assert abs(m1.rsquared - 0.5707) < 5e-4
    assert abs(m1.rsquared_adj - 0.542) < 5e-4
    assert abs(m1.fvalue - 19.94) < 5e-3 and abs(m1.f_pvalue - 4.5e-4) < 5e-6
    m2 = fam.fit(clem_size, predictors=("params_B", "tokens_T"))
    np.testing.assert_allclose(m2.coef, [-7.2890, 4.4477, 5.5604], atol=1e-3)
    np.testing.assert_allclose(m2.stderr[1:], [1.185, 2.525], atol=1e-3)
    assert abs(m2.rsquared - 0.6811) < 5e-4 and abs(m2.rsquared_adj - 0.636) < 5e-4
    assert m2.param_names == ("intercept", "ln_params_B", "ln_tokens_T")
    text = m2.summary()
    assert "R² = 0.6811" in text and "ln_tokens_T" in text and "5.5604" in text


@pytest.mark.parametrize("predictors", [("params_B",), ("params_B", "tokens_T")])
def test_size_regression_matches_lstsq_and_textbook_formulas(
    clem_size: pd.DataFrame, predictors: tuple[str, ...]
) -> None:
    fit = ClembenchSize.fit(clem_size, predictors=predictors)
    x = clem_size[list(predictors)].to_numpy(float)
    y = clem_size["clemscore"].to_numpy(float)
    ref = _ols_reference(x, y)
    np.testing.assert_allclose(fit.coef, ref["beta"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fit.stderr, ref["se"], rtol=1e-10)
    np.testing.assert_allclose(fit.tvalues, ref["t"], rtol=1e-10)
    np.testing.assert_allclose(fit.pvalues, ref["p"], rtol=1e-8)
    assert fit.rsquared == pytest.approx(ref["r2"], rel=1e-12)
    assert fit.rsquared_adj == pytest.approx(ref["r2_adj"], rel=1e-12)
    assert fit.fvalue == pytest.approx(ref["F"], rel=1e-10)
    assert fit.f_pvalue == pytest.approx(ref["F_p"], rel=1e-8)
    assert fit.llf == pytest.approx(ref["llf"], rel=1e-12)
    k = len(predictors) + 1
    assert fit.aic == pytest.approx(-2 * ref["llf"] + 2 * k, rel=1e-12)
    assert fit.bic == pytest.approx(-2 * ref["llf"] + k * math.log(17), rel=1e-12)
    tq = scipy.stats.t.ppf(0.95, 17 - k)
    np.testing.assert_allclose(
        fit.conf_int(0.9),
        np.column_stack([ref["beta"] - tq * ref["se"], ref["beta"] + tq * ref["se"]]),
        rtol=1e-9,
    )
    # prediction and confidence intervals for new models: ŷ ± t·s·sqrt(1 + x₀ᵀ(XᵀX)⁻¹x₀)
    new = pd.DataFrame({"params_B": [3.0, 70.0, 400.0], "tokens_T": [1.0, 15.0, 15.0]})
    X0 = np.column_stack([np.ones(3), np.log(new[list(predictors)].to_numpy())])
    yhat = X0 @ ref["beta"]
    lever = np.einsum("ij,jk,ik->i", X0, ref["xtx_inv"], X0)
    t975 = scipy.stats.t.ppf(0.975, 17 - k)
    for kind, extra in (("prediction", 1.0), ("confidence", 0.0)):
        out = fit.predict(new, interval=kind)
        half = t975 * np.sqrt(ref["s2"] * (extra + lever))
        np.testing.assert_allclose(out["prediction"], yhat, rtol=1e-10)
        np.testing.assert_allclose(out["ci_low"], yhat - half, rtol=1e-9)
        np.testing.assert_allclose(out["ci_high"], yhat + half, rtol=1e-9)
        assert list(out.columns[:2]) == ["params_B", "tokens_T"]


def test_size_regression_json_round_trip_and_plot(clem_size: pd.DataFrame, tmp_path) -> None:
    fit = ClembenchSize.fit(clem_size, predictors=("params_B", "tokens_T"))
    path = tmp_path / "size.json"
    fit.save(path)
    blob = json.loads(path.read_text())  # strict JSON
    assert blob["family"] == "clembench_size"
    back = load_fit(path)
    assert isinstance(back, ClembenchSize)
    np.testing.assert_array_equal(back.coef, fit.coef)
    np.testing.assert_array_equal(back.cov, fit.cov)
    new = pd.DataFrame({"params_B": [13.0], "tokens_T": [2.0]})
    pd.testing.assert_frame_equal(back.predict(new), fit.predict(new))
    assert back.summary() == fit.summary() and back.labels == fit.labels
    ax = back.plot()
    assert len(ax.collections) >= 2 and len(ax.lines) == 1
    assert ax.get_xscale() == "log" and len(ax.texts) == 17
    _fig, ax2 = plt.subplots()
    assert ClembenchSize.fit(clem_size).plot(ax2) is ax2


def test_size_regression_bad_input(clem_size: pd.DataFrame) -> None:
    one = clem_size.head(1)
    with pytest.raises(InvalidInputError, match="too few points: 1 model"):
        ClembenchSize.fit(one, predictors=("params_B", "tokens_T"))
    with pytest.raises(InvalidInputError, match="too few points: 3 model"):
        ClembenchSize.fit(clem_size.head(3), predictors=("params_B", "tokens_T"))
    with pytest.raises(UnknownNameError, match="missing column\\(s\\) 'tokens_T'"):
        ClembenchSize.fit(clem_size.drop(columns="tokens_T"), predictors=("params_B", "tokens_T"))
    bad = clem_size.copy()
    bad.loc[3, "params_B"] = 0.0
    with pytest.raises(InvalidInputError, match="'params_B' must be > 0"):
        ClembenchSize.fit(bad)
    bad.loc[3, "params_B"] = -5.0
    with pytest.raises(InvalidInputError, match=r"1 value\(s\) <= 0, first -5\.0 at row 3"):
        ClembenchSize.fit(bad)
    same = clem_size.assign(tokens_T=3.0)
    with pytest.raises(InvalidInputError, match="collinear"):
        ClembenchSize.fit(same, predictors=("params_B", "tokens_T"))
    full = size_table(
        shared_path(MA, "model_characteristics.csv"),
        shared_path("clembench", "clembench-runs_v1.6_results.csv"),
        complete=False,
    )
    with pytest.raises(NonFiniteError, match="dropna=True"):
        ClembenchSize.fit(full)
    assert ClembenchSize.fit(full, predictors=("params_B", "tokens_T"), dropna=True).n == 17
    assert ClembenchSize.fit(full, dropna=True).n == 39  # models with a parameter count
    with pytest.raises(InvalidInputError, match="unknown option\\(s\\) predictor"):
        ClembenchSize.fit(clem_size, predictor="params_B")
    fit = ClembenchSize.fit(clem_size)
    with pytest.raises(InvalidInputError, match="ci must be in \\(0, 1\\)"):
        fit.predict(clem_size, ci=1.5)
    with pytest.raises(InvalidInputError, match="interval must be"):
        fit.predict(clem_size, interval="band")
    with pytest.raises(FormatError, match="not a saved clembench_size fit"):
        ClembenchSize.from_dict({"y": "clemscore"})


def test_student_t_and_f_helpers_match_scipy() -> None:
    for df in (1, 2, 3, 14, 15, 200):
        for t in (0.0, 0.3, 2.0, 4.466, 30.0):
            assert t_sf(t, df) == pytest.approx(scipy.stats.t.sf(t, df), rel=1e-9)
            assert t_sf(-t, df) == pytest.approx(scipy.stats.t.sf(-t, df), rel=1e-9)
        for q in (0.025, 0.5, 0.9, 0.975, 0.9995):
            assert t_ppf(q, df) == pytest.approx(scipy.stats.t.ppf(q, df), rel=1e-9, abs=1e-12)
        for f in (0.2, 1.0, 19.94):
            assert f_sf(f, 2, df) == pytest.approx(scipy.stats.f.sf(f, 2, df), rel=1e-9)


# -- the precision / backend table (laws.md §1 (b), (d) 4) ------------------------------------


@pytest.fixture(scope="module")
def clem_precision() -> pd.DataFrame:
    return precision_table(
        shared_path(MA, "clembench_model_scores.csv"), shared_path(MA, "model_characteristics.csv")
    )


def test_precision_table_rebuilt_from_the_data(clem_precision: pd.DataFrame) -> None:
    tab = clem_precision.set_index(["model", "backend"])
    want = {
        ("Meta-Llama-3-70B-Instruct", "huggingface-local"): ("full", 35.11, 80.72, 43.50),
        ("Meta-Llama-3-70B-Instruct", "together.ai"): ("served", 35.20, 79.52, 44.26),
        ("Meta-Llama-3-70B-Instruct", "groq"): ("served", 39.34, 82.35, 47.77),
        ("Meta-Llama-3-70B-Instruct", "anyscale"): ("served", 34.26, 80.00, 42.82),
        ("Meta-Llama-3-8B-Instruct", "huggingface-local"): ("full", 19.99, 76.10, 26.27),
        ("Meta-Llama-3-8B-Instruct", "anyscale"): ("served", 19.32, 75.81, 25.48),
        ("Command-R+", "cohere"): ("full", 24.94, 74.90, 33.30),
    }
    for key, (prec, score, played, quality) in want.items():
        row = tab.loc[key]
        assert (row["precision"], row["clemscore"], row["played"], row["quality"]) == (
            prec,
            score,
            played,
            quality,
        )
    gguf = clem_precision[clem_precision["backend"] == "llama.cpp"].set_index(
        ["model", "precision"]
    )
    expect = {
        ("Meta-Llama-3-70B-Instruct", "q8"): (38.88, 74.40, 52.26, 3.77),
        ("Meta-Llama-3-70B-Instruct", "q4"): (33.57, 78.33, 42.86, -1.54),
        ("Meta-Llama-3-8B-Instruct", "q8"): (20.54, 69.05, 29.74, 0.55),
        ("Meta-Llama-3-8B-Instruct", "q4"): (11.75, 54.84, 21.43, -8.24),
        ("Command-R+", "q8"): (25.53, 74.24, 34.39, 0.59),
        ("Command-R+", "q4"): (19.48, 66.43, 29.33, -5.46),
    }
    for key, values in expect.items():
        row = gguf.loc[key]
        got = (row["clemscore"], row["played"], row["quality"], row["delta_full"])
        np.testing.assert_allclose(got, values, atol=1e-9)
    assert len(clem_precision) == 13
    sizes = clem_precision.groupby("model")["params_B"].first().to_dict()
    assert sizes == {
        "Command-R+": 104.0,
        "Meta-Llama-3-70B-Instruct": 70.0,
        "Meta-Llama-3-8B-Instruct": 8.0,
    }
    served = clem_precision["precision"] == "served"
    assert clem_precision.loc[served, "bits"].isna().all()
    assert clem_precision.loc[~served, "bits"].isin([16.0, 8.0, 4.0]).all()


def test_precision_table_agrees_with_the_leaderboard_files(clem_precision: pd.DataFrame) -> None:
    """The same runs in the v1.6 tables: -hf rows in the leaderboard, GGUF rows in the older
    quantised-only table, hosted-API rows in the backends table."""
    scores = {}
    for name in (
        "clembench-runs_v1.6_results.csv",
        "clembench-runs_v1.6-quantized_results.csv",
        "ModelAnalysis2024/v1.6_backends_results.csv",
    ):
        table = pd.read_csv(shared_path("clembench", *name.split("/")), index_col=0)
        for pair, value in table["-, clemscore"].items():
            scores[pair.split("-t0.0--")[0].lower()] = value
    found = {
        run: scores[run]
        for run in clem_precision["run"]
        if run in scores  # pair names lower-cased match the analysis table's names
    }
    assert set(clem_precision["run"]) - set(found) == {"meta-llama-3-70b-instruct-gguf-q8"}
    mine = clem_precision.set_index("run")["clemscore"]
    for run, value in found.items():
        assert mine[run] == value, run


def test_clembench_precision_frontier(clem_precision: pd.DataFrame) -> None:
    """70B at 4 bit (35 GB) beats 8B at 16 bit (16 GB) and lies on the memory frontier."""
    data = clem_precision.dropna(subset=["bits"]).rename(columns={"clemscore": "score"})
    fit = PrecisionLaw.fit(data, curve=None)
    front = fit.frontier
    assert list(zip(front["model"], front["precision"], strict=True)) == [
        ("Meta-Llama-3-8B-Instruct", "q4"),
        ("Meta-Llama-3-8B-Instruct", "q8"),
        ("Meta-Llama-3-70B-Instruct", "q4"),
        ("Meta-Llama-3-70B-Instruct", "q8"),
    ]
    np.testing.assert_allclose(front["memory_bytes"], [4e9, 8e9, 35e9, 70e9])
    np.testing.assert_allclose(front["diff"].iloc[1:], [8.79, 13.03, 5.31], atol=1e-9)
    assert (front["method"].iloc[1:] == "none").all() and front["diff_low"].isna().all()
    assert fit.curves == {}
    with pytest.raises(InvalidInputError, match="fitted with curve=None"):
        fit.predict(pd.DataFrame({"model": ["Command-R+"], "bits": [6.0]}))
    with pytest.raises(InvalidInputError, match="too few points for model"):
        PrecisionLaw.fit(data)  # 3 widths and no standard errors: no residual dof
    matched = fit.memory_matched(tolerance=1.5)
    row = matched[
        (matched["large_model"] == "Meta-Llama-3-70B-Instruct")
        & (matched["large_precision"] == "q4")
        & (matched["small_model"] == "Meta-Llama-3-8B-Instruct")
        & (matched["small_precision"] == "full")
    ]
    assert len(row) == 1
    assert row["diff"].iloc[0] == pytest.approx(33.57 - 19.99)
    assert row["memory_ratio"].iloc[0] == pytest.approx(35 / 16)


# -- precision family: curve fits --------------------------------------------------------------

BITS = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 16.0])
TRUTH = {  # model: (params, s_inf, drop, lam)
    "small": (1e9, 0.62, 0.35, 0.55),
    "mid": (7e9, 0.74, 0.30, 0.85),
    "large": (70e9, 0.83, 0.20, 1.30),
}


def _aggregated(noise: float, seed: int, with_se: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model, (n, s, d, lam) in TRUTH.items():
        mean = saturating_exp(BITS - BITS[0], s, d, lam)
        for b, m in zip(BITS, mean, strict=True):
            row = {"model": model, "precision": f"int{b:g}", "bits": b, "params": n}
            row["score"] = m + noise * rng.standard_normal()
            if with_se:
                row["score_se"] = noise
            rows.append(row)
    return pd.DataFrame(rows)


def _per_item(n_items: int, seed: int, truth=TRUTH, bits=BITS) -> pd.DataFrame:
    """Bernoulli item scores with a shared per-item difficulty (so the items are paired)."""
    rng = np.random.default_rng(seed)
    u = rng.random(n_items)  # item difficulty: an item is solved when u < p
    rows = []
    for model, (n, s, d, lam) in truth.items():
        for b in bits:
            p = saturating_exp(b - bits[0], s, d, lam)
            flip = rng.random(n_items) < 0.1  # some item-level noise on top
            solved = (u < p) ^ flip
            rows += [
                {
                    "model": model,
                    "precision": f"int{b:g}",
                    "bits": b,
                    "params": n,
                    "item_id": f"q{i}",
                    "score": float(v),
                }
                for i, v in enumerate(solved)
            ]
    return pd.DataFrame(rows)


def test_curve_recovers_known_constants() -> None:
    fit = get_family("precision").fit(_aggregated(0.004, seed=1))
    assert isinstance(fit, PrecisionLaw)
    table = fit.curve_table().set_index("model")
    for model, (_, *true) in TRUTH.items():
        row = table.loc[model]
        assert row["success"] and row["b0"] == 2.0 and row["dof"] == 4
        for name, value in zip(("s_inf", "drop", "lam"), true, strict=True):
            assert abs(row[name] - value) < 3.5 * row[f"{name}_se"], (model, name)
        assert row["half_bits"] == pytest.approx(math.log(2) / row["lam"])
    # the intervals of the predicted curve cover the true curve at every width
    grid = pd.DataFrame({"model": np.repeat(list(TRUTH), 4), "bits": np.tile([2, 3, 6, 16], 3)})
    pred = fit.predict(grid, ci=0.999)
    true_curve = [
        saturating_exp(b - 2.0, *TRUTH[m][1:])
        for m, b in zip(grid["model"], grid["bits"], strict=True)
    ]
    assert ((pred["ci_low"] <= true_curve) & (true_curve <= pred["ci_high"])).all()


def test_curve_fit_matches_scipy_and_delta_method() -> None:
    data = _aggregated(0.01, seed=2, with_se=False).query("model == 'mid'")
    fit = PrecisionLaw.fit(data)
    c = fit.curves["mid"]
    x, y = BITS - 2.0, data["score"].to_numpy()
    popt, pcov = scipy.optimize.curve_fit(
        saturating_exp,
        x,
        y,
        p0=c.x * 1.05,
        jac=saturating_exp_jac,
        bounds=((-np.inf, -np.inf, 1e-3), (np.inf, np.inf, 3.0)),
        method="trf",
        ftol=1e-14,
        xtol=1e-14,
        gtol=1e-14,
    )
    np.testing.assert_allclose(c.x, popt, rtol=1e-6)
    np.testing.assert_allclose(c.cov, pcov, rtol=1e-4)
    assert not c.absolute and c.dof == 4
    # delta-method interval with a Student-t quantile (unknown score variance)
    new = pd.DataFrame({"model": ["mid", "mid"], "bits": [2.5, 12.0], "params": [7e9, 7e9]})
    out = fit.predict(new, ci=0.9)
    g = saturating_exp_jac(new["bits"] - 2.0, *popt)
    se = np.sqrt(np.einsum("ij,jk,ik->i", g, pcov, g))
    half = scipy.stats.t.ppf(0.95, 4) * se
    np.testing.assert_allclose(out["prediction"], saturating_exp(new["bits"] - 2.0, *popt))
    np.testing.assert_allclose(out["ci_high"] - out["prediction"], half, rtol=1e-4)
    np.testing.assert_allclose(out["memory_bytes"], [7e9 * 2.5 / 8, 7e9 * 12 / 8])


def test_bootstrap_curve_intervals_from_item_resamples() -> None:
    data = _per_item(600, seed=3)
    cov = PrecisionLaw.fit(data, n_resamples=200)
    boot = PrecisionLaw.fit(data, ci_method="bootstrap", curve_resamples=150, n_resamples=200)
    for model in TRUTH:
        assert cov.curves[model].absolute
        draws = boot.curves[model].draws
        assert draws is not None and len(draws) >= 140
        np.testing.assert_allclose(boot.curves[model].x, cov.curves[model].x)
    grid = pd.DataFrame({"model": ["small", "mid", "large"], "bits": [3.0, 4.0, 16.0]})
    a, b = cov.predict(grid), boot.predict(grid)
    np.testing.assert_allclose(a["prediction"], b["prediction"])
    width_a = (a["ci_high"] - a["ci_low"]).to_numpy()
    width_b = (b["ci_high"] - b["ci_low"]).to_numpy()
    assert np.all(width_b > 0.4 * width_a) and np.all(width_b < 2.5 * width_a)
    assert (b["ci_low"] <= b["prediction"]).all() and (b["prediction"] <= b["ci_high"]).all()
    # a configuration's score is the item mean; its se the item std / sqrt(n)
    cfg = cov.configs.set_index(["model", "precision"]).loc[("mid", "int4")]
    items = data[(data["model"] == "mid") & (data["precision"] == "int4")]["score"]
    assert cfg["score"] == pytest.approx(items.mean())
    assert cfg["score_se"] == pytest.approx(items.std(ddof=1) / math.sqrt(600))
    assert cfg["n_items"] == 600


# -- precision family: the memory frontier -----------------------------------------------------

HAND = pd.DataFrame(
    [
        # model, precision, bits, params, score   → memory (GB)
        ("S", "int4", 4, 1e9, 0.50),  # 0.5   frontier
        ("S", "int8", 8, 1e9, 0.60),  # 1.0   frontier
        ("S", "bf16", 16, 1e9, 0.62),  # 2.0   dominated by M int4 (1.5 GB, 0.66)
        ("M", "int4", 4, 3e9, 0.66),  # 1.5   frontier
        ("M", "int8", 8, 3e9, 0.70),  # 3.0   frontier
        ("M", "bf16", 16, 3e9, 0.69),  # 6.0   dominated by L int4
        ("L", "ternary", 1.5, 8e9, 0.40),  # 1.5   ties M int4 in memory, lower score
        ("L", "int2", 2, 8e9, 0.55),  # 2.0   dominated
        ("L", "int4", 4, 8e9, 0.75),  # 4.0   frontier
        ("L", "bf16", 16, 8e9, 0.76),  # 16.0  frontier
    ],
    columns=["model", "precision", "bits", "params", "score"],
)
HAND_FRONTIER = [("S", "int4"), ("S", "int8"), ("M", "int4"), ("M", "int8"), ("L", "int4"),
                 ("L", "bf16")]  # fmt: skip


def test_pareto_frontier_on_a_hand_built_table() -> None:
    fit = PrecisionLaw.fit(HAND, curve=None)
    front = fit.frontier
    assert list(zip(front["model"], front["precision"], strict=True)) == HAND_FRONTIER
    np.testing.assert_allclose(front["memory_bytes"] / 1e9, [0.5, 1.0, 1.5, 3.0, 4.0, 16.0])
    np.testing.assert_allclose(front["diff"].iloc[1:], [0.10, 0.06, 0.04, 0.05, 0.01], atol=1e-12)
    assert math.isnan(front["diff"].iloc[0])
    idx = pareto_frontier(HAND["params"] * HAND["bits"] / 8, HAND["score"])
    assert [tuple(HAND.loc[i, ["model", "precision"]]) for i in idx] == HAND_FRONTIER
    # equal memory and equal score: the first (smaller memory wins; at a tie, one survives)
    assert pareto_frontier([1.0, 1.0, 2.0], [0.5, 0.5, 0.5]).tolist() == [0]
    # memory matching: 2.0 GB S bf16 vs L int2, and 1.5 GB M int4 vs L ternary
    matched = fit.memory_matched(tolerance=0.0)
    pairs = set(
        zip(matched["large_model"], matched["large_precision"], matched["small_model"],
            matched["small_precision"], strict=True)
    )  # fmt: skip
    assert pairs == {("L", "int2", "S", "bf16"), ("L", "ternary", "M", "int4")}
    got = matched.set_index("large_precision")["diff"]
    assert got["int2"] == pytest.approx(0.55 - 0.62) and got["ternary"] == pytest.approx(-0.26)
    wide = fit.memory_matched(tolerance=1.0)  # within a factor of 2
    assert len(wide) > len(matched) and (wide["memory_ratio"].between(0.5, 2.0)).all()
    assert (wide["large_memory_bytes"].diff().dropna() >= 0).all()


def test_frontier_differences_use_paired_difference() -> None:
    truth = {"S": (1e9, 0.6, 0.3, 0.7), "L": (8e9, 0.8, 0.25, 1.0)}
    bits = np.array([2.0, 4.0, 8.0, 16.0])
    data = _per_item(300, seed=7, truth=truth, bits=bits)
    fit = PrecisionLaw.fit(data, n_resamples=3000, seed=11, ci=0.9)
    front = fit.frontier
    assert len(front) >= 3 and (front["method"].iloc[1:] == "paired_bootstrap").all()
    for k in range(1, len(front)):
        cur, prev = front.iloc[k], front.iloc[k - 1]

        def items(row):
            sel = (data["model"] == row["model"]) & (data["precision"] == row["precision"])
            return data[sel].set_index("item_id")["score"]

        direct = paired_difference(items(cur), items(prev), ci=0.9, n_resamples=3000, seed=11)
        assert cur["diff"] == direct.diff and cur["p_value"] == direct.p_value
        assert (cur["diff_low"], cur["diff_high"]) == (direct.low, direct.high)
        assert cur["n_paired"] == direct.n == 300
        assert cur["diff"] == pytest.approx(cur["score"] - prev["score"])
    matched = fit.memory_matched(tolerance=0.01)  # L at 2 bit (2 GB) vs S at 16 bit (2 GB)
    assert len(matched) == 1
    row = matched.iloc[0]
    assert (row["large_model"], row["large_bits"], row["small_model"], row["small_bits"]) == (
        "L",
        2.0,
        "S",
        16.0,
    )
    direct = paired_difference(
        data[(data["model"] == "L") & (data["bits"] == 2)].set_index("item_id")["score"],
        data[(data["model"] == "S") & (data["bits"] == 16)].set_index("item_id")["score"],
        ci=0.9,
        n_resamples=3000,
        seed=11,
    )
    assert (row["diff"], row["diff_low"], row["diff_high"]) == (
        direct.diff,
        direct.low,
        direct.high,
    )


def test_aggregated_frontier_with_standard_errors_uses_normal_intervals() -> None:
    data = HAND.assign(score_se=0.01)
    fit = PrecisionLaw.fit(data, curve=None, ci=0.95)
    row = fit.frontier.iloc[1]
    half = scipy.stats.norm.ppf(0.975) * math.sqrt(2) * 0.01
    assert row["method"] == "normal"
    assert row["diff_low"] == pytest.approx(0.10 - half) and row["diff_high"] == pytest.approx(
        0.10 + half
    )
    assert row["p_value"] == pytest.approx(2 * scipy.stats.norm.sf(0.10 / (math.sqrt(2) * 0.01)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 20), st.integers(0, 20)), min_size=1, max_size=25
    )  # (memory, score) on a coarse grid: many ties
)
def test_pareto_frontier_properties(points) -> None:
    mem = np.array([p[0] for p in points], dtype=float)
    score = np.array([p[1] for p in points], dtype=float)
    idx = pareto_frontier(mem, score)
    assert np.all(np.diff(mem[idx]) > 0) and np.all(np.diff(score[idx]) > 0)
    on = set(idx.tolist())
    for i in range(len(mem)):
        # i is off the frontier exactly when some frontier point has <= memory and >= score
        # (strictly better in one of them, or an identical point kept instead of i)
        covered = any(mem[j] <= mem[i] and score[j] >= score[i] for j in on if j != i)
        assert (i not in on) == covered, (i, points)


# -- JSON, plots, registry ---------------------------------------------------------------------


def test_precision_json_round_trip_and_plots(tmp_path) -> None:
    data = _per_item(200, seed=5)
    fit = PrecisionLaw.fit(data, ci_method="bootstrap", curve_resamples=50, n_resamples=500)
    path = tmp_path / "precision.json"
    fit.save(path)
    text = path.read_text()
    assert "NaN" not in text  # strict JSON
    back = load_fit(path)
    assert isinstance(back, PrecisionLaw)
    grid = pd.DataFrame({"model": ["small", "large"], "bits": [3.0, 8.0]})
    pd.testing.assert_frame_equal(back.predict(grid), fit.predict(grid))
    pd.testing.assert_frame_equal(back.frontier, fit.frontier, check_dtype=False)
    pd.testing.assert_frame_equal(back.configs, fit.configs, check_dtype=False)
    pd.testing.assert_frame_equal(
        back.memory_matched(0.5), fit.memory_matched(0.5), check_dtype=False
    )
    assert back.summary() == fit.summary()
    agg = PrecisionLaw.fit(_aggregated(0.01, seed=4, with_se=False))
    again = PrecisionLaw.from_dict(json.loads(json.dumps(agg.to_dict())))
    pd.testing.assert_frame_equal(again.predict(grid), agg.predict(grid))
    assert again.items is None
    ax = fit.plot()
    assert ax.get_xscale() == "log" and len(ax.lines) >= 1 and len(ax.containers) == 3
    assert len(ax.get_legend().get_texts()) == 4
    ax2 = fit.plot_curves()
    assert len(ax2.lines) >= 3 and len(ax2.collections) >= 3
    _fig, ax3 = plt.subplots()
    assert PrecisionLaw.fit(HAND, curve=None).plot(ax3) is ax3
    with pytest.raises(FormatError, match="not a saved precision fit"):
        PrecisionLaw.from_dict({"configs": {}})


def test_registry_and_summary() -> None:
    names = list_families()
    assert "precision" in names and "clembench_size" in names
    assert get_family("precision") is PrecisionLaw
    text = PrecisionLaw.fit(_aggregated(0.01, seed=4)).summary()
    assert "Pareto frontier" in text and "s_inf" in text and "large" in text


# -- bad input --------------------------------------------------------------------------------


def test_precision_bad_input() -> None:
    with pytest.raises(UnknownNameError, match="missing column\\(s\\) 'bits'"):
        PrecisionLaw.fit(HAND.drop(columns="bits"))
    with pytest.raises(UnknownNameError, match="missing column\\(s\\) 'params'"):
        PrecisionLaw.fit(HAND.drop(columns="params"))
    with pytest.raises(InvalidInputError, match="bits must be > 0; 1 value\\(s\\) <= 0"):
        PrecisionLaw.fit(HAND.assign(bits=HAND["bits"].where(HAND.index != 2, 0.0)))
    with pytest.raises(InvalidInputError, match="params must be > 0"):
        PrecisionLaw.fit(HAND.assign(params=-1.0))
    with pytest.raises(NonFiniteError, match="'score' has 1 missing"):
        PrecisionLaw.fit(HAND.assign(score=HAND["score"].where(HAND.index != 0)))
    with pytest.raises(InvalidInputError, match=r"too few points for model 'M'.*4 configurations"):
        PrecisionLaw.fit(HAND)  # M has 3 widths and no standard errors: no residual dof
    assert len(PrecisionLaw.fit(HAND.assign(score_se=0.01)).curves) == 3
    with pytest.raises(InvalidInputError, match="needs 3 distinct bit widths"):
        PrecisionLaw.fit(HAND[HAND["bits"].isin([4, 8])].assign(score_se=0.01))
    with pytest.raises(InvalidInputError, match="appears twice"):
        PrecisionLaw.fit(pd.concat([HAND, HAND.head(1)]), curve=None)
    with pytest.raises(InvalidInputError, match="several params values"):
        PrecisionLaw.fit(HAND.assign(params=np.arange(1, 11) * 1e9), curve=None)
    with pytest.raises(InvalidInputError, match="needs a per-item table"):
        PrecisionLaw.fit(HAND, ci_method="bootstrap")
    with pytest.raises(UnknownNameError, match="unknown curve 'logistic'"):
        PrecisionLaw.fit(HAND, curve="logistic")
    with pytest.raises(InvalidInputError, match="unknown option\\(s\\) n_boot"):
        PrecisionLaw.fit(HAND, n_boot=10)
    with pytest.raises(InvalidInputError, match="the table is empty"):
        PrecisionLaw.fit(HAND.iloc[:0])
    items = _per_item(5, seed=0).query("not (model == 'mid' and precision == 'int4')")
    one = pd.concat([items, items.head(1).assign(precision="solo", bits=3.5)])
    with pytest.raises(InvalidInputError, match="has 1 item"):
        PrecisionLaw.fit(one, curve=None)
    dup = pd.concat([items, items.head(1)])
    with pytest.raises(InvalidInputError, match="item 'q0' appears twice"):
        PrecisionLaw.fit(dup, curve=None)
    fit = PrecisionLaw.fit(_aggregated(0.01, seed=4))
    with pytest.raises(UnknownNameError, match=r"no curve for model 'smal'.*did you mean 'small'"):
        fit.predict(pd.DataFrame({"model": ["smal"], "bits": [4.0]}))
    with pytest.raises(InvalidInputError, match="bits must be > 0"):
        fit.predict(pd.DataFrame({"model": ["small"], "bits": [-4.0]}))
    with pytest.raises(InvalidInputError, match="tolerance must be >= 0"):
        fit.memory_matched(-0.1)


def test_store_style_columns_are_accepted() -> None:
    """Tables from capscale.laws.data.table_from_store name the size n_params and the
    standard error stderr."""
    data = _aggregated(0.01, seed=6).rename(columns={"params": "n_params", "score_se": "stderr"})
    fit = PrecisionLaw.fit(data)
    ref = PrecisionLaw.fit(_aggregated(0.01, seed=6))
    np.testing.assert_allclose(fit.curves["mid"].x, ref.curves["mid"].x)
    assert fit.curves["mid"].absolute


def test_step_like_data_stop_on_the_lambda_bound() -> None:
    """Full recovery within one step of widths (clembench's 8B: q4 collapses, q8 ≈ full):
    λ stops on its upper bound, reported, instead of a plateau where ∂S/∂λ vanishes."""
    data = pd.DataFrame(
        {
            "model": "8B",
            "bits": [4.0, 6.0, 8.0, 16.0],
            "params": 8e9,
            "score": [11.75, 20.3, 20.54, 19.99],
            "score_se": 1.0,
        }
    )
    fit = PrecisionLaw.fit(data)
    row = fit.curve_table().iloc[0]
    assert row["success"] and row["at_bound"] == "lam" and row["lam"] == 3.0
    assert row["drop"] == pytest.approx(20.28 - 11.75, abs=0.1)
    assert "(at bound: lam)" in fit.summary()
    assert PrecisionLaw.from_dict(fit.to_dict()).curves["8B"].at_bound == ("lam",)
