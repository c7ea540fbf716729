//! Output element types of the dequantization kernels: every kernel computes exact f32 values
//! and rounds each one *once* into the requested storage type.
//!
//! * `f32` — stored as is.
//! * [`F16`] — IEEE binary16 bits, round-to-nearest-even (NumPy's `astype(np.float16)`).
//! * [`Bf16`] — bfloat16 bits, round-to-nearest-even, NaN kept quiet (torch's
//!   `.to(torch.bfloat16)`).

use super::half::f32_to_f16;

/// IEEE binary16, as its bit pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct F16(pub u16);

/// bfloat16, as its bit pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Bf16(pub u16);

/// f32 → bf16 bits with round-to-nearest-even; NaN stays NaN (made quiet), ±inf stays ±inf.
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) as u16) | 0x0040;
    }
    let round = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// A type a kernel can write: f32, [`F16`] or [`Bf16`].
pub trait OutElem: Copy + Send + Sync + Default + 'static {
    /// Name for messages (`"float32"`, `"float16"`, `"bfloat16"`).
    const NAME: &'static str;
    /// Round an exact f32 value into this type.
    fn from_f32(x: f32) -> Self;
}

impl OutElem for f32 {
    const NAME: &'static str = "float32";
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
}

impl OutElem for F16 {
    const NAME: &'static str = "float16";
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        F16(f32_to_f16(x))
    }
}

impl OutElem for Bf16 {
    const NAME: &'static str = "bfloat16";
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        Bf16(f32_to_bf16(x))
    }
}

/// A mutable output buffer of one of the three element types (what the bindings hand over).
pub enum OutSlice<'a> {
    /// float32 output.
    F32(&'a mut [f32]),
    /// float16 output (bit patterns).
    F16(&'a mut [F16]),
    /// bfloat16 output (bit patterns).
    Bf16(&'a mut [Bf16]),
}

impl OutSlice<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            OutSlice::F32(s) => s.len(),
            OutSlice::F16(s) => s.len(),
            OutSlice::Bf16(s) => s.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// View u16 bit patterns as [`F16`] values (same layout: `F16` is `repr(transparent)`).
pub fn as_f16_mut(s: &mut [u16]) -> &mut [F16] {
    // SAFETY: `F16` is `#[repr(transparent)]` over `u16`: same size, alignment and validity.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<F16>(), s.len()) }
}

/// View u16 bit patterns as [`Bf16`] values (same layout: `Bf16` is `repr(transparent)`).
pub fn as_bf16_mut(s: &mut [u16]) -> &mut [Bf16] {
    // SAFETY: `Bf16` is `#[repr(transparent)]` over `u16`: same size, alignment and validity.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<Bf16>(), s.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_half_to_even_and_keeps_specials() {
        assert_eq!(f32_to_bf16(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3F80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(f32_to_bf16(f32::INFINITY), 0x7F80);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7F80); // rounds up to inf
        assert_eq!(f32_to_bf16(-0.0), 0x8000);
        let nan = f32_to_bf16(f32::from_bits(0x7F80_0001));
        assert_eq!(nan & 0x7F80, 0x7F80);
        assert_ne!(nan & 0x7F, 0);
    }
}
