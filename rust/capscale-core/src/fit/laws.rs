//! Built-in scaling laws with analytic Jacobians, addressed by id (the same laws are registered
//! in Python with NumPy oracles). Inputs are column-major `n_inputs × m`.

use super::problem::Model;
use crate::error::{check_finite, CoreError, CoreResult};

/// A built-in law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// `y = a·x^(−b)`, params `(a, b)`, `x > 0`.
    PowerLaw,
    /// `y = a·x^(−b) + c`, params `(a, b, c)`, `x > 0`.
    SaturatingPowerLaw,
    /// `L = E + A/N^α + B/D^β`, params `(E, A, B, alpha, beta)`, inputs `(N, D) > 0`.
    Chinchilla,
    /// `log L = LSE(a − α log N, b − β log D, e)`, params `(a, b, e, alpha, beta)`
    /// (Hoffmann et al.'s parametrisation: `A = eᵃ, B = eᵇ, E = eᵉ`), inputs `(N, D) > 0`.
    ChinchillaLse,
    /// `y = c/(1 + exp(−k(x − x0))) + d`, params `(c, k, x0, d)`.
    Logistic4,
    /// `y = a·exp(b·x)`, params `(a, b)`.
    Exponential,
    /// `y = a + b·ln x`, params `(a, b)`, `x > 0`.
    LogLinear,
}

impl Law {
    /// Every law id.
    pub const ALL: [Law; 7] = [
        Law::PowerLaw,
        Law::SaturatingPowerLaw,
        Law::Chinchilla,
        Law::ChinchillaLse,
        Law::Logistic4,
        Law::Exponential,
        Law::LogLinear,
    ];

    /// The law's registry name.
    pub fn name(self) -> &'static str {
        match self {
            Law::PowerLaw => "power_law",
            Law::SaturatingPowerLaw => "saturating_power_law",
            Law::Chinchilla => "chinchilla",
            Law::ChinchillaLse => "chinchilla_lse",
            Law::Logistic4 => "logistic4",
            Law::Exponential => "exponential",
            Law::LogLinear => "log_linear",
        }
    }

    /// Look a law up by name.
    pub fn from_name(name: &str) -> CoreResult<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|l| l.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|l| l.name()).collect();
                CoreError::UnknownName(format!("unknown law {name:?}; known laws: {names:?}"))
            })
    }

    /// Parameter names in order.
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Law::PowerLaw => &["a", "b"],
            Law::SaturatingPowerLaw => &["a", "b", "c"],
            Law::Chinchilla => &["E", "A", "B", "alpha", "beta"],
            Law::ChinchillaLse => &["a", "b", "e", "alpha", "beta"],
            Law::Logistic4 => &["c", "k", "x0", "d"],
            Law::Exponential | Law::LogLinear => &["a", "b"],
        }
    }

    /// Number of parameters.
    pub fn n_params(self) -> usize {
        self.param_names().len()
    }

    /// Number of input columns (1, or 2 for `(N, D)`).
    pub fn n_inputs(self) -> usize {
        match self {
            Law::Chinchilla | Law::ChinchillaLse => 2,
            _ => 1,
        }
    }

    fn needs_positive_inputs(self) -> bool {
        !matches!(self, Law::Logistic4 | Law::Exponential)
    }

    fn uses_log_inputs(self) -> bool {
        self.needs_positive_inputs()
    }
}

/// A law evaluated at fixed inputs: a [`Model`] with an analytic Jacobian.
#[derive(Debug, Clone)]
pub struct LawModel {
    law: Law,
    m: usize,
    /// Inputs as the law uses them (`ln x` for laws of positive inputs), column-major.
    inputs: Vec<f64>,
    /// Parameters of the last evaluation and the Jacobian computed alongside it: the solver
    /// asks for the Jacobian at the point it just evaluated, so it comes for free.
    cache_p: Vec<f64>,
    cache_jac: Vec<f64>,
}

impl LawModel {
    /// Prepare `law` at inputs `x` (column-major `n_inputs × m`, i.e. `x[k·m + i]`).
    pub fn new(law: Law, x: &[f64]) -> CoreResult<Self> {
        let k = law.n_inputs();
        if x.len() % k != 0 {
            return Err(CoreError::Shape(format!(
                "law {} takes {k} input columns; xdata has {} values, not a multiple of {k}",
                law.name(),
                x.len()
            )));
        }
        check_finite("xdata", x)?;
        if law.needs_positive_inputs() {
            if let Some(i) = x.iter().position(|&v| v <= 0.0) {
                return Err(CoreError::InvalidArgument(format!(
                    "law {} needs xdata > 0, got {} at flat index {i}",
                    law.name(),
                    x[i]
                )));
            }
        }
        let inputs = if law.uses_log_inputs() {
            x.iter().map(|v| v.ln()).collect()
        } else {
            x.to_vec()
        };
        Ok(Self {
            law,
            m: x.len() / k,
            inputs,
            cache_p: Vec::new(),
            cache_jac: Vec::new(),
        })
    }

    /// The law.
    pub fn law(&self) -> Law {
        self.law
    }

    /// Select points (with repetition) — the model of a bootstrap resample.
    pub fn resample(&self, idx: &[usize]) -> Self {
        let k = self.law.n_inputs();
        let mut inputs = Vec::with_capacity(idx.len() * k);
        for c in 0..k {
            inputs.extend(idx.iter().map(|&i| self.inputs[c * self.m + i]));
        }
        Self {
            law: self.law,
            m: idx.len(),
            inputs,
            cache_p: Vec::new(),
            cache_jac: Vec::new(),
        }
    }

    /// Value at point `i` and, if `grad` is given, its gradient (length `n_params`).
    #[inline]
    fn point(&self, p: &[f64], i: usize, grad: Option<&mut [f64]>) -> f64 {
        let m = self.m;
        let u = self.inputs[i];
        match self.law {
            Law::PowerLaw | Law::SaturatingPowerLaw => {
                let t = (-p[1] * u).exp();
                let f = p[0] * t;
                if let Some(g) = grad {
                    g[0] = t;
                    g[1] = -u * f;
                    if self.law == Law::SaturatingPowerLaw {
                        g[2] = 1.0;
                    }
                }
                if self.law == Law::SaturatingPowerLaw {
                    f + p[2]
                } else {
                    f
                }
            }
            Law::Chinchilla => {
                let ln_d = self.inputs[m + i];
                let tn = (-p[3] * u).exp();
                let td = (-p[4] * ln_d).exp();
                if let Some(g) = grad {
                    g[0] = 1.0;
                    g[1] = tn;
                    g[2] = td;
                    g[3] = -u * p[1] * tn;
                    g[4] = -ln_d * p[2] * td;
                }
                p[0] + p[1] * tn + p[2] * td
            }
            Law::ChinchillaLse => {
                let ln_d = self.inputs[m + i];
                let u1 = p[0] - p[3] * u;
                let u2 = p[1] - p[4] * ln_d;
                let u3 = p[2];
                let mx = u1.max(u2).max(u3);
                // The largest term is exp(0) = 1: two exponentials per point, not three.
                let (e1, e2, e3) = if mx == u1 {
                    (1.0, (u2 - mx).exp(), (u3 - mx).exp())
                } else if mx == u2 {
                    ((u1 - mx).exp(), 1.0, (u3 - mx).exp())
                } else {
                    ((u1 - mx).exp(), (u2 - mx).exp(), 1.0)
                };
                let sum = e1 + e2 + e3;
                if let Some(g) = grad {
                    let (w1, w2, w3) = (e1 / sum, e2 / sum, e3 / sum);
                    g[0] = w1;
                    g[1] = w2;
                    g[2] = w3;
                    g[3] = -u * w1;
                    g[4] = -ln_d * w2;
                }
                mx + sum.ln()
            }
            Law::Logistic4 => {
                let z = p[1] * (u - p[2]);
                let sig = if z >= 0.0 {
                    1.0 / (1.0 + (-z).exp())
                } else {
                    let e = z.exp();
                    e / (1.0 + e)
                };
                if let Some(g) = grad {
                    let ds = sig * (1.0 - sig);
                    g[0] = sig;
                    g[1] = p[0] * ds * (u - p[2]);
                    g[2] = -p[0] * ds * p[1];
                    g[3] = 1.0;
                }
                p[0] * sig + p[3]
            }
            Law::Exponential => {
                let e = (p[1] * u).exp();
                if let Some(g) = grad {
                    g[0] = e;
                    g[1] = u * p[0] * e;
                }
                p[0] * e
            }
            Law::LogLinear => {
                if let Some(g) = grad {
                    g[0] = 1.0;
                    g[1] = u;
                }
                p[0] + p[1] * u
            }
        }
    }
}

impl Model for LawModel {
    fn n_points(&self) -> usize {
        self.m
    }
    fn n_params(&self) -> usize {
        self.law.n_params()
    }
    fn eval(&mut self, p: &[f64], out: &mut [f64]) -> CoreResult<()> {
        let (m, n) = (self.m, self.law.n_params());
        let mut jac = std::mem::take(&mut self.cache_jac);
        jac.resize(m * n, 0.0);
        let mut g = [0.0; 8];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.point(p, i, Some(&mut g[..n]));
            for j in 0..n {
                jac[j * m + i] = g[j];
            }
        }
        self.cache_jac = jac;
        self.cache_p.clear();
        self.cache_p.extend_from_slice(p);
        Ok(())
    }
    fn jacobian(&mut self, p: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        if self.cache_p.as_slice() != p {
            let mut scratch = vec![0.0; self.m];
            self.eval(p, &mut scratch)?;
        }
        out.copy_from_slice(&self.cache_jac);
        Ok(true)
    }
    fn has_jacobian(&self) -> bool {
        true
    }
}

/// Evaluate `law` at inputs `x` (column-major) for parameters `p`.
pub fn evaluate(law: Law, x: &[f64], p: &[f64]) -> CoreResult<Vec<f64>> {
    crate::error::check_len("params", p.len(), law.n_params())?;
    let mut model = LawModel::new(law, x)?;
    let mut out = vec![0.0; model.n_points()];
    model.eval(p, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytic_jacobians_match_central_differences() {
        let x1: Vec<f64> = (1..=9).map(|i| 10f64.powf(6.0 + 0.5 * i as f64)).collect();
        let x2: Vec<f64> = x1
            .iter()
            .chain(x1.iter().map(|v| v * 20.0).collect::<Vec<_>>().iter())
            .copied()
            .collect();
        let cases: Vec<(Law, Vec<f64>, Vec<f64>)> = vec![
            (Law::PowerLaw, x1.clone(), vec![400.0, 0.3]),
            (Law::SaturatingPowerLaw, x1.clone(), vec![400.0, 0.3, 1.7]),
            (
                Law::Chinchilla,
                x2.clone(),
                vec![1.8, 480.0, 2100.0, 0.34, 0.37],
            ),
            (
                Law::ChinchillaLse,
                x2.clone(),
                vec![6.0, 7.6, 0.6, 0.34, 0.37],
            ),
            (
                Law::Logistic4,
                vec![-2.0, -0.5, 0.0, 0.3, 1.2, 3.0],
                vec![0.7, 2.0, 0.4, 0.25],
            ),
            (Law::Exponential, vec![0.0, 0.5, 1.0, 2.0], vec![1.5, 0.8]),
            (Law::LogLinear, x1.clone(), vec![0.1, 0.05]),
        ];
        for (law, x, p) in cases {
            let mut model = LawModel::new(law, &x).unwrap();
            let (m, n) = (model.n_points(), law.n_params());
            let mut jac = vec![0.0; m * n];
            model.jacobian(&p, &mut jac).unwrap();
            for j in 0..n {
                let h = 1e-6 * p[j].abs().max(1e-3);
                let (mut pp, mut pm) = (p.clone(), p.clone());
                pp[j] += h;
                pm[j] -= h;
                let (mut fp, mut fm) = (vec![0.0; m], vec![0.0; m]);
                model.eval(&pp, &mut fp).unwrap();
                model.eval(&pm, &mut fm).unwrap();
                for i in 0..m {
                    let fd = (fp[i] - fm[i]) / (2.0 * h);
                    let an = jac[j * m + i];
                    assert!(
                        (fd - an).abs() <= 1e-6 * an.abs().max(1e-8),
                        "{law:?} j={j} i={i}: {fd} vs {an}"
                    );
                }
            }
        }
    }
}
