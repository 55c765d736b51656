//! retina-record: records RTSP cameras into crash-safe fragmented MP4 files, without
//! transcoding, with per-frame timing data stored as H.264/H.265 SEI.
//!
//! The `retina-record` binary is a thin front-end (its `cli` and `cmd` modules) over this
//! library. ARCHITECTURE.md draws how the modules fit together.

#![warn(unreachable_pub, missing_docs)]

pub mod camera;
pub mod codec;
pub mod config;
pub mod error;
pub mod export;
mod memory;
pub mod mp4;
pub mod ntp;
pub mod output;
pub mod probe;
pub mod recorder;
pub mod rtsp;
pub mod sei;
pub mod source;
pub mod stop;
mod throttle;
pub mod timing;
pub mod wording;
