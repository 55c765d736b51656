//! The timing data every recording carries: per-frame receive and RTP times and the video
//! stream's RTCP sender reports, as H.264/H.265 SEI ([`sei`], specified in
//! `docs/timing-sei.md`), and what it tells: each frame's capture time by the camera's clock
//! ([`recording`], fitted by [`clock`]), the clocks' health ([`summary`]) and several cameras
//! lined up ([`align`]).
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
pub mod sei;
pub mod summary;
