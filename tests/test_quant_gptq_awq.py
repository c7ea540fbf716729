"""GPTQ (2/3/4/8-bit, v1/v2 zeros, act-order g_idx) and AWQ GEMM: native dequantization
against NumPy references written here from the documented layouts (bit streams decoded with
``np.unpackbits``), hand-packed words, packers, RTN quantizers and malformed input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscale.errors import InvalidInputError, NonFiniteError, ShapeError, UnknownNameError
from capscale.quant.gptq import (
    AwqQuantized,
    GptqQuantized,
    ZeroPointWarning,
    dequantize_awq,
    dequantize_gptq,
    detect_gptq_zero_convention,
    pack_awq,
    pack_gptq,
    quantize_awq_rtn,
    quantize_gptq_rtn,
    unpack_awq,
    unpack_gptq,
)

HAS_TORCH = importlib.util.find_spec("torch") is not None


# ---------------------------------------------------------------------------------------------
# References (independent of the package).
# ---------------------------------------------------------------------------------------------


def stream_values(words: np.ndarray, bits: int) -> np.ndarray:
    """Rows of int32 words ``[R, W]``, each row one LSB-first bit stream → ``[R, W·32/bits]``."""
    w = np.ascontiguousarray(words).astype("<u4")
    b = np.unpackbits(w.view(np.uint8), axis=1, bitorder="little")  # [R, 32·W]
    b = b.reshape(w.shape[0], -1, bits).astype(np.int64)
    return (b << np.arange(bits)).sum(axis=2)


def pack_stream_ref(vals: np.ndarray, bits: int) -> np.ndarray:
    """Rows of values ``[R, L]`` → LSB-first bit streams as int32 words ``[R, L·bits/32]``."""
    v = np.asarray(vals, np.int64)
    b = ((v[:, :, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(v.shape[0], -1)
    return np.packbits(b, axis=1, bitorder="little").view("<u4").astype(np.uint32).view(np.int32)


def ref_gptq(qweight, qzeros, scales, g_idx, bits, zero_plus):
    """``[out, in]``: ``scale[g, j] · (q[i, j] − z[g, j])`` in float32."""
    q = stream_values(qweight.T, bits)  # [out, in]
    z = stream_values(qzeros, bits) + zero_plus  # [G, out]
    s = scales.astype(np.float32)
    g = np.asarray(g_idx)
    with np.errstate(invalid="ignore", over="ignore"):
        return s[g].T * (q - z[g].T).astype(np.float32)


AWQ_REV = [0, 4, 1, 5, 2, 6, 3, 7]


def awq_unpack_ref(words: np.ndarray) -> np.ndarray:
    u = words.view(np.uint32)
    nib = [(u >> (4 * k)) & 0xF for k in range(8)]  # nibble k
    out = np.empty((u.shape[0], u.shape[1] * 8), np.int64)
    for k in range(8):
        out[:, k::8] = nib[AWQ_REV[k]]
    return out


def ref_awq(qweight, qzeros, scales, group):
    q = awq_unpack_ref(qweight)  # [in, out]
    z = awq_unpack_ref(qzeros)
    g = np.arange(q.shape[0]) // group
    return ((q - z[g]).astype(np.float32) * scales.astype(np.float32)[g]).T


def bf16_bits(x: np.ndarray) -> np.ndarray:
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), ((b >> 16) | 0x40).astype(np.uint16), rounded)


def assert_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def check_all_dtypes(run, ref32: np.ndarray) -> None:
    assert_bits(run("float32"), ref32)
    with np.errstate(over="ignore", invalid="ignore"):
        assert_bits(run("float16"), ref32.astype(np.float16))
    assert_bits(run("bfloat16"), bf16_bits(ref32))


def line_aligned_zeros(shape: tuple[int, int]) -> np.ndarray:
    """A float32 zero array starting on a 64-byte boundary."""
    n = shape[0] * shape[1]
    raw = np.zeros(n + 16, np.float32)
    off = (-(raw.ctypes.data // 4)) % 16
    out = raw[off : off + n].reshape(shape)
    assert out.ctypes.data % 64 == 0
    return out


def random_gptq(rng, bits, n_in, n_out, n_groups, scale_dtype=np.float16):
    maxq = (1 << bits) - 1
    q = rng.integers(0, maxq + 1, (n_in, n_out))
    z = rng.integers(0, maxq + 1, (n_groups, n_out))
    qweight = pack_stream_ref(q.T, bits).T.copy()  # columns are streams along the input
    qzeros = pack_stream_ref(z, bits)
    scales = (rng.random((n_groups, n_out)) * 0.1).astype(scale_dtype)
    return qweight, qzeros, scales


# ---------------------------------------------------------------------------------------------
# Reference helpers agree with the documented hand-packed layouts.
# ---------------------------------------------------------------------------------------------


def test_reference_stream_matches_autogptq_3bit_layout():
    vals = np.arange(32) * 5 % 8
    w = [0, 0, 0]
    for k in range(10):
        w[0] |= int(vals[k]) << (3 * k)
    w[0] |= (int(vals[10]) << 30) & 0xFFFFFFFF
    w[1] |= (int(vals[10]) >> 2) & 1
    for k in range(11, 21):
        w[1] |= int(vals[k]) << (3 * (k - 11) + 1)
    w[1] |= (int(vals[21]) << 31) & 0xFFFFFFFF
    w[2] |= (int(vals[21]) >> 1) & 3
    for k in range(22, 32):
        w[2] |= int(vals[k]) << (3 * (k - 22) + 2)
    words = np.array([w], np.uint32).view(np.int32)
    np.testing.assert_array_equal(pack_stream_ref(vals[None], 3), words)
    np.testing.assert_array_equal(stream_values(words, 3)[0], vals)


# ---------------------------------------------------------------------------------------------
# GPTQ dequantization.
# ---------------------------------------------------------------------------------------------


def test_hand_packed_symmetric_4bit_v1_and_v2():
    # one word row: column 0 holds inputs 0..7 = 0..7, column 1 holds 15..8, others 0
    qweight = np.zeros((1, 8), np.int32)
    qweight[0, 0] = 0x76543210
    qweight[0, 1] = 0x89ABCDEF - 2**32
    scales = np.full((1, 8), 0.25, np.float16)
    scales[0, :2] = [1.0, 0.5]
    want = np.full((8, 8), -2.0, np.float32)
    want[0] = np.arange(8) - 8.0
    want[1] = (np.arange(15, 7, -1) - 8.0) * 0.5
    # v1 stores zero − 1: 0x77777777 → zero 8 for all 8 columns
    v1 = np.array([[0x77777777]], np.int32)
    out = dequantize_gptq(qweight, v1, scales, bits=4, group_size=-1)
    assert out.shape == (8, 8)  # nn.Linear orientation [out, in]
    assert_bits(out, want)
    v2 = np.array([[0x88888888 - 2**32]], np.int32)
    got = dequantize_gptq(qweight, v2, scales, bits=4, group_size=8, checkpoint_format="gptq_v2")
    assert_bits(got, want)
    # read as v1, the v2 words mean zero 9: every weight shifts by one scale step
    assert_bits(
        dequantize_gptq(qweight, v2, scales, group_size=-1), want - scales.T.astype(np.float32)
    )


def test_full_width_symmetric_zero_words():
    rng = np.random.default_rng(0)
    qweight, _, scales = random_gptq(rng, 4, 64, 16, 2)
    v1 = np.full((2, 2), 0x77777777, np.int32)
    v2 = np.full((2, 2), 0x88888888 - 2**32, np.int32)
    a = dequantize_gptq(qweight, v1, scales, bits=4, group_size=32)
    b = dequantize_gptq(qweight, v2, scales, bits=4, group_size=32, checkpoint_format="gptq_v2")
    assert_bits(a, b)
    assert_bits(a, ref_gptq(qweight, v2, scales, np.arange(64) // 32, 4, 0))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
def test_gptq_matches_reference(bits, act_order, fmt):
    rng = np.random.default_rng(bits * 10 + act_order)
    n_in, n_out, gs = 256, 96, 64
    qweight, qzeros, scales = random_gptq(rng, bits, n_in, n_out, n_in // gs)
    g_idx = np.arange(n_in, dtype=np.int32) // gs
    if act_order:
        g_idx = rng.permutation(g_idx).astype(np.int32)
    plus = 1 if fmt == "gptq" else 0
    ref = ref_gptq(qweight, qzeros, scales, g_idx, bits, plus)

    def run(dtype):
        return dequantize_gptq(
            qweight,
            qzeros,
            scales,
            g_idx if act_order else None,
            bits=bits,
            group_size=gs,
            checkpoint_format=fmt,
            dtype=dtype,
            n_threads=2,
        )

    check_all_dtypes(run, ref)


@pytest.mark.parametrize(
    ("bits", "n_in", "n_out", "n_groups"),
    [
        (4, 8, 8, 1),
        (4, 40, 24, 5),
        (8, 12, 4, 3),
        (2, 48, 16, 2),
        (3, 32, 32, 1),
        (4, 2048, 40, 16),
    ],
)
def test_gptq_edges_and_float32_scales(bits, n_in, n_out, n_groups):
    rng = np.random.default_rng(n_in + n_out)
    qweight, qzeros, scales = random_gptq(rng, bits, n_in, n_out, n_groups, np.float32)
    g_idx = rng.integers(0, n_groups, n_in).astype(np.int32)
    ref = ref_gptq(qweight, qzeros, scales, g_idx, bits, 1)
    assert_bits(dequantize_gptq(qweight, qzeros, scales, g_idx, bits=bits), ref)


def test_gptq_out_buffer_uint32_and_strided_inputs():
    rng = np.random.default_rng(7)
    qweight, qzeros, scales = random_gptq(rng, 4, 128, 32, 2)
    ref = ref_gptq(qweight, qzeros, scales, np.arange(128) // 64, 4, 1)
    buf = np.empty((32, 128), np.float16)
    res = dequantize_gptq(
        qweight.view(np.uint32), qzeros, scales, group_size=64, dtype="f16", out=buf
    )
    assert res is buf
    assert_bits(buf, ref.astype(np.float16))
    fortran = np.asfortranarray(qweight)
    assert_bits(dequantize_gptq(fortran, qzeros, scales[:, ::1], group_size=64), ref)


def test_large_outputs_take_the_streaming_path_and_stay_exact():
    # ≥ 16 MiB of output is written with non-temporal stores: same bits
    rng = np.random.default_rng(11)
    qweight, qzeros, scales = random_gptq(rng, 4, 2048, 2048, 16)
    g_idx = rng.permutation(np.arange(2048) // 128).astype(np.int32)
    ref = ref_gptq(qweight, qzeros, scales, g_idx, 4, 1)
    assert_bits(dequantize_gptq(qweight, qzeros, scales, g_idx, n_threads=2), ref)
    # a reused, large, 64-byte aligned buffer takes the streaming stores
    out = line_aligned_zeros((2048, 2048))
    assert_bits(dequantize_gptq(qweight, qzeros, scales, g_idx, out=out, n_threads=2), ref)
    plain = np.zeros((2048, 2048), np.float32)  # NumPy's 16-byte alignment: plain stores
    assert_bits(dequantize_gptq(qweight, qzeros, scales, g_idx, out=plain), ref)
    q = rng.integers(0, 16, (2048, 2048))
    z = rng.integers(0, 16, (16, 2048))
    aw, az, asc = pack_awq(q, z, scales)
    want = ref_awq(aw, az, asc, 128)
    assert_bits(dequantize_awq(aw, az, asc, n_threads=1), want)
    out = line_aligned_zeros((2048, 2048))
    assert_bits(dequantize_awq(aw, az, asc, out=out, n_threads=1), want)
    assert_bits(dequantize_awq(aw, az, asc, dtype="float16"), want.astype(np.float16))


def test_gptq_nonfinite_scales_propagate():
    rng = np.random.default_rng(8)
    qweight, qzeros, scales = random_gptq(rng, 4, 64, 16, 1)
    scales[0, 3] = np.inf
    scales[0, 5] = np.nan
    out = dequantize_gptq(qweight, qzeros, scales, group_size=-1)
    assert_bits(out, ref_gptq(qweight, qzeros, scales, np.zeros(64, int), 4, 1))
    assert np.all(np.isnan(out[5])) and np.all(np.isinf(out[3]) | np.isnan(out[3]))


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_gptq_3bit_matches_autogptq_torch_unpack():
    """AutoGPTQ's qlinear_cuda_old torch fallback (3-bit unpack + ``scales * (w - zeros)``)."""
    import torch

    rng = np.random.default_rng(9)
    qweight, qzeros, scales = random_gptq(rng, 3, 128, 64, 2)
    wf = torch.tensor(
        [
            [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0],
            [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31],
            [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0],
        ],
        dtype=torch.int32,
    ).reshape(1, 3, 12)
    qz = torch.from_numpy(qzeros)
    z = qz.reshape(qz.shape[0], qz.shape[1] // 3, 3, 1).expand(-1, -1, -1, 12)
    z = z >> wf.unsqueeze(0)
    z[:, :, 0, 10] = (z[:, :, 0, 10] & 0x3) | ((z[:, :, 1, 0] << 2) & 0x4)
    z[:, :, 1, 11] = (z[:, :, 1, 11] & 0x1) | ((z[:, :, 2, 0] << 1) & 0x6)
    z = z & 0x7
    z = torch.cat([z[:, :, 0, :11], z[:, :, 1, 1:12], z[:, :, 2, 1:11]], dim=2) + 1
    z = z.reshape(z.shape[0], -1)
    qw = torch.from_numpy(qweight)
    w = qw.reshape(qw.shape[0] // 3, 3, 1, qw.shape[1]).expand(-1, -1, 12, -1)
    w = (w >> wf.unsqueeze(-1)) & 0x7
    w[:, 0, 10] = (w[:, 0, 10] & 0x3) | ((w[:, 1, 0] << 2) & 0x4)
    w[:, 1, 11] = (w[:, 1, 11] & 0x1) | ((w[:, 2, 0] << 1) & 0x6)
    w = w & 0x7
    w = torch.cat([w[:, 0, :11], w[:, 1, 1:12], w[:, 2, 1:11]], dim=1).reshape(-1, 64)
    g = torch.arange(128) // 64
    sc = torch.from_numpy(scales).float()
    ref = (sc[g] * (w - z[g]).float()).T.contiguous().numpy()
    assert_bits(dequantize_gptq(qweight, qzeros, scales, bits=3, group_size=64), ref)


# ---------------------------------------------------------------------------------------------
# Packers, zero conventions, quantizer.
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    bits=st.sampled_from([2, 3, 4, 8]),
    n_in_units=st.integers(1, 4),
    n_out_units=st.integers(1, 3),
    n_groups=st.integers(1, 4),
    fmt=st.sampled_from(["gptq", "gptq_v2"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_pack_gptq_round_trip(bits, n_in_units, n_out_units, n_groups, fmt, seed):
    rng = np.random.default_rng(seed)
    n_in, n_out = 32 * n_in_units, 32 * n_out_units
    maxq = (1 << bits) - 1
    q = rng.integers(0, maxq + 1, (n_in, n_out))
    z = rng.integers(1 if fmt == "gptq" else 0, maxq + 1, (n_groups, n_out))
    scales = rng.random((n_groups, n_out)).astype(np.float16)
    g_idx = rng.integers(0, n_groups, n_in)
    qweight, qzeros, sc, gi = pack_gptq(q, z, scales, g_idx, bits=bits, checkpoint_format=fmt)
    assert qweight.dtype == np.int32 and qweight.shape == (n_in * bits // 32, n_out)
    assert qzeros.shape == (n_groups, n_out * bits // 32) and gi.dtype == np.int32
    np.testing.assert_array_equal(stream_values(qweight.T, bits), q.T)
    np.testing.assert_array_equal(stream_values(qzeros, bits), z - (fmt == "gptq"))
    uq, uz = unpack_gptq(qweight, qzeros, bits=bits, checkpoint_format=fmt)
    np.testing.assert_array_equal(uq, q)
    np.testing.assert_array_equal(uz, z)
    want = (scales.astype(np.float32)[g_idx] * (q - z[g_idx]).astype(np.float32)).T
    got = dequantize_gptq(qweight, qzeros, sc, gi, bits=bits, checkpoint_format=fmt)
    assert_bits(got, want)


def test_pack_gptq_symmetric_words():
    q = np.zeros((32, 32), int)
    z = np.full((1, 32), 8)
    _, qz1, _, _ = pack_gptq(q, z, np.ones((1, 32), np.float16), None, bits=4)
    assert np.all(qz1.view(np.uint32) == 0x77777777)
    _, qz2, _, _ = pack_gptq(
        q, z, np.ones((1, 32), np.float16), None, bits=4, checkpoint_format="gptq_v2"
    )
    assert np.all(qz2.view(np.uint32) == 0x88888888)
    with pytest.raises(InvalidInputError, match=r"zeros values must be in \[1, 15\]"):
        pack_gptq(q, np.zeros((1, 32), int), np.ones((1, 32), np.float16), None, bits=4)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_detect_zero_convention(bits):
    half = 1 << (bits - 1)
    q = np.zeros((32, 32), int)
    scales = np.ones((2, 32), np.float16)
    z = np.full((2, 32), half)
    _, v1, _, _ = pack_gptq(q, z, scales, None, bits=bits)
    _, v2, _, _ = pack_gptq(q, z, scales, None, bits=bits, checkpoint_format="gptq_v2")
    assert detect_gptq_zero_convention(v1, bits) == "gptq"
    assert detect_gptq_zero_convention(v2, bits) == "gptq_v2"
    assert detect_gptq_zero_convention(v1, bits, checkpoint_format="gptq") == "gptq"
    with pytest.warns(ZeroPointWarning, match="vLLM #38966"):
        assert detect_gptq_zero_convention(v2, bits, checkpoint_format="gptq") == "gptq_v2"
    z[0, 3] = 1
    _, mixed, _, _ = pack_gptq(q, z, scales, None, bits=bits)
    assert detect_gptq_zero_convention(mixed, bits) is None


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
def test_quantize_gptq_rtn(bits, sym):
    rng = np.random.default_rng(bits)
    w = rng.standard_normal((64, 256)).astype(np.float32)
    w[:, :64] = np.abs(w[:, :64])  # non-negative groups (asym zero 0 → needs v2)
    perm = rng.permutation(256)
    fmt = "gptq" if sym else "gptq_v2"
    qq = quantize_gptq_rtn(w, bits, 64, sym, perm, checkpoint_format=fmt)
    assert isinstance(qq, GptqQuantized) and qq.scales.dtype == np.float16
    np.testing.assert_array_equal(qq.g_idx[perm], np.arange(256) // 64)
    maxq = (1 << bits) - 1
    q, z = unpack_gptq(qq.qweight, qq.qzeros, bits=bits, checkpoint_format=fmt)
    if sym:
        assert np.all(z == 1 << (bits - 1))
    # every group's scale follows GPTQ's quantizer from its own columns (float32)
    for g in range(4):
        x = w[:, perm[g * 64 : (g + 1) * 64]]
        lo, hi = np.minimum(x.min(1), 0), np.maximum(x.max(1), 0)
        if sym:
            hi = np.maximum(-lo, hi)
            lo = np.where(lo < 0, -hi, lo)
        scale = (hi - lo) / np.float32(maxq)
        np.testing.assert_array_equal(qq.scales[g], scale.astype(np.float16))
        zero = np.full(64, maxq + 1 >> 1) if sym else np.rint(-lo / scale)
        codes = np.clip(np.rint(x / scale[:, None]) + zero[:, None], 0, maxq)
        np.testing.assert_array_equal(q[perm[g * 64 : (g + 1) * 64]], codes.T)
    back = qq.dequantize()
    assert back.shape == w.shape
    assert np.sqrt(np.mean((back - w) ** 2)) < {2: 0.6, 3: 0.35, 4: 0.15, 8: 0.01}[bits]


def test_quantize_gptq_rtn_v1_cannot_store_zero_zero():
    w = np.abs(np.random.default_rng(1).standard_normal((8, 64))).astype(np.float32)
    with pytest.raises(InvalidInputError, match="gptq_v2"):
        quantize_gptq_rtn(w, 4, 32, sym=False)
    with pytest.raises(NonFiniteError):
        quantize_gptq_rtn(np.full((8, 64), np.nan, np.float32), 4, 32)


# ---------------------------------------------------------------------------------------------
# AWQ.
# ---------------------------------------------------------------------------------------------


def test_awq_hand_built_word():
    # nibble i holds i: column 8c + k reads nibble [0,4,1,5,2,6,3,7][k]
    qweight = np.full((8, 1), 0x76543210, np.int32)
    qzeros = np.zeros((1, 1), np.int32)
    scales = np.ones((1, 8), np.float16)
    out = dequantize_awq(qweight, qzeros, scales, group_size=8)
    assert out.shape == (8, 8)
    np.testing.assert_array_equal(out[:, 0], [0, 4, 1, 5, 2, 6, 3, 7])
    # packing puts column 8c + [0,2,4,6,1,3,5,7][i] into nibble i
    q = np.tile(np.arange(8), (8, 1))
    pw, _, _ = pack_awq(q, np.zeros((1, 8), int), scales)
    assert np.all(pw.view(np.uint32) == 0x75316420)
    # zeros are interleaved the same way, and no +1 is applied
    z = np.array([[0x11111111 * 3]], np.int32)
    np.testing.assert_array_equal(
        dequantize_awq(qweight, z, scales, group_size=8)[:, 0], [-3, 1, -2, 2, -1, 3, 0, 4]
    )


@pytest.mark.parametrize(
    ("n_in", "n_out", "group"), [(128, 64, 32), (256, 40, 128), (36, 16, 12), (1024, 24, -1)]
)
def test_awq_matches_reference(n_in, n_out, group):
    rng = np.random.default_rng(n_in)
    g = 1 if group == -1 else n_in // group
    q = rng.integers(0, 16, (n_in, n_out))
    z = rng.integers(0, 16, (g, n_out))
    scales = (rng.random((g, n_out)) * 0.1).astype(np.float16)
    qweight, qzeros, sc = pack_awq(q, z, scales)
    ref = ref_awq(qweight, qzeros, scales, n_in if group == -1 else group)
    np.testing.assert_array_equal(awq_unpack_ref(qweight), q)

    def run(dtype):
        return dequantize_awq(qweight, qzeros, sc, group_size=group, dtype=dtype, n_threads=2)

    check_all_dtypes(run, ref)
    uq, uz = unpack_awq(qweight, qzeros)
    np.testing.assert_array_equal(uq, q)
    np.testing.assert_array_equal(uz, z)


def test_quantize_awq_rtn():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((32, 256)).astype(np.float32)
    aq = quantize_awq_rtn(w, 64)
    assert isinstance(aq, AwqQuantized)
    assert aq.qweight.shape == (256, 4) and aq.qzeros.shape == (4, 4) and aq.scales.shape == (4, 32)
    xg = w.reshape(32, 4, 64)
    mx, mn = xg.max(2), xg.min(2)
    scale = np.maximum(mx - mn, np.float32(1e-5)) / np.float32(15)
    zero = np.clip(-np.rint(mn / scale), 0, 15)
    codes = np.clip(np.rint(xg / scale[:, :, None]) + zero[:, :, None], 0, 15)
    q, z = unpack_awq(aq.qweight, aq.qzeros)
    np.testing.assert_array_equal(q, codes.reshape(32, 256).T)
    np.testing.assert_array_equal(z, zero.T)
    np.testing.assert_array_equal(aq.scales, scale.T.astype(np.float16))
    back = aq.dequantize()
    assert back.shape == w.shape and np.sqrt(np.mean((back - w) ** 2)) < 0.15


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------


def test_bad_input_gptq():
    rng = np.random.default_rng(0)
    qw, qz, sc = random_gptq(rng, 4, 64, 16, 2)
    with pytest.raises(InvalidInputError, match="bits must be 2, 3, 4 or 8"):
        dequantize_gptq(qw, qz, sc, bits=5)
    with pytest.raises(InvalidInputError, match="qweight must be an int32"):
        dequantize_gptq(qw.astype(np.int64), qz, sc, group_size=32)
    with pytest.raises(InvalidInputError, match="scales must be a float16 or float32"):
        dequantize_gptq(qw, qz, sc.astype(np.float64), group_size=32)
    with pytest.raises(ShapeError, match="qweight must be 2-D"):
        dequantize_gptq(qw.reshape(-1), qz, sc, group_size=32)
    with pytest.raises(ShapeError, match="qzeros has shape"):
        dequantize_gptq(qw, qz[:, :1], sc, group_size=32)
    with pytest.raises(ShapeError, match="groups"):
        dequantize_gptq(qw, qz[:1], sc[:1], group_size=32)  # 64 / 32 = 2 groups, not 1
    with pytest.raises(ShapeError, match="scales has 8 columns"):
        dequantize_gptq(qw, qz, sc[:, :8], group_size=32)
    with pytest.raises(ShapeError, match="qweight has 7 rows"):
        dequantize_gptq(qw[:7], qz, sc, bits=3, group_size=32)
    with pytest.raises(ShapeError, match="g_idx has 10 entries"):
        dequantize_gptq(qw, qz, sc, np.zeros(10, np.int32))
    bad = np.zeros(64, np.int32)
    bad[9] = 2
    with pytest.raises(InvalidInputError, match=r"g_idx\[9\] = 2 is out of range for 2 groups"):
        dequantize_gptq(qw, qz, sc, bad)
    bad[9] = -1
    with pytest.raises(InvalidInputError, match="out of range"):
        dequantize_gptq(qw, qz, sc, bad)
    with pytest.raises(InvalidInputError, match="does not divide in_features"):
        dequantize_gptq(qw, qz, sc, group_size=48)
    with pytest.raises(InvalidInputError, match="group_size must be positive"):
        dequantize_gptq(qw, qz, sc, group_size=0)
    with pytest.raises(UnknownNameError, match="did you mean 'gptq_v2'"):
        dequantize_gptq(qw, qz, sc, group_size=32, checkpoint_format="gptq-v2")
    with pytest.raises(ShapeError, match="out holds"):
        dequantize_gptq(qw, qz, sc, group_size=32, out=np.zeros((64, 15), np.float32))


def test_bad_input_awq_and_packers():
    q = np.zeros((64, 16), int)
    qw, qz, sc = pack_awq(q, np.zeros((2, 16), int), np.ones((2, 16), np.float16))
    with pytest.raises(InvalidInputError, match="4-bit"):
        dequantize_awq(qw, qz, sc, group_size=32, bits=8)
    with pytest.raises(InvalidInputError, match="does not divide"):
        dequantize_awq(qw, qz, sc, group_size=48)
    with pytest.raises(ShapeError, match="qzeros has shape"):
        dequantize_awq(qw, qz[:1], sc, group_size=32)
    with pytest.raises(ShapeError, match="scales has shape"):
        dequantize_awq(qw, qz, sc[:, :8], group_size=32)
    with pytest.raises(ShapeError, match="multiple of 8"):
        pack_awq(np.zeros((8, 12), int), np.zeros((1, 12), int), np.ones((1, 12), np.float16))
    with pytest.raises(InvalidInputError, match=r"intweight values must be in \[0, 15\]"):
        pack_awq(q + 16, np.zeros((2, 16), int), np.ones((2, 16), np.float16))
    with pytest.raises(ShapeError, match="multiples of 32"):
        pack_gptq(
            np.zeros((16, 32), int),
            np.ones((1, 32), int),
            np.ones((1, 32), np.float16),
            None,
            bits=3,
        )
    with pytest.raises(InvalidInputError, match="not a permutation"):
        quantize_gptq_rtn(np.ones((8, 64), np.float32), 4, 32, act_order_perm=np.zeros(64, int))
    with pytest.raises(InvalidInputError, match="does not divide"):
        quantize_awq_rtn(np.ones((8, 64), np.float32), 48)
