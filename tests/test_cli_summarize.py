"""``capscale summarize STORE``: a table of mean scores with bootstrap CIs from a store."""

from __future__ import annotations

import numpy as np
import pytest

from capscale.cli.main import main
from capscale.stats import summarize
from capscale.store import Store


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "results.db"
    rng = np.random.default_rng(0)
    with Store(path) as st:
        for model, p in (("tiny-a", 0.6), ("tiny-b", 0.8)):
            st.upsert_model({"name": model, "n_params": 1_000_000})
            for precision in ("fp16", "nf4"):
                run = st.start_run(model, precision, ("arith", "1"), config={}, seed=0)
                st.add_records(
                    run,
                    [
                        {
                            "item_id": str(i),
                            "subtask": f"digits{i % 3}",
                            "scores": {"acc": float(rng.random() < p), "len": float(i % 7)},
                        }
                        for i in range(200)
                    ],
                )
                st.finish_run(run)
    return path


def test_summarize_prints_the_table_of_capscale_stats(store_path, capsys) -> None:
    assert main(["summarize", str(store_path), "--metric", "acc", "--n-resamples", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:4] == ["model", "precision", "n", "mean"]
    with Store(store_path) as st:
        want = summarize(
            st.records(), by=["model", "precision"], metric="score_acc", n_resamples=500
        )
    for line, row in zip(out[2:], want.itertuples(index=False), strict=True):
        cells = line.split()
        assert cells[:3] == [row.model, row.precision, str(row.n)]
        assert float(cells[3]) == pytest.approx(row.mean, abs=5e-5)
        assert f"[{row.ci_low:.4f}," in line and f"{row.ci_high:.4f}]" in line


def test_summarize_needs_a_metric_when_several_are_stored(store_path, capsys) -> None:
    assert main(["summarize", str(store_path)]) == 2
    assert "2 metrics (acc, len)" in capsys.readouterr().err
    assert main(["summarize", str(store_path), "--metric", "acx"]) == 2
    assert "did you mean 'acc'" in capsys.readouterr().err
    assert main(["summarize", str(store_path), "--metric", "acc", "--by", "modle"]) == 2
    assert "did you mean 'model'" in capsys.readouterr().err


def test_summarize_of_a_missing_store_is_an_error(tmp_path, capsys) -> None:
    assert main(["summarize", str(tmp_path / "none.db")]) == 2
    assert "none.db" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
