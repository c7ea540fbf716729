"""capscale.quant's format registry, error statistics and argument handling (the kernels'
bit-exactness is tested per family in test_quant_gguf_*.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capscale.errors import InvalidInputError, NonFiniteError, ShapeError, UnknownNameError
from capscale.quant import dequantize, error_stats, get_format, list_formats, quantize

gguf = pytest.importorskip("gguf")


def test_format_table_matches_the_gguf_package() -> None:
    for f in list_formats("gguf"):
        qtype = gguf.GGMLQuantizationType[f.name]
        assert int(qtype) == f.type_id
        assert gguf.GGML_QUANT_SIZES[qtype] == (f.block_size, f.type_size)
    assert get_format("q4_k").bits_per_weight == 4.5
    assert get_format("Q6_K").bits_per_weight == pytest.approx(6.5625)
    with pytest.raises(UnknownNameError, match="did you mean 'Q4_K'"):
        get_format("Q4K")
    # checkpoint formats at their usual settings, with their storage cost
    assert get_format("nf4").bits_per_weight == 4.5
    assert get_format("NF4-DQ").bits_per_weight == pytest.approx(4 + 8 / 64 + 32 / 64 / 256)
    assert get_format("GPTQ-INT4-G128").bits_per_weight == pytest.approx(4 + 20 / 128)
    assert {f.family for f in list_formats()} == {"gguf", "bnb", "gptq", "awq"}
    with pytest.raises(InvalidInputError, match="NF4 is a bnb format, not a GGUF block type"):
        dequantize(np.zeros(36, np.uint8), "NF4")
    with pytest.raises(UnknownNameError, match="unknown format family 'ggfu'"):
        list_formats("ggfu")


def test_error_stats_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 0.02, (64, 128))
    app = ref + rng.normal(0, 0.001, ref.shape)
    s = error_stats(ref, app, bits_per_weight=4.5)
    err = app - ref
    assert s.rmse == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-12)
    assert s.relative_rmse == pytest.approx(s.rmse / np.sqrt(np.mean(ref**2)), rel=1e-12)
    assert s.max_abs == np.abs(err).max()
    assert s.sqnr_db == pytest.approx(10 * np.log10(np.sum(ref**2) / np.sum(err**2)), rel=1e-12)
    assert s.n == ref.size and s.bits_per_weight == 4.5
    assert error_stats(ref, ref).sqnr_db == math.inf
    with pytest.raises(ShapeError, match="shape"):
        error_stats(ref, app[:3])
    with pytest.raises(NonFiniteError, match="reference"):
        error_stats(np.array([np.nan]), np.array([0.0]))


def test_f32_round_trip_and_shapes() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    raw = quantize(x, "F32")
    assert raw.shape == (3, 16) and raw.dtype == np.uint8
    np.testing.assert_array_equal(dequantize(raw, "F32", shape=(3, 4)), x)
    np.testing.assert_array_equal(dequantize(raw.tobytes(), "f32").reshape(3, 4), x)
    assert dequantize(raw, "F32", dtype=np.float16).dtype == np.float16


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="uint8"):
        dequantize(np.zeros(4, dtype=np.int32), "Q4_0")
    with pytest.raises(ShapeError, match="holds 8 elements"):
        dequantize(np.zeros(16, dtype=np.uint8), "F32", shape=(2, 4))
    with pytest.raises(InvalidInputError, match="float32, float16 or bfloat16, got"):
        dequantize(np.zeros(4, dtype=np.uint8), "F32", dtype=np.int8)
    with pytest.raises(ShapeError, match="whole number of Q4_0 blocks"):
        quantize(np.zeros(33, dtype=np.float32), "Q4_0")
    with pytest.raises(InvalidInputError, match="real numbers"):
        quantize(np.array(["a"] * 32), "Q4_0")
    with pytest.raises(UnknownNameError, match="unknown weight format"):
        quantize(np.zeros(32, dtype=np.float32), "Q9_9")


def test_native_bindings_name_a_wrong_array() -> None:
    from capscale import _native

    with pytest.raises(InvalidInputError, match='uint8 array, got dtype "int32"'):
        _native.gguf_dequantize(np.zeros(4, dtype=np.int32), "Q4_0", np.empty(0, np.float32))
    with pytest.raises(InvalidInputError, match=r"1-D float32 array.*shape \(2, 32\)"):
        _native.gguf_quantize(np.zeros((2, 32), dtype=np.float32), "Q4_0")
