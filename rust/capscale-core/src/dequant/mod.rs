//! Dequantization (and reference quantization) of LLM weight formats.
//!
//! * [`gguf`] — the GGUF/ggml block types: the type table and the threaded entry points.
//! * [`half`] — exact f16/bf16 ↔ f32 conversions.
//! * [`output`] — the output element types (f32, f16, bf16), rounded once from exact f32.
//! * [`gguf_block32`] — 32-element blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) and the
//!   16-bit float types.
//! * [`gguf_superblock`] — 256-element super-blocks (Q2_K … Q6_K, IQ4_XS, TQ1_0, TQ2_0).
//! * [`bnb`] — bitsandbytes NF4/FP4 (blockwise absmax, nested absmax) and LLM.int8 rows.
//! * [`gptq`] — GPTQ (v1/v2 zeros, g_idx, 2/3/4/8 bit) and AWQ GEMM packed int4.
//! * [`affine`] — affine group quantization for precision sweeps (fake quant in one pass).

pub mod affine;
pub mod bnb;
pub mod gguf;
pub mod gguf_block32;
pub mod gguf_superblock;
pub mod gptq;
pub mod half;
pub mod output;
pub(crate) mod simd;

/// A small deterministic generator for the kernels' tests (xorshift64*).
#[cfg(test)]
pub(crate) struct TestRng(pub(crate) u64);

#[cfg(test)]
impl TestRng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-2, 2).
    pub(crate) fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
    }
}
