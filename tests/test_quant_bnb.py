"""bitsandbytes NF4/FP4 (plain and nested absmax) and LLM.int8: native dequantization against
NumPy references written here from the documented layouts (to the last bit), bitsandbytes'
code tables, the quantizers, and every malformed-input class."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscale.errors import FormatError, InvalidInputError, ShapeError, UnknownNameError
from capscale.quant.bnb import (
    Bnb4bitState,
    NestedAbsmax,
    code_table,
    dequantize_4bit,
    dequantize_int8,
    quantize_4bit,
    quantize_int8,
)

HAS_TORCH = importlib.util.find_spec("torch") is not None

# bitsandbytes' NF4 table as printed in get_4bit_type / the QLoRA paper (decimal → float32).
NF4_DECIMAL = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]  # fmt: skip
# FP4: 1 sign, 2 exponent, 1 mantissa bits, bias 2, divided by the largest magnitude (12).
FP4_RAW = [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3]
INT8_SCALE = np.float32(7.874015718698502e-3)


# ---------------------------------------------------------------------------------------------
# References (independent of the package).
# ---------------------------------------------------------------------------------------------


def unpack_nibbles(packed: np.ndarray, n: int) -> np.ndarray:
    """Codes of the flattened tensor: byte i = (q[2i] << 4) | q[2i+1]."""
    b = packed.reshape(-1)
    q = np.empty(2 * b.size, dtype=np.uint8)
    q[0::2] = b >> 4
    q[1::2] = b & 0xF
    return q[:n]


def pack_nibbles(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.uint8)
    if q.size % 2:
        q = np.concatenate([q, np.zeros(1, np.uint8)])
    return ((q[0::2] << 4) | q[1::2]).astype(np.uint8)


def ref_4bit(packed, absmax, code, blocksize, n):
    q = unpack_nibbles(packed, n)
    scale = np.repeat(np.asarray(absmax, np.float32), blocksize)[:n]
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(code, np.float32)[q] * scale


def ref_nested_absmax(qabsmax, absmax2, code2, blocksize2, offset):
    scale = np.repeat(np.asarray(absmax2, np.float32), blocksize2)[: qabsmax.size]
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(code2, np.float32)[qabsmax] * scale + np.float32(offset)


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bits, round to nearest even, NaN quiet (torch's conversion)."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    quiet = ((b >> 16) | 0x40).astype(np.uint16)
    return np.where(np.isnan(x), quiet, rounded)


def assert_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def check_all_dtypes(run, ref32: np.ndarray) -> None:
    """run(dtype) against the float32 reference and its round-once conversions."""
    assert_bits(run("float32"), ref32)
    with np.errstate(over="ignore", invalid="ignore"):
        assert_bits(run("float16"), ref32.astype(np.float16))
    assert_bits(run("bfloat16"), bf16_bits(ref32))


# ---------------------------------------------------------------------------------------------
# Code tables.
# ---------------------------------------------------------------------------------------------


def test_code_tables_are_bitsandbytes_tables():
    np.testing.assert_array_equal(code_table("nf4"), np.array(NF4_DECIMAL, np.float32))
    fp4 = np.array(FP4_RAW, np.float32) / np.float32(12)
    assert_bits(code_table("fp4"), fp4)
    assert code_table("fp4")[8] == 0 and not np.signbit(code_table("fp4")[8])
    dyn = code_table("dynamic")
    assert dyn.dtype == np.float32 and dyn.shape == (256,)
    assert np.all(np.diff(dyn) >= 0)
    assert dyn[-1] == 1.0 and np.count_nonzero(dyn == 0) == 1
    assert np.float32(-0.99296874) == dyn[0]
    # signed: 127 negative, zero, 128 positive (including 1.0)
    assert np.count_nonzero(dyn < 0) == 127
    code_table("NF4")[0] = 5  # a copy: the next call is unaffected
    assert code_table("nf4")[0] == -1.0


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_dynamic_map_matches_create_dynamic_map_formula():
    import torch

    # bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8).
    data: list[float] = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2**i + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0, 1.0]
    want = torch.tensor(sorted(data), dtype=torch.float32).numpy()
    assert_bits(code_table("dynamic"), want)


def test_code_table_unknown_name():
    with pytest.raises(UnknownNameError, match="did you mean 'nf4'"):
        code_table("nf5")


# ---------------------------------------------------------------------------------------------
# 4-bit dequantization.
# ---------------------------------------------------------------------------------------------


def test_hand_packed_bytes():
    # byte 0xF0: element 0 = code[15] (high nibble), element 1 = code[0]; 0x7A: code[7], code[10]
    code = code_table("nf4")
    packed = np.array([0xF0, 0x7A, 0x30], np.uint8)
    out = dequantize_4bit(packed, np.array([2.0], np.float32), blocksize=32, shape=5)
    want = np.array([1.0, -1.0, 0.0, code[10], code[3]], np.float32) * np.float32(2)
    assert_bits(out, want)


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize(
    ("n", "blocksize"),
    [(1, 32), (31, 32), (33, 32), (64, 64), (1001, 64), (4097, 128), (5000, 4096), (70001, 256)],
)
def test_dequantize_matches_reference_every_dtype(quant_type, n, blocksize):
    rng = np.random.default_rng(n + blocksize)
    packed = rng.integers(0, 256, (n + 1) // 2, dtype=np.uint8)
    nb = -(-n // blocksize)
    absmax = rng.standard_normal(nb).astype(np.float32) * 10
    code = code_table(quant_type)
    ref = ref_4bit(packed, absmax, code, blocksize, n)

    def run(dtype):
        return dequantize_4bit(
            packed, absmax, quant_type=quant_type, blocksize=blocksize, shape=(n,), dtype=dtype
        )

    check_all_dtypes(run, ref)


def test_shape_out_threads_and_strided_inputs():
    rng = np.random.default_rng(1)
    shape = (37, 21)  # odd count, partial last block
    n = 37 * 21
    packed = rng.integers(0, 256, ((n + 1) // 2, 1), dtype=np.uint8)  # bnb's storage shape
    absmax = np.abs(rng.standard_normal(-(-n // 64))).astype(np.float32)
    ref = ref_4bit(packed, absmax, code_table("nf4"), 64, n).reshape(shape)
    one = dequantize_4bit(packed, absmax, shape=shape, n_threads=1)
    assert_bits(one, ref)
    assert_bits(dequantize_4bit(packed, absmax, shape=shape, n_threads=2), ref)
    buf = np.full(n, np.nan, np.float32)
    res = dequantize_4bit(packed, absmax, shape=shape, out=buf)
    assert res.base is buf or res is buf
    assert_bits(buf.reshape(shape), ref)
    b16 = np.empty(shape, np.uint16)
    assert dequantize_4bit(packed, absmax, shape=shape, dtype="bf16", out=b16) is b16
    assert_bits(b16, bf16_bits(ref))
    # strided inputs are copied once and give the same result
    wide = np.zeros((packed.size, 2), np.uint8)
    wide[:, 0] = packed[:, 0]
    assert_bits(dequantize_4bit(wide[:, 0], absmax[::1], shape=shape), ref)


def test_large_tensor_is_multithreaded_and_exact():
    rng = np.random.default_rng(2)
    n = 1_000_003
    packed = rng.integers(0, 256, (n + 1) // 2, dtype=np.uint8)
    absmax = rng.random(-(-n // 64)).astype(np.float32)
    ref = ref_4bit(packed, absmax, code_table("fp4"), 64, n)
    assert_bits(dequantize_4bit(packed, absmax, quant_type="fp4", shape=n, n_threads=2), ref)


def test_large_outputs_take_the_streaming_path_and_stay_exact():
    # ≥ 16 MiB of output is written with non-temporal stores: same bits
    rng = np.random.default_rng(3)
    n = 4 * 2**20 + 96
    packed = rng.integers(0, 256, n // 2, dtype=np.uint8)
    absmax = rng.random(-(-n // 128)).astype(np.float32)
    ref = ref_4bit(packed, absmax, code_table("nf4"), 128, n)
    assert_bits(dequantize_4bit(packed, absmax, blocksize=128, shape=n, n_threads=1), ref)
    out = np.full(n, np.nan, np.float32)  # reused (pages mapped) and large: streaming stores
    assert dequantize_4bit(packed, absmax, blocksize=128, shape=n, out=out) is out
    assert_bits(out, ref)
    b16 = np.empty(2 * n, np.uint16)[1 : n + 1]  # misaligned by 2 bytes: cached stores
    assert_bits(
        dequantize_4bit(packed, absmax, blocksize=128, shape=n, dtype="bf16", out=b16),
        bf16_bits(ref),
    )
    q = rng.integers(-128, 128, (2048, 2056), dtype=np.int8)
    scb = rng.random(2048).astype(np.float32)
    want = (q.astype(np.float32) * scb[:, None]) * INT8_SCALE
    assert_bits(dequantize_int8(q, scb), want)
    out = np.zeros((2048, 2056), np.float32)
    assert_bits(dequantize_int8(q, scb, out=out), want)


def test_stored_quant_map_is_used():
    table = np.linspace(-3, 4, 16).astype(np.float32)
    packed = np.arange(8, dtype=np.uint8) * 0x11 + np.array([0, 0, 0, 0, 0, 0, 0, 8], np.uint8)
    out = dequantize_4bit(packed, np.array([0.5], np.float32), quant_map=table, shape=16)
    assert_bits(out, ref_4bit(packed, [0.5], table, 64, 16))


def test_nonfinite_absmax_propagates():
    code = code_table("nf4")
    packed = np.array([0x07, 0x7F] * 32, np.uint8)  # codes 0,7,7,15 ...: -1, 0, 0, 1
    absmax = np.array([np.nan, np.inf], np.float32)
    out = dequantize_4bit(packed, absmax, shape=128)
    ref = ref_4bit(packed, absmax, code, 64, 128)
    assert_bits(out, ref)
    assert np.all(np.isnan(out[:64]))
    assert np.isnan(out[65]) and out[64] == -np.inf and out[67] == np.inf  # inf · 0 = NaN


@pytest.mark.parametrize("n", [64 * 600 + 17, 5, 64 * 256])
def test_nested_absmax(n):
    rng = np.random.default_rng(n)
    bs, bs2 = 64, 256
    nb = -(-n // bs)
    packed = rng.integers(0, 256, (n + 1) // 2, dtype=np.uint8)
    qabs = rng.integers(0, 256, nb, dtype=np.uint8)
    code2 = code_table("dynamic")
    absmax2 = rng.random(-(-nb // bs2)).astype(np.float32)
    offset = 0.0377
    absmax = ref_nested_absmax(qabs, absmax2, code2, bs2, offset)
    ref = ref_4bit(packed, absmax, code_table("nf4"), bs, n)
    nested = NestedAbsmax(qabsmax=qabs, absmax2=absmax2, quant_map2=code2, offset=offset)
    assert_bits(nested.absmax(), absmax)

    def run(dtype):
        return dequantize_4bit(packed, None, nested=nested, blocksize=bs, shape=n, dtype=dtype)

    check_all_dtypes(run, ref)
    # the nested absmax may also be passed positionally
    assert_bits(dequantize_4bit(packed, nested, blocksize=bs, shape=n), ref)


# ---------------------------------------------------------------------------------------------
# Quantization.
# ---------------------------------------------------------------------------------------------


def nearest_code_distance_ok(scaled: np.ndarray, q: np.ndarray, code: np.ndarray) -> bool:
    """Every chosen code is a nearest table entry of its scaled value (float32)."""
    d = np.abs(scaled[:, None] - code[None, :].astype(np.float64))
    chosen = d[np.arange(scaled.size), q]
    return bool(np.all(chosen <= d.min(axis=1) + 1e-7))


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_quantize_picks_nearest_codes_and_round_trips(quant_type, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((33, 65)) * 0.02).astype(dtype)
    x[0, :64] = 0  # an all-zero block
    st = quantize_4bit(x, quant_type, 64)
    assert isinstance(st, Bnb4bitState)
    n = x.size
    assert st.packed.shape == ((n + 1) // 2, 1) and st.packed.dtype == np.uint8
    assert st.shape == x.shape and st.dtype == np.dtype(dtype).name
    flat = x.astype(np.float32).reshape(-1)
    absmax = np.abs(np.concatenate([flat, np.zeros(-n % 64, np.float32)])).reshape(-1, 64).max(1)
    absmax[-1] = max(absmax[-1], np.float32(1e-38))  # a partial last block stores the clamp
    assert_bits(np.asarray(st.absmax), absmax)
    q = unpack_nibbles(st.packed, n)
    scale = np.repeat(np.maximum(absmax, np.float32(1e-38)), 64)[:n]
    scaled = np.clip(flat.astype(np.float64) / scale, -1, 1)
    assert nearest_code_distance_ok(scaled, q, code_table(quant_type))
    back = st.dequantize("float32")
    assert back.shape == x.shape
    gap = np.max(np.diff(np.sort(code_table(quant_type))))
    assert np.all(np.abs(back.reshape(-1) - flat) <= scale * gap / 2 * (1 + 1e-6))
    assert np.all(back.reshape(-1)[:64] == 0)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("n", [1, 63, 640, 4097])
def test_quantize_matches_torch_transcription_of_bitsandbytes(quant_type, n):
    """bitsandbytes 0.50.2 backends/default/ops.py ``quantize_4bit`` transcribed in torch."""
    import torch

    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    if n > 100:
        x[64:128] = 0
    bs = 64
    code = torch.from_numpy(code_table(quant_type))
    order = torch.argsort(code)
    bounds = (code[order[:-1]] + code[order[1:]]) / 2
    a = torch.from_numpy(x)
    rem = n % bs
    full = n - rem
    com = a[:full].reshape(-1, bs)
    absmax = com.abs().max(dim=-1)[0]
    scaled = torch.clamp(com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = a[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(a[full:] / am, -1, 1)])
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = torch.bucketize(scaled, bounds, out_int32=True)
    if quant_type != "nf4":
        q = order[q]
    q8 = q.to(torch.uint8)
    packed = ((q8[::2] << 4) | q8[1::2]).unsqueeze(1)
    st = quantize_4bit(x, quant_type, bs)
    np.testing.assert_array_equal(st.packed, packed.numpy())
    assert_bits(np.asarray(st.absmax), absmax.numpy())


def test_quantize_compress_statistics():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(64 * 700 + 3).astype(np.float32)
    plain = quantize_4bit(x, "nf4", 64)
    st = quantize_4bit(x, "nf4", 64, compress_statistics=True)
    nested = st.absmax
    assert isinstance(nested, NestedAbsmax)
    np.testing.assert_array_equal(st.packed, plain.packed)
    assert nested.qabsmax.shape == (701,) and nested.absmax2.shape == (3,)
    assert nested.offset == pytest.approx(float(np.mean(np.asarray(plain.absmax))), rel=1e-6)
    approx = nested.absmax()
    exact = np.asarray(plain.absmax)
    assert np.max(np.abs(approx - exact)) < 0.02 * np.max(exact)
    back = st.dequantize()
    assert np.sqrt(np.mean((back - x) ** 2)) < 0.12


def test_quantize_odd_count_pads_low_nibble():
    x = np.array([1.0, -1.0, 0.5], np.float32)
    st = quantize_4bit(x, "nf4", 32)
    # 1 → code 15, -1 → code 0, 0.5 → nearer of 0.4407 (12) / 0.5626 (13) = 12; pad 0.0 → 7
    np.testing.assert_array_equal(st.packed.reshape(-1), [0xF0, 0xC7])
    st = quantize_4bit(x, "fp4", 32)
    # FP4: 1 → 3, -1 → 11, 0.5 → 5, pad 0.0 → 0
    np.testing.assert_array_equal(st.packed.reshape(-1), [0x3B, 0x50])


# ---------------------------------------------------------------------------------------------
# LLM.int8.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (64, 1000), (5, 4099)])
def test_int8_dequantize_matches_reference(shape):
    rng = np.random.default_rng(shape[1])
    q = rng.integers(-128, 128, shape, dtype=np.int8)
    scb = (rng.random(shape[0]) * 5).astype(np.float32)
    scb[0] = np.float32(3.3)
    ref = (q.astype(np.float32) * scb[:, None]) * INT8_SCALE

    def run(dtype):
        return dequantize_int8(q, scb, dtype=dtype, n_threads=2)

    check_all_dtypes(run, ref)
    # multiply by f32(1/127), not divide by 127: differs somewhere in the last ulp
    if q.size > 1000:
        assert np.any(ref != (q.astype(np.float32) * scb[:, None]) / np.float32(127))


def test_int8_nonfinite_scb_propagates():
    q = np.array([[0, 1], [2, -3]], np.int8)
    out = dequantize_int8(q, np.array([np.inf, np.nan], np.float32))
    assert np.isnan(out[0, 0]) and out[0, 1] == np.inf and np.all(np.isnan(out[1]))


def test_int8_quantize():
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((20, 300)) * 3).astype(np.float16)
    w[3] = 0
    q, scb = quantize_int8(w)
    assert q.dtype == np.int8 and scb.dtype == np.float32
    x = w.astype(np.float32)
    want_scb = np.abs(x).max(axis=1)
    assert_bits(scb, want_scb)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.rint(x * ((np.float32(1) / want_scb) * np.float32(127))[:, None])
    np.testing.assert_array_equal(q, np.nan_to_num(r, nan=0).astype(np.int8))
    assert np.all(q[3] == 0) and np.all(np.abs(q).max(axis=1)[[0, 1, 2]] == 127)
    back = dequantize_int8(q, scb)
    assert np.all(np.abs(back - x) <= scb[:, None] / 254 * (1 + 1e-5))


# ---------------------------------------------------------------------------------------------
# Property test.
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3000),
    log_bs=st.integers(5, 12),
    quant_type=st.sampled_from(["nf4", "fp4"]),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["float32", "float16", "bfloat16"]),
)
def test_pack_then_dequantize_round_trip(n, log_bs, quant_type, seed, dtype):
    rng = np.random.default_rng(seed)
    bs = 1 << log_bs
    q = rng.integers(0, 16, n, dtype=np.uint8)
    packed = pack_nibbles(q)
    absmax = rng.standard_normal(-(-n // bs)).astype(np.float32)
    ref = np.asarray(code_table(quant_type))[q] * np.repeat(absmax, bs)[:n]
    got = dequantize_4bit(packed, absmax, quant_type=quant_type, blocksize=bs, shape=n, dtype=dtype)
    want = {"float32": ref, "float16": ref.astype(np.float16), "bfloat16": bf16_bits(ref)}[dtype]
    assert_bits(got, want)


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------


def _args(n=100):
    return np.zeros((n + 1) // 2, np.uint8), np.ones(-(-n // 64), np.float32)


def test_bad_input_4bit():
    packed, absmax = _args()
    with pytest.raises(InvalidInputError, match="packed must be a uint8 array"):
        dequantize_4bit(packed.astype(np.int8), absmax, shape=100)
    with pytest.raises(InvalidInputError, match="absmax must be a float32 array"):
        dequantize_4bit(packed, absmax.astype(np.float64), shape=100)
    with pytest.raises(InvalidInputError, match="quant_map must be a float32"):
        dequantize_4bit(packed, absmax, quant_map=[0.0] * 16, shape=100)
    for bs in (16, 48, 8192, 0):
        with pytest.raises(InvalidInputError, match="blocksize"):
            dequantize_4bit(packed, absmax, blocksize=bs, shape=100)
    with pytest.raises(FormatError, match="truncated"):
        dequantize_4bit(packed[:-1], absmax, shape=100)
    with pytest.raises(ShapeError, match="packed data has 51 bytes"):
        dequantize_4bit(np.zeros(51, np.uint8), absmax, shape=100)
    with pytest.raises(ShapeError, match="absmax has 1 entries"):
        dequantize_4bit(packed, absmax[:1], shape=100)
    with pytest.raises(ShapeError, match="quant_map has 15 entries"):
        dequantize_4bit(packed, absmax, quant_map=np.zeros(15, np.float32), shape=100)
    with pytest.raises(UnknownNameError, match="did you mean 'nf4'"):
        dequantize_4bit(packed, absmax, quant_type="nf_4", shape=100)
    with pytest.raises(InvalidInputError, match="exactly one of absmax"):
        dequantize_4bit(packed, shape=100)
    nested = NestedAbsmax(
        qabsmax=np.zeros(2, np.uint8),
        absmax2=np.ones(1, np.float32),
        quant_map2=code_table("dynamic"),
        offset=0.0,
    )
    with pytest.raises(InvalidInputError, match="exactly one of absmax"):
        dequantize_4bit(packed, absmax, nested=nested, shape=100)
    with pytest.raises(ShapeError, match="nested absmax2 has 1 entries"):
        bad = NestedAbsmax(
            qabsmax=np.zeros(2, np.uint8),
            absmax2=np.ones(1, np.float32),
            quant_map2=code_table("dynamic"),
            offset=0.0,
            blocksize2=1,
        )
        dequantize_4bit(packed, nested=bad, shape=100)
    with pytest.raises(ShapeError, match="quant_map2 has 16 entries"):
        bad = NestedAbsmax(
            qabsmax=np.zeros(2, np.uint8),
            absmax2=np.ones(1, np.float32),
            quant_map2=code_table("nf4"),
            offset=0.0,
        )
        dequantize_4bit(packed, nested=bad, shape=100)
    with pytest.raises(InvalidInputError, match="out has dtype float64"):
        dequantize_4bit(packed, absmax, shape=100, out=np.zeros(100))
    with pytest.raises(ShapeError, match="out holds 99 elements"):
        dequantize_4bit(packed, absmax, shape=100, out=np.zeros(99, np.float32))
    with pytest.raises(InvalidInputError, match="output dtype"):
        dequantize_4bit(packed, absmax, shape=100, dtype="int8")
    with pytest.raises(InvalidInputError, match="n_threads"):
        dequantize_4bit(packed, absmax, shape=100, n_threads=-1)
    with pytest.raises(ShapeError, match="non-negative"):
        dequantize_4bit(packed, absmax, shape=(-1, 100))


def test_bad_input_quantize_and_int8():
    with pytest.raises(InvalidInputError, match="float array"):
        quantize_4bit(np.arange(64))
    with pytest.raises(UnknownNameError, match="did you mean 'fp4'"):
        quantize_4bit(np.zeros(64, np.float32), "fp_4")
    with pytest.raises(InvalidInputError, match="blocksize"):
        quantize_4bit(np.zeros(64, np.float32), blocksize=100)
    q = np.zeros((4, 8), np.int8)
    with pytest.raises(InvalidInputError, match="int8 array"):
        dequantize_int8(q.astype(np.int16), np.ones(4, np.float32))
    with pytest.raises(ShapeError, match="2-D"):
        dequantize_int8(q.reshape(-1), np.ones(4, np.float32))
    with pytest.raises(ShapeError, match="SCB has 3 entries"):
        dequantize_int8(q, np.ones(3, np.float32))
    with pytest.raises(InvalidInputError, match="SCB must be a float32"):
        dequantize_int8(q, np.ones(4))
    with pytest.raises(ShapeError, match="2-D"):
        quantize_int8(np.zeros(5, np.float32))
