//! Third-party servers and packetizers, recorded with the default flags only
//! (`retina-record --url URL --duration 20 rec.mp4`): what a user who types nothing else gets,
//! for 20 s each.
//!
//! - rtsp-streaming-server (npm), a relay: ffmpeg's RTSP muxer publishes a clip to it (ANNOUNCE,
//!   RECORD) with ffmpeg's own RTP packetizers, and the recorder reads it from the client port.
//!   The relay takes no RTP over TCP, so the default falls back to UDP. Its PLAY answer has no
//!   `RTP-Info`.
//! - live555's proxy server (what `live555ProxyServer` runs, from PyPI's `liblivemedia`) in
//!   front of gst-rtsp-server: live555's RTSP server, its RTP packetizers and RTCP, over TCP.
//!
//! Each case checks the exit (0), the file (decoded by ffmpeg without an error, played by
//! GStreamer, the SEI on every frame, the tracks and codecs expected, composition offsets exactly
//! when the clip has B-frames), its timing data (`retina-record timing`: a row per video frame,
//! each with a capture time from the server's sender reports), and `probe --json` against the
//! same server. Test names say the server, the transport the default ended up on, the codecs.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use retina_record::mp4::read::Recording;

use crate::interop::have_interop_tools;
use crate::support::check::{check_b_frames_in_presentation_order, decoded_and_played};
use crate::support::rig::{Finished, record, recorder_command};
use crate::support::servers::{
    Live555Proxy, Media, StreamingServer, have_live555, have_streaming_server, make_clip,
};
use crate::support::timing::rows;
use crate::support::tools::{
    assert_probe_matches, ffmpeg_audio, ffprobe_video, have_tool, probe_json, stdout_of_success,
};

const fn media(video: &'static str, b_frames: bool, audio: Option<&'static str>) -> Media {
    Media {
        video,
        b_frames,
        audio,
    }
}

/// The tools the checks need besides the servers: ffmpeg, ffprobe, GStreamer.
fn have_check_tools() -> bool {
    ["ffmpeg", "ffprobe", "gst-launch-1.0", "gst-discoverer-1.0"]
        .iter()
        .all(|t| have_tool(t))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// A recording with the default flags: the run, and the wall-clock times it started and ended.
async fn record_default(dir: &Path, url: &str, secs: u32) -> (Finished, f64, f64) {
    let secs = secs.to_string();
    let started = unix_now();
    let run = record(dir, &["--url", url, "--duration", &secs, "rec.mp4"]).await;
    (run, started, unix_now())
}

/// The checks every case makes of `dir`/rec.mp4, a recording of `media` for `secs` s made
/// between the Unix times `started` and `ended` (`burst`: as for [`check_playable`]).
async fn check_file(dir: &Path, media: Media, secs: u32, (started, ended): (f64, f64), burst: f64) {
    let path = dir.join("rec.mp4");
    // 25 fps; up to a second waiting for the first keyframe, and a second for the handshake.
    let min_frames = 25 * (secs as usize - 2);
    check_playable(&path, min_frames, media, burst);

    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let codecs = stdout_of_success(&out, "ffprobe");
    assert_eq!(
        codecs.lines().map(str::trim).collect::<Vec<_>>(),
        media.recorded_codecs(),
        "the recording's streams"
    );

    let rec = Recording::open(&path).expect("read recording");
    let video = rec.video_track().expect("video track");
    let reordered = rec.track_samples(video.track_id).any(|s| s.cts_offset != 0);
    assert_eq!(
        reordered, media.b_frames,
        "composition offsets iff B-frames"
    );
    if media.b_frames {
        check_b_frames_in_presentation_order(&rec, &path);
    }

    // `timing`: one row per video frame, in order, each the frame's own RTP time, received
    // during the run, with a capture time from the server's sender reports. The servers run on
    // this machine's clock and send in real time: capture and receipt are close.
    // The rows are in presentation order.
    let mut timing = rec.video_timing().expect("timing");
    timing.sort_by_key(|t| t.sample.pts());
    let rows = rows(dir, &["rec.mp4"]).await;
    assert_eq!(rows.len(), timing.len(), "a timing row per video frame");
    let reports: usize = timing.iter().map(|t| t.sender_reports().count()).sum();
    let span = rows[rows.len() - 1].recv_unix - rows[0].recv_unix;
    let seen = format!(
        "{} frames over {span:.1} s, {reports} video sender reports",
        rows.len()
    );
    assert!(rows[0].keyframe, "the first frame is a keyframe");
    for (i, (row, t)) in rows.iter().zip(&timing).enumerate() {
        assert_eq!((row.file.as_str(), row.frame), ("rec.mp4", i), "{row:?}");
        assert_eq!(row.rtp, t.frame().expect("one 89H").rtp, "{row:?}");
        assert!(
            row.recv_unix > started - 1.0 && row.recv_unix < ended + 1.0,
            "{row:?}: received outside the run ({started}..{ended})"
        );
        assert!(
            ["sr", "sr-nominal"].contains(&row.capture_from.as_str()),
            "{row:?}; {seen}"
        );
        let latency = row.latency_s.expect("a latency");
        assert!(latency.abs() < 2.0, "{row:?}");
    }
}

/// `check_recording`'s checks (at least `min_frames` video frames, each with one `89H`, every
/// one decoded by ffmpeg and seen with its SEI by ffprobe; played by GStreamer), with its audio
/// check made for any frame size and packetizer: ffmpeg decodes the audio to the video's length,
/// give or take a frame at each end (an audio frame may begin before the first video frame or
/// after it, and end after the last or before it: up to two frames, 0.256 s with AAC at 8 kHz,
/// over `check_recording`'s 0.2 s); shorter too by up to `burst` s, the audio a packetizer
/// holds back to send in one packet, and by the B-frames' presentation delay and reorder lead.
fn check_playable(path: &Path, min_frames: usize, media: Media, burst: f64) {
    let rec = Recording::open(path).expect("read recording");
    let timing = rec.video_timing().expect("timing");
    assert!(timing.len() >= min_frames, "{} video frames", timing.len());
    for t in &timing {
        let frames = t.frames().count();
        assert_eq!(frames, 1, "sample at dts {} has {frames} 89H", t.sample.dts);
    }
    assert_eq!(
        rec.audio_track().is_some(),
        media.audio.is_some(),
        "audio track"
    );
    let video = rec.video_track().expect("video");
    if let Some(track) = rec.audio_track() {
        let audio = ffmpeg_audio(path).expect("ffmpeg is required here");
        let video_secs = rec.track_duration_secs(video);
        let samples = rec.track_samples(track.track_id);
        let frame = samples.map(|s| s.duration).max().unwrap_or(0);
        let frame_secs = f64::from(frame) / f64::from(track.timescale);
        let max_cts = rec
            .track_samples(video.track_id)
            .map(|s| s.cts_offset)
            .max();
        let lead = (video.media_start as f64 + max_cts.unwrap_or(0).max(0) as f64)
            / f64::from(video.timescale);
        let diff = audio.decoded_secs - video_secs;
        let frames = 0.01 + (2.0 * frame_secs).max(0.2);
        assert!(
            diff < frames && diff > -(frames + burst + lead),
            "ffmpeg decodes {} s of audio ({frame_secs} s frames); the video lasts {video_secs} s \
             ({lead} s of B-frame delay and reorder lead, {burst} s held back by the packetizer)",
            audio.decoded_secs
        );
    }
    decoded_and_played(path, timing.len());
}

/// `probe --json` against the server: `transport`, the video as ffprobe sees the served clip,
/// the audio's codec, rate and channels, each stream recorded and seen sending.
async fn check_probe(url: &str, clip: &Path, media: Media, transport: &str) {
    let report = probe_json(&[url]).await;
    assert_eq!(report["transport"], transport, "{report}");
    let streams = report["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), media.streams(), "{report}");
    assert_probe_matches(&report, &ffprobe_video(clip));
    if let Some(codec) = media.rtp_audio() {
        let audio = streams
            .iter()
            .find(|s| s["media"] == "audio")
            .unwrap_or_else(|| panic!("no audio: {report}"));
        assert_eq!(audio["codec"], codec, "{report}");
        assert_eq!(audio["recorded"], true, "{report}");
        assert_eq!(audio["audio"]["sample_rate"], 8000, "{report}");
        assert_eq!(audio["audio"]["channels"], 1, "{report}");
        assert!(audio["frames"].as_u64() > Some(0), "{report}");
    }
}

/// The relay refuses RTP over TCP: the default falls back to UDP and says so.
const FELL_BACK_TO_UDP: &str = "refused RTP over TCP (461 Unsupported Transport); using UDP";

/// rtsp-streaming-server relaying `media` as ffmpeg packetizes it, recorded `secs` s.
async fn streaming_server_case(media: Media, secs: u32) {
    if !(have_streaming_server() && have_check_tools()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // ffmpeg loops it (-stream_loop -1): the 20 s case goes round twice.
    let clip = make_clip(dir.path(), media, 10);
    let server = StreamingServer::start(&clip, media.streams()).await;
    let (run, started, ended) = record_default(dir.path(), &server.url, secs).await;
    run.assert_success();
    run.assert_says(FELL_BACK_TO_UDP);
    // ffmpeg's RTP muxer puts AAC frames together in one packet for up to its -muxdelay (0.7 s
    // by default), so up to 0.7 s of audio may still be held back when the recording stops.
    // (G.711 it cuts into packets of at most its payload size, under the frame tolerance.)
    let burst = if media.audio == Some("aac") { 0.7 } else { 0.0 };
    check_file(dir.path(), media, secs, (started, ended), burst).await;
    check_probe(&server.url, &clip, media, "udp").await;
}

cases!(streaming_server_case {
    rtsp_streaming_server_udp_h264_aac: (media("h264", false, Some("aac")), 20),
    rtsp_streaming_server_udp_h264_bframes_pcmu: (media("h264", true, Some("pcmu")), 20),
    rtsp_streaming_server_udp_h264_pcma: (media("h264", false, Some("pcma")), 20),
    rtsp_streaming_server_udp_h265_aac: (media("h265", false, Some("aac")), 20),
    rtsp_streaming_server_udp_h265_bframes_pcma: (media("h265", true, Some("pcma")), 20),
    rtsp_streaming_server_udp_h265_pcmu: (media("h265", false, Some("pcmu")), 20),
    rtsp_streaming_server_udp_h264_video_only: (media("h264", false, None), 20),
});

/// live555's proxy re-serving gst-rtsp-server's `media` with its own packetizers, recorded
/// `secs` s over TCP (live555 takes interleaved TCP: no fallback, and no warning).
async fn live555_case(media: Media, secs: u32) {
    if !(have_live555() && have_interop_tools()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Served once through, from the first PLAY: long enough for the recording and the probe.
    let clip = make_clip(dir.path(), media, secs + 20);
    let proxy = Live555Proxy::start(&clip, media).await;
    let (run, started, ended) = record_default(dir.path(), &proxy.url, secs).await;
    run.assert_success();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains("refused RTP over TCP"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    check_file(dir.path(), media, secs, (started, ended), 0.0).await;
    check_probe(&proxy.url, &clip, media, "tcp").await;
}

cases!(live555_case {
    live555_proxy_tcp_h264_aac: (media("h264", false, Some("aac")), 20),
    live555_proxy_tcp_h264_bframes_pcmu: (media("h264", true, Some("pcmu")), 20),
    live555_proxy_tcp_h265_pcma: (media("h265", false, Some("pcma")), 20),
    live555_proxy_tcp_h265_bframes_aac: (media("h265", true, Some("aac")), 20),
});

/// `retina-record probe URL` (the text a person reads): the stream count and transport, each
/// stream's codec, the video's size.
async fn probe_text(url: &str, media: Media, transport: &str) {
    let out =
        crate::support::lines::output(&mut recorder_command(&["probe", "--duration", "3", url]))
            .await;
    let text = stdout_of_success(&out, "retina-record probe");
    let says = |s: &str| assert!(text.contains(s), "probe does not say {s:?}: {text}");
    says(&format!(
        "{url}: {} stream(s), over {transport}",
        media.streams()
    ));
    says(&format!("stream 0: video {}/90000", media.video));
    says("320x240, ");
    if let Some(audio) = media.rtp_audio() {
        says(&format!("stream 1: audio {audio}/8000"));
        says("8000 Hz, 1 channel(s)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_rtsp_streaming_server_h264_aac() {
    if !(have_streaming_server() && have_check_tools()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let media = media("h264", false, Some("aac"));
    let clip = make_clip(dir.path(), media, 10);
    let server = StreamingServer::start(&clip, media.streams()).await;
    probe_text(&server.url, media, "UDP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_live555_proxy_h265_pcmu() {
    if !(have_live555() && have_interop_tools()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let media = media("h265", false, Some("pcmu"));
    let clip = make_clip(dir.path(), media, 20);
    let proxy = Live555Proxy::start(&clip, media).await;
    probe_text(&proxy.url, media, "TCP").await;
}
