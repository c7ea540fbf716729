//! Parameter covariance `s²·(JᵀJ)⁻¹` from the pivoted QR of the column-normalised Jacobian,
//! with a rank tolerance: directions beyond the numerical rank are inestimable (`inf`).

use super::linalg::{enorm, PivotedQr};

/// Covariance and the rank diagnostics behind it.
#[derive(Debug, Clone)]
pub struct Covariance {
    /// `n × n`, row-major; rows/columns of inestimable parameters are `inf`.
    pub cov: Vec<f64>,
    /// Numerical rank of the Jacobian.
    pub rank: usize,
    /// Parameters (indices) outside the estimable subspace.
    pub inestimable: Vec<usize>,
}

/// Covariance of the parameters from the `m × n` column-major Jacobian `jac`.
///
/// Columns are normalised to unit length before the pivoted QR (so the rank test does not
/// depend on parameter units); `|R_kk| ≤ rank_rtol·|R_00|` ends the estimable block.
/// `scale` multiplies `(JᵀJ)⁻¹` (the residual variance, or 1 for absolute sigma); `None`
/// (no degrees of freedom) makes every entry `inf`.
pub fn covariance(
    jac: &[f64],
    m: usize,
    n: usize,
    rank_rtol: f64,
    scale: Option<f64>,
) -> Covariance {
    let norms: Vec<f64> = (0..n).map(|j| enorm(&jac[j * m..(j + 1) * m])).collect();
    let mut a = vec![0.0; m * n];
    for j in 0..n {
        if norms[j] > 0.0 && norms[j].is_finite() {
            for i in 0..m {
                a[j * m + i] = jac[j * m + i] / norms[j];
            }
        }
    }
    let qr = PivotedQr::new(&mut a, m, n, &vec![0.0; m]);
    let rank = if n == 0 || qr.rij(0, 0) == 0.0 {
        0
    } else {
        qr.rank(rank_rtol)
    };
    // Inverse of the leading rank × rank block of R (upper triangular).
    let k = rank;
    let mut rinv = vec![0.0; k * k]; // column-major
    for j in 0..k {
        rinv[j * k + j] = 1.0 / qr.rij(j, j);
        for i in (0..j).rev() {
            let mut sum = 0.0;
            for l in (i + 1)..=j {
                sum += qr.rij(i, l) * rinv[j * k + l];
            }
            rinv[j * k + i] = -sum / qr.rij(i, i);
        }
    }
    let mut cov = vec![f64::INFINITY; n * n];
    let inestimable: Vec<usize> = (k..n).map(|p| qr.ipvt[p]).collect();
    if let Some(s) = scale {
        for a_ in 0..k {
            for b in 0..k {
                // (R⁻¹ R⁻ᵀ)[a, b] = Σ_l Rinv[a, l]·Rinv[b, l]
                let mut sum = 0.0;
                for l in a_.max(b)..k {
                    sum += rinv[l * k + a_] * rinv[l * k + b];
                }
                let (pa, pb) = (qr.ipvt[a_], qr.ipvt[b]);
                cov[pa * n + pb] = s * sum / (norms[pa] * norms[pb]);
            }
        }
    }
    let mut inestimable = inestimable;
    inestimable.sort_unstable();
    Covariance {
        cov,
        rank,
        inestimable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_inverse() {
        // J = [[1, 0], [1, 1], [1, 2]] → JᵀJ = [[3, 3], [3, 5]], inverse = [[5, -3], [-3, 3]]/6.
        let jac = [1.0, 1.0, 1.0, 0.0, 1.0, 2.0];
        let c = covariance(&jac, 3, 2, 1e-13, Some(2.0));
        let want = [5.0 / 3.0, -1.0, -1.0, 1.0];
        for (g, w) in c.cov.iter().zip(want) {
            assert!((g - w).abs() < 1e-14, "{g} vs {w}");
        }
        assert_eq!(c.rank, 2);
        assert!(c.inestimable.is_empty());
    }

    #[test]
    fn collinear_columns_are_inestimable() {
        let jac = [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.0, 1.0, 0.0];
        let c = covariance(&jac, 3, 3, 1e-13, Some(1.0));
        assert_eq!(c.rank, 2);
        assert_eq!(c.inestimable.len(), 1);
        let bad = c.inestimable[0];
        assert!(bad == 0 || bad == 1);
        assert!(c.cov[bad * 3 + bad].is_infinite());
        assert!(c.cov[2 * 3 + 2].is_finite());
    }
}
