//! Shared test helpers, by job: [`rig`] runs the camera and the recorder binary, [`tools`]
//! wraps ffmpeg, ffprobe and GStreamer, [`check`] checks recordings against what the camera
//! sent, [`fake`] serves handshakes that go wrong, [`replay`] serves real cameras' captured
//! answers, [`lines`] holds every line the binary prints
//! to being a sentence, and [`timing`] runs `retina-record timing` and reads the test camera's
//! truth.

pub mod check;
pub mod fake;
pub mod lines;
pub mod replay;
pub mod rig;
pub mod servers;
pub mod timing;
pub mod tools;

pub use rig::{Recorder, Rig, config, record};
pub use tools::{ffmpeg_audio, ffmpeg_decoded_video_frames, ffprobe_video_frames, have_tool};
