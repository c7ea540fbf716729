"""Test helpers: tiny Llama models built from configs and written as GGUF files the way
llama.cpp's converter does (names, Q/K row permutation, metadata), using only the ``gguf``
package's writer and reference quantizers."""

from __future__ import annotations

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFEndian, GGUFWriter
from gguf.quants import quantize
from transformers import LlamaConfig, LlamaForCausalLM

HF_TO_GGUF = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def tiny_llama(seed: int = 0, *, tie: bool = False) -> LlamaForCausalLM:
    """A 2-layer Llama with random weights (hidden 64, 4 heads, 2 KV heads, vocab 96)."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tie,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # norms away from 1 so a wrong mapping shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf's ``permute`` of a Q/K projection (rows interleaved)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def gguf_tensors(model: LlamaForCausalLM) -> dict[str, np.ndarray]:
    """The model's float32 tensors under GGUF names, Q/K permuted like llama.cpp."""
    cfg = model.config
    out: dict[str, np.ndarray] = {}
    for name, p in model.state_dict().items():
        w = p.detach().float().numpy()
        if name == "model.embed_tokens.weight":
            out["token_embd.weight"] = w
        elif name == "model.norm.weight":
            out["output_norm.weight"] = w
        elif name == "lm_head.weight":
            if not cfg.tie_word_embeddings:
                out["output.weight"] = w
        else:
            _, _, layer, *rest = name.split(".")
            module, kind = ".".join(rest[:-1]), rest[-1]
            if module == "self_attn.q_proj":
                w = llama_cpp_permute(w, cfg.num_attention_heads)
            elif module == "self_attn.k_proj":
                w = llama_cpp_permute(w, cfg.num_key_value_heads)
            out[f"blk.{layer}.{HF_TO_GGUF[module]}.{kind}"] = w
    return out


def write_gguf(
    path: str,
    model: LlamaForCausalLM,
    qtype: GGMLQuantizationType = GGMLQuantizationType.F32,
    *,
    big_endian: bool = False,
) -> dict[str, tuple[GGMLQuantizationType, np.ndarray]]:
    """Write ``model`` as GGUF; 2-D weights in ``qtype`` (1-D tensors stay F32).

    Returns each tensor's type and stored data (for oracle comparisons).
    """
    cfg = model.config
    endian = GGUFEndian.BIG if big_endian else GGUFEndian.LITTLE
    w = GGUFWriter(path, "llama", endianess=endian)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(cfg.vocab_size)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    stored: dict[str, tuple[GGMLQuantizationType, np.ndarray]] = {}
    for name, values in gguf_tensors(model).items():
        t = qtype if values.ndim == 2 else GGMLQuantizationType.F32
        if t == GGMLQuantizationType.F32:
            data = values.astype(np.float32)
            w.add_tensor(name, data)
        else:
            data = quantize(values, t)
            w.add_tensor(name, data, raw_dtype=t)
        stored[name] = (t, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored
