//! Reading the timing SEI back: the `user_data_unregistered` messages (H.264 §D.1.7) with our
//! UUIDs, their JSON read by serde into the message types, unknown keys of any type ignored as
//! `docs/timing-sei.md` requires of readers.

use super::{
    FRAME_UUID, FrameTiming, PAYLOAD_TYPE_USER_DATA_UNREGISTERED, ParseError, SENDER_REPORT_UUID,
    SenderReport, TimingMessage,
};
use crate::codec::VideoCodec;
use crate::codec::h26x::{self, remove_emulation_prevention};

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
    let bad = |e: serde_json::Error| ParseError::BadJson(e.to_string());
    if uuid == FRAME_UUID {
        serde_json::from_slice::<FrameTiming>(json)
            .map(TimingMessage::Frame)
            .map_err(bad)
    } else {
        serde_json::from_slice::<SenderReport>(json)
            .map(TimingMessage::SenderReport)
            .map_err(bad)
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

/// How many bytes at the start of a `sample_len`-byte sample its SEI NAL units take (length
/// prefixes included), told from `prefix`, its first bytes: `Err(n)` when `prefix` ends inside
/// them, `n` being the bytes to read instead. So a reader reads a frame's timing without the
/// frame.
pub fn leading_sei_len(
    prefix: &[u8],
    sample_len: usize,
    codec: VideoCodec,
) -> Result<usize, usize> {
    let mut pos = 0;
    loop {
        if pos >= sample_len {
            return Ok(sample_len);
        }
        let Some(head) = prefix.get(pos..pos + 4 + codec.header_len()) else {
            return Err(sample_len);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if !codec.unit_type(&head[4..]).is_some_and(|t| t.is_sei()) {
            return Ok(pos);
        }
        let end = pos.saturating_add(4).saturating_add(len);
        if end > prefix.len() {
            return Err(end.min(sample_len));
        }
        pos = end;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sei::write::append_sei;

    /// An `89H` NAL unit holding `json` as written by hand.
    fn frame_nal(json: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        append_sei(&mut out, VideoCodec::H264, FRAME_UUID, json);
        out.split_off(4)
    }

    /// `docs/timing-sei.md`: readers ignore unknown keys, whatever their type. (0.3.0 split
    /// the object on `,` and so refused an array or object value.)
    #[test]
    fn unknown_keys_of_every_type_are_ignored() {
        for (json, recv, rtp) in [
            (&br#"{"recv":1,"rtp":2,"x":[1,2]}"#[..], 1, 2),
            (br#"{"recv":7,"later":"x","rtp":9,"more":[1]}"#, 7, 9),
            (
                br#"{"recv":7,"rtp":9,"x":{"a":[1,{"b":2}],"c":"d,e"},"y":null,"z":1.5}"#,
                7,
                9,
            ),
            (br#"{"x":[{"recv":1}],"recv":7,"rtp":9,"conn":3}"#, 7, 9),
        ] {
            let got = parse_timing_nal(&frame_nal(json), VideoCodec::H264);
            let conn = json.ends_with(br#""conn":3}"#).then_some(3);
            let want = TimingMessage::Frame(FrameTiming { recv, rtp, conn });
            assert_eq!(got, Ok(want), "{}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn our_keys_must_be_unsigned_integers_in_range() {
        for json in [
            &br#"{"recv":7}"#[..],
            br#"{"recv":7,"rtp":4294967296}"#,
            br#"{"recv":-1,"rtp":9}"#,
            br#"{"recv":"7","rtp":9}"#,
            br#"{"recv":7,"rtp":9,"conn":[1]}"#,
            br#"[7,9]"#,
        ] {
            let got = parse_timing_nal(&frame_nal(json), VideoCodec::H264);
            assert!(matches!(got, Err(ParseError::BadJson(_))), "{got:?}");
        }
    }

    /// The SEI that opens a sample is told from a prefix, and what more to read when the prefix
    /// ends inside it; a sample without SEI is told at once.
    #[test]
    fn the_leading_sei_is_found_from_a_prefix() {
        use crate::sei::write::{append_frame_sei, append_sender_report_sei};
        let codec = VideoCodec::H264;
        let mut sample = Vec::new();
        append_sender_report_sei(
            &mut sample,
            codec,
            SenderReport {
                recv: 1,
                ntp: 2,
                rtp: 3,
            },
        );
        let frame = FrameTiming {
            recv: 4,
            rtp: 5,
            conn: Some(6),
        };
        append_frame_sei(&mut sample, codec, frame);
        let span = sample.len();
        h26x::append_length_prefixed(&mut sample, &[0x65; 300]);
        assert_eq!(leading_sei_len(&sample, sample.len(), codec), Ok(span));
        assert_eq!(
            leading_sei_len(&sample[..span + 5], sample.len(), codec),
            Ok(span)
        );
        let short = leading_sei_len(&sample[..20], sample.len(), codec);
        let Err(more) = short else {
            panic!("{short:?}")
        };
        assert!(more > 20 && more <= span, "{more}");
        // Reading what it asks for, at most twice (one SEI NAL unit each), tells the span.
        let mut read = 20;
        for _ in 0..2 {
            match leading_sei_len(&sample[..read], sample.len(), codec) {
                Ok(n) => {
                    assert_eq!(n, span);
                    break;
                }
                Err(n) => read = n,
            }
        }
        assert_eq!(
            leading_sei_len(&sample[..read], sample.len(), codec),
            Ok(span)
        );
        let messages = leading_timing_messages(&sample[..span], codec).expect("messages");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1], TimingMessage::Frame(frame));
        assert_eq!(
            leading_sei_len(&sample[span..], sample.len() - span, codec),
            Ok(0)
        );
        assert_eq!(leading_sei_len(&[], 0, codec), Ok(0));
        assert_eq!(
            leading_sei_len(&sample[..2], sample.len(), codec),
            Err(sample.len())
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
