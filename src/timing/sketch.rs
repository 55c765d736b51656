//! Percentiles of a stream of durations in memory that does not grow with the stream: values
//! are counted in bins of a width that starts at 1 µs (the resolution `timing` prints) and
//! doubles whenever they spread over more than [`MAX_BINS`] bins. A percentile is then off by
//! at most the final width ([`Quantiles::error_s`]); the least, greatest and mean are exact.

use std::collections::BTreeMap;

/// Bins kept at most (about 1.5 MiB): 32 ms of spread at 1 µs.
const MAX_BINS: usize = 1 << 15;

/// Counts of durations, binned.
#[derive(Clone, Debug)]
pub struct Quantiles {
    /// Bin (value / width, rounded; halved as the width doubles) → how many values fell in it.
    bins: BTreeMap<i64, u64>,
    width: i64,
    count: u64,
    min: i64,
    max: i64,
    sum: i128,
}

impl Default for Quantiles {
    fn default() -> Self {
        Quantiles {
            bins: BTreeMap::new(),
            width: 1_000,
            count: 0,
            min: i64::MAX,
            max: i64::MIN,
            sum: 0,
        }
    }
}

impl Quantiles {
    /// Counts `nanos`.
    pub fn add(&mut self, nanos: i64) {
        // Rounded, so that values on the microsecond are kept exactly.
        let bin = nanos.saturating_add(self.width / 2).div_euclid(self.width);
        *self.bins.entry(bin).or_default() += 1;
        self.count += 1;
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
        self.sum += i128::from(nanos);
        if self.bins.len() > MAX_BINS {
            self.coarsen();
        }
    }

    /// Counts seconds `s` (to the nanosecond).
    pub fn add_secs(&mut self, s: f64) {
        self.add((s * 1e9).round() as i64);
    }

    fn coarsen(&mut self) {
        self.width *= 2;
        let old = std::mem::take(&mut self.bins);
        for (k, n) in old {
            *self.bins.entry(k.div_euclid(2)).or_default() += n;
        }
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value with `rank` values below it (0-based), in seconds: its bin's, within the
    /// least and greatest.
    pub fn at_rank(&self, rank: u64) -> Option<f64> {
        if rank >= self.count {
            return None;
        }
        let mut below = 0;
        for (&k, &n) in &self.bins {
            below += n;
            if below > rank {
                let at = k.saturating_mul(self.width);
                return Some(at.clamp(self.min, self.max) as f64 / 1e9);
            }
        }
        None
    }

    /// The `q` quantile (0 to 1) in seconds, as the value of rank `round((n - 1) q)`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let last = self.count.checked_sub(1)?;
        self.at_rank((last as f64 * q).round() as u64)
    }

    /// The least value, seconds.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then(|| self.min as f64 / 1e9)
    }

    /// The greatest value, seconds.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then(|| self.max as f64 / 1e9)
    }

    /// The mean, seconds.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64 / 1e9)
    }

    /// How far a quantile may be from the exact one, seconds.
    pub fn error_s(&self) -> f64 {
        self.width as f64 / 1e9
    }

    /// Counts everything `other` counted.
    pub fn merge(&mut self, other: &Quantiles) {
        while other.width > self.width {
            self.coarsen();
        }
        let ratio = self.width / other.width;
        for (&k, &n) in &other.bins {
            *self.bins.entry(k.div_euclid(ratio)).or_default() += n;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        while self.bins.len() > MAX_BINS {
            self.coarsen();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_at_the_microsecond_and_bounded_beyond() {
        let mut q = Quantiles::default();
        for us in 0..1001 {
            q.add(us * 1_000);
        }
        assert_eq!(q.quantile(0.5), Some(0.000_5));
        assert_eq!(q.min(), Some(0.0));
        assert_eq!(q.max(), Some(0.001));
        assert_eq!(q.quantile(1.0), Some(0.001));
        // A spread of 10 s at 1 µs steps: bins coarsen, the error stays within their width.
        let mut wide = Quantiles::default();
        let values: Vec<i64> = (0..200_000).map(|i| i * 50_000).collect();
        for &v in &values {
            wide.add(v);
        }
        assert!(wide.bins.len() <= MAX_BINS);
        for q in [0.01, 0.5, 0.99] {
            let exact = values[((values.len() - 1) as f64 * q).round() as usize] as f64 / 1e9;
            let got = wide.quantile(q).expect("values");
            assert!((got - exact).abs() <= wide.error_s(), "{q}: {got} {exact}");
        }
        let mut merged = Quantiles::default();
        merged.merge(&q);
        merged.merge(&wide);
        assert_eq!(merged.count(), 201_001);
        assert_eq!(merged.max(), wide.max());
        assert!(Quantiles::default().quantile(0.5).is_none());
    }
}
