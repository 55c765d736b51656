//! A lab's recording as it is made: four built-in cameras whose clocks are off by known,
//! different amounts, drift differently, one stepping its NTP clock and another restarting,
//! recorded together from one site file in 10-s segments for two minutes; then `timing` over
//! the four cameras' segment sets, checked against the truth files the cameras wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use retina_record::camera::{Camera, CameraClock, CameraConfig};

use crate::support::timing::{Row, parse_rows, timing_ok, truth_sent};
use crate::support::tools::installed;
use crate::support::{Recorder, Rig, config};

/// The venv with pandas and matplotlib that `.ci/run` makes.
const PANDAS_PYTHON: &str = "/opt/retina-record-pandas/bin/python";

/// A camera of the lab: its name, clock offset (s), RTP drift (ppm), NTP step (by, at).
struct Lab {
    name: &'static str,
    offset: f64,
    drift_ppm: f64,
    step: Option<(f64, f64)>,
}

const LAB: [Lab; 4] = [
    Lab {
        name: "a",
        offset: 0.25,
        drift_ppm: 0.0,
        step: None,
    },
    Lab {
        name: "b",
        offset: -0.1,
        drift_ppm: 50.0,
        step: None,
    },
    Lab {
        name: "c",
        offset: 0.0,
        drift_ppm: -80.0,
        step: Some((0.2, 30.0)),
    },
    Lab {
        name: "d",
        offset: 0.04,
        drift_ppm: 0.0,
        step: None,
    },
];
/// Camera `b` restarts (its connection dropped) this far in.
const RESTART_AT: f64 = 40.0;

/// One frame of a truth file: capture time by the camera's clock, and when it was sent.
type Truth = HashMap<(usize, u32), (f64, f64)>;

/// This machine's clock at each recorded frame's capture (by frame number): the camera's
/// time minus its offset, and minus its step once it has stepped.
fn host_times(lab: &Lab, rows: &[Row], truth: &Truth) -> Vec<f64> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.frame, i);
            let &(capture, sent) = truth
                .get(&(r.session, r.rtp))
                .unwrap_or_else(|| panic!("{}: frame {} was never sent", lab.name, r.frame));
            let stepped = lab
                .step
                .filter(|&(by, _)| capture - sent > lab.offset + by / 2.0)
                .map_or(0.0, |(by, _)| by);
            capture - lab.offset - stepped
        })
        .collect()
}

async fn start(lab: &Lab, truth: &Path, seed: u64) -> Camera {
    let mut c: CameraConfig = config("h264_aac.mp4");
    c.ntp_base = None;
    c.truth = Some(truth.to_owned());
    c.clock = CameraClock {
        offset: lab.offset,
        rtp_drift_ppm: lab.drift_ppm,
        ntp_step: lab.step,
        send_jitter: Duration::from_millis(2),
        sr_jitter: Duration::ZERO,
        seed,
    };
    Camera::start(c).await.expect("camera")
}

/// Records the lab for two minutes from one site file; returns the site file.
async fn record(dir: &Path, cams: &[Camera]) -> PathBuf {
    let mut text = "[defaults]\noutput = \"{camera}/%Y%m%d-%H%M%S.mp4\"\n\
                    segment-duration = \"10s\"\nreconnect-max-delay = \"1s\"\n"
        .to_owned();
    for (lab, cam) in LAB.iter().zip(cams) {
        text += &format!("\n[camera.{}]\nurl = \"{}\"\n", lab.name, cam.url());
    }
    let site = dir.join("site.toml");
    std::fs::write(&site, text).expect("site file");
    let site_arg = site.to_str().expect("utf-8");
    let recorder = Recorder::spawn(dir, &["--config", site_arg, "--duration", "120"]);
    cams[1].wait_sent(RESTART_AT).await;
    cams[1].drop_connections();
    recorder
        .wait_within(Duration::from_secs(120))
        .await
        .assert_success();
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_segmented_cameras_line_up_as_their_truth_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let truth_files: Vec<PathBuf> = LAB
        .iter()
        .map(|l| d.join(format!("truth-{}.csv", l.name)))
        .collect();
    let mut cams = Vec::new();
    for (i, (lab, truth)) in LAB.iter().zip(&truth_files).enumerate() {
        cams.push(start(lab, truth, 10 + i as u64).await);
    }
    let site = record(d, &cams).await;
    let site = site.to_str().expect("utf-8");
    let mut hosts = Vec::new();
    for (lab, truth) in LAB.iter().zip(&truth_files) {
        let segments = std::fs::read_dir(d.join(lab.name))
            .expect("camera dir")
            .count();
        assert!(
            segments >= 11,
            "{}: {segments} segments of 10 s in 2 min",
            lab.name
        );
        let rows = parse_rows(
            &timing_ok(d, &["--config", site, "--only", lab.name])
                .await
                .0,
        );
        hosts.push(host_times(lab, &rows, &truth_sent(truth)));
    }
    check_pairs(d, site, &hosts).await;
    check_summaries(d, site).await;
    check_mixups(d, hosts[0].len()).await;
}

/// A segment given twice (a copy under another name) is read once, and two cameras' files
/// given as one camera are said to overlap; each in one line.
async fn check_mixups(d: &Path, frames_of_a: usize) {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(d.join("a"))
        .expect("a")
        .map(|e| e.expect("entry").path())
        .collect();
    segments.sort();
    std::fs::copy(&segments[3], d.join("copy.mp4")).expect("copy");
    let (rows, stderr) = timing_ok(d, &["a", "copy.mp4"]).await;
    assert_eq!(
        parse_rows(&rows).len(),
        frames_of_a,
        "the copy's frames once"
    );
    assert!(
        stderr.contains("copy.mp4 holds the same frames as"),
        "{stderr}"
    );
    let (_, stderr) = timing_ok(d, &["a", "d"]).await;
    let overlaps = stderr.lines().filter(|l| l.contains(" overlaps ")).count();
    assert!(overlaps >= 1, "{stderr}");
    assert!(
        stderr.lines().count() <= 4,
        "a few lines and a count: {stderr}"
    );
}

/// `--align --align-by corrected` pairs each of `a`'s frames with the frame of each other
/// camera nearest by true time (or one as near, to within the millisecond the offsets are
/// told to).
async fn check_pairs(d: &Path, site: &str, hosts: &[Vec<f64>]) {
    let (pairs, _) = timing_ok(d, &["--config", site, "--align", "--align-by", "corrected"]).await;
    let mut reader = csv::Reader::from_reader(pairs.as_bytes());
    let header = reader.headers().expect("header").clone();
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(
        records.len(),
        hosts[0].len(),
        "a row per frame of the first camera"
    );
    for (k, lab) in LAB.iter().enumerate().skip(1) {
        let mut sorted: Vec<(f64, usize)> = hosts[k].iter().copied().zip(0..).collect();
        sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
        let (mut exact, mut as_near) = (0, 0);
        for r in &records {
            let a: usize = r[col("a_frame")].parse().expect("a_frame");
            let chosen: usize = r[col(&format!("{}_frame", lab.name))]
                .parse()
                .expect("frame");
            let ta = hosts[0][a];
            let i = sorted.partition_point(|x| x.0 < ta);
            let best = [i.checked_sub(1), Some(i)]
                .into_iter()
                .flatten()
                .filter_map(|j| sorted.get(j))
                .min_by(|x, y| (x.0 - ta).abs().total_cmp(&(y.0 - ta).abs()))
                .expect("frames");
            if best.1 == chosen {
                exact += 1;
            } else if (hosts[k][chosen] - ta).abs() - (best.0 - ta).abs() < 1e-3 {
                as_near += 1;
            }
        }
        let n = records.len();
        eprintln!(
            "{}: {exact} of {n} paired with the truth's nearest frame, {as_near} with one as \
             near to within 1 ms",
            lab.name
        );
        assert!(
            (exact + as_near) * 1000 >= n * 999,
            "{}: {exact} + {as_near} of {n}",
            lab.name
        );
    }
}

/// The lined-up summary tells each camera's offsets (per interval between steps) within 1 ms,
/// its RTP drift, its clock's drift against the first camera's (none: all follow this
/// machine's) and the frames its restart left unpaired; the stepped and restarted cameras'
/// own summaries tell the step, the sessions, and files whose report counts add up.
async fn check_summaries(d: &Path, site: &str) {
    let args = [
        "--config",
        site,
        "--align",
        "--summary",
        "--json",
        "--align-by",
        "corrected",
    ];
    let s: serde_json::Value = serde_json::from_str(&timing_ok(d, &args).await.0).expect("JSON");
    for (lab, c) in LAB.iter().zip(s["cameras"].as_array().expect("cameras")) {
        let offsets: Vec<f64> = c["clock_offsets"]
            .as_array()
            .expect("offsets")
            .iter()
            .map(|o| o["camera_minus_receiver_s"].as_f64().expect("offset"))
            .collect();
        let want: Vec<f64> = match lab.step {
            Some((by, _)) => vec![lab.offset, lab.offset + by],
            None => vec![lab.offset],
        };
        eprintln!("{}: offsets {offsets:?} (truth {want:?}), {c}", lab.name);
        assert_eq!(offsets.len(), want.len(), "{}: {c}", lab.name);
        for (got, want) in offsets.iter().zip(&want) {
            assert!(
                (got - want).abs() < 1e-3,
                "{}: {got} s, truth {want} s",
                lab.name
            );
        }
        let ppm = c["rtp_clock_error_ppm"].as_f64().expect("RTP ppm");
        assert!((ppm - lab.drift_ppm).abs() < 5.0, "{}: {ppm} ppm", lab.name);
        let drift = c["clock_drift_ppm"].as_f64().expect("clock drift");
        assert!(
            drift.abs() < 5.0,
            "{}: the clock drifts {drift} ppm",
            lab.name
        );
    }
    let unpaired = |k: usize| {
        s["cameras"][k]["unpaired_frames"]
            .as_u64()
            .expect("unpaired")
    };
    assert!(
        unpaired(1) >= 10,
        "b's restart leaves a gap: {}",
        s["cameras"][1]
    );
    assert!(unpaired(3) < unpaired(1), "{s}");

    let c: serde_json::Value = serde_json::from_str(
        &timing_ok(d, &["--config", site, "--only", "c", "--summary", "--json"])
            .await
            .0,
    )
    .expect("JSON");
    let steps = c["whole"]["ntp_steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{c}");
    assert!(
        (steps[0]["by_s"].as_f64().expect("by") - 0.2).abs() < 1e-3,
        "{c}"
    );
    assert!(
        c["whole"]["camera_minus_receiver_s"].is_null(),
        "two offsets, not one: {c}"
    );
    adds_up(&c);
    let b: serde_json::Value = serde_json::from_str(
        &timing_ok(d, &["--config", site, "--only", "b", "--summary", "--json"])
            .await
            .0,
    )
    .expect("JSON");
    assert_eq!(b["whole"]["sessions"].as_u64(), Some(2), "the restart: {b}");
    adds_up(&b);
}

/// The files' sender-report counts add up to the whole recording's.
fn adds_up(s: &serde_json::Value) {
    let files = s["files"].as_array().expect("files");
    assert!(files.len() >= 11, "{s}");
    for key in ["received", "used", "outliers"] {
        let sum: u64 = files
            .iter()
            .map(|f| f["sender_reports"][key].as_u64().expect("count"))
            .sum();
        assert_eq!(
            Some(sum),
            s["whole"]["sender_reports"][key].as_u64(),
            "{key}"
        );
    }
}

/// `docs/timing-output.md`'s Python example, run as a lab would: the CSV of a recording whose
/// camera's clock is 250 ms ahead loaded into pandas, plotted, and the offset read off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_pandas_example_plots_a_recording() {
    let have = std::process::Command::new(PANDAS_PYTHON)
        .args(["-c", "import pandas, matplotlib"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed(have, "pandas and matplotlib (the venv .ci/run makes)") {
        return;
    }
    let mut c: CameraConfig = config("h264_aac.mp4");
    c.ntp_base = None;
    c.clock.offset = 0.25;
    let rig = Rig::new(c).await;
    rig.record(&["--duration", "4"]).await.assert_success();
    let dir = rig.dir.path();
    let (csv, _) = timing_ok(dir, &["rec.mp4"]).await;
    std::fs::write(dir.join("front.csv"), csv).expect("front.csv");
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/timing-output.md"
    ))
    .expect("the page");
    let script = page
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block");
    std::fs::write(dir.join("plot.py"), script).expect("plot.py");
    let out = std::process::Command::new(PANDAS_PYTHON)
        .args(["plot.py", "front.csv"])
        .current_dir(dir)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.join("front.png")).expect("front.png");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let offset: f64 = stdout
        .rsplit("clock is ")
        .next()
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {stdout}"));
    assert!((offset - 0.25).abs() < 0.005, "{stdout}");
}
