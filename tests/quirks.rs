//! What real cameras do, driven through the test camera ([`Quirks`]): each test fails without
//! the recorder's handling of its quirk.

use retina_record::camera::Quirks;
use retina_record::mp4::read::{Recording, Sample, Track};

use crate::support::rig::Finished;
use crate::support::{self, Rig};

/// Records from a camera serving h264_aac.mp4 with `quirks`, passing the recorder `args`.
async fn record_with(quirks: Quirks, args: &[&str]) -> (Rig, Finished) {
    let mut config = support::config("h264_aac.mp4");
    config.quirks = quirks;
    let rig = Rig::new(config).await;
    let run = rig.record(args).await;
    (rig, run)
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
    let quirks = Quirks {
        no_sdp_parameters: true,
        ..Quirks::default()
    };
    let (rig, run) = record_with(quirks, &["--duration", "4"]).await;
    run.assert_success();
    let (rec, frames, _) = rig.checked(&rig.out, "read");
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
    run.assert_says("dropped 25 video frame(s) received before the first keyframe");
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_report_before_any_frame_is_kept() {
    // Joining mid-GOP: the camera's first sender report precedes every RTP packet, and the
    // frames after it up to the next keyframe are not recorded. The report must still be in
    // the file, with the first recorded frame (check_against_camera counts every video SR).
    let quirks = Quirks {
        start_at_frame: 10,
        ..Quirks::default()
    };
    let (rig, run) = record_with(quirks, &["--duration", "3"]).await;
    run.assert_success();
    let (rec, _, _) = rig.checked(&rig.out, "read");
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
    let quirks = Quirks {
        empty_frames_every: Some(7),
        ..Quirks::default()
    };
    let (rig, run) = record_with(quirks, &["--duration", "4"]).await;
    run.assert_success();
    run.assert_says("empty frame(s)");
    // No sample for the filler-only access units: every 89H names a real frame.
    let (rec, frames, video_secs) = rig.checked(&rig.out, "read");
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

fn losing_one_frame() -> Quirks {
    Quirks {
        // The frame before the keyframe at 2.0 s, so that no later frame depends on it.
        lose_video_frame_at: Some(1.95),
        ..Quirks::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_stop_the_recording_naming_the_gap() {
    let args = ["--duration", "4", "--stop-on-loss"];
    let (rig, run) = record_with(losing_one_frame(), &args).await;
    let error = run.error_exit(1);
    assert!(
        error.contains("lost 2 RTP packet(s) of video 1.920–2.000 s into the stream")
            && error.contains("; stopping (--stop-on-loss)")
            && error.contains("holds the"),
        "{error}"
    );
    let (_, _, secs) = rig.checked(&rig.out, "the recording so far is kept");
    assert!(secs >= 1.9, "{secs} s kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_counted_and_recorded_through() {
    let args = ["--duration", "4"];
    let (rig, run) = record_with(losing_one_frame(), &args).await;
    run.assert_success();
    run.assert_says("RTP packet(s) were lost");
    let summary = run
        .stderr
        .lines()
        .find(|l| l.contains("stopped after"))
        .expect("the stop's summary line");
    assert!(
        summary.contains(" packets lost") && !summary.contains(" 0 packets lost"),
        "{summary}"
    );
    // Every frame the camera sent (the lost one was not) is there, the one after the gap too.
    let (_, frames, secs) = rig.checked(&rig.out, "read");
    assert!(secs >= 3.5, "{secs} s");
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg");
    assert_eq!(decoded as usize, frames);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_jump_forward_keeps_the_gap_in_a_new_fragment() {
    let quirks = Quirks {
        timestamp_jump: Some((2.0, 30.0)),
        ..Quirks::default()
    };
    let (rig, run) = record_with(quirks, &["--duration", "4"]).await;
    run.assert_success();
    run.assert_says("video timestamps jumped +30.0");
    // Presentation times are the camera's, gap included.
    let (rec, frames, _) = rig.checked(&rig.out, "read");
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
    let quirks = Quirks {
        timestamp_jump: Some((2.0, -30.0)),
        ..Quirks::default()
    };
    let (rig, run) = record_with(quirks, &["--duration", "4"]).await;
    run.assert_success();
    run.assert_says("video timestamps jumped -");
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
    let quirks = Quirks {
        audio_step_back: Some((2.0, 0.020)),
        ..Quirks::default()
    };
    let (rig, run) = record_with(quirks, &["--duration", "4"]).await;
    run.assert_success();
    run.assert_says("1 small step(s) back in time corrected");
    let (rec, _, video_secs) = rig.checked(&rig.out, "read");
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
