//! What the timing data every recording carries (per-frame receive and RTP times and the video
//! stream's RTCP sender reports, as H.264/H.265 SEI: [`crate::sei`], specified in
//! `docs/timing-sei.md`) tells: each frame's capture time by the camera's clock, fitted by
//! [`clock`]; the clocks' health ([`summary`]); several cameras lined up ([`align`]).
//! `retina-record timing` is this module's front-end, its output specified in
//! `docs/timing-output.md`.
//!
//! A camera's files are read twice, one fragment at a time, so that a week of them takes
//! memory that does not grow with its frames: [`scan`] finds the sessions and fits their
//! clocks, then [`Scan::frames`](scan::Scan::frames) ([`frames`]) yields each frame with its
//! capture time. [`files`] finds a camera's files; [`recording`] collects a small recording
//! in memory.
//!
//! ```no_run
//! use retina_record::timing::{align, scan, summary};
//!
//! let front = scan::scan(&["front.mp4".into()])?;
//! let side = scan::scan(&["side-1.mp4".into(), "side-2.mp4".into()])?;
//! let health = summary::summarise(&front)?;
//! println!("RTP clock error {:?} ppm", health.whole.rtp_clock_error_ppm);
//! let lined_up = align::align(&[front, side], align::AlignBy::Corrected, |_row| Ok(()))?;
//! println!("side's clock minus front's: {:?} s", lined_up.cameras[1].minus_first_camera_s);
//! # anyhow::Ok(())
//! ```

pub mod align;
pub mod clock;
pub mod files;
pub mod frames;
pub mod recording;
pub mod scan;
pub mod sessions;
pub mod sketch;
pub mod summary;

/// The version of what `retina-record timing` writes (`docs/timing-output.md`): its CSV and
/// JSON rows' columns and its summaries' fields. A column or field may be added within a
/// version; one removed, renamed or changed in meaning makes the next version.
pub const OUTPUT_SCHEMA_VERSION: u32 = 1;

/// The SEI format itself, which the muxer writes and this module reads (at the crate root,
/// below both; re-exported for code written against `timing::sei`).
pub use crate::sei;
