//! A recording's clock health at a glance: how many frames over how long, where frames are
//! missing, how the sender reports came, how the camera's clocks err (RTP rate in ppm, NTP
//! steps, offset from this machine's clock), and how late frames arrived (latency percentiles,
//! RFC 3550 §6.4.1 interarrival jitter). For a recording of several files, the same for each
//! file and for the whole.
//!
//! It is made in one pass over the frames (`Summariser`), in memory that does not grow with
//! them: percentiles come from [`Quantiles`] (within its stated resolution), and a file's
//! figures are finished when its last frame has passed.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use serde::Serialize;

use super::clock::{self, CaptureFrom, ClockFit};
use super::frames::FrameTime;
use super::scan::Scan;
use super::sketch::Quantiles;

/// An interval this many times the median one is a gap: frames are missing there.
const GAP_FACTOR: f64 = 1.5;
/// The share of frames, the least late, whose latency tells the clocks' offset.
const FASTEST_SHARE: f64 = 0.02;
/// Stretches of receive time over which the clocks' offset is taken to tell its drift.
const DRIFT_WINDOW_S: f64 = 10.0;
/// The least late frames of each stretch whose median latency is its offset.
const DRIFT_FASTEST: usize = 8;
/// Frames put back in arrival order for the jitter (as many as a decoder may reorder).
const ARRIVAL_REORDER: usize = 16;

/// The summary of a recording: the whole, and each file when there are several.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// [`super::OUTPUT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The whole recording.
    pub whole: Part,
    /// Each file, in time order; empty for a single file.
    pub files: Vec<Part>,
}

/// The summary of one file, or of the whole recording.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    /// The file, or `None` for the whole recording.
    pub file: Option<String>,
    /// Video frames with timing data.
    pub frames: usize,
    /// Video frames without it (e.g. recorded with `--no-timing-info`).
    pub frames_without_timing: usize,
    /// Frames without a capture time (no usable sender reports in their session).
    pub frames_without_capture: usize,
    /// Whether a file ends in a cut-off fragment (a killed recording).
    pub truncated: bool,
    /// The first frame's receive time, Unix seconds.
    pub start_unix: Option<f64>,
    /// From the first frame's presentation to the last one's end, seconds.
    pub duration_s: f64,
    /// Intervals between consecutive frames (presentation order).
    pub frame_interval_s: Option<Stats>,
    /// Intervals longer than 1.5 times the median: outages and lost frames.
    pub gaps: Vec<Gap>,
    /// RTSP sessions (connections) the frames came in.
    pub sessions: usize,
    /// The sender reports of those sessions.
    pub sender_reports: Reports,
    /// How fast the video's RTP clock runs against the camera's NTP clock, ppm.
    pub rtp_clock_error_ppm: Option<f64>,
    /// Steps of the camera's NTP clock.
    pub ntp_steps: Vec<Step>,
    /// The camera's clock minus this machine's, seconds: minus the median latency of the 2 %
    /// least late frames (whose network and encoding delay is least). `None` when the clock
    /// stepped: then each interval between steps has its own ([`Part::clock_offsets`]).
    pub camera_minus_receiver_s: Option<f64>,
    /// The camera's clock minus this machine's in each interval between its NTP steps.
    pub clock_offsets: Vec<ClockOffset>,
    /// How fast the camera's clock runs against this machine's, ppm (from how its offset
    /// moves over ten-second stretches, within each interval).
    pub camera_clock_drift_ppm: Option<f64>,
    /// Receive time minus capture time, seconds (including the clocks' offset).
    pub latency_s: Option<Percentiles>,
    /// RFC 3550 §6.4.1 interarrival jitter of the frames, its mean over the recording, seconds.
    pub jitter_s: Option<f64>,
}

/// Least, median, mean and greatest of some seconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stats {
    /// The least.
    pub min: f64,
    /// The median.
    pub median: f64,
    /// The mean.
    pub mean: f64,
    /// The greatest.
    pub max: f64,
}

/// The camera's clock against this machine's between two NTP steps.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClockOffset {
    /// Its number: how many steps came before it.
    pub interval: usize,
    /// Its first and last frames' receive times, Unix seconds.
    pub from_unix: f64,
    /// See `from_unix`.
    pub to_unix: f64,
    /// Frames it is told from (those captured near a step, on an unknown side of it, are not).
    pub frames: usize,
    /// The camera's clock minus this machine's, seconds.
    pub camera_minus_receiver_s: f64,
}

/// Percentiles of some seconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Percentiles {
    /// The least.
    pub min: f64,
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The greatest.
    pub max: f64,
    /// How far p50 and p99 may be from the exact figures (the binning's width), seconds.
    pub resolution_s: f64,
}

/// Frames missing between two frames.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Gap {
    /// The frame before the gap (its number in the recording).
    pub after_frame: usize,
    /// That frame's receive time, Unix seconds.
    pub at_unix: f64,
    /// How long the gap is, seconds.
    pub length_s: f64,
    /// Frames that would have fit in it at the median interval.
    pub missing_frames: u64,
}

/// The video sender reports.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Reports {
    /// All found (each once).
    pub received: usize,
    /// Used for the clock.
    pub used: usize,
    /// Left out as another stream's (retina-record 0.2 stored the audio's among them).
    pub not_video: usize,
    /// Left out as not fitting the others.
    pub outliers: usize,
    /// The median interval between used reports, seconds.
    pub interval_s: Option<f64>,
}

/// A step of the camera's NTP clock.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Step {
    /// The clock's time just after it, Unix seconds.
    pub at_unix: f64,
    /// How far it stepped, seconds (positive: forward).
    pub by_s: f64,
}

/// Summarises the recording `scan` describes, reading its frames once more.
pub fn summarise(scan: &Scan) -> anyhow::Result<Summary> {
    let mut s = Summariser::new(scan);
    for f in scan.frames() {
        s.add(&f?);
    }
    Ok(s.finish())
}

/// A summary being made, a frame at a time (in presentation order).
pub struct Summariser<'s> {
    scan: &'s Scan,
    whole: PartAcc,
    /// The file whose frames are passing, and its figures so far.
    file: Option<(usize, PartAcc)>,
    files: Vec<Part>,
}

impl<'s> Summariser<'s> {
    /// A summary of `scan`'s frames, none added yet.
    pub fn new(scan: &'s Scan) -> Summariser<'s> {
        Summariser {
            scan,
            whole: PartAcc::new(scan.frame_interval(), scan.clock_rate),
            file: None,
            files: Vec::new(),
        }
    }

    /// Adds the next frame.
    pub fn add(&mut self, f: &FrameTime) {
        if self.file.as_ref().is_none_or(|(i, _)| *i != f.file) {
            self.end_file();
            let typical = self
                .scan
                .files
                .get(f.file)
                .and_then(|i| i.durations.quantile(0.5));
            self.file = Some((f.file, PartAcc::new(typical, self.scan.clock_rate)));
        }
        self.whole.add(f);
        if let Some((_, acc)) = &mut self.file {
            acc.add(f);
        }
    }

    fn end_file(&mut self) {
        let Some((i, acc)) = self.file.take() else {
            return;
        };
        if self.scan.files.len() < 2 {
            return;
        }
        let info = &self.scan.files[i];
        let mut p = acc.finish(self.scan, Some(info.path.display().to_string()), Some(i));
        p.truncated = info.truncated;
        p.frames_without_timing = info.frames_without_timing;
        self.files.push(p);
    }

    /// The summary of the frames added.
    pub fn finish(mut self) -> Summary {
        self.end_file();
        let scan = self.scan;
        let mut whole = self.whole.finish(scan, None, None);
        whole.truncated = scan.files.iter().any(|f| f.truncated);
        whole.frames_without_timing = scan.files.iter().map(|f| f.frames_without_timing).sum();
        Summary {
            schema_version: super::OUTPUT_SCHEMA_VERSION,
            whole,
            files: self.files,
        }
    }
}

/// One part's figures so far.
struct PartAcc {
    frames: usize,
    without_capture: usize,
    start: Option<i128>,
    first_pts: Option<f64>,
    /// The frame before: its presentation time, number and receive time.
    prev: Option<(f64, usize, i128)>,
    intervals: Quantiles,
    /// The frame interval that tells a gap (the median frame duration).
    typical: Option<f64>,
    gaps: Vec<Gap>,
    sessions: BTreeSet<usize>,
    latency: Quantiles,
    by_interval: BTreeMap<usize, IntervalAcc>,
    jitter: Jitter,
}

impl PartAcc {
    fn new(typical: Option<f64>, clock_rate: u32) -> PartAcc {
        PartAcc {
            frames: 0,
            without_capture: 0,
            start: None,
            first_pts: None,
            prev: None,
            intervals: Quantiles::default(),
            typical: typical.filter(|&t| t > 0.0),
            gaps: Vec::new(),
            sessions: BTreeSet::new(),
            latency: Quantiles::default(),
            by_interval: BTreeMap::new(),
            jitter: Jitter::new(clock_rate),
        }
    }

    fn add(&mut self, f: &FrameTime) {
        self.frames += 1;
        self.start = Some(
            self.start
                .map_or(f.recv_unix_nanos, |s| s.min(f.recv_unix_nanos)),
        );
        self.first_pts.get_or_insert(f.pts);
        if let Some((pts, index, recv)) = self.prev {
            let interval = f.pts - pts;
            self.intervals.add_secs(interval);
            if let Some(typical) = self.typical.filter(|&t| interval > GAP_FACTOR * t) {
                self.gaps.push(Gap {
                    after_frame: index,
                    at_unix: unix(recv),
                    length_s: interval,
                    missing_frames: ((interval / typical).round() as u64).saturating_sub(1),
                });
            }
        }
        self.prev = Some((f.pts, f.index, f.recv_unix_nanos));
        self.sessions.insert(f.session);
        self.jitter.add(f);
        let Some(latency) = f.latency() else {
            self.without_capture += 1;
            return;
        };
        self.latency.add_secs(latency);
        // Near a step, which clock stamped the frame is unknown: it cannot tell an offset.
        if f.capture.is_some_and(|c| c.1 != CaptureFrom::StepWindow) {
            self.by_interval
                .entry(f.interval)
                .or_default()
                .add(f.recv_unix_nanos, latency);
        }
    }

    fn finish(self, scan: &Scan, file: Option<String>, file_index: Option<usize>) -> Part {
        let frame_interval_s = stats(&self.intervals);
        let typical = self.typical.unwrap_or(0.0);
        let duration_s = match (self.first_pts, self.prev) {
            (Some(a), Some((b, _, _))) => b - a + typical,
            _ => 0.0,
        };
        let sessions: Vec<usize> = self.sessions.iter().copied().collect();
        let fits: Vec<&ClockFit> = sessions
            .iter()
            .filter_map(|&s| scan.sessions[s].fit.as_ref())
            .collect();
        let mut by_interval = self.by_interval;
        by_interval.values_mut().for_each(IntervalAcc::end_stretch);
        let clock_offsets: Vec<ClockOffset> = by_interval
            .iter()
            .filter_map(|(&interval, acc)| acc.offset(interval))
            .collect();
        let drift = drift_ppm(by_interval.values());
        let jitter_s = self.jitter.finish();
        Part {
            file,
            frames: self.frames,
            frames_without_timing: 0,
            frames_without_capture: self.without_capture,
            truncated: false,
            start_unix: self.start.map(unix),
            duration_s,
            frame_interval_s,
            gaps: self.gaps,
            sessions: sessions.len(),
            sender_reports: reports(scan, &sessions, file_index),
            rtp_clock_error_ppm: ppm(&fits),
            ntp_steps: fits
                .iter()
                .flat_map(|f| f.steps())
                .map(|s| Step {
                    at_unix: unix(s.at_unix_nanos),
                    by_s: s.by_secs,
                })
                .collect(),
            camera_minus_receiver_s: match clock_offsets.as_slice() {
                [only] => Some(only.camera_minus_receiver_s),
                _ => None,
            },
            clock_offsets,
            camera_clock_drift_ppm: drift,
            latency_s: percentiles(&self.latency),
            jitter_s,
        }
    }
}

/// Latencies of one interval between NTP steps.
#[derive(Default)]
struct IntervalAcc {
    latency: Quantiles,
    recv: Option<(i128, i128)>,
    /// The current stretch: its start (receive time) and its least latencies (ns).
    window: Option<(i128, BinaryHeap<i64>)>,
    /// Each stretch's middle (seconds since the interval's start) and offset (seconds).
    stretches: Vec<(f64, f64)>,
}

impl IntervalAcc {
    fn add(&mut self, recv: i128, latency: f64) {
        self.latency.add_secs(latency);
        let (first, _) = *self.recv.get_or_insert((recv, recv));
        self.recv = Some((first, recv));
        let nanos = (latency * 1e9).round() as i64;
        let window_nanos = (DRIFT_WINDOW_S * 1e9) as i128;
        if self
            .window
            .as_ref()
            .is_some_and(|(start, _)| recv - start >= window_nanos)
        {
            self.end_stretch();
        }
        let (_, least) = self.window.get_or_insert_with(|| (recv, BinaryHeap::new()));
        least.push(nanos);
        if least.len() > DRIFT_FASTEST {
            least.pop();
        }
    }

    /// Ends the current stretch: its offset counts when it has its share of frames and, the
    /// last one, lasted half a stretch.
    fn end_stretch(&mut self) {
        let (Some((start, least)), Some((first, last))) = (self.window.take(), self.recv) else {
            return;
        };
        let len = ((last - start) as f64 / 1e9).min(DRIFT_WINDOW_S);
        let least = least.into_sorted_vec();
        if least.len() == DRIFT_FASTEST && len >= DRIFT_WINDOW_S / 2.0 {
            let mid = (start - first) as f64 / 1e9 + len / 2.0;
            self.stretches
                .push((mid, -(least[least.len() / 2] as f64) / 1e9));
        }
    }

    fn offset(&self, interval: usize) -> Option<ClockOffset> {
        let (from, to) = self.recv?;
        let n = self.latency.count();
        let fastest = ((n as f64 * FASTEST_SHARE).ceil() as u64).max(1);
        Some(ClockOffset {
            interval,
            from_unix: unix(from),
            to_unix: unix(to),
            frames: n as usize,
            camera_minus_receiver_s: -self.latency.at_rank(fastest / 2)?,
        })
    }
}

/// The camera clock's drift against this machine's, ppm: the slope of each interval's
/// stretch offsets, weighted by how long each interval is.
fn drift_ppm<'a>(intervals: impl Iterator<Item = &'a IntervalAcc>) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for s in intervals.map(|acc| &acc.stretches).filter(|s| s.len() >= 3) {
        if let (Some(slope), Some(first), Some(last)) = (clock::slope(s), s.first(), s.last()) {
            let span = last.0 - first.0;
            sum += slope * 1e6 * span;
            weight += span;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

/// RFC 3550 §6.4.1: J += (|D| − J) / 16 over consecutive arrivals of each session, where D is
/// the difference of two frames' arrival spacing and their RTP spacing; its mean. Frames come
/// in presentation order and are put back in arrival order in a small window.
struct Jitter {
    window: BinaryHeap<std::cmp::Reverse<(usize, i128, u32)>>,
    last: Option<(usize, i128, u32)>,
    j: f64,
    sum: f64,
    n: usize,
    rate: f64,
}

impl Jitter {
    fn new(clock_rate: u32) -> Jitter {
        Jitter {
            window: BinaryHeap::new(),
            last: None,
            j: 0.0,
            sum: 0.0,
            n: 0,
            rate: f64::from(clock_rate.max(1)),
        }
    }

    fn add(&mut self, f: &FrameTime) {
        self.window
            .push(std::cmp::Reverse((f.session, f.recv_unix_nanos, f.rtp)));
        if self.window.len() > ARRIVAL_REORDER {
            self.arrive();
        }
    }

    fn arrive(&mut self) {
        let Some(std::cmp::Reverse(next)) = self.window.pop() else {
            return;
        };
        if let Some(prev) = self.last {
            if prev.0 == next.0 {
                let arrival = (next.1 - prev.1) as f64 / 1e9;
                let sent = f64::from(next.2.wrapping_sub(prev.2) as i32) / self.rate;
                self.j += ((arrival - sent).abs() - self.j) / 16.0;
                self.sum += self.j;
                self.n += 1;
            } else {
                self.j = 0.0;
            }
        }
        self.last = Some(next);
    }

    fn finish(mut self) -> Option<f64> {
        while !self.window.is_empty() {
            self.arrive();
        }
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// The sender reports of `sessions`; for a file, those first found in it (a segment repeats
/// the report before it), so that the files' counts add up to the whole recording's.
fn reports(scan: &Scan, sessions: &[usize], file: Option<usize>) -> Reports {
    let mut r = Reports::default();
    let mut intervals = Quantiles::default();
    for &s in sessions {
        let counts = scan.sessions[s]
            .report_counts
            .iter()
            .filter(|c| file.is_none_or(|f| c.file == f));
        for c in counts {
            r.received += c.received;
            r.used += c.used;
            r.outliers += c.outliers;
            r.not_video += c.not_video;
            intervals.merge(&c.intervals);
        }
    }
    r.interval_s = intervals.quantile(0.5);
    r
}

/// The sessions' RTP clock error, weighted by their reports.
fn ppm(fits: &[&ClockFit]) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for f in fits {
        if let Some(p) = f.rtp_clock_error_ppm() {
            sum += p * f.reports() as f64;
            weight += f.reports() as f64;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

fn unix(nanos: i128) -> f64 {
    nanos as f64 / 1e9
}

fn stats(q: &Quantiles) -> Option<Stats> {
    Some(Stats {
        min: q.min()?,
        median: q.quantile(0.5)?,
        mean: q.mean()?,
        max: q.max()?,
    })
}

fn percentiles(q: &Quantiles) -> Option<Percentiles> {
    Some(Percentiles {
        min: q.min()?,
        p50: q.quantile(0.5)?,
        p99: q.quantile(0.99)?,
        max: q.max()?,
        resolution_s: q.error_s(),
    })
}
