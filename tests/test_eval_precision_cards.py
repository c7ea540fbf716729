"""Precision specs, model cards and sweep files (no model needed)."""

from __future__ import annotations

import pytest

from capscale.errors import FormatError, InvalidInputError, UnknownNameError
from capscale.eval.cards import ModelCard
from capscale.eval.precision import parse_precision
from capscale.eval.sweep import DEFAULT_STUDY, load_sweep, parse_sweep
from capscale.store import Store

GGUF_Q4_1 = {"format": "gguf", "name": "gguf-Q4_1", "bits": 5.74, "settings": {"type": "Q4_1"}}


def test_precision_names_and_store_specs(tmp_path) -> None:
    shipped = parse_precision("as-shipped")
    assert (shipped.name, shipped.kind) == ("shipped", "shipped")
    assert shipped.store_spec(GGUF_Q4_1) == GGUF_Q4_1
    bf16 = parse_precision("BF16")
    assert (bf16.name, bf16.kind, bf16.dtype) == ("bf16", "full", "bfloat16")
    assert bf16.store_spec(GGUF_Q4_1) == {
        "format": "bf16",
        "name": "bf16",
        "settings": {"base": "gguf-Q4_1"},
    }
    assert parse_precision("none").name == "fp32"
    int4 = parse_precision("int4-g64")
    spec = int4.store_spec(GGUF_Q4_1)
    assert spec["format"] == "affine" and spec["bits"] == 4.0 and spec["group_size"] == 64
    assert spec["symmetric"] is False
    assert spec["settings"]["base"] == "gguf-Q4_1"
    assert spec["settings"]["bits_per_weight"] == pytest.approx(4 + 20 / 64)
    int8 = parse_precision("int8-sym").store_spec()
    assert int8["group_size"] is None and int8["symmetric"] is True
    nf4 = parse_precision("nf4").store_spec()
    assert (nf4["format"], nf4["group_size"]) == ("nf4", 64)
    q4 = parse_precision("gguf:Q4_0").store_spec()
    assert (q4["format"], q4["bits"], q4["settings"]["type"]) == ("gguf", 4.5, "Q4_0")
    # every spec is accepted by the store, and the same spec maps to the same row
    with Store(tmp_path / "s.db") as st:
        for name in ("shipped", "fp16", "int3-g64", "nf4-b128-dq", "gguf:Q8_0", "int8"):
            spec = parse_precision(name).store_spec(GGUF_Q4_1)
            assert st.upsert_precision(spec) == st.upsert_precision(spec)
    with pytest.raises(UnknownNameError, match="unknown precision 'fp8e4'"):
        parse_precision("fp8e4")
    with pytest.raises(UnknownNameError, match="did you mean 'nf4'"):
        parse_precision("nf44")


def test_model_card_validation_and_flops() -> None:
    card = ModelCard("m", n_params=1000, n_params_non_embedding=800, training_tokens=10**6)
    est = card.with_estimated_flops()
    assert est.training_flops == 6 * 800 * 10**6
    assert est.extra["flops_source"] == "6ND"
    given = ModelCard("m", n_params=1, training_tokens=5, training_flops=3.0)
    assert given.with_estimated_flops().training_flops == 3.0
    assert ModelCard("m").with_estimated_flops().training_flops is None
    assert est.to_dict()["name"] == "m"
    with pytest.raises(InvalidInputError, match="ISO date"):
        ModelCard("m", release_date="28/11/2026")
    with pytest.raises(InvalidInputError, match="non-empty name"):
        ModelCard("")
    with pytest.raises(InvalidInputError, match="n_params must be a non-negative int"):
        ModelCard("m", n_params=-3)


def test_default_study_parses() -> None:
    cfg = load_sweep()
    assert cfg.models[0]["source"] == "smollm2-135m"
    assert len(cfg.precisions) >= 5
    contexts = {c for _, _, t, c in cfg.cells() if t["name"] == "needle"}
    assert len(contexts) >= 2
    assert cfg.n_cells == len(cfg.precisions) * sum(len(t["contexts"]) for t in cfg.tasks)
    assert "smollm2-135m" in DEFAULT_STUDY


@pytest.mark.parametrize(
    ("text", "exc", "match"),
    [
        ("store = 1\nmodels = [", FormatError, "not valid TOML"),
        ('models = [{source="x"}]\ntasks=[{name="t"}]', InvalidInputError, "missing 'store'"),
        ('store="s"\nmodels=[]\ntasks=[{name="t"}]', InvalidInputError, "non-empty array"),
        ('store="s"\nmodels=[{name="x"}]\ntasks=[{name="t"}]', InvalidInputError, "no 'source'"),
        ('store="s"\nmodels=[{source="x"}]\ntasks=[{limit=3}]', InvalidInputError, "no 'name'"),
        (
            'store="s"\nmodels=[{source="x"}]\ntasks=[{name="t", lmit=3}]',
            InvalidInputError,
            r"unknown keys \['lmit'\]",
        ),
        (
            'store="s"\nprecison=["fp16"]\nmodels=[{source="x"}]\ntasks=[{name="t"}]',
            InvalidInputError,
            "unknown keys",
        ),
        (
            'store="s"\nprecisions=["int11"]\nmodels=[{source="x"}]\ntasks=[{name="t"}]',
            InvalidInputError,
            "2..8 bits",
        ),
        (
            'store="s"\ncontexts=[-1]\nmodels=[{source="x"}]\ntasks=[{name="t"}]',
            InvalidInputError,
            "must be >= 0",
        ),
        (
            'store="s"\nbatch_size=0\nmodels=[{source="x"}]\ntasks=[{name="t"}]',
            InvalidInputError,
            "batch_size",
        ),
    ],
)
def test_bad_sweep_files(text, exc, match) -> None:
    with pytest.raises(exc, match=match):
        parse_sweep(text)


def test_missing_sweep_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such sweep file"):
        load_sweep(tmp_path / "nope.toml")
