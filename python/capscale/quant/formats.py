"""The registry of weight formats: name → block size, bytes per block, bits per weight.

Every GGUF/ggml block type (family ``"gguf"``, dequantized by :func:`capscale.quant.dequantize`)
and the common settings of the checkpoint formats, with their storage cost: bitsandbytes
4-bit codebooks (``"bnb"``: :func:`capscale.quant.bnb.dequantize_4bit`), LLM.int8 rows and
GPTQ/AWQ packed int4 (``"gptq"``, ``"awq"``: :mod:`capscale.quant.gptq`). For formats whose
cost depends on the tensor (a per-row scale), the block is one 4096-wide row.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import _native
from ..errors import UnknownNameError, did_you_mean

__all__ = ["FAMILIES", "Format", "get_format", "list_formats"]


@dataclass(frozen=True)
class Format:
    """A block weight format.

    Attributes
    ----------
    name : str
        Registry name (the ggml name for GGUF types, e.g. ``"Q4_K"``).
    family : str
        ``"gguf"``, ``"bnb"``, ``"gptq"`` or ``"awq"``.
    type_id : int
        The ggml type id stored in GGUF files (-1 for other families).
    block_size : int
        Elements per block.
    type_size : int
        Bytes per block.
    """

    name: str
    family: str
    type_id: int
    block_size: int
    type_size: int

    @property
    def bits_per_weight(self) -> float:
        """Storage cost in bits per element, scales included (``8·type_size/block_size``)."""
        return 8.0 * self.type_size / self.block_size


_FORMATS: dict[str, Format] = {
    name: Format(name, "gguf", tid, bs, ts) for name, tid, bs, ts in _native.gguf_types()
}
# Checkpoint formats at their usual settings: bytes per block = packed codes + scales/zeros.
_FORMATS.update(
    {
        # 64 codes in 32 bytes + one float32 absmax
        "NF4": Format("NF4", "bnb", -1, 64, 32 + 4),
        "FP4": Format("FP4", "bnb", -1, 64, 32 + 4),
        # double quantization: a uint8 absmax code per 64, a float32 scale per 256 codes
        "NF4-DQ": Format("NF4-DQ", "bnb", -1, 64 * 256, 32 * 256 + 256 + 4),
        # one int8 per weight + a float32 SCB per 4096-wide row
        "INT8-ROW": Format("INT8-ROW", "bnb", -1, 4096, 4096 + 4),
        # 4-bit codes, an fp16 scale and a 4-bit packed zero per group of 128 (GPTQ's g_idx,
        # 4 bytes per input row, not included); per 256 weights: 128 + 2·2 + 1 bytes
        "GPTQ-INT4-G128": Format("GPTQ-INT4-G128", "gptq", -1, 256, 128 + 4 + 1),
        "AWQ-INT4-G128": Format("AWQ-INT4-G128", "awq", -1, 256, 128 + 4 + 1),
    }
)
FAMILIES = ("gguf", "bnb", "gptq", "awq")


def list_formats(family: str | None = None) -> list[Format]:
    """Every registered format (GGUF types in ggml id order first), or one ``family``'s."""
    if family is not None and family not in FAMILIES:
        hint = did_you_mean(family, FAMILIES)
        raise UnknownNameError(
            f"unknown format family {family!r}; {hint + ' ' if hint else ''}"
            f"known: {', '.join(FAMILIES)}"
        )
    return [f for f in _FORMATS.values() if family is None or f.family == family]


def get_format(name: str | Format) -> Format:
    """Look a format up by name (case-insensitive); UnknownNameError with a suggestion."""
    if isinstance(name, Format):
        return name
    key = str(name).upper()
    if key not in _FORMATS:
        hint = did_you_mean(key, _FORMATS)
        raise UnknownNameError(
            f"unknown weight format {name!r}; {hint + ' ' if hint else ''}"
            f"known: {', '.join(_FORMATS)}"
        )
    return _FORMATS[key]
