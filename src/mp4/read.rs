//! Reads recordings back: tracks, samples and the timing SEI of every video frame.
//!
//! Handles fragmented MP4 as ISO/IEC 14496-12 §8.8 defines it — ours and ffmpeg's — including
//! the `.partial` of a killed recording: reading stops at the first incomplete box, so what is
//! returned is exactly what a player can use. Unfragmented files (retina-record 0.1/0.2's) are
//! read from their sample tables (`table.rs`).
//!
//! `Fragments` streams one fragment at a time (constant memory, used to build the `mfra`
//! index of long recordings); [`Recording::open`] collects everything (tests, small files), and
//! [`Recording::from_bytes`] does the same for a file held in memory (the camera's clips).

use std::fs::File;
use std::path::Path;

use anyhow::{Context as _, bail};
use mp4_atom::{Atom as _, Decode as _};

use crate::codec::VideoCodec;
use crate::sei::{self, FrameTiming, SenderReport, TimingMessage};

pub use super::sample::Sample;

/// Turns every `sgpd` (sample group description, §8.9.3) under `body` (a `moov`'s, or at
/// `depth` one of its containers') into a `free` box, which the decoder skips. Nothing here
/// reads sample groups, and mp4-atom 0.17 decodes a version-0 `sgpd` of an unknown grouping
/// type so that a corrupt entry count makes it allocate without bound (found by our fuzzer).
fn skip_sample_groups(body: &mut [u8], depth: usize) {
    const CONTAINERS: [&[u8; 4]; 4] = [b"trak", b"mdia", b"minf", b"stbl"];
    let mut pos = 0;
    while let Some(header) = body.get(pos..pos + 8) {
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let (header_len, size) = match size {
            0 => (8, body.len() - pos),
            1 => match body.get(pos + 8..pos + 16) {
                Some(large) => {
                    let mut b = [0; 8];
                    b.copy_from_slice(large);
                    (
                        16,
                        usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                    )
                }
                None => return,
            },
            n => (8, n),
        };
        let Some(end) = pos
            .checked_add(size)
            .filter(|&e| size >= header_len && e <= body.len())
        else {
            return;
        };
        let kind = &mut body[pos + 4..pos + 8];
        if kind == b"sgpd" {
            kind.copy_from_slice(b"free");
        } else if CONTAINERS.get(depth).is_some_and(|c| kind == &c[..]) {
            skip_sample_groups(&mut body[pos + header_len..end], depth + 1);
        }
        pos = end;
    }
}

/// One `moof` and what it describes.
#[derive(Debug)]
pub(crate) struct Fragment {
    pub moof_offset: u64,
    /// The `prft` just before the `moof`, if any.
    pub producer_time: Option<mp4_atom::Prft>,
    /// Samples in file order, each traf's in decode order; `(traf_number, trun_number,
    /// sample_number)` (1-based, as `tfra` counts) alongside.
    pub samples: Vec<(Sample, (u32, u32, u32))>,
}

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

/// Where a recording's bytes are: a file, or memory.
pub(crate) enum Data {
    File(File),
    Bytes(std::borrow::Cow<'static, [u8]>),
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::File(file) => write!(f, "File({file:?})"),
            Data::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

impl Data {
    fn len(&self) -> std::io::Result<u64> {
        match self {
            Data::File(f) => Ok(f.metadata()?.len()),
            Data::Bytes(b) => Ok(b.len() as u64),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        match self {
            Data::File(f) => {
                use std::os::unix::fs::FileExt as _;
                f.read_exact_at(buf, pos)
            }
            Data::Bytes(b) => {
                let start = usize::try_from(pos).unwrap_or(usize::MAX);
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| b.get(start..end))
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

/// Streams the fragments of a recording after reading its `moov`.
pub(crate) struct Fragments<'f> {
    file: &'f Data,
    pos: u64,
    len: u64,
    pub tracks: Vec<Track>,
    pub mvhd: mp4_atom::Mvhd,
    /// Set when a box at the end of the file is incomplete (a killed recording).
    pub truncated: bool,
    pub mfra: Option<mp4_atom::Mfra>,
    /// The samples an unfragmented file's sample tables list (none in ours).
    pub table_samples: Vec<Sample>,
}

impl<'f> Fragments<'f> {
    pub(crate) fn new(file: &'f Data) -> anyhow::Result<Self> {
        let (mut this, start, body_len) = Self::past_moov(file)?;
        let mut body = this.read_body(start, body_len)?;
        skip_sample_groups(&mut body, 0);
        let moov = mp4_atom::Moov::decode_body(&mut &body[..]).context("cannot decode moov")?;
        this.set_moov(moov)?;
        Ok(this)
    }

    /// Streams the fragments of a file whose tracks the caller knows (one this process wrote)
    /// without decoding its `moov`. That decoding is mp4-atom's deepest call: done by each
    /// writer thread to index its first finished file, it left 36 KiB more of the thread's
    /// stack resident for good.
    pub(crate) fn with_tracks(file: &'f Data, tracks: Vec<Track>) -> anyhow::Result<Self> {
        let (mut this, _, _) = Self::past_moov(file)?;
        this.tracks = tracks;
        Ok(this)
    }

    /// A reader positioned after the `moov`, and where the moov's body is.
    fn past_moov(file: &'f Data) -> anyhow::Result<(Self, u64, u64)> {
        let len = file.len()?;
        let mut this = Fragments {
            file,
            pos: 0,
            len,
            tracks: Vec::new(),
            mvhd: Default::default(),
            truncated: false,
            mfra: None,
            table_samples: Vec::new(),
        };
        while let Some((kind, _, start, body_len)) = this.next_box()? {
            if kind == mp4_atom::Moov::KIND {
                return Ok((this, start, body_len));
            }
            if kind == mp4_atom::Moof::KIND {
                bail!("moof before moov");
            }
        }
        bail!("no moov box: not an MP4 recording, or one killed before its first fragment")
    }

    fn set_moov(&mut self, moov: mp4_atom::Moov) -> anyhow::Result<()> {
        for t in &moov.trak {
            let samples = super::table::samples(t.tkhd.track_id, &t.mdia.minf.stbl, self.len)?;
            self.table_samples.extend(samples);
        }
        self.table_samples.sort_by_key(|s| s.offset);
        let trexs = moov.mvex.map(|m| m.trex).unwrap_or_default();
        self.mvhd = moov.mvhd;
        self.tracks = moov
            .trak
            .into_iter()
            .map(|t| Track {
                track_id: t.tkhd.track_id,
                handler: t.mdia.hdlr.handler,
                timescale: t.mdia.mdhd.timescale,
                sample_entries: t.mdia.minf.stbl.stsd.codecs,
                creation_time: t.mdia.mdhd.creation_time,
                duration: t.mdia.mdhd.duration,
                media_start: t
                    .edts
                    .and_then(|e| e.elst)
                    .and_then(|e| e.entries.into_iter().find_map(|e| e.media_time))
                    .unwrap_or(0),
                trex: trexs
                    .iter()
                    .find(|x| x.track_id == t.tkhd.track_id)
                    .cloned(),
                next_dts: 0,
            })
            .collect();
        Ok(())
    }

    /// Reads the next box header: `(kind, box start, body start, body length)`; `None` at the
    /// end or at an incomplete box.
    fn next_box(&mut self) -> anyhow::Result<Option<(mp4_atom::FourCC, u64, u64, u64)>> {
        if self.pos + 8 > self.len {
            self.truncated |= self.pos != self.len;
            return Ok(None);
        }
        let mut head = [0u8; 16];
        let n = if self.pos + 16 <= self.len { 16 } else { 8 };
        self.file.read_exact_at(&mut head[..n], self.pos)?;
        let header = match mp4_atom::Header::decode(&mut &head[..n]) {
            Ok(h) => h,
            Err(_) => {
                self.truncated = true;
                return Ok(None);
            }
        };
        let mut header_len = 8;
        if u32::from_be_bytes([head[0], head[1], head[2], head[3]]) == 1 {
            header_len = 16;
        }
        let body_len = match header.size {
            Some(s) => s as u64,
            None => (self.len - self.pos).saturating_sub(header_len), // extends to end of file
        };
        let start = self.pos;
        let end = start.saturating_add(header_len).saturating_add(body_len);
        if end > self.len {
            self.truncated = true;
            return Ok(None);
        }
        self.pos = end;
        Ok(Some((header.kind, start, start + header_len, body_len)))
    }

    fn read_body(&self, start: u64, len: u64) -> anyhow::Result<Vec<u8>> {
        let len = usize::try_from(len).context("box too large")?;
        if len > 64 << 20 {
            bail!("{len}-byte box is implausibly large for metadata");
        }
        let mut body = vec![0; len];
        self.file.read_exact_at(&mut body, start)?;
        Ok(body)
    }

    /// The next complete fragment.
    pub(crate) fn next_fragment(&mut self) -> anyhow::Result<Option<Fragment>> {
        let mut producer_time = None;
        while let Some((kind, moof_offset, body_start, body_len)) = self.next_box()? {
            if kind == mp4_atom::Prft::KIND {
                // A bad one is not worth the recording: it is left out.
                let body = self.read_body(body_start, body_len)?;
                producer_time = mp4_atom::Prft::decode_body(&mut &body[..]).ok();
                continue;
            }
            if kind == mp4_atom::Mfra::KIND {
                let body = self.read_body(body_start, body_len)?;
                self.mfra = mp4_atom::Mfra::decode_body(&mut &body[..]).ok();
                continue;
            }
            if kind != mp4_atom::Moof::KIND {
                continue;
            }
            let body = self.read_body(body_start, body_len)?;
            let moof = mp4_atom::Moof::decode_body(&mut &body[..])
                .with_context(|| format!("cannot decode moof at byte {moof_offset}"))?;
            let mut fragment = self.fragment(moof, moof_offset)?;
            fragment.producer_time = producer_time.take();
            // A fragment whose data runs past the end of the file is not complete.
            if fragment
                .samples
                .iter()
                .any(|(s, _)| s.offset.saturating_add(u64::from(s.size)) > self.len)
            {
                self.truncated = true;
                return Ok(None);
            }
            return Ok(Some(fragment));
        }
        Ok(None)
    }

    fn fragment(&mut self, moof: mp4_atom::Moof, moof_offset: u64) -> anyhow::Result<Fragment> {
        let mut samples = Vec::new();
        let mut data_end = moof_offset;
        for (traf_i, traf) in moof.traf.iter().enumerate() {
            let tfhd = &traf.tfhd;
            let Some(track) = self.tracks.iter_mut().find(|t| t.track_id == tfhd.track_id) else {
                bail!(
                    "moof at byte {moof_offset} names unknown track {}",
                    tfhd.track_id
                );
            };
            let trex = track.trex.clone().unwrap_or_default();
            // §8.8.7.1: without base-data-offset, the base is the moof for the first traf (or
            // always, with default-base-is-moof), else where the previous traf's data ended.
            let base = match tfhd.base_data_offset {
                Some(b) => b,
                None if tfhd.default_base_is_moof || traf_i == 0 => moof_offset,
                None => data_end,
            };
            let sdi = tfhd
                .sample_description_index
                .unwrap_or(trex.default_sample_description_index);
            let mut dts = traf
                .tfdt
                .as_ref()
                .map_or(track.next_dts, |t| t.base_media_decode_time);
            let mut offset = base;
            for (trun_i, trun) in traf.trun.iter().enumerate() {
                if let Some(o) = trun.data_offset {
                    offset = base
                        .checked_add_signed(i64::from(o))
                        .context("negative data offset")?;
                }
                for (sample_i, e) in trun.samples.iter().enumerate() {
                    let duration = e
                        .duration
                        .or(tfhd.default_sample_duration)
                        .unwrap_or(trex.default_sample_duration);
                    let size = e
                        .size
                        .or(tfhd.default_sample_size)
                        .unwrap_or(trex.default_sample_size);
                    let flags = e
                        .flags
                        .or(tfhd.default_sample_flags)
                        .unwrap_or(trex.default_sample_flags);
                    samples.push((
                        Sample {
                            track_id: tfhd.track_id,
                            dts,
                            cts_offset: e.cts.unwrap_or(0),
                            duration,
                            size,
                            is_sync: flags & 0x0001_0000 == 0,
                            offset,
                            sample_description_index: sdi,
                        },
                        (traf_i as u32 + 1, trun_i as u32 + 1, sample_i as u32 + 1),
                    ));
                    dts = dts.saturating_add(u64::from(duration));
                    offset = offset.saturating_add(u64::from(size));
                }
            }
            track.next_dts = dts;
            data_end = data_end.max(offset);
        }
        Ok(Fragment {
            moof_offset,
            producer_time: None,
            samples,
        })
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
