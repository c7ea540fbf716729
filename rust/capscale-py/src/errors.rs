//! One exhaustive mapping from core errors to the Python exception hierarchy of
//! `capscale.errors`.

use capscale_core::CoreError;
use pyo3::PyErr;

pyo3::import_exception!(capscale.errors, ShapeError);
pyo3::import_exception!(capscale.errors, NonFiniteError);
pyo3::import_exception!(capscale.errors, FormatError);
pyo3::import_exception!(capscale.errors, InvalidInputError);
pyo3::import_exception!(capscale.errors, UnknownNameError);
pyo3::import_exception!(capscale.errors, FitError);

/// Convert a core error into the matching `capscale.errors` exception.
pub fn to_pyerr(err: CoreError) -> PyErr {
    match err {
        CoreError::Shape(m) => ShapeError::new_err(m),
        CoreError::NonFinite(m) => NonFiniteError::new_err(m),
        CoreError::Truncated(m) => FormatError::new_err(m),
        CoreError::UnknownName(m) => UnknownNameError::new_err(m),
        CoreError::InvalidArgument(m) => InvalidInputError::new_err(m),
        CoreError::Callback(m) => FitError::new_err(m),
    }
}

/// `Result` adapter: `core_call().map_err(to_pyerr)`.
pub trait IntoPyResult<T> {
    /// Map the error into a Python exception.
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, CoreError> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_pyerr)
    }
}
