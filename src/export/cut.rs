//! Which frames an interval holds: a camera's frames read with their capture times
//! ([`Scan::frames`]), those inside `[from, to)` by the chosen clock kept, as pieces of
//! consecutive frames, each piece a run of files.

use std::path::PathBuf;

use anyhow::bail;

use super::{By, GAP_S};
use crate::timing::frames::FrameTime;
use crate::timing::scan::Scan;

/// An interval of time, as Unix nanoseconds: from `from`, up to but not including `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// The first instant in it.
    pub from: i128,
    /// The first instant after it.
    pub to: i128,
}

/// What of a camera's recording falls in an interval.
#[derive(Clone, Debug)]
pub struct Cut {
    /// The clock the interval was read by: receive time when the files have no sender
    /// reports, whatever was asked.
    pub by: By,
    /// Continuous pieces, in time order: one unless the frames were split at gaps.
    pub pieces: Vec<Piece>,
}

/// Consecutive frames of the interval, from one or more files.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The files it is in, in order, each with the frames of it to show.
    pub parts: Vec<Part>,
    /// Its first frame in presentation order.
    pub first: FrameTime,
    /// Its last frame in presentation order.
    pub last: FrameTime,
    /// Frames shown.
    pub frames: usize,
}

/// Frames of one file to show: every frame presented from `ticks.0` to `ticks.1` (both
/// included; the file's track timescale).
#[derive(Clone, Debug)]
pub struct Part {
    /// Its index in the scan's files.
    pub file: usize,
    /// The file.
    pub path: PathBuf,
    /// The first and last frame shown: their presentation times.
    pub ticks: (i64, i64),
    /// When its first and last frames shown were received (Unix nanoseconds).
    pub recv: (i128, i128),
}

/// The frames of `scan` in `interval` by the clock `by`; `split` starts a new piece at every
/// gap (a new session, or frames more than [`GAP_S`] apart).
pub fn cut(scan: &Scan, by: By, interval: Interval, split: bool) -> anyhow::Result<Cut> {
    let by = effective(scan, by);
    let mut pieces: Vec<Piece> = Vec::new();
    for frame in scan.frames() {
        let frame = frame?;
        let Some(t) = time_of(&frame, by) else {
            continue;
        };
        if t < interval.from || t >= interval.to {
            continue;
        }
        let gap = pieces
            .last()
            .is_some_and(|p| p.last.session != frame.session || frame.pts - p.last.pts > GAP_S);
        match pieces.last_mut() {
            Some(piece) if !(split && gap) => piece.add(scan, frame),
            _ => pieces.push(Piece::new(scan, frame)),
        }
    }
    if pieces.is_empty() {
        bail!("no frames in that interval");
    }
    Ok(Cut { by, pieces })
}

/// `by`, unless it asks for capture times and no session has sender reports to give them.
pub fn effective(scan: &Scan, by: By) -> By {
    if by == By::Capture && scan.sessions.iter().all(|s| s.fit.is_none()) {
        By::Recv
    } else {
        by
    }
}

/// A frame's time by the clock `by`, as Unix nanoseconds.
pub fn time_of(frame: &FrameTime, by: By) -> Option<i128> {
    match by {
        By::Capture => frame.capture.map(|(c, _)| c),
        By::Recv => Some(frame.recv_unix_nanos),
    }
}

impl Piece {
    fn new(scan: &Scan, frame: FrameTime) -> Piece {
        Piece {
            parts: vec![Part::new(scan, &frame)],
            first: frame.clone(),
            last: frame,
            frames: 1,
        }
    }

    fn add(&mut self, scan: &Scan, frame: FrameTime) {
        self.frames += 1;
        match self.parts.last_mut() {
            Some(part) if part.file == frame.file => {
                part.ticks = (part.ticks.0.min(frame.ticks), part.ticks.1.max(frame.ticks));
                part.recv = (
                    part.recv.0.min(frame.recv_unix_nanos),
                    part.recv.1.max(frame.recv_unix_nanos),
                );
            }
            _ => self.parts.push(Part::new(scan, &frame)),
        }
        self.last = frame;
    }
}

impl Part {
    fn new(scan: &Scan, frame: &FrameTime) -> Part {
        Part {
            file: frame.file,
            path: scan.files[frame.file].path.clone(),
            ticks: (frame.ticks, frame.ticks),
            recv: (frame.recv_unix_nanos, frame.recv_unix_nanos),
        }
    }
}
