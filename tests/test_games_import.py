"""`capscale games score --clembench`: published clembench runs beside the store's own."""

from __future__ import annotations

import pandas as pd

from capscale.cli.main import main
from capscale.games import MockPlayer, run_game
from capscale.store import Store
from conftest import shared_path

CLEM = "clembench"


def test_score_puts_published_runs_beside_ours(tmp_path, capsys) -> None:
    runs = shared_path(CLEM, "clemcore_fixture_runs-v2-llama8b.zip")
    table = shared_path(CLEM, "clembench-runs_v1.6_results.csv")
    golden = pd.read_csv(shared_path(CLEM, "clemcore_fixture_golden_results.csv"), index_col=0)
    db = tmp_path / "g.db"
    with Store(db) as store:
        # scripted players that break the format: every episode is aborted
        players = [MockPlayer(["no clue"] * 10), MockPlayer(["no guess"] * 10)]
        run_game(players, "taboo", {"format": "fp32", "name": "fp32"}, store, limit=1)
    argv = ["games", "score", "--store", str(db), "--n-resamples", "200"]
    assert main([*argv, "--clembench", str(runs), "--clembench", str(table)]) == 0
    out = capsys.readouterr().out
    assert "[clembench]" in out and "published clembench table" in out
    # the published runs, aggregated next to ours, give clemcore's golden clemscore (28.09)
    (model,) = golden.index
    ours = [ln for ln in out.splitlines() if model in ln and "[clembench]" in ln]
    assert ours and any(f"{golden['-, clemscore'].iloc[0]:.2f}" in ln for ln in ours), out
    assert "taboo" in out
