//! Recording with nobody watching: reconnecting after the camera drops or restarts (the same
//! recording goes on, the outage a gap), giving up when told, and bad packets that cost a frame
//! rather than the recording.

use std::time::{Duration, Instant};

use retina_record::camera::{Camera, CameraConfig, Quirks};
use retina_record::mp4::read::{Recording, TimedSample};

use crate::support::check::{check_against_cameras, sessions};
use crate::support::{self, Rig, config, record};

/// Seconds between the end of one session's last frame and the next session's first, on the
/// file's timeline and by the receive clock; they must agree.
fn gaps(rec: &Recording) -> Vec<(f64, f64)> {
    let timing = rec.video_timing().expect("timing");
    let parts = sessions(&timing);
    let rate = f64::from(rec.video_track().expect("video").timescale);
    let last = |p: &[TimedSample]| {
        // Decode order: the last frame presented is the one with the largest pts.
        let s = p.iter().max_by_key(|t| t.sample.pts()).expect("frames");
        (
            s.sample.pts() + i64::from(s.sample.duration),
            s.frame().expect("89H").recv,
        )
    };
    parts
        .windows(2)
        .map(|w| {
            let (end, recv_end) = last(w[0]);
            let first = &w[1][0];
            let file_gap = (first.sample.pts() - end) as f64 / rate;
            let recv = first.frame().expect("89H").recv;
            let wall_gap = (recv as f64 - recv_end as f64) / 4_294_967_296.0;
            (file_gap, wall_gap)
        })
        .collect()
}

/// The `conn` of each session's first frame: distinct, increasing.
fn conns(rec: &Recording) -> Vec<u64> {
    let timing = rec.video_timing().expect("timing");
    sessions(&timing)
        .iter()
        .map(|p| {
            p[0].frame()
                .and_then(|f| f.conn)
                .expect("conn on a session's first frame")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_drop_and_keeps_the_outage_as_a_gap() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let rec = rig.spawn(&[]);
    rig.cam.wait_session_sent(0, 3.0).await;
    let dropped = Instant::now();
    rig.cam.drop_connections();
    rig.cam.wait_session_sent(1, 3.0).await;
    let outage_bound = dropped.elapsed().as_secs_f64();
    rec.signal(libc::SIGINT);
    let run = rec.wait().await;
    run.assert_success();
    run.assert_says("ended the stream; reconnecting in");
    run.assert_says("reconnected");
    let (rec, frames, _) = rig.checked(&rig.out, "one file across the reconnection");
    let conns = conns(&rec);
    assert_eq!(conns.len(), 2, "two sessions");
    assert!(conns[0] < conns[1], "{conns:?}");
    let gaps = gaps(&rec);
    let (file_gap, wall_gap) = gaps[0];
    assert!(
        (file_gap - wall_gap).abs() < 0.05,
        "the file keeps the outage as it was by the wall clock: {gaps:?}"
    );
    assert!(
        file_gap > 0.5 && file_gap < outage_bound,
        "gap {file_gap} s, the outage lasted under {outage_bound} s"
    );
    let audio = rec.audio_track().expect("audio");
    let audio_ends = rec.track_duration_secs(audio);
    let video_ends = rec.track_duration_secs(rec.video_track().expect("video"));
    assert!(
        (audio_ends - video_ends).abs() < 0.2,
        "{audio_ends} {video_ends}"
    );
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
    support::ffmpeg_audio(&rig.out).expect("ffmpeg decodes the audio");
    assert!(run.stderr.lines().count() < 20, "quiet: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_restarted_with_a_new_clock_ssrc_and_sps_continues_the_recording() {
    let mut first = Camera::start(config("h264_aac.mp4")).await.expect("camera");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.mp4");
    let (url, out_arg) = (first.url(), out.to_str().expect("utf-8"));
    let rec = support::Recorder::spawn(dir.path(), &["--url", &url, out_arg]);
    first.wait_session_sent(0, 3.0).await;
    // A reboot: the camera goes away and comes back on the same address with another RTP
    // base, other SSRCs and another resolution (a new SPS).
    first.stop().await;
    let mut after = config("h264_alt.mp4");
    after.listen = first.addr();
    after.rtp_start = [0x1234_5678, 0x0765_4321];
    after.ssrcs = [0xCAFE_0001, 0xCAFE_0002];
    let second = Camera::start(after)
        .await
        .expect("camera on the same address");
    second.wait_session_sent(0, 3.0).await;
    rec.signal(libc::SIGINT);
    rec.wait().await.assert_success();
    let recording = Recording::open(&out).expect("one file across the restart");
    let (frames, _) = check_against_cameras(&recording, &[&first, &second]);
    assert_eq!(conns(&recording).len(), 2);
    let video = recording.video_track().expect("video");
    assert_eq!(
        video.sample_entries.len(),
        2,
        "the new SPS is a new description"
    );
    let widths: std::collections::BTreeSet<u32> = support::ffprobe_video_frames(&out)
        .expect("ffprobe")
        .iter()
        .map(|f| f.width)
        .collect();
    assert_eq!(widths.into_iter().collect::<Vec<_>>(), [320, 352]);
    let decoded = support::ffmpeg_decoded_video_frames(&out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
    let (file_gap, wall_gap) = gaps(&recording)[0];
    assert!(
        (file_gap - wall_gap).abs() < 0.05,
        "{file_gap} vs {wall_gap}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_changed_while_disconnected_end_the_run() {
    let mut before = config("h264_aac.mp4");
    before.credentials = Some(("admin".into(), "old-horse".into()));
    let mut first = Camera::start(before).await.expect("camera");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = first.url().replace("rtsp://", "rtsp://admin:old-horse@");
    let rec = support::Recorder::spawn(dir.path(), &["--url", &url, "rec.mp4"]);
    first.wait_session_sent(0, 2.0).await;
    first.stop().await;
    let mut after = config("h264_aac.mp4");
    after.listen = first.addr();
    after.credentials = Some(("admin".into(), "new-battery".into()));
    let _second = Camera::start(after)
        .await
        .expect("camera on the same address");
    let run = rec.wait().await;
    let error = run.error_exit(1);
    assert!(
        error.contains("rejected the credentials (401 Unauthorized)")
            && error.contains("rec.mp4 holds the"),
        "{error}"
    );
    assert!(!run.stderr.contains("old-horse"), "{}", run.stderr);
    let rec = Recording::open(&dir.path().join("rec.mp4")).expect("finished file");
    assert!(rec.mfra.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn give_up_after_ends_a_run_without_a_working_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("rtsp://127.0.0.1:{port}/x");
    let started = Instant::now();
    let run = record(
        dir.path(),
        &["--url", &url, "--give-up-after", "3s", "o.mp4"],
    )
    .await;
    let error = run.error_exit(1);
    assert!(
        error.contains("no working connection") && error.contains("--give-up-after"),
        "{error}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "{took:?}"
    );
    run.assert_says("reconnecting in");
    assert!(!dir.path().join("o.mp4").exists() && !dir.path().join("o.mp4.partial").exists());
}

/// A quirk's recording: 4 s, the rig's camera with `quirks`.
async fn with_quirks(quirks: Quirks, extra: &[&str]) -> (Rig, support::rig::Finished) {
    let mut config: CameraConfig = config("h264_aac.mp4");
    config.quirks = quirks;
    let rig = Rig::new(config).await;
    let mut args = vec!["--duration", "4"];
    args.extend_from_slice(extra);
    let run = rig.record(&args).await;
    (rig, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_in_the_middle_of_a_frame_costs_only_that_frame() {
    let quirks = Quirks {
        start_mid_frame: true,
        ..Quirks::default()
    };
    let (rig, run) = with_quirks(quirks, &[]).await;
    run.assert_success();
    run.assert_says("skipping to the next frame");
    let (rec, frames, _) = rig.checked(&rig.out, "recorded");
    assert_eq!(conns(&rec).len(), 1, "one session: no reconnection");
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_fu_a_mid_stream_costs_only_that_frame() {
    // The frame before the keyframe at 2.0 s, so that no later frame depends on it.
    let quirks = Quirks {
        broken_fu_a_at: Some(1.95),
        ..Quirks::default()
    };
    let (rig, run) = with_quirks(quirks, &[]).await;
    run.assert_success();
    run.assert_says("skipping to the next frame");
    // Every frame but the broken one (not logged as sent), each once, in order.
    let (rec, frames, secs) = rig.checked(&rig.out, "recorded");
    assert!(secs > 3.5, "{secs} s");
    assert_eq!(conns(&rec).len(), 1, "one session: no reconnection");
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}
