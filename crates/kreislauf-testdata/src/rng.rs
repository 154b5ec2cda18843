//! The one source of randomness: ChaCha8 with our own, version-stable derivations.
//!
//! `rand`'s distributions (`gen_range`, `gen_bool`, `shuffle`) may change their output between
//! minor versions. Only the raw ChaCha8 stream is promised to stay the same, so every
//! derivation here uses `next_u64` and integer or exactly-rounded floating-point arithmetic
//! (no `exp`, `ln` or other libm calls, whose last bit may differ between platforms).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent streams of one seed, so that changing e.g. the error rates leaves the
/// generated persons the same.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Persons = 1,
    Records = 2,
    Shuffle = 3,
}

pub(crate) struct Rand(ChaCha8Rng);

impl Rand {
    pub(crate) fn new(seed: u64, stream: Stream) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream as u64);
        Self(rng)
    }

    /// A generator for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(seed: u64) -> Self {
        Self::new(seed, Stream::Records)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for any `n` we use).
    /// Returns 0 for `n == 0` so callers never divide by zero.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi` (returns `lo` if `hi < lo`).
    pub(crate) fn between(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as usize + 1) as u32
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (`p <= 0` never, `p >= 1` always, NaN never).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len()))
    }

    /// One decimal digit as a char.
    pub(crate) fn digit(&mut self) -> char {
        char::from(b'0' + self.below(10) as u8)
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Cumulative integer weights for O(log n) weighted choice.
#[derive(Debug, Clone, Default)]
pub(crate) struct Weighted {
    cumulative: Vec<u64>,
    /// What each slot stands for (an index into some table).
    items: Vec<u32>,
}

impl Weighted {
    pub(crate) fn new(weights: impl IntoIterator<Item = (u32, u64)>) -> Self {
        let mut total = 0u64;
        let mut cumulative = Vec::new();
        let mut items = Vec::new();
        for (item, w) in weights {
            if w == 0 {
                continue;
            }
            total += w;
            cumulative.push(total);
            items.push(item);
        }
        Self { cumulative, items }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A weighted item, or `None` when all weights were zero.
    pub(crate) fn sample(&self, rng: &mut Rand) -> Option<u32> {
        let total = *self.cumulative.last()?;
        let x = ((u128::from(rng.next_u64()) * u128::from(total)) >> 64) as u64;
        let slot = self.cumulative.partition_point(|&c| c <= x);
        self.items.get(slot).copied()
    }
}

/// Converts a probability share (any finite non-negative f64) into an integer weight with
/// exact arithmetic, so weighted choice among shares stays platform-independent.
pub(crate) fn share_weight(share: f64) -> u64 {
    if share.is_finite() && share > 0.0 {
        (share * 1_000_000.0) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rand::new(7, Stream::Persons);
        let mut b = Rand::new(7, Stream::Persons);
        let mut c = Rand::new(7, Stream::Records);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn chacha8_stream_is_pinned() {
        // If this changes, every generated data set changes (rand_chacha or seeding changed).
        let mut r = Rand::new(42, Stream::Persons);
        assert_eq!(r.next_u64(), 13_222_472_167_927_179_408);
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut r = Rand::for_test(1);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
        assert_eq!(r.below(0), 0);
        for _ in 0..100 {
            let x = r.between(3, 5);
            assert!((3..=5).contains(&x));
        }
        assert_eq!(r.between(5, 3), 5);
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let w = Weighted::new([(0, 0), (1, 5), (2, 0)]);
        let mut r = Rand::for_test(3);
        for _ in 0..100 {
            assert_eq!(w.sample(&mut r), Some(1));
        }
        assert_eq!(Weighted::new([(0, 0)]).sample(&mut r), None);
    }
}
