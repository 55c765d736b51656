//! The audio track: held until the video starts, then aligned to it; frames that overlap their
//! predecessor moved later (within [`MAX_AUDIO_SHIFT`]) so that audio stays in order. Like the
//! video track, it outlives files and sessions.

use std::collections::VecDeque;
use std::time::Duration;

use super::timeline::{Step, Timeline, duration_ticks};
use super::video::{Resume, Start, ntp_ticks};
use super::{AudioConfig, AudioInput, Stats};

/// At most this much audio is held while waiting for the first video keyframe.
const MAX_AUDIO_BEFORE_VIDEO: Duration = Duration::from_secs(10);

/// An audio frame that overlaps its predecessor (some servers' audio steps back ~20 ms) is moved
/// to follow it, as long as that delays it by at most this; beyond, frames are dropped until
/// the timestamps catch up. This bounds the A/V offset such corrections can build up.
pub(crate) const MAX_AUDIO_SHIFT: Duration = Duration::from_millis(100);

/// An audio sample on its way to a fragment.
pub(crate) struct AudioSample {
    /// Decode (and presentation) time.
    pub t: u64,
    /// How long it plays; until the next sample's time once that is known.
    pub duration: u32,
    /// First sample after a forward timestamp jump: starts a new fragment.
    pub after_gap: bool,
    /// When it was received (NTP format).
    pub recv: u64,
    pub data: Vec<u8>,
}

pub(crate) struct AudioTrack {
    pub clock_rate: u32,
    pub sample_entry: mp4_atom::Codec,
    base_pts: Option<i64>,
    /// Frames received before video started, awaiting the video's start time.
    waiting: VecDeque<AudioInput>,
    /// The latest sample, its duration still the frame's own.
    pending: Option<AudioSample>,
    timeline: Timeline,
    /// How much of the timeline's offset is shifts past overlaps, bounded by
    /// [`MAX_AUDIO_SHIFT`] and taken back at the next hole.
    shift: i64,
    /// Receive time of the latest frame taken.
    last_recv: u64,
    /// Set between sessions: where the next session's audio may start, at the earliest.
    resume: Option<Resume>,
    /// The next sample follows an outage: it starts a new fragment.
    gap_before_next: bool,
}

impl AudioTrack {
    pub(super) fn new(config: &AudioConfig) -> AudioTrack {
        AudioTrack {
            clock_rate: config.clock_rate,
            sample_entry: config.sample_entry.clone(),
            base_pts: None,
            waiting: VecDeque::new(),
            pending: None,
            timeline: Timeline::new("audio", config.clock_rate),
            shift: 0,
            last_recv: 0,
            resume: None,
            gap_before_next: false,
        }
    }

    /// Holds a frame that arrived before the video started (at most
    /// [`MAX_AUDIO_BEFORE_VIDEO`] of them).
    pub(super) fn wait(&mut self, frame: AudioInput, stats: &mut Stats) {
        self.waiting.push_back(frame);
        let max = duration_ticks(MAX_AUDIO_BEFORE_VIDEO, self.clock_rate) as i64;
        while let (Some(first), Some(last)) = (self.waiting.front(), self.waiting.back()) {
            if last.pts - first.pts <= max {
                break;
            }
            self.waiting.pop_front();
            stats.dropped_audio_before_start += 1;
        }
    }

    /// Starts the track (or, after an outage, its next session) at the instant the video did:
    /// `start` on the video's clock of `video_rate`. Returns the frames that waited for it. Both
    /// streams' timestamps count from `RTP-Info`'s NPT 0.
    pub(super) fn start_at(&mut self, start: Start, video_rate: u32) -> VecDeque<AudioInput> {
        let convert = |ticks: i64| {
            let t = i128::from(ticks) * i128::from(self.clock_rate);
            (t / i128::from(video_rate.max(1))) as i64
        };
        self.base_pts = Some(convert(start.pts));
        self.timeline.offset = convert(start.at);
        if let Some(r) = self.resume.take() {
            // Never before the audio already written.
            self.timeline.offset = self.timeline.offset.max(r.end);
            self.gap_before_next = true;
        }
        std::mem::take(&mut self.waiting)
    }

    /// Takes a frame once the recording has started; returns the sample before it, whose
    /// duration this frame settles.
    pub(super) fn push(&mut self, frame: AudioInput, stats: &mut Stats) -> Option<AudioSample> {
        if self.base_pts.is_none()
            && let Some(r) = self.resume.take()
        {
            // Audio only, after an outage: as much later as the outage lasted.
            let gap = ntp_ticks(frame.recv, r.last_recv, self.clock_rate);
            self.timeline.offset = r.end.saturating_add(gap.max(0));
            self.gap_before_next = true;
        }
        let base = *self.base_pts.get_or_insert(frame.pts); // audio-only: starts here
        self.last_recv = frame.recv;
        if frame.data.is_empty() || frame.samples == 0 {
            stats.dropped_empty += 1;
            return None;
        }
        let mut t = self.timeline.place(frame.pts, base);
        let mut after_gap = std::mem::take(&mut self.gap_before_next);
        if let Some(prev) = &self.pending {
            let prev_end = (prev.t as i64).saturating_add(i64::from(prev.duration));
            let step = self.timeline.step(t, prev_end);
            if step != Step::Steady {
                (t, after_gap) = self.timeline.jump(step, t, prev_end, prev_end, stats);
            } else {
                t = self.keep_in_order(t, prev_end, stats)?;
            }
        }
        let Ok(t) = u64::try_from(t) else {
            stats.dropped_audio_before_start += 1;
            return None;
        };
        let next = AudioSample {
            t,
            duration: frame.samples,
            after_gap,
            recv: frame.recv,
            data: frame.data,
        };
        let mut prev = self.pending.replace(next)?;
        // Before a gap, a frame lasts as long as it plays; otherwise until the next one (a
        // small hole in the timestamps stays a hole in time, not a shift of what follows).
        if !after_gap {
            prev.duration = u32::try_from(t - prev.t).unwrap_or(u32::MAX);
        }
        Some(prev)
    }

    /// A small step back moves this and later frames to follow the previous one; a hole takes
    /// earlier shifts back first. `None`: overlapping by more than the shift allowed, dropped.
    fn keep_in_order(&mut self, t: i64, prev_end: i64, stats: &mut Stats) -> Option<i64> {
        if t < prev_end {
            let overlap = prev_end - t;
            if self.shift + overlap > self.timeline.ticks(MAX_AUDIO_SHIFT) {
                stats.dropped_audio_backward += 1;
                return None;
            }
            // Later frames keep this shift: the step back was the server's, not a repeat.
            self.shift += overlap;
            self.timeline.offset += overlap;
            stats.shifted_audio += 1;
            return Some(prev_end);
        }
        if t > prev_end && self.shift > 0 {
            // A hole in the timestamps: take back earlier shifts first, restoring sync.
            let back = self.shift.min(t - prev_end);
            self.shift -= back;
            self.timeline.offset -= back;
            return Some(t - back);
        }
        Some(t)
    }

    /// The last sample, lasting as long as it plays.
    pub(super) fn flush(&mut self) -> Option<AudioSample> {
        self.pending.take()
    }

    /// A new RTSP session begins: frames waiting for the video are forgotten (their timestamps
    /// belong to another clock); if the track had started, returns its last sample, and its next
    /// session starts no earlier than where this one ended.
    pub(super) fn new_session(&mut self) -> Option<AudioSample> {
        self.waiting.clear();
        let last = self.pending.take();
        if self.base_pts.take().is_some() {
            let end = last
                .as_ref()
                .map_or(0, |l| (l.t as i64).saturating_add(i64::from(l.duration)));
            let previous = self.resume.map_or(0, |r| r.end);
            self.resume = Some(Resume {
                end: end.max(previous),
                last_recv: self.last_recv,
            });
            self.shift = 0;
        }
        last
    }
}
