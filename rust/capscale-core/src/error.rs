//! One typed error enum for the whole core. Messages name the argument and the numbers.

use std::fmt;

/// Every failure the core can report. Bindings map each variant to one Python exception.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// An array has the wrong length or shape.
    Shape(String),
    /// Input data (or a residual at the starting point) is NaN or infinite.
    NonFinite(String),
    /// A byte buffer is shorter than its declared contents.
    Truncated(String),
    /// A name (format, law, loss) is not known.
    UnknownName(String),
    /// An argument is outside its valid range (bounds, tolerances, counts).
    InvalidArgument(String),
    /// A user callback failed; the binding keeps the original exception.
    Callback(String),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Shape(m)
            | CoreError::NonFinite(m)
            | CoreError::Truncated(m)
            | CoreError::UnknownName(m)
            | CoreError::InvalidArgument(m)
            | CoreError::Callback(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CoreError {}

/// Shorthand for results of core functions.
pub type CoreResult<T> = Result<T, CoreError>;

/// Return `Shape` unless `len == expected`.
pub fn check_len(name: &str, len: usize, expected: usize) -> CoreResult<()> {
    if len == expected {
        Ok(())
    } else {
        Err(CoreError::Shape(format!(
            "{name} has length {len}, expected {expected}"
        )))
    }
}

/// Return `NonFinite` naming the first non-finite entry of `values`.
pub fn check_finite(name: &str, values: &[f64]) -> CoreResult<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(CoreError::NonFinite(format!(
            "{name} contains a non-finite value ({}) at index {i}",
            values[i]
        ))),
    }
}
