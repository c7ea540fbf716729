//! Batch fitting of built-in laws on rayon: many datasets, bootstrap resamples, multi-start.
//! Every task is independent and indexed, so results never depend on the thread count.

use super::laws::{Law, LawModel};
use super::lm::{solve, validate_start, LmOptions, LmReport, Status};
use super::problem::CurveProblem;
use crate::error::{check_len, CoreError, CoreResult};
pub use crate::parallel::run_indexed;
use crate::rng::resample_indices;

/// Compact results of many fits (row `k` belongs to task `k`).
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// Number of parameters per fit.
    pub n_params: usize,
    /// Parameters, row-major `k × n`.
    pub x: Vec<f64>,
    /// Standard errors, row-major `k × n` (`inf` where inestimable, NaN where the fit failed).
    pub stderr: Vec<f64>,
    /// Final cost of each fit.
    pub cost: Vec<f64>,
    /// Status code of each fit (SciPy codes; −1 for a fit rejected as bad input).
    pub status: Vec<i32>,
    /// Residual evaluations of each fit.
    pub nfev: Vec<usize>,
}

impl BatchResult {
    fn from_results(n: usize, results: Vec<CoreResult<LmReport>>) -> Self {
        let k = results.len();
        let mut out = BatchResult {
            n_params: n,
            x: Vec::with_capacity(k * n),
            stderr: Vec::with_capacity(k * n),
            cost: Vec::with_capacity(k),
            status: Vec::with_capacity(k),
            nfev: Vec::with_capacity(k),
        };
        for res in results {
            match res {
                Ok(rep) => {
                    out.x.extend_from_slice(&rep.x);
                    out.stderr.extend((0..n).map(|j| {
                        let v = rep.cov[j * n + j];
                        if v.is_nan() {
                            f64::NAN
                        } else {
                            v.max(0.0).sqrt()
                        }
                    }));
                    out.cost.push(rep.cost);
                    out.status.push(rep.status.code());
                    out.nfev.push(rep.nfev);
                }
                Err(_) => {
                    out.x.extend(std::iter::repeat_n(f64::NAN, n));
                    out.stderr.extend(std::iter::repeat_n(f64::NAN, n));
                    out.cost.push(f64::NAN);
                    out.status.push(-1);
                    out.nfev.push(0);
                }
            }
        }
        out
    }

    /// Index of the best successful fit (lowest cost), or of the lowest cost if none succeeded.
    pub fn best(&self) -> Option<usize> {
        let ok = is_success;
        let pick = |filter: &dyn Fn(usize) -> bool| {
            (0..self.cost.len())
                .filter(|&i| filter(i) && self.cost[i].is_finite())
                .min_by(|&a, &b| self.cost[a].total_cmp(&self.cost[b]))
        };
        pick(&|i| ok(self.status[i])).or_else(|| pick(&|_| true))
    }
}

/// Fit `law` to one dataset (`x` column-major `n_inputs × m`, `y` length `m`).
pub fn fit_law(
    law: Law,
    x: &[f64],
    y: &[f64],
    sigma: Option<&[f64]>,
    x0: &[f64],
    opts: &LmOptions,
) -> CoreResult<LmReport> {
    let model = LawModel::new(law, x)?;
    let mut problem = CurveProblem::new(model, y, sigma)?;
    solve(&mut problem, x0, opts)
}

/// One dataset of a [`fit_many`] call.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a> {
    /// Inputs, column-major `n_inputs × m`.
    pub x: &'a [f64],
    /// Observations, length `m`.
    pub y: &'a [f64],
    /// Optional standard deviations, length `m`.
    pub sigma: Option<&'a [f64]>,
    /// Starting point, length `n_params`.
    pub x0: &'a [f64],
}

/// Fit one law to many datasets in parallel. A dataset with bad input gets status −1.
pub fn fit_many(
    law: Law,
    data: &[Dataset<'_>],
    opts: &LmOptions,
    n_threads: usize,
) -> CoreResult<BatchResult> {
    let results = run_indexed(data.len(), n_threads, |k| {
        let d = &data[k];
        fit_law(law, d.x, d.y, d.sigma, d.x0, opts)
    })?;
    Ok(BatchResult::from_results(law.n_params(), results))
}

/// Fit `n_resamples` bootstrap resamples (points drawn with replacement, stream `i` of
/// `seed` for resample `i`), each from `x0`.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap(
    law: Law,
    x: &[f64],
    y: &[f64],
    sigma: Option<&[f64]>,
    x0: &[f64],
    n_resamples: usize,
    seed: u64,
    opts: &LmOptions,
    n_threads: usize,
) -> CoreResult<BatchResult> {
    // Validate data, weights and start once, up front: bad input is an error, not a batch of
    // failed refits.
    let base = LawModel::new(law, x)?;
    let m = y.len();
    CurveProblem::new(base.clone(), y, sigma)?;
    check_len("x0", x0.len(), law.n_params())?;
    validate_start(opts, x0)?;
    let results = run_indexed(n_resamples, n_threads, |i| {
        let idx = resample_indices(seed, i as u64, m);
        let model = base.resample(&idx);
        let yb: Vec<f64> = idx.iter().map(|&k| y[k]).collect();
        let sb: Option<Vec<f64>> = sigma.map(|s| idx.iter().map(|&k| s[k]).collect());
        let mut problem = CurveProblem::new(model, &yb, sb.as_deref())?;
        solve(&mut problem, x0, opts)
    })?;
    Ok(BatchResult::from_results(law.n_params(), results))
}

/// Fit from each row of `starts` (row-major `k × n`) and report all fits; pick the best with
/// [`BatchResult::best`]. Starts outside the bounds are clipped into them.
pub fn multi_start(
    law: Law,
    x: &[f64],
    y: &[f64],
    sigma: Option<&[f64]>,
    starts: &[f64],
    opts: &LmOptions,
    n_threads: usize,
) -> CoreResult<BatchResult> {
    let n = law.n_params();
    if starts.is_empty() || starts.len() % n != 0 {
        return Err(CoreError::Shape(format!(
            "starts must be a non-empty k × {n} array, got {} values",
            starts.len()
        )));
    }
    // Validate the data once, up front, so bad input is an error, not k failed fits.
    let model = LawModel::new(law, x)?;
    CurveProblem::new(model.clone(), y, sigma)?;
    let results = run_indexed(starts.len() / n, n_threads, |k| {
        let mut x0 = starts[k * n..(k + 1) * n].to_vec();
        for j in 0..n {
            if let Some(lo) = opts.lower.get(j) {
                x0[j] = x0[j].max(*lo);
            }
            if let Some(hi) = opts.upper.get(j) {
                x0[j] = x0[j].min(*hi);
            }
        }
        let mut problem = CurveProblem::new(model.clone(), y, sigma)?;
        solve(&mut problem, &x0, opts)
    })?;
    Ok(BatchResult::from_results(n, results))
}

/// Whether a status code (as in [`BatchResult::status`]) means a converged fit.
pub fn is_success(code: i32) -> bool {
    [Status::Gtol, Status::Ftol, Status::Xtol, Status::FtolXtol]
        .iter()
        .any(|s| s.code() == code)
}
