//! capscale-core: the pure-Rust kernels behind capscale (no PyO3 here).
//!
//! * [`fit`] — a Levenberg–Marquardt trust-region solver (pivoted QR, Moré scaling, box bounds,
//!   robust losses, geodesic acceleration, covariance), built-in scaling laws with analytic
//!   Jacobians, and deterministic batch fitting (many datasets, bootstrap, multi-start).
//! * [`stats`] — score aggregation: means, standard errors, bootstrap intervals (percentile,
//!   BCa; stratified, clustered, paired) and clembench's % played / quality / clemscore.
//! * [`rng`], [`parallel`] — per-task random streams and cached thread pools, so parallel
//!   resampling is identical for any thread count.

pub mod dequant;
pub mod error;
pub mod fit;
pub mod parallel;
pub mod rng;
pub mod stats;

pub use error::{CoreError, CoreResult};
