//! `export` and `list` (issue 26) on recordings of the built-in camera: intervals inside a
//! segment, across segments and across a reconnect come out frame-accurate (ffprobe's first
//! shown frame and count), decode in ffmpeg and GStreamer, play in Chromium, and read back
//! with the original's timing; two cameras cut to one capture-time interval start together
//! by their truth files; `list` shows the reconnect's gap as `timing` measures it.

use std::path::Path;
use std::time::Duration;

use retina_record::camera::{Camera, CameraClock, CameraConfig};

use crate::support::check::decoded_and_played;
use crate::support::lines::output;
use crate::support::rig::{Recorder, Rig, clip, config, only_error, recorder_command};
use crate::support::timing::{Row, parse_rows, rows, truth};
use crate::support::tools::ffprobe_video_frames;

/// The camera drops its connection this far in.
const RECONNECT_AT: f64 = 60.0;

/// `retina-record ARGS` in `dir`; its stdout, which it must succeed to give.
async fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = output(recorder_command(args).current_dir(dir)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Unix seconds as RFC 3339, for --from and --to.
fn rfc3339(t: f64) -> String {
    let ns = (t * 1e9).round() as i128;
    jiff::Timestamp::from_nanosecond(ns)
        .expect("a time")
        .to_string()
}

/// The rows whose capture time is in `[from, to)`.
fn within(rows: &[Row], from: f64, to: f64) -> Vec<&Row> {
    rows.iter()
        .filter(|r| r.capture_unix.is_some_and(|c| c >= from && c < to))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_of_segments_and_a_reconnect_are_frame_accurate() {
    // Its clock goes on across sessions (a fixed base would start each session's anew).
    let mut c = config("h264_aac.mp4");
    c.ntp_base = None;
    let cam = Camera::start(c).await.expect("camera");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let url = cam.url();
    let args = [
        "--url",
        &url,
        "--duration",
        "120",
        "--segment-duration",
        "10s",
        "--reconnect-max-delay",
        "1s",
        "rec/%H%M%S.mp4",
    ];
    let recorder = Recorder::spawn(d, &args);
    cam.wait_sent(RECONNECT_AT).await;
    cam.drop_connections();
    recorder
        .wait_within(Duration::from_secs(130))
        .await
        .assert_success();
    let all = rows(d, &["rec"]).await;
    let first = all[0].capture_unix.expect("capture times");
    // Each file's first frame, by capture time, counted from the first frame.
    let mut starts: Vec<f64> = Vec::new();
    for (i, r) in all.iter().enumerate() {
        if i == 0 || r.file != all[i - 1].file {
            starts.push(r.capture_unix.expect("capture") - first);
        }
    }
    check_list(d, &all).await;
    // Offsets (s from the first frame) off the 40-ms frame grid, so that no frame sits on
    // an edge: 5 s inside the second file, from the second file into the fourth, and 25 s
    // around the reconnect.
    for (name, from, to, files) in [
        ("inside", starts[1] + 2.01, starts[1] + 7.01, 1..=1),
        ("three", starts[1] + 5.01, starts[3] + 5.01, 3..=3),
        ("reconnect", 50.01, 75.01, 3..=4),
    ] {
        let (from, to) = (first + from, first + to);
        let out = format!("{name}.mp4");
        let (f, t) = (rfc3339(from), rfc3339(to));
        let args = [
            "export", "--json", "--from", &f, "--to", &t, "-o", &out, "rec",
        ];
        let said = run_ok(d, &args).await;
        let said: serde_json::Value = serde_json::from_str(&said).expect("JSON");
        let sources = said["cameras"][0]["files"][0]["source_files"]
            .as_array()
            .map(Vec::len);
        assert!(
            sources.is_some_and(|n| files.contains(&n)),
            "{name}: {said}"
        );
        check_export(d, &out, &all, &within(&all, from, to)).await;
    }
    check_split(d, &all, first).await;
    if crate::browser::have_chromium() {
        let port = crate::browser::serve_dir(d.to_owned()).await;
        for name in ["inside.mp4", "three.mp4", "reconnect.mp4"] {
            let probed = ffprobe_video_frames(&d.join(name)).expect("ffprobe");
            let secs = probed.last().map_or(0.0, |f| f.pts_time + 0.04);
            crate::browser::chromium_plays(d, port, name, secs).await;
        }
    }
}

/// An export holds exactly `expected` shown (ffprobe: the first at 0, as many), decodes clean
/// in ffmpeg and GStreamer, and every frame's timing is the original's.
async fn check_export(d: &Path, name: &str, all: &[Row], expected: &[&Row]) {
    let path = d.join(name);
    let probed = ffprobe_video_frames(&path).expect("ffprobe is required here");
    assert_eq!(probed.len(), expected.len(), "{name}: frames shown");
    assert!(
        probed[0].pts_time.abs() < 1e-6,
        "{name}: first at {}",
        probed[0].pts_time
    );
    decoded_and_played(&path, expected.len());
    let exported = rows(d, &[name]).await;
    let original = |r: &Row| {
        all.iter()
            .find(|o| o.rtp == r.rtp && o.recv_unix == r.recv_unix)
            .unwrap_or_else(|| panic!("{name}: frame rtp {} is not the original's", r.rtp))
    };
    for r in &exported {
        let o = original(r);
        let (a, b) = (
            r.capture_unix.expect("capture"),
            o.capture_unix.expect("capture"),
        );
        assert!(
            (a - b).abs() < 1e-5,
            "{name}: rtp {}: capture {a} vs {b}",
            r.rtp
        );
    }
    let shown: Vec<_> = exported.iter().filter(|r| r.pts_s >= -1e-9).collect();
    assert_eq!(shown.len(), expected.len(), "{name}: timing's shown rows");
    for (s, e) in shown.iter().zip(expected) {
        assert_eq!(
            (s.rtp, s.recv_unix),
            (e.rtp, e.recv_unix),
            "{name}: the same frames"
        );
    }
    let sessions: std::collections::BTreeSet<_> = expected.iter().map(|r| r.session).collect();
    let read: std::collections::BTreeSet<_> = shown.iter().map(|r| r.session).collect();
    assert_eq!(
        read.len(),
        sessions.len(),
        "{name}: the sessions are kept apart"
    );
}

/// `list` gives two spans, the gap between them as long as the frames' receive times say.
async fn check_list(d: &Path, all: &[Row]) {
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(d, &["list", "--json", "rec"]).await).expect("JSON");
    let camera = &json["cameras"][0];
    assert_eq!(camera["spans"].as_array().map(Vec::len), Some(2), "{json}");
    let at = all
        .iter()
        .position(|r| r.session == 1)
        .expect("a second session");
    let (before, after) = (&all[at - 1], &all[at]);
    let truth = after.recv_unix - (before.recv_unix + 0.04);
    let gap = camera["gaps"][0]["recv_secs"].as_f64().expect("gap");
    assert!(
        (gap - truth).abs() < 1e-3,
        "gap {gap} s, frames say {truth} s"
    );
    assert!(gap > 0.5, "the outage: {gap} s");
    let text = run_ok(d, &["list", "rec"]).await;
    assert!(text.contains("2 spans, 1 gap"), "{text}");
}

/// --split-on-gap writes the reconnect's two sides into two files, each frame-accurate.
async fn check_split(d: &Path, all: &[Row], first: f64) {
    let (from, to) = (first + 50.01, first + 75.01);
    run_ok(
        d,
        &[
            "export",
            "--split-on-gap",
            "--from",
            &rfc3339(from),
            "--to",
            &rfc3339(to),
            "-o",
            "split.mp4",
            "rec",
        ],
    )
    .await;
    let expected = within(all, from, to);
    let at = expected
        .iter()
        .position(|r| r.session == 1)
        .expect("both sides");
    for (name, part) in [
        ("split-1.mp4", &expected[..at]),
        ("split-2.mp4", &expected[at..]),
    ] {
        let probed = ffprobe_video_frames(&d.join(name)).expect("ffprobe");
        assert_eq!(probed.len(), part.len(), "{name}");
    }
}

async fn camera_with(offset: f64, truth: &Path) -> Camera {
    let mut c: CameraConfig = config("h264_aac.mp4");
    c.ntp_base = None;
    c.truth = Some(truth.to_owned());
    c.clock = CameraClock {
        offset,
        ..CameraClock::default()
    };
    Camera::start(c).await.expect("camera")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cameras_cut_to_one_capture_interval_start_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (a, b) = (
        camera_with(0.25, &d.join("a.truth")).await,
        camera_with(-0.1, &d.join("b.truth")).await,
    );
    let (url_a, url_b) = (a.url(), b.url());
    let rec_a = Recorder::spawn(d, &["--url", &url_a, "--duration", "15", "a.mp4"]);
    let rec_b = Recorder::spawn(d, &["--url", &url_b, "--duration", "15", "b.mp4"]);
    rec_a
        .wait_within(Duration::from_secs(30))
        .await
        .assert_success();
    rec_b
        .wait_within(Duration::from_secs(30))
        .await
        .assert_success();
    let args = [
        "export",
        "--camera",
        "a=a.mp4",
        "--camera",
        "b=b.mp4",
        "--from",
        "+5.01s",
        "--duration",
        "5s",
        "-o",
        "{camera}-clip.mp4",
    ];
    run_ok(d, &args).await;
    let beside: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("cameras-clip.json")).expect("the JSON beside"),
    )
    .expect("JSON");
    let mut starts = Vec::new();
    for (name, truth_file) in [("a", "a.truth"), ("b", "b.truth")] {
        let exported = rows(d, &[&format!("{name}-clip.mp4")]).await;
        let shown = exported.iter().find(|r| r.pts_s >= -1e-9).expect("a frame");
        let truth = truth(&d.join(truth_file));
        starts.push(truth[&(shown.session, shown.rtp)]);
    }
    let apart = (starts[0] - starts[1]).abs();
    assert!(
        apart < 0.02,
        "first shown frames {apart} s apart by the truth"
    );
    let offset = beside["cameras"][1]["files"][0]["offset_to_reference_s"]
        .as_f64()
        .expect("offset");
    assert!((offset - (starts[1] - starts[0])).abs() < 1e-3, "{beside}");
    // a.mp4 and b.mp4 given as one camera: their files overlap, and the export says so.
    let mixed = recorder_command(&[
        "export",
        "--from",
        "+1s",
        "--duration",
        "2s",
        "-o",
        "mixed.mp4",
        "a.mp4",
        "b.mp4",
    ])
    .current_dir(d)
    .output()
    .await
    .expect("run");
    let stderr = String::from_utf8_lossy(&mixed.stderr);
    assert!(
        only_error(&stderr).contains("files of two cameras"),
        "{stderr}"
    );
    assert!(!d.join("mixed.mp4").exists() && !d.join("mixed.mp4.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_what_it_cannot_do_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/retina-record-0.2.2.mp4"
    );
    // A 0.2 recording (sample tables, no conn) exports, frame-accurate by its own timing.
    run_ok(
        d,
        &[
            "export",
            "--from",
            "+1.01s",
            "--duration",
            "2s",
            "-o",
            "old.mp4",
            fixture,
        ],
    )
    .await;
    let all = parse_rows(&run_ok(d, &["timing", fixture]).await);
    let first = all[0].capture_unix.expect("capture");
    let expected = within(&all, first + 1.01, first + 3.01);
    decoded_and_played(&d.join("old.mp4"), expected.len());
    let before = std::fs::read(d.join("old.mp4")).expect("read");
    for (args, says) in [
        (
            vec!["--from", "+1s", "--duration", "2s", "-o", "old.mp4"],
            "not overwriting",
        ),
        (
            vec!["--from", "+100s", "--duration", "2s", "-o", "late.mp4"],
            "no frames from",
        ),
        (
            vec!["--from", "+3s", "--to", "+1s", "-o", "back.mp4"],
            "before it starts",
        ),
        (
            vec!["--from", "noon", "--duration", "2s", "-o", "x.mp4"],
            "is not a time",
        ),
    ] {
        let mut all_args = vec!["export"];
        all_args.extend(args);
        all_args.push(fixture);
        let out = output(recorder_command(&all_args).current_dir(d)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all_args:?}");
        assert!(only_error(&stderr).contains(says), "{all_args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read(d.join("old.mp4")).expect("read"),
        before,
        "left as it was"
    );
    assert!(!d.join("late.mp4").exists() && !d.join("late.mp4.partial").exists());
}

/// A change of the camera's parameters inside the interval gives the export two sample
/// descriptions (both sizes decoded); B-frames (composition offsets) stay frame-accurate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_keep_parameter_changes_and_b_frames() {
    let mut changing = config("h264_aac.mp4");
    changing.clips.push(clip("h264_alt.mp4"));
    changing.speed = 2.0;
    for (camera, name) in [
        (changing, "changing"),
        (config("h264_bframes.mp4"), "bframes"),
    ] {
        let rig = Rig::new(camera).await;
        rig.record(&["--duration", "5"]).await.assert_success();
        let d = rig.dir.path();
        let all = rows(d, &["rec.mp4"]).await;
        // By capture time, which follows presentation order (receive time, with B-frames,
        // follows decode order); all but the ends, where the parameters change in between.
        let first = all[0].capture_unix.expect("capture");
        let last = all[all.len() - 1].capture_unix.expect("capture");
        let (from, to) = (first + 0.21, last - 0.19);
        let out = format!("{name}.mp4");
        let (f, t) = (rfc3339(from), rfc3339(to));
        run_ok(
            d,
            &["export", "--from", &f, "--to", &t, "-o", &out, "rec.mp4"],
        )
        .await;
        let expected = within(&all, from, to);
        let probed = ffprobe_video_frames(&d.join(&out)).expect("ffprobe is required here");
        assert_eq!(probed.len(), expected.len(), "{name}: frames shown");
        assert!(
            probed[0].pts_time.abs() < 1e-6,
            "{name}: {}",
            probed[0].pts_time
        );
        decoded_and_played(&d.join(&out), expected.len());
        if name == "changing" {
            let rec = retina_record::mp4::read::Recording::open(&d.join(&out)).expect("read");
            let video = rec.video_track().expect("video");
            assert_eq!(video.sample_entries.len(), 2, "both parameter sets");
            let widths: std::collections::BTreeSet<u32> = probed.iter().map(|f| f.width).collect();
            assert_eq!(widths.into_iter().collect::<Vec<_>>(), vec![320, 352]);
        }
    }
}
