//! H.264 and H.265 NAL units: everything the recorder, the reader and the camera need to know
//! about them, in one place.
//!
//! * NAL unit headers: H.264 (ITU-T H.264 §7.3.1, one byte, `nal_unit_type` in the low five
//!   bits) and H.265 (ITU-T H.265 §7.3.1.2, two bytes, `nal_unit_type` in bits 1..=6 of the
//!   first); the unit types are H.264 Table 7-1 and H.265 Table 7-1.
//! * NAL units in MP4 samples are each prefixed with a 4-byte big-endian length
//!   (ISO/IEC 14496-15 §5.3.2, retina's `lengthSizeMinusOne` of 3).
//! * Fragmentation units for RTP: H.264 FU-A (RFC 6184 §5.8), H.265 FU (RFC 7798 §4.4.3).
//! * Emulation prevention (H.264 §7.4.1, H.265 §7.4.2), for the SEI the recorder writes and
//!   reads.

use std::fmt;

/// The video codecs the recorder stores and the camera serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// ITU-T H.264 / MPEG-4 AVC.
    H264,
    /// ITU-T H.265 / HEVC.
    H265,
}

impl VideoCodec {
    /// Every codec, in the order help texts list them.
    pub const ALL: [VideoCodec; 2] = [VideoCodec::H264, VideoCodec::H265];

    /// The lower-case name used on the command line and in RTP's `encoding_name`.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }

    /// Length of a NAL unit header: H.264 one byte, H.265 two.
    pub fn header_len(self) -> usize {
        match self {
            VideoCodec::H264 => 1,
            VideoCodec::H265 => 2,
        }
    }

    /// The type of the NAL unit `nal` (header included); `None` if it is empty.
    pub fn unit_type(self, nal: &[u8]) -> Option<UnitType> {
        let first = *nal.first()?;
        let value = match self {
            VideoCodec::H264 => first & 0x1F,
            VideoCodec::H265 => (first >> 1) & 0x3F,
        };
        Some(UnitType { codec: self, value })
    }

    /// The header of the SEI NAL units the recorder writes: H.264 `nal_unit_type` 6 with
    /// `nal_ref_idc` 0; H.265 prefix SEI (39), layer 0, `TemporalId` 0 (`nuh_temporal_id_plus1`
    /// 1).
    pub fn sei_header(self) -> &'static [u8] {
        match self {
            VideoCodec::H264 => &[0x06],
            VideoCodec::H265 => &[0x4E, 0x01],
        }
    }

    /// A filler-data NAL unit (H.264 type 12, H.265 type 38): an access unit made of it alone
    /// has no picture, as some cameras send.
    pub fn filler_nal(self) -> &'static [u8] {
        match self {
            VideoCodec::H264 => &[0x0C, 0xFF, 0xFF, 0x80],
            VideoCodec::H265 => &[38 << 1, 0x01, 0xFF, 0xFF, 0x80],
        }
    }

    /// For splitting `nal` into RTP fragmentation units: the payload header every fragment
    /// starts with (H.264 FU indicator, type 28; H.265 PayloadHdr, type 49, keeping F, LayerId
    /// and TID) and the original type that goes into each FU header. `None` for a NAL unit
    /// shorter than its own header.
    pub fn fu_header(self, nal: &[u8]) -> Option<(Vec<u8>, u8)> {
        let unit_type = self.unit_type(nal)?.value;
        match self {
            VideoCodec::H264 => Some((vec![(nal[0] & 0xE0) | 28], unit_type)),
            VideoCodec::H265 => {
                let second = *nal.get(1)?;
                Some((vec![(nal[0] & 0x81) | (49 << 1), second], unit_type))
            }
        }
    }

    /// The first NAL unit of a picture (a coded slice) in a length-prefixed access unit. `None`
    /// for an access unit with no picture (only filler data, say) or a malformed one.
    pub fn first_slice(self, access_unit: &[u8]) -> Option<(UnitType, &[u8])> {
        for nal in nal_units(access_unit) {
            let nal = nal.ok()?;
            if let Some(t) = self.unit_type(nal).filter(|t| t.is_slice()) {
                return Some((t, nal));
            }
        }
        None
    }

    /// Whether an access unit holds its picture from the start: the first slice's first bit
    /// after the NAL header is `first_mb_in_slice == 0` (H.264 §7.3.3, ue(v) coded as `1`) or
    /// `first_slice_segment_in_pic_flag` (H.265 §7.3.6.1). A live broadcast joined mid-frame
    /// can hand over the tail of a keyframe, which must not start a recording.
    pub fn starts_picture(self, access_unit: &[u8]) -> bool {
        self.first_slice(access_unit)
            .and_then(|(_, nal)| nal.get(self.header_len()))
            .is_some_and(|b| b & 0x80 != 0)
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VideoCodec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VideoCodec::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("{s} video is not supported (H.264 and H.265 are)"))
    }
}

/// H.265 parameter-set NAL unit types, in the order a decoder needs them: VPS, SPS, PPS.
pub const H265_PARAMETER_SET_TYPES: [u8; 3] = [32, 33, 34];

/// A NAL unit's type, as its codec defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitType {
    codec: VideoCodec,
    value: u8,
}

impl UnitType {
    /// The `nal_unit_type` field.
    pub fn value(self) -> u8 {
        self.value
    }

    /// A coded slice of a picture: H.264 types 1..=5, H.265 VCL types 0..=31.
    pub fn is_slice(self) -> bool {
        match self.codec {
            VideoCodec::H264 => (1..=5).contains(&self.value),
            VideoCodec::H265 => self.value <= 31,
        }
    }

    /// Supplemental enhancement information: H.264 type 6, H.265 prefix SEI (39).
    pub fn is_sei(self) -> bool {
        match self.codec {
            VideoCodec::H264 => self.value == 6,
            VideoCodec::H265 => self.value == 39,
        }
    }

    /// An intra random access point picture, a sync sample (ISO/IEC 14496-15 §8.4.1): H.264
    /// IDR (5); H.265 BLA (16..=18), IDR (19, 20), CRA (21) and the reserved 22, 23.
    pub fn is_irap(self) -> bool {
        match self.codec {
            VideoCodec::H264 => self.value == 5,
            VideoCodec::H265 => (16..=23).contains(&self.value),
        }
    }

    /// An H.265 clean random access picture (21): an open-GOP keyframe, whose RASL pictures
    /// lean on pictures before it.
    pub fn is_cra(self) -> bool {
        self.codec == VideoCodec::H265 && self.value == 21
    }

    /// An H.265 random access skipped leading picture (8, 9): undecodable when decoding
    /// starts at the CRA picture it leads.
    pub fn is_rasl(self) -> bool {
        self.codec == VideoCodec::H265 && matches!(self.value, 8 | 9)
    }
}

/// A length-prefixed NAL unit that does not fit its sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalError(&'static str);

impl fmt::Display for NalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NalError {}

/// Splits an MP4 sample into its NAL units (each prefixed with a 4-byte length). A malformed
/// sample ends the iteration with one error.
pub fn nal_units(mut data: &[u8]) -> impl Iterator<Item = Result<&[u8], NalError>> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let Some((len, rest)) = data.split_first_chunk::<4>() else {
            data = &[];
            return Some(Err(NalError("truncated NAL length")));
        };
        let len = u32::from_be_bytes(*len) as usize;
        let Some((nal, rest)) = rest.split_at_checked(len) else {
            data = &[];
            return Some(Err(NalError("NAL unit overruns its sample")));
        };
        data = rest;
        Some(Ok(nal))
    })
}

/// Appends `nal` to `out` with its 4-byte length prefix.
pub fn append_length_prefixed(out: &mut Vec<u8>, nal: &[u8]) {
    // NAL units come from samples whose sizes are 32-bit fields.
    out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
    out.extend_from_slice(nal);
}

/// Inserts `emulation_prevention_three_byte` (H.264 §7.4.1, H.265 §7.4.2) while appending
/// RBSP bytes to a NAL unit.
pub struct EmulationPrevention<'a> {
    out: &'a mut Vec<u8>,
    zeros: u8,
}

impl<'a> EmulationPrevention<'a> {
    /// Appends to `out`, which ends in a NAL unit header.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, zeros: 0 }
    }

    /// Appends one RBSP byte, preceded by `0x03` where two zeros and a byte of at most 3 would
    /// make a start code.
    pub fn push(&mut self, b: u8) {
        if self.zeros >= 2 && b <= 3 {
            self.out.push(3);
            self.zeros = 0;
        }
        self.out.push(b);
        self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
    }
}

/// Removes `emulation_prevention_three_byte`s (H.264 §7.4.1, H.265 §7.4.2); most NAL units
/// have none, and are given back as they are.
pub fn remove_emulation_prevention(ebsp: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !ebsp.windows(3).any(|w| w == [0, 0, 3]) {
        return std::borrow::Cow::Borrowed(ebsp);
    }
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
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nals(list: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in list {
            append_length_prefixed(&mut out, n);
        }
        out
    }

    #[test]
    fn a_picture_starts_with_its_first_slice() {
        let h264 = VideoCodec::H264;
        // SEI then an IDR slice with first_mb_in_slice = 0 (first bit 1).
        assert!(h264.starts_picture(&nals(&[&[0x06, 0x05], &[0x65, 0x88, 0x80]])));
        // An IDR slice starting at macroblock 1 (ue(v) "010"): the tail of a picture.
        assert!(!h264.starts_picture(&nals(&[&[0x65, 0x40, 0x80]])));
        // No slice at all.
        assert!(!h264.starts_picture(&nals(&[&[0x06, 0x05]])));
        // H.265 IDR_W_RADL (19): header 26 01, first_slice_segment_in_pic_flag set or not.
        let h265 = VideoCodec::H265;
        assert!(h265.starts_picture(&nals(&[&[0x26, 0x01, 0xAF]])));
        assert!(!h265.starts_picture(&nals(&[&[0x26, 0x01, 0x2F]])));
        // Truncated input is not a picture start, and no panic.
        assert!(!h264.starts_picture(&[0, 0, 0, 9, 0x65]));
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
            &*remove_emulation_prevention(&out),
            [0, 0, 1, 0, 0, 0, 0, 3, 5]
        );
    }

    #[test]
    fn unit_types() {
        let t = |c: VideoCodec, b: &[u8]| c.unit_type(b).expect("non-empty");
        assert!(t(VideoCodec::H264, &[0x65]).is_irap());
        assert!(t(VideoCodec::H264, &[0x06]).is_sei());
        assert!(!t(VideoCodec::H264, &[0x0C]).is_slice());
        assert!(t(VideoCodec::H265, &[21 << 1, 1]).is_cra());
        assert!(t(VideoCodec::H265, &[9 << 1, 1]).is_rasl());
        assert!(t(VideoCodec::H265, &[0x4E, 0x01]).is_sei());
        assert!(!t(VideoCodec::H265, &[38 << 1, 1]).is_slice());
        assert_eq!(VideoCodec::H264.unit_type(&[]), None);
        assert_eq!("h265".parse(), Ok(VideoCodec::H265));
        assert!("vp8".parse::<VideoCodec>().is_err());
    }

    #[test]
    fn malformed_samples_end_in_one_error() {
        let units: Vec<_> = nal_units(&[0, 0, 0, 5, 1]).collect();
        assert_eq!(units, [Err(NalError("NAL unit overruns its sample"))]);
        let units: Vec<_> = nal_units(&[0, 0, 0, 1, 7, 0, 0]).collect();
        assert_eq!(units, [Ok(&[7][..]), Err(NalError("truncated NAL length"))]);
    }
}
