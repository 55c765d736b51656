//! The first of two passes over a camera's files: each frame's timing SEI read one fragment
//! at a time ([`VideoFrames`]) and kept only as what the clock fit needs — the RTSP sessions
//! ([`super::sessions`]), their sender reports, each file's extent — so that a week scans in
//! memory that grows with its sender reports (one a second), not with its frames. The second
//! pass ([`super::frames`]) reads the frames again, with their capture times.
//!
//! Each session's RTP times are extended over 32-bit wraps (RFC 3550 §5.1), and reports that
//! are not the video stream's left out before the fit: retina-record 0.2 wrote the audio
//! stream's among them. A video report's NTP time minus its RTP time at the nominal rate
//! barely moves from one report to the next; another clock's does, by most of a second per
//! second, so a report that agrees with none of its neighbours is not the video's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::clock::ClockFit;
use super::sessions::FrameKey;
use super::sketch::Quantiles;
use crate::mp4::read::{Data, TimedFrame, VideoFrames};
use crate::ntp;
use crate::sei::{self, TimingMessage};

/// Reports either side that a report is compared with to tell whether it is the video's.
const NEIGHBOURS: usize = 30;
/// How far (seconds) two of the video's reports may disagree at the nominal rate: 1 % of
/// 30 s (no camera's RTP clock is off by more), or 50 ms of NTP jitter.
const AGREE_S: f64 = 0.3;

/// Where a file's bytes are: on disk, or in memory (a test's, a fuzzer's).
#[derive(Clone, Debug)]
pub(crate) enum Source {
    File(PathBuf),
    Bytes(PathBuf, Arc<[u8]>),
}

impl Source {
    pub(crate) fn name(&self) -> &Path {
        match self {
            Source::File(p) | Source::Bytes(p, _) => p,
        }
    }

    pub(crate) fn open(&self) -> anyhow::Result<VideoFrames> {
        match self {
            Source::File(p) => VideoFrames::open(p),
            Source::Bytes(p, b) => VideoFrames::from_data(Data::Bytes(b.to_vec().into()))
                .with_context(|| format!("cannot read {}", p.display())),
        }
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
    /// What became of those reports, counted by the file each was first found in (a segment
    /// repeats the latest one in its first frame), in file order.
    pub report_counts: Vec<ReportCounts>,
    /// NTP steps in the sessions before it: its first clock interval's number.
    pub steps_before: usize,
}

/// A session's distinct sender reports first found in one file, and what became of them.
#[derive(Clone, Debug, Default)]
pub struct ReportCounts {
    /// The file (index in [`Scan::files`]).
    pub file: usize,
    /// Reports.
    pub received: usize,
    /// Fitted: they tell the camera's clock.
    pub used: usize,
    /// The video's, but far off the others: left out.
    pub outliers: usize,
    /// Another stream's (retina-record 0.2 stored the audio's among them): left out.
    pub not_video: usize,
    /// The intervals from each used report to the used report before it (in this session),
    /// seconds.
    pub intervals: Quantiles,
}

/// One file of a recording.
#[derive(Clone, Debug)]
pub struct FileTiming {
    /// Where it is.
    pub path: PathBuf,
    /// Video frames in it with timing data.
    pub frames: usize,
    /// Video frames without readable timing data (left out of the frames).
    pub frames_without_timing: usize,
    /// It ends in an incomplete box (the `.partial` of a killed recording).
    pub truncated: bool,
    /// Its first and last frames' receive times, Unix nanoseconds.
    pub recv_unix_nanos: (i128, i128),
    /// Its frames' durations (the median is the frame interval, which tells gaps).
    pub durations: Quantiles,
}

/// Two files whose frames were received over the same time: not one camera's segments.
#[derive(Clone, Debug)]
pub struct Overlap {
    /// The earlier file.
    pub first: PathBuf,
    /// The file that starts before the earlier one ends.
    pub second: PathBuf,
    /// For how long, seconds.
    pub secs: f64,
}

/// A camera's files, scanned: in time order, with its sessions and their clocks.
#[derive(Clone, Debug)]
pub struct Scan {
    /// Its files, in time order (by their first frame's receive time, not their names).
    pub files: Vec<FileTiming>,
    /// The RTSP sessions it was received in, in order.
    pub sessions: Vec<Session>,
    /// Ticks per second of the video's RTP clock (and its track's timescale).
    pub clock_rate: u32,
    /// Files given twice (the same frames under another name, or the same name twice): each
    /// left out, beside the file kept.
    pub duplicates: Vec<(PathBuf, PathBuf)>,
    /// Files received over the same time as the one before them.
    pub overlaps: Vec<Overlap>,
    pub(crate) sources: Vec<Source>,
    /// Each file's runs of frames: how many, and the session they belong to.
    pub(crate) runs: Vec<Vec<(usize, usize)>>,
    /// Presentation time (track timescale) that the first file starts at.
    pub(crate) origin: u64,
}

/// A frame as read, in decode order.
pub(crate) struct FrameRead {
    pub pts: i64,
    pub keyframe: bool,
    pub sample_description: u32,
    pub timing: sei::FrameTiming,
    pub reports: Vec<sei::SenderReport>,
}

impl FrameRead {
    /// The frame's timing; `None` without a readable `89H` (such frames are left out).
    pub(crate) fn of(frame: TimedFrame) -> Option<FrameRead> {
        let mut timing = None;
        let mut reports = Vec::new();
        for m in frame.messages? {
            match m {
                TimingMessage::Frame(f) if timing.is_none() => timing = Some(f),
                TimingMessage::Frame(_) => {}
                TimingMessage::SenderReport(sr) => reports.push(sr),
            }
        }
        Some(FrameRead {
            pts: frame.sample.pts(),
            keyframe: frame.sample.is_sync,
            sample_description: frame.sample.sample_description_index,
            timing: timing?,
            reports,
        })
    }
}

/// Frames of one file that share a `conn` (or follow one without their own).
struct Run {
    conn: Option<u64>,
    frames: usize,
    first_rtp: u32,
    last_rtp: u32,
    /// Extended RTP of its last frame minus its first's.
    span: i64,
    /// Its sender reports: (extended RTP minus the run's first frame's, NTP as Unix ns).
    reports: Vec<(i64, i64)>,
}

/// One file as the first pass leaves it.
struct FileScan {
    info: FileTiming,
    source: Source,
    media_start: u64,
    clock_rate: u32,
    runs: Vec<Run>,
    first: sei::FrameTiming,
}

/// Scans the camera's files at `paths` (one recording, or its segments in any order).
pub fn scan(paths: &[PathBuf]) -> anyhow::Result<Scan> {
    scan_sources(paths.iter().cloned().map(Source::File).collect())
}

/// As [`scan`], for files in memory, each with the name it is reported under.
pub fn scan_bytes(files: Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<Scan> {
    scan_sources(
        files
            .into_iter()
            .map(|(p, b)| Source::Bytes(p, b.into()))
            .collect(),
    )
}

fn scan_sources(sources: Vec<Source>) -> anyhow::Result<Scan> {
    let mut files = scan_files(sources)?;
    let clock_rate = files.first().context("no files given")?.clock_rate;
    if let Some(f) = files.iter().find(|f| f.clock_rate != clock_rate) {
        bail!(
            "{} has a {} Hz video clock, the other files another: not one recording",
            f.info.path.display(),
            f.clock_rate
        );
    }
    files.sort_by_key(|f| (f.first.recv, f.first.rtp));
    let mut duplicates = Vec::new();
    files.dedup_by(|later, kept| {
        let same = later.first == kept.first && later.info.frames == kept.info.frames;
        if same {
            duplicates.push((kept.info.path.clone(), later.info.path.clone()));
        }
        same
    });
    let overlaps = files
        .windows(2)
        .filter_map(|w| {
            let secs = (w[0].info.recv_unix_nanos.1 - w[1].info.recv_unix_nanos.0) as f64 / 1e9;
            (secs > 0.0).then(|| Overlap {
                first: w[0].info.path.clone(),
                second: w[1].info.path.clone(),
                secs,
            })
        })
        .collect();
    let (sessions, runs) = fit_sessions(&mut files, clock_rate);
    let origin = files.first().map_or(0, |f| f.media_start);
    let mut infos = Vec::with_capacity(files.len());
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        infos.push(f.info);
        sources.push(f.source);
    }
    Ok(Scan {
        files: infos,
        sessions,
        clock_rate,
        duplicates,
        overlaps,
        sources,
        runs,
        origin,
    })
}

/// Scans the files on as many threads as there are cores (each file is scanned on its own),
/// in order.
fn scan_files(sources: Vec<Source>) -> anyhow::Result<Vec<FileScan>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(sources.len());
    if threads <= 1 {
        return sources.into_iter().map(scan_file).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut scanned: Vec<(usize, anyhow::Result<FileScan>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(source) = sources.get(i) else {
                            break mine;
                        };
                        mine.push((i, scan_file(source.clone())));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if scanned.len() < sources.len() {
        bail!("a file could not be scanned");
    }
    scanned.sort_by_key(|(i, _)| *i);
    scanned.into_iter().map(|(_, f)| f).collect()
}

impl Scan {
    /// Its frames' median duration over all its files, seconds: the frame interval.
    pub fn frame_interval(&self) -> Option<f64> {
        let mut all = Quantiles::default();
        for f in &self.files {
            all.merge(&f.durations);
        }
        all.quantile(0.5)
    }
}

/// One file's runs, reports and extent, in one pass over its frames.
fn scan_file(source: Source) -> anyhow::Result<FileScan> {
    let name = source.name().to_owned();
    let mut frames = source.open()?;
    let track = frames.track().clone();
    let mut runs: Vec<Run> = Vec::new();
    let mut durations = Quantiles::default();
    let (mut count, mut without) = (0, 0);
    let mut first = None;
    let mut recv = (i128::MAX, i128::MIN);
    let mut ext = 0i64;
    while let Some(frame) = frames
        .next_frame()
        .with_context(|| format!("cannot read {}", name.display()))?
    {
        durations.add(
            i64::from(frame.sample.duration) * 1_000_000_000 / i64::from(track.timescale.max(1)),
        );
        let Some(read) = FrameRead::of(frame) else {
            without += 1;
            continue;
        };
        count += 1;
        let t = read.timing;
        first.get_or_insert(t);
        let at = ntp::to_unix(t.recv);
        recv = (recv.0.min(at), recv.1.max(at));
        let key = FrameKey {
            file: 0,
            conn: t.conn,
        };
        let new_run = runs.last().is_none_or(|r| {
            let here = FrameKey {
                file: 0,
                conn: r.conn,
            };
            super::sessions::sessions([here, key]).len() > 1
        });
        if new_run {
            ext = 0;
            runs.push(Run {
                conn: t.conn,
                frames: 0,
                first_rtp: t.rtp,
                last_rtp: t.rtp,
                span: 0,
                reports: Vec::new(),
            });
        }
        let Some(run) = runs.last_mut() else { continue };
        if !new_run {
            ext += i64::from(t.rtp.wrapping_sub(run.last_rtp) as i32);
        }
        run.frames += 1;
        run.last_rtp = t.rtp;
        run.span = ext;
        for sr in &read.reports {
            // NTP times (1900 to 2036) are well within i64 nanoseconds of 1970.
            let ntp_nanos = i64::try_from(ntp::to_unix(sr.ntp)).unwrap_or_default();
            let report = (
                ext + i64::from(sr.rtp.wrapping_sub(t.rtp) as i32),
                ntp_nanos,
            );
            if run.reports.last() != Some(&report) {
                run.reports.push(report);
            }
        }
    }
    runs.iter_mut().for_each(|r| r.reports.shrink_to_fit());
    let Some(first) = first else {
        bail!(
            "{} has no timing data: recorded with the timing data turned off, or not by retina-record",
            name.display()
        );
    };
    Ok(FileScan {
        info: FileTiming {
            path: name,
            frames: count,
            frames_without_timing: without,
            truncated: frames.truncated(),
            recv_unix_nanos: recv,
            durations,
        },
        source,
        media_start: track.media_start,
        clock_rate: track.timescale,
        runs,
        first,
    })
}

/// Splits the files' runs into sessions and fits each one's clock (taking the runs' reports);
/// and gives each run its session.
fn fit_sessions(
    files: &mut [FileScan],
    clock_rate: u32,
) -> (Vec<Session>, Vec<Vec<(usize, usize)>>) {
    let keys: Vec<FrameKey> = files
        .iter()
        .enumerate()
        .flat_map(|(file, f)| f.runs.iter().map(move |r| FrameKey { file, conn: r.conn }))
        .collect();
    let count = files.len();
    let mut all: Vec<(usize, &mut Run)> = files
        .iter_mut()
        .enumerate()
        .flat_map(|(i, f)| f.runs.iter_mut().map(move |r| (i, r)))
        .collect();
    let mut sessions: Vec<Session> = Vec::new();
    let mut runs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); count];
    for span in super::sessions::sessions(keys) {
        let k = sessions.len();
        let part = &mut all[span.frames];
        for (file, r) in part.iter() {
            runs[*file].push((r.frames, k));
        }
        let steps_before = sessions.last().map_or(0, |s| {
            s.steps_before + s.fit.as_ref().map_or(0, |f| f.steps().len())
        });
        sessions.push(fit_session(part, clock_rate, steps_before));
    }
    (sessions, runs)
}

/// Extends the session's RTP times across its runs, keeps the video's reports, fits them.
fn fit_session(runs: &mut [(usize, &mut Run)], clock_rate: u32, steps_before: usize) -> Session {
    let total = runs.iter().map(|(_, r)| r.reports.len()).sum();
    let mut reports: Vec<(i64, i64, u32)> = Vec::with_capacity(total);
    let mut last: Option<(u32, i64)> = None;
    for (file, run) in runs.iter_mut() {
        let start = match last {
            Some((raw, e)) => e + i64::from(run.first_rtp.wrapping_sub(raw) as i32),
            None => i64::from(run.first_rtp) + (1 << 32),
        };
        last = Some((run.last_rtp, start + run.span));
        let file = u32::try_from(*file).unwrap_or(u32::MAX);
        let taken = std::mem::take(&mut run.reports);
        reports.extend(taken.into_iter().map(|(x, y)| (start + x, y, file)));
    }
    // Sorted with the file, so that the first file a report is in is the one kept.
    reports.sort_unstable();
    reports.dedup_by_key(|r| (r.0, r.1));
    reports.shrink_to_fit();
    let video = the_videos(&reports, clock_rate);
    let n = video.iter().filter(|&&v| v).count();
    let points = reports
        .iter()
        .zip(&video)
        .filter(|(_, v)| **v)
        .map(|(r, _)| (r.0, i128::from(r.1)));
    let (fit, kept) = ClockFit::from_sorted(n, points, clock_rate);
    Session {
        conn: runs.first().and_then(|(_, r)| r.conn),
        fit,
        reports: reports.len(),
        foreign_reports: reports.len() - n,
        report_counts: count_reports(&reports, &video, &kept, clock_rate),
        steps_before,
    }
}

/// What became of each report (sorted, with the file it was first found in), counted by file:
/// `video` says which are the video's, `kept` which of those the fit kept.
fn count_reports(
    reports: &[(i64, i64, u32)],
    video: &[bool],
    kept: &[bool],
    clock_rate: u32,
) -> Vec<ReportCounts> {
    let mut kept = kept.iter();
    let mut counts: Vec<ReportCounts> = Vec::new();
    let mut last_used = None;
    let rate = f64::from(clock_rate.max(1));
    for (&(x, _, file), &is_video) in reports.iter().zip(video) {
        let file = file as usize;
        if counts.last().is_none_or(|c| c.file != file) {
            counts.push(ReportCounts {
                file,
                ..ReportCounts::default()
            });
        }
        let Some(c) = counts.last_mut() else { continue };
        c.received += 1;
        if !is_video {
            c.not_video += 1;
        } else if kept.next().copied().unwrap_or(false) {
            c.used += 1;
            if let Some(before) = last_used {
                c.intervals.add_secs((x - before) as f64 / rate);
            }
            last_used = Some(x);
        } else {
            c.outliers += 1;
        }
    }
    counts
}

/// Which of the reports (sorted by RTP time) agree with at least two of their neighbours at
/// the nominal clock rate: the video stream's. With fewer than four, all of them.
fn the_videos(reports: &[(i64, i64, u32)], clock_rate: u32) -> Vec<bool> {
    if reports.len() < 4 {
        return vec![true; reports.len()];
    }
    let rate = f64::from(clock_rate.max(1));
    let (x0, y0, _) = reports[0];
    let offset = |i: usize| {
        let (x, y, _) = reports[i];
        (y - y0) as f64 / 1e9 - (x - x0) as f64 / rate
    };
    (0..reports.len())
        .map(|i| {
            let lo = i.saturating_sub(NEIGHBOURS);
            let hi = (i + NEIGHBOURS + 1).min(reports.len());
            let here = offset(i);
            (lo..hi)
                .filter(|&j| j != i && (offset(j) - here).abs() < AGREE_S)
                .count()
                >= 2
        })
        .collect()
}
