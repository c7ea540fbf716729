//! Behaviour of the LM solver against hand-computed references: linear least squares (exact
//! solution and covariance), bounds, robust optimality conditions, termination, and the batch
//! functions' determinism.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use capscale_core::fit::batch::{bootstrap, fit_law, fit_many, multi_start, Dataset};
use capscale_core::fit::laws::Law;
use capscale_core::fit::{solve, FdScheme, LmOptions, Loss, Problem, ScaledLoss, Status};
use capscale_core::{CoreError, CoreResult};

/// Straight line `y = a + b·x`, residuals `a + b·x − y`.
struct Line {
    x: Vec<f64>,
    y: Vec<f64>,
    analytic: bool,
}

impl Problem for Line {
    fn n_residuals(&self) -> usize {
        self.x.len()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn residuals(&mut self, p: &[f64], out: &mut [f64]) -> CoreResult<()> {
        for i in 0..self.x.len() {
            out[i] = p[0] + p[1] * self.x[i] - self.y[i];
        }
        Ok(())
    }
    fn jacobian(&mut self, _p: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        if !self.analytic {
            return Ok(false);
        }
        let m = self.x.len();
        for i in 0..m {
            out[i] = 1.0;
            out[m + i] = self.x[i];
        }
        Ok(true)
    }
    fn has_jacobian(&self) -> bool {
        self.analytic
    }
}

fn line() -> Line {
    Line {
        x: vec![0.0, 1.0, 2.0, 3.0, 4.0],
        y: vec![1.0, 2.9, 5.2, 7.1, 8.8],
        analytic: true,
    }
}

/// Closed-form ordinary least squares for the line: (a, b, var_a, var_b, cov_ab).
fn ols(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64, f64) {
    let n = x.len() as f64;
    let (sx, sy) = (x.iter().sum::<f64>(), y.iter().sum::<f64>());
    let sxx: f64 = x.iter().map(|v| v * v).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
    let det = n * sxx - sx * sx;
    let b = (n * sxy - sx * sy) / det;
    let a = (sy - b * sx) / n;
    let rss: f64 = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| (a + b * xi - yi).powi(2))
        .sum();
    let s2 = rss / (n - 2.0);
    (a, b, s2 * sxx / det, s2 * n / det, -s2 * sx / det)
}

#[test]
fn linear_fit_and_covariance_match_closed_form() {
    for analytic in [true, false] {
        let mut p = Line { analytic, ..line() };
        let (a, b, va, vb, cab) = ols(&p.x.clone(), &p.y.clone());
        let rep = solve(&mut p, &[0.0, 0.0], &LmOptions::default()).unwrap();
        assert!(rep.success(), "{:?}", rep.status);
        let tol = if analytic { 1e-13 } else { 1e-9 };
        assert!(
            (rep.x[0] - a).abs() < tol && (rep.x[1] - b).abs() < tol,
            "{:?}",
            rep.x
        );
        assert!((rep.cov[0] - va).abs() < 1e-9 * va);
        assert!((rep.cov[3] - vb).abs() < 1e-9 * vb);
        assert!((rep.cov[1] - cab).abs() < 1e-9 * cab.abs());
        assert_eq!(rep.rank, 2);
    }
}

#[test]
fn bound_constrained_solution_sits_on_the_bound() {
    // Unconstrained slope ≈ 1.96; with b ≤ 1.5 the optimum is b = 1.5, a = mean(y − 1.5 x).
    let mut p = line();
    let opts = LmOptions {
        lower: vec![f64::NEG_INFINITY, f64::NEG_INFINITY],
        upper: vec![f64::INFINITY, 1.5],
        ..LmOptions::default()
    };
    let rep = solve(&mut p, &[0.0, 0.0], &opts).unwrap();
    let a_want = p.y.iter().zip(&p.x).map(|(y, x)| y - 1.5 * x).sum::<f64>() / 5.0;
    assert!(rep.success(), "{:?} {}", rep.status, rep.message);
    assert_eq!(rep.x[1], 1.5);
    assert!(
        (rep.x[0] - a_want).abs() < 1e-12,
        "{} vs {a_want}",
        rep.x[0]
    );
    assert_eq!(rep.active_bounds, vec![1]);
    // Starting exactly on the bound works too.
    let rep2 = solve(&mut p, &[0.0, 1.5], &opts).unwrap();
    assert!((rep2.x[0] - a_want).abs() < 1e-12);
}

#[test]
fn robust_loss_solution_satisfies_its_optimality_condition() {
    // Line with two gross outliers: at the robust optimum Σ ψ(r_i)·∂r_i/∂θ = 0, where
    // ψ(r) = ρ'((r/C)²)·r; the ordinary fit is dragged by the outliers, the robust one is not.
    let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
    let mut y: Vec<f64> = x
        .iter()
        .map(|v| 1.0 + 0.5 * v + 0.01 * (v * 7.0).sin())
        .collect();
    y[5] += 30.0;
    y[13] -= 25.0;
    // Start from the ordinary fit, as robust fits are: redescending losses (cauchy, arctan)
    // have flat stationary points far from the data.
    let (a0, b0, ..) = ols(&x, &y);
    assert!(
        (b0 - 0.5).abs() > 0.05,
        "the outliers must drag the ordinary fit"
    );
    for loss in [Loss::Huber, Loss::SoftL1, Loss::Cauchy, Loss::Arctan] {
        let mut p = Line {
            x: x.clone(),
            y: y.clone(),
            analytic: true,
        };
        let c = 0.1;
        let opts = LmOptions {
            loss: ScaledLoss { loss, f_scale: c },
            ..LmOptions::default()
        };
        let rep = solve(&mut p, &[a0, b0], &opts).unwrap();
        assert!(rep.success(), "{loss:?}: {}", rep.message);
        let (mut g0, mut g1, mut scale) = (0.0, 0.0, 0.0);
        for i in 0..x.len() {
            let r = rep.fun[i];
            let psi = loss.rho_prime((r / c) * (r / c)) * r;
            g0 += psi;
            g1 += psi * x[i];
            scale += psi.abs() * (1.0 + x[i]);
        }
        let tol = 1e-9 * scale + 1e-13;
        assert!(
            g0.abs() <= tol && g1.abs() <= tol,
            "{loss:?}: {g0} {g1} (scale {scale})"
        );
        assert!(
            (rep.x[1] - 0.5).abs() < 0.01,
            "{loss:?}: slope {}",
            rep.x[1]
        );
        let cost_direct = opts.loss.cost(&rep.fun);
        assert!((rep.cost - cost_direct).abs() <= 1e-12 * cost_direct);
    }
}

#[test]
fn zero_residuals_converge_with_zero_cost() {
    let mut p = Line {
        x: vec![0.0, 1.0, 2.0],
        y: vec![1.0, 3.0, 5.0],
        analytic: true,
    };
    let rep = solve(&mut p, &[1.0, 2.0], &LmOptions::default()).unwrap();
    assert!(rep.success());
    assert_eq!(rep.cost, 0.0);
    assert_eq!(rep.x, vec![1.0, 2.0]);
}

/// Rosenbrock as least squares: r = (10(x₂ − x₁²), 1 − x₁); minimum (1, 1), a curved valley.
struct Rosenbrock;

impl Problem for Rosenbrock {
    fn n_residuals(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    fn residuals(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<()> {
        out[0] = 10.0 * (x[1] - x[0] * x[0]);
        out[1] = 1.0 - x[0];
        Ok(())
    }
    fn jacobian(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        out.copy_from_slice(&[-20.0 * x[0], -1.0, 10.0, 0.0]);
        Ok(true)
    }
    fn has_jacobian(&self) -> bool {
        true
    }
}

#[test]
fn geodesic_acceleration_solves_the_curved_valley() {
    for geodesic in [false, true] {
        let opts = LmOptions {
            geodesic,
            ..LmOptions::default()
        };
        let rep = solve(&mut Rosenbrock, &[-1.2, 1.0], &opts).unwrap();
        assert!(rep.success(), "geodesic={geodesic}: {}", rep.message);
        assert!((rep.x[0] - 1.0).abs() < 1e-12 && (rep.x[1] - 1.0).abs() < 1e-12);
    }
}

#[test]
fn evaluation_budget_is_reported_not_hidden() {
    let opts = LmOptions {
        max_nfev: Some(3),
        ..LmOptions::default()
    };
    let rep = solve(&mut Rosenbrock, &[-1.2, 1.0], &opts).unwrap();
    assert_eq!(rep.status, Status::MaxNfev);
    assert!(!rep.success());
    assert!(rep.nfev <= 3);
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    let mut p = line();
    let err = |r: CoreResult<_>| match r {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    };
    let e = err(solve(&mut p, &[f64::NAN, 0.0], &LmOptions::default()));
    assert!(
        matches!(e, CoreError::NonFinite(ref m) if m.contains("x0")),
        "{e:?}"
    );
    let e = err(solve(&mut p, &[0.0], &LmOptions::default()));
    assert!(
        matches!(e, CoreError::Shape(ref m) if m.contains("x0")),
        "{e:?}"
    );
    let outside = LmOptions {
        lower: vec![1.0, 0.0],
        upper: vec![2.0, 1.0],
        ..LmOptions::default()
    };
    let e = err(solve(&mut p, &[0.0, 0.5], &outside));
    assert!(
        matches!(e, CoreError::InvalidArgument(ref m) if m.contains("outside")),
        "{e:?}"
    );
    let crossed = LmOptions {
        lower: vec![1.0, 0.0],
        upper: vec![0.0, 1.0],
        ..LmOptions::default()
    };
    let e = err(solve(&mut p, &[0.5, 0.5], &crossed));
    assert!(matches!(e, CoreError::InvalidArgument(ref m) if m.contains("lower bound")));
    let mut tiny = Line {
        x: vec![1.0],
        y: vec![1.0],
        analytic: true,
    };
    let e = err(solve(&mut tiny, &[0.0, 0.0], &LmOptions::default()));
    assert!(matches!(e, CoreError::InvalidArgument(ref m) if m.contains("fewer")));
    let mut nan_y = Line {
        y: vec![1.0, f64::NAN, 2.0, 3.0, 4.0],
        ..line()
    };
    let e = err(solve(&mut nan_y, &[0.0, 0.0], &LmOptions::default()));
    assert!(
        matches!(e, CoreError::NonFinite(ref m) if m.contains("x0")),
        "{e:?}"
    );
}

#[test]
fn forward_and_central_differences_agree_with_analytic() {
    for scheme in [FdScheme::Forward, FdScheme::Central] {
        let mut p = Line {
            analytic: false,
            ..line()
        };
        let opts = LmOptions {
            fd_scheme: scheme,
            ..LmOptions::default()
        };
        let rep = solve(&mut p, &[0.3, 0.7], &opts).unwrap();
        let (a, b, ..) = ols(&p.x.clone(), &p.y.clone());
        assert!(
            (rep.x[0] - a).abs() < 1e-8 && (rep.x[1] - b).abs() < 1e-8,
            "{scheme:?}"
        );
    }
}

fn power_law_data() -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..12)
        .map(|i| 10f64.powf(7.0 + 3.0 * i as f64 / 11.0))
        .collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| (406.4 * v.powf(-0.34) + 1.69) * (1.0 + 0.01 * ((i * 37) as f64).sin()))
        .collect();
    (x, y)
}

#[test]
fn bootstrap_is_identical_for_any_thread_count_and_equals_single_fits() {
    let (x, y) = power_law_data();
    let opts = LmOptions {
        lower: vec![0.0, 0.0, 0.0],
        upper: vec![f64::INFINITY, 2.0, f64::INFINITY],
        ..LmOptions::default()
    };
    let x0 = [100.0, 0.3, 1.0];
    let one = bootstrap(Law::SaturatingPowerLaw, &x, &y, None, &x0, 64, 7, &opts, 1).unwrap();
    let two = bootstrap(Law::SaturatingPowerLaw, &x, &y, None, &x0, 64, 7, &opts, 2).unwrap();
    assert_eq!(one.x, two.x);
    assert_eq!(one.cost, two.cost);
    let other = bootstrap(Law::SaturatingPowerLaw, &x, &y, None, &x0, 64, 8, &opts, 2).unwrap();
    assert_ne!(one.x, other.x);
    // Resample 5 refitted on its own gives the same bits.
    let idx = capscale_core::rng::resample_indices(7, 5, y.len());
    let xb: Vec<f64> = idx.iter().map(|&i| x[i]).collect();
    let yb: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let single = fit_law(Law::SaturatingPowerLaw, &xb, &yb, None, &x0, &opts).unwrap();
    assert_eq!(&one.x[15..18], &single.x[..]);
}

#[test]
fn fit_many_and_multi_start_match_single_fits() {
    let (x, y) = power_law_data();
    let y2: Vec<f64> = y.iter().map(|v| v * 1.1).collect();
    let x0 = [100.0, 0.3, 1.0];
    let opts = LmOptions::default();
    let data = [
        Dataset {
            x: &x,
            y: &y,
            sigma: None,
            x0: &x0,
        },
        Dataset {
            x: &x,
            y: &y2,
            sigma: None,
            x0: &x0,
        },
    ];
    let many = fit_many(Law::SaturatingPowerLaw, &data, &opts, 2).unwrap();
    for (k, d) in data.iter().enumerate() {
        let single = fit_law(Law::SaturatingPowerLaw, d.x, d.y, None, d.x0, &opts).unwrap();
        assert_eq!(&many.x[3 * k..3 * k + 3], &single.x[..]);
    }
    let starts = [100.0, 0.3, 1.0, 1000.0, 0.5, 0.0, 10.0, 0.1, 2.0];
    let ms = multi_start(Law::SaturatingPowerLaw, &x, &y, None, &starts, &opts, 2).unwrap();
    let best = ms.best().unwrap();
    for k in 0..3 {
        if (1..=4).contains(&ms.status[k]) {
            assert!(ms.cost[best] <= ms.cost[k]);
        }
    }
}
