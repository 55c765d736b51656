//! retina-record: records RTSP cameras into crash-safe fragmented MP4 files, without
//! transcoding, with per-frame timing data stored as H.264/H.265 SEI.
//!
//! The binary is a thin front-end over these modules:
//!
//! * [`cli`] — command-line flags (compatible with retina-record 0.2), credentials, names.
//! * [`session`] — the RTSP session loop: retina in, frames with timing out.
//! * [`sei`] — the timing SEI format, a compatibility contract with 0.2's files.
//! * [`g711`] — G.711 µ-law/A-law expansion, for storing camera audio as linear PCM.
//! * [`mp4`] — fragmented MP4 muxing: header, fragments, decode times.
//! * [`output`] — the output file and its writer thread.
//! * [`reader`] — reads recordings back, timing data included.
//! * [`stop`] — signals to clean stops.
//! * [`camera`] — an RTSP camera on demand (`retina-record camera`, the demo, the tests).
//! * [`demo`] — `retina-record demo`: the camera recorded through the normal path.

pub mod camera;
pub mod cli;
pub mod demo;
pub mod g711;
pub mod mp4;
pub mod output;
pub mod reader;
pub mod sei;
pub mod session;
pub mod stop;
