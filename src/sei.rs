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
//! Writing goes straight into the caller's buffer: the muxer renders each frame's SEI into the
//! fragment it is building, so no per-frame allocation is needed.

use std::io::Write as _;

use crate::codec::VideoCodec;
use crate::codec::h26x;

/// UUID of the per-frame message.
pub const FRAME_UUID: &[u8; 16] = b"strawlab.org/89H";
/// UUID of the sender-report message.
pub const SENDER_REPORT_UUID: &[u8; 16] = b"strawlab.org/o8B";

/// SEI payload type `user_data_unregistered`.
const PAYLOAD_TYPE_USER_DATA_UNREGISTERED: u8 = 5;

/// Per-frame timing: when we received the frame and its RTP timestamp as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport {
    /// NTP-format wall-clock time at which the RTCP packet was read.
    pub recv: u64,
    /// The SR's NTP timestamp field, verbatim.
    pub ntp: u64,
    /// The SR's RTP timestamp field, verbatim.
    pub rtp: u32,
}

/// Converts a wall-clock time to the 64-bit NTP format.
pub fn ntp_from_system_time(t: std::time::SystemTime) -> u64 {
    // Seconds from 1900-01-01 to 1970-01-01 (RFC 5905 §6).
    const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;
    let (secs, nanos) = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() + NTP_UNIX_OFFSET_SECS, d.subsec_nanos()),
        // A clock set before 1970 is nonsense; clamp rather than fail the recording.
        Err(_) => (NTP_UNIX_OFFSET_SECS, 0),
    };
    let frac = (u64::from(nanos) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Converts nanoseconds since the Unix epoch to the 64-bit NTP format (clamped to it).
pub fn ntp_from_unix(nanos: i128) -> u64 {
    const NTP_UNIX_OFFSET_NANOS: i128 = 2_208_988_800 * 1_000_000_000;
    let since_1900 = (nanos + NTP_UNIX_OFFSET_NANOS).clamp(0, (1 << 32) * 1_000_000_000 - 1);
    let secs = since_1900 / 1_000_000_000;
    let frac = ((since_1900 % 1_000_000_000) << 32) / 1_000_000_000;
    ((secs << 32) | frac) as u64
}

/// Converts a 64-bit NTP-format time to nanoseconds since the Unix epoch.
pub fn unix_from_ntp(ntp: u64) -> i128 {
    const NTP_UNIX_OFFSET_SECS: i128 = 2_208_988_800;
    let secs = i128::from(ntp >> 32) - NTP_UNIX_OFFSET_SECS;
    let nanos = (i128::from(ntp & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
    secs * 1_000_000_000 + nanos
}

/// Appends one length-prefixed `89H` SEI NAL unit (4-byte length, as in the MP4 sample).
pub fn append_frame_sei(out: &mut Vec<u8>, codec: VideoCodec, t: FrameTiming) {
    let mut json = JsonBuf::new();
    // `write!` to a fixed array cannot fail for these lengths (at most 70 bytes).
    let _ = match t.conn {
        None => write!(json, r#"{{"recv":{},"rtp":{}}}"#, t.recv, t.rtp),
        Some(conn) => write!(
            json,
            r#"{{"recv":{},"rtp":{},"conn":{conn}}}"#,
            t.recv, t.rtp
        ),
    };
    append_sei(out, codec, FRAME_UUID, json.as_bytes());
}

/// Appends one length-prefixed `o8B` SEI NAL unit (4-byte length, as in the MP4 sample).
pub fn append_sender_report_sei(out: &mut Vec<u8>, codec: VideoCodec, sr: SenderReport) {
    let mut json = JsonBuf::new();
    let _ = write!(
        json,
        r#"{{"recv":{},"ntp":{},"rtp":{}}}"#,
        sr.recv, sr.ntp, sr.rtp
    );
    append_sei(out, codec, SENDER_REPORT_UUID, json.as_bytes());
}

/// Appends `[u32 length][NAL header][sei_message][rbsp_trailing_bits]`, with emulation
/// prevention applied to everything after the NAL header.
fn append_sei(out: &mut Vec<u8>, codec: VideoCodec, uuid: &[u8; 16], json: &[u8]) {
    let len_pos = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(codec.sei_header());
    let mut ep = EmulationPrevention::new(out);
    ep.push(PAYLOAD_TYPE_USER_DATA_UNREGISTERED);
    // payload_size: as many 0xFF bytes as fit, then the remainder (H.264 §7.3.2.3.1).
    let mut size = uuid.len() + json.len();
    while size >= 255 {
        ep.push(0xFF);
        size -= 255;
    }
    ep.push(size as u8); // < 255 after the loop.
    for &b in uuid.iter().chain(json) {
        ep.push(b);
    }
    ep.push(0x80); // rbsp_stop_one_bit + alignment.
    let nal_len = (out.len() - len_pos - 4) as u32; // an SEI of ours is < 300 bytes.
    out[len_pos..len_pos + 4].copy_from_slice(&nal_len.to_be_bytes());
}

/// Inserts `emulation_prevention_three_byte` (H.264 §7.4.1) while appending RBSP bytes.
struct EmulationPrevention<'a> {
    out: &'a mut Vec<u8>,
    zeros: u8,
}

impl<'a> EmulationPrevention<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, zeros: 0 }
    }

    fn push(&mut self, b: u8) {
        if self.zeros >= 2 && b <= 3 {
            self.out.push(3);
            self.zeros = 0;
        }
        self.out.push(b);
        self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
    }
}

/// A stack buffer for the JSON text: long enough for the largest message (`o8B` with three
/// maximal integers is 61 bytes).
struct JsonBuf {
    buf: [u8; 80],
    len: usize,
}

impl JsonBuf {
    fn new() -> Self {
        Self {
            buf: [0; 80],
            len: 0,
        }
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::io::Write for JsonBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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

/// Parses one SEI NAL unit (header included, no length prefix) holding a timing message.
///
/// Only the first `sei_message` of the NAL unit is read, which is how they are written.
pub fn parse_timing_nal(nal: &[u8], codec: VideoCodec) -> Result<TimingMessage, ParseError> {
    let header_len = codec.header_len();
    let ebsp = nal.get(header_len..).ok_or(ParseError::Truncated)?;
    let rbsp = remove_emulation_prevention(ebsp);
    let mut pos = 0;
    let payload_type = read_sei_varint(&rbsp, &mut pos)?;
    let payload_size = read_sei_varint(&rbsp, &mut pos)?;
    if payload_type != usize::from(PAYLOAD_TYPE_USER_DATA_UNREGISTERED) {
        return Err(ParseError::NotUserDataUnregistered);
    }
    let payload = rbsp
        .get(pos..pos + payload_size)
        .ok_or(ParseError::Truncated)?;
    let (uuid, json) = payload.split_at_checked(16).ok_or(ParseError::Truncated)?;
    // Other encoders' user data (x264 writes its settings this way) is not ours to parse.
    if uuid != FRAME_UUID && uuid != SENDER_REPORT_UUID {
        return Err(ParseError::UnknownUuid);
    }
    let fields = JsonFields::parse(json)?;
    if uuid == FRAME_UUID {
        Ok(TimingMessage::Frame(FrameTiming {
            recv: fields.get_u64("recv")?,
            rtp: fields.get_u32("rtp")?,
            conn: fields.get_u64("conn").ok(),
        }))
    } else {
        Ok(TimingMessage::SenderReport(SenderReport {
            recv: fields.get_u64("recv")?,
            ntp: fields.get_u64("ntp")?,
            rtp: fields.get_u32("rtp")?,
        }))
    }
}

/// The timing messages in the SEI NAL units that open a video sample (where the recorder puts
/// them), in order; other SEI (an encoder's own user data, say) is passed over.
pub fn leading_timing_messages(
    sample: &[u8],
    codec: VideoCodec,
) -> Result<Vec<TimingMessage>, ParseError> {
    let mut out = Vec::new();
    for nal in h26x::nal_units(sample) {
        let nal = nal.map_err(ParseError::MalformedSample)?;
        if !codec.unit_type(nal).is_some_and(|t| t.is_sei()) {
            break;
        }
        match parse_timing_nal(nal, codec) {
            Ok(m) => out.push(m),
            Err(ParseError::UnknownUuid | ParseError::NotUserDataUnregistered) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn read_sei_varint(rbsp: &[u8], pos: &mut usize) -> Result<usize, ParseError> {
    let mut value = 0usize;
    loop {
        let b = *rbsp.get(*pos).ok_or(ParseError::Truncated)?;
        *pos += 1;
        value += usize::from(b);
        if b != 0xFF {
            return Ok(value);
        }
    }
}

/// Removes `emulation_prevention_three_byte`s (H.264 §7.4.1).
pub fn remove_emulation_prevention(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// The flat JSON object of a timing message: unsigned integer values only, unknown keys kept
/// (and ignored by the getters), as the format requires of readers.
struct JsonFields<'a>(Vec<(&'a str, u64)>);

impl<'a> JsonFields<'a> {
    fn parse(json: &'a [u8]) -> Result<Self, ParseError> {
        let bad = |why: &str| ParseError::BadJson(why.to_owned());
        let text = std::str::from_utf8(json).map_err(|_| bad("not UTF-8"))?;
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| bad("not an object"))?;
        let mut fields = Vec::new();
        for member in inner.split(',').filter(|m| !m.trim().is_empty()) {
            let (key, value) = member.split_once(':').ok_or_else(|| bad("no ':'"))?;
            let key = key
                .trim()
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .ok_or_else(|| bad("unquoted key"))?;
            // Values of unknown keys may be of any JSON type; only ours must be integers.
            if let Ok(v) = value.trim().parse::<u64>() {
                fields.push((key, v));
            }
        }
        Ok(Self(fields))
    }

    fn get_u64(&self, key: &str) -> Result<u64, ParseError> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| ParseError::BadJson(format!("no integer {key:?}")))
    }

    fn get_u32(&self, key: &str) -> Result<u32, ParseError> {
        u32::try_from(self.get_u64(key)?)
            .map_err(|_| ParseError::BadJson(format!("{key:?} exceeds 32 bits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sei_h264_bytes_match_spec() {
        let mut out = Vec::new();
        append_frame_sei(
            &mut out,
            VideoCodec::H264,
            FrameTiming {
                recv: 16824201542114736079,
                rtp: 3_000_000_000,
                conn: None,
            },
        );
        let json = br#"{"recv":16824201542114736079,"rtp":3000000000}"#;
        let mut expected = Vec::new();
        let nal_len = 1 + 1 + 1 + 16 + json.len() + 1;
        expected.extend_from_slice(&(nal_len as u32).to_be_bytes());
        expected.extend_from_slice(&[0x06, 0x05, (16 + json.len()) as u8]);
        expected.extend_from_slice(b"strawlab.org/89H");
        expected.extend_from_slice(json);
        expected.push(0x80);
        assert_eq!(out, expected);
    }

    #[test]
    fn conn_is_a_third_key_that_reads_back() {
        let t = FrameTiming {
            recv: 1,
            rtp: 2,
            conn: Some(16824201542114736079),
        };
        let mut out = Vec::new();
        append_frame_sei(&mut out, VideoCodec::H264, t);
        let json = br#"{"recv":1,"rtp":2,"conn":16824201542114736079}"#;
        assert_eq!(&out[7 + 16..7 + 16 + json.len()], json);
        assert_eq!(
            parse_timing_nal(&out[4..], VideoCodec::H264),
            Ok(TimingMessage::Frame(t))
        );
    }

    #[test]
    fn sender_report_sei_h265_bytes_match_spec() {
        let mut out = Vec::new();
        let sr = SenderReport {
            recv: 1,
            ntp: 2,
            rtp: 3,
        };
        append_sender_report_sei(&mut out, VideoCodec::H265, sr);
        let json = br#"{"recv":1,"ntp":2,"rtp":3}"#;
        assert_eq!(&out[4..8], &[0x4E, 0x01, 0x05, (16 + json.len()) as u8]);
        assert_eq!(&out[8..24], b"strawlab.org/o8B");
        assert_eq!(&out[24..24 + json.len()], json);
        assert_eq!(out.last(), Some(&0x80));
        assert_eq!(
            parse_timing_nal(&out[4..], VideoCodec::H265),
            Ok(TimingMessage::SenderReport(sr))
        );
    }

    #[test]
    fn long_payload_size_uses_ff_bytes() {
        // Exercise the general path: a payload of 300 bytes is coded as FF 2D.
        let mut out = Vec::new();
        append_sei(&mut out, VideoCodec::H264, FRAME_UUID, &[b' '; 284]);
        assert_eq!(&out[4..8], &[0x06, 0x05, 0xFF, (300 - 255) as u8]);
    }

    #[test]
    fn emulation_prevention_round_trips() {
        let mut out = Vec::new();
        let mut ep = EmulationPrevention::new(&mut out);
        for b in [0, 0, 1, 0, 0, 0, 0, 3, 5] {
            ep.push(b);
        }
        assert_eq!(out, [0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 3, 5]);
        assert_eq!(
            remove_emulation_prevention(&out),
            [0, 0, 1, 0, 0, 0, 0, 3, 5]
        );
    }

    #[test]
    fn reader_ignores_unknown_keys() {
        let mut out = Vec::new();
        append_sei(
            &mut out,
            VideoCodec::H264,
            FRAME_UUID,
            br#"{"recv":7,"later":"x","rtp":9,"more":[1]}"#,
        );
        // "more":[1] splits oddly on ',' but only integer members are kept.
        assert_eq!(
            parse_timing_nal(&out[4..], VideoCodec::H264),
            Ok(TimingMessage::Frame(FrameTiming {
                recv: 7,
                rtp: 9,
                conn: None
            }))
        );
    }

    #[test]
    fn other_user_data_is_unknown_not_malformed() {
        let mut out = Vec::new();
        append_sei(
            &mut out,
            VideoCodec::H264,
            b"x264 settings...",
            b"x264 - core 164",
        );
        assert_eq!(
            parse_timing_nal(&out[4..], VideoCodec::H264),
            Err(ParseError::UnknownUuid)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for nal in [
            &b""[..],
            b"\x06",
            b"\x06\x05\xFF",
            b"\x06\x05\x05abc",
            b"\x06\x04\x01x",
        ] {
            assert!(parse_timing_nal(nal, VideoCodec::H264).is_err());
        }
    }

    #[test]
    fn ntp_and_unix_times_round_trip() {
        for nanos in [0i128, 1_500_000_000, 1_795_000_000_123_456_789] {
            let back = unix_from_ntp(ntp_from_unix(nanos));
            assert!((back - nanos).abs() <= 1, "{nanos} -> {back}");
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_000_000, 250_000_000);
        assert_eq!(
            ntp_from_system_time(t),
            ntp_from_unix(1_795_000_000_250_000_000)
        );
    }

    #[test]
    fn ntp_conversion() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1, 500_000_000);
        assert_eq!(
            ntp_from_system_time(t),
            ((2_208_988_800 + 1) << 32) | (1 << 31)
        );
    }

    /// The JSON payload, fuzzed two ways (deterministic, on stable Rust): well-formed messages
    /// with any values, unknown keys and spacing must read back exactly; token soup must not
    /// panic. `RETINA_RECORD_FUZZ_CASES` sets how many of each (default 20 000).
    #[test]
    fn json_payloads_round_trip_or_fail_cleanly() {
        let cases = std::env::var("RETINA_RECORD_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut rng = 0x1234_5678_9ABC_DEF1_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let extremes = [0, 1, u64::from(u32::MAX), u64::MAX, 1 << 63];
        let tokens: [&[u8]; 16] = [
            b"{",
            b"}",
            b"\"recv\"",
            b"\"rtp\"",
            b"\"ntp\"",
            b"\"conn\"",
            b":",
            b",",
            b"-",
            b"18446744073709551616",
            b"1e9",
            b"0.5",
            b"\"",
            b"\\",
            b" ",
            b"\xC3\xA9",
        ];
        for _ in 0..cases {
            let value = |n: &mut dyn FnMut() -> u64| match n() % 3 {
                0 => extremes[(n() % 5) as usize],
                1 => n() % 1000,
                _ => n(),
            };
            let recv = value(&mut next);
            let ntp = value(&mut next);
            let rtp = value(&mut next) as u32;
            let sr = next() % 2 == 0;
            let space = if next() % 4 == 0 { " " } else { "" };
            let extra = if next() % 4 == 0 {
                format!(",{space}\"later\":{space}{}", next())
            } else {
                String::new()
            };
            let json = if sr {
                format!("{{\"recv\":{space}{recv},\"ntp\":{ntp},\"rtp\":{rtp}{extra}}}")
            } else {
                format!("{{\"recv\":{recv},{space}\"rtp\":{rtp}{extra}}}")
            };
            let uuid = if sr { SENDER_REPORT_UUID } else { FRAME_UUID };
            let mut nal = Vec::new();
            append_sei(&mut nal, VideoCodec::H264, uuid, json.as_bytes());
            let parsed = parse_timing_nal(&nal[4..], VideoCodec::H264);
            let want = if sr {
                TimingMessage::SenderReport(SenderReport { recv, ntp, rtp })
            } else {
                TimingMessage::Frame(FrameTiming {
                    recv,
                    rtp,
                    conn: None,
                })
            };
            assert_eq!(parsed.ok(), Some(want), "{json}");

            let mut soup = Vec::new();
            for _ in 0..next() % 24 {
                soup.extend_from_slice(tokens[(next() % 16) as usize]);
                if next() % 3 == 0 {
                    soup.extend_from_slice(next().to_string().as_bytes());
                }
            }
            let mut nal = Vec::new();
            append_sei(&mut nal, VideoCodec::H265, uuid, &soup);
            let _ = parse_timing_nal(&nal[4..], VideoCodec::H265);
        }
    }
}
