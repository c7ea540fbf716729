//! Score aggregation with honest uncertainty: means and standard errors, bootstrap intervals
//! (percentile and BCa; simple, stratified and clustered designs; paired differences), and
//! clembench's aggregation (% played, quality, clemscore) with its exact rounding.

pub mod aggregate;
pub mod bootstrap;
pub mod clem;
pub mod normal;
