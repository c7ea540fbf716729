"""Precision schemes by name, apply_fake_quant on a torch model, and the quant-report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as T

from _gguf_models import tiny_llama, write_gguf
from capscale.cli.main import main
from capscale.errors import InvalidInputError, ShapeError, UnknownNameError
from capscale.quant import (
    apply_fake_quant,
    error_stats,
    parse_scheme,
    quant_report,
)


def _rtn_asym_reference(w: np.ndarray, bits: int, group: int) -> np.ndarray:
    """AWQ's pseudo_quantize_tensor (zero_point=True) in float32 NumPy."""
    rows, cols = w.shape
    g = w.reshape(rows, cols // group, group).astype(np.float32)
    qmax = np.float32(2**bits - 1)
    mx, mn = g.max(axis=2, keepdims=True), g.min(axis=2, keepdims=True)
    s = np.maximum(mx - mn, np.float32(1e-5)) / qmax
    z = np.clip(-np.rint(mn / s), 0, qmax)
    q = np.clip(np.rint(g / s) + z, 0, qmax)
    return ((q - z) * s).reshape(rows, cols)


@pytest.mark.parametrize(
    ("spec", "name", "kind", "bpw"),
    [
        ("fp32", "none", "none", 32.0),
        ("int8", "int8-pc-rtn_asym", "affine", 8.0),
        ("int4-g128", "int4-g128-rtn_asym", "affine", 4 + (16 + 4) / 128),
        ("INT3-g64-sym", "int3-g64-rtn_sym", "affine", 3 + 16 / 64),
        ("int4-g128-gptq_sym", "int4-g128-gptq_sym", "affine", 4 + 16 / 128),
        ("nf4", "nf4-b64", "bnb", 4 + 32 / 64),
        ("fp4-b128-dq", "fp4-b128-dq", "bnb", 4 + (8 + 32 / 256) / 128),
        ("gguf:q4_0", "gguf:Q4_0", "gguf", 4.5),
    ],
)
def test_parse_scheme(spec, name, kind, bpw) -> None:
    s = parse_scheme(spec)
    assert (s.name, s.kind) == (name, kind)
    assert s.bits_per_weight == pytest.approx(bpw)
    assert parse_scheme(s) is s


def test_parse_scheme_errors() -> None:
    with pytest.raises(UnknownNameError, match="unknown precision scheme 'int4g128'"):
        parse_scheme("int4g128")
    with pytest.raises(UnknownNameError, match="did you mean 'nf4'"):
        parse_scheme("nf5")
    with pytest.raises(InvalidInputError, match=r"2\.\.8 bits, got 9"):
        parse_scheme("int9")
    with pytest.raises(InvalidInputError, match="contradicts preset"):
        parse_scheme("int4-g128-asym-rtn_sym")
    with pytest.raises(UnknownNameError, match="affine preset"):
        parse_scheme("int4-g128-awq2")
    with pytest.raises(UnknownNameError, match="unknown weight format"):
        parse_scheme("gguf:Q9_9")


def test_scheme_fake_quantize_matches_references() -> None:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((16, 256)) * 0.02).astype(np.float32)
    np.testing.assert_array_equal(
        parse_scheme("int4-g64").fake_quantize(w), _rtn_asym_reference(w, 4, 64)
    )
    np.testing.assert_array_equal(
        parse_scheme("int8").fake_quantize(w), _rtn_asym_reference(w, 8, 256)
    )
    from gguf.quants import dequantize, quantize

    np.testing.assert_array_equal(
        parse_scheme("gguf:Q4_0").fake_quantize(w), dequantize(quantize(w, T.Q4_0), T.Q4_0)
    )
    nf4 = parse_scheme("nf4").fake_quantize(w)
    assert 0.05 < error_stats(w, nf4).relative_rmse < 0.15
    with pytest.raises(ShapeError, match="2-D weight"):
        parse_scheme("int4-g64").fake_quantize(w[0])
    with pytest.raises(ShapeError, match="not whole Q4_0 blocks"):
        parse_scheme("gguf:Q4_0").fake_quantize(w[:, :48])


def test_apply_fake_quant_equals_numpy_reference_model() -> None:
    """A model after apply_fake_quant computes exactly what a model whose weights were
    quantized by the NumPy reference computes."""
    model = tiny_llama(21)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    ref_model = tiny_llama(21)
    with torch.no_grad():
        for name, mod in ref_model.named_modules():
            if isinstance(mod, torch.nn.Linear) and name != "lm_head":
                w = mod.weight.numpy()
                mod.weight.copy_(torch.from_numpy(_rtn_asym_reference(w, 4, 32)))
    report = apply_fake_quant(model, "int4-g32")
    assert report.scheme.name == "int4-g32-rtn_asym"
    assert report.skipped == ["lm_head"]
    assert len(report.layers) == 2 * 7
    for name, p in model.state_dict().items():
        if "proj" not in name:  # embeddings, norms, lm_head untouched
            torch.testing.assert_close(p, original[name], rtol=0, atol=0)
    ids = torch.tensor([[1, 4, 9, 16, 25, 36, 49]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref_model(ids).logits, rtol=0, atol=0)
    s = report.summary()
    assert s["n_weights"] == report.n_weights > 0
    assert 0.02 < s["relative_rmse"] < 0.2
    # per-layer stats are the error of the rewritten weight against the original
    name, stats = report.layers[0]
    w0 = original[f"{name}.weight"].numpy()
    got = model.get_submodule(name).weight.detach().numpy()
    assert stats.rmse == pytest.approx(error_stats(w0, got).rmse, rel=1e-12)


def test_apply_fake_quant_include_exclude_dtype_and_ties() -> None:
    model = tiny_llama(22, tie=True).to(torch.bfloat16)
    emb = model.model.embed_tokens.weight.detach().clone()
    report = apply_fake_quant(model, "int8", include=["*.mlp.*"], exclude=())
    names = [n for n, _ in report.layers]
    assert names and all(".mlp." in n for n in names)
    assert "lm_head" in report.skipped
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    torch.testing.assert_close(model.model.embed_tokens.weight, emb, rtol=0, atol=0)
    # quantizing the tied head rewrites the shared embedding once
    rep2 = apply_fake_quant(model, "int4-g32", include=["lm_head"], exclude=())
    assert [n for n, _ in rep2.layers] == ["lm_head"]
    assert not torch.equal(model.model.embed_tokens.weight, emb)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_quant_report_against_reference_and_requantized(tmp_path) -> None:
    model = tiny_llama(23)
    ref_path, q_path = str(tmp_path / "f32.gguf"), str(tmp_path / "q4.gguf")
    write_gguf(ref_path, model)
    stored = write_gguf(q_path, model, T.Q4_0)
    rep = quant_report(q_path, ref_path)
    by = {t.name: t for t in rep.tensors}
    t = by["blk.0.ffn_up.weight"]
    assert (t.format, t.against, t.shape) == ("Q4_0", "reference", (96, 64))
    assert t.bits_per_weight == pytest.approx(4.5)
    from gguf.quants import dequantize

    ref = model.state_dict()["model.layers.0.mlp.up_proj.weight"].numpy()
    direct = error_stats(ref, dequantize(stored["blk.0.ffn_up.weight"][1], T.Q4_0))
    assert t.stats is not None and t.stats.rmse == pytest.approx(direct.rmse, rel=1e-12)
    assert by["blk.0.attn_norm.weight"].stats.rmse == 0.0
    assert 0.05 < rep.relative_rmse < 0.2
    assert 4.5 < rep.bits_per_weight < 32
    # no reference: the dequantized weights re-quantized with the same type
    alone = quant_report(q_path, select="ffn_up")
    assert {x.name for x in alone.tensors} == {"blk.0.ffn_up.weight", "blk.1.ffn_up.weight"}
    assert all(x.against == "requantized" for x in alone.tensors)
    text = alone.to_text()
    assert "blk.1.ffn_up.weight" in text and "overall: 2 tensors" in text


def test_quant_report_cli(tmp_path, capsys) -> None:
    model = tiny_llama(24)
    ref_path, q_path = str(tmp_path / "f32.gguf"), str(tmp_path / "q8.gguf")
    write_gguf(ref_path, model)
    write_gguf(q_path, model, T.Q8_0)
    out = tmp_path / "rep.json"
    assert main(["quant-report", q_path, "--reference", ref_path, "--json", str(out)]) == 0
    cap = capsys.readouterr()
    assert "Q8_0" in cap.out and "overall:" in cap.out
    assert "quant-report" in cap.err  # the progress bar
    data = json.loads(out.read_text())
    assert len(data["tensors"]) == 3 + 2 * 9 and data["relative_rmse"] < 0.02
    assert main(["quant-report", str(tmp_path / "missing.gguf"), "--no-progress"]) == 2
    assert "no such model file" in capsys.readouterr().err
    (tmp_path / "x.bin").write_bytes(b"123")
    assert main(["quant-report", str(tmp_path / "x.bin"), "--no-progress"]) == 2
    assert "not a .gguf file" in capsys.readouterr().err
