"""Affine group quantization (capscale.quant.affine): every preset against an independent NumPy
float32 reference to the last bit, against the reference libraries' own torch code (when torch
is installed), storage round trip, output dtypes, error paths and properties."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from capscale import _native
from capscale.errors import InvalidInputError, NonFiniteError, ShapeError, UnknownNameError
from capscale.quant.affine import (
    PRESETS,
    ROUNDINGS,
    AffineQuantized,
    AffineScheme,
    affine_dequantize,
    affine_quantize,
    fake_quantize,
)

f32 = np.float32
EPS = {"rtn_asym": 1e-5, "rtn_sym": 1e-5, "gptq_sym": 0.0, "hqq": 5e-5, "torchao_int4": 1e-6}

# ----------------------------------------------------------------------------------------------
# Independent NumPy reference, written from the published formulas (float32 throughout).
# ----------------------------------------------------------------------------------------------


def _round(x: np.ndarray, rounding: str) -> np.ndarray:
    if rounding == "half_even":
        return np.rint(x)
    t = np.trunc(x)  # half away from zero, exactly: x - trunc(x) is exact in float32
    return np.where(np.abs(x - t) >= f32(0.5), t + np.copysign(f32(1), x), t)


def _clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    x = np.where(x > lo, x, f32(lo))
    return np.where(x < hi, x, f32(hi))


def reference(x, preset, bits, group, rounding="half_even", eps=None):
    """(values, codes, scales, zeros) of ``preset`` on float32 ``x`` (groups along the last
    axis)."""
    e64 = EPS[preset] if eps is None else eps
    e = f32(e64)
    x = np.asarray(x, dtype=f32)
    w = x.reshape(-1, group)
    mn = w.min(axis=1, keepdims=True) + f32(0)
    mx = w.max(axis=1, keepdims=True) + f32(0)
    qmax, half = f32(2**bits - 1), f32(2 ** (bits - 1))

    def r(v):
        return _round(v, rounding)

    with np.errstate(divide="ignore"):
        if preset == "rtn_asym":  # AWQ pseudo_quantize_tensor, zero point
            s = np.maximum(mx - mn, e) / qmax
            z = _clip(-r(mn / s), 0, qmax)
            q = _clip(r(w / s) + z, 0, qmax)
            v = (q - z) * s
        elif preset == "rtn_sym":  # AWQ, no zero point
            s = np.maximum(np.maximum(np.abs(mn), np.abs(mx)), e) / (half - f32(1))
            signed = _clip(r(w / s), -half, half - f32(1))
            q, z = signed + half, np.full_like(s, half)
            v = signed * s
        elif preset == "gptq_sym":  # AutoGPTQ find_params (sym) + quantize
            a = np.maximum(np.abs(mn), np.abs(mx))
            a = np.maximum(np.where(a == 0, f32(1), a), e)
            s = (a - (-a)) / qmax
            z = np.full_like(s, half)
            q = _clip(r(w / s) + z, 0, qmax)
            v = s * (q - z)
        elif preset == "hqq":  # inverse scale: torch's qmax / t is t.reciprocal() * qmax
            inv = np.minimum((f32(1) / (mx - mn)) * qmax, f32(1 / e64))
            z = -mn * inv
            q = _clip(r(w * inv + z), 0, qmax)
            s = f32(1) / inv
            v = (q - z) * s
        else:  # torchao, ZeroPointDomain.FLOAT
            s0 = (mx - mn) / qmax
            z = mn + s0 * half
            s = np.maximum(s0, e)
            lo = z - s * half
            q = _clip(r((w - lo) / s), 0, qmax)
            v = (q - half) * s + z
    shape = x.shape
    groups = (*shape[:-1], -1)
    return v.reshape(shape), q.astype(np.uint8).reshape(shape), s.reshape(groups), z.reshape(groups)


def bits_of(a: np.ndarray, canonical_zero: bool = False) -> np.ndarray:
    a = np.asarray(a, dtype=f32)
    return (a + f32(0) if canonical_zero else a).view(np.uint32)


def sample(shape, seed=0, scale=1.0):
    """Gaussian weights with exact zeros of both signs and values on a coarse grid (ties)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(f32)
    flat = x.reshape(-1)
    flat[::17] = 0.0
    flat[5::31] = -0.0
    flat[3::13] = np.round(flat[3::13] * 8) / 8
    return x


# ----------------------------------------------------------------------------------------------
# Bit-exact parity with the reference.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("group", [32, 128, None, 48])
@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_match_reference_bit_for_bit(preset, bits, group, rounding):
    x = sample((6, 384), seed=bits * 7 + (group or 1))
    g = group or x.shape[-1]
    scheme = AffineScheme.preset(preset, bits=bits, group_size=group, rounding=rounding)
    v, q, s, z = reference(x, preset, bits, g, rounding)
    ours = fake_quantize(x, scheme=scheme)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    # AWQ's symmetric form gives -0 for small negative weights; capscale stores +0.
    canon = preset == "rtn_sym"
    np.testing.assert_array_equal(bits_of(ours, canon), bits_of(v, canon))
    stored = affine_quantize(x, scheme)
    np.testing.assert_array_equal(stored.codes, q)
    np.testing.assert_array_equal(bits_of(stored.scales), bits_of(s))
    np.testing.assert_array_equal(stored.zeros, z)
    assert stored.scales.shape == (6, 384 // g) and stored.shape == (6, 384)
    # The stored form reproduces the fake-quantized values exactly.
    np.testing.assert_array_equal(bits_of(affine_dequantize(stored)), bits_of(ours))


@pytest.mark.parametrize("sym", [False, True])
def test_sym_asym_flags_select_the_rtn_presets(sym):
    x = sample((4, 256), seed=3)
    preset = "rtn_sym" if sym else "rtn_asym"
    for bits in (2, 4, 8):
        v = reference(x, preset, bits, 64)[0]
        got = fake_quantize(x, bits, 64, sym)
        np.testing.assert_array_equal(bits_of(got, True), bits_of(v, True))
    assert AffineScheme(4, 64, sym=sym).preset == preset
    assert AffineScheme(4, zero="float").preset == "hqq"


def test_half_even_and_half_away_differ_on_ties():
    # 2 bits, min 0, max 3: s = 1 and z = 0, so the codes are R(w).
    x = np.array([[0.0, 0.5, 1.5, 2.5, 3.0, 1.0]], dtype=f32)
    even = fake_quantize(x, 2, 6, rounding="half_even")
    away = fake_quantize(x, 2, 6, rounding="half_away")
    np.testing.assert_array_equal(even, [[0, 0, 2, 2, 3, 1]])
    np.testing.assert_array_equal(away, [[0, 1, 2, 3, 3, 1]])
    np.testing.assert_array_equal(reference(x, "rtn_asym", 2, 6, "half_away")[0], away)
    # Negative ties too: 2-bit symmetric, s = 2.5 / 1, so w / s = -1, -0.5, 0.5, 0 and the
    # codes are R(w / s) + 2.
    y = np.array([[-2.5, -1.25, 1.25, 0.0]], dtype=f32)
    s = AffineScheme(2, None, sym=True, rounding="half_away")
    np.testing.assert_array_equal(affine_quantize(y, s).codes, [[1, 1, 3, 2]])
    s = AffineScheme(2, None, sym=True)
    np.testing.assert_array_equal(affine_quantize(y, s).codes, [[1, 2, 2, 2]])


@pytest.mark.parametrize("preset", PRESETS)
def test_constant_groups_are_finite(preset):
    consts = [0.0, -0.0, 1.0, -3.5, 1e-8, 2.0**-20, 12345.0]
    x = np.repeat(np.array(consts, dtype=f32), 32).reshape(len(consts), 32)
    for bits in (2, 4, 8):
        s = AffineScheme.preset(preset, bits=bits, group_size=16)
        q = affine_quantize(x, s)
        out = fake_quantize(x, scheme=s)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(q.scales))
        assert np.all(np.isfinite(q.zeros))
        v = reference(x, preset, bits, 16)[0]
        np.testing.assert_array_equal(bits_of(out, True), bits_of(v, True))
        assert np.all(out[:2] == 0)  # an all-zero group stays zero
    # GPTQ's guard: an all-zero group has absmax 1, so s = 2 / qmax.
    q = affine_quantize(np.zeros((1, 8), f32), AffineScheme.preset("gptq_sym", 4, 8))
    assert q.scales[0, 0] == f32(2) / f32(15)


def test_awq_maps_a_positive_constant_group_to_the_clamp():
    # AWQ's integer zero cannot go below 0: a constant group c > 0 comes back as qmax·s with
    # s = 1e-5 / qmax, i.e. 1e-5 — the reference implementation's own behaviour.
    out = fake_quantize(np.full((1, 8), 0.5, f32), 4, 8)
    assert np.all(out == f32(15) * (f32(1e-5) / f32(15)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("preset", PRESETS)
def test_half_outputs_round_the_float32_result_once(preset, dtype):
    x = sample((8, 256), seed=11, scale=3.0)
    s = AffineScheme.preset(preset, bits=3, group_size=64)
    exact = fake_quantize(x, scheme=s)
    got = fake_quantize(x, scheme=s, dtype=dtype)
    if dtype == "float16":
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got.view(np.uint16), exact.astype(np.float16).view(np.uint16))
    else:
        b = exact.view(np.uint32).astype(np.uint64)
        want = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, want)
    q = affine_quantize(x, s)
    np.testing.assert_array_equal(affine_dequantize(q, dtype), got)


def test_input_dtypes_and_default_output_dtype():
    x = sample((4, 128), seed=5)
    ref32 = fake_quantize(x, 4, 32)
    h = x.astype(np.float16)
    out16 = fake_quantize(h, 4, 32)
    assert out16.dtype == np.float16
    np.testing.assert_array_equal(out16, fake_quantize(h.astype(f32), 4, 32).astype(np.float16))
    out64 = fake_quantize(x.astype(np.float64), 4, 32)
    assert out64.dtype == np.float64
    np.testing.assert_array_equal(out64, ref32.astype(np.float64))
    ints = np.arange(-64, 64, dtype=np.int16).reshape(2, 64)
    out_i = fake_quantize(ints, 8, 64)
    assert out_i.dtype == np.float32
    np.testing.assert_array_equal(out_i, fake_quantize(ints.astype(f32), 8, 64))
    # Non-contiguous input and a 3-D shape, per-channel.
    y = sample((3, 5, 96), seed=9)
    np.testing.assert_array_equal(
        fake_quantize(y[:, :, ::-1], 4, None), fake_quantize(y[:, :, ::-1].copy(), 4, -1)
    )
    assert fake_quantize(x[0], 4, 32).shape == (128,)  # 1-D is one row


def test_out_reuse_and_in_place():
    x = sample((16, 256), seed=2)
    want = fake_quantize(x, 3, 64)
    out = np.empty_like(x)
    assert fake_quantize(x, 3, 64, out=out) is out
    np.testing.assert_array_equal(out, want)
    y = x.copy()
    fake_quantize(y, 3, 64, out=y)  # in place
    np.testing.assert_array_equal(y, want)
    b = np.empty(x.size, np.uint16)
    got = fake_quantize(x, 3, 64, dtype="bf16", out=b)
    assert got.shape == x.shape and np.shares_memory(got, b)
    o64 = np.empty(x.shape, np.float64)
    assert fake_quantize(x, 3, 64, dtype=np.float64, out=o64) is o64
    np.testing.assert_array_equal(o64, want)
    q = affine_quantize(x, AffineScheme(3, 64))
    np.testing.assert_array_equal(affine_dequantize(q, out=out), want)
    np.testing.assert_array_equal(q.dequantize(), want)


def test_thread_count_does_not_change_the_result():
    x = sample((64, 4096), seed=13)
    for preset in PRESETS:
        s = AffineScheme.preset(preset, 4, 128)
        a = fake_quantize(x, scheme=s, n_threads=1)
        b = fake_quantize(x, scheme=s, n_threads=3)
        np.testing.assert_array_equal(bits_of(a), bits_of(b))


def test_nonfinite_values():
    x = sample((4, 256), seed=4)
    x[2, 77] = np.nan
    x[3, 5] = np.inf
    with pytest.raises(NonFiniteError, match=r"\(NaN\) at flat index 589 \(row 2, column 77\)"):
        fake_quantize(x, 4, 64)
    with pytest.raises(NonFiniteError, match="allow_nonfinite=True"):
        affine_quantize(x, "hqq")
    out = fake_quantize(x, 4, 64, allow_nonfinite=True)
    bad = np.zeros(x.shape, bool)
    bad[2, 64:128] = True
    bad[3, 0:64] = True
    np.testing.assert_array_equal(np.isnan(out), bad)
    good = ~bad
    np.testing.assert_array_equal(out[good], fake_quantize(np.where(bad, 0, x), 4, 64)[good])
    q = affine_quantize(x, AffineScheme(4, 64), allow_nonfinite=True)
    assert np.isnan(q.scales[2, 1]) and np.isnan(q.zeros[3, 0]) and np.all(q.codes[bad] == 0)
    assert np.isnan(affine_dequantize(q)[bad]).all()
    with pytest.raises(NonFiniteError, match=r"\(inf\)"):
        fake_quantize(np.array([1.0, 1e300]), 4, 2)  # float64 beyond float32


# ----------------------------------------------------------------------------------------------
# The reference libraries' own code (torch, float32): AWQ, AutoGPTQ, HQQ, torchao.
# ----------------------------------------------------------------------------------------------


def _torch_impls():
    torch = pytest.importorskip("torch")

    def awq(w, bits, g, zero_point):
        shape, w = w.shape, w.reshape(-1, g)
        if zero_point:
            max_val = w.amax(dim=1, keepdim=True)
            min_val = w.amin(dim=1, keepdim=True)
            max_int, min_int = 2**bits - 1, 0
            scales = (max_val - min_val).clamp(min=1e-5) / max_int
            zeros = (-torch.round(min_val / scales)).clamp_(min_int, max_int)
            w = (torch.clamp(torch.round(w / scales) + zeros, min_int, max_int) - zeros) * scales
        else:
            max_val = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-5)
            max_int, min_int = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
            scales = max_val / max_int
            w = torch.clamp(torch.round(w / scales), min_int, max_int) * scales
        return w.reshape(shape)

    def gptq(w, bits, g):  # AutoGPTQ Quantizer.find_params(sym=True) + quantize
        shape, x = w.shape, w.reshape(-1, g)
        maxq = torch.tensor(2**bits - 1)
        tmp = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        xmax = torch.maximum(torch.abs(xmin), xmax)
        neg = xmin < 0
        xmin[neg] = -xmax[neg]
        both = (xmin == 0) & (xmax == 0)
        xmin[both], xmax[both] = -1, +1
        scale = ((xmax - xmin) / maxq).unsqueeze(1)
        zero = torch.full_like(scale, (maxq + 1) / 2)
        q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
        return (scale * (q - zero)).reshape(shape)

    def hqq(w, bits, g):  # hqq.core.quantize.Quantizer, optimize=False, axis=1
        shape, W = w.shape, w.float().reshape([-1, g])
        _min = W.min(axis=1, keepdim=True)[0]
        _max = W.max(axis=1, keepdim=True)[0]
        max_v = round(2**bits - 1)
        scale = (max_v / (_max - _min)).clamp(max=2e4)
        zero = -_min * scale
        W_q = torch.round(W * scale + zero).clamp(0, max_v)
        return ((W_q - zero) * (1.0 / scale)).reshape(shape)

    def torchao(w, bits, g):  # choose_qparams_affine / quantize_affine / dequantize_affine
        shape, x = w.shape, w.reshape(-1, g)
        qmin, qmax = 0, 2**bits - 1
        min_val = torch.amin(x, dim=1, keepdim=True)
        max_val = torch.amax(x, dim=1, keepdim=True)
        scale = (max_val - min_val) / float(qmax - qmin)
        mid = (qmax + qmin + 1) / 2
        zero_point = min_val + scale * mid
        scale = torch.clamp(scale, min=1e-6)
        min_q = zero_point - scale * mid
        q = torch.clamp(torch.round((x - min_q) / scale), qmin, qmax).to(torch.int32)
        d = (q - mid).to(torch.float32)
        d *= scale
        d += zero_point
        return d.reshape(shape)

    return torch, {
        "rtn_asym": lambda w, b, g: awq(w, b, g, True),
        "rtn_sym": lambda w, b, g: awq(w, b, g, False),
        "gptq_sym": gptq,
        "hqq": hqq,
        "torchao_int4": torchao,
    }


@pytest.mark.parametrize("preset", PRESETS)
def test_matches_the_reference_libraries_torch_code(preset):
    torch, impls = _torch_impls()
    for bits in (2, 3, 4, 8):
        for g in (32, 128, 48):
            # Every group holds a negative value (AutoGPTQ's sym quirk only shows without one).
            x = sample((16, 384), seed=bits + g)
            theirs = impls[preset](torch.from_numpy(x.copy()), bits, g).numpy()
            ours = fake_quantize(x, bits, g, scheme=preset)
            np.testing.assert_array_equal(bits_of(ours, True), bits_of(theirs, True))


# ----------------------------------------------------------------------------------------------
# Properties.
# ----------------------------------------------------------------------------------------------

_finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(f32, st.tuples(st.integers(1, 3), st.sampled_from([8, 24, 48])), elements=_finite),
    preset=st.sampled_from(PRESETS),
    bits=st.integers(2, 8),
    group=st.sampled_from([8, 4, 1, None]),
    rounding=st.sampled_from(ROUNDINGS),
)
def test_error_is_at_most_half_a_step(x, preset, bits, group, rounding):
    s = AffineScheme.preset(preset, bits=bits, group_size=group, rounding=rounding)
    out = fake_quantize(x, scheme=s)
    q = affine_quantize(x, s)
    g = group or x.shape[-1]
    v = reference(x, preset, bits, g, rounding)[0]
    np.testing.assert_array_equal(bits_of(out, True), bits_of(v, True))
    step = np.repeat(q.scales, g, axis=-1).astype(np.float64)
    w = x.reshape(x.shape[0], -1).astype(np.float64)
    mn = np.repeat(w.reshape(-1, g).min(1).reshape(x.shape[0], -1), g, axis=-1)
    mx = np.repeat(w.reshape(-1, g).max(1).reshape(x.shape[0], -1), g, axis=-1)
    err = np.abs(w - out)
    # s/2, plus float32 rounding of the steps (relative to the codes and the magnitudes).
    slack = (2**bits) * step * 2.0**-21 + (np.abs(w) + np.abs(mn) + np.abs(mx)) * 2.0**-21
    bound = step / 2 + slack + 2 * np.spacing(np.abs(out).astype(f32)).astype(np.float64)
    # rtn_asym's integer zero is clamped to the code range: the bound needs 0 in [min, max].
    ok = (mn <= 0) & (mx >= 0) if preset == "rtn_asym" else np.ones_like(err, bool)
    assert np.all(err[ok] <= bound[ok])
    assert np.all(q.codes <= 2**bits - 1)


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(f32, (2, 64), elements=_finite),
    bits=st.integers(2, 8),
    rounding=st.sampled_from(ROUNDINGS),
)
def test_rtn_asym_requantization(x, bits, rounding):
    """Re-quantizing keeps the codes of every group whose codes span 0..qmax, and moves the
    values by a few ulps only (the scale is recomputed from the quantized range, so it can
    differ from the first one in its last bit). Groups that do not span the range (a tie in
    the zero-point rounding, a clamped zero, a range below the eps clamp) are not fixed
    points in general."""
    s = AffineScheme(bits, 16, rounding=rounding)
    y = fake_quantize(x, scheme=s)
    q1, q2 = affine_quantize(x, s), affine_quantize(y, s)
    qmax = 2**bits - 1
    c1 = q1.codes.reshape(-1, 16)
    span = (c1.min(1) == 0) & (c1.max(1) == qmax)
    np.testing.assert_array_equal(q2.codes.reshape(-1, 16)[span], c1[span])
    yy = fake_quantize(y, scheme=s).reshape(-1, 16)[span].astype(np.float64)
    y1 = y.reshape(-1, 16)[span].astype(np.float64)
    step = q1.scales.reshape(-1, 1)[span].astype(np.float64)
    assert np.all(np.abs(yy - y1) <= qmax * step * 2.0**-21 + 2 * np.spacing(np.abs(y1)))


def test_requantization_is_exact_on_a_dyadic_grid():
    # Values k·2^-6 spanning exactly 15 steps: every operation is exact, so fake quant is a
    # projection — idempotent to the last bit.
    rng = np.random.default_rng(0)
    k = rng.integers(0, 16, size=(32, 64)).astype(f32)
    k[:, 0], k[:, 1] = 0, 15
    x = (k - 7) * f32(2.0**-6)
    y = fake_quantize(x, 4, 64)
    np.testing.assert_array_equal(bits_of(y), bits_of(x))
    np.testing.assert_array_equal(bits_of(fake_quantize(y, 4, 64)), bits_of(y))


# ----------------------------------------------------------------------------------------------
# Schemes: names, describe(), bits per weight.
# ----------------------------------------------------------------------------------------------


def test_scheme_describe_and_bits_per_weight():
    s = AffineScheme(4)
    assert s.describe() == "int4-g128-asym-intzero-rne"
    assert s.bits_per_weight() == 4 + (16 + 4) / 128
    assert s == AffineScheme.preset("rtn_asym") and hash(s) == hash(AffineScheme(4, 128))
    assert s.preset == s.convention == "rtn_asym" and s.qmax == 15
    assert AffineScheme(3, 64, sym=True).describe() == "int3-g64-sym-intzero-rne"
    assert AffineScheme(3, 64, sym=True).bits_per_weight() == 3 + 16 / 64
    g = AffineScheme.preset("gptq_sym", bits=8, group_size=-1, rounding="half_away")
    assert g.describe() == "int8-perchannel-sym-intzero-rna-gptq" and g.group_size is None
    assert g.bits_per_weight() == 8.0
    assert g.bits_per_weight(row_length=4096) == 8 + 16 / 4096
    h = AffineScheme.preset("hqq", 4, 64)
    assert h.describe() == "int4-g64-asym-floatzero-rne-hqq" and h.scale_eps == 5e-5
    assert h.bits_per_weight() == 4.5
    assert h.bits_per_weight(scale_bits=8, zero_bits=8) == 4.25
    t = AffineScheme.preset("torchao_int4", scale_eps=1e-4)
    assert t.describe() == "int4-g128-asym-floatzero-rne-torchao-eps0.0001"
    assert AffineScheme(4, rounding="rna") == AffineScheme(4, rounding="half_away")
    assert AffineScheme.preset("gptq_sym") != AffineScheme.preset("rtn_sym")


def test_conventions_table_matches_the_native_core():
    native = {name: (eps, sym, fz) for name, eps, sym, fz in _native.affine_conventions()}
    assert tuple(native) == PRESETS
    for name in PRESETS:
        s = AffineScheme.preset(name)
        assert native[name] == (s.scale_eps, s.sym, s.zero == "float")


# ----------------------------------------------------------------------------------------------
# Bad input.
# ----------------------------------------------------------------------------------------------


def test_bad_schemes():
    with pytest.raises(InvalidInputError, match=r"bits must be an integer in 2\.\.8, got 9"):
        AffineScheme(9)
    with pytest.raises(InvalidInputError, match="got 1"):
        fake_quantize(np.ones(8), bits=1)
    for bad in (2.5, True, "4"):
        with pytest.raises(InvalidInputError, match="bits must be an integer"):
            AffineScheme(bad)
    with pytest.raises(InvalidInputError, match=r"group_size must be a positive integer.*got 0"):
        AffineScheme(4, 0)
    with pytest.raises(InvalidInputError, match="got -2"):
        AffineScheme(4, -2)
    with pytest.raises(UnknownNameError, match="unknown affine preset 'rtn_asymm'; did you mean"):
        AffineScheme.preset("rtn_asymm")
    with pytest.raises(UnknownNameError, match="did you mean 'gptq_sym'"):
        fake_quantize(np.ones((1, 8)), 4, 8, scheme="gptq-sym")
    with pytest.raises(UnknownNameError, match="unknown rounding 'half_evn'; did you mean"):
        AffineScheme(4, rounding="half_evn")
    with pytest.raises(UnknownNameError, match="unknown zero kind 'flaot'; did you mean 'float'"):
        fake_quantize(np.ones((1, 8)), 4, 8, zero="flaot")
    with pytest.raises(InvalidInputError, match="symmetric scheme has no zero point"):
        AffineScheme(4, sym=True, zero="float")
    with pytest.raises(InvalidInputError, match="preset 'hqq' has a float zero"):
        AffineScheme(4, zero="int", preset="hqq")
    with pytest.raises(InvalidInputError, match="preset 'rtn_asym' is asymmetric"):
        AffineScheme(4, sym=True, preset="rtn_asym")
    with pytest.raises(InvalidInputError, match="scale_eps must be positive for preset 'hqq'"):
        AffineScheme.preset("hqq", scale_eps=0)
    for eps in (-1.0, float("nan"), float("inf"), 1e-40):
        with pytest.raises(InvalidInputError, match="scale_eps"):
            AffineScheme(4, scale_eps=eps)
    assert AffineScheme.preset("gptq_sym", scale_eps=0.0).scale_eps == 0.0
    with pytest.raises(InvalidInputError, match="scheme must be an AffineScheme"):
        fake_quantize(np.ones(8), scheme=4)  # type: ignore[arg-type]


def test_bad_arrays():
    x = np.ones((2, 4096), f32)
    with pytest.raises(ShapeError, match="group size 96 does not divide the row length 4096"):
        fake_quantize(x, 4, 96)
    with pytest.raises(ShapeError, match="group size 96 does not divide the row length 4096"):
        affine_quantize(x, AffineScheme(4, 96))
    with pytest.raises(ShapeError, match="group size 256 does not divide the row length 100"):
        fake_quantize(np.ones(100), 4, 256)
    with pytest.raises(ShapeError, match="at least one dimension"):
        fake_quantize(np.float32(1.0))
    with pytest.raises(ShapeError, match="empty"):
        fake_quantize(np.ones((3, 0), f32))
    with pytest.raises(ShapeError, match="empty"):
        affine_quantize([])
    with pytest.raises(InvalidInputError, match="real numbers"):
        fake_quantize(np.ones(8, bool), 4, 8)
    with pytest.raises(InvalidInputError, match="real numbers"):
        fake_quantize(np.ones(8, complex), 4, 8)
    with pytest.raises(InvalidInputError, match="output dtype must be float32, float16 or bf"):
        fake_quantize(x, 4, 128, dtype="int8")
    with pytest.raises(InvalidInputError, match="out has dtype float16"):
        fake_quantize(x, 4, 128, out=np.empty(x.shape, np.float16))
    with pytest.raises(ShapeError, match="out holds 10 elements"):
        fake_quantize(x, 4, 128, out=np.empty(10, f32))
    with pytest.raises(InvalidInputError, match="float64 array"):
        fake_quantize(x, 4, 128, dtype="float64", out=np.empty(x.shape, f32))
    with pytest.raises(InvalidInputError, match="n_threads must be >= 0"):
        fake_quantize(x, 4, 128, n_threads=-1)


def test_bad_stored_arrays():
    x = sample((4, 256), seed=1)
    q = affine_quantize(x, AffineScheme(4, 64))
    with pytest.raises(InvalidInputError, match="q must be an AffineQuantized"):
        affine_dequantize(q.codes)  # type: ignore[arg-type]
    bad = AffineQuantized(q.codes[:, :128], q.scales, q.zeros, q.scheme, q.shape)
    with pytest.raises(ShapeError, match=re.escape("codes have shape (4, 128), expected (4, 256)")):
        affine_dequantize(bad)
    bad = AffineQuantized(q.codes, q.scales[:, :2], q.zeros, q.scheme, q.shape)
    with pytest.raises(ShapeError, match=re.escape("scales have shape (4, 2), expected (4, 4)")):
        affine_dequantize(bad)
    bad = AffineQuantized(q.codes, q.scales, q.zeros, AffineScheme(4, 96), q.shape)
    with pytest.raises(ShapeError, match="group size 96 does not divide the row length 256"):
        affine_dequantize(bad)
    with pytest.raises(InvalidInputError, match="output dtype"):
        affine_dequantize(q, "int4")


def test_native_rejects_read_only_outputs_without_panicking():
    x = np.zeros((2, 32), np.float32)
    codes = np.zeros((2, 32), np.uint8)
    codes.flags.writeable = False
    with pytest.raises(InvalidInputError, match="codes must be a writeable C-contiguous uint8"):
        _native.affine_quantize(x, 32, "rtn_asym", 4, 32, "half_even", 1e-5, False, codes=codes)
    with pytest.raises(InvalidInputError, match="codes must be a writeable C-contiguous uint8"):
        _native.affine_quantize(
            x, 32, "rtn_asym", 4, 32, "half_even", 1e-5, False, codes=np.zeros((2, 32), np.int8)
        )
