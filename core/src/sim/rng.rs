//! Small, fast, seeded pseudo-random generators (no dependency).
//!
//! - [`SplitMix64`]: Vigna's 64-bit mixer/generator; seeds the others and gives
//!   each simulated device its own independent stream (8 bytes of state).
//! - [`Xoshiro256pp`]: xoshiro256++ 1.0 (Blackman & Vigna), the general-purpose
//!   generator for territory-level draws.
//!
//! Both produce identical sequences on every platform: the simulator's output is a
//! pure function of its seed.

/// The SplitMix64 finalizer: a bijective 64-bit mix (also used as a hash).
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash a few integers into one well-mixed u64 (seed derivation).
#[inline]
pub fn hash2(a: u64, b: u64) -> u64 {
    mix64(mix64(a ^ 0x6a09_e667_f3bc_c908).wrapping_add(b.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// Common sampling helpers over a source of uniform u64.
pub trait Rng {
    fn next_u64(&mut self) -> u64;

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    #[inline]
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [0, n) (n > 0), Lemire's multiply-shift (bias < 2^-64·n).
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability p.
    #[inline]
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box-Muller; one of the pair is discarded to keep the state
    /// small and the stream position independent of caching).
    #[inline]
    fn normal(&mut self) -> f64 {
        // u1 in (0, 1] so ln is finite.
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Approximately standard normal from one draw: Irwin-Hall sum of four 16-bit
    /// uniforms, rescaled to unit variance (bounded at about ±3.46). Used for sensor
    /// noise, where the shape of the far tails does not matter and speed does.
    #[inline]
    fn fast_normal(&mut self) -> f64 {
        let x = self.next_u64();
        let s = (x & 0xffff) + ((x >> 16) & 0xffff) + ((x >> 32) & 0xffff) + (x >> 48);
        // mean 2 * 65535, variance 4 * (65536^2 - 1) / 12
        (s as f64 - 131_070.0) * (3.0f64.sqrt() / 65_536.0)
    }

    /// Exponential with the given mean.
    #[inline]
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Log-normal with the given arithmetic mean and log-space sigma.
    #[inline]
    fn lognormal_mean(&mut self, mean: f64, sigma: f64) -> f64 {
        mean * (sigma * self.normal() - 0.5 * sigma * sigma).exp()
    }

    /// Index drawn from non-negative weights (all zero: index 0).
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return 0;
        }
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// SplitMix64 (Steele, Lea & Flood; Vigna's reference constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
}

impl Rng for SplitMix64 {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
}

/// xoshiro256++ 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    /// Seed the four words from SplitMix64, as the authors recommend.
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self::from_state(s)
    }

    /// Raw state (must not be all zero; an all-zero state is replaced by a fixed one).
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] {
            return Self::new(0x853c_49e6_748f_ea9b);
        }
        Xoshiro256pp { s }
    }
}

impl Rng for Xoshiro256pp {
    #[inline]
    fn next_u64(&mut self) -> u64 {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_reference_vector() {
        // Reference implementation, state {1, 2, 3, 4}.
        let mut r = Xoshiro256pp::from_state([1, 2, 3, 4]);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [41943041, 58720359, 3588806011781223, 3591011842654386]
        );
    }

    #[test]
    fn splitmix_reference_vector() {
        // Vigna's splitmix64.c with seed 1234567.
        let mut r = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423
            ]
        );
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Xoshiro256pp::new(42);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let x = r.normal();
            s += x;
            s2 += x * x;
        }
        let mean = s / f64::from(n);
        let var = s2 / f64::from(n) - mean * mean;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let x = r.fast_normal();
            assert!(x.abs() < 3.5);
            s += x;
            s2 += x * x;
        }
        assert!((s / f64::from(n)).abs() < 0.01);
        assert!((s2 / f64::from(n) - 1.0).abs() < 0.02);
        let mut u = 0.0;
        let mut e = 0.0;
        let mut ln = 0.0;
        for _ in 0..n {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            u += x;
            e += r.exp(3.0);
            ln += r.lognormal_mean(2.0, 0.5);
        }
        assert!((u / f64::from(n) - 0.5).abs() < 0.005);
        assert!((e / f64::from(n) - 3.0).abs() < 0.05);
        assert!((ln / f64::from(n) - 2.0).abs() < 0.02);
        let mut counts = [0u32; 5];
        for _ in 0..n {
            counts[r.below(5) as usize] += 1;
        }
        for c in counts {
            assert!((f64::from(c) / f64::from(n) - 0.2).abs() < 0.01);
        }
        let mut w = [0u32; 3];
        for _ in 0..n {
            w[r.weighted(&[1.0, 0.0, 3.0])] += 1;
        }
        assert_eq!(w[1], 0);
        assert!((f64::from(w[2]) / f64::from(n) - 0.75).abs() < 0.01);
    }

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = {
            let mut r = Xoshiro256pp::new(7);
            (0..10).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Xoshiro256pp::new(7);
            (0..10).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Xoshiro256pp::new(8);
            (0..10).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
