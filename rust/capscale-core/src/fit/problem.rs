//! What the solver minimises: a vector of residuals and (optionally) their Jacobian.

use crate::error::{check_finite, check_len, CoreError, CoreResult};

/// A nonlinear least-squares problem `min_x ½ Σ ρ(r_i(x)²)` seen by the solver.
///
/// Jacobians are column-major, `m × n`: `jac[j * m + i] = ∂r_i/∂x_j`.
pub trait Problem {
    /// Number of residuals `m`.
    fn n_residuals(&self) -> usize;
    /// Number of parameters `n`.
    fn n_params(&self) -> usize;
    /// Write the residuals at `x` (length `n`) into `out` (length `m`).
    fn residuals(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<()>;
    /// Write the analytic Jacobian at `x` into `out` (length `m·n`, column-major).
    /// Returns `Ok(false)` when the problem has no analytic Jacobian (the solver then
    /// uses finite differences).
    fn jacobian(&mut self, _x: &[f64], _out: &mut [f64]) -> CoreResult<bool> {
        Ok(false)
    }
    /// Whether [`Problem::jacobian`] is implemented.
    fn has_jacobian(&self) -> bool {
        false
    }
}

/// A model `f(x; p)` evaluated at `m` fixed points (the `xdata` of `curve_fit`).
pub trait Model {
    /// Number of points `m`.
    fn n_points(&self) -> usize;
    /// Number of parameters `n`.
    fn n_params(&self) -> usize;
    /// Model values at the points for parameters `p`, into `out` (length `m`).
    fn eval(&mut self, p: &[f64], out: &mut [f64]) -> CoreResult<()>;
    /// Column-major `m × n` derivatives `∂f_i/∂p_j`; `Ok(false)` if not available.
    fn jacobian(&mut self, _p: &[f64], _out: &mut [f64]) -> CoreResult<bool> {
        Ok(false)
    }
    /// Whether [`Model::jacobian`] is implemented.
    fn has_jacobian(&self) -> bool {
        false
    }
}

/// Weighted curve-fitting residuals `r_i = (f(x_i; p) − y_i) / σ_i` of a [`Model`].
pub struct CurveProblem<'a, M: Model> {
    model: M,
    y: &'a [f64],
    inv_sigma: Option<Vec<f64>>,
}

impl<'a, M: Model> CurveProblem<'a, M> {
    /// Wrap `model` with observations `y` (length `m`) and optional per-point `sigma`
    /// (standard deviations, same units as `y`, all finite and > 0).
    pub fn new(model: M, y: &'a [f64], sigma: Option<&[f64]>) -> CoreResult<Self> {
        check_len("ydata", y.len(), model.n_points())?;
        check_finite("ydata", y)?;
        let inv_sigma = match sigma {
            None => None,
            Some(s) => {
                check_len("sigma", s.len(), model.n_points())?;
                check_finite("sigma", s)?;
                if let Some(i) = s.iter().position(|&v| v <= 0.0) {
                    return Err(CoreError::InvalidArgument(format!(
                        "sigma must be > 0, got {} at index {i}",
                        s[i]
                    )));
                }
                Some(s.iter().map(|v| 1.0 / v).collect())
            }
        };
        Ok(Self {
            model,
            y,
            inv_sigma,
        })
    }

    /// The wrapped model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Unwrap the model (e.g. to read state it collected during a solve).
    pub fn into_model(self) -> M {
        self.model
    }
}

impl<M: Model> Problem for CurveProblem<'_, M> {
    fn n_residuals(&self) -> usize {
        self.model.n_points()
    }
    fn n_params(&self) -> usize {
        self.model.n_params()
    }
    fn residuals(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<()> {
        self.model.eval(x, out)?;
        match &self.inv_sigma {
            None => out.iter_mut().zip(self.y).for_each(|(o, y)| *o -= y),
            Some(w) => out
                .iter_mut()
                .zip(self.y)
                .zip(w)
                .for_each(|((o, y), w)| *o = (*o - y) * w),
        }
        Ok(())
    }
    fn jacobian(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        if !self.model.jacobian(x, out)? {
            return Ok(false);
        }
        if let Some(w) = &self.inv_sigma {
            for col in out.chunks_mut(w.len()) {
                col.iter_mut().zip(w).for_each(|(o, w)| *o *= w);
            }
        }
        Ok(true)
    }
    fn has_jacobian(&self) -> bool {
        self.model.has_jacobian()
    }
}
