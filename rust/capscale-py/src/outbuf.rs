//! Output buffers of the dequantization bindings: NumPy allocates them (Python side, so large
//! outputs get NumPy's huge-page-aware allocator, or the caller's reused `out=` array) and the
//! kernels fill them with the GIL released.
//!
//! Python passes a C-contiguous array and a dtype name: `"float32"` with a float32 array, or
//! `"float16"` / `"bfloat16"` with a uint16 array holding the bit patterns (a float16 array is
//! passed as `arr.view(np.uint16)`).

use crate::errors::{IntoPyResult, InvalidInputError, ShapeError};
use capscale_core::dequant::output::{as_bf16_mut, as_f16_mut, OutSlice};
use capscale_core::CoreResult;
use numpy::{PyArrayDyn, PyArrayMethods};
use pyo3::prelude::*;

/// Run `fill` on the output array `out` (dtype name `dtype`, `n` elements), GIL released.
pub fn with_out<'py, R: Send>(
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    n: usize,
    fill: impl FnOnce(OutSlice<'_>) -> CoreResult<R> + Send,
) -> PyResult<R> {
    let bad = |want: &str| {
        let got = out
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| "?".into());
        InvalidInputError::new_err(format!(
            "out must be a writeable C-contiguous {want} array for dtype {dtype:?}, got {got}"
        ))
    };
    let read_only = || {
        InvalidInputError::new_err(format!(
            "out must be a writeable C-contiguous array for dtype {dtype:?}: it is read-only"
        ))
    };
    let check_len = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(ShapeError::new_err(format!(
                "out has {len} elements, the data holds {n}"
            )))
        }
    };
    match dtype {
        "float32" => {
            // try_readwrite, not extract: extracting a read-only array panics in rust-numpy
            let mut arr = out
                .cast::<PyArrayDyn<f32>>()
                .map_err(|_| bad("float32"))?
                .try_readwrite()
                .map_err(|_| read_only())?;
            let dst = arr.as_slice_mut().map_err(|_| bad("float32"))?;
            check_len(dst.len())?;
            py.detach(|| fill(OutSlice::F32(dst))).py()
        }
        "float16" | "bfloat16" => {
            let mut arr = out
                .cast::<PyArrayDyn<u16>>()
                .map_err(|_| bad("uint16 (bit patterns)"))?
                .try_readwrite()
                .map_err(|_| read_only())?;
            let dst = arr
                .as_slice_mut()
                .map_err(|_| bad("uint16 (bit patterns)"))?;
            check_len(dst.len())?;
            if dtype == "float16" {
                py.detach(|| fill(OutSlice::F16(as_f16_mut(dst)))).py()
            } else {
                py.detach(|| fill(OutSlice::Bf16(as_bf16_mut(dst)))).py()
            }
        }
        other => Err(InvalidInputError::new_err(format!(
            "output dtype must be float32, float16 or bfloat16, got {other:?}"
        ))),
    }
}
