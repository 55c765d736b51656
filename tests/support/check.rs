//! Checks of recordings: against what the camera sent, and the cases several tests share.

use std::path::Path;

use retina_record::camera::{Camera, SentFrame, SentReport};
use retina_record::mp4::read::{Recording, TimedSample};
use retina_record::sei::{SenderReport, TimingMessage};
pub use retina_record::timing::sessions::of_file as sessions;

use super::rig::{Rig, clip, config};
use super::tools::{
    ffmpeg_audio, ffmpeg_decoded_video_frames, ffprobe_video_frames, gstreamer_plays,
};

/// Checks a recording against what the camera sent, session by session (a recording that
/// reconnected holds several; the first frame of each names it with `conn`): within each,
/// every video frame between the first and last recorded ones is there, presented at its own
/// RTP time, with exactly one `89H` holding its RTP timestamp and a receive time just after the
/// camera sent it; every video sender report is there as `o8B`, in the first frame after it,
/// and no audio report is. The recorded sessions are the camera's, in order.
///
/// Returns (video frames, seconds of video).
pub fn check_against_camera(rec: &Recording, cam: &Camera) -> (usize, f64) {
    check_against_cameras(rec, &[cam])
}

/// [`check_against_camera`] for a recording whose sessions came from these cameras, in this
/// order (one camera restarted on the same address, say).
pub fn check_against_cameras(rec: &Recording, cams: &[&Camera]) -> (usize, f64) {
    let logs: Vec<_> = cams.iter().map(|c| c.log()).collect();
    // Every (camera, session) there was, in order.
    let order: Vec<(usize, usize)> = logs
        .iter()
        .enumerate()
        .flat_map(|(c, log)| {
            let last = log.frames.iter().map(|f| f.session).max();
            last.into_iter()
                .flat_map(move |last| (0..=last).map(move |s| (c, s)))
        })
        .collect();
    let timing = rec.video_timing().expect("video timing");
    assert!(!timing.is_empty(), "no video frames recorded");
    let mut next = 0;
    for part in sessions(&timing) {
        let first_rtp = part[0].frame().expect("one 89H").rtp;
        let last_rtp = part[part.len() - 1].frame().expect("one 89H").rtp;
        // Sessions start at the same RTP time: the one that sent the first frame and the last
        // (a session cut short, one the recorder played and left, sent only the first).
        let k = (next..order.len())
            .find(|&k| {
                let (c, s) = order[k];
                let sent = |rtp: u32| {
                    let f = |f: &&SentFrame| f.session == s && f.stream == 0 && f.rtp == rtp;
                    logs[c].frames.iter().any(|x| f(&x))
                };
                sent(first_rtp) && sent(last_rtp)
            })
            .unwrap_or_else(|| panic!("89H rtp {first_rtp} matches no later camera session"));
        next = k + 1;
        let (c, session) = order[k];
        let frames: Vec<&SentFrame> = logs[c]
            .frames
            .iter()
            .filter(|f| f.session == session && f.stream == 0)
            .collect();
        let reports: Vec<&SentReport> = logs[c]
            .reports
            .iter()
            .filter(|r| r.session == session)
            .collect();
        check_session(part, &frames, &reports);
    }
    let v = rec.video_track().expect("video");
    (timing.len(), rec.track_duration_secs(v))
}

/// [`check_against_camera`] for one session.
fn check_session(timing: &[TimedSample], cam_video: &[&SentFrame], reports: &[&SentReport]) {
    let mut recorded_idx = Vec::new();
    let mut all_reports = Vec::new();
    let mut delays = Vec::new();
    for timed in timing {
        let (sample, msgs) = (&timed.sample, &timed.messages);
        let frames: Vec<_> = timed.frames().collect();
        assert_eq!(
            frames.len(),
            1,
            "sample at dts {} has {} 89H messages",
            sample.dts,
            frames.len()
        );
        let t = frames[0];
        let idx = cam_video
            .iter()
            .position(|f| f.rtp == t.rtp)
            .unwrap_or_else(|| panic!("89H rtp {} matches no frame the camera sent", t.rtp));
        let sent = cam_video[idx].sent_ntp;
        // Received after it was sent (the camera notes the time just before it hands over the
        // frame's last packet), and not absurdly later.
        assert!(
            t.recv >= sent && t.recv - sent < (5u64 << 32),
            "frame rtp {}: recv {} vs sent {} (NTP units)",
            t.rtp,
            t.recv,
            sent
        );
        delays.push(t.recv.saturating_sub(sent));
        // SRs must come before the 89H.
        let first_frame_pos = msgs
            .iter()
            .position(|m| matches!(m, TimingMessage::Frame(_)));
        let last_sr_pos = msgs
            .iter()
            .rposition(|m| matches!(m, TimingMessage::SenderReport(_)));
        if let (Some(f), Some(s)) = (first_frame_pos, last_sr_pos) {
            assert!(s < f, "o8B after 89H");
        }
        for m in msgs {
            if let TimingMessage::SenderReport(sr) = m {
                all_reports.push((idx, *sr));
            }
        }
        assert_eq!(
            sample.is_sync, cam_video[idx].keyframe,
            "sync flag of frame rtp {}",
            t.rtp
        );
        recorded_idx.push(idx);
    }

    // `recv` is when the packet was read, not when it was muxed or written: that would lag by
    // the reorder look-ahead and the fragment batching (hundreds of ms). On loopback the
    // typical delay is well under a millisecond; the median tolerates a loaded machine.
    delays.sort_unstable();
    let median = delays[delays.len() / 2];
    assert!(
        median < (100u64 << 32) / 1000,
        "median receive delay {:.1} ms",
        median as f64 * 1000.0 / 4_294_967_296.0
    );

    // Presentation: recorded pts offsets equal the camera's.
    let first_sample = &timing[0].sample;
    let first_cam = cam_video[recorded_idx[0]];
    for (timed, &idx) in timing.iter().zip(&recorded_idx) {
        assert_eq!(
            timed.sample.pts() - first_sample.pts(),
            cam_video[idx].pts - first_cam.pts,
            "presentation time of frame rtp {}",
            cam_video[idx].rtp
        );
    }
    // Every frame between the first and last recorded, each once.
    let mut sorted = recorded_idx.clone();
    sorted.sort_unstable();
    let lo = sorted[0];
    let hi = *sorted.last().expect("non-empty");
    assert_eq!(
        sorted,
        (lo..=hi).collect::<Vec<_>>(),
        "recorded frames are not the camera's {lo}..={hi}"
    );
    assert!(
        cam_video[lo].keyframe,
        "first recorded frame is not a keyframe"
    );

    check_reports(&all_reports, reports, lo, hi);
}

/// The `o8B`s (with the index of the frame each came before): exactly the camera's video
/// sender reports sent before the last recorded frame (`hi`), each in the first frame after it.
fn check_reports(
    all_reports: &[(usize, SenderReport)],
    reports: &[&SentReport],
    lo: usize,
    hi: usize,
) {
    let video_srs: Vec<_> = reports.iter().filter(|r| r.stream == 0).collect();
    let audio_srs: Vec<_> = reports.iter().filter(|r| r.stream == 1).collect();
    for (_, sr) in all_reports {
        assert!(
            video_srs.iter().any(|v| v.ntp == sr.ntp && v.rtp == sr.rtp),
            "o8B {sr:?} is not a video sender report"
        );
        assert!(
            !audio_srs.iter().any(|a| a.ntp == sr.ntp && a.rtp == sr.rtp),
            "o8B {sr:?} is an audio sender report"
        );
    }
    let expected = video_srs
        .iter()
        .filter(|r| r.after_video_frames <= hi)
        .count();
    assert_eq!(all_reports.len(), expected, "o8B count vs video SRs sent");
    for (idx, sr) in all_reports {
        let at = video_srs
            .iter()
            .find(|v| v.ntp == sr.ntp && v.rtp == sr.rtp)
            .expect("matched above");
        assert_eq!(
            *idx,
            at.after_video_frames.max(lo),
            "o8B is not in the first frame after its SR"
        );
        assert!(sr.recv > 0, "o8B recv");
    }
}

/// The camera switches from clip `first` to clip `alt` (same codec, other parameter sets, 352
/// pixels wide) at twice real time: one sample description per parameter set, frames of both
/// sizes presented by ffprobe, every frame decoded by ffmpeg. Returns the recording.
pub async fn record_parameter_change(first: &str, alt: &str) -> Recording {
    let mut config = config(first);
    config.clips.push(clip(alt));
    config.speed = 2.0;
    let rig = Rig::new(config).await;
    rig.record(&["--duration", "5"]).await.assert_success();
    let (rec, frames, _) = rig.checked(&rig.out, "read");
    let video = rec.video_track().expect("video");
    assert_eq!(
        video.sample_entries.len(),
        2,
        "one sample description per parameter set"
    );
    let sdis: Vec<u32> = rec
        .track_samples(video.track_id)
        .map(|s| s.sample_description_index)
        .collect();
    assert!(sdis.contains(&1) && sdis.contains(&2), "{sdis:?}");
    // `timing` says each frame's, as the file has it.
    let out = rig.out.to_str().expect("utf-8");
    let rows = crate::support::timing::rows(rig.dir.path(), &[out]).await;
    let count = |v: &[u32], d: u32| v.iter().filter(|s| **s == d).count();
    let shown: Vec<u32> = rows.iter().map(|r| r.sample_description).collect();
    assert_eq!(count(&shown, 2), count(&sdis, 2), "{shown:?}");
    assert_eq!(count(&shown, 1), count(&sdis, 1), "{shown:?}");
    if let Some(probed) = ffprobe_video_frames(&rig.out) {
        let widths: std::collections::BTreeSet<u32> = probed.iter().map(|f| f.width).collect();
        assert_eq!(widths.into_iter().collect::<Vec<_>>(), vec![320, 352]);
    }
    if let Some(decoded) = ffmpeg_decoded_video_frames(&rig.out) {
        assert_eq!(decoded as usize, frames);
    }
    rec
}

/// A recording of a stream with B-frames, at `path`, in presentation order: composition
/// offsets, rising decode times, each frame its own presentation time, and (when ffprobe is
/// installed) ffprobe presenting every frame at that time less the edit list's delay (which
/// B-frames need), so the first at 0.
pub fn check_b_frames_in_presentation_order(rec: &Recording, path: &Path) {
    let samples: Vec<_> = rec.track_samples(1).cloned().collect();
    assert!(
        samples.iter().any(|s| s.cts_offset != 0),
        "B-frames need composition offsets"
    );
    assert!(
        samples.windows(2).all(|w| w[0].dts < w[1].dts),
        "decode times increase"
    );
    let mut pts: Vec<i64> = samples.iter().map(|s| s.pts()).collect();
    pts.sort_unstable();
    pts.dedup();
    assert_eq!(
        pts.len(),
        samples.len(),
        "every frame has its own presentation time"
    );
    if let Some(probed) = ffprobe_video_frames(path) {
        let got: Vec<f64> = probed.iter().map(|f| f.pts_time).collect();
        // The edit list makes the first frame present at 0 (A/V sync in ffmpeg-based players).
        let start = rec.video_track().expect("video").media_start as i64;
        assert!(start > 0, "B-frames need a presentation delay");
        let want: Vec<f64> = pts.iter().map(|&p| (p - start) as f64 / 90_000.0).collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 0.001,
                "ffprobe presents {got:?}, expected {want:?}"
            );
        }
    }
}

/// Everything a recording from a third-party server must satisfy: at least `min_frames` video
/// frames, each with one `89H`; an audio track if `expect_audio`, decoded by ffmpeg to within
/// 0.2 s of the video's length; every frame decoded by ffmpeg and seen with its SEI by ffprobe;
/// and played by GStreamer.
pub fn check_recording(path: &Path, min_frames: usize, expect_audio: bool) {
    let rec = Recording::open(path).expect("read recording");
    let timing = rec.video_timing().expect("timing");
    assert!(timing.len() >= min_frames, "{} video frames", timing.len());
    for t in &timing {
        let frames = t.frames().count();
        assert_eq!(frames, 1, "sample at dts {} has {frames} 89H", t.sample.dts);
    }
    assert_eq!(rec.audio_track().is_some(), expect_audio, "audio track");
    if rec.audio_track().is_some() {
        let audio = ffmpeg_audio(path).expect("ffmpeg is required here");
        let video = rec.track_duration_secs(rec.video_track().expect("video"));
        assert!(
            (audio.decoded_secs - video).abs() < 0.2,
            "ffmpeg decodes {} s of audio; the video lasts {video} s",
            audio.decoded_secs
        );
    }
    decoded_and_played(path, timing.len());
}

/// ffmpeg decodes every one of the recording's `frames` video frames, ffprobe sees the timing
/// SEI on each, and GStreamer plays the file to its end.
pub fn decoded_and_played(path: &Path, frames: usize) {
    let decoded = ffmpeg_decoded_video_frames(path).expect("ffmpeg is required here");
    assert_eq!(decoded as usize, frames, "ffmpeg decodes every frame");
    let probed = ffprobe_video_frames(path).expect("ffprobe");
    assert_eq!(probed.len(), frames);
    assert!(
        probed.iter().all(|f| f.has_unregistered_sei),
        "ffprobe sees the SEI on every frame"
    );
    gstreamer_plays(path);
}
