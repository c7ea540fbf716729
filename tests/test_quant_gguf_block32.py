"""GGUF 32-element block kernels (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) and the 16-bit
float types (F16, BF16): dequantization bit-exact against the ``gguf`` package's numpy reference
(subnormal, infinite and NaN f16 scales, MXFP4's subnormal E8M0 scales), quantization
byte-identical with ``gguf.quants.quantize``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscale import _native
from capscale.errors import FormatError, InvalidInputError, ShapeError, UnknownNameError
from capscale.quant import dequantize, quantize

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize as ref_dequantize  # noqa: E402
from gguf.quants import quantize as ref_quantize  # noqa: E402

from _gguf_blocks import SCALE_OFFSETS as ALL_OFFSETS  # noqa: E402
from _gguf_blocks import SPECIAL_F16, random_blocks, sizes  # noqa: E402

T = gguf.GGMLQuantizationType
# An output array for native calls that fail before writing anything.
EMPTY = np.empty(0, np.float32)

SCALE_OFFSETS = {
    k: ALL_OFFSETS[k]
    for k in ("F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "MXFP4")
}
TYPES = list(SCALE_OFFSETS)
QUANTIZABLE = [t for t in TYPES if t != "IQ4_NL"]
# When d·q and m are both NaN (m NaN and d NaN or ±Inf), which payload the sum keeps is not
# defined (gguf-py itself returns either depending on the number of rows); only NaN-ness is
# compared there.
WITH_MIN = ("Q4_1", "Q5_1")


def reference(raw: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(ref_dequantize(raw, T[name]), dtype=np.float32)


def ambiguous_nan(raw: np.ndarray, name: str) -> np.ndarray:
    """Per output element: whether d·q and m may both be NaN in its block (Q4_1/Q5_1)."""
    bs, ts = sizes(name)
    blocks = np.ascontiguousarray(raw).reshape(-1, ts)
    if name not in WITH_MIN:
        return np.zeros(blocks.shape[0] * bs, dtype=bool)
    d = blocks[:, 0:2].copy().view("<f2")[:, 0]
    m = blocks[:, 2:4].copy().view("<f2")[:, 0]
    return np.repeat(~np.isfinite(d) & np.isnan(m), bs)


def assert_bit_exact(ours: np.ndarray, ref: np.ndarray, loose: np.ndarray | None = None) -> None:
    """Bit equality of float32 arrays, NaN payloads included, except where ``loose`` is set:
    there both must be NaN."""
    ours, ref = np.ravel(ours), np.ravel(ref)
    assert ours.dtype == np.float32 and ref.dtype == np.float32
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    strict = np.ones(ref.shape, bool) if loose is None else ~loose
    np.testing.assert_array_equal(ours.view(np.uint32)[strict], ref.view(np.uint32)[strict])


def check_dequantize(raw: np.ndarray, name: str, n_threads: int = 0) -> np.ndarray:
    ours = dequantize(raw, name, n_threads=n_threads)
    assert_bit_exact(ours, reference(raw, name), ambiguous_nan(raw, name))
    return ours


# ------------------------------------------------------------------ dequantization


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize(("rows", "n_blocks"), [(1, 1), (3, 1), (17, 3), (5, 16), (33, 7)])
def test_dequantize_is_bit_exact(name: str, rows: int, n_blocks: int) -> None:
    rng = np.random.default_rng([rows, n_blocks, TYPES.index(name)])
    raw = random_blocks(rng, name, rows, n_blocks)
    ours = check_dequantize(raw, name)
    assert ours.size == rows * n_blocks * sizes(name)[0]


@pytest.mark.parametrize("name", [t for t in TYPES if SCALE_OFFSETS[t]])
def test_every_special_scale_pair(name: str) -> None:
    # Every special f16 in d (and every (d, m) pair), against all 16/32 quant values.
    ts, offs = sizes(name)[1], SCALE_OFFSETS[name]
    specials = SPECIAL_F16.astype("<u2")
    combos = np.array(np.meshgrid(*[specials] * len(offs), indexing="ij")).reshape(len(offs), -1)
    raw = np.random.default_rng(5).integers(0, 256, (combos.shape[1], ts), dtype=np.uint8)
    for k, off in enumerate(offs):
        raw[:, off : off + 2] = combos[k].view(np.uint8).reshape(-1, 2)
    ref = reference(raw, name)
    check_dequantize(raw, name)
    assert np.isnan(ref).any() and np.isinf(ref).any()  # the test reaches both
    assert (ref[np.isfinite(ref)] != 0).any()


def test_mxfp4_every_e8m0_scale() -> None:
    # e = 0, 1 are the f32 subnormals 2^-128, 2^-127; e = 255 overflows 12·2^127 to Inf.
    raw = np.zeros((256, 17), np.uint8)
    raw[:, 0] = np.arange(256)
    raw[:, 1:] = np.arange(16, dtype=np.uint8) * 17  # every nibble in both halves
    ours = check_dequantize(raw, "MXFP4").reshape(256, 32)
    assert ours[0, 1] == np.float32(2.0**-128) and ours[1, 1] == np.float32(2.0**-127)
    assert ours[128, 7] == 12.0 and ours[255, 7] == np.inf


@pytest.mark.parametrize("name", ["F16", "BF16"])
def test_every_16_bit_pattern(name: str) -> None:
    # All 65536 bit patterns (subnormals, ±Inf, every NaN payload, signalling NaNs kept).
    raw = np.arange(1 << 16, dtype="<u2").view(np.uint8)
    ours = dequantize(raw, name)
    np.testing.assert_array_equal(ours.view(np.uint32), reference(raw, name).view(np.uint32))


@pytest.mark.parametrize("name", TYPES)
def test_threads_and_task_tails_agree(name: str) -> None:
    # 2053 blocks (F16/BF16: 2053·256 elements): one full parallel task plus a short tail.
    n_blocks = 2053 * (256 if sizes(name)[0] == 1 else 1)
    raw = random_blocks(np.random.default_rng(TYPES.index(name)), name, 1, n_blocks)
    one = check_dequantize(raw, name, n_threads=1)
    two = dequantize(raw.reshape(-1), name, n_threads=2)
    np.testing.assert_array_equal(two.view(np.uint32), one.view(np.uint32))


def test_public_api_matches_native() -> None:
    raw = random_blocks(np.random.default_rng(2), "Q5_1", 4, 3)
    out = dequantize(raw, "q5_1", shape=(4, 96))
    assert out.shape == (4, 96)
    assert_bit_exact(out, reference(raw, "Q5_1"), ambiguous_nan(raw, "Q5_1"))


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(TYPES), n_blocks=st.integers(1, 4), data=st.data())
def test_dequantize_any_bytes_property(name: str, n_blocks: int, data: st.DataObject) -> None:
    n = n_blocks * sizes(name)[1]
    raw = np.frombuffer(data.draw(st.binary(min_size=n, max_size=n)), dtype=np.uint8)
    check_dequantize(raw, name)


# ------------------------------------------------------------------ quantization


def reference_quantize(x: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(all="ignore"):  # F16: values beyond 65504 become Inf
        return np.asarray(ref_quantize(x, T[name])).view(np.uint8)


def gaussian_rows(seed: int, rows: int, n_blocks: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, n_blocks * 32)) * 0.02).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block
    x[1, :32] *= 1e-7  # tiny values (f16 d subnormal or zero)
    x[1, 32:64] *= 1e-30
    x[2, :32] *= 1e6  # huge values (d overflows f16 to Inf)
    x[2, 32:64] = x[2, 32:64] ** 2  # all positive: the min of Q4_1/Q5_1 is positive
    return x


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_quantize_is_byte_identical(name: str) -> None:
    x = gaussian_rows(3, 7, 5)
    want = reference_quantize(x, name)
    ours = _native.gguf_quantize(x.reshape(-1), name)
    np.testing.assert_array_equal(ours, want.reshape(-1))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(quantize(x, name), want.reshape(x.shape[0], -1))
    # our dequantization of our bytes equals gguf's of its bytes
    raw = want.reshape(x.shape[0], -1)
    assert_bit_exact(dequantize(ours, name), reference(raw, name))


@pytest.mark.parametrize("name", [t for t in QUANTIZABLE if t not in ("F16", "BF16")])
def test_quantize_ties_and_edges(name: str) -> None:
    rng = np.random.default_rng(9)
    x = np.zeros((8, 32), np.float32)
    x[0] = rng.integers(-16, 17, 32)  # integers: x·id + 8.5 / 16.5 land on .5 ties
    x[1] = rng.integers(-64, 65, 32) / 2  # halves: Q8_0's round half away from zero
    x[2] = -3.0  # constant block, negative max
    x[3, 5] = -1e-3  # a single non-zero value
    x[4] = np.linspace(-1, 1, 32)
    x[5] = 2.0 ** rng.integers(-20, 20, 32) * rng.choice([-1, 1], 32)  # powers of two
    x[6] = np.float32(65504.0)  # f16 max
    x[7] = -0.0
    np.testing.assert_array_equal(
        _native.gguf_quantize(x.reshape(-1), name), reference_quantize(x, name).reshape(-1)
    )


def test_mxfp4_exponent_near_powers_of_two() -> None:
    # e = ⌊log2_f32(amax)⌋ + 125: just below 2^k, the f32 log2 rounds up to k for |k| ≥ 2.
    k = np.arange(-100, 120)
    below = np.ldexp(np.float32(1), k).astype(np.float32).view(np.uint32)
    amax = np.concatenate([below - j for j in range(0, 40)]).view(np.float32)
    x = np.random.default_rng(4).uniform(-1, 1, (amax.size, 32)).astype(np.float32)
    x *= amax[:, None]
    x[:, 9] = -amax
    np.testing.assert_array_equal(
        _native.gguf_quantize(x.reshape(-1), "MXFP4"), reference_quantize(x, "MXFP4").reshape(-1)
    )


@pytest.mark.parametrize("name", ["F16", "BF16"])
def test_16_bit_quantize_special_values(name: str) -> None:
    bits = np.array(
        [
            0x7F800001,  # signalling NaN, payload below f16/bf16 precision
            0x7FA00000,  # signalling NaN
            0xFFC00001,  # negative quiet NaN
            0x7F800000,  # +Inf
            0x477FF000,  # 65520: rounds to f16 Inf
            0x477FEFFF,  # just below: 65504
            0x33000000,  # 2^-25: ties to f16 zero
            0x33000001,  # just above: smallest f16 subnormal
            0x3F808000,  # bf16 tie, even
            0x3F818000,  # bf16 tie, odd
            0x7F7FFFFF,  # f32 max: bf16 rounds to Inf
            0x00000001,  # f32 subnormal
            0x80000000,  # -0
        ],
        dtype=np.uint32,
    )
    x = bits.view(np.float32)
    want = reference_quantize(x, name)
    np.testing.assert_array_equal(_native.gguf_quantize(x, name), want)
    # a random sample of all bit patterns
    y = np.random.default_rng(6).integers(0, 1 << 32, 1 << 16, dtype=np.uint32).view(np.float32)
    np.testing.assert_array_equal(_native.gguf_quantize(y, name), reference_quantize(y, name))


# Relative RMSE on N(0, 0.02²) weights (quant-formats.md §1.3), with 10% headroom.
RELATIVE_RMSE = {
    "F16": 0.0005,
    "BF16": 0.0017,
    "Q4_0": 0.086,
    "Q4_1": 0.078,
    "Q5_0": 0.043,
    "Q5_1": 0.038,
    "Q8_0": 0.0054,
    "MXFP4": 0.114,
}


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_round_trip_error(name: str) -> None:
    x = (np.random.default_rng(8).standard_normal(64 * 1024) * 0.02).astype(np.float32)
    back = dequantize(_native.gguf_quantize(x, name), name)
    rel = np.sqrt(np.mean((back - x) ** 2) / np.mean(x**2))
    assert rel <= 1.1 * RELATIVE_RMSE[name]
    # values already on the grid come back exactly (idempotent)
    again = dequantize(_native.gguf_quantize(back, name), name)
    np.testing.assert_array_equal(again, back)


@settings(max_examples=50, deadline=None)
@given(
    name=st.sampled_from(QUANTIZABLE),
    scale=st.sampled_from([0.0, 1e-30, 1e-8, 0.02, 1.0, 3e4]),
    seed=st.integers(0, 2**32 - 1),
    n_blocks=st.integers(1, 3),
)
def test_quantize_property(name: str, scale: float, seed: int, n_blocks: int) -> None:
    x = (np.random.default_rng(seed).standard_normal(n_blocks * 32) * scale).astype(np.float32)
    # + 0 turns −0 into +0: when a block's min (max) is a zero of both signs, NumPy's SIMD
    # min/max reduction keeps either sign depending on its lane order (and CPU); we keep the
    # first, like ggml's C reference. Only Q4_1/Q5_1's stored m (f16 ±0) can differ.
    x = x + np.float32(0)
    np.testing.assert_array_equal(_native.gguf_quantize(x, name), reference_quantize(x, name))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("name", TYPES)
def test_truncated_buffer_is_a_format_error(name: str) -> None:
    raw = np.zeros(2 * sizes(name)[1] + 1, dtype=np.uint8)
    with pytest.raises(FormatError, match=rf"not a whole number of {name} blocks.*truncated"):
        _native.gguf_dequantize(raw, name, EMPTY)
    with pytest.raises(FormatError, match="truncated"):
        dequantize(raw, name)


def test_unknown_type_name() -> None:
    with pytest.raises(UnknownNameError, match='unknown GGUF type "Q4_9"'):
        _native.gguf_dequantize(np.zeros(18, np.uint8), "Q4_9", EMPTY)
    with pytest.raises(UnknownNameError, match="unknown GGUF type"):
        _native.gguf_quantize(np.zeros(32, np.float32), "MXFP5")


def test_wrong_dtype_and_non_contiguous_arrays() -> None:
    with pytest.raises(ShapeError, match="contiguous 1-D uint8"):
        _native.gguf_dequantize(np.zeros(36, np.uint8)[::2], "Q4_0", EMPTY)
    with pytest.raises(ShapeError, match="contiguous 1-D float32"):
        _native.gguf_quantize(np.zeros(64, np.float32)[::2], "Q4_0")
    with pytest.raises(InvalidInputError, match="uint8"):
        dequantize(np.zeros(18, np.int16), "Q4_0")


@pytest.mark.parametrize("name", [t for t in QUANTIZABLE if sizes(t)[0] > 1])
def test_length_not_whole_blocks_is_a_shape_error(name: str) -> None:
    with pytest.raises(ShapeError, match=rf"33 elements are not a whole number of {name} blocks"):
        _native.gguf_quantize(np.zeros(33, np.float32), name)
    with pytest.raises(ShapeError, match="whole number"):
        quantize(np.zeros((2, 40), np.float32), name)


def test_iq4_nl_has_no_reference_quantizer() -> None:
    with pytest.raises(InvalidInputError, match="IQ4_NL has no reference quantizer"):
        _native.gguf_quantize(np.zeros(32, np.float32), "IQ4_NL")
    with pytest.raises(InvalidInputError, match="no reference"):
        quantize(np.zeros((1, 32), np.float32), "iq4_nl")
