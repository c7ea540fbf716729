"""Quantized Hugging Face checkpoints in safetensors (GPTQ, AWQ GEMM, bitsandbytes NF4/FP4
and LLM.int8): every quantized Linear weight dequantized by capscale's native kernels into a
plain state dict (``<module>.weight`` in the ``nn.Linear`` ``[out, in]`` orientation) that loads
into the unquantized transformers model.

The method comes from ``config.json``'s ``quantization_config`` (or ``quantize_config.json``);
without a config, GPTQ is recognised by ``g_idx`` and bitsandbytes by its ``quant_state`` /
``SCB`` tensors (AWQ needs ``quant_method="awq"``).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import FormatError, InvalidInputError, UnknownNameError
from ._out import resolve_dtype
from ._torch import numpy_to_torch, require, round_f32

__all__ = ["QuantizedCheckpoint", "QuantizedWeight", "load_quantized"]

_GPTQ_PARTS = ("qweight", "qzeros", "scales", "g_idx")
_BNB_PARTS = ("absmax", "quant_map", "nested_absmax", "nested_quant_map")


@dataclass(frozen=True)
class QuantizedWeight:
    """One weight of a checkpoint.

    Attributes
    ----------
    name : str
        State-dict name of the dequantized tensor (``"model.layers.0.mlp.up_proj.weight"``).
    method : str
        ``"gptq"``, ``"awq"``, ``"bnb-nf4"``, ``"bnb-fp4"``, ``"bnb-int8"`` or ``"float"``.
    shape : tuple of int
        Shape of the dequantized tensor (``[out, in]`` for Linear weights).
    n_bytes : int
        Stored bytes (packed codes, scales, zeros, indices).
    detail : str
        Bits, group or block size, zero convention.
    """

    name: str
    method: str
    shape: tuple[int, ...]
    n_bytes: int
    detail: str = ""

    @property
    def n_elements(self) -> int:
        """Number of values."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per value, scales/zeros/indices included."""
        return 8.0 * self.n_bytes / self.n_elements if self.n_elements else float("nan")


def _to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as NumPy (bfloat16 widened to float32 exactly)."""
    torch = require("torch")
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    return t.detach().cpu().contiguous().numpy()


class QuantizedCheckpoint:
    """A folder (or single file) of safetensors holding a quantized model.

    Parameters
    ----------
    path : str or PathLike
        A checkpoint folder (``config.json`` + ``*.safetensors``) or one ``.safetensors`` file.
    quant_method : str, optional
        Override/supply the method (``"gptq"``, ``"awq"``, ``"bitsandbytes"``).
    """

    def __init__(self, path: str | os.PathLike[str], *, quant_method: str | None = None) -> None:
        self._st = require("safetensors")
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            self.files = sorted(glob.glob(os.path.join(self.path, "*.safetensors")))
            folder = self.path
        elif os.path.isfile(self.path):
            self.files = [self.path]
            folder = os.path.dirname(self.path)
        else:
            raise FileNotFoundError(f"no such checkpoint: {self.path}")
        if not self.files:
            raise FormatError(f"{self.path} holds no .safetensors file")
        self.config = self._read_config(folder)
        self.quant_config: dict[str, Any] = dict(self.config.get("quantization_config") or {})
        if not self.quant_config:
            qc = os.path.join(folder, "quantize_config.json")
            if os.path.isfile(qc):
                self.quant_config = _read_json(qc)
                self.quant_config.setdefault("quant_method", "gptq")
        if quant_method is not None:
            self.quant_config["quant_method"] = quant_method
        self._where: dict[str, str] = {}
        self._meta: dict[str, tuple[str, tuple[int, ...], int]] = {}
        for f in self.files:
            try:
                with self._st.safe_open(f, framework="pt") as h:
                    for key in h.keys():
                        sl = h.get_slice(key)
                        shape = tuple(int(s) for s in sl.get_shape())
                        dtype = str(sl.get_dtype())
                        self._where[key] = f
                        self._meta[key] = (dtype, shape, _nbytes(dtype, shape))
            except Exception as exc:  # safetensors raises its own error types
                if isinstance(exc, (FormatError, FileNotFoundError)):
                    raise
                raise FormatError(f"{f} is not a readable safetensors file: {exc}") from exc
        self.weights = self._plan()

    # -- discovery ------------------------------------------------------------------------

    @staticmethod
    def _read_config(folder: str) -> dict[str, Any]:
        p = os.path.join(folder, "config.json")
        return _read_json(p) if os.path.isfile(p) else {}

    @property
    def method(self) -> str:
        """The checkpoint's ``quant_method`` (``""`` when none is declared)."""
        return str(self.quant_config.get("quant_method", "")).lower()

    def _plan(self) -> list[QuantizedWeight]:
        keys = set(self._where)
        plan: list[QuantizedWeight] = []
        used: set[str] = set()
        qc = self.quant_config
        for key in sorted(keys):
            if key.endswith(".qweight"):
                prefix = key[: -len(".qweight")]
                plan.append(self._plan_packed(prefix, keys))
                used.update(f"{prefix}.{p}" for p in _GPTQ_PARTS)
            elif key.endswith(".weight.quant_state.bitsandbytes__nf4") or key.endswith(
                ".weight.quant_state.bitsandbytes__fp4"
            ):
                w = key.split(".quant_state.")[0]
                plan.append(self._plan_bnb4(w, key))
                used.update([w, key] + [f"{w}.{p}" for p in _BNB_PARTS])
            elif key.endswith(".SCB"):
                prefix = key[: -len(".SCB")]
                w = f"{prefix}.weight"
                if w not in keys:
                    raise FormatError(f"{self.path}: {key} has no matching {w}")
                dtype, shape, nb = self._meta[w]
                if dtype != "I8" or len(shape) != 2:
                    raise FormatError(f"{w}: LLM.int8 weights must be 2-D int8, got {dtype}")
                plan.append(
                    QuantizedWeight(w, "bnb-int8", shape, nb + self._meta[key][2], "row-wise")
                )
                used.update([w, key, f"{prefix}.weight_format"])
        for key in sorted(keys - used):
            dtype, shape, nb = self._meta[key]
            if dtype in ("I32", "U8", "I8") and qc:
                continue  # stray quantization bookkeeping
            plan.append(QuantizedWeight(key, "float", shape, nb, dtype))
        return plan

    def _plan_packed(self, prefix: str, keys: set[str]) -> QuantizedWeight:
        for part in ("qzeros", "scales"):
            if f"{prefix}.{part}" not in keys:
                raise FormatError(f"{self.path}: {prefix}.qweight has no {prefix}.{part}")
        method = self.method or ("gptq" if f"{prefix}.g_idx" in keys else "")
        if method not in ("gptq", "awq"):
            raise FormatError(
                f"{self.path}: packed int weights ({prefix}.qweight) but no quant_method "
                "gptq/awq in the config; pass quant_method="
            )
        bits = int(self.quant_config.get("bits", 4))
        qshape = self._meta[f"{prefix}.qweight"][1]
        if method == "gptq":
            shape = (qshape[1], qshape[0] * 32 // bits)
            fmt = self.quant_config.get("checkpoint_format", "gptq")
            gs = self.quant_config.get("group_size", 128)
            detail = f"int{bits} g{gs} {fmt}" + (
                " act-order" if self.quant_config.get("desc_act") else ""
            )
        else:
            version = str(self.quant_config.get("version", "gemm")).lower()
            if version != "gemm":
                raise FormatError(
                    f"{self.path}: AWQ version {version!r} is not supported (only 'gemm', "
                    "the packing of AutoAWQ's WQLinear_GEMM)"
                )
            shape = (qshape[1] * 32 // bits, qshape[0])
            detail = f"int{bits} g{self.quant_config.get('group_size', 128)} gemm"
        nb = sum(self._meta[f"{prefix}.{p}"][2] for p in _GPTQ_PARTS if f"{prefix}.{p}" in keys)
        return QuantizedWeight(f"{prefix}.weight", method, shape, nb, detail)

    def _plan_bnb4(self, w: str, state_key: str) -> QuantizedWeight:
        state = self._bnb_state(state_key)
        shape = tuple(int(s) for s in state.get("shape", ()))
        if not shape:
            raise FormatError(f"{state_key}: quant_state has no shape")
        nb = sum(
            self._meta[k][2] for k in [w, *(f"{w}.{p}" for p in _BNB_PARTS)] if k in self._meta
        )
        qt = str(state.get("quant_type", "nf4"))
        nested = " nested" if f"{w}.nested_absmax" in self._meta else ""
        return QuantizedWeight(w, f"bnb-{qt}", shape, nb, f"block {state.get('blocksize')}{nested}")

    def _bnb_state(self, key: str) -> dict[str, Any]:
        raw = self._load(key)
        try:
            state = json.loads(bytes(raw.astype(np.uint8).tobytes()).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{key}: quant_state is not UTF-8 JSON: {exc}") from exc
        if not isinstance(state, dict):
            raise FormatError(f"{key}: quant_state is not a JSON object")
        return state

    # -- reading --------------------------------------------------------------------------

    def _load(self, key: str) -> np.ndarray:
        with self._st.safe_open(self._where[key], framework="pt") as h:
            return _to_numpy(h.get_tensor(key))

    def weight(self, name: str) -> QuantizedWeight:
        """The entry called ``name`` (UnknownNameError otherwise)."""
        for w in self.weights:
            if w.name == name:
                return w
        raise UnknownNameError(f"no tensor {name!r} in {self.path}")

    def dequantize(self, name: str, dtype: Any = "float32") -> np.ndarray:
        """One weight as NumPy values of ``dtype`` (bfloat16: uint16 bit patterns)."""
        w = self.weight(name)
        dt = resolve_dtype(dtype)
        if w.method == "float":
            return round_f32(self._load(name).astype(np.float32), dt)
        if w.method in ("gptq", "awq"):
            return self._dequant_packed(w, dt)
        if w.method == "bnb-int8":
            from .bnb import dequantize_int8

            prefix = name[: -len(".weight")]
            return dequantize_int8(self._load(name), self._load(f"{prefix}.SCB"), dtype=dt)
        return self._dequant_bnb4(w, dt)

    def _dequant_packed(self, w: QuantizedWeight, dtype: str) -> np.ndarray:
        from .gptq import dequantize_awq, dequantize_gptq, detect_gptq_zero_convention

        prefix = w.name[: -len(".weight")]
        qweight = self._load(f"{prefix}.qweight")
        qzeros = self._load(f"{prefix}.qzeros")
        scales = self._load(f"{prefix}.scales")
        qc = self.quant_config
        bits = int(qc.get("bits", 4))
        group = int(qc.get("group_size", 128))
        if w.method == "awq":
            return dequantize_awq(qweight, qzeros, scales, group_size=group, bits=bits, dtype=dtype)
        g_idx_key = f"{prefix}.g_idx"
        g_idx = self._load(g_idx_key).astype(np.int32) if g_idx_key in self._where else None
        fmt = str(qc.get("checkpoint_format", "gptq"))
        if qc.get("sym", True):  # warns when the zeros contradict the label (vLLM #38966)
            detect_gptq_zero_convention(qzeros, bits, checkpoint_format=fmt)
        return dequantize_gptq(
            qweight,
            qzeros,
            scales,
            g_idx,
            bits=bits,
            group_size=group,
            checkpoint_format=fmt,
            dtype=dtype,
        )

    def _dequant_bnb4(self, w: QuantizedWeight, dtype: str) -> np.ndarray:
        from .bnb import NestedAbsmax, dequantize_4bit

        qt = w.method.removeprefix("bnb-")
        state = self._bnb_state(f"{w.name}.quant_state.bitsandbytes__{qt}")
        packed = self._load(w.name).reshape(-1).astype(np.uint8, copy=False)
        absmax: np.ndarray | None = self._load(f"{w.name}.absmax")
        quant_map = self._load(f"{w.name}.quant_map").astype(np.float32)
        nested = None
        if f"{w.name}.nested_absmax" in self._where:
            nested = NestedAbsmax(
                qabsmax=self._load(f"{w.name}.absmax").reshape(-1).astype(np.uint8),
                absmax2=self._load(f"{w.name}.nested_absmax").astype(np.float32).reshape(-1),
                quant_map2=self._load(f"{w.name}.nested_quant_map").astype(np.float32),
                blocksize2=int(state.get("nested_blocksize", 256)),
                offset=float(state.get("nested_offset", 0.0)),
            )
            absmax = None
        return dequantize_4bit(
            packed,
            None if absmax is None else absmax.reshape(-1).astype(np.float32),
            quant_map=quant_map,
            quant_type=qt,
            blocksize=int(state.get("blocksize", 64)),
            shape=w.shape,
            nested=nested,
            dtype=dtype,
        )

    def iter_tensors(
        self, dtype: Any = "float32", *, progress: bool = False
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, values)`` for every entry (dequantized where quantized)."""
        dt = resolve_dtype(dtype)
        for w in tqdm(self.weights, desc="dequantize", unit="tensor", disable=not progress):
            yield w.name, self.dequantize(w.name, dt)

    def state_dict(
        self, dtype: Any = "float32", *, progress: bool = False, device: str | None = None
    ) -> dict[str, Any]:
        """Every tensor as torch: a state dict for the unquantized transformers model."""
        dt = resolve_dtype(dtype)
        out: dict[str, Any] = {}
        for name, values in self.iter_tensors(dt, progress=progress):
            t = numpy_to_torch(values, dt)
            out[name] = t.to(device) if device is not None else t
        return out

    def __repr__(self) -> str:
        return (
            f"QuantizedCheckpoint({self.path!r}, method={self.method or 'auto'!r}, "
            f"{len(self.weights)} tensors)"
        )


# safetensors dtype names → bytes per element.
_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "U8": 1,
    "I8": 1,
    "BOOL": 1,
}


def _nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    return _DTYPE_BYTES.get(dtype, 4) * int(np.prod(shape, dtype=np.int64))


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FormatError(f"{path} must hold a JSON object")
    return data


def load_quantized(
    path: str | os.PathLike[str],
    dtype: Any = "float32",
    *,
    quant_method: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Dequantize a GPTQ / AWQ / bitsandbytes safetensors checkpoint into a torch state dict
    (see :class:`QuantizedCheckpoint`)."""
    if quant_method is not None and quant_method not in ("gptq", "awq", "bitsandbytes"):
        raise InvalidInputError(
            f"quant_method must be 'gptq', 'awq' or 'bitsandbytes', got {quant_method!r}"
        )
    ckpt = QuantizedCheckpoint(path, quant_method=quant_method)
    return ckpt.state_dict(dtype, progress=progress)
