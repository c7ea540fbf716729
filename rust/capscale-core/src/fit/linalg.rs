//! Dense kernels of the trust-region step, after Moré (1978) and MINPACK: Householder QR with
//! column pivoting, the Levenberg–Marquardt parameter search (`lmpar`) and the damped
//! least-squares solve by Givens rotations (`qrsolv`). Matrices are column-major.
//! The normal equations are never formed, so accuracy is governed by κ(J), not κ(J)².

/// Euclidean norm that neither overflows nor underflows for finite input.
pub fn enorm(v: &[f64]) -> f64 {
    let s: f64 = v.iter().map(|x| x * x).sum();
    if s.is_finite() && s > 1e-280 {
        return s.sqrt();
    }
    if s.is_nan() {
        return f64::NAN;
    }
    let big = v.iter().fold(0.0_f64, |a, x| a.max(x.abs()));
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    big * v.iter().map(|x| (x / big) * (x / big)).sum::<f64>().sqrt()
}

/// `‖d ∘ v‖` (elementwise product) without allocating.
pub fn scaled_norm(d: &[f64], v: &[f64]) -> f64 {
    let s: f64 = d.iter().zip(v).map(|(a, b)| (a * b) * (a * b)).sum();
    if s.is_finite() && s > 1e-280 {
        return s.sqrt();
    }
    if s.is_nan() {
        return f64::NAN;
    }
    let big = d
        .iter()
        .zip(v)
        .fold(0.0_f64, |acc, (a, b)| acc.max((a * b).abs()));
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    big * d
        .iter()
        .zip(v)
        .map(|(a, b)| (a * b / big) * (a * b / big))
        .sum::<f64>()
        .sqrt()
}

/// Pivoted QR factorisation `J P = Q R` of an `m × n` matrix (`m ≥ n`).
#[derive(Debug, Default, Clone)]
pub struct PivotedQr {
    /// Number of columns `n`.
    pub n: usize,
    /// `n × n` column-major; upper triangle holds `R` (diagonal included). The strict lower
    /// triangle is scratch space for [`qrsolv`].
    pub r: Vec<f64>,
    /// Column permutation: column `j` of `J P` is column `ipvt[j]` of `J`.
    pub ipvt: Vec<usize>,
    /// Euclidean norms of the columns of `J` (unpermuted).
    pub acnorm: Vec<f64>,
    /// First `n` entries of `Qᵀ f`.
    pub qtf: Vec<f64>,
    rdiag: Vec<f64>,
    wa: Vec<f64>,
    qtf_full: Vec<f64>,
}

impl PivotedQr {
    /// Factorise `a` (`m × n`, column-major, destroyed) and apply `Qᵀ` to `f` (length `m`).
    pub fn new(a: &mut [f64], m: usize, n: usize, f: &[f64]) -> Self {
        let mut qr = Self::default();
        qr.factor(a, m, n, f);
        qr
    }

    /// [`PivotedQr::new`] into existing buffers (no allocation once they are large enough).
    pub fn factor(&mut self, a: &mut [f64], m: usize, n: usize, f: &[f64]) {
        let eps = f64::EPSILON;
        self.n = n;
        let (acnorm, rdiag, wa, ipvt) = (
            &mut self.acnorm,
            &mut self.rdiag,
            &mut self.wa,
            &mut self.ipvt,
        );
        acnorm.clear();
        rdiag.clear();
        wa.clear();
        ipvt.clear();
        for j in 0..n {
            let c = enorm(&a[j * m..(j + 1) * m]);
            acnorm.push(c);
            rdiag.push(c);
            wa.push(c);
            ipvt.push(j);
        }
        let qtf_full = &mut self.qtf_full;
        qtf_full.clear();
        qtf_full.extend_from_slice(f);
        for j in 0..n.min(m) {
            // Bring the column of largest remaining norm into pivot position.
            let mut kmax = j;
            for k in j..n {
                if rdiag[k] > rdiag[kmax] {
                    kmax = k;
                }
            }
            if kmax != j {
                for i in 0..m {
                    a.swap(j * m + i, kmax * m + i);
                }
                rdiag[kmax] = rdiag[j];
                wa[kmax] = wa[j];
                ipvt.swap(j, kmax);
            }
            // Householder transformation reducing column j to a multiple of e_j.
            let mut ajnorm = enorm(&a[j * m + j..(j + 1) * m]);
            if ajnorm != 0.0 {
                if a[j * m + j] < 0.0 {
                    ajnorm = -ajnorm;
                }
                for i in j..m {
                    a[j * m + i] /= ajnorm;
                }
                a[j * m + j] += 1.0;
                let vjj = a[j * m + j];
                for k in (j + 1)..n {
                    let mut sum = 0.0;
                    for i in j..m {
                        sum += a[j * m + i] * a[k * m + i];
                    }
                    let t = sum / vjj;
                    for i in j..m {
                        a[k * m + i] -= t * a[j * m + i];
                    }
                    if rdiag[k] != 0.0 {
                        let t = a[k * m + j] / rdiag[k];
                        rdiag[k] *= (1.0 - t * t).max(0.0).sqrt();
                        if 0.05 * (rdiag[k] / wa[k]).powi(2) <= eps {
                            rdiag[k] = enorm(&a[k * m + j + 1..(k + 1) * m]);
                            wa[k] = rdiag[k];
                        }
                    }
                }
                // Apply the same reflection to f.
                let mut sum = 0.0;
                for i in j..m {
                    sum += a[j * m + i] * qtf_full[i];
                }
                let t = sum / vjj;
                for i in j..m {
                    qtf_full[i] -= t * a[j * m + i];
                }
            }
            rdiag[j] = -ajnorm;
        }
        self.r.clear();
        self.r.resize(n * n, 0.0);
        for j in 0..n {
            for i in 0..j.min(m) {
                self.r[j * n + i] = a[j * m + i];
            }
            if j < m {
                self.r[j * n + j] = rdiag[j];
            }
        }
        self.qtf.clear();
        self.qtf.extend_from_slice(&qtf_full[..n.min(m)]);
        self.qtf.resize(n, 0.0);
    }

    /// `R(i, j)` (upper triangle).
    #[inline]
    pub fn rij(&self, i: usize, j: usize) -> f64 {
        self.r[j * self.n + i]
    }

    /// Numerical rank: the number of leading `|R_jj| > tol·|R_00|`.
    pub fn rank(&self, tol: f64) -> usize {
        let r00 = self.rij(0, 0).abs();
        (0..self.n)
            .take_while(|&j| self.rij(j, j).abs() > tol * r00 && self.rij(j, j) != 0.0)
            .count()
    }

    /// `‖R Pᵀ p‖` = `‖J p‖` for a step `p` in original parameter order (`w`: scratch).
    pub fn norm_jp(&self, p: &[f64], w: &mut Vec<f64>) -> f64 {
        let n = self.n;
        w.clear();
        w.resize(n, 0.0);
        for j in 0..n {
            let pj = p[self.ipvt[j]];
            for (i, wi) in w.iter_mut().enumerate().take(j + 1) {
                *wi += self.rij(i, j) * pj;
            }
        }
        enorm(w)
    }
}

/// Scratch vectors of [`lmpar`] and [`solve_damped`], reused across iterations.
#[derive(Debug, Default, Clone)]
pub struct LmparWork {
    /// The solution of the last solve, in original parameter order.
    pub x: Vec<f64>,
    sdiag: Vec<f64>,
    wa1: Vec<f64>,
    wa2: Vec<f64>,
    scaled: Vec<f64>,
    qtb: Vec<f64>,
    wa: Vec<f64>,
    rdiag_saved: Vec<f64>,
}

impl LmparWork {
    fn reset(&mut self, n: usize) {
        for v in [
            &mut self.x,
            &mut self.sdiag,
            &mut self.wa1,
            &mut self.wa2,
            &mut self.scaled,
            &mut self.wa,
            &mut self.rdiag_saved,
        ] {
            v.clear();
            v.resize(n, 0.0);
        }
    }
}

/// Solve `min ‖J x − b‖² + ‖D x‖²` given the QR of `J` and `Qᵀb` (`qtb`), by Givens rotations
/// (MINPACK `qrsolv`). The result goes to `w.x` (original order) and `w.sdiag` receives the
/// diagonal of the triangular factor `S`; the strict lower triangle of `qr.r` receives `Sᵀ`.
fn qrsolv(qr: &mut PivotedQr, diag: &[f64], qtb: &[f64], w: &mut LmparWork) {
    let n = qr.n;
    let r = &mut qr.r;
    let (x, sdiag, wa, rdiag_saved) = (&mut w.x, &mut w.sdiag, &mut w.wa, &mut w.rdiag_saved);
    wa.copy_from_slice(qtb);
    for j in 0..n {
        for i in j..n {
            r[j * n + i] = r[i * n + j];
        }
        rdiag_saved[j] = r[j * n + j];
    }
    for j in 0..n {
        let l = qr.ipvt[j];
        if diag[l] != 0.0 {
            for s in sdiag.iter_mut().skip(j) {
                *s = 0.0;
            }
            sdiag[j] = diag[l];
            let mut qtbpj = 0.0;
            for k in j..n {
                if sdiag[k] == 0.0 {
                    continue;
                }
                let rkk = r[k * n + k];
                let (sin, cos) = if rkk.abs() < sdiag[k].abs() {
                    let cotan = rkk / sdiag[k];
                    let sin = 0.5 / (0.25 + 0.25 * cotan * cotan).sqrt();
                    (sin, sin * cotan)
                } else {
                    let tan = sdiag[k] / rkk;
                    let cos = 0.5 / (0.25 + 0.25 * tan * tan).sqrt();
                    (cos * tan, cos)
                };
                r[k * n + k] = cos * rkk + sin * sdiag[k];
                let t = cos * wa[k] + sin * qtbpj;
                qtbpj = -sin * wa[k] + cos * qtbpj;
                wa[k] = t;
                for i in (k + 1)..n {
                    let t = cos * r[k * n + i] + sin * sdiag[i];
                    sdiag[i] = -sin * r[k * n + i] + cos * sdiag[i];
                    r[k * n + i] = t;
                }
            }
        }
        sdiag[j] = r[j * n + j];
        r[j * n + j] = rdiag_saved[j];
    }
    // Back-substitution; a singular S gives the least-squares solution.
    let nsing = sdiag.iter().position(|&s| s == 0.0).unwrap_or(n);
    for v in wa.iter_mut().skip(nsing) {
        *v = 0.0;
    }
    for j in (0..nsing).rev() {
        let mut sum = 0.0;
        for i in (j + 1)..nsing {
            sum += r[j * n + i] * wa[i];
        }
        wa[j] = (wa[j] - sum) / sdiag[j];
    }
    for j in 0..n {
        x[qr.ipvt[j]] = wa[j];
    }
}

/// Find `par ≥ 0` such that the scaled step length `‖D x‖` is within 10% of `delta`
/// (or `par = 0` when the Gauss–Newton step is already inside), MINPACK `lmpar`.
/// Returns `par`; the solution `x` of `min ‖J x − f‖² + par‖D x‖²` (the step is `−x`) is left
/// in `w.x`, in original parameter order.
pub fn lmpar(qr: &mut PivotedQr, diag: &[f64], delta: f64, par_in: f64, w: &mut LmparWork) -> f64 {
    let n = qr.n;
    let dwarf = f64::MIN_POSITIVE;
    w.reset(n);
    let mut qtb = std::mem::take(&mut w.qtb);
    qtb.clear();
    qtb.extend_from_slice(&qr.qtf);
    // Gauss–Newton direction (least-squares solution if R is singular).
    let nsing = (0..n).position(|j| qr.rij(j, j) == 0.0).unwrap_or(n);
    w.wa1.copy_from_slice(&qtb);
    for v in w.wa1.iter_mut().skip(nsing) {
        *v = 0.0;
    }
    for j in (0..nsing).rev() {
        w.wa1[j] /= qr.rij(j, j);
        let t = w.wa1[j];
        for i in 0..j {
            w.wa1[i] -= qr.rij(i, j) * t;
        }
    }
    for j in 0..n {
        w.x[qr.ipvt[j]] = w.wa1[j];
    }
    for j in 0..n {
        w.wa2[j] = diag[j] * w.x[j];
    }
    let mut dxnorm = enorm(&w.wa2);
    let mut fp = dxnorm - delta;
    if fp <= 0.1 * delta {
        w.qtb = qtb;
        return 0.0;
    }
    // Lower bound parl from the Newton step (full rank only).
    let mut parl = 0.0;
    if nsing >= n {
        for j in 0..n {
            let l = qr.ipvt[j];
            w.wa1[j] = diag[l] * (w.wa2[l] / dxnorm);
        }
        for j in 0..n {
            let mut sum = 0.0;
            for i in 0..j {
                sum += qr.rij(i, j) * w.wa1[i];
            }
            w.wa1[j] = (w.wa1[j] - sum) / qr.rij(j, j);
        }
        let t = enorm(&w.wa1);
        parl = ((fp / delta) / t) / t;
    }
    // Upper bound paru.
    for j in 0..n {
        let mut sum = 0.0;
        for i in 0..=j {
            sum += qr.rij(i, j) * qtb[i];
        }
        w.wa1[j] = sum / diag[qr.ipvt[j]];
    }
    let gnorm = enorm(&w.wa1);
    let mut paru = gnorm / delta;
    if paru == 0.0 {
        paru = dwarf / delta.min(0.1);
    }
    let mut par = par_in.max(parl).min(paru);
    if par == 0.0 {
        par = gnorm / dxnorm;
    }
    let mut iter = 0;
    loop {
        iter += 1;
        if par == 0.0 {
            par = dwarf.max(0.001 * paru);
        }
        let sp = par.sqrt();
        let mut scaled = std::mem::take(&mut w.scaled);
        for j in 0..n {
            scaled[j] = sp * diag[j];
        }
        qrsolv(qr, &scaled, &qtb, w);
        w.scaled = scaled;
        for j in 0..n {
            w.wa2[j] = diag[j] * w.x[j];
        }
        dxnorm = enorm(&w.wa2);
        let fp_old = fp;
        fp = dxnorm - delta;
        if fp.abs() <= 0.1 * delta
            || (parl == 0.0 && fp <= fp_old && fp_old < 0.0)
            || iter == 10
            || !fp.is_finite()
        {
            break;
        }
        // Newton correction.
        for j in 0..n {
            let l = qr.ipvt[j];
            w.wa1[j] = diag[l] * (w.wa2[l] / dxnorm);
        }
        for j in 0..n {
            w.wa1[j] /= w.sdiag[j];
            let t = w.wa1[j];
            for i in (j + 1)..n {
                w.wa1[i] -= qr.r[j * n + i] * t;
            }
        }
        let t = enorm(&w.wa1);
        let parc = ((fp / delta) / t) / t;
        if fp > 0.0 {
            parl = parl.max(par);
        }
        if fp < 0.0 {
            paru = paru.min(par);
        }
        par = parl.max(par + parc);
    }
    w.qtb = qtb;
    par
}

/// Solve the damped system again with a new right-hand side `qtb` (e.g. `Qᵀ f_vv` for geodesic
/// acceleration) at a fixed `par`; the solution goes to `w.x`.
pub fn solve_damped(qr: &mut PivotedQr, diag: &[f64], par: f64, qtb: &[f64], w: &mut LmparWork) {
    let n = qr.n;
    w.reset(n);
    let sp = par.sqrt();
    let scaled: Vec<f64> = diag.iter().map(|d| sp * d).collect();
    qrsolv(qr, &scaled, qtb, w);
}

/// `Jᵀ v` for a column-major `m × n` Jacobian, into `out` (length `n`).
pub fn jt_times(jac: &[f64], m: usize, v: &[f64], out: &mut [f64]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = jac[j * m..(j + 1) * m]
            .iter()
            .zip(v)
            .map(|(a, b)| a * b)
            .sum();
    }
}

/// `J p` for a column-major `m × n` Jacobian, into `out` (length `m`).
pub fn j_times(jac: &[f64], m: usize, n: usize, p: &[f64], out: &mut [f64]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    for j in 0..n {
        if p[j] != 0.0 {
            for (o, a) in out.iter_mut().zip(&jac[j * m..(j + 1) * m]) {
                *o += a * p[j];
            }
        }
    }
}
