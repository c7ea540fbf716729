"""capscale.stats against independent references.

* A pure-Python re-implementation of the random stream (SplitMix64-seeded xoshiro256++ and
  Lemire's bounded draw) checked bit for bit against the native generator, and a NumPy
  bootstrap of the mean (simple, weighted, stratified, clustered, macro; percentile and BCa)
  on that stream, which ``bootstrap_mean``, ``summarize`` and ``paired_difference`` must equal.
* Closed forms against NumPy and lm-evaluation-harness's pooled standard error.
* Coverage of the intervals in simulation, and BCa against ``scipy.stats.bootstrap``.
* clembench's aggregation against clemcore's golden table and the leaderboard tables in
  ``../shared/clembench`` (skipped when ``../shared`` is absent).
* Every class of bad input raises its ``capscale.errors`` exception.
"""

from __future__ import annotations

import inspect
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from scipy.special import ndtr, ndtri

import capscale.stats as cs
from capscale import _native
from capscale.errors import (
    FormatError,
    InvalidInputError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
)
from conftest import shared_path

# ---------------------------------------------------------------------------------------------
# Reference random stream (rust/capscale-core/src/rng.rs), Python ints masked to 64 bits
# ---------------------------------------------------------------------------------------------

MASK = 0xFFFFFFFFFFFFFFFF


def splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step: ``(new_state, output)``."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


class RefStream:
    """xoshiro256++ seeded as ``Stream::new(seed, stream)``."""

    def __init__(self, seed: int, stream: int) -> None:
        _, a = splitmix64(seed & MASK)
        st = a ^ ((stream * 0xD1B54A32D192ED03) & MASK)
        s = []
        for _ in range(4):
            st, v = splitmix64(st)
            s.append(v)
        if s == [0, 0, 0, 0]:
            s[0] = 1
        self.s = s
        self.half: int | None = None

    def next_u64(self) -> int:
        s0, s1, s2, s3 = self.s
        result = (rotl((s0 + s3) & MASK, 23) + s0) & MASK
        t = (s1 << 17) & MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        self.s = [s0, s1, s2, s3]
        return result

    def next_u32(self) -> int:
        """32-bit words: the low half of a 64-bit output, then its high half."""
        if self.half is not None:
            h, self.half = self.half, None
            return h
        v = self.next_u64()
        self.half = v >> 32
        return v & 0xFFFFFFFF

    def below(self, n: int) -> int:
        """Lemire's multiply-shift with rejection: uniform in ``[0, n)`` (32-bit words for
        ``n <= 2**32``, 64-bit outputs above)."""
        if n == 0:
            return 0
        if n <= 2**32:
            while True:
                prod = self.next_u32() * n
                low = prod & 0xFFFFFFFF
                if not (low < n and low < (2**32 - n) % n):
                    return prod >> 32
        prod = self.next_u64() * n
        if (prod & MASK) < n:
            threshold = ((-n) & MASK) % n
            while (prod & MASK) < threshold:
                prod = self.next_u64() * n
        return prod >> 64


def ref_indices(m: int, n_resamples: int, seed: int) -> np.ndarray:
    out = np.zeros((n_resamples, m), dtype=np.int64)
    for i in range(n_resamples):
        rng = RefStream(seed, i)
        out[i] = [rng.below(m) for _ in range(m)]
    return out


# ---------------------------------------------------------------------------------------------
# Reference bootstrap of the mean (module doc of rust/capscale-core/src/stats/bootstrap.rs)
# ---------------------------------------------------------------------------------------------


def ref_units(values, weights=None, strata=None, clusters=None):
    """Per stratum (label order): arrays (Σwx, Σw) of its units in first-appearance order."""
    x = np.asarray(values, dtype=float)
    n = x.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    st = np.zeros(n, dtype=int) if strata is None else np.unique(strata, return_inverse=True)[1]
    keys_of: list[list] = [[] for _ in range(int(st.max()) + 1)]
    sums: dict = {}
    for i in range(n):
        key = i if clusters is None else clusters[i]
        if key not in sums:
            keys_of[st[i]].append(key)
            sums[key] = [0.0, 0.0]
        sums[key][0] += w[i] * x[i]
        sums[key][1] += w[i]
    return [
        (np.array([sums[k][0] for k in keys]), np.array([sums[k][1] for k in keys]))
        for keys in keys_of
    ]


def ref_stat(swx, sw, average: str) -> float:
    swx, sw = np.asarray(swx, dtype=float), np.asarray(sw, dtype=float)
    return float(np.mean(swx / sw)) if average == "macro" else float(swx.sum() / sw.sum())


def ref_replicates(units, average: str, n_resamples: int, seed: int, base: int = 0):
    reps = np.empty(n_resamples)
    for b in range(n_resamples):
        rng = RefStream(seed, base + b)
        swx, sw = [], []
        for wx, w in units:
            m = wx.shape[0]
            idx = np.array([rng.below(m) for _ in range(m)])
            swx.append(wx[idx].sum())
            sw.append(w[idx].sum())
        reps[b] = ref_stat(swx, sw, average)
    return reps


def ref_jackknife(units, average: str) -> np.ndarray:
    out = []
    for s, (wx, w) in enumerate(units):
        for u in range(wx.shape[0]):
            swx = [a.sum() for a, _ in units]
            sw = [b.sum() for _, b in units]
            swx[s] -= wx[u]
            sw[s] -= w[u]
            out.append(ref_stat(swx, sw, average))
    return np.array(out)


def ref_interval(estimate, reps, level, method="percentile", jack=None):
    """(low, high, boot_se): NumPy percentiles, or BCa exactly as scipy.stats.bootstrap."""
    alpha = (1 - level) / 2
    p_lo, p_hi = alpha, 1 - alpha
    if method == "bca":
        z0 = ndtri(((reps < estimate).sum() + (reps <= estimate).sum()) / (2 * reps.size))
        d = jack.mean() - jack
        a = (d**3).sum() / (6 * (d**2).sum() ** 1.5)
        p_lo, p_hi = (ndtr(z0 + (z0 + z) / (1 - a * (z0 + z))) for z in ndtri([p_lo, p_hi]))
    low, high = np.percentile(reps, [100 * p_lo, 100 * p_hi])
    return float(low), float(high), float(np.std(reps, ddof=1))


def ref_bootstrap(
    values,
    *,
    weights=None,
    strata=None,
    clusters=None,
    average="micro",
    n_resamples=200,
    seed=0,
    level=0.95,
    method="percentile",
    base=0,
):
    """(estimate, low, high, boot_se) of the reference bootstrap on streams base…base+B−1."""
    units = ref_units(values, weights, strata, clusters)
    est = ref_stat([a.sum() for a, _ in units], [b.sum() for _, b in units], average)
    reps = ref_replicates(units, average, n_resamples, seed, base)
    jack = ref_jackknife(units, average) if method == "bca" else None
    return (est, *ref_interval(est, reps, level, method, jack))


TOL = {"rtol": 0, "atol": 1e-12}


def assert_interval(got, want) -> None:
    np.testing.assert_allclose([got.estimate, got.low, got.high, got.boot_se], want, **TOL)


@pytest.fixture(scope="module")
def data():
    """Small designs: 48 scores with weights, 3 strata (labels not in sorted order of first
    appearance) and 14 clusters nested in strata, numbered against first-appearance order."""
    rng = np.random.default_rng(20240611)
    n = 48
    strata = np.array(["b", "a", "c"])[rng.integers(0, 3, n)]
    clusters = np.empty(n, dtype=np.int64)
    base = {"a": 100, "b": 50, "c": 0}
    for s in "abc":
        idx = np.flatnonzero(strata == s)
        k = rng.integers(0, 4 + (s == "c"), idx.size)
        k[:5] = [4, 3, 2, 1, 0][: min(5, idx.size)]  # first appearance ≠ sorted order
        clusters[idx] = base[s] + 10 * k
    return {
        "x": rng.gamma(2.0, 0.3, n).round(3),
        "w": rng.uniform(0.2, 3.0, n),
        "strata": strata,
        "clusters": clusters,
    }


# ---------------------------------------------------------------------------------------------
# 1. The random stream and the bootstrap, bit for bit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "n", "seed"),
    [(1, 3, 0), (7, 40, 0), (50, 20, 12345), (1000, 3, 2**64 - 1), (33, 10, 2**63 + 17)],
)
def test_stream_matches_native_bit_for_bit(m, n, seed):
    got = _native.bootstrap_indices(m, n, seed)
    assert got.shape == (n, m)
    np.testing.assert_array_equal(got, ref_indices(m, n, seed))


def test_stream_reference_known_values():
    # SplitMix64 from 0 (Vigna's reference output) and the documented stream layout.
    assert splitmix64(0)[1] == 0xE220A8397B1DCDAF
    a, b = RefStream(7, 3), RefStream(7, 3)
    assert [a.next_u64() for _ in range(5)] == [b.next_u64() for _ in range(5)]
    assert RefStream(7, 3).next_u64() != RefStream(7, 4).next_u64()
    assert all(RefStream(1, 0).below(1) == 0 for _ in range(3))


def _call(data, **kw):
    keys = {"weights": "w", "strata": "strata", "clusters": "clusters"}
    args = {k: data[v] for k, v in keys.items() if kw.pop(k, False)}
    return args, kw


DESIGNS = {
    "simple": {},
    "weighted": {"weights": True},
    "stratified": {"strata": True},
    "stratified-macro": {"strata": True, "average": "macro"},
    "clustered": {"clusters": True},
    "clustered-weighted-bca": {"clusters": True, "weights": True, "method": "bca"},
    "all-macro": {"strata": True, "clusters": True, "weights": True, "average": "macro"},
    "stratified-bca": {"strata": True, "method": "bca", "ci": 0.9},
    "simple-bca": {"method": "bca"},
}


@pytest.mark.parametrize("design", list(DESIGNS))
def test_bootstrap_mean_equals_numpy_reference(data, design):
    args, kw = _call(data, **DESIGNS[design])
    level = kw.get("ci", 0.95)
    seed = 987654321
    got = cs.bootstrap_mean(data["x"], n_resamples=200, seed=seed, n_threads=2, **args, **kw)
    want = ref_bootstrap(
        data["x"],
        n_resamples=200,
        seed=seed,
        level=level,
        average=kw.get("average", "micro"),
        method=kw.get("method", "percentile"),
        **args,
    )
    assert_interval(got, want)
    assert got.n == data["x"].size and got.level == level and got.n_resamples == 200


def test_bootstrap_mean_nan_omit_equals_bootstrap_of_kept(data):
    x = data["x"].copy()
    x[[3, 17, 40]] = np.nan
    keep = ~np.isnan(x)
    got = cs.bootstrap_mean(x, strata=data["strata"], nan="omit", n_resamples=200, seed=5)
    want = ref_bootstrap(x[keep], strata=data["strata"][keep], n_resamples=200, seed=5)
    assert got.n == keep.sum() == 45
    assert_interval(got, want)


def test_constant_scores_give_degenerate_interval():
    for method in ("percentile", "bca"):
        r = cs.bootstrap_mean(np.full(10, 0.75), n_resamples=50, method=method)
        assert (r.estimate, r.low, r.high, r.boot_se, r.stderr) == (0.75, 0.75, 0.75, 0.0, 0.0)


def _frame(data):
    rng = np.random.default_rng(7)
    model = np.array(["m2", "m1", "m3"])[rng.integers(0, 3, data["x"].size)]
    return pd.DataFrame(
        {
            "model": model,
            "precision": np.where(np.arange(model.size) % 2, "fp16", "int4"),
            "score": data["x"],
            "w": data["w"],
            "subtask": data["strata"],
            "instance": data["clusters"],
        }
    )


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"strata": "subtask", "average": "macro"},
        {"cluster": "instance", "weights": "w", "method": "bca"},
    ],
)
def test_summarize_groups_use_consecutive_stream_blocks(data, kw):
    df = _frame(data)
    B, seed = 120, 31
    out = cs.summarize(df, by="model", n_resamples=B, seed=seed, n_threads=2, **kw)
    assert out["model"].tolist() == ["m1", "m2", "m3"]
    for k, name in enumerate(out["model"]):
        sub = df[df["model"] == name]
        want = ref_bootstrap(
            sub["score"].to_numpy(),
            weights=None if "weights" not in kw else sub["w"].to_numpy(),
            strata=None if "strata" not in kw else sub["subtask"].to_numpy(),
            clusters=None if "cluster" not in kw else sub["instance"].to_numpy(),
            average=kw.get("average", "micro"),
            method=kw.get("method", "percentile"),
            n_resamples=B,
            seed=seed,
            base=k * B,
        )
        row = out.iloc[k]
        np.testing.assert_allclose(
            [row["mean"], row["ci_low"], row["ci_high"], row["boot_se"]], want, **TOL
        )


def test_summarize_two_keys_sorted_and_streamed(data):
    df = _frame(data)
    out = cs.summarize(df, by=["model", "precision"], n_resamples=60, seed=2)
    keys = sorted(set(zip(df["model"], df["precision"], strict=True)))
    assert list(zip(out["model"], out["precision"], strict=True)) == keys
    for k, (m, p) in enumerate(keys):
        sub = df[(df["model"] == m) & (df["precision"] == p)]
        want = ref_bootstrap(sub["score"].to_numpy(), n_resamples=60, seed=2, base=60 * k)
        got = out.iloc[k][["mean", "ci_low", "ci_high", "boot_se"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, want, **TOL)


def _pairs(n=40):
    rng = np.random.default_rng(11)
    difficulty = rng.uniform(0, 1, n)
    a = (rng.uniform(0, 1, n) < 0.9 - 0.5 * difficulty).astype(float)
    b = (rng.uniform(0, 1, n) < 0.8 - 0.5 * difficulty).astype(float)
    return a, b


def ref_paired(a, b, n_resamples, seed, level=0.95, clusters=None):
    d = a - b
    units = ref_units(d, clusters=clusters)
    est = ref_stat([units[0][0].sum()], [units[0][1].sum()], "micro")
    reps = ref_replicates(units, "micro", n_resamples, seed)
    p = (1 + np.sum(np.abs(reps - est) >= abs(est))) / (n_resamples + 1)
    return est, *ref_interval(est, reps, level), p


@pytest.mark.parametrize("clustered", [False, True])
def test_paired_difference_equals_numpy_reference(clustered):
    a, b = _pairs()
    cl = np.arange(a.size) // 3 * 7 % 13 if clustered else None
    got = cs.paired_difference(a, b, clusters=cl, n_resamples=250, seed=9, n_threads=2)
    want = ref_paired(a, b, 250, 9, clusters=cl)
    np.testing.assert_allclose([got.diff, got.low, got.high, got.boot_se, got.p_value], want, **TOL)
    assert got.mean_a == pytest.approx(a.mean(), abs=1e-15)
    assert got.mean_b == pytest.approx(b.mean(), abs=1e-15)
    assert got.n == a.size
    assert 0 < got.p_value <= 1


def test_paired_series_pair_on_item_ids():
    a, b = _pairs()
    ids = [f"item{i:03d}" for i in range(a.size)]
    sa = pd.Series(a, index=ids)
    sb = pd.Series(b, index=ids).sample(frac=1.0, random_state=0)  # shuffled order
    got = cs.paired_difference(sa, sb, n_resamples=100, seed=4)
    assert got == cs.paired_difference(a, b, n_resamples=100, seed=4)


def test_paired_identical_systems():
    a, _ = _pairs()
    r = cs.paired_difference(a, a, n_resamples=100)
    assert (r.diff, r.low, r.high, r.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_clemscore_interval_equals_reference():
    rng = np.random.default_rng(3)
    games = np.repeat(["taboo", "wordle", "imagegame"], [9, 12, 7])
    aborted = (rng.uniform(size=games.size) < 0.3).astype(float)
    score = np.where(aborted == 1, np.nan, rng.integers(0, 101, games.size).astype(float))
    perm = rng.permutation(games.size)  # episodes interleaved across games
    df = pd.DataFrame(
        {"model": "m", "game": games[perm], "Aborted": aborted[perm], "Main Score": score[perm]}
    )
    B, seed = 150, 77
    got = cs.clemscore(df, n_resamples=B, seed=seed, ci=0.9).iloc[0]
    members = [np.flatnonzero(df["game"].to_numpy() == g) for g in sorted(set(games))]
    ab, ms = df["Aborted"].to_numpy(), df["Main Score"].to_numpy()
    reps = []
    for b in range(B):
        rng_b = RefStream(seed, b)
        played, quality = [], []
        for idx in members:
            pick = idx[[rng_b.below(idx.size) for _ in range(idx.size)]]
            played.append(100 * np.mean(ab[pick] == 0))
            if (~np.isnan(ms[pick])).any():
                quality.append(np.nanmean(ms[pick]))
        reps.append(np.mean(played) / 100 * np.mean(quality))
    np.testing.assert_allclose([got["ci_low"], got["ci_high"]], np.percentile(reps, [5, 95]), **TOL)
    assert (got["games"], got["episodes"]) == (3, games.size)


# ---------------------------------------------------------------------------------------------
# 2. Closed forms
# ---------------------------------------------------------------------------------------------


def test_describe_equals_numpy(data):
    x = data["x"]
    n, mean, se = cs.describe(x)
    assert n == x.size
    assert mean == pytest.approx(np.mean(x), rel=1e-14)
    assert se == pytest.approx(np.std(x, ddof=1) / math.sqrt(x.size), rel=1e-13)
    assert math.isnan(cs.describe([0.5])[2])
    w = data["w"]
    n, wmean, wse = cs.describe(x, weights=w)
    assert wmean == pytest.approx(np.average(x, weights=w), rel=1e-14)
    ratio_se = math.sqrt(np.sum((w * (x - wmean)) ** 2) * n / (n - 1)) / w.sum()
    assert wse == pytest.approx(ratio_se, rel=1e-13)
    # equal weights reduce to the plain standard error
    assert cs.describe(x, weights=np.full(x.size, 2.5))[2] == pytest.approx(se, rel=1e-13)


def test_summarize_mean_stderr_columns_equal_numpy(data):
    df = _frame(data)
    out = cs.summarize(df, by=["model"], n_resamples=50).set_index("model")
    for name, sub in df.groupby("model"):
        x = sub["score"].to_numpy()
        assert out.loc[name, "n"] == x.size
        assert out.loc[name, "mean"] == pytest.approx(np.mean(x), rel=1e-14)
        assert out.loc[name, "stderr"] == pytest.approx(
            np.std(x, ddof=1) / math.sqrt(x.size), rel=1e-13
        )
    assert out["n"].dtype == np.int64


def test_summarize_nan_omit_counts_kept_items(data):
    df = _frame(data)
    df.loc[[0, 5, 6], "score"] = np.nan
    with pytest.raises(NonFiniteError, match="non-finite"):
        cs.summarize(df, by="model", n_resamples=50)
    out = cs.summarize(df, by="model", n_resamples=50, nan="omit", seed=1)
    kept = df.dropna(subset=["score"])
    assert out["n"].sum() == len(kept) == len(df) - 3
    pd.testing.assert_frame_equal(out, cs.summarize(kept, by="model", n_resamples=50, seed=1))


def test_aggregate_subtasks_pooled_stderr_formula():
    rng = np.random.default_rng(5)
    subs = [rng.integers(0, 2, n).astype(float) for n in (10, 37, 120, 4)]
    table = pd.DataFrame(
        {
            "n": [s.size for s in subs],
            "mean": [s.mean() for s in subs],
            "stderr": [s.std(ddof=1) / math.sqrt(s.size) for s in subs],
        }
    )
    sizes, se = table["n"].to_numpy(), table["stderr"].to_numpy()
    pooled = math.sqrt(
        np.sum((sizes - 1) * sizes * se**2) / (sizes.sum() - len(sizes)) / sizes.sum()
    )
    n, mean, stderr = cs.aggregate_subtasks(table)
    assert n == sizes.sum()
    assert mean == pytest.approx(np.concatenate(subs).mean(), rel=1e-14)  # size-weighted
    assert stderr == pytest.approx(pooled, rel=1e-13)
    n, mean, stderr = cs.aggregate_subtasks(table, weight_by_size=False)
    assert mean == pytest.approx(table["mean"].mean(), rel=1e-14)
    assert stderr == pytest.approx(pooled, rel=1e-13)


def test_normalize_equals_numpy():
    x = np.array([0.25, 0.5, 1.0, 0.1])
    np.testing.assert_allclose(cs.normalize(x, 0.25), (x - 0.25) / 0.75, rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# 3. Coverage, and 4. BCa against scipy
# ---------------------------------------------------------------------------------------------


def test_percentile_interval_covers_bernoulli_mean_at_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(300):
        x = (rng.random(200) < 0.3).astype(float)
        r = cs.bootstrap_mean(x, n_resamples=1000, seed=i, n_threads=2)
        hits += r.low <= 0.3 <= r.high
    assert 0.92 <= hits / 300 <= 0.98


def test_bca_interval_covers_exponential_mean_at_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(500):
        x = rng.exponential(1.0, 200)
        r = cs.bootstrap_mean(x, n_resamples=1000, seed=i, method="bca", n_threads=2)
        hits += r.low <= 1.0 <= r.high
    assert 0.92 <= hits / 500 <= 0.98


def _scipy_rng_kw(seed: int) -> dict:
    params = inspect.signature(scipy.stats.bootstrap).parameters
    return {"rng" if "rng" in params else "random_state": np.random.default_rng(seed)}


def test_bca_matches_scipy_within_monte_carlo_error():
    """Endpoints of two independent B=20000 BCa runs on skewed data (lognormal, n=50) differ by
    Monte-Carlo noise only. The noise is measured, not assumed: the spread (std) of our
    endpoints over 12 seeds is the Monte-Carlo SE of one run (about 0.01–0.05 bootstrap SE),
    so the difference of two runs has SE √2·that; allow 4 of them. BCa moves the endpoints
    away from the percentile interval's by far more (about 20 MC SE), so the check can tell
    the two methods apart."""
    x = np.random.default_rng(42).lognormal(0.0, 1.0, 50)
    B = 20_000
    ref = scipy.stats.bootstrap(
        (x,), np.mean, method="BCa", n_resamples=B, confidence_level=0.95, **_scipy_rng_kw(1)
    ).confidence_interval
    runs = [
        cs.bootstrap_mean(x, method="bca", n_resamples=B, seed=s, n_threads=2) for s in range(12)
    ]
    ours = np.array([[r.low, r.high] for r in runs])
    tol = 4 * math.sqrt(2) * ours.std(axis=0, ddof=1)
    # A sanity bound on the measured noise (SciPy's own endpoints spread as much: ~0.009 for
    # the upper one, 5% of the bootstrap SE, so 4√2 of it is ~0.26 SE).
    assert np.all(tol < 0.35 * runs[0].boot_se)
    assert np.all(np.abs(ours[0] - [ref.low, ref.high]) < tol), (ours[0], ref, tol)
    pct = cs.bootstrap_mean(x, n_resamples=B, seed=0, n_threads=2)
    assert np.all(np.abs(np.array([pct.low, pct.high]) - ours[0]) > 2 * tol)
    assert pct.low < ours[0, 0] and pct.high < ours[0, 1]  # right skew shifts BCa up


# ---------------------------------------------------------------------------------------------
# 5. Thread-count independence
# ---------------------------------------------------------------------------------------------


def test_results_do_not_depend_on_thread_count(data, monkeypatch):
    df = _frame(data)
    a, b = _pairs()

    def run(n_threads):
        return (
            cs.bootstrap_mean(
                data["x"],
                strata=data["strata"],
                clusters=data["clusters"],
                weights=data["w"],
                method="bca",
                n_resamples=3000,
                seed=8,
                n_threads=n_threads,
            ),
            cs.paired_difference(a, b, n_resamples=3000, seed=8, n_threads=n_threads),
            cs.summarize(df, by="model", strata="subtask", n_resamples=3000, n_threads=n_threads),
        )

    ref = run(1)
    for threads, env in ((2, None), (0, "1"), (0, "3"), (0, None)):
        if env is None:
            monkeypatch.delenv("CAPSCALE_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("CAPSCALE_NUM_THREADS", env)
        got = run(threads)
        assert got[0] == ref[0] and got[1] == ref[1]
        pd.testing.assert_frame_equal(got[2], ref[2], check_exact=True)


# ---------------------------------------------------------------------------------------------
# 6. clembench
# ---------------------------------------------------------------------------------------------

CLEM = "clembench"
TABLES = [
    "clembench-runs_v1.0_results.csv",
    "clembench-runs_v1.6_results.csv",
    "clembench-runs_v1.6-quantized_results.csv",
]


@pytest.fixture(scope="module")
def llama_episodes() -> pd.DataFrame:
    return cs.read_clembench_scores(shared_path(CLEM, "clemcore_fixture_runs-v2-llama8b.zip"))


def assert_cells_equal(got: pd.Series, want: pd.Series) -> None:
    assert set(got.index) == set(want.index)
    bad = {
        c: (got[c], want[c])
        for c in want.index
        if not (got[c] == want[c] or (math.isnan(got[c]) and math.isnan(want[c])))
    }
    assert not bad


def test_clem_table_equals_clemcore_golden(llama_episodes):
    golden = pd.read_csv(shared_path(CLEM, "clemcore_fixture_golden_results.csv"), index_col=0)
    assert len(llama_episodes) == 817 and llama_episodes["game"].nunique() == 14
    table = cs.clem_table(llama_episodes)
    assert list(table.index) == list(golden.index)
    assert golden.shape == (1, 45) and table.shape == (1, 45)
    assert_cells_equal(table.iloc[0], golden.iloc[0].astype(float))
    assert list(table.columns[:3]) == [
        "-, clemscore",
        "all, Average % Played",
        "all, Average Quality Score",
    ]


def test_read_clembench_folder_equals_zip(llama_episodes, tmp_path):
    with zipfile.ZipFile(shared_path(CLEM, "clemcore_fixture_runs-v2-llama8b.zip")) as zf:
        zf.extractall(tmp_path)
    folder = cs.read_clembench_scores(tmp_path)
    key = ["model", "game", "experiment", "episode"]
    a = folder.sort_values(key).reset_index(drop=True)
    b = llama_episodes.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[sorted(a.columns)], b[sorted(b.columns)])
    pd.testing.assert_frame_equal(cs.clem_table(folder), cs.clem_table(llama_episodes))


def test_clemscore_of_golden_fixture(llama_episodes):
    out = cs.clemscore(llama_episodes, n_resamples=2000, seed=1, n_threads=2)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["clemscore"] == 28.09
    assert (row["played"], row["quality"]) == (56.8, 49.46)
    assert (row["games"], row["episodes"]) == (14, 817)
    assert row["ci_low"] < 28.09 < row["ci_high"]


@pytest.mark.parametrize("name", TABLES)
def test_leaderboard_tables_follow_aggregation_rule(name):
    table = pd.read_csv(shared_path(CLEM, name), index_col=0)
    games = [
        c[: -len(", % Played")]
        for c in table.columns
        if c.endswith(", % Played") and not c.startswith("all, ")
    ]
    assert len(games) >= 7
    r2 = cs.round_half_even
    for model, row in table.iterrows():
        played = np.array([row[f"{g}, % Played"] for g in games], dtype=float)
        quality = np.array([row[f"{g}, Quality Score"] for g in games], dtype=float)
        avg_played = r2(np.mean(played[~np.isnan(played)]))
        avg_quality = r2(np.mean(quality[~np.isnan(quality)]))
        clemscore = r2(avg_played / 100 * avg_quality)
        assert avg_played == row["all, Average % Played"], model
        assert avg_quality == row["all, Average Quality Score"], model
        assert clemscore == row["-, clemscore"], model
    if name.endswith("v1.6_results.csv"):
        assert table["cloudgame, % Played"].notna().sum() == 1


def test_round_half_even_is_numpys_not_pythons():
    r2 = cs.round_half_even
    # The documented tie: 9097.5 after scaling rounds to even; Python rounds the exact binary
    # value 90.97499999… down.
    assert round(90.975, 2) == 90.97
    assert r2(90.975) == 90.98 == np.round(90.975, 2)
    # Real ties: the average of per-game numbers from the v1.0 leaderboard (Mistral-7B-Instruct:
    # taboo 50.85 % played, imagegame 0.0; SUS-Chat-34B: 37.5 and 26.67).
    v10 = pd.read_csv(shared_path(CLEM, TABLES[0]), index_col=0)
    mistral = v10.loc["Mistral-7B-Instruct-v0.1-t0.0--Mistral-7B-Instruct-v0.1-t0.0"]
    pair = [mistral["imagegame, % Played"], mistral["taboo, % Played"]]
    assert pair == [0.0, 50.85]
    tie = float(np.mean(pair))  # a Python float: round() of np.float64 is NumPy's rounding
    assert round(tie, 2) == 25.43 and r2(tie) == 25.42 == np.round(tie, 2)
    tie = (37.5 + 26.67) / 2
    assert round(tie, 2) == 32.09 and r2(tie) == 32.08 == np.round(tie, 2)
    # ... and the native aggregation rounds its averages the same way: two games of quality
    # 0.0 and 50.85 average to 25.42, not Python's 25.43.
    episodes = pd.DataFrame(
        {"model": "m", "game": ["a", "b"], "Aborted": [0, 0], "Main Score": [0.0, 50.85]}
    )
    row = cs.clem_table(episodes).iloc[0]
    assert row["all, Average Quality Score"] == 25.42
    assert row["-, clemscore"] == 25.42
    # numpy's answer everywhere, including many near-ties
    x = np.concatenate([np.arange(0, 10_000) / 1000 + 0.005, np.random.default_rng(0).random(999)])
    np.testing.assert_array_equal(r2(x), np.round(x, 2))
    np.testing.assert_array_equal(r2(x, 1), np.round(x, 1))


# ---------------------------------------------------------------------------------------------
# 8. Bad input
# ---------------------------------------------------------------------------------------------

X = np.array([1.0, 0.0, 1.0, 1.0])
DF = pd.DataFrame({"model": ["a", "a", "b", "b"], "score": X, "subtask": ["s", "t", "s", "t"]})
EPISODES = pd.DataFrame(
    {"model": "m", "game": ["g", "g", "h"], "Aborted": [0, 1, 0], "Main Score": [50, np.nan, 1]}
)


def _episodes(**cols):
    return EPISODES.assign(**cols)


BAD = {
    "nan-raises": (lambda: cs.bootstrap_mean([1.0, np.nan, 0.0]), NonFiniteError, "non-finite"),
    "nan-describe": (lambda: cs.describe([1.0, np.nan]), NonFiniteError, "non-finite"),
    "inf-raises": (lambda: cs.bootstrap_mean([1.0, np.inf]), NonFiniteError, "inf"),
    "inf-not-omitted": (
        lambda: cs.bootstrap_mean([1.0, 0.0, -np.inf], nan="omit"),
        NonFiniteError,
        "non-finite",
    ),
    "inf-paired": (
        lambda: cs.paired_difference([1.0, np.inf], [1.0, 0.0]),
        NonFiniteError,
        "a has 1 non-finite",
    ),
    "bad-nan-policy": (lambda: cs.bootstrap_mean(X, nan="drop"), UnknownNameError, "nan policy"),
    "empty-array": (lambda: cs.bootstrap_mean([]), InvalidInputError, "no scores"),
    "empty-describe": (lambda: cs.describe(np.array([])), InvalidInputError, "empty"),
    "empty-frame": (
        lambda: cs.summarize(DF.iloc[:0], by="model"),
        InvalidInputError,
        "no rows",
    ),
    "all-nan-omitted": (
        lambda: cs.summarize(DF.assign(score=np.nan), nan="omit"),
        InvalidInputError,
        "every 'score' value is NaN",
    ),
    "one-item": (lambda: cs.bootstrap_mean([0.5]), InvalidInputError, "at least 2"),
    "2-d": (lambda: cs.bootstrap_mean(np.ones((2, 2))), ShapeError, "1-D"),
    "pairs-length": (lambda: cs.paired_difference(X, X[:3]), ShapeError, "mismatched pairs"),
    "pairs-ids": (
        lambda: cs.paired_difference(
            pd.Series(X, index=list("abcd")), pd.Series(X, index=list("abce"))
        ),
        ShapeError,
        "3 in common",
    ),
    "pairs-disjoint": (
        lambda: cs.paired_difference(pd.Series(X, index=list("abcd")), pd.Series(X)),
        InvalidInputError,
        "share no item ids",
    ),
    "pairs-duplicate-ids": (
        lambda: cs.paired_difference(pd.Series(X, index=list("aacd")), pd.Series(X)),
        InvalidInputError,
        "unique item ids",
    ),
    "unknown-metric": (
        lambda: cs.summarize(DF, metric="scores"),
        UnknownNameError,
        "unknown metric column 'scores'; did you mean 'score'",
    ),
    "unknown-by": (
        lambda: cs.summarize(DF, by=["modle"]),
        UnknownNameError,
        "unknown grouping column 'modle'; did you mean 'model'",
    ),
    "unknown-strata": (
        lambda: cs.summarize(DF, strata="subtsk"),
        UnknownNameError,
        "unknown strata column 'subtsk'; did you mean 'subtask'",
    ),
    "unknown-cluster": (
        lambda: cs.summarize(DF, cluster="instance"),
        UnknownNameError,
        "unknown cluster column",
    ),
    "unknown-method": (
        lambda: cs.bootstrap_mean(X, method="bac"),
        UnknownNameError,
        "unknown method 'bac'; did you mean 'bca'",
    ),
    "unknown-method-summarize": (
        lambda: cs.summarize(DF, method="percentil"),
        UnknownNameError,
        "did you mean 'percentile'",
    ),
    "unknown-average": (
        lambda: cs.paired_difference(X, X, average="marco"),
        UnknownNameError,
        "unknown average 'marco'; did you mean 'macro'",
    ),
    "macro-without-strata": (
        lambda: cs.bootstrap_mean(X, average="macro"),
        InvalidInputError,
        "macro average needs strata",
    ),
    "n_resamples-1": (
        lambda: cs.bootstrap_mean(X, n_resamples=1),
        InvalidInputError,
        "n_resamples must be >= 2",
    ),
    "n_resamples-0-summarize": (
        lambda: cs.summarize(DF, n_resamples=0),
        InvalidInputError,
        "n_resamples must be >= 2",
    ),
    "n_resamples-negative": (
        lambda: cs.bootstrap_mean(X, n_resamples=-5),
        InvalidInputError,
        "n_resamples",
    ),
    "ci-1": (lambda: cs.bootstrap_mean(X, ci=1.0), InvalidInputError, r"\(0, 1\)"),
    "ci-0-paired": (lambda: cs.paired_difference(X, X, ci=0.0), InvalidInputError, r"\(0, 1\)"),
    "ci-clemscore": (lambda: cs.clemscore(EPISODES, ci=95), InvalidInputError, r"\(0, 1\)"),
    "seed-negative": (lambda: cs.bootstrap_mean(X, seed=-1), InvalidInputError, "seed"),
    "seed-negative-summarize": (lambda: cs.summarize(DF, seed=-1), InvalidInputError, "seed"),
    "seed-negative-paired": (
        lambda: cs.paired_difference(X, X, seed=-1),
        InvalidInputError,
        "seed",
    ),
    "seed-negative-clemscore": (
        lambda: cs.clemscore(EPISODES, seed=-1, n_resamples=10),
        InvalidInputError,
        "seed",
    ),
    "seed-too-big": (lambda: cs.bootstrap_mean(X, seed=2**64), InvalidInputError, "seed"),
    "clusters-span-strata": (
        lambda: cs.bootstrap_mean(X, strata=[0, 0, 1, 1], clusters=[5, 6, 6, 7]),
        InvalidInputError,
        "spans strata",
    ),
    "weights-negative": (
        lambda: cs.bootstrap_mean(X, weights=[1.0, -1.0, 1.0, 1.0]),
        InvalidInputError,
        "weights must be >= 0",
    ),
    "weights-zero": (lambda: cs.describe(X, weights=np.zeros(4)), InvalidInputError, "all zero"),
    "weights-length": (
        lambda: cs.bootstrap_mean(X, weights=[1.0, 1.0]),
        ShapeError,
        "weights has length 2",
    ),
    "strata-length": (lambda: cs.bootstrap_mean(X, strata=[0, 1]), ShapeError, "one label"),
    "aborted-not-0-1": (
        lambda: cs.clem_table(_episodes(Aborted=[0, 2, 0])),
        InvalidInputError,
        "Aborted must be 0 or 1",
    ),
    "aborted-fraction": (
        lambda: cs.clemscore(_episodes(Aborted=[0, 0.5, 0])),
        InvalidInputError,
        "Aborted must be 0 or 1",
    ),
    "main-score-inf": (
        lambda: cs.clem_table(_episodes(**{"Main Score": [np.inf, 1.0, 2.0]})),
        NonFiniteError,
        "Main Score",
    ),
    "episodes-no-aborted": (
        lambda: cs.clem_table(EPISODES.drop(columns="Aborted")),
        UnknownNameError,
        "'Aborted'",
    ),
    "normalize-degenerate": (lambda: cs.normalize(X, 1.0, 1.0), InvalidInputError, "baseline"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_typed_error(case):
    fn, exc, match = BAD[case]
    with pytest.raises(exc, match=match):
        fn()


def test_nan_omit_keeps_n_of_kept_items():
    r = cs.bootstrap_mean([1.0, np.nan, 0.0, 1.0], nan="omit", n_resamples=50)
    assert r.n == 3 and r.estimate == pytest.approx(2 / 3, abs=1e-15)


def test_read_clembench_scores_rejects_other_files(tmp_path):
    text = tmp_path / "results.csv"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match="not a directory or a zip"):
        cs.read_clembench_scores(text)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("runs/readme.txt", "no scores here")
    with pytest.raises(FormatError, match=r"no scores\.json"):
        cs.read_clembench_scores(other)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("runs/m/g/e/ep0/scores.json", '{"turn scores": {}}')
    with pytest.raises(FormatError, match="episode scores"):
        cs.read_clembench_scores(broken)
    shallow = tmp_path / "shallow"
    (shallow / "g").mkdir(parents=True)
    (shallow / "g" / "scores.json").write_text('{"episode scores": {"Aborted": 0}}')
    with pytest.raises(FormatError, match="expected <model>/<game>"):
        cs.read_clembench_scores(shallow)
    with pytest.raises(FileNotFoundError):
        cs.read_clembench_scores(tmp_path / "missing.zip")


def test_shared_path_skips_when_absent():
    with pytest.raises(pytest.skip.Exception, match="absent"):
        shared_path("no-such-folder", "x.csv")
