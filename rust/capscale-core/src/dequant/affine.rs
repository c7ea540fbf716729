//! Affine group quantization for precision sweeps ("fake quant"): for every group of
//! `group_size` consecutive values along the last axis (rows of `nn.Linear.weight`, so groups
//! run along the input features) compute a scale and a zero point from the group's min and
//! max, round each value onto the `2^bits`-level integer grid, and map it back — in one pass
//! (per group, both passes from L1: min/max, then quantize), multi-threaded over groups,
//! AVX2 where available with bit-identical portable code for tails and other CPUs.
//!
//! # Conventions
//!
//! Each [`Convention`] reproduces one published implementation to the last bit of f32 (the
//! values a PyTorch f32 tensor would give). `b` = bits, `qmax = 2^b − 1`, `half = 2^(b−1)`,
//! `R` = the rounding ([`Rounding`]), `clamp(x, lo, hi) = min(max(x, lo), hi)`; every line is
//! one f32 operation in the order written (divisions are true divisions, never products with
//! a reciprocal, unless written so).
//!
//! | convention | scale `s` and zero `z` per group | code `q` | value |
//! | --- | --- | --- | --- |
//! | `rtn_asym` (AWQ `pseudo_quantize_tensor`, zero point) | `s = max(mx − mn, eps) / qmax`; `z = clamp(−R(mn / s), 0, qmax)` | `clamp(R(w / s) + z, 0, qmax)` | `(q − z) · s` |
//! | `rtn_sym` (AWQ, no zero point) | `s = max(max(abs(mn), abs(mx)), eps) / (half − 1)`; `z = half` | `clamp(R(w / s) + z, 0, qmax)` (= AWQ's `clamp(R(w/s), −half, half−1)` + half) | `(q − z) · s` |
//! | `gptq_sym` (AutoGPTQ `Quantizer`, sym) | `a = max(abs(mn), abs(mx))`, `a = 1` if `a == 0`, `a = max(a, eps)`; `s = (a + a) / qmax`; `z = half` | `clamp(R(w / s) + z, 0, qmax)` | `(q − z) · s` |
//! | `hqq` (`hqq.core.quantize.Quantizer`, no optimizer) | `i = min((1 / (mx − mn)) · qmax, 1/eps)` (torch's `qmax / t` is `t.reciprocal() · qmax`); `z = (−mn) · i` (float); `s = 1 / i` | `clamp(R(w · i + z), 0, qmax)` | `(q − z) · s` |
//! | `torchao_int4` (`choose_qparams_affine` / `quantize_affine`, `ZeroPointDomain.FLOAT`) | `s₀ = (mx − mn) / qmax`; `z = mn + s₀ · half` (float, weight domain); `s = max(s₀, eps)`; `m = z − s · half` | `clamp(R((w − m) / s), 0, qmax)` | `(q − half) · s + z` |
//!
//! Notes:
//!
//! * `mn` and `mx` are the group's min and max with −0 read as +0 (`mn + 0.0`), so results
//!   never depend on which zero a reduction picked.
//! * `clamp` is `max` then `min` with x86 `maxps`/`minps` semantics (`max(x, lo)` is `x` only
//!   when `x > lo`), so a −0 code becomes +0; codes are therefore exact non-negative integers
//!   and the stored `(codes, scales, zeros)` reproduce the fake-quantized values bit for bit:
//!   `(q − z) · s`, or `(q − half) · s + z` for `torchao_int4` (whose zero is stored in the
//!   weight domain).
//! * `rtn_sym` stores the offset code `q + half` with zero `half`: `(q − half) · s` equals
//!   AWQ's `q_signed · s` exactly (except that a zero result is +0, never −0).
//! * `gptq_sym` follows the formula `s = 2·absmax / qmax` for every group. AutoGPTQ's
//!   `find_params` differs on groups with no negative value (there it keeps `xmin = 0`, so
//!   `s = max / qmax` while the zero stays `half`); real weight groups practically always
//!   contain a negative value.
//! * `eps` (the scale clamp): AWQ clamps the range at 1e-5 (`rtn_asym`; the absmax for
//!   `rtn_sym`), HQQ clamps the inverse scale at 2e4 (`eps = 5e-5`, `1/eps` rounded to f32),
//!   torchao clamps the scale itself, after the zero point is computed (1e-6 in
//!   `get_groupwise_affine_qparams`); GPTQ has no clamp (`eps = 0`) but maps an all-zero group
//!   to `a = 1`. torchao's tinygemm path then rounds scale and zero to bf16; here they stay
//!   f32.
//! * Groups with a NaN or ±inf are rejected ([`CoreError::NonFinite`], naming the first such
//!   element) unless `allow_nonfinite`, in which case the whole group becomes NaN (values,
//!   scale and zero NaN, codes 0). Constant groups give finite results through the clamps.

use super::output::{Bf16, OutSlice, F16};
use super::simd::{has_avx2_f16c, Out};
use crate::error::{CoreError, CoreResult};
use crate::parallel;
use rayon::prelude::*;

/// How a group's scale and zero point are computed and applied (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Convention {
    /// Asymmetric, integer zero point, range clamped at `eps` (AWQ `pseudo_quantize_tensor`).
    RtnAsym,
    /// Symmetric over `[−2^(b−1), 2^(b−1) − 1]`, absmax clamped at `eps` (AWQ without zero).
    RtnSym,
    /// GPTQ symmetric: `s = 2·absmax/(2^b − 1)`, zero `2^(b−1)` (the full range incl. −8).
    GptqSym,
    /// HQQ without the optimizer: inverse scale clamped at `1/eps`, float zero point.
    Hqq,
    /// torchao int4 weight-only, `ZeroPointDomain.FLOAT`: zero point in the weight domain.
    TorchaoInt4,
}

impl Convention {
    /// Every convention, in documentation order.
    pub const ALL: [Convention; 5] = [
        Convention::RtnAsym,
        Convention::RtnSym,
        Convention::GptqSym,
        Convention::Hqq,
        Convention::TorchaoInt4,
    ];

    /// The name used by the Python API (`"rtn_asym"` …).
    pub fn name(self) -> &'static str {
        match self {
            Convention::RtnAsym => "rtn_asym",
            Convention::RtnSym => "rtn_sym",
            Convention::GptqSym => "gptq_sym",
            Convention::Hqq => "hqq",
            Convention::TorchaoInt4 => "torchao_int4",
        }
    }

    /// Look a convention up by name.
    pub fn from_name(name: &str) -> CoreResult<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                CoreError::UnknownName(format!(
                    "unknown affine convention {name:?}; known: {}",
                    known.join(", ")
                ))
            })
    }

    /// The scale clamp of the reference implementation (see the module docs).
    pub fn default_eps(self) -> f64 {
        match self {
            Convention::RtnAsym | Convention::RtnSym => 1e-5,
            Convention::GptqSym => 0.0,
            Convention::Hqq => 5e-5,
            Convention::TorchaoInt4 => 1e-6,
        }
    }

    /// Whether the grid is symmetric around zero (no per-group zero point to store).
    pub fn symmetric(self) -> bool {
        matches!(self, Convention::RtnSym | Convention::GptqSym)
    }

    /// Whether the zero point is a float (HQQ, torchao) rather than an integer code.
    pub fn float_zero(self) -> bool {
        matches!(self, Convention::Hqq | Convention::TorchaoInt4)
    }

    fn mode(self) -> u8 {
        match self {
            Convention::RtnAsym | Convention::RtnSym | Convention::GptqSym => DIV,
            Convention::Hqq => MULADD,
            Convention::TorchaoInt4 => SUBDIV,
        }
    }
}

/// How `R(x)` rounds ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round half to even (`torch.round`, `np.rint`): the default.
    HalfEven,
    /// Round half away from zero (C `roundf`, as ggml rounds).
    HalfAway,
}

impl Rounding {
    /// The name used by the Python API.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::HalfEven => "half_even",
            Rounding::HalfAway => "half_away",
        }
    }

    /// Look a rounding mode up by name.
    pub fn from_name(name: &str) -> CoreResult<Self> {
        match name {
            "half_even" => Ok(Rounding::HalfEven),
            "half_away" => Ok(Rounding::HalfAway),
            _ => Err(CoreError::UnknownName(format!(
                "unknown rounding {name:?}; known: half_even, half_away"
            ))),
        }
    }
}

/// Everything that defines an affine quantization scheme.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineParams {
    /// Scale/zero convention and op order.
    pub convention: Convention,
    /// Bits per code, 2..=8.
    pub bits: u32,
    /// Values per group (a divisor of the row length; the row length for per-channel).
    pub group_size: usize,
    /// Tie rounding.
    pub rounding: Rounding,
    /// Scale clamp (meaning per convention, see the module docs).
    pub eps: f64,
    /// Propagate NaN through groups holding NaN/inf instead of failing.
    pub allow_nonfinite: bool,
}

impl AffineParams {
    /// A scheme with the convention's own `eps`, rejecting non-finite input.
    pub fn new(convention: Convention, bits: u32, group_size: usize, rounding: Rounding) -> Self {
        AffineParams {
            convention,
            bits,
            group_size,
            rounding,
            eps: convention.default_eps(),
            allow_nonfinite: false,
        }
    }

    /// Check the scheme against data of `n` values in rows of `row_len`; returns the number
    /// of groups.
    pub fn validate(&self, n: usize, row_len: usize) -> CoreResult<usize> {
        if !(2..=8).contains(&self.bits) {
            return Err(CoreError::InvalidArgument(format!(
                "bits must be in 2..8, got {}",
                self.bits
            )));
        }
        if self.group_size == 0 {
            return Err(CoreError::InvalidArgument(
                "group_size must be positive (or -1/None for per-channel), got 0".into(),
            ));
        }
        if n == 0 || row_len == 0 {
            return Err(CoreError::Shape(
                "cannot quantize an empty array (no values)".into(),
            ));
        }
        if n % row_len != 0 {
            return Err(CoreError::Shape(format!(
                "{n} values do not make whole rows of length {row_len}"
            )));
        }
        if row_len % self.group_size != 0 {
            return Err(CoreError::Shape(format!(
                "group size {} does not divide the row length {row_len}",
                self.group_size
            )));
        }
        let eps = self.eps;
        let min_eps = if self.convention == Convention::GptqSym {
            0.0
        } else {
            f64::from(f32::MIN_POSITIVE)
        };
        if !eps.is_finite() || eps < min_eps || (eps > 0.0 && eps < f64::from(f32::MIN_POSITIVE)) {
            return Err(CoreError::InvalidArgument(format!(
                "scale_eps must be a finite number >= {} for {} (0 only for gptq_sym), got {eps}",
                f32::MIN_POSITIVE,
                self.convention.name()
            )));
        }
        Ok(n / self.group_size)
    }

    fn prep(&self) -> Prep {
        let qmax = ((1u32 << self.bits) - 1) as f32;
        let half = (1u32 << (self.bits - 1)) as f32;
        Prep {
            conv: self.convention,
            round_even: self.rounding == Rounding::HalfEven,
            qmax,
            half,
            qpos: half - 1.0,
            eps: self.eps as f32,
            inv_max: (1.0 / self.eps) as f32,
            group: self.group_size,
            allow_nonfinite: self.allow_nonfinite,
            avx2: has_avx2_f16c(),
        }
    }
}

/// The outputs of [`quantize`]; absent ones are skipped (not computed where avoidable).
#[derive(Default)]
pub struct AffineOutputs<'a> {
    /// Fake-quantized values (`n`), rounded once into the output type.
    pub values: Option<OutSlice<'a>>,
    /// Codes `0..2^bits` (`n`).
    pub codes: Option<&'a mut [u8]>,
    /// Scale per group (`n / group_size`).
    pub scales: Option<&'a mut [f32]>,
    /// Zero point per group (`n / group_size`): a code for the integer conventions, a float
    /// code for `hqq`, a weight-domain value for `torchao_int4`.
    pub zeros: Option<&'a mut [f32]>,
}

/// Quantize `src` (rows of `row_len`, groups of `p.group_size` along them) into any of the
/// outputs: fake-quantized values, codes, scales, zeros. `n_threads` 0: all cores (or
/// `CAPSCALE_NUM_THREADS`); the result does not depend on it.
pub fn quantize(
    p: &AffineParams,
    src: &[f32],
    row_len: usize,
    outs: AffineOutputs<'_>,
    n_threads: usize,
) -> CoreResult<()> {
    let n_groups = p.validate(src.len(), row_len)?;
    let n = src.len();
    let AffineOutputs {
        values,
        codes,
        scales,
        zeros,
    } = outs;
    if let Some(v) = &values {
        check("output", v.len(), n)?;
    }
    let codes = codes.unwrap_or_default();
    let scales = scales.unwrap_or_default();
    let zeros = zeros.unwrap_or_default();
    check_opt("codes", codes.len(), n)?;
    check_opt("scales", scales.len(), n_groups)?;
    check_opt("zeros", zeros.len(), n_groups)?;
    quantize_prep(
        &p.prep(),
        src,
        row_len,
        values,
        Bufs {
            codes,
            scales,
            zeros,
        },
        n_threads,
    )
}

fn quantize_prep(
    prep: &Prep,
    src: &[f32],
    row_len: usize,
    values: Option<OutSlice<'_>>,
    bufs: Bufs<'_>,
    n_threads: usize,
) -> CoreResult<()> {
    let first_bad = match values {
        Some(OutSlice::F32(d)) => run::<f32>(prep, src, d, bufs, n_threads)?,
        Some(OutSlice::F16(d)) => run::<F16>(prep, src, d, bufs, n_threads)?,
        Some(OutSlice::Bf16(d)) => run::<Bf16>(prep, src, d, bufs, n_threads)?,
        None => run::<f32>(prep, src, &mut [], bufs, n_threads)?,
    };
    match first_bad {
        None => Ok(()),
        Some(i) => Err(nonfinite_error(src, i, row_len)),
    }
}

/// Fake-quantize `src` into `dst` (same length): the dequantized grid values, rounded once
/// into the output type.
pub fn fake_quantize(
    p: &AffineParams,
    src: &[f32],
    row_len: usize,
    dst: OutSlice<'_>,
    n_threads: usize,
) -> CoreResult<()> {
    let outs = AffineOutputs {
        values: Some(dst),
        ..AffineOutputs::default()
    };
    quantize(p, src, row_len, outs, n_threads)
}

/// Dequantize codes with their per-group scales and zeros (as [`quantize`] stored them) into
/// `dst`: `(q − z) · s`, or `(q − 2^(b−1)) · s + z` for `torchao_int4` — the same bits as
/// [`fake_quantize`]. NaN scales or zeros give NaN.
pub fn dequantize(
    p: &AffineParams,
    codes: &[u8],
    scales: &[f32],
    zeros: &[f32],
    row_len: usize,
    dst: OutSlice<'_>,
    n_threads: usize,
) -> CoreResult<()> {
    let n_groups = p.validate(codes.len(), row_len)?;
    check("scales", scales.len(), n_groups)?;
    check("zeros", zeros.len(), n_groups)?;
    check("output", dst.len(), codes.len())?;
    let prep = p.prep();
    match dst {
        OutSlice::F32(d) => run_deq::<f32>(&prep, codes, scales, zeros, d, n_threads),
        OutSlice::F16(d) => run_deq::<F16>(&prep, codes, scales, zeros, d, n_threads),
        OutSlice::Bf16(d) => run_deq::<Bf16>(&prep, codes, scales, zeros, d, n_threads),
    }
}

fn check(name: &str, len: usize, want: usize) -> CoreResult<()> {
    if len == want {
        Ok(())
    } else {
        Err(CoreError::Shape(format!(
            "{name} has {len} elements, expected {want}"
        )))
    }
}

fn check_opt(name: &str, len: usize, want: usize) -> CoreResult<()> {
    if len == 0 {
        Ok(()) // absent
    } else {
        check(name, len, want)
    }
}

fn nonfinite_error(src: &[f32], i: usize, row_len: usize) -> CoreError {
    let v = src.get(i).copied().unwrap_or(f32::NAN);
    CoreError::NonFinite(format!(
        "x contains a non-finite value ({v}) at flat index {i} (row {}, column {}); pass \
         allow_nonfinite=True to propagate NaN through its group",
        i / row_len,
        i % row_len
    ))
}

// ---------------------------------------------------------------------------------------------
// Per-group constants and the portable kernels.
// ---------------------------------------------------------------------------------------------

/// Element op `u = w / a`.
const DIV: u8 = 0;
/// Element op `u = w · a + b` (HQQ's inverse scale and float zero).
const MULADD: u8 = 1;
/// Element op `u = (w − b) / a` (torchao's float-zero domain).
const SUBDIV: u8 = 2;

/// Values per parallel task (whole groups; at least one group).
const TASK_ELEMS: usize = 1 << 15;

#[derive(Debug, Clone, Copy)]
struct Prep {
    conv: Convention,
    round_even: bool,
    qmax: f32,
    half: f32,
    qpos: f32,
    eps: f32,
    inv_max: f32,
    group: usize,
    allow_nonfinite: bool,
    avx2: bool,
}

/// One group's constants: `u` from the element op (`a`, `b`), `q = clamp(R(u) + zadd)`,
/// value `(q − zsub) · s (+ zpost for SUBDIV)`; `scale`/`zero` are what is stored.
#[derive(Debug, Clone, Copy, Default)]
struct Consts {
    a: f32,
    b: f32,
    zadd: f32,
    zsub: f32,
    s: f32,
    zpost: f32,
    scale: f32,
    zero: f32,
}

#[inline(always)]
fn fmax(x: f32, lo: f32) -> f32 {
    // x86 `maxps(x, lo)`: `lo` unless `x > lo` (so −0 → +0 against lo = +0).
    if x > lo {
        x
    } else {
        lo
    }
}

#[inline(always)]
fn fmin(x: f32, hi: f32) -> f32 {
    // x86 `minps(x, hi)`: `hi` unless `x < hi`.
    if x < hi {
        x
    } else {
        hi
    }
}

#[inline(always)]
fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    fmin(fmax(x, lo), hi)
}

#[inline(always)]
fn round<const RNE: bool>(x: f32) -> f32 {
    if RNE {
        x.round_ties_even()
    } else {
        x.round()
    }
}

fn round_rt(x: f32, rne: bool) -> f32 {
    if rne {
        round::<true>(x)
    } else {
        round::<false>(x)
    }
}

/// Scale and zero of a group with (canonical) min `mn` and max `mx` (all finite).
#[inline]
fn consts(p: &Prep, mn: f32, mx: f32) -> Consts {
    let rne = p.round_even;
    match p.conv {
        Convention::RtnAsym => {
            let s = fmax(mx - mn, p.eps) / p.qmax;
            let z = clamp(-round_rt(mn / s, rne), 0.0, p.qmax);
            div_consts(s, z)
        }
        Convention::RtnSym => {
            let a = fmax(fmax(mn.abs(), mx.abs()), p.eps);
            div_consts(a / p.qpos, p.half)
        }
        Convention::GptqSym => {
            let mut a = fmax(mn.abs(), mx.abs());
            if a == 0.0 {
                a = 1.0;
            }
            let a = fmax(a, p.eps);
            div_consts((a + a) / p.qmax, p.half)
        }
        Convention::Hqq => {
            let inv = fmin((1.0 / (mx - mn)) * p.qmax, p.inv_max);
            let z = -mn * inv;
            let s = 1.0 / inv;
            Consts {
                a: inv,
                b: z,
                zadd: 0.0,
                zsub: z,
                s,
                zpost: 0.0,
                scale: s,
                zero: z,
            }
        }
        Convention::TorchaoInt4 => {
            let s0 = (mx - mn) / p.qmax;
            let z = mn + s0 * p.half;
            let s = fmax(s0, p.eps);
            let m = z - s * p.half;
            Consts {
                a: s,
                b: m,
                zadd: 0.0,
                zsub: p.half,
                s,
                zpost: z,
                scale: s,
                zero: z,
            }
        }
    }
}

fn div_consts(s: f32, z: f32) -> Consts {
    Consts {
        a: s,
        b: 0.0,
        zadd: z,
        zsub: z,
        s,
        zpost: 0.0,
        scale: s,
        zero: z,
    }
}

/// Code (as an exact f32 integer) of one value.
#[inline(always)]
fn code1<const MODE: u8, const RNE: bool>(w: f32, k: &Consts, qmax: f32) -> f32 {
    let u = match MODE {
        DIV => w / k.a,
        MULADD => w * k.a + k.b,
        _ => (w - k.b) / k.a,
    };
    let r = round::<RNE>(u);
    let r = if MODE == DIV { r + k.zadd } else { r };
    clamp(r, 0.0, qmax)
}

/// Value of one code.
#[inline(always)]
fn value1<const MODE: u8>(q: f32, k: &Consts) -> f32 {
    let v = (q - k.zsub) * k.s;
    if MODE == SUBDIV {
        v + k.zpost
    } else {
        v
    }
}

/// Min, max (−0 read as +0) and whether every value is finite.
#[inline]
fn stats_scalar(w: &[f32]) -> (f32, f32, bool) {
    let mut mn = f32::INFINITY;
    let mut mx = f32::NEG_INFINITY;
    let mut finite = true;
    for &x in w {
        finite &= x.is_finite();
        mn = if x < mn { x } else { mn };
        mx = if x > mx { x } else { mx };
    }
    (mn + 0.0, mx + 0.0, finite)
}

#[inline(always)]
fn group_scalar<O: Out, const MODE: u8, const RNE: bool, const VALUES: bool, const CODES: bool>(
    w: &[f32],
    k: &Consts,
    qmax: f32,
    dst: &mut [O],
    codes: &mut [u8],
) {
    for (i, &x) in w.iter().enumerate() {
        let q = code1::<MODE, RNE>(x, k, qmax);
        if VALUES {
            if let Some(d) = dst.get_mut(i) {
                *d = O::from_f32(value1::<MODE>(q, k));
            }
        }
        if CODES {
            if let Some(c) = codes.get_mut(i) {
                *c = q as u8;
            }
        }
    }
}

/// A whole group that held NaN/inf, with `allow_nonfinite`.
fn nan_group<O: Out>(
    dst: &mut [O],
    codes: &mut [u8],
    scale: Option<&mut f32>,
    zero: Option<&mut f32>,
) {
    dst.fill(O::from_f32(f32::NAN));
    codes.fill(0);
    if let Some(s) = scale {
        *s = f32::NAN;
    }
    if let Some(z) = zero {
        *z = f32::NAN;
    }
}

/// The portable loop over a task's groups; `Some(i)`: first non-finite value (task-relative)
/// when they are rejected.
fn groups_scalar<O: Out, const MODE: u8, const RNE: bool, const VALUES: bool, const CODES: bool>(
    p: &Prep,
    t: Task<'_, O>,
) -> Option<usize> {
    let g = p.group;
    for (j, w) in t.src.chunks_exact(g).enumerate() {
        let off = j * g;
        let dst = t.dst.get_mut(off..off + g).unwrap_or_default();
        let codes = t.codes.get_mut(off..off + g).unwrap_or_default();
        let (mn, mx, finite) = stats_scalar(w);
        if !finite {
            if !p.allow_nonfinite {
                return Some(off + first_nonfinite(w));
            }
            nan_group(dst, codes, t.scales.get_mut(j), t.zeros.get_mut(j));
            continue;
        }
        let k = consts(p, mn, mx);
        if let Some(s) = t.scales.get_mut(j) {
            *s = k.scale;
        }
        if let Some(z) = t.zeros.get_mut(j) {
            *z = k.zero;
        }
        group_scalar::<O, MODE, RNE, VALUES, CODES>(w, &k, p.qmax, dst, codes);
    }
    None
}

fn first_nonfinite(w: &[f32]) -> usize {
    w.iter().position(|x| !x.is_finite()).unwrap_or(0)
}

/// Dequantize constants of a stored group: `(zsub, s, zpost)`.
#[inline(always)]
fn deq_consts(p: &Prep, scale: f32, zero: f32) -> (f32, f32, f32) {
    if p.conv == Convention::TorchaoInt4 {
        (p.half, scale, zero)
    } else {
        (zero, scale, 0.0)
    }
}

fn deq_scalar<O: Out, const ADD: bool>(c: &[u8], zsub: f32, s: f32, zpost: f32, dst: &mut [O]) {
    for (d, &q) in dst.iter_mut().zip(c) {
        let v = (f32::from(q) - zsub) * s;
        *d = O::from_f32(if ADD { v + zpost } else { v });
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks and dispatch.
// ---------------------------------------------------------------------------------------------

/// The optional per-value and per-group outputs (empty slices when absent).
struct Bufs<'a> {
    codes: &'a mut [u8],
    scales: &'a mut [f32],
    zeros: &'a mut [f32],
}

/// A run of whole groups: its input and the matching output ranges (empty when absent).
struct Task<'a, O> {
    src: &'a [f32],
    dst: &'a mut [O],
    codes: &'a mut [u8],
    scales: &'a mut [f32],
    zeros: &'a mut [f32],
}

/// `s` in chunks of `size` (or `count` empty slices when `s` is empty).
fn split<T>(s: &mut [T], size: usize, count: usize) -> Vec<&mut [T]> {
    if s.is_empty() {
        (0..count).map(|_| <&mut [T]>::default()).collect()
    } else {
        s.chunks_mut(size).collect()
    }
}

/// Groups per task.
fn groups_per_task(group: usize) -> usize {
    (TASK_ELEMS / group).max(1)
}

/// Run every task (in parallel when there are several); the first non-finite index, if any.
fn run<O: Out>(
    p: &Prep,
    src: &[f32],
    dst: &mut [O],
    bufs: Bufs<'_>,
    n_threads: usize,
) -> CoreResult<Option<usize>> {
    let gpt = groups_per_task(p.group);
    let chunk = gpt * p.group;
    let count = src.len().div_ceil(chunk);
    let dsts = split(dst, chunk, count);
    let codes = split(bufs.codes, chunk, count);
    let scales = split(bufs.scales, gpt, count);
    let zeros = split(bufs.zeros, gpt, count);
    let tasks: Vec<(usize, Task<'_, O>)> = src
        .chunks(chunk)
        .zip(dsts)
        .zip(codes)
        .zip(scales)
        .zip(zeros)
        .enumerate()
        .map(|(i, ((((src, dst), codes), scales), zeros))| {
            let task = Task {
                src,
                dst,
                codes,
                scales,
                zeros,
            };
            (i * chunk, task)
        })
        .collect();
    let one = |(base, t): (usize, Task<'_, O>)| dispatch_mode::<O>(p, t).map(|i| base + i);
    let firsts: Vec<Option<usize>> = if tasks.len() <= 1 {
        tasks.into_iter().map(one).collect()
    } else {
        parallel::install(n_threads, || tasks.into_par_iter().map(one).collect())?
    };
    Ok(firsts.into_iter().flatten().min())
}

fn dispatch_mode<O: Out>(p: &Prep, t: Task<'_, O>) -> Option<usize> {
    match p.conv.mode() {
        DIV => dispatch_round::<O, DIV>(p, t),
        MULADD => dispatch_round::<O, MULADD>(p, t),
        _ => dispatch_round::<O, SUBDIV>(p, t),
    }
}

fn dispatch_round<O: Out, const MODE: u8>(p: &Prep, t: Task<'_, O>) -> Option<usize> {
    if p.round_even {
        dispatch_outs::<O, MODE, true>(p, t)
    } else {
        dispatch_outs::<O, MODE, false>(p, t)
    }
}

fn dispatch_outs<O: Out, const MODE: u8, const RNE: bool>(
    p: &Prep,
    t: Task<'_, O>,
) -> Option<usize> {
    match (!t.dst.is_empty(), !t.codes.is_empty()) {
        (true, true) => groups::<O, MODE, RNE, true, true>(p, t),
        (true, false) => groups::<O, MODE, RNE, true, false>(p, t),
        (false, true) => groups::<O, MODE, RNE, false, true>(p, t),
        (false, false) => groups::<O, MODE, RNE, false, false>(p, t),
    }
}

fn groups<O: Out, const MODE: u8, const RNE: bool, const VALUES: bool, const CODES: bool>(
    p: &Prep,
    t: Task<'_, O>,
) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if p.avx2 {
        // SAFETY: `p.avx2` says this CPU has AVX2 and F16C.
        return unsafe { x86::groups::<O, MODE, RNE, VALUES, CODES>(p, t) };
    }
    groups_scalar::<O, MODE, RNE, VALUES, CODES>(p, t)
}

/// Codes, output, scales and zeros of one dequantization task.
type DeqChunk<'a, O> = (&'a [u8], &'a mut [O], &'a [f32], &'a [f32]);

fn run_deq<O: Out>(
    p: &Prep,
    codes: &[u8],
    scales: &[f32],
    zeros: &[f32],
    dst: &mut [O],
    n_threads: usize,
) -> CoreResult<()> {
    let gpt = groups_per_task(p.group);
    let chunk = gpt * p.group;
    let tasks: Vec<DeqChunk<'_, O>> = codes
        .chunks(chunk)
        .zip(dst.chunks_mut(chunk))
        .zip(scales.chunks(gpt).zip(zeros.chunks(gpt)))
        .map(|((c, d), (s, z))| (c, d, s, z))
        .collect();
    let one = |(c, d, s, z): DeqChunk<'_, O>| deq_task(p, c, s, z, d);
    if tasks.len() <= 1 {
        tasks.into_iter().for_each(one);
    } else {
        parallel::install(n_threads, || tasks.into_par_iter().for_each(one))?;
    }
    Ok(())
}

fn deq_task<O: Out>(p: &Prep, codes: &[u8], scales: &[f32], zeros: &[f32], dst: &mut [O]) {
    let add = p.conv == Convention::TorchaoInt4;
    #[cfg(target_arch = "x86_64")]
    if p.avx2 {
        // SAFETY: `p.avx2` says this CPU has AVX2 and F16C.
        unsafe {
            if add {
                x86::deq_groups::<O, true>(p, codes, scales, zeros, dst);
            } else {
                x86::deq_groups::<O, false>(p, codes, scales, zeros, dst);
            }
        }
        return;
    }
    let g = p.group;
    for (((c, d), &s), &z) in codes
        .chunks_exact(g)
        .zip(dst.chunks_exact_mut(g))
        .zip(scales)
        .zip(zeros)
    {
        let (zsub, s, zpost) = deq_consts(p, s, z);
        if add {
            deq_scalar::<O, true>(c, zsub, s, zpost, d);
        } else {
            deq_scalar::<O, false>(c, zsub, s, zpost, d);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2 kernels. Every function carries the target features and there are no closures
    //! (a closure does not inherit them, and the intrinsics would not inline). Each computes
    //! the same IEEE operations as the portable code, so the bits are identical.

    use super::super::simd::x86::store8;
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn round8<const RNE: bool>(u: __m256) -> __m256 {
        if RNE {
            _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(u)
        } else {
            // Half away from zero: t = trunc(u); u − t is exact; step away when |u − t| ≥ ½.
            let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(u);
            let d = _mm256_sub_ps(u, t);
            let sign = _mm256_set1_ps(-0.0);
            let ad = _mm256_andnot_ps(sign, d);
            let big = _mm256_cmp_ps::<_CMP_GE_OQ>(ad, _mm256_set1_ps(0.5));
            let one = _mm256_or_ps(_mm256_and_ps(u, sign), _mm256_set1_ps(1.0));
            _mm256_blendv_ps(t, _mm256_add_ps(t, one), big)
        }
    }

    /// Min, max (−0 read as +0) and finiteness of a group.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn stats(w: &[f32]) -> (f32, f32, bool) {
        let n16 = w.len() / 16 * 16;
        let n8 = w.len() / 8 * 8;
        if n8 == 0 {
            return stats_scalar(w);
        }
        let p = w.as_ptr();
        let mut mn0 = _mm256_loadu_ps(p);
        let mut mx0 = mn0;
        let mut mn1 = mn0;
        let mut mx1 = mn0;
        // NaN lanes (unordered compares); ±inf shows in the min/max themselves.
        let mut bad = _mm256_setzero_ps();
        let mut i = 0;
        while i < n16 {
            let a = _mm256_loadu_ps(p.add(i));
            let b = _mm256_loadu_ps(p.add(i + 8));
            mn0 = _mm256_min_ps(mn0, a);
            mx0 = _mm256_max_ps(mx0, a);
            mn1 = _mm256_min_ps(mn1, b);
            mx1 = _mm256_max_ps(mx1, b);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps::<_CMP_UNORD_Q>(a, b));
            i += 16;
        }
        if i < n8 {
            let a = _mm256_loadu_ps(p.add(i));
            mn0 = _mm256_min_ps(mn0, a);
            mx0 = _mm256_max_ps(mx0, a);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a));
        }
        let mn = _mm256_min_ps(mn0, mn1);
        let mx = _mm256_max_ps(mx0, mx1);
        let nan = _mm256_movemask_ps(bad);
        // Lane reductions: which of equal values (±0) a lane keeps does not matter, the
        // results are canonicalised below.
        let m = _mm_min_ps(_mm256_castps256_ps128(mn), _mm256_extractf128_ps::<1>(mn));
        let m = _mm_min_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_min_ss(m, _mm_shuffle_ps::<1>(m, m));
        let x = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps::<1>(mx));
        let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
        let x = _mm_max_ss(x, _mm_shuffle_ps::<1>(x, x));
        let (mut lo, mut hi) = (_mm_cvtss_f32(m), _mm_cvtss_f32(x));
        let mut finite = nan == 0 && lo.is_finite() && hi.is_finite();
        if n8 < w.len() {
            let (tmn, tmx, tfin) = stats_scalar(w.get(n8..).unwrap_or_default());
            lo = if tmn < lo { tmn } else { lo };
            hi = if tmx > hi { tmx } else { hi };
            finite &= tfin;
        }
        (lo + 0.0, hi + 0.0, finite)
    }

    /// Quantize one group (all finite) with its constants.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn group<
        O: Out,
        const MODE: u8,
        const RNE: bool,
        const VALUES: bool,
        const CODES: bool,
    >(
        w: &[f32],
        k: &Consts,
        qmax: f32,
        dst: &mut [O],
        codes: &mut [u8],
    ) {
        let n8 = w.len() / 8 * 8;
        let (a, b) = (_mm256_set1_ps(k.a), _mm256_set1_ps(k.b));
        let zadd = _mm256_set1_ps(k.zadd);
        let zsub = _mm256_set1_ps(k.zsub);
        let s = _mm256_set1_ps(k.s);
        let zpost = _mm256_set1_ps(k.zpost);
        let zero = _mm256_setzero_ps();
        let qm = _mm256_set1_ps(qmax);
        let src = w.as_ptr();
        let out = dst.as_mut_ptr();
        let cod = codes.as_mut_ptr();
        let mut i = 0;
        while i < n8 {
            let x = _mm256_loadu_ps(src.add(i));
            let u = match MODE {
                DIV => _mm256_div_ps(x, a),
                MULADD => _mm256_add_ps(_mm256_mul_ps(x, a), b),
                _ => _mm256_div_ps(_mm256_sub_ps(x, b), a),
            };
            let r = round8::<RNE>(u);
            let r = if MODE == DIV {
                _mm256_add_ps(r, zadd)
            } else {
                r
            };
            let q = _mm256_min_ps(_mm256_max_ps(r, zero), qm);
            if VALUES {
                let v = _mm256_mul_ps(_mm256_sub_ps(q, zsub), s);
                let v = if MODE == SUBDIV {
                    _mm256_add_ps(v, zpost)
                } else {
                    v
                };
                store8::<O, false>(out.add(i), v);
            }
            if CODES {
                let qi = _mm256_cvtps_epi32(q);
                let h = _mm_packus_epi32(
                    _mm256_castsi256_si128(qi),
                    _mm256_extracti128_si256::<1>(qi),
                );
                _mm_storel_epi64(cod.add(i).cast(), _mm_packus_epi16(h, h));
            }
            i += 8;
        }
        if n8 < w.len() {
            group_scalar::<O, MODE, RNE, VALUES, CODES>(
                w.get(n8..).unwrap_or_default(),
                k,
                qmax,
                dst.get_mut(n8..).unwrap_or_default(),
                codes.get_mut(n8..).unwrap_or_default(),
            );
        }
    }

    /// [`super::groups_scalar`] with the AVX2 kernels.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C; `t.dst` (when `VALUES`) and `t.codes` (when
    /// `CODES`) hold as many elements as `t.src`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn groups<
        O: Out,
        const MODE: u8,
        const RNE: bool,
        const VALUES: bool,
        const CODES: bool,
    >(
        p: &Prep,
        t: Task<'_, O>,
    ) -> Option<usize> {
        let g = p.group;
        if (VALUES && t.dst.len() != t.src.len()) || (CODES && t.codes.len() != t.src.len()) {
            return super::groups_scalar::<O, MODE, RNE, VALUES, CODES>(p, t);
        }
        for (j, w) in t.src.chunks_exact(g).enumerate() {
            let off = j * g;
            let dst = t.dst.get_mut(off..off + g).unwrap_or_default();
            let codes = t.codes.get_mut(off..off + g).unwrap_or_default();
            let (mn, mx, finite) = stats(w);
            if !finite {
                if !p.allow_nonfinite {
                    return Some(off + first_nonfinite(w));
                }
                nan_group(dst, codes, t.scales.get_mut(j), t.zeros.get_mut(j));
                continue;
            }
            let k = consts(p, mn, mx);
            if let Some(s) = t.scales.get_mut(j) {
                *s = k.scale;
            }
            if let Some(z) = t.zeros.get_mut(j) {
                *z = k.zero;
            }
            group::<O, MODE, RNE, VALUES, CODES>(w, &k, p.qmax, dst, codes);
        }
        None
    }

    /// Dequantize a task's groups.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn deq_groups<O: Out, const ADD: bool>(
        p: &Prep,
        codes: &[u8],
        scales: &[f32],
        zeros: &[f32],
        dst: &mut [O],
    ) {
        let g = p.group;
        let n8 = g / 8 * 8;
        for (((c, d), &sc), &ze) in codes
            .chunks_exact(g)
            .zip(dst.chunks_exact_mut(g))
            .zip(scales)
            .zip(zeros)
        {
            let (zsub, s, zpost) = deq_consts(p, sc, ze);
            let (vz, vs, vp) = (
                _mm256_set1_ps(zsub),
                _mm256_set1_ps(s),
                _mm256_set1_ps(zpost),
            );
            let (cp, dp) = (c.as_ptr(), d.as_mut_ptr());
            let mut i = 0;
            while i < n8 {
                let q = _mm_loadl_epi64(cp.add(i).cast());
                let q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q));
                let v = _mm256_mul_ps(_mm256_sub_ps(q, vz), vs);
                let v = if ADD { _mm256_add_ps(v, vp) } else { v };
                store8::<O, false>(dp.add(i), v);
                i += 8;
            }
            deq_scalar::<O, ADD>(
                c.get(n8..).unwrap_or_default(),
                zsub,
                s,
                zpost,
                d.get_mut(n8..).unwrap_or_default(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dequant::output::f32_to_bf16;
    use crate::rng::Stream;

    fn params(conv: Convention, bits: u32, g: usize) -> AffineParams {
        AffineParams::new(conv, bits, g, Rounding::HalfEven)
    }

    fn fq(p: &AffineParams, x: &[f32], row: usize) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        fake_quantize(p, x, row, OutSlice::F32(&mut out), 1).unwrap();
        out
    }

    /// Values in about ±2 with ties, zeros of both signs and tiny values mixed in.
    fn data(seed: u64, n: usize) -> Vec<f32> {
        let mut r = Stream::new(seed, 0);
        (0..n)
            .map(|i| {
                let u = (r.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
                match i % 23 {
                    3 => 0.0,
                    7 => -0.0,
                    11 => 1e-30 * (u - 0.5),
                    13 => ((u * 16.0).round() - 8.0) / 8.0, // on a coarse grid: ties
                    _ => 4.0 * u - 2.0,
                }
            })
            .collect()
    }

    /// Run a convention with an explicit kernel choice (portable or AVX2), all outputs.
    trait Wrap: Out {
        fn wrap(d: &mut [Self]) -> OutSlice<'_>;
    }
    impl Wrap for f32 {
        fn wrap(d: &mut [Self]) -> OutSlice<'_> {
            OutSlice::F32(d)
        }
    }
    impl Wrap for F16 {
        fn wrap(d: &mut [Self]) -> OutSlice<'_> {
            OutSlice::F16(d)
        }
    }
    impl Wrap for Bf16 {
        fn wrap(d: &mut [Self]) -> OutSlice<'_> {
            OutSlice::Bf16(d)
        }
    }

    fn run_all<O: Wrap>(
        p: &AffineParams,
        x: &[f32],
        row: usize,
        avx2: bool,
    ) -> (Vec<O>, Vec<u8>, Vec<f32>, Vec<f32>) {
        let mut prep = p.prep();
        prep.avx2 = avx2 && has_avx2_f16c();
        let n_groups = x.len() / p.group_size;
        let mut out = vec![O::default(); x.len()];
        let mut codes = vec![0u8; x.len()];
        let mut scales = vec![0f32; n_groups];
        let mut zeros = vec![0f32; n_groups];
        let bufs = Bufs {
            codes: &mut codes,
            scales: &mut scales,
            zeros: &mut zeros,
        };
        quantize_prep(&prep, x, row, Some(O::wrap(&mut out)), bufs, 2).unwrap();
        (out, codes, scales, zeros)
    }

    fn bits_f32(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn rtn_asym_hand_computed() {
        // One 4-bit group: min −1, max 2 → s = 3/15 = 0.2 (f32), z = clamp(−R(−1/0.2)) = 5.
        let x = [-1.0f32, 2.0, 0.1, 0.5, -0.45, 1.0, 0.0, 0.29];
        let p = params(Convention::RtnAsym, 4, 8);
        let mut codes = vec![0u8; 8];
        let mut scales = vec![0f32; 1];
        let mut zeros = vec![0f32; 1];
        let mut vals = vec![0f32; 8];
        let outs = AffineOutputs {
            values: Some(OutSlice::F32(&mut vals)),
            codes: Some(&mut codes),
            scales: Some(&mut scales),
            zeros: Some(&mut zeros),
        };
        quantize(&p, &x, 8, outs, 1).unwrap();
        let s = 3.0f32 / 15.0;
        assert_eq!(scales[0], s);
        assert_eq!(zeros[0], 5.0);
        for (i, &w) in x.iter().enumerate() {
            let q = ((w / s).round_ties_even() + 5.0).clamp(0.0, 15.0);
            assert_eq!(codes[i], q as u8, "code {i}");
            assert_eq!(vals[i].to_bits(), ((q - 5.0) * s).to_bits(), "value {i}");
        }
        assert_eq!(&codes[..3], &[0, 15, 5]); // f32 0.1/0.2 is just below ½: R = 0, + 5
    }

    #[test]
    fn tie_rounding_modes_differ() {
        // 2-bit, min 0, max 3 → s = 1, z = 0: codes are R(w).
        let x = [0.0f32, 0.5, 1.5, 2.5, 3.0];
        for (rounding, want) in [
            (Rounding::HalfEven, [0u8, 0, 2, 2, 3]),
            (Rounding::HalfAway, [0u8, 1, 2, 3, 3]),
        ] {
            let mut p = params(Convention::RtnAsym, 2, 5);
            p.rounding = rounding;
            let mut codes = vec![0u8; 5];
            let outs = AffineOutputs {
                codes: Some(&mut codes),
                ..AffineOutputs::default()
            };
            quantize(&p, &x, 5, outs, 1).unwrap();
            assert_eq!(codes, want, "{rounding:?}");
            let v = fq(&p, &x, 5);
            assert_eq!(v, want.iter().map(|&c| f32::from(c)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn avx2_and_portable_kernels_agree_bit_for_bit() {
        let x = data(7, 48 * 35);
        for conv in Convention::ALL {
            for bits in [2, 3, 4, 8] {
                for g in [1usize, 3, 8, 16, 24, 48, 35 * 48] {
                    for rounding in [Rounding::HalfEven, Rounding::HalfAway] {
                        let mut p = params(conv, bits, g);
                        p.rounding = rounding;
                        let row = if g == 35 * 48 { g } else { 48 * 5 };
                        let row = if row % g == 0 { row } else { g * 5 };
                        let a = run_all::<f32>(&p, &x, row, false);
                        let b = run_all::<f32>(&p, &x, row, true);
                        let what = format!("{conv:?} b{bits} g{g} {rounding:?}");
                        assert_eq!(bits_f32(&a.0), bits_f32(&b.0), "{what}");
                        assert_eq!(a.1, b.1, "{what}");
                        assert_eq!(bits_f32(&a.2), bits_f32(&b.2), "{what}");
                        assert_eq!(bits_f32(&a.3), bits_f32(&b.3), "{what}");
                        // f16 / bf16 outputs: the f32 result rounded once.
                        let h = run_all::<F16>(&p, &x, row, true);
                        let hb = run_all::<Bf16>(&p, &x, row, true);
                        let hs = run_all::<F16>(&p, &x, row, false);
                        for i in 0..x.len() {
                            let want = crate::dequant::half::f32_to_f16(a.0[i]);
                            assert_eq!(h.0[i].0, want, "{what} f16 {i}");
                            assert_eq!(hs.0[i].0, want, "{what} f16 portable {i}");
                            assert_eq!(hb.0[i].0, f32_to_bf16(a.0[i]), "{what} bf16 {i}");
                        }
                        assert_eq!(h.1, a.1);
                    }
                }
            }
        }
    }

    #[test]
    fn dequantize_reproduces_fake_quant_bits() {
        let x = data(11, 64 * 40);
        for conv in Convention::ALL {
            for avx2 in [false, true] {
                let p = params(conv, 3, 32);
                let (vals, codes, scales, zeros) = run_all::<f32>(&p, &x, 64, avx2);
                let mut prep = p.prep();
                prep.avx2 = avx2 && has_avx2_f16c();
                let mut out = vec![0f32; x.len()];
                run_deq::<f32>(&prep, &codes, &scales, &zeros, &mut out, 2).unwrap();
                assert_eq!(bits_f32(&out), bits_f32(&vals), "{conv:?} avx2={avx2}");
            }
            let p = params(conv, 3, 32);
            let (vals, codes, scales, zeros) = run_all::<f32>(&p, &x, 64, true);
            let mut out = vec![Bf16::default(); x.len()];
            dequantize(&p, &codes, &scales, &zeros, 64, OutSlice::Bf16(&mut out), 0).unwrap();
            for i in 0..x.len() {
                assert_eq!(out[i].0, f32_to_bf16(vals[i]));
            }
        }
    }

    #[test]
    fn error_bound_and_grid() {
        // |w − w'| ≤ s/2 (+ rounding slack) where the zero point is not clamped.
        let x = data(3, 128 * 16);
        for conv in Convention::ALL {
            let p = params(conv, 4, 128);
            let (vals, codes, scales, _) = run_all::<f32>(&p, &x, 128 * 4, true);
            for (i, (&w, &v)) in x.iter().zip(&vals).enumerate() {
                let s = scales[i / 128];
                assert!(
                    (w - v).abs() <= s * 0.5 * (1.0 + 1e-5) + 1e-6,
                    "{conv:?} {i}: {w} {v} {s}"
                );
                assert!(codes[i] <= 15);
            }
        }
    }

    #[test]
    fn constant_groups_stay_finite() {
        for conv in Convention::ALL {
            for c in [0.0f32, -0.0, 1.0, -3.5, 1e-8, 123456.0] {
                let x = vec![c; 16];
                let p = params(conv, 4, 8);
                for avx2 in [false, true] {
                    let (v, _, s, z) = run_all::<f32>(&p, &x, 16, avx2);
                    assert!(
                        v.iter().chain(&s).chain(&z).all(|t| t.is_finite()),
                        "{conv:?} {c}"
                    );
                }
            }
            // A zero group comes back as zeros everywhere.
            let v = fq(&params(conv, 4, 8), &[0.0; 8], 8);
            assert!(v.iter().all(|&t| t == 0.0), "{conv:?} {v:?}");
        }
        // GPTQ's all-zero guard: a = 1 → s = 2/15.
        let p = params(Convention::GptqSym, 4, 4);
        let mut scales = vec![0f32];
        let outs = AffineOutputs {
            scales: Some(&mut scales),
            ..AffineOutputs::default()
        };
        quantize(&p, &[0.0; 4], 4, outs, 1).unwrap();
        assert_eq!(scales[0], 2.0f32 / 15.0);
    }

    #[test]
    fn nonfinite_rejected_with_first_index_or_propagated() {
        let mut x = data(5, 256);
        x[200] = f32::INFINITY;
        x[77] = f32::NAN;
        for avx2 in [false, true] {
            let p = params(Convention::RtnAsym, 4, 32);
            let mut prep = p.prep();
            prep.avx2 = avx2 && has_avx2_f16c();
            let mut out = vec![0f32; 256];
            let bufs = Bufs {
                codes: &mut [],
                scales: &mut [],
                zeros: &mut [],
            };
            let err =
                quantize_prep(&prep, &x, 64, Some(OutSlice::F32(&mut out)), bufs, 1).unwrap_err();
            let CoreError::NonFinite(m) = err else {
                panic!("wrong error {err:?}")
            };
            assert!(
                m.contains("(NaN) at flat index 77 (row 1, column 13)"),
                "{m}"
            );
            prep.allow_nonfinite = true;
            let (v, c, s, z) = {
                let mut p2 = p;
                p2.allow_nonfinite = true;
                run_all::<f32>(&p2, &x, 64, avx2)
            };
            for (i, t) in v.iter().enumerate() {
                let bad = i / 32 == 2 || i / 32 == 6;
                assert_eq!(t.is_nan(), bad, "{i}");
                if bad {
                    assert_eq!(c[i], 0);
                }
            }
            assert!(s[2].is_nan() && z[6].is_nan() && s[0].is_finite());
        }
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let x = data(9, 1 << 17);
        let p = params(Convention::Hqq, 3, 64);
        let mut a = vec![0f32; x.len()];
        let mut b = vec![0f32; x.len()];
        fake_quantize(&p, &x, 4096, OutSlice::F32(&mut a), 1).unwrap();
        fake_quantize(&p, &x, 4096, OutSlice::F32(&mut b), 3).unwrap();
        assert_eq!(bits_f32(&a), bits_f32(&b));
        // Error index is the first over all tasks.
        let mut y = x.clone();
        y[100_000] = f32::NAN;
        y[70_000] = f32::NEG_INFINITY;
        let err = fake_quantize(&p, &y, 4096, OutSlice::F32(&mut a), 4).unwrap_err();
        assert!(err.to_string().contains("at flat index 70000"), "{err}");
    }

    #[test]
    fn invalid_arguments_are_named() {
        let x = vec![0.5f32; 4096];
        let mut out = vec![0f32; 4096];
        let msg = |p: AffineParams, row: usize, out: &mut [f32]| {
            fake_quantize(&p, &x, row, OutSlice::F32(out), 1)
                .unwrap_err()
                .to_string()
        };
        let p = params(Convention::RtnAsym, 4, 96);
        assert_eq!(
            msg(p, 4096, &mut out),
            "group size 96 does not divide the row length 4096"
        );
        assert!(msg(params(Convention::RtnAsym, 9, 32), 4096, &mut out)
            .contains("bits must be in 2..8, got 9"));
        assert!(msg(params(Convention::RtnAsym, 1, 32), 4096, &mut out).contains("got 1"));
        assert!(msg(params(Convention::RtnAsym, 4, 0), 4096, &mut out).contains("group_size"));
        assert!(msg(params(Convention::RtnAsym, 4, 32), 3000, &mut out).contains("whole rows"));
        assert!(
            msg(params(Convention::RtnAsym, 4, 32), 4096, &mut out[..10]).contains("output has 10")
        );
        let mut p = params(Convention::Hqq, 4, 32);
        p.eps = 0.0;
        assert!(msg(p, 4096, &mut out).contains("scale_eps"));
        p.eps = f64::NAN;
        assert!(msg(p, 4096, &mut out).contains("scale_eps"));
        let mut p = params(Convention::GptqSym, 4, 32);
        p.eps = 0.0;
        assert!(fake_quantize(&p, &x, 4096, OutSlice::F32(&mut out), 1).is_ok());
        let e = fake_quantize(&p, &[], 4096, OutSlice::F32(&mut []), 1).unwrap_err();
        assert!(matches!(e, CoreError::Shape(_)));
        assert!(Convention::from_name("rtn").is_err());
        assert!(Rounding::from_name("even").is_err());
        for c in Convention::ALL {
            assert_eq!(Convention::from_name(c.name()), Ok(c));
        }
    }

    #[test]
    fn conventions_match_their_formulas() {
        // Spot values against the formulas written out with scalar f32 ops.
        let x = [-0.7f32, 0.3, 1.9, -1.25, 0.0, 0.61, 1.0, -0.2];
        let (mn, mx) = (-1.25f32, 1.9f32);
        // HQQ: reciprocal then multiply; 4 bits.
        let inv = (1.0 / (mx - mn)) * 15.0;
        let z = -mn * inv;
        let s = 1.0 / inv;
        let want: Vec<f32> = x
            .iter()
            .map(|&w| ((w * inv + z).round_ties_even().clamp(0.0, 15.0) - z) * s)
            .collect();
        assert_eq!(fq(&params(Convention::Hqq, 4, 8), &x, 8), want);
        // torchao: zero in the weight domain.
        let s0 = (mx - mn) / 15.0;
        let zf = mn + s0 * 8.0;
        let m = zf - s0 * 8.0;
        let want: Vec<f32> = x
            .iter()
            .map(|&w| (((w - m) / s0).round_ties_even().clamp(0.0, 15.0) - 8.0) * s0 + zf)
            .collect();
        assert_eq!(fq(&params(Convention::TorchaoInt4, 4, 8), &x, 8), want);
        // GPTQ sym and AWQ sym.
        let sg = (1.9f32 + 1.9) / 15.0;
        let want: Vec<f32> = x
            .iter()
            .map(|&w| (((w / sg).round_ties_even() + 8.0).clamp(0.0, 15.0) - 8.0) * sg)
            .collect();
        assert_eq!(fq(&params(Convention::GptqSym, 4, 8), &x, 8), want);
        let sa = 1.9f32 / 7.0;
        let want: Vec<f32> = x
            .iter()
            .map(|&w| (w / sa).round_ties_even().clamp(-8.0, 7.0) * sa + 0.0)
            .collect();
        assert_eq!(fq(&params(Convention::RtnSym, 4, 8), &x, 8), want);
    }
}
