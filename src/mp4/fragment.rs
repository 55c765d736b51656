//! Movie fragments (ISO/IEC 14496-12 §8.8): each track's samples gathered into a `traf`, then
//! `moof` + `mdat` encoded and handed to the sink in one append.
//!
//! Every fragment is self-contained: `tfhd` has `default-base-is-moof`, `tfdt` gives the decode
//! time of its first sample, and `trun` lists each sample's duration, size, flags and
//! composition offset (version 1, signed).
//!
//! Before each `moof` a `prft` (§8.16.5, ProducerReferenceTimeBox) maps the fragment's first
//! video frame in presentation order to the moment this machine received it, for tools that
//! know `prft` (ffmpeg exports it as packet side data) but not our SEI. It is the receive time,
//! not a capture time: it is known as the fragment is written (a capture time needs the sender
//! reports fitted, afterwards), it exists without sender reports, and it is on this machine's
//! clock, which recordings made here share. Its flags say "real time" (a small, consistent
//! offset from when the scene happened: the latency). The SEI carries both clocks per frame.

use mp4_atom::{Atom as _, Encode as _};

use super::audio::AudioSample;
use super::video::VideoSample;
use super::{AUDIO_TRACK_ID, Error, Sink, Stored, VIDEO_TRACK_ID, entry};
use crate::codec::VideoCodec;
use crate::codec::h26x;
use crate::sei;

/// `sample_flags` (§8.8.3.1): a sync sample depends on no other.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags`: depends on others, `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One track's part of the fragment being built, and of the file so far.
#[derive(Default)]
pub(crate) struct TrackFragment {
    /// Decode time of the first sample.
    pub base_dts: u64,
    pub entries: Vec<mp4_atom::TrunEntry>,
    pub data: Vec<u8>,
    pub sample_description_index: u32,
    /// End of the latest sample written to the file (decode time plus duration).
    pub end: u64,
    /// The earliest presentation time among the samples, and when that frame was received
    /// (NTP format): the fragment's `prft`.
    pub first_presented: Option<(u64, u64)>,
}

impl TrackFragment {
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Media time from the first sample to `next_dts`.
    pub(super) fn span(&self, next_dts: u64) -> u64 {
        next_dts.saturating_sub(self.base_dts)
    }

    /// Appends a video sample: its sender reports and frame timing as SEI (when `timing`), the
    /// parameter sets of `in_band` (a sample description) if given, then the frame. Returns how
    /// many sender reports were written.
    pub(super) fn push_video(
        &mut self,
        sample: VideoSample,
        codec: VideoCodec,
        in_band: Option<&mp4_atom::Codec>,
        timing: bool,
    ) -> u64 {
        self.start_at(sample.dts, sample.sample_description_index);
        let pts = sample.dts.saturating_add_signed(sample.cts_offset);
        if self.first_presented.is_none_or(|(first, _)| pts < first) {
            self.first_presented = Some((pts, sample.timing.recv));
        }
        let start = self.data.len();
        let mut reports = 0;
        if timing {
            for &sr in &sample.sender_reports {
                sei::append_sender_report_sei(&mut self.data, codec, sr);
            }
            sei::append_frame_sei(&mut self.data, codec, sample.timing);
            reports = sample.sender_reports.len() as u64;
        }
        for nal in in_band.map(entry::parameter_sets).unwrap_or_default() {
            h26x::append_length_prefixed(&mut self.data, nal);
        }
        self.data.extend_from_slice(&sample.data);
        let size = u32::try_from(self.data.len() - start).unwrap_or(u32::MAX);
        self.entries.push(mp4_atom::TrunEntry {
            duration: Some(sample.duration),
            size: Some(size),
            flags: Some(if sample.is_sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            }),
            cts: Some(sample.cts_offset),
        });
        self.end = self.end.max(sample.dts + u64::from(sample.duration));
        reports
    }

    /// Appends an audio sample (every one is a sync sample: `tfhd`'s default flags say so).
    pub(super) fn push_audio(&mut self, sample: AudioSample) {
        self.start_at(sample.t, 1);
        self.data.extend_from_slice(&sample.data);
        self.entries.push(mp4_atom::TrunEntry {
            duration: Some(sample.duration),
            size: Some(u32::try_from(sample.data.len()).unwrap_or(u32::MAX)),
            flags: None,
            cts: None,
        });
        self.end = self.end.max(sample.t + u64::from(sample.duration));
    }

    /// Takes `old`'s sample and data buffers (emptied, keeping their allocations).
    pub(super) fn take_buffers(&mut self, old: &mut TrackFragment) {
        self.entries = std::mem::take(&mut old.entries);
        self.entries.clear();
        self.data = std::mem::take(&mut old.data);
        self.data.clear();
    }

    /// The first sample of a fragment sets its decode time and sample description.
    fn start_at(&mut self, dts: u64, sample_description_index: u32) {
        if self.entries.is_empty() {
            self.base_dts = dts;
            self.sample_description_index = sample_description_index;
        }
    }
}

/// Writes `moof` + `mdat` for the tracks' non-empty fragments (video first), then empties them.
/// `head_buf` is scratch space reused across fragments.
pub(crate) fn write(
    sequence_number: u32,
    video: &mut TrackFragment,
    audio: &mut TrackFragment,
    head_buf: &mut Vec<u8>,
    sink: &mut dyn Sink,
) -> Result<Stored, Error> {
    let included = [!video.is_empty(), !audio.is_empty()];
    let mut trafs = Vec::with_capacity(2);
    let mut data_lens = Vec::with_capacity(2);
    let tracks = [(VIDEO_TRACK_ID, &mut *video), (AUDIO_TRACK_ID, &mut *audio)];
    for ((track_id, frag), included) in tracks.into_iter().zip(included) {
        if included {
            trafs.push(traf(track_id, frag));
            data_lens.push(frag.data.len());
        }
    }
    let mut moof = mp4_atom::Moof {
        mfhd: mp4_atom::Mfhd { sequence_number },
        traf: trafs,
    };
    // Encode once to learn the moof's size, then again with the real data offsets (the offset
    // fields are present both times, so the size does not change). They count from the moof
    // (`default-base-is-moof`), so the prft before it does not move them.
    head_buf.clear();
    moof.encode(head_buf)?;
    let mdat_len: usize = data_lens.iter().sum();
    let mdat_header_len = if mdat_len + 8 > u32::MAX as usize {
        16
    } else {
        8
    };
    let mut offset = head_buf.len() + mdat_header_len;
    for (traf, len) in moof.traf.iter_mut().zip(&data_lens) {
        if let Some(trun) = traf.trun.first_mut() {
            trun.data_offset = Some(i32::try_from(offset).map_err(|_| Error::FragmentTooLarge)?);
        }
        offset += len;
    }
    head_buf.clear();
    if let Some((media_time, ntp_timestamp)) = video.first_presented.take() {
        mp4_atom::Prft {
            reference_track_id: VIDEO_TRACK_ID,
            ntp_timestamp,
            media_time,
            utc_time_semantics: mp4_atom::ReferenceTime::RealTime,
        }
        .encode(head_buf)?;
    }
    moof.encode(head_buf)?;
    mp4_atom::Header {
        kind: mp4_atom::Mdat::KIND,
        size: Some(mdat_len),
    }
    .encode(head_buf)?;
    let stored = sink.append(&[head_buf, &video.data, &audio.data])?;
    // Give the entry vectors back for reuse, then clear for the next fragment.
    let mut written = moof.traf.into_iter();
    for (frag, included) in [video, audio].into_iter().zip(included) {
        if included {
            reclaim(frag, written.next());
        }
    }
    Ok(stored)
}

/// Builds a track fragment, taking the entries (they are given back after encoding).
fn traf(track_id: u32, frag: &mut TrackFragment) -> mp4_atom::Traf {
    mp4_atom::Traf {
        tfhd: mp4_atom::Tfhd {
            track_id,
            sample_description_index: Some(frag.sample_description_index),
            default_sample_flags: (track_id == AUDIO_TRACK_ID).then_some(SYNC_SAMPLE_FLAGS),
            default_base_is_moof: true,
            ..Default::default()
        },
        tfdt: Some(mp4_atom::Tfdt {
            base_media_decode_time: frag.base_dts,
        }),
        trun: vec![mp4_atom::Trun {
            data_offset: Some(0),
            samples: mp4_atom::TrunSamples::Explicit(std::mem::take(&mut frag.entries)),
        }],
        ..Default::default()
    }
}

/// Takes back a written traf's entry vector (keeping its allocation) and empties the fragment.
fn reclaim(frag: &mut TrackFragment, written: Option<mp4_atom::Traf>) {
    if let Some(mp4_atom::TrunSamples::Explicit(entries)) = written
        .and_then(|t| t.trun.into_iter().next())
        .map(|t| t.samples)
    {
        frag.entries = entries;
    }
    frag.entries.clear();
    frag.data.clear();
}
