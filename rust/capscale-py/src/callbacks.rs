//! Python callables seen by the core solver as `Problem`/`Model`. The solver runs with the GIL
//! released; each evaluation re-attaches, makes one vectorised call and copies the result.
//! A Python exception is kept and re-raised (as the cause of a `FitError`) after the solve.

use crate::errors::{FitError, ShapeError};
use capscale_core::fit::{Model, Problem};
use capscale_core::{CoreError, CoreResult};
use numpy::{PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

static ASCONTIGUOUSARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Convert the return value of a user callable to a contiguous float64 array (returned as is
/// when it already is one, the common case).
fn as_f64_array<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(arr) = obj.cast::<PyArray1<f64>>() {
        if arr.is_c_contiguous() {
            return Ok(obj.clone());
        }
    }
    let f = ASCONTIGUOUSARRAY.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("numpy")?.getattr("ascontiguousarray")?.unbind())
    })?;
    f.bind(py).call1((obj, "float64"))
}

/// Shared state of a callback: the first Python error raised inside the solve.
#[derive(Default)]
pub struct CallbackError {
    err: Option<PyErr>,
}

impl CallbackError {
    fn keep(&mut self, what: &str, err: PyErr) -> CoreError {
        let msg = Python::attach(|py| format!("{what} raised {}", err.value(py)));
        if self.err.is_none() {
            self.err = Some(err);
        }
        CoreError::Callback(msg)
    }

    /// Turn a core error into the Python exception to raise: the user's own exception wrapped
    /// in `FitError` (as its `__cause__`), or the mapped core error.
    pub fn into_pyerr(self, py: Python<'_>, err: CoreError) -> PyErr {
        match (err, self.err) {
            (CoreError::Callback(msg), Some(orig)) => {
                // Shape errors found while converting keep their own type, and KeyboardInterrupt
                // or SystemExit (not Exception subclasses) propagate untouched.
                if orig.is_instance_of::<ShapeError>(py)
                    || !orig.is_instance_of::<pyo3::exceptions::PyException>(py)
                {
                    return orig;
                }
                let e = FitError::new_err(msg);
                e.set_cause(py, Some(orig));
                e
            }
            (other, _) => crate::errors::to_pyerr(other),
        }
    }
}

/// Copy a 1-D result of length `m` into `out`.
fn copy_vector(
    py: Python<'_>,
    what: &str,
    value: &Bound<'_, PyAny>,
    out: &mut [f64],
) -> PyResult<()> {
    let arr = as_f64_array(py, value)?;
    let arr: PyReadonlyArray1<f64> = arr.extract().map_err(|_| {
        let shape = arr
            .getattr("shape")
            .map(|s| s.to_string())
            .unwrap_or_default();
        ShapeError::new_err(format!(
            "{what} must return a 1-D array of {} values, got shape {shape}",
            out.len()
        ))
    })?;
    if arr.len() != out.len() {
        return Err(ShapeError::new_err(format!(
            "{what} must return {} values (one per residual / ydata point), got {}",
            out.len(),
            arr.len()
        )));
    }
    out.copy_from_slice(arr.as_slice()?);
    Ok(())
}

/// Copy a row-major `(m, n)` Jacobian into column-major `out`.
fn copy_jacobian(
    py: Python<'_>,
    what: &str,
    value: &Bound<'_, PyAny>,
    m: usize,
    n: usize,
    out: &mut [f64],
) -> PyResult<()> {
    let arr = as_f64_array(py, value)?;
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    if shape != [m, n] {
        return Err(ShapeError::new_err(format!(
            "{what} must return an array of shape ({m}, {n}), got {shape:?}"
        )));
    }
    let flat: PyReadonlyArray1<f64> = arr.call_method0("ravel")?.extract()?;
    let flat = flat.as_slice()?;
    for i in 0..m {
        for j in 0..n {
            out[j * m + i] = flat[i * n + j];
        }
    }
    Ok(())
}

/// `least_squares`' residual function `fun(x, *args) -> (m,)` and optional `jac(x, *args) -> (m, n)`.
pub struct PyProblem {
    fun: Py<PyAny>,
    jac: Option<Py<PyAny>>,
    args: Py<PyTuple>,
    m: usize,
    n: usize,
    /// The first Python error raised by a callback.
    pub error: CallbackError,
}

impl PyProblem {
    /// Wrap the callables; `m` is the length of `fun(x0)`, found by the caller.
    pub fn new(
        fun: Py<PyAny>,
        jac: Option<Py<PyAny>>,
        args: Py<PyTuple>,
        m: usize,
        n: usize,
    ) -> Self {
        Self {
            fun,
            jac,
            args,
            m,
            n,
            error: CallbackError::default(),
        }
    }

    fn call(&self, py: Python<'_>, f: &Py<PyAny>, x: &[f64]) -> PyResult<Py<PyAny>> {
        let mut items: Vec<Bound<'_, PyAny>> = vec![PyArray1::from_slice(py, x).into_any()];
        items.extend(self.args.bind(py).iter());
        let args = PyTuple::new(py, items)?;
        Ok(f.bind(py).call1(args)?.unbind())
    }
}

impl Problem for PyProblem {
    fn n_residuals(&self) -> usize {
        self.m
    }
    fn n_params(&self) -> usize {
        self.n
    }
    fn residuals(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<()> {
        let res = Python::attach(|py| {
            let v = self.call(py, &self.fun, x)?;
            copy_vector(py, "fun", v.bind(py), out)
        });
        res.map_err(|e| self.error.keep("fun", e))
    }
    fn jacobian(&mut self, x: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        let Some(jac) = &self.jac else {
            return Ok(false);
        };
        let res = Python::attach(|py| {
            let v = self.call(py, jac, x)?;
            copy_jacobian(py, "jac", v.bind(py), self.m, self.n, out)
        });
        res.map(|_| true).map_err(|e| self.error.keep("jac", e))
    }
    fn has_jacobian(&self) -> bool {
        self.jac.is_some()
    }
}

/// `curve_fit`'s model `f(xdata, *p) -> (m,)` and optional `jac(xdata, *p) -> (m, n)`.
pub struct PyModel {
    f: Py<PyAny>,
    jac: Option<Py<PyAny>>,
    xdata: Py<PyAny>,
    m: usize,
    n: usize,
    /// The first Python error raised by a callback.
    pub error: CallbackError,
}

impl PyModel {
    /// Wrap a model of `n` parameters evaluated at `xdata` (`m` points).
    pub fn new(f: Py<PyAny>, jac: Option<Py<PyAny>>, xdata: Py<PyAny>, m: usize, n: usize) -> Self {
        Self {
            f,
            jac,
            xdata,
            m,
            n,
            error: CallbackError::default(),
        }
    }

    fn call(&self, py: Python<'_>, f: &Py<PyAny>, p: &[f64]) -> PyResult<Py<PyAny>> {
        let mut items: Vec<Bound<'_, PyAny>> = vec![self.xdata.bind(py).clone()];
        for v in p {
            items.push(v.into_pyobject(py)?.into_any());
        }
        let args = PyTuple::new(py, items)?;
        Ok(f.bind(py).call1(args)?.unbind())
    }
}

impl Model for PyModel {
    fn n_points(&self) -> usize {
        self.m
    }
    fn n_params(&self) -> usize {
        self.n
    }
    fn eval(&mut self, p: &[f64], out: &mut [f64]) -> CoreResult<()> {
        let res = Python::attach(|py| {
            let v = self.call(py, &self.f, p)?;
            copy_vector(py, "the model function", v.bind(py), out)
        });
        res.map_err(|e| self.error.keep("the model function", e))
    }
    fn jacobian(&mut self, p: &[f64], out: &mut [f64]) -> CoreResult<bool> {
        let Some(jac) = &self.jac else {
            return Ok(false);
        };
        let res = Python::attach(|py| {
            let v = self.call(py, jac, p)?;
            copy_jacobian(py, "jac", v.bind(py), self.m, self.n, out)
        });
        res.map(|_| true).map_err(|e| self.error.keep("jac", e))
    }
    fn has_jacobian(&self) -> bool {
        self.jac.is_some()
    }
}
