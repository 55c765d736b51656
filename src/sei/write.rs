//! Writing the timing SEI: each message as one length-prefixed NAL unit of one
//! `user_data_unregistered` message (H.264 §7.3.2.3 and §D.1.7, H.265 §7.3.5), its compact JSON
//! formatted on the stack, so that a frame costs no allocation.

use std::io::Write as _;

use super::{
    FRAME_UUID, FrameTiming, PAYLOAD_TYPE_USER_DATA_UNREGISTERED, SENDER_REPORT_UUID, SenderReport,
};
use crate::codec::VideoCodec;
use crate::codec::h26x::EmulationPrevention;

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
pub(super) fn append_sei(out: &mut Vec<u8>, codec: VideoCodec, uuid: &[u8; 16], json: &[u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sei::{TimingMessage, parse_timing_nal};

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
}
