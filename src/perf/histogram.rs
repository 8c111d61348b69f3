//! A small log-scale histogram of durations: constant memory whatever the number of samples,
//! mergeable across shards, with percentiles accurate to about 6%.
//!
//! Values are microseconds. Below 8 µs every value has its own bucket; above, each doubling is
//! split into 8 buckets, so a bucket is at most 1/8 of its lower bound wide and the midpoint
//! reported for it is within 1/16 (6.25%) of any value in it. The bucket vector grows only as
//! far as the largest value seen (about 200 buckets for a minute).

use std::time::Duration;

/// Buckets per doubling, as a power of two.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;

/// Counts, total, extremes and a log-bucketed distribution of durations.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    buckets: Vec<u32>,
    count: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
}

fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exponent = 63 - u64::from(us.leading_zeros());
    let mantissa = (us >> (exponent - u64::from(SUB_BITS))) & (SUB - 1);
    (SUB + (exponent - u64::from(SUB_BITS)) * SUB + mantissa) as usize
}

/// The smallest value of a bucket, and its width.
fn bucket_bounds(bucket: usize) -> (u64, u64) {
    let bucket = bucket as u64;
    if bucket < SUB {
        return (bucket, 1);
    }
    let exponent = (bucket - SUB) / SUB + u64::from(SUB_BITS);
    let mantissa = (bucket - SUB) % SUB;
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    ((SUB + mantissa) * width, width)
}

/// Microseconds in `duration`, saturating.
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Histogram {
    /// Adds one value.
    pub(crate) fn record(&mut self, us: u64) {
        let bucket = bucket_of(us);
        if self.buckets.len() <= bucket {
            self.buckets.resize(bucket + 1, 0);
        }
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.min_us = if self.count == 0 {
            us
        } else {
            self.min_us.min(us)
        };
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds every value of `other`.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine = mine.saturating_add(*theirs);
        }
        self.min_us = if self.count == 0 {
            other.min_us
        } else {
            self.min_us.min(other.min_us)
        };
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// How many values.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Their sum, in microseconds.
    pub(crate) fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// The largest, in microseconds (0 when empty).
    pub(crate) fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The value below which a fraction `q` of the values fall (0 when empty): the midpoint of
    /// the bucket holding that rank, kept within the smallest and largest values seen.
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let (low, width) = bucket_bounds(bucket);
                let middle = low as f64 + (width as f64 - 1.0) / 2.0;
                return middle.clamp(self.min_us as f64, self.max_us as f64);
            }
        }
        self.max_us as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order_and_round_trip() {
        let mut last = 0;
        for us in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, u64::MAX / 3, u64::MAX]) {
            let bucket = bucket_of(us);
            assert!(bucket >= last, "{us}");
            last = bucket;
            let (low, width) = bucket_bounds(bucket);
            assert!(
                low <= us && us - low < width,
                "{us} not in [{low}, +{width})"
            );
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut histogram = Histogram::default();
        for us in [3, 1, 2] {
            histogram.record(us);
        }
        assert_eq!(histogram.quantile_us(0.5), 2.0);
        assert_eq!(histogram.quantile_us(1.0), 3.0);
        assert_eq!(histogram.quantile_us(0.0), 1.0);
        assert_eq!((histogram.count(), histogram.sum_us()), (3, 6));
    }

    #[test]
    fn quantiles_are_within_the_promised_error() {
        let mut histogram = Histogram::default();
        for us in 1..=10_000u64 {
            histogram.record(us * 37);
        }
        for (q, exact) in [(0.5, 5000.0 * 37.0), (0.95, 9500.0 * 37.0)] {
            let got = histogram.quantile_us(q);
            assert!(
                (got - exact).abs() / exact < 0.0625,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(histogram.max_us(), 370_000);
    }

    #[test]
    fn merging_equals_recording_everything() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for us in 0..1000u64 {
            let value = us * us;
            if us % 3 == 0 { &mut a } else { &mut b }.record(value);
            all.record(value);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert_eq!(a.sum_us(), all.sum_us());
        assert_eq!(a.max_us(), all.max_us());
        assert_eq!(a.quantile_us(0.95), all.quantile_us(0.95));
        let mut empty = Histogram::default();
        empty.merge(&all);
        assert_eq!(empty.quantile_us(0.0), 0.0);
    }
}
