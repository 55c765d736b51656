//! What real cameras do, driven through the test camera ([`Quirks`]): each test fails without
//! the recorder's handling of its quirk.

mod support;

use retina_record::camera::CameraConfig;
use retina_record::mp4::read::{Recording, Sample, Track};
use support::{Rig, check_against_camera};

fn h264_aac() -> CameraConfig {
    support::config("h264_aac.mp4")
}

fn samples(rec: &Recording, track: Option<&Track>) -> Vec<Sample> {
    let id = track.expect("track").track_id;
    rec.track_samples(id).cloned().collect()
}

/// Every recorded video frame carries one 89H naming a frame the camera sent, in sending order.
fn assert_frames_are_the_cameras(rec: &Recording, rig: &Rig) {
    let log = rig.cam.log();
    let sent: Vec<u32> = log
        .frames
        .iter()
        .filter(|f| f.stream == 0)
        .map(|f| f.rtp)
        .collect();
    let mut last = None;
    for timed in rec.video_timing().expect("timing") {
        let rtps: Vec<u32> = timed.frames().map(|f| f.rtp).collect();
        assert_eq!(
            rtps.len(),
            1,
            "sample at dts {} has {} 89H",
            timed.sample.dts,
            rtps.len()
        );
        let idx = sent
            .iter()
            .position(|&r| r == rtps[0])
            .unwrap_or_else(|| panic!("89H rtp {} matches no frame the camera sent", rtps[0]));
        assert!(
            last.is_none_or(|l| idx == l + 1),
            "frame {idx} after {last:?}"
        );
        last = Some(idx);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_before_parameter_sets_are_left_out() {
    // No parameter sets in the SDP, none with the first keyframe: the recording must begin
    // at the second keyframe, the first that can be described.
    let mut config = h264_aac();
    config.quirks.no_sdp_parameters = true;
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "4"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let rec = Recording::open(&rig.out).expect("read");
    let (frames, _) = check_against_camera(&rec, &rig.cam);
    let first_rtp = rec.video_timing().expect("timing")[0]
        .frames()
        .next()
        .map(|f| f.rtp);
    let log = rig.cam.log();
    let second_keyframe = log
        .frames
        .iter()
        .filter(|f| f.stream == 0 && f.keyframe)
        .nth(1);
    assert_eq!(
        first_rtp,
        second_keyframe.map(|f| f.rtp),
        "starts at the second keyframe"
    );
    drop(log);
    assert!(
        run.stderr
            .contains("dropped 25 video frame(s) received before the first keyframe")
    );
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_report_before_any_frame_is_kept() {
    // Joining mid-GOP: the camera's first sender report precedes every RTP packet, and the
    // frames after it up to the next keyframe are not recorded. The report must still be in
    // the file, with the first recorded frame (check_against_camera counts every video SR).
    let mut config = h264_aac();
    config.quirks.start_at_frame = 10;
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "3"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let rec = Recording::open(&rig.out).expect("read");
    check_against_camera(&rec, &rig.cam);
    let timing = rec.video_timing().expect("timing");
    let first_reports = timing[0].sender_reports().count();
    assert!(first_reports >= 1, "the early SR is in the first frame");
    let log = rig.cam.log();
    assert_eq!(
        log.reports[0].after_video_frames, 0,
        "the camera sent an SR first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_frames_are_left_out() {
    let mut config = h264_aac();
    config.quirks.empty_frames_every = Some(7);
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "4"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stderr.contains("empty frame(s)"), "{}", run.stderr);
    let rec = Recording::open(&rig.out).expect("read");
    // No sample for the filler-only access units: every 89H names a real frame.
    let (frames, video_secs) = check_against_camera(&rec, &rig.cam);
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
    let audio = samples(&rec, rec.audio_track());
    assert!(audio.iter().all(|s| s.size > 0), "no empty audio sample");
    let audio_secs = rec.track_duration_secs(rec.audio_track().expect("audio"));
    assert!(
        (audio_secs - video_secs).abs() < 0.2,
        "{audio_secs} vs {video_secs}"
    );
    support::ffmpeg_audio(&rig.out).expect("ffmpeg decodes the audio without error");
}

fn losing_one_frame() -> CameraConfig {
    // The frame before the keyframe at 2.0 s, so that no later frame depends on it.
    let mut config = h264_aac();
    config.quirks.lose_video_frame_at = Some(1.95);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_stop_the_recording_naming_the_gap() {
    let rig = Rig::new(losing_one_frame()).await;
    let run = rig.record(&["--duration", "4"]).await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let error = run.only_error();
    assert!(
        error.contains("RTP packet(s) of the video stream between its frames at RTP time")
            && error.contains("(1.920 s into the stream) and")
            && error.contains("(2.000 s); pass --allow-loss to record through loss")
            && error.contains("holds the"),
        "{error}"
    );
    let rec = Recording::open(&rig.out).expect("the recording so far is kept");
    let (_, secs) = check_against_camera(&rec, &rig.cam);
    assert!(secs >= 1.9, "{secs} s kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_with_allow_loss_are_counted() {
    let rig = Rig::new(losing_one_frame()).await;
    let run = rig.record(&["--duration", "4", "--allow-loss"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("RTP packet(s) were lost during the recording"),
        "{}",
        run.stderr
    );
    let rec = Recording::open(&rig.out).expect("read");
    // Every frame the camera sent (the lost one was not) is there, the one after the gap too.
    let (frames, secs) = check_against_camera(&rec, &rig.cam);
    assert!(secs >= 3.5, "{secs} s");
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_jump_forward_keeps_the_gap_in_a_new_fragment() {
    let mut config = h264_aac();
    config.quirks.timestamp_jump = Some((2.0, 30.0));
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "4"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr.contains("video timestamps jumped +30.0"),
        "{}",
        run.stderr
    );
    let rec = Recording::open(&rig.out).expect("read");
    // Presentation times are the camera's, gap included.
    let (frames, _) = check_against_camera(&rec, &rig.cam);
    for (track, rate, frame) in [
        (rec.video_track(), 90_000u64, 3600u64),
        (rec.audio_track(), 16_000, 1024),
    ] {
        let s = samples(&rec, track);
        let gaps: Vec<usize> = (1..s.len())
            .filter(|&i| s[i].dts - s[i - 1].dts > 10 * rate)
            .collect();
        assert_eq!(gaps.len(), 1, "one gap in track of rate {rate}");
        let i = gaps[0];
        // The frame before the gap lasts a frame, not 30 s; the one after starts a fragment
        // (within a trun, decode times are contiguous) at its real time.
        assert_eq!(u64::from(s[i - 1].duration), frame, "rate {rate}");
        let gap = s[i].dts - s[i - 1].dts - frame;
        assert!(
            gap.abs_diff(30 * rate) <= frame,
            "gap of {gap} ticks at rate {rate}"
        );
    }
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
    support::ffmpeg_audio(&rig.out).expect("ffmpeg decodes the audio without error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_jump_backward_continues_the_timeline() {
    let mut config = h264_aac();
    config.quirks.timestamp_jump = Some((2.0, -30.0));
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "4"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr.contains("video timestamps jumped -"),
        "{}",
        run.stderr
    );
    let rec = Recording::open(&rig.out).expect("read");
    assert_frames_are_the_cameras(&rec, &rig);
    let video = samples(&rec, rec.video_track());
    assert!(video.len() >= 80, "{} frames", video.len());
    assert!(
        video.iter().all(|s| s.duration == 3600),
        "every frame lasts 40 ms: {:?}",
        video.iter().map(|s| s.duration).collect::<Vec<_>>()
    );
    let audio = samples(&rec, rec.audio_track());
    assert!(audio.windows(2).all(|w| w[0].dts < w[1].dts));
    assert!(
        audio
            .iter()
            .all(|s| s.duration >= 1024 && s.duration < 3000)
    );
    let video_secs = rec.track_duration_secs(rec.video_track().expect("video"));
    let audio_secs = rec.track_duration_secs(rec.audio_track().expect("audio"));
    assert!((3.5..4.6).contains(&video_secs), "{video_secs} s");
    assert!(
        (audio_secs - video_secs).abs() < 0.2,
        "{audio_secs} vs {video_secs}"
    );
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, video.len());
    support::ffmpeg_audio(&rig.out).expect("ffmpeg decodes the audio without error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_stepping_back_20ms_is_kept_in_order() {
    let mut config = h264_aac();
    config.quirks.audio_step_back = Some((2.0, 0.020));
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "4"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 small step(s) back in time corrected"),
        "{}",
        run.stderr
    );
    let rec = Recording::open(&rig.out).expect("read");
    let (_, video_secs) = check_against_camera(&rec, &rig.cam);
    // Each AAC frame keeps its 1024 samples' worth of time: none squeezed by the overlap.
    let audio = samples(&rec, rec.audio_track());
    assert!(
        audio.iter().all(|s| s.duration >= 1024),
        "durations {:?}",
        audio.iter().map(|s| s.duration).collect::<Vec<_>>()
    );
    let decoded = support::ffmpeg_audio(&rig.out).expect("ffmpeg");
    assert!(
        (decoded.decoded_secs - video_secs).abs() < 0.1,
        "{} s of audio, {video_secs} s of video",
        decoded.decoded_secs
    );
}
