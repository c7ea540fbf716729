//! The Levenberg–Marquardt trust-region solver (Moré 1978, MINPACK `lmder`), extended with box
//! bounds (active set + projection), robust losses, geodesic acceleration (Transtrum & Sethna),
//! relative-step finite differences, covariance from the pivoted QR, and honest termination.

use super::covariance::{covariance, Covariance};
use super::linalg::{
    enorm, j_times, jt_times, lmpar, scaled_norm, solve_damped, LmparWork, PivotedQr,
};
use super::problem::Problem;
use super::robust::{Loss, ScaledLoss};
use crate::error::{check_finite, check_len, CoreError, CoreResult};

/// Finite-difference scheme used when the problem has no analytic Jacobian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdScheme {
    /// Forward differences, step `h_j = diff_step·|x_j|` (default `√ε`); `n` evaluations.
    Forward,
    /// Central differences, step `h_j = diff_step·|x_j|` (default `ε^{1/3}`); `2n` evaluations.
    Central,
}

/// Solver settings. Defaults reach NIST-certified accuracy on the StRD suite.
#[derive(Debug, Clone)]
pub struct LmOptions {
    /// Relative reduction of the cost below which the fit stops (both actual and predicted).
    pub ftol: f64,
    /// Relative scaled step size below which the fit stops (`Δ ≤ xtol·‖D x‖`).
    pub xtol: f64,
    /// Cosine between residuals and every free Jacobian column below which the fit stops.
    pub gtol: f64,
    /// Maximum number of residual evaluations (finite-difference evaluations not counted);
    /// `None` means `500·(n+1)`.
    pub max_nfev: Option<usize>,
    /// Robust loss and its scale.
    pub loss: ScaledLoss,
    /// Lower bounds (empty: none; else length `n`, `-inf` allowed).
    pub lower: Vec<f64>,
    /// Upper bounds (empty: none; else length `n`, `+inf` allowed).
    pub upper: Vec<f64>,
    /// Finite-difference scheme when no analytic Jacobian exists.
    pub fd_scheme: FdScheme,
    /// Relative finite-difference step; `None` picks the scheme's default.
    pub diff_step: Option<f64>,
    /// Add the geodesic-acceleration correction to every step.
    pub geodesic: bool,
    /// Largest accepted ratio `2‖D a‖/‖D v‖` of acceleration to velocity.
    pub avmax: f64,
    /// Step for the second directional derivative used by geodesic acceleration.
    pub h_fvv: f64,
    /// Initial trust radius factor: `Δ₀ = factor·‖D x₀‖`.
    pub factor: f64,
    /// Fixed characteristic scales of the parameters (`D = 1/x_scale`); `None` uses Moré's
    /// Jacobian-column scaling.
    pub x_scale: Option<Vec<f64>>,
    /// Relative tolerance on the diagonal of the pivoted QR of the column-normalised Jacobian
    /// below which a direction counts as inestimable.
    pub rank_rtol: f64,
    /// `true`: covariance is `(JᵀJ)⁻¹` (sigma are absolute); `false`: scaled by the reduced χ².
    pub absolute_sigma: bool,
}

impl Default for LmOptions {
    fn default() -> Self {
        Self {
            ftol: 1e-15,
            xtol: 1e-15,
            gtol: 1e-15,
            max_nfev: None,
            loss: ScaledLoss::LINEAR,
            lower: Vec::new(),
            upper: Vec::new(),
            fd_scheme: FdScheme::Central,
            diff_step: None,
            geodesic: false,
            avmax: 0.75,
            h_fvv: 0.1,
            factor: 100.0,
            x_scale: None,
            rank_rtol: 1e-13,
            absolute_sigma: false,
        }
    }
}

/// Why the solver stopped. Codes match `scipy.optimize.least_squares`; negatives are capscale's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: the evaluation budget ran out.
    MaxNfev,
    /// 1: the gradient test (`gtol`) was satisfied.
    Gtol,
    /// 2: the cost test (`ftol`) was satisfied.
    Ftol,
    /// 3: the step test (`xtol`) was satisfied.
    Xtol,
    /// 4: both `ftol` and `xtol` were satisfied.
    FtolXtol,
    /// −3: converged, but a Jacobian column vanished: the fit sits on a plateau where a
    /// parameter no longer influences the residuals, so the answer is not trustworthy.
    VanishingColumn,
    /// −4: residuals or Jacobian became non-finite and no finite step could be found.
    NonFinite,
}

impl Status {
    /// SciPy-compatible integer code.
    pub fn code(self) -> i32 {
        match self {
            Status::MaxNfev => 0,
            Status::Gtol => 1,
            Status::Ftol => 2,
            Status::Xtol => 3,
            Status::FtolXtol => 4,
            Status::VanishingColumn => -3,
            Status::NonFinite => -4,
        }
    }

    /// Whether the status means convergence to a trustworthy minimum.
    pub fn success(self) -> bool {
        matches!(
            self,
            Status::Gtol | Status::Ftol | Status::Xtol | Status::FtolXtol
        )
    }
}

/// Everything the solver found.
#[derive(Debug, Clone)]
pub struct LmReport {
    /// Solution, length `n`.
    pub x: Vec<f64>,
    /// Residuals at `x` (weighted, before the robust loss), length `m`.
    pub fun: Vec<f64>,
    /// Jacobian at `x`, `m × n` column-major, rows weighted so that `JᵀJ` is the Gauss–Newton
    /// Hessian of the (robust) cost — SciPy's convention; the plain Jacobian of `fun` for the
    /// linear loss.
    pub jac: Vec<f64>,
    /// Robust cost `½ C² Σ ρ((r/C)²)` (`½ Σ r²` for the linear loss).
    pub cost: f64,
    /// Max-norm of the projected gradient of the cost.
    pub optimality: f64,
    /// Residual evaluations by the iteration (finite-difference evaluations excluded).
    pub nfev: usize,
    /// Jacobian evaluations.
    pub njev: usize,
    /// Iterations that accepted a step.
    pub niter: usize,
    /// Why it stopped.
    pub status: Status,
    /// Human-readable reason.
    pub message: String,
    /// Covariance of the parameters (`n × n`, row-major), possibly with `inf` entries.
    pub cov: Vec<f64>,
    /// Numerical rank of the Jacobian at the solution.
    pub rank: usize,
    /// Parameters whose variance is infinite (inestimable directions).
    pub inestimable: Vec<usize>,
    /// Parameters whose Jacobian column vanished (plateau).
    pub vanished: Vec<usize>,
    /// Parameters at a bound at the solution.
    pub active_bounds: Vec<usize>,
}

impl LmReport {
    /// Whether the fit converged to a trustworthy minimum.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

struct Bounds {
    lower: Vec<f64>,
    upper: Vec<f64>,
    any: bool,
}

impl Bounds {
    fn new(opts: &LmOptions, n: usize, x0: &[f64]) -> CoreResult<Self> {
        let lower = if opts.lower.is_empty() {
            vec![f64::NEG_INFINITY; n]
        } else {
            check_len("lower bounds", opts.lower.len(), n)?;
            opts.lower.clone()
        };
        let upper = if opts.upper.is_empty() {
            vec![f64::INFINITY; n]
        } else {
            check_len("upper bounds", opts.upper.len(), n)?;
            opts.upper.clone()
        };
        for j in 0..n {
            if lower[j].is_nan() || upper[j].is_nan() {
                return Err(CoreError::NonFinite(format!(
                    "bound of parameter {j} is NaN"
                )));
            }
            if lower[j] >= upper[j] {
                return Err(CoreError::InvalidArgument(format!(
                    "lower bound {} must be < upper bound {} for parameter {j}",
                    lower[j], upper[j]
                )));
            }
            if x0[j] < lower[j] || x0[j] > upper[j] {
                return Err(CoreError::InvalidArgument(format!(
                    "x0[{j}] = {} is outside its bounds [{}, {}]",
                    x0[j], lower[j], upper[j]
                )));
            }
        }
        let any = lower.iter().any(|v| v.is_finite()) || upper.iter().any(|v| v.is_finite());
        Ok(Self { lower, upper, any })
    }

    fn clip(&self, x: &mut [f64]) {
        if self.any {
            for ((xi, lo), hi) in x.iter_mut().zip(&self.lower).zip(&self.upper) {
                *xi = xi.clamp(*lo, *hi);
            }
        }
    }

    /// Whether variable `j` at `xj` is held at a bound because the gradient pushes it outward.
    fn is_held(&self, j: usize, xj: f64, grad_j: f64) -> bool {
        self.any && ((xj <= self.lower[j] && grad_j > 0.0) || (xj >= self.upper[j] && grad_j < 0.0))
    }
}

/// Check that `x0` (length `n`) lies inside the bounds of `opts` and the bounds are valid —
/// what [`solve`] checks first, for callers that validate a batch up front.
pub fn validate_start(opts: &LmOptions, x0: &[f64]) -> CoreResult<()> {
    check_finite("x0", x0)?;
    Bounds::new(opts, x0.len(), x0).map(|_| ())
}

/// Residuals, robust transform and Jacobian evaluation shared by the iteration.
struct Evaluator<'p, P: Problem + ?Sized> {
    problem: &'p mut P,
    loss: ScaledLoss,
    m: usize,
    n: usize,
    fd_scheme: FdScheme,
    diff_step: f64,
    nfev: usize,
    njev: usize,
}

impl<P: Problem + ?Sized> Evaluator<'_, P> {
    /// Raw residuals at `x`; `Ok(false)` when some are non-finite.
    fn raw(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        self.problem.residuals(x, out)?;
        Ok(out.iter().all(|v| v.is_finite()))
    }

    /// Jacobian of the raw residuals at `x` (given raw residuals `r` there).
    fn raw_jacobian(
        &mut self,
        x: &[f64],
        r: &[f64],
        bounds: &Bounds,
        out: &mut [f64],
    ) -> CoreResult<bool> {
        self.njev += 1;
        if self.problem.has_jacobian() && self.problem.jacobian(x, out)? {
            return Ok(out.iter().all(|v| v.is_finite()));
        }
        let m = self.m;
        let mut xt = x.to_vec();
        let mut f1 = vec![0.0; m];
        let mut f2 = vec![0.0; m];
        for j in 0..self.n {
            let xj = x[j];
            let base = if xj == 0.0 { 1.0 } else { xj.abs() };
            self.fd_column(
                j,
                &mut xt,
                r,
                self.diff_step * base,
                bounds,
                &mut f1,
                &mut f2,
                out,
            )?;
            // A relative step on a parameter far below its natural scale (a start of 1e-14
            // for a quantity of order 1) can change no residual at all; retry at unit scale
            // rather than freeze the parameter.
            if xj != 0.0 && xj.abs() < 1.0 && out[j * m..(j + 1) * m].iter().all(|&v| v == 0.0) {
                self.fd_column(j, &mut xt, r, self.diff_step, bounds, &mut f1, &mut f2, out)?;
            }
        }
        Ok(out.iter().all(|v| v.is_finite()))
    }

    /// Column `j` by finite differences with step `h0`, kept inside the bounds: central
    /// differences where both sides fit, else the second-order one-sided formula
    /// `(−3f₀ + 4f(x+h) − f(x+2h)) / 2h` on the side with room (shrinking `h` to the box); the
    /// forward scheme uses `(f(x+h) − f₀)/h`.
    #[allow(clippy::too_many_arguments)]
    fn fd_column(
        &mut self,
        j: usize,
        xt: &mut [f64],
        r: &[f64],
        h0: f64,
        bounds: &Bounds,
        f1: &mut [f64],
        f2: &mut [f64],
        out: &mut [f64],
    ) -> CoreResult<()> {
        let m = self.m;
        let xj = xt[j];
        let (up, down) = (bounds.upper[j] - xj, xj - bounds.lower[j]);
        let col = &mut out[j * m..(j + 1) * m];
        if self.fd_scheme == FdScheme::Central && up >= h0 && down >= h0 {
            xt[j] = xj + h0;
            let hp = xt[j] - xj;
            self.problem.residuals(xt, f1)?;
            xt[j] = xj - h0;
            let hm = xj - xt[j];
            self.problem.residuals(xt, f2)?;
            for i in 0..m {
                col[i] = (f1[i] - f2[i]) / (hp + hm);
            }
        } else {
            // One-sided, towards the side with more room; never outside the box.
            let points = if self.fd_scheme == FdScheme::Central {
                2.0
            } else {
                1.0
            };
            let (dir, room) = if up >= down { (1.0, up) } else { (-1.0, down) };
            let h = dir * h0.min(room / points);
            xt[j] = xj + h;
            let h1 = xt[j] - xj;
            self.problem.residuals(xt, f1)?;
            if self.fd_scheme == FdScheme::Central {
                xt[j] = xj + 2.0 * h1;
                self.problem.residuals(xt, f2)?;
                for i in 0..m {
                    col[i] = (-3.0 * r[i] + 4.0 * f1[i] - f2[i]) / (2.0 * h1);
                }
            } else {
                for i in 0..m {
                    col[i] = (f1[i] - r[i]) / h1;
                }
            }
        }
        xt[j] = xj;
        Ok(())
    }
}

/// Minimise `½ Σ ρ(r_i(x)²)` from `x0`. Bad input is an `Err`; non-convergence is a report
/// with `success() == false`.
pub fn solve<P: Problem + ?Sized>(
    problem: &mut P,
    x0: &[f64],
    opts: &LmOptions,
) -> CoreResult<LmReport> {
    let n = problem.n_params();
    let m = problem.n_residuals();
    check_len("x0", x0.len(), n)?;
    check_finite("x0", x0)?;
    if n == 0 {
        return Err(CoreError::InvalidArgument(
            "there are no parameters to fit".into(),
        ));
    }
    if m < n {
        return Err(CoreError::InvalidArgument(format!(
            "{m} residuals are fewer than the {n} parameters; the fit is underdetermined"
        )));
    }
    for (name, tol) in [
        ("ftol", opts.ftol),
        ("xtol", opts.xtol),
        ("gtol", opts.gtol),
    ] {
        if tol.is_nan() || tol < 0.0 || !tol.is_finite() {
            return Err(CoreError::InvalidArgument(format!(
                "{name} must be a finite number >= 0, got {tol}"
            )));
        }
    }
    if !(opts.loss.f_scale > 0.0 && opts.loss.f_scale.is_finite()) {
        return Err(CoreError::InvalidArgument(format!(
            "f_scale must be finite and > 0, got {}",
            opts.loss.f_scale
        )));
    }
    if let Some(xs) = &opts.x_scale {
        check_len("x_scale", xs.len(), n)?;
        if xs.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
            return Err(CoreError::InvalidArgument(
                "x_scale entries must be finite and > 0".into(),
            ));
        }
    }
    for (name, v) in [
        ("factor", opts.factor),
        ("avmax", opts.avmax),
        ("h_fvv", opts.h_fvv),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(CoreError::InvalidArgument(format!(
                "{name} must be finite and > 0, got {v}"
            )));
        }
    }
    if !(opts.rank_rtol >= 0.0 && opts.rank_rtol < 1.0) {
        return Err(CoreError::InvalidArgument(format!(
            "rank_rtol must be in [0, 1), got {}",
            opts.rank_rtol
        )));
    }
    let max_nfev = opts.max_nfev.unwrap_or(500 * (n + 1));
    if max_nfev == 0 {
        return Err(CoreError::InvalidArgument("max_nfev must be >= 1".into()));
    }
    let diff_step = match opts.diff_step {
        Some(h) if h > 0.0 && h.is_finite() => h,
        Some(h) => {
            return Err(CoreError::InvalidArgument(format!(
                "diff_step must be finite and > 0, got {h}"
            )))
        }
        None => match opts.fd_scheme {
            FdScheme::Forward => f64::EPSILON.sqrt(),
            FdScheme::Central => f64::EPSILON.cbrt(),
        },
    };
    let bounds = Bounds::new(opts, n, x0)?;
    let eps = f64::EPSILON;
    let (ftol, xtol, gtol) = (opts.ftol.max(eps), opts.xtol.max(eps), opts.gtol);

    let mut ev = Evaluator {
        problem,
        loss: opts.loss,
        m,
        n,
        fd_scheme: opts.fd_scheme,
        diff_step,
        nfev: 0,
        njev: 0,
    };
    let mut x = x0.to_vec();
    let mut r = vec![0.0; m];
    ev.nfev += 1;
    if !ev.raw(&x, &mut r)? {
        let i = r.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(CoreError::NonFinite(format!(
            "residual {i} is {} at x0; the model must be finite at the starting point",
            r[i]
        )));
    }
    let mut s = vec![0.0; m];
    let mut ds = vec![0.0; m];
    let mut cost = ev.loss.transform(&r, &mut s, &mut ds);
    if !cost.is_finite() {
        return Err(CoreError::NonFinite(format!(
            "the cost at x0 overflows ({cost}); rescale the residuals or the loss"
        )));
    }
    let mut fnorm = (2.0 * cost).sqrt();

    let mut diag = match &opts.x_scale {
        Some(xs) => xs.iter().map(|v| 1.0 / v).collect(),
        None => vec![0.0; n],
    };
    let mut colmax = vec![0.0_f64; n];
    let mut jac = vec![0.0; m * n];
    let mut jac_at_x = false;
    let mut delta = 0.0;
    let mut xnorm = 0.0;
    let mut par = 0.0;
    let mut first = true;
    let mut niter = 0;
    let mut status: Option<Status> = None;
    let mut message = String::new();

    // Every buffer of the iteration is allocated once, here.
    let mut r_new = vec![0.0; m];
    let mut s_new = vec![0.0; m];
    let mut ds_new = vec![0.0; m];
    let mut jp = vec![0.0; m];
    let mut frame = Frame::new(m, n);
    let mut work = LmparWork::default();
    let mut v = vec![0.0; n];
    let mut step = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut taken = vec![0.0; n];
    let mut scratch = Vec::with_capacity(n);

    'outer: while status.is_none() {
        // Jacobian of the transformed residuals.
        if !ev.raw_jacobian(&x, &r, &bounds, &mut jac)? {
            if first {
                return Err(CoreError::NonFinite(
                    "the Jacobian at x0 contains non-finite values".into(),
                ));
            }
            status = Some(Status::NonFinite);
            message = "the Jacobian became non-finite".into();
            break;
        }
        scale_rows(&mut jac, m, &ds);
        jac_at_x = true;
        frame.factor(&jac, &s, &x, &bounds);
        for &j in &frame.free {
            colmax[j] = colmax[j].max(frame.acnorm[j]);
        }
        if first {
            if opts.x_scale.is_none() {
                for j in 0..n {
                    let c = frame.acnorm[j];
                    diag[j] = if c == 0.0 { 1.0 } else { c };
                }
            }
            xnorm = scaled_norm(&diag, &x);
            delta = opts.factor * xnorm;
            if delta == 0.0 {
                delta = opts.factor;
            }
        }
        // Gradient test: cosine between s and each free column.
        let mut gnorm: f64 = 0.0;
        if fnorm != 0.0 {
            for &j in &frame.free {
                if frame.acnorm[j] != 0.0 {
                    gnorm = gnorm.max((frame.grad[j] / fnorm).abs() / frame.acnorm[j]);
                }
            }
        }
        if frame.free.is_empty()
            || gnorm <= gtol.max(if fnorm == 0.0 { f64::INFINITY } else { 0.0 })
        {
            status = Some(Status::Gtol);
            message = if fnorm == 0.0 {
                "the residuals are exactly zero".into()
            } else {
                format!(
                    "gtol satisfied: max cosine {gnorm:.3e} between residuals and Jacobian columns"
                )
            };
            break;
        }
        if opts.x_scale.is_none() {
            for &j in &frame.free {
                diag[j] = diag[j].max(frame.acnorm[j]);
            }
        }
        frame.diag_free.clear();
        frame.diag_free.extend(frame.free.iter().map(|&j| diag[j]));

        loop {
            par = lmpar(&mut frame.qr, &frame.diag_free, delta, par, &mut work);
            v.iter_mut().for_each(|e| *e = 0.0);
            for (k, &j) in frame.free.iter().enumerate() {
                v[j] = -work.x[k];
            }
            step.copy_from_slice(&v);
            let mut accel_rejected = false;
            if opts.geodesic {
                match geodesic_correction(&mut ev, &x, &v, &s, &jac, &bounds, opts.h_fvv)? {
                    Some(fvv) => {
                        let qtb = project_qt(&frame.qr, &frame.free, &jac, m, &fvv);
                        // Solve the damped system with right-hand side Qᵀ f_vv.
                        solve_damped(&mut frame.qr, &frame.diag_free, par, &qtb, &mut work);
                        let mut acc = vec![0.0; n];
                        for (k, &j) in frame.free.iter().enumerate() {
                            acc[j] = -work.x[k];
                        }
                        let an = scaled_norm(&diag, &acc);
                        let vn = scaled_norm(&diag, &v);
                        if vn > 0.0 && 2.0 * an / vn > opts.avmax {
                            accel_rejected = true;
                        } else {
                            for j in 0..n {
                                step[j] += 0.5 * acc[j];
                            }
                        }
                    }
                    None => accel_rejected = true,
                }
            }
            for j in 0..n {
                x_new[j] = x[j] + step[j];
            }
            bounds.clip(&mut x_new);
            for j in 0..n {
                taken[j] = x_new[j] - x[j];
            }
            let projected = taken.iter().zip(&step).any(|(a, b)| a != b);
            let pnorm = scaled_norm(&diag, &taken);
            if niter == 0 {
                delta = delta.min(pnorm);
            }

            let (actred, fnorm1, finite) = if accel_rejected {
                (-1.0, f64::INFINITY, true)
            } else {
                ev.nfev += 1;
                let finite = ev.raw(&x_new, &mut r_new)?;
                let c1 = if finite {
                    ev.loss.transform(&r_new, &mut s_new, &mut ds_new)
                } else {
                    f64::NAN
                };
                if c1.is_finite() {
                    let f1 = (2.0 * c1).sqrt();
                    let act = if 0.1 * f1 < fnorm {
                        1.0 - (f1 / fnorm).powi(2)
                    } else {
                        -1.0
                    };
                    (act, f1, true)
                } else {
                    (-1.0, f64::INFINITY, false)
                }
            };

            // Predicted reduction of the linear model.
            let (prered, dirder) = if projected {
                j_times(&jac, m, n, &taken, &mut jp);
                let sjp: f64 = s.iter().zip(&jp).map(|(a, b)| a * b).sum();
                let jpn = enorm(&jp);
                let pr = -(2.0 * sjp + jpn * jpn) / (fnorm * fnorm);
                (pr, sjp / (fnorm * fnorm))
            } else {
                let t1 = frame.norm_jp(&v, &mut scratch) / fnorm;
                let t2 = par.sqrt() * scaled_norm(&diag, &v) / fnorm;
                (t1 * t1 + t2 * t2 / 0.5, -(t1 * t1 + t2 * t2))
            };
            let ratio = if prered > 0.0 { actred / prered } else { 0.0 };

            // Update the trust radius.
            if ratio <= 0.25 {
                let mut temp = if actred >= 0.0 {
                    0.5
                } else {
                    0.5 * dirder / (dirder + 0.5 * actred)
                };
                if 0.1 * fnorm1 >= fnorm || temp.is_nan() || temp < 0.1 {
                    temp = 0.1;
                }
                delta = temp * delta.min(pnorm / 0.1);
                par /= temp;
            } else if par == 0.0 || ratio >= 0.75 {
                delta = pnorm / 0.5;
                par *= 0.5;
            }

            if ratio >= 1e-4 && finite {
                std::mem::swap(&mut x, &mut x_new);
                std::mem::swap(&mut r, &mut r_new);
                std::mem::swap(&mut s, &mut s_new);
                std::mem::swap(&mut ds, &mut ds_new);
                cost = 0.5 * fnorm1 * fnorm1;
                fnorm = fnorm1;
                xnorm = scaled_norm(&diag, &x);
                niter += 1;
                jac_at_x = false;
            }
            first = false;

            // Convergence tests.
            let ftol_ok = actred.abs() <= ftol && prered <= ftol && 0.5 * ratio <= 1.0;
            let xtol_ok = delta <= xtol * xnorm;
            if ftol_ok && xtol_ok {
                status = Some(Status::FtolXtol);
            } else if ftol_ok {
                status = Some(Status::Ftol);
            } else if xtol_ok {
                status = Some(Status::Xtol);
            } else if fnorm == 0.0 {
                status = Some(Status::Ftol);
            } else if ev.nfev >= max_nfev {
                status = Some(Status::MaxNfev);
            } else if !delta.is_finite() {
                status = Some(Status::NonFinite);
            } else if delta <= f64::MIN_POSITIVE {
                status = Some(Status::Xtol);
            }
            if let Some(st) = status {
                message = match st {
                    Status::Ftol => {
                        format!("ftol satisfied: relative cost reduction below {ftol:.1e}")
                    }
                    Status::Xtol => format!("xtol satisfied: relative step size below {xtol:.1e}"),
                    Status::FtolXtol => {
                        format!("ftol and xtol satisfied ({ftol:.1e}, {xtol:.1e})")
                    }
                    Status::MaxNfev => {
                        format!("the evaluation budget max_nfev = {max_nfev} was exhausted")
                    }
                    Status::NonFinite => "the trust radius became non-finite".into(),
                    _ => String::new(),
                };
                break 'outer;
            }
            if ratio >= 1e-4 && finite {
                break;
            }
        }
    }
    let mut status = status.unwrap_or(Status::MaxNfev);

    // Polish: MINPACK's relative tests stop once the cost no longer changes in floating point,
    // which can leave the parameters with only ~√ε of their attainable accuracy on
    // large-residual problems. Undamped Gauss–Newton steps from the (κ(J)-accurate) QR are
    // taken while they contract and do not raise the cost beyond rounding.
    if status.success() && fnorm > 0.0 {
        let mut prev = f64::INFINITY;
        for _ in 0..POLISH_STEPS {
            if !ev.raw_jacobian(&x, &r, &bounds, &mut jac)? {
                break;
            }
            scale_rows(&mut jac, m, &ds);
            jac_at_x = true;
            frame.factor(&jac, &s, &x, &bounds);
            if frame.free.is_empty() {
                break;
            }
            frame.diag_free.clear();
            frame.diag_free.extend(frame.free.iter().map(|&j| diag[j]));
            lmpar(
                &mut frame.qr,
                &frame.diag_free,
                f64::INFINITY,
                0.0,
                &mut work,
            );
            x_new.copy_from_slice(&x);
            for (k, &j) in frame.free.iter().enumerate() {
                x_new[j] -= work.x[k];
            }
            bounds.clip(&mut x_new);
            for j in 0..n {
                taken[j] = x_new[j] - x[j];
            }
            let pn = scaled_norm(&diag, &taken);
            let xn = scaled_norm(&diag, &x);
            if pn == 0.0 || pn >= 0.5 * prev || !pn.is_finite() {
                break;
            }
            ev.nfev += 1;
            if !ev.raw(&x_new, &mut r_new)? {
                break;
            }
            let c1 = ev.loss.transform(&r_new, &mut s_new, &mut ds_new);
            // Near the optimum the cost is flat to second order and its rounding noise can
            // reach ~1e-11 relative (residuals far smaller than the data cancel digits): a
            // small (≤ 1e-6 relative) contracting Gauss–Newton step that leaves the cost
            // within POLISH_COST_RTOL is taken — contraction, not the noisy cost, certifies
            // progress. Larger steps must not raise the cost at all.
            let tol = if pn <= 1e-6 * xn {
                POLISH_COST_RTOL
            } else {
                0.0
            };
            if !(c1.is_finite() && c1 <= cost * (1.0 + tol)) {
                break;
            }
            std::mem::swap(&mut x, &mut x_new);
            std::mem::swap(&mut r, &mut r_new);
            std::mem::swap(&mut s, &mut s_new);
            std::mem::swap(&mut ds, &mut ds_new);
            cost = c1;
            fnorm = (2.0 * c1).sqrt();
            jac_at_x = false;
            prev = pn;
            if pn <= f64::EPSILON * scaled_norm(&diag, &x) {
                break;
            }
        }
    }

    // Final Jacobian at the solution for covariance and diagnostics. With a robust loss the
    // raw Jacobian is needed too: the covariance weights rows by the robust cost's curvature.
    let robust = ev.loss.loss != Loss::Linear;
    let mut jac_cov = Vec::new();
    if (!jac_at_x || robust) && status != Status::NonFinite {
        if ev.raw_jacobian(&x, &r, &bounds, &mut jac)? {
            if robust {
                jac_cov = jac.clone();
                let mut w = vec![0.0; m];
                ev.loss.hessian_weights(&r, &mut w);
                scale_rows(&mut jac_cov, m, &w);
            }
            scale_rows(&mut jac, m, &ds);
        } else {
            status = Status::NonFinite;
            message = "the Jacobian at the solution is non-finite".into();
        }
    }
    if jac_cov.is_empty() {
        jac_cov = jac.clone();
    }
    let mut grad = vec![0.0; n];
    jt_times(&jac, m, &s, &mut grad);
    let optimality = (0..n)
        .filter(|&j| !bounds.is_held(j, x[j], grad[j]))
        .fold(0.0_f64, |acc, j| acc.max(grad[j].abs()));
    let active_bounds: Vec<usize> = (0..n)
        .filter(|&j| bounds.any && (x[j] <= bounds.lower[j] || x[j] >= bounds.upper[j]))
        .collect();

    // A column that shrank to a vanishing fraction of its largest size means the parameter
    // no longer moves the residuals: a plateau (or a saddle on a bound, e.g. an amplitude
    // pinned at 0 that silences its exponent), not a trustworthy minimum.
    let vanished: Vec<usize> = (0..n)
        .filter(|&j| {
            let c = enorm(&jac[j * m..(j + 1) * m]);
            colmax[j] > 0.0 && c <= 1e-7 * colmax[j]
        })
        .collect();
    if status.success() && !vanished.is_empty() && fnorm > 0.0 {
        status = Status::VanishingColumn;
        message = format!(
            "stopped on a plateau: the Jacobian column(s) of parameter(s) {vanished:?} vanished \
             (below 1e-7 of their largest size), so the result is not a trustworthy minimum"
        );
    }

    let scale = if opts.absolute_sigma {
        Some(1.0)
    } else if m > n {
        Some(2.0 * cost / (m - n) as f64)
    } else {
        None
    };
    let Covariance {
        cov,
        rank,
        inestimable,
    } = covariance(&jac_cov, m, n, opts.rank_rtol, scale);
    Ok(LmReport {
        x,
        fun: r,
        jac: jac_cov,
        cost,
        optimality,
        nfev: ev.nfev,
        njev: ev.njev,
        niter,
        status,
        message,
        cov,
        rank,
        inestimable,
        vanished,
        active_bounds,
    })
}

/// Gauss–Newton polishing steps after convergence (each: one Jacobian, one evaluation).
const POLISH_STEPS: usize = 4;

/// Relative cost increase tolerated for a polishing step (cost rounding noise).
const POLISH_COST_RTOL: f64 = 1e-10;

/// Multiply row `i` of the column-major Jacobian by `d[i]` (chain rule of the robust loss).
fn scale_rows(jac: &mut [f64], m: usize, d: &[f64]) {
    for col in jac.chunks_mut(m) {
        col.iter_mut().zip(d).for_each(|(a, di)| *a *= di);
    }
}

/// The factorised trust-region subproblem at one iterate: gradient, free set, pivoted QR of
/// the free columns. Buffers are reused from iteration to iteration.
struct Frame {
    m: usize,
    n: usize,
    grad: Vec<f64>,
    free: Vec<usize>,
    acnorm: Vec<f64>,
    diag_free: Vec<f64>,
    a: Vec<f64>,
    qr: PivotedQr,
    step_free: Vec<f64>,
}

impl Frame {
    fn new(m: usize, n: usize) -> Self {
        Self {
            m,
            n,
            grad: vec![0.0; n],
            free: Vec::with_capacity(n),
            acnorm: vec![0.0; n],
            diag_free: Vec::with_capacity(n),
            a: Vec::with_capacity(m * n),
            qr: PivotedQr::default(),
            step_free: Vec::with_capacity(n),
        }
    }

    /// Gradient `Jᵀ s`, the free variables (not held at a bound by an outward gradient), and
    /// the QR of their columns with `Qᵀ s`.
    fn factor(&mut self, jac: &[f64], s: &[f64], x: &[f64], bounds: &Bounds) {
        let (m, n) = (self.m, self.n);
        jt_times(jac, m, s, &mut self.grad);
        self.free.clear();
        self.free
            .extend((0..n).filter(|&j| !bounds.is_held(j, x[j], self.grad[j])));
        self.a.clear();
        for &j in &self.free {
            self.a.extend_from_slice(&jac[j * m..(j + 1) * m]);
        }
        let nf = self.free.len();
        self.qr.factor(&mut self.a, m, nf, s);
        self.acnorm.iter_mut().for_each(|c| *c = 0.0);
        for (k, &j) in self.free.iter().enumerate() {
            self.acnorm[j] = self.qr.acnorm[k];
        }
    }

    /// `‖J p‖` for a step `p` (full length, zero on held variables).
    fn norm_jp(&mut self, p: &[f64], scratch: &mut Vec<f64>) -> f64 {
        self.step_free.clear();
        self.step_free.extend(self.free.iter().map(|&j| p[j]));
        self.qr.norm_jp(&self.step_free, scratch)
    }
}

/// Second directional derivative of the transformed residuals along `v` (one extra
/// evaluation): `f_vv ≈ (2/h)·[(s(x + h v) − s(x))/h − J v]`. `None` if it is not finite.
fn geodesic_correction<P: Problem + ?Sized>(
    ev: &mut Evaluator<'_, P>,
    x: &[f64],
    v: &[f64],
    s: &[f64],
    jac: &[f64],
    bounds: &Bounds,
    h: f64,
) -> CoreResult<Option<Vec<f64>>> {
    let (m, n) = (ev.m, ev.n);
    let mut xt: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b).collect();
    bounds.clip(&mut xt);
    let mut rt = vec![0.0; m];
    ev.nfev += 1;
    if !ev.raw(&xt, &mut rt)? {
        return Ok(None);
    }
    let mut st = vec![0.0; m];
    let mut dt = vec![0.0; m];
    ev.loss.transform(&rt, &mut st, &mut dt);
    let mut jv = vec![0.0; m];
    j_times(jac, m, n, v, &mut jv);
    let fvv: Vec<f64> = (0..m)
        .map(|i| (2.0 / h) * ((st[i] - s[i]) / h - jv[i]))
        .collect();
    Ok(if fvv.iter().all(|v| v.is_finite()) {
        Some(fvv)
    } else {
        None
    })
}

/// `Qᵀ w` (first `nf` entries) for the QR of the free columns of `jac`, computed without
/// keeping `Q`: solve `Rᵀ y = Pᵀ J_Fᵀ w`.
fn project_qt(qr: &PivotedQr, free: &[usize], jac: &[f64], m: usize, w: &[f64]) -> Vec<f64> {
    let nf = free.len();
    // z = (J P)ᵀ w in pivoted order.
    let z: Vec<f64> = (0..nf)
        .map(|k| {
            let j = free[qr.ipvt[k]];
            jac[j * m..(j + 1) * m]
                .iter()
                .zip(w)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect();
    // Rᵀ y = z (forward substitution); y = Qᵀ w restricted to range(J).
    let mut y = vec![0.0; nf];
    for j in 0..nf {
        let mut sum = z[j];
        for i in 0..j {
            sum -= qr.rij(i, j) * y[i];
        }
        let d = qr.rij(j, j);
        y[j] = if d != 0.0 { sum / d } else { 0.0 };
    }
    y
}
