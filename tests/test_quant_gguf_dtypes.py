"""GGUF dequantization into float16 / bfloat16 and into caller-supplied ``out=`` buffers.

* float16 / bfloat16 results equal the ``gguf`` package's float32 result rounded once
  (``astype(np.float16)``; a NumPy bfloat16 round-to-nearest-even reference, checked against
  torch) for every type, with subnormal, infinite and NaN scales;
* ``out=`` (plain and streaming stores, aligned and misaligned, 1 and 2 threads) gives the
  bits of a fresh result and writes nothing outside the buffer;
* every malformed argument raises its specific exception;
* a property test feeds arbitrary byte strings: a result equal to the reference, or
  ``FormatError``, never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscale import _native
from capscale.errors import FormatError, InvalidInputError, ShapeError, UnknownNameError
from capscale.quant import dequantize, list_formats

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize as ref_dequantize  # noqa: E402

from _gguf_blocks import (  # noqa: E402
    SCALE_OFFSETS,
    SPECIAL_FINITE,
    SPECIAL_NON_FINITE,
    SPECIAL_TIES,
    random_blocks,
    sizes,
)

T = gguf.GGMLQuantizationType

TYPES = list(SCALE_OFFSETS)
DTYPES = ["float32", "float16", "bfloat16"]
STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}

SPECIALS = np.array([*SPECIAL_FINITE, *SPECIAL_TIES, *SPECIAL_NON_FINITE], np.uint16)


def test_every_format_is_covered() -> None:
    assert sorted(TYPES) == sorted(f.name for f in list_formats("gguf"))


def flat_blocks(rng: np.random.Generator, name: str, n_blocks: int) -> np.ndarray:
    """Flat uint8 blocks whose f16 scales are 40% special values (ties included)."""
    return random_blocks(rng, name, 1, n_blocks, SPECIALS).reshape(-1)


def reference(raw: np.ndarray, name: str) -> np.ndarray:
    """gguf-py's float32 result (flat)."""
    if raw.size == 0:
        return np.empty(0, np.float32)
    with np.errstate(all="ignore"):
        return np.asarray(ref_dequantize(raw, T[name]), dtype=np.float32).reshape(-1)


def bf16_rne(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16): round to nearest even; NaN truncated and
    made quiet (torch's ``.to(torch.bfloat16)`` up to NaN payloads)."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def rounded(ref32: np.ndarray, dtype: str) -> np.ndarray:
    """The reference float32 values rounded once into ``dtype``'s storage."""
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return ref32.astype(np.float16)
    if dtype == "bfloat16":
        return bf16_rne(ref32)
    return ref32


def as_float(a: np.ndarray, dtype: str) -> np.ndarray:
    """Values of a result (bfloat16 bit patterns widened to float32)."""
    if dtype == "bfloat16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a


def assert_same(ours: np.ndarray, want: np.ndarray, dtype: str) -> None:
    """NaN at the same places; every other element bit for bit (so +0 ≠ −0)."""
    ours, want = np.ravel(ours), np.ravel(want)
    assert ours.dtype == want.dtype == STORAGE[dtype]
    assert ours.shape == want.shape
    nan = np.isnan(as_float(want, dtype))
    np.testing.assert_array_equal(np.isnan(as_float(ours, dtype)), nan)
    u = np.uint32 if dtype == "float32" else np.uint16
    np.testing.assert_array_equal(ours.view(u)[~nan], want.view(u)[~nan])


# ------------------------------------------------------------------ float16 / bfloat16


@pytest.mark.parametrize("name", TYPES)
def test_16_bit_outputs_are_the_reference_rounded_once(name: str) -> None:
    bs = sizes(name)[0]
    raw = flat_blocks(np.random.default_rng(TYPES.index(name)), name, 4096 // bs * 3 + 5)
    ref32 = reference(raw, name)
    for dtype in DTYPES:
        ours = dequantize(raw, name, dtype=dtype)
        assert_same(ours, rounded(ref32, dtype), dtype)


@pytest.mark.parametrize("name", ["F16", "BF16"])
def test_every_16_bit_pattern_in_every_dtype(name: str) -> None:
    raw = np.arange(1 << 16, dtype="<u2").view(np.uint8)
    ref32 = reference(raw, name)
    for dtype in DTYPES:
        assert_same(dequantize(raw, name, dtype=dtype), rounded(ref32, dtype), dtype)
    # Same-format output gives back every non-NaN pattern unchanged.
    same = "float16" if name == "F16" else "bfloat16"
    back = dequantize(raw, name, dtype=same).view(np.uint16)
    keep = ~np.isnan(ref32)
    np.testing.assert_array_equal(back[keep], raw.view("<u2")[keep])


def test_rounding_ties_overflow_and_subnormals() -> None:
    bits = np.array(
        [
            0x3F801000,  # 1 + 2^-11: float16 tie → 1
            0x3F803000,  # 1 + 3·2^-11: float16 tie → up (even)
            0x3F808000,  # bfloat16 tie → 1
            0x3F818000,  # bfloat16 tie → up (even)
            0x477FF000,  # 65520: float16 Inf
            0x7F7FFFFF,  # float32 max: bfloat16 Inf
            0x33000000,  # 2^-25: float16 tie → 0
            0x33000001,  # just above: smallest float16 subnormal
            0x00000001,  # float32 subnormal
            0x80000000,  # -0
        ],
        dtype="<u4",
    )
    raw = bits.view(np.uint8)
    f16 = dequantize(raw, "F32", dtype="float16").view(np.uint16)
    bf16 = dequantize(raw, "F32", dtype="bfloat16")
    np.testing.assert_array_equal(
        f16, [0x3C00, 0x3C02, 0x3C04, 0x3C0C, 0x7C00, 0x7C00, 0, 1, 0, 0x8000]
    )
    np.testing.assert_array_equal(
        bf16, [0x3F80, 0x3F80, 0x3F80, 0x3F82, 0x4780, 0x7F80, 0x3300, 0x3300, 0, 0x8000]
    )


def test_numpy_bf16_reference_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 1 << 32, 1 << 16, dtype=np.uint32)
    x[:6] = [0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x7F800001, 0xFFC12345, 0x80000000]
    f = x.view(np.float32)
    want = torch.from_numpy(f.copy()).to(torch.bfloat16).view(torch.int16).numpy()
    want = want.view(np.uint16)
    normal = ~np.isnan(f) & ((x & 0x7F800000) != 0)  # torch may flush f32 subnormals
    np.testing.assert_array_equal(bf16_rne(f)[normal], want[normal])
    np.testing.assert_array_equal(np.isnan(as_float(bf16_rne(f), "bfloat16")), np.isnan(f))


# ------------------------------------------------------------------ out= buffers

# When d·q and m of a Q4_1/Q5_1 block are both NaN, which payload their sum keeps is not defined
# (the compiler may order the add either way); only NaN-ness is compared there.
WITH_MIN = ("Q4_1", "Q5_1")
OUT_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q5_1", "Q8_0", "MXFP4", "Q4_K", "Q6_K", "TQ1_0"]


@pytest.mark.parametrize("name", OUT_TYPES)
def test_out_buffers_give_the_fresh_bits(name: str) -> None:
    # Past one parallel task (2048 blocks; 2048·256 elements for the float types), so two
    # threads split the work; a misaligned out (offset by one element) cannot stream.
    bs = sizes(name)[0]
    raw = flat_blocks(np.random.default_rng(OUT_TYPES.index(name)), name, 2053 * (256 // bs))
    n = raw.size // sizes(name)[1] * bs
    for dtype in DTYPES:
        storage = STORAGE[dtype]
        fresh = dequantize(raw, name, dtype=dtype)
        u = np.uint32 if dtype == "float32" else np.uint16
        want = fresh.view(u)
        for stores in ("plain", "streaming"):
            for offset in (0, 1):
                for threads in (1, 2):
                    big = np.full(n + 8, 7, storage)
                    out = big[offset : offset + n]
                    flat = out.view(np.uint16) if dtype == "float16" else out
                    _native.gguf_dequantize(raw, name, flat, dtype, threads, True, stores)
                    if name in WITH_MIN:
                        assert_same(out, fresh, dtype)
                    else:
                        np.testing.assert_array_equal(out.view(u), want)
                    assert (big[:offset] == 7).all() and (big[offset + n :] == 7).all()
        # The public API fills and returns the caller's array (reshaped by `shape`).
        out = np.zeros((n // 256, 256), storage)
        got = dequantize(raw, name, dtype=dtype, out=out)
        assert got is out
        assert_same(out, fresh, dtype)
        got = dequantize(raw, name, (n,), dtype=dtype, out=out, n_threads=2)
        assert got.base is out and got.shape == (n,)


def test_out_buffer_reused_across_types() -> None:
    rng = np.random.default_rng(11)
    out = np.empty(4096, np.float32)
    for name in ("Q4_0", "Q6_K", "IQ4_XS"):
        raw = flat_blocks(rng, name, 4096 // sizes(name)[0])
        assert dequantize(raw, name, out=out) is out
        assert_same(out, reference(raw, name), "float32")


# ------------------------------------------------------------------ bad input


def test_bad_out_arguments() -> None:
    raw = flat_blocks(np.random.default_rng(0), "Q4_0", 2)  # 64 elements
    with pytest.raises(InvalidInputError, match="out has dtype float64; dtype 'float32' needs"):
        dequantize(raw, "Q4_0", out=np.empty(64, np.float64))
    with pytest.raises(InvalidInputError, match=r"needs uint16 \(bfloat16 bit patterns\)"):
        dequantize(raw, "Q4_0", dtype="bf16", out=np.empty(64, np.float16))
    with pytest.raises(ShapeError, match="out holds 63 elements, the result has 64"):
        dequantize(raw, "Q4_0", out=np.empty(63, np.float32))
    with pytest.raises(InvalidInputError, match="writeable C-contiguous"):
        dequantize(raw, "Q4_0", out=np.empty(128, np.float32)[::2])
    read_only = np.empty(64, np.float32)
    read_only.setflags(write=False)
    with pytest.raises(InvalidInputError, match="writeable C-contiguous"):
        dequantize(raw, "Q4_0", out=read_only)
    with pytest.raises(InvalidInputError, match="out must be a numpy array, got list"):
        dequantize(raw, "Q4_0", out=[0.0] * 64)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"shape \(8, 9\) holds 72 elements, data 64"):
        dequantize(raw, "Q4_0", (8, 9))
    with pytest.raises(InvalidInputError, match="float32, float16 or bfloat16, got 'int8'"):
        dequantize(raw, "Q4_0", dtype="int8")
    with pytest.raises(InvalidInputError, match="n_threads must be >= 0"):
        dequantize(raw, "Q4_0", n_threads=-1)


def test_bad_data_and_names() -> None:
    with pytest.raises(FormatError, match=r"37 bytes is not a whole number of Q4_0 blocks.*trunc"):
        dequantize(np.zeros(37, np.uint8), "Q4_0")
    with pytest.raises(FormatError, match="not a whole number of Q6_K blocks"):
        dequantize(bytes(209), "q6_k", out=np.empty(256, np.float32))
    with pytest.raises(UnknownNameError, match="did you mean 'Q4_K'"):
        dequantize(np.zeros(144, np.uint8), "Q4K")
    with pytest.raises(InvalidInputError, match="must be uint8 bytes, got dtype float32"):
        dequantize(np.zeros(18, np.float32), "Q4_0")


def test_native_checks_its_own_arguments() -> None:
    raw = np.zeros(18, np.uint8)
    out = np.empty(32, np.float32)
    with pytest.raises(InvalidInputError, match="output dtype must be float32, float16 or bf"):
        _native.gguf_dequantize(raw, "Q4_0", out, "float64")
    with pytest.raises(InvalidInputError, match=r"uint16 \(bit patterns\) array for dtype"):
        _native.gguf_dequantize(raw, "Q4_0", out, "float16")
    with pytest.raises(InvalidInputError, match='stores must be "auto", "plain" or "stream'):
        _native.gguf_dequantize(raw, "Q4_0", out, stores="fast")
    with pytest.raises(ShapeError, match="out has 31 elements, the data holds 32"):
        _native.gguf_dequantize(raw, "Q4_0", out[:31])
    out.setflags(write=False)
    with pytest.raises(InvalidInputError, match="out must be a writeable C-contiguous array"):
        _native.gguf_dequantize(raw, "Q4_0", out)
    with pytest.raises(FormatError, match="truncated"):
        _native.gguf_dequantize(raw[:17], "Q4_0", out)
    with pytest.raises(UnknownNameError, match='unknown GGUF type "Q4_9"'):
        _native.gguf_dequantize(raw, "Q4_9", out)


# ------------------------------------------------------------------ any bytes


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(TYPES),
    dtype=st.sampled_from(DTYPES),
    n_blocks=st.integers(0, 3),
    tail=st.one_of(st.just(0), st.integers(1, 300)),
    data=st.data(),
)
def test_any_byte_string_parses_or_raises(
    name: str, dtype: str, n_blocks: int, tail: int, data: st.DataObject
) -> None:
    ts = sizes(name)[1]
    size = n_blocks * ts + tail
    raw = data.draw(st.binary(min_size=size, max_size=size))
    if size % ts:
        with pytest.raises(FormatError, match=f"not a whole number of {name} blocks"):
            dequantize(raw, name, dtype=dtype)
        return
    ours = dequantize(raw, name, dtype=dtype)
    assert_same(ours, rounded(reference(np.frombuffer(raw, np.uint8), name), dtype), dtype)
