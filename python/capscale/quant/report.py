"""Per-tensor report of a quantized model file: format, bits per weight and reconstruction
error (``capscale quant-report``).

Error is measured against a reference model file when one is given (matched by tensor name;
GGUF tensors are matched to Hugging Face names, Q/K rows unpermuted). Without a reference, the
dequantized weights themselves are taken as the float32 reference and re-quantized with the
same format (GGUF types capscale can quantize; for GPTQ/AWQ/bnb the matching round-to-nearest
scheme): the error then says how far the stored codes are from what a plain round-to-nearest
quantizer would store, not the loss against the original full-precision model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import FormatError
from .errors import ErrorStats, error_stats

__all__ = ["QuantReport", "TensorReport", "quant_report"]

_FLOAT_TYPES = ("F32", "F16", "BF16", "float")


@dataclass(frozen=True)
class TensorReport:
    """One tensor's line of the report.

    Attributes
    ----------
    name : str
        Tensor name in the file.
    format : str
        Stored format (``"Q4_1"``, ``"gptq"``, ``"bnb-nf4"`` …).
    shape : tuple of int
        Shape of the dequantized tensor.
    bits_per_weight : float
        Stored bits per value.
    against : str
        ``"reference"``, ``"requantized"`` or ``"-"`` (no error measured).
    stats : ErrorStats or None
        Reconstruction error (None when not measured).
    """

    name: str
    format: str
    shape: tuple[int, ...]
    bits_per_weight: float
    against: str
    stats: ErrorStats | None

    @property
    def n_elements(self) -> int:
        """Number of values."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class QuantReport:
    """The whole report: per-tensor lines and pooled figures."""

    path: str
    tensors: list[TensorReport]

    @property
    def n_elements(self) -> int:
        """Values in the file."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per value over the whole file."""
        n = self.n_elements
        return sum(t.bits_per_weight * t.n_elements for t in self.tensors) / n if n else math.nan

    @property
    def relative_rmse(self) -> float:
        """Relative RMSE pooled over the tensors with a measured error (NaN if none)."""
        measured = [t.stats for t in self.tensors if t.stats is not None]
        noise = sum(s.rmse**2 * s.n for s in measured)
        sig = sum((s.rmse / s.relative_rmse) ** 2 * s.n for s in measured if s.relative_rmse)
        if not measured:
            return math.nan
        return math.sqrt(noise / sig) if sig > 0 else (0.0 if noise == 0 else math.inf)

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per tensor (for JSON / pandas)."""
        out = []
        for t in self.tensors:
            s = t.stats
            out.append(
                {
                    "name": t.name,
                    "format": t.format,
                    "shape": list(t.shape),
                    "n": t.n_elements,
                    "bits_per_weight": t.bits_per_weight,
                    "against": t.against,
                    "rmse": s.rmse if s else None,
                    "relative_rmse": s.relative_rmse if s else None,
                    "max_abs": s.max_abs if s else None,
                    "sqnr_db": s.sqnr_db if s else None,
                }
            )
        return out

    def to_text(self) -> str:
        """A fixed-width table with an overall line."""
        head = (
            f"{'tensor':<44} {'format':<9} {'shape':<14} {'bpw':>7} {'vs':<11} "
            f"{'rel.RMSE':>9} {'SQNR dB':>8}"
        )
        lines = [head, "-" * len(head)]
        for t in self.tensors:
            s = t.stats
            rel = f"{s.relative_rmse:9.4g}" if s else f"{'-':>9}"
            sq = f"{s.sqnr_db:8.2f}" if s else f"{'-':>8}"
            shape = "x".join(str(d) for d in t.shape)
            lines.append(
                f"{t.name[:44]:<44} {t.format:<9} {shape:<14} {t.bits_per_weight:7.3f} "
                f"{t.against:<11} {rel} {sq}"
            )
        lines.append("-" * len(head))
        lines.append(
            f"overall: {len(self.tensors)} tensors, {self.n_elements:,} values, "
            f"{self.bits_per_weight:.3f} bits/weight, pooled relative RMSE "
            f"{self.relative_rmse:.4g}"
        )
        return "\n".join(lines)


def _source(path: str) -> tuple[str, Any]:
    """Open a model file: ("gguf", GGUFFile) or ("safetensors", QuantizedCheckpoint)."""
    if os.path.isfile(path) and path.lower().endswith(".gguf"):
        from .gguf_file import GGUFFile

        return "gguf", GGUFFile(path)
    if os.path.isdir(path) or path.lower().endswith(".safetensors"):
        from .checkpoint import QuantizedCheckpoint

        return "safetensors", QuantizedCheckpoint(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    raise FormatError(f"{path}: not a .gguf file, a .safetensors file or a checkpoint folder")


def _reference_lookup(path: str) -> Callable[[str, str], tuple[np.ndarray | None, bool]]:
    """A function (gguf name, hf name) → (float32 reference or None, whether it is in Hugging
    Face row order rather than the file's)."""
    kind, src = _source(path)
    if kind == "gguf":
        names = {t.name for t in src.tensors}

        def by_gguf(gname: str, hname: str) -> tuple[np.ndarray | None, bool]:
            return (src.dequantize(gname) if gname in names else None), False

        return by_gguf
    names = {w.name for w in src.weights}

    def by_hf(gname: str, hname: str) -> tuple[np.ndarray | None, bool]:
        return (src.dequantize(hname) if hname in names else None), True

    return by_hf


def _requant_scheme(fmt: str, detail: str) -> str | None:
    """The round-to-nearest scheme matching a safetensors method (None: none known)."""
    if fmt in ("gptq", "awq"):
        bits, group = detail.split()[0][3:], detail.split()[1][1:]
        preset = "gptq_sym" if fmt == "gptq" else "rtn_asym"
        return f"int{bits}-g{group}-{preset}" if int(group) > 0 else f"int{bits}-pc-{preset}"
    if fmt in ("bnb-nf4", "bnb-fp4"):
        block = detail.split()[1]
        return f"{fmt[4:]}-b{block}" + ("-dq" if "nested" in detail else "")
    if fmt == "bnb-int8":
        return "int8-pc-rtn_sym"
    return None


def _iter_gguf(src: Any, select: str | None) -> Iterator[tuple[str, str, str, float, np.ndarray]]:
    for t in src.tensors:
        if select and select not in t.name:
            continue
        hname = (src.hf_name(t.name) or t.name) if src.has_hf_names else t.name
        yield t.name, hname, t.type_name, t.bits_per_weight, src.dequantize(t.name)


def quant_report(
    path: str | os.PathLike[str],
    reference: str | os.PathLike[str] | None = None,
    *,
    select: str | None = None,
    progress: bool = False,
) -> QuantReport:
    """Build the report of a GGUF file or a GPTQ/AWQ/bnb safetensors checkpoint.

    ``reference``: a full-precision model file (GGUF or safetensors) to measure errors
    against; ``select``: only tensors whose name contains this string.
    """
    from .gguf import dequantize, quantize
    from .schemes import parse_scheme

    path = os.fspath(path)
    kind, src = _source(path)
    lookup = _reference_lookup(os.fspath(reference)) if reference is not None else None
    quantizable = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4", "TQ1_0", "TQ2_0"}
    items: Iterator[tuple[str, str, str, float, np.ndarray]]
    if kind == "gguf":
        items = _iter_gguf(src, select)
        total = len([t for t in src.tensors if not select or select in t.name])
        details: dict[str, str] = {}
    else:
        ws = [w for w in src.weights if not select or select in w.name]
        details = {w.name: w.detail for w in ws}
        items = ((w.name, w.name, w.method, w.bits_per_weight, src.dequantize(w.name)) for w in ws)
        total = len(ws)
    lines: list[TensorReport] = []
    for name, hname, fmt, bpw, values in tqdm(
        items, total=total, desc="quant-report", unit="tensor", disable=not progress
    ):
        stats = None
        against = "-"
        if lookup is not None:
            ref, hf_order = lookup(name, hname)
            if ref is not None and hf_order and kind == "gguf":
                values = src.hf_order(name, values)
            if ref is not None:
                if ref.shape != values.shape:
                    raise FormatError(
                        f"{name}: shape {values.shape} but the reference has {ref.shape}"
                    )
                stats = error_stats(ref, values, bpw)
                against = "reference"
        elif fmt in quantizable and values.ndim >= 1:
            requant = dequantize(quantize(values, fmt), fmt, values.shape)
            stats = error_stats(values, requant, bpw)
            against = "requantized"
        elif kind != "gguf" and values.ndim == 2:
            spec = _requant_scheme(fmt, details.get(name, ""))
            if spec is not None:
                requant = parse_scheme(spec).fake_quantize(values)
                stats = error_stats(values, requant, bpw)
                against = "requantized"
        lines.append(TensorReport(name, fmt, tuple(values.shape), bpw, against, stats))
    return QuantReport(path, lines)
