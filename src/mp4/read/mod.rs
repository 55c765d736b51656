//! Reads recordings back: tracks, samples and the timing SEI of every video frame.
//!
//! Handles fragmented MP4 as ISO/IEC 14496-12 §8.8 defines it — ours and ffmpeg's — including
//! the `.partial` of a killed recording: reading stops at the first incomplete box, so what is
//! returned is exactly what a player can use. Unfragmented files (retina-record 0.1/0.2's) are
//! read from their sample tables (`table.rs`).
//!
//! `fragments.rs` streams one fragment at a time (constant memory, used to build the `mfra`
//! index of long recordings), and [`VideoFrames`] so reads each video frame's timing;
//! [`Recording::open`] collects everything (tests, small files), and
//! [`Recording::from_bytes`] does the same for a file held in memory (the camera's clips).

use std::fs::File;
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::codec::VideoCodec;
use crate::sei::{self, FrameTiming, SenderReport, TimingMessage};

pub(crate) use fragments::{Data, Fragments};
pub use sample::Sample;
pub(crate) use timed::leading_messages;
pub use timed::{TimedFrame, VideoFrames};

mod fragments;
mod sample;
mod table;
mod timed;

/// A track as the `moov` describes it.
#[derive(Clone, Debug)]
pub struct Track {
    /// `tkhd` track ID.
    pub track_id: u32,
    /// `hdlr` handler type: `vide`, `soun`, ...
    pub handler: mp4_atom::FourCC,
    /// Ticks per second of its times.
    pub timescale: u32,
    /// Its sample descriptions (`stsd`).
    pub sample_entries: Vec<mp4_atom::Codec>,
    /// `mdhd` creation time, seconds since 1904.
    pub creation_time: u64,
    /// mdhd duration: zero until a clean stop writes it.
    pub duration: u64,
    /// The media time presented first, from the edit list (0 without one).
    pub media_start: u64,
    trex: Option<mp4_atom::Trex>,
    /// Where the next sample's decode time continues when a traf has no tfdt.
    next_dts: u64,
}

impl Track {
    /// A track known without its `moov` entry: its ID and handler type.
    pub(crate) fn known(track_id: u32, handler: &[u8; 4]) -> Track {
        Track {
            track_id,
            handler: mp4_atom::FourCC::new(handler),
            timescale: 0,
            sample_entries: Vec::new(),
            creation_time: 0,
            duration: 0,
            media_start: 0,
            trex: None,
            next_dts: 0,
        }
    }

    /// A video track.
    pub fn is_video(&self) -> bool {
        self.handler == mp4_atom::FourCC::new(b"vide")
    }
    /// An audio track.
    pub fn is_audio(&self) -> bool {
        self.handler == mp4_atom::FourCC::new(b"soun")
    }
    /// The codec of a video track's first sample entry.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        match self.sample_entries.first()? {
            mp4_atom::Codec::Avc1(_) | mp4_atom::Codec::Avc3(_) => Some(VideoCodec::H264),
            mp4_atom::Codec::Hvc1(_) | mp4_atom::Codec::Hev1(_) => Some(VideoCodec::H265),
            _ => None,
        }
    }
}

/// A whole recording, read into memory (sample tables only, not sample data).
#[derive(Debug)]
pub struct Recording {
    /// Its tracks, as the `moov` describes them.
    pub tracks: Vec<Track>,
    /// Every sample of every whole fragment, in file order.
    pub samples: Vec<Sample>,
    /// How many whole fragments it has.
    pub fragments: usize,
    /// The movie header.
    pub mvhd: mp4_atom::Mvhd,
    /// The random-access index, which a finished recording ends with.
    pub mfra: Option<mp4_atom::Mfra>,
    /// The file ends in an incomplete box (as a killed recording's `.partial` may).
    pub truncated: bool,
    /// Each whole fragment's `prft` (ISO/IEC 14496-12 §8.16.5), in file order.
    pub producer_times: Vec<mp4_atom::Prft>,
    file: Data,
}

impl Recording {
    /// Reads a recording (or the `.partial` of one) up to its last whole fragment.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Self::read(Data::File(file)).with_context(|| format!("cannot read {}", path.display()))
    }

    /// Reads a recording held in memory.
    pub fn from_bytes(bytes: impl Into<std::borrow::Cow<'static, [u8]>>) -> anyhow::Result<Self> {
        Self::read(Data::Bytes(bytes.into()))
    }

    fn read(file: Data) -> anyhow::Result<Self> {
        let mut frags = Fragments::new(&file)?;
        let mut samples = std::mem::take(&mut frags.table_samples);
        let mut fragments = 0;
        let mut producer_times = Vec::new();
        while let Some(f) = frags.next_fragment()? {
            fragments += 1;
            producer_times.extend(f.producer_time);
            samples.extend(f.samples.into_iter().map(|(s, _)| s));
        }
        let (tracks, mvhd, mfra, truncated) =
            (frags.tracks, frags.mvhd, frags.mfra, frags.truncated);
        Ok(Recording {
            tracks,
            samples,
            fragments,
            mvhd,
            mfra,
            truncated,
            producer_times,
            file,
        })
    }

    /// The first video track.
    pub fn video_track(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.is_video())
    }

    /// The first audio track.
    pub fn audio_track(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.is_audio())
    }

    /// A track's samples in decode order.
    pub fn track_samples(&self, track_id: u32) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.track_id == track_id)
    }

    /// Seconds of media in a track: end of its last sample.
    pub fn track_duration_secs(&self, track: &Track) -> f64 {
        self.track_samples(track.track_id)
            .map(|s| s.dts + u64::from(s.duration))
            .max()
            .unwrap_or(0) as f64
            / f64::from(track.timescale.max(1))
    }

    /// A sample's bytes.
    pub fn read_sample(&self, sample: &Sample) -> anyhow::Result<Vec<u8>> {
        let mut data = vec![0; sample.size as usize];
        self.file.read_exact_at(&mut data, sample.offset)?;
        Ok(data)
    }

    /// Every video sample with the timing messages at its start, in decode order.
    pub fn video_timing(&self) -> anyhow::Result<Vec<TimedSample>> {
        let Some(track) = self.video_track() else {
            bail!("no video track");
        };
        let codec = track
            .video_codec()
            .context("video track is not H.264/H.265")?;
        self.track_samples(track.track_id)
            .map(|s| {
                let data = self.read_sample(s)?;
                let messages = sei::leading_timing_messages(&data, codec)?;
                Ok(TimedSample {
                    sample: s.clone(),
                    messages,
                })
            })
            .collect()
    }
}

/// A video sample and the timing messages that open it, in the order they are stored.
#[derive(Clone, Debug)]
pub struct TimedSample {
    /// The video sample.
    pub sample: Sample,
    /// Its timing messages, `o8B`s before the `89H`.
    pub messages: Vec<TimingMessage>,
}

impl TimedSample {
    /// The per-frame (`89H`) messages: exactly one in every sample the recorder writes.
    pub fn frames(&self) -> impl Iterator<Item = FrameTiming> + '_ {
        self.messages.iter().filter_map(|m| match m {
            TimingMessage::Frame(f) => Some(*f),
            TimingMessage::SenderReport(_) => None,
        })
    }

    /// The sender-report (`o8B`) messages, in arrival order.
    pub fn sender_reports(&self) -> impl Iterator<Item = SenderReport> + '_ {
        self.messages.iter().filter_map(|m| match m {
            TimingMessage::SenderReport(sr) => Some(*sr),
            TimingMessage::Frame(_) => None,
        })
    }

    /// The frame's timing when it has exactly one `89H`, as the recorder writes it.
    pub fn frame(&self) -> Option<FrameTiming> {
        let mut frames = self.frames();
        match (frames.next(), frames.next()) {
            (Some(f), None) => Some(f),
            _ => None,
        }
    }
}
