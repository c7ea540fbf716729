//! GGUF/ggml block types: the type table and threaded whole-tensor entry points.
//!
//! A tensor is a byte buffer of whole blocks; block `k` holds elements
//! `k·block_size .. (k+1)·block_size` (row-major, rows are whole numbers of blocks).

use super::output::OutSlice;
use super::simd::Out;
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

/// Blocks per parallel task (a few hundred KiB to 2 MiB of float32 output).
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

/// How the kernels write the output. The values are identical either way; only the speed
/// differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stores {
    /// Streaming stores when the output is larger than the last-level cache
    /// ([`last_level_cache_bytes`], at most 32 MiB) *and* `reused` (a caller's buffer whose
    /// pages are already mapped); plain stores otherwise. Streaming into fresh pages is slower
    /// than plain stores (see `gguf_superblock::dequantize_blocks_stores`), and an output that
    /// fits in the cache is better left there for whoever reads it next.
    Auto {
        /// Whether the output buffer was used before (its pages are mapped and faulted in).
        reused: bool,
    },
    /// Plain (cached) stores.
    Plain,
    /// Non-temporal stores that bypass the caches (on x86-64 with AVX2 + F16C and a 16-byte
    /// aligned output; plain stores otherwise).
    Streaming,
}

impl Stores {
    /// `"auto"`, `"plain"` or `"streaming"`; `reused` is used by `"auto"`.
    pub fn from_name(name: &str, reused: bool) -> CoreResult<Self> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Ok(Stores::Auto { reused }),
            "plain" => Ok(Stores::Plain),
            "streaming" | "stream" => Ok(Stores::Streaming),
            _ => Err(CoreError::InvalidArgument(format!(
                "stores must be \"auto\", \"plain\" or \"streaming\", got {name:?}"
            ))),
        }
    }

    /// Whether an output of `out_bytes` bytes is written with streaming stores.
    pub fn streaming(self, out_bytes: usize) -> bool {
        match self {
            Stores::Auto { reused } => reused && out_bytes > last_level_cache_bytes(),
            Stores::Plain => false,
            Stores::Streaming => true,
        }
    }
}

/// The last-level cache size the `Auto` store choice compares outputs with, in bytes:
/// `/sys/devices/system/cpu/cpu0/cache/index3/size` read once (32 MiB where it cannot be read),
/// capped at 32 MiB. The cap is there because a VM guest sees the host's whole L3: the 2-vCPU
/// benchmark VM reports 480 MiB, yet a reused float32 output written with plain stores ties
/// with streaming stores only up to 32 MiB (6.3 vs 6.2 Gelem/s) and loses from 64 MiB on
/// (3.4–3.9 vs 5.6–6.1 Gelem/s, and 1.9 vs 6.0 at 128 MiB); one core rarely keeps more than
/// that to itself on bare metal either.
pub fn last_level_cache_bytes() -> usize {
    static LLC: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LLC.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
            .ok()
            .and_then(|s| parse_cache_size(&s))
            .map_or(LLC_CAP, |b| b.min(LLC_CAP))
    })
}

/// Upper bound (and fallback) of [`last_level_cache_bytes`].
const LLC_CAP: usize = 32 << 20;

/// `"491520K"`, `"32M"`, `"1G"` or a plain byte count → bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: usize = digits.parse().ok()?;
    let mul = match unit {
        "" | "B" => 1,
        "K" | "KB" | "KiB" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul).filter(|&b| b > 0)
}

/// Dequantize `src` (whole blocks of `ty`) into float32 `dst` (length `n_blocks·block_size`)
/// with plain stores, on up to `n_threads` threads (0: `CAPSCALE_NUM_THREADS` or all cores).
pub fn dequantize(ty: GgufType, src: &[u8], dst: &mut [f32], n_threads: usize) -> CoreResult<()> {
    dequantize_into(ty, src, OutSlice::F32(dst), n_threads, Stores::Plain)
}

/// Dequantize `src` (whole blocks of `ty`) into `out` — float32, float16 or bfloat16 of length
/// `n_blocks·block_size`; every value is computed exactly in f32 and rounded once (f16/bf16:
/// nearest even; NaN stays NaN) — on up to `n_threads` threads (0: `CAPSCALE_NUM_THREADS` or
/// all cores), in parallel over chunks of blocks, writing with the chosen [`Stores`].
///
/// Errors: `Truncated` when `src` is not a whole number of blocks, `Shape` when `out` has the
/// wrong length.
pub fn dequantize_into(
    ty: GgufType,
    src: &[u8],
    out: OutSlice<'_>,
    n_threads: usize,
    stores: Stores,
) -> CoreResult<()> {
    match out {
        OutSlice::F32(d) => dequantize_typed(ty, src, d, n_threads, stores),
        OutSlice::F16(d) => dequantize_typed(ty, src, d, n_threads, stores),
        OutSlice::Bf16(d) => dequantize_typed(ty, src, d, n_threads, stores),
    }
}

/// [`dequantize_into`] for one output type.
fn dequantize_typed<O: Out>(
    ty: GgufType,
    src: &[u8],
    dst: &mut [O],
    n_threads: usize,
    stores: Stores,
) -> CoreResult<()> {
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
    let stream = stores.streaming(std::mem::size_of_val(dst));
    let ts = ty.type_size();
    let chunk = CHUNK_BLOCKS * if bs == 1 { 256 } else { 1 };
    if n_threads == 1 || nb <= chunk {
        // One task: no thread pool round trip (matters for small, cache-resident tensors).
        return dequantize_serial_into(ty, src, dst, stream);
    }
    install(n_threads, || {
        src.par_chunks(chunk * ts)
            .zip(dst.par_chunks_mut(chunk * bs))
            .try_for_each(|(s, d)| dequantize_serial_into(ty, s, d, stream))
    })?
}

/// Single-threaded dequantization of whole blocks into float32 with plain stores
/// (`dst.len() == n_blocks·block_size`).
pub fn dequantize_serial(ty: GgufType, src: &[u8], dst: &mut [f32]) -> CoreResult<()> {
    dequantize_serial_into(ty, src, dst, false)
}

/// Single-threaded dequantization into any output type, plain or streaming stores.
fn dequantize_serial_into<O: Out>(
    ty: GgufType,
    src: &[u8],
    dst: &mut [O],
    stream: bool,
) -> CoreResult<()> {
    if ty.is_superblock() {
        gguf_superblock::dequantize_blocks_into(ty, src, dst, stream)
    } else {
        gguf_block32::dequantize_blocks_into(ty, src, dst, stream)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dequant::output::{Bf16, OutElem, F16};

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("491520K\n"), Some(491_520 << 10));
        assert_eq!(parse_cache_size("32M"), Some(32 << 20));
        assert_eq!(parse_cache_size("1G"), Some(1 << 30));
        assert_eq!(parse_cache_size("4096"), Some(4096));
        assert_eq!(parse_cache_size("0K"), None);
        assert_eq!(parse_cache_size("lots"), None);
        assert!(last_level_cache_bytes() > 0 && last_level_cache_bytes() <= 32 << 20);
    }

    #[test]
    fn store_choice() {
        let llc = last_level_cache_bytes();
        assert!(Stores::from_name("auto", true).unwrap().streaming(llc + 1));
        assert!(!Stores::from_name("Auto", true).unwrap().streaming(llc));
        assert!(!Stores::from_name("auto", false).unwrap().streaming(llc + 1));
        assert!(Stores::from_name("streaming", false).unwrap().streaming(16));
        assert!(!Stores::from_name("plain", true)
            .unwrap()
            .streaming(usize::MAX));
        let e = Stores::from_name("fast", false).unwrap_err();
        assert!(matches!(e, CoreError::InvalidArgument(m) if m.contains("\"fast\"")));
    }

    /// Every type on 1 and 2 threads, several tasks, every output type and store kind: the
    /// same bits as one serial f32 call rounded once.
    #[test]
    fn threaded_entry_point_matches_serial() {
        let mut s = 0x0123_4567_89AB_CDEFu64;
        for ty in GgufType::ALL {
            let nb = 2 * CHUNK_BLOCKS * if ty.block_size() == 1 { 256 } else { 1 } + 3;
            let src: Vec<u8> = (0..nb * ty.type_size())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    // Keep f16/bf16/f32 exponents away from NaN so payloads never matter.
                    (s as u8) & 0x3F
                })
                .collect();
            let n = nb * ty.block_size();
            let mut want = vec![0f32; n];
            dequantize_serial(ty, &src, &mut want).unwrap();
            for threads in [1, 2] {
                for stores in [
                    Stores::Plain,
                    Stores::Streaming,
                    Stores::Auto { reused: true },
                ] {
                    let mut y = vec![0f32; n];
                    dequantize_into(ty, &src, OutSlice::F32(&mut y), threads, stores).unwrap();
                    assert!(y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
                    let mut h = vec![F16::default(); n];
                    dequantize_into(ty, &src, OutSlice::F16(&mut h), threads, stores).unwrap();
                    assert!(h.iter().zip(&want).all(|(a, &b)| *a == F16::from_f32(b)));
                    let mut b = vec![Bf16::default(); n];
                    dequantize_into(ty, &src, OutSlice::Bf16(&mut b), threads, stores).unwrap();
                    assert!(b.iter().zip(&want).all(|(a, &x)| *a == Bf16::from_f32(x)));
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let mut y = vec![0f32; 31];
        let r = dequantize_into(
            GgufType::Q4_0,
            &[0; 18],
            OutSlice::F32(&mut y),
            1,
            Stores::Plain,
        );
        assert!(matches!(r, Err(CoreError::Shape(m)) if m.contains("31 elements")));
        let mut h = vec![F16::default(); 32];
        let r = dequantize_into(
            GgufType::Q4_0,
            &[0; 19],
            OutSlice::F16(&mut h),
            0,
            Stores::Plain,
        );
        assert!(matches!(r, Err(CoreError::Truncated(_))));
    }
}
