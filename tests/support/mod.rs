//! Shared test helpers, by job: [`rig`] runs the camera and the recorder binary, [`tools`]
//! wraps ffmpeg, ffprobe and GStreamer, [`check`] checks recordings against what the camera
//! sent, and [`fake`] serves handshakes that go wrong.

pub mod check;
pub mod fake;
pub mod rig;
pub mod tools;

pub use rig::{Recorder, Rig, config, record};
pub use tools::{ffmpeg_audio, ffmpeg_decoded_video_frames, ffprobe_video_frames, have_tool};
