"""Precision as an axis: what numeric format a model's weights are evaluated in.

A precision is named by a string:

* ``"shipped"`` (alias ``"as-shipped"``) — the weights exactly as the model source stores them
  (a GGUF file's Q4_1 blocks, a GPTQ checkpoint's int4 codes …, dequantized by capscale's
  kernels), in the compute dtype;
* ``"fp32"``, ``"bf16"``, ``"fp16"`` — the source weights cast to that dtype (the compute dtype
  too);
* any fake-quantization scheme of :func:`capscale.quant.parse_scheme` — ``"int8"``,
  ``"int4-g128"``, ``"int3-g128"``, ``"int4-g128-sym"``, ``"nf4"``, ``"fp4-b64-dq"``,
  ``"gguf:Q4_0"`` …: every ``nn.Linear`` weight except the output head is quantized and
  dequantized in float32 (:func:`capscale.quant.apply_fake_quant`), then cast to the compute
  dtype. Fake quantization starts from the source weights: for a GGUF source those are
  already quantized, which the stored spec records (``settings.base``).

Each precision maps to a spec of the results store (``format``, ``bits``, ``group_size``,
``symmetric``, ``settings``) and, once applied, to measured weight error statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UnknownNameError, did_you_mean
from ..quant import QuantScheme, parse_scheme

__all__ = ["Precision", "parse_precision"]

_FULL = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
}
_SHIPPED = ("shipped", "as-shipped", "as_shipped", "native")
_EXAMPLES = ("shipped", "fp32", "bf16", "fp16", "int8", "int4-g128", "int3-g128", "nf4", "fp4")


@dataclass(frozen=True)
class Precision:
    """A parsed precision.

    Attributes
    ----------
    name : str
        Canonical name (``"shipped"``, ``"fp32"``, ``"int4-g128-rtn_asym"``, ``"nf4-b64"`` …).
    kind : str
        ``"shipped"``, ``"full"`` or ``"fake"``.
    dtype : str or None
        Dtype the weights are cast to for ``"full"`` precisions (None: keep the loaded one).
    scheme : QuantScheme or None
        The fake-quantization scheme (``"fake"`` only).
    """

    name: str
    kind: str
    dtype: str | None = None
    scheme: QuantScheme | None = None

    def store_spec(self, shipped: dict[str, Any] | None = None) -> dict[str, Any]:
        """The results-store spec of this precision applied to a source whose own weights
        have the spec ``shipped`` (e.g. ``{"format": "gguf", "settings": {"type": "Q4_1"}}``;
        default fp32)."""
        base = dict(shipped or {"format": "fp32", "name": "fp32"})
        if self.kind == "shipped":
            return base
        base_name = base.get("name") or base["format"]
        if self.kind == "full":
            fmt = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[self.dtype or ""]
            spec: dict[str, Any] = {"format": fmt, "name": fmt}
            if base["format"] not in ("fp32", "fp16", "bf16"):
                spec["settings"] = {"base": base_name}
            return spec
        assert self.scheme is not None
        p = self.scheme.params
        settings: dict[str, Any] = {
            "scheme": self.scheme.name,
            "bits_per_weight": self.scheme.bits_per_weight,
            "applied_to": "linear weights except lm_head",
            "base": base_name,
        }
        if self.scheme.kind == "affine":
            sym = p["preset"] in ("rtn_sym", "gptq_sym")
            settings.update(preset=p["preset"], rounding="half_even")
            return {
                "format": "affine",
                "name": self.name,
                "bits": float(p["bits"]),
                "group_size": p["group_size"] if p["group_size"] > 0 else None,
                "symmetric": sym,
                "settings": settings,
            }
        if self.scheme.kind == "bnb":
            settings["double_quant"] = p["double_quant"]
            return {
                "format": p["quant_type"],
                "name": self.name,
                "group_size": p["blocksize"],
                "symmetric": False,
                "settings": settings,
            }
        settings["type"] = p["type"]
        return {
            "format": "gguf",
            "name": self.name,
            "bits": self.scheme.bits_per_weight,
            "settings": settings,
        }

    def apply(self, model: Any, *, progress: bool = False) -> dict[str, Any] | None:
        """Put ``model``'s weights in this precision, in place. Returns the measured weight
        error statistics (fake quantization) or None (shipped / plain casts)."""
        from ..quant._torch import torch_dtype

        if self.kind == "full":
            model.to(torch_dtype(self.dtype))
            return None
        if self.kind == "shipped":
            return None
        from ..quant import apply_fake_quant

        assert self.scheme is not None
        report = apply_fake_quant(model, self.scheme, progress=progress)
        stats = report.summary()
        stats["against"] = "source weights"
        return stats

    def __str__(self) -> str:
        return self.name


def parse_precision(spec: str | Precision) -> Precision:
    """Parse a precision name (see the module docstring); UnknownNameError with a suggestion
    for names that are neither a dtype, ``"shipped"`` nor a quantization scheme."""
    if isinstance(spec, Precision):
        return spec
    s = str(spec).strip().lower()
    if s in _SHIPPED:
        return Precision("shipped", "shipped")
    if s in _FULL:
        dt = _FULL[s]
        short = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[dt]
        return Precision(short, "full", dtype=dt)
    try:
        scheme = parse_scheme(s)
    except UnknownNameError:
        hint = did_you_mean(s, _EXAMPLES)
        raise UnknownNameError(
            f"unknown precision {spec!r}; {hint + ' ' if hint else ''}"
            f"use shipped, fp32/bf16/fp16 or a quantization scheme such as "
            f"{', '.join(_EXAMPLES[4:])}"
        ) from None
    if scheme.kind == "none":
        return Precision("fp32", "full", dtype="float32")
    return Precision(scheme.name, "fake", scheme=scheme)
