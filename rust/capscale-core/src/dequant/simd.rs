//! What the dequantization kernels (GGUF, bitsandbytes, GPTQ/AWQ, affine) share: the output element types they are generic over ([`Out`]) and,
//! on x86-64, the one AVX2 store helper ([`x86::store8`]) that rounds 8 exact f32 values into
//! the output type (f32 as is, f16 with F16C, bf16 with integer round-to-nearest-even) and
//! writes them with plain or streaming (non-temporal) stores.
//!
//! The portable kernels round with [`OutElem::from_f32`]; both paths give identical bits (the
//! kernels' tests compare them on every type, special values included).

use super::output::{Bf16, OutElem, F16};

/// Which of the three output types a kernel writes (a constant, so `match`es on it fold away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutKind {
    /// float32.
    F32,
    /// IEEE binary16 bit patterns.
    F16,
    /// bfloat16 bit patterns.
    Bf16,
}

/// An output element type of the kernels: [`OutElem`] plus its kind for the SIMD stores.
pub(crate) trait Out: OutElem {
    /// The kind of this type.
    const KIND: OutKind;
    /// The bit pattern (f32 bits, or the 16-bit pattern zero-extended), for the tests.
    #[cfg(test)]
    fn bits(self) -> u32;
}

impl Out for f32 {
    const KIND: OutKind = OutKind::F32;
    #[cfg(test)]
    fn bits(self) -> u32 {
        self.to_bits()
    }
}

impl Out for F16 {
    const KIND: OutKind = OutKind::F16;
    #[cfg(test)]
    fn bits(self) -> u32 {
        self.0 as u32
    }
}

impl Out for Bf16 {
    const KIND: OutKind = OutKind::Bf16;
    #[cfg(test)]
    fn bits(self) -> u32 {
        self.0 as u32
    }
}

/// Whether streaming stores of `O` can start at `p`: every streaming store is 16 bytes wide
/// (8 f16/bf16, or half of 8 f32), so the output must start 16-byte aligned; the kernels store
/// at multiples of 8 elements from there.
#[inline]
pub(crate) fn stream_aligned<O>(p: *const O) -> bool {
    (p as usize) % 16 == 0
}

/// Whether the AVX2 + F16C kernels can run on this CPU.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_f16c() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
}

/// Whether the AVX2 + F16C kernels can run on this CPU: never off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(crate) fn has_avx2_f16c() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    //! AVX2 + F16C helpers. Every function carries the target features, so it inlines into
    //! the kernels (which carry them too).

    use super::{Out, OutKind};
    use std::arch::x86_64::*;

    /// f32 → bfloat16 bits in the low half of each 32-bit lane: round to nearest even on the
    /// bits (`(b + 0x7FFF + lsb) >> 16`); a NaN is truncated instead, with its quiet bit set.
    /// Identical to [`super::super::output::f32_to_bf16`]. NaNs are rare, so they are fixed
    /// on a separate (predictable) branch.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn bf16_lanes(v: __m256) -> __m256i {
        let b = _mm256_castps_si256(v);
        let hi = _mm256_srli_epi32::<16>(b);
        let bias = _mm256_add_epi32(
            _mm256_and_si256(hi, _mm256_set1_epi32(1)),
            _mm256_set1_epi32(0x7FFF),
        );
        let r = _mm256_srli_epi32::<16>(_mm256_add_epi32(b, bias));
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v);
        if _mm256_movemask_ps(nan) == 0 {
            return r;
        }
        let quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
        _mm256_blendv_epi8(r, quiet, _mm256_castps_si256(nan))
    }

    /// 8 f32 → 8 bfloat16 bit patterns (see [`bf16_lanes`]).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn bf16x8(v: __m256) -> __m128i {
        let r = bf16_lanes(v);
        // Every lane is ≤ 0xFFFF, so the unsigned saturating pack keeps it as is.
        _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r))
    }

    /// 16 f32 (`a` then `b`) → 16 bfloat16 bit patterns (see [`bf16_lanes`]).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn bf16x16(a: __m256, b: __m256) -> __m256i {
        // The in-lane pack gives [a0..3, b0..3, a4..7, b4..7]; reorder the 64-bit quarters.
        let p = _mm256_packus_epi32(bf16_lanes(a), bf16_lanes(b));
        _mm256_permute4x64_epi64::<0b11_01_10_00>(p)
    }

    /// Store 16 bytes at `p`: plain, or (`NT`) streaming (`p` 16-byte aligned).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn st128<const NT: bool>(p: *mut __m128i, h: __m128i) {
        if NT {
            _mm_stream_si128(p, h);
        } else {
            _mm_storeu_si128(p, h);
        }
    }

    /// Round 8 exact f32 values into `O` and store them at `p` (8 elements): plain unaligned
    /// stores, or (`NT`) 16-byte non-temporal stores, which need `p` 16-byte aligned.
    ///
    /// f16 uses F16C's `vcvtps2ph` with round-to-nearest-even (NaN made quiet, payload
    /// truncated: the same bits as [`super::super::half::f32_to_f16`]).
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(crate) unsafe fn store8<O: Out, const NT: bool>(p: *mut O, v: __m256) {
        match O::KIND {
            OutKind::F32 => {
                let p = p.cast::<f32>();
                if NT {
                    _mm_stream_ps(p, _mm256_castps256_ps128(v));
                    _mm_stream_ps(p.add(4), _mm256_extractf128_ps::<1>(v));
                } else {
                    _mm256_storeu_ps(p, v);
                }
            }
            OutKind::F16 => {
                st128::<NT>(p.cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v));
            }
            OutKind::Bf16 => st128::<NT>(p.cast(), bf16x8(v)),
        }
    }

    /// [`store8`] of 16 values (`a` then `b`) at `p`; bf16 packs both halves at once.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(crate) unsafe fn store16<O: Out, const NT: bool>(p: *mut O, a: __m256, b: __m256) {
        match O::KIND {
            OutKind::F32 | OutKind::F16 => {
                store8::<O, NT>(p, a);
                store8::<O, NT>(p.add(8), b);
            }
            OutKind::Bf16 => {
                let h = bf16x16(a, b);
                if NT {
                    let p = p.cast::<__m128i>();
                    _mm_stream_si128(p, _mm256_castsi256_si128(h));
                    _mm_stream_si128(p.add(1), _mm256_extracti128_si256::<1>(h));
                } else {
                    _mm256_storeu_si256(p.cast(), h);
                }
            }
        }
    }

    /// `p[0..16] = f·v[i]` (then `− m` when `SUB`, `+ m` when `ADD`) for the 16 signed bytes
    /// of `v`, rounded into `O`. `mul` then `sub`/`add`, as the references compute it.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(crate) unsafe fn put16<O: Out, const NT: bool, const SUB: bool, const ADD: bool>(
        p: *mut O,
        v: __m128i,
        f: __m256,
        m: __m256,
    ) {
        let a = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
        let b = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(v, v)));
        let (mut a, mut b) = (_mm256_mul_ps(f, a), _mm256_mul_ps(f, b));
        if SUB {
            a = _mm256_sub_ps(a, m);
            b = _mm256_sub_ps(b, m);
        }
        if ADD {
            a = _mm256_add_ps(a, m);
            b = _mm256_add_ps(b, m);
        }
        store16::<O, NT>(p, a, b);
    }

    /// The store fence that orders streaming stores before anything the caller does next.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn fence<const NT: bool>() {
        if NT {
            _mm_sfence();
        }
    }
}
