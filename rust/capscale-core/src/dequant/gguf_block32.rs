//! 32-element GGUF blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) and the 16-bit float
//! types (F16, BF16): dequantization and the reference (round-to-nearest) quantizers.
//!
//! Every kernel mirrors the float32 operation order of gguf-py's `gguf/quants.py` (which is
//! bit-identical with ggml's `dequantize_row_*` / `quantize_row_*_ref`):
//!
//! * dequantization is `d·q` (Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4) or `(d·q) + m` (Q4_1, Q5_1) in
//!   f32. Every product is exact (11-bit scale × ≤ 7-bit integer), so only the add rounds, and
//!   Inf/NaN scales propagate exactly as in the reference (`Inf·0 = NaN`, NaN payloads kept).
//! * quantization repeats gguf-py's f32 arithmetic step by step (`max / -8`, `1/d`,
//!   `trunc(x·id + 8.5)`, `np_roundf`, the f32 `log2` of MXFP4), NumPy's float→uint8 cast
//!   (truncate to int32, keep the low byte; out of range or NaN → 0) and NumPy's
//!   `astype(float16)` (round to nearest even; NaN payloads kept without forcing them quiet).
//!
//! Speed: the portable kernels work on fixed-size blocks with constant trip counts (no bounds
//! checks in the inner loops, so they vectorise); on x86-64 with AVX2 + F16C the 4/5/8-bit types
//! use explicit intrinsics (nibbles → `pshufb` codebook/offset lookup → widen → convert →
//! multiply), F16 uses `vcvtph2ps` (with signalling NaNs kept signalling, as NumPy does), and
//! [`dequantize_blocks_streaming`] offers the same kernels with non-temporal stores for outputs
//! far larger than the last-level cache.
//!
//! NaN payloads: when `d·q` and `m` of a Q4_1/Q5_1 block are both NaN (m NaN, d NaN or ±Inf),
//! which payload the sum keeps is not defined (gguf-py itself returns either one depending on
//! the number of rows); every other NaN matches the reference bit for bit.

use super::gguf::GgufType;
use super::half::{f16_to_f32, f32_to_f16};
use crate::error::{CoreError, CoreResult};

/// Elements per block.
const QK: usize = 32;

/// `kvalues_iq4nl`, the IQ4_NL codebook.
const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// `kvalues_mxfp4`: E2M1 values doubled (hence the halved E8M0 scale).
const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Q4_0's nibble → value table (`q − 8`).
const OFFSET8: [i8; 16] = [-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7];

/// Q4_1's nibble → value table (the identity).
const IDENTITY16: [i8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// The little-endian f16 `[lo, hi]` as f32, exactly.
#[inline(always)]
fn f16_le(lo: u8, hi: u8) -> f32 {
    f16_to_f32(u16::from_le_bytes([lo, hi]))
}

/// `ggml_e8m0_to_fp32_half`: 2^(e−128) as f32, with e < 2 giving the subnormals
/// `0x00200000 << e`.
#[inline(always)]
fn e8m0_to_f32_half(e: u8) -> f32 {
    let e = e as u32;
    f32::from_bits(if e < 2 {
        0x0020_0000 << e
    } else {
        (e - 1) << 23
    })
}

/// f16 bits → f32 without branches (vectorises); identical to [`f16_to_f32`] for every input,
/// NaN payloads included (signalling NaNs stay signalling, as in NumPy's `astype`).
#[inline(always)]
fn f16_to_f32_branchless(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7FFF;
    let shifted = em << 13;
    let exp = em & 0x7C00;
    let normal = shifted + (112 << 23);
    let inf_nan = shifted | 0x7F80_0000;
    // Subnormal: 2^-14·(1 + m/1024) − 2^-14 = m·2^-24, exactly.
    let sub = (f32::from_bits(shifted + (113 << 23)) - f32::from_bits(113 << 23)).to_bits();
    let mag = if exp == 0x7C00 {
        inf_nan
    } else if exp == 0 {
        sub
    } else {
        normal
    };
    f32::from_bits(mag | sign)
}

// ---------------------------------------------------------------------------------------------
// Portable kernels (one block in, 32 floats out).
// ---------------------------------------------------------------------------------------------

/// Blocks of `TS` bytes and their 32 outputs as fixed-size arrays.
#[inline(always)]
fn for_blocks<const TS: usize>(
    src: &[u8],
    dst: &mut [f32],
    mut f: impl FnMut(&[u8; TS], &mut [f32; QK]),
) {
    for (s, d) in src.chunks_exact(TS).zip(dst.chunks_exact_mut(QK)) {
        if let (Ok(s), Ok(d)) = (<&[u8; TS]>::try_from(s), <&mut [f32; QK]>::try_from(d)) {
            f(s, d);
        }
    }
}

/// Split-halves 4-bit block through a 16-entry table: y[j] = d·T[lo(qs[j])],
/// y[j+16] = d·T[hi(qs[j])] (IQ4_NL, MXFP4). The product is formed per element: a table of
/// `d·T[k]` would let the compiler fold `d·1` to `d`, which keeps a signalling NaN signalling
/// where the reference's multiplication quiets it.
#[inline(always)]
fn lut4(qs: &[u8], d: f32, table: &[i8; 16], y: &mut [f32; QK]) {
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
        *l = d * table[(q & 0xF) as usize] as f32;
        *h = d * table[(q >> 4) as usize] as f32;
    }
}

/// Q4_0: d @0, qs[16] @2; y = d·(q − 8).
#[inline(always)]
fn block_q4_0(b: &[u8; 18], y: &mut [f32; QK]) {
    let d = f16_le(b[0], b[1]);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[2..18]) {
        *l = d * ((q & 0xF) as i32 - 8) as f32;
        *h = d * ((q >> 4) as i32 - 8) as f32;
    }
}

/// Q4_1: d @0, m @2, qs[16] @4; y = (d·q) + m.
#[inline(always)]
fn block_q4_1(b: &[u8; 20], y: &mut [f32; QK]) {
    let d = f16_le(b[0], b[1]);
    let m = f16_le(b[2], b[3]);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[4..20]) {
        *l = d * (q & 0xF) as f32 + m;
        *h = d * (q >> 4) as f32 + m;
    }
}

/// The 32 five-bit values of a Q5 block: low nibbles of `qs` plus bit j of `qh` as bit 4.
#[inline(always)]
fn q5_values(qh: u32, qs: &[u8]) -> [u8; QK] {
    let mut v = [0u8; QK];
    let (lo, hi) = v.split_at_mut(16);
    for (j, ((l, h), &q)) in lo.iter_mut().zip(hi.iter_mut()).zip(qs).enumerate() {
        *l = (q & 0xF) | ((((qh >> j) & 1) as u8) << 4);
        *h = (q >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    v
}

/// Q5_0: d @0, qh u32 @2, qs[16] @6; y = d·(q − 16).
#[inline(always)]
fn block_q5_0(b: &[u8; 22], y: &mut [f32; QK]) {
    let d = f16_le(b[0], b[1]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let v = q5_values(qh, &b[6..22]);
    for (o, &q) in y.iter_mut().zip(&v) {
        *o = d * (q as i32 - 16) as f32;
    }
}

/// Q5_1: d @0, m @2, qh u32 @4, qs[16] @8; y = (d·q) + m.
#[inline(always)]
fn block_q5_1(b: &[u8; 24], y: &mut [f32; QK]) {
    let d = f16_le(b[0], b[1]);
    let m = f16_le(b[2], b[3]);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let v = q5_values(qh, &b[8..24]);
    for (o, &q) in y.iter_mut().zip(&v) {
        *o = d * q as f32 + m;
    }
}

/// Q8_0: d @0, qs i8[32] @2; y = q·d.
#[inline(always)]
fn block_q8_0(b: &[u8; 34], y: &mut [f32; QK]) {
    let d = f16_le(b[0], b[1]);
    for (o, &q) in y.iter_mut().zip(&b[2..34]) {
        *o = (q as i8) as f32 * d;
    }
}

/// IQ4_NL: d @0, qs[16] @2; y = d·K[nibble].
#[inline(always)]
fn block_iq4_nl(b: &[u8; 18], y: &mut [f32; QK]) {
    lut4(&b[2..18], f16_le(b[0], b[1]), &KVALUES_IQ4NL, y);
}

/// MXFP4: e (E8M0) @0, qs[16] @1; y = 2^(e−128)·KF[nibble].
#[inline(always)]
fn block_mxfp4(b: &[u8; 17], y: &mut [f32; QK]) {
    lut4(&b[1..17], e8m0_to_f32_half(b[0]), &KVALUES_MXFP4, y);
}

/// F16 elements (2 bytes each).
#[inline(always)]
fn dequant_f16(src: &[u8], dst: &mut [f32]) {
    for (o, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        if let Ok(h) = <[u8; 2]>::try_from(h) {
            *o = f16_to_f32_branchless(u16::from_le_bytes(h));
        }
    }
}

/// BF16 elements: the f32 bits are the u16 shifted left by 16.
#[inline(always)]
fn dequant_bf16(src: &[u8], dst: &mut [f32]) {
    for (o, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        if let Ok(h) = <[u8; 2]>::try_from(h) {
            *o = f32::from_bits((u16::from_le_bytes(h) as u32) << 16);
        }
    }
}

/// Portable dequantization of whole blocks (lengths checked by the caller).
#[inline(always)]
fn dequant_portable(ty: GgufType, src: &[u8], dst: &mut [f32]) {
    match ty {
        GgufType::F16 => dequant_f16(src, dst),
        GgufType::BF16 => dequant_bf16(src, dst),
        GgufType::Q4_0 => for_blocks::<18>(src, dst, block_q4_0),
        GgufType::Q4_1 => for_blocks::<20>(src, dst, block_q4_1),
        GgufType::Q5_0 => for_blocks::<22>(src, dst, block_q5_0),
        GgufType::Q5_1 => for_blocks::<24>(src, dst, block_q5_1),
        GgufType::Q8_0 => for_blocks::<34>(src, dst, block_q8_0),
        GgufType::IQ4_NL => for_blocks::<18>(src, dst, block_iq4_nl),
        GgufType::MXFP4 => for_blocks::<17>(src, dst, block_mxfp4),
        _ => {}
    }
}

/// The portable kernels, not inlined (the reference the AVX2 path is tested against).
#[cfg_attr(not(test), allow(dead_code))]
fn dequant_portable_outlined(ty: GgufType, src: &[u8], dst: &mut [f32]) {
    dequant_portable(ty, src, dst)
}

// ---------------------------------------------------------------------------------------------
// AVX2 kernels.
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Every helper carries `#[target_feature(enable = "avx2")]` and there are no closures:
    //! a closure does not inherit its function's target features, and the intrinsics it calls
    //! would then not be inlined.

    use super::*;
    use std::arch::x86_64::*;

    /// Store 8 floats at `out`: plain unaligned stores, or (`NT`) two 16-byte non-temporal
    /// stores, which need `out` 16-byte aligned.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn store8<const NT: bool>(out: *mut f32, v: __m256) {
        if NT {
            _mm_stream_ps(out, _mm256_castps256_ps128(v));
            _mm_stream_ps(out.add(4), _mm256_extractf128_ps::<1>(v));
        } else {
            _mm256_storeu_ps(out, v);
        }
    }

    /// Store 16 signed bytes as `d·v` (then `+ m` when `MIN`) into `out[0..16]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn emit16<const MIN: bool, const NT: bool>(
        v: __m128i,
        d: __m256,
        m: __m256,
        out: *mut f32,
    ) {
        let a = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
        let b = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(v, v)));
        let (mut a, mut b) = (_mm256_mul_ps(d, a), _mm256_mul_ps(d, b));
        if MIN {
            a = _mm256_add_ps(a, m);
            b = _mm256_add_ps(b, m);
        }
        store8::<NT>(out, a);
        store8::<NT>(out.add(8), b);
    }

    /// Low and high nibbles of 16 bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn nibbles(q: __m128i) -> (__m128i, __m128i) {
        let low4 = _mm_set1_epi8(0xF);
        (
            _mm_and_si128(q, low4),
            _mm_and_si128(_mm_srli_epi16(q, 4), low4),
        )
    }

    /// 0x10 in byte j of the first (second) result where bit j (16 + j) of `qh` is set.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn high_bits(qh: u32) -> (__m128i, __m128i) {
        let v = _mm_set1_epi32(qh as i32);
        let bits = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
        let b16 = _mm_set1_epi8(0x10);
        let sel_lo = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        let sel_hi = _mm_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        let lo = _mm_and_si128(_mm_shuffle_epi8(v, sel_lo), bits);
        let hi = _mm_and_si128(_mm_shuffle_epi8(v, sel_hi), bits);
        (
            _mm_and_si128(_mm_cmpeq_epi8(lo, bits), b16),
            _mm_and_si128(_mm_cmpeq_epi8(hi, bits), b16),
        )
    }

    /// Split-halves 4-bit blocks of `TS` bytes with the 16 packed bytes at `QS`, values
    /// through the 16-byte `table` (`pshufb`); the scale is an E8M0 byte at 0 when `E8M0`,
    /// else an f16 at 0, followed by an f16 min at 2 when `MIN`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn nib4<
        const TS: usize,
        const QS: usize,
        const E8M0: bool,
        const MIN: bool,
        const NT: bool,
    >(
        src: &[u8],
        dst: &mut [f32],
        table: &[i8; 16],
    ) {
        let t = _mm_loadu_si128(table.as_ptr().cast());
        for (b, y) in src.chunks_exact(TS).zip(dst.chunks_exact_mut(QK)) {
            if b.len() < QS + 16 || y.len() < QK {
                continue; // never: chunks_exact gives TS bytes (≥ QS + 16) and 32 outputs
            }
            let d = if E8M0 {
                e8m0_to_f32_half(b[0])
            } else {
                f16_le(b[0], b[1])
            };
            let m = if MIN { f16_le(b[2], b[3]) } else { 0.0 };
            let (d, m) = (_mm256_set1_ps(d), _mm256_set1_ps(m));
            let (lo, hi) = nibbles(_mm_loadu_si128(b.as_ptr().add(QS).cast()));
            let out = y.as_mut_ptr();
            emit16::<MIN, NT>(_mm_shuffle_epi8(t, lo), d, m, out);
            emit16::<MIN, NT>(_mm_shuffle_epi8(t, hi), d, m, out.add(16));
        }
    }

    /// Q5 blocks of `TS` bytes: d (and m when `MIN`) first, qh u32 at `QH`, qs at `QS`;
    /// `offset` is subtracted from the 5-bit values (16 for Q5_0, 0 for Q5_1).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn q5<
        const TS: usize,
        const QH: usize,
        const QS: usize,
        const MIN: bool,
        const NT: bool,
    >(
        src: &[u8],
        dst: &mut [f32],
        offset: i8,
    ) {
        let off = _mm_set1_epi8(offset);
        for (b, y) in src.chunks_exact(TS).zip(dst.chunks_exact_mut(QK)) {
            if b.len() < QS + 16 || y.len() < QK {
                continue; // never (see nib4)
            }
            let d = _mm256_set1_ps(f16_le(b[0], b[1]));
            let m = _mm256_set1_ps(if MIN { f16_le(b[2], b[3]) } else { 0.0 });
            let qh = u32::from_le_bytes([b[QH], b[QH + 1], b[QH + 2], b[QH + 3]]);
            let (lo, hi) = nibbles(_mm_loadu_si128(b.as_ptr().add(QS).cast()));
            let (hlo, hhi) = high_bits(qh);
            let lo = _mm_sub_epi8(_mm_or_si128(lo, hlo), off);
            let hi = _mm_sub_epi8(_mm_or_si128(hi, hhi), off);
            let out = y.as_mut_ptr();
            emit16::<MIN, NT>(lo, d, m, out);
            emit16::<MIN, NT>(hi, d, m, out.add(16));
        }
    }

    /// Q8_0 blocks: d @0, 32 signed bytes @2; `q·d`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn q8_0<const NT: bool>(src: &[u8], dst: &mut [f32]) {
        for (b, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(QK)) {
            if b.len() < 34 || y.len() < QK {
                continue; // never (see nib4)
            }
            let d = _mm256_set1_ps(f16_le(b[0], b[1]));
            let p = b.as_ptr().add(2);
            let out = y.as_mut_ptr();
            for k in 0..4 {
                let v = _mm_loadl_epi64(p.add(8 * k).cast());
                let x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
                store8::<NT>(out.add(8 * k), _mm256_mul_ps(x, d));
            }
        }
    }

    /// F16 elements, 8 at a time, with F16C's `vcvtph2ps` (exact, subnormals included). It
    /// quiets signalling NaNs, which NumPy's `astype` keeps, so the quiet bit of a NaN lane is
    /// put back to the f16's own bit 9.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn f16<const NT: bool>(src: &[u8], dst: &mut [f32]) {
        let quiet = _mm256_set1_epi32(0x0040_0000);
        let mut s = src.chunks_exact(16);
        let mut d = dst.chunks_exact_mut(8);
        for (h, y) in (&mut s).zip(&mut d) {
            if h.len() < 16 || y.len() < 8 {
                continue; // never
            }
            let h = _mm_loadu_si128(h.as_ptr().cast());
            let f = _mm256_cvtph_ps(h);
            let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(f, f));
            // Bit 22 set where the f16's quiet bit (9) is clear.
            let signalling =
                _mm256_andnot_si256(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 13), quiet);
            let fix = _mm256_and_si256(nan, signalling);
            store8::<NT>(y.as_mut_ptr(), _mm256_xor_ps(f, _mm256_castsi256_ps(fix)));
        }
        dequant_f16(s.remainder(), d.into_remainder());
    }

    /// BF16 elements, 8 at a time: widen, shift left by 16.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn bf16<const NT: bool>(src: &[u8], dst: &mut [f32]) {
        let mut s = src.chunks_exact(16);
        let mut d = dst.chunks_exact_mut(8);
        for (h, y) in (&mut s).zip(&mut d) {
            if h.len() < 16 || y.len() < 8 {
                continue; // never
            }
            let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(h.as_ptr().cast()));
            store8::<NT>(
                y.as_mut_ptr(),
                _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)),
            );
        }
        dequant_bf16(s.remainder(), d.into_remainder());
    }

    /// Dequantize whole blocks with AVX2 and F16C (lengths checked by the caller); `NT`:
    /// non-temporal stores, `dst` must then be 16-byte aligned.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn dequantize<const NT: bool>(ty: GgufType, src: &[u8], dst: &mut [f32]) {
        match ty {
            GgufType::F16 => f16::<NT>(src, dst),
            GgufType::BF16 => bf16::<NT>(src, dst),
            GgufType::Q4_0 => nib4::<18, 2, false, false, NT>(src, dst, &OFFSET8),
            GgufType::IQ4_NL => nib4::<18, 2, false, false, NT>(src, dst, &KVALUES_IQ4NL),
            GgufType::MXFP4 => nib4::<17, 1, true, false, NT>(src, dst, &KVALUES_MXFP4),
            GgufType::Q4_1 => nib4::<20, 4, false, true, NT>(src, dst, &IDENTITY16),
            GgufType::Q5_0 => q5::<22, 2, 6, false, NT>(src, dst, 16),
            GgufType::Q5_1 => q5::<24, 4, 8, true, NT>(src, dst, 0),
            GgufType::Q8_0 => q8_0::<NT>(src, dst),
            _ => {}
        }
        if NT {
            _mm_sfence();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points.
// ---------------------------------------------------------------------------------------------

/// `InvalidArgument` unless `ty` is one of this module's types.
fn check_type(ty: GgufType) -> CoreResult<()> {
    match ty {
        GgufType::F16
        | GgufType::BF16
        | GgufType::Q4_0
        | GgufType::Q4_1
        | GgufType::Q5_0
        | GgufType::Q5_1
        | GgufType::Q8_0
        | GgufType::IQ4_NL
        | GgufType::MXFP4 => Ok(()),
        other => Err(CoreError::InvalidArgument(format!(
            "{} is not a 32-element block type or a 16-bit float type",
            other.name()
        ))),
    }
}

/// Check `ty` and that `src` (whole blocks) and `dst` hold the same number of blocks.
fn check_dequant_lengths(ty: GgufType, src: &[u8], dst: &[f32]) -> CoreResult<()> {
    check_type(ty)?;
    let nb = super::gguf::n_blocks(ty, src.len())?;
    let n = nb * ty.block_size();
    if dst.len() != n {
        return Err(CoreError::Shape(format!(
            "output has {} elements, {nb} {} blocks hold {n}",
            dst.len(),
            ty.name()
        )));
    }
    Ok(())
}

/// Whether the AVX2 + F16C kernels can run.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_f16c() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
}

/// Dequantize whole blocks of `ty` (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4):
/// `src.len()` a multiple of the type's byte size, `dst.len() == n_blocks·block_size`.
/// Bit-identical with gguf-py's `dequantize` (and ggml's `dequantize_row_*`), Inf/NaN scales
/// and subnormals included.
pub fn dequantize_blocks(ty: GgufType, src: &[u8], dst: &mut [f32]) -> CoreResult<()> {
    check_dequant_lengths(ty, src, dst)?;
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_f16c() {
            // SAFETY: the CPU supports AVX2 and F16C (checked just above); every load and
            // store stays inside the fixed-size block and output chunks handed to the kernels.
            unsafe { avx2::dequantize::<false>(ty, src, dst) };
            return Ok(());
        }
    }
    dequant_portable(ty, src, dst);
    Ok(())
}

/// As [`dequantize_blocks`] (same values, same checks), writing `dst` with non-temporal
/// (streaming) stores that bypass the caches: faster for outputs much larger than the last-level
/// cache that are not read right away, slower when they are. Falls back to plain stores when
/// the CPU lacks AVX2/F16C or `dst` is not 16-byte aligned.
pub fn dequantize_blocks_streaming(ty: GgufType, src: &[u8], dst: &mut [f32]) -> CoreResult<()> {
    check_dequant_lengths(ty, src, dst)?;
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_f16c() && (dst.as_ptr() as usize) % 16 == 0 {
            // SAFETY: AVX2 and F16C are present and `dst` is 16-byte aligned (checked just
            // above), so every 16-byte streaming store (whole blocks of 128 bytes, or groups of
            // 8 floats from the start of `dst`) is aligned; loads and stores stay in bounds.
            unsafe { avx2::dequantize::<true>(ty, src, dst) };
            return Ok(());
        }
    }
    dequantize_blocks(ty, src, dst)
}

// ---------------------------------------------------------------------------------------------
// Reference quantization, as gguf-py computes it.
// ---------------------------------------------------------------------------------------------

/// NumPy's `astype(np.float16)`: round to nearest even; a NaN keeps the top bits of its
/// payload (made non-zero), without forcing it quiet.
#[inline]
fn f32_to_f16_np(x: f32) -> u16 {
    if x.is_nan() {
        let b = x.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let r = 0x7C00 + ((b & 0x7F_FFFF) >> 13) as u16;
        sign | if r == 0x7C00 { 0x7C01 } else { r }
    } else {
        f32_to_f16(x)
    }
}

/// gguf-py's BF16 quantizer (`ggml_compute_fp32_to_bf16`): NaN → quiet NaN (truncated),
/// otherwise round to nearest even.
#[inline]
fn f32_to_bf16_np(x: f32) -> u16 {
    let n = x.to_bits();
    if n & 0x7FFF_FFFF > 0x7F80_0000 {
        return ((n >> 16) | 64) as u16;
    }
    ((n as u64 + (0x7FFF + ((n >> 16) & 1)) as u64) >> 16) as u16
}

/// NumPy's float32 → uint8/int8 cast on x86-64: truncate to int32 (out of range or NaN gives
/// `0x80000000`), keep the low byte.
#[inline(always)]
fn np_cast_u8(v: f32) -> u8 {
    if v.abs() < 2_147_483_648.0 {
        v as i32 as u8
    } else {
        0
    }
}

/// gguf-py's `np_roundf` (half away from zero) in f32: `sign(n)·(⌊|n|⌋ + ⌊2(|n| − ⌊|n|⌋)⌋)`.
#[inline(always)]
fn np_roundf(n: f32) -> f32 {
    let a = n.abs();
    let fl = a.floor();
    let b = fl + (2.0 * (a - fl)).floor();
    if n > 0.0 {
        b
    } else if n < 0.0 {
        -b
    } else if n.is_nan() {
        n
    } else {
        0.0 * b
    }
}

/// `block[argmax |block|]` with NumPy's `argmax` (first maximum; the first NaN wins).
#[inline]
fn signed_absmax(x: &[f32; QK]) -> f32 {
    let mut best = 0;
    let mut amax = x[0].abs();
    if !amax.is_nan() {
        for (i, v) in x.iter().enumerate().skip(1) {
            let a = v.abs();
            if a.is_nan() {
                best = i;
                break;
            }
            if a > amax {
                amax = a;
                best = i;
            }
        }
    }
    x[best]
}

/// `abs(block).max()` with NumPy's NaN propagation.
#[inline]
fn absmax(x: &[f32; QK]) -> f32 {
    let mut m = 0f32;
    for v in x {
        let a = v.abs();
        if a.is_nan() {
            return a;
        }
        if a > m {
            m = a;
        }
    }
    m
}

/// `(block.max(), block.min())` with NumPy's NaN propagation. Among equal values the first
/// is kept (ggml's sequential loop): for a block whose max or min is a zero of both signs,
/// NumPy's SIMD reduction keeps either sign depending on its lane order and the CPU, so that
/// sign (and the stored f16 `m = ±0` of Q4_1/Q5_1) is the one case not pinned to gguf-py.
#[inline]
fn max_min(x: &[f32; QK]) -> (f32, f32) {
    let (mut hi, mut lo) = (x[0], x[0]);
    for &v in x {
        if v.is_nan() {
            return (v, v);
        }
        if v > hi {
            hi = v;
        }
        if v < lo {
            lo = v;
        }
    }
    (hi, lo)
}

/// `np.where(d == 0, 0, 1 / d)` in f32.
#[inline(always)]
fn inverse(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

/// Pack 32 values < 16 split-halves: byte j = v[j] | v[j+16] << 4.
#[inline(always)]
fn pack_nibbles(v: &[u8; QK], out: &mut [u8]) {
    for (j, o) in out.iter_mut().take(16).enumerate() {
        *o = (v[j] & 0xF) | (v[j + 16] << 4);
    }
}

/// Bit 4 of each of 32 values, as the little-endian u32 `qh`.
#[inline(always)]
fn pack_high_bits(v: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &q) in v.iter().enumerate() {
        qh |= (((q >> 4) & 1) as u32) << j;
    }
    qh.to_le_bytes()
}

/// Q4_0 / Q5_0: `d = max / -(2^(bits−1))`, `q = min(u8(trunc(x·id + 2^(bits−1) + 0.5)), 2^bits − 1)`.
#[inline]
fn quant_sym(x: &[f32; QK], half: f32, qmax: u8) -> (f32, [u8; QK]) {
    let d = signed_absmax(x) / -half;
    let id = inverse(d);
    let bias = half + 0.5;
    let mut q = [0u8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        *q = np_cast_u8((v * id + bias).trunc()).min(qmax);
    }
    (d, q)
}

/// Q4_1 / Q5_1: `d = (max − min)/qmax`, `q = min(u8(trunc((x − min)·id + 0.5)), qmax)`.
#[inline]
fn quant_asym(x: &[f32; QK], qmax: u8) -> (f32, f32, [u8; QK]) {
    let (hi, lo) = max_min(x);
    let d = (hi - lo) / qmax as f32;
    let id = inverse(d);
    let mut q = [0u8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        *q = np_cast_u8(((v - lo) * id + 0.5).trunc()).min(qmax);
    }
    (d, lo, q)
}

fn quant_q4_0(x: &[f32; QK], out: &mut [u8; 18]) {
    let (d, q) = quant_sym(x, 8.0, 15);
    out[0..2].copy_from_slice(&f32_to_f16_np(d).to_le_bytes());
    pack_nibbles(&q, &mut out[2..18]);
}

fn quant_q4_1(x: &[f32; QK], out: &mut [u8; 20]) {
    let (d, m, q) = quant_asym(x, 15);
    out[0..2].copy_from_slice(&f32_to_f16_np(d).to_le_bytes());
    out[2..4].copy_from_slice(&f32_to_f16_np(m).to_le_bytes());
    pack_nibbles(&q, &mut out[4..20]);
}

fn quant_q5_0(x: &[f32; QK], out: &mut [u8; 22]) {
    let (d, q) = quant_sym(x, 16.0, 31);
    out[0..2].copy_from_slice(&f32_to_f16_np(d).to_le_bytes());
    out[2..6].copy_from_slice(&pack_high_bits(&q));
    pack_nibbles(&q, &mut out[6..22]);
}

fn quant_q5_1(x: &[f32; QK], out: &mut [u8; 24]) {
    let (d, m, q) = quant_asym(x, 31);
    out[0..2].copy_from_slice(&f32_to_f16_np(d).to_le_bytes());
    out[2..4].copy_from_slice(&f32_to_f16_np(m).to_le_bytes());
    out[4..8].copy_from_slice(&pack_high_bits(&q));
    pack_nibbles(&q, &mut out[8..24]);
}

fn quant_q8_0(x: &[f32; QK], out: &mut [u8; 34]) {
    let d = absmax(x) / 127.0;
    let id = inverse(d);
    out[0..2].copy_from_slice(&f32_to_f16_np(d).to_le_bytes());
    for (o, &v) in out[2..34].iter_mut().zip(x) {
        *o = np_cast_u8(np_roundf(v * id));
    }
}

/// gguf-py's MXFP4 quantizer: `e = u8(⌊log2_f32(amax)⌋ − 2 + 127)` (0 when amax is not > 0),
/// then per element the first codebook index minimising `|d·KF[k] − x|` (f32, NumPy argmin:
/// a NaN error wins).
fn quant_mxfp4(x: &[f32; QK], out: &mut [u8; 17]) {
    let amax = absmax(x);
    let e = if amax > 0.0 {
        // NumPy's float32 log2 rounds the exact log2 to f32; the f64 log2 rounded to f32 gives
        // the same floor for every positive f32 (checked exhaustively against NumPy).
        let l = ((amax as f64).log2() as f32).floor();
        np_cast_u8(l - 2.0 + 127.0)
    } else {
        0
    };
    let d = e8m0_to_f32_half(e);
    let mut dk = [0f32; 16];
    for (o, &k) in dk.iter_mut().zip(&KVALUES_MXFP4) {
        *o = d * k as f32;
    }
    let mut q = [0u8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        let mut best = 0;
        let mut berr = (dk[0] - v).abs();
        if !berr.is_nan() {
            for (k, &t) in dk.iter().enumerate().skip(1) {
                let err = (t - v).abs();
                if err.is_nan() {
                    best = k;
                    break;
                }
                if err < berr {
                    berr = err;
                    best = k;
                }
            }
        }
        *q = best as u8;
    }
    out[0] = e;
    pack_nibbles(&q, &mut out[1..17]);
}

/// Blocks of 32 inputs and their `TS` output bytes as fixed-size arrays.
fn for_quant_blocks<const TS: usize>(
    src: &[f32],
    dst: &mut [u8],
    f: fn(&[f32; QK], &mut [u8; TS]),
) {
    for (x, o) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(TS)) {
        if let (Ok(x), Ok(o)) = (<&[f32; QK]>::try_from(x), <&mut [u8; TS]>::try_from(o)) {
            f(x, o);
        }
    }
}

/// Quantize whole blocks of `ty` with the reference round-to-nearest quantizer, byte-identical
/// with `gguf.quants.quantize` (F16 as NumPy's `astype(float16)`, BF16, Q4_0, Q4_1, Q5_0,
/// Q5_1, Q8_0, MXFP4). IQ4_NL has no reference quantizer there and is rejected.
pub fn quantize_blocks(ty: GgufType, src: &[f32], dst: &mut [u8]) -> CoreResult<()> {
    check_type(ty)?;
    if ty == GgufType::IQ4_NL {
        return Err(CoreError::InvalidArgument(
            "IQ4_NL has no reference quantizer in gguf-py/ggml's _ref path (gguf.quants can only \
             dequantize it), so there is nothing to be byte-identical with; quantize to Q4_0 or \
             MXFP4 instead"
                .to_string(),
        ));
    }
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if src.len() % bs != 0 {
        return Err(CoreError::Shape(format!(
            "{} elements are not a whole number of {} blocks ({bs} elements each)",
            src.len(),
            ty.name()
        )));
    }
    let nb = src.len() / bs;
    if dst.len() != nb * ts {
        return Err(CoreError::Shape(format!(
            "output has {} bytes, {nb} {} blocks need {}",
            dst.len(),
            ty.name(),
            nb * ts
        )));
    }
    match ty {
        GgufType::F16 | GgufType::BF16 => {
            let conv = if ty == GgufType::F16 {
                f32_to_f16_np
            } else {
                f32_to_bf16_np
            };
            for (o, &x) in dst.chunks_exact_mut(2).zip(src) {
                o.copy_from_slice(&conv(x).to_le_bytes());
            }
        }
        GgufType::Q4_0 => for_quant_blocks::<18>(src, dst, quant_q4_0),
        GgufType::Q4_1 => for_quant_blocks::<20>(src, dst, quant_q4_1),
        GgufType::Q5_0 => for_quant_blocks::<22>(src, dst, quant_q5_0),
        GgufType::Q5_1 => for_quant_blocks::<24>(src, dst, quant_q5_1),
        GgufType::Q8_0 => for_quant_blocks::<34>(src, dst, quant_q8_0),
        GgufType::MXFP4 => for_quant_blocks::<17>(src, dst, quant_mxfp4),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    const TYPES: [GgufType; 9] = [
        GgufType::F16,
        GgufType::BF16,
        GgufType::Q4_0,
        GgufType::Q4_1,
        GgufType::Q5_0,
        GgufType::Q5_1,
        GgufType::Q8_0,
        GgufType::IQ4_NL,
        GgufType::MXFP4,
    ];

    fn deq(ty: GgufType, src: &[u8]) -> Vec<f32> {
        let n = src.len() / ty.type_size() * ty.block_size();
        let mut out = vec![0f32; n];
        dequantize_blocks(ty, src, &mut out).unwrap();
        out
    }

    fn quant(ty: GgufType, x: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; x.len() / ty.block_size() * ty.type_size()];
        quantize_blocks(ty, x, &mut out).unwrap();
        out
    }

    fn f16b(x: f32) -> [u8; 2] {
        f32_to_f16(x).to_le_bytes()
    }

    #[test]
    fn branchless_f16_matches_exact_conversion() {
        for h in 0..=u16::MAX {
            assert_eq!(
                f16_to_f32_branchless(h).to_bits(),
                f16_to_f32(h).to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn f16_and_bf16_elements() {
        let src = [0x00, 0x3C, 0x01, 0x00, 0x01, 0x7C, 0x00, 0xFC];
        let y = deq(GgufType::F16, &src);
        assert_eq!(y[0], 1.0);
        assert_eq!(y[1], 2f32.powi(-24)); // smallest subnormal
        assert_eq!(y[2].to_bits(), 0x7F80_2000); // signalling NaN kept as it is
        assert_eq!(y[3], f32::NEG_INFINITY);
        let y = deq(GgufType::BF16, &[0x80, 0x3F, 0xC0, 0xFF, 0x01, 0x00]);
        assert_eq!(y[0], 1.0);
        assert_eq!(y[1].to_bits(), 0xFFC0_0000);
        assert_eq!(y[2].to_bits(), 0x0001_0000);
    }

    #[test]
    fn bf16_quantization_rounds_to_even_and_quiets_nan() {
        let bits = |b: u32| f32_to_bf16_np(f32::from_bits(b));
        assert_eq!(bits(0x3F80_8000), 0x3F80); // tie, even stays
        assert_eq!(bits(0x3F81_8000), 0x3F82); // tie, odd rounds up
        assert_eq!(bits(0x3F80_8001), 0x3F81);
        assert_eq!(bits(0x7F7F_FFFF), 0x7F80); // overflows to +inf
        assert_eq!(bits(0x7F80_0001), 0x7FC0); // signalling NaN → quiet, payload truncated
        assert_eq!(bits(0xFFA1_2345), 0xFFE1);
        let q = quant(GgufType::BF16, &[1.0, -2.5]);
        assert_eq!(q, [0x80, 0x3F, 0x20, 0xC0]);
    }

    #[test]
    fn f16_quantization_keeps_numpy_nan_payloads() {
        assert_eq!(f32_to_f16_np(f32::from_bits(0x7F80_0001)), 0x7C01);
        assert_eq!(f32_to_f16_np(f32::from_bits(0x7FA0_0000)), 0x7D00);
        assert_eq!(f32_to_f16_np(f32::from_bits(0xFFC0_0001)), 0xFE00);
        assert_eq!(f32_to_f16_np(65520.0), 0x7C00);
        assert_eq!(f32_to_f16_np(65519.0), 0x7BFF);
    }

    #[test]
    fn q4_0_hand_computed() {
        let mut b = [0u8; 18];
        b[..2].copy_from_slice(&f16b(0.5));
        for j in 0..16 {
            b[2 + j] = (j as u8) | ((15 - j as u8) << 4);
        }
        let y = deq(GgufType::Q4_0, &b);
        for j in 0..16 {
            assert_eq!(y[j], 0.5 * (j as f32 - 8.0));
            assert_eq!(y[16 + j], 0.5 * (7.0 - j as f32));
        }
    }

    #[test]
    fn q4_1_hand_computed() {
        let mut b = [0u8; 20];
        b[..2].copy_from_slice(&f16b(0.25));
        b[2..4].copy_from_slice(&f16b(-1.0));
        b[4] = 0x3A; // element 0 ← 0xA, element 16 ← 0x3
        let y = deq(GgufType::Q4_1, &b);
        assert_eq!(y[0], 0.25 * 10.0 - 1.0);
        assert_eq!(y[16], 0.25 * 3.0 - 1.0);
        assert_eq!(y[1], -1.0);
    }

    #[test]
    fn q5_high_bits() {
        let mut b = [0u8; 22];
        b[..2].copy_from_slice(&f16b(2.0));
        // qh: bit 0 (element 0), bit 17 (element 17), bit 31 (element 31).
        let qh: u32 = 1 | (1 << 17) | (1 << 31);
        b[2..6].copy_from_slice(&qh.to_le_bytes());
        b[6] = 0x21; // element 0 low nibble 1, element 16 high nibble 2
        b[6 + 15] = 0xF0; // element 15 ← 0, element 31 ← 0xF
        let y = deq(GgufType::Q5_0, &b);
        assert_eq!(y[0], 2.0 * (17.0 - 16.0));
        assert_eq!(y[16], 2.0 * (2.0 - 16.0));
        assert_eq!(y[17], 2.0 * (16.0 - 16.0));
        assert_eq!(y[31], 2.0 * (31.0 - 16.0));
        assert_eq!(y[15], -32.0);

        let mut b = [0u8; 24];
        b[..2].copy_from_slice(&f16b(1.0));
        b[2..4].copy_from_slice(&f16b(0.5));
        b[4..8].copy_from_slice(&(1u32 << 20).to_le_bytes());
        b[8 + 4] = 0x70; // element 20 ← 7 | 16
        let y = deq(GgufType::Q5_1, &b);
        assert_eq!(y[20], 23.5);
        assert_eq!(y[4], 0.5);
    }

    #[test]
    fn q8_0_and_iq4_nl_hand_computed() {
        let mut b = [0u8; 34];
        b[..2].copy_from_slice(&f16b(0.125));
        b[2] = 0x80; // −128
        b[3] = 127;
        let y = deq(GgufType::Q8_0, &b);
        assert_eq!((y[0], y[1], y[2]), (-16.0, 15.875, 0.0));

        let mut b = [0u8; 18];
        b[..2].copy_from_slice(&f16b(1.0));
        b[2] = 0xF0;
        let y = deq(GgufType::IQ4_NL, &b);
        assert_eq!((y[0], y[16], y[1]), (-127.0, 113.0, -127.0));
    }

    #[test]
    fn mxfp4_scales() {
        assert_eq!(e8m0_to_f32_half(0).to_bits(), 0x0020_0000); // 2^-128
        assert_eq!(e8m0_to_f32_half(1).to_bits(), 0x0040_0000); // 2^-127
        assert_eq!(e8m0_to_f32_half(2), 2f32.powi(-126));
        assert_eq!(e8m0_to_f32_half(128), 1.0);
        assert_eq!(e8m0_to_f32_half(255), 2f32.powi(127));
        let mut b = [0u8; 17];
        b[0] = 129; // d = 2
        b[1] = 0x97; // element 0 ← 7 (12), element 16 ← 9 (−1)
        let y = deq(GgufType::MXFP4, &b);
        assert_eq!((y[0], y[16], y[1]), (24.0, -2.0, 0.0));
        b[0] = 0; // subnormal d: 2^-128 · 12 = 3·2^-126, exact
        let y = deq(GgufType::MXFP4, &b);
        assert_eq!(y[0], 12.0 * 2f32.powi(-128));
        assert_eq!(y[16], -(2f32.powi(-128)));
    }

    #[test]
    fn non_finite_scales_propagate() {
        let mut b = [0u8; 18];
        b[..2].copy_from_slice(&0x7C00u16.to_le_bytes()); // +inf
        b[2] = 0x08; // element 0 ← 8 → 0, element 16 ← 0 → −8
        let y = deq(GgufType::Q4_0, &b);
        assert!(y[0].is_nan());
        assert_eq!(y[16], f32::NEG_INFINITY);
        b[..2].copy_from_slice(&0x7E01u16.to_le_bytes()); // NaN with a payload
        let y = deq(GgufType::Q4_0, &b);
        assert_eq!(y[5].to_bits() & 0x7FFF_FFFF, 0x7FC0_2000);
    }

    #[test]
    fn q4_0_quantization_hand_computed() {
        // max |x| = −4 (negative): d = −4 / −8 = 0.5, id = 2, q = trunc(2x + 8.5).
        let mut x = [0f32; 32];
        x[3] = -4.0;
        x[5] = 1.2; // 2.4 + 8.5 = 10.9 → 10
        x[20] = 3.9; // 7.8 + 8.5 = 16.3 → 16 → clipped 15
        let q = quant(GgufType::Q4_0, &x);
        assert_eq!(&q[..2], &f16b(0.5));
        assert_eq!(q[2 + 3] & 0xF, 0);
        assert_eq!(q[2 + 5] & 0xF, 10);
        assert_eq!(q[2 + 4] >> 4, 15);
        assert_eq!(q[2] & 0xF, 8);
        // All zeros: d = 0 / −8 = −0 → f16 0x8000, every q = 8.
        let q = quant(GgufType::Q4_0, &[0.0; 32]);
        assert_eq!(&q[..2], &[0x00, 0x80]);
        assert!(q[2..].iter().all(|&b| b == 0x88));
    }

    #[test]
    fn q4_1_min_of_signed_zeros_is_the_first() {
        let mut x = [0f32; 32];
        x[0] = -0.0;
        let q = quant(GgufType::Q4_1, &x);
        assert_eq!(&q[..4], &[0, 0, 0x00, 0x80]); // d = +0, m = −0
        x[0] = 0.0;
        x[1] = -0.0;
        let q = quant(GgufType::Q4_1, &x);
        assert_eq!(&q[..4], &[0, 0, 0, 0]);
    }

    #[test]
    fn q8_0_quantization_rounds_half_away() {
        let mut x = [0f32; 32];
        x[0] = 127.0; // d = 1
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = -0.4;
        let q = quant(GgufType::Q8_0, &x);
        assert_eq!(&q[..2], &f16b(1.0));
        assert_eq!(q[2..6], [127, 3, (-3i8) as u8, 0]);
    }

    #[test]
    fn mxfp4_quantization_hand_computed() {
        let mut x = [0f32; 32];
        x[0] = 6.0; // log2 6 = 2.58 → e = 2 − 2 + 127 = 127, d = 0.5
        x[1] = -1.25; // tie between −1 (index 10) and −1.5 (index 11): the first wins
        x[2] = 0.25; // tie between 0 (index 0) and 0.5 (index 1)
        let q = quant(GgufType::MXFP4, &x);
        assert_eq!(q[0], 127);
        assert_eq!(q[1] & 0xF, 7); // 12·0.5 = 6
        assert_eq!(q[2] & 0xF, 10);
        assert_eq!(q[3] & 0xF, 0);
        let q = quant(GgufType::MXFP4, &[0.0; 32]);
        assert!(q.iter().all(|&b| b == 0));
    }

    #[test]
    fn avx2_matches_portable_on_random_blocks() {
        let mut rng = Stream::new(7, 0);
        for ty in TYPES {
            let n = 257 * ty.type_size();
            let src: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            let fast = deq(ty, &src);
            let mut slow = vec![0f32; fast.len()];
            dequant_portable_outlined(ty, &src, &mut slow);
            // Both d and m NaN (Q4_1/Q5_1): either payload is right.
            let either_nan = matches!(ty, GgufType::Q4_1 | GgufType::Q5_1);
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                if !(either_nan && a.is_nan() && b.is_nan()) {
                    assert_eq!(a.to_bits(), b.to_bits(), "{} element {i}", ty.name());
                }
            }
            // Streaming stores, into an aligned and a misaligned output: the same bits.
            let mut buf = vec![0f32; fast.len() + 4];
            let off = (4 - (buf.as_ptr() as usize % 16) / 4) % 4;
            for start in [off, off + 1] {
                let out = &mut buf[start..start + fast.len()];
                dequantize_blocks_streaming(ty, &src, out).unwrap();
                for (i, (a, b)) in out.iter().zip(&fast).enumerate() {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{} streaming element {i}",
                        ty.name()
                    );
                }
            }
        }
    }

    #[test]
    fn every_f16_converts_exactly_on_every_path() {
        let src: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        let fast = deq(GgufType::F16, &src);
        let mut slow = vec![0f32; fast.len()];
        dequant_portable_outlined(GgufType::F16, &src, &mut slow);
        for h in 0..=u16::MAX {
            let want = f16_to_f32(h).to_bits();
            assert_eq!(fast[h as usize].to_bits(), want, "{h:#06x}");
            assert_eq!(slow[h as usize].to_bits(), want, "{h:#06x}");
        }
    }

    #[test]
    fn quantize_dequantize_round_trip_error_is_small() {
        let mut rng = Stream::new(3, 1);
        let x: Vec<f32> = (0..32 * 64)
            .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
            .collect();
        for (ty, tol) in [
            (GgufType::F16, 1e-3),
            (GgufType::BF16, 8e-3),
            (GgufType::Q4_0, 0.13),
            (GgufType::Q4_1, 0.07),
            (GgufType::Q5_0, 0.07),
            (GgufType::Q5_1, 0.04),
            (GgufType::Q8_0, 0.005),
            (GgufType::MXFP4, 0.26),
        ] {
            let y = deq(ty, &quant(ty, &x));
            let err = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err <= tol, "{}: max error {err}", ty.name());
        }
    }

    #[test]
    fn bad_lengths_are_errors_not_panics() {
        for ty in TYPES {
            let ts = ty.type_size();
            let mut out = vec![0f32; 64];
            let src = vec![0u8; 2 * ts + 1];
            assert!(matches!(
                dequantize_blocks(ty, &src, &mut out),
                Err(CoreError::Truncated(_))
            ));
            let src = vec![0u8; 2 * ts];
            let mut short = vec![0f32; 2 * ty.block_size() - 1];
            assert!(matches!(
                dequantize_blocks(ty, &src, &mut short),
                Err(CoreError::Shape(_))
            ));
            assert!(matches!(dequantize_blocks(ty, &src[..0], &mut []), Ok(())));
            if ty != GgufType::IQ4_NL {
                let x = vec![0f32; ty.block_size() + 1];
                let mut o = vec![0u8; 4 * ts];
                if ty.block_size() > 1 {
                    assert!(matches!(
                        quantize_blocks(ty, &x, &mut o),
                        Err(CoreError::Shape(_))
                    ));
                }
                let x = vec![0f32; ty.block_size()];
                assert!(matches!(
                    quantize_blocks(ty, &x, &mut o),
                    Err(CoreError::Shape(_))
                ));
            }
        }
        let mut out = vec![0f32; 256];
        assert!(matches!(
            dequantize_blocks(GgufType::Q4_K, &[0; 144], &mut out),
            Err(CoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            quantize_blocks(GgufType::IQ4_NL, &[0.0; 32], &mut [0; 18]),
            Err(CoreError::InvalidArgument(m)) if m.contains("IQ4_NL has no reference quantizer")
        ));
    }
}
