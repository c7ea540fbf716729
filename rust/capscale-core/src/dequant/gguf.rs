//! GGUF/ggml block types: the type table and threaded whole-tensor entry points.
//!
//! A tensor is a byte buffer of whole blocks; block `k` holds elements
//! `k·block_size .. (k+1)·block_size` (row-major, rows are whole numbers of blocks).

use super::{gguf_block32, gguf_superblock};
use crate::error::{CoreError, CoreResult};
use crate::parallel::install;
use rayon::prelude::*;

/// A GGUF tensor type capscale can dequantize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgufType {
    /// 32-bit float (a plain copy).
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// 32 × 4-bit, one f16 scale, offset −8.
    Q4_0,
    /// 32 × 4-bit, f16 scale and min.
    Q4_1,
    /// 32 × 5-bit, f16 scale, offset −16.
    Q5_0,
    /// 32 × 5-bit, f16 scale and min.
    Q5_1,
    /// 32 × int8, f16 scale.
    Q8_0,
    /// 256-element super-block, 2-bit with 4-bit scales/mins.
    Q2_K,
    /// 256-element super-block, 3-bit with 6-bit scales.
    Q3_K,
    /// 256-element super-block, 4-bit with 6-bit scales/mins.
    Q4_K,
    /// 256-element super-block, 5-bit with 6-bit scales/mins.
    Q5_K,
    /// 256-element super-block, 6-bit with int8 scales.
    Q6_K,
    /// 32 × 4-bit non-linear codebook (`kvalues_iq4nl`), f16 scale.
    IQ4_NL,
    /// 256-element super-block of 4-bit codebook values with 6-bit sub-block scales.
    IQ4_XS,
    /// Ternary, base-3 packed (1.6875 bits per weight).
    TQ1_0,
    /// Ternary, 2-bit packed.
    TQ2_0,
    /// Microscaling FP4 (E2M1 values, E8M0 scale per 32).
    MXFP4,
}

impl GgufType {
    /// Every supported type, in ggml id order.
    pub const ALL: [GgufType; 18] = [
        GgufType::F32,
        GgufType::F16,
        GgufType::Q4_0,
        GgufType::Q4_1,
        GgufType::Q5_0,
        GgufType::Q5_1,
        GgufType::Q8_0,
        GgufType::Q2_K,
        GgufType::Q3_K,
        GgufType::Q4_K,
        GgufType::Q5_K,
        GgufType::Q6_K,
        GgufType::IQ4_NL,
        GgufType::IQ4_XS,
        GgufType::BF16,
        GgufType::TQ1_0,
        GgufType::TQ2_0,
        GgufType::MXFP4,
    ];

    /// The ggml name (`"Q4_K"`, …).
    pub fn name(self) -> &'static str {
        match self {
            GgufType::F32 => "F32",
            GgufType::F16 => "F16",
            GgufType::BF16 => "BF16",
            GgufType::Q4_0 => "Q4_0",
            GgufType::Q4_1 => "Q4_1",
            GgufType::Q5_0 => "Q5_0",
            GgufType::Q5_1 => "Q5_1",
            GgufType::Q8_0 => "Q8_0",
            GgufType::Q2_K => "Q2_K",
            GgufType::Q3_K => "Q3_K",
            GgufType::Q4_K => "Q4_K",
            GgufType::Q5_K => "Q5_K",
            GgufType::Q6_K => "Q6_K",
            GgufType::IQ4_NL => "IQ4_NL",
            GgufType::IQ4_XS => "IQ4_XS",
            GgufType::TQ1_0 => "TQ1_0",
            GgufType::TQ2_0 => "TQ2_0",
            GgufType::MXFP4 => "MXFP4",
        }
    }

    /// The ggml type id (as stored in GGUF files).
    pub fn id(self) -> u32 {
        match self {
            GgufType::F32 => 0,
            GgufType::F16 => 1,
            GgufType::Q4_0 => 2,
            GgufType::Q4_1 => 3,
            GgufType::Q5_0 => 6,
            GgufType::Q5_1 => 7,
            GgufType::Q8_0 => 8,
            GgufType::Q2_K => 10,
            GgufType::Q3_K => 11,
            GgufType::Q4_K => 12,
            GgufType::Q5_K => 13,
            GgufType::Q6_K => 14,
            GgufType::IQ4_NL => 20,
            GgufType::IQ4_XS => 23,
            GgufType::BF16 => 30,
            GgufType::TQ1_0 => 34,
            GgufType::TQ2_0 => 35,
            GgufType::MXFP4 => 39,
        }
    }

    /// Look a type up by its ggml name (case-insensitive).
    pub fn from_name(name: &str) -> CoreResult<Self> {
        let up = name.to_ascii_uppercase();
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name() == up)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
                CoreError::UnknownName(format!(
                    "unknown GGUF type {name:?}; supported: {}",
                    names.join(", ")
                ))
            })
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            GgufType::F32 | GgufType::F16 | GgufType::BF16 => 1,
            GgufType::Q4_0
            | GgufType::Q4_1
            | GgufType::Q5_0
            | GgufType::Q5_1
            | GgufType::Q8_0
            | GgufType::IQ4_NL
            | GgufType::MXFP4 => 32,
            _ => 256,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            GgufType::F32 => 4,
            GgufType::F16 | GgufType::BF16 => 2,
            GgufType::Q4_0 => 18,
            GgufType::Q4_1 => 20,
            GgufType::Q5_0 => 22,
            GgufType::Q5_1 => 24,
            GgufType::Q8_0 => 34,
            GgufType::Q2_K => 84,
            GgufType::Q3_K => 110,
            GgufType::Q4_K => 144,
            GgufType::Q5_K => 176,
            GgufType::Q6_K => 210,
            GgufType::IQ4_NL => 18,
            GgufType::IQ4_XS => 136,
            GgufType::TQ1_0 => 54,
            GgufType::TQ2_0 => 66,
            GgufType::MXFP4 => 17,
        }
    }

    /// Bits per weight (`8·type_size / block_size`).
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.type_size() as f64 / self.block_size() as f64
    }

    fn is_superblock(self) -> bool {
        self.block_size() == 256
    }
}

/// Blocks per parallel task (a few hundred KiB of output).
const CHUNK_BLOCKS: usize = 2048;

/// Number of blocks in `n_bytes` of type `ty`, or a `Truncated` error.
pub fn n_blocks(ty: GgufType, n_bytes: usize) -> CoreResult<usize> {
    let ts = ty.type_size();
    if n_bytes % ts != 0 {
        return Err(CoreError::Truncated(format!(
            "{n_bytes} bytes is not a whole number of {} blocks ({ts} bytes each): the buffer \
             is truncated or of another type",
            ty.name()
        )));
    }
    Ok(n_bytes / ts)
}

/// Dequantize `src` (whole blocks of `ty`) into `dst` (length `n_blocks·block_size`), on up to
/// `n_threads` threads (0: all).
pub fn dequantize(ty: GgufType, src: &[u8], dst: &mut [f32], n_threads: usize) -> CoreResult<()> {
    let nb = n_blocks(ty, src.len())?;
    let bs = ty.block_size();
    if dst.len() != nb * bs {
        return Err(CoreError::Shape(format!(
            "output has {} elements, the {} data holds {}",
            dst.len(),
            ty.name(),
            nb * bs
        )));
    }
    let ts = ty.type_size();
    let chunk = CHUNK_BLOCKS * if bs == 1 { 256 } else { 1 };
    install(n_threads, || {
        src.par_chunks(chunk * ts)
            .zip(dst.par_chunks_mut(chunk * bs))
            .try_for_each(|(s, d)| dequantize_serial(ty, s, d))
    })?
}

/// Single-threaded dequantization of whole blocks (`dst.len() == n_blocks·block_size`).
pub fn dequantize_serial(ty: GgufType, src: &[u8], dst: &mut [f32]) -> CoreResult<()> {
    match ty {
        GgufType::F32 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Ok(())
        }
        t if t.is_superblock() => gguf_superblock::dequantize_blocks(t, src, dst),
        t => gguf_block32::dequantize_blocks(t, src, dst),
    }
}

/// Quantize `src` (a whole number of blocks of `ty`) into `dst` with the reference
/// round-to-nearest quantizer (byte-identical to ggml's `quantize_row_*_ref` and gguf-py).
pub fn quantize(ty: GgufType, src: &[f32], dst: &mut [u8]) -> CoreResult<()> {
    let bs = ty.block_size();
    if src.len() % bs != 0 {
        return Err(CoreError::Shape(format!(
            "{} elements are not a whole number of {} blocks ({bs} elements each)",
            src.len(),
            ty.name()
        )));
    }
    let nb = src.len() / bs;
    if dst.len() != nb * ty.type_size() {
        return Err(CoreError::Shape(format!(
            "output has {} bytes, {nb} {} blocks need {}",
            dst.len(),
            ty.name(),
            nb * ty.type_size()
        )));
    }
    match ty {
        GgufType::F32 => {
            for (o, x) in dst.chunks_exact_mut(4).zip(src) {
                o.copy_from_slice(&x.to_le_bytes());
            }
            Ok(())
        }
        t if t.is_superblock() => gguf_superblock::quantize_blocks(t, src, dst),
        t => gguf_block32::quantize_blocks(t, src, dst),
    }
}
