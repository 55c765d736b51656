//! The timing data every recording carries: per-frame receive and RTP times and the video
//! stream's RTCP sender reports, as H.264/H.265 SEI ([`sei`], specified in
//! `docs/timing-sei.md`), and what it tells: each frame's capture time by the camera's clock
//! ([`recording`], fitted by [`clock`]).

pub mod clock;
pub mod recording;
pub mod sei;
