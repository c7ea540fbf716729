//! Bootstrap confidence intervals of mean scores: simple, stratified (resample within strata,
//! e.g. subtasks), clustered (resample whole clusters, e.g. the episodes of one game instance),
//! micro or macro averages, weighted items, percentile or BCa intervals, and the paired
//! bootstrap of the difference between two systems scored on the same items.
//!
//! **Resampling stream** (so a NumPy re-implementation reproduces it exactly): replicate `b`
//! (of a call whose stream base is `base`) draws from [`Stream::new`]`(seed, base + b)`. Items
//! (or clusters) are ordered by stratum label, then by first appearance; for each stratum in
//! label order, `u_s` draws `Stream::below(u_s)` pick units (items or clusters) with
//! replacement within that stratum.

use super::aggregate::{check_weights, group_sizes, percentile_sorted};
use super::normal::{ndtr, ndtri};
use crate::error::{check_finite, check_len, CoreError, CoreResult};
use crate::parallel::run_indexed;
use crate::rng::{lemire32, Stream};

/// The statistic being bootstrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// Mean over all items (weighted by item weights): the "micro" average.
    Micro,
    /// Mean over strata of each stratum's mean: the "macro" average (needs strata).
    Macro,
}

/// How the interval is computed from the replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMethod {
    /// Percentiles of the replicates (NumPy's linear interpolation).
    Percentile,
    /// Bias-corrected and accelerated (Efron 1987), acceleration from the jackknife, as
    /// `scipy.stats.bootstrap(method='BCa')` computes it.
    Bca,
}

impl CiMethod {
    /// Parse `"percentile"` or `"bca"` (case-insensitive).
    pub fn from_name(name: &str) -> CoreResult<Self> {
        match name.to_ascii_lowercase().as_str() {
            "percentile" => Ok(CiMethod::Percentile),
            "bca" => Ok(CiMethod::Bca),
            _ => Err(CoreError::UnknownName(format!(
                "unknown interval method {name:?}; expected 'percentile' or 'bca'"
            ))),
        }
    }
}

/// The sampling design of the items.
#[derive(Debug, Clone, Copy)]
pub struct Design<'a> {
    /// Non-negative item weights (default 1).
    pub weights: Option<&'a [f64]>,
    /// Stratum label `0..k` of each item: resampling happens within strata.
    pub strata: Option<&'a [u32]>,
    /// Cluster label `0..c` of each item: whole clusters are resampled.
    pub clusters: Option<&'a [u32]>,
    /// Micro or macro average.
    pub statistic: Statistic,
}

impl Design<'_> {
    /// Plain resampling of items for the micro mean.
    pub const SIMPLE: Design<'static> = Design {
        weights: None,
        strata: None,
        clusters: None,
        statistic: Statistic::Micro,
    };
}

/// Resampling settings.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapOptions {
    /// Number of bootstrap replicates `B`.
    pub n_resamples: usize,
    /// Seed of the per-replicate streams.
    pub seed: u64,
    /// Confidence level in (0, 1), e.g. 0.95.
    pub level: f64,
    /// Interval method.
    pub method: CiMethod,
    /// Worker threads (0: `CAPSCALE_NUM_THREADS` or all cores).
    pub n_threads: usize,
}

/// A point estimate with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The statistic on the original data.
    pub estimate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// Standard deviation of the replicates (ddof = 1): the bootstrap standard error.
    pub boot_se: f64,
    /// Replicates with a defined statistic (all of them unless some resample had zero weight).
    pub n_valid: usize,
}

/// Items grouped into resampling units (clusters or single items), ordered by stratum.
struct Units {
    /// Σ wᵢxᵢ of each unit.
    wx: Vec<f64>,
    /// Σ wᵢ of each unit.
    w: Vec<f64>,
    /// Stratum of each unit.
    stratum: Vec<usize>,
    /// Units of stratum s are `bounds[s]..bounds[s + 1]`.
    bounds: Vec<usize>,
    statistic: Statistic,
    /// Every unit is one item of weight 1 (no weights, no clusters).
    unit_weights: bool,
}

impl Units {
    fn new(values: &[f64], design: &Design<'_>) -> CoreResult<Self> {
        let n = values.len();
        if n == 0 {
            return Err(CoreError::InvalidArgument("no scores to bootstrap".into()));
        }
        check_finite("scores", values)?;
        if let Some(w) = design.weights {
            check_weights(w, n)?;
        }
        let strata_sizes = match design.strata {
            Some(s) => group_sizes(s, n, "strata")?,
            None => vec![n],
        };
        if design.statistic == Statistic::Macro && design.strata.is_none() {
            return Err(CoreError::InvalidArgument(
                "a macro average needs strata (the groups to average over)".into(),
            ));
        }
        if let Some(c) = design.clusters {
            group_sizes(c, n, "clusters")?;
        }
        let k = strata_sizes.len();
        let stratum_of = |i: usize| design.strata.map_or(0, |s| s[i] as usize);
        let weight = |i: usize| design.weights.map_or(1.0, |w| w[i]);
        // Unit key: cluster label when clustered, else the item itself.
        let mut unit_of_key = std::collections::HashMap::new();
        let mut per_stratum: Vec<Vec<(f64, f64)>> = vec![Vec::new(); k];
        let mut unit_stratum: Vec<(usize, usize)> = Vec::new(); // (stratum, index in stratum)
        for i in 0..n {
            let s = stratum_of(i);
            let key = design.clusters.map_or(i, |c| c[i] as usize);
            let slot = match unit_of_key.get(&key) {
                Some(&u) => u,
                None => {
                    per_stratum[s].push((0.0, 0.0));
                    let u = unit_stratum.len();
                    unit_stratum.push((s, per_stratum[s].len() - 1));
                    unit_of_key.insert(key, u);
                    u
                }
            };
            let (us, ui) = unit_stratum[slot];
            if us != s {
                return Err(CoreError::InvalidArgument(format!(
                    "cluster {key} spans strata {us} and {s}; clusters must nest in strata"
                )));
            }
            let w = weight(i);
            per_stratum[s][ui].0 += w * values[i];
            per_stratum[s][ui].1 += w;
        }
        let mut units = Units {
            wx: Vec::new(),
            w: Vec::new(),
            stratum: Vec::new(),
            bounds: vec![0],
            statistic: design.statistic,
            unit_weights: design.weights.is_none() && design.clusters.is_none(),
        };
        for (s, list) in per_stratum.iter().enumerate() {
            for &(wx, w) in list {
                units.wx.push(wx);
                units.w.push(w);
                units.stratum.push(s);
            }
            units.bounds.push(units.wx.len());
        }
        if units.wx.len() < 2 {
            return Err(CoreError::InvalidArgument(
                "a bootstrap needs at least 2 items (or clusters)".into(),
            ));
        }
        Ok(units)
    }

    fn n_strata(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The statistic from per-stratum sums.
    fn stat_from(&self, swx: &[f64], sw: &[f64]) -> f64 {
        match self.statistic {
            Statistic::Micro => swx.iter().sum::<f64>() / sw.iter().sum::<f64>(),
            Statistic::Macro => {
                let k = swx.len();
                swx.iter().zip(sw).map(|(a, b)| a / b).sum::<f64>() / k as f64
            }
        }
    }

    fn estimate(&self) -> f64 {
        let k = self.n_strata();
        let (mut swx, mut sw) = (vec![0.0; k], vec![0.0; k]);
        for u in 0..self.wx.len() {
            swx[self.stratum[u]] += self.wx[u];
            sw[self.stratum[u]] += self.w[u];
        }
        self.stat_from(&swx, &sw)
    }

    /// Plain items of weight 1, one stratum, micro mean: the hot path.
    fn is_plain(&self) -> bool {
        self.unit_weights
            && self.n_strata() == 1
            && self.statistic == Statistic::Micro
            && self.wx.len() as u64 <= 1 << 32
    }

    /// Continue a plain replicate on `rng` (at a 64-bit output boundary) until `m` draws
    /// are done: each output gives two 32-bit words (low, then high; [`Stream::below`]'s
    /// order), and an accepted word adds its item to accumulator 0 (low) or 1 (high).
    #[inline]
    fn plain_scalar(&self, rng: &mut Stream, acc: &mut [f64; 2], done: &mut usize) {
        let m = self.wx.len();
        let n = m as u64;
        while *done < m {
            let v = rng.next_u64();
            for (p, w) in [(0, v as u32), (1, (v >> 32) as u32)] {
                if *done == m {
                    break;
                }
                if let Some(i) = lemire32(w, n) {
                    acc[p] += self.wx[i as usize];
                    *done += 1;
                }
            }
        }
    }

    /// The plain replicate of stream `stream` (the reference for the vectorised path).
    fn plain_one(&self, seed: u64, stream: u64) -> f64 {
        let mut rng = Stream::new(seed, stream);
        let (mut acc, mut done) = ([0.0; 2], 0);
        self.plain_scalar(&mut rng, &mut acc, &mut done);
        (acc[0] + acc[1]) / self.wx.len() as f64
    }

    /// Four plain replicates, streams `first .. first + 4`; AVX2 when the CPU has it (the
    /// four xoshiro256++ streams side by side in one register), else scalar. Identical values
    /// either way.
    fn plain_four(&self, seed: u64, first: u64) -> [f64; 4] {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { self.plain_four_avx2(seed, first) };
            }
        }
        std::array::from_fn(|l| self.plain_one(seed, first + l as u64))
    }

    /// AVX2 body of [`Units::plain_four`]: per step, one 64-bit output of each stream gives
    /// eight 32-bit words → eight indices (Lemire-32) → two 4-wide gathers. A step in which
    /// any word is rejected is redone word by word in scalar code (same order, same result).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn plain_four_avx2(&self, seed: u64, first: u64) -> [f64; 4] {
        use std::arch::x86_64::*;
        let m = self.wx.len();
        let n = m as u64;
        let threshold = ((1u64 << 32) - n) % n;
        let mut rngs: [Stream; 4] = std::array::from_fn(|l| Stream::new(seed, first + l as u64));
        let st: [[u64; 4]; 4] = std::array::from_fn(|l| rngs[l].state());
        let lane = |w: usize| [st[0][w], st[1][w], st[2][w], st[3][w]];
        let load =
            |a: [u64; 4]| _mm256_set_epi64x(a[3] as i64, a[2] as i64, a[1] as i64, a[0] as i64);
        let (mut s0, mut s1, mut s2, mut s3) =
            (load(lane(0)), load(lane(1)), load(lane(2)), load(lane(3)));
        let nv = _mm256_set1_epi64x(n as i64);
        let lo_mask = _mm256_set1_epi64x(0xFFFF_FFFF);
        let thr = _mm256_set1_epi64x(threshold as i64);
        let base = self.wx.as_ptr();
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut done = [0usize; 4];
        while done.iter().all(|&d| d + 2 <= m) {
            // xoshiro256++ on four streams at once.
            let sum = _mm256_add_epi64(s0, s3);
            let rot = _mm256_or_si256(_mm256_slli_epi64(sum, 23), _mm256_srli_epi64(sum, 41));
            let v = _mm256_add_epi64(rot, s0);
            let t = _mm256_slli_epi64(s1, 17);
            s2 = _mm256_xor_si256(s2, s0);
            s3 = _mm256_xor_si256(s3, s1);
            s1 = _mm256_xor_si256(s1, s2);
            s0 = _mm256_xor_si256(s0, s3);
            s2 = _mm256_xor_si256(s2, t);
            s3 = _mm256_or_si256(_mm256_slli_epi64(s3, 45), _mm256_srli_epi64(s3, 19));
            // Lemire-32 on the low and high words of each output.
            let p_lo = _mm256_mul_epu32(v, nv);
            let p_hi = _mm256_mul_epu32(_mm256_srli_epi64(v, 32), nv);
            let rej = _mm256_or_si256(
                _mm256_cmpgt_epi64(thr, _mm256_and_si256(p_lo, lo_mask)),
                _mm256_cmpgt_epi64(thr, _mm256_and_si256(p_hi, lo_mask)),
            );
            let i_lo = _mm256_srli_epi64(p_lo, 32);
            let i_hi = _mm256_srli_epi64(p_hi, 32);
            if _mm256_testz_si256(rej, rej) == 1 {
                acc0 = _mm256_add_pd(acc0, _mm256_i64gather_pd::<8>(base, i_lo));
                acc1 = _mm256_add_pd(acc1, _mm256_i64gather_pd::<8>(base, i_hi));
                for d in done.iter_mut() {
                    *d += 2;
                }
            } else {
                // Rare: redo this step word by word (identical order and sums).
                let mut outs = [0u64; 4];
                _mm256_storeu_si256(outs.as_mut_ptr().cast(), v);
                let mut a0 = [0.0f64; 4];
                let mut a1 = [0.0f64; 4];
                _mm256_storeu_pd(a0.as_mut_ptr(), acc0);
                _mm256_storeu_pd(a1.as_mut_ptr(), acc1);
                for l in 0..4 {
                    for (p, w) in [(0, outs[l] as u32), (1, (outs[l] >> 32) as u32)] {
                        if let Some(i) = lemire32(w, n) {
                            let x = self.wx[i as usize];
                            if p == 0 {
                                a0[l] += x;
                            } else {
                                a1[l] += x;
                            }
                            done[l] += 1;
                        }
                    }
                }
                acc0 = _mm256_loadu_pd(a0.as_ptr());
                acc1 = _mm256_loadu_pd(a1.as_ptr());
            }
        }
        // Finish each stream in scalar code from its current state.
        let mut w = [[0u64; 4]; 4];
        for (k, reg) in [s0, s1, s2, s3].into_iter().enumerate() {
            let mut tmp = [0u64; 4];
            _mm256_storeu_si256(tmp.as_mut_ptr().cast(), reg);
            for l in 0..4 {
                w[l][k] = tmp[l];
            }
        }
        let mut a0 = [0.0f64; 4];
        let mut a1 = [0.0f64; 4];
        _mm256_storeu_pd(a0.as_mut_ptr(), acc0);
        _mm256_storeu_pd(a1.as_mut_ptr(), acc1);
        std::array::from_fn(|l| {
            rngs[l] = Stream::from_state(w[l]);
            let mut acc = [a0[l], a1[l]];
            let mut d = done[l];
            self.plain_scalar(&mut rngs[l], &mut acc, &mut d);
            (acc[0] + acc[1]) / m as f64
        })
    }

    /// One bootstrap replicate from stream `stream` of `seed`.
    fn replicate(&self, seed: u64, stream: u64) -> f64 {
        let mut rng = Stream::new(seed, stream);
        let k = self.n_strata();
        if k == 1 && self.statistic == Statistic::Micro {
            let m = self.wx.len();
            if self.unit_weights && m as u64 <= 1 << 32 {
                return self.plain_one(seed, stream);
            }
            let (mut a, mut b) = (0.0, 0.0);
            for _ in 0..m {
                let u = rng.below(m as u64) as usize;
                a += self.wx[u];
                b += self.w[u];
            }
            return a / b;
        }
        let (mut swx, mut sw) = (vec![0.0; k], vec![0.0; k]);
        for s in 0..k {
            let (lo, hi) = (self.bounds[s], self.bounds[s + 1]);
            let m = hi - lo;
            let (mut a, mut b) = (0.0, 0.0);
            if m as u64 <= 1 << 32 {
                rng.for_each_below32(m as u64, m, |i| {
                    a += self.wx[lo + i as usize];
                    b += self.w[lo + i as usize];
                });
            } else {
                for _ in 0..m {
                    let u = lo + rng.below(m as u64) as usize;
                    a += self.wx[u];
                    b += self.w[u];
                }
            }
            swx[s] = a;
            sw[s] = b;
        }
        self.stat_from(&swx, &sw)
    }

    /// Leave-one-unit-out statistics (for the BCa acceleration).
    fn jackknife(&self) -> Vec<f64> {
        let k = self.n_strata();
        let (mut swx, mut sw) = (vec![0.0; k], vec![0.0; k]);
        for u in 0..self.wx.len() {
            swx[self.stratum[u]] += self.wx[u];
            sw[self.stratum[u]] += self.w[u];
        }
        (0..self.wx.len())
            .map(|u| {
                let s = self.stratum[u];
                let (mut a, mut b) = (swx.clone(), sw.clone());
                a[s] -= self.wx[u];
                b[s] -= self.w[u];
                if self.statistic == Statistic::Macro && b[s] <= 0.0 {
                    // The stratum vanishes: average over the others.
                    a.remove(s);
                    b.remove(s);
                }
                self.stat_from(&a, &b)
            })
            .collect()
    }
}

fn check_options(opts: &BootstrapOptions) -> CoreResult<()> {
    if opts.n_resamples < 2 {
        return Err(CoreError::InvalidArgument(format!(
            "n_resamples must be >= 2, got {}",
            opts.n_resamples
        )));
    }
    if !(opts.level > 0.0 && opts.level < 1.0) {
        return Err(CoreError::InvalidArgument(format!(
            "the confidence level must be in (0, 1), got {}",
            opts.level
        )));
    }
    Ok(())
}

/// Interval from replicates (`estimate` = statistic on the data, `jack` for BCa).
fn interval(
    estimate: f64,
    mut reps: Vec<f64>,
    jack: Option<&[f64]>,
    opts: &BootstrapOptions,
) -> Interval {
    reps.retain(|v| v.is_finite());
    let b = reps.len();
    reps.sort_by(f64::total_cmp);
    let mean = reps.iter().sum::<f64>() / b as f64;
    let boot_se = if b > 1 {
        (reps.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (b - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    let alpha = (1.0 - opts.level) / 2.0;
    let (p_lo, p_hi) = match (opts.method, jack) {
        (CiMethod::Bca, Some(jack)) => {
            // z0 from the mid-rank of the estimate among the replicates (scipy's
            // percentile-of-score), acceleration from the jackknife.
            let below = reps.iter().filter(|&&v| v < estimate).count() as f64;
            let at_or_below = reps.iter().filter(|&&v| v <= estimate).count() as f64;
            let z0 = ndtri((below + at_or_below) / (2.0 * b as f64));
            let jm = jack.iter().sum::<f64>() / jack.len() as f64;
            let num: f64 = jack.iter().map(|t| (jm - t).powi(3)).sum();
            let den = 6.0 * jack.iter().map(|t| (jm - t).powi(2)).sum::<f64>().powf(1.5);
            let a = if den > 0.0 { num / den } else { 0.0 };
            let adj = |z: f64| {
                let t = z0 + z;
                ndtr(z0 + t / (1.0 - a * t))
            };
            (adj(ndtri(alpha)), adj(ndtri(1.0 - alpha)))
        }
        _ => (alpha, 1.0 - alpha),
    };
    Interval {
        estimate,
        low: percentile_sorted(&reps, 100.0 * p_lo),
        high: percentile_sorted(&reps, 100.0 * p_hi),
        boot_se,
        n_valid: b,
    }
}

/// Replicates of the statistic for streams `base .. base + B`.
fn replicates(units: &Units, opts: &BootstrapOptions, base: u64) -> CoreResult<Vec<f64>> {
    let b_total = opts.n_resamples;
    if units.is_plain() {
        const L: usize = 4;
        let groups = run_indexed(b_total.div_ceil(L), opts.n_threads, |p| {
            let first = (L * p) as u64;
            if L * p + L <= b_total {
                units.plain_four(opts.seed, base + first)
            } else {
                std::array::from_fn(|l| {
                    if L * p + l < b_total {
                        units.plain_one(opts.seed, base + first + l as u64)
                    } else {
                        f64::NAN
                    }
                })
            }
        })?;
        let mut out: Vec<f64> = groups.into_iter().flatten().collect();
        out.truncate(b_total);
        return Ok(out);
    }
    run_indexed(b_total, opts.n_threads, |b| {
        units.replicate(opts.seed, base + b as u64)
    })
}

/// Bootstrap interval of the (micro or macro, weighted) mean of `values` under `design`.
pub fn bootstrap_mean(
    values: &[f64],
    design: &Design<'_>,
    opts: &BootstrapOptions,
) -> CoreResult<Interval> {
    bootstrap_mean_stream(values, design, opts, 0)
}

/// [`bootstrap_mean`] drawing from streams `base .. base + n_resamples`.
pub fn bootstrap_mean_stream(
    values: &[f64],
    design: &Design<'_>,
    opts: &BootstrapOptions,
    base: u64,
) -> CoreResult<Interval> {
    check_options(opts)?;
    let units = Units::new(values, design)?;
    let reps = replicates(&units, opts, base)?;
    let jack = (opts.method == CiMethod::Bca).then(|| units.jackknife());
    Ok(interval(units.estimate(), reps, jack.as_deref(), opts))
}

/// A paired comparison of two systems scored on the same items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedResult {
    /// Statistic of system A.
    pub mean_a: f64,
    /// Statistic of system B.
    pub mean_b: f64,
    /// Interval of the difference A − B.
    pub diff: Interval,
    /// Two-sided bootstrap p-value of "no difference":
    /// `(1 + #{b : |θ*_b − θ̂| ≥ |θ̂|}) / (B + 1)` (replicates centred on the estimate as
    /// the null distribution).
    pub p_value: f64,
}

/// Paired bootstrap of `a − b` (same items, same design: each replicate resamples the items
/// once and scores both systems on them).
pub fn paired_difference(
    a: &[f64],
    b: &[f64],
    design: &Design<'_>,
    opts: &BootstrapOptions,
) -> CoreResult<PairedResult> {
    check_len("b", b.len(), a.len())?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    check_options(opts)?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let units = Units::new(&d, design)?;
    let est = units.estimate();
    let reps = replicates(&units, opts, 0)?;
    let finite: Vec<f64> = reps.iter().copied().filter(|v| v.is_finite()).collect();
    let extreme = finite
        .iter()
        .filter(|&&v| (v - est).abs() >= est.abs())
        .count();
    let p_value = (1.0 + extreme as f64) / (finite.len() as f64 + 1.0);
    let jack = (opts.method == CiMethod::Bca).then(|| units.jackknife());
    let mean_a = Units::new(a, design)?.estimate();
    let mean_b = Units::new(b, design)?.estimate();
    Ok(PairedResult {
        mean_a,
        mean_b,
        diff: interval(est, reps, jack.as_deref(), opts),
        p_value,
    })
}

/// [`bootstrap_mean`] for each group `0..g` of the items (labels one per item); group `k`
/// draws from streams `k·B .. (k+1)·B`. Strata, clusters and weights are per item.
pub fn bootstrap_groups(
    values: &[f64],
    groups: &[u32],
    design: &Design<'_>,
    opts: &BootstrapOptions,
) -> CoreResult<Vec<Interval>> {
    let sizes = group_sizes(groups, values.len(), "groups")?;
    let mut members: Vec<Vec<usize>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
    for (i, &g) in groups.iter().enumerate() {
        members[g as usize].push(i);
    }
    let pick = |src: Option<&[u32]>, idx: &[usize]| -> Option<Vec<u32>> {
        src.map(|s| relabel(&idx.iter().map(|&i| s[i]).collect::<Vec<_>>()))
    };
    members
        .iter()
        .enumerate()
        .map(|(k, idx)| {
            let v: Vec<f64> = idx.iter().map(|&i| values[i]).collect();
            let w: Option<Vec<f64>> = design.weights.map(|w| idx.iter().map(|&i| w[i]).collect());
            let st = pick(design.strata, idx);
            let cl = pick(design.clusters, idx);
            let sub = Design {
                weights: w.as_deref(),
                strata: st.as_deref(),
                clusters: cl.as_deref(),
                statistic: design.statistic,
            };
            bootstrap_mean_stream(&v, &sub, opts, (k * opts.n_resamples) as u64)
        })
        .collect()
}

/// Map arbitrary labels to `0..k` in order of their sorted values (so the numbering of a
/// subset agrees with the ordering of the labels).
pub fn relabel(labels: &[u32]) -> Vec<u32> {
    let mut uniq: Vec<u32> = labels.to_vec();
    uniq.sort_unstable();
    uniq.dedup();
    labels
        .iter()
        .map(|l| uniq.binary_search(l).unwrap_or(0) as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(method: CiMethod) -> BootstrapOptions {
        BootstrapOptions {
            n_resamples: 2000,
            seed: 3,
            level: 0.95,
            method,
            n_threads: 2,
        }
    }

    #[test]
    fn simple_replicate_uses_documented_stream() {
        let x: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin()).collect();
        let units = Units::new(&x, &Design::SIMPLE).unwrap();
        let mut rng = Stream::new(9, 4);
        let want: f64 = (0..50).map(|_| x[rng.below(50) as usize]).sum::<f64>() / 50.0;
        assert!((units.replicate(9, 4) - want).abs() < 1e-15);
    }

    #[test]
    fn interleaved_pairs_equal_single_replicates() {
        let x: Vec<f64> = (0..1003).map(|i| (i as f64 * 0.11).cos()).collect();
        let units = Units::new(&x, &Design::SIMPLE).unwrap();
        let lanes = units.plain_four(5, 10);
        for (l, v) in lanes.iter().enumerate() {
            assert_eq!(*v, units.replicate(5, 10 + l as u64));
        }
        // 4e6 items: 2^32 mod m = 967296, so ~0.2% of the 8-word steps hold a rejected word
        // and take the scalar redo path (thousands of times per replicate).
        let big: Vec<f64> = (0..4_000_000).map(|i| (i % 1000) as f64).collect();
        let u2 = Units::new(&big, &Design::SIMPLE).unwrap();
        let four = u2.plain_four(1, 0);
        for (l, v) in four.iter().enumerate() {
            assert_eq!(*v, u2.plain_one(1, l as u64));
        }
    }

    #[test]
    fn thread_count_does_not_change_results() {
        let x: Vec<f64> = (0..200).map(|i| ((i * 7919) % 13) as f64).collect();
        let mut o = opts(CiMethod::Bca);
        let a = bootstrap_mean(&x, &Design::SIMPLE, &o).unwrap();
        o.n_threads = 1;
        let b = bootstrap_mean(&x, &Design::SIMPLE, &o).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn clusters_and_strata_validate() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let strata = [0, 0, 1, 1];
        let bad_clusters = [0, 1, 1, 2];
        let d = Design {
            strata: Some(&strata),
            clusters: Some(&bad_clusters),
            ..Design::SIMPLE
        };
        assert!(bootstrap_mean(&x, &d, &opts(CiMethod::Percentile)).is_err());
        let macro_without = Design {
            statistic: Statistic::Macro,
            ..Design::SIMPLE
        };
        assert!(bootstrap_mean(&x, &macro_without, &opts(CiMethod::Percentile)).is_err());
    }

    #[test]
    fn paired_identical_systems_have_zero_difference() {
        let a: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect();
        let r = paired_difference(&a, &a, &Design::SIMPLE, &opts(CiMethod::Percentile)).unwrap();
        assert_eq!(r.diff.estimate, 0.0);
        assert_eq!((r.diff.low, r.diff.high), (0.0, 0.0));
        assert_eq!(r.p_value, 1.0);
    }
}
