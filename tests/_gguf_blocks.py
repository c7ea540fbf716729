"""Test helpers: random but valid GGUF blocks for every type, with f16 scales drawn from the
special values that catch conversion bugs (±0, subnormals, ±65504, ties, ±Inf, NaNs)."""

from __future__ import annotations

import gguf
import numpy as np

T = gguf.GGMLQuantizationType

# Byte offsets of each type's f16 scale fields (d, and m/dmin where there is one). MXFP4's
# scale is an E8M0 byte (every value valid); F32/F16/BF16 are plain elements whose random
# bytes include subnormals, Inf and NaN anyway.
SCALE_OFFSETS: dict[str, tuple[int, ...]] = {
    "F32": (),
    "F16": (),
    "BF16": (),
    "Q4_0": (0,),
    "Q4_1": (0, 2),
    "Q5_0": (0,),
    "Q5_1": (0, 2),
    "Q8_0": (0,),
    "IQ4_NL": (0,),
    "MXFP4": (),
    "Q2_K": (80, 82),
    "Q3_K": (108,),
    "Q4_K": (0, 2),
    "Q5_K": (0, 2),
    "Q6_K": (208,),
    "IQ4_XS": (0,),
    "TQ1_0": (52,),
    "TQ2_0": (64,),
}

# ±0, smallest/largest subnormals (±), smallest normal, ±max finite (65504), 1.0; values whose
# products land on f16/bf16 rounding ties; ±Inf, quiet and signalling NaNs (with payloads),
# a negative NaN.
SPECIAL_FINITE = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]
SPECIAL_TIES = [0x3C01, 0x0C01]
SPECIAL_NON_FINITE = [0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x7D55, 0xFE00]
SPECIAL_F16 = np.array([*SPECIAL_FINITE, *SPECIAL_NON_FINITE], dtype=np.uint16)


def sizes(name: str) -> tuple[int, int]:
    """(elements per block, bytes per block) from gguf-py's table."""
    bs, ts = gguf.GGML_QUANT_SIZES[T[name]]
    return int(bs), int(ts)


def random_blocks(
    rng: np.random.Generator,
    name: str,
    rows: int,
    n_blocks: int,
    specials: np.ndarray = SPECIAL_F16,
) -> np.ndarray:
    """(rows, n_blocks·type_size) uint8: random payload bytes (every pattern is valid) and f16
    scales that are 40% ``specials``, else ~N(0, 0.01)."""
    ts = sizes(name)[1]
    raw = rng.integers(0, 256, (rows, n_blocks, ts), dtype=np.uint8)
    for off in SCALE_OFFSETS[name]:
        normal = (rng.standard_normal((rows, n_blocks)) * 0.01).astype(np.float16)
        special = rng.choice(specials, (rows, n_blocks))
        bits = np.where(rng.random((rows, n_blocks)) < 0.4, special, normal.view(np.uint16))
        raw[..., off : off + 2] = bits.astype("<u2").view(np.uint8).reshape(rows, n_blocks, 2)
    return raw.reshape(rows, n_blocks * ts)
