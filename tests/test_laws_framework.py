"""The law-family framework: registry, JSON round trip, ``capscale laws`` CLI, HTML report and
per-cell tables from a results store — exercised with a small family defined here."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from capscale.cli.main import main
from capscale.errors import FormatError, InvalidInputError, UnknownNameError
from capscale.fit import curve_fit
from capscale.laws.data import is_store, table_from_store
from capscale.laws.family import (
    LawFamily,
    get_family,
    list_families,
    load_fit,
    register_family,
    require_columns,
)
from capscale.report import build_report
from capscale.store import Store


@register_family("test_loglinear")
class LogLinearFamily(LawFamily):
    """score = a + b·ln(n_params), fitted with capscale.fit (covariance CIs)."""

    required_columns = ("n_params", "score")
    description = "test family: score linear in log parameters"

    def __init__(self, x: np.ndarray, cov: np.ndarray) -> None:
        self.x, self.cov = np.asarray(x, float), np.asarray(cov, float)

    @classmethod
    def fit(cls, data: pd.DataFrame, **options: Any) -> LogLinearFamily:
        require_columns(data, cls.required_columns, cls.name)
        res = curve_fit("log_linear", data["n_params"].to_numpy(), data["score"].to_numpy())
        return cls(res.x, res.cov)

    def predict(self, data: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
        require_columns(data, ("n_params",), self.name)
        u = np.log(data["n_params"].to_numpy(float))
        mean = self.x[0] + self.x[1] * u
        se = np.sqrt(self.cov[0, 0] + 2 * u * self.cov[0, 1] + u * u * self.cov[1, 1])
        z = norm.ppf(0.5 + ci / 2)
        return data.assign(prediction=mean, ci_low=mean - z * se, ci_high=mean + z * se)

    def summary(self) -> str:
        return f"score = {self.x[0]:.4f} + {self.x[1]:.4f}·ln N"

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x.tolist(), "cov": self.cov.tolist()}

    @classmethod
    def from_dict(cls, state: Any) -> LogLinearFamily:
        return cls(state["x"], state["cov"])

    def plot(self, ax: Any = None) -> Any:
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        n = np.logspace(6, 9, 20)
        ax.plot(n, self.x[0] + self.x[1] * np.log(n))
        ax.set_xscale("log")
        return ax


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "study.db"
    rng = np.random.default_rng(5)
    with Store(path) as st:
        for name, n in (("m1", 1e6), ("m2", 1e7), ("m3", 1e8), ("m4", 1e9)):
            st.upsert_model({"name": name, "n_params": n, "release_date": "2024-05-01"})
            run = st.start_run(name, "fp16", ("arith", "1"), config={}, seed=0)
            p = 0.2 + 0.05 * np.log10(n / 1e6)
            st.add_records(
                run,
                [
                    {"item_id": str(i), "scores": {"acc": float(rng.random() < p)}}
                    for i in range(300)
                ],
            )
            st.finish_run(run)
    return path


def test_registry_and_errors() -> None:
    assert "test_loglinear" in list_families()
    assert get_family("test_loglinear") is LogLinearFamily
    with pytest.raises(UnknownNameError, match="did you mean 'test_loglinear'"):
        get_family("test_loglinea")
    with pytest.raises(UnknownNameError, match="missing column\\(s\\) 'score'"):
        LogLinearFamily.fit(pd.DataFrame({"n_params": [1.0, 2.0]}))


def test_table_from_store_means_match_records(store_path) -> None:
    assert is_store(store_path)
    table = table_from_store(store_path, metric="acc")
    with Store(store_path) as st:
        rec = st.records()
    want = rec.groupby("model")["score_acc"].mean()
    got = table.set_index("model")["score"]
    np.testing.assert_allclose(got.loc[want.index], want.to_numpy(), rtol=1e-12)
    assert (table["ci_low"] <= table["score"]).all() and (table["score"] <= table["ci_high"]).all()
    assert table["n_params"].tolist() == [1e6, 1e7, 1e8, 1e9]
    with pytest.raises(UnknownNameError, match="unknown metric 'acx'"):
        table_from_store(store_path, metric="acx")


def test_cli_fit_save_predict_and_report(store_path, tmp_path, capsys) -> None:
    fit_path, fig = tmp_path / "fit.json", tmp_path / "fit.png"
    code = main(
        [
            "laws",
            "fit",
            "--law",
            "test_loglinear",
            "--data",
            str(store_path),
            "--metric",
            "acc",
            "--save",
            str(fit_path),
            "--plot",
            str(fig),
        ]
    )
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "ln N" in out and fig.stat().st_size > 1000
    fitted = load_fit(fit_path)
    assert json.loads(fit_path.read_text())["family"] == "test_loglinear"
    rows = tmp_path / "new.csv"
    pd.DataFrame({"model": ["big"], "n_params": [1e10]}).to_csv(rows, index=False)
    out_csv = tmp_path / "pred.csv"
    assert (
        main(
            ["laws", "predict", "--fit", str(fit_path), "--data", str(rows), "--out", str(out_csv)]
        )
        == 0
    )
    pred = pd.read_csv(out_csv)
    direct = fitted.predict(pd.DataFrame({"model": ["big"], "n_params": [1e10]}))
    np.testing.assert_allclose(
        pred[["prediction", "ci_low", "ci_high"]].to_numpy(),
        direct[["prediction", "ci_low", "ci_high"]].to_numpy(),
    )
    assert pred["ci_low"][0] < pred["prediction"][0] < pred["ci_high"][0]
    report = build_report(tmp_path / "r.html", store=store_path, fits=[fit_path], metric="acc")
    text = report.read_text()
    assert "Law: test_loglinear" in text and text.count("data:image/png;base64,") == 2
    assert "m4" in text


def test_cli_errors(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(FormatError, match="not a capscale law fit"):
        load_fit(bad)
    assert main(["laws", "predict", "--fit", str(bad), "--data", str(bad)]) == 2
    assert main(["laws", "fit", "--law", "nope", "--data", str(bad)]) == 2
    assert "unknown law family 'nope'" in capsys.readouterr().err
    assert (
        main(["laws", "fit", "--law", "test_loglinear", "--data", str(bad), "--option", "novalue"])
        == 2
    )
    with pytest.raises(InvalidInputError, match="nothing to report"):
        build_report(tmp_path / "r.html")
    assert main(["laws", "list"]) == 0
    assert "test_loglinear" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0.9", None, 1.0, 0.0, -0.5, np.nan, True])
def test_every_family_rejects_a_bad_ci_level(bad) -> None:
    from capscale._validate import check_level
    from capscale.laws.families._common import percentile_interval

    with pytest.raises(InvalidInputError, match="ci must be"):
        check_level(bad)
    with pytest.raises(InvalidInputError, match="ci must be"):
        percentile_interval(np.zeros((10, 2)), bad)
    assert check_level(np.float32(0.9)) == pytest.approx(0.9)


def test_percentile_interval_needs_enough_finite_draws() -> None:
    from capscale.laws.families._common import percentile_interval

    rng = np.random.default_rng(0)
    draws = rng.normal(size=(200, 3))
    draws[:3, 0] = np.nan  # 1.5% undefined: still an interval (from the finite draws)
    draws[:40, 1] = np.nan  # 20% undefined at a 95% level: no interval
    draws[:, 2] = np.nan
    lo, hi = percentile_interval(draws, 0.95)
    want = np.percentile(draws[3:, 0], [2.5, 97.5])
    np.testing.assert_allclose([lo[0], hi[0]], want)
    assert np.isnan([lo[1], hi[1], lo[2], hi[2]]).all()


def test_context_and_chinchilla_tables_from_a_store(tmp_path) -> None:
    from capscale.laws.family import get_family

    path = tmp_path / "sweep.db"
    with Store(path) as st:
        for name, n, flops in (("s", 1e8, 1e19), ("m", 1e9, 1e20)):
            st.upsert_model(
                {
                    "name": name,
                    "n_params": n,
                    "training_tokens": 20 * n,
                    "training_flops": flops,
                    "context_length": 2048,
                }
            )
            for ctx in (256, 1024):
                run = st.start_run(
                    name, "fp16", ("needle", "1"), config={}, seed=0, context_length=ctx
                )
                st.add_records(
                    run, [{"item_id": str(i), "scores": {"acc": float(i % 2)}} for i in range(20)]
                )
                st.finish_run(run)
    ctx = get_family("context").from_store(path, metric="acc")
    assert {"C", "N", "n", "n_ctx", "P", "n_items"} <= set(ctx.columns)
    assert sorted(ctx["n"].tolist()) == [256, 256, 1024, 1024]
    assert set(ctx["n_ctx"]) == {2048} and set(ctx["n_items"]) == {20}
    chin = get_family("chinchilla_optimal").from_store(path, metric="acc")
    assert {"N", "D", "L"} <= set(chin.columns)
    assert (chin["D"] == 20 * chin["N"]).all()
