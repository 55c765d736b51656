//! Lining up several cameras: for each frame of the first recording, the frame of each other
//! recording captured nearest in time, and the cameras' clock offsets from one another.
//!
//! Which time is compared is the user's choice ([`AlignBy`]): each camera's own clock (right
//! when the cameras are NTP-synced: capture times are then comparable to the sync's accuracy,
//! free of network delay), capture times moved onto this machine's clock by each camera's
//! measured offset (for cameras whose clocks are off but that were recorded by one machine), or
//! receive times (for cameras that send no usable sender reports: network and encoding delay
//! count in full).

use super::recording::{FrameTime, RecordingTiming};
use super::summary;

/// Which time frames are lined up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignBy {
    /// Capture time by each camera's clock, as it is.
    Camera,
    /// Capture time by each camera's clock, minus that camera's offset from this machine's
    /// clock ([`summary::Part::camera_minus_receiver_s`]).
    Corrected,
    /// Receive time by this machine's clock.
    Receive,
}

/// A frame of another recording matched to one of the first's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    /// Its number in its recording.
    pub frame: usize,
    /// Its time as compared, Unix nanoseconds.
    pub time_unix_nanos: i128,
    /// Its time minus the first recording's frame's, seconds.
    pub diff_s: f64,
}

/// A frame of the first recording, and its nearest frame in each other.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its number in the first recording.
    pub frame: usize,
    /// Its time as compared, Unix nanoseconds; `None` when it has none (no capture time).
    pub time_unix_nanos: Option<i128>,
    /// The nearest frame in each other recording; `None` when there is nothing to compare.
    pub others: Vec<Option<Match>>,
}

/// The recordings lined up.
#[derive(Clone, Debug)]
pub struct Alignment {
    /// Each camera's clock minus this machine's, seconds, when known.
    pub camera_minus_receiver_s: Vec<Option<f64>>,
    /// Each camera's clock minus the first camera's, seconds, when known.
    pub relative_offset_s: Vec<Option<f64>>,
    /// One row per frame of the first recording, in presentation order.
    pub rows: Vec<Row>,
}

/// Lines up `recordings` (the first is the reference) by `by`.
pub fn align(recordings: &[RecordingTiming], by: AlignBy) -> Alignment {
    let offsets: Vec<Option<f64>> = recordings
        .iter()
        .map(|r| summary::camera_minus_receiver(&r.frames))
        .collect();
    let time = |f: &FrameTime, offset: Option<f64>| -> Option<i128> {
        match by {
            AlignBy::Camera => f.capture.map(|c| c.0),
            AlignBy::Corrected => Some(f.capture?.0 - (offset? * 1e9).round() as i128),
            AlignBy::Receive => Some(f.recv_unix_nanos),
        }
    };
    // Each other recording's frames by time, to search.
    let others: Vec<Vec<(i128, usize)>> = recordings
        .iter()
        .zip(&offsets)
        .skip(1)
        .map(|(r, &off)| {
            let mut v: Vec<(i128, usize)> = r
                .frames
                .iter()
                .filter_map(|f| Some((time(f, off)?, f.index)))
                .collect();
            v.sort_unstable();
            v
        })
        .collect();
    let rows = recordings.first().map_or_else(Vec::new, |first| {
        first
            .frames
            .iter()
            .map(|f| {
                let t = time(f, offsets[0]);
                Row {
                    frame: f.index,
                    time_unix_nanos: t,
                    others: others
                        .iter()
                        .map(|o| {
                            let t = t?;
                            let &(ot, frame) = nearest(o, t)?;
                            Some(Match {
                                frame,
                                time_unix_nanos: ot,
                                diff_s: (ot - t) as f64 / 1e9,
                            })
                        })
                        .collect(),
                }
            })
            .collect()
    });
    let relative_offset_s = offsets
        .iter()
        .map(|o| Some(o.as_ref()? - offsets.first().copied().flatten()?))
        .collect();
    Alignment {
        camera_minus_receiver_s: offsets,
        relative_offset_s,
        rows,
    }
}

/// The entry of `sorted` whose time is nearest `t`.
fn nearest(sorted: &[(i128, usize)], t: i128) -> Option<&(i128, usize)> {
    let i = sorted.partition_point(|&(x, _)| x < t);
    let after = sorted.get(i);
    let before = i.checked_sub(1).and_then(|b| sorted.get(b));
    match (before, after) {
        (Some(b), Some(a)) => Some(if t - b.0 <= a.0 - t { b } else { a }),
        (b, a) => b.or(a),
    }
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn nearest_takes_the_closer_side_and_the_ends() {
        let v = [(10, 0), (20, 1), (30, 2)];
        assert_eq!(nearest(&v, 14).map(|e| e.1), Some(0));
        assert_eq!(nearest(&v, 16).map(|e| e.1), Some(1));
        assert_eq!(nearest(&v, 15).map(|e| e.1), Some(0));
        assert_eq!(nearest(&v, -5).map(|e| e.1), Some(0));
        assert_eq!(nearest(&v, 99).map(|e| e.1), Some(2));
        assert_eq!(nearest(&[], 5), None);
    }
}
