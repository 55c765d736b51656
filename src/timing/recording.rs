//! A recording's frames with their capture times: the timing SEI read from one or more files
//! (segments of one recording, in any order), split into the RTSP sessions it was received in
//! (`conn`, `docs/timing-sei.md`), each session's RTP times extended over 32-bit wraps (RFC 3550
//! §5.1) and its sender reports fitted ([`super::clock`]).
//!
//! Reports that are not the video stream's are left out before the fit: retina-record 0.2 wrote
//! the audio stream's among them. A video report's NTP time minus its RTP time at the nominal
//! rate barely moves from one report to the next; another clock's does, by most of a second per
//! second, so a report that agrees with none of its neighbours is not the video's.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::clock::{CaptureFrom, ClockFit};
use super::sessions::FrameKey;
use crate::mp4::read::Recording;
use crate::ntp;
use crate::sei::{self, TimingMessage};

/// Reports either side that a report is compared with to tell whether it is the video's.
const NEIGHBOURS: usize = 30;
/// How far (seconds) two of the video's reports may disagree at the nominal rate: 1 % of
/// 30 s (no camera's RTP clock is off by more), or 50 ms of NTP jitter.
const AGREE_S: f64 = 0.3;

/// One video frame, with what its timing tells.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameTime {
    /// Which of the recording's files it is in (its index in [`RecordingTiming::files`]).
    pub file: usize,
    /// Its number in the recording, in presentation order, from 0.
    pub index: usize,
    /// Its presentation time on the recording's timeline, in seconds from the first file's
    /// start.
    pub pts: f64,
    /// A keyframe.
    pub keyframe: bool,
    /// Its RTP timestamp, as sent.
    pub rtp: u32,
    /// When this machine received it, as Unix nanoseconds.
    pub recv_unix_nanos: i128,
    /// When the camera captured it, by the camera's clock, as Unix nanoseconds; `None` without
    /// sender reports to tell.
    pub capture: Option<(i128, CaptureFrom)>,
    /// Which session (index in [`RecordingTiming::sessions`]) it was received in: the RTSP
    /// connection, counted from 0 across the recording's files. RTP times restart with each.
    pub session: usize,
    /// Its sample description (1-based index into its file's `stsd`, ISO/IEC 14496-12
    /// §8.5.2): another one where the camera changed its parameter sets.
    pub sample_description: u32,
}

impl FrameTime {
    /// Receive time minus capture time, in seconds: network and camera latency, plus how far
    /// the camera's clock is behind this machine's.
    pub fn latency(&self) -> Option<f64> {
        self.capture
            .map(|(c, _)| (self.recv_unix_nanos - c) as f64 / 1e9)
    }
}

/// One RTSP session of a recording.
#[derive(Clone, Debug)]
pub struct Session {
    /// The `conn` that names it; `None` in files written before 0.3.
    pub conn: Option<u64>,
    /// Its clock, fitted to its video sender reports; `None` without any.
    pub fit: Option<ClockFit>,
    /// Distinct sender reports found in its frames.
    pub reports: usize,
    /// Of those, how many were not the video stream's and were left out.
    pub foreign_reports: usize,
    /// Each of those reports: the file it was first found in (a segment repeats the latest
    /// one in its first frame) and what became of it.
    pub report_log: Vec<ReportSeen>,
}

/// A distinct sender report of a session.
#[derive(Clone, Copy, Debug)]
pub struct ReportSeen {
    /// The file it was first found in (index in [`RecordingTiming::files`]).
    pub file: usize,
    /// Its extended RTP time.
    pub rtp: i64,
    /// What became of it.
    pub fate: ReportFate,
}

/// What became of a sender report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFate {
    /// Fitted: it tells the camera's clock.
    Used,
    /// The video's, but far off the others: left out.
    Outlier,
    /// Another stream's (retina-record 0.2 stored the audio's among them): left out.
    NotVideo,
}

/// One file of a recording.
#[derive(Clone, Debug)]
pub struct FileTiming {
    /// Where it is.
    pub path: PathBuf,
    /// Video frames in it with timing data.
    pub frames: usize,
    /// Video frames without readable timing data (left out of [`RecordingTiming::frames`]).
    pub frames_without_timing: usize,
    /// It ends in an incomplete box (the `.partial` of a killed recording).
    pub truncated: bool,
}

/// A recording's timing: its files, its frames in presentation order, its sessions.
#[derive(Clone, Debug)]
pub struct RecordingTiming {
    /// Its files, in time order.
    pub files: Vec<FileTiming>,
    /// Its video frames with timing data, in presentation order.
    pub frames: Vec<FrameTime>,
    /// The RTSP sessions it was received in, in order.
    pub sessions: Vec<Session>,
    /// Ticks per second of the video's RTP clock.
    pub clock_rate: u32,
}

/// A frame as read, in decode order, before the fit.
struct FrameRead {
    file: usize,
    pts: i64,
    keyframe: bool,
    sample_description: u32,
    timing: sei::FrameTiming,
    reports: Vec<sei::SenderReport>,
}

/// One file's frames, as read.
struct FileRead {
    info: FileTiming,
    /// Presentation time of the file's first sample in its track's timescale (its edit).
    media_start: u64,
    frames: Vec<FrameRead>,
}

/// Reads the timing of the recording made of `paths` (one file, or the segments of one
/// recording in any order).
///
/// ```no_run
/// use retina_record::timing::recording::read;
///
/// let timing = read(&["front.mp4".into()])?;
/// for f in &timing.frames {
///     if let Some((capture, _)) = f.capture {
///         println!("frame {} captured at {} ns since 1970", f.index, capture);
///     }
/// }
/// # anyhow::Ok(())
/// ```
pub fn read(paths: &[PathBuf]) -> anyhow::Result<RecordingTiming> {
    let recordings = paths
        .iter()
        .map(|p| Ok((p.clone(), Recording::open(p)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    from_recordings(&recordings)
}

/// As [`read`], for recordings already open (or in memory: [`Recording::from_bytes`]), each
/// with the name it is reported under.
pub fn from_recordings(recordings: &[(PathBuf, Recording)]) -> anyhow::Result<RecordingTiming> {
    let mut clock_rate = None;
    let mut files = Vec::new();
    for (path, rec) in recordings {
        let (file, rate) = read_file(path, rec)?;
        if clock_rate.is_some_and(|r| r != rate) {
            bail!(
                "{} has a {rate} Hz video clock, the other files another: not one recording",
                path.display()
            );
        }
        clock_rate = Some(rate);
        files.push(file);
    }
    let clock_rate = clock_rate.context("no files given")?;
    files.sort_by_key(|f| f.frames.first().map(|r| r.timing.recv));
    let origin = files.first().map_or(0, |f| f.media_start);
    let mut reads = Vec::new();
    let mut infos = Vec::new();
    for (i, mut f) in files.into_iter().enumerate() {
        f.frames.iter_mut().for_each(|r| r.file = i);
        reads.extend(f.frames);
        infos.push(f.info);
    }
    let (sessions, frames) = fit_sessions(&reads, clock_rate);
    let mut frames: Vec<FrameTime> = frames
        .into_iter()
        .zip(&reads)
        .map(|((session, capture), r)| FrameTime {
            file: r.file,
            index: 0,
            pts: (r.pts - origin as i64) as f64 / f64::from(clock_rate),
            keyframe: r.keyframe,
            rtp: r.timing.rtp,
            recv_unix_nanos: ntp::to_unix(r.timing.recv),
            capture,
            session,
            sample_description: r.sample_description,
        })
        .collect();
    frames.sort_by(|a, b| a.pts.total_cmp(&b.pts));
    for (i, f) in frames.iter_mut().enumerate() {
        f.index = i;
    }
    Ok(RecordingTiming {
        files: infos,
        frames,
        sessions,
        clock_rate,
    })
}

/// One file's video frames and their timing messages, in decode order; and its video clock.
fn read_file(path: &Path, rec: &Recording) -> anyhow::Result<(FileRead, u32)> {
    let track = rec
        .video_track()
        .with_context(|| format!("{} has no video track", path.display()))?;
    let codec = track
        .video_codec()
        .with_context(|| format!("{}: the video is not H.264 or H.265", path.display()))?;
    let mut frames = Vec::new();
    let mut without = 0;
    for s in rec.track_samples(track.track_id) {
        let messages = rec
            .read_sample(s)
            .ok()
            .and_then(|data| sei::leading_timing_messages(&data, codec).ok());
        let mut timing = None;
        let mut reports = Vec::new();
        for m in messages.into_iter().flatten() {
            match m {
                TimingMessage::Frame(f) if timing.is_none() => timing = Some(f),
                TimingMessage::Frame(_) => {}
                TimingMessage::SenderReport(sr) => reports.push(sr),
            }
        }
        match timing {
            Some(timing) => frames.push(FrameRead {
                file: 0,
                pts: s.pts(),
                keyframe: s.is_sync,
                sample_description: s.sample_description_index,
                timing,
                reports,
            }),
            None => without += 1,
        }
    }
    if frames.is_empty() {
        bail!(
            "{} has no timing data: recorded with the timing data turned off, or not by retina-record",
            path.display()
        );
    }
    let info = FileTiming {
        path: path.to_owned(),
        frames: frames.len(),
        frames_without_timing: without,
        truncated: rec.truncated,
    };
    Ok((
        FileRead {
            info,
            media_start: track.media_start,
            frames,
        },
        track.timescale,
    ))
}

/// Splits `reads` (decode order) into sessions, fits each one's clock, and gives each frame its
/// session and capture time.
#[allow(clippy::type_complexity)]
fn fit_sessions(
    reads: &[FrameRead],
    clock_rate: u32,
) -> (Vec<Session>, Vec<(usize, Option<(i128, CaptureFrom)>)>) {
    let mut sessions = Vec::new();
    let mut out = Vec::with_capacity(reads.len());
    let keys = reads.iter().map(|r| FrameKey {
        file: r.file,
        conn: r.timing.conn,
    });
    for span in super::sessions::sessions(keys) {
        let (session, captures) = fit_session(&reads[span.frames], clock_rate);
        let k = sessions.len();
        sessions.push(session);
        out.extend(captures.into_iter().map(|c| (k, c)));
    }
    (sessions, out)
}

/// Extends RTP times, keeps the video's reports, fits them.
fn fit_session(
    reads: &[FrameRead],
    clock_rate: u32,
) -> (Session, Vec<Option<(i128, CaptureFrom)>>) {
    // Extended RTP: each time continues from the frame before (within ±2^31 ticks of it).
    let mut ext = Vec::with_capacity(reads.len());
    let mut reports: Vec<(i64, i128)> = Vec::new();
    let mut first_file = std::collections::HashMap::new();
    let mut last: Option<(u32, i64)> = None;
    for r in reads {
        let rtp = r.timing.rtp;
        let e = match last {
            Some((raw, e)) => e + i64::from(rtp.wrapping_sub(raw) as i32),
            None => i64::from(rtp) + (1 << 32),
        };
        last = Some((rtp, e));
        ext.push(e);
        for sr in &r.reports {
            let sr_ext = e + i64::from(sr.rtp.wrapping_sub(rtp) as i32);
            let report = (sr_ext, ntp::to_unix(sr.ntp));
            first_file.entry(report).or_insert(r.file);
            reports.push(report);
        }
    }
    reports.sort_unstable();
    reports.dedup();
    let total = reports.len();
    let video = the_videos(&reports, clock_rate);
    let fit = ClockFit::new(&video, clock_rate);
    let captures = ext
        .iter()
        .map(|&e| fit.as_ref().map(|f| f.capture(e)))
        .collect();
    let used: std::collections::HashSet<i64> = fit
        .as_ref()
        .map(|f| f.residuals().into_iter().map(|(x, _)| x).collect())
        .unwrap_or_default();
    let report_log = reports
        .iter()
        .map(|r| ReportSeen {
            file: first_file.get(r).copied().unwrap_or(0),
            rtp: r.0,
            fate: match (used.contains(&r.0), video.binary_search(r).is_ok()) {
                (true, _) => ReportFate::Used,
                (false, true) => ReportFate::Outlier,
                (false, false) => ReportFate::NotVideo,
            },
        })
        .collect();
    let session = Session {
        conn: reads.first().and_then(|r| r.timing.conn),
        fit,
        reports: total,
        foreign_reports: total - video.len(),
        report_log,
    };
    (session, captures)
}

/// The reports (sorted by RTP time) that agree with at least two of their neighbours at the
/// nominal clock rate: the video stream's. With fewer than four, all of them.
fn the_videos(reports: &[(i64, i128)], clock_rate: u32) -> Vec<(i64, i128)> {
    if reports.len() < 4 {
        return reports.to_vec();
    }
    let rate = f64::from(clock_rate.max(1));
    let (x0, y0) = reports[0];
    let offsets: Vec<f64> = reports
        .iter()
        .map(|&(x, y)| (y - y0) as f64 / 1e9 - (x - x0) as f64 / rate)
        .collect();
    // In arrival order too (RTP order is arrival order for the video's own reports).
    reports
        .iter()
        .enumerate()
        .filter(|&(i, _)| {
            let lo = i.saturating_sub(NEIGHBOURS);
            let hi = (i + NEIGHBOURS + 1).min(reports.len());
            (lo..hi)
                .filter(|&j| j != i && (offsets[j] - offsets[i]).abs() < AGREE_S)
                .count()
                >= 2
        })
        .map(|(_, r)| *r)
        .collect()
}
