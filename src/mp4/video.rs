//! The video track: which frames may start and enter a recording, and their decode times.
//!
//! A recording starts at a sync sample (an IRAP picture, ISO/IEC 14496-15 §8.4.1) whose
//! parameter sets are known and that begins its picture; after a starting CRA picture, the RASL
//! pictures that lean on what came before it are left out. Decode times come from presentation
//! times through a reorder window (see the [module docs](super)). The track outlives files and
//! sessions: its timeline continues across them.

use std::collections::VecDeque;

use super::timeline::{Step, Timeline};
use super::{REORDER_LOOKAHEAD, Stats, VideoConfig, VideoInput};
use crate::codec::VideoCodec;
use crate::sei::{FrameTiming, SenderReport};

/// A video sample on its way to a fragment; its duration is known once the next one's decode
/// time is.
pub(crate) struct VideoSample {
    pub dts: u64,
    pub duration: u32,
    pub cts_offset: i64,
    pub is_sync: bool,
    /// 1-based index of its sample description.
    pub sample_description_index: u32,
    /// First sample after a forward timestamp jump or an outage: starts a new fragment.
    pub after_gap: bool,
    /// First sample of an RTSP session: its timing names the session.
    pub starts_session: bool,
    pub timing: FrameTiming,
    pub sender_reports: Vec<SenderReport>,
    pub data: Vec<u8>,
}

/// A frame in the reorder window, its presentation time on the track's timeline.
struct Windowed {
    pts: i64,
    frame: VideoInput,
    sdi: u32,
    after_gap: bool,
    starts_session: bool,
}

/// Where a track stood when its session ended, to place the next session's first frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resume {
    /// End of the last frame on the track's timeline, in ticks.
    pub end: i64,
    /// When that frame was received (NTP format).
    pub last_recv: u64,
}

/// Where a session's first frame went.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    /// Its presentation time as received (retina's extended RTP time).
    pub pts: i64,
    /// Where it was placed on the track's timeline, in ticks.
    pub at: i64,
}

pub(crate) struct VideoTrack {
    pub codec: VideoCodec,
    /// RTP clock rate, also the track's timescale.
    pub clock_rate: u32,
    /// Sample descriptions, one per distinct parameter set seen.
    pub sample_entries: Vec<mp4_atom::Codec>,
    /// 1-based index into `sample_entries` for incoming frames; 0 until the first entry.
    current_sdi: u32,
    /// The first keyframe's pts; `None` until recording starts.
    base_pts: Option<i64>,
    /// Frames in decode order awaiting their decode time.
    window: VecDeque<Windowed>,
    /// Presentation times of `window`'s frames, sorted: the candidate decode times.
    slots: Vec<i64>,
    last_dts: Option<u64>,
    /// How far presentation lags decoding, in ticks: the reorder depth seen in the first
    /// look-ahead window, decided before the first decode time. An edit list maps the first
    /// frame's presentation back to time 0.
    pub presentation_delay: Option<u64>,
    /// The latest sample, awaiting its duration.
    pending: Option<VideoSample>,
    last_duration: u32,
    /// Sender reports of dropped frames, carried to the next recorded one.
    carried_reports: Vec<SenderReport>,
    timeline: Timeline,
    /// Largest presentation time so far, for spotting timestamp jumps.
    max_pts: Option<i64>,
    /// The recording began at an H.265 CRA picture and has seen no IRAP picture since.
    skip_rasl: bool,
    /// Receive time of the latest frame admitted.
    last_recv: u64,
    /// Set between sessions: where the next session's first frame goes.
    resume: Option<Resume>,
    /// The next frame admitted starts a session (and, after an outage, follows a gap).
    session_start: bool,
    /// Samples whose durations are known, in decode order, for the file.
    pub ready: VecDeque<VideoSample>,
}

impl VideoTrack {
    pub(super) fn new(config: &VideoConfig) -> VideoTrack {
        VideoTrack {
            codec: config.codec,
            clock_rate: config.clock_rate,
            sample_entries: Vec::new(),
            current_sdi: 0,
            base_pts: None,
            window: VecDeque::with_capacity(REORDER_LOOKAHEAD + 1),
            slots: Vec::with_capacity(REORDER_LOOKAHEAD + 1),
            last_dts: None,
            presentation_delay: None,
            pending: None,
            last_duration: 0,
            carried_reports: Vec::new(),
            timeline: Timeline::new("video", config.clock_rate),
            max_pts: None,
            skip_rasl: false,
            last_recv: 0,
            resume: None,
            session_start: true,
            ready: VecDeque::with_capacity(REORDER_LOOKAHEAD + 2),
        }
    }

    /// Whether the recording has started (a keyframe was taken).
    pub(super) fn started(&self) -> bool {
        self.base_pts.is_some()
    }

    /// Takes a frame in decode order. Returns where it went when it starts the recording or a
    /// session: the instant the other tracks start at.
    pub(super) fn push(&mut self, mut frame: VideoInput, stats: &mut Stats) -> Option<Start> {
        if let Some(entry) = frame.sample_entry.take() {
            self.describe(*entry, stats);
        }
        if !self.admit(&mut frame, stats) {
            self.carried_reports.append(&mut frame.sender_reports);
            return None;
        }
        let started = if self.base_pts.is_none() {
            self.base_pts = Some(frame.pts);
            let at = match self.resume.take() {
                // After an outage: as much later as the outage lasted, by the wall clock.
                Some(r) => {
                    let gap = ntp_ticks(frame.timing.recv, r.last_recv, self.clock_rate);
                    r.end.saturating_add(gap.max(0))
                }
                None => {
                    if stats.dropped_before_keyframe > 0 {
                        tracing::info!(
                            "dropped {} video frame(s) received before the first keyframe",
                            stats.dropped_before_keyframe
                        );
                    }
                    0
                }
            };
            self.timeline.offset = at;
            Some(Start { pts: frame.pts, at })
        } else {
            None
        };
        self.last_recv = frame.timing.recv;
        self.enter_window(frame, stats);
        started
    }

    /// Registers the sample entry of the parameters that this and later frames use.
    fn describe(&mut self, entry: mp4_atom::Codec, stats: &mut Stats) {
        let index = match self.sample_entries.iter().position(|e| e == &entry) {
            Some(i) => i,
            None => {
                self.sample_entries.push(entry);
                stats.sample_descriptions += 1;
                self.sample_entries.len() - 1
            }
        };
        self.current_sdi = index as u32 + 1;
    }

    /// Whether `frame` goes into the recording; marks IRAP pictures as sync samples.
    fn admit(&mut self, frame: &mut VideoInput, stats: &mut Stats) -> bool {
        let Some((slice, _)) = self.codec.first_slice(&frame.data) else {
            // No picture (filler data only, say): nothing to decode or show.
            stats.dropped_empty += 1;
            return false;
        };
        // Retina flags only IDR pictures; any IRAP picture is a sync sample.
        frame.is_sync |= slice.is_irap();
        if frame.is_sync {
            // RASL pictures lean on pictures before the CRA that starts a recording, which it
            // doesn't have: undecodable until the next IRAP picture.
            self.skip_rasl = self.base_pts.is_none() && slice.is_cra();
        } else if self.skip_rasl && slice.is_rasl() {
            stats.dropped_before_keyframe += 1;
            return false;
        }
        let can_start =
            frame.is_sync && self.current_sdi != 0 && self.codec.starts_picture(&frame.data);
        if self.base_pts.is_none() && !can_start {
            stats.dropped_before_keyframe += 1;
            return false;
        }
        true
    }

    /// Places an admitted frame on the timeline and in the reorder window.
    fn enter_window(&mut self, mut frame: VideoInput, stats: &mut Stats) {
        let mut pts = self
            .timeline
            .place(frame.pts, self.base_pts.unwrap_or(frame.pts));
        let starts_session = std::mem::take(&mut self.session_start);
        // A session's first frame follows a gap, except the recording's very first.
        let mut after_gap = starts_session && self.last_dts.is_some();
        if let Some(max) = self.max_pts {
            let step = self.timeline.step(pts, max);
            if step != Step::Steady {
                // Frames before the jump get their decode times from each other alone.
                while !self.window.is_empty() {
                    self.emit();
                }
                let continue_at = max.saturating_add(i64::from(self.normal_duration()));
                (pts, after_gap) = self.timeline.jump(step, pts, max, continue_at, stats);
            }
        }
        self.max_pts = Some(self.max_pts.map_or(pts, |m| m.max(pts)));
        if !self.carried_reports.is_empty() {
            let mut reports = std::mem::take(&mut self.carried_reports);
            reports.append(&mut frame.sender_reports);
            frame.sender_reports = reports;
        }
        let slot = self.slots.partition_point(|&s| s <= pts);
        self.slots.insert(slot, pts);
        self.window.push_back(Windowed {
            pts,
            frame,
            sdi: self.current_sdi,
            after_gap,
            starts_session,
        });
        if self.window.len() > REORDER_LOOKAHEAD {
            self.emit();
        }
    }

    /// Moves the oldest frame of the reorder window on, with its derived decode time; the
    /// frame before it, whose duration that decode time settles, becomes ready.
    fn emit(&mut self) {
        if self.presentation_delay.is_none() {
            // Frame i (decode order) is decoded at the i-th smallest pts; presentation must not
            // precede decoding, so it is delayed by the largest shortfall.
            let delay = self
                .window
                .iter()
                .zip(&self.slots)
                .map(|(w, slot)| slot - w.pts)
                .max()
                .unwrap_or(0);
            self.presentation_delay = Some(u64::try_from(delay).unwrap_or(0));
        }
        let Some(w) = self.window.pop_front() else {
            return;
        };
        let slot = if self.slots.is_empty() {
            w.pts
        } else {
            self.slots.remove(0)
        };
        let mut dts = u64::try_from(slot).unwrap_or(0);
        if let Some(last) = self.last_dts {
            dts = dts.max(last.saturating_add(1));
        }
        self.last_dts = Some(dts);
        let delay = self.presentation_delay.unwrap_or(0) as i64;
        let cts_offset = (w.pts.saturating_add(delay).saturating_sub(dts as i64))
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        let sample = VideoSample {
            dts,
            duration: 0,
            cts_offset,
            is_sync: w.frame.is_sync,
            sample_description_index: w.sdi,
            after_gap: w.after_gap,
            starts_session: w.starts_session,
            timing: w.frame.timing,
            sender_reports: w.frame.sender_reports,
            data: w.frame.data,
        };
        let Some(prev) = self.pending.replace(sample) else {
            return;
        };
        // Before a gap, the frame lasts as long as its predecessor, not until the next one.
        let duration = if w.after_gap {
            self.normal_duration()
        } else {
            u32::try_from(dts - prev.dts).unwrap_or(u32::MAX)
        };
        self.make_ready(prev, duration);
    }

    fn make_ready(&mut self, mut sample: VideoSample, duration: u32) {
        sample.duration = duration;
        self.last_duration = duration;
        self.ready.push_back(sample);
    }

    /// Makes every frame held ready: the last one lasts as long as the one before it.
    pub(super) fn flush(&mut self) {
        while !self.window.is_empty() {
            self.emit();
        }
        if let Some(last) = self.pending.take() {
            let duration = self.normal_duration();
            self.make_ready(last, duration);
        }
    }

    /// A frame's duration where the next frame does not tell: the previous frame's.
    fn normal_duration(&self) -> u32 {
        match self.last_duration {
            0 => self.clock_rate / 10,
            d => d,
        }
    }

    /// A new RTSP session begins: what the old one left waiting is forgotten (its timestamps
    /// belong to another clock); if recording had started, every frame held is made ready and
    /// the next session's first keyframe will continue the timeline after the outage.
    pub(super) fn new_session(&mut self) {
        self.carried_reports.clear();
        self.current_sdi = 0;
        self.skip_rasl = false;
        self.session_start = true;
        if !self.started() {
            return;
        }
        self.flush();
        let end = self
            .max_pts
            .unwrap_or(0)
            .saturating_add(i64::from(self.last_duration));
        self.resume = Some(Resume {
            end,
            last_recv: self.last_recv,
        });
        self.base_pts = None;
        self.max_pts = None;
    }
}

/// `later - earlier`, two NTP-format times, in ticks of `clock_rate`.
pub(crate) fn ntp_ticks(later: u64, earlier: u64, clock_rate: u32) -> i64 {
    let diff = i128::from(later) - i128::from(earlier);
    ((diff * i128::from(clock_rate)) >> 32) as i64
}
