//! How long to wait before the next connection attempt: from 1 s, doubling, up to a cap, each
//! wait shortened by up to a fifth at random, so that many recorders of one site do not knock on
//! a rebooted camera (or a recovered network) in step.

use std::time::Duration;

/// The first wait.
const FIRST: Duration = Duration::from_secs(1);

pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
    /// xorshift64 state: jitter needs no cryptographic randomness.
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Backoff::with_seed(max, seed)
    }

    fn with_seed(max: Duration, seed: u64) -> Backoff {
        Backoff {
            next: FIRST.min(max),
            max,
            rng: seed | 1,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long (up to the cap).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fifth = (self.rng % 1000) as f64 / 1000.0 * 0.2;
        base.mul_f64(1.0 - fifth)
    }

    /// After a connection that worked: start again from the first wait.
    pub(crate) fn reset(&mut self) {
        self.next = FIRST.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::with_seed(Duration::from_secs(10), 42);
        let waits: Vec<f64> = (0..6).map(|_| b.next_delay().as_secs_f64()).collect();
        for (wait, base) in waits.iter().zip([1.0, 2.0, 4.0, 8.0, 10.0, 10.0]) {
            assert!(*wait <= base && *wait >= base * 0.8, "{waits:?}");
        }
        b.reset();
        assert!(b.next_delay() <= FIRST);
        let mut short = Backoff::with_seed(Duration::from_millis(500), 7);
        assert!(short.next_delay() <= Duration::from_millis(500));
    }
}
