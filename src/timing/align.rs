//! Lining up several cameras: for each frame of the first (the reference), the frame of each
//! other captured nearest in time; and per camera its clock's offset (per interval between
//! NTP steps), its drift, and the reference frames it has no frame near.
//!
//! Which time is compared is the user's choice ([`AlignBy`]): each camera's own clock (right
//! when the cameras are NTP-synced: capture times are then comparable to the sync's accuracy,
//! free of network delay), capture times moved onto this machine's clock by each camera's
//! measured offset in that interval (for cameras whose clocks are off but that were recorded
//! by one machine), or receive times (for cameras that send no usable sender reports: network
//! and encoding delay count in full).
//!
//! Each camera is read twice more after its scan (its summary, then the pairing), a frame at a
//! time: the other cameras' frames wait in a window of [`LOOK_S`] either side of the
//! reference's, so memory does not grow with the recordings.

use std::collections::{BTreeMap, BTreeSet};

use super::frames::{FrameTime, Frames};
use super::scan::Scan;
use super::summary::{self, ClockOffset, Part, Step};

/// How far (seconds) around a reference frame the other cameras' frames are held.
const LOOK_S: f64 = 5.0;

/// Which time frames are lined up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignBy {
    /// Capture time by each camera's clock, as it is.
    Camera,
    /// Capture time by each camera's clock, minus that camera's offset from this machine's
    /// clock in the frame's interval between NTP steps ([`Part::clock_offsets`]).
    Corrected,
    /// Receive time by this machine's clock.
    Receive,
}

/// A frame of another camera matched to one of the reference's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    /// Its number in its recording.
    pub frame: usize,
    /// Its time as compared, Unix nanoseconds.
    pub time_unix_nanos: i128,
    /// Its time minus the reference frame's, seconds.
    pub diff_s: f64,
}

/// A frame of the reference camera, and its nearest in each other.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its number in the reference recording.
    pub frame: usize,
    /// Its time as compared, Unix nanoseconds; `None` when it has none (no capture time).
    pub time_unix_nanos: Option<i128>,
    /// The nearest frame of each other camera; `None` when there is nothing to compare.
    pub others: Vec<Option<Match>>,
}

/// One camera, as lined up with the others.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CameraAlignment {
    /// Its frames.
    pub frames: usize,
    /// Its RTSP sessions.
    pub sessions: usize,
    /// Its clock minus this machine's, seconds; `None` when it stepped (see `clock_offsets`).
    pub camera_minus_receiver_s: Option<f64>,
    /// Its clock minus this machine's between each two NTP steps.
    pub clock_offsets: Vec<ClockOffset>,
    /// Its NTP steps.
    pub ntp_steps: Vec<Step>,
    /// Its clock minus the reference camera's, seconds, when neither stepped.
    pub minus_first_camera_s: Option<f64>,
    /// How fast its clock runs against this machine's, ppm.
    pub clock_drift_ppm: Option<f64>,
    /// How fast its clock runs against the reference camera's, ppm.
    pub drift_vs_first_ppm: Option<f64>,
    /// How fast its RTP clock runs against its own NTP clock, ppm.
    pub rtp_clock_error_ppm: Option<f64>,
    /// Reference frames with no frame of this camera within half its frame interval (its
    /// gaps, or the times it did not record); `None` for the reference.
    pub unpaired_frames: Option<usize>,
}

/// The cameras lined up.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Alignment {
    /// Each camera, the reference first.
    pub cameras: Vec<CameraAlignment>,
    /// Rows given: one per frame of the reference.
    pub rows: usize,
}

/// Lines up `cameras` (the first is the reference) by `by`, giving each row to `row` as it is
/// made.
pub fn align(
    cameras: &[Scan],
    by: AlignBy,
    mut row: impl FnMut(&Row) -> anyhow::Result<()>,
) -> anyhow::Result<Alignment> {
    let wholes = cameras
        .iter()
        .map(|c| Ok(summary::summarise(c)?.whole))
        .collect::<anyhow::Result<Vec<Part>>>()?;
    let (first, others) = cameras
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no cameras"))?;
    let time = |k: usize| Timer::new(by, &wholes[k]);
    let first_time = time(0);
    let mut windows: Vec<Window<'_>> = others
        .iter()
        .enumerate()
        .map(|(i, scan)| Window::new(scan.frames(), time(i + 1)))
        .collect();
    let halves: Vec<f64> = others
        .iter()
        .map(|s| s.frame_interval().unwrap_or(0.0) / 2.0)
        .collect();
    let mut unpaired = vec![0; others.len()];
    let mut rows = 0;
    for f in first.frames() {
        let f = f?;
        let t = first_time.of(&f);
        let mut matches = Vec::with_capacity(windows.len());
        for (k, w) in windows.iter_mut().enumerate() {
            let m = match t {
                Some(t) => w.nearest(t)?,
                None => None,
            };
            if m.is_none_or(|m| m.diff_s.abs() > halves[k]) {
                unpaired[k] += 1;
            }
            matches.push(m);
        }
        row(&Row {
            frame: f.index,
            time_unix_nanos: t,
            others: matches,
        })?;
        rows += 1;
    }
    let cameras = wholes
        .iter()
        .enumerate()
        .map(|(k, p)| CameraAlignment {
            frames: p.frames,
            sessions: p.sessions,
            camera_minus_receiver_s: p.camera_minus_receiver_s,
            clock_offsets: p.clock_offsets.clone(),
            ntp_steps: p.ntp_steps.clone(),
            minus_first_camera_s: difference(
                p.camera_minus_receiver_s,
                wholes[0].camera_minus_receiver_s,
            ),
            clock_drift_ppm: p.camera_clock_drift_ppm,
            drift_vs_first_ppm: difference(
                p.camera_clock_drift_ppm,
                wholes[0].camera_clock_drift_ppm,
            ),
            rtp_clock_error_ppm: p.rtp_clock_error_ppm,
            unpaired_frames: k.checked_sub(1).map(|o| unpaired[o]),
        })
        .collect();
    Ok(Alignment { cameras, rows })
}

fn difference(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// A camera's frames' times as compared.
struct Timer {
    by: AlignBy,
    /// Its clock minus this machine's (ns), by interval between steps.
    offsets: BTreeMap<usize, i128>,
}

impl Timer {
    fn new(by: AlignBy, whole: &Part) -> Timer {
        let offsets = whole
            .clock_offsets
            .iter()
            .map(|o| {
                (
                    o.interval,
                    (o.camera_minus_receiver_s * 1e9).round() as i128,
                )
            })
            .collect();
        Timer { by, offsets }
    }

    fn of(&self, f: &FrameTime) -> Option<i128> {
        match self.by {
            AlignBy::Camera => f.capture.map(|c| c.0),
            AlignBy::Corrected => Some(f.capture?.0 - self.offset(f.interval)?),
            AlignBy::Receive => Some(f.recv_unix_nanos),
        }
    }

    /// The offset of `interval`, or of the nearest interval that has one.
    fn offset(&self, interval: usize) -> Option<i128> {
        let before = self.offsets.range(..=interval).next_back();
        let after = self.offsets.range(interval..).next();
        match (before, after) {
            (Some(b), Some(a)) => Some(if interval - b.0 <= a.0 - interval {
                *b.1
            } else {
                *a.1
            }),
            (b, a) => b.or(a).map(|(_, o)| *o),
        }
    }
}

/// Another camera's frames around the reference's current time.
struct Window<'s> {
    frames: Frames<'s>,
    timer: Timer,
    /// (time, frame number), from `LOOK_S` before the reference's time to at least as far
    /// after.
    held: BTreeSet<(i128, usize)>,
    /// The time of the frame read last; `None` when all are read.
    ahead: Option<i128>,
}

impl<'s> Window<'s> {
    fn new(frames: Frames<'s>, timer: Timer) -> Window<'s> {
        Window {
            frames,
            timer,
            held: BTreeSet::new(),
            ahead: Some(i128::MIN),
        }
    }

    /// The held frame nearest `t`, reading on to `LOOK_S` past it first.
    fn nearest(&mut self, t: i128) -> anyhow::Result<Option<Match>> {
        let look = (LOOK_S * 1e9) as i128;
        while let Some(ahead) = self.ahead.filter(|&a| a <= t + look) {
            match self.frames.next().transpose()? {
                Some(f) => {
                    if let Some(ft) = self.timer.of(&f) {
                        self.held.insert((ft, f.index));
                        self.ahead = Some(ft);
                    } else {
                        self.ahead = Some(ahead);
                    }
                }
                None => self.ahead = None,
            }
        }
        while self.held.first().is_some_and(|&(ft, _)| ft < t - look) {
            self.held.pop_first();
        }
        let before = self.held.range(..(t, usize::MAX)).next_back();
        let after = self.held.range((t, 0)..).next();
        let best = match (before, after) {
            (Some(b), Some(a)) => Some(if t - b.0 <= a.0 - t { b } else { a }),
            (b, a) => b.or(a),
        };
        Ok(best.map(|&(ft, frame)| Match {
            frame,
            time_unix_nanos: ft,
            diff_s: (ft - t) as f64 / 1e9,
        }))
    }
}
