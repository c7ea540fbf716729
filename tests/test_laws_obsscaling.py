"""Observational scaling laws (Ruan et al. 2024): reproduce the paper's numbers from the authors'
public data in ../shared/obsscaling, the JSON round trip, plots and input errors.

The reference numbers are those of ../shared/reference/laws.md §4 (b) and (d).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capscale.errors import FormatError, InestimableWarning, InvalidInputError, UnknownNameError
from capscale.laws.families.obsscaling import (
    BENCHMARKS,
    NON_GSM8K_BENCHMARKS,
    PAPER_FAMILIES,
    PREREGISTERED_MODELS,
    BenchmarkPCA,
    ObsScaling,
    compute_efficiency,
    flops_split,
    load_obsscaling_matrix,
)
from capscale.laws.family import get_family, list_families, load_fit
from conftest import shared_path

pytestmark = pytest.mark.filterwarnings("error")

POST = "base_llm_post_training_eval.csv"
#: Paper Fig. C.5(b): target column, (w*, b*) as printed, MSE train / test as printed.
GSM8K_LAWS = [
    ("gsm8k_5_exact_match,flexible-extract", (1.09, -4.77), "4.6e-05", "2.6e-03", 45),
    ("gsm8k_cot_8_exact_match,flexible-extract", (2.04, -5.53), "3.1e-03", "6.0e-03", 47),
    (
        "gsm8k_cot_self_consistency_8_exact_match,maj@5-flexible-extract",
        (2.19, -5.74),
        "2.9e-03",
        "6.4e-03",
        47,
    ),
]
COT = GSM8K_LAWS[1][0]


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    """The paper's 77-model base matrix."""
    return load_obsscaling_matrix(shared_path("obsscaling"))


@pytest.fixture(scope="module")
def post() -> pd.DataFrame:
    """Base models (with the pre-registered ones flagged) joined with the GSM8K/BBH targets."""
    folder = shared_path("obsscaling")
    return load_obsscaling_matrix(folder, folder / POST, preregistered="keep")


def _gsm8k_fit(post: pd.DataFrame, target: str, **options) -> ObsScaling:
    opts = dict(benchmarks=NON_GSM8K_BENCHMARKS, test="preregistered", n_resamples=0)
    opts.update(options)
    return ObsScaling.fit(post, target=target, **opts)


@pytest.fixture(scope="module")
def boot_fit(post: pd.DataFrame) -> ObsScaling:
    return _gsm8k_fit(post, COT, n_resamples=300, seed=7)


# -- the paper's data and PCA ------------------------------------------------------------------


def test_paper_base_set(base: pd.DataFrame) -> None:
    assert len(base) == 77
    assert base["Model Family"].nunique() == 21
    assert set(base["Model Family"]) <= set(PAPER_FAMILIES)
    assert int(base[list(BENCHMARKS)].isna().sum().sum()) == 6  # < 1 % missing
    folder = shared_path("obsscaling")
    kept = load_obsscaling_matrix(folder, preregistered="keep")
    assert len(kept) == 97 and int(kept["preregistered"].sum()) == len(PREREGISTERED_MODELS)
    assert len(load_obsscaling_matrix(folder, preregistered="only")) == 20


def test_pca_explained_variance_and_loadings(base: pd.DataFrame) -> None:
    pca = BenchmarkPCA.fit(base, BENCHMARKS)
    evr = pca.explained_variance_ratio
    assert evr[0] == pytest.approx(0.8016, abs=5e-4)
    assert evr[:3].sum() == pytest.approx(0.9670, abs=5e-4)
    np.testing.assert_allclose(evr[1:3], [0.1190, 0.0463], atol=5e-4)
    want = [0.448, 0.344, 0.379, 0.242, 0.085, 0.552, 0.214, 0.347]
    np.testing.assert_allclose(pca.components[0], want, atol=2e-3)
    assert list(pca.loadings(3).columns) == ["PC-1", "PC-2", "PC-3"]
    # Imputing the train rows again with the fitted PCA reaches the same fixed point.
    np.testing.assert_allclose(pca.impute(base), pca.imputed, atol=1e-10)
    assert np.isnan(base[list(BENCHMARKS)].to_numpy()).any()
    assert not np.isnan(pca.imputed).any() and pca.imputed.min() >= 0


def test_instruct_pca() -> None:
    table = pd.read_csv(shared_path("obsscaling", "instruct_llm_benchmark_eval.csv"))
    names = ["MMLU", "ARC-C", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K", "HumanEval"]
    pca = BenchmarkPCA.fit(table, names)
    assert pca.explained_variance_ratio[:3].sum() == pytest.approx(0.985, abs=2e-3)


def test_flops_cutoff_split(base: pd.DataFrame) -> None:
    train = flops_split(base, 84.0)
    assert int(train.sum()) == 47 and int((~train).sum()) == 30
    assert not train[base["FLOPs (1E21)"].isna().to_numpy()].any()  # unknown FLOPs → test
    fitted = ObsScaling.fit(base, target="GSM8K", benchmarks=NON_GSM8K_BENCHMARKS, n_resamples=0)
    assert (fitted.n_train, fitted.n_test) == (47, 30)


def test_compute_efficiency_lines(base: pd.DataFrame) -> None:
    pca = BenchmarkPCA.fit(base)
    known = base["FLOPs (1E21)"].notna().to_numpy()
    eff = compute_efficiency(
        pca.transform(base, 3)[known],
        base["FLOPs (1E21)"][known],
        base["Model Family"][known],
    )
    want = {  # PC-1 = slope·log10 C + intercept (laws.md §4 (b))
        "Llama-2": (0.520, -0.924),
        "Pythia": (0.166, -0.415),
        "OPT": (0.134, -0.405),
        "Qwen1.5": (0.426, -0.522),
    }
    for fam, (slope, intercept) in want.items():
        assert eff.loc[fam, "slope_PC-1"] == pytest.approx(slope, abs=1e-3)
        assert eff.loc[fam, "intercept_PC-1"] == pytest.approx(intercept, abs=1e-3)
    assert eff.loc["Llama-2", "r2_PC-1"] > 0.999
    assert eff.loc["StarCoder2", "r2_PC-1"] == pytest.approx(0.899, abs=1e-3)


# -- the GSM8K post-training laws (Fig. C.5 b) -------------------------------------------------


@pytest.mark.parametrize(("target", "law", "mse_train", "mse_test", "n_train"), GSM8K_LAWS)
def test_gsm8k_post_training_laws(
    post: pd.DataFrame,
    target: str,
    law: tuple[float, float],
    mse_train: str,
    mse_test: str,
    n_train: int,
) -> None:
    fitted = _gsm8k_fit(post, target)
    assert fitted.status in (1, 2, 3, 4)
    slope, intercept = fitted.reference
    assert (round(slope, 2), round(intercept, 2)) == law
    assert fitted.equation() == f"σ({law[0]:.2f}x - {-law[1]:.2f})"
    assert f"{fitted.mse_train:.1e}" == mse_train
    assert f"{fitted.mse_test:.1e}" == mse_test
    assert fitted.n_train == n_train
    assert (
        not fitted.table["model"].isin(PREREGISTERED_MODELS)[fitted.table["split"] == "train"].any()
    )
    assert fitted.equation() in fitted.summary()


@pytest.mark.parametrize("target", [row[0] for row in GSM8K_LAWS])
def test_native_solver_reaches_scipy_optimum(post: pd.DataFrame, target: str) -> None:
    optimize = pytest.importorskip("scipy.optimize")
    fitted = _gsm8k_fit(post, target)
    train = fitted.table[fitted.table["split"] == "train"]
    design = np.column_stack([np.ones(len(train)), train[["PC-1", "PC-2", "PC-3"]].to_numpy()])
    y = train["target"].to_numpy()

    def model(d, *p):
        return (1 - p[-1]) / (1 + np.exp(-(d @ np.asarray(p[:-1])))) + p[-1]

    bounds = ([-np.inf] * 4 + [0.0], [np.inf] * 4 + [0.2])
    popt, _ = optimize.curve_fit(
        model, design, y, p0=[0, 0.01, 0.01, 0.01, 0], bounds=bounds, maxfev=10000
    )
    sse_scipy = float(np.sum((model(design, *popt) - y) ** 2))
    sse_ours = float(np.sum((fitted.table["prediction"][train.index] - y) ** 2))
    assert sse_ours <= sse_scipy * (1 + 1e-9)


# -- bootstrap and prediction ------------------------------------------------------------------


def test_bootstrap_intervals_are_seed_deterministic(post: pd.DataFrame, boot_fit) -> None:
    rows = post[post[COT].notna()]
    a = boot_fit.predict(rows)
    b = _gsm8k_fit(post, COT, n_resamples=300, seed=7).predict(rows)
    np.testing.assert_array_equal(a[["ci_low", "ci_high"]], b[["ci_low", "ci_high"]])
    c = _gsm8k_fit(post, COT, n_resamples=300, seed=8).predict(rows)
    assert not np.array_equal(a["ci_low"], c["ci_low"])
    assert (a["ci_low"] < a["ci_high"]).all()
    inside = (a["ci_low"] <= a["prediction"]) & (a["prediction"] <= a["ci_high"])
    assert inside.mean() > 0.9
    np.testing.assert_allclose(a["prediction"], boot_fit.table["prediction"], atol=1e-12)
    assert int(boot_fit.bootstrap.ok.sum()) >= 290
    ci = boot_fit.bootstrap_ci()
    for name in ("w*", "b*", "b"):
        assert ci.loc[name, "ci_low"] <= ci.loc[name, "estimate"] <= ci.loc[name, "ci_high"]
    # Wider level, wider interval.
    wide = boot_fit.predict(rows.head(5), ci=0.99)
    assert (wide["ci_high"] - wide["ci_low"] >= a["ci_high"].head(5) - a["ci_low"].head(5)).all()


def test_predict_from_family_compute(boot_fit) -> None:
    new = pd.DataFrame(
        {"Model Family": ["Llama-2", "Llama-2", "Pythia"], "FLOPs (1E21)": [84.0, 840.0, 10.0]}
    )
    out = boot_fit.predict(new)
    assert list(out.columns[-4:]) == ["equivalent_log10_flops", "prediction", "ci_low", "ci_high"]
    assert out["prediction"][0] < out["prediction"][1]  # more compute, higher accuracy
    assert (out["ci_low"] < out["prediction"]).all() and (out["prediction"] < out["ci_high"]).all()
    # On its own family's line, Llama-2's equivalent compute is close to its real compute.
    assert out["equivalent_log10_flops"][0] == pytest.approx(np.log10(84.0), abs=0.15)
    with pytest.raises(InvalidInputError, match="family 'Mistral' has 0 model"):
        boot_fit.predict(pd.DataFrame({"Model Family": ["Mistral"], "FLOPs (1E21)": [100.0]}))
    with pytest.raises(InvalidInputError, match="did you mean 'Pythia'"):
        boot_fit.predict(pd.DataFrame({"Model Family": ["Pythai"], "FLOPs (1E21)": [1.0]}))
    with pytest.raises(InvalidInputError, match="must be > 0"):
        boot_fit.predict(pd.DataFrame({"Model Family": ["Pythia"], "FLOPs (1E21)": [0.0]}))
    with pytest.raises(InvalidInputError, match=r"ci must be in \(0, 1\)"):
        boot_fit.predict(new, ci=1.5)


def test_family_with_one_model_has_no_compute_line(base: pd.DataFrame) -> None:
    pythia = base.index[base["Model Family"] == "Pythia"]
    fitted = ObsScaling.fit(base.drop(index=pythia[1:]), **_gsm(base))
    assert "Pythia" not in fitted.efficiency.index and "OPT" in fitted.efficiency.index
    row = pd.DataFrame({"Model Family": ["Pythia"], "FLOPs (1E21)": [10.0]})
    with pytest.raises(InvalidInputError, match=r"family 'Pythia' has 1 model.*needs at least 2"):
        fitted.predict(row)
    scores = base.loc[[pythia[0]]]  # the same family predicted from its benchmark scores
    assert np.isfinite(fitted.predict(scores)["prediction"]).all()


def test_delta_method_intervals_without_bootstrap(post: pd.DataFrame) -> None:
    fitted = _gsm8k_fit(post, COT)
    out = fitted.predict(post.head(8))
    assert ((out["ci_low"] < out["prediction"]) & (out["prediction"] < out["ci_high"])).all()
    with pytest.raises(InvalidInputError, match="no bootstrap"):
        fitted.bootstrap_ci()


def test_option_variants(base: pd.DataFrame) -> None:
    opts = _gsm(base)
    plain = ObsScaling.fit(base, reference_family=None, cutoff=None, standardize=True, **opts)
    assert plain.reference is None and plain.n_test == 0 and np.isnan(plain.mse_test)
    assert plain.equation().startswith("σ(") and "·PC-1" in plain.equation()
    assert "standardised" in plain.summary()
    out = plain.predict(base.head(3))
    assert out["equivalent_log10_flops"].isna().all() and out["prediction"].between(0, 1).all()
    centred = ObsScaling.fit(base, **opts)
    assert not np.allclose(
        plain.pca.explained_variance_ratio, centred.pca.explained_variance_ratio, atol=1e-3
    )
    # Benchmark scores with gaps are imputed with the train PCA before projection.
    gappy = base.head(4).copy()
    gappy.loc[:, ["ARC-C", "HumanEval"]] = np.nan
    assert np.isfinite(centred.predict(gappy)["prediction"]).all()
    with pytest.raises(InvalidInputError, match="using must be"):
        centred.predict(gappy, using="magic")


# -- persistence, registry, plots --------------------------------------------------------------


def test_json_round_trip(boot_fit, post: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "obsscaling.json"
    boot_fit.save(path)
    loaded = load_fit(path)
    assert isinstance(loaded, ObsScaling)
    rows = pd.concat(
        [
            post.head(12),
            pd.DataFrame({"Model Family": ["OPT", "Qwen1.5"], "FLOPs (1E21)": [30.0, 900.0]}),
        ],
        ignore_index=True,
    )
    want, got = boot_fit.predict(rows), loaded.predict(rows)
    cols = ["equivalent_log10_flops", "prediction", "ci_low", "ci_high"]
    np.testing.assert_array_equal(want[cols].to_numpy(), got[cols].to_numpy())
    assert loaded.summary() == boot_fit.summary()
    pd.testing.assert_frame_equal(loaded.table, boot_fit.table)


def test_registered_family(post: pd.DataFrame) -> None:
    assert "obsscaling" in list_families()
    assert get_family("obsscaling") is ObsScaling
    assert ObsScaling.name == "obsscaling" and ObsScaling.description


@pytest.mark.parametrize("kind", ["prediction", "variance", "loadings", "efficiency"])
def test_plot_smoke(boot_fit, kind: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert boot_fit.plot(ax, kind=kind) is ax
        assert ax.lines or ax.collections or ax.patches
        if kind == "prediction":
            assert len(ax.collections) >= 3  # train, test, bootstrap band
            assert "Llama-2-equivalent" in ax.get_xlabel()
    finally:
        plt.close(fig)


# -- bad input ---------------------------------------------------------------------------------


def _gsm(base: pd.DataFrame) -> dict:
    return dict(target="GSM8K", benchmarks=NON_GSM8K_BENCHMARKS, n_resamples=0)


def test_bad_inputs(base: pd.DataFrame) -> None:
    opts = _gsm(base)
    one_llama2 = base[
        ~base["Model"].isin(["meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf"])
    ]
    with pytest.raises(InvalidInputError, match="reference family 'Llama-2' has 1 model"):
        ObsScaling.fit(one_llama2, **opts)
    no_humaneval = base.assign(HumanEval=np.nan)
    with pytest.raises(InvalidInputError, match="'HumanEval' have no score on the train split"):
        ObsScaling.fit(no_humaneval, **opts)
    zero = base.copy()
    zero.loc[3, "FLOPs (1E21)"] = 0.0
    with pytest.raises(InvalidInputError, match=r"FLOPs \(1E21\) must be > 0 .* got 0.0"):
        ObsScaling.fit(zero, **opts)
    with pytest.raises(InvalidInputError, match="too few train models for n_components=3"):
        ObsScaling.fit(base, cutoff=0.5, **opts)
    with pytest.raises(InvalidInputError, match="n_components=8 exceeds the 7 benchmarks"):
        ObsScaling.fit(base, n_components=8, **opts)
    with pytest.raises(InvalidInputError, match="target= option"):
        ObsScaling.fit(base)
    with pytest.raises(InvalidInputError, match="unknown option 'cutof'; did you mean 'cutoff'"):
        ObsScaling.fit(base, cutof=10, **opts)
    with pytest.raises(InvalidInputError, match=r"must lie in \[0, 1\]"):
        ObsScaling.fit(base.assign(GSM8K=base["GSM8K"] * 100), **opts)
    with pytest.raises(InvalidInputError, match="is also a benchmark"):
        ObsScaling.fit(base, target="GSM8K", n_resamples=0)
    with pytest.raises(UnknownNameError, match="missing column"):
        ObsScaling.fit(base.drop(columns="MMLU"), **opts)
    blank = base.copy()
    blank.loc[5, list(NON_GSM8K_BENCHMARKS)] = np.nan
    with pytest.raises(InvalidInputError, match="has no benchmark score at all"):
        ObsScaling.fit(blank, **opts)
    with pytest.raises(InvalidInputError, match="n_resamples must be >= 0"):
        ObsScaling.fit(
            base, n_resamples=-1, **{k: v for k, v in opts.items() if k != "n_resamples"}
        )
    with pytest.raises(UnknownNameError, match="test names unknown model"):
        ObsScaling.fit(base, test=["no/such-model"], **opts)


def test_bad_helper_inputs(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="PCA needs >= 2"):
        BenchmarkPCA.fit(np.array([[0.5, 0.6]]))
    with pytest.raises(InvalidInputError, match="benchmark\\(s\\) 'B1' have no score"):
        BenchmarkPCA.fit(np.array([[0.5, np.nan], [0.6, np.nan], [0.7, np.nan]]))
    with pytest.raises(InvalidInputError, match="family 'solo' has 1 model"):
        compute_efficiency(np.ones((3, 1)), [1.0, 2.0, 3.0], ["a", "a", "solo"])
    with pytest.raises(InvalidInputError, match="must be > 0"):
        compute_efficiency(np.ones((2, 1)), [-1.0, 2.0], ["a", "a"])
    bad = tmp_path / "bad.csv"
    bad.write_text("Model,MMLU\nx,0.5\n")
    with pytest.raises(FormatError, match="not an ObsScaling benchmark matrix"):
        load_obsscaling_matrix(bad)
    with pytest.raises(InvalidInputError, match="preregistered must be"):
        load_obsscaling_matrix(bad, preregistered="maybe")
    state = tmp_path / "fit.json"
    state.write_text('{"family": "obsscaling", "state": {"version": 1}}')
    with pytest.raises(FormatError, match="malformed fit state"):
        load_fit(state)


def test_scores_in_percent_are_rejected_not_clipped(base: pd.DataFrame, post: pd.DataFrame) -> None:
    # Review regression: observed scores outside [0, 1] used to be clipped silently.
    pct = base.copy()
    pct["MMLU"] = pct["MMLU"] * 100
    with pytest.raises(InvalidInputError, match=r"outside \[0.0, 1.0\].*percent"):
        BenchmarkPCA.fit(pct)


def test_partial_benchmark_table_is_imputed_not_switched_to_compute(boot_fit, post) -> None:
    # Review regression: one absent benchmark column used to route every row to the compute
    # line silently; now the absent scores are imputed from the others, with a warning.
    rows = post[post["Model Family"] == "Llama-2"].head(3)
    full = boot_fit.predict(rows)
    partial_rows = rows.drop(columns=["HumanEval"])
    with pytest.warns(InestimableWarning, match="'HumanEval' absent"):
        partial = boot_fit.predict(partial_rows)
    # Same as giving the column with every score missing (the imputation path) ...
    nan_rows = rows.assign(HumanEval=np.nan)
    imputed = boot_fit.predict(nan_rows)
    np.testing.assert_allclose(partial["prediction"], imputed["prediction"], rtol=1e-12)
    np.testing.assert_allclose(partial["ci_low"], imputed["ci_low"], rtol=1e-12)
    # ... and not the compute-line prediction the old code fell back to.
    only_compute = boot_fit.predict(rows[["Model Family", "FLOPs (1E21)"]])
    assert not np.allclose(partial["prediction"], only_compute["prediction"], rtol=1e-6)
    assert np.abs(partial["prediction"] - full["prediction"]).max() < 0.1
    with pytest.raises(InvalidInputError, match=r"outside \[0.0, 1.0\]"):
        bad = rows.copy()
        bad["MMLU"] = 55.0
        boot_fit.predict(bad)
