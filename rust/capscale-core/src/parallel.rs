//! Deterministic data parallelism: indexed tasks on cached rayon pools. Task `i` always does
//! the same work (its own RNG stream), so results never depend on the thread count.

use crate::error::{CoreError, CoreResult};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Thread pools by size, built once and reused by every batch call.
static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();

fn pool(threads: usize) -> CoreResult<Arc<rayon::ThreadPool>> {
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CoreError::InvalidArgument(format!("cannot start a thread pool: {e}")))?;
    let p = Arc::new(p);
    pools.insert(threads, Arc::clone(&p));
    Ok(p)
}

/// Run `f` inside the pool of `n_threads` threads (0: `CAPSCALE_NUM_THREADS` or all cores),
/// so rayon's parallel iterators in `f` use that pool.
pub fn install<R: Send>(n_threads: usize, f: impl FnOnce() -> R + Send) -> CoreResult<R> {
    Ok(pool(resolve_threads(n_threads))?.install(f))
}

fn resolve_threads(n_threads: usize) -> usize {
    if n_threads > 0 {
        n_threads
    } else {
        std::env::var("CAPSCALE_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(0)
    }
}

/// Run `f` over `0..k` on a pool of `n_threads` (0: `CAPSCALE_NUM_THREADS` or all cores).
pub fn run_indexed<T: Send>(
    k: usize,
    n_threads: usize,
    f: impl Fn(usize) -> T + Sync + Send,
) -> CoreResult<Vec<T>> {
    Ok(pool(resolve_threads(n_threads))?.install(|| (0..k).into_par_iter().map(&f).collect()))
}
