//! Zipf-distributed ranks in O(1) memory, by rejection-inversion (Hörmann and Derflinger,
//! "Rejection-inversion to generate variates from monotone discrete distributions", 1996).
//!
//! Rank k in 1..=n is drawn with probability proportional to h(k) = k^-s. The method draws a
//! point u under the integral H of h (a continuous hat over the whole range), maps it back to
//! x = H⁻¹(u), rounds x to the rank k whose unit interval [k - 1/2, k + 1/2] holds it, and
//! keeps k only when u falls in the top h(k) of that interval's area. Since h is convex and
//! decreasing, that interval's area is at least h(k), so every rank is kept with probability
//! exactly proportional to h(k). Rank 1's interval is cut to area h(1) = 1 (the draw starts at
//! H(3/2) - 1) so it needs no test. A table of n cumulative weights would be simpler but
//! needs 8 bytes per key; this needs none.

use zookeeper_core::random::SplitMix64;

/// Draws Zipf-distributed ranks in 1..=n with exponent s.
#[derive(Clone, Debug)]
pub struct ZipfSampler {
    ranks: u64,
    exponent: f64,
    /// H(3/2) - 1: where rank 1's area (exactly h(1) = 1) starts.
    area_start: f64,
    /// H(n + 1/2): where rank n's interval ends.
    area_end: f64,
}

impl ZipfSampler {
    /// A sampler over ranks 1..=`ranks` with exponent `exponent` (s > 0).
    ///
    /// # Panics
    ///
    /// When `ranks` is 0 or `exponent` is not a positive finite number (validated settings
    /// never are).
    pub fn new(ranks: u64, exponent: f64) -> ZipfSampler {
        assert!(ranks >= 1, "a Zipf distribution needs at least one rank");
        assert!(
            exponent.is_finite() && exponent > 0.0,
            "the Zipf exponent must be positive (got {exponent})"
        );
        let mut sampler = ZipfSampler {
            ranks,
            exponent,
            area_start: 0.0,
            area_end: 0.0,
        };
        sampler.area_start = sampler.integral(1.5) - 1.0;
        sampler.area_end = sampler.integral(ranks as f64 + 0.5);
        sampler
    }

    /// The next rank, in 1..=n.
    pub fn sample(&self, rng: &mut SplitMix64) -> u64 {
        loop {
            let u = self.area_end + unit_interval(rng) * (self.area_start - self.area_end);
            let x = self.integral_inverse(u);
            let rank = ((x + 0.5).floor() as u64).clamp(1, self.ranks);
            let rank_f = rank as f64;
            if u >= self.integral(rank_f + 0.5) - self.density(rank_f) {
                return rank;
            }
        }
    }

    /// h(x) = x^-s.
    fn density(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    /// H(x) = (x^(1-s) - 1) / (1-s), or ln x when s = 1, written so it stays exact near s = 1.
    fn integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over((1.0 - self.exponent) * log_x) * log_x
    }

    /// H⁻¹(y) = (1 + (1-s) y)^(1/(1-s)), or e^y when s = 1.
    fn integral_inverse(&self, y: f64) -> f64 {
        let t = ((1.0 - self.exponent) * y).max(-1.0);
        (log1p_over(t) * y).exp()
    }
}

/// (e^t - 1) / t, and its limit 1 at t = 0.
fn expm1_over(t: f64) -> f64 {
    if t.abs() > 1e-8 {
        t.exp_m1() / t
    } else {
        1.0 + t / 2.0 * (1.0 + t / 3.0)
    }
}

/// ln(1 + t) / t, and its limit 1 at t = 0.
fn log1p_over(t: f64) -> f64 {
    if t.abs() > 1e-8 {
        t.ln_1p() / t
    } else {
        1.0 - t / 2.0 * (1.0 - t * 2.0 / 3.0)
    }
}

/// A uniform number in [0, 1) from the top 53 bits (all an f64 mantissa holds).
pub(crate) fn unit_interval(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws `samples` ranks and returns each rank's observed share next to its exact one.
    fn shares(ranks: u64, exponent: f64, samples: u32, seed: u64) -> Vec<(f64, f64)> {
        let sampler = ZipfSampler::new(ranks, exponent);
        let mut rng = SplitMix64::new(seed);
        let mut counts = vec![0u32; ranks as usize];
        for _ in 0..samples {
            let rank = sampler.sample(&mut rng);
            assert!(
                (1..=ranks).contains(&rank),
                "rank {rank} out of 1..={ranks}"
            );
            counts[rank as usize - 1] += 1;
        }
        let norm: f64 = (1..=ranks).map(|k| (k as f64).powf(-exponent)).sum();
        counts
            .iter()
            .enumerate()
            .map(|(index, &count)| {
                let exact = ((index + 1) as f64).powf(-exponent) / norm;
                (f64::from(count) / f64::from(samples), exact)
            })
            .collect()
    }

    #[test]
    fn ranks_follow_the_exact_probabilities() {
        // Below, above and at s = 1, where H switches to its logarithmic limit.
        for exponent in [0.5, 0.99, 1.0, 1.2, 2.0] {
            for (rank, (observed, exact)) in
                shares(20, exponent, 400_000, 7).into_iter().enumerate()
            {
                // 400 k samples: a share's standard error is below 0.0008.
                assert!(
                    (observed - exact).abs() < 0.004,
                    "s={exponent} rank {}: observed {observed:.4}, exact {exact:.4}",
                    rank + 1
                );
            }
        }
    }

    #[test]
    fn one_rank_is_always_drawn() {
        let sampler = ZipfSampler::new(1, 0.99);
        let mut rng = SplitMix64::new(1);
        assert!((0..1000).all(|_| sampler.sample(&mut rng) == 1));
    }

    #[test]
    fn a_large_range_favours_the_first_ranks_and_reaches_the_last() {
        let sampler = ZipfSampler::new(10_000_000, 0.99);
        let mut rng = SplitMix64::new(3);
        let draws: Vec<u64> = (0..200_000).map(|_| sampler.sample(&mut rng)).collect();
        let first = draws.iter().filter(|&&rank| rank == 1).count() as f64 / 200_000.0;
        let exact = 1.0
            / (1..=10_000_000u32)
                .map(|k| f64::from(k).powf(-0.99))
                .sum::<f64>();
        assert!(
            (first - exact).abs() < 0.003,
            "rank 1: {first:.4}, exact {exact:.4}"
        );
        assert!(draws.iter().any(|&rank| rank > 5_000_000));
        assert!(draws.iter().all(|&rank| rank <= 10_000_000));
    }

    #[test]
    fn the_same_seed_draws_the_same_ranks() {
        let sampler = ZipfSampler::new(1_000, 1.1);
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..100)
                .map(|_| sampler.sample(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }
}
