//! What the timing data every recording carries (per-frame receive and RTP times and the video
//! stream's RTCP sender reports, as H.264/H.265 SEI: [`crate::sei`], specified in
//! `docs/timing-sei.md`) tells: each frame's capture time by the camera's clock ([`recording`],
//! fitted by [`clock`]), the clocks' health ([`summary`]) and several cameras lined up
//! ([`align`]). `retina-record timing` is this module's front-end.
//!
//! ```no_run
//! use retina_record::timing::{align, recording, summary};
//!
//! let front = recording::read(&["front.mp4".into()])?;
//! let side = recording::read(&["side-1.mp4".into(), "side-2.mp4".into()])?;
//! let health = summary::summarise(&front);
//! println!("RTP clock error {:?} ppm", health.whole.rtp_clock_error_ppm);
//! let lined_up = align::align(&[front, side], align::AlignBy::Camera);
//! println!("side's clock minus front's: {:?} s", lined_up.relative_offset_s[1]);
//! # anyhow::Ok(())
//! ```

pub mod align;
pub mod clock;
pub mod recording;
pub mod sessions;
pub mod summary;

/// The SEI format itself, which the muxer writes and this module reads (at the crate root,
/// below both; re-exported for code written against `timing::sei`).
pub use crate::sei;
