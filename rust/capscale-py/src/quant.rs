//! Bindings of `capscale_core::dequant`: GGUF block types (outputs allocated by NumPy on the
//! Python side, or the caller's `out=` array, and filled with the GIL released).

use crate::errors::{IntoPyResult, InvalidInputError, ShapeError};
use crate::outbuf::with_out;
use capscale_core::dequant::gguf::{self, GgufType, Stores};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;

/// Extract a 1-D array of `T`, or an `InvalidInputError` naming what was given.
fn array1<'py, T: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    want: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    obj.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        let dtype = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_default();
        let shape = obj
            .getattr("shape")
            .map(|d| d.to_string())
            .unwrap_or_default();
        InvalidInputError::new_err(format!(
            "{what} must be a 1-D {want} array, got dtype {dtype:?} with shape {shape}"
        ))
    })
}

/// `(name, ggml id, block size, bytes per block)` of every supported GGUF type.
#[pyfunction]
fn gguf_types() -> Vec<(&'static str, u32, usize, usize)> {
    GgufType::ALL
        .iter()
        .map(|t| (t.name(), t.id(), t.block_size(), t.type_size()))
        .collect()
}

/// Dequantize a flat buffer of whole `ty` blocks into `out` (a NumPy-allocated, C-contiguous
/// float32 array, or uint16 for float16/bfloat16 bit patterns), GIL released. `reused` says
/// whether `out` is a caller's buffer (pages already mapped), for the `"auto"` store choice.
#[pyfunction]
#[pyo3(signature = (data, ty, out, dtype="float32", n_threads=0, reused=false, stores="auto"))]
fn gguf_dequantize<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    ty: &str,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    n_threads: usize,
    reused: bool,
    stores: &str,
) -> PyResult<()> {
    let ty = GgufType::from_name(ty).py()?;
    let stores = Stores::from_name(stores, reused).py()?;
    let data = array1::<u8>(data, "data", "uint8")?;
    let src = data
        .as_slice()
        .map_err(|_| ShapeError::new_err("data must be a contiguous 1-D uint8 array"))?;
    let n = gguf::n_blocks(ty, src.len()).py()? * ty.block_size();
    with_out(py, out, dtype, n, |dst| {
        gguf::dequantize_into(ty, src, dst, n_threads, stores)
    })
}

/// Quantize float32 values (a whole number of `ty` blocks) with the reference quantizer.
#[pyfunction]
fn gguf_quantize<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    ty: &str,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let ty = GgufType::from_name(ty).py()?;
    let values = array1::<f32>(values, "values", "float32")?;
    let src = values
        .as_slice()
        .map_err(|_| ShapeError::new_err("values must be a contiguous 1-D float32 array"))?;
    let n_bytes = src.len() / ty.block_size() * ty.type_size();
    let out = PyArray1::<u8>::zeros(py, n_bytes, false);
    {
        let mut view = out.readwrite();
        let dst = view
            .as_slice_mut()
            .map_err(|_| ShapeError::new_err("internal: output array is not contiguous"))?;
        py.detach(|| gguf::quantize(ty, src, dst)).py()?;
    }
    Ok(out)
}

/// Add the quantization functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gguf_types, m)?)?;
    m.add_function(wrap_pyfunction!(gguf_dequantize, m)?)?;
    m.add_function(wrap_pyfunction!(gguf_quantize, m)?)?;
    Ok(())
}
