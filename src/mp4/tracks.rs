//! The recording's tracks together: what outlives a file.

use super::audio::AudioTrack;
use super::video::VideoTrack;

/// The video and audio tracks of a recording, which each file's header describes.
pub(crate) struct Tracks {
    pub video: Option<VideoTrack>,
    pub audio: Option<AudioTrack>,
    /// Write the timing SEI on every video frame.
    pub timing: bool,
    /// The current RTSP session, as the timing SEI names it.
    pub conn: u64,
}
