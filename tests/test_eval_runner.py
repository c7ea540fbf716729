"""The runner and sweeps: cells into the store, resume after an interruption, skipped finished
cells, precisions applied and recorded, the context-length axis, the CLI — plumbing on a tiny
config-built model, behaviour on the real SmolLM2-135M GGUF."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _tiny_models import build_tiny_llama, smollm2_gguf
from capscale.cli.main import main
from capscale.errors import ContextLengthWarning, FormatError, UnknownNameError
from capscale.eval.models import load_model
from capscale.eval.precision import parse_precision
from capscale.eval.runner import evaluate
from capscale.eval.sweep import parse_sweep, run_sweep
from capscale.stats import paired_difference
from capscale.store import Store


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"), max_positions=512)


@pytest.fixture()
def tiny(tiny_dir: Path):
    return load_model(str(tiny_dir), name="tiny", device="cpu", batch_size=4)


def test_load_model_card_and_shipped_spec(tiny) -> None:
    card = tiny.card
    total = sum(p.numel() for p in tiny.backend.model.parameters())
    assert card.name == "tiny" and card.n_params == total
    emb = tiny.backend.model.get_input_embeddings().weight.numel()
    head = tiny.backend.model.lm_head.weight.numel()
    assert card.n_params_non_embedding == total - emb - head
    assert card.context_length == 512
    assert tiny.shipped["format"] == "fp32"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model("/no/such/model/folder")


def test_evaluate_writes_every_item_and_resumes(tiny, tmp_path) -> None:
    store = Store(tmp_path / "r.db")
    backend = tiny.backend
    real = backend.loglikelihood
    calls = {"n": 0}

    def flaky(reqs, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed in the middle of the second chunk
        return real(reqs, **kw)

    backend.loglikelihood = flaky
    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny, "capitals_mc", store=store, limit=10, chunk_size=4, progress=False)
    runs = store.runs()
    assert runs["status"].tolist() == ["running"] and runs["n_records"].tolist() == [4]
    backend.loglikelihood = real
    res = evaluate(tiny, "capitals_mc", store=store, limit=10, chunk_size=4, progress=False)
    assert (res.n_items, res.n_new, res.skipped) == (10, 6, False)
    runs = store.runs()
    assert runs["status"].tolist() == ["done"] and runs["n_records"].tolist() == [10]
    # the resumed run equals an uninterrupted one item by item
    fresh = evaluate(tiny, "capitals_mc", limit=10, chunk_size=10, progress=False)
    rec = store.records()
    from capscale.eval.tasks import get_task

    docs = get_task("capitals_mc").docs[:10]
    assert sorted(rec["item_id"]) == sorted(str(d.get("id")) for d in docs)
    assert rec["score_acc"].mean() == pytest.approx(fresh.scores["acc"][0])
    lls = [json.loads(x) for x in rec.sort_values("item_id")["loglikelihoods"]]
    assert all(len(x) == 4 for x in lls)
    # a finished cell is skipped and reports the stored scores
    again = evaluate(tiny, "capitals_mc", store=store, limit=10, progress=False)
    assert again.skipped and again.run_id == res.run_id and again.n_new == 0
    assert again.scores["acc"][0] == pytest.approx(res.scores["acc"][0])
    store.close()


def test_precision_applied_recorded_and_restored(tiny, tmp_path) -> None:
    tiny.snapshot()
    before = {k: v.clone() for k, v in tiny.backend.model.state_dict().items()}
    prec = parse_precision("int4-g32")
    stats = prec.apply(tiny.backend.model)
    assert stats is not None and 0.02 < stats["relative_rmse"] < 0.3
    assert stats["skipped"] == ["lm_head"]
    with Store(tmp_path / "p.db") as store:
        res = evaluate(
            tiny,
            "arithmetic",
            precision=prec,
            weight_error=stats,
            store=store,
            limit=4,
            progress=False,
        )
        rec = store.records()
        assert rec["precision"].unique().tolist() == ["int4-g32-rtn_asym"]
        assert rec["precision_format"].unique().tolist() == ["affine"]
        assert rec["weight_rel_rmse"].iloc[0] == pytest.approx(stats["relative_rmse"])
        assert set(res.scores) == {"exact_match", "numeric_match"}
    tiny.restore()
    for k, v in tiny.backend.model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_context_axis_pads_prompts_and_warns_past_trained_context(tiny, tmp_path) -> None:
    with Store(tmp_path / "c.db") as store:
        short = evaluate(
            tiny, "capitals_mc", store=store, limit=3, context_length=128, progress=False
        )
        assert short.context_length == 128
        rec = store.records()
        assert (rec["tokens"] <= 128).all() and (rec["tokens"] >= 100).all()
        with pytest.warns(ContextLengthWarning, match="past the model's trained context"):
            long = evaluate(
                tiny, "capitals_mc", store=store, limit=2, context_length=600, progress=False
            )
        assert long.n_new == 2
        runs = store.runs()
        assert sorted(runs["context_length"].tolist()) == [128, 600]
        cfg = json.loads(runs[runs["context_length"] == 600]["config"].iloc[0])
        assert cfg["beyond_trained_context"] is True and cfg["max_length"] >= 600
    assert tiny.backend.max_length == 512  # restored after the cell


def test_sweep_runs_cells_then_skips_them(tiny_dir, tmp_path) -> None:
    text = f"""
store = "{tmp_path / "sweep.db"}"
batch_size = 4
device = "cpu"
precisions = ["shipped", "int8", "nf4"]
contexts = [0, 96]

[[models]]
source = "{tiny_dir}"
name = "tiny"
family = "tiny-llama"
training_tokens = 1000
n_params = 123  # a user's figure (for Ray's memory estimate): the counted one wins

[[tasks]]
name = "capitals_mc"
limit = 3

[[tasks]]
name = "needle"
contexts = [200, 300]
params = {{ n = 2 }}

[[tasks]]
name = "game:taboo"
limit = 1
params = {{ experiments = ["high_en"] }}
"""
    cfg = parse_sweep(text)
    assert cfg.n_cells == 3 * (2 + 2 + 1)
    lines: list[str] = []
    first = run_sweep(cfg, progress=False, on_cell=lambda r: lines.append(r.line()))
    assert len(first) == cfg.n_cells and not any(r.skipped for r in first)
    assert all(" s" in line for line in lines)
    assert sum("game:taboo" in line for line in lines) == 3
    second = run_sweep(cfg, progress=False)
    assert all(r.skipped for r in second)
    with Store(cfg.store) as st:
        runs = st.runs()
        assert len(runs) == cfg.n_cells and set(runs["status"]) == {"done"}
        eps = st.episodes()
        assert len(eps) == 3 and set(eps["game"]) == {"taboo"}
        assert len(st.turns()) >= 3
        models = st.models()
        assert models["family"].tolist() == ["tiny-llama"]
        assert models["n_params"].iloc[0] > 123
        assert (
            models["training_flops"].iloc[0] == 6 * models["n_params_non_embedding"].iloc[0] * 1000
        )
        needle = st.records(task="needle")
        assert sorted(needle["context_length"].unique().tolist()) == [200, 300]


def test_cli_run_and_sweep(tiny_dir, tmp_path, capsys) -> None:
    db = str(tmp_path / "cli.db")
    argv = [
        "run",
        "--model",
        str(tiny_dir),
        "--name",
        "tiny",
        "--precision",
        "int8",
        "--task",
        "capitals_mc",
        "--limit",
        "3",
        "--store",
        db,
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tiny | int8-pc-rtn_asym | capitals_mc" in out and "3/3 new" in out
    assert main(argv) == 0
    assert "stored" in capsys.readouterr().out
    assert main([*argv[:5], "--precision", "int9", *argv[7:]]) == 2
    assert "2..8 bits" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--model",
                str(tmp_path / "nope"),
                "--task",
                "capitals_mc",
                "--store",
                db,
                "--no-progress",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(UnknownNameError):
        parse_precision("q4")


def test_every_subcommand_has_working_help(capsys) -> None:
    from capscale.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = list(sub.choices)
    assert {"run", "sweep", "study", "quant-report", "games"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    for name in ("run", "score", "transcript", "list"):
        with pytest.raises(SystemExit) as exc:
            main(["games", name, "--help"])
        assert exc.value.code == 0
    capsys.readouterr()


# -- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    path = smollm2_gguf()
    return load_model(str(path), name="SmolLM2-135M-Instruct", device="cpu")


def test_smollm2_lower_precision_does_not_beat_shipped_beyond_noise(smollm2, tmp_path) -> None:
    """One-digit addition, 3-shot: int3 may not score better than the shipped weights by more
    than the paired bootstrap noise; the weight error grows as bits shrink."""
    smollm2.snapshot()
    store = Store(tmp_path / "arith.db")
    scores = {}
    errors = {}
    for name in ("shipped", "int4-g64", "int3-g64"):
        prec = parse_precision(name)
        smollm2.restore()
        we = prec.apply(smollm2.backend.model)
        errors[name] = math.nan if we is None else we["relative_rmse"]
        if name == "int4-g64":
            continue  # its weight error is enough here
        res = evaluate(
            smollm2,
            "arithmetic",
            precision=prec,
            weight_error=we,
            store=store,
            num_fewshot=3,
            limit=30,
            task_params={"digits": 1},
            progress=False,
        )
        scores[name] = res.scores["exact_match"][0]
    smollm2.restore()
    assert scores["shipped"] > 0.4, scores  # the real model does add one-digit numbers
    assert errors["int3-g64"] > errors["int4-g64"] > 0
    rec = store.records()
    a = rec[rec.precision == "int3-g64-rtn_asym"].set_index("item_id")["score_exact_match"]
    b = rec[rec.precision == "gguf-Q4_1"].set_index("item_id")["score_exact_match"]
    d = paired_difference(a, b, n_resamples=4000, seed=0)
    assert d.low <= 0.0, d  # not significantly better than the shipped weights
    store.close()


def test_smollm2_needle_scored_by_length_including_past_trained_context(smollm2, tmp_path):
    store = Store(tmp_path / "needle.db")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextLengthWarning)
        short = evaluate(
            smollm2, "needle", store=store, context_length=256, task_params={"n": 3}, progress=False
        )
    assert short.scores["numeric_match"][0] >= 2 / 3  # the model retrieves at 256 tokens
    with pytest.warns(ContextLengthWarning, match="8192"):
        evaluate(
            smollm2,
            "needle",
            store=store,
            context_length=8400,
            task_params={"n": 1},
            progress=False,
        )
    rec = store.records(task="needle")
    by_len = rec.groupby("context_length")["score_numeric_match"].count().to_dict()
    assert by_len == {256: 3, 8400: 1}
    assert rec[rec.context_length == 8400]["tokens"].iloc[0] > 8192
    cfg = json.loads(store.runs().set_index("context_length").loc[8400, "config"])
    assert cfg["beyond_trained_context"] is True
    assert np.isfinite(rec["score_exact_match"]).all()
    store.close()


def test_load_model_dequantizes_a_gptq_checkpoint_folder(tiny_dir, tmp_path) -> None:
    """A GPTQ folder (config.json with quantization_config) loads through capscale's
    dequantization into the plain architecture, recorded as shipped GPTQ."""
    import shutil

    from safetensors.torch import load_file, save_file

    from capscale.quant.gptq import quantize_gptq_rtn

    folder = tmp_path / "gptq"
    shutil.copytree(tiny_dir, folder)
    state = load_file(str(folder / "model.safetensors"))
    packed: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if name.endswith("_proj.weight"):
            q = quantize_gptq_rtn(t.numpy(), bits=4, group_size=32)
            prefix = name.removesuffix(".weight")
            for part in ("qweight", "qzeros", "scales", "g_idx"):
                packed[f"{prefix}.{part}"] = torch.from_numpy(getattr(q, part))
        else:
            packed[name] = t
    save_file(packed, str(folder / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["quantization_config"] = {
        "quant_method": "gptq",
        "bits": 4,
        "group_size": 32,
        "sym": True,
        "checkpoint_format": "gptq",
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    lm = load_model(str(folder), name="tiny-gptq", device="cpu")
    assert lm.shipped["format"] == "gptq" and lm.shipped["bits"] == 4.0
    ref = load_model(str(tiny_dir), device="cpu")
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        got, want = lm.backend.model(ids).logits, ref.backend.model(ids).logits
    assert 0 < float((got - want).norm() / want.norm()) < 0.2
    del packed["model.layers.0.mlp.up_proj.qweight"]  # a broken checkpoint: a clear error
    save_file(packed, str(folder / "model.safetensors"))
    with pytest.raises(
        FormatError,
        match=r"do not match a LlamaForCausalLM: missing \[.model\.layers\.0\.mlp\.up_proj",
    ):
        load_model(str(folder), device="cpu")
