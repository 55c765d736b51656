//! Timing data as H.264/H.265 SEI `user_data_unregistered` messages.
//!
//! The byte format is a compatibility contract with files written by retina-record 0.1/0.2,
//! specified in `docs/timing-sei.md`: two 16-byte UUIDs, each followed by compact JSON.
//!
//! * `strawlab.org/89H` — one per video frame: `{"recv":<u64>,"rtp":<u32>}`.
//! * `strawlab.org/o8B` — one per RTCP sender report of the video stream:
//!   `{"recv":<u64>,"ntp":<u64>,"rtp":<u32>}`.
//!
//! The SEI syntax is ITU-T H.264 §7.3.2.3 / H.265 §7.3.5 (`sei_message`), payload type 5 is
//! `user_data_unregistered` (H.264 §D.1.7). `recv` and `ntp` are 64-bit NTP timestamps
//! (RFC 5905 §6): seconds since 1900 in the high 32 bits, binary fraction in the low 32.
//!
//! `write` renders the messages straight into the fragment the muxer is building; `read` finds
//! them in a recording's samples again.

use crate::codec::h26x;

mod read;
mod write;

pub use read::{leading_sei_len, leading_timing_messages, parse_timing_nal};
pub use write::{append_frame_sei, append_sender_report_sei};

/// UUID of the per-frame message.
pub const FRAME_UUID: &[u8; 16] = b"strawlab.org/89H";
/// UUID of the sender-report message.
pub const SENDER_REPORT_UUID: &[u8; 16] = b"strawlab.org/o8B";

/// SEI payload type `user_data_unregistered`.
const PAYLOAD_TYPE_USER_DATA_UNREGISTERED: u8 = 5;

/// Per-frame timing: when we received the frame and its RTP timestamp as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct FrameTiming {
    /// NTP-format wall-clock time at which the packet completing the frame was read.
    pub recv: u64,
    /// The frame's 32-bit RTP timestamp, as the camera sent it.
    pub rtp: u32,
    /// The RTSP session the frame came in: the NTP-format wall-clock time the recorder
    /// started it. Written on the first frame of each file and of each session only; `None`
    /// elsewhere, meaning the session of the frame before.
    pub conn: Option<u64>,
}

/// One RTCP sender report of the video stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct SenderReport {
    /// NTP-format wall-clock time at which the RTCP packet was read.
    pub recv: u64,
    /// The SR's NTP timestamp field, verbatim.
    pub ntp: u64,
    /// The SR's RTP timestamp field, verbatim.
    pub rtp: u32,
}

/// A timing message read back from a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimingMessage {
    /// `89H`: one video frame's timing.
    Frame(FrameTiming),
    /// `o8B`: a video sender report.
    SenderReport(SenderReport),
}

/// Why an SEI NAL unit could not be read as timing data.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// It ends before its own sizes say.
    Truncated,
    /// An SEI message of another payload type.
    NotUserDataUnregistered,
    /// User data of someone else (an encoder's settings, say).
    UnknownUuid,
    /// Ours, but the JSON is not what the format says.
    BadJson(String),
    /// The sample holding the SEI is not a sequence of length-prefixed NAL units.
    MalformedSample(h26x::NalError),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Truncated => write!(f, "SEI message is truncated"),
            ParseError::NotUserDataUnregistered => {
                write!(f, "SEI message is not user_data_unregistered")
            }
            ParseError::UnknownUuid => write!(f, "SEI user data has an unknown UUID"),
            ParseError::BadJson(why) => write!(f, "SEI timing JSON is malformed: {why}"),
            ParseError::MalformedSample(e) => write!(f, "malformed video sample: {e}"),
        }
    }
}

impl std::error::Error for ParseError {}
