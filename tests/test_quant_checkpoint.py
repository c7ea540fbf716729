"""Quantized safetensors checkpoints (GPTQ, AWQ GEMM, bitsandbytes NF4/FP4 and LLM.int8),
written at test time in the documented layouts from a tiny Llama, loaded back into a plain
transformers model through capscale.quant.load_quantized."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

from _gguf_models import tiny_llama
from capscale.errors import FormatError, InvalidInputError, UnknownNameError
from capscale.quant import QuantizedCheckpoint, load_quantized
from capscale.quant.bnb import quantize_4bit, quantize_int8
from capscale.quant.gptq import ZeroPointWarning, quantize_awq_rtn, quantize_gptq_rtn

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _is_linear(name: str) -> bool:
    return name.endswith(".weight") and name.split(".")[-2] in LINEAR


def _write(folder, tensors: dict[str, np.ndarray | torch.Tensor], qconfig: dict | None) -> None:
    folder.mkdir(exist_ok=True)
    save_file(
        {
            k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
            for k, v in tensors.items()
        },
        str(folder / "model.safetensors"),
    )
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    if qconfig is not None:
        cfg["quantization_config"] = qconfig
    (folder / "config.json").write_text(json.dumps(cfg))


def _check_model(model: LlamaForCausalLM, sd: dict[str, torch.Tensor], tol: float) -> None:
    """The dequantized state dict loads strictly and computes nearly what the original does."""
    fresh = LlamaForCausalLM(model.config).eval()
    fresh.load_state_dict(sd, strict=True)
    ids = torch.tensor([[1, 7, 31, 64, 90, 2]])
    with torch.no_grad():
        ref, got = model(ids).logits, fresh(ids).logits
    assert float((got - ref).norm() / ref.norm()) < tol


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("bits", [4, 8, 3])
def test_gptq_checkpoint(tmp_path, bits, act_order) -> None:
    model = tiny_llama(11)
    rng = np.random.default_rng(bits)
    tensors: dict[str, np.ndarray] = {}
    expect: dict[str, np.ndarray] = {}
    for name, p in model.state_dict().items():
        w = p.numpy()
        if not _is_linear(name):
            tensors[name] = w
            continue
        perm = rng.permutation(w.shape[1]) if act_order else None
        q = quantize_gptq_rtn(w, bits=bits, group_size=32, sym=True, act_order_perm=perm)
        prefix = name[: -len(".weight")]
        tensors |= {
            f"{prefix}.qweight": q.qweight,
            f"{prefix}.qzeros": q.qzeros,
            f"{prefix}.scales": q.scales,
            f"{prefix}.g_idx": q.g_idx,
        }
        expect[name] = q.dequantize()
        # symmetric RTN: within half a step of the original, plus the fp16 rounding of the
        # stored scale (relative 2^-11) times the largest code offset 2^(bits-1)
        step = q.scales.astype(np.float32)[q.g_idx].T
        slack = 0.5 + 2.0 ** (bits - 1) * 2.0**-11
        assert np.all(np.abs(expect[name] - w) <= step * slack * (1 + 1e-6))
    qc = {
        "quant_method": "gptq",
        "bits": bits,
        "group_size": 32,
        "desc_act": act_order,
        "sym": True,
        "checkpoint_format": "gptq",
    }
    _write(tmp_path / "ckpt", tensors, qc)
    ck = QuantizedCheckpoint(tmp_path / "ckpt")
    methods = {w.name: w.method for w in ck.weights}
    assert {m for n, m in methods.items() if _is_linear(n)} == {"gptq"}
    w0 = ck.weight("model.layers.0.mlp.down_proj.weight")
    assert w0.shape == (64, 96)
    # packed codes + fp16 scales + int32 zeros + int32 g_idx
    g = 96 // 32
    stored = 96 * bits // 8 * 64 + g * 64 * 2 + g * 64 * bits // 8 + 96 * 4
    assert w0.n_bytes == stored and w0.bits_per_weight == pytest.approx(8 * stored / (64 * 96))
    sd = load_quantized(tmp_path / "ckpt")
    for name, ref in expect.items():
        np.testing.assert_array_equal(sd[name].numpy(), ref, err_msg=name)
    _check_model(model, sd, {3: 0.5, 4: 0.2, 8: 0.02}[bits])


def test_gptq_mislabelled_zeros_warn(tmp_path) -> None:
    model = tiny_llama(12)
    tensors = {}
    for name, p in model.state_dict().items():
        if _is_linear(name):
            q = quantize_gptq_rtn(p.numpy(), bits=4, group_size=32, checkpoint_format="gptq_v2")
            prefix = name[: -len(".weight")]
            tensors |= {
                f"{prefix}.qweight": q.qweight,
                f"{prefix}.qzeros": q.qzeros,
                f"{prefix}.scales": q.scales,
                f"{prefix}.g_idx": q.g_idx,
            }
            assert np.all(q.qzeros.view(np.uint32) == 0x88888888)
        else:
            tensors[name] = p.numpy()
    qc = {
        "quant_method": "gptq",
        "bits": 4,
        "group_size": 32,
        "sym": True,
        "checkpoint_format": "gptq",
    }  # the label lies: the zeros are v2's
    _write(tmp_path / "bad", tensors, qc)
    with pytest.warns(ZeroPointWarning, match="probably mislabelled"):
        load_quantized(tmp_path / "bad")
    qc["checkpoint_format"] = "gptq_v2"
    _write(tmp_path / "good", tensors, qc)
    sd = load_quantized(tmp_path / "good")
    _check_model(model, sd, 0.2)


def test_awq_gemm_checkpoint(tmp_path) -> None:
    model = tiny_llama(13)
    tensors: dict[str, np.ndarray] = {}
    expect = {}
    for name, p in model.state_dict().items():
        if not _is_linear(name):
            tensors[name] = p.numpy()
            continue
        q = quantize_awq_rtn(p.numpy(), group_size=32)
        prefix = name[: -len(".weight")]
        tensors |= {
            f"{prefix}.qweight": q.qweight,
            f"{prefix}.qzeros": q.qzeros,
            f"{prefix}.scales": q.scales,
        }
        expect[name] = q.dequantize()
    qc = {"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm"}
    _write(tmp_path / "awq", tensors, qc)
    sd = load_quantized(tmp_path / "awq", torch.float32)
    for name, ref in expect.items():
        np.testing.assert_array_equal(sd[name].numpy(), ref, err_msg=name)
    _check_model(model, sd, 0.2)
    # half precision: the round-once of the float32 result
    sd16 = load_quantized(tmp_path / "awq", "bfloat16")
    for name, ref in expect.items():
        torch.testing.assert_close(
            sd16[name], torch.from_numpy(ref).to(torch.bfloat16), rtol=0, atol=0
        )
    qc["version"] = "gemv"
    _write(tmp_path / "gemv", tensors, qc)
    with pytest.raises(FormatError, match="AWQ version 'gemv' is not supported"):
        QuantizedCheckpoint(tmp_path / "gemv")


def _bnb4_tensors(name: str, w: np.ndarray, quant_type: str, nested: bool) -> dict:
    st = quantize_4bit(w, quant_type=quant_type, blocksize=64, compress_statistics=nested)
    state = {"quant_type": quant_type, "blocksize": 64, "dtype": "float32", "shape": list(w.shape)}
    out = {name: st.packed, f"{name}.quant_map": st.quant_map}
    if nested:
        na = st.absmax
        out |= {
            f"{name}.absmax": na.qabsmax,
            f"{name}.nested_absmax": na.absmax2,
            f"{name}.nested_quant_map": na.quant_map2,
        }
        state |= {
            "nested_blocksize": na.blocksize2,
            "nested_dtype": "float32",
            "nested_offset": float(na.offset),
        }
    else:
        out[f"{name}.absmax"] = st.absmax
    blob = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8).copy()
    out[f"{name}.quant_state.bitsandbytes__{quant_type}"] = blob
    return out


@pytest.mark.parametrize(("quant_type", "nested"), [("nf4", False), ("nf4", True), ("fp4", False)])
def test_bnb_4bit_checkpoint(tmp_path, quant_type, nested) -> None:
    model = tiny_llama(14)
    tensors: dict[str, np.ndarray] = {}
    expect = {}
    for name, p in model.state_dict().items():
        if not _is_linear(name):
            tensors[name] = p.numpy()
            continue
        t = _bnb4_tensors(name, p.numpy(), quant_type, nested)
        tensors |= t
        st = quantize_4bit(
            p.numpy(), quant_type=quant_type, blocksize=64, compress_statistics=nested
        )
        expect[name] = st.dequantize("float32").reshape(p.shape)
    qc = {
        "quant_method": "bitsandbytes",
        "load_in_4bit": True,
        "bnb_4bit_quant_type": quant_type,
        "bnb_4bit_use_double_quant": nested,
    }
    _write(tmp_path / "bnb", tensors, qc)
    ck = QuantizedCheckpoint(tmp_path / "bnb")
    w = ck.weight("model.layers.1.self_attn.q_proj.weight")
    assert w.method == f"bnb-{quant_type}" and w.shape == (64, 64)
    assert ("nested" in w.detail) is nested
    sd = ck.state_dict()
    for name, ref in expect.items():
        np.testing.assert_array_equal(sd[name].numpy(), ref, err_msg=name)
    _check_model(model, sd, 0.3)


def test_bnb_int8_checkpoint(tmp_path) -> None:
    model = tiny_llama(15)
    tensors: dict[str, np.ndarray] = {}
    expect = {}
    for name, p in model.state_dict().items():
        if not _is_linear(name):
            tensors[name] = p.numpy()
            continue
        q, scb = quantize_int8(p.numpy())
        prefix = name[: -len(".weight")]
        tensors |= {
            name: q,
            f"{prefix}.SCB": scb,
            f"{prefix}.weight_format": np.zeros((), np.uint8),
        }
        # independent reference: q * SCB * f32(1/127), multiplied in that order in float32
        expect[name] = (q.astype(np.float32) * scb[:, None]) * np.float32(7.874015718698502e-3)
    _write(tmp_path / "int8", tensors, {"quant_method": "bitsandbytes", "load_in_8bit": True})
    sd = load_quantized(tmp_path / "int8")
    for name, ref in expect.items():
        np.testing.assert_array_equal(sd[name].numpy(), ref, err_msg=name)
    _check_model(model, sd, 0.02)


def test_bad_checkpoints(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        QuantizedCheckpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match=r"holds no \.safetensors file"):
        QuantizedCheckpoint(tmp_path / "empty")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(FormatError, match="not a readable safetensors file"):
        QuantizedCheckpoint(junk)
    # packed weights without a declared method and without g_idx: ambiguous
    q = quantize_awq_rtn(np.ones((8, 32), np.float32), group_size=32)
    _write(
        tmp_path / "anon",
        {"l.qweight": q.qweight, "l.qzeros": q.qzeros, "l.scales": q.scales},
        None,
    )
    with pytest.raises(FormatError, match="no quant_method"):
        QuantizedCheckpoint(tmp_path / "anon")
    ck = QuantizedCheckpoint(tmp_path / "anon", quant_method="awq")
    assert ck.weight("l.weight").shape == (8, 32)
    with pytest.raises(UnknownNameError, match=r"no tensor 'x\.weight'"):
        ck.weight("x.weight")
    with pytest.raises(InvalidInputError, match="quant_method must be"):
        load_quantized(tmp_path / "anon", quant_method="hqq")
    _write(
        tmp_path / "half",
        {"l.qweight": q.qweight, "l.scales": q.scales},
        {"quant_method": "awq", "version": "gemm"},
    )
    with pytest.raises(FormatError, match=r"has no l\.qzeros"):
        QuantizedCheckpoint(tmp_path / "half")
    (tmp_path / "badcfg").mkdir()
    (tmp_path / "badcfg" / "config.json").write_text("{oops")
    save_file({"a": torch.zeros(2)}, str(tmp_path / "badcfg" / "model.safetensors"))
    with pytest.raises(FormatError, match="not valid JSON"):
        QuantizedCheckpoint(tmp_path / "badcfg")
