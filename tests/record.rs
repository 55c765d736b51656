//! Records from the camera over real loopback sockets and checks the files with the
//! project's reader and with ffmpeg/ffprobe.

use std::time::Duration;

use retina_record::mp4::read::Recording;

use crate::support::{self, Recorder, Rig, record};

/// 10 s over `transport`: every frame there and decodable, timing on each, SRs as they were.
async fn ten_seconds(transport: &str) {
    let rig = Rig::clip("h264_aac.mp4").await;
    let run = rig
        .record(&["--duration", "10", "--transport", transport])
        .await;
    run.assert_success();
    assert!(!rig.partial().exists());

    let (rec, frames, secs) = rig.checked(&rig.out, "read recording");
    assert!(!rec.truncated);
    assert!(rec.mfra.is_some(), "finished file has an mfra index");
    assert!((9.0..=10.5).contains(&secs), "{secs} s of video");
    assert!(frames >= 225, "{frames} frames in {secs} s at 25 fps");

    // Audio: present, continuous, as long as the video.
    let audio = rec.audio_track().expect("audio track");
    let audio_secs = rec.track_duration_secs(audio);
    assert!(
        (audio_secs - secs).abs() < 0.2,
        "audio {audio_secs} s vs video {secs} s"
    );

    // The header carries real durations and a real creation time.
    let now_mp4 = jiff::Timestamp::now().as_second() as u64 + 2_082_844_800;
    assert!(rec.mvhd.creation_time + 120 > now_mp4 && rec.mvhd.creation_time <= now_mp4);
    assert!(
        rec.mvhd.duration >= 9000,
        "mvhd duration {}",
        rec.mvhd.duration
    );

    if let Some(decoded) = support::ffmpeg_decoded_video_frames(&rig.out) {
        assert_eq!(decoded, frames as u64, "ffmpeg decodes every frame");
    }
    if let Some(probed) = support::ffprobe_video_frames(&rig.out) {
        assert_eq!(probed.len(), frames);
        assert!(
            probed.iter().all(|f| f.has_unregistered_sei),
            "ffprobe sees the timing SEI on every frame"
        );
    }
}

cases!(ten_seconds {
    tcp_10s_every_frame_with_timing: ("tcp"),
    udp_10s_every_frame_with_timing: ("udp"),
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_file() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let run = rig.record_until_sent(5.0, libc::SIGTERM).await;
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(rig.out.exists(), "finished file");
    assert!(!rig.partial().exists(), "no .partial left");
    let (rec, frames, secs) = rig.checked(&rig.out, "read");
    assert!(rec.mfra.is_some());
    assert!(secs >= 4.5, "{secs} s recorded before SIGTERM at 5 s");
    if let Some(decoded) = support::ffmpeg_decoded_video_frames(&rig.out) {
        assert_eq!(decoded as usize, frames);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_finishes_the_file() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let run = rig.record_until_sent(2.5, libc::SIGHUP).await;
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    let rec = Recording::open(&rig.out).expect("finished file");
    assert!(rec.mfra.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_keeps_all_but_the_last_fragment() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let run = rig.record_until_sent(5.0, libc::SIGKILL).await;
    assert_eq!(run.status.code(), None, "killed by a signal");
    let partial = rig.partial();
    assert!(partial.exists() && !rig.out.exists());
    let (rec, frames, secs) = rig.checked(&partial, "the .partial of a killed run reads");
    assert!(rec.mfra.is_none());
    assert!(secs >= 4.0, "only {secs} s survived SIGKILL at 5 s");
    if let Some(decoded) = support::ffmpeg_decoded_video_frames(&partial) {
        assert_eq!(
            decoded as usize, frames,
            "ffmpeg decodes the killed file up to its last fragment"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigint_quits_at_once_keeping_fragments() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let rec = rig.spawn(&[]);
    rig.cam.wait_sent(3.0).await;
    rec.signal(libc::SIGSTOP); // hold it so both signals are pending together
    rec.signal(libc::SIGINT);
    rec.signal(libc::SIGCONT);
    // The first SIGINT starts a clean stop; a second one right behind it must win.
    rec.signal(libc::SIGINT);
    let run = rec.wait().await;
    match run.status.code() {
        Some(130) => {
            let rec = Recording::open(&rig.partial()).expect(".partial kept");
            assert!(rec.video_track().is_some());
        }
        // The clean stop can finish before the second signal is handled; that is fine too,
        // but then the file must be complete.
        Some(0) => assert!(Recording::open(&rig.out).expect("finished").mfra.is_some()),
        other => panic!("exit {other:?}: {}", run.stderr),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_frames_are_recorded_in_presentation_order() {
    let rig = Rig::clip("h264_bframes.mp4").await;
    rig.record(&["--duration", "6"]).await.assert_success();
    // Checks each frame's presentation time against the camera's.
    let (rec, frames, _) = rig.checked(&rig.out, "read");
    support::check::check_b_frames_in_presentation_order(&rec, &rig.out);
    if let Some(decoded) = support::ffmpeg_decoded_video_frames(&rig.out) {
        assert_eq!(decoded as usize, frames);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_b_frame_recording_presents_from_zero() {
    let rig = Rig::clip("h264_bframes.mp4").await;
    rig.record_until_sent(3.0, libc::SIGKILL).await;
    let (_, frames, secs) = rig.checked(&rig.partial(), "read .partial");
    assert!(secs >= 2.0, "{secs}");
    if let Some(probed) = support::ffprobe_video_frames(&rig.partial()) {
        // The edit list written while recording (duration 0: "to the end") must be honoured.
        assert_eq!(probed.len(), frames);
        assert!(
            probed[0].pts_time.abs() < 0.001,
            "first frame presented at {}",
            probed[0].pts_time
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sps_mid_stream_becomes_a_new_sample_description() {
    support::check::record_parameter_change("h264_aac.mp4", "h264_alt.mp4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reconnect_dropped_connection_ends_keeping_the_recording() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let rec = rig.spawn(&["--no-reconnect"]);
    rig.cam.wait_sent(3.0).await;
    rig.cam.drop_connections();
    let run = rec.wait().await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("rec.mp4"),
        "one-line error naming the file: {last}"
    );
    let (_, _, secs) = rig.checked(&rig.out, "finished despite the drop");
    assert!(secs >= 2.5, "{secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_camera_loses_nothing() {
    let mut config = support::config("h264_aac.mp4");
    config.speed = 2.0;
    let rig = Rig::new(config).await;
    let rec = rig.spawn(&[]);
    rig.cam.wait_sent(2.0).await;
    rig.cam.stall(Duration::from_secs(2));
    rig.cam.wait_sent(6.0).await;
    rec.signal(libc::SIGINT);
    rec.wait().await.assert_success();
    // Every frame from the first to the last, across the stall (checked frame by frame).
    let (_, _, secs) = rig.checked(&rig.out, "read");
    assert!(secs >= 4.0, "{secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reconnect_silent_camera_ends_the_recording_after_the_stall_timeout() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let rec = rig.spawn(&["--stall-timeout", "1s", "--no-reconnect"]);
    rig.cam.wait_sent(2.0).await;
    rig.cam.stall(Duration::from_secs(30));
    let run = rec.wait().await;
    let error = run.error_exit(1);
    assert!(
        error.contains("sent nothing for 1 s") && error.contains("rec.mp4 holds"),
        "{error}"
    );
    let (_, _, secs) = rig.checked(&rig.out, "finished despite the stall");
    assert!(secs >= 1.5, "{secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_one_clear_line_without_the_password() {
    let mut config = support::config("h264_aac.mp4");
    config.credentials = Some(("admin".into(), "right-horse".into()));
    let rig = Rig::new(config).await;
    let bad_url = rig
        .cam
        .url()
        .replace("rtsp://", "rtsp://admin:staple-battery@");
    let out = rig.out.to_str().expect("utf-8");
    let run = record(rig.dir.path(), &["--url", &bad_url, "--duration", "2", out]).await;
    assert_eq!(run.status.code(), Some(1));
    assert!(
        !run.stderr.contains("staple-battery"),
        "password leaked: {}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "error: camera {} rejected the credentials (401 Unauthorized)",
            rig.cam.addr()
        )
    );
    assert!(!rig.out.exists() && !rig.partial().exists());

    // The right one, from the environment, records.
    let url = rig.cam.url();
    let run = Recorder::spawn_with_env(
        rig.dir.path(),
        &["--url", &url, "--username", "admin", "--duration", "2", out],
        &[("RTSP_PASSWORD", "right-horse")],
    )
    .wait()
    .await;
    run.assert_success();
    assert!(!run.stderr.contains("right-horse"));
    assert!(Recording::open(&rig.out).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_output_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.mp4");
    std::fs::write(&out, b"earlier recording").expect("write");
    let run = record(dir.path(), &["--url", "rtsp://127.0.0.1:9/x", "rec.mp4"]).await;
    assert_eq!(run.status.code(), Some(1));
    run.assert_says("already exists");
    assert_eq!(std::fs::read(&out).expect("read"), b"earlier recording");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["--url", "rtsp://127.0.0.1:9/x", "--duration", "ten"][..],
        &["--url", "http://u:secret@127.0.0.1/x", "o.mp4"][..],
        &["--url", "rtsp://127.0.0.1:9/x", "--transport", "sctp"][..],
    ] {
        let run = record(dir.path(), args).await;
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("secret"));
    }
    // A start time that has passed today.
    let now = jiff::Zoned::now();
    if now.time() > jiff::civil::time(0, 1, 0, 0) {
        let past = now
            .time()
            .saturating_sub(jiff::SignedDuration::from_secs(60));
        let start = past.strftime("%H:%M").to_string();
        let run = record(
            dir.path(),
            &["--url", "rtsp://127.0.0.1:9/x", "--start", &start, "o.mp4"],
        )
        .await;
        assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
        run.assert_says("already passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reconnect_unreachable_camera_is_one_line_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("rtsp://127.0.0.1:{port}/x");
    let run = record(dir.path(), &["--url", &url, "--no-reconnect", "o.mp4"]).await;
    let error = run.error_exit(1);
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(!dir.path().join("o.mp4.partial").exists());
}

/// The recorder as a library: a config built in code (no command line), stopped through its
/// stop channel, finishes the file like SIGINT does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_runs_from_a_config_built_in_code() {
    use retina_record::config::RecorderConfig;
    use retina_record::source::Source;
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = url::Url::parse(&rig.cam.url()).expect("camera URL");
    let mut config = RecorderConfig::new(Source::from_url(url));
    config.out = Some(rig.out.clone());
    let (stop_tx, stop) = retina_record::stop::channel();
    let recording = tokio::spawn(retina_record::recorder::record(config, stop));
    rig.cam.wait_sent(3.0).await;
    let signal = Some(retina_record::stop::StopReason::Signal);
    stop_tx.send(signal).expect("recorder listening");
    let outcome = recording
        .await
        .expect("recorder task")
        .expect("recorded")
        .expect("started");
    assert_eq!(outcome.path, rig.out);
    let (rec, frames, secs) = rig.checked(&rig.out, "finished file");
    assert!(rec.mfra.is_some());
    assert_eq!(outcome.stats.video_frames as usize, frames);
    assert!(secs >= 2.5, "{secs} s");
}
