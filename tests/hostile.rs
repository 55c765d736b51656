//! Cameras that misbehave on purpose, or are broken: every handshake step is bounded in time
//! and memory, a stop while connecting is a clean stop, and a session that breaks costs a gap.

use std::time::{Duration, Instant};

use retina_record::camera::{CameraConfig, Quirks};
use retina_record::mp4::read::Recording;

use crate::support::check::sessions;
use crate::support::fake::{FakeServer, Misbehaviour};
use crate::support::{self, Recorder, Rig, config};

/// Peak memory allowed: the recorder runs in about 6 MiB.
const BOUNDED: u64 = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_handshakes_fail_fast_in_bounded_memory() {
    for (how, says) in [
        (
            Misbehaviour::Silent,
            "no complete answer to OPTIONS within 1 s",
        ),
        (
            Misbehaviour::Trickle,
            "no complete answer to OPTIONS within 1 s",
        ),
        (
            Misbehaviour::EndlessHeader,
            "answered OPTIONS with more than 64 KiB of headers",
        ),
        (
            Misbehaviour::OptionsOnly,
            "no complete answer to DESCRIBE within 1 s (--connect-timeout)",
        ),
    ] {
        let server = FakeServer::start(how).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let args = [
            "--url",
            &server.url,
            "--connect-timeout",
            "1s",
            "--no-reconnect",
            "o.mp4",
        ];
        let started = Instant::now();
        let (run, peak) = Recorder::spawn(dir.path(), &args).wait_measuring().await;
        let error = run.error_exit(1);
        assert!(error.contains(says), "{how:?}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{how:?}: {:?}",
            started.elapsed()
        );
        assert!(peak < BOUNDED, "{how:?}: peak memory {} MiB", peak >> 20);
        assert!(!dir.path().join("o.mp4.partial").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_handshake_is_retried_and_a_stop_while_connecting_is_clean() {
    let server = FakeServer::start(Misbehaviour::EndlessHeader).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let accepted = server.accepted.notified();
    tokio::pin!(accepted);
    accepted.as_mut().enable();
    let rec = Recorder::spawn(dir.path(), &["--url", &server.url, "o.mp4"]);
    accepted.await;
    // The first attempt fails at once; stop during the wait or the next attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rec.signal(libc::SIGTERM);
    let (run, peak) = rec.wait_measuring().await;
    run.assert_success();
    run.assert_says("reconnecting in");
    assert!(!run.stderr.contains("error:"), "{}", run.stderr);
    assert!(peak < BOUNDED, "peak memory {} MiB", peak >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_connecting_is_a_clean_stop() {
    let server = FakeServer::start(Misbehaviour::Silent).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let accepted = server.accepted.notified();
    tokio::pin!(accepted);
    accepted.as_mut().enable();
    let rec = Recorder::spawn(dir.path(), &["--url", &server.url, "o.mp4"]);
    accepted.await;
    rec.signal(libc::SIGTERM);
    let run = rec.wait().await;
    run.assert_success();
    run.assert_says("stopped before anything was recorded");
    assert!(!dir.path().join("o.mp4").exists() && !dir.path().join("o.mp4.partial").exists());
}

/// The rig's camera with `quirks`, recorded with `extra` flags (for 6 s unless they say).
async fn with_quirks(quirks: Quirks, extra: &[&str]) -> (Rig, support::rig::Finished) {
    let mut config: CameraConfig = config("h264_aac.mp4");
    config.quirks = quirks;
    let rig = Rig::new(config).await;
    let mut args = vec![];
    if !extra.contains(&"--duration") {
        args.extend(["--duration", "6"]);
    }
    args.extend_from_slice(extra);
    let run = rig.record(&args).await;
    (rig, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_never_ends_is_named_for_what_it_is() {
    let quirks = Quirks {
        endless_fu_a_at: Some(2.0),
        ..Quirks::default()
    };
    let (rig, run) = with_quirks(quirks, &["--stall-timeout", "2s", "--no-reconnect"]).await;
    let error = run.error_exit(1);
    assert!(
        error.contains("completed no video frame for 2 s") && error.contains("kept arriving"),
        "{error}"
    );
    let (_, _, secs) = rig.checked(&rig.out, "the recording so far is kept");
    assert!(secs > 1.5, "{secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssrc_change_costs_a_gap_not_the_recording() {
    let quirks = Quirks {
        ssrc_change_at: Some(2.0),
        ..Quirks::default()
    };
    // retina drops the packets of the new SSRC: no frame completes, the stall timer ends the
    // session, a new one begins.
    let args = ["--allow-loss", "--stall-timeout", "2s", "--duration", "9"];
    let (rig, run) = with_quirks(quirks, &args).await;
    run.assert_success();
    run.assert_says("reconnecting in");
    // Every frame each session sent before the change, the sessions in order.
    let (rec, frames, _) = rig.checked(&rig.out, "recorded");
    let timing = rec.video_timing().expect("timing");
    assert!(
        sessions(&timing).len() >= 2,
        "a new session after the change"
    );
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
    let warnings = run.stderr.lines().filter(|l| l.contains(" WARN ")).count();
    assert!(warnings < 10, "quiet: {}", run.stderr);
    assert!(
        run.stderr.lines().all(|l| l.chars().count() < 300),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_rtp_or_rtcp_packet_is_skipped() {
    let quirks = Quirks {
        malformed_rtcp_at: Some(2.0),
        malformed_rtp_at: Some(3.0),
        ..Quirks::default()
    };
    let (rig, run) = with_quirks(quirks, &["--allow-loss"]).await;
    run.assert_success();
    let (rec, _, secs) = rig.checked(&rig.out, "recorded");
    assert!(secs > 5.0, "{secs}");
    let timing = rec.video_timing().expect("timing");
    assert_eq!(
        sessions(&timing).len(),
        1,
        "the session went on: {}",
        run.stderr
    );
    let _ = Recording::open(&rig.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_sequence_that_panics_retina_costs_a_reconnection() {
    // Frames cut short: retina 0.4's depacketizer panics on what follows ("push with data
    // already pending"); the recorder contains it, drops the session and connects afresh.
    let quirks = Quirks {
        cut_frames_at: Some(2.0),
        ..Quirks::default()
    };
    let (rig, run) = with_quirks(quirks, &[]).await;
    run.assert_success();
    run.assert_says("retina failed on the stream");
    run.assert_says("reconnecting in");
    let (rec, frames, _) = rig.checked(&rig.out, "one file, every session's whole frames");
    let timing = rec.video_timing().expect("timing");
    assert!(sessions(&timing).len() >= 2, "{}", run.stderr);
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
    assert!(
        run.stderr.lines().all(|l| l.chars().count() < 300),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backward_sequence_jump_over_tcp_costs_at_most_a_gap() {
    let quirks = Quirks {
        seq_jump_back_at: Some(2.0),
        ..Quirks::default()
    };
    let args = ["--allow-loss", "--stall-timeout", "2s", "--duration", "9"];
    let (rig, run) = with_quirks(quirks, &args).await;
    run.assert_success();
    // Whether retina takes the stream on or the session ends and another begins, every frame
    // recorded is one the camera sent, in order, and the recording reaches past the jump.
    let (_, frames, secs) = rig.checked(&rig.out, "recorded");
    assert!(secs > 6.0, "{secs} s: {}", run.stderr);
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}
