//! `retina-record timing` against a camera whose clocks err on purpose (offset, RTP drift, send
//! jitter, an NTP step) and that writes down the truth: capture times, clock health and
//! alignment are checked against what the camera did, not against our own arithmetic.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use retina_record::camera::{CameraClock, CameraConfig};
use retina_record::mp4::read::Recording;
use retina_record::timing::recording;

use crate::support::rig::{Recorder, only_error};
use crate::support::timing::{Row, parse_rows, report, rows, summary, timing, timing_ok, truth};
use crate::support::{Rig, config};

/// A camera serving the H.264 + AAC clip whose clocks err as `clock` says, its NTP clock
/// following this machine's (plus the offset), writing its truth to `truth`.
fn lying_camera(clock: CameraClock, truth: &Path) -> CameraConfig {
    let mut c = config("h264_aac.mp4");
    c.ntp_base = None;
    c.clock = clock;
    c.truth = Some(truth.to_owned());
    c
}

fn clock(offset: f64, rtp_drift_ppm: f64, jitter_ms: u64, seed: u64) -> CameraClock {
    CameraClock {
        offset,
        rtp_drift_ppm,
        ntp_step: None,
        send_jitter: Duration::from_millis(jitter_ms),
        sr_jitter: Duration::ZERO,
        seed,
    }
}

/// How far each row's capture time is from the truth (session 0 for all).
fn errors<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    truth: &HashMap<(usize, u32), f64>,
) -> Vec<f64> {
    rows.into_iter()
        .map(|r| {
            let t = truth
                .get(&(0, r.rtp))
                .unwrap_or_else(|| panic!("frame {} (rtp {}) was never sent", r.frame, r.rtp));
            let c = r
                .capture_unix
                .unwrap_or_else(|| panic!("frame {} has no capture time", r.frame));
            (c - t).abs()
        })
        .collect()
}

/// A minute recorded from `camera` into `rec.mp4`, and its frame rows.
async fn a_minute_of(camera: CameraConfig) -> (Rig, Vec<Row>) {
    let rig = Rig::new(camera).await;
    rig.spawn(&["--duration", "60"])
        .wait_within(Duration::from_secs(90))
        .await
        .assert_success();
    let rows = rows(rig.dir.path(), &["rec.mp4"]).await;
    (rig, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_times_match_the_truth_through_offset_drift_and_jitter() {
    let truth_file = tempfile::NamedTempFile::new().expect("truth file");
    let (rig, rows) = a_minute_of(lying_camera(clock(0.25, 80.0, 20, 1), truth_file.path())).await;
    let dir = rig.dir.path();
    assert!(rows.len() >= 60 * 25 - 30, "{} frames in 60 s", rows.len());
    let truth = truth(truth_file.path());
    let mut errs = errors(&rows, &truth);
    let within = errs.iter().filter(|&&e| e < 1e-3).count();
    let p99 = report("offset 250 ms, drift 80 ppm, jitter 20 ms", &mut errs);
    assert!(
        within * 100 >= rows.len() * 99,
        "{within} of {} within 1 ms",
        rows.len()
    );
    assert!(p99 < 1e-3);
    assert!(rows[0].keyframe, "a recording starts at a keyframe");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.frame, i, "presentation order, numbered");
        assert_eq!(r.capture_from, "sr");
        let latency = r.latency_s.expect("latency");
        assert!(
            (latency - (r.recv_unix - r.capture_unix.expect("capture"))).abs() < 2e-6,
            "latency is receive minus capture: {r:?}"
        );
    }
    // The JSON lines say the same.
    let (json, _) = timing_ok(dir, &["--json", "rec.mp4"]).await;
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), rows.len());
    for (l, r) in lines.iter().zip(&rows) {
        assert_eq!(l["rtp"].as_u64(), Some(u64::from(r.rtp)));
        assert_eq!(l["capture_unix"].as_f64(), r.capture_unix);
    }

    let s = summary(dir, &["rec.mp4"]).await;
    let whole = &s["whole"];
    let ppm = whole["rtp_clock_error_ppm"].as_f64().expect("ppm");
    let offset = whole["camera_minus_receiver_s"].as_f64().expect("offset");
    eprintln!("summary: RTP clock {ppm:+.2} ppm (80), camera clock {offset:+.4} s (0.25)");
    assert!((ppm - 80.0).abs() < 5.0, "{ppm} ppm");
    assert!((offset - 0.25).abs() < 0.005, "{offset} s");
    assert_eq!(whole["frames"].as_u64(), Some(rows.len() as u64));
    assert_eq!(whole["sessions"].as_u64(), Some(1));
    assert_eq!(whole["gaps"].as_array().map(Vec::len), Some(0), "{whole}");
    let sr = &whole["sender_reports"];
    assert_eq!(sr["not_video"].as_u64(), Some(0), "{sr}");
    assert_eq!(sr["outliers"].as_u64(), Some(0), "{sr}");
    let interval = sr["interval_s"].as_f64().expect("interval");
    assert!(
        (interval - 1.0).abs() < 0.01,
        "the camera reports every second: {interval}"
    );
    assert!(whole["jitter_s"].as_f64().expect("jitter") > 0.0);
}

/// A cheap camera's sender reports (each up to 5 ms off, one in 50 far off) over ten minutes
/// of media (at ten times real time): capture times still within 1 ms at p99, and the far-off
/// reports counted as outliers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jittery_sender_reports_are_fitted_out_and_the_far_off_counted() {
    let truth_file = tempfile::NamedTempFile::new().expect("truth file");
    let mut c = clock(0.25, 80.0, 20, 6);
    c.sr_jitter = Duration::from_millis(5);
    let mut camera = lying_camera(c, truth_file.path());
    camera.speed = 10.0;
    let (rig, rows) = a_minute_of(camera).await;
    let dir = rig.dir.path();
    assert!(
        rows.len() >= 600 * 25 - 300,
        "{} frames in 600 s of media",
        rows.len()
    );
    let truth = truth(truth_file.path());
    let mut errs = errors(&rows, &truth);
    let p99 = report("reports 5 ms off, one in 50 far off", &mut errs);
    assert!(p99 < 1e-3, "p99 {p99} s");
    let s = summary(dir, &["rec.mp4"]).await;
    let sr = &s["whole"]["sender_reports"];
    let received = sr["received"].as_u64().expect("received");
    let outliers = sr["outliers"].as_u64().expect("outliers");
    eprintln!("sender reports: {sr}");
    // About one in 50 of the video's ~600 (the audio's are not stored).
    assert!((4..=30).contains(&outliers), "{sr}");
    assert_eq!(sr["used"].as_u64(), Some(received - outliers), "{sr}");
    assert!(
        s["whole"]["ntp_steps"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ntp_step_is_found_and_frames_after_it_keep_their_time() {
    let truth_file = tempfile::NamedTempFile::new().expect("truth file");
    let mut c = clock(0.1, 50.0, 5, 2);
    c.ntp_step = Some((0.2, 30.0));
    let rig = Rig::new(lying_camera(c, truth_file.path())).await;
    rig.record(&["--duration", "40"]).await.assert_success();
    let dir = rig.dir.path();
    let rows = rows(dir, &["rec.mp4"]).await;
    let truth = truth(truth_file.path());
    // The step, from the truth: two consecutive frames 40 ms + 200 ms apart on its clock.
    let mut captures: Vec<f64> = truth.values().copied().collect();
    captures.sort_unstable_by(f64::total_cmp);
    let stepped_at = captures
        .windows(2)
        .find(|w| w[1] - w[0] > 0.2)
        .map(|w| w[1])
        .expect("the camera stepped");

    let s = summary(dir, &["rec.mp4"]).await;
    let steps = s["whole"]["ntp_steps"].as_array().expect("steps").clone();
    assert_eq!(steps.len(), 1, "{steps:?}");
    let by = steps[0]["by_s"].as_f64().expect("by");
    let at = steps[0]["at_unix"].as_f64().expect("at");
    eprintln!(
        "NTP step found: {by:+.6} s, {:.3} s after it happened",
        at - stepped_at
    );
    assert!((by - 0.2).abs() < 0.001, "stepped by {by}");
    // Reported at the first sender report after it (one a second), which can be at the very
    // instant of the step (equal to float rounding).
    assert!(
        (-0.001..1.05).contains(&(at - stepped_at)),
        "{at} vs {stepped_at}"
    );

    let in_window = rows.iter().filter(|r| r.capture_from == "sr-step").count();
    assert!(
        (1..=26).contains(&in_window),
        "frames between the reports around the step, at most a second's: {in_window}"
    );
    let fitted: Vec<&Row> = rows.iter().filter(|r| r.capture_from == "sr").collect();
    assert_eq!(fitted.len() + in_window, rows.len());
    let after: Vec<&Row> = fitted
        .iter()
        .copied()
        .filter(|r| truth[&(0, r.rtp)] > stepped_at)
        .collect();
    assert!(after.len() > 200, "{} frames after the step", after.len());
    let mut errs = errors(after, &truth);
    let max = errs.iter().copied().fold(0.0, f64::max);
    report("after a 200 ms NTP step", &mut errs);
    assert!(max < 1e-3, "a frame after the step is {max} s off");
    let mut errs = errors(fitted, &truth);
    let max = errs.iter().copied().fold(0.0, f64::max);
    report("every frame outside the step's window", &mut errs);
    assert!(max < 1e-3, "{max}");
}

/// The `.mp4` files in `dir`, sorted by name.
fn mp4s(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).expect("utf-8 name")
}

/// `timing --plot` over `names` (the recording's `files`): both panels, a legend entry per
/// file, a point per frame.
async fn check_plot(dir: &Path, names: &[&str], files: &[PathBuf], frames: usize) {
    let (_, stderr) = timing_ok(dir, &[&["--plot", "plot.svg"][..], names].concat()).await;
    assert!(!stderr.contains("WARN"), "{stderr}");
    let svg = std::fs::read_to_string(dir.join("plot.svg")).expect("the plot");
    assert!(svg.starts_with("<svg"), "an SVG");
    assert!(
        svg.contains("latency") && svg.contains("clock fit"),
        "both panels"
    );
    for f in files {
        assert!(svg.contains(name(f)), "a legend entry for {}", name(f));
    }
    assert!(
        svg.matches("<circle").count() >= frames,
        "a point per frame"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_reconnect_and_segments_every_frame_once_with_its_capture_time() {
    let truth_file = tempfile::NamedTempFile::new().expect("truth file");
    let rig = Rig::new(lying_camera(clock(-0.5, -40.0, 5, 3), truth_file.path())).await;
    let template = rig.dir.path().join("seg-%Y%m%d-%H%M%S.mp4");
    let rec = rig.spawn_to(&template, &["--segment-duration", "3s"]);
    rig.cam.wait_session_sent(0, 5.0).await;
    rig.cam.drop_connections();
    rig.cam.wait_session_sent(1, 5.0).await;
    rec.signal(libc::SIGINT);
    rec.wait().await.assert_success();
    let dir = rig.dir.path();
    let files = mp4s(dir);
    assert!(files.len() >= 3, "segments: {files:?}");
    let recorded: usize = files
        .iter()
        .map(|f| {
            let rec = Recording::open(f).expect("segment");
            let track = rec.video_track().expect("video").track_id;
            rec.track_samples(track).count()
        })
        .sum();
    // Given in reverse: the order of the arguments does not matter.
    let names: Vec<&str> = files.iter().rev().map(|f| name(f)).collect();
    let rows = rows(dir, &names).await;
    assert_eq!(rows.len(), recorded, "every recorded frame, once");
    let mut seen = HashSet::new();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.frame, i);
        assert!(
            seen.insert((r.file.clone(), r.pts_s.to_bits())),
            "{r:?} twice"
        );
    }
    for w in rows.windows(2) {
        assert!(w[0].pts_s < w[1].pts_s, "one timeline across the files");
    }

    let truth = truth(truth_file.path());
    let timing = recording::read(&files).expect("read the segments");
    assert_eq!(timing.sessions().len(), 2, "two sessions");
    let conns: Vec<Option<u64>> = timing.sessions().iter().map(|s| s.conn).collect();
    let mut frames_by_session = HashSet::new();
    let mut errs = Vec::new();
    // The CSV says which connection: 0, then 1, across the files.
    assert_eq!(rows.first().map(|r| r.session), Some(0));
    assert_eq!(rows.last().map(|r| r.session), Some(1));
    assert!(rows.windows(2).all(|w| w[0].session <= w[1].session));
    for (f, row) in timing.frames.iter().zip(&rows) {
        assert_eq!(f.rtp, row.rtp);
        assert_eq!(f.session, row.session);
        assert!(frames_by_session.insert((f.session, f.rtp)), "{f:?} twice");
        let t = truth[&(f.session, f.rtp)];
        let (c, _) = f.capture.expect("a capture time");
        errs.push((c as f64 / 1e9 - t).abs());
        let shown = row.capture_unix.expect("capture");
        assert!(
            (shown - c as f64 / 1e9).abs() < 1e-6,
            "the CLI shows the library's"
        );
    }
    let max = errs.iter().copied().fold(0.0, f64::max);
    report("across a reconnect and 3 s segments", &mut errs);
    assert!(max < 1e-3, "{max}");

    // Each segment alone: it starts mid-recording, and still maps its frames.
    for file in &files {
        let alone = recording::read(std::slice::from_ref(file)).expect("one segment");
        for f in &alone.frames {
            let session = conns
                .iter()
                .position(|&c| c == alone.sessions()[f.session].conn)
                .expect("a known session");
            let (c, _) = f.capture.expect("each segment has the session's reports");
            let err = (c as f64 / 1e9 - truth[&(session, f.rtp)]).abs();
            assert!(err < 1e-3, "{}: frame {} {err} s off", name(file), f.index);
        }
    }

    let s = summary(dir, &names).await;
    assert_eq!(s["whole"]["sessions"].as_u64(), Some(2));
    assert!(
        !s["whole"]["gaps"].as_array().expect("gaps").is_empty(),
        "the outage is a gap"
    );
    assert_eq!(
        s["files"].as_array().map(Vec::len),
        Some(files.len()),
        "and each file on its own"
    );
    files_add_up_to_the_whole(&s);

    check_plot(dir, &names, &files, rows.len()).await;
}

/// Each file of summary `s` counts the reports first found in it: together, the whole's.
fn files_add_up_to_the_whole(s: &serde_json::Value) {
    let per_file = s["files"].as_array().expect("files");
    for key in ["received", "used"] {
        let sum: u64 = per_file
            .iter()
            .map(|f| f["sender_reports"][key].as_u64().expect("a count"))
            .sum();
        let whole = s["whole"]["sender_reports"][key].as_u64();
        assert_eq!(Some(sum), whole, "{key}: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn align_pairs_two_cameras_by_true_time_and_reports_their_offset() {
    let (truth_a, truth_b) = (
        tempfile::NamedTempFile::new().expect("truth"),
        tempfile::NamedTempFile::new().expect("truth"),
    );
    let a = Rig::new(lying_camera(clock(0.25, 0.0, 5, 4), truth_a.path())).await;
    let b = Rig::new(lying_camera(clock(-0.1, 20.0, 5, 5), truth_b.path())).await;
    let rec_a = a.spawn(&["--duration", "10"]);
    let rec_b = b.spawn(&["--duration", "10"]);
    let (ra, rb) = tokio::join!(rec_a.wait(), rec_b.wait());
    ra.assert_success();
    rb.assert_success();
    let dir = a.dir.path();
    let (pa, pb) = (
        a.out.to_str().expect("utf-8"),
        b.out.to_str().expect("utf-8"),
    );
    // This machine's clock at each frame's capture, from the truth: the camera's minus its
    // offset.
    let host = |rows: &[Row], truth: &HashMap<(usize, u32), f64>, offset: f64| -> Vec<f64> {
        rows.iter().map(|r| truth[&(0, r.rtp)] - offset).collect()
    };
    let rows_a = rows(dir, &[pa]).await;
    let rows_b = rows(dir, &[pb]).await;
    let host_a = host(
        &rows_a,
        &crate::support::timing::truth(truth_a.path()),
        0.25,
    );
    let host_b = host(
        &rows_b,
        &crate::support::timing::truth(truth_b.path()),
        -0.1,
    );

    let (pairs, _) = timing_ok(dir, &["--align", "--align-by", "corrected", pa, pb]).await;
    #[derive(serde::Deserialize)]
    struct Pair {
        a_frame: usize,
        a_time_unix: f64,
        b_frame: usize,
        b_time_unix: f64,
        b_minus_a_s: f64,
    }
    let pairs: Vec<Pair> = csv::Reader::from_reader(pairs.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("pairs CSV");
    assert_eq!(
        pairs.len(),
        rows_a.len(),
        "a row per frame of the first file"
    );
    let mut worse = Vec::new();
    for p in &pairs {
        assert!((p.b_time_unix - p.a_time_unix - p.b_minus_a_s).abs() < 2e-6);
        let ta = host_a[p.a_frame];
        let chosen = (host_b[p.b_frame] - ta).abs();
        let best = host_b
            .iter()
            .map(|tb| (tb - ta).abs())
            .fold(f64::MAX, f64::min);
        worse.push(chosen - best);
    }
    let max = worse.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "align (corrected): {} pairs, the matched frame is at most {:.3} ms further (true time) \
         than the nearest",
        pairs.len(),
        max * 1e3
    );
    assert!(max < 0.005, "{max}");

    let (s, _) = timing_ok(dir, &["--align", "--summary", "--json", pa, pb]).await;
    let s: serde_json::Value = serde_json::from_str(&s).expect("JSON");
    let relative = s["cameras"][1]["minus_first_camera_s"]
        .as_f64()
        .expect("relative offset");
    eprintln!("relative clock offset {relative:+.4} s (-0.35)");
    assert!((relative + 0.35).abs() < 0.005, "{relative}");

    // By camera clock, as for NTP-synced cameras: pairs nearest on the cameras' own clocks.
    let (pairs, _) = timing_ok(dir, &["--align", pa, pb]).await;
    let first = pairs.lines().nth(1).expect("a row");
    let diff: f64 = first
        .rsplit(',')
        .next()
        .and_then(|d| d.parse().ok())
        .expect("b_minus_a_s");
    assert!(diff.abs() < 0.4, "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_retina_record_0_2_2_work_and_their_audio_reports_are_left_out() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let file = fixtures.join("retina-record-0.2.2.mp4");
    let rows = rows(&fixtures, &[file.to_str().expect("utf-8")]).await;
    assert_eq!(rows.len(), 150, "6 s at 25 fps");
    let truth = truth(&fixtures.join("retina-record-0.2.2.truth.csv"));
    let mut errs = errors(&rows, &truth);
    let max = errs.iter().copied().fold(0.0, f64::max);
    report("retina-record 0.2.2's file", &mut errs);
    assert!(max < 1e-3, "{max}");
    let s = summary(&fixtures, &[file.to_str().expect("utf-8")]).await;
    let sr = &s["whole"]["sender_reports"];
    let left_out = sr["not_video"].as_u64().unwrap_or(0) + sr["outliers"].as_u64().unwrap_or(0);
    assert_eq!(sr["received"].as_u64(), Some(12), "{sr}");
    assert_eq!(left_out, 6, "the six audio reports: {sr}");
    assert_eq!(sr["used"].as_u64(), Some(6), "{sr}");
    let ppm = s["whole"]["rtp_clock_error_ppm"].as_f64().expect("ppm");
    assert!((ppm - 30.0).abs() < 5.0, "{ppm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_line_or_the_rows_that_can_be_read() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let dir = rig.dir.path();
    // Without timing data.
    rig.record(&["--duration", "2", "--no-timing-info"])
        .await
        .assert_success();
    std::fs::rename(&rig.out, dir.join("plain.mp4")).expect("rename");
    let fails = |out: std::process::Output, code: i32| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(out.stdout.is_empty(), "no rows on failure");
        only_error(&stderr).to_owned()
    };
    let line = fails(timing(dir, &["plain.mp4"]).await, 1);
    assert!(line.contains("plain.mp4 has no timing data"), "{line}");
    std::fs::write(dir.join("text.mp4"), "not a video\n").expect("write");
    let line = fails(timing(dir, &["text.mp4"]).await, 1);
    assert!(
        line.contains("text.mp4") && line.contains("not an MP4"),
        "{line}"
    );
    std::fs::write(dir.join("empty.mp4"), "").expect("write");
    let line = fails(timing(dir, &["empty.mp4"]).await, 1);
    assert!(line.contains("empty.mp4"), "{line}");
    let line = fails(timing(dir, &["missing.mp4"]).await, 1);
    assert!(line.contains("missing.mp4"), "{line}");
    let line = fails(timing(dir, &["--align", "plain.mp4"]).await, 2);
    assert!(line.contains("--align needs two or more cameras"), "{line}");

    // A recording killed mid-way: its .partial reads up to its last whole fragment.
    let rec = Recorder::spawn(dir, &["--url", &rig.cam.url(), "killed.mp4"]);
    rig.cam.wait_sent(3.0).await;
    rec.signal(libc::SIGKILL);
    let _ = rec.wait().await;
    let partial = retina_record::output::partial_path(&dir.join("killed.mp4"));
    let partial_name = name(&partial).to_owned();
    let killed = rows(dir, &[&partial_name]).await;
    assert!(
        killed.len() > 25,
        "{} frames of the killed recording",
        killed.len()
    );

    // Cut short mid-fragment: the whole fragments' rows, and a warning.
    let bytes = std::fs::read(&partial).expect("partial");
    std::fs::write(dir.join("cut.mp4"), &bytes[..bytes.len() * 2 / 3]).expect("write");
    let (csv_text, stderr) = timing_ok(dir, &["cut.mp4"]).await;
    let cut = parse_rows(&csv_text);
    assert!(!cut.is_empty() && cut.len() < killed.len(), "{}", cut.len());
    assert!(
        stderr.contains("cut.mp4 ends in a cut-off fragment"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one warning: {stderr}");
    assert!(cut.iter().zip(&killed).all(|(c, k)| c.rtp == k.rtp));

    // A reader that stops early is not an error.
    let mut child = crate::support::rig::recorder_command(&["timing", &partial_name])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("timing");
    drop(child.stdout.take());
    let out = child.wait_with_output().await.expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fragment_has_a_prft_with_its_first_frames_receive_time() {
    let rig = Rig::clip("h264_bframes.mp4").await;
    rig.record(&["--duration", "4"]).await.assert_success();
    let rec = Recording::open(&rig.out).expect("read");
    assert!(rec.fragments > 3);
    assert_eq!(rec.producer_times.len(), rec.fragments, "one per fragment");
    let timing = rec.video_timing().expect("timing");
    let video = rec.video_track().expect("video").track_id;
    let mut last = None;
    for p in &rec.producer_times {
        assert_eq!(p.reference_track_id, video);
        assert_eq!(p.utc_time_semantics, mp4_atom::ReferenceTime::RealTime);
        let frame = timing
            .iter()
            .find(|t| t.sample.pts() == p.media_time as i64)
            .unwrap_or_else(|| panic!("no frame at prft media time {}", p.media_time));
        assert_eq!(
            frame.frame().expect("89H").recv,
            p.ntp_timestamp,
            "the frame's receive time"
        );
        // The earliest presented of its fragment: no frame before it is in a later fragment.
        assert!(last < Some(p.media_time), "increasing");
        last = Some(p.media_time);
    }
    if crate::support::have_tool("ffprobe") {
        let trace = std::process::Command::new("ffprobe")
            .args(["-v", "trace"])
            .arg(&rig.out)
            .output()
            .expect("ffprobe");
        let log = String::from_utf8_lossy(&trace.stderr);
        assert_eq!(
            log.matches("type:'prft'").count(),
            rec.fragments,
            "ffprobe sees them"
        );
        let errors = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_packets"])
            .arg(&rig.out)
            .output()
            .expect("ffprobe");
        assert!(errors.status.success() && errors.stderr.is_empty());
    }
}
