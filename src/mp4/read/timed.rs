//! A file's video frames and the timing messages that open each (`docs/timing-sei.md`), one
//! fragment at a time: what `retina-record timing` reads, in memory bounded by one fragment
//! however long the file. Of each frame only its leading SEI is read, not its picture.

use std::fs::File;
use std::path::Path;

use anyhow::Context as _;

use super::{Data, Fragments, Sample, Track};
use crate::codec::VideoCodec;
use crate::sei::{self, TimingMessage};

/// Bytes read first of each frame: its SEI, almost always (`leading_sei_len` asks for more).
const PREFIX: usize = 512;
/// A fragment whose frames average at most this many bytes is read in one call, not a call
/// per frame: below it, a system call costs more than copying the pictures with the SEI.
const BULK_PER_FRAME: u64 = 8 << 10;
/// The most read in one call.
const BULK_MAX: u64 = 8 << 20;

/// A video frame and its timing messages.
#[derive(Clone, Debug)]
pub struct TimedFrame {
    /// Where it is and when it is presented.
    pub sample: Sample,
    /// Its timing messages in stored order; `None` when its SEI cannot be read.
    pub messages: Option<Vec<TimingMessage>>,
}

/// The video frames of one file, in decode order.
pub struct VideoFrames {
    frags: Fragments<Box<Data>>,
    track: Track,
    codec: VideoCodec,
    pending: std::collections::VecDeque<Sample>,
    buf: Vec<u8>,
    /// The current fragment's video data when read in one call, and where it starts.
    bulk: Vec<u8>,
    bulk_at: u64,
}

impl VideoFrames {
    /// Opens `path` (a recording, or the `.partial` of one) at its first video frame.
    pub fn open(path: &Path) -> anyhow::Result<VideoFrames> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Self::from_data(Data::File(file)).with_context(|| format!("cannot read {}", path.display()))
    }

    /// Opens a recording's bytes.
    pub(crate) fn from_data(data: Data) -> anyhow::Result<VideoFrames> {
        let mut frags = Fragments::new(Box::new(data))?;
        let track = frags
            .tracks
            .iter()
            .find(|t| t.is_video())
            .cloned()
            .context("no video track")?;
        let codec = track
            .video_codec()
            .context("the video is not H.264 or H.265")?;
        // An unfragmented file (0.1/0.2) lists its samples in the moov.
        let pending = std::mem::take(&mut frags.table_samples)
            .into_iter()
            .filter(|s| s.track_id == track.track_id)
            .collect();
        Ok(VideoFrames {
            frags,
            track,
            codec,
            pending,
            buf: Vec::with_capacity(PREFIX),
            bulk: Vec::new(),
            bulk_at: 0,
        })
    }

    /// The video track, as the `moov` describes it.
    pub fn track(&self) -> &Track {
        &self.track
    }

    /// Whether the file ended in an incomplete box (so far).
    pub fn truncated(&self) -> bool {
        self.frags.truncated
    }

    /// The next frame; `None` after the last whole fragment.
    pub fn next_frame(&mut self) -> anyhow::Result<Option<TimedFrame>> {
        while self.pending.is_empty() {
            let Some(f) = self.frags.next_fragment()? else {
                return Ok(None);
            };
            let id = self.track.track_id;
            self.pending.extend(
                f.samples
                    .into_iter()
                    .map(|(s, _)| s)
                    .filter(|s| s.track_id == id),
            );
            self.read_bulk()?;
        }
        let Some(sample) = self.pending.pop_front() else {
            return Ok(None);
        };
        let messages = self.messages(&sample)?;
        Ok(Some(TimedFrame { sample, messages }))
    }

    /// Reads the pending frames' data in one call when they are small.
    fn read_bulk(&mut self) -> anyhow::Result<()> {
        self.bulk.clear();
        let start = self.pending.iter().map(|s| s.offset).min().unwrap_or(0);
        let end = self
            .pending
            .iter()
            .map(|s| s.offset.saturating_add(u64::from(s.size)))
            .max()
            .unwrap_or(0);
        let span = end.saturating_sub(start);
        if span > BULK_MAX || span > BULK_PER_FRAME * self.pending.len() as u64 {
            return Ok(());
        }
        self.bulk.resize(span as usize, 0);
        self.frags.read_at(&mut self.bulk, start)?;
        self.bulk_at = start;
        Ok(())
    }

    /// The timing messages opening `sample`, reading its SEI and no more; `None` when they
    /// cannot be parsed.
    fn messages(&mut self, sample: &Sample) -> anyhow::Result<Option<Vec<TimingMessage>>> {
        let size = sample.size as usize;
        let held = sample
            .offset
            .checked_sub(self.bulk_at)
            .and_then(|from| usize::try_from(from).ok())
            .and_then(|from| self.bulk.get(from..from.checked_add(size)?));
        if let Some(data) = held {
            return Ok(match sei::leading_sei_len(data, size, self.codec) {
                Ok(n) => sei::leading_timing_messages(&data[..n], self.codec).ok(),
                Err(_) => None,
            });
        }
        let mut read = size.min(PREFIX);
        // Each pass reads at least one more whole SEI NAL unit, so this ends.
        loop {
            self.buf.resize(read, 0);
            self.frags.read_at(&mut self.buf, sample.offset)?;
            match sei::leading_sei_len(&self.buf, size, self.codec) {
                Ok(n) => return Ok(sei::leading_timing_messages(&self.buf[..n], self.codec).ok()),
                Err(n) if n > read => read = n,
                Err(_) => return Ok(None),
            }
        }
    }
}

/// The timing messages opening `sample` of `data`, its SEI read and no more (a first read of
/// [`PREFIX`] bytes, then as much as `leading_sei_len` asks for); empty when they cannot be
/// parsed. For a reader that wants a few frames' timing, not a file's.
pub(crate) fn leading_messages(
    data: &Data,
    sample: &Sample,
    codec: VideoCodec,
) -> std::io::Result<Vec<TimingMessage>> {
    let size = sample.size as usize;
    let mut buf = vec![0; size.min(PREFIX)];
    // Each pass reads at least one more whole SEI NAL unit, so this ends.
    let n = loop {
        data.read_exact_at(&mut buf, sample.offset)?;
        match sei::leading_sei_len(&buf, size, codec) {
            Ok(n) => break n,
            Err(n) if n > buf.len() => buf.resize(n, 0),
            Err(_) => return Ok(Vec::new()),
        }
    };
    Ok(sei::leading_timing_messages(&buf[..n], codec).unwrap_or_default())
}
