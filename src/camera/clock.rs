//! The camera's clocks, and the truth about them. A real camera's NTP clock (the one its RTCP
//! sender reports quote, RFC 3550 §6.4.1) can be off from this machine's, its RTP clocks can
//! run fast or slow against it, its NTP client can step it, and its frames leave late by
//! varying amounts, and a cheap camera stamps a sender report's NTP time when it builds the
//! report rather than when the frame was captured, so that each report is off by a little and
//! now and then one by a lot. The test camera does each on demand, and writes down what it
//! did: for every video frame, its RTP time, when it was captured by the camera's own clock,
//! and when it was sent by this machine's.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;

use crate::ntp;

/// How the camera's clocks err; all exact by default.
#[derive(Clone, Debug, Default)]
pub struct CameraClock {
    /// The NTP clock is this many seconds ahead of this machine's (negative: behind).
    pub offset: f64,
    /// The RTP clocks run this many parts per million fast (negative: slow) against the NTP
    /// clock.
    pub rtp_drift_ppm: f64,
    /// The NTP clock steps by `.0` seconds at `.1` seconds into each session (media time), as a
    /// camera's NTP client correcting it does.
    pub ntp_step: Option<(f64, f64)>,
    /// Each frame goes out up to this much later than due, at random (from `seed`).
    pub send_jitter: Duration,
    /// Each sender report's NTP time is off by up to this much either way, at random (from
    /// `seed`); one report in 50 is off by 20 to 50 times as much.
    pub sr_jitter: Duration,
    /// Seeds the send jitter, so a run can be repeated.
    pub seed: u64,
}

/// With `sr_jitter`, one report in this many is far off.
pub(crate) const FAR_OFF_EVERY: u64 = 50;

/// One session's clocks: the NTP clock at media time 0, and the configured errors.
pub(crate) struct SessionClock {
    /// NTP-format time of media time 0 on the camera's clock, before any step.
    ntp_zero: u64,
    drift: f64,
    step: Option<(f64, f64)>,
    jitter: Duration,
    rng: u64,
    sr_jitter: f64,
    sr_rng: u64,
}

impl SessionClock {
    /// The clock of a session starting now; `fixed` pins media time 0 to an NTP time (the
    /// tests' fixed point) instead of this machine's clock plus the offset.
    pub(crate) fn new(clock: &CameraClock, fixed: Option<u64>, session: usize) -> SessionClock {
        let ntp_zero = fixed.unwrap_or_else(|| {
            let now = ntp::to_unix(ntp::from_system_time(std::time::SystemTime::now()));
            ntp::from_unix(now + (clock.offset * 1e9) as i128)
        });
        SessionClock {
            ntp_zero,
            drift: 1.0 + clock.rtp_drift_ppm * 1e-6,
            step: clock.ntp_step,
            jitter: clock.send_jitter,
            rng: (clock.seed ^ (session as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
            sr_jitter: clock.sr_jitter.as_secs_f64(),
            sr_rng: (clock.seed.rotate_left(17)
                ^ (session as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93))
                | 1,
        }
    }

    /// The camera's NTP clock (64-bit NTP format) at `media` seconds into the session.
    pub(crate) fn ntp_at(&self, media: f64) -> u64 {
        let stepped = match self.step {
            Some((by, at)) if media >= at => media + by,
            _ => media,
        };
        let nanos = ntp::to_unix(self.ntp_zero) + (stepped * 1e9).round() as i128;
        ntp::from_unix(nanos)
    }

    /// The NTP time a sender report quotes for `media` seconds into the session: the clock's,
    /// off by the report jitter.
    pub(crate) fn report_ntp_at(&mut self, media: f64) -> u64 {
        if self.sr_jitter == 0.0 {
            return self.ntp_at(media);
        }
        let unit = |rng: &mut u64| (xorshift(rng) % 2_000_001) as f64 / 1e6 - 1.0;
        let mut off = unit(&mut self.sr_rng) * self.sr_jitter;
        if xorshift(&mut self.sr_rng).is_multiple_of(FAR_OFF_EVERY) {
            let far = 20.0 + 30.0 * (unit(&mut self.sr_rng) + 1.0) / 2.0;
            off = far * self.sr_jitter * off.signum();
        }
        let nanos = ntp::to_unix(self.ntp_at(media)) + (off * 1e9).round() as i128;
        ntp::from_unix(nanos)
    }

    /// RTP ticks on the camera's (drifting) RTP clock for `ticks` of exact media time.
    pub(crate) fn rtp_ticks(&self, ticks: f64) -> i64 {
        (ticks * self.drift).round() as i64
    }

    /// How late the next frame goes out, in seconds.
    pub(crate) fn next_jitter(&mut self) -> f64 {
        if self.jitter.is_zero() {
            return 0.0;
        }
        (xorshift(&mut self.rng) % 1_000_001) as f64 / 1e6 * self.jitter.as_secs_f64()
    }
}

/// The next of a xorshift64 sequence: random enough for faults, and repeatable.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `--truth FILE`: one CSV row per video frame sent.
pub(crate) struct Truth {
    path: PathBuf,
    writer: Mutex<csv::Writer<std::fs::File>>,
}

/// A row of the truth file.
#[derive(serde::Serialize)]
struct TruthRow {
    /// Which session (PLAY) of the camera's, from 0: RTP times repeat across sessions.
    session: usize,
    /// The frame's RTP timestamp, as sent.
    rtp: u32,
    /// When the frame was captured, by the camera's own NTP clock, as Unix seconds.
    capture_unix: String,
    /// When its last packet was handed to the socket, by this machine's clock, as Unix seconds.
    sent_unix: String,
}

impl Truth {
    pub(crate) fn create(path: &Path) -> anyhow::Result<Truth> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Truth {
            path: path.to_owned(),
            writer: Mutex::new(csv::Writer::from_writer(file)),
        })
    }

    /// Writes one frame's row (flushed: the file is read while the camera runs).
    pub(crate) fn frame(&self, session: usize, rtp: u32, capture_ntp: u64, sent_ntp: u64) {
        let row = TruthRow {
            session,
            rtp,
            capture_unix: unix_text(capture_ntp),
            sent_unix: unix_text(sent_ntp),
        };
        let mut w = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = w.serialize(row).and_then(|()| Ok(w.flush()?)) {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

/// An NTP-format time as Unix seconds with nine decimals.
fn unix_text(ntp: u64) -> String {
    let nanos = ntp::to_unix(ntp);
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_err_as_told() {
        let clock = CameraClock {
            offset: 0.25,
            rtp_drift_ppm: 80.0,
            ntp_step: Some((0.2, 30.0)),
            send_jitter: Duration::from_millis(20),
            sr_jitter: Duration::from_millis(5),
            seed: 7,
        };
        let base = 0xE000_0000_0000_0000;
        let mut c = SessionClock::new(&clock, Some(base), 0);
        let secs = |ntp: u64| (ntp - base) as f64 / 4_294_967_296.0;
        assert!((secs(c.ntp_at(10.0)) - 10.0).abs() < 1e-9);
        assert!((secs(c.ntp_at(30.0)) - 30.2).abs() < 1e-9, "stepped");
        assert_eq!(c.rtp_ticks(90_000.0 * 100.0), 9_000_720);
        for _ in 0..1000 {
            let j = c.next_jitter();
            assert!((0.0..=0.02).contains(&j));
        }
        // Reports are off by up to 5 ms, and one in 50 or so by 100 to 250 ms.
        let (mut near, mut far) = (0, 0);
        for k in 0..5000 {
            let off = (ntp::to_unix(c.report_ntp_at(f64::from(k)))
                - ntp::to_unix(c.ntp_at(f64::from(k))))
            .abs();
            if off <= 5_000_000 {
                near += 1;
            } else {
                assert!((99_000_000..=250_000_000).contains(&off), "{off}");
                far += 1;
            }
        }
        assert!((50..=150).contains(&far), "{far} far off of {}", near + far);
        // Unpinned, the clock is this machine's plus the offset.
        let host = SessionClock::new(&clock, None, 0);
        let now = ntp::to_unix(ntp::from_system_time(std::time::SystemTime::now()));
        let ahead = (ntp::to_unix(host.ntp_at(0.0)) - now) as f64 / 1e9;
        assert!((ahead - 0.25).abs() < 0.05, "{ahead}");
        assert_eq!(unix_text(ntp::from_unix(1_500_000_000)), "1.500000000");
    }
}
