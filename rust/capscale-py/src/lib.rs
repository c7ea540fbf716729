//! `capscale._native`: thin PyO3 bindings over capscale-core. Extract and validate, release
//! the GIL for the work, convert back — no arithmetic lives here.

// Binding signatures mirror the Python API (SciPy-style keyword arguments).
#![allow(clippy::too_many_arguments)]

mod callbacks;
mod errors;
mod fit;
mod outbuf;
mod quant;
mod quant_affine;
mod quant_packed;
mod stats;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    fit::register(m)?;
    stats::register(m)?;
    quant::register(m)?;
    quant_packed::register(m)?;
    quant_affine::register(m)?;
    Ok(())
}
