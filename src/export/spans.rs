//! What a camera's files hold: continuous spans of frames and the gaps between them, by
//! receive time and by capture time, found without reading every frame. Of each file only
//! its `moov`, its `mfra` index (ISO/IEC 14496-12 §8.8.9: a finished file's keyframes, read
//! from its end), its first fragments and its last are read, and around any keyframe off the
//! others' rhythm to the tick (a new session begins with one), the fragments that say whether
//! a gap is there. A `.partial` (no index) has its fragments' headers read instead.
//!
//! Capture times come from the sender reports in what was read near each frame (the median of
//! what each tells, at the track's nominal clock rate): good to a fraction of a millisecond,
//! as `list` shows them. `timing` fits them properly.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::GAP_S;
use crate::codec::VideoCodec;
use crate::mp4::read::{Data, Fragments, Sample};
use crate::ntp;
use crate::sei::{FrameTiming, SenderReport, TimingMessage};

/// Fragments read at a file's start, at most, to find a sender report.
const HEAD_FRAGMENTS: usize = 10;

/// A frame at the edge of a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// When this machine received it (Unix nanoseconds).
    pub recv: i128,
    /// When the camera captured it, by its clock; `None` without a sender report near.
    pub capture: Option<i128>,
    /// How long it is shown (seconds): a span ends when its last frame does.
    pub duration_s: f64,
    /// The session it was received in, as the timing SEI names it (`conn`); `None` in files
    /// from before 0.3.
    pub conn: Option<u64>,
}

/// Frames without a gap between them.
#[derive(Clone, Debug)]
pub struct Span {
    /// Its first frame.
    pub first: Edge,
    /// Its last frame.
    pub last: Edge,
    /// The files it is in, in order.
    pub files: Vec<PathBuf>,
}

impl Span {
    /// When its last frame ends, by receive time.
    pub fn end_recv(&self) -> i128 {
        self.last.recv + (self.last.duration_s * 1e9) as i128
    }

    /// When its last frame ends, by capture time.
    pub fn end_capture(&self) -> Option<i128> {
        self.last
            .capture
            .map(|c| c + (self.last.duration_s * 1e9) as i128)
    }
}

/// A camera's spans, in time order.
#[derive(Clone, Debug)]
pub struct Listing {
    /// In time order.
    pub spans: Vec<Span>,
    /// Files that end in a cut-off fragment (a killed recording's `.partial`).
    pub truncated: Vec<PathBuf>,
    /// Why the files left out could not be read.
    pub unreadable: Vec<String>,
}

/// One file's spans, as read.
#[derive(Clone, Debug)]
pub struct FileSpans {
    /// The file.
    pub path: PathBuf,
    /// Its spans' first and last frames, in order.
    pub spans: Vec<(Edge, Edge)>,
    /// It ends in a cut-off fragment.
    pub truncated: bool,
}

/// The spans of one camera's `files` (in any order).
pub fn list(files: &[PathBuf]) -> anyhow::Result<Listing> {
    let (read, unreadable) = each_file(files)?;
    let mut listing = join(read);
    listing.unreadable = unreadable.iter().map(|e| format!("{e:#}")).collect();
    Ok(listing)
}

/// Each of `files`' spans, read on every core, in the order of their first frames; and why
/// the files that cannot be read cannot. Fails only when none can be.
pub fn each_file(files: &[PathBuf]) -> anyhow::Result<(Vec<FileSpans>, Vec<anyhow::Error>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = files.len().div_ceil(threads.max(1)).max(1);
    let results: Vec<anyhow::Result<FileSpans>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || chunk.iter().map(|p| file_spans(p)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let (mut read, mut failed): (Vec<FileSpans>, Vec<anyhow::Error>) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(f) => read.push(f),
            Err(e) => failed.push(e),
        }
    }
    if read.is_empty() && !failed.is_empty() {
        return Err(failed.swap_remove(0));
    }
    read.sort_by_key(|f| f.spans.first().map(|s| s.0.recv));
    Ok((read, failed))
}

/// One camera's files' spans joined where one file continues another.
pub fn join(read: Vec<FileSpans>) -> Listing {
    let truncated = read
        .iter()
        .filter(|f| f.truncated)
        .map(|f| f.path.clone())
        .collect();
    let mut spans: Vec<Span> = Vec::new();
    for f in read {
        for (first, last) in f.spans {
            // A file goes on from the one before when it is of the same session and begins
            // as that one ends.
            let joins = spans.last().is_some_and(|s| {
                let gap = (first.recv - s.end_recv()) as f64 / 1e9;
                let same = first.conn.is_none() || first.conn == s.last.conn;
                same && gap.abs() <= GAP_S
            });
            match spans.last_mut() {
                Some(s) if joins => {
                    s.last = last;
                    if s.files.last() != Some(&f.path) {
                        s.files.push(f.path.clone());
                    }
                }
                _ => spans.push(Span {
                    first,
                    last,
                    files: vec![f.path.clone()],
                }),
            }
        }
    }
    Listing {
        spans,
        truncated,
        unreadable: Vec::new(),
    }
}

/// A frame as read from a file's fragments.
#[derive(Clone)]
struct Read {
    sample: Sample,
    timing: Option<FrameTiming>,
    reports: Vec<SenderReport>,
}

/// The spans of one file.
fn file_spans(path: &Path) -> anyhow::Result<FileSpans> {
    let data = Data::File(
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    spans_of(path, &data)
}

/// The spans of a file held in memory (the fuzzer's).
#[cfg(test)]
pub(crate) fn of_bytes(bytes: Vec<u8>) -> anyhow::Result<FileSpans> {
    spans_of(Path::new("memory.mp4"), &Data::Bytes(bytes.into()))
}

/// The spans of `data`, the file at `path`.
fn spans_of(path: &Path, data: &Data) -> anyhow::Result<FileSpans> {
    let what = || format!("cannot read {}", path.display());
    let mut frags = Fragments::new(data).with_context(what)?;
    let track = frags
        .tracks
        .iter()
        .find(|t| t.is_video())
        .cloned()
        .with_context(|| format!("{} has no video", path.display()))?;
    let codec = track
        .video_codec()
        .with_context(|| format!("{}: the video is not H.264 or H.265", path.display()))?;
    let rate = track.timescale.max(1);
    let id = track.track_id;
    let after_moov = frags.position();
    // Keyframes: (presentation time, moof offset).
    let keyframes: Vec<(u64, u64)> = match frags.index() {
        Some(mfra) => mfra
            .tfra
            .into_iter()
            .filter(|t| t.track_id == id)
            .flat_map(|t| t.entries)
            .map(|e| (e.time, e.moof_offset))
            .collect(),
        None => {
            let mut all = Vec::new();
            while let Some(f) = frags.next_fragment().with_context(what)? {
                let key = f
                    .samples
                    .iter()
                    .find(|(s, _)| s.track_id == id && s.is_sync);
                if let Some((s, _)) = key {
                    all.push((s.pts().max(0) as u64, f.moof_offset));
                }
            }
            all
        }
    };
    let mut reader = Reader {
        frags,
        data,
        codec,
        id,
        table: Vec::new(),
    };
    reader.table = std::mem::take(&mut reader.frags.table_samples);
    reader.table.retain(|s| s.track_id == id);
    let head = reader.read(after_moov, Stop::Report).with_context(what)?;
    let mut breaks = Vec::new();
    for (moof, at) in suspects(&keyframes) {
        let around = reader
            .read(moof, Stop::Past(at as i64))
            .with_context(what)?;
        breaks.extend(gap_in(&around, at, rate));
    }
    let tail_at = keyframes.last().map_or(after_moov, |k| k.1);
    let tail = reader.read(tail_at, Stop::End).with_context(what)?;
    let truncated = reader.frags.truncated;
    let mut edges = vec![edge(&head, &[], Side::First, rate)];
    // The sender reports of the session the file ends in, beside the tail's own.
    let mut session_start = &head;
    for (before, after) in &breaks {
        edges.push(edge(before, session_start, Side::Last, rate));
        edges.push(edge(after, &[], Side::First, rate));
        session_start = after;
    }
    edges.push(edge(&tail, session_start, Side::Last, rate));
    let edges: Vec<Edge> = edges.into_iter().flatten().collect();
    let spans = edges
        .chunks(2)
        .filter_map(|c| match c {
            [a, b] => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect();
    Ok(FileSpans {
        path: path.to_owned(),
        spans,
        truncated,
    })
}

/// Where reading fragments stops.
#[derive(Clone, Copy)]
enum Stop {
    /// After the first fragment with a sender report, or [`HEAD_FRAGMENTS`].
    Report,
    /// After the fragment with a frame presented after this.
    Past(i64),
    /// At the file's end.
    End,
}

/// Reads frames of a file's video track.
struct Reader<'d> {
    frags: Fragments<&'d Data>,
    data: &'d Data,
    codec: VideoCodec,
    id: u32,
    /// An unfragmented file's samples (0.1/0.2): read instead of fragments.
    table: Vec<Sample>,
}

impl Reader<'_> {
    /// Frames of the fragments from `at` on, up to where `stop` says.
    fn read(&mut self, at: u64, stop: Stop) -> anyhow::Result<Vec<Read>> {
        let mut out = Vec::new();
        if !self.table.is_empty() {
            // Small, old files: every frame.
            for s in self.table.clone() {
                out.push(self.frame(s)?);
            }
            return Ok(out);
        }
        self.frags.seek(at);
        let mut n = 0;
        while let Some(f) = self.frags.next_fragment()? {
            n += 1;
            for (s, _) in f.samples.into_iter().filter(|(s, _)| s.track_id == self.id) {
                out.push(self.frame(s)?);
            }
            let done = match stop {
                Stop::Report => n >= HEAD_FRAGMENTS || out.iter().any(|r| !r.reports.is_empty()),
                Stop::Past(pts) => out.iter().any(|r| r.sample.pts() > pts),
                Stop::End => false,
            };
            if done {
                break;
            }
        }
        Ok(out)
    }

    fn frame(&self, sample: Sample) -> anyhow::Result<Read> {
        let messages = crate::mp4::read::leading_messages(self.data, &sample, self.codec)?;
        let mut timing = None;
        let mut reports = Vec::new();
        for m in messages {
            match m {
                TimingMessage::Frame(t) => {
                    timing.get_or_insert(t);
                }
                TimingMessage::SenderReport(sr) => reports.push(sr),
            }
        }
        Ok(Read {
            sample,
            timing,
            reports,
        })
    }
}

/// Keyframes not as far from the one before as keyframes usually are: (the moof of the
/// keyframe before it, its presentation time), to look for a gap (or a new session) between.
/// A new session begins with a keyframe at its own time, off its predecessor's rhythm.
fn suspects(keyframes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut steps: Vec<u64> = keyframes
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0))
        .collect();
    steps.sort_unstable();
    let Some(&typical) = steps.get(steps.len() / 2) else {
        return Vec::new();
    };
    // Only the usual step exactly, to the tick, is the usual step: cameras time keyframes by
    // their RTP clock, and a new session's first one is placed by its receive time, which
    // lands within a millisecond of the old rhythm one time in twenty (the test camera paces
    // frames on a 40-ms grid) but on its very tick almost never.
    keyframes
        .windows(2)
        .filter(|w| w[1].0.saturating_sub(w[0].0) != typical)
        .map(|w| (w[0].1, w[1].0))
        .collect()
}

/// The frames on either side of a gap before the keyframe presented at `at`, if there is
/// one: more than [`GAP_S`] between them, or a new session.
fn gap_in(frames: &[Read], at: u64, rate: u32) -> Option<(Vec<Read>, Vec<Read>)> {
    let split = frames.iter().position(|f| f.sample.pts() >= at as i64)?;
    let (before, after) = frames.split_at(split);
    let last = before.iter().max_by_key(|f| f.sample.pts())?;
    let next = after.first()?;
    let end = last.sample.pts() + i64::from(last.sample.duration);
    let apart = (next.sample.pts() - end) as f64 / f64::from(rate);
    let new_session = next.timing.is_some_and(|t| t.conn.is_some());
    (apart > GAP_S || new_session).then(|| (before.to_vec(), after.to_vec()))
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    First,
    Last,
}

/// The first or last frame (in presentation order) of `frames` with timing, its capture
/// time from the sender report nearest it among `frames` and `more`.
fn edge(frames: &[Read], more: &[Read], side: Side, rate: u32) -> Option<Edge> {
    // The session: named by the first frame of a file and of a session.
    let conn = frames
        .iter()
        .chain(more)
        .find_map(|f| f.timing.and_then(|t| t.conn));
    let timed = frames.iter().filter(|f| f.timing.is_some());
    let f = match side {
        Side::First => timed.min_by_key(|f| f.sample.pts())?,
        Side::Last => timed.max_by_key(|f| f.sample.pts())?,
    };
    let t = f.timing?;
    // Each report read tells the capture time; the median of them leaves out another
    // stream's (which 0.2 stored too) and a report stamped far off.
    let mut told: Vec<i128> = frames
        .iter()
        .chain(more)
        .flat_map(|r| &r.reports)
        .map(|sr| {
            let ticks = i128::from(t.rtp.wrapping_sub(sr.rtp) as i32);
            ntp::to_unix(sr.ntp) + ticks * 1_000_000_000 / i128::from(rate)
        })
        .collect();
    told.sort_unstable();
    let capture = told.get(told.len() / 2).copied();
    Some(Edge {
        recv: ntp::to_unix(t.recv),
        capture,
        duration_s: f64::from(f.sample.duration) / f64::from(rate),
        conn,
    })
}
