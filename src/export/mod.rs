//! Recordings cut by time, losslessly: what `retina-record export` and `list` do. [`cut`]
//! finds the frames of an interval from the timing data (capture time by the camera's clock,
//! or receive time), [`write`] copies them into one MP4 (sample tables and edit list, ISO/IEC
//! 14496-12 §8.6.6 and §8.7, through `mp4::plain`), frame-accurate; [`spans`] says what was
//! recorded from the files' indexes, without reading their frames.
//!
//! ```no_run
//! use retina_record::export::{By, cut};
//! use retina_record::timing::scan;
//!
//! let front = scan::scan(&["front.mp4".into()])?;
//! let start = front.files[0].recv_unix_nanos.0;
//! let interval = cut::Interval { from: start + 10_000_000_000, to: start + 40_000_000_000 };
//! let piece = &cut::cut(&front, By::Recv, interval, false)?.pieces[0];
//! retina_record::export::write::write(&front, piece, "clip.mp4".as_ref())?;
//! # anyhow::Ok(())
//! ```

pub mod cut;
mod layout;
pub mod spans;
pub mod write;

/// Frames further apart than this (in presentation time) have a gap between them, as a new
/// session does.
pub const GAP_S: f64 = 1.0;

/// Which clock an interval is read by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// When the camera captured each frame, by its own clock (from its sender reports).
    Capture,
    /// When this machine received each frame.
    Recv,
}

impl By {
    /// How the clock is named in messages.
    pub fn name(self) -> &'static str {
        match self {
            By::Capture => "capture time",
            By::Recv => "receive time",
        }
    }
}

/// A time as the user gives it, resolved against a recording's first frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeSpec {
    /// An instant (RFC 3339), as Unix nanoseconds.
    At(i128),
    /// A time of day in this machine's time zone, on the day of the recording's first frame.
    Local(jiff::civil::Time),
    /// This long after the recording's first frame.
    After(std::time::Duration),
}

impl TimeSpec {
    /// The instant meant, for a recording whose first frame is at `first` (Unix ns).
    pub fn resolve(self, first: i128) -> anyhow::Result<i128> {
        match self {
            TimeSpec::At(t) => Ok(t),
            TimeSpec::After(d) => Ok(first + d.as_nanos() as i128),
            TimeSpec::Local(time) => {
                let at = jiff::Timestamp::from_nanosecond(first)?;
                let zoned = at.to_zoned(jiff::tz::TimeZone::system());
                let day = zoned
                    .date()
                    .to_datetime(time)
                    .to_zoned(zoned.time_zone().clone())?;
                Ok(day.timestamp().as_nanosecond())
            }
        }
    }
}
