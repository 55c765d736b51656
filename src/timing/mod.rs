//! The timing data every recording carries: per-frame receive and RTP times and the video
//! stream's RTCP sender reports, as H.264/H.265 SEI ([`sei`], specified in
//! `docs/timing-sei.md`).

pub mod sei;
