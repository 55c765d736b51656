//! A sample as the reader finds it, from a fragment's `trun` (§8.8.8) or an unfragmented
//! file's sample tables (§8.7): where its bytes are and when it is presented.

/// One sample, with its position in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The track it belongs to.
    pub track_id: u32,
    /// Decode time, in the track's timescale.
    pub dts: u64,
    /// Presentation time minus decode time.
    pub cts_offset: i64,
    /// In the track's timescale.
    pub duration: u32,
    /// Bytes.
    pub size: u32,
    /// A sync sample (a keyframe; every audio sample).
    pub is_sync: bool,
    /// Absolute file offset of the sample's data.
    pub offset: u64,
    /// 1-based index into the track's sample entries.
    pub sample_description_index: u32,
}

impl Sample {
    /// Presentation time, in the track's timescale (before any edit list).
    pub fn pts(&self) -> i64 {
        (self.dts as i64).saturating_add(self.cts_offset)
    }
}
