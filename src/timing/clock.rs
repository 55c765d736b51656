//! The camera's clock, reconstructed from its RTCP sender reports (RFC 3550 §6.4.1): each one
//! pairs an NTP wall-clock time with the RTP time that corresponds to it, so a line through
//! them maps any frame's RTP time to the moment the camera's clock gave it, its capture time.
//!
//! Cameras are imperfect, and the fit allows for it:
//! - the RTP clock runs at its nominal rate only nominally: the line's slope is fitted, and its
//!   error reported in parts per million;
//! - the NTP clock can be stepped (a camera's NTP client correcting it): a jump between
//!   consecutive reports far beyond their scatter splits the line in two, and is reported;
//! - a report can be wrong on its own (a bad one, or in 0.2's files an audio report among the
//!   video ones): one that jumps away and straight back is left out, as is a lone point at
//!   either end that does not fit the rest;
//! - over days the rate itself wanders (temperature): long runs of reports are fitted in
//!   windows of 10 minutes either side (`WINDOW_S`), not with one line, and a time between
//!   two windows' centres is told by both, weighted by nearness, so the fit has no seams;
//! - a cheap camera stamps each report's NTP time a few milliseconds off at random: the
//!   windows are long enough (1,200 reports at one a second) that the scatter averages out to
//!   a small fraction of it, and they keep their length at the ends of a run, where a line's
//!   error is largest.
//!
//! Times are handled relative to the first report, as `f64` seconds and ticks: over a week that
//! keeps 0.1 ns of precision.

/// Seconds (of RTP time) either side of a point that its local line is fitted over.
const WINDOW_S: f64 = 600.0;
/// Local lines are computed at every this many reports; a time uses the nearest.
const ANCHOR_EVERY: usize = 25;
/// The least jump that can count as a step, however tidy the reports.
const MIN_STEP_S: f64 = 0.001;
/// A jump is a step (or an outlier) when this many times the reports' own scatter.
const STEP_SIGMAS: f64 = 8.0;

/// Where a capture time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFrom {
    /// A line fitted through the session's sender reports.
    SenderReports,
    /// A single sender report and the RTP clock's nominal rate.
    NominalRate,
    /// Between the reports either side of an NTP step: the camera's clock stepped somewhere in
    /// this stretch, and which side of it the frame was captured on cannot be told. The time
    /// given is by the clock before the step.
    StepWindow,
}

impl CaptureFrom {
    /// The name used in the CSV's `capture_from` column.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFrom::SenderReports => "sr",
            CaptureFrom::NominalRate => "sr-nominal",
            CaptureFrom::StepWindow => "sr-step",
        }
    }
}

/// An NTP step found in the reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockStep {
    /// The extended RTP time of the first report after the step.
    pub rtp: i64,
    /// That report's NTP time, as Unix nanoseconds.
    pub at_unix_nanos: i128,
    /// How far the clock stepped, in seconds (positive: forward).
    pub by_secs: f64,
}

/// A line, relative to the fit's origin: `y = intercept + slope * (x - x_at)`.
#[derive(Clone, Copy, Debug)]
struct Line {
    x_at: f64,
    intercept: f64,
    slope: f64,
}

impl Line {
    fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * (x - self.x_at)
    }

    /// Least squares through `points`; `None` if they do not span any RTP time.
    fn fit(points: &[(f64, f64)]) -> Option<Line> {
        let n = points.len() as f64;
        let (mx, my) = points
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
            (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
        });
        (sxx > 0.0).then(|| Line {
            x_at: mx,
            intercept: my,
            slope: sxy / sxx,
        })
    }
}

/// The slope of the least-squares line through `points`; `None` if they do not span any x.
pub(crate) fn slope(points: &[(f64, f64)]) -> Option<f64> {
    Line::fit(points).map(|l| l.slope)
}

/// One stretch of the clock between steps.
#[derive(Clone, Debug)]
struct Piece {
    /// Its reports, relative to the fit's origin, in RTP order.
    points: Vec<(f64, f64)>,
    /// Local lines and the RTP time each is centred on; one when the piece is short. Empty for
    /// a single report.
    anchors: Vec<(f64, Line)>,
    /// The line through all of it, for its rate.
    whole: Option<Line>,
}

impl Piece {
    /// The piece through `points`, whose RTP clock ticks `rate` times a second.
    fn new(points: Vec<(f64, f64)>, rate: f64) -> Piece {
        let whole = Line::fit(&points);
        let (first, last) = match (points.first(), points.last()) {
            (Some(f), Some(l)) => (f.0, l.0),
            _ => (0.0, 0.0),
        };
        let window = WINDOW_S * rate;
        let anchors = if last - first <= 2.0 * window {
            whole.iter().map(|l| (l.x_at, *l)).collect()
        } else {
            (0..points.len())
                .step_by(ANCHOR_EVERY)
                .filter_map(|c| {
                    // Whole windows at the ends too: shifted inwards, not cut short.
                    let lo = (points[c].0 - window).clamp(first, last - 2.0 * window);
                    let from = points.partition_point(|p| p.0 < lo);
                    let to = points.partition_point(|p| p.0 <= lo + 2.0 * window);
                    Line::fit(&points[from..to]).map(|l| (points[c].0, l))
                })
                .collect()
        };
        Piece {
            points,
            anchors,
            whole,
        }
    }

    fn first_x(&self) -> f64 {
        self.points.first().map_or(0.0, |p| p.0)
    }

    fn last_x(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }

    /// The clock at `x`, and whether a fitted line (not the nominal rate) gave it.
    fn at(&self, x: f64, nominal_slope: f64) -> (f64, bool) {
        let i = self.anchors.partition_point(|(ax, _)| *ax < x);
        let before = i.checked_sub(1).and_then(|b| self.anchors.get(b));
        match (before, self.anchors.get(i)) {
            // Between two centres: both lines, weighted by nearness.
            (Some(&(bx, b)), Some(&(ax, a))) if ax > bx => {
                let w = (x - bx) / (ax - bx);
                (b.at(x) * (1.0 - w) + a.at(x) * w, true)
            }
            (Some((_, line)), _) | (None, Some((_, line))) => (line.at(x), true),
            // A single report: the nominal rate through it.
            (None, None) => {
                let (x0, y0) = self.points.first().copied().unwrap_or_default();
                (y0 + nominal_slope * (x - x0), false)
            }
        }
    }
}

/// A session's clock: RTP time → the camera's NTP time.
#[derive(Clone, Debug)]
pub struct ClockFit {
    x0: i64,
    y0: i128,
    clock_rate: u32,
    pieces: Vec<Piece>,
    steps: Vec<ClockStep>,
    outliers: usize,
}

impl ClockFit {
    /// Fits `reports`: (extended RTP time, NTP time as Unix nanoseconds), any order, duplicates
    /// allowed. `None` without reports.
    pub fn new(reports: &[(i64, i128)], clock_rate: u32) -> Option<ClockFit> {
        let mut sorted = reports.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        Self::from_sorted(sorted.len(), sorted.into_iter(), clock_rate).0
    }

    /// Fits `n` reports given sorted by RTP time without duplicates; and which of them it kept
    /// (the others were outliers). Memory: 17 bytes a report, and 24 more while fitting.
    pub(crate) fn from_sorted(
        n: usize,
        mut reports: impl Iterator<Item = (i64, i128)>,
        clock_rate: u32,
    ) -> (Option<ClockFit>, Vec<bool>) {
        let Some((x0, y0)) = reports.next() else {
            return (None, Vec::new());
        };
        let mut points = Vec::with_capacity(n);
        points.push((0.0, 0.0));
        points.extend(reports.map(|(x, y)| ((x - x0) as f64, (y - y0) as f64 / 1e9)));
        let (kept, splits) = split_at_steps(&mut points);
        let outliers = kept.iter().filter(|&&k| !k).count();
        // The filter keeps at least half of them; should it keep none, there is no clock.
        if points.is_empty() {
            return (None, kept);
        }
        let rate = f64::from(clock_rate.max(1));
        // Pieces from the last: each split off the end, so no report is copied.
        let mut pieces = Vec::with_capacity(splits.len() + 1);
        for &start in splits.iter().rev() {
            pieces.push(Piece::new(points.split_off(start), rate));
        }
        pieces.push(Piece::new(points, rate));
        pieces.reverse();
        let nominal = 1.0 / rate;
        let steps = pieces
            .windows(2)
            .map(|w| {
                let first = w[1].points[0];
                ClockStep {
                    rtp: x0 + first.0 as i64,
                    at_unix_nanos: y0 + (first.1 * 1e9) as i128,
                    by_secs: first.1 - w[0].at(first.0, nominal).0,
                }
            })
            .collect();
        let fit = ClockFit {
            x0,
            y0,
            clock_rate,
            pieces,
            steps,
            outliers,
        };
        (Some(fit), kept)
    }

    /// The camera's clock at extended RTP time `rtp`, as Unix nanoseconds, and how it was told.
    pub fn capture(&self, rtp: i64) -> (i128, CaptureFrom) {
        let x = (rtp - self.x0) as f64;
        let nominal = 1.0 / f64::from(self.clock_rate.max(1));
        let k = self.interval(rtp);
        let piece = &self.pieces[k];
        let (y, fitted) = piece.at(x, nominal);
        let from = if k + 1 < self.pieces.len() && x > piece.last_x() {
            CaptureFrom::StepWindow
        } else if fitted {
            CaptureFrom::SenderReports
        } else {
            CaptureFrom::NominalRate
        };
        (self.y0 + (y * 1e9).round() as i128, from)
    }

    /// How many of the steps come before extended RTP time `rtp`: which stretch of the clock
    /// between steps it is told by (the one before a step, in the window around it).
    pub fn interval(&self, rtp: i64) -> usize {
        let x = (rtp - self.x0) as f64;
        // The last piece starting at or before x (the first, for times before any report).
        self.pieces
            .partition_point(|p| p.first_x() <= x)
            .saturating_sub(1)
    }

    /// How fast the RTP clock runs against the camera's NTP clock, in parts per million over
    /// its nominal rate (the pieces' rates, weighted by how long each lasts).
    pub fn rtp_clock_error_ppm(&self) -> Option<f64> {
        let (mut sum, mut weight) = (0.0, 0.0);
        for p in &self.pieces {
            if let Some(line) = p.whole {
                let span = p.last_x() - p.first_x();
                let rate = 1.0 / line.slope;
                sum += (rate / f64::from(self.clock_rate) - 1.0) * 1e6 * span;
                weight += span;
            }
        }
        (weight > 0.0).then(|| sum / weight)
    }

    /// The NTP steps found, in order.
    pub fn steps(&self) -> &[ClockStep] {
        &self.steps
    }

    /// Reports left out as not fitting the others.
    pub fn outliers(&self) -> usize {
        self.outliers
    }

    /// Reports used.
    pub fn reports(&self) -> usize {
        self.pieces.iter().map(|p| p.points.len()).sum()
    }

    /// Each report used: its extended RTP time and how far (seconds) it lies off the fit.
    pub fn residuals(&self) -> Vec<(i64, f64)> {
        let nominal = 1.0 / f64::from(self.clock_rate.max(1));
        self.pieces
            .iter()
            .flat_map(|p| {
                p.points
                    .iter()
                    .map(move |&(x, y)| (self.x0 + x as i64, y - p.at(x, nominal).0))
            })
            .collect()
    }
}

/// The median of `v` (sorted in place); 0 when empty.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Finds outliers and steps in `points` (sorted by x), leaving only the points kept: returns
/// whether each point given was kept, and the indices (into the kept points) where a new piece
/// starts.
///
/// Each report's offset from a line at the typical rate (the median of consecutive reports'
/// rates) is compared with the median offset of its neighbours (two either side): a report far
/// from its neighbours is an outlier (up to two in a row are found so), while a step moves
/// the neighbours with it and shows as a jump between consecutive kept reports.
fn split_at_steps(points: &mut Vec<(f64, f64)>) -> (Vec<bool>, Vec<usize>) {
    if points.len() < 3 {
        return (vec![true; points.len()], Vec::new());
    }
    let mut work: Vec<f64> = points
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0))
        .collect();
    let rate = median(&mut work);
    let offsets: Vec<f64> = points.iter().map(|(x, y)| y - rate * x).collect();
    let mut near = [0.0; 5];
    let deviation = |i: usize, near: &mut [f64; 5]| {
        let lo = i.saturating_sub(2);
        let hi = (i + 3).min(offsets.len());
        let n = hi - lo;
        near[..n].copy_from_slice(&offsets[lo..hi]);
        offsets[i] - median(&mut near[..n])
    };
    work.clear();
    work.extend((0..offsets.len()).map(|i| deviation(i, &mut near).abs()));
    let sigma = 1.4826 * median(&mut work);
    drop(work);
    let limit = (STEP_SIGMAS * sigma).max(MIN_STEP_S);
    let kept: Vec<bool> = (0..offsets.len())
        .map(|i| deviation(i, &mut near).abs() <= limit)
        .collect();
    let mut splits = Vec::new();
    let mut last: Option<f64> = None;
    let mut n = 0;
    for (i, &k) in kept.iter().enumerate() {
        if !k {
            continue;
        }
        if last.is_some_and(|l| (offsets[i] - l).abs() > limit) {
            splits.push(n);
        }
        last = Some(offsets[i]);
        n += 1;
    }
    let mut flags = kept.iter();
    points.retain(|_| flags.next().copied().unwrap_or(false));
    (kept, splits)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 90_000;
    const T0: i128 = 1_795_000_000_000_000_000;

    /// Reports every second for `secs`, the RTP clock `ppm` fast, the NTP clock stepping by
    /// `step` seconds at `step_at`.
    fn reports(secs: i64, ppm: f64, step: Option<(f64, i64)>) -> Vec<(i64, i128)> {
        (0..secs)
            .map(|k| {
                let rtp = (k as f64 * 90_000.0 * (1.0 + ppm * 1e-6)).round() as i64 + 5_000;
                let stepped = match step {
                    Some((by, at)) if k >= at => k as f64 + by,
                    _ => k as f64,
                };
                (rtp, T0 + (stepped * 1e9) as i128)
            })
            .collect()
    }

    /// The true capture time of the frame at media time `t`.
    fn truth(t: f64, step: Option<(f64, i64)>) -> i128 {
        let stepped = match step {
            Some((by, at)) if t >= at as f64 => t + by,
            _ => t,
        };
        T0 + (stepped * 1e9) as i128
    }

    fn rtp_of(t: f64, ppm: f64) -> i64 {
        (t * 90_000.0 * (1.0 + ppm * 1e-6)).round() as i64 + 5_000
    }

    #[test]
    fn a_drifting_clock_is_fitted_to_the_microsecond() {
        let fit = ClockFit::new(&reports(60, 80.0, None), RATE).expect("fit");
        assert!((fit.rtp_clock_error_ppm().expect("ppm") - 80.0).abs() < 0.5);
        for k in 0..1500 {
            let t = k as f64 * 0.04;
            let (at, from) = fit.capture(rtp_of(t, 80.0));
            assert_eq!(from, CaptureFrom::SenderReports);
            assert!(
                (at - truth(t, None)).abs() < 20_000,
                "{t}: {} ns",
                at - truth(t, None)
            );
        }
        assert!(fit.steps().is_empty() && fit.outliers() == 0);
    }

    #[test]
    fn a_step_splits_the_clock_and_is_reported() {
        let step = Some((0.2, 30));
        let fit = ClockFit::new(&reports(60, -40.0, step), RATE).expect("fit");
        let steps = fit.steps();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!((steps[0].by_secs - 0.2).abs() < 1e-4, "{steps:?}");
        assert_eq!(steps[0].at_unix_nanos, truth(30.0, step));
        for k in 0..1500 {
            let t = k as f64 * 0.04;
            let (at, from) = fit.capture(rtp_of(t, -40.0));
            if t > 29.0 && t < 30.0 {
                assert_eq!(from, CaptureFrom::StepWindow, "{t}");
                continue;
            }
            assert_eq!(from, CaptureFrom::SenderReports, "{t}");
            assert!((at - truth(t, step)).abs() < 20_000, "{t}");
        }
    }

    #[test]
    fn lone_bad_reports_are_left_out() {
        let mut r = reports(30, 0.0, None);
        r[10].1 += 300_000_000; // one report 0.3 s off
        r[0].1 -= 50_000_000; // and the first
        r.push((7_777_777_777, T0)); // one from another clock altogether
        let fit = ClockFit::new(&r, RATE).expect("fit");
        assert_eq!(fit.outliers(), 3, "{:?}", fit.steps());
        assert!(fit.steps().is_empty());
        let (at, _) = fit.capture(rtp_of(12.5, 0.0));
        assert!((at - truth(12.5, None)).abs() < 20_000);
    }

    /// Reports as a cheap camera stamps them: each up to 5 ms off, one in 50 far off.
    #[test]
    fn jittery_reports_still_tell_the_clock_within_a_millisecond() {
        let mut rng = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 2_000_001) as f64 / 1e6 - 1.0
        };
        let mut far = 0;
        let r: Vec<(i64, i128)> = reports(600, 80.0, None)
            .into_iter()
            .enumerate()
            .map(|(k, (x, y))| {
                let mut off = next() * 0.005;
                if k % 50 == 7 {
                    off = (0.1 + 0.15 * (next() + 1.0) / 2.0) * off.signum();
                    far += 1;
                }
                (x, y + (off * 1e9) as i128)
            })
            .collect();
        let fit = ClockFit::new(&r, RATE).expect("fit");
        let mut errors: Vec<f64> = (0..600 * 25)
            .map(|k| {
                let t = k as f64 * 0.04;
                (fit.capture(rtp_of(t, 80.0)).0 - truth(t, None)).abs() as f64 / 1e9
            })
            .collect();
        errors.sort_unstable_by(f64::total_cmp);
        let p99 = errors[errors.len() * 99 / 100];
        assert!(p99 < 0.001, "p99 {p99} s");
        assert!(fit.steps().is_empty(), "{:?}", fit.steps());
        assert_eq!(fit.outliers(), far, "every far-off report, and no other");
    }

    #[test]
    fn one_report_uses_the_nominal_rate_and_long_runs_use_windows() {
        let fit = ClockFit::new(&reports(1, 0.0, None), RATE).expect("fit");
        let (at, from) = fit.capture(rtp_of(2.0, 0.0));
        assert_eq!(from, CaptureFrom::NominalRate);
        assert_eq!(at, truth(2.0, None));
        assert!(fit.rtp_clock_error_ppm().is_none());
        // A day whose rate wanders: 10 ppm slow in the morning, 10 fast in the evening.
        let day: Vec<(i64, i128)> = (0..86_400i64)
            .step_by(5)
            .map(|k| {
                let t = k as f64;
                let ticks = 90_000.0 * (t + 1e-6 * (-10.0 * t + 10.0 * t * t / 86_400.0));
                (ticks.round() as i64, T0 + (t * 1e9) as i128)
            })
            .collect();
        let fit = ClockFit::new(&day, RATE).expect("fit");
        let worst = fit
            .residuals()
            .iter()
            .map(|r| r.1.abs())
            .fold(0.0, f64::max);
        assert!(worst < 100e-6, "worst residual {worst} s");
    }
}
