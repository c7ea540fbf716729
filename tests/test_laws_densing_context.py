"""The densing law (capability density) and the context-aware law: synthetic recovery,
intervals, JSON round trips, plots and bad input (laws.md §3 and §5: no public constants, so
data are generated from known constants plus seeded noise)."""

from __future__ import annotations

import json
import math
import warnings

import matplotlib
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
from capscale.laws import doubling_time
from capscale.laws.families.context import (
    ContextLaw,
    ContextOnlyLaw,
    Penalty,
    context_law,
    get_penalty,
    list_penalties,
)
from capscale.laws.families.densing import (
    DensingLaw,
    densing_table_from_store,
    density_trend,
    effective_params,
    loss_from_score,
    loss_law,
    score_law,
)
from capscale.laws.family import get_family, list_families, load_fit

matplotlib.use("Agg")

pytestmark = pytest.mark.filterwarnings("error")

# --------------------------------------------------------------------------- densing data

TRUE_LOSS = {"a": 200.0, "alpha": 0.30, "b": 300.0, "beta": 0.30}
TRUE_SCORE = {"c": 0.75, "gamma": -5.0, "l": 0.75, "d": 0.25}
A_TRUE, B_TRUE = 0.0073, -2.5
ORIGIN = np.datetime64("2023-02-24")
# Table 1 of the paper: the six reference sizes, each trained on 10…60 × N tokens.
REF_SIZES = np.array([5247232, 31470080, 106196736, 245416960, 476852480, 828225024], float)
REF_MULT = np.array([10, 15, 20, 30, 40, 60], float)


def _trend_points(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Release days and true densities: a frontier model every 30 days (5 % noise) and 40
    models below it."""
    t_front = np.arange(0, 720, 30.0)
    t_below = np.round(rng.uniform(0, 700, 40))
    u = np.r_[rng.normal(0, 0.05, t_front.size), 0.2 + rng.exponential(0.7, 40)]
    t = np.r_[t_front, t_below]
    return t, np.exp(A_TRUE * t + B_TRUE - u)


def make_densing_table(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Reference grid (1 % multiplicative loss noise), 24 calibration (loss, score) pairs
    (score noise 0.005) and 64 evaluated models with known densities."""
    rng = np.random.default_rng(seed)
    N = np.repeat(REF_SIZES, REF_MULT.size)
    D = N * np.tile(REF_MULT, REF_SIZES.size)
    L = loss_law(N, D, **TRUE_LOSS) * np.exp(0.01 * rng.normal(size=N.size))
    L_cal = np.linspace(0.3, 1.4, 24)
    S_cal = score_law(L_cal, **TRUE_SCORE) + 0.005 * rng.normal(size=L_cal.size)
    t, rho = _trend_points(rng)
    # Effective sizes where the score law is steep (scores 0.35 … 0.9), so scores invert well.
    n_eff = np.exp(rng.uniform(math.log(6e7), math.log(1.2e9), t.size))
    S = score_law(loss_law(n_eff, 1e12, **TRUE_LOSS), **TRUE_SCORE)
    dates = (ORIGIN + t.astype("timedelta64[D]")).astype(str)
    rows = [{"model": f"ref{i}", "N": N[i], "D": D[i], "loss": L[i]} for i in range(N.size)]
    rows += [{"model": f"cal{i}", "loss": L_cal[i], "score": S_cal[i]} for i in range(24)]
    rows += [
        {"model": f"m{i}", "N": n_eff[i] / rho[i], "score": S[i], "release_date": dates[i]}
        for i in range(t.size)
    ]
    cols = ["model", "N", "D", "loss", "score", "release_date"]
    return pd.DataFrame(rows, columns=cols), rho


@pytest.fixture(scope="module")
def densing() -> tuple[DensingLaw, pd.DataFrame, np.ndarray]:
    table, rho = make_densing_table(0)
    return DensingLaw.fit(table, n_boot=200, seed=0), table, rho


# --------------------------------------------------------------------------- densing: maths


def test_doubling_time_arithmetic() -> None:
    assert doubling_time(0.0073) == pytest.approx(94.95, abs=0.01)
    assert doubling_time(0.007) == pytest.approx(99.02, abs=0.01)
    assert doubling_time(0.0048) == pytest.approx(144.4, abs=0.05)
    assert 0.0073 / 0.0048 == pytest.approx(1.52, abs=0.005)
    # density x hardware price-performance (doubling 2.1 years): "about 88 days"
    assert doubling_time(0.007 + math.log(2) / (2.1 * 365.25)) == pytest.approx(87.7, abs=0.05)


def test_inversion_round_trip_and_reference_density_one() -> None:
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 200:
        lp = {
            "a": rng.uniform(10, 1000),
            "alpha": rng.uniform(0.1, 0.8),
            "b": rng.uniform(10, 1000),
            "beta": rng.uniform(0.1, 0.8),
        }
        N = 10 ** rng.uniform(6, 12)
        d0 = 10 ** rng.uniform(10, 13)
        L = float(loss_law(N, d0, **lp))
        if lp["a"] * N ** -lp["alpha"] < 0.05 * L:
            # L̂ − b·D0^−β cancels: rounding grows by L/(a·N^−α)/α, beyond 1e-9 relative
            continue
        checked += 1
        # The sigmoid's midpoint near L keeps S off the saturated tails.
        sp = {
            "c": rng.uniform(0.2, 1),
            "gamma": -rng.uniform(0.5, 5),
            "l": L + rng.uniform(-1, 1) / 2,
            "d": rng.uniform(0, 0.3),
        }
        S = score_law(L, **sp)
        n_hat = effective_params(S, d0=d0, **lp, **sp)
        assert float(n_hat) == pytest.approx(N, rel=1e-9)


def test_reference_family_has_density_one(densing: tuple) -> None:
    law = densing[0]
    N = np.array([1e8, 3e8, 1e9])
    S = score_law(loss_law(N, law.d0, **law.loss_params), **law.score_params)
    out = law.predict(pd.DataFrame({"N": N, "score": S}), quantity="density")
    np.testing.assert_allclose(out["prediction"], 1.0, rtol=1e-9)


def test_inversion_outside_the_range() -> None:
    kw = {**TRUE_LOSS, **TRUE_SCORE}
    with pytest.raises(InvalidInputError, match=r"score 0\.2 is outside the score law's open"):
        effective_params([0.5, 0.2], **kw)
    with pytest.raises(InvalidInputError, match=r"outside .*\(0\.25, 1\)"):
        loss_from_score(1.0, **TRUE_SCORE)
    # a score whose loss is below the data term b·D0^-beta: no size reaches it
    floor = TRUE_LOSS["b"] * 1e12 ** -TRUE_LOSS["beta"]
    s_top = float(score_law(floor * 0.9, **TRUE_SCORE))
    with pytest.raises(InvalidInputError, match="at or below the data term"):
        effective_params(s_top, **kw)
    got = effective_params([0.2, 1.0, s_top, 0.6], **kw, errors="nan")
    assert np.isnan(got[:3]).all() and np.isfinite(got[3])
    with pytest.raises(InvalidInputError, match="errors must be"):
        effective_params(0.5, **kw, errors="ignore")


def test_trend_recovers_95_days() -> None:
    t, rho = _trend_points(np.random.default_rng(0))
    fit = density_trend(t, rho)
    assert fit.doubling_time == pytest.approx(94.95, abs=2.0)
    assert fit.A == pytest.approx(A_TRUE, rel=0.025)
    assert fit.r2 > 0.99 and fit.n_points >= 15
    for env in ("running_max", "all"):
        assert density_trend(t, rho, envelope=env).A > 0


# --------------------------------------------------------------------------- densing: the fit


def test_densing_recovers_constants(densing: tuple) -> None:
    law, _, _ = densing
    for k in ("alpha", "beta"):
        assert law.loss_params[k] == pytest.approx(TRUE_LOSS[k], rel=0.05)
    ci = law.params_ci(0.99)
    truth = {**TRUE_LOSS, **TRUE_SCORE, "A": A_TRUE, "B": B_TRUE}
    for k, v in truth.items():
        assert ci[k][0] <= v <= ci[k][1], (k, v, ci[k])
    assert law.score_params["gamma"] < 0


def test_densing_recovers_densities_and_doubling_time(densing: tuple) -> None:
    law, _, rho = densing
    dens = law.densities()
    inside = (dens["ci_low"] <= rho) & (rho <= dens["ci_high"])
    assert inside.mean() >= 0.95
    np.testing.assert_allclose(dens["density"], rho, rtol=0.10)
    lo, hi = law.doubling_time_ci()
    assert lo <= math.log(2) / A_TRUE <= hi
    assert law.doubling_time == pytest.approx(95.0, abs=3.0)
    assert dens["envelope"].sum() == law.trend.n_points  # type: ignore[union-attr]
    text = law.summary()
    assert "doubling time" in text and "loss law" in text


def test_densing_bootstrap_is_seed_deterministic(densing: tuple) -> None:
    law, table, _ = densing
    again = DensingLaw.fit(table, n_boot=20, seed=0)
    same = DensingLaw.fit(table, n_boot=20, seed=0)
    other = DensingLaw.fit(table, n_boot=20, seed=1)
    assert again.to_dict()["draws"] == same.to_dict()["draws"]
    assert again.to_dict()["draws"] != other.to_dict()["draws"]
    assert again.doubling_time == law.doubling_time  # the point fit does not depend on seed


def test_densing_predict_covers_truth(densing: tuple) -> None:
    law = densing[0]
    days = np.array([100, 300, 500])
    dates = [str(ORIGIN + np.timedelta64(int(d), "D")) for d in days]
    dmax = law.predict(pd.DataFrame({"release_date": dates}))
    truth = np.exp(A_TRUE * days + B_TRUE)
    assert ((dmax["ci_low"] <= truth) & (truth <= dmax["ci_high"])).all()
    # frontier score of a 1B model released on those dates
    score = law.predict(pd.DataFrame({"N": 1e9, "release_date": dates}))
    s_true = score_law(loss_law(truth * 1e9, 1e12, **TRUE_LOSS), **TRUE_SCORE)
    assert ((score["ci_low"] <= s_true) & (s_true <= score["ci_high"])).all()
    loss = law.predict(pd.DataFrame({"N": [1e8, 1e9], "D": [2e9, 2e10]}))
    l_true = loss_law(np.array([1e8, 1e9]), np.array([2e9, 2e10]), **TRUE_LOSS)
    assert ((loss["ci_low"] <= l_true) & (l_true <= loss["ci_high"])).all()
    n_eff = law.predict(pd.DataFrame({"score": [0.5, 2.0]}), quantity="effective_params")
    assert np.isfinite(n_eff["prediction"][0]) and np.isnan(n_eff["prediction"][1])
    with pytest.raises(UnknownNameError, match="did you mean 'density'"):
        law.predict(pd.DataFrame({"N": [1.0]}), quantity="densty")


def test_densing_json_round_trip(densing: tuple, tmp_path) -> None:
    law, table, _ = densing
    path = tmp_path / "densing.json"
    law.save(path)
    back = load_fit(path)
    assert isinstance(back, DensingLaw)
    assert back.summary() == law.summary()
    ev = table[table["model"].str.startswith("m")]
    pd.testing.assert_frame_equal(back.predict(ev), law.predict(ev))
    assert json.loads(json.dumps(back.to_dict())) == law.to_dict()
    with pytest.raises(FormatError, match="not a densing fit state"):
        DensingLaw.from_dict({"d0": 1e12})


def test_densing_plots(densing: tuple) -> None:
    import matplotlib.pyplot as plt

    law = densing[0]
    ax = law.plot()
    assert len(ax.lines) >= 3 and ax.get_yscale() == "log"
    assert len(ax.lines[0].get_xdata()) == 64
    ax2 = law.plot(kind="score")
    assert len(ax2.lines[0].get_xdata()) == 24
    plt.close("all")


def test_densing_options(densing: tuple) -> None:
    _, table, _ = densing
    win = DensingLaw.fit(table, n_boot=0, window=("2023-06-01", None), envelope="all")
    assert win.trend is not None and win.trend.t.min() >= 97
    assert np.isnan(win.doubling_time_ci()[0])
    renamed = table.rename(columns={"N": "n_params", "score": "acc"})
    law = DensingLaw.fit(renamed, n_boot=0, columns={"N": "n_params", "score": "acc"})
    assert law.A == DensingLaw.fit(table, n_boot=0).A
    assert "prediction" in law.predict(renamed.tail(3)).columns
    no_trend = DensingLaw.fit(table.drop(columns="release_date"), trend=False, n_boot=0)
    assert no_trend.trend is None and "trend: not fitted" in no_trend.summary()
    assert {"densing", "context", "context_only"} <= set(list_families())
    assert get_family("densing") is DensingLaw


def test_densing_score_above_range_is_nan_with_warning(densing: tuple) -> None:
    _, table, _ = densing
    extra = pd.DataFrame(
        [{"model": "too-good", "N": 1e9, "score": 1.2, "release_date": "2024-01-01"}]
    )
    with pytest.warns(InestimableWarning, match="no density for 1 model"):
        law = DensingLaw.fit(pd.concat([table, extra], ignore_index=True), n_boot=0)
    dens = law.densities().set_index("model")
    assert np.isnan(dens.loc["too-good", "density"])
    assert np.isfinite(law.A)


def _edit(table: pd.DataFrame, model: str, **values: object) -> pd.DataFrame:
    out = table.copy()
    for col, v in values.items():
        out[col] = out[col].astype(object)
        out.loc[out["model"] == model, col] = v
    return out


def test_densing_bad_input(densing: tuple) -> None:
    _, table, _ = densing
    few_ref = table[~table["model"].isin([f"ref{i}" for i in range(4, 36)])]
    with pytest.raises(InvalidInputError, match="at least 5 reference rows, got 4"):
        DensingLaw.fit(few_ref, n_boot=0)
    few_cal = table[~table["model"].isin([f"cal{i}" for i in range(3, 24)])]
    with pytest.raises(InvalidInputError, match="at least 5 calibration rows, got 3"):
        DensingLaw.fit(few_cal, n_boot=0)
    with pytest.raises(InvalidInputError, match=r"N must be > 0 .* got -5.0 for 'm3'"):
        DensingLaw.fit(_edit(table, "m3", N=-5.0), n_boot=0)
    with pytest.raises(InvalidInputError, match=r"D must be > 0 .*'ref2'"):
        DensingLaw.fit(_edit(table, "ref2", D=0.0), n_boot=0)
    with pytest.raises(InvalidInputError, match=r"release_date of 'm5' = 'last spring' is not"):
        DensingLaw.fit(_edit(table, "m5", release_date="last spring"), n_boot=0)
    with pytest.raises(InvalidInputError, match="is not a date"):
        DensingLaw.fit(_edit(table, "m5", release_date=20230301), n_boot=0)
    with pytest.raises(InvalidInputError, match="window dates are out of order"):
        DensingLaw.fit(table, n_boot=0, window=("2024-06-01", "2023-06-01"))
    with pytest.raises(InvalidInputError, match="without a release_date: m7"):
        DensingLaw.fit(_edit(table, "m7", release_date=None), n_boot=0)
    dup = pd.concat([table, table[table["model"] == "m1"]], ignore_index=True)
    with pytest.raises(InvalidInputError, match="'m1' appears more than once"):
        DensingLaw.fit(dup, n_boot=0)
    with pytest.raises(InvalidInputError, match="needs at least 3 envelope points"):
        DensingLaw.fit(table.head(36 + 24 + 2), n_boot=0)
    with pytest.raises(UnknownNameError, match="did you mean 'record'"):
        DensingLaw.fit(table, envelope="recrd")
    with pytest.raises(UnknownNameError, match=r"missing column.*'loss'"):
        DensingLaw.fit(table.drop(columns="loss"))
    with pytest.raises(UnknownNameError, match="unknown role 'refrence'"):
        DensingLaw.fit(table.assign(role="refrence"))
    with pytest.raises(InvalidInputError, match="has no role"):
        DensingLaw.fit(_edit(table, "m2", score=np.nan), n_boot=0)
    with pytest.raises(InvalidInputError, match="must be numeric"):
        DensingLaw.fit(_edit(table, "m2", N="big"), n_boot=0)
    with pytest.raises(NonFiniteError, match="inf"):
        DensingLaw.fit(_edit(table, "m2", N=np.inf), n_boot=0)
    with pytest.raises(InvalidInputError, match="n_boot must be 0"):
        DensingLaw.fit(table, n_boot=1)
    with pytest.raises(InvalidInputError, match="unknown option"):
        DensingLaw.fit(table, n_bootstrap=5)
    with pytest.raises(InvalidInputError, match="at least 3 envelope points"):
        density_trend([0, 10], [0.1, 0.2])
    with pytest.raises(InvalidInputError, match="density must be > 0"):
        density_trend([0, 10, 20], [0.1, 0.0, 0.3])


def test_densing_table_from_store(tmp_path) -> None:
    from capscale.store import open_store

    rng = np.random.default_rng(3)
    cards = [
        ("ref-a", "ref", 1e8, 2e9, None),
        ("ref-b", "ref", 4e8, 8e9, None),
        ("big-1", "other", 7e9, 2e12, "2023-07-18"),
    ]
    with open_store(tmp_path / "s.db") as store:
        for name, family, n, d, date in cards:
            card = {"name": name, "family": family, "n_params": int(n)}
            card.update(training_tokens=int(d), release_date=date)
            run = store.start_run(card, "fp16", ("mmlu", "1"))
            recs = [
                {"item_id": str(j), "scores": {"acc": float(j % 2), "nll": 1 + rng.random()}}
                for j in range(20)
            ]
            store.add_records(run, recs)
            store.finish_run(run)
        table = densing_table_from_store(
            store, "mmlu", "acc", loss_metric="nll", reference="ref", n_resamples=100
        )
        assert list(table["model"]) == ["big-1", "ref-a", "ref-b"]
        assert list(table["role"]) == ["evaluated", "reference", "reference"]
        assert table["score"].tolist() == [0.5, 0.5, 0.5]
        assert np.isnan(table["loss"][0]) and (table["loss"][1:] > 1).all()
        assert table["N"][0] == 7e9 and table["D"][1] == 2e9
        assert str(table["release_date"][0].date()) == "2023-07-18"
        with pytest.raises(UnknownNameError, match="did you mean 'acc'"):
            densing_table_from_store(store, "mmlu", "accc")
        with pytest.raises(InvalidInputError, match="together"):
            densing_table_from_store(store, "mmlu", "acc", loss_metric="nll")


# --------------------------------------------------------------------------- context data

TRUE_CTX = {"A": 0.6, "alpha": 0.3, "B": 0.8, "beta": 0.5}
C_REF, N_REF = 1e22, 1000.0
PEN_TRUTH = {"none": (), "sigmoid": (2e-3,), "log_sigmoid": (8.0,)}
N_SHOTS = np.array([0, 1, 3, 7, 15, 31, 63, 127, 255, 511])


def make_context_table(
    penalty: str, seed: int = 0, items: int = 250
) -> tuple[pd.DataFrame, np.ndarray]:
    """4 compute levels × 6 context limits (4k…128k) × the n-shot schedule (≤ 256 tokens a
    demonstration), scores with binomial noise over ``items`` items."""
    rng = np.random.default_rng(seed)
    C = np.array([1e21, 1e22, 1e23, 1e24])
    n_ctx = 4096.0 * 2 ** np.arange(6)
    n = 60.0 + 250 * N_SHOTS
    g = np.array(np.meshgrid(C, n_ctx, n, indexing="ij")).reshape(3, -1)
    P = context_law(
        g[0],
        g[2],
        g[1],
        *TRUE_CTX.values(),
        *PEN_TRUTH[penalty],
        c_ref=C_REF,
        n_ref=N_REF,
        penalty=penalty,
    )
    obs = rng.binomial(items, P) / items
    return pd.DataFrame({"C": g[0], "n": g[2], "n_ctx": g[1], "P": obs}), P


@pytest.fixture(scope="module")
def context_fits() -> dict[str, tuple[ContextLaw, pd.DataFrame, np.ndarray]]:
    out = {}
    for pen in PEN_TRUTH:
        table, truth = make_context_table(pen)
        law = ContextLaw.fit(table, penalty=pen, c_ref=C_REF, n_ref=N_REF, n_boot=100)
        out[pen] = (law, table, truth)
    return out


# --------------------------------------------------------------------------- context tests


def test_context_law_properties() -> None:
    n = np.geomspace(10, 1e6, 200)
    for pen, theta in PEN_TRUTH.items():
        P = context_law(
            1e22, n, 32768, *TRUE_CTX.values(), *theta, c_ref=C_REF, n_ref=N_REF, penalty=pen
        )
        assert ((P >= 0) & (P < 1)).all()
        short = n < 8000
        assert (np.diff(P[short]) > 0).all()
        base = context_law(
            1e22, n, 32768, *TRUE_CTX.values(), c_ref=C_REF, n_ref=N_REF, penalty="none"
        )
        np.testing.assert_allclose(P[n < 1000], base[n < 1000], rtol=1e-3)
        if pen != "none":
            assert P[-1] < 1e-6
    grows = context_law(
        np.geomspace(1e20, 1e25, 20),
        1000,
        4096,
        *TRUE_CTX.values(),
        2e-3,
        c_ref=C_REF,
        n_ref=N_REF,
    )
    assert (np.diff(grows) > 0).all()
    assert set(PEN_TRUTH) <= set(list_penalties())


@pytest.mark.parametrize("penalty", list(PEN_TRUTH))
def test_context_recovers_constants(context_fits: dict, penalty: str) -> None:
    law, _, truth = context_fits[penalty]
    ci = law.params_ci(0.99)
    for k, v in TRUE_CTX.items():
        assert law.params[k] == pytest.approx(v, rel=0.10), k
        assert ci[k][0] <= v <= ci[k][1], (k, v, ci[k])
    for name, v in zip(law.penalty.param_names, PEN_TRUTH[penalty], strict=True):
        assert law.params[name] == pytest.approx(v, rel=0.25)
    X = law.predict(make_context_table(penalty)[0])
    assert np.mean(np.abs(X["prediction"] - truth)) <= 0.01


@pytest.mark.parametrize("penalty", list(PEN_TRUTH))
def test_context_predict_intervals_cover_truth(context_fits: dict, penalty: str) -> None:
    law, table, truth = context_fits[penalty]
    out = law.predict(table)
    covered = (out["ci_low"] - 1e-12 <= truth) & (truth <= out["ci_high"] + 1e-12)
    # Pointwise 95 % intervals share one parameter error, so the covered share of one
    # dataset's grid varies (0.80–1.00 over seeds 0–5, mean 0.95); seed 0: 0.875–1.00.
    assert covered.mean() >= 0.85
    assert (out["ci_low"] <= out["prediction"] + 1e-12).all()


def test_context_delta_method_intervals() -> None:
    table, truth = make_context_table("log_sigmoid", seed=1)
    law = ContextLaw.fit(table, penalty="log_sigmoid", c_ref=C_REF, n_ref=N_REF, n_boot=0)
    out = law.predict(table)
    assert ((out["ci_low"] <= truth + 1e-9) & (truth <= out["ci_high"] + 1e-9)).mean() >= 0.9
    lo, hi = law.params_ci()["alpha"]
    assert lo < TRUE_CTX["alpha"] < hi


def test_context_ablation_without_penalty(context_fits: dict) -> None:
    law, table, _ = context_fits["sigmoid"]
    plain = ContextLaw.fit(table, penalty="none", c_ref=C_REF, n_ref=N_REF, n_boot=0)
    beyond_pen, beyond_none = law.to_dict()["mae"]["beyond"], plain.to_dict()["mae"]["beyond"]
    assert beyond_none >= 5 * beyond_pen
    assert "n > n_ctx" in law.summary()


def test_context_only_variant() -> None:
    rng = np.random.default_rng(5)
    n_ctx = np.array([4096.0, 16384.0, 65536.0])
    n = 60.0 + 250 * N_SHOTS
    g = np.array(np.meshgrid(n_ctx, n, indexing="ij")).reshape(2, -1)
    K, B, beta, s = 0.7, 0.8, 0.5, 6.0
    truth = K * -np.expm1(-B * (g[1] / N_REF) ** beta) / (1 + (g[1] / g[0]) ** s)
    table = pd.DataFrame(
        {"model": "llama-2-7b", "n": g[1], "n_ctx": g[0], "P": rng.binomial(1000, truth) / 1000}
    )
    law = get_family("context_only").fit(table, penalty="log_sigmoid", n_ref=N_REF, n_boot=50)
    assert isinstance(law, ContextOnlyLaw)
    for k, v in {"K": K, "B": B, "beta": beta}.items():
        assert law.params[k] == pytest.approx(v, rel=0.10)
    out = law.predict(table)
    assert ((out["ci_low"] <= truth + 1e-9) & (truth <= out["ci_high"] + 1e-9)).mean() >= 0.9
    back = load_fit_roundtrip(law)
    pd.testing.assert_frame_equal(back.predict(table), out)
    with pytest.raises(InvalidInputError, match="several C values"):
        ContextOnlyLaw.fit(table.assign(C=np.arange(len(table)) + 1.0), penalty="none")


def load_fit_roundtrip(law):  # type: ignore[no-untyped-def]
    return type(law).from_dict(json.loads(json.dumps(law.to_dict())))


def test_context_custom_penalties(context_fits: dict, tmp_path) -> None:
    _, table, _ = context_fits["log_sigmoid"]
    hard = Penalty(
        "test-hard-cut",
        lambda n, n_ctx, s: 1.0 / (1.0 + (n / n_ctx) ** s),
        ("s",),
        start=(4.0,),
        lower=(0.0,),
        upper=(100.0,),
        formula="same as log_sigmoid",
    )
    law = ContextLaw.fit(table, penalty=hard, c_ref=C_REF, n_ref=N_REF, n_boot=0)
    assert law.params["alpha"] == pytest.approx(TRUE_CTX["alpha"], rel=0.1)

    def step(n, n_ctx):  # type: ignore[no-untyped-def]
        return (n <= n_ctx).astype(float)

    law2 = ContextLaw.fit(table, penalty=step, c_ref=C_REF, n_ref=N_REF, n_boot=0)
    assert law2.penalty.name == "callable:step" and law2.params["beta"] > 0
    with pytest.raises(UnknownNameError, match="register_penalty"):
        ContextLaw.from_dict(law2.to_dict())
    assert get_penalty("none").formula == "1"


def test_context_json_round_trip_and_plot(context_fits: dict, tmp_path) -> None:
    import matplotlib.pyplot as plt

    law, table, _ = context_fits["sigmoid"]
    path = tmp_path / "ctx.json"
    law.save(path)
    back = load_fit(path)
    assert isinstance(back, ContextLaw) and back.summary() == law.summary()
    pd.testing.assert_frame_equal(back.predict(table), law.predict(table))
    ax = back.plot()
    assert len(ax.lines) >= 24 and ax.get_xscale() == "log"
    assert ax.lines[0].get_xdata().size == N_SHOTS.size
    plt.close("all")
    with pytest.raises(FormatError, match="not a context fit state"):
        ContextLaw.from_dict({"penalty": "none"})


def test_context_bad_input(context_fits: dict) -> None:
    _, table, _ = context_fits["sigmoid"]
    with pytest.raises(InvalidInputError, match=r"5 rows for 5 parameters.*need at least 6"):
        ContextLaw.fit(table.head(5).assign(C=[1e21, 1e22, 1e23, 1e24, 1e21]))
    with pytest.raises(InvalidInputError, match=r"C must be > 0 .*got -1"):
        ContextLaw.fit(table.assign(C=np.where(table.index == 3, -1.0, table["C"])))
    with pytest.raises(InvalidInputError, match="n must be > 0"):
        ContextLaw.fit(table.assign(n=0.0))
    with pytest.raises(InvalidInputError, match=r"P must be a score in \[0, 1\], got 1.5"):
        ContextLaw.fit(table.assign(P=np.where(table.index == 0, 1.5, table["P"])))
    with pytest.raises(InvalidInputError, match="use 'context_only'"):
        ContextLaw.fit(table.assign(C=1e22))
    short = table[table["n"] <= table["n_ctx"]]
    with pytest.raises(InvalidInputError, match="no row has n > n_ctx"):
        ContextLaw.fit(short, penalty="sigmoid")
    with pytest.raises(UnknownNameError, match="did you mean 'sigmoid'"):
        ContextLaw.fit(table, penalty="sigmod")
    with pytest.raises(UnknownNameError, match=r"missing column.*'n_ctx'"):
        ContextLaw.fit(table.drop(columns="n_ctx"))
    with pytest.raises(NonFiniteError, match="'P' has a non-finite"):
        ContextLaw.fit(table.assign(P=np.nan))
    with pytest.raises(InvalidInputError, match="lower and upper need 1"):
        Penalty("bad", lambda n, c, s: n, ("s",))
    # the size column can be the parameter count instead of compute
    by_size = ContextLaw.fit(
        table.rename(columns={"C": "N"}).assign(N=lambda t: t["N"] / 1e12),
        penalty="none",
        n_boot=0,
    )
    assert by_size.size == "N"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert by_size.predict(table.rename(columns={"C": "N"}).head(2)).shape[0] == 2
