//! A track's timeline: the camera's RTP times (retina's extended timestamps, RFC 3550 §5.1)
//! rebased to the recording's start, with discontinuities handled the same way for every track.
//!
//! A forward step beyond [`MAX_FORWARD_JUMP`] is a discontinuity (a camera's clock reset, say),
//! not elapsed time, and the file keeps the real gap; a backward step beyond
//! [`MAX_BACKWARD_STEP`] makes the timeline continue where it was. Smaller backward steps are
//! B-frame reordering (video) or overlap (audio), which the tracks handle themselves.

use std::time::Duration;

use super::Stats;

/// Retina's own default limit on forward steps, which the recorder does not enforce (see
/// `rtsp::connect`).
pub(crate) const MAX_FORWARD_JUMP: Duration = Duration::from_secs(10);

/// Backward steps up to this are reordering or overlap, not a discontinuity.
pub(crate) const MAX_BACKWARD_STEP: Duration = Duration::from_secs(1);

/// `d` in ticks of `clock_rate`.
pub(crate) fn duration_ticks(d: Duration, clock_rate: u32) -> u64 {
    (d.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u64
}

/// How a time relates to the track's latest one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Steady,
    JumpForward,
    JumpBackward,
}

/// One track's mapping from the camera's timestamps to the recording's.
pub(crate) struct Timeline {
    /// "video" or "audio", for messages.
    kind: &'static str,
    clock_rate: u32,
    /// Added to rebased times: continues the timeline after backward jumps (and, for audio,
    /// carries the shifts that keep overlapping frames in order).
    pub offset: i64,
}

impl Timeline {
    pub(super) fn new(kind: &'static str, clock_rate: u32) -> Timeline {
        Timeline {
            kind,
            clock_rate,
            offset: 0,
        }
    }

    /// Ticks of this timeline in `d`.
    pub(super) fn ticks(&self, d: Duration) -> i64 {
        duration_ticks(d, self.clock_rate) as i64
    }

    /// `pts` on this timeline: relative to `base` (the recording's first), plus the offset.
    /// Saturating: timestamps are the camera's, and a hostile one must not panic the muxer.
    pub(super) fn place(&self, pts: i64, base: i64) -> i64 {
        pts.saturating_sub(base).saturating_add(self.offset)
    }

    /// Whether `t` jumps away from `reference`, the track's latest time.
    pub(super) fn step(&self, t: i64, reference: i64) -> Step {
        if t > reference.saturating_add(self.ticks(MAX_FORWARD_JUMP)) {
            Step::JumpForward
        } else if t < reference.saturating_sub(self.ticks(MAX_BACKWARD_STEP)) {
            Step::JumpBackward
        } else {
            Step::Steady
        }
    }

    /// Handles a jump of `t` away from `reference`: logs and counts it; after a backward jump
    /// the timeline continues at `continue_at`. Returns where `t` goes, and whether it comes
    /// after a gap (a forward jump, kept in the file).
    pub(super) fn jump(
        &mut self,
        step: Step,
        t: i64,
        reference: i64,
        continue_at: i64,
        stats: &mut Stats,
    ) -> (i64, bool) {
        stats.timestamp_jumps += 1;
        let forward = step == Step::JumpForward;
        tracing::warn!(
            "{} timestamps jumped {:+.3} s; {}",
            self.kind,
            t.saturating_sub(reference) as f64 / f64::from(self.clock_rate),
            if forward {
                "the recording keeps the gap"
            } else {
                "the recording's timeline continues without it"
            }
        );
        if forward {
            return (t, true);
        }
        self.offset = self.offset.saturating_add(continue_at.saturating_sub(t));
        (continue_at, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_both_ways() {
        let mut line = Timeline::new("video", 90_000);
        let mut stats = Stats::default();
        assert_eq!(line.step(3600, 0), Step::Steady);
        assert_eq!(line.step(-3600, 0), Step::Steady); // B-frame reordering
        let far = 30 * 90_000;
        assert_eq!(line.step(far, 0), Step::JumpForward);
        assert_eq!(
            line.jump(Step::JumpForward, far, 0, 3600, &mut stats),
            (far, true)
        );
        assert_eq!(line.offset, 0);
        assert_eq!(line.step(-far, 0), Step::JumpBackward);
        assert_eq!(
            line.jump(Step::JumpBackward, -far, 0, 3600, &mut stats),
            (3600, false)
        );
        assert_eq!(line.place(-far, 0), 3600, "later frames continue too");
        assert_eq!(stats.timestamp_jumps, 2);
        let _ = line.place(i64::MIN, i64::MAX); // saturates, no panic
    }
}
