//! Bindings of `capscale_core::fit`: the solver on Python callables and on built-in laws,
//! batch fits, and law evaluation.

use crate::callbacks::{PyModel, PyProblem};
use crate::errors::{IntoPyResult, ShapeError};
use capscale_core::fit::batch::{self, BatchResult, Dataset};
use capscale_core::fit::laws::{self, Law};
use capscale_core::fit::{solve, CurveProblem, FdScheme, LmOptions, LmReport, Loss, ScaledLoss};
use capscale_core::rng::resample_indices;
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Solver settings, built once in Python and passed to every fit; `None` means the
/// core default (`LmOptions::default()`).
#[pyclass(frozen, module = "capscale._native")]
pub struct SolverOptions {
    inner: LmOptions,
}

#[pymethods]
impl SolverOptions {
    #[new]
    #[pyo3(signature = (*, ftol=None, xtol=None, gtol=None, max_nfev=None, loss="linear",
        f_scale=1.0, lower=None, upper=None, diff_scheme="3-point", diff_step=None,
        geodesic=false, avmax=None, h_fvv=None, factor=None, x_scale=None, rank_rtol=None,
        absolute_sigma=false))]
    fn new(
        ftol: Option<f64>,
        xtol: Option<f64>,
        gtol: Option<f64>,
        max_nfev: Option<usize>,
        loss: &str,
        f_scale: f64,
        lower: Option<Vec<f64>>,
        upper: Option<Vec<f64>>,
        diff_scheme: &str,
        diff_step: Option<f64>,
        geodesic: bool,
        avmax: Option<f64>,
        h_fvv: Option<f64>,
        factor: Option<f64>,
        x_scale: Option<Vec<f64>>,
        rank_rtol: Option<f64>,
        absolute_sigma: bool,
    ) -> PyResult<Self> {
        let fd_scheme = match diff_scheme {
            "2-point" => FdScheme::Forward,
            "3-point" => FdScheme::Central,
            other => {
                return Err(crate::errors::UnknownNameError::new_err(format!(
                    "unknown finite-difference scheme {other:?}; expected '2-point' or '3-point'"
                )))
            }
        };
        let d = LmOptions::default();
        Ok(Self {
            inner: LmOptions {
                ftol: ftol.unwrap_or(d.ftol),
                xtol: xtol.unwrap_or(d.xtol),
                gtol: gtol.unwrap_or(d.gtol),
                max_nfev,
                loss: ScaledLoss {
                    loss: Loss::from_name(loss).py()?,
                    f_scale,
                },
                lower: lower.unwrap_or_default(),
                upper: upper.unwrap_or_default(),
                fd_scheme,
                diff_step,
                geodesic,
                avmax: avmax.unwrap_or(d.avmax),
                h_fvv: h_fvv.unwrap_or(d.h_fvv),
                factor: factor.unwrap_or(d.factor),
                x_scale,
                rank_rtol: rank_rtol.unwrap_or(d.rank_rtol),
                absolute_sigma,
            },
        })
    }
}

fn slice<'a>(name: &str, a: &'a PyReadonlyArray1<'_, f64>) -> PyResult<&'a [f64]> {
    a.as_slice()
        .map_err(|_| ShapeError::new_err(format!("{name} must be a contiguous 1-D float64 array")))
}

fn report_dict<'py>(py: Python<'py>, rep: LmReport) -> PyResult<Bound<'py, PyDict>> {
    let n = rep.x.len();
    let m = rep.fun.len();
    let d = PyDict::new(py);
    d.set_item("x", PyArray1::from_vec(py, rep.x))?;
    d.set_item("fun", PyArray1::from_vec(py, rep.fun))?;
    // Core keeps the Jacobian column-major (n × m when read row-major): hand back (m, n).
    let jac = PyArray1::from_vec(py, rep.jac).reshape([n, m])?;
    d.set_item("jac", jac.call_method0("transpose")?.call_method0("copy")?)?;
    d.set_item("cov", PyArray1::from_vec(py, rep.cov).reshape([n, n])?)?;
    d.set_item("cost", rep.cost)?;
    d.set_item("optimality", rep.optimality)?;
    d.set_item("nfev", rep.nfev)?;
    d.set_item("njev", rep.njev)?;
    d.set_item("niter", rep.niter)?;
    d.set_item("status", rep.status.code())?;
    d.set_item("success", rep.status.success())?;
    d.set_item("message", rep.message)?;
    d.set_item("rank", rep.rank)?;
    d.set_item("inestimable", rep.inestimable)?;
    d.set_item("vanished", rep.vanished)?;
    d.set_item("active_bounds", rep.active_bounds)?;
    Ok(d)
}

fn batch_dict<'py>(py: Python<'py>, res: BatchResult) -> PyResult<Bound<'py, PyDict>> {
    let k = res.cost.len();
    let n = res.n_params;
    let d = PyDict::new(py);
    d.set_item("best", res.best())?;
    d.set_item("x", PyArray1::from_vec(py, res.x).reshape([k, n])?)?;
    d.set_item(
        "stderr",
        PyArray1::from_vec(py, res.stderr).reshape([k, n])?,
    )?;
    d.set_item("cost", PyArray1::from_vec(py, res.cost))?;
    d.set_item("status", PyArray1::from_vec(py, res.status))?;
    d.set_item("nfev", PyArray1::from_vec(py, res.nfev))?;
    Ok(d)
}

/// Minimise `½ Σ ρ(fun(x, *args)²)` from `x0` (`m` = length of `fun(x0)`, found by the caller).
#[pyfunction]
#[pyo3(signature = (fun, x0, m, jac, args, options))]
fn least_squares<'py>(
    py: Python<'py>,
    fun: Py<PyAny>,
    x0: PyReadonlyArray1<'py, f64>,
    m: usize,
    jac: Option<Py<PyAny>>,
    args: Py<PyTuple>,
    options: &SolverOptions,
) -> PyResult<Bound<'py, PyDict>> {
    let x0 = slice("x0", &x0)?;
    let mut problem = PyProblem::new(fun, jac, args, m, x0.len());
    let res = py.detach(|| solve(&mut problem, x0, &options.inner));
    match res {
        Ok(rep) => report_dict(py, rep),
        Err(e) => Err(problem.error.into_pyerr(py, e)),
    }
}

/// Fit a Python model `f(xdata, *p)` to `ydata` (weighted by `sigma`) from `p0`.
#[pyfunction]
#[pyo3(signature = (f, xdata, ydata, p0, sigma, jac, options))]
fn curve_fit<'py>(
    py: Python<'py>,
    f: Py<PyAny>,
    xdata: Py<PyAny>,
    ydata: PyReadonlyArray1<'py, f64>,
    p0: PyReadonlyArray1<'py, f64>,
    sigma: Option<PyReadonlyArray1<'py, f64>>,
    jac: Option<Py<PyAny>>,
    options: &SolverOptions,
) -> PyResult<Bound<'py, PyDict>> {
    let y = slice("ydata", &ydata)?;
    let p0 = slice("p0", &p0)?;
    let sigma = match &sigma {
        Some(s) => Some(slice("sigma", s)?),
        None => None,
    };
    let model = PyModel::new(f, jac, xdata, y.len(), p0.len());
    let mut problem = CurveProblem::new(model, y, sigma).py()?;
    let res = py.detach(|| solve(&mut problem, p0, &options.inner));
    match res {
        Ok(rep) => report_dict(py, rep),
        Err(e) => Err(problem.into_model().error.into_pyerr(py, e)),
    }
}

/// Fit built-in law `law` to inputs `x` (flat, `n_inputs × m` row-major) and `ydata`.
#[pyfunction]
#[pyo3(signature = (law, x, ydata, p0, sigma, options))]
fn fit_law<'py>(
    py: Python<'py>,
    law: &str,
    x: PyReadonlyArray1<'py, f64>,
    ydata: PyReadonlyArray1<'py, f64>,
    p0: PyReadonlyArray1<'py, f64>,
    sigma: Option<PyReadonlyArray1<'py, f64>>,
    options: &SolverOptions,
) -> PyResult<Bound<'py, PyDict>> {
    let law = Law::from_name(law).py()?;
    let (x, y, p0) = (
        slice("xdata", &x)?,
        slice("ydata", &ydata)?,
        slice("p0", &p0)?,
    );
    let sigma = match &sigma {
        Some(s) => Some(slice("sigma", s)?),
        None => None,
    };
    let rep = py
        .detach(|| batch::fit_law(law, x, y, sigma, p0, &options.inner))
        .py()?;
    report_dict(py, rep)
}

/// Fit one law to many datasets in parallel; row `k` of `p0` starts dataset `k`.
#[pyfunction]
#[pyo3(signature = (law, xs, ys, sigmas, p0, options, n_threads=0))]
fn fit_many<'py>(
    py: Python<'py>,
    law: &str,
    xs: Vec<PyReadonlyArray1<'py, f64>>,
    ys: Vec<PyReadonlyArray1<'py, f64>>,
    sigmas: Option<Vec<PyReadonlyArray1<'py, f64>>>,
    p0: PyReadonlyArray2<'py, f64>,
    options: &SolverOptions,
    n_threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let law = Law::from_name(law).py()?;
    let k = xs.len();
    let n = law.n_params();
    if ys.len() != k || sigmas.as_ref().is_some_and(|s| s.len() != k) || p0.shape() != [k, n] {
        return Err(ShapeError::new_err(format!(
            "fit_many needs {k} xdata, ydata, sigma arrays and p0 of shape ({k}, {n}); got {} ydata and p0 of shape {:?}",
            ys.len(),
            p0.shape()
        )));
    }
    let p0 = p0
        .as_slice()
        .map_err(|_| ShapeError::new_err("p0 must be C-contiguous"))?;
    let mut data = Vec::with_capacity(k);
    for i in 0..k {
        data.push(Dataset {
            x: slice("xdata", &xs[i])?,
            y: slice("ydata", &ys[i])?,
            sigma: match &sigmas {
                Some(s) => Some(slice("sigma", &s[i])?),
                None => None,
            },
            x0: &p0[i * n..(i + 1) * n],
        });
    }
    let res = py
        .detach(|| batch::fit_many(law, &data, &options.inner, n_threads))
        .py()?;
    batch_dict(py, res)
}

/// Bootstrap: refit `law` on `n_resamples` resamples (stream `i` of `seed` for resample `i`).
#[pyfunction]
#[pyo3(signature = (law, x, ydata, sigma, p0, n_resamples, seed, options, n_threads=0))]
fn bootstrap_fit<'py>(
    py: Python<'py>,
    law: &str,
    x: PyReadonlyArray1<'py, f64>,
    ydata: PyReadonlyArray1<'py, f64>,
    sigma: Option<PyReadonlyArray1<'py, f64>>,
    p0: PyReadonlyArray1<'py, f64>,
    n_resamples: usize,
    seed: u64,
    options: &SolverOptions,
    n_threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let law = Law::from_name(law).py()?;
    let (x, y, p0) = (
        slice("xdata", &x)?,
        slice("ydata", &ydata)?,
        slice("p0", &p0)?,
    );
    let sigma = match &sigma {
        Some(s) => Some(slice("sigma", s)?),
        None => None,
    };
    let res = py
        .detach(|| {
            batch::bootstrap(
                law,
                x,
                y,
                sigma,
                p0,
                n_resamples,
                seed,
                &options.inner,
                n_threads,
            )
        })
        .py()?;
    batch_dict(py, res)
}

/// Fit `law` from every row of `starts` (shape `(k, n_params)`), in parallel.
#[pyfunction]
#[pyo3(signature = (law, x, ydata, sigma, starts, options, n_threads=0))]
fn multi_start<'py>(
    py: Python<'py>,
    law: &str,
    x: PyReadonlyArray1<'py, f64>,
    ydata: PyReadonlyArray1<'py, f64>,
    sigma: Option<PyReadonlyArray1<'py, f64>>,
    starts: PyReadonlyArray2<'py, f64>,
    options: &SolverOptions,
    n_threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let law = Law::from_name(law).py()?;
    let (x, y) = (slice("xdata", &x)?, slice("ydata", &ydata)?);
    let sigma = match &sigma {
        Some(s) => Some(slice("sigma", s)?),
        None => None,
    };
    if starts.shape()[1] != law.n_params() {
        return Err(ShapeError::new_err(format!(
            "starts must have shape (k, {}), got {:?}",
            law.n_params(),
            starts.shape()
        )));
    }
    let starts = starts
        .as_slice()
        .map_err(|_| ShapeError::new_err("starts must be C-contiguous"))?;
    let res = py
        .detach(|| batch::multi_start(law, x, y, sigma, starts, &options.inner, n_threads))
        .py()?;
    batch_dict(py, res)
}

/// Evaluate built-in law `law` at inputs `x` (flat, `n_inputs × m` row-major).
#[pyfunction]
fn law_eval<'py>(
    py: Python<'py>,
    law: &str,
    x: PyReadonlyArray1<'py, f64>,
    params: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let law = Law::from_name(law).py()?;
    let (x, params) = (slice("xdata", &x)?, slice("params", &params)?);
    let out = py.detach(|| laws::evaluate(law, x, params)).py()?;
    Ok(PyArray1::from_vec(py, out))
}

/// `(param_names, n_inputs)` of a built-in law.
#[pyfunction]
fn law_info(law: &str) -> PyResult<(Vec<&'static str>, usize)> {
    let law = Law::from_name(law).py()?;
    Ok((law.param_names().to_vec(), law.n_inputs()))
}

/// Names of all built-in laws.
#[pyfunction]
fn law_names() -> Vec<&'static str> {
    Law::ALL.iter().map(|l| l.name()).collect()
}

/// The resampling indices `bootstrap_fit` uses, shape `(n_resamples, m)`.
#[pyfunction]
fn bootstrap_indices(
    py: Python<'_>,
    m: usize,
    n_resamples: usize,
    seed: u64,
) -> PyResult<Bound<'_, PyArray2<i64>>> {
    // Allocated by NumPy and filled with the GIL released.
    let out = PyArray2::<i64>::zeros(py, [n_resamples, m], false);
    {
        let mut view = out.readwrite();
        let flat = view
            .as_slice_mut()
            .map_err(|_| ShapeError::new_err("internal: output array is not contiguous"))?;
        py.detach(|| {
            if m > 0 {
                for (i, row) in flat.chunks_mut(m).enumerate() {
                    for (o, v) in row.iter_mut().zip(resample_indices(seed, i as u64, m)) {
                        *o = v as i64;
                    }
                }
            }
        });
    }
    Ok(out)
}

/// Add the fitting functions and classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SolverOptions>()?;
    m.add_function(wrap_pyfunction!(least_squares, m)?)?;
    m.add_function(wrap_pyfunction!(curve_fit, m)?)?;
    m.add_function(wrap_pyfunction!(fit_law, m)?)?;
    m.add_function(wrap_pyfunction!(fit_many, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_fit, m)?)?;
    m.add_function(wrap_pyfunction!(multi_start, m)?)?;
    m.add_function(wrap_pyfunction!(law_eval, m)?)?;
    m.add_function(wrap_pyfunction!(law_info, m)?)?;
    m.add_function(wrap_pyfunction!(law_names, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_indices, m)?)?;
    Ok(())
}
