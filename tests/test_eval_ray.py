"""The Ray executor: the same store as the local executor cell for cell, a worker killed
mid-cell, a driver killed mid-sweep, and bad input (unreachable address, too many GPUs,
unknown executor). One local Ray instance (2 CPUs, loopback only) for the module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from _tiny_models import build_tiny_llama
from capscale.errors import ClusterError, UnknownNameError
from capscale.eval.sweep import parse_sweep, run_sweep
from capscale.store import Store

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"), max_positions=512)


def _config(tiny_dir: Path, db: Path, device: str = "cpu"):
    return parse_sweep(f"""
store = "{db}"
batch_size = 4
device = "{device}"
chunk_size = 2
precisions = ["shipped", "int8"]

[[models]]
source = "{tiny_dir}"
name = "tiny"

[[tasks]]
name = "capitals_mc"
limit = 5

[[tasks]]
name = "arithmetic"
limit = 4
params = {{ digits = 1, operation = "add", n = 4 }}
""")


def _cells(db: Path) -> dict[tuple[str, str, str], dict[str, dict[str, float]]]:
    with Store(db) as st:
        runs = st.runs()
        assert set(runs["status"]) == {"done"}
        rec = st.records()
    out: dict[tuple[str, str, str], dict[str, dict[str, float]]] = {}
    score_cols = [c for c in rec.columns if c.startswith("score_")]
    for _, row in rec.iterrows():
        key = (row["model"], row["precision"], row["task"])
        scores = {c: float(row[c]) for c in score_cols if row[c] == row[c]}
        lls = row.get("loglikelihoods")
        if isinstance(lls, str):
            scores.update({f"ll{i}": v for i, v in enumerate(json.loads(lls))})
        assert row["item_id"] not in out.setdefault(key, {})  # no duplicates
        out[key][row["item_id"]] = scores
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for cell in a:
        assert a[cell].keys() == b[cell].keys(), cell
        for item in a[cell]:
            assert a[cell][item].keys() == b[cell][item].keys()
            for k, v in a[cell][item].items():
                assert b[cell][item][k] == pytest.approx(v, abs=1e-9), (cell, item, k)


@pytest.fixture(scope="module")
def local_cells(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("local") / "local.db"
    run_sweep(_config(tiny_dir, db), progress=False)
    return _cells(db)


def test_ray_store_equals_local_store(ray_local, tiny_dir, local_cells, tmp_path) -> None:
    cfg = _config(tiny_dir, tmp_path / "ray.db")
    res = run_sweep(cfg, executor="ray", progress=False)
    assert len(res) == cfg.n_cells == 4 and not any(r.skipped for r in res)
    cells = _cells(tmp_path / "ray.db")
    assert len(cells) == 4
    _assert_same(local_cells, cells)
    again = run_sweep(cfg, executor="ray", progress=False)
    assert all(r.skipped for r in again)


def test_worker_killed_mid_cell_is_retried(ray_local, tiny_dir, local_cells, tmp_path) -> None:
    fault = tmp_path / "crashed"
    cfg = _config(tiny_dir, tmp_path / "fault.db")
    res = run_sweep(cfg, executor="ray", progress=False, _fault_file=str(fault))
    assert fault.exists()  # one actor died after computing a chunk
    assert len(res) == 4
    _assert_same(local_cells, _cells(tmp_path / "fault.db"))


def test_driver_killed_mid_sweep_resumes_missing_cells(
    ray_local, tiny_dir, local_cells, tmp_path
) -> None:
    cfg = _config(tiny_dir, tmp_path / "resume.db")

    def die(_res: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, executor="ray", progress=False, on_cell=die)
    with Store(cfg.store) as st:
        n_done = int((st.runs()["status"] == "done").sum())
    assert 1 <= n_done < 4
    res = run_sweep(cfg, executor="ray", progress=False)
    assert sum(r.skipped for r in res) == n_done
    _assert_same(local_cells, _cells(tmp_path / "resume.db"))


def test_bad_input(ray_local, tiny_dir, tmp_path, capsys) -> None:
    cfg = _config(tiny_dir, tmp_path / "bad.db")
    with pytest.raises(ClusterError, match="cannot reach a Ray cluster"):
        run_sweep(cfg, executor="ray", address="ray://127.0.0.1:1", progress=False)
    gpu = _config(tiny_dir, tmp_path / "gpu.db", device="cuda")
    with pytest.raises(ClusterError, match="needs 1 GPU per cell; the Ray cluster has 0 GPUs"):
        run_sweep(gpu, executor="ray", progress=False)
    with pytest.raises(UnknownNameError, match="did you mean 'ray'"):
        run_sweep(cfg, executor="rey", progress=False)
    with Store(tmp_path / "gpu.db") as st:
        assert len(st.runs()) == 0  # nothing ran
    # a model far larger than any node's memory is refused before anything runs
    huge = _config(tiny_dir, tmp_path / "huge.db")
    huge.models[0]["n_params"] = 10**13
    with pytest.raises(ClusterError, match=r"needs about .* GiB per worker; the largest Ray node"):
        run_sweep(huge, executor="ray", progress=False)
    with Store(tmp_path / "huge.db") as st:
        assert len(st.runs()) == 0
    from capscale.cli.main import main

    assert main(["sweep", str(tmp_path / "none.toml"), "--executor", "rey"]) == 2
    assert "unknown executor 'rey'; did you mean 'ray'?" in capsys.readouterr().err
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text('store = "x.db"\nexecutor = "ray"\n', encoding="utf-8")
    assert main(["sweep", str(bad_key), "--executor", "ray"]) == 2
    assert "unknown keys ['executor']" in capsys.readouterr().err


def test_import_never_imports_ray(tiny_dir, tmp_path) -> None:
    code = (
        "import sys, capscale, capscale.eval\n"
        "from capscale.eval.executors import get_executor\n"
        "get_executor('local')\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
