//! Each codec the camera serves, recorded over real sockets and checked with the project's
//! reader and with ffmpeg/ffprobe: H.265 (with and without B-frames), and G.711 µ-law, A-law
//! and L16 audio, which must come out sample for sample as the camera sent it.

use retina_record::camera::{CameraConfig, Clip};
use retina_record::mp4::read::Recording;

use crate::support::tools::DecodedAudio;
use crate::support::{self, Rig};

/// The built-in clip for `video` + `audio`, logged, its SR clock fixed (as `support::config`).
fn builtin(video: &str, audio: &str) -> CameraConfig {
    let video = video.parse().expect("video codec");
    let audio = audio.parse().expect("built-in audio");
    support::rig::logged(Clip::builtin(video, audio).expect("built-in clip"))
}

/// Records `secs` and checks what every codec path must satisfy: each frame there with its
/// timing SEI, decoded by ffmpeg, seen by ffprobe with its SEI; audio (if any) decoded by ffmpeg
/// 5.1 to within 0.1 s of the video's length (with B-frames, shorter by up to their delay and
/// reorder lead too). Returns the recording, its number of video frames and ffmpeg's audio.
async fn record_and_check(rig: &Rig, secs: &str) -> (Recording, usize, Option<DecodedAudio>) {
    rig.record(&["--duration", secs]).await.assert_success();
    let (rec, frames, video_secs) = rig.checked(&rig.out, "read recording");
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg is required");
    assert_eq!(decoded as usize, frames, "ffmpeg decodes every frame");
    let probed = support::ffprobe_video_frames(&rig.out).expect("ffprobe is required");
    assert_eq!(probed.len(), frames);
    assert!(
        probed.iter().all(|f| f.has_unregistered_sei),
        "ffprobe sees the timing SEI on every frame"
    );
    // With B-frames the video's timeline is longer than the audio's for the same stop: it
    // begins the edit list's delay (`media_start`) before the first frame presents, and the
    // frames received when the recording stops present up to the largest composition offset
    // (the reorder lead) after that instant. So the audio may be shorter by both; it may not
    // be longer by 0.1 s. Without B-frames both are 0: within 0.1 s either way, as before.
    let video = rec.video_track().expect("video");
    let max_cts_offset = rec
        .track_samples(video.track_id)
        .map(|s| s.cts_offset)
        .max()
        .unwrap_or(0)
        .max(0);
    let lead = (video.media_start as f64 + max_cts_offset as f64) / f64::from(video.timescale);
    let audio = rec.audio_track().map(|_| {
        let audio = support::ffmpeg_audio(&rig.out).expect("ffmpeg is required");
        let diff = audio.decoded_secs - video_secs;
        assert!(
            diff < 0.1 && diff > -(0.1 + lead),
            "ffmpeg decodes {} s of audio; the video lasts {video_secs} s ({lead} s of B-frame \
             delay and reorder lead allowed)",
            audio.decoded_secs
        );
        audio
    });
    (rec, frames, audio)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_aac_10s_every_frame_with_timing() {
    let rig = Rig::new(builtin("h265", "aac")).await;
    let (rec, frames, audio) = record_and_check(&rig, "10").await;
    let video = rec.video_track().expect("video");
    assert!(
        matches!(video.sample_entries.first(), Some(mp4_atom::Codec::Hvc1(_))),
        "hvc1 sample entry"
    );
    assert!(video.video_codec().is_some());
    assert!(frames >= 225, "{frames} frames in 10 s at 25 fps");
    assert_eq!(audio.expect("audio").codec_name, "aac");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_b_frames_in_presentation_order() {
    let rig = Rig::clip("h265_bframes.mp4").await;
    let (rec, _, _) = record_and_check(&rig, "5").await;
    // check_against_camera compared each frame's presentation time with the camera's; ffprobe
    // must present them at those times too (the edit list makes the first 0).
    support::check::check_b_frames_in_presentation_order(&rec, &rig.out);
}

/// ffmpeg's own decoding of a raw G.711 fixture: what the recording must hold.
fn ffmpeg_decodes_raw(fixture: &str, format: &str, rate: u32) -> Vec<i16> {
    let rate = rate.to_string();
    let input = ["-f", format, "-ar", &rate, "-ac", "1"];
    support::tools::ffmpeg_mono_s16(&input, &support::rig::clip_path(fixture), &[])
}

/// The recording's audio is the camera's, looped, sample for sample.
fn assert_lossless(got: &[i16], tone: &[i16]) {
    assert!(got.len() > tone.len(), "more than one loop of audio");
    for (i, (g, w)) in got.iter().zip(tone.iter().cycle()).enumerate() {
        assert_eq!(g, w, "sample {i} differs from what the camera sent");
    }
}

async fn g711_case(audio: &str, fixture: &str, format: &str, rate: u32) {
    let rig = Rig::new(builtin("h264", audio)).await;
    let (rec, _, decoded) = record_and_check(&rig, "10").await;
    let decoded = decoded.expect("audio track");
    assert_eq!(
        decoded.codec_name, "pcm_s16be",
        "stored as 16-bit big-endian PCM"
    );
    assert_eq!(decoded.sample_rate, rate);
    let track = rec.audio_track().expect("audio");
    assert_eq!(track.timescale, rate);
    assert_lossless(&decoded.samples, &ffmpeg_decodes_raw(fixture, format, rate));
}

cases!(g711_case {
    h264_pcmu_10s_audio_kept_sample_for_sample: ("pcmu", "tone_8k.pcmu", "mulaw", 8000),
    h264_pcma_16khz_audio_kept_sample_for_sample: ("pcma", "tone_16k.pcma", "alaw", 16_000),
    // The camera's L16 is the A-law tone expanded: the same samples again.
    h264_l16_audio_kept_sample_for_sample: ("l16", "tone_16k.pcma", "alaw", 16_000),
});

/// Joining an open-GOP H.265 stream mid-GOP: the recording starts at the next CRA picture and
/// leaves out the RASL pictures that lean on what came before it, so every frame decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_recording_starts_at_a_cra_picture() {
    let mut config = support::config("h265_bframes.mp4");
    config.quirks.start_at_frame = 10;
    let rig = Rig::new(config).await;
    let run = rig.record(&["--duration", "4"]).await;
    run.assert_success();
    let rec = Recording::open(&rig.out).expect("read recording");
    let timing = rec.video_timing().expect("timing");
    let (first, msgs) = (&timing[0].sample, &timing[0].messages);
    assert!(first.is_sync);
    // The first recorded frame is the camera's first keyframe after frame 10: a CRA picture.
    let data = rec.read_sample(first).expect("sample");
    let types: Vec<u8> = retina_record::codec::h26x::nal_units(&data)
        .map(|n| n.map(|n| (n[0] >> 1) & 0x3F))
        .collect::<Result<_, _>>()
        .expect("NAL units");
    assert!(
        types.contains(&21),
        "first sample is a CRA picture: NAL types {types:?}"
    );
    assert!(!msgs.is_empty());
    let decoded = support::ffmpeg_decoded_video_frames(&rig.out).expect("ffmpeg is required");
    assert_eq!(
        decoded as usize,
        timing.len(),
        "ffmpeg decodes every recorded frame"
    );
    run.assert_says("before the first keyframe");
}

/// New VPS/SPS/PPS mid-stream (the camera switches to a 352x288 clip): a second `hvc1` sample
/// description, and ffmpeg decodes both sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_new_parameters_become_a_new_sample_description() {
    let rec = support::check::record_parameter_change("h265_aac.mp4", "h265_alt.mp4").await;
    let video = rec.video_track().expect("video");
    assert!(
        video
            .sample_entries
            .iter()
            .all(|e| matches!(e, mp4_atom::Codec::Hvc1(_)))
    );
}
