//! Nonlinear least squares: the Levenberg–Marquardt solver, built-in laws and batch fitting.

pub mod batch;
pub mod covariance;
pub mod laws;
pub mod linalg;
pub mod lm;
pub mod problem;
pub mod robust;

pub use lm::{solve, FdScheme, LmOptions, LmReport, Status};
pub use problem::{CurveProblem, Model, Problem};
pub use robust::{Loss, ScaledLoss};
