//! bitsandbytes weights: blockwise 4-bit (NF4, FP4; plain or nested "double-quant" absmax) and
//! LLM.int8 rows.
//!
//! **4-bit** (`bitsandbytes.functional.quantize_4bit` layout): the weight is flattened; packed
//! byte `i` holds elements `2i` (high nibble) and `2i + 1` (low nibble); every `blocksize`
//! consecutive elements share one absmax (the last block may be partial, the element count may
//! be odd). Element `i` is `code[q_i] · absmax[i / blocksize]` in f32, rounded once into the
//! output type. With nested absmax, block `b`'s absmax is first
//! `code2[qabsmax[b]] · absmax2[b / blocksize2] + offset` (f32 multiply, then f32 add; never
//! fused), exactly as bitsandbytes' `dequantize_blockwise` followed by `absmax += offset`.
//!
//! **LLM.int8** (`Linear8bitLt`, row-wise format): `q · SCB[row] · f32(7.874015718698502e-3)`,
//! evaluated left to right in f32 (two roundings; bitsandbytes multiplies by f32(1/127) rather
//! than dividing by 127, which differs in the last ulp).
//!
//! Non-finite absmax / SCB values propagate (Inf·0 = NaN, as in bitsandbytes); they are not
//! rejected. When both factors of a product are NaN, which payload survives is unspecified.
//!
//! Speed: AVX2 (+F16C for float16 output) with runtime detection; the 16-entry table scaled by
//! the block's absmax is looked up 8 elements at a time with two `vpermps` and a blend on bit 3
//! of the code. The portable path gives identical bits (tested).
//!
//! The [`store`] module (kernel variant choice and the AVX2 run store) is shared with the
//! GPTQ/AWQ kernels; the 8-lane rounding stores are [`super::simd`]'s.

use super::output::OutSlice;
use crate::error::{CoreError, CoreResult};
use crate::parallel::install;
use rayon::prelude::*;

/// Smallest supported 4-bit blocksize.
pub const MIN_BLOCKSIZE: usize = 32;
/// Largest supported 4-bit blocksize.
pub const MAX_BLOCKSIZE: usize = 4096;

/// bitsandbytes' LLM.int8 dequantization constant, `f32(1/127)` as bitsandbytes writes it
/// (`7.874015718698502e-3`, a double rounded to f32, as torch does with a Python scalar).
pub const INT8_SCALE: f32 = 7.874_015_718_698_502e-3_f64 as f32;

/// Elements handled by one parallel task (about; whole blocks / rows).
const TASK_ELEMS: usize = 1 << 15;

// ---------------------------------------------------------------------------------------------
// Output stores (shared with the GPTQ/AWQ kernels).
// ---------------------------------------------------------------------------------------------

pub(crate) mod store {
    //! Which kernel variant runs (portable, AVX2 with plain or with streaming stores), and
    //! (x86-64) [`x86::emit_run`], the run store of the GPTQ/AWQ kernels. The output element
    //! types and the 8-lane rounding stores are [`super::super::simd`]'s.

    /// Which variant of a kernel runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Path {
        /// Scalar code (any CPU).
        Portable,
        /// AVX2 with plain (cached) stores.
        Avx2,
        /// AVX2 with non-temporal (streaming) stores, for outputs far larger than the caches.
        Stream,
    }

    /// Reused outputs at least this large (bytes) are written with streaming stores: they do
    /// not fit in the caches, and skipping the read-for-ownership of every line is worth
    /// ~1.5-2.5× on the scattered-row writes of GPTQ/AWQ (and ~1.3× on sequential ones).
    /// Smaller outputs stay in the cache for whoever reads them next. Fresh (never touched)
    /// outputs always take plain stores: their pages are zeroed in the cache on first touch,
    /// and streaming over those lines is slower than writing them.
    pub(crate) const STREAM_MIN_BYTES: usize = 16 << 20;

    /// The variant for `dst`: streaming when the CPU has AVX2 and `dst` is `reused` (a
    /// caller's buffer, pages already mapped), large, 16-byte aligned and `granular` (every
    /// vector store the kernel issues then lands 16-byte aligned).
    pub(crate) fn choose<O>(dst: &[O], granular: bool, reused: bool) -> Path {
        if !super::super::simd::has_avx2_f16c() {
            return Path::Portable;
        }
        let big = std::mem::size_of_val(dst) >= STREAM_MIN_BYTES;
        let aligned = super::super::simd::stream_aligned(dst.as_ptr());
        if reused && big && aligned && granular {
            Path::Stream
        } else {
            Path::Avx2
        }
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) mod x86 {
        use super::super::super::simd::{x86::store8, Out};
        use std::arch::x86_64::*;

        /// Round `src` (exact f32 values) into `O` and write them at `dst..dst + src.len()`.
        /// With `NT`, the whole 64-byte lines inside the run take streaming stores and the
        /// partial lines at its two ends plain ones: a streamed partial line would be flushed
        /// from the write-combining buffer half-written, which costs a read-modify-write in
        /// memory (the rows of GPTQ/AWQ outputs are written in short runs, and NumPy buffers
        /// start 16 bytes past a line).
        ///
        /// # Safety
        /// AVX2 and F16C must be available, `dst..dst + src.len()` writable and `dst` aligned
        /// to `O`; with `NT` the run's start must be 16-byte aligned up to a multiple of
        /// `size_of::<O>()` (true when the output's base is 16-byte aligned).
        #[target_feature(enable = "avx2,f16c")]
        #[inline]
        pub(crate) unsafe fn emit_run<O: Out, const NT: bool>(dst: *mut O, src: &[f32]) {
            let n = src.len();
            let size = std::mem::size_of::<O>();
            let sp = src.as_ptr();
            let mut i = 0;
            if NT {
                let mis = (dst as usize) % 64;
                let head = if mis == 0 {
                    0
                } else {
                    ((64 - mis) / size).min(n)
                };
                while i < head {
                    *dst.add(i) = O::from_f32(*sp.add(i));
                    i += 1;
                }
                let body = head + ((n - head) * size / 64) * 64 / size;
                while i + 8 <= body {
                    store8::<O, true>(dst.add(i), _mm256_loadu_ps(sp.add(i)));
                    i += 8;
                }
            }
            while i + 8 <= n {
                store8::<O, false>(dst.add(i), _mm256_loadu_ps(sp.add(i)));
                i += 8;
            }
            while i < n {
                *dst.add(i) = O::from_f32(*sp.add(i));
                i += 1;
            }
        }
    }
}

use super::simd::Out;
use store::Path;

// ---------------------------------------------------------------------------------------------
// 4-bit: arguments and checks.
// ---------------------------------------------------------------------------------------------

/// Nested ("double quant") absmax: block `b`'s absmax is
/// `code2[qabsmax[b]] · absmax2[b / blocksize2] + offset` in f32.
#[derive(Debug, Clone, Copy)]
pub struct NestedAbsmax<'a> {
    /// One 8-bit code per 4-bit block.
    pub qabsmax: &'a [u8],
    /// One f32 scale per `blocksize2` codes.
    pub absmax2: &'a [f32],
    /// The 256-entry code table of the codes (bitsandbytes' `nested_quant_map`).
    pub code2: &'a [f32],
    /// Codes per `absmax2` entry (bitsandbytes uses 256).
    pub blocksize2: usize,
    /// Added after the multiplication (`nested_offset`, the mean of the original absmax).
    pub offset: f32,
}

/// The per-block absmax of a 4-bit tensor.
#[derive(Debug, Clone, Copy)]
pub enum Absmax<'a> {
    /// One f32 per block.
    Plain(&'a [f32]),
    /// Quantized with a second level of blockwise quantization.
    Nested(NestedAbsmax<'a>),
}

impl Absmax<'_> {
    /// The absmax of block `b` (`b` checked by [`check_4bit`]).
    #[inline(always)]
    fn block(&self, b: usize) -> f32 {
        match self {
            Absmax::Plain(a) => a[b],
            Absmax::Nested(n) => {
                let code = n.code2[n.qabsmax[b] as usize];
                let scale = n.absmax2[b / n.blocksize2];
                code * scale + n.offset
            }
        }
    }
}

/// `ceil(a / b)` for `b > 0`.
#[inline]
fn div_ceil(a: usize, b: usize) -> usize {
    a / b + usize::from(a % b != 0)
}

/// Validate a 4-bit tensor of `n` elements; returns the number of blocks.
pub fn check_4bit(
    packed_len: usize,
    absmax: &Absmax<'_>,
    code_len: usize,
    blocksize: usize,
    n: usize,
) -> CoreResult<usize> {
    if !(MIN_BLOCKSIZE..=MAX_BLOCKSIZE).contains(&blocksize) || !blocksize.is_power_of_two() {
        return Err(CoreError::InvalidArgument(format!(
            "blocksize must be a power of two from {MIN_BLOCKSIZE} to {MAX_BLOCKSIZE}, got \
             {blocksize}"
        )));
    }
    if code_len != 16 {
        return Err(CoreError::Shape(format!(
            "quant_map has {code_len} entries, a 4-bit code table has 16"
        )));
    }
    let need = div_ceil(n, 2);
    if packed_len < need {
        return Err(CoreError::Truncated(format!(
            "packed data has {packed_len} bytes, {n} elements need {need}: the buffer is truncated"
        )));
    }
    if packed_len > need {
        return Err(CoreError::Shape(format!(
            "packed data has {packed_len} bytes, {n} elements need {need}: does shape match?"
        )));
    }
    let nb = div_ceil(n, blocksize);
    match absmax {
        Absmax::Plain(a) => {
            if a.len() != nb {
                return Err(CoreError::Shape(format!(
                    "absmax has {} entries, {n} elements in blocks of {blocksize} need {nb}",
                    a.len()
                )));
            }
        }
        Absmax::Nested(nest) => {
            if nest.qabsmax.len() != nb {
                return Err(CoreError::Shape(format!(
                    "nested qabsmax has {} entries, {n} elements in blocks of {blocksize} need \
                     {nb}",
                    nest.qabsmax.len()
                )));
            }
            if nest.code2.len() != 256 {
                return Err(CoreError::Shape(format!(
                    "nested quant_map2 has {} entries, an 8-bit code table has 256",
                    nest.code2.len()
                )));
            }
            if nest.blocksize2 == 0 {
                return Err(CoreError::InvalidArgument(
                    "nested blocksize2 must be positive, got 0".into(),
                ));
            }
            let nb2 = div_ceil(nb, nest.blocksize2);
            if nest.absmax2.len() != nb2 {
                return Err(CoreError::Shape(format!(
                    "nested absmax2 has {} entries, {nb} codes in blocks of {} need {nb2}",
                    nest.absmax2.len(),
                    nest.blocksize2
                )));
            }
        }
    }
    Ok(nb)
}

fn check_out_len(len: usize, n: usize) -> CoreResult<()> {
    if len == n {
        Ok(())
    } else {
        Err(CoreError::Shape(format!(
            "output has {len} elements, the data holds {n}"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// 4-bit: kernels.
// ---------------------------------------------------------------------------------------------

/// Code of element `i` (first of a pair in the high nibble).
#[inline(always)]
fn nibble(packed: &[u8], i: usize) -> usize {
    let b = packed[i / 2];
    (if i % 2 == 0 { b >> 4 } else { b & 0xF }) as usize
}

/// Portable: elements `start..start + dst.len()` of one block with absmax `a`.
#[inline]
fn block_portable<O: Out>(packed: &[u8], code: &[f32; 16], a: f32, start: usize, dst: &mut [O]) {
    if start % 2 == 0 {
        let total = dst.len();
        let bytes = &packed[start / 2..];
        let mut pairs = dst.chunks_exact_mut(2);
        for (d, &b) in (&mut pairs).zip(bytes) {
            d[0] = O::from_f32(code[(b >> 4) as usize] * a);
            d[1] = O::from_f32(code[(b & 0xF) as usize] * a);
        }
        let rest = pairs.into_remainder();
        let done = total - rest.len();
        for (k, d) in rest.iter_mut().enumerate() {
            *d = O::from_f32(code[nibble(packed, start + done + k)] * a);
        }
    } else {
        for (k, d) in dst.iter_mut().enumerate() {
            *d = O::from_f32(code[nibble(packed, start + k)] * a);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_4bit {
    use super::super::simd::{x86::store8, Out};
    use std::arch::x86_64::*;

    /// One block whose first element `start` is even: 32 elements (16 bytes) at a time through
    /// the table `code · a`, the remainder through `tail`.
    ///
    /// # Safety
    /// AVX2 and F16C must be available; `packed` must hold the bytes of elements
    /// `start..start + dst.len()`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn block<O: Out, const NT: bool>(
        packed: &[u8],
        code: &[f32; 16],
        a: f32,
        start: usize,
        dst: &mut [O],
    ) -> usize {
        let va = _mm256_set1_ps(a);
        let tlo = _mm256_mul_ps(_mm256_loadu_ps(code.as_ptr()), va);
        let thi = _mm256_mul_ps(_mm256_loadu_ps(code.as_ptr().add(8)), va);
        let m0f = _mm_set1_epi8(0x0F);
        let bytes = &packed[start / 2..];
        let mut done = 0;
        for (src, out) in bytes.chunks_exact(16).zip(dst.chunks_exact_mut(32)) {
            if src.len() < 16 || out.len() < 32 {
                continue; // never: chunks_exact
            }
            let b = _mm_loadu_si128(src.as_ptr().cast());
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m0f);
            let lo = _mm_and_si128(b, m0f);
            // Element order: byte k gives (high, low).
            let i0 = _mm_unpacklo_epi8(hi, lo);
            let i1 = _mm_unpackhi_epi8(hi, lo);
            let p = out.as_mut_ptr();
            lookup8::<O, NT>(i0, tlo, thi, p);
            lookup8::<O, NT>(_mm_srli_si128::<8>(i0), tlo, thi, p.add(8));
            lookup8::<O, NT>(i1, tlo, thi, p.add(16));
            lookup8::<O, NT>(_mm_srli_si128::<8>(i1), tlo, thi, p.add(24));
            done += 32;
        }
        done
    }

    /// Codes in the low 8 bytes of `idx` → `table[code]` (table in `tlo`, `thi`) → 8 outputs.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn lookup8<O: Out, const NT: bool>(idx: __m128i, tlo: __m256, thi: __m256, p: *mut O) {
        let i = _mm256_cvtepu8_epi32(idx);
        let a = _mm256_permutevar8x32_ps(tlo, i);
        let b = _mm256_permutevar8x32_ps(thi, i);
        // Bit 3 of the code into the sign bit selects the upper half of the table.
        let sel = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(i));
        let v = _mm256_blendv_ps(a, b, sel);
        store8::<O, NT>(p, v);
    }
}

/// Blocks `b0..` covering `dst` (elements `b0·blocksize ..`), serially.
fn run_4bit<O: Out>(
    packed: &[u8],
    absmax: &Absmax<'_>,
    code: &[f32; 16],
    blocksize: usize,
    b0: usize,
    dst: &mut [O],
    path: Path,
) {
    for (k, out) in dst.chunks_mut(blocksize).enumerate() {
        let b = b0 + k;
        let a = absmax.block(b);
        let start = b * blocksize;
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a non-portable path is only chosen when AVX2 and F16C are present, and
            // `Stream` only for a 16-byte aligned output (blocks start at multiples of 32
            // elements, so every 8-element store stays aligned); `start` is even (blocksize
            // is a power of two ≥ 32) and `packed` holds every byte of the block (checked by
            // `check_4bit`).
            match path {
                Path::Avx2 => {
                    done = unsafe { avx2_4bit::block::<O, false>(packed, code, a, start, out) }
                }
                Path::Stream => {
                    done = unsafe { avx2_4bit::block::<O, true>(packed, code, a, start, out) }
                }
                Path::Portable => {}
            }
        }
        block_portable(packed, code, a, start + done, &mut out[done..]);
    }
    fence(path);
}

/// Order streaming stores before the task ends (other threads read the output next).
#[inline]
fn fence(path: Path) {
    #[cfg(target_arch = "x86_64")]
    {
        if path == Path::Stream {
            // SAFETY: `Stream` is only chosen on CPUs with AVX2 (SSE is implied).
            unsafe { std::arch::x86_64::_mm_sfence() };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = path;
}

fn dequantize_4bit_into<O: Out>(
    packed: &[u8],
    absmax: &Absmax<'_>,
    code: &[f32],
    blocksize: usize,
    dst: &mut [O],
    n_threads: usize,
    path: Path,
) -> CoreResult<()> {
    let n = dst.len();
    check_4bit(packed.len(), absmax, code.len(), blocksize, n)?;
    let code: &[f32; 16] = code
        .try_into()
        .map_err(|_| CoreError::Shape("quant_map must have 16 entries".into()))?;
    let per_task = (TASK_ELEMS / blocksize).max(1);
    if n <= TASK_ELEMS {
        run_4bit(packed, absmax, code, blocksize, 0, dst, path);
        return Ok(());
    }
    install(n_threads, || {
        dst.par_chunks_mut(per_task * blocksize)
            .enumerate()
            .for_each(|(t, out)| {
                run_4bit(packed, absmax, code, blocksize, t * per_task, out, path)
            });
    })
}

/// Dequantize a bitsandbytes 4-bit tensor of `out.len()` elements.
///
/// * `packed`: `ceil(n/2)` bytes, element `2i` in the high nibble of byte `i`.
/// * `absmax`: per-block absmax, plain or nested.
/// * `code`: the 16-entry f32 code table (the checkpoint's `quant_map`).
/// * `blocksize`: a power of two from 32 to 4096.
///
/// `reused`: `out` is a caller's buffer written before (pages mapped): when large it is then
/// written with streaming stores. Errors: `InvalidArgument` (blocksize), `Truncated` (packed
/// too short), `Shape` (any other length mismatch).
pub fn dequantize_4bit(
    packed: &[u8],
    absmax: &Absmax<'_>,
    code: &[f32],
    blocksize: usize,
    out: OutSlice<'_>,
    n_threads: usize,
    reused: bool,
) -> CoreResult<()> {
    match out {
        OutSlice::F32(d) => {
            let path = store::choose(d, true, reused);
            dequantize_4bit_into(packed, absmax, code, blocksize, d, n_threads, path)
        }
        OutSlice::F16(d) => {
            let path = store::choose(d, true, reused);
            dequantize_4bit_into(packed, absmax, code, blocksize, d, n_threads, path)
        }
        OutSlice::Bf16(d) => {
            let path = store::choose(d, true, reused);
            dequantize_4bit_into(packed, absmax, code, blocksize, d, n_threads, path)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LLM.int8 rows.
// ---------------------------------------------------------------------------------------------

/// Portable: one row.
#[inline]
fn int8_row_portable<O: Out>(q: &[i8], s: f32, dst: &mut [O]) {
    for (d, &v) in dst.iter_mut().zip(q) {
        *d = O::from_f32(v as f32 * s * INT8_SCALE);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_int8 {
    use super::super::simd::{x86::store8, Out};
    use super::INT8_SCALE;
    use std::arch::x86_64::*;

    /// One row, 8 at a time; returns the number of elements written.
    ///
    /// # Safety
    /// AVX2 and F16C must be available.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn row<O: Out, const NT: bool>(q: &[i8], s: f32, dst: &mut [O]) -> usize {
        let vs = _mm256_set1_ps(s);
        let vc = _mm256_set1_ps(INT8_SCALE);
        let mut done = 0;
        for (src, out) in q.chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
            if src.len() < 8 || out.len() < 8 {
                continue; // never: chunks_exact
            }
            let v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(src.as_ptr().cast())));
            let v = _mm256_mul_ps(_mm256_mul_ps(v, vs), vc);
            store8::<O, NT>(out.as_mut_ptr(), v);
            done += 8;
        }
        done
    }
}

fn int8_rows<O: Out>(q: &[i8], scb: &[f32], cols: usize, dst: &mut [O], path: Path) {
    for ((qr, &s), out) in q.chunks(cols).zip(scb).zip(dst.chunks_mut(cols)) {
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a non-portable path is only chosen when AVX2 and F16C are present, and
            // `Stream` only for a 16-byte aligned output whose rows start at multiples of 8
            // elements (so every 8-element store stays aligned).
            match path {
                Path::Avx2 => done = unsafe { avx2_int8::row::<O, false>(qr, s, out) },
                Path::Stream => done = unsafe { avx2_int8::row::<O, true>(qr, s, out) },
                Path::Portable => {}
            }
        }
        int8_row_portable(&qr[done..], s, &mut out[done..]);
    }
    fence(path);
}

fn dequantize_int8_into<O: Out>(
    q: &[i8],
    scb: &[f32],
    cols: usize,
    dst: &mut [O],
    n_threads: usize,
    path: Path,
) -> CoreResult<()> {
    let rows = scb.len();
    let n = rows.checked_mul(cols).ok_or_else(|| {
        CoreError::InvalidArgument(format!("{rows} rows × {cols} columns overflows"))
    })?;
    if q.len() != n {
        return Err(CoreError::Shape(format!(
            "int8 weight has {} elements, SCB has {rows} rows of {cols} columns = {n}",
            q.len()
        )));
    }
    check_out_len(dst.len(), n)?;
    if cols == 0 || rows == 0 {
        return Ok(());
    }
    if n <= TASK_ELEMS {
        int8_rows(q, scb, cols, dst, path);
        return Ok(());
    }
    let rows_per_task = (TASK_ELEMS / cols).max(1);
    install(n_threads, || {
        dst.par_chunks_mut(rows_per_task * cols)
            .enumerate()
            .for_each(|(t, out)| {
                let r0 = t * rows_per_task;
                let r1 = r0 + out.len() / cols;
                int8_rows(&q[r0 * cols..r1 * cols], &scb[r0..r1], cols, out, path);
            });
    })
}

/// Dequantize LLM.int8 row-wise weights: `q` (`[rows, cols]` row-major, `rows = scb.len()`) →
/// `q · SCB[row] · f32(1/127)` (f32, left to right), rounded once into `out` (`reused` as in
/// [`dequantize_4bit`]).
pub fn dequantize_int8(
    q: &[i8],
    scb: &[f32],
    cols: usize,
    out: OutSlice<'_>,
    n_threads: usize,
    reused: bool,
) -> CoreResult<()> {
    let rows_aligned = cols % 8 == 0;
    match out {
        OutSlice::F32(d) => {
            let path = store::choose(d, rows_aligned, reused);
            dequantize_int8_into(q, scb, cols, d, n_threads, path)
        }
        OutSlice::F16(d) => {
            let path = store::choose(d, rows_aligned, reused);
            dequantize_int8_into(q, scb, cols, d, n_threads, path)
        }
        OutSlice::Bf16(d) => {
            let path = store::choose(d, rows_aligned, reused);
            dequantize_int8_into(q, scb, cols, d, n_threads, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::half::f32_to_f16;
    use super::super::output::{f32_to_bf16, Bf16, F16};
    use super::*;
    use crate::dequant::TestRng as Rng;

    /// bitsandbytes' NF4 table (`get_4bit_type("nf4")`) as f32 bit patterns.
    const NF4_BITS: [u32; 16] = [
        0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F, 0xBDBA7871,
        0x00000000, 0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A, 0x3EE1A4B8, 0x3F1007AB,
        0x3F3913B3, 0x3F800000,
    ];

    fn nf4() -> [f32; 16] {
        NF4_BITS.map(f32::from_bits)
    }

    fn reference(
        packed: &[u8],
        absmax: &Absmax<'_>,
        code: &[f32],
        bs: usize,
        n: usize,
    ) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let b = packed[i / 2];
                let q = if i % 2 == 0 { b >> 4 } else { b & 15 };
                code[q as usize] * absmax.block(i / bs)
            })
            .collect()
    }

    fn specials(rng: &mut Rng, nb: usize) -> Vec<f32> {
        (0..nb)
            .map(|b| match b % 9 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => 0.0,
                3 => -0.0,
                4 => 1e-40, // subnormal
                5 => 65504.0 * 1.5,
                _ => rng.f32(),
            })
            .collect()
    }

    /// The variants this CPU can run.
    fn paths() -> Vec<Path> {
        if store::choose(&[0f32; 4], false, false) == Path::Portable {
            vec![Path::Portable]
        } else {
            vec![Path::Portable, Path::Avx2, Path::Stream]
        }
    }

    /// A 16-byte aligned buffer of `n` default elements (streaming stores need it).
    fn aligned<T: Copy + Default>(raw: &mut Vec<T>, n: usize) -> &mut [T] {
        *raw = vec![T::default(); n + 16];
        let off = raw.as_ptr().align_offset(16);
        &mut raw[off..off + n]
    }

    #[test]
    fn four_bit_matches_reference_every_output_type() {
        let mut rng = Rng(7);
        for &(n, bs) in &[
            (1usize, 32usize),
            (31, 32),
            (33, 32),
            (1000, 64),
            (4097, 128),
            (70_001, 4096),
        ] {
            let packed: Vec<u8> = (0..n.div_ceil(2)).map(|_| rng.next() as u8).collect();
            let absmax = specials(&mut rng, n.div_ceil(bs));
            let am = Absmax::Plain(&absmax);
            let want = reference(&packed, &am, &nf4(), bs, n);
            for path in paths() {
                let (mut r32, mut r16, mut rb) = (Vec::new(), Vec::new(), Vec::new());
                let o32 = aligned::<f32>(&mut r32, n);
                dequantize_4bit_into(&packed, &am, &nf4(), bs, o32, 2, path).unwrap();
                for (a, b) in o32.iter().zip(&want) {
                    assert_eq!(a.to_bits(), b.to_bits(), "n={n} bs={bs} {path:?}");
                }
                let o16 = aligned::<F16>(&mut r16, n);
                dequantize_4bit_into(&packed, &am, &nf4(), bs, o16, 2, path).unwrap();
                for (a, b) in o16.iter().zip(&want) {
                    assert_eq!(a.0, f32_to_f16(*b));
                }
                let ob = aligned::<Bf16>(&mut rb, n);
                dequantize_4bit_into(&packed, &am, &nf4(), bs, ob, 2, path).unwrap();
                for (a, b) in ob.iter().zip(&want) {
                    assert_eq!(a.0, f32_to_bf16(*b));
                }
            }
        }
    }

    #[test]
    fn store8_rounds_like_the_scalar_conversions() {
        if paths().len() == 1 {
            return;
        }
        let mut rng = Rng(3);
        let mut vals: Vec<f32> = vec![
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7F80_0001),
            f32::from_bits(0xFFC1_2345),
            f32::INFINITY,
            f32::NEG_INFINITY,
            65504.0,
            65520.0,
            65519.99,
            6e-8,
            2.9e-8,
            3.0e-8,
            1e-45,
            -0.0,
            1.0 + 2f32.powi(-11),
            1.0 + 2f32.powi(-8),
            f32::MAX,
        ];
        vals.extend((0..4000).map(|_| f32::from_bits(rng.next() as u32)));
        while vals.len() % 8 != 0 {
            vals.push(1.0);
        }
        // int8 path with s = 1 and q = 0 is not a store test; use the store directly.
        for chunk in vals.chunks(8) {
            let mut h = [F16(0); 8];
            let mut b = [Bf16(0); 8];
            // SAFETY: AVX2/F16C checked above; 8 writable elements each.
            unsafe {
                use crate::dequant::simd::x86::store8;
                use std::arch::x86_64::_mm256_loadu_ps;
                store8::<_, false>(h.as_mut_ptr(), _mm256_loadu_ps(chunk.as_ptr()));
                store8::<_, false>(b.as_mut_ptr(), _mm256_loadu_ps(chunk.as_ptr()));
            }
            for k in 0..8 {
                assert_eq!(h[k].0, f32_to_f16(chunk[k]), "{:#x}", chunk[k].to_bits());
                assert_eq!(b[k].0, f32_to_bf16(chunk[k]), "{:#x}", chunk[k].to_bits());
            }
        }
    }

    #[test]
    fn nested_absmax_is_multiply_then_add() {
        let mut rng = Rng(11);
        let n: usize = 64 * 600 + 17;
        let nb = n.div_ceil(64);
        let packed: Vec<u8> = (0..n.div_ceil(2)).map(|_| rng.next() as u8).collect();
        let q: Vec<u8> = (0..nb).map(|_| rng.next() as u8).collect();
        let code2: Vec<f32> = (0..256).map(|_| rng.f32()).collect();
        let absmax2: Vec<f32> = (0..nb.div_ceil(256)).map(|_| rng.f32()).collect();
        let offset = 0.123_456_79f32;
        let am = Absmax::Nested(NestedAbsmax {
            qabsmax: &q,
            absmax2: &absmax2,
            code2: &code2,
            blocksize2: 256,
            offset,
        });
        let mut out = vec![0f32; n];
        dequantize_4bit(&packed, &am, &nf4(), 64, OutSlice::F32(&mut out), 0, false).unwrap();
        for (i, v) in out.iter().enumerate() {
            let b = i / 64;
            let a = code2[q[b] as usize] * absmax2[b / 256] + offset;
            let byte = packed[i / 2];
            let c = if i % 2 == 0 { byte >> 4 } else { byte & 15 };
            assert_eq!(v.to_bits(), (nf4()[c as usize] * a).to_bits());
        }
    }

    #[test]
    fn four_bit_checks() {
        let absmax = [1.0f32; 2];
        let am = Absmax::Plain(&absmax);
        let mut out = vec![0f32; 100];
        let packed = [0u8; 50];
        let e = dequantize_4bit(&packed, &am, &nf4(), 48, OutSlice::F32(&mut out), 0, false)
            .unwrap_err();
        assert!(matches!(e, CoreError::InvalidArgument(_)), "{e}");
        let e = dequantize_4bit(
            &packed[..49],
            &am,
            &nf4(),
            64,
            OutSlice::F32(&mut out),
            0,
            false,
        )
        .unwrap_err();
        assert!(matches!(e, CoreError::Truncated(_)), "{e}");
        let e = dequantize_4bit(
            &packed,
            &am,
            &nf4()[..8],
            64,
            OutSlice::F32(&mut out),
            0,
            false,
        )
        .unwrap_err();
        assert!(matches!(e, CoreError::Shape(_)), "{e}");
        let e = dequantize_4bit(
            &packed,
            &Absmax::Plain(&absmax[..1]),
            &nf4(),
            64,
            OutSlice::F32(&mut out),
            0,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("absmax has 1 entries"), "{e}");
        dequantize_4bit(&packed, &am, &nf4(), 64, OutSlice::F32(&mut out), 0, false).unwrap();
    }

    #[test]
    fn int8_matches_reference() {
        let mut rng = Rng(5);
        for &(rows, cols) in &[(1usize, 1usize), (3, 7), (5, 8), (40, 1000), (9, 4099)] {
            let q: Vec<i8> = (0..rows * cols).map(|_| rng.next() as i8).collect();
            let mut scb = specials(&mut rng, rows);
            scb[0] = 3.3;
            for path in paths() {
                if path == Path::Stream && cols % 8 != 0 {
                    continue;
                }
                let (mut r32, mut r16) = (Vec::new(), Vec::new());
                let o = aligned::<f32>(&mut r32, rows * cols);
                dequantize_int8_into(&q, &scb, cols, o, 2, path).unwrap();
                let h = aligned::<F16>(&mut r16, rows * cols);
                dequantize_int8_into(&q, &scb, cols, h, 2, path).unwrap();
                for (i, v) in o.iter().enumerate() {
                    let want = q[i] as f32 * scb[i / cols] * INT8_SCALE;
                    assert_eq!(v.to_bits(), want.to_bits());
                    assert_eq!(h[i].0, f32_to_f16(want));
                }
            }
        }
        assert_eq!(INT8_SCALE.to_bits(), 0x3C01_0204);
    }
}
