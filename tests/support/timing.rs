//! `retina-record timing` run as a user runs it, its output parsed, and the test camera's truth
//! file read, to compare the two.

use std::collections::HashMap;
use std::path::Path;

use super::rig::recorder_command;

/// A row of `timing`'s CSV.
#[derive(Debug, serde::Deserialize)]
pub struct Row {
    pub file: String,
    pub frame: usize,
    pub pts_s: f64,
    pub keyframe: bool,
    pub rtp: u32,
    pub recv_unix: f64,
    pub capture_unix: Option<f64>,
    pub capture_from: String,
    pub latency_s: Option<f64>,
    pub session: usize,
    pub sample_description: u32,
}

/// The output of `retina-record timing ARGS` run in `dir`, which must succeed; and its stderr.
pub async fn timing_ok(dir: &Path, args: &[&str]) -> (String, String) {
    let out = timing(dir, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "timing {args:?}: {stderr}");
    (String::from_utf8(out.stdout).expect("utf-8"), stderr)
}

pub async fn timing(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["timing"];
    all.extend_from_slice(args);
    crate::support::lines::output(recorder_command(&all).current_dir(dir)).await
}

/// The frame rows of `timing FILES…`.
pub async fn rows(dir: &Path, files: &[&str]) -> Vec<Row> {
    parse_rows(&timing_ok(dir, files).await.0)
}

pub fn parse_rows(csv_text: &str) -> Vec<Row> {
    csv::Reader::from_reader(csv_text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("timing's CSV")
}

/// `timing --summary --json FILES…`.
pub async fn summary(dir: &Path, files: &[&str]) -> serde_json::Value {
    let mut args = vec!["--summary", "--json"];
    args.extend_from_slice(files);
    serde_json::from_str(&timing_ok(dir, &args).await.0).expect("summary JSON")
}

/// The camera's truth file: (session, rtp) → capture time by its own clock, Unix seconds.
pub fn truth(path: &Path) -> HashMap<(usize, u32), f64> {
    truth_sent(path)
        .into_iter()
        .map(|(k, (capture, _))| (k, capture))
        .collect()
}

/// The camera's truth file: (session, rtp) → (capture time by its own clock, when this machine
/// sent it), Unix seconds.
pub fn truth_sent(path: &Path) -> HashMap<(usize, u32), (f64, f64)> {
    #[derive(serde::Deserialize)]
    struct TruthRow {
        session: usize,
        rtp: u32,
        capture_unix: f64,
        sent_unix: f64,
    }
    csv::Reader::from_path(path)
        .expect("truth file")
        .deserialize::<TruthRow>()
        .map(|r| {
            let r = r.expect("truth row");
            ((r.session, r.rtp), (r.capture_unix, r.sent_unix))
        })
        .collect()
}

/// p50, p99 and max of `v` (sorted here).
pub fn percentiles(v: &mut [f64]) -> (f64, f64, f64) {
    assert!(!v.is_empty(), "no values");
    v.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

/// Logs how far `what` was off, in µs, and returns the p99.
pub fn report(what: &str, errors: &mut [f64]) -> f64 {
    let n = errors.len();
    let (p50, p99, max) = percentiles(errors);
    eprintln!(
        "{what}: {n} frames, capture time off the truth by p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        p50 * 1e6,
        p99 * 1e6,
        max * 1e6
    );
    p99
}
