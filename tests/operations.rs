//! Running the recorder as an operator does: shell completions and the manual page from the
//! binary, and the recording piped to another program.

use std::process::Stdio;
use std::time::Duration;

use retina_record::mp4::read::Recording;
use tokio::io::AsyncWriteExt as _;

use crate::support::Rig;
use crate::support::check::check_against_camera;
use crate::support::rig::{only_error, recorder_command};
use crate::support::tools::{assert_probe_matches, ffprobe_video, probe_json};

async fn output_of(args: &[&str]) -> std::process::Output {
    crate::support::lines::output(&mut recorder_command(args)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_valid_bash_and_the_man_page_renders() {
    let script = output_of(&["completions", "bash"]).await;
    assert!(script.status.success());
    let mut check = tokio::process::Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut stdin = check.stdin.take().expect("stdin");
    stdin.write_all(&script.stdout).await.expect("write");
    drop(stdin);
    assert!(check.wait().await.expect("bash -n").success(), "bash -n");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = output_of(&["completions", shell]).await;
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let bad = output_of(&["completions", "tcsh"]).await;
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    let man = output_of(&["man"]).await;
    assert!(man.status.success());
    let page = String::from_utf8(man.stdout).expect("utf-8");
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..40]
    );
    // As the README tells users to read it (man-db, which .ci/run installs).
    let rendered = bash("MANWIDTH=100 retina-record man | man -l - | col -b");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("--segment-duration"), "{text}");
    assert!(
        text.contains("retina-record timing"),
        "the subcommands' pages too"
    );
}

fn bin_dir() -> String {
    std::path::Path::new(env!("CARGO_BIN_EXE_retina-record"))
        .parent()
        .expect("bin dir")
        .display()
        .to_string()
}

/// Runs `script` in bash with the recorder on PATH; its output.
fn bash(script: &str) -> std::process::Output {
    let out = std::process::Command::new("bash")
        .args(["-c", script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("bash");
    crate::support::lines::assert_sentences(&String::from_utf8_lossy(&out.stderr), script);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_piped_to_ffprobe_and_read_back() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    // Through a real pipe, as a user runs it.
    let out = bash(&format!(
        "set -o pipefail; retina-record --url {url} --duration 3 - 2>/dev/null | ffprobe -v \
         error -count_frames -select_streams v -show_entries stream=nb_read_frames -of \
         csv=p=0 -"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probed: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ffprobe's frame count");
    assert!((60..=80).contains(&probed), "{probed} frames in 3 s");

    // The bytes themselves: the same fragments and timing SEI as a file (from a camera of
    // its own, whose log holds this recording's frames only).
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    let run = crate::support::lines::output(
        recorder_command(&["--url", &url, "--duration", "3", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .await;
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("to stdout"), "{stderr}");
    let rec = Recording::from_bytes(run.stdout).expect("read the stream");
    assert!(rec.mfra.is_none(), "no index on a pipe");
    let (frames, _) = check_against_camera(&rec, &rig.cam);
    assert!(frames >= 60, "{frames}");
    assert!(!rig.dir.path().join("-").exists() && !rig.dir.path().join("-.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_closed_early_is_a_clean_stop() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    let out = bash(&format!(
        "retina-record --url {url} - | head -c 100000 >/dev/null; echo ${{PIPESTATUS[0]}}"
    ));
    let status = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.trim(), "0", "{stderr}");
    assert!(
        stderr.contains("the reader closed stdout: stopping"),
        "{stderr}"
    );

    let refused = crate::support::lines::output(
        recorder_command(&["--url", &url, "--segment-duration", "1m", "-"]).stdout(Stdio::piped()),
    )
    .await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        only_error(&stderr),
        "error: --segment-duration is for files: OUT `-` writes one stream to stdout"
    );
}

/// A notification from the recorder, and when it came.
struct Notified {
    at: std::time::Instant,
    text: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_does_not_crash_the_recorder() {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors; each is owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read); // the log's reader has gone, as with `2>&1 | head -0`
    let status = recorder_command(&["--url", "rtsp://127.0.0.1:1/", "--give-up-after", "1s"])
        .stderr(Stdio::from(write))
        .stdout(Stdio::null())
        .status()
        .await
        .expect("run");
    assert_eq!(
        status.code(),
        Some(1),
        "the failure's own status, not an abort: {status}"
    );
}

/// Reads `socket` until `until`, gathering what arrives.
async fn gather(
    socket: &tokio::net::UnixDatagram,
    into: &mut Vec<Notified>,
    until: std::time::Instant,
) {
    let mut buf = vec![0; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(until.into(), socket.recv(&mut buf)).await {
        into.push(Notified {
            at: std::time::Instant::now(),
            text: String::from_utf8_lossy(&buf[..n]).into_owned(),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_after_the_first_fragment_status_watchdog_and_stopping() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let path = rig.dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&path).expect("bind");
    let rec = rig.spawn_with_env(
        &[],
        &[
            ("NOTIFY_SOCKET", path.to_str().expect("utf-8")),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let started = std::time::Instant::now();
    let mut heard = Vec::new();
    let mut buf = vec![0; 4096];
    // READY=1 comes once the first fragment is on disk.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), socket.recv(&mut buf))
            .await
            .expect("READY=1 within 20 s")
            .expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let ready = text.lines().any(|l| l == "READY=1");
        heard.push(Notified {
            at: std::time::Instant::now(),
            text,
        });
        if ready {
            break;
        }
    }
    let partial = Recording::open(&rig.partial()).expect("the .partial reads at READY");
    assert!(
        partial.fragments >= 1,
        "READY=1 before the first fragment was durable"
    );
    gather(
        &socket,
        &mut heard,
        std::time::Instant::now() + Duration::from_secs(4),
    )
    .await;
    let pets: Vec<std::time::Instant> = heard
        .iter()
        .filter(|n| n.text.lines().any(|l| l == "WATCHDOG=1"))
        .map(|n| n.at)
        .collect();
    assert!(
        pets.len() >= 4,
        "{} WATCHDOG=1 in {:?}",
        pets.len(),
        started.elapsed()
    );
    for w in pets.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap > Duration::from_millis(700) && gap < Duration::from_millis(1300),
            "WATCHDOG=1 every half of WATCHDOG_USEC (1 s): {gap:?}"
        );
    }
    assert!(
        heard
            .iter()
            .any(|n| n.text.contains("STATUS=") && n.text.contains("frames")),
        "STATUS= with the counters"
    );

    // The camera stalls: no fragment becomes durable, and the petting stops.
    rig.cam.stall(Duration::from_secs(60));
    let stalled = std::time::Instant::now();
    let mut after = Vec::new();
    gather(&socket, &mut after, stalled + Duration::from_secs(6)).await;
    let late_pets: Vec<Duration> = after
        .iter()
        .filter(|n| n.text.lines().any(|l| l == "WATCHDOG=1"))
        .map(|n| n.at - stalled)
        .collect();
    assert!(
        late_pets.iter().all(|&t| t < Duration::from_millis(3500)),
        "WATCHDOG=1 after the stall: {late_pets:?}"
    );
    assert!(
        after.iter().any(|n| n.text.contains("STATUS=")),
        "STATUS= goes on"
    );

    rec.signal(libc::SIGTERM);
    let mut end = Vec::new();
    gather(
        &socket,
        &mut end,
        std::time::Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert!(
        end.iter()
            .any(|n| n.text.lines().any(|l| l == "STOPPING=1")),
        "STOPPING=1 on SIGTERM"
    );
    rec.wait().await.assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_the_journal_carry_priorities_and_no_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("journal.log");
    // stderr is the file JOURNAL_STREAM names, as systemd sets it for StandardError=journal.
    let script = format!(
        "cd {}; exec 2>{log}; JOURNAL_STREAM=$(stat -c '%d:%i' {log}) retina-record --url \
         rtsp://127.0.0.1:1/ --no-reconnect out.mp4",
        dir.path().display(),
        log = log.display()
    );
    let out = bash(&script);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("<6> INFO "), "{text}");
    assert_eq!(
        lines.last().copied(),
        Some("<3>error: camera 127.0.0.1:1: cannot connect: Connection refused (os error 111)")
    );
    assert!(!text.contains('\x1b'), "no colours");
    assert!(
        lines.iter().all(|l| l.starts_with('<')),
        "each line starts with its priority, no timestamp: {text}"
    );
    // Elsewhere, as before: timestamps, no prefix.
    let plain = bash(&format!(
        "cd {}; retina-record --url rtsp://127.0.0.1:1/ --no-reconnect out.mp4",
        dir.path().display()
    ));
    let text = String::from_utf8_lossy(&plain.stderr);
    assert!(
        text.starts_with(&jiff::Zoned::now().year().to_string()),
        "{text}"
    );
}

/// The shipped unit passes `systemd-analyze verify`, with its ExecStart pointed at the binary
/// under test (verify checks that the program exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_unit_verifies() {
    let unit = crate::deploy::verify_unit("retina-record@.service", "retina-record@front.service");
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_line_on_a_terminal_and_none_elsewhere() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    let dir = rig.dir.path().display();
    // script(1) runs the recorder on a pseudo-terminal and copies what it draws.
    let out = bash(&format!(
        "cd {dir} && script -qfec 'retina-record --url {url} --duration 4 tty.mp4' /dev/null"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(
        drawn.contains("\x1b[2K"),
        "the line is redrawn in place: {drawn}"
    );
    let counts: Vec<u64> = drawn
        .split(" frames")
        .filter_map(|before| before.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        counts.windows(2).any(|w| w[1] > w[0]) && counts.last() >= Some(&50),
        "the frame count climbs: {counts:?}"
    );
    assert!(drawn.contains("tty.mp4") && drawn.contains("fps") && drawn.contains("durable"));
    assert!(
        drawn.contains("stopped after"),
        "and the summary at the stop"
    );

    // Not a terminal: plain lines, no control characters.
    let run = rig.record(&["--duration", "2"]).await;
    run.assert_success();
    assert!(
        !run.stderr.contains('\x1b') && !run.stderr.contains('\r'),
        "{:?}",
        run.stderr
    );
    run.assert_says("stopped after 2.");
    run.assert_says("(--duration reached): ");
    // --quiet: no line on a terminal either, and only the summary at info.
    let quiet = bash(&format!(
        "cd {dir} && script -qfec 'retina-record --quiet --url {url} --duration 2 q.mp4' \
         /dev/null"
    ));
    let drawn = String::from_utf8_lossy(&quiet.stdout);
    assert!(
        !drawn.contains("\x1b[2K") && !drawn.contains("fps"),
        "{drawn}"
    );
    assert_eq!(drawn.lines().count(), 1, "{drawn}");
    assert!(drawn.contains("stopped after"), "{drawn}");
}

/// `retina-record probe` on the test camera, for three clips: what ffprobe says of each file,
/// in JSON and in text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_what_the_test_camera_serves() {
    for clip in ["h264_aac.mp4", "h264_bframes.mp4", "h265_aac.mp4"] {
        // Its NTP clock 250 ms ahead of this machine's.
        let mut camera = crate::support::config(clip);
        camera.ntp_base = None;
        camera.clock.offset = 0.25;
        let rig = Rig::new(camera).await;
        let url = rig.cam.url();
        let report = probe_json(&[&url]).await;
        assert_probe_matches(
            &report,
            &ffprobe_video(&crate::support::rig::clip_path(clip)),
        );
        assert_eq!(report["transport"], "tcp");
        let video = &report["streams"][0];
        let reports = video["sender_reports"].as_u64().expect("count");
        assert!((3..=4).contains(&reports), "one a second for 3 s: {report}");
        let interval = video["sender_report_interval_s"]
            .as_f64()
            .expect("interval");
        assert!((interval - 1.0).abs() < 0.05, "{interval}");
        let offset = report["camera_minus_receiver_s"].as_f64().expect("offset");
        assert!(
            (offset - 0.25).abs() < 0.1,
            "the camera's clock is 250 ms ahead: {offset}"
        );
    }
    let rig = Rig::clip("h264_aac.mp4").await;
    let out = crate::support::lines::output(&mut recorder_command(&[
        "probe",
        "--duration",
        "2",
        &rig.cam.url(),
    ]))
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("stream 0: video h264/90000: recording stream 0"),
        "{text}"
    );
    assert!(
        text.contains("320x240, avc1.4D400D Main level 1.3, 25.00 fps, GOP 25 frames, no B-frames"),
        "{text}"
    );
    assert!(text.contains("16000 Hz, 1 channel(s)"), "{text}");
    let refused =
        crate::support::lines::output(&mut recorder_command(&["probe", "rtsp://127.0.0.1:1/x"]))
            .await;
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        only_error(&String::from_utf8_lossy(&refused.stderr)),
        "error: camera 127.0.0.1:1: cannot connect: Connection refused (os error 111)"
    );
}
