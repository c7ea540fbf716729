"""GGUF 256-element super-block kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0):
bit-exact against the ``gguf`` package's numpy reference, including subnormal, infinite and NaN
f16 scales; TQ1_0/TQ2_0 quantization byte-identical with ``gguf.quants.quantize``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscale import _native
from capscale.errors import FormatError, InvalidInputError, ShapeError
from capscale.quant import dequantize, quantize

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize as ref_dequantize  # noqa: E402
from gguf.quants import quantize as ref_quantize  # noqa: E402

from _gguf_blocks import SCALE_OFFSETS as ALL_OFFSETS  # noqa: E402
from _gguf_blocks import SPECIAL_F16, random_blocks  # noqa: E402

T = gguf.GGMLQuantizationType
# An output array for native calls that fail before writing anything.
EMPTY = np.empty(0, np.float32)

SCALE_OFFSETS = {
    k: ALL_OFFSETS[k] for k in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "TQ1_0", "TQ2_0")
}
TYPES = list(SCALE_OFFSETS)
TERNARY = ["TQ1_0", "TQ2_0"]
NO_REFERENCE_QUANTIZER = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"]


def type_size(name: str) -> int:
    return int(gguf.GGML_QUANT_SIZES[T[name]][1])


def reference(raw: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(ref_dequantize(raw, T[name]), dtype=np.float32)


def assert_bits_equal(ours: np.ndarray, ref: np.ndarray) -> None:
    """Bit equality of float32 arrays; NaNs must be NaN in both (payloads may differ)."""
    ours, ref = np.ravel(ours), np.ravel(ref)
    assert ours.dtype == np.float32 and ref.dtype == np.float32
    assert ours.shape == ref.shape
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours.view(np.uint32)[~nan], ref.view(np.uint32)[~nan])


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize(("rows", "n_blocks"), [(1, 1), (3, 1), (17, 3), (5, 16)])
def test_dequantize_is_bit_exact(name: str, rows: int, n_blocks: int) -> None:
    rng = np.random.default_rng([rows, n_blocks, TYPES.index(name)])
    raw = random_blocks(rng, name, rows, n_blocks)
    ours = dequantize(raw.reshape(-1), name)
    assert_bits_equal(ours, reference(raw, name))
    assert ours.size == rows * n_blocks * 256


@pytest.mark.parametrize("name", TYPES)
def test_special_scales_reach_every_block(name: str) -> None:
    # Every special f16 in every scale field, against sane other fields.
    ts, offs = type_size(name), SCALE_OFFSETS[name]
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, (len(SPECIAL_F16) * len(offs), ts), dtype=np.uint8)
    one = np.array([0x3C00], "<u2").view(np.uint8)
    raw[:, [o for off in offs for o in (off, off + 1)]] = np.tile(one, len(offs))
    for k, off in enumerate(offs):
        rows = slice(k * len(SPECIAL_F16), (k + 1) * len(SPECIAL_F16))
        raw[rows, off : off + 2] = SPECIAL_F16.astype("<u2").view(np.uint8).reshape(-1, 2)
    ours = dequantize(raw.reshape(-1), name)
    ref = reference(raw, name)
    assert_bits_equal(ours, ref)
    assert np.isnan(ref).any() and np.isinf(ref).any()  # the test reaches both


@pytest.mark.parametrize("name", TYPES)
def test_multi_task_input_and_threads(name: str) -> None:
    # 2053 blocks: one full 2048-block task plus a short tail, on 1 and 2 threads.
    rng = np.random.default_rng(TYPES.index(name))
    raw = random_blocks(rng, name, 1, 2053).reshape(-1)
    one = dequantize(raw, name, n_threads=1)
    assert_bits_equal(one, reference(raw, name))
    two = dequantize(raw, name, n_threads=2)
    np.testing.assert_array_equal(two.view(np.uint32), one.view(np.uint32))


def test_public_api_shapes_and_float16() -> None:
    rng = np.random.default_rng(1)
    raw = random_blocks(rng, "Q4_K", 4, 2)
    ref = reference(raw, "Q4_K")
    out = dequantize(raw, "q4_k", shape=(4, 512))
    assert out.shape == (4, 512)
    assert_bits_equal(out, ref)
    with np.errstate(over="ignore", invalid="ignore"):  # huge scales overflow float16
        want16 = ref.astype(np.float16).ravel()
        out16 = dequantize(raw.tobytes(), "Q4_K", dtype=np.float16)
    np.testing.assert_array_equal(out16, want16)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(TYPES),
    n_blocks=st.integers(1, 3),
    data=st.data(),
)
def test_dequantize_any_bytes_property(name: str, n_blocks: int, data: st.DataObject) -> None:
    n = n_blocks * type_size(name)
    raw = np.frombuffer(data.draw(st.binary(min_size=n, max_size=n)), dtype=np.uint8)
    assert_bits_equal(dequantize(raw, name), reference(raw, name))


# ------------------------------------------------------------------ ternary quantization


def gaussian_rows(seed: int, rows: int, n_blocks: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, n_blocks * 256)) * 0.02).astype(np.float32)
    x[0, :256] = 0.0  # an all-zero block
    if rows > 1:
        x[1, 256:512] *= 1e-30  # tiny values (subnormal f16 d)
        x[1, :256] *= 1e6  # huge values (d overflows f16 to Inf)
    return x


@pytest.mark.parametrize("name", TERNARY)
def test_ternary_quantize_is_byte_identical(name: str) -> None:
    x = gaussian_rows(3, 6, 4)
    with np.errstate(over="ignore"):
        want = ref_quantize(x, T[name])
    ours = _native.gguf_quantize(x.reshape(-1), name).reshape(want.shape)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_array_equal(quantize(x, name), want)
    # round trip: our dequantization of our bytes equals gguf's of its bytes
    assert_bits_equal(dequantize(ours.reshape(-1), name), reference(want, name))


@pytest.mark.parametrize("name", TERNARY)
def test_ternary_ties_and_non_finite_match_gguf(name: str) -> None:
    x = np.zeros((5, 256), np.float32)
    x[0, :4] = [1.0, 0.5, -0.5, 0.4999999]  # halves round away from zero
    x[1, :] = 2e-39  # subnormal max: 1/d overflows to Inf, values become NaN
    x[2, 3] = np.nan
    x[3, 7] = np.inf
    x[4, :] = -3.0
    with np.errstate(all="ignore"):
        want = ref_quantize(x, T[name])
    ours = _native.gguf_quantize(x.reshape(-1), name).reshape(want.shape)
    np.testing.assert_array_equal(ours, want)


@pytest.mark.parametrize("name", TERNARY)
def test_ternary_values_round_trip_exactly(name: str) -> None:
    rng = np.random.default_rng(11)
    d = np.float32(0.375)  # representable in f16
    x = (rng.integers(-1, 2, (3, 512)) * d).astype(np.float32)
    x[:, 0] = d  # max |x| = d in every block
    x[:, 256] = -d
    back = dequantize(_native.gguf_quantize(x.reshape(-1), name), name)
    np.testing.assert_array_equal(back, x.ravel())


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(TERNARY),
    scale=st.sampled_from([0.0, 1e-8, 0.02, 1.0, 3e4]),
    seed=st.integers(0, 2**32 - 1),
    n_blocks=st.integers(1, 3),
)
def test_ternary_quantize_property(name: str, scale: float, seed: int, n_blocks: int) -> None:
    x = (np.random.default_rng(seed).standard_normal(n_blocks * 256) * scale).astype(np.float32)
    with np.errstate(over="ignore"):  # d beyond 65504 becomes an f16 Inf
        want = ref_quantize(x, T[name])
    np.testing.assert_array_equal(_native.gguf_quantize(x, name), want)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("name", TYPES)
def test_truncated_buffer_is_a_format_error(name: str) -> None:
    raw = np.zeros(2 * type_size(name) - 1, dtype=np.uint8)
    with pytest.raises(FormatError, match=rf"not a whole number of {name} blocks.*truncated"):
        _native.gguf_dequantize(raw, name, EMPTY)
    with pytest.raises(FormatError, match="truncated"):
        dequantize(raw[:-5], name)


@pytest.mark.parametrize("name", NO_REFERENCE_QUANTIZER)
def test_k_quant_quantize_has_no_reference(name: str) -> None:
    x = np.zeros(256, np.float32)
    with pytest.raises(InvalidInputError, match=rf"{name} quantization.*no reference"):
        _native.gguf_quantize(x, name)
    with pytest.raises(InvalidInputError, match="round-to-nearest"):
        quantize(x.reshape(1, 256), name)


@pytest.mark.parametrize("name", TERNARY)
def test_length_not_whole_blocks_is_a_shape_error(name: str) -> None:
    with pytest.raises(ShapeError, match=rf"300 elements are not a whole number of {name}"):
        _native.gguf_quantize(np.zeros(300, np.float32), name)
    with pytest.raises(ShapeError, match="whole number"):
        quantize(np.zeros((2, 300), np.float32), name)
