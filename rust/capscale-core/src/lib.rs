//! capscale-core: the pure-Rust kernels behind capscale (no PyO3 here).
//!
//! * [`fit`] — a Levenberg–Marquardt trust-region solver (pivoted QR, Moré scaling, box bounds,
//!   robust losses, geodesic acceleration, covariance), built-in scaling laws with analytic
//!   Jacobians, and deterministic batch fitting (many datasets, bootstrap, multi-start).
//! * [`rng`] — counter-seeded random streams so parallel resampling is thread-count independent.

pub mod error;
pub mod fit;
pub mod rng;

pub use error::{CoreError, CoreResult};
