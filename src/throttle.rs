//! Repeated warnings, made quiet: the first one, then at most one a minute saying how many were
//! held back. A recorder that runs for weeks must not print a line per frame or packet.

use std::time::{Duration, Instant};

/// How often a throttled warning may repeat.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Counts occurrences of one kind of event and says when one may be logged.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    last_logged: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// Logs at most once per [`WARN_INTERVAL`].
    pub(crate) const fn new() -> Throttle {
        Throttle::every(WARN_INTERVAL)
    }

    pub(crate) const fn every(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last_logged: None,
            held_back: 0,
        }
    }

    /// Counts one occurrence at `now`. `Some(n)`: log this one now, mentioning the `n` held back
    /// since the last one logged; `None`: stay quiet.
    pub(crate) fn hit_at(&mut self, now: Instant) -> Option<u64> {
        match self.last_logged {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }

    /// [`Throttle::hit_at`] now.
    pub(crate) fn hit(&mut self) -> Option<u64> {
        self.hit_at(Instant::now())
    }
}

/// " (N more like it since the last)" for a message about `held_back` held-back events.
pub(crate) fn held_back_note(held_back: u64) -> String {
    match held_back {
        0 => String::new(),
        n => format!(" ({n} more like it since the last such message)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_then_once_per_interval_with_counts() {
        let mut t = Throttle::every(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.hit_at(t0), Some(0));
        for s in 1..60 {
            assert_eq!(t.hit_at(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(t.hit_at(t0 + Duration::from_secs(60)), Some(59));
        assert_eq!(t.hit_at(t0 + Duration::from_secs(61)), None);
        assert_eq!(held_back_note(0), "");
        assert_eq!(
            held_back_note(2),
            " (2 more like it since the last such message)"
        );
    }
}
