"""GGUF model files: every tensor dequantized by capscale's native kernels, under GGUF or
Hugging Face names, ready for a transformers model.

The file is read with the ``gguf`` package's reader (memory-mapped: a tensor's bytes are read
when it is dequantized). llama.cpp's converter permutes the rows of the query and key
projections of Llama-family models (rotary halves interleaved); :meth:`GGUFFile.state_dict`
with ``names="hf"`` undoes that, so the result loads into ``LlamaForCausalLM`` as is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import FormatError, InvalidInputError, UnknownNameError, did_you_mean
from ._out import resolve_dtype
from ._torch import numpy_to_torch, require, torch_dtype
from .formats import get_format
from .gguf import dequantize

__all__ = ["GGUFFile", "GGUFTensor", "load_gguf", "unpermute_qk"]

# Architectures whose GGUF tensors follow llama's naming; True where llama.cpp permuted Q/K.
_HF_ARCHS = {"llama": True, "mistral": True, "qwen2": False, "qwen3": False}

_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
# Tensors llama.cpp adds that have no Hugging Face parameter (recomputed by transformers).
_NO_HF = {"rope_freqs.weight"}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of a GGUF file.

    Attributes
    ----------
    name : str
        GGUF name (``"blk.0.attn_q.weight"``).
    type_name : str
        ggml type name (``"Q4_K"``).
    shape : tuple of int
        NumPy (row-major) shape: the reverse of the ggml ``ne`` order.
    n_elements : int
        Number of values.
    n_bytes : int
        Stored size in bytes.
    """

    name: str
    type_name: str
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per value (scales included)."""
        return 8.0 * self.n_bytes / self.n_elements if self.n_elements else float("nan")


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rotary permutation of a query/key projection.

    llama.cpp stores ``W.reshape(n_head, 2, d/2, in).swapaxes(1, 2)`` (rows of each head
    interleaved); this returns the Hugging Face row order. ``w``: ``[n_head·d, in]`` (or
    ``[n_head·d]`` for a bias); ``n_head``: heads of this projection (KV heads for keys).
    """
    rows = w.shape[0]
    if n_head <= 0 or rows % (2 * n_head):
        raise FormatError(f"cannot unpermute {rows} rows into {n_head} heads of even size")
    half = rows // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class GGUFFile:
    """A GGUF file opened for reading (memory-mapped).

    Parameters
    ----------
    path : str or PathLike
        The ``.gguf`` file.

    Raises
    ------
    FormatError
        Not a GGUF file, truncated, an unsupported version, or a big-endian file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        gguf = require("gguf")
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such GGUF file: {self.path}")
        try:
            self._reader = gguf.GGUFReader(self.path, "r")
        except (ValueError, IndexError, KeyError, OSError, TypeError) as exc:
            raise FormatError(f"{self.path} is not a readable GGUF file: {exc}") from exc
        if self._reader.byte_order != "I":
            raise FormatError(
                f"{self.path} is a big-endian GGUF file; capscale reads little-endian GGUF only "
                "(convert it with gguf-py's gguf_convert_endian)"
            )
        self.metadata: dict[str, Any] = {}
        for key, field in self._reader.fields.items():
            if key.startswith("GGUF."):
                continue
            try:
                self.metadata[key] = field.contents()
            except (ValueError, IndexError, TypeError) as exc:  # pragma: no cover - defensive
                raise FormatError(f"{self.path}: metadata {key!r} is malformed: {exc}") from exc
        self._tensors = {t.name: t for t in self._reader.tensors}
        self.tensors = [
            GGUFTensor(
                name=t.name,
                type_name=t.tensor_type.name,
                shape=tuple(int(s) for s in reversed(t.shape.tolist())),
                n_elements=int(t.n_elements),
                n_bytes=int(t.n_bytes),
            )
            for t in self._reader.tensors
        ]

    # -- metadata -------------------------------------------------------------------------

    @property
    def architecture(self) -> str:
        """``general.architecture`` (``"llama"`` …)."""
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: Any = None) -> Any:
        """An architecture-scoped metadata value, e.g. ``arch_value("block_count")``."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    def tensor(self, name: str) -> GGUFTensor:
        """The tensor called ``name`` (UnknownNameError with a suggestion otherwise)."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise UnknownNameError(
            f"no tensor {name!r} in {self.path}; {did_you_mean(name, self._tensors)}".rstrip()
        )

    # -- tensors --------------------------------------------------------------------------

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of a tensor (uint8, memory-mapped, NumPy row layout)."""
        self.tensor(name)
        data = self._tensors[name].data
        return np.asarray(data).reshape(-1).view(np.uint8)

    def dequantize(
        self, name: str, dtype: Any = "float32", *, out: np.ndarray | None = None
    ) -> np.ndarray:
        """A tensor's values in its NumPy shape (GGUF row order, no Q/K unpermutation).

        ``dtype``: float32, float16 or bfloat16 (uint16 bit patterns); ``out``: optional
        reused output buffer of that storage dtype.
        """
        info = self.tensor(name)
        try:
            fmt = get_format(info.type_name)
        except UnknownNameError as exc:
            raise FormatError(
                f"tensor {name!r} of {self.path} has type {info.type_name}, which capscale "
                f"cannot dequantize"
            ) from exc
        return dequantize(self.raw(name), fmt, info.shape, dtype=resolve_dtype(dtype), out=out)

    def hf_name(self, name: str) -> str | None:
        """The Hugging Face parameter name of a GGUF tensor (None: no HF counterpart)."""
        if name in _NO_HF:
            return None
        if name in _GLOBAL_NAMES:
            return _GLOBAL_NAMES[name]
        m = _BLOCK_RE.match(name)
        if m and m.group(2) in _BLOCK_NAMES:
            return f"model.layers.{m.group(1)}.{_BLOCK_NAMES[m.group(2)]}.{m.group(3)}"
        raise FormatError(f"{self.path}: no Hugging Face name known for GGUF tensor {name!r}")

    def _heads_for(self, name: str) -> int | None:
        """Heads to unpermute over for a Q/K projection of a permuted architecture."""
        if not _HF_ARCHS.get(self.architecture, False):
            return None
        m = _BLOCK_RE.match(name)
        if not m or m.group(2) not in ("attn_q", "attn_k"):
            return None
        n_head = int(self.arch_value("attention.head_count", 0))
        if m.group(2) == "attn_k":
            n_head = int(self.arch_value("attention.head_count_kv", n_head))
        return n_head

    @property
    def has_hf_names(self) -> bool:
        """Whether this architecture's tensors map to Hugging Face names (:meth:`hf_name`)."""
        return self.architecture in _HF_ARCHS

    def hf_order(self, name: str, values: np.ndarray) -> np.ndarray:
        """A tensor's values in Hugging Face row order: Q/K rows of a permuted architecture
        unpermuted (a row reordering, exact in any dtype), every other tensor as is."""
        heads = self._heads_for(name)
        return values if heads is None else unpermute_qk(values, heads)

    def iter_tensors(
        self,
        *,
        dtype: Any = "float32",
        names: str = "hf",
        select: Iterable[str] | None = None,
        progress: bool = False,
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, values)`` for every tensor (NumPy arrays of ``dtype``).

        ``names="hf"`` gives Hugging Face names with Q/K rows unpermuted (Llama-family and
        Qwen architectures); ``"gguf"`` the stored names and order. ``select``: GGUF names to
        read (default all).
        """
        if names not in ("hf", "gguf"):
            raise InvalidInputError(f"names must be 'hf' or 'gguf', got {names!r}")
        if names == "hf" and not self.has_hf_names:
            raise FormatError(
                f"{self.path}: architecture {self.architecture!r} has no Hugging Face name "
                f"mapping (known: {', '.join(_HF_ARCHS)}); use names='gguf'"
            )
        wanted = list(select) if select is not None else [t.name for t in self.tensors]
        for n in wanted:
            self.tensor(n)
        for name in tqdm(wanted, desc="dequantize", unit="tensor", disable=not progress):
            dt = resolve_dtype(dtype)
            if names == "gguf":
                yield name, self.dequantize(name, dt)
                continue
            hf = self.hf_name(name)
            if hf is None:
                continue
            yield hf, self.hf_order(name, self.dequantize(name, dt))

    def state_dict(
        self,
        dtype: Any = "float32",
        *,
        names: str = "hf",
        progress: bool = False,
        device: str | None = None,
    ) -> dict[str, Any]:
        """Every tensor as a torch tensor: a state dict for a transformers model.

        ``dtype``: float32 / float16 / bfloat16 (torch dtypes accepted); ``device``: move each
        tensor there as it is produced. For tied embeddings (no ``output.weight``),
        ``lm_head.weight`` is not emitted; transformers ties it to the embedding.
        """
        dt = resolve_dtype(dtype)
        out: dict[str, Any] = {}
        for name, values in self.iter_tensors(dtype=dt, names=names, progress=progress):
            t = numpy_to_torch(values, dt)
            out[name] = t.to(device) if device is not None else t
        return out

    def transformers_config(self, **overrides: Any) -> Any:
        """A transformers ``LlamaConfig`` (or Qwen2 config) built from the file's metadata."""
        transformers = require("transformers")
        arch = self.architecture
        if arch not in _HF_ARCHS:
            raise FormatError(f"{self.path}: no transformers config for architecture {arch!r}")
        n_head = int(self.arch_value("attention.head_count"))
        hidden = int(self.arch_value("embedding_length"))
        vocab = self.arch_value("vocab_size")
        if vocab is None:
            vocab = len(self.metadata.get("tokenizer.ggml.tokens", [])) or None
        if vocab is None:
            vocab = self.tensor("token_embd.weight").shape[0]
        kw: dict[str, Any] = dict(
            vocab_size=int(vocab),
            hidden_size=hidden,
            intermediate_size=int(self.arch_value("feed_forward_length")),
            num_hidden_layers=int(self.arch_value("block_count")),
            num_attention_heads=n_head,
            num_key_value_heads=int(self.arch_value("attention.head_count_kv", n_head)),
            max_position_embeddings=int(self.arch_value("context_length", 2048)),
            rms_norm_eps=float(self.arch_value("attention.layer_norm_rms_epsilon", 1e-6)),
            rope_parameters={
                "rope_type": "default",
                "rope_theta": float(self.arch_value("rope.freq_base", 10000.0)),
            },
            tie_word_embeddings="output.weight" not in self._tensors,
            bos_token_id=self.metadata.get("tokenizer.ggml.bos_token_id"),
            eos_token_id=self.metadata.get("tokenizer.ggml.eos_token_id"),
            pad_token_id=self.metadata.get("tokenizer.ggml.padding_token_id"),
        )
        head_dim = self.arch_value("attention.key_length")
        if head_dim is not None:
            kw["head_dim"] = int(head_dim)
        kw.update(overrides)
        cls = transformers.LlamaConfig if arch in ("llama", "mistral") else transformers.Qwen2Config
        return cls(**kw)

    def __repr__(self) -> str:
        return f"GGUFFile({self.path!r}, {self.architecture}, {len(self.tensors)} tensors)"


def load_gguf(
    path: str | os.PathLike[str],
    dtype: Any = "float32",
    *,
    names: str = "hf",
    progress: bool = False,
) -> dict[str, Any]:
    """Read and dequantize every tensor of a GGUF file into a torch state dict
    (see :meth:`GGUFFile.state_dict`)."""
    return GGUFFile(path).state_dict(torch_dtype(dtype), names=names, progress=progress)
