"""The registry of weight formats: name → block size, bytes per block, bits per weight."""

from __future__ import annotations

from dataclasses import dataclass

from .. import _native
from ..errors import UnknownNameError, did_you_mean

__all__ = ["Format", "get_format", "list_formats"]


@dataclass(frozen=True)
class Format:
    """A block weight format.

    Attributes
    ----------
    name : str
        Registry name (the ggml name for GGUF types, e.g. ``"Q4_K"``).
    family : str
        ``"gguf"``.
    type_id : int
        The ggml type id stored in GGUF files.
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


def list_formats() -> list[Format]:
    """Every registered format, in ggml id order."""
    return list(_FORMATS.values())


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
