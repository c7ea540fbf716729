//! Bindings of `capscale_core::stats`: closed-form aggregates, bootstrap intervals, paired
//! differences and clembench's aggregation.

use crate::errors::{IntoPyResult, ShapeError};
use capscale_core::stats::aggregate::{self, Summary};
use capscale_core::stats::bootstrap::{
    self, BootstrapOptions, CiMethod, Design, Interval, Statistic,
};
use capscale_core::stats::clem;
use capscale_core::CoreError;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

type F64s<'py> = PyReadonlyArray1<'py, f64>;
type Labels<'py> = PyReadonlyArray1<'py, u32>;

fn sl<'a, T: numpy::Element>(name: &str, a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| ShapeError::new_err(format!("{name} must be a contiguous 1-D array")))
}

fn opt<'a, T: numpy::Element>(
    name: &str,
    a: &'a Option<PyReadonlyArray1<'_, T>>,
) -> PyResult<Option<&'a [T]>> {
    a.as_ref().map(|a| sl(name, a)).transpose()
}

fn statistic(name: &str) -> PyResult<Statistic> {
    match name {
        "micro" => Ok(Statistic::Micro),
        "macro" => Ok(Statistic::Macro),
        _ => Err(crate::errors::to_pyerr(CoreError::UnknownName(format!(
            "unknown average {name:?}; expected 'micro' or 'macro'"
        )))),
    }
}

fn summary_tuple(s: Summary) -> (usize, f64, f64) {
    (s.n, s.mean, s.stderr)
}

fn interval_dict<'py>(py: Python<'py>, iv: &Interval) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("estimate", iv.estimate)?;
    d.set_item("low", iv.low)?;
    d.set_item("high", iv.high)?;
    d.set_item("boot_se", iv.boot_se)?;
    d.set_item("n_valid", iv.n_valid)?;
    Ok(d)
}

/// `(n, mean, stderr)` of `values` (optionally weighted).
#[pyfunction]
#[pyo3(signature = (values, weights=None))]
fn summarize(values: F64s<'_>, weights: Option<F64s<'_>>) -> PyResult<(usize, f64, f64)> {
    let s = aggregate::summarize(sl("values", &values)?, opt("weights", &weights)?).py()?;
    Ok(summary_tuple(s))
}

/// Per-group `(n, mean, stderr)` arrays for labels `0..k`.
#[pyfunction]
#[pyo3(signature = (values, groups, weights=None))]
fn summarize_groups<'py>(
    py: Python<'py>,
    values: F64s<'py>,
    groups: Labels<'py>,
    weights: Option<F64s<'py>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (v, g, w) = (
        sl("values", &values)?,
        sl("groups", &groups)?,
        opt("weights", &weights)?,
    );
    let res = py.detach(|| aggregate::summarize_groups(v, g, w)).py()?;
    let d = PyDict::new(py);
    d.set_item("n", PyArray1::from_iter(py, res.iter().map(|s| s.n as u64)))?;
    d.set_item("mean", PyArray1::from_iter(py, res.iter().map(|s| s.mean)))?;
    d.set_item(
        "stderr",
        PyArray1::from_iter(py, res.iter().map(|s| s.stderr)),
    )?;
    Ok(d)
}

/// lm-evaluation-harness's group aggregate of subtasks: `(n, mean, pooled stderr)`.
#[pyfunction]
fn pool_subtasks(
    n: Vec<usize>,
    mean: Vec<f64>,
    stderr: Vec<f64>,
    weight_by_size: bool,
) -> PyResult<(usize, f64, f64)> {
    if mean.len() != n.len() || stderr.len() != n.len() {
        return Err(ShapeError::new_err(
            "n, mean and stderr must have the same length",
        ));
    }
    let subs: Vec<Summary> = (0..n.len())
        .map(|i| Summary {
            n: n[i],
            mean: mean[i],
            stderr: stderr[i],
        })
        .collect();
    Ok(summary_tuple(
        aggregate::pool_subtasks(&subs, weight_by_size).py()?,
    ))
}

/// `(x − baseline)/(max − baseline)`.
#[pyfunction]
fn normalize<'py>(
    py: Python<'py>,
    values: F64s<'py>,
    baseline: f64,
    max: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let out = aggregate::normalize(sl("values", &values)?, baseline, max).py()?;
    Ok(PyArray1::from_vec(py, out))
}

struct DesignArgs<'py> {
    weights: Option<F64s<'py>>,
    strata: Option<Labels<'py>>,
    clusters: Option<Labels<'py>>,
}

impl DesignArgs<'_> {
    fn design(&self, average: &str) -> PyResult<Design<'_>> {
        Ok(Design {
            weights: opt("weights", &self.weights)?,
            strata: opt("strata", &self.strata)?,
            clusters: opt("clusters", &self.clusters)?,
            statistic: statistic(average)?,
        })
    }
}

fn options(
    n_resamples: usize,
    seed: u64,
    level: f64,
    method: &str,
    n_threads: usize,
) -> PyResult<BootstrapOptions> {
    Ok(BootstrapOptions {
        n_resamples,
        seed,
        level,
        method: CiMethod::from_name(method).py()?,
        n_threads,
    })
}

/// Bootstrap interval of the mean of `values` (see `capscale.stats.bootstrap_mean`).
#[pyfunction]
#[pyo3(signature = (values, weights=None, strata=None, clusters=None, average="micro",
    n_resamples=10_000, seed=0, level=0.95, method="percentile", n_threads=0))]
fn bootstrap_mean<'py>(
    py: Python<'py>,
    values: F64s<'py>,
    weights: Option<F64s<'py>>,
    strata: Option<Labels<'py>>,
    clusters: Option<Labels<'py>>,
    average: &str,
    n_resamples: usize,
    seed: u64,
    level: f64,
    method: &str,
    n_threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let args = DesignArgs {
        weights,
        strata,
        clusters,
    };
    let design = args.design(average)?;
    let opts = options(n_resamples, seed, level, method, n_threads)?;
    let v = sl("values", &values)?;
    let iv = py
        .detach(|| bootstrap::bootstrap_mean(v, &design, &opts))
        .py()?;
    interval_dict(py, &iv)
}

/// Per-group bootstrap intervals (group `k` uses streams `k·B .. (k+1)·B`).
#[pyfunction]
#[pyo3(signature = (values, groups, weights=None, strata=None, clusters=None, average="micro",
    n_resamples=10_000, seed=0, level=0.95, method="percentile", n_threads=0))]
fn bootstrap_groups<'py>(
    py: Python<'py>,
    values: F64s<'py>,
    groups: Labels<'py>,
    weights: Option<F64s<'py>>,
    strata: Option<Labels<'py>>,
    clusters: Option<Labels<'py>>,
    average: &str,
    n_resamples: usize,
    seed: u64,
    level: f64,
    method: &str,
    n_threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let args = DesignArgs {
        weights,
        strata,
        clusters,
    };
    let design = args.design(average)?;
    let opts = options(n_resamples, seed, level, method, n_threads)?;
    let (v, g) = (sl("values", &values)?, sl("groups", &groups)?);
    let res = py
        .detach(|| bootstrap::bootstrap_groups(v, g, &design, &opts))
        .py()?;
    let d = PyDict::new(py);
    d.set_item(
        "estimate",
        PyArray1::from_iter(py, res.iter().map(|i| i.estimate)),
    )?;
    d.set_item("low", PyArray1::from_iter(py, res.iter().map(|i| i.low)))?;
    d.set_item("high", PyArray1::from_iter(py, res.iter().map(|i| i.high)))?;
    d.set_item(
        "boot_se",
        PyArray1::from_iter(py, res.iter().map(|i| i.boot_se)),
    )?;
    Ok(d)
}

/// Paired bootstrap of `a − b` with a two-sided p-value.
#[pyfunction]
#[pyo3(signature = (a, b, weights=None, strata=None, clusters=None, average="micro",
    n_resamples=10_000, seed=0, level=0.95, method="percentile", n_threads=0))]
fn paired_difference<'py>(
    py: Python<'py>,
    a: F64s<'py>,
    b: F64s<'py>,
    weights: Option<F64s<'py>>,
    strata: Option<Labels<'py>>,
    clusters: Option<Labels<'py>>,
    average: &str,
    n_resamples: usize,
    seed: u64,
    level: f64,
    method: &str,
    n_threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let args = DesignArgs {
        weights,
        strata,
        clusters,
    };
    let design = args.design(average)?;
    let opts = options(n_resamples, seed, level, method, n_threads)?;
    let (a, b) = (sl("a", &a)?, sl("b", &b)?);
    let r = py
        .detach(|| bootstrap::paired_difference(a, b, &design, &opts))
        .py()?;
    let d = interval_dict(py, &r.diff)?;
    d.set_item("mean_a", r.mean_a)?;
    d.set_item("mean_b", r.mean_b)?;
    d.set_item("p_value", r.p_value)?;
    Ok(d)
}

/// clembench's row for one model: per-game arrays and the overall numbers.
#[pyfunction]
fn clem_table<'py>(
    py: Python<'py>,
    game: Labels<'py>,
    aborted: F64s<'py>,
    main_score: F64s<'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let t = clem::clem_table(
        sl("game", &game)?,
        sl("aborted", &aborted)?,
        sl("main_score", &main_score)?,
    )
    .py()?;
    let d = PyDict::new(py);
    d.set_item(
        "episodes",
        PyArray1::from_iter(py, t.games.iter().map(|g| g.episodes as u64)),
    )?;
    d.set_item(
        "played",
        PyArray1::from_iter(py, t.games.iter().map(|g| g.played)),
    )?;
    d.set_item(
        "quality",
        PyArray1::from_iter(py, t.games.iter().map(|g| g.quality)),
    )?;
    d.set_item(
        "quality_std",
        PyArray1::from_iter(py, t.games.iter().map(|g| g.quality_std)),
    )?;
    d.set_item("avg_played", t.avg_played)?;
    d.set_item("avg_quality", t.avg_quality)?;
    d.set_item("clemscore", t.clemscore)?;
    Ok(d)
}

/// Bootstrap replicates of the unrounded clemscore (episodes resampled within games).
#[pyfunction]
#[pyo3(signature = (game, aborted, main_score, n_resamples=10_000, seed=0, n_threads=0))]
fn clemscore_replicates<'py>(
    py: Python<'py>,
    game: Labels<'py>,
    aborted: F64s<'py>,
    main_score: F64s<'py>,
    n_resamples: usize,
    seed: u64,
    n_threads: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (g, a, s) = (
        sl("game", &game)?,
        sl("aborted", &aborted)?,
        sl("main_score", &main_score)?,
    );
    let reps = py
        .detach(|| clem::clemscore_replicates(g, a, s, n_resamples, seed, n_threads))
        .py()?;
    Ok(PyArray1::from_vec(py, reps))
}

/// Add the statistics functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(summarize, m)?)?;
    m.add_function(wrap_pyfunction!(summarize_groups, m)?)?;
    m.add_function(wrap_pyfunction!(pool_subtasks, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_mean, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_groups, m)?)?;
    m.add_function(wrap_pyfunction!(paired_difference, m)?)?;
    m.add_function(wrap_pyfunction!(clem_table, m)?)?;
    m.add_function(wrap_pyfunction!(clemscore_replicates, m)?)?;
    Ok(())
}
