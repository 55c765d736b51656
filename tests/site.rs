//! Many cameras in one process: a site file's cameras recorded together (started at the same
//! moment, stopped by the same signal), one camera's outage or refusal leaving the others
//! whole, the metrics endpoint scraped while they run, and bad site files refused with the
//! file and line before anything connects.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use retina_record::camera::{Camera, CameraClock, CameraConfig};
use retina_record::mp4::read::Recording;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::check::check_against_camera;
use crate::support::rig::{Finished, only_error};
use crate::support::timing::{rows, summary, timing_ok};
use crate::support::{Recorder, config, record};

/// One frame at 25 fps.
const FRAME: f64 = 0.04;

/// A camera whose clock runs `offset` seconds ahead of this machine's.
async fn camera(offset: f64) -> Camera {
    let mut c: CameraConfig = config("h264_aac.mp4");
    c.ntp_base = None;
    c.clock = CameraClock {
        offset,
        ..CameraClock::default()
    };
    Camera::start(c).await.expect("camera")
}

/// Writes `text` as `site.toml` in `dir`, readable by its owner only.
fn site_file(dir: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("site.toml");
    std::fs::write(&path, text).expect("write site file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// The recorder run to its end on `site`, with `extra` flags and `env`.
async fn run_site(dir: &Path, site: &Path, extra: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut args = vec!["--config", site.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    Recorder::spawn_with_env(dir, &args, env).wait().await
}

/// `GET /metrics` on `addr`: each sample's value by its name and labels as written
/// (`retina_record_frames_total{camera="a"}`).
async fn scrape(addr: &str) -> HashMap<String, f64> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text"),
        "{head}"
    );
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF: {body}"
    );
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn metric(m: &HashMap<String, f64>, name: &str, camera: &str) -> f64 {
    let key = format!("{name}{{camera=\"{camera}\"}}");
    *m.get(&key)
        .unwrap_or_else(|| panic!("no {key} in the scrape: {m:?}"))
}

/// The address `--metrics 127.0.0.1:0` was given, from the recorder's log line.
async fn metrics_addr(recorder: &Recorder, dir: &Path) -> String {
    recorder.wait_for_log("metrics at http://").await;
    let log = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("recorder-"))
        .map(|e| std::fs::read_to_string(e.path()).expect("log"))
        .expect("the recorder's log");
    let at = log.find("metrics at http://").expect("logged") + "metrics at http://".len();
    log[at..].split('/').next().expect("host:port").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cameras_record_together_and_one_outage_leaves_the_others_whole() {
    let offsets = [("a", 0.25), ("b", -0.1), ("c", 0.5)];
    let mut cams = Vec::new();
    for (_, offset) in offsets {
        cams.push(camera(offset).await);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text =
        "[defaults]\noutput = \"rec-{camera}.mp4\"\nreconnect-max-delay = \"1s\"\n".to_owned();
    for ((name, _), cam) in offsets.iter().zip(&cams) {
        text += &format!("\n[camera.{name}]\nurl = \"{}\"\n", cam.url());
    }
    let site = site_file(dir.path(), &text);
    let recorder = Recorder::spawn(
        dir.path(),
        &[
            "--config",
            site.to_str().expect("utf-8"),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let addr = metrics_addr(&recorder, dir.path()).await;
    for cam in &cams {
        cam.wait_sent(2.0).await;
    }
    let before = scrape(&addr).await;
    cams[1].drop_connections();
    cams[1].wait_session_sent(1, 2.0).await;
    for cam in &cams {
        cam.wait_sent(2.0).await;
    }
    let after = scrape(&addr).await;
    recorder.signal(libc::SIGTERM);
    let run = recorder.wait().await;
    run.assert_success();
    assert_eq!(
        run.stderr.matches("stopped after").count(),
        3,
        "a stop line per camera: {}",
        run.stderr
    );

    check_site_metrics(&offsets.map(|(n, _)| n), &before, &after);

    // Each camera in its own file, every frame it sent there; b's outage a gap in b's only.
    let mut firsts = Vec::new();
    let mut lasts = Vec::new();
    for ((name, _), cam) in offsets.iter().zip(&cams) {
        let file = format!("rec-{name}.mp4");
        let rec = Recording::open(&dir.path().join(&file)).expect("a file per camera");
        let (frames, _) = check_against_camera(&rec, cam);
        let s = summary(dir.path(), &[&file]).await;
        let gaps = s["whole"]["gaps"].as_array().expect("gaps").len();
        let sessions = s["whole"]["sessions"].as_u64().expect("sessions");
        eprintln!("{name}: {frames} frames, {sessions} session(s), {gaps} gap(s)");
        if *name == "b" {
            assert_eq!((sessions, gaps), (2, 1), "b reconnected once");
        } else {
            assert_eq!((sessions, gaps), (1, 0), "{name} has no gap");
        }
        let recv: Vec<f64> = rows(dir.path(), &[&file])
            .await
            .iter()
            .map(|r| r.recv_unix)
            .collect();
        firsts.push(recv.iter().copied().fold(f64::MAX, f64::min));
        lasts.push(recv.iter().copied().fold(f64::MIN, f64::max));
    }
    let spread = |v: &[f64]| {
        v.iter().copied().fold(f64::MIN, f64::max) - v.iter().copied().fold(f64::MAX, f64::min)
    };
    let (start_spread, stop_spread) = (spread(&firsts), spread(&lasts));
    eprintln!(
        "first frames within {:.1} ms, last frames within {:.1} ms",
        start_spread * 1e3,
        stop_spread * 1e3
    );
    assert!(start_spread < FRAME, "started together: {start_spread} s");
    assert!(
        stop_spread < 2.0 * FRAME,
        "stopped together: {stop_spread} s"
    );

    // The files line up: a's and c's clocks are 0.25 s apart.
    let (s, _) = timing_ok(
        dir.path(),
        &["--align", "--summary", "--json", "rec-a.mp4", "rec-c.mp4"],
    )
    .await;
    let s: serde_json::Value = serde_json::from_str(&s).expect("JSON");
    let relative = s["cameras"][1]["minus_first_camera_s"]
        .as_f64()
        .expect("relative offset");
    eprintln!("c minus a: {relative:+.4} s (+0.25)");
    assert!((relative - 0.25).abs() < 0.005, "{relative}");
    let (pairs, _) = timing_ok(dir.path(), &["--align", "rec-a.mp4", "rec-c.mp4"]).await;
    assert!(pairs.lines().count() > 100, "a pair per frame of a");
}

/// The metrics of the three cameras' site: counters moving for every camera, b's reconnect,
/// all connected.
fn check_site_metrics(names: &[&str], before: &HashMap<String, f64>, after: &HashMap<String, f64>) {
    for &name in names {
        let frames = |m| metric(m, "retina_record_frames_total", name);
        assert!(frames(after) > frames(before), "{name}: frames moved");
        let bytes = |m| metric(m, "retina_record_written_bytes_total", name);
        assert!(bytes(after) > bytes(before), "{name}: bytes moved");
        assert_eq!(metric(after, "retina_record_connected", name), 1.0);
        assert_eq!(metric(after, "retina_record_lost_packets_total", name), 0.0);
        let reconnects = metric(after, "retina_record_reconnects_total", name);
        assert_eq!(reconnects, if name == "b" { 1.0 } else { 0.0 }, "{name}");
        let age = metric(after, "retina_record_last_frame_age_seconds", name);
        assert!((0.0..1.0).contains(&age), "{name}: last frame {age} s ago");
    }
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("retina_record_disk_free_bytes{path=")),
        "disk free: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_cameras_share_the_multi_threaded_runtime() {
    // From 100 cameras, a site's runtime has a worker per CPU: the cameras' tasks then run on
    // several threads at once (each camera's directory checked, files named, hooks run).
    let cam = camera(0.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = "[defaults]\noutput = \"rec/{camera}.mp4\"\n".to_owned();
    for i in 0..100 {
        text += &format!("\n[camera.c{i:03}]\nurl = \"{}\"\n", cam.url());
    }
    let site = site_file(dir.path(), &text);
    let run = run_site(dir.path(), &site, &["--duration", "3"], &[]).await;
    run.assert_success();
    let mut frames = Vec::new();
    for i in 0..100 {
        let path = dir.path().join(format!("rec/c{i:03}.mp4"));
        let rec = Recording::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        frames.push(rec.video_timing().expect("timing").len());
    }
    let (least, most) = (frames.iter().min(), frames.iter().max());
    eprintln!("100 cameras: {least:?} to {most:?} frames each");
    assert!(frames.iter().all(|&n| n >= 60), "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_camera_fails_alone_and_sets_the_exit_status() {
    let good = camera(0.0).await;
    let mut locked = config("h264_aac.mp4");
    locked.credentials = Some(("admin".into(), "right".into()));
    let locked = Camera::start(locked).await.expect("camera");
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site_file(
        dir.path(),
        &format!(
            "[defaults]\noutput = \"{{camera}}.mp4\"\n\n[camera.good]\nurl = \"{}\"\n\n\
             [camera.locked]\nurl = \"{}\"\nusername = \"admin\"\npassword-env = \"LOCKED_PASS\"\n",
            good.url(),
            locked.url()
        ),
    );
    let run = run_site(
        dir.path(),
        &site,
        &["--duration", "3"],
        &[("LOCKED_PASS", "wrong-secret")],
    )
    .await;
    let error = run.error_exit(1);
    assert_eq!(
        error,
        "error: 1 of 2 cameras failed for good: locked (each one's error is above)"
    );
    assert!(!run.stderr.contains("wrong-secret"), "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("camera{name=locked}") && l.contains("the other cameras go on")),
        "{}",
        run.stderr
    );
    // The good camera recorded its whole three seconds.
    let rec = Recording::open(&dir.path().join("good.mp4")).expect("good's file");
    let (frames, secs) = check_against_camera(&rec, &good);
    assert!(secs > 2.8 && frames >= 70, "{frames} frames, {secs} s");
    assert!(!dir.path().join("locked.mp4").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_urls_are_cameras_named_for_their_hosts() {
    let (a, b) = (camera(0.0).await, camera(0.0).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let run = record(
        dir.path(),
        &[
            "--url",
            &a.url(),
            "--url",
            &b.url(),
            "--duration",
            "2",
            "--on-segment-complete",
            "echo \"$RETINA_RECORD_CAMERA\" >> cameras.txt",
            "{camera}.mp4",
        ],
    )
    .await;
    run.assert_success();
    // The same host twice: the second is told apart by its port.
    let first = "127.0.0.1".to_owned();
    let second = format!("127.0.0.1-{}", b.addr().port());
    for (name, cam) in [(&first, &a), (&second, &b)] {
        let rec = Recording::open(&dir.path().join(format!("{name}.mp4"))).expect("file");
        let (frames, _) = check_against_camera(&rec, cam);
        assert!(frames >= 45, "{name}: {frames}");
    }
    let mut hooked: Vec<String> = std::fs::read_to_string(dir.path().join("cameras.txt"))
        .expect("the hooks ran")
        .lines()
        .map(str::to_owned)
        .collect();
    hooked.sort();
    assert_eq!(hooked, [first, second]);

    // Without {camera}, the two would write one file.
    let refused = record(
        dir.path(),
        &["--url", &a.url(), "--url", &b.url(), "same.mp4"],
    )
    .await;
    let error = refused.error_exit(2);
    assert!(
        error.contains("would both write same.mp4: put {camera} in the output"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_env_never_reaches_a_hook() {
    let mut locked = config("h264_aac.mp4");
    locked.credentials = Some(("admin".into(), "s3cret-value".into()));
    let locked = Camera::start(locked).await.expect("camera");
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site_file(
        dir.path(),
        &format!(
            "[camera.door]\nurl = \"{}\"\nusername = \"admin\"\npassword-env = \"DOOR_PASS\"\n\
             output = \"door.mp4\"\non-segment-complete = \"env > hook-env.txt\"\n",
            locked.url()
        ),
    );
    let run = run_site(
        dir.path(),
        &site,
        &["--duration", "2"],
        &[("DOOR_PASS", "s3cret-value")],
    )
    .await;
    run.assert_success();
    let env = std::fs::read_to_string(dir.path().join("hook-env.txt")).expect("the hook ran");
    assert!(env.contains("RETINA_RECORD_CAMERA=door"), "{env}");
    assert!(!env.contains("s3cret-value"), "the password leaked: {env}");
    assert!(!env.contains("DOOR_PASS"), "{env}");
    assert!(!run.stderr.contains("s3cret-value"));
}

/// A site file that must be refused: exit 2, this one error line, and no connection made.
async fn refused(text: &str, extra: &[&str], expected: &str) {
    let cam = camera(0.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site_file(dir.path(), &text.replace("URL", &cam.url()));
    let run = run_site(dir.path(), &site, extra, &[]).await;
    let error = only_error(&run.stderr).replace(site.to_str().expect("utf-8"), "site.toml");
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    let matches = match expected.split_once('*') {
        Some((head, tail)) => error.starts_with(head) && error.ends_with(tail),
        None => error == expected,
    };
    assert!(matches, "expected {expected:?}, got {error:?}");
    assert!(
        cam.log().frames.is_empty() && cam.sent_secs() == 0.0,
        "nothing may connect before the file is accepted"
    );
}

cases!(refused {
    an_unknown_key_is_refused_with_its_line: (
        "[defaults]\nsegment-duraton = \"10m\"\n\n[camera.a]\nurl = \"URL\"\n",
        &[],
        "error: site.toml:2: segment-duraton: unknown key (keys are the flags' long names, and \
         output, password-env)",
    ),
    a_bad_value_is_refused_with_its_line_and_clap_s_reason: (
        "[camera.a]\nurl = \"URL\"\nkeep-for = \"forever\"\n",
        &[],
        "error: site.toml:3: keep-for: invalid value 'forever' for '--keep-for <DURATION>': *",
    ),
    a_switch_given_a_string_is_refused: (
        "[camera.a]\nurl = \"URL\"\nno-audio = \"yes\"\n",
        &[],
        "error: site.toml:3: no-audio: expected true or false",
    ),
    bad_toml_is_refused_with_its_line: (
        "[camera.a]\nurl = \"URL\"\ntransport = tcp\n",
        &[],
        "error: site.toml:3: *",
    ),
    a_camera_without_a_url_is_refused: (
        "[camera.a]\nurl = \"URL\"\n\n[camera.b]\ntransport = \"tcp\"\n",
        &[],
        "error: site.toml:4: camera `b`: no url",
    ),
    a_process_wide_flag_in_the_file_is_refused: (
        "[camera.a]\nurl = \"URL\"\nduration = \"10s\"\n",
        &[],
        "error: site.toml:3: duration: is the same for every camera: give --duration on the \
         command line",
    ),
    an_unknown_camera_for_only_is_refused: (
        "[camera.a]\nurl = \"URL\"\n",
        &["--only", "a,front"],
        "error: --only: no camera named `front` (there are: a)",
    ),
    a_recording_flag_beside_config_is_refused: (
        "[camera.a]\nurl = \"URL\"\n",
        &["--segment-duration", "10m"],
        "error: --segment-duration cannot be combined with --config: put it in the file's \
         [defaults] (the file is the whole configuration)",
    ),
    two_cameras_writing_one_file_are_refused: (
        "[defaults]\noutput = \"all.mp4\"\n\n[camera.a]\nurl = \"URL\"\n\n[camera.b]\nurl = \"URL\"\n",
        &[],
        "error: site.toml:7: cameras `a` and `b` would both write all.mp4: put {camera} in the \
         output",
    ),
    a_bad_camera_name_is_refused: (
        "[camera.\"front door\"]\nurl = \"URL\"\n",
        &[],
        "error: site.toml:1: camera name `front door`: use letters, digits, `-`, `_` and `.` \
         (not first)",
    ),
    an_unset_password_env_is_refused: (
        "[camera.a]\nurl = \"URL\"\nusername = \"u\"\npassword-env = \"NO_SUCH_VARIABLE_HERE\"\n",
        &[],
        "error: site.toml:4: password-env: the environment has no NO_SUCH_VARIABLE_HERE",
    ),
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_a_world_readable_site_file_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let cam = camera(0.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site_file(
        dir.path(),
        &format!(
            "[camera.a]\nurl = \"{}\"\nusername = \"u\"\npassword = \"hunter2\"\n",
            cam.url()
        ),
    );
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = run_site(dir.path(), &site, &["--duration", "1"], &[]).await;
    let error = run.error_exit(2);
    assert!(
        error.ends_with(
            "site.toml:4: password: every user can read this file: `chmod o-r` it, or use \
             password-file or password-env"
        ),
        "{error}"
    );
    assert!(!run.stderr.contains("hunter2"));
    // A password in the URL is a password in the file too.
    let url = cam.url().replace("rtsp://", "rtsp://u:hunter2@");
    std::fs::write(&site, format!("[camera.a]\nurl = \"{url}\"\n")).expect("write");
    let run = run_site(dir.path(), &site, &["--duration", "1"], &[]).await;
    let error = run.error_exit(2);
    assert!(
        error.ends_with(
            "site.toml:2: url: holds a password, and every user can read this file: `chmod o-r` \
             it, or use password-file or password-env"
        ),
        "{error}"
    );
    assert!(!run.stderr.contains("hunter2"));
    assert!(cam.log().frames.is_empty());
}
