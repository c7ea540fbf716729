//! 32-element GGUF blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) and the float types
//! (F32, F16, BF16): dequantization into f32, f16 or bf16, and the reference
//! (round-to-nearest) quantizers.
//!
//! Every kernel mirrors the float32 operation order of gguf-py's `gguf/quants.py` (which is
//! bit-identical with ggml's `dequantize_row_*` / `quantize_row_*_ref`):
//!
//! * dequantization is `d·q` (Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4) or `(d·q) + m` (Q4_1, Q5_1) in
//!   f32. Every product is exact (11-bit scale × ≤ 7-bit integer), so only the add rounds, and
//!   Inf/NaN scales propagate exactly as in the reference (`Inf·0 = NaN`, NaN payloads kept).
//!   An f16 or bf16 output rounds that exact f32 value once (nearest even).
//! * quantization repeats gguf-py's f32 arithmetic step by step (`max / -8`, `1/d`,
//!   `trunc(x·id + 8.5)`, `np_roundf`, the f32 `log2` of MXFP4), NumPy's float→uint8 cast
//!   (truncate to int32, keep the low byte; out of range or NaN → 0) and NumPy's
//!   `astype(float16)` (round to nearest even; NaN payloads kept without forcing them quiet).
//!
//! Speed: the portable kernels work on fixed-size blocks with constant trip counts (no bounds
//! checks in the inner loops, so they vectorise); on x86-64 with AVX2 + F16C the kernels use
//! explicit intrinsics (nibbles → `pshufb` codebook/offset lookup → widen → convert →
//! multiply → round into the output type), F16 uses `vcvtph2ps` (with signalling NaNs kept
//! signalling, as NumPy does), and [`dequantize_blocks_into`] offers plain or non-temporal
//! stores (for outputs far larger than the last-level cache).
//!
//! NaN payloads: when `d·q` and `m` of a Q4_1/Q5_1 block are both NaN (m NaN, d NaN or ±Inf),
//! which payload the sum keeps is not defined (gguf-py itself returns either one depending on
//! the number of rows); every other NaN matches the reference bit for bit.

use super::gguf::GgufType;
use super::half::{f16_to_f32, f32_to_f16};
use super::output::OutElem;
use super::simd::Out;
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
// Portable kernels (one block in, 32 values out, each rounded once into the output type `O`).
// ---------------------------------------------------------------------------------------------

/// Blocks of `TS` bytes and their 32 outputs as fixed-size arrays.
#[inline(always)]
fn for_blocks<const TS: usize, O: OutElem>(
    src: &[u8],
    dst: &mut [O],
    mut f: impl FnMut(&[u8; TS], &mut [O; QK]),
) {
    for (s, d) in src.chunks_exact(TS).zip(dst.chunks_exact_mut(QK)) {
        if let (Ok(s), Ok(d)) = (<&[u8; TS]>::try_from(s), <&mut [O; QK]>::try_from(d)) {
            f(s, d);
        }
    }
}

/// Split-halves 4-bit block through a 16-entry table: y[j] = d·T[lo(qs[j])],
/// y[j+16] = d·T[hi(qs[j])] (IQ4_NL, MXFP4). The product is formed per element: a table of
/// `d·T[k]` would let the compiler fold `d·1` to `d`, which keeps a signalling NaN signalling
/// where the reference's multiplication quiets it.
#[inline(always)]
fn lut4<O: OutElem>(qs: &[u8], d: f32, table: &[i8; 16], y: &mut [O; QK]) {
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
        *l = O::from_f32(d * table[(q & 0xF) as usize] as f32);
        *h = O::from_f32(d * table[(q >> 4) as usize] as f32);
    }
}

/// Q4_0: d @0, qs[16] @2; y = d·(q − 8).
#[inline(always)]
fn block_q4_0<O: OutElem>(b: &[u8; 18], y: &mut [O; QK]) {
    let d = f16_le(b[0], b[1]);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[2..18]) {
        *l = O::from_f32(d * ((q & 0xF) as i32 - 8) as f32);
        *h = O::from_f32(d * ((q >> 4) as i32 - 8) as f32);
    }
}

/// Q4_1: d @0, m @2, qs[16] @4; y = (d·q) + m.
#[inline(always)]
fn block_q4_1<O: OutElem>(b: &[u8; 20], y: &mut [O; QK]) {
    let d = f16_le(b[0], b[1]);
    let m = f16_le(b[2], b[3]);
    let (lo, hi) = y.split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b[4..20]) {
        *l = O::from_f32(d * (q & 0xF) as f32 + m);
        *h = O::from_f32(d * (q >> 4) as f32 + m);
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
fn block_q5_0<O: OutElem>(b: &[u8; 22], y: &mut [O; QK]) {
    let d = f16_le(b[0], b[1]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let v = q5_values(qh, &b[6..22]);
    for (o, &q) in y.iter_mut().zip(&v) {
        *o = O::from_f32(d * (q as i32 - 16) as f32);
    }
}

/// Q5_1: d @0, m @2, qh u32 @4, qs[16] @8; y = (d·q) + m.
#[inline(always)]
fn block_q5_1<O: OutElem>(b: &[u8; 24], y: &mut [O; QK]) {
    let d = f16_le(b[0], b[1]);
    let m = f16_le(b[2], b[3]);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let v = q5_values(qh, &b[8..24]);
    for (o, &q) in y.iter_mut().zip(&v) {
        *o = O::from_f32(d * q as f32 + m);
    }
}

/// Q8_0: d @0, qs i8[32] @2; y = q·d.
#[inline(always)]
fn block_q8_0<O: OutElem>(b: &[u8; 34], y: &mut [O; QK]) {
    let d = f16_le(b[0], b[1]);
    for (o, &q) in y.iter_mut().zip(&b[2..34]) {
        *o = O::from_f32((q as i8) as f32 * d);
    }
}

/// IQ4_NL: d @0, qs[16] @2; y = d·K[nibble].
#[inline(always)]
fn block_iq4_nl<O: OutElem>(b: &[u8; 18], y: &mut [O; QK]) {
    lut4(&b[2..18], f16_le(b[0], b[1]), &KVALUES_IQ4NL, y);
}

/// MXFP4: e (E8M0) @0, qs[16] @1; y = 2^(e−128)·KF[nibble].
#[inline(always)]
fn block_mxfp4<O: OutElem>(b: &[u8; 17], y: &mut [O; QK]) {
    lut4(&b[1..17], e8m0_to_f32_half(b[0]), &KVALUES_MXFP4, y);
}

/// F32 elements (4 bytes each).
#[inline(always)]
fn dequant_f32<O: OutElem>(src: &[u8], dst: &mut [O]) {
    for (o, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
        if let Ok(b) = <[u8; 4]>::try_from(b) {
            *o = O::from_f32(f32::from_le_bytes(b));
        }
    }
}

/// F16 elements (2 bytes each).
#[inline(always)]
fn dequant_f16<O: OutElem>(src: &[u8], dst: &mut [O]) {
    for (o, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        if let Ok(h) = <[u8; 2]>::try_from(h) {
            *o = O::from_f32(f16_to_f32_branchless(u16::from_le_bytes(h)));
        }
    }
}

/// BF16 elements: the f32 bits are the u16 shifted left by 16.
#[inline(always)]
fn dequant_bf16<O: OutElem>(src: &[u8], dst: &mut [O]) {
    for (o, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        if let Ok(h) = <[u8; 2]>::try_from(h) {
            *o = O::from_f32(f32::from_bits((u16::from_le_bytes(h) as u32) << 16));
        }
    }
}

/// Portable dequantization of whole blocks (lengths checked by the caller).
#[inline(always)]
fn dequant_portable<O: OutElem>(ty: GgufType, src: &[u8], dst: &mut [O]) {
    match ty {
        GgufType::F32 => dequant_f32(src, dst),
        GgufType::F16 => dequant_f16(src, dst),
        GgufType::BF16 => dequant_bf16(src, dst),
        GgufType::Q4_0 => for_blocks::<18, O>(src, dst, block_q4_0),
        GgufType::Q4_1 => for_blocks::<20, O>(src, dst, block_q4_1),
        GgufType::Q5_0 => for_blocks::<22, O>(src, dst, block_q5_0),
        GgufType::Q5_1 => for_blocks::<24, O>(src, dst, block_q5_1),
        GgufType::Q8_0 => for_blocks::<34, O>(src, dst, block_q8_0),
        GgufType::IQ4_NL => for_blocks::<18, O>(src, dst, block_iq4_nl),
        GgufType::MXFP4 => for_blocks::<17, O>(src, dst, block_mxfp4),
        _ => {}
    }
}

/// The portable kernels, not inlined (the reference the AVX2 path is tested against).
#[cfg_attr(not(test), allow(dead_code))]
fn dequant_portable_outlined<O: OutElem>(ty: GgufType, src: &[u8], dst: &mut [O]) {
    dequant_portable(ty, src, dst)
}

// ---------------------------------------------------------------------------------------------
// AVX2 kernels.
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Every helper carries `#[target_feature(enable = "avx2,f16c")]` and there are no
    //! closures: a closure does not inherit its function's target features, and the
    //! intrinsics it calls would then not be inlined.

    use super::*;
    use crate::dequant::simd::x86::{fence, put16, store16, store8};
    use std::arch::x86_64::*;

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
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn nib4<
        O: Out,
        const TS: usize,
        const QS: usize,
        const E8M0: bool,
        const MIN: bool,
        const NT: bool,
    >(
        src: &[u8],
        dst: &mut [O],
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
            put16::<O, NT, false, MIN>(out, _mm_shuffle_epi8(t, lo), d, m);
            put16::<O, NT, false, MIN>(out.add(16), _mm_shuffle_epi8(t, hi), d, m);
        }
    }

    /// Q5 blocks of `TS` bytes: d (and m when `MIN`) first, qh u32 at `QH`, qs at `QS`;
    /// `offset` is subtracted from the 5-bit values (16 for Q5_0, 0 for Q5_1).
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn q5<
        O: Out,
        const TS: usize,
        const QH: usize,
        const QS: usize,
        const MIN: bool,
        const NT: bool,
    >(
        src: &[u8],
        dst: &mut [O],
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
            put16::<O, NT, false, MIN>(out, lo, d, m);
            put16::<O, NT, false, MIN>(out.add(16), hi, d, m);
        }
    }

    /// Q8_0 blocks: d @0, 32 signed bytes @2; `q·d`.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn q8_0<O: Out, const NT: bool>(src: &[u8], dst: &mut [O]) {
        for (b, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(QK)) {
            if b.len() < 34 || y.len() < QK {
                continue; // never (see nib4)
            }
            let d = _mm256_set1_ps(f16_le(b[0], b[1]));
            let p = b.as_ptr().add(2);
            let out = y.as_mut_ptr();
            for k in 0..2 {
                let v = _mm_loadu_si128(p.add(16 * k).cast());
                let x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
                let y = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(v, v)));
                store16::<O, NT>(out.add(16 * k), _mm256_mul_ps(x, d), _mm256_mul_ps(y, d));
            }
        }
    }

    /// F32 elements, 8 at a time.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn f32s<O: Out, const NT: bool>(src: &[u8], dst: &mut [O]) {
        let mut s = src.chunks_exact(32);
        let mut d = dst.chunks_exact_mut(8);
        for (x, y) in (&mut s).zip(&mut d) {
            if x.len() < 32 || y.len() < 8 {
                continue; // never
            }
            store8::<O, NT>(y.as_mut_ptr(), _mm256_loadu_ps(x.as_ptr().cast()));
        }
        dequant_f32(s.remainder(), d.into_remainder());
    }

    /// F16 elements, 16 at a time, with F16C's `vcvtph2ps` (exact, subnormals included). It
    /// quiets signalling NaNs, which NumPy's `astype` keeps, so the quiet bit of a NaN lane is
    /// put back to the f16's own bit 9.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn f16<O: Out, const NT: bool>(src: &[u8], dst: &mut [O]) {
        /// 8 f16 → 8 f32, signalling NaNs kept signalling.
        #[target_feature(enable = "avx2,f16c")]
        #[inline]
        unsafe fn widen(h: __m128i) -> __m256 {
            let f = _mm256_cvtph_ps(h);
            let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(f, f));
            // Bit 22 set where the f16's quiet bit (9) is clear.
            let quiet = _mm256_set1_epi32(0x0040_0000);
            let signalling =
                _mm256_andnot_si256(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 13), quiet);
            _mm256_xor_ps(f, _mm256_castsi256_ps(_mm256_and_si256(nan, signalling)))
        }
        let mut s = src.chunks_exact(32);
        let mut d = dst.chunks_exact_mut(16);
        for (h, y) in (&mut s).zip(&mut d) {
            if h.len() < 32 || y.len() < 16 {
                continue; // never
            }
            let a = _mm_loadu_si128(h.as_ptr().cast());
            let b = _mm_loadu_si128(h.as_ptr().add(16).cast());
            store16::<O, NT>(y.as_mut_ptr(), widen(a), widen(b));
        }
        dequant_f16(s.remainder(), d.into_remainder());
    }

    /// BF16 elements, 16 at a time: widen, shift left by 16.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn bf16<O: Out, const NT: bool>(src: &[u8], dst: &mut [O]) {
        let mut s = src.chunks_exact(32);
        let mut d = dst.chunks_exact_mut(16);
        for (h, y) in (&mut s).zip(&mut d) {
            if h.len() < 32 || y.len() < 16 {
                continue; // never
            }
            let a = _mm256_cvtepu16_epi32(_mm_loadu_si128(h.as_ptr().cast()));
            let b = _mm256_cvtepu16_epi32(_mm_loadu_si128(h.as_ptr().add(16).cast()));
            let (a, b) = (_mm256_slli_epi32(a, 16), _mm256_slli_epi32(b, 16));
            store16::<O, NT>(
                y.as_mut_ptr(),
                _mm256_castsi256_ps(a),
                _mm256_castsi256_ps(b),
            );
        }
        dequant_bf16(s.remainder(), d.into_remainder());
    }

    /// Dequantize whole blocks with AVX2 and F16C (lengths checked by the caller); `NT`:
    /// non-temporal stores, `dst` must then be 16-byte aligned.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn dequantize<O: Out, const NT: bool>(
        ty: GgufType,
        src: &[u8],
        dst: &mut [O],
    ) {
        match ty {
            GgufType::F32 => f32s::<O, NT>(src, dst),
            GgufType::F16 => f16::<O, NT>(src, dst),
            GgufType::BF16 => bf16::<O, NT>(src, dst),
            GgufType::Q4_0 => nib4::<O, 18, 2, false, false, NT>(src, dst, &OFFSET8),
            GgufType::IQ4_NL => nib4::<O, 18, 2, false, false, NT>(src, dst, &KVALUES_IQ4NL),
            GgufType::MXFP4 => nib4::<O, 17, 1, true, false, NT>(src, dst, &KVALUES_MXFP4),
            GgufType::Q4_1 => nib4::<O, 20, 4, false, true, NT>(src, dst, &IDENTITY16),
            GgufType::Q5_0 => q5::<O, 22, 2, 6, false, NT>(src, dst, 16),
            GgufType::Q5_1 => q5::<O, 24, 4, 8, true, NT>(src, dst, 0),
            GgufType::Q8_0 => q8_0::<O, NT>(src, dst),
            _ => {}
        }
        fence::<NT>();
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points.
// ---------------------------------------------------------------------------------------------

/// `InvalidArgument` unless `ty` is one of this module's types.
fn check_type(ty: GgufType) -> CoreResult<()> {
    match ty {
        GgufType::F32
        | GgufType::F16
        | GgufType::BF16
        | GgufType::Q4_0
        | GgufType::Q4_1
        | GgufType::Q5_0
        | GgufType::Q5_1
        | GgufType::Q8_0
        | GgufType::IQ4_NL
        | GgufType::MXFP4 => Ok(()),
        other => Err(CoreError::InvalidArgument(format!(
            "{} is not a 32-element block type or a float type",
            other.name()
        ))),
    }
}

/// Check `ty` and that `src` (whole blocks) and `dst` (`n_dst` elements) hold the same number
/// of blocks.
fn check_dequant_lengths(ty: GgufType, src: &[u8], n_dst: usize) -> CoreResult<()> {
    check_type(ty)?;
    let nb = super::gguf::n_blocks(ty, src.len())?;
    let n = nb * ty.block_size();
    if n_dst != n {
        return Err(CoreError::Shape(format!(
            "output has {n_dst} elements, {nb} {} blocks hold {n}",
            ty.name()
        )));
    }
    Ok(())
}

/// Dequantize whole blocks of `ty` (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL,
/// MXFP4) into float32: `src.len()` a multiple of the type's byte size,
/// `dst.len() == n_blocks·block_size`. Bit-identical with gguf-py's `dequantize` (and ggml's
/// `dequantize_row_*`), Inf/NaN scales and subnormals included.
pub fn dequantize_blocks(ty: GgufType, src: &[u8], dst: &mut [f32]) -> CoreResult<()> {
    dequantize_blocks_into(ty, src, dst, false)
}

/// [`dequantize_blocks`] into any output type `O` (each exact f32 value rounded once), with
/// plain stores or (`stream`) non-temporal stores that bypass the caches: faster for a large,
/// already mapped output that is not read right away, slower for a fresh allocation or a tile
/// read at once (see `gguf_superblock::dequantize_blocks_stores`). Streaming needs AVX2/F16C
/// and a 16-byte aligned `dst`; otherwise plain stores are used. The values are identical
/// either way.
pub(crate) fn dequantize_blocks_into<O: Out>(
    ty: GgufType,
    src: &[u8],
    dst: &mut [O],
    stream: bool,
) -> CoreResult<()> {
    check_dequant_lengths(ty, src, dst.len())?;
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2_f16c() {
            // SAFETY: the CPU supports AVX2 and F16C (checked just above); every load and
            // store stays inside the fixed-size block and output chunks handed to the kernels;
            // streaming stores are used only when `dst` is 16-byte aligned, and they land at
            // multiples of 8 elements from its start (16 or 32 bytes), so they stay aligned.
            unsafe {
                if stream && super::simd::stream_aligned(dst.as_ptr()) {
                    avx2::dequantize::<O, true>(ty, src, dst);
                } else {
                    avx2::dequantize::<O, false>(ty, src, dst);
                }
            }
            return Ok(());
        }
    }
    let _ = stream;
    dequant_portable(ty, src, dst);
    Ok(())
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
    use crate::dequant::output::{Bf16, F16};
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

    /// The bits of `v` (f32 bits, or the u16 pattern widened).
    fn bits<O: Out>(v: &[O]) -> Vec<u32> {
        v.iter().map(|x| x.bits()).collect()
    }

    /// Every path into output type `O` (AVX2 plain, AVX2 streaming into an aligned and a
    /// misaligned buffer, portable) gives the same bits, and they are the f32 result rounded
    /// once with `O::from_f32`. Q4_1/Q5_1 NaNs whose payload is undefined are compared as NaNs.
    fn check_paths<O: Out>(ty: GgufType, src: &[u8], want32: &[f32]) {
        let n = want32.len();
        let either_nan = matches!(ty, GgufType::Q4_1 | GgufType::Q5_1);
        let same = |got: &[u32], want: &[u32], what: &str| {
            for (i, ((a, b), w)) in got.iter().zip(want).zip(want32).enumerate() {
                if !(either_nan && w.is_nan()) {
                    assert_eq!(a, b, "{} {} {what} element {i}", ty.name(), O::NAME);
                }
            }
        };
        let want: Vec<u32> = want32.iter().map(|&x| O::from_f32(x).bits()).collect();
        let mut slow = vec![O::default(); n];
        dequant_portable_outlined(ty, src, &mut slow);
        same(&bits(&slow), &want, "portable");
        let mut buf = vec![O::default(); n + 16];
        let off = (0..16)
            .find(|&k| (buf[k..].as_ptr() as usize) % 32 == 0)
            .unwrap();
        for start in [off, off + 1, off + 8] {
            for stream in [false, true] {
                let out = &mut buf[start..start + n];
                dequantize_blocks_into(ty, src, out, stream).unwrap();
                same(&bits(out), &want, &format!("stream={stream} at +{start}"));
            }
        }
    }

    #[test]
    fn every_path_and_output_type_agree_on_random_blocks() {
        let mut rng = Stream::new(7, 0);
        for ty in TYPES.into_iter().chain([GgufType::F32]) {
            let n = 257 * ty.type_size() + if ty.block_size() == 1 { 4 * 13 } else { 0 };
            let mut src: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            // Special f16 scales (subnormal, ±Inf, NaN, values rounding to f16/bf16 ties).
            if ty.block_size() == 32 && ty != GgufType::MXFP4 {
                let specials = [0x0001u16, 0x03FF, 0x7C00, 0xFC00, 0x7E01, 0x7C01, 0x7BFF];
                for (k, b) in src.chunks_exact_mut(ty.type_size()).enumerate() {
                    if k % 3 == 0 {
                        let v = specials[(k / 3) % specials.len()];
                        b[..2].copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            let mut want32 = vec![0f32; n / ty.type_size() * ty.block_size()];
            dequant_portable_outlined(ty, &src, &mut want32);
            let fast = deq(ty, &src);
            let either_nan = matches!(ty, GgufType::Q4_1 | GgufType::Q5_1);
            for (i, (a, b)) in fast.iter().zip(&want32).enumerate() {
                if !(either_nan && a.is_nan() && b.is_nan()) {
                    assert_eq!(a.to_bits(), b.to_bits(), "{} element {i}", ty.name());
                }
            }
            check_paths::<f32>(ty, &src, &want32);
            check_paths::<F16>(ty, &src, &want32);
            check_paths::<Bf16>(ty, &src, &want32);
        }
    }

    #[test]
    fn f16_and_bf16_rounding_of_every_f16_pattern_and_ties() {
        // Every f16 as F16 input (exact in f32): f16 output gives it back (NaN made quiet).
        let src: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        let mut out = vec![F16::default(); 1 << 16];
        dequantize_blocks_into(GgufType::F16, &src, &mut out, false).unwrap();
        for h in 0..=u16::MAX {
            let want = if f16_to_f32(h).is_nan() { h | 0x200 } else { h };
            assert_eq!(out[h as usize].0, want, "{h:#06x}");
        }
        // f32 inputs on f16 and bf16 ties, overflow, subnormal results, NaNs.
        let xs: [u32; 12] = [
            0x3F80_1000, // 1 + 2^-11: f16 tie → 1.0
            0x3F80_3000, // 1 + 3·2^-11: f16 tie → up
            0x3F80_8000, // bf16 tie → 1.0
            0x3F81_8000, // bf16 tie → up
            0x477F_F000, // 65520 → f16 Inf
            0x7F7F_FFFF, // f32 max → bf16 Inf
            0x3300_0000, // 2^-25: f16 tie → 0
            0x3300_0001, // just above → smallest f16 subnormal
            0x0000_0001, // f32 subnormal
            0x7F80_0001, // signalling NaN
            0xFFC1_2345, // negative quiet NaN with a payload
            0x8000_0000, // −0
        ];
        let src: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let want32: Vec<f32> = xs.iter().map(|&x| f32::from_bits(x)).collect();
        check_paths::<F16>(GgufType::F32, &src, &want32);
        check_paths::<Bf16>(GgufType::F32, &src, &want32);
        let mut h = vec![F16::default(); xs.len()];
        let mut b = vec![Bf16::default(); xs.len()];
        dequantize_blocks_into(GgufType::F32, &src, &mut h, false).unwrap();
        dequantize_blocks_into(GgufType::F32, &src, &mut b, false).unwrap();
        let h: Vec<u16> = h.iter().map(|x| x.0).collect();
        let b: Vec<u16> = b.iter().map(|x| x.0).collect();
        assert_eq!(
            h,
            [0x3C00, 0x3C02, 0x3C04, 0x3C0C, 0x7C00, 0x7C00, 0, 1, 0, 0x7E00, 0xFE09, 0x8000]
        );
        assert_eq!(
            b,
            [
                0x3F80, 0x3F80, 0x3F80, 0x3F82, 0x4780, 0x7F80, 0x3300, 0x3300, 0, 0x7FC0, 0xFFC1,
                0x8000
            ]
        );
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
