//! Deterministic random streams: stream `i` of seed `s` is the same whatever thread draws it,
//! so parallel resampling gives identical results for any thread count.
//!
//! Generator: xoshiro256++ (Blackman & Vigna), state seeded by SplitMix64 from `(seed, stream)`.
//! Bounded integers: Lemire's multiply-shift with rejection, on 32-bit words (the low half of
//! each 64-bit output, then its high half) for bounds up to 2³², on 64-bit outputs above.

/// SplitMix64 step: advances `state` and returns a well-mixed 64-bit value.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A xoshiro256++ generator.
#[derive(Debug, Clone)]
pub struct Stream {
    s: [u64; 4],
    /// The unused high half of the last 64-bit output, consumed by the next 32-bit draw.
    half: Option<u32>,
}

impl Stream {
    /// The generator for stream `stream` of `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut sm = seed;
        let a = splitmix64(&mut sm);
        let mut st = a ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut s = [0u64; 4];
        for v in s.iter_mut() {
            *v = splitmix64(&mut st);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Self { s, half: None }
    }

    /// The generator's state words (for vectorised stepping of several streams).
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// A stream resumed from [`Stream::state`] at a 64-bit output boundary.
    pub fn from_state(s: [u64; 4]) -> Self {
        Self { s, half: None }
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Next 32 random bits: the low half of a fresh 64-bit output, then its high half.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        match self.half.take() {
            Some(h) => h,
            None => {
                let v = self.next_u64();
                self.half = Some((v >> 32) as u32);
                v as u32
            }
        }
    }

    /// Uniform integer in `[0, n)` without modulo bias (Lemire's multiply-shift with
    /// rejection), 0 when `n == 0`. Bounds up to 2³² consume 32-bit words
    /// ([`Stream::next_u32`]: two per 64-bit output), larger ones 64-bit outputs.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        if n <= 1 << 32 {
            loop {
                if let Some(i) = lemire32(self.next_u32(), n) {
                    return i;
                }
            }
        }
        let mut prod = (self.next_u64() as u128) * (n as u128);
        if (prod as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (prod as u64) < threshold {
                prod = (self.next_u64() as u128) * (n as u128);
            }
        }
        (prod >> 64) as u64
    }

    /// Call `f` with `count` draws of [`Stream::below`]`(n)` (`n ≤ 2³²`, this stream fresh
    /// or with no pending half-word) — the same values in the same order, two per 64-bit
    /// output without per-draw bookkeeping: the resampling hot path.
    #[inline]
    pub fn for_each_below32(&mut self, n: u64, count: usize, mut f: impl FnMut(u64)) {
        debug_assert!(n > 0 && n <= 1 << 32);
        let mut done = 0;
        if let Some(h) = self.half.take() {
            if let Some(i) = lemire32(h, n) {
                f(i);
                done += 1;
            }
        }
        while done < count {
            let v = self.next_u64();
            if let Some(i) = lemire32(v as u32, n) {
                f(i);
                done += 1;
                if done == count {
                    self.half = Some((v >> 32) as u32);
                    break;
                }
            }
            if let Some(i) = lemire32((v >> 32) as u32, n) {
                f(i);
                done += 1;
            }
        }
    }

    /// Uniform float in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Lemire's 32-bit multiply-shift: `⌊w·n / 2³²⌋`, or `None` when `w` falls in the rejected
/// sliver that would bias the result (`n ≤ 2³²`).
#[inline(always)]
pub fn lemire32(w: u32, n: u64) -> Option<u64> {
    let prod = w as u64 * n;
    let low = prod as u32 as u64;
    if low < n && low < ((1u64 << 32) - n) % n {
        None
    } else {
        Some(prod >> 32)
    }
}

/// Bootstrap indices of resample `stream`: `m` draws with replacement from `0..m`.
pub fn resample_indices(seed: u64, stream: u64, m: usize) -> Vec<usize> {
    let mut rng = Stream::new(seed, stream);
    (0..m).map(|_| rng.below(m as u64) as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Stream::new(7, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Stream::new(7, 3).next_u64(), Stream::new(7, 4).next_u64());
        assert_ne!(Stream::new(7, 3).next_u64(), Stream::new(8, 3).next_u64());
    }

    #[test]
    fn bulk_draws_equal_single_draws() {
        for n in [1u64, 7, 1000, 99_991, 1 << 31, 1 << 32] {
            let mut a = Stream::new(3, n);
            let mut b = Stream::new(3, n);
            let mut bulk = Vec::new();
            a.for_each_below32(n, 101, |i| bulk.push(i));
            a.for_each_below32(n, 50, |i| bulk.push(i));
            let single: Vec<u64> = (0..151).map(|_| b.below(n)).collect();
            assert_eq!(bulk, single, "n = {n}");
            assert_eq!(a.below(n), b.below(n));
        }
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = Stream::new(1, 0);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[rng.below(5) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
        let u = rng.uniform();
        assert!((0.0..1.0).contains(&u));
    }
}
