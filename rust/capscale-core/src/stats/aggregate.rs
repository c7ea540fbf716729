//! Closed-form aggregates of per-item scores: means, standard errors, weighted and grouped
//! means, lm-evaluation-harness's group aggregation, normalisation, NumPy-style rounding and
//! percentiles.

use crate::error::{check_finite, check_len, CoreError, CoreResult};

/// Summary of one group of scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of items.
    pub n: usize,
    /// Mean (weighted when weights are given).
    pub mean: f64,
    /// Standard error of the mean: sample standard deviation (ddof = 1) / √n, as
    /// lm-evaluation-harness's `mean_stderr`; NaN for n < 2. With weights: the
    /// ratio-estimator standard error `√(Σ wᵢ²(xᵢ − x̄)² · n/(n−1)) / Σ wᵢ`.
    pub stderr: f64,
}

fn nonempty(name: &str, n: usize) -> CoreResult<()> {
    if n == 0 {
        Err(CoreError::InvalidArgument(format!(
            "{name} is empty: nothing to aggregate"
        )))
    } else {
        Ok(())
    }
}

/// Check per-item weights: same length as `values`, finite, ≥ 0, not all zero.
pub fn check_weights(weights: &[f64], n: usize) -> CoreResult<()> {
    check_len("weights", weights.len(), n)?;
    check_finite("weights", weights)?;
    if let Some(i) = weights.iter().position(|&w| w < 0.0) {
        return Err(CoreError::InvalidArgument(format!(
            "weights must be >= 0, got {} at index {i}",
            weights[i]
        )));
    }
    if weights.iter().all(|&w| w == 0.0) {
        return Err(CoreError::InvalidArgument("weights are all zero".into()));
    }
    Ok(())
}

/// Mean and standard error of `values` (optionally weighted).
pub fn summarize(values: &[f64], weights: Option<&[f64]>) -> CoreResult<Summary> {
    nonempty("values", values.len())?;
    check_finite("values", values)?;
    let n = values.len();
    match weights {
        None => {
            let mean = values.iter().sum::<f64>() / n as f64;
            let stderr = if n < 2 {
                f64::NAN
            } else {
                let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
                (ss / (n - 1) as f64).sqrt() / (n as f64).sqrt()
            };
            Ok(Summary { n, mean, stderr })
        }
        Some(w) => {
            check_weights(w, n)?;
            let sw: f64 = w.iter().sum();
            let mean = values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / sw;
            let stderr = if n < 2 {
                f64::NAN
            } else {
                let s: f64 = values
                    .iter()
                    .zip(w)
                    .map(|(v, w)| (w * (v - mean)).powi(2))
                    .sum();
                (s * n as f64 / (n - 1) as f64).sqrt() / sw
            };
            Ok(Summary { n, mean, stderr })
        }
    }
}

/// Validate group labels `0..n_groups` (one per item) and count the items of each group.
pub fn group_sizes(groups: &[u32], n_items: usize, name: &str) -> CoreResult<Vec<usize>> {
    check_len(name, groups.len(), n_items)?;
    let n_groups = groups.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
    let mut sizes = vec![0usize; n_groups];
    for &g in groups {
        sizes[g as usize] += 1;
    }
    if let Some(g) = sizes.iter().position(|&s| s == 0) {
        return Err(CoreError::InvalidArgument(format!(
            "{name} labels must be 0..k without gaps; label {g} has no items"
        )));
    }
    Ok(sizes)
}

/// [`summarize`] for each group (labels `0..k`, one per item), in label order.
pub fn summarize_groups(
    values: &[f64],
    groups: &[u32],
    weights: Option<&[f64]>,
) -> CoreResult<Vec<Summary>> {
    let sizes = group_sizes(groups, values.len(), "groups")?;
    let mut members: Vec<Vec<usize>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
    for (i, &g) in groups.iter().enumerate() {
        members[g as usize].push(i);
    }
    members
        .iter()
        .map(|idx| {
            let v: Vec<f64> = idx.iter().map(|&i| values[i]).collect();
            let w: Option<Vec<f64>> = weights.map(|w| idx.iter().map(|&i| w[i]).collect());
            summarize(&v, w.as_deref())
        })
        .collect()
}

/// lm-evaluation-harness's group aggregation of subtask results: the size-weighted mean of
/// subtask means (plain mean when `weight_by_size` is false) and the pooled standard error
/// `√(Σ(nᵢ−1)·nᵢ·seᵢ² / (Σnᵢ − k) / Σnᵢ)`.
pub fn pool_subtasks(subtasks: &[Summary], weight_by_size: bool) -> CoreResult<Summary> {
    nonempty("subtasks", subtasks.len())?;
    let n: usize = subtasks.iter().map(|s| s.n).sum();
    let mean = if weight_by_size {
        subtasks.iter().map(|s| s.mean * s.n as f64).sum::<f64>() / n as f64
    } else {
        subtasks.iter().map(|s| s.mean).sum::<f64>() / subtasks.len() as f64
    };
    let k = subtasks.len();
    let stderr = if n > k {
        let num: f64 = subtasks
            .iter()
            .map(|s| (s.n as f64 - 1.0) * s.n as f64 * s.stderr * s.stderr)
            .sum();
        (num / (n - k) as f64 / n as f64).sqrt()
    } else {
        f64::NAN
    };
    Ok(Summary { n, mean, stderr })
}

/// Scores normalised against a random baseline: `(x − baseline) / (max − baseline)` (0 = chance,
/// 1 = perfect).
pub fn normalize(values: &[f64], baseline: f64, max: f64) -> CoreResult<Vec<f64>> {
    if !(baseline.is_finite() && max.is_finite() && max != baseline) {
        return Err(CoreError::InvalidArgument(format!(
            "normalisation needs finite baseline != max, got baseline {baseline}, max {max}"
        )));
    }
    Ok(values
        .iter()
        .map(|v| (v - baseline) / (max - baseline))
        .collect())
}

/// Round like NumPy/pandas `round(decimals)`: `rint(x·10^d)/10^d`, ties to even on the scaled
/// float (Python's `round` differs at ties such as 90.975).
pub fn round_half_even(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round_ties_even() / scale
}

/// Percentile `q` (0–100) of already sorted data with NumPy's default linear interpolation.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || q.is_nan() {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * (q / 100.0).clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_summaries() {
        let s = summarize(&[1.0, 2.0, 3.0, 6.0], None).unwrap();
        assert_eq!(s.mean, 3.0);
        // var = (4 + 1 + 0 + 9)/3 = 14/3; se = sqrt(14/3)/2
        assert!((s.stderr - (14.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-15);
        let w = summarize(&[1.0, 3.0], Some(&[3.0, 1.0])).unwrap();
        assert_eq!(w.mean, 1.5);
        assert!(summarize(&[1.0], None).unwrap().stderr.is_nan());
        assert!(summarize(&[], None).is_err());
        assert!(summarize(&[1.0, f64::NAN], None).is_err());
    }

    #[test]
    fn rounding_is_numpy_rint() {
        assert_eq!(round_half_even(90.975, 2), 90.98); // 9097.5 in binary is above .5? rint
        assert_eq!(round_half_even(0.125, 2), 0.12);
        assert_eq!(round_half_even(0.375, 2), 0.38);
        assert_eq!(round_half_even(2.5, 0), 2.0);
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile_sorted(&v, 50.0), 3.0);
        assert_eq!(percentile_sorted(&v, 100.0), 8.0);
        assert!((percentile_sorted(&v, 2.5) - 1.075).abs() < 1e-15);
    }

    #[test]
    fn pooled_stderr_matches_formula() {
        let a = Summary {
            n: 10,
            mean: 0.5,
            stderr: 0.1,
        };
        let b = Summary {
            n: 30,
            mean: 0.7,
            stderr: 0.05,
        };
        let p = pool_subtasks(&[a, b], true).unwrap();
        assert!((p.mean - 0.65).abs() < 1e-15);
        let want = ((9.0 * 10.0 * 0.01 + 29.0 * 30.0 * 0.0025) / 38.0 / 40.0f64).sqrt();
        assert!((p.stderr - want).abs() < 1e-15);
    }
}
