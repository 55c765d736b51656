//! A recording's frames with their capture times, all in memory: [`super::scan`] and
//! [`super::frames`] collected, for a few files (tests, plots, scripts). What reads weeks goes
//! through [`Scan::frames`] instead, a frame at a time.

use std::path::PathBuf;

pub use super::frames::FrameTime;
pub use super::scan::{FileTiming, ReportCounts, Scan, Session};

/// A recording's timing: its files and sessions ([`Scan`]) and its frames in presentation
/// order.
#[derive(Clone, Debug)]
pub struct RecordingTiming {
    /// Its files, sessions and clocks.
    pub scan: Scan,
    /// Its video frames with timing data, in presentation order.
    pub frames: Vec<FrameTime>,
}

impl RecordingTiming {
    /// The frames of `scan`, read.
    pub fn from_scan(scan: Scan) -> anyhow::Result<RecordingTiming> {
        let frames = scan.frames().collect::<anyhow::Result<Vec<_>>>()?;
        Ok(RecordingTiming { scan, frames })
    }

    /// Its files, in time order.
    pub fn files(&self) -> &[FileTiming] {
        &self.scan.files
    }

    /// The RTSP sessions it was received in, in order.
    pub fn sessions(&self) -> &[Session] {
        &self.scan.sessions
    }
}

/// Reads the timing of the recording made of `paths` (one file, or the segments of one
/// recording in any order).
///
/// ```no_run
/// use retina_record::timing::recording::read;
///
/// let timing = read(&["front.mp4".into()])?;
/// for f in &timing.frames {
///     if let Some((capture, _)) = f.capture {
///         println!("frame {} captured at {} ns since 1970", f.index, capture);
///     }
/// }
/// # anyhow::Ok(())
/// ```
pub fn read(paths: &[PathBuf]) -> anyhow::Result<RecordingTiming> {
    RecordingTiming::from_scan(super::scan::scan(paths)?)
}

/// As [`read`], for files held in memory, each with the name it is reported under.
pub fn from_bytes(files: Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<RecordingTiming> {
    RecordingTiming::from_scan(super::scan::scan_bytes(files)?)
}
