//! Fragmented MP4 muxing (ISO/IEC 14496-12, "ISO BMFF").
//!
//! # File layout
//!
//! ```text
//! ftyp                      iso5, iso6, mp41
//! moov                      track headers and sample descriptions, no samples
//!   mvhd                    real creation time; duration filled in on a clean stop
//!   trak (video, id 1)      stsd: one avc1/hvc1 entry per distinct parameter set seen
//!   trak (audio, id 2)      stsd: one mp4a entry
//!   mvex                    trex per track (+ mehd with the total on a clean stop)
//! free                      padding: the header region has a fixed size (HEADER_SIZE)
//! moof mdat                 one pair per fragment, appended with a single write
//! moof mdat
//! ...
//! mfra                      random-access index, appended on a clean stop
//! ```
//!
//! Every fragment is self-contained (§8.8): `tfhd` has `default-base-is-moof`, `tfdt` gives the
//! decode time of its first sample, and `trun` lists each sample's duration, size, flags and
//! composition offset. A reader therefore needs only the header region and whole fragments,
//! which is what makes a killed recording playable up to its last complete fragment.
//!
//! The header region is rewritten in place (same size, the `free` box absorbing the difference)
//! when a new sample description appears mid-stream — before the fragment that uses it is
//! written — and once more on a clean stop to record durations.
//!
//! # Structure
//!
//! Track state (`tracks.rs`) outlives a file: `video.rs` (keyframe gate, reorder window,
//! decode times) and `audio.rs` (waiting for video, overlap), each on its timeline
//! (`timeline.rs`). File state starts afresh with each file: `file.rs` (header region, cut
//! rules), `fragment.rs` (`moof` + `mdat`), `header.rs` (`ftyp` + `moov`). `muxer.rs` passes
//! samples from the first to the second; `index.rs` builds the `mfra` of a finished file. The
//! reader, [`read`], is a folder of its own: recordings read back, ours and others'.
//!
//! # Timing
//!
//! Track timescales are the RTP clock rates, and decode times come from retina's extended
//! (64-bit, wrap-free) RTP timestamps, so nothing drifts or wraps over long runs. The video
//! track starts at the first keyframe; audio is aligned to it through the RTSP `RTP-Info`
//! mapping that retina applies to both streams' timestamps.
//!
//! RTP timestamps are presentation times. With B-frames they are not monotonic in decode order,
//! so decode times are derived: the *i*-th frame in decode order is decoded at the *i*-th
//! smallest presentation time, found within a look-ahead of `REORDER_LOOKAHEAD` frames, and
//! each sample's composition offset (`trun` version 1, signed) is `pts - dts`. Without B-frames
//! this gives `dts == pts` exactly. A stream reordering more deeply than the look-ahead still
//! gives a valid file (decode times are kept strictly increasing) with every frame presented at
//! its own RTP time.

use std::time::Duration;

use crate::codec::VideoCodec;
use crate::sei::{FrameTiming, SenderReport};

mod audio;
pub(crate) mod entry;
mod file;
mod fragment;
mod header;
mod index;
mod muxer;
pub(crate) mod plain;
pub mod read;
mod timeline;
mod tracks;
mod video;

pub(crate) use index::build_mfra;
pub(crate) use muxer::Muxer;

/// Size of the header region (ftyp + moov + free) at the start of the file.
///
/// Room for dozens of parameter-set changes; a stream needing more ends the recording cleanly
/// with an error rather than writing an undecodable file.
pub(crate) const HEADER_SIZE: usize = 32 * 1024;

/// How many frames the decode-time derivation looks ahead (see the module docs).
///
/// Four covers the reordering real encoders use (x264's B-pyramid needs two, cameras with
/// B-frames one or two); it delays each frame by that many frames before it enters a fragment.
pub(crate) const REORDER_LOOKAHEAD: usize = 4;

const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

/// What the recording contains, known before the first sample.
#[derive(Clone)]
pub(crate) struct Config {
    pub video: Option<VideoConfig>,
    pub audio: Option<AudioConfig>,
    /// A fragment closes once it holds this much media.
    pub fragment_duration: Duration,
    /// End a file at each multiple of this from local midnight (at the next keyframe).
    pub segment_duration: Option<Duration>,
    /// Write the timing SEI on every frame.
    pub timing: bool,
    /// Written into mvhd/tkhd/mdhd.
    pub creation_time: jiff::Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VideoConfig {
    pub codec: VideoCodec,
    /// RTP clock rate, also the track's timescale.
    pub clock_rate: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AudioConfig {
    pub clock_rate: u32,
    pub sample_entry: mp4_atom::Codec,
}

/// A video frame as received, in decode order.
pub(crate) struct VideoInput {
    /// Presentation time: the extended RTP timestamp since the stream's start (retina's
    /// `Timestamp::elapsed`), in `clock_rate` units.
    pub pts: i64,
    pub is_sync: bool,
    /// The sample entry for this and following frames, when the parameters are new (boxed:
    /// it is rare and large, and every queued frame would otherwise carry its size).
    pub sample_entry: Option<Box<mp4_atom::Codec>>,
    pub timing: FrameTiming,
    /// Video sender reports received since the previous frame, in arrival order.
    pub sender_reports: Vec<SenderReport>,
    /// NAL units, each with a 4-byte length prefix.
    pub data: Vec<u8>,
}

/// An audio frame as received.
pub(crate) struct AudioInput {
    /// As [`VideoInput::pts`], in the audio clock rate.
    pub pts: i64,
    /// How long the frame plays, in the audio clock rate (AAC: 1024; PCM: samples per channel).
    pub samples: u32,
    /// When its last packet was read (NTP format): places an audio-only recording's next
    /// session after an outage.
    pub recv: u64,
    pub data: Vec<u8>,
}

/// Where the muxer's bytes go: implemented by the output files.
pub(crate) trait Sink {
    /// A new file begins; its first frame was received at `first_recv` (NTP format).
    fn begin_file(&mut self, first_recv: u64) -> std::io::Result<()>;
    /// (Re)writes the header region at the start of the file. Always [`HEADER_SIZE`] bytes.
    fn write_header(&mut self, header: &[u8]) -> std::io::Result<Stored>;
    /// Appends one fragment (or the final index), given as consecutive parts, in one write.
    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<Stored>;
    /// The file is complete: its last fragment and final header are written.
    fn end_file(&mut self, summary: &FileSummary) -> std::io::Result<()>;
}

/// Whether a write reached the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    Written,
    /// The disk is full: nothing of it was kept (the file stays valid up to its last whole
    /// fragment), and the media in it is dropped.
    Dropped,
}

/// A finished file, as the muxer saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileSummary {
    /// When its first and last frames were received (NTP format): video frames, when it has
    /// video (as its `89H` messages say), else audio.
    pub first_recv: u64,
    pub last_recv: u64,
}

/// Counts reported at the end of a recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Video samples written.
    pub video_frames: u64,
    /// Audio samples written.
    pub audio_frames: u64,
    /// Fragments (`moof` + `mdat`) written.
    pub fragments: u64,
    /// Files finished.
    pub files: u64,
    /// Video and audio frames dropped because the disk was full.
    pub dropped_disk_full: u64,
    /// Video sender reports written as `o8B` timing messages.
    pub sender_reports: u64,
    /// Video sample descriptions: one per distinct set of parameters.
    pub sample_descriptions: u64,
    /// Video frames before the first keyframe, which cannot be decoded.
    pub dropped_before_keyframe: u64,
    /// Audio frames from before the video's first keyframe.
    pub dropped_audio_before_start: u64,
    /// Audio frames that overlapped their predecessor by more than the
    /// 100 ms shift allowed.
    pub dropped_audio_backward: u64,
    /// Small backward steps in the audio timestamps, after which audio was moved later to
    /// follow the previous frame.
    pub shifted_audio: u64,
    /// Frames without content: video access units with no picture, empty audio frames.
    pub dropped_empty: u64,
    /// Discontinuities in either track's timestamps (steps over 10 s forward
    /// or 1 s back).
    pub timestamp_jumps: u64,
    /// Media time recorded, in seconds.
    pub duration_secs: f64,
}

impl Stats {
    /// Frames received but not stored, for any of the reasons counted above.
    pub fn dropped(&self) -> u64 {
        self.dropped_disk_full
            + self.dropped_before_keyframe
            + self.dropped_audio_before_start
            + self.dropped_audio_backward
            + self.dropped_empty
    }
}

#[derive(Debug)]
pub(crate) enum Error {
    Io(std::io::Error),
    Mp4(mp4_atom::Error),
    /// The header region cannot hold all sample descriptions.
    HeaderFull {
        needed: usize,
    },
    /// One fragment's data does not fit the 32-bit offsets of `trun`.
    FragmentTooLarge,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Mp4(e) => write!(f, "MP4 encoding failed: {e}"),
            Error::HeaderFull { needed } => write!(
                f,
                "the camera changed its video parameters too often: describing them all needs \
                 {needed} bytes of MP4 header, more than the {HEADER_SIZE} reserved"
            ),
            Error::FragmentTooLarge => write!(f, "fragment larger than 2 GiB"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<mp4_atom::Error> for Error {
    fn from(e: mp4_atom::Error) -> Self {
        Error::Mp4(e)
    }
}

#[cfg(test)]
mod tests;
