//! Deterministic random streams: stream `i` of seed `s` is the same whatever thread draws it,
//! so parallel resampling gives identical results for any thread count.
//!
//! Generator: xoshiro256++ (Blackman & Vigna), state seeded by SplitMix64 from `(seed, stream)`.

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
        Self { s }
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

    /// Uniform integer in `[0, n)` without modulo bias (Lemire's method); 0 when `n == 0`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's nearly divisionless method: the modulo (the rejection threshold) is only
        // computed in the rare case that the low word falls below n.
        let mut prod = (self.next_u64() as u128) * (n as u128);
        if (prod as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (prod as u64) < threshold {
                prod = (self.next_u64() as u128) * (n as u128);
            }
        }
        (prod >> 64) as u64
    }

    /// Uniform float in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
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
