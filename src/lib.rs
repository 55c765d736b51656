//! retina-record: records RTSP cameras into crash-safe fragmented MP4 files, without
//! transcoding, with per-frame timing data stored as H.264/H.265 SEI.
//!
//! The binary is a thin front-end over these modules:
//!
//! * [`cli`] — command-line flags (compatible with retina-record 0.2), credentials, names.
//! * [`session`] — the RTSP session loop: retina in, frames with timing out.
//! * [`timing`] — the timing SEI format, a compatibility contract with 0.2's files.
//! * [`codec`] — H.264/H.265 NAL units and G.711.
//! * [`mp4`] — fragmented MP4 muxing and reading.
//! * [`output`] — the output file and its writer thread.
//! * [`stop`] — signals to clean stops.
//! * [`camera`] — an RTSP camera on demand (`retina-record camera`, the demo, the tests).
//! * [`demo`] — `retina-record demo`: the camera recorded through the normal path.

pub mod camera;
pub mod cli;
pub mod codec;
pub mod demo;
pub mod mp4;
pub mod output;
pub mod session;
pub mod stop;
pub mod timing;
