//! A recording's clock health at a glance: how many frames over how long, where frames are
//! missing, how the sender reports came, how the camera's clocks err (RTP rate in ppm, NTP
//! steps, offset from this machine's clock), and how late frames arrived (latency percentiles,
//! RFC 3550 §6.4.1 interarrival jitter). For a recording of several files, the same for each
//! file and for the whole.

use serde::Serialize;

use super::clock::ClockFit;
use super::recording::{FrameTime, RecordingTiming, ReportFate};

/// An interval this many times the median one is a gap: frames are missing there.
const GAP_FACTOR: f64 = 1.5;
/// The share of frames, the least late, whose latency tells the clocks' offset.
const FASTEST_SHARE: f64 = 0.02;

/// The summary of a recording: the whole, and each file when there are several.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
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
    /// least late frames (whose network and encoding delay is least).
    pub camera_minus_receiver_s: Option<f64>,
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

/// Summarises `timing`.
pub fn summarise(timing: &RecordingTiming) -> Summary {
    let all: Vec<&FrameTime> = timing.frames.iter().collect();
    let mut whole = part(timing, None, &all);
    whole.sender_reports = reports(timing, &sessions_of(&all), None);
    whole.truncated = timing.files.iter().any(|f| f.truncated);
    whole.frames_without_timing = timing.files.iter().map(|f| f.frames_without_timing).sum();
    let files = if timing.files.len() > 1 {
        timing
            .files
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let frames: Vec<&FrameTime> = all.iter().copied().filter(|f| f.file == i).collect();
                let mut p = part(timing, Some(info.path.display().to_string()), &frames);
                p.sender_reports = reports(timing, &sessions_of(&frames), Some(i));
                p.truncated = info.truncated;
                p.frames_without_timing = info.frames_without_timing;
                p
            })
            .collect()
    } else {
        Vec::new()
    };
    Summary { whole, files }
}

/// The summary of `frames` (presentation order).
fn part(timing: &RecordingTiming, file: Option<String>, frames: &[&FrameTime]) -> Part {
    let intervals: Vec<f64> = frames.windows(2).map(|w| w[1].pts - w[0].pts).collect();
    let frame_interval_s = stats(&intervals);
    let typical = frame_interval_s.map_or(0.0, |s| s.median);
    let gaps = frames
        .windows(2)
        .filter(|w| typical > 0.0 && w[1].pts - w[0].pts > GAP_FACTOR * typical)
        .map(|w| {
            let length_s = w[1].pts - w[0].pts;
            Gap {
                after_frame: w[0].index,
                at_unix: unix(w[0].recv_unix_nanos),
                length_s,
                missing_frames: ((length_s / typical).round() as u64).saturating_sub(1),
            }
        })
        .collect();
    let duration_s = match (frames.first(), frames.last()) {
        (Some(a), Some(b)) => b.pts - a.pts + typical,
        _ => 0.0,
    };
    let sessions = sessions_of(frames);
    let fits: Vec<&ClockFit> = sessions
        .iter()
        .filter_map(|&s| timing.sessions[s].fit.as_ref())
        .collect();
    let latencies = sorted_latencies(frames);
    let camera_minus_receiver_s = offset_from(&latencies);
    Part {
        file,
        frames: frames.len(),
        frames_without_timing: 0,
        frames_without_capture: frames.iter().filter(|f| f.capture.is_none()).count(),
        truncated: false,
        start_unix: frames.iter().map(|f| f.recv_unix_nanos).min().map(unix),
        duration_s,
        frame_interval_s,
        gaps,
        sessions: sessions.len(),
        sender_reports: Reports::default(),
        rtp_clock_error_ppm: ppm(&fits),
        ntp_steps: fits
            .iter()
            .flat_map(|f| f.steps())
            .map(|s| Step {
                at_unix: unix(s.at_unix_nanos),
                by_s: s.by_secs,
            })
            .collect(),
        camera_minus_receiver_s,
        latency_s: percentiles(&latencies),
        jitter_s: jitter(frames, timing.clock_rate),
    }
}

/// The camera's clock minus this machine's, from `frames`' latencies (see
/// [`Part::camera_minus_receiver_s`]).
pub fn camera_minus_receiver(frames: &[FrameTime]) -> Option<f64> {
    let frames: Vec<&FrameTime> = frames.iter().collect();
    offset_from(&sorted_latencies(&frames))
}

fn sorted_latencies(frames: &[&FrameTime]) -> Vec<f64> {
    let mut latencies: Vec<f64> = frames.iter().filter_map(|f| f.latency()).collect();
    latencies.sort_unstable_by(f64::total_cmp);
    latencies
}

/// Minus the median of the least late share of sorted `latencies`.
fn offset_from(latencies: &[f64]) -> Option<f64> {
    let fastest = ((latencies.len() as f64 * FASTEST_SHARE).ceil() as usize).max(1);
    (!latencies.is_empty()).then(|| -median(&latencies[..fastest.min(latencies.len())]))
}

/// The sessions `frames` came in, each once.
fn sessions_of(frames: &[&FrameTime]) -> Vec<usize> {
    let mut sessions: Vec<usize> = frames.iter().map(|f| f.session).collect();
    sessions.sort_unstable();
    sessions.dedup();
    sessions
}

/// The sender reports of `sessions`; for a file, those first found in it (a segment repeats
/// the report before it), so that the files' counts add up to the whole recording's.
fn reports(timing: &RecordingTiming, sessions: &[usize], file: Option<usize>) -> Reports {
    let mut r = Reports::default();
    let mut intervals = Vec::new();
    for &s in sessions {
        let seen = timing.sessions[s]
            .report_log
            .iter()
            .filter(|seen| file.is_none_or(|f| seen.file == f));
        let mut used = Vec::new();
        for seen in seen {
            r.received += 1;
            match seen.fate {
                ReportFate::Used => used.push(seen.rtp),
                ReportFate::Outlier => r.outliers += 1,
                ReportFate::NotVideo => r.not_video += 1,
            }
        }
        r.used += used.len();
        let rate = f64::from(timing.clock_rate.max(1));
        intervals.extend(used.windows(2).map(|w| (w[1] - w[0]) as f64 / rate));
    }
    intervals.sort_unstable_by(f64::total_cmp);
    r.interval_s = (!intervals.is_empty()).then(|| median(&intervals));
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

/// RFC 3550 §6.4.1: J += (|D| − J) / 16 over consecutive arrivals of each session, where D is
/// the difference of two frames' arrival spacing and their RTP spacing; its mean.
fn jitter(frames: &[&FrameTime], clock_rate: u32) -> Option<f64> {
    let mut by_arrival: Vec<&FrameTime> = frames.to_vec();
    by_arrival.sort_by_key(|f| (f.session, f.recv_unix_nanos));
    let rate = f64::from(clock_rate.max(1));
    let (mut j, mut sum, mut n) = (0.0_f64, 0.0, 0usize);
    for w in by_arrival.windows(2) {
        if w[0].session != w[1].session {
            j = 0.0;
            continue;
        }
        let arrival = (w[1].recv_unix_nanos - w[0].recv_unix_nanos) as f64 / 1e9;
        let sent = f64::from(w[1].rtp.wrapping_sub(w[0].rtp) as i32) / rate;
        j += ((arrival - sent).abs() - j) / 16.0;
        sum += j;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

fn unix(nanos: i128) -> f64 {
    nanos as f64 / 1e9
}

/// The median of sorted `v`.
fn median(v: &[f64]) -> f64 {
    v[v.len() / 2]
}

fn stats(v: &[f64]) -> Option<Stats> {
    let mut s = v.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    Some(Stats {
        min: *s.first()?,
        median: median(&s),
        mean: s.iter().sum::<f64>() / s.len() as f64,
        max: *s.last()?,
    })
}

/// Percentiles of sorted `v`.
fn percentiles(v: &[f64]) -> Option<Percentiles> {
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some(Percentiles {
        min: *v.first()?,
        p50: at(0.5),
        p99: at(0.99),
        max: *v.last()?,
    })
}
