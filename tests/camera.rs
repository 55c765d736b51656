//! `retina-record camera` and `retina-record demo`, run as a user would: the shipped camera
//! must be readable by ffprobe, GStreamer's rtspsrc and retina-record itself, over TCP and UDP.

use std::process::Stdio;
use std::time::Duration;

use retina_record::mp4::read::Recording;

use crate::support::rig::recorder_command;
use crate::support::{self, tools};

/// `retina-record camera` on a free loopback port; its URL from the first line of stdout.
struct CameraProcess {
    child: tokio::process::Child,
    url: String,
}

impl CameraProcess {
    async fn start() -> CameraProcess {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[&str]) -> CameraProcess {
        let mut cmd = recorder_command(&["camera", "--listen", "127.0.0.1:0"]);
        cmd.args(extra).stderr(Stdio::null());
        let (child, url) = support::rig::spawn_announcing(cmd, "retina-record camera").await;
        assert!(
            url.starts_with("rtsp://127.0.0.1:") && url.ends_with("/demo"),
            "{url}"
        );
        CameraProcess { child, url }
    }

    /// Ctrl-C stops it cleanly.
    async fn stop(mut self) {
        support::rig::signal(&self.child, libc::SIGINT);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("camera stopped")
            .expect("wait");
        assert_eq!(status.code(), Some(0));
    }
}

/// Runs `check(url, transport)` on `retina-record camera` over TCP, then UDP, if `tool` is
/// installed.
async fn over_tcp_and_udp(tool: &str, check: impl AsyncFn(&str, &str)) {
    if !support::have_tool(tool) {
        return;
    }
    let cam = CameraProcess::start().await;
    for transport in ["tcp", "udp"] {
        check(&cam.url, transport).await;
    }
    cam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reads_the_camera_over_tcp_and_udp() {
    over_tcp_and_udp("ffprobe", async |url, transport| {
        let streams = tools::ffprobe_streams(url, transport).await;
        assert_eq!(streams, ["h264,320,240", "aac"], "{transport}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtspsrc_decodes_the_camera_over_tcp_and_udp() {
    over_tcp_and_udp("gst-launch-1.0", async |url, transport| {
        tools::gstreamer_decodes(url, transport, "h264").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_record_records_the_camera_over_tcp_and_udp_at_once() {
    let cam = CameraProcess::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Two clients at the same time, one per transport.
    let runs = ["tcp", "udp"].map(|t| {
        let out = format!("{t}.mp4");
        support::Recorder::spawn(
            dir.path(),
            &["--url", &cam.url, "--transport", t, "--duration", "3", &out],
        )
    });
    for (run, t) in runs.into_iter().zip(["tcp", "udp"]) {
        let done = run.wait().await;
        assert!(done.status.success(), "{t}: {}", done.stderr);
        let rec = Recording::open(&dir.path().join(format!("{t}.mp4"))).expect("recording");
        let timing = rec.video_timing().expect("timing");
        assert!(timing.len() >= 70, "{t}: {} frames in 3 s", timing.len());
        assert!(timing.iter().all(|t| t.frames().count() == 1));
    }
    cam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_records_ten_seconds_with_timing_on_every_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = crate::support::lines::output(
        recorder_command(&["demo", "demo.mp4"]).current_dir(dir.path()),
    )
    .await;
    let stdout = tools::stdout_of_success(&out, "retina-record demo");
    assert!(stdout.contains("Wrote demo.mp4: 10.0 s"), "{stdout}");
    assert!(
        stdout.contains("ffprobe"),
        "says how to look at it: {stdout}"
    );

    let path = dir.path().join("demo.mp4");
    let rec = Recording::open(&path).expect("demo recording");
    let timing = rec.video_timing().expect("timing");
    assert!(
        (245..=255).contains(&timing.len()),
        "{} frames",
        timing.len()
    );
    assert!(timing.iter().all(|t| t.frames().count() == 1));
    assert!(stdout.contains(&format!(
        "{} video frames ({} with timing data)",
        timing.len(),
        timing.len()
    )));
    assert!(timing.iter().any(|t| t.sender_reports().next().is_some()));
    if let Some(decoded) = support::ffmpeg_decoded_video_frames(&path) {
        assert_eq!(
            decoded as usize,
            timing.len(),
            "ffmpeg decodes the demo frame for frame"
        );
    }
}

/// Every codec the camera serves, read by third parties: ffprobe names the streams, and
/// GStreamer depacketizes (RFC 6184 / RFC 7798) and decodes the video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_parties_read_every_codec_the_camera_serves() {
    if !support::have_tool("ffprobe") || !support::have_tool("gst-launch-1.0") {
        return;
    }
    for (video, audio, ffprobe_says) in [
        ("h265", "aac", ["hevc,320,240", "aac"]),
        ("h265", "pcmu", ["hevc,320,240", "pcm_mulaw"]),
        ("h264", "pcma", ["h264,320,240", "pcm_alaw"]),
        ("h264", "l16", ["h264,320,240", "pcm_s16be"]),
    ] {
        let cam = CameraProcess::start_with(&["--video", video, "--audio", audio]).await;
        let streams = tools::ffprobe_streams(&cam.url, "tcp").await;
        assert_eq!(streams, ffprobe_says, "{video}+{audio}");
        tools::gstreamer_decodes(&cam.url, "tcp", video).await;
        cam.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_refuses_clips_it_does_not_have() {
    for (flag, value) in [("--video", "vp8"), ("--audio", "opus")] {
        let out = crate::support::lines::output(&mut recorder_command(&[
            "camera",
            "--listen",
            "127.0.0.1:0",
            flag,
            value,
        ]))
        .await;
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = support::rig::only_error(&stderr);
        assert!(
            error.contains(&format!("invalid value '{value}'")),
            "{error}"
        );
        assert!(stderr.contains("possible values"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_drops_a_junk_client_and_keeps_serving() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let cam = CameraProcess::start().await;
    let addr = cam
        .url
        .trim_start_matches("rtsp://")
        .trim_end_matches("/demo")
        .to_owned();
    let mut junk = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // Endless "headers": the camera must hang up rather than buffer them.
    let chunk = vec![b'x'; 8192];
    let mut closed = false;
    for _ in 0..64 {
        if junk.write_all(&chunk).await.is_err() {
            closed = true;
            break;
        }
    }
    if !closed {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), junk.read(&mut buf))
            .await
            .expect("camera hung up in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "camera answered junk");
    }
    // A real client still gets served.
    let dir = tempfile::tempdir().expect("tempdir");
    let run = support::record(dir.path(), &["--url", &cam.url, "--duration", "1", "r.mp4"]).await;
    run.assert_success();
    cam.stop().await;
}
