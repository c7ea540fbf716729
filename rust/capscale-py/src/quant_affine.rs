//! Bindings of `capscale_core::dequant::affine`: affine group quantization ("fake quant") and
//! its dequantization. Arrays are allocated by NumPy on the Python side and filled here with
//! the GIL released.

use crate::errors::{IntoPyResult, InvalidInputError};
use crate::outbuf::with_out;
use capscale_core::dequant::affine::{self, AffineOutputs, AffineParams, Convention, Rounding};
use capscale_core::dequant::output::OutSlice;
use numpy::{
    PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// A C-contiguous array of `T` (any shape), or an `InvalidInputError` naming `what`.
fn readonly<'py, T: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    want: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let bad = || {
        let dtype = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| "?".into());
        InvalidInputError::new_err(format!(
            "{what} must be a C-contiguous {want} array, got dtype {dtype}"
        ))
    };
    let arr = obj
        .extract::<PyReadonlyArrayDyn<'py, T>>()
        .map_err(|_| bad())?;
    if !arr.is_c_contiguous() {
        return Err(bad());
    }
    Ok(arr)
}

/// A writeable C-contiguous array of `T` (any shape). Cast, then `try_readwrite`: extracting
/// a read-only array as `PyReadwriteArrayDyn` panics in rust-numpy (as in `outbuf::with_out`).
fn writeable<'py, T: numpy::Element>(
    obj: Option<&Bound<'py, PyAny>>,
    what: &str,
    want: &str,
) -> PyResult<Option<PyReadwriteArrayDyn<'py, T>>> {
    let Some(obj) = obj else { return Ok(None) };
    let bad = || {
        InvalidInputError::new_err(format!(
            "{what} must be a writeable C-contiguous {want} array"
        ))
    };
    let arr = obj
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| bad())?
        .try_readwrite()
        .map_err(|_| bad())?;
    if !arr.is_c_contiguous() {
        return Err(bad());
    }
    Ok(Some(arr))
}

fn params(
    convention: &str,
    bits: u32,
    group_size: usize,
    rounding: &str,
    eps: f64,
    allow_nonfinite: bool,
) -> PyResult<AffineParams> {
    Ok(AffineParams {
        convention: Convention::from_name(convention).py()?,
        bits,
        group_size,
        rounding: Rounding::from_name(rounding).py()?,
        eps,
        allow_nonfinite,
    })
}

/// Affine group quantization of float32 `x` (rows of `row_len`): fills any of `out`
/// (fake-quantized values as `dtype`), `codes` (uint8), `scales` and `zeros` (float32).
#[pyfunction]
#[pyo3(signature = (
    x, row_len, convention, bits, group_size, rounding, eps, allow_nonfinite,
    out=None, dtype="float32", codes=None, scales=None, zeros=None, n_threads=0
))]
fn affine_quantize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    row_len: usize,
    convention: &str,
    bits: u32,
    group_size: usize,
    rounding: &str,
    eps: f64,
    allow_nonfinite: bool,
    out: Option<&Bound<'py, PyAny>>,
    dtype: &str,
    codes: Option<&Bound<'py, PyAny>>,
    scales: Option<&Bound<'py, PyAny>>,
    zeros: Option<&Bound<'py, PyAny>>,
    n_threads: usize,
) -> PyResult<()> {
    let p = params(convention, bits, group_size, rounding, eps, allow_nonfinite)?;
    let x = readonly::<f32>(x, "x", "float32")?;
    let src = x.as_slice()?;
    let mut codes = writeable::<u8>(codes, "codes", "uint8")?;
    let mut scales = writeable::<f32>(scales, "scales", "float32")?;
    let mut zeros = writeable::<f32>(zeros, "zeros", "float32")?;
    let codes = match codes.as_mut() {
        Some(a) => Some(a.as_slice_mut()?),
        None => None,
    };
    let scales = match scales.as_mut() {
        Some(a) => Some(a.as_slice_mut()?),
        None => None,
    };
    let zeros = match zeros.as_mut() {
        Some(a) => Some(a.as_slice_mut()?),
        None => None,
    };
    match out {
        Some(out) => with_out(py, out, dtype, src.len(), |values| {
            let outs = AffineOutputs {
                values: Some(values),
                codes,
                scales,
                zeros,
            };
            affine::quantize(&p, src, row_len, outs, n_threads)
        }),
        None => {
            let outs = AffineOutputs {
                values: None,
                codes,
                scales,
                zeros,
            };
            py.detach(|| affine::quantize(&p, src, row_len, outs, n_threads))
                .py()
        }
    }
}

/// Dequantize `codes` with per-group `scales` and `zeros` into `out` (as `dtype`).
#[pyfunction]
#[pyo3(signature = (
    codes, scales, zeros, row_len, convention, bits, group_size, out, dtype="float32", n_threads=0
))]
fn affine_dequantize<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
    scales: &Bound<'py, PyAny>,
    zeros: &Bound<'py, PyAny>,
    row_len: usize,
    convention: &str,
    bits: u32,
    group_size: usize,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    n_threads: usize,
) -> PyResult<()> {
    let p = params(convention, bits, group_size, "half_even", 1.0, false)?;
    let codes = readonly::<u8>(codes, "codes", "uint8")?;
    let scales = readonly::<f32>(scales, "scales", "float32")?;
    let zeros = readonly::<f32>(zeros, "zeros", "float32")?;
    let (c, s, z) = (codes.as_slice()?, scales.as_slice()?, zeros.as_slice()?);
    with_out(py, out, dtype, c.len(), |dst: OutSlice<'_>| {
        affine::dequantize(&p, c, s, z, row_len, dst, n_threads)
    })
}

/// `(name, default scale_eps, symmetric, float zero)` of every affine convention.
#[pyfunction]
fn affine_conventions() -> Vec<(&'static str, f64, bool, bool)> {
    Convention::ALL
        .iter()
        .map(|c| (c.name(), c.default_eps(), c.symmetric(), c.float_zero()))
        .collect()
}

/// Add this module's functions to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(affine_quantize, m)?)?;
    m.add_function(wrap_pyfunction!(affine_dequantize, m)?)?;
    m.add_function(wrap_pyfunction!(affine_conventions, m)?)?;
    Ok(())
}
