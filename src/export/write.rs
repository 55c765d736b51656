//! A piece of a recording into one MP4, bytes copied: from the keyframe at or before its
//! first frame (decoded, not shown: the edit list, ISO/IEC 14496-12 §8.6.6, starts at the
//! first frame) to its last frame, and the audio of the same time. Of the frames only the
//! first one's timing SEI changes: it gains the latest sender report of its session (unless
//! it has one) and its session's `conn`, as the first frame of every recorded file does
//! (`docs/timing-sei.md`); every other frame is copied byte for byte.
//!
//! Files follow each other on the output's timeline as the recorder's timeline had them (a
//! reconnect's gap stays a gap: the frame before it lasts until the next); files from another
//! run of the recorder, whose timeline starts again, are placed by receive time.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::cut::{Part, Piece};
use crate::codec::VideoCodec;
use crate::mp4::plain;
use crate::mp4::read::{Data, Fragments, Sample, Track, VideoFrames};
use crate::output::partial_path;
use crate::sei::{self, SenderReport, TimingMessage};
use crate::timing::scan::Scan;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_UNIX_OFFSET_SECS: u64 = 2_082_844_800;

use super::layout::{copy, tables};

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// The finished file.
    pub path: PathBuf,
    /// Video frames in it.
    pub video_samples: usize,
    /// How many of them are shown (those before lead up to the first: decoded, not shown).
    pub shown: usize,
    /// Audio frames in it.
    pub audio_samples: usize,
    /// The shown video's length, in seconds.
    pub secs: f64,
    /// Its size.
    pub bytes: u64,
}

/// One file's samples for the export, in decode order, each with the number of the fragment
/// it came from (its chunk in the output).
pub(super) struct Taken {
    pub(super) path: PathBuf,
    pub(super) file: Data,
    pub(super) video: Vec<(Sample, usize)>,
    pub(super) audio: Vec<(Sample, usize)>,
    pub(super) video_track: Track,
    pub(super) audio_track: Option<Track>,
    /// The shown frames' presentation times (first, last) and the last one's end.
    pub(super) shown: (i64, i64, i64),
    /// Where the file's samples go on the output's timeline: added to their times.
    pub(super) shift: i64,
    pub(super) recv: (i128, i128),
}

/// Writes `piece` of `scan`'s recording to `out` (via `out.partial`, synced, then renamed;
/// neither is ever overwritten).
pub fn write(scan: &Scan, piece: &Piece, out: &Path) -> anyhow::Result<Written> {
    for path in [out.to_owned(), partial_path(out)] {
        if path.exists() {
            bail!(
                "{} already exists; not overwriting it: choose another -o",
                path.display()
            );
        }
    }
    let mut taken = Vec::with_capacity(piece.parts.len());
    for (i, part) in piece.parts.iter().enumerate() {
        taken.push(take(part, i == 0)?);
    }
    place(&mut taken)?;
    let codec = taken[0]
        .video_track
        .video_codec()
        .context("the video is not H.264 or H.265")?;
    if taken
        .iter()
        .any(|t| t.video_track.video_codec() != Some(codec))
    {
        bail!("the files hold different codecs: are they one camera's?");
    }
    let session = &scan.sessions[piece.first.session];
    let first = &taken[0];
    let report = latest_report(&first.path, first.video[0].0.offset)?;
    let opening = opening(first, codec, session.conn, report)?;
    let (tracks, chunks) = tables(&mut taken, opening.len())?;
    let creation = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
    let head = plain::head(&tracks, &chunks, creation + MP4_UNIX_OFFSET_SECS)?;
    let partial = partial_path(out);
    let mut file = File::create_new(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let written = copy(&mut file, &head, &taken, &chunks, opening).and_then(|bytes| {
        file.sync_all()?;
        crate::output::link_into_place(&partial, out)?;
        Ok(bytes)
    });
    let bytes = match written {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!("cannot write {}", out.display())));
        }
    };
    let video = &tracks[0];
    Ok(Written {
        path: out.to_owned(),
        video_samples: video.samples.len(),
        shown: piece.frames,
        audio_samples: tracks.get(1).map_or(0, |a| a.samples.len()),
        secs: video.edit.1 as f64 / f64::from(video.timescale.max(1)),
        bytes,
    })
}

/// The samples of `part`'s file from the keyframe at or before its first shown frame (when
/// `first`; later files are shown from their start) to its last, and its audio.
fn take(part: &Part, first: bool) -> anyhow::Result<Taken> {
    let opened =
        File::open(&part.path).with_context(|| format!("cannot open {}", part.path.display()))?;
    let file = Data::File(opened);
    let mut frags = Fragments::new(&file)?;
    let video_track = frags
        .tracks
        .iter()
        .find(|t| t.is_video())
        .cloned()
        .with_context(|| format!("{} has no video", part.path.display()))?;
    let audio_track = frags.tracks.iter().find(|t| t.is_audio()).cloned();
    let (lo, hi) = part.ticks;
    if first && let Some(at) = keyframe_fragment(&frags, video_track.track_id, lo) {
        frags.seek(at);
    }
    let mut video: Vec<(Sample, usize)> = Vec::new();
    let mut audio: Vec<(Sample, usize)> = Vec::new();
    let audio_id = audio_track.as_ref().map(|a| a.track_id);
    let push = |video: &mut Vec<_>, audio: &mut Vec<_>, s: Sample, n: usize| {
        if s.track_id == video_track.track_id {
            video.push((s, n));
        } else if Some(s.track_id) == audio_id {
            audio.push((s, n));
        }
    };
    // An unfragmented file (0.1/0.2) lists its samples in its moov: one chunk of them.
    for s in std::mem::take(&mut frags.table_samples) {
        push(&mut video, &mut audio, s, 0);
    }
    // To the fragment whose video passes the interval, and one more for the audio that lags.
    let (mut number, mut past) = (0, 0);
    while past < 2 {
        let Some(f) = frags.next_fragment()? else {
            break;
        };
        number += 1;
        for (s, _) in f.samples {
            push(&mut video, &mut audio, s, number);
        }
        if video.last().is_some_and(|(s, _)| s.dts as i64 > hi) {
            past += 1;
        }
    }
    drop(frags);
    let start = video
        .iter()
        .rposition(|(s, _)| s.is_sync && s.pts() <= lo)
        .with_context(|| {
            format!(
                "{} has no keyframe before the interval",
                part.path.display()
            )
        })?;
    let end = video
        .iter()
        .rposition(|(s, _)| s.pts() <= hi)
        .unwrap_or(start);
    video.truncate(end + 1);
    video.drain(..start);
    let last_end = video
        .iter()
        .filter(|(s, _)| s.pts() == hi)
        .map(|(s, _)| hi + i64::from(s.duration))
        .next()
        .unwrap_or(hi);
    let rate_v = i128::from(video_track.timescale.max(1));
    let audio = match &audio_track {
        Some(a) => {
            // The audio's times for the video's: both tracks' edits start them together.
            let rate_a = i128::from(a.timescale.max(1));
            let to_audio = |v: i64| {
                (i128::from(v) - i128::from(video_track.media_start)) * rate_a / rate_v
                    + i128::from(a.media_start)
            };
            let (from, to) = (to_audio(lo), to_audio(last_end));
            audio.retain(|(s, _)| {
                let t = i128::from(s.dts);
                t + i128::from(s.duration) > from && t < to
            });
            audio
        }
        None => audio,
    };
    Ok(Taken {
        path: part.path.clone(),
        file,
        video,
        audio,
        video_track,
        audio_track,
        shown: (lo, hi, last_end),
        shift: 0,
        recv: part.recv,
    })
}

/// The `moof` holding the keyframe at or before `pts`, from the file's index.
fn keyframe_fragment<D: std::ops::Deref<Target = Data>>(
    frags: &Fragments<D>,
    track_id: u32,
    pts: i64,
) -> Option<u64> {
    let mfra = frags.index()?;
    let tfra = mfra.tfra.into_iter().find(|t| t.track_id == track_id)?;
    let at = u64::try_from(pts).ok()?;
    tfra.entries
        .iter()
        .rev()
        .find(|e| e.time <= at)
        .map(|e| e.moof_offset)
}

/// Each file's shift onto the output's timeline: the first starts at 0; a later one keeps its
/// distance from the one before on the recorder's timeline when receive times agree with it
/// (to within a second), else is placed by receive time.
fn place(taken: &mut [Taken]) -> anyhow::Result<()> {
    let Some(first) = taken.first_mut() else {
        bail!("nothing to export");
    };
    let Some((s, _)) = first.video.first() else {
        bail!("no video frames to export");
    };
    first.shift = -(s.dts as i64);
    for i in 1..taken.len() {
        let (before, rest) = taken.split_at_mut(i);
        let (prev, this) = (&before[i - 1], &mut rest[0]);
        let rate = i128::from(this.video_track.timescale.max(1));
        let (Some((last, _)), Some((next, _))) = (prev.video.last(), this.video.first()) else {
            continue;
        };
        let prev_end = last.dts as i64 + i64::from(last.duration);
        let recorded = next.dts as i64 - prev_end;
        let by_recv =
            ((this.recv.0 - prev.recv.1) * rate / 1_000_000_000) as i64 - i64::from(last.duration);
        let gap = if recorded >= 0 && (recorded - by_recv).abs() <= rate as i64 {
            recorded
        } else {
            by_recv.max(0)
        };
        this.shift = prev_end + prev.shift + gap - next.dts as i64;
    }
    Ok(())
}

/// The latest video sender report of the session of the frame at `offset`, before it, in
/// its file.
fn latest_report(path: &Path, offset: u64) -> anyhow::Result<Option<SenderReport>> {
    let mut frames = VideoFrames::open(path)?;
    let mut latest = None;
    while let Some(f) = frames.next_frame()? {
        if f.sample.offset >= offset {
            break;
        }
        let messages = f.messages.unwrap_or_default();
        // A frame naming its session begins one: the reports before it are another clock's.
        let begins = messages
            .iter()
            .any(|m| matches!(m, TimingMessage::Frame(t) if t.conn.is_some()));
        if begins {
            latest = None;
        }
        for m in messages {
            if let TimingMessage::SenderReport(sr) = m {
                latest = Some(sr);
            }
        }
    }
    Ok(latest)
}

/// The first exported frame's bytes: its timing SEI naming its session and led by a sender
/// report (its own, or `report`); its other SEI and its picture as they were.
fn opening(
    first: &Taken,
    codec: VideoCodec,
    conn: Option<u64>,
    report: Option<SenderReport>,
) -> anyhow::Result<Vec<u8>> {
    let sample = &first.video[0].0;
    let mut data = vec![0; sample.size as usize];
    first.file.read_exact_at(&mut data, sample.offset)?;
    let mut out = Vec::with_capacity(data.len() + 128);
    let mut pos = 0;
    let mut has_report = false;
    while let Some(head) = data.get(pos..pos + 4) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(nal) = data.get(pos + 4..pos + 4 + len) else {
            break;
        };
        if !codec.unit_type(nal).is_some_and(|t| t.is_sei()) {
            break;
        }
        match sei::parse_timing_nal(nal, codec) {
            Ok(TimingMessage::Frame(mut t)) => {
                if !has_report && let Some(sr) = report {
                    sei::append_sender_report_sei(&mut out, codec, sr);
                }
                if t.conn.is_none() && conn.is_some() {
                    t.conn = conn;
                    sei::append_frame_sei(&mut out, codec, t);
                } else {
                    out.extend_from_slice(&data[pos..pos + 4 + len]);
                }
            }
            Ok(TimingMessage::SenderReport(_)) => {
                has_report = true;
                out.extend_from_slice(&data[pos..pos + 4 + len]);
            }
            Err(_) => out.extend_from_slice(&data[pos..pos + 4 + len]),
        }
        pos += 4 + len;
    }
    out.extend_from_slice(&data[pos..]);
    Ok(out)
}
