//! (in progress)

use pyo3::prelude::*;

/// Add this module's functions to the native module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
