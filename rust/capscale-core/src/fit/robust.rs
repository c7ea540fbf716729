//! Robust losses applied inside the Levenberg–Marquardt iteration.
//!
//! With `z = (r / C)²` and `C = f_scale`, the cost of one residual is `½ C² ρ(z)` (SciPy's
//! convention). The solver works on the transformed residuals `s = r·√(ρ(z)/z)`, for which
//! `½ s² = ½ C² ρ(z)` exactly, so the trust-region ratio, the stopping rules and the covariance
//! all see the true robust cost; `ds/dr = ρ'(z)/√(ρ(z)/z)` (chain rule) scales the Jacobian rows.

use crate::error::{CoreError, CoreResult};

/// The loss `ρ(z)` applied to squared scaled residuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// `ρ(z) = z`: ordinary least squares.
    Linear,
    /// `ρ(z) = z` if `z ≤ 1` else `2√z − 1`.
    Huber,
    /// `ρ(z) = 2(√(1+z) − 1)`.
    SoftL1,
    /// `ρ(z) = ln(1 + z)`.
    Cauchy,
    /// `ρ(z) = arctan(z)`.
    Arctan,
}

impl Loss {
    /// All names accepted by [`Loss::from_name`].
    pub const NAMES: [&'static str; 5] = ["linear", "huber", "soft_l1", "cauchy", "arctan"];

    /// Parse a SciPy loss name.
    pub fn from_name(name: &str) -> CoreResult<Self> {
        match name {
            "linear" => Ok(Loss::Linear),
            "huber" => Ok(Loss::Huber),
            "soft_l1" => Ok(Loss::SoftL1),
            "cauchy" => Ok(Loss::Cauchy),
            "arctan" => Ok(Loss::Arctan),
            _ => Err(CoreError::UnknownName(format!(
                "unknown loss {name:?}; expected one of {:?}",
                Self::NAMES
            ))),
        }
    }

    /// `ρ(z)`.
    pub fn rho(self, z: f64) -> f64 {
        match self {
            Loss::Linear => z,
            Loss::Huber => {
                if z <= 1.0 {
                    z
                } else {
                    2.0 * z.sqrt() - 1.0
                }
            }
            Loss::SoftL1 => 2.0 * ((1.0 + z).sqrt() - 1.0),
            Loss::Cauchy => z.ln_1p(),
            Loss::Arctan => z.atan(),
        }
    }

    /// `ρ'(z)`.
    pub fn rho_prime(self, z: f64) -> f64 {
        self.rho_prime_t(z.sqrt())
    }

    /// `√(ρ(z)/z)` as a function of `t = √z = |r|/C`, continuous at 0 (where it is 1) and
    /// free of overflow for huge `t` (no `t²` is formed where it could overflow).
    fn ratio_sqrt(self, t: f64) -> f64 {
        const BIG: f64 = 1e150;
        match self {
            Loss::Linear => 1.0,
            Loss::Huber => {
                if t <= 1.0 {
                    1.0
                } else {
                    (2.0 * t - 1.0).sqrt() / t
                }
            }
            Loss::SoftL1 => (2.0 / (1.0_f64.hypot(t) + 1.0)).sqrt(),
            Loss::Cauchy => {
                if t < 1e-6 {
                    (1.0 - 0.5 * t * t).sqrt()
                } else if t < BIG {
                    (t * t).ln_1p().sqrt() / t
                } else {
                    (2.0 * t.ln()).sqrt() / t
                }
            }
            Loss::Arctan => {
                if t < 1e-4 {
                    1.0
                } else if t < BIG {
                    (t * t).atan().sqrt() / t
                } else {
                    std::f64::consts::FRAC_PI_2.sqrt() / t
                }
            }
        }
    }

    /// `ρ'(z)` as a function of `t = √z` (no overflow for huge `t`).
    fn rho_prime_t(self, t: f64) -> f64 {
        match self {
            Loss::Linear => 1.0,
            Loss::Huber => {
                if t <= 1.0 {
                    1.0
                } else {
                    1.0 / t
                }
            }
            Loss::SoftL1 => 1.0 / 1.0_f64.hypot(t),
            Loss::Cauchy => 1.0 / (1.0 + t * t),
            Loss::Arctan => 1.0 / (1.0 + (t * t) * (t * t)),
        }
    }
}

/// A loss with its scale `C` (`f_scale`, in units of the weighted residuals).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledLoss {
    /// The loss function.
    pub loss: Loss,
    /// Soft margin `C > 0` between inlier and outlier residuals.
    pub f_scale: f64,
}

impl ScaledLoss {
    /// Ordinary least squares.
    pub const LINEAR: ScaledLoss = ScaledLoss {
        loss: Loss::Linear,
        f_scale: 1.0,
    };

    /// Transform residuals `r` into `s` in place, storing `ds/dr` in `deriv`.
    /// Returns the cost `½ Σ s²`.
    pub fn transform(&self, r: &[f64], s: &mut [f64], deriv: &mut [f64]) -> f64 {
        if self.loss == Loss::Linear {
            s.copy_from_slice(r);
            deriv.iter_mut().for_each(|d| *d = 1.0);
        } else {
            let c = self.f_scale;
            for ((ri, si), di) in r.iter().zip(s.iter_mut()).zip(deriv.iter_mut()) {
                let t = (ri / c).abs();
                let q = self.loss.ratio_sqrt(t);
                *si = ri * q;
                *di = self.loss.rho_prime_t(t) / q;
            }
        }
        0.5 * s.iter().map(|v| v * v).sum::<f64>()
    }

    /// Row weights `√max(ρ'(z) + 2zρ''(z), ε)` that make `JᵀJ` the Gauss–Newton Hessian of
    /// the robust cost (SciPy's convention for the returned Jacobian and `curve_fit`'s pcov).
    pub fn hessian_weights(&self, r: &[f64], out: &mut [f64]) {
        let c = self.f_scale;
        for (ri, o) in r.iter().zip(out.iter_mut()) {
            let t = (ri / c).abs();
            let z = t * t;
            let w = match self.loss {
                Loss::Linear => 1.0,
                Loss::Huber => {
                    if t <= 1.0 {
                        1.0
                    } else {
                        0.0
                    }
                }
                Loss::SoftL1 => 1.0_f64.hypot(t).powi(-3),
                Loss::Cauchy => (1.0 - z) / ((1.0 + z) * (1.0 + z)),
                Loss::Arctan => (1.0 - 3.0 * z * z) / ((1.0 + z * z) * (1.0 + z * z)),
            };
            *o = if w.is_finite() && w > f64::EPSILON {
                w.sqrt()
            } else {
                f64::EPSILON.sqrt()
            };
        }
    }

    /// The robust cost `½ C² Σ ρ((r/C)²)` of residuals `r`.
    pub fn cost(&self, r: &[f64]) -> f64 {
        let c = self.f_scale;
        0.5 * c
            * c
            * r.iter()
                .map(|ri| self.loss.rho((ri / c) * (ri / c)))
                .sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_reproduces_cost_and_derivative() {
        for loss in [
            Loss::Huber,
            Loss::SoftL1,
            Loss::Cauchy,
            Loss::Arctan,
            Loss::Linear,
        ] {
            let sl = ScaledLoss { loss, f_scale: 0.7 };
            let r = [-3.0, -0.2, 0.0, 1e-9, 0.5, 4.0];
            let mut s = [0.0; 6];
            let mut d = [0.0; 6];
            let cost = sl.transform(&r, &mut s, &mut d);
            assert!((cost - sl.cost(&r)).abs() <= 1e-14 * cost.max(1.0));
            for i in 0..r.len() {
                // d(½ s²)/dr = s·ds/dr must equal ρ'(z)·r.
                let z = (r[i] / 0.7f64).powi(2);
                let want = loss.rho_prime(z) * r[i];
                assert!((s[i] * d[i] - want).abs() <= 1e-14, "{loss:?} {i}");
            }
        }
    }

    #[test]
    fn huge_residuals_stay_finite() {
        for loss in [Loss::Huber, Loss::SoftL1, Loss::Cauchy, Loss::Arctan] {
            let sl = ScaledLoss {
                loss,
                f_scale: 1e-3,
            };
            let r = [1e252, -1e300, 1e160];
            let (mut s, mut d) = ([0.0; 3], [0.0; 3]);
            let cost = sl.transform(&r, &mut s, &mut d);
            assert!(cost.is_finite(), "{loss:?}: {cost}");
            assert!(
                s.iter().chain(&d).all(|v| v.is_finite()),
                "{loss:?}: {s:?} {d:?}"
            );
        }
    }

    #[test]
    fn hessian_weights_match_second_derivative() {
        // ρ'(z) + 2zρ''(z) = d²(½C²ρ(r²/C²))/dr², checked by central differences of ψ(r).
        for loss in [Loss::SoftL1, Loss::Cauchy, Loss::Arctan, Loss::Linear] {
            let sl = ScaledLoss { loss, f_scale: 0.7 };
            for r in [-2.0, -0.3, 0.1, 0.45] {
                let psi = |r: f64| loss.rho_prime((r / 0.7f64).powi(2)) * r;
                let h = 1e-6;
                let want = (psi(r + h) - psi(r - h)) / (2.0 * h);
                let mut w = [0.0];
                sl.hessian_weights(&[r], &mut w);
                let got = w[0] * w[0];
                if want > f64::EPSILON {
                    assert!((got - want).abs() < 1e-8, "{loss:?} r={r}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn huber_matches_hand_computed_values() {
        // δ = 1e-3: ½r² inside, δ(|r| − δ/2) outside.
        let sl = ScaledLoss {
            loss: Loss::Huber,
            f_scale: 1e-3,
        };
        let r = [5e-4, -2e-3];
        let want = 0.5 * 25e-8 + 1e-3 * (2e-3 - 5e-4);
        assert!((sl.cost(&r) - want).abs() < 1e-18);
    }
}
