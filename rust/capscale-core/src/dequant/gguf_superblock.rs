//! 256-element GGUF super-blocks: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (dequantization into
//! f32, f16 or bf16) and the ternary TQ1_0 / TQ2_0 (dequantization and gguf-py's reference
//! quantization).
//!
//! **Exactness.** Every kernel mirrors the float32 operation order of gguf-py's
//! `gguf/quants.py` (itself bit-identical with ggml's `dequantize_row_*`): the per-sub-block
//! factors are formed first (`d·f32(sc)`, `dmin·f32(m)`), then each element is `factor·f32(q)`,
//! minus the min factor where there is one. f16 scales are converted exactly (subnormals,
//! ±Inf and NaN payloads included), so Inf/NaN scales propagate as in the reference
//! (`Inf·0 = NaN`, …) and the outputs are bit-identical. An f16 or bf16 output rounds that
//! exact f32 value once (nearest even).
//!
//! **Speed.** Blocks are read as fixed-size arrays (`&[u8; TS]`), so every offset is a
//! constant and no bounds check survives in the loops. On x86-64 with AVX2 (detected at run
//! time) each block is decoded 16 elements at a time with explicit intrinsics (nibble/bit
//! extraction on bytes, `pshufb` for IQ4_XS's codebook, widening to i32 → f32, one `mul` and one
//! `sub`, rounding into the output type) and written in element order, with plain or
//! streaming stores ([`dequantize_blocks_stores`]). Elsewhere, portable scalar kernels compute
//! the same values.

use super::gguf::GgufType;
use super::half::{f16_to_f32, f32_to_f16};
use super::output::OutElem;
use super::simd::Out;
use crate::error::{CoreError, CoreResult};

/// Elements per super-block.
const QK_K: usize = 256;

/// `kvalues_iq4nl`, the IQ4_NL / IQ4_XS codebook.
const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Powers of three used by TQ1_0's fixed-point base-3 digits (lowest digit first).
const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// The little-endian f16 `[lo, hi]` as f32, exactly.
#[inline(always)]
fn f16_le(lo: u8, hi: u8) -> f32 {
    f16_to_f32(u16::from_le_bytes([lo, hi]))
}

// ---------------------------------------------------------------------------------------------
// Per-sub-block factors, computed exactly as gguf-py does (`d·f32(sc)`, `dmin·f32(m)`).
// ---------------------------------------------------------------------------------------------

/// Q2_K factors `d·(sc & 0xF)` and `dmin·(sc >> 4)` of the 16 sub-blocks (scales[16] @0,
/// d @80, dmin @82).
#[inline(always)]
fn q2_k_factors(b: &[u8; 84]) -> ([f32; 16], [f32; 16]) {
    let d = f16_le(b[80], b[81]);
    let dmin = f16_le(b[82], b[83]);
    let mut dl = [0f32; 16];
    let mut ml = [0f32; 16];
    for i in 0..16 {
        dl[i] = d * (b[i] & 0xF) as f32;
        ml[i] = dmin * (b[i] >> 4) as f32;
    }
    (dl, ml)
}

/// Q3_K factors `d·(s6 − 32)` of the 16 sub-blocks (scales[12] @96, d @108).
#[inline(always)]
fn q3_k_factors(b: &[u8; 110]) -> [f32; 16] {
    let d = f16_le(b[108], b[109]);
    let mut dl = [0f32; 16];
    for i in 0..16 {
        let low = if i < 8 {
            b[96 + i] & 0xF
        } else {
            b[96 + i - 8] >> 4
        };
        let high = (b[104 + i % 4] >> (2 * (i / 4))) & 3;
        dl[i] = d * ((low | (high << 4)) as i8 - 32) as f32;
    }
    dl
}

/// Q4_K/Q5_K factors `d·sc` and `dmin·m` of the 8 sub-blocks from the 12 packed scale bytes
/// at @4 (`get_scale_min_k4`); d @0, dmin @2.
#[inline(always)]
fn k4_factors<const TS: usize>(b: &[u8; TS]) -> ([f32; 8], [f32; 8]) {
    let mut dl = [0f32; 8];
    let mut ml = [0f32; 8];
    if TS < 16 {
        return (dl, ml);
    }
    let d = f16_le(b[0], b[1]);
    let dmin = f16_le(b[2], b[3]);
    let s = |i: usize| b[4 + i];
    for j in 0..4 {
        let (sc_lo, m_lo) = (s(j) & 63, s(j + 4) & 63);
        let sc_hi = (s(j + 8) & 0xF) | ((s(j) >> 6) << 4);
        let m_hi = (s(j + 8) >> 4) | ((s(j + 4) >> 6) << 4);
        dl[j] = d * sc_lo as f32;
        ml[j] = dmin * m_lo as f32;
        dl[j + 4] = d * sc_hi as f32;
        ml[j + 4] = dmin * m_hi as f32;
    }
    (dl, ml)
}

/// Q6_K factors `d·sc` of the 16 sub-blocks (scales i8[16] @192, d @208).
#[inline(always)]
fn q6_k_factors(b: &[u8; 210]) -> [f32; 16] {
    let d = f16_le(b[208], b[209]);
    let mut dl = [0f32; 16];
    for i in 0..16 {
        dl[i] = d * (b[192 + i] as i8) as f32;
    }
    dl
}

/// IQ4_XS factors `d·(ls − 32)` of the 8 sub-blocks (d @0, scales_h u16 @2, scales_l[4] @4).
#[inline(always)]
fn iq4_xs_factors(b: &[u8; 136]) -> [f32; 8] {
    let d = f16_le(b[0], b[1]);
    let scales_h = u16::from_le_bytes([b[2], b[3]]);
    let mut dl = [0f32; 8];
    for ib in 0..8 {
        let lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF;
        let hi = ((scales_h >> (2 * ib)) & 3) as u8;
        dl[ib] = d * ((lo | (hi << 4)) as i8 - 32) as f32;
    }
    dl
}

/// TQ1_0 base-3 digit of byte `q` for power `p`: `((u8)(q·p) · 3) >> 8`, minus 1.
#[inline(always)]
fn trit(q: u8, p: u8) -> i8 {
    ((q.wrapping_mul(p) as u16 * 3) >> 8) as i8 - 1
}

// ---------------------------------------------------------------------------------------------
// Portable per-super-block kernels (one block in, 256 values out in element order, each
// rounded once into the output type `O`).
// ---------------------------------------------------------------------------------------------

/// Q2_K: q = (qs[32n + l] >> 2j) & 3 for e = 128n + 32j + l; y = dl·q − ml (qs[64] @16).
#[inline(always)]
fn block_q2_k<O: OutElem>(b: &[u8; 84], y: &mut [O; QK_K]) {
    let (dl, ml) = q2_k_factors(b);
    for n in 0..2 {
        for j in 0..4 {
            for h in 0..2 {
                let s = 8 * n + 2 * j + h;
                let q = &b[16 + 32 * n + 16 * h..][..16];
                let out = &mut y[128 * n + 32 * j + 16 * h..][..16];
                for l in 0..16 {
                    out[l] = O::from_f32(dl[s] * ((q[l] >> (2 * j)) & 3) as f32 - ml[s]);
                }
            }
        }
    }
}

/// Q3_K: q = ((qs >> 2j) & 3) − (hmask bit 4n+j clear ? 4 : 0); y = dl·q (hmask[32] @0,
/// qs[64] @32).
#[inline(always)]
fn block_q3_k<O: OutElem>(b: &[u8; 110], y: &mut [O; QK_K]) {
    let dl = q3_k_factors(b);
    for n in 0..2 {
        for j in 0..4 {
            for h in 0..2 {
                let s = 8 * n + 2 * j + h;
                let q = &b[32 + 32 * n + 16 * h..][..16];
                let hm = &b[16 * h..][..16];
                let out = &mut y[128 * n + 32 * j + 16 * h..][..16];
                for l in 0..16 {
                    let q2 = ((q[l] >> (2 * j)) & 3) as i8;
                    let off = ((((hm[l] >> (4 * n + j)) & 1) ^ 1) << 2) as i8;
                    out[l] = O::from_f32(dl[s] * (q2 - off) as f32);
                }
            }
        }
    }
}

/// Q4_K: e = 64c + l ← low nibble of qs[32c + l], e + 32 ← high nibble (qs[128] @16).
#[inline(always)]
fn block_q4_k<O: OutElem>(b: &[u8; 144], y: &mut [O; QK_K]) {
    let (dl, ml) = k4_factors(b);
    for c in 0..4 {
        let q = &b[16 + 32 * c..][..32];
        let out = &mut y[64 * c..][..64];
        for l in 0..32 {
            out[l] = O::from_f32(dl[2 * c] * (q[l] & 0xF) as f32 - ml[2 * c]);
            out[32 + l] = O::from_f32(dl[2 * c + 1] * (q[l] >> 4) as f32 - ml[2 * c + 1]);
        }
    }
}

/// Q5_K: Q4_K plus 16·(qh[l] bit 2c / 2c+1) (qh[32] @16, qs[128] @48).
#[inline(always)]
fn block_q5_k<O: OutElem>(b: &[u8; 176], y: &mut [O; QK_K]) {
    let (dl, ml) = k4_factors(b);
    for c in 0..4 {
        let q = &b[48 + 32 * c..][..32];
        let qh = &b[16..48];
        let out = &mut y[64 * c..][..64];
        for l in 0..32 {
            let lo = (q[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4);
            let hi = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
            out[l] = O::from_f32(dl[2 * c] * lo as f32 - ml[2 * c]);
            out[32 + l] = O::from_f32(dl[2 * c + 1] * hi as f32 - ml[2 * c + 1]);
        }
    }
}

/// Q6_K: 6-bit q = low 4 bits from ql[128] @0, high 2 bits from qh[64] @128; y = dl·(q − 32).
#[inline(always)]
fn block_q6_k<O: OutElem>(b: &[u8; 210], y: &mut [O; QK_K]) {
    let dl = q6_k_factors(b);
    for n in 0..2 {
        for l in 0..32 {
            let (a, c, hi) = (b[64 * n + l], b[64 * n + 32 + l], b[128 + 32 * n + l]);
            let s = 8 * n + l / 16;
            let q0 = ((a & 0xF) | ((hi & 3) << 4)) as i8 - 32;
            let q1 = ((c & 0xF) | (((hi >> 2) & 3) << 4)) as i8 - 32;
            let q2 = ((a >> 4) | (((hi >> 4) & 3) << 4)) as i8 - 32;
            let q3 = ((c >> 4) | (((hi >> 6) & 3) << 4)) as i8 - 32;
            y[128 * n + l] = O::from_f32(dl[s] * q0 as f32);
            y[128 * n + 32 + l] = O::from_f32(dl[s + 2] * q1 as f32);
            y[128 * n + 64 + l] = O::from_f32(dl[s + 4] * q2 as f32);
            y[128 * n + 96 + l] = O::from_f32(dl[s + 6] * q3 as f32);
        }
    }
}

/// IQ4_XS: e = 32ib + j ← K[low nibble of qs[16ib + j]], e + 16 ← K[high nibble] (qs @8).
#[inline(always)]
fn block_iq4_xs<O: OutElem>(b: &[u8; 136], y: &mut [O; QK_K]) {
    let dl = iq4_xs_factors(b);
    for ib in 0..8 {
        let q = &b[8 + 16 * ib..][..16];
        let out = &mut y[32 * ib..][..32];
        for j in 0..16 {
            out[j] = O::from_f32(dl[ib] * KVALUES_IQ4NL[(q[j] & 0xF) as usize] as f32);
            out[16 + j] = O::from_f32(dl[ib] * KVALUES_IQ4NL[(q[j] >> 4) as usize] as f32);
        }
    }
}

/// TQ1_0: qs[48] @0 (5 trits per byte), qh[4] @48 (4 trits per byte), d @52.
#[inline(always)]
fn block_tq1_0<O: OutElem>(b: &[u8; 54], y: &mut [O; QK_K]) {
    let d = f16_le(b[52], b[53]);
    for n in 0..5 {
        for m in 0..32 {
            y[32 * n + m] = O::from_f32(d * trit(b[m], POW3[n]) as f32);
        }
    }
    for n in 0..5 {
        for m in 0..16 {
            y[160 + 16 * n + m] = O::from_f32(d * trit(b[32 + m], POW3[n]) as f32);
        }
    }
    for n in 0..4 {
        for j in 0..4 {
            y[240 + 4 * n + j] = O::from_f32(d * trit(b[48 + j], POW3[n]) as f32);
        }
    }
}

/// TQ2_0: e = 128c + 32l + m ← (qs[32c + m] >> 2l) & 3, minus 1 (qs[64] @0, d @64).
#[inline(always)]
fn block_tq2_0<O: OutElem>(b: &[u8; 66], y: &mut [O; QK_K]) {
    let d = f16_le(b[64], b[65]);
    for c in 0..2 {
        for l in 0..4 {
            for m in 0..32 {
                let t = ((b[32 * c + m] >> (2 * l)) & 3) as i8 - 1;
                y[128 * c + 32 * l + m] = O::from_f32(d * t as f32);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2 kernels: the same arithmetic (f32 `mul`, then `sub`), 16 elements at a time, rounded
// into the output type and written in element order so streaming stores fill whole
// write-combining lines.
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{f16_le, k4_factors, trit};
    use crate::dequant::simd::{x86::put16 as put, Out};
    use std::arch::x86_64::*;

    /// `p[0..16] = f · v[i]` for the 16 signed bytes of `v`.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn put16<O: Out, const NT: bool>(p: *mut O, v: __m128i, f: f32) {
        let f = _mm256_set1_ps(f);
        put::<O, NT, false, false>(p, v, f, f);
    }

    /// `p[0..16] = f · v[i] − m` for the 16 signed bytes of `v`.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn put16_min<O: Out, const NT: bool>(p: *mut O, v: __m128i, f: f32, m: f32) {
        put::<O, NT, true, false>(p, v, _mm256_set1_ps(f), _mm256_set1_ps(m));
    }

    /// 16 bytes at `b[off..off + 16]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn ld<const TS: usize>(b: &[u8; TS], off: usize) -> __m128i {
        debug_assert!(off + 16 <= TS);
        _mm_loadu_si128(b.as_ptr().add(off).cast())
    }

    /// `(v >> k) & mask` on bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn shr_and(v: __m128i, k: usize, mask: i8) -> __m128i {
        _mm_and_si128(
            _mm_srl_epi16(v, _mm_cvtsi32_si128(k as i32)),
            _mm_set1_epi8(mask),
        )
    }

    /// 0xFF in each byte of `v` where bit `k` is set, else 0.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn bit_set(v: __m128i, k: usize) -> __m128i {
        let bit = _mm_set1_epi8((1u8 << k) as i8);
        _mm_cmpeq_epi8(_mm_and_si128(v, bit), bit)
    }

    // Each kernel's safety contract: `y` points to 256 writable elements (16-byte aligned when
    // `NT`); the block is a whole fixed-size array, and every load reads inside it.

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn q2_k<O: Out, const NT: bool>(b: &[u8; 84], y: *mut O) {
        let (dl, ml) = super::q2_k_factors(b);
        for n in 0..2 {
            let q = [ld(b, 16 + 32 * n), ld(b, 32 + 32 * n)];
            for j in 0..4 {
                for h in 0..2 {
                    let s = 8 * n + 2 * j + h;
                    let v = shr_and(q[h], 2 * j, 3);
                    put16_min::<O, NT>(y.add(128 * n + 32 * j + 16 * h), v, dl[s], ml[s]);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn q3_k<O: Out, const NT: bool>(b: &[u8; 110], y: *mut O) {
        let dl = super::q3_k_factors(b);
        let hm = [ld(b, 0), ld(b, 16)];
        let four = _mm_set1_epi8(4);
        for n in 0..2 {
            let q = [ld(b, 32 + 32 * n), ld(b, 48 + 32 * n)];
            for j in 0..4 {
                for h in 0..2 {
                    let s = 8 * n + 2 * j + h;
                    let q2 = shr_and(q[h], 2 * j, 3);
                    // −4 where the high bit is clear.
                    let off = _mm_andnot_si128(bit_set(hm[h], 4 * n + j), four);
                    put16::<O, NT>(
                        y.add(128 * n + 32 * j + 16 * h),
                        _mm_sub_epi8(q2, off),
                        dl[s],
                    );
                }
            }
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn q4_k<O: Out, const NT: bool>(b: &[u8; 144], y: *mut O) {
        let (dl, ml) = k4_factors(b);
        for c in 0..4 {
            let q = [ld(b, 16 + 32 * c), ld(b, 32 + 32 * c)];
            let o = y.add(64 * c);
            for (h, &q) in q.iter().enumerate() {
                put16_min::<O, NT>(o.add(16 * h), shr_and(q, 0, 0xF), dl[2 * c], ml[2 * c]);
            }
            for (h, &q) in q.iter().enumerate() {
                let v = shr_and(q, 4, 0xF);
                put16_min::<O, NT>(o.add(32 + 16 * h), v, dl[2 * c + 1], ml[2 * c + 1]);
            }
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn q5_k<O: Out, const NT: bool>(b: &[u8; 176], y: *mut O) {
        let (dl, ml) = k4_factors(b);
        let qh = [ld(b, 16), ld(b, 32)];
        let sixteen = _mm_set1_epi8(16);
        for c in 0..4 {
            let q = [ld(b, 48 + 32 * c), ld(b, 64 + 32 * c)];
            let o = y.add(64 * c);
            for h in 0..2 {
                let hb = _mm_and_si128(bit_set(qh[h], 2 * c), sixteen);
                let v = _mm_or_si128(shr_and(q[h], 0, 0xF), hb);
                put16_min::<O, NT>(o.add(16 * h), v, dl[2 * c], ml[2 * c]);
            }
            for h in 0..2 {
                let hb = _mm_and_si128(bit_set(qh[h], 2 * c + 1), sixteen);
                let v = _mm_or_si128(shr_and(q[h], 4, 0xF), hb);
                put16_min::<O, NT>(o.add(32 + 16 * h), v, dl[2 * c + 1], ml[2 * c + 1]);
            }
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn q6_k<O: Out, const NT: bool>(b: &[u8; 210], y: *mut O) {
        let dl = super::q6_k_factors(b);
        let m32 = _mm_set1_epi8(32);
        for n in 0..2 {
            let a = [ld(b, 64 * n), ld(b, 64 * n + 16)];
            let c = [ld(b, 64 * n + 32), ld(b, 64 * n + 48)];
            let hi = [ld(b, 128 + 32 * n), ld(b, 144 + 32 * n)];
            for g in 0..4 {
                for h in 0..2 {
                    let low = match g {
                        0 => shr_and(a[h], 0, 0xF),
                        1 => shr_and(c[h], 0, 0xF),
                        2 => shr_and(a[h], 4, 0xF),
                        _ => shr_and(c[h], 4, 0xF),
                    };
                    // ((hi >> 2g) & 3) << 4, without crossing bytes.
                    let top = _mm_slli_epi16(shr_and(hi[h], 2 * g, 3), 4);
                    let q = _mm_sub_epi8(_mm_or_si128(low, top), m32);
                    put16::<O, NT>(y.add(128 * n + 32 * g + 16 * h), q, dl[8 * n + 2 * g + h]);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn iq4_xs<O: Out, const NT: bool>(b: &[u8; 136], y: *mut O) {
        let dl = super::iq4_xs_factors(b);
        let table = _mm_loadu_si128(super::KVALUES_IQ4NL.as_ptr().cast());
        for ib in 0..8 {
            let q = ld(b, 8 + 16 * ib);
            let lo = _mm_shuffle_epi8(table, shr_and(q, 0, 0xF));
            let hi = _mm_shuffle_epi8(table, shr_and(q, 4, 0xF));
            put16::<O, NT>(y.add(32 * ib), lo, dl[ib]);
            put16::<O, NT>(y.add(32 * ib + 16), hi, dl[ib]);
        }
    }

    /// The 16 TQ1_0 digits `t − 1` of the bytes in `v` for power `p`, as signed bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn trits16(v: __m128i, p: u8) -> __m128i {
        let w = _mm256_cvtepu8_epi16(v);
        let prod = _mm256_and_si256(
            _mm256_mullo_epi16(w, _mm256_set1_epi16(p as i16)),
            _mm256_set1_epi16(0xFF),
        );
        let t = _mm256_srli_epi16(_mm256_mullo_epi16(prod, _mm256_set1_epi16(3)), 8);
        let t = _mm256_sub_epi16(t, _mm256_set1_epi16(1));
        _mm_packs_epi16(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1))
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn tq1_0<O: Out, const NT: bool>(b: &[u8; 54], y: *mut O) {
        let d = f16_le(b[52], b[53]);
        let qs0 = [ld(b, 0), ld(b, 16)];
        let qs1 = ld(b, 32);
        for n in 0..5 {
            for h in 0..2 {
                put16::<O, NT>(y.add(32 * n + 16 * h), trits16(qs0[h], super::POW3[n]), d);
            }
        }
        for n in 0..5 {
            put16::<O, NT>(y.add(160 + 16 * n), trits16(qs1, super::POW3[n]), d);
        }
        let mut t = [0i8; 16];
        for n in 0..4 {
            for j in 0..4 {
                t[4 * n + j] = trit(b[48 + j], super::POW3[n]);
            }
        }
        put16::<O, NT>(y.add(240), _mm_loadu_si128(t.as_ptr().cast()), d);
    }

    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn tq2_0<O: Out, const NT: bool>(b: &[u8; 66], y: *mut O) {
        let d = f16_le(b[64], b[65]);
        let one = _mm_set1_epi8(1);
        for c in 0..2 {
            let q = [ld(b, 32 * c), ld(b, 32 * c + 16)];
            for l in 0..4 {
                for h in 0..2 {
                    let t = _mm_sub_epi8(shr_and(q[h], 2 * l, 3), one);
                    put16::<O, NT>(y.add(128 * c + 32 * l + 16 * h), t, d);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Drivers: whole blocks, AVX2 dispatch, plain or streaming stores.
// ---------------------------------------------------------------------------------------------

/// `fn $name<O>(src, dst, stream)`: the AVX2 kernel `x86::$avx2` (plain or streaming stores)
/// when the CPU has AVX2 and F16C, else the portable `$portable` over every block. Lengths are
/// checked by the caller.
macro_rules! driver {
    ($name:ident, $ts:expr, $portable:ident, $avx2:ident) => {
        fn $name<O: Out>(src: &[u8], dst: &mut [O], stream: bool) {
            /// The AVX2 kernel over every block; `NT`: streaming stores (`dst` 16-byte aligned).
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,f16c")]
            unsafe fn run_avx2<O: Out, const NT: bool>(src: &[u8], dst: &mut [O]) {
                for (s, d) in src.chunks_exact($ts).zip(dst.chunks_exact_mut(QK_K)) {
                    if let (Ok(s), Ok(d)) =
                        (<&[u8; $ts]>::try_from(s), <&mut [O; QK_K]>::try_from(d))
                    {
                        x86::$avx2::<O, NT>(s, d.as_mut_ptr());
                    }
                }
                crate::dequant::simd::x86::fence::<NT>();
            }

            #[cfg(target_arch = "x86_64")]
            {
                if crate::dequant::simd::has_avx2_f16c() {
                    // SAFETY: the CPU supports AVX2 and F16C (checked just above); each kernel
                    // gets one whole block and a pointer to 256 elements of `dst`, 16-byte
                    // aligned when streaming (checked here; blocks are 512 or 1024 bytes apart).
                    unsafe {
                        if stream && crate::dequant::simd::stream_aligned(dst.as_ptr()) {
                            run_avx2::<O, true>(src, dst);
                        } else {
                            run_avx2::<O, false>(src, dst);
                        }
                    }
                    return;
                }
            }
            let _ = stream;
            for (s, d) in src.chunks_exact($ts).zip(dst.chunks_exact_mut(QK_K)) {
                if let (Ok(s), Ok(d)) = (<&[u8; $ts]>::try_from(s), <&mut [O; QK_K]>::try_from(d)) {
                    $portable(s, d);
                }
            }
        }
    };
}

driver!(dequant_q2_k, 84, block_q2_k, q2_k);
driver!(dequant_q3_k, 110, block_q3_k, q3_k);
driver!(dequant_q4_k, 144, block_q4_k, q4_k);
driver!(dequant_q5_k, 176, block_q5_k, q5_k);
driver!(dequant_q6_k, 210, block_q6_k, q6_k);
driver!(dequant_iq4_xs, 136, block_iq4_xs, iq4_xs);
driver!(dequant_tq1_0, 54, block_tq1_0, tq1_0);
driver!(dequant_tq2_0, 66, block_tq2_0, tq2_0);

/// Check that `ty` is a super-block type and that `n_bytes` bytes and `n_elems` elements are
/// the same whole number of blocks; return that number.
fn check_lengths(ty: GgufType, n_bytes: usize, n_elems: usize, what: &str) -> CoreResult<usize> {
    if ty.block_size() != QK_K {
        return Err(CoreError::InvalidArgument(format!(
            "{} is not a 256-element super-block type",
            ty.name()
        )));
    }
    let nb = super::gguf::n_blocks(ty, n_bytes)?;
    if n_elems != nb * QK_K {
        return Err(CoreError::Shape(format!(
            "{what} has {n_elems} elements, {nb} {} blocks hold {}",
            ty.name(),
            nb * QK_K
        )));
    }
    Ok(nb)
}

/// Dequantize whole 256-element super-blocks of `ty` (`src.len()` a multiple of the block's
/// byte size, `dst.len() == n_blocks·256`) into float32, bit-identical with gguf-py / ggml,
/// with plain stores (right for freshly allocated outputs; see [`dequantize_blocks_stores`]).
pub fn dequantize_blocks(ty: GgufType, src: &[u8], dst: &mut [f32]) -> CoreResult<()> {
    dequantize_blocks_stores(ty, src, dst, false)
}

/// [`dequantize_blocks`] with the kind of stores chosen by the caller; the values are
/// identical either way.
///
/// `stream = true` writes with streaming (non-temporal) stores, which skip each output line's
/// read-for-ownership: about 3× faster for a large output *whose pages are already mapped*
/// (a reused buffer; measured 12–15 ms vs 32 ms per 64 Mi floats here), but slower for a fresh
/// allocation (79 vs 45 ms), whose first-touch page zeroing leaves dirty lines in the cache
/// that must be written back as well. Plain stores suit fresh outputs and tiles the caller
/// reads right away. Streaming needs a 16-byte aligned `dst`; otherwise plain stores are used.
pub fn dequantize_blocks_stores(
    ty: GgufType,
    src: &[u8],
    dst: &mut [f32],
    stream: bool,
) -> CoreResult<()> {
    dequantize_blocks_into(ty, src, dst, stream)
}

/// [`dequantize_blocks_stores`] into any output type `O`: each exact f32 value is rounded
/// once (f16: nearest even; bf16: nearest even, NaN kept quiet).
pub(crate) fn dequantize_blocks_into<O: Out>(
    ty: GgufType,
    src: &[u8],
    dst: &mut [O],
    stream: bool,
) -> CoreResult<()> {
    check_lengths(ty, src.len(), dst.len(), "the output")?;
    match ty {
        GgufType::Q2_K => dequant_q2_k(src, dst, stream),
        GgufType::Q3_K => dequant_q3_k(src, dst, stream),
        GgufType::Q4_K => dequant_q4_k(src, dst, stream),
        GgufType::Q5_K => dequant_q5_k(src, dst, stream),
        GgufType::Q6_K => dequant_q6_k(src, dst, stream),
        GgufType::IQ4_XS => dequant_iq4_xs(src, dst, stream),
        GgufType::TQ1_0 => dequant_tq1_0(src, dst, stream),
        GgufType::TQ2_0 => dequant_tq2_0(src, dst, stream),
        other => {
            return Err(CoreError::InvalidArgument(format!(
                "{} is not a 256-element super-block type",
                other.name()
            )))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reference (round-to-nearest) quantization of the ternary types, as gguf-py computes it.
// ---------------------------------------------------------------------------------------------

/// gguf-py's ternary step for one block: `d = max|x|` (NaN-propagating, like `np.max`),
/// `id = d == 0 ? 0 : 1/d`, `t = int8(np_roundf(x·id)) + 1` (half away from zero, all in f32).
/// Returns the trits (0, 1, 2) and d.
#[inline(always)]
fn ternary_trits(x: &[f32; QK_K]) -> ([u8; QK_K], f32) {
    let mut d = 0f32;
    for &v in x {
        let a = v.abs();
        if a > d || a.is_nan() {
            d = if d.is_nan() { d } else { a };
        }
    }
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut t = [0u8; QK_K];
    for (t, &v) in t.iter_mut().zip(x) {
        let n = v * id;
        let a = n.abs();
        let fl = a.floor();
        let r = fl + (2.0 * (a - fl)).floor();
        // np.sign(n)·r, then `astype(int8)`: a NaN (from ±Inf·0 or Inf − Inf) gives 0 there
        // (x86-64's out-of-range conversion, truncated to a byte) and here (`as`).
        let r = if n.is_nan() { 0.0 } else { r.copysign(n) };
        *t = (r as i8).wrapping_add(1) as u8;
    }
    (t, d)
}

/// TQ1_0 byte from base-3 digits (most significant first): `(Σ t·3^k · 256 + 242) / 243`.
#[inline(always)]
fn pack_base3(sum: u32) -> u8 {
    (((sum as u16).wrapping_mul(256).wrapping_add(242)) / 243) as u8
}

fn quantize_tq1_0(x: &[f32; QK_K], out: &mut [u8; 54]) {
    let (t, d) = ternary_trits(x);
    const W: [u32; 5] = [81, 27, 9, 3, 1];
    for m in 0..32 {
        let mut s = 0u32;
        for n in 0..5 {
            s += (t[32 * n + m].wrapping_mul(W[n] as u8)) as u32;
        }
        out[m] = pack_base3(s);
    }
    for m in 0..16 {
        let mut s = 0u32;
        for n in 0..5 {
            s += (t[160 + 16 * n + m].wrapping_mul(W[n] as u8)) as u32;
        }
        out[32 + m] = pack_base3(s);
    }
    for j in 0..4 {
        let mut s = 0u32;
        for n in 0..4 {
            s += (t[240 + 4 * n + j].wrapping_mul(W[n] as u8)) as u32;
        }
        out[48 + j] = pack_base3(s);
    }
    out[52..54].copy_from_slice(&f32_to_f16(d).to_le_bytes());
}

fn quantize_tq2_0(x: &[f32; QK_K], out: &mut [u8; 66]) {
    let (t, d) = ternary_trits(x);
    for c in 0..2 {
        for m in 0..32 {
            let e = 128 * c + m;
            out[32 * c + m] = t[e] | (t[e + 32] << 2) | (t[e + 64] << 4) | (t[e + 96] << 6);
        }
    }
    out[64..66].copy_from_slice(&f32_to_f16(d).to_le_bytes());
}

/// Quantize whole super-blocks of `ty` with the reference round-to-nearest quantizer,
/// byte-identical with `gguf.quants.quantize` (TQ1_0, TQ2_0). The K-quants and IQ4_XS have no
/// reference quantizer in gguf-py, so they are rejected with `InvalidArgument`.
pub fn quantize_blocks(ty: GgufType, src: &[f32], dst: &mut [u8]) -> CoreResult<()> {
    match ty {
        GgufType::TQ1_0 | GgufType::TQ2_0 => {}
        GgufType::Q2_K
        | GgufType::Q3_K
        | GgufType::Q4_K
        | GgufType::Q5_K
        | GgufType::Q6_K
        | GgufType::IQ4_XS => {
            return Err(CoreError::InvalidArgument(format!(
                "{} quantization is not supported: the gguf package has no reference \
                 (round-to-nearest) {} quantizer to be byte-identical with; only TQ1_0 and \
                 TQ2_0 among the 256-element super-block types can be quantized",
                ty.name(),
                ty.name()
            )))
        }
        other => {
            return Err(CoreError::InvalidArgument(format!(
                "{} is not a 256-element super-block type",
                other.name()
            )))
        }
    }
    if src.len() % QK_K != 0 {
        return Err(CoreError::Shape(format!(
            "{} elements are not a whole number of {} blocks ({QK_K} elements each)",
            src.len(),
            ty.name()
        )));
    }
    let ts = ty.type_size();
    let nb = src.len() / QK_K;
    if dst.len() != nb * ts {
        return Err(CoreError::Shape(format!(
            "output has {} bytes, {nb} {} blocks need {}",
            dst.len(),
            ty.name(),
            nb * ts
        )));
    }
    for (x, o) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(ts)) {
        let Ok(x) = <&[f32; QK_K]>::try_from(x) else {
            continue;
        };
        match ty {
            GgufType::TQ1_0 => {
                if let Ok(o) = <&mut [u8; 54]>::try_from(o) {
                    quantize_tq1_0(x, o);
                }
            }
            _ => {
                if let Ok(o) = <&mut [u8; 66]>::try_from(o) {
                    quantize_tq2_0(x, o);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dequant::output::{Bf16, F16};

    const ALL: [GgufType; 8] = [
        GgufType::Q2_K,
        GgufType::Q3_K,
        GgufType::Q4_K,
        GgufType::Q5_K,
        GgufType::Q6_K,
        GgufType::IQ4_XS,
        GgufType::TQ1_0,
        GgufType::TQ2_0,
    ];

    fn h(x: f32) -> [u8; 2] {
        f32_to_f16(x).to_le_bytes()
    }

    fn deq(ty: GgufType, src: &[u8]) -> Vec<f32> {
        let mut y = vec![f32::MAX; src.len() / ty.type_size() * QK_K];
        dequantize_blocks(ty, src, &mut y).unwrap();
        y
    }

    #[test]
    fn q4_k_unit_scales_give_the_nibbles() {
        let mut b = [0u8; 144];
        b[0..2].copy_from_slice(&h(1.0));
        b[2..4].copy_from_slice(&h(0.5));
        b[4..8].fill(1); // sc 0..3 = 1
        b[8..12].fill(0); // m 0..3 = 0
        b[12..16].fill(0x01); // sc 4..7 = 1, m 4..7 = 0
        for c in 0..4 {
            for l in 0..32 {
                b[16 + 32 * c + l] = (l % 16) as u8 | ((15 - (l % 16) as u8) << 4);
            }
        }
        let y = deq(GgufType::Q4_K, &b);
        for c in 0..4 {
            for l in 0..32 {
                assert_eq!(y[64 * c + l], (l % 16) as f32);
                assert_eq!(y[64 * c + 32 + l], (15 - l % 16) as f32);
            }
        }
        // mins 2 with dmin 0.5 subtract 1 everywhere
        b[8..12].fill(2);
        b[12..16].fill(0x21);
        let y2 = deq(GgufType::Q4_K, &b);
        for (a, z) in y.iter().zip(&y2) {
            assert_eq!(*z, a - 1.0);
        }
    }

    #[test]
    fn q5_k_high_bits_add_16() {
        let mut b = [0u8; 176];
        b[0..2].copy_from_slice(&h(1.0));
        b[4..8].fill(1);
        b[12..16].fill(0x01);
        b[16..48].fill(0x55); // bit 2c set: low-nibble elements of every chunk
        for i in 48..176 {
            b[i] = 0x73; // low nibble 3, high nibble 7
        }
        let y = deq(GgufType::Q5_K, &b);
        for c in 0..4 {
            for l in 0..32 {
                assert_eq!(y[64 * c + l], 19.0);
                assert_eq!(y[64 * c + 32 + l], 7.0);
            }
        }
    }

    #[test]
    fn q2_k_scale_and_min_nibbles() {
        let mut b = [0u8; 84];
        b[..16].fill(0x23); // sc 3, m 2
        b[16..80].fill(0xE4); // the 2-bit field at shift 2j is j
        b[80..82].copy_from_slice(&h(1.0));
        b[82..84].copy_from_slice(&h(0.5));
        let y = deq(GgufType::Q2_K, &b);
        for (e, v) in y.iter().enumerate() {
            let j = (e % 128) / 32;
            assert_eq!(*v, 3.0 * j as f32 - 1.0, "element {e}");
        }
    }

    #[test]
    fn q3_k_high_bit_is_inverted() {
        let mut b = [0u8; 110];
        b[32..96].fill(0xE4); // q2 = j
        b[96..104].fill(0x11); // low 4 bits of every 6-bit scale = 1
        b[104..108].fill(0xAA); // high 2 bits = 2 → s = 33, signed 1
        b[108..110].copy_from_slice(&h(1.0));
        // bits 0..3 set (half 0: no offset), bits 4..7 clear (half 1: −4)
        b[..32].fill(0x0F);
        let y = deq(GgufType::Q3_K, &b);
        for (e, v) in y.iter().enumerate() {
            let (n, j) = (e / 128, (e % 128) / 32);
            let want = j as f32 - if n == 0 { 0.0 } else { 4.0 };
            assert_eq!(*v, want, "element {e}");
        }
        // signed scale: s = 0 → −32
        b[96..108].fill(0);
        let y = deq(GgufType::Q3_K, &b);
        assert_eq!(y[32], -32.0); // n = 0, j = 1
        assert_eq!(y[128], 32.0 * 4.0); // n = 1, j = 0: q = −4
    }

    #[test]
    fn q6_k_signed_scales() {
        let mut b = [0u8; 210];
        for i in 0..16 {
            b[192 + i] = if i % 2 == 0 { (-1i8) as u8 } else { 2 };
        }
        b[208..210].copy_from_slice(&h(1.0));
        let y = deq(GgufType::Q6_K, &b); // q = 0 − 32
        for (e, v) in y.iter().enumerate() {
            assert_eq!(*v, if (e / 16) % 2 == 0 { 32.0 } else { -64.0 });
        }
        b[..192].fill(0xFF); // q = 63 − 32 = 31
        b[208..210].copy_from_slice(&1u16.to_le_bytes()); // smallest subnormal, 2^-24
        let y = deq(GgufType::Q6_K, &b);
        let tiny = 2f32.powi(-24);
        for (e, v) in y.iter().enumerate() {
            let sc = if (e / 16) % 2 == 0 { -1.0 } else { 2.0 };
            assert_eq!(*v, tiny * sc * 31.0);
        }
    }

    #[test]
    fn q6_k_bit_layout() {
        // ql[l] = 0x21 (low 1, high 2), ql[32 + l] = 0x43, qh[l] = 0b11_10_01_00
        let mut b = [0u8; 210];
        b[..32].fill(0x21);
        b[32..64].fill(0x43);
        b[128..160].fill(0xE4);
        b[192..200].fill(1);
        b[208..210].copy_from_slice(&h(1.0));
        let y = deq(GgufType::Q6_K, &b);
        for l in 0..32 {
            assert_eq!(y[l], 1.0 - 32.0);
            assert_eq!(y[32 + l], (3 + 16) as f32 - 32.0);
            assert_eq!(y[64 + l], (2 + 32) as f32 - 32.0);
            assert_eq!(y[96 + l], (4 + 48) as f32 - 32.0);
        }
    }

    #[test]
    fn iq4_xs_codebook() {
        let mut b = [0u8; 136];
        b[0..2].copy_from_slice(&h(1.0));
        b[2..4].copy_from_slice(&0xAAAAu16.to_le_bytes()); // high bits 2
        b[4..8].fill(0x11); // low bits 1 → ls = 33, signed 1
        for ib in 0..8 {
            for j in 0..16 {
                b[8 + 16 * ib + j] = j as u8 | ((15 - j as u8) << 4);
            }
        }
        let y = deq(GgufType::IQ4_XS, &b);
        for ib in 0..8 {
            for j in 0..16 {
                assert_eq!(y[32 * ib + j], KVALUES_IQ4NL[j] as f32);
                assert_eq!(y[32 * ib + 16 + j], KVALUES_IQ4NL[15 - j] as f32);
            }
        }
    }

    #[test]
    fn tq1_0_base3_digits() {
        // trits (2, 0, 1, 2, 1) for powers 1..81: Σ = 2·81 + 0·27 + 1·9 + 2·3 + 1 = 178,
        // byte = ⌈178·256 / 243⌉ = 188; qh trits (1, 1, 1, 1): Σ = 120 → 127.
        assert_eq!(pack_base3(178), 188);
        assert_eq!(pack_base3(120), 127);
        let digits: Vec<i8> = POW3.iter().map(|&p| trit(188, p)).collect();
        assert_eq!(digits, [1, -1, 0, 1, 0]);
        let mut b = [0u8; 54];
        b[..48].fill(188);
        b[48..52].fill(127);
        b[52..54].copy_from_slice(&h(0.5));
        let y = deq(GgufType::TQ1_0, &b);
        let want = |n: usize| digits[n] as f32 * 0.5;
        for n in 0..5 {
            for m in 0..32 {
                assert_eq!(y[32 * n + m], want(n));
            }
            for m in 0..16 {
                assert_eq!(y[160 + 16 * n + m], want(n));
            }
        }
        assert!(y[240..].iter().all(|&v| v == 0.0));
        // quantizing the same ternary values gives the same bytes (with d = 1)
        let mut x = [0f32; QK_K];
        for n in 0..5 {
            x[32 * n..32 * n + 32].fill(digits[n] as f32);
            x[160 + 16 * n..160 + 16 * n + 16].fill(digits[n] as f32);
        }
        let mut q = [0u8; 54];
        quantize_blocks(GgufType::TQ1_0, &x, &mut q).unwrap();
        assert_eq!(&q[..52], &b[..52]);
        assert_eq!(&q[52..], &h(1.0));
    }

    #[test]
    fn tq2_0_two_bit_trits_and_round_trip() {
        let mut b = [0u8; 66];
        b[..64].fill(0b10_01_00_10);
        b[64..66].copy_from_slice(&h(2.0));
        let y = deq(GgufType::TQ2_0, &b);
        for (e, v) in y.iter().enumerate() {
            assert_eq!(*v, [2.0, -2.0, 0.0, 2.0][(e % 128) / 32]);
        }
        let mut q = [0u8; 66];
        quantize_blocks(GgufType::TQ2_0, &y, &mut q).unwrap();
        assert_eq!(q, b);
        // an all-zero block: d = 0, every trit 1 (zero)
        quantize_blocks(GgufType::TQ2_0, &[0.0; QK_K], &mut q).unwrap();
        assert!(q[..64].iter().all(|&v| v == 0b01_01_01_01) && q[64..] == [0, 0]);
        // rounding is half away from zero: ±0.5·d → ±d
        let mut x = [0f32; QK_K];
        x[0] = 1.0;
        x[1] = 0.5;
        x[2] = -0.5;
        x[3] = 0.499;
        quantize_blocks(GgufType::TQ2_0, &x, &mut q).unwrap();
        assert_eq!(
            &q[..4],
            &[0b01_01_01_10, 0b01_01_01_10, 0b01_01_01_00, 0b01_01_01_01]
        );
    }

    #[test]
    fn non_finite_scales_propagate() {
        let mut b = [0u8; 144];
        b[0..2].copy_from_slice(&0x7C00u16.to_le_bytes()); // d = +Inf
        b[4] = 1; // sub-block 0 scale 1, the others 0 → Inf·0 = NaN
        b[16..48].fill(0x11);
        let y = deq(GgufType::Q4_K, &b);
        assert!(y[..32].iter().all(|v| *v == f32::INFINITY));
        assert!(y[32..].iter().all(|v| v.is_nan()));
        let mut t = [0u8; 66];
        t[..64].fill(0b01_01_01_00); // l = 0 → −1, else 0
        t[64..66].copy_from_slice(&0xFC00u16.to_le_bytes()); // −Inf
        let y = deq(GgufType::TQ2_0, &t);
        assert!(y[..32].iter().all(|v| *v == f32::INFINITY));
        assert!(y[32..128].iter().all(|v| v.is_nan()));
    }

    /// xorshift64 bytes with some f16 fields set to special values.
    fn random_blocks(ty: GgufType, nb: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut src: Vec<u8> = (0..nb * ty.type_size()).map(|_| next() as u8).collect();
        let offs: &[usize] = match ty {
            GgufType::Q2_K => &[80, 82],
            GgufType::Q3_K => &[108],
            GgufType::Q6_K => &[208],
            GgufType::TQ1_0 => &[52],
            GgufType::TQ2_0 => &[64],
            _ => &[0, 2],
        };
        let specials = [
            0x0000u16, 0x8000, 0x0001, 0x03FF, 0x7C00, 0xFC00, 0x7E01, 0x7BFF, 0x2E66,
        ];
        for blk in src.chunks_exact_mut(ty.type_size()) {
            for &o in offs {
                let r = next();
                if r % 2 == 0 {
                    let v = specials[(r >> 8) as usize % specials.len()];
                    blk[o..o + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        src
    }

    fn portable(ty: GgufType, src: &[u8]) -> Vec<f32> {
        let ts = ty.type_size();
        let mut y = vec![0f32; src.len() / ts * QK_K];
        for (s, d) in src.chunks_exact(ts).zip(y.chunks_exact_mut(QK_K)) {
            let d: &mut [f32; QK_K] = d.try_into().unwrap();
            match ty {
                GgufType::Q2_K => block_q2_k(s.try_into().unwrap(), d),
                GgufType::Q3_K => block_q3_k(s.try_into().unwrap(), d),
                GgufType::Q4_K => block_q4_k(s.try_into().unwrap(), d),
                GgufType::Q5_K => block_q5_k(s.try_into().unwrap(), d),
                GgufType::Q6_K => block_q6_k(s.try_into().unwrap(), d),
                GgufType::IQ4_XS => block_iq4_xs(s.try_into().unwrap(), d),
                GgufType::TQ1_0 => block_tq1_0(s.try_into().unwrap(), d),
                _ => block_tq2_0(s.try_into().unwrap(), d),
            }
        }
        y
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// `y`'s bits.
    fn out_bits<O: Out>(y: &[O]) -> Vec<u32> {
        y.iter().map(|x| x.bits()).collect()
    }

    /// Plain and streaming stores, aligned and misaligned, into output type `O`: the f32
    /// reference rounded once with `O::from_f32`, and the portable kernels agree.
    fn check_out_type<O: Out>(ty: GgufType, src: &[u8], want32: &[f32]) {
        let n = want32.len();
        let want: Vec<u32> = want32.iter().map(|&x| O::from_f32(x).bits()).collect();
        let ts = ty.type_size();
        let mut slow = vec![O::default(); n];
        for (s, d) in src.chunks_exact(ts).zip(slow.chunks_exact_mut(QK_K)) {
            let d: &mut [O; QK_K] = d.try_into().unwrap();
            match ty {
                GgufType::Q2_K => block_q2_k(s.try_into().unwrap(), d),
                GgufType::Q3_K => block_q3_k(s.try_into().unwrap(), d),
                GgufType::Q4_K => block_q4_k(s.try_into().unwrap(), d),
                GgufType::Q5_K => block_q5_k(s.try_into().unwrap(), d),
                GgufType::Q6_K => block_q6_k(s.try_into().unwrap(), d),
                GgufType::IQ4_XS => block_iq4_xs(s.try_into().unwrap(), d),
                GgufType::TQ1_0 => block_tq1_0(s.try_into().unwrap(), d),
                _ => block_tq2_0(s.try_into().unwrap(), d),
            }
        }
        assert_eq!(out_bits(&slow), want, "{} {} portable", ty.name(), O::NAME);
        let mut buf = vec![O::default(); n + 16];
        let off = (0..16)
            .find(|&k| (buf[k..].as_ptr() as usize) % 32 == 0)
            .unwrap();
        for start in [off, off + 1, off + 8] {
            for stream in [false, true] {
                let y = &mut buf[start..start + n];
                dequantize_blocks_into(ty, src, y, stream).unwrap();
                let what = format!("{} {} stream={stream} +{start}", ty.name(), O::NAME);
                assert_eq!(out_bits(y), want, "{what}");
            }
        }
    }

    #[test]
    fn simd_plain_and_streaming_equal_portable() {
        for (k, ty) in ALL.into_iter().enumerate() {
            let nb = 37;
            let src = random_blocks(ty, nb, 0x9E37_79B9 + k as u64);
            let want32 = portable(ty, &src);
            let want = bits(&want32);
            for stream in [false, true] {
                let mut y = vec![0f32; nb * QK_K];
                dequantize_blocks_stores(ty, &src, &mut y, stream).unwrap();
                assert_eq!(bits(&y), want, "{} stream={stream}", ty.name());
            }
            check_out_type::<f32>(ty, &src, &want32);
            check_out_type::<F16>(ty, &src, &want32);
            check_out_type::<Bf16>(ty, &src, &want32);
        }
    }

    #[test]
    fn bad_lengths_are_errors_not_panics() {
        for ty in ALL {
            let ts = ty.type_size();
            let mut y = vec![0f32; QK_K];
            let src = vec![0u8; ts];
            assert!(matches!(
                dequantize_blocks(ty, &src[..ts - 1], &mut y),
                Err(CoreError::Truncated(_))
            ));
            assert!(matches!(
                dequantize_blocks(ty, &src, &mut y[..QK_K - 1]),
                Err(CoreError::Shape(_))
            ));
            assert!(dequantize_blocks(ty, &[], &mut []).is_ok());
            let mut q = vec![0u8; ts];
            let r = quantize_blocks(ty, &y[..QK_K - 1], &mut q);
            assert!(r.is_err());
            let r = quantize_blocks(ty, &y, &mut q[..ts - 1]);
            assert!(r.is_err());
        }
        let mut y = vec![0f32; 32];
        let r = dequantize_blocks(GgufType::Q4_0, &[0u8; 18], &mut y);
        assert!(matches!(r, Err(CoreError::InvalidArgument(_))));
        let mut q = [0u8; 144];
        let r = quantize_blocks(GgufType::Q4_K, &[0.0; QK_K], &mut q);
        let Err(CoreError::InvalidArgument(m)) = r else {
            panic!("{r:?}")
        };
        assert!(m.contains("Q4_K") && m.contains("no reference"), "{m}");
        let r = quantize_blocks(GgufType::TQ1_0, &[0.0; 300], &mut [0u8; 54]);
        assert!(matches!(r, Err(CoreError::Shape(_))));
    }
}
