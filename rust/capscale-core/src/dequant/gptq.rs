//! GPTQ (2/3/4/8-bit, v1/v2 zeros, `g_idx`) and AWQ GEMM (4-bit, interleaved) packed weights.
//!
//! Both dequantize into the `nn.Linear` orientation **`[out_features, in_features]`**
//! (row-major), i.e. the transpose of the `[in, out]` matrix the packing formulas describe.
//!
//! **GPTQ** (AutoGPTQ `cuda-old`/exllama packing, GPTQModel `gptq` / `gptq_v2`):
//! * `qweight` int32 `[in·bits/32, out]`: column `j` is an LSB-first bit stream along the input
//!   dimension, value `i` at bits `i·bits … i·bits + bits − 1` of the concatenated words
//!   (2/4/8 bits: 16/8/4 values per word; 3 bits: 32 values per 3 words, values 10 and 21
//!   straddling word boundaries, exactly AutoGPTQ's `pack`).
//! * `qzeros` int32 `[G, out·bits/32]`: row `g` is the same kind of bit stream along the output
//!   dimension; the zero is the stored value plus `zero_offset` (1 for the v1 `"gptq"` format,
//!   0 for `"gptq_v2"`).
//! * `scales` f16 or f32 `[G, out]`; `g_idx` `[in]`: the group of each input row.
//! * `W[j, i] = f32(scale[g, j]) · f32(q[i, j] − z[g, j])` with `g = g_idx[i]`: the difference
//!   is an exact small integer, the product is the only rounding (f32), then the result is
//!   rounded once into the output type.
//!
//! **AWQ GEMM** (AutoAWQ `WQLinear_GEMM`): `qweight` int32 `[in, out/8]` packed along the output
//! dimension with nibble `REVERSE[k] = [0,4,1,5,2,6,3,7][k]` holding column `8c + k`; `qzeros`
//! `[in/group, out/8]` the same way; `scales` `[in/group, out]`;
//! `W[j, i] = f32(q[i, j] − z[i/group, j]) · f32(scale[i/group, j])` (no +1, no `g_idx`).
//!
//! Non-finite scales propagate (NaN/Inf in the affected outputs). Speed: AVX2 (+F16C for float16
//! output) with runtime detection — GPTQ works on 8×8 tiles (8 output columns of one packed word
//! row, transposed in registers), AWQ on 8 input rows × 8 interleaved columns; edges and other
//! CPUs take the portable path, which gives identical bits (tested).

use super::bnb::store::{self, Path};
use super::half::f16_to_f32;
use super::output::OutSlice;
use super::simd::Out;
use crate::error::{CoreError, CoreResult};
use crate::parallel::install;
use rayon::prelude::*;

/// Scales as stored: f32, or f16 bit patterns.
#[derive(Debug, Clone, Copy)]
pub enum Scales<'a> {
    /// float32 scales.
    F32(&'a [f32]),
    /// float16 scales (bit patterns).
    F16(&'a [u16]),
}

impl Scales<'_> {
    fn len(&self) -> usize {
        match self {
            Scales::F32(s) => s.len(),
            Scales::F16(s) => s.len(),
        }
    }

    /// Every scale as f32 (exact).
    fn to_f32(self) -> Vec<f32> {
        match self {
            Scales::F32(s) => s.to_vec(),
            Scales::F16(s) => s.iter().map(|&h| f16_to_f32(h)).collect(),
        }
    }
}

/// Dimensions and conventions of a GPTQ tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptqLayout {
    /// Bits per value: 2, 3, 4 or 8.
    pub bits: u32,
    /// Input features (rows of the `[in, out]` formula, columns of the result).
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Number of groups `G` (rows of `scales` and `qzeros`).
    pub n_groups: usize,
    /// Added to every stored zero: 1 for the v1 `"gptq"` format, 0 for `"gptq_v2"`.
    pub zero_offset: i32,
}

/// Output rows per parallel task are chosen so a task writes about this many elements (small
/// tensors run on the calling thread).
const TASK_ELEMS: usize = 1 << 18;

/// Value `idx` of the LSB-first bit stream of `bits`-bit values held in the words
/// `words[0], words[stride], words[2·stride], …`.
#[inline(always)]
fn stream_value(words: &[i32], stride: usize, idx: usize, bits: u32) -> u32 {
    let pos = idx * bits as usize;
    let w = pos / 32;
    let s = (pos % 32) as u32;
    let mut v = (words[w * stride] as u32) >> s;
    if s + bits > 32 {
        v |= (words[(w + 1) * stride] as u32) << (32 - s);
    }
    v & ((1u32 << bits) - 1)
}

fn overflow(what: &str) -> CoreError {
    CoreError::InvalidArgument(format!("{what} overflows"))
}

/// Check a GPTQ tensor's lengths and `g_idx` against `layout`.
pub fn check_gptq(
    qweight_len: usize,
    qzeros_len: usize,
    scales_len: usize,
    g_idx: &[i32],
    layout: &GptqLayout,
) -> CoreResult<()> {
    let GptqLayout {
        bits,
        in_features: inf,
        out_features: outf,
        n_groups: g,
        ..
    } = *layout;
    if !matches!(bits, 2 | 3 | 4 | 8) {
        return Err(CoreError::InvalidArgument(format!(
            "bits must be 2, 3, 4 or 8, got {bits}"
        )));
    }
    let b = bits as usize;
    if (inf * b) % 32 != 0 {
        return Err(CoreError::Shape(format!(
            "in_features ({inf}) × bits ({bits}) must be a multiple of 32"
        )));
    }
    if (outf * b) % 32 != 0 {
        return Err(CoreError::Shape(format!(
            "out_features ({outf}) × bits ({bits}) must be a multiple of 32 (qzeros packing)"
        )));
    }
    if g == 0 {
        return Err(CoreError::Shape("there must be at least one group".into()));
    }
    let qw = (inf * b / 32)
        .checked_mul(outf)
        .ok_or_else(|| overflow("qweight size"))?;
    if qweight_len != qw {
        return Err(CoreError::Shape(format!(
            "qweight has {qweight_len} words, [{} × {outf}] = {qw} expected",
            inf * b / 32
        )));
    }
    let qz = g
        .checked_mul(outf * b / 32)
        .ok_or_else(|| overflow("qzeros size"))?;
    if qzeros_len != qz {
        return Err(CoreError::Shape(format!(
            "qzeros has {qzeros_len} words, [{g} × {}] = {qz} expected",
            outf * b / 32
        )));
    }
    let sc = g.checked_mul(outf).ok_or_else(|| overflow("scales size"))?;
    if scales_len != sc {
        return Err(CoreError::Shape(format!(
            "scales has {scales_len} entries, [{g} × {outf}] = {sc} expected"
        )));
    }
    if g_idx.len() != inf {
        return Err(CoreError::Shape(format!(
            "g_idx has {} entries, in_features is {inf}",
            g_idx.len()
        )));
    }
    if let Some(i) = g_idx.iter().position(|&v| v < 0 || v as usize >= g) {
        return Err(CoreError::InvalidArgument(format!(
            "g_idx[{i}] = {} is out of range for {g} groups",
            g_idx[i]
        )));
    }
    Ok(())
}

/// Unpack `qzeros` (`[G, out·bits/32]`) into `[G, out]` zeros plus `offset`.
fn unpack_zeros_gptq(qzeros: &[i32], l: &GptqLayout) -> Vec<i32> {
    let wpr = l.out_features * l.bits as usize / 32;
    let mut z = Vec::with_capacity(l.n_groups * l.out_features);
    for row in qzeros.chunks(wpr.max(1)).take(l.n_groups) {
        for j in 0..l.out_features {
            z.push(stream_value(row, 1, j, l.bits) as i32 + l.zero_offset);
        }
    }
    z
}

/// The prepared operands of the GPTQ kernels.
struct Gptq<'a> {
    qweight: &'a [i32],
    g_idx: &'a [i32],
    scales: Vec<f32>,
    zeros: Vec<i32>,
    l: GptqLayout,
}

impl Gptq<'_> {
    /// `W[j, i]` in f32.
    #[inline(always)]
    fn value(&self, j: usize, i: usize) -> f32 {
        let outf = self.l.out_features;
        let q = stream_value(&self.qweight[j..], outf, i, self.l.bits) as i32;
        let g = self.g_idx[i] as usize;
        let k = g * outf + j;
        self.scales[k] * (q - self.zeros[k]) as f32
    }

    /// Output rows `j0..j0 + rows` into `dst` (`rows × in`), serially.
    fn rows<O: Out>(&self, j0: usize, dst: &mut [O], path: Path) {
        let inf = self.l.in_features;
        let rows = dst.len() / inf.max(1);
        let mut j = 0;
        #[cfg(target_arch = "x86_64")]
        {
            if path != Path::Portable && inf >= 8 && rows >= 8 {
                j = rows / 8 * 8;
                let block = &mut dst[..j * inf];
                // SAFETY: a non-portable path is only chosen when AVX2 and F16C are present
                // (and `Stream` only for a 16-byte aligned output whose rows start at multiples
                // of 8 elements); columns j0 .. j0 + j exist (rows of `dst` are output rows) and
                // every index the kernel forms was validated by `check_gptq`.
                let done = unsafe {
                    if path == Path::Stream {
                        avx2_gptq::rows8::<O, true>(self, j0, block)
                    } else {
                        avx2_gptq::rows8::<O, false>(self, j0, block)
                    }
                };
                for r in 0..j {
                    for i in done..inf {
                        block[r * inf + i] = O::from_f32(self.value(j0 + r, i));
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = path;
        for r in j..rows {
            for (i, d) in dst[r * inf..(r + 1) * inf].iter_mut().enumerate() {
                *d = O::from_f32(self.value(j0 + r, i));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_gptq {
    use super::super::bnb::store::x86::emit_run;
    use super::super::simd::{x86::fence, Out};
    use super::Gptq;
    use std::arch::x86_64::*;

    /// Transpose 8 rows of 8 floats.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// Output rows `j0 .. j0 + rows` (all of `dst`, `rows × in`, `rows` a multiple of 8) for
    /// every whole 8-element tile of inputs; returns how many inputs were done (a multiple of
    /// 8). Works on panels of up to 64 output rows with the input tiles outermost, so each
    /// packed word row is read as one contiguous run per panel.
    ///
    /// # Safety
    /// AVX2 and F16C must be available; `g` validated by `check_gptq`; `j0 + rows ≤ out`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn rows8<O: Out, const NT: bool>(
        g: &Gptq<'_>,
        j0: usize,
        dst: &mut [O],
    ) -> usize {
        let done = match g.l.bits {
            2 => panels::<O, 2, NT>(g, j0, dst),
            3 => panels::<O, 3, NT>(g, j0, dst),
            4 => panels::<O, 4, NT>(g, j0, dst),
            _ => panels::<O, 8, NT>(g, j0, dst),
        };
        fence::<NT>();
        done
    }

    /// Output rows per panel (two 8-row tiles: one 64-byte line of each packed word row).
    const PANEL: usize = 16;
    /// Input tiles (of 8) per chunk: each output row is written 256 inputs at a time.
    const CHUNK: usize = 32;

    #[target_feature(enable = "avx2,f16c")]
    unsafe fn panels<O: Out, const BITS: usize, const NT: bool>(
        g: &Gptq<'_>,
        j0: usize,
        dst: &mut [O],
    ) -> usize {
        let inf = g.l.in_features;
        let outf = g.l.out_features;
        let rows = dst.len() / inf;
        let n_tiles = inf / 8;
        let mask = _mm256_set1_epi32(((1u32 << BITS) - 1) as i32);
        let out = dst.as_mut_ptr();
        // Group-row offset of each input of a chunk.
        let mut grow = [0usize; 8 * CHUNK];
        // One 8-row tile of a chunk: row r, inputs 8·tt .. 8·tt + 8 at buf[r][tt].
        let mut buf = [[_mm256_setzero_ps(); CHUNK]; 8];
        let mut p0 = 0;
        while p0 < rows {
            let pr = PANEL.min(rows - p0);
            let mut t0 = 0;
            while t0 < n_tiles {
                let nt = CHUNK.min(n_tiles - t0);
                for (k, gr) in grow.iter_mut().enumerate().take(8 * nt) {
                    *gr = *g.g_idx.get_unchecked(8 * t0 + k) as usize * outf;
                }
                // Cached stores: request ownership of the output lines written two chunks
                // ahead (the panel's rows are far apart; no hardware prefetch follows them).
                let ahead = t0 + 2 * CHUNK;
                if !NT && ahead < n_tiles {
                    let span = 8 * CHUNK.min(n_tiles - ahead);
                    for r in 0..pr {
                        let o = out.add((p0 + r) * inf + 8 * ahead);
                        let mut e = 0;
                        while e < span {
                            _mm_prefetch::<_MM_HINT_ET0>(o.add(e).cast());
                            e += 64 / std::mem::size_of::<O>();
                        }
                    }
                }
                // The packed rows of the next chunk are 4·out bytes apart: fetch this
                // panel's part of them now.
                let next = t0 + nt;
                if next < n_tiles {
                    let r0 = 8 * next * BITS / 32;
                    let r1 = ((8 * (next + CHUNK.min(n_tiles - next)) * BITS).div_ceil(32))
                        .min(g.qweight.len() / outf);
                    for wr in r0..r1 {
                        let p = g.qweight.as_ptr().add(wr * outf + j0 + p0);
                        _mm_prefetch::<_MM_HINT_T0>(p.cast());
                        _mm_prefetch::<_MM_HINT_T0>(p.add(pr - 1).cast());
                    }
                }
                let mut jt = 0;
                while jt < pr {
                    let j = j0 + p0 + jt;
                    let qw = g.qweight.as_ptr().add(j);
                    for tt in 0..nt {
                        // The tile's 8·BITS bits start at bit `s0` of word row `w0`; they span
                        // at most two word rows (4/8 bits: `s0 = 0`, constant shifts).
                        let start = 8 * (t0 + tt) * BITS;
                        let (w0, s0) = (start / 32, start % 32);
                        let lo = _mm256_loadu_si256(qw.add(w0 * outf).cast());
                        let hi = if s0 + 8 * BITS > 32 {
                            _mm256_loadu_si256(qw.add((w0 + 1) * outf).cast())
                        } else {
                            _mm256_setzero_si256()
                        };
                        let mut r = [_mm256_setzero_ps(); 8];
                        for (k, rk) in r.iter_mut().enumerate() {
                            let b = s0 + k * BITS;
                            let v = if b >= 32 {
                                _mm256_srl_epi32(hi, _mm_cvtsi32_si128((b - 32) as i32))
                            } else if b + BITS > 32 {
                                _mm256_or_si256(
                                    _mm256_srl_epi32(lo, _mm_cvtsi32_si128(b as i32)),
                                    _mm256_sll_epi32(hi, _mm_cvtsi32_si128((32 - b) as i32)),
                                )
                            } else {
                                _mm256_srl_epi32(lo, _mm_cvtsi32_si128(b as i32))
                            };
                            let q = _mm256_and_si256(v, mask);
                            let gi = grow[8 * tt + k] + j;
                            let z = _mm256_loadu_si256(g.zeros.as_ptr().add(gi).cast());
                            let sc = _mm256_loadu_ps(g.scales.as_ptr().add(gi));
                            *rk = _mm256_mul_ps(sc, _mm256_cvtepi32_ps(_mm256_sub_epi32(q, z)));
                        }
                        for (c, v) in transpose8(r).iter().enumerate() {
                            buf[c][tt] = *v;
                        }
                    }
                    for (c, row) in buf.iter().enumerate() {
                        let base = out.add((p0 + jt + c) * inf + 8 * t0);
                        let vals = std::slice::from_raw_parts(row.as_ptr().cast::<f32>(), 8 * nt);
                        emit_run::<O, NT>(base, vals);
                    }
                    jt += 8;
                }
                t0 += nt;
            }
            p0 += pr;
        }
        n_tiles * 8
    }
}

/// Output rows per task (a multiple of 8 where possible).
fn rows_per_task(in_features: usize) -> usize {
    ((TASK_ELEMS / in_features.max(1)).max(8) / 8) * 8
}

fn gptq_into<O: Out>(g: &Gptq<'_>, dst: &mut [O], n_threads: usize, path: Path) -> CoreResult<()> {
    let inf = g.l.in_features;
    if dst.is_empty() || inf == 0 {
        return Ok(());
    }
    let rpt = rows_per_task(inf);
    if dst.len() <= TASK_ELEMS {
        g.rows(0, dst, path);
        return Ok(());
    }
    install(n_threads, || {
        dst.par_chunks_mut(rpt * inf)
            .enumerate()
            .for_each(|(t, d)| g.rows(t * rpt, d, path));
    })
}

/// Whether every output row of `inf` elements starts on a 64-byte line. Only then do the
/// streaming stores pay off here: the kernels write each row in runs of 256 inputs, and with
/// rows off the line grid (NumPy's buffers start 16 bytes past one) the partial lines at the
/// ends of every run, written with plain stores, make streaming no faster than plain stores.
fn lines_aligned<O>(dst: &[O], inf: usize) -> bool {
    (dst.as_ptr() as usize) % 64 == 0 && (inf * std::mem::size_of::<O>()) % 64 == 0
}

fn check_out(len: usize, outf: usize, inf: usize) -> CoreResult<()> {
    let n = outf
        .checked_mul(inf)
        .ok_or_else(|| overflow("output size"))?;
    if len != n {
        return Err(CoreError::Shape(format!(
            "output has {len} elements, [{outf} × {inf}] = {n} expected"
        )));
    }
    Ok(())
}

/// The stored tensors of a GPTQ Linear (flattened row-major).
#[derive(Debug, Clone, Copy)]
pub struct GptqTensors<'a> {
    /// `[in·bits/32, out]` packed codes.
    pub qweight: &'a [i32],
    /// `[G, out·bits/32]` packed zero points.
    pub qzeros: &'a [i32],
    /// `[G, out]` scales.
    pub scales: Scales<'a>,
    /// `[in]` group of each input feature.
    pub g_idx: &'a [i32],
}

/// Dequantize a GPTQ tensor into `out` (`[out_features, in_features]`, row-major).
///
/// `tensors`: `qweight`, `qzeros` are the int32 words (flattened row-major), `scales`
/// `[G, out]`, `g_idx` one group per input feature (`i // group_size` for the usual non-act-order
/// checkpoints). `reused`: `out` is a caller's buffer written before (pages mapped): when
/// large it is then written with streaming stores. Errors: `InvalidArgument` (bits, `g_idx`
/// out of range), `Shape` (lengths).
pub fn dequantize_gptq(
    tensors: &GptqTensors<'_>,
    layout: &GptqLayout,
    out: OutSlice<'_>,
    n_threads: usize,
    reused: bool,
) -> CoreResult<()> {
    let GptqTensors {
        qweight,
        qzeros,
        scales,
        g_idx,
    } = *tensors;
    check_gptq(qweight.len(), qzeros.len(), scales.len(), g_idx, layout)?;
    check_out(out.len(), layout.out_features, layout.in_features)?;
    let g = Gptq {
        qweight,
        g_idx,
        scales: scales.to_f32(),
        zeros: unpack_zeros_gptq(qzeros, layout),
        l: *layout,
    };
    let inf = layout.in_features;
    match out {
        OutSlice::F32(d) => {
            let path = store::choose(d, lines_aligned(d, inf), reused);
            gptq_into(&g, d, n_threads, path)
        }
        OutSlice::F16(d) => {
            let path = store::choose(d, lines_aligned(d, inf), reused);
            gptq_into(&g, d, n_threads, path)
        }
        OutSlice::Bf16(d) => {
            let path = store::choose(d, lines_aligned(d, inf), reused);
            gptq_into(&g, d, n_threads, path)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AWQ GEMM.
// ---------------------------------------------------------------------------------------------

/// Dimensions of an AWQ GEMM tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwqLayout {
    /// Input features.
    pub in_features: usize,
    /// Output features (a multiple of 8).
    pub out_features: usize,
    /// Input rows per group (divides `in_features`).
    pub group_size: usize,
}

/// Nibble of column `8c + k` in an AWQ word.
pub const AWQ_REVERSE_ORDER: [u32; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// Column `j` of an AWQ-packed row (`out/8` words).
#[inline(always)]
fn awq_value(row: &[i32], j: usize) -> i32 {
    ((row[j / 8] as u32 >> (4 * AWQ_REVERSE_ORDER[j % 8])) & 0xF) as i32
}

struct Awq<'a> {
    qweight: &'a [i32],
    scales: Vec<f32>,
    zeros: Vec<i32>,
    in_features: usize,
    out_features: usize,
    group_size: usize,
}

impl Awq<'_> {
    #[inline(always)]
    fn value(&self, j: usize, i: usize) -> f32 {
        let wpr = self.out_features / 8;
        let q = awq_value(&self.qweight[i * wpr..], j);
        let k = (i / self.group_size) * self.out_features + j;
        (q - self.zeros[k]) as f32 * self.scales[k]
    }

    /// Output rows `j0..j0 + rows` (`j0` a multiple of 8) into `dst`, serially.
    fn rows<O: Out>(&self, j0: usize, dst: &mut [O], path: Path) {
        let inf = self.in_features;
        let rows = dst.len() / inf.max(1);
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        {
            if path != Path::Portable && self.group_size % 8 == 0 && inf >= 8 && rows >= 8 {
                // SAFETY: AVX2/F16C present (`simd`); `j0` is a multiple of 8 and
                // `j0 + rows ≤ out_features` (rows of `dst` are output rows), `rows` is a
                // multiple of 8 (as `out_features`), `group_size % 8 == 0`, and every index was
                // validated by `check_awq`.
                done = unsafe {
                    if path == Path::Stream {
                        avx2_awq::rows8::<O, true>(self, j0, dst)
                    } else {
                        avx2_awq::rows8::<O, false>(self, j0, dst)
                    }
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = path;
        for r in 0..rows {
            for i in done..inf {
                dst[r * inf + i] = O::from_f32(self.value(j0 + r, i));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_awq {
    use super::super::bnb::store::x86::emit_run;
    use super::super::simd::{x86::fence, Out};
    use super::avx2_gptq::transpose8;
    use super::{Awq, AWQ_REVERSE_ORDER};
    use std::arch::x86_64::*;

    /// Input tiles (of 8) per chunk: each output row is written 256 inputs at a time.
    const CHUNK: usize = 32;

    /// Output rows `j0 .. j0 + rows` (all of `dst`; `j0`, `rows` multiples of 8) for whole
    /// 8-input tiles; returns how many inputs were done. For a chunk of input tiles, 8 words
    /// (64 output columns) of 8 consecutive packed rows are loaded as contiguous runs and
    /// transposed in registers (lanes along the inputs); then each output row is written as
    /// one contiguous run per chunk. A last group of fewer than 8 words is gathered word by
    /// word.
    ///
    /// # Safety
    /// AVX2 and F16C must be available; `group_size % 8 == 0`; `a` validated by `check_awq`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn rows8<O: Out, const NT: bool>(
        a: &Awq<'_>,
        j0: usize,
        dst: &mut [O],
    ) -> usize {
        let inf = a.in_features;
        let outf = a.out_features;
        let wpr = outf / 8;
        let n_tiles = inf / 8;
        let words = dst.len() / inf / 8;
        let c0 = j0 / 8;
        let m = _mm256_set1_epi32(0xF);
        let out = dst.as_mut_ptr();
        let qw = a.qweight.as_ptr();
        // Transposed words of a chunk: buf[tt][c] holds word c of inputs 8·tt .. 8·tt + 8.
        let mut buf = [[_mm256_setzero_si256(); 8]; CHUNK];
        // One output row of a chunk.
        let mut vals = [_mm256_setzero_ps(); CHUNK];
        let mut cp = 0;
        while cp < words {
            let nw = if words - cp >= 8 { 8 } else { 1 };
            let mut t0 = 0;
            while t0 < n_tiles {
                let nt = CHUNK.min(n_tiles - t0);
                // Cached stores: request ownership of the output lines the next chunk writes
                // (one run per output row of the panel, far apart: no hardware prefetch).
                let next = t0 + nt;
                if !NT && next < n_tiles {
                    let span = 8 * CHUNK.min(n_tiles - next);
                    for r in 0..8 * nw {
                        let o = out.add((8 * cp + r) * inf + 8 * next);
                        let mut e = 0;
                        while e < span {
                            _mm_prefetch::<_MM_HINT_ET0>(o.add(e).cast());
                            e += 64 / std::mem::size_of::<O>();
                        }
                    }
                }
                // The packed rows of the next chunk are out/2 bytes apart: fetch this panel's
                // words of them now.
                if next < n_tiles {
                    let rows_next = 8 * CHUNK.min(n_tiles - next);
                    for r in 0..rows_next {
                        let p = qw.add((8 * next + r) * wpr + c0 + cp);
                        _mm_prefetch::<_MM_HINT_T0>(p.cast());
                        _mm_prefetch::<_MM_HINT_T0>(p.add(nw - 1).cast());
                    }
                }
                for (tt, slot) in buf.iter_mut().enumerate().take(nt) {
                    let p = qw.add(8 * (t0 + tt) * wpr + c0 + cp);
                    if nw == 8 {
                        let mut r = [_mm256_setzero_ps(); 8];
                        for (k, v) in r.iter_mut().enumerate() {
                            *v = _mm256_loadu_ps(p.add(k * wpr).cast());
                        }
                        for (c, v) in transpose8(r).iter().enumerate() {
                            slot[c] = _mm256_castps_si256(*v);
                        }
                    } else {
                        slot[0] = _mm256_setr_epi32(
                            *p,
                            *p.add(wpr),
                            *p.add(2 * wpr),
                            *p.add(3 * wpr),
                            *p.add(4 * wpr),
                            *p.add(5 * wpr),
                            *p.add(6 * wpr),
                            *p.add(7 * wpr),
                        );
                    }
                }
                for c in 0..nw {
                    let col = 8 * (cp + c);
                    for (k, &nib) in AWQ_REVERSE_ORDER.iter().enumerate() {
                        let sh = _mm_cvtsi32_si128(4 * nib as i32);
                        for (tt, slot) in buf.iter().enumerate().take(nt) {
                            let i0 = 8 * (t0 + tt);
                            let zi = (i0 / a.group_size) * outf + j0 + col + k;
                            let q = _mm256_and_si256(_mm256_srl_epi32(slot[c], sh), m);
                            let z = _mm256_set1_epi32(*a.zeros.get_unchecked(zi));
                            let s = _mm256_set1_ps(*a.scales.get_unchecked(zi));
                            vals[tt] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, z)), s);
                        }
                        let run = std::slice::from_raw_parts(vals.as_ptr().cast::<f32>(), 8 * nt);
                        emit_run::<O, NT>(out.add((col + k) * inf + 8 * t0), run);
                    }
                }
                t0 += nt;
            }
            cp += nw;
        }
        fence::<NT>();
        n_tiles * 8
    }
}

/// Check an AWQ GEMM tensor's lengths; returns the number of groups.
pub fn check_awq(
    qweight_len: usize,
    qzeros_len: usize,
    scales_len: usize,
    in_features: usize,
    out_features: usize,
    group_size: usize,
) -> CoreResult<usize> {
    if out_features % 8 != 0 {
        return Err(CoreError::Shape(format!(
            "out_features ({out_features}) must be a multiple of 8 (8 columns per int32)"
        )));
    }
    if group_size == 0 || in_features % group_size != 0 {
        return Err(CoreError::InvalidArgument(format!(
            "group_size ({group_size}) must divide in_features ({in_features})"
        )));
    }
    let g = in_features / group_size;
    let qw = in_features
        .checked_mul(out_features / 8)
        .ok_or_else(|| overflow("qweight size"))?;
    if qweight_len != qw {
        return Err(CoreError::Shape(format!(
            "qweight has {qweight_len} words, [{in_features} × {}] = {qw} expected",
            out_features / 8
        )));
    }
    if qzeros_len != g * (out_features / 8) {
        return Err(CoreError::Shape(format!(
            "qzeros has {qzeros_len} words, [{g} × {}] = {} expected",
            out_features / 8,
            g * (out_features / 8)
        )));
    }
    if scales_len != g * out_features {
        return Err(CoreError::Shape(format!(
            "scales has {scales_len} entries, [{g} × {out_features}] = {} expected",
            g * out_features
        )));
    }
    Ok(g)
}

/// The prepared operands of the AWQ kernels (`g` groups, lengths checked).
fn awq_operands<'a>(
    qweight: &'a [i32],
    qzeros: &[i32],
    scales: Scales<'_>,
    layout: &AwqLayout,
    g: usize,
) -> Awq<'a> {
    let wpr = layout.out_features / 8;
    let mut zeros = Vec::with_capacity(g * layout.out_features);
    for row in qzeros.chunks(wpr.max(1)).take(g) {
        zeros.extend((0..layout.out_features).map(|j| awq_value(row, j)));
    }
    Awq {
        qweight,
        scales: scales.to_f32(),
        zeros,
        in_features: layout.in_features,
        out_features: layout.out_features,
        group_size: layout.group_size,
    }
}

fn awq_into<O: Out>(a: &Awq<'_>, dst: &mut [O], n_threads: usize, path: Path) -> CoreResult<()> {
    let inf = a.in_features;
    if dst.is_empty() || inf == 0 {
        return Ok(());
    }
    let rpt = rows_per_task(inf);
    if dst.len() <= TASK_ELEMS {
        a.rows(0, dst, path);
        return Ok(());
    }
    install(n_threads, || {
        dst.par_chunks_mut(rpt * inf)
            .enumerate()
            .for_each(|(t, d)| a.rows(t * rpt, d, path));
    })
}

/// Dequantize an AWQ GEMM tensor (4-bit) into `out` (`[out_features, in_features]`,
/// row-major); `reused` as in [`dequantize_gptq`]. Errors: `InvalidArgument` (group size),
/// `Shape` (lengths).
pub fn dequantize_awq(
    qweight: &[i32],
    qzeros: &[i32],
    scales: Scales<'_>,
    layout: &AwqLayout,
    out: OutSlice<'_>,
    n_threads: usize,
    reused: bool,
) -> CoreResult<()> {
    let AwqLayout {
        in_features,
        out_features,
        group_size,
    } = *layout;
    let g = check_awq(
        qweight.len(),
        qzeros.len(),
        scales.len(),
        in_features,
        out_features,
        group_size,
    )?;
    check_out(out.len(), out_features, in_features)?;
    let a = awq_operands(qweight, qzeros, scales, layout, g);
    let inf = in_features;
    match out {
        OutSlice::F32(d) => {
            let path = store::choose(d, lines_aligned(d, inf), reused);
            awq_into(&a, d, n_threads, path)
        }
        OutSlice::F16(d) => {
            let path = store::choose(d, lines_aligned(d, inf), reused);
            awq_into(&a, d, n_threads, path)
        }
        OutSlice::Bf16(d) => {
            let path = store::choose(d, lines_aligned(d, inf), reused);
            awq_into(&a, d, n_threads, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::half::{f16_to_f32, f32_to_f16};
    use super::super::output::{f32_to_bf16, Bf16, F16};
    use super::*;
    use crate::dequant::TestRng as Rng;

    /// Pack `vals` (`len` values of `bits` bits, LSB first) into 32-bit words.
    fn pack_stream(vals: &[u32], bits: u32) -> Vec<u32> {
        let mut words = vec![0u32; vals.len() * bits as usize / 32];
        for (k, &v) in vals.iter().enumerate() {
            for b in 0..bits as usize {
                if (v >> b) & 1 == 1 {
                    let pos = k * bits as usize + b;
                    words[pos / 32] |= 1 << (pos % 32);
                }
            }
        }
        words
    }

    #[test]
    fn three_bit_stream_matches_autogptq_layout() {
        // AutoGPTQ: value 10 = word0 bits 30..31 + word1 bit 0; value 21 = word1 bit 31 +
        // word2 bits 0..1; values 11..20 at word1 bit 3(j-11)+1; 22..31 at word2 bit 3(j-22)+2.
        let vals: Vec<u32> = (0..32).map(|k| (k * 5 + 3) % 8).collect();
        let mut w = [0u32; 3];
        for k in 0..10 {
            w[0] |= vals[k] << (3 * k);
        }
        w[0] |= vals[10] << 30;
        w[1] |= (vals[10] >> 2) & 1;
        for k in 11..21 {
            w[1] |= vals[k] << (3 * (k - 11) + 1);
        }
        w[1] |= vals[21] << 31;
        w[2] |= (vals[21] >> 1) & 3;
        for k in 22..32 {
            w[2] |= vals[k] << (3 * (k - 22) + 2);
        }
        assert_eq!(pack_stream(&vals, 3), w.to_vec());
        let words: Vec<i32> = w.iter().map(|&x| x as i32).collect();
        for (k, &v) in vals.iter().enumerate() {
            assert_eq!(stream_value(&words, 1, k, 3), v);
        }
    }

    fn gptq_case(bits: u32, inf: usize, outf: usize, gs: usize, act_order: bool, seed: u64) {
        let mut rng = Rng(seed);
        let g = inf.div_ceil(gs);
        let maxq = (1u32 << bits) - 1;
        let q: Vec<u32> = (0..inf * outf).map(|_| rng.next() as u32 & maxq).collect(); // [in, out]
        let z: Vec<u32> = (0..g * outf).map(|_| rng.next() as u32 & maxq).collect();
        let scales: Vec<u16> = (0..g * outf)
            .map(|k| {
                if k == 5 {
                    0x7C00
                } else {
                    (rng.next() as u16) & 0x3FFF
                }
            })
            .collect();
        let mut g_idx: Vec<i32> = (0..inf).map(|i| (i / gs) as i32).collect();
        if act_order {
            for i in (1..inf).rev() {
                let k = (rng.next() % (i as u64 + 1)) as usize;
                g_idx.swap(i, k);
            }
        }
        // qweight: column-wise streams along the input dimension.
        let mut qweight = vec![0i32; inf * bits as usize / 32 * outf];
        for j in 0..outf {
            let col: Vec<u32> = (0..inf).map(|i| q[i * outf + j]).collect();
            for (r, w) in pack_stream(&col, bits).iter().enumerate() {
                qweight[r * outf + j] = *w as i32;
            }
        }
        let mut qzeros = Vec::new();
        for gg in 0..g {
            qzeros.extend(
                pack_stream(&z[gg * outf..(gg + 1) * outf], bits)
                    .iter()
                    .map(|&w| w as i32),
            );
        }
        let layout = GptqLayout {
            bits,
            in_features: inf,
            out_features: outf,
            n_groups: g,
            zero_offset: 1,
        };
        let want: Vec<f32> = (0..outf * inf)
            .map(|k| {
                let (j, i) = (k / inf, k % inf);
                let gg = g_idx[i] as usize;
                let s = f16_to_f32(scales[gg * outf + j]);
                s * (q[i * outf + j] as i32 - (z[gg * outf + j] as i32 + 1)) as f32
            })
            .collect();
        let mut o = vec![0f32; outf * inf];
        let mut h = vec![F16(0); outf * inf];
        let mut b = vec![Bf16(0); outf * inf];
        let sc = Scales::F16(&scales);
        dequantize_gptq(
            &GptqTensors {
                qweight: &qweight,
                qzeros: &qzeros,
                scales: sc,
                g_idx: &g_idx,
            },
            &layout,
            OutSlice::F32(&mut o),
            2,
            false,
        )
        .unwrap();
        dequantize_gptq(
            &GptqTensors {
                qweight: &qweight,
                qzeros: &qzeros,
                scales: sc,
                g_idx: &g_idx,
            },
            &layout,
            OutSlice::F16(&mut h),
            2,
            false,
        )
        .unwrap();
        dequantize_gptq(
            &GptqTensors {
                qweight: &qweight,
                qzeros: &qzeros,
                scales: sc,
                g_idx: &g_idx,
            },
            &layout,
            OutSlice::Bf16(&mut b),
            1,
            false,
        )
        .unwrap();
        for k in 0..want.len() {
            assert_eq!(o[k].to_bits(), want[k].to_bits(), "bits={bits} k={k}");
            assert_eq!(h[k].0, f32_to_f16(want[k]));
            assert_eq!(b[k].0, f32_to_bf16(want[k]));
        }
        // Portable path agrees too.
        let gp = Gptq {
            qweight: &qweight,
            g_idx: &g_idx,
            scales: sc.to_f32(),
            zeros: unpack_zeros_gptq(&qzeros, &layout),
            l: layout,
        };
        let mut p = vec![0f32; outf * inf];
        gptq_into(&gp, &mut p, 1, Path::Portable).unwrap();
        assert!(p.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        // Every variant gives the same bits (streaming needs a 16-byte aligned output).
        if store::choose(&p, false, false) != Path::Portable {
            for (path, extra) in [
                (Path::Avx2, 0),
                (Path::Stream, 0),
                (Path::Stream, 4),
                (Path::Stream, 12),
            ] {
                // 64-byte aligned, or 16 / 48 bytes past a line (as NumPy buffers are).
                let mut raw = vec![0f32; outf * inf + 32];
                let off = raw.as_ptr().align_offset(64) + extra;
                let buf = &mut raw[off..off + outf * inf];
                let fits = inf % 8 == 0 || path == Path::Avx2;
                if fits {
                    gptq_into(&gp, buf, 2, path).unwrap();
                    assert!(buf
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()));
                }
                let mut rawb = vec![Bf16(0); outf * inf + 64];
                let off = rawb.as_ptr().align_offset(64) + 2 * extra;
                let bufb = &mut rawb[off..off + outf * inf];
                if fits {
                    gptq_into(&gp, bufb, 2, path).unwrap();
                    assert!(bufb.iter().zip(&want).all(|(a, b)| a.0 == f32_to_bf16(*b)));
                }
            }
        }
    }

    #[test]
    fn gptq_matches_reference_all_bits() {
        for (bits, seed) in [(2u32, 1u64), (3, 2), (4, 3), (8, 4)] {
            gptq_case(bits, 128, 32, 32, false, seed);
            gptq_case(bits, 96, 64, 32, true, seed + 10);
            gptq_case(bits, 64, 96, 64, true, seed + 20);
        }
        gptq_case(4, 520, 24, 40, false, 99); // odd tile counts and a partial group
        gptq_case(4, 1024, 72, 128, true, 98); // several tasks
        gptq_case(8, 36, 12, 12, false, 97); // input tail (36 % 8 = 4), column tail
        gptq_case(4, 2048, 200, 128, true, 96); // two tasks, panels of 64 + 64 and 64 + 8
        gptq_case(3, 2048, 160, 2048, false, 95);
    }

    #[test]
    fn gptq_checks() {
        let layout = GptqLayout {
            bits: 4,
            in_features: 64,
            out_features: 8,
            n_groups: 2,
            zero_offset: 1,
        };
        let qweight = vec![0i32; 64];
        let qzeros = vec![0i32; 2];
        let scales = vec![0f32; 16];
        let g_idx: Vec<i32> = (0..64).map(|i| i / 32).collect();
        let mut out = vec![0f32; 512];
        let run = |qw: &[i32], g: &[i32], l: &GptqLayout, out: &mut [f32]| {
            dequantize_gptq(
                &GptqTensors {
                    qweight: qw,
                    qzeros: &qzeros,
                    scales: Scales::F32(&scales),
                    g_idx: g,
                },
                l,
                OutSlice::F32(out),
                1,
                false,
            )
        };
        run(&qweight, &g_idx, &layout, &mut out).unwrap();
        let e = run(&qweight[..60], &g_idx, &layout, &mut out).unwrap_err();
        assert!(e.to_string().contains("qweight has 60 words"), "{e}");
        let mut bad = g_idx.clone();
        bad[7] = 2;
        let e = run(&qweight, &bad, &layout, &mut out).unwrap_err();
        assert!(e.to_string().contains("g_idx[7] = 2"), "{e}");
        let e = run(
            &qweight,
            &g_idx,
            &GptqLayout { bits: 5, ..layout },
            &mut out,
        )
        .unwrap_err();
        assert!(matches!(e, CoreError::InvalidArgument(_)), "{e}");
    }

    fn awq_case(inf: usize, outf: usize, gs: usize, seed: u64) {
        let mut rng = Rng(seed);
        let g = inf / gs;
        let q: Vec<i32> = (0..inf * outf).map(|_| (rng.next() & 15) as i32).collect();
        let z: Vec<i32> = (0..g * outf).map(|_| (rng.next() & 15) as i32).collect();
        let scales: Vec<f32> = (0..g * outf)
            .map(|_| (rng.next() >> 40) as f32 * 1e-6)
            .collect();
        let order = [0usize, 2, 4, 6, 1, 3, 5, 7];
        let pack = |m: &[i32], rows: usize| -> Vec<i32> {
            let mut w = vec![0u32; rows * outf / 8];
            for r in 0..rows {
                for c in 0..outf / 8 {
                    for (i, &o) in order.iter().enumerate() {
                        w[r * outf / 8 + c] |= (m[r * outf + 8 * c + o] as u32) << (4 * i);
                    }
                }
            }
            w.into_iter().map(|x| x as i32).collect()
        };
        let qweight = pack(&q, inf);
        let qzeros = pack(&z, g);
        let mut o = vec![0f32; outf * inf];
        let mut b = vec![Bf16(0); outf * inf];
        let sc = Scales::F32(&scales);
        dequantize_awq(
            &qweight,
            &qzeros,
            sc,
            &AwqLayout {
                in_features: inf,
                out_features: outf,
                group_size: gs,
            },
            OutSlice::F32(&mut o),
            2,
            false,
        )
        .unwrap();
        dequantize_awq(
            &qweight,
            &qzeros,
            sc,
            &AwqLayout {
                in_features: inf,
                out_features: outf,
                group_size: gs,
            },
            OutSlice::Bf16(&mut b),
            2,
            false,
        )
        .unwrap();
        for j in 0..outf {
            for i in 0..inf {
                let k = (i / gs) * outf + j;
                let want = (q[i * outf + j] - z[k]) as f32 * scales[k];
                assert_eq!(o[j * inf + i].to_bits(), want.to_bits(), "j={j} i={i}");
                assert_eq!(b[j * inf + i].0, f32_to_bf16(want));
            }
        }
        // Every variant gives the same bits (streaming needs a 16-byte aligned output).
        let layout = AwqLayout {
            in_features: inf,
            out_features: outf,
            group_size: gs,
        };
        let a = awq_operands(&qweight, &qzeros, sc, &layout, g);
        for path in [Path::Portable, Path::Avx2, Path::Stream] {
            if path != Path::Portable && store::choose(&o, false, false) == Path::Portable {
                continue;
            }
            if path == Path::Stream && inf % 8 != 0 {
                continue;
            }
            let mut raw = vec![0f32; outf * inf + 32];
            let off = raw.as_ptr().align_offset(64) + 4;
            let buf = &mut raw[off..off + outf * inf];
            awq_into(&a, buf, 2, path).unwrap();
            assert!(buf.iter().zip(&o).all(|(x, y)| x.to_bits() == y.to_bits()));
            let mut rawh = vec![F16(0); outf * inf + 8];
            let off = rawh.as_ptr().align_offset(16);
            let bufh = &mut rawh[off..off + outf * inf];
            awq_into(&a, bufh, 1, path).unwrap();
            assert!(bufh.iter().zip(&o).all(|(x, y)| x.0 == f32_to_f16(*y)));
        }
    }

    #[test]
    fn awq_matches_reference() {
        awq_case(128, 32, 32, 1);
        awq_case(36, 16, 12, 2); // group not a multiple of 8: portable path
        awq_case(1024, 64, 128, 3);
        awq_case(20, 8, 4, 4);
        awq_case(256, 72, 64, 5); // one wide panel of 8 words and a single word
        awq_case(2048, 264, 128, 6); // several tasks
    }

    #[test]
    fn awq_checks() {
        let e = dequantize_awq(
            &[0; 16],
            &[0; 1],
            Scales::F32(&[0.0; 8]),
            &AwqLayout {
                in_features: 16,
                out_features: 8,
                group_size: 5,
            },
            OutSlice::F32(&mut [0.0; 128]),
            1,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("group_size (5)"), "{e}");
        let e = dequantize_awq(
            &[0; 16],
            &[0; 1],
            Scales::F32(&[0.0; 8]),
            &AwqLayout {
                in_features: 16,
                out_features: 12,
                group_size: 16,
            },
            OutSlice::F32(&mut [0.0; 192]),
            1,
            false,
        )
        .unwrap_err();
        assert!(matches!(e, CoreError::Shape(_)), "{e}");
    }
}
