//! Interop: third-party RTSP servers in, third-party players out.
//!
//! Servers: GStreamer's gst-rtsp-server (through `tests/interop/gst_rtsp_server.py`) serving
//! clips made here with ffmpeg. Every recording must decode frame for frame in ffmpeg, carry
//! the timing SEI on every frame (read by us and by ffprobe), and play in GStreamer.
//! Each test's name says the server, transport and codecs it covers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use retina_record::mp4::read::Recording;

use crate::support::check::check_recording;
use crate::support::rig::{Finished, record, spawn_announcing};
use crate::support::tools::{
    assert_probe_matches, ffprobe_video, have_tool, installed, probe_json,
};

const GST_SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/gst_rtsp_server.py"
);
/// Debian's Python, which has the GStreamer bindings (python3-gi).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Makes an 8 s 320x240 25 fps clip for `codecs` (`h264-aac`, `h264` with B-frames,
/// `h265-aac`, `h264-pcmu`, `h264-pcma`, `h264-aac+pcmu`) with ffmpeg.
pub(crate) fn make_clip(dir: &Path, codecs: &str) -> PathBuf {
    make_clip_secs(dir, codecs, 8)
}

pub(crate) fn make_clip_secs(dir: &Path, codecs: &str, secs: u32) -> PathBuf {
    let out = dir.join(format!("{codecs}.mkv"));
    let video = format!("testsrc2=size=320x240:rate=25:duration={secs}");
    let mut args: Vec<&str> = vec!["-v", "error", "-y", "-f", "lavfi", "-i", &video];
    let sine = format!("sine=frequency=440:sample_rate=16000:duration={secs}");
    if codecs.contains('-') {
        args.extend(["-f", "lavfi", "-i", &sine, "-map", "0:v"]);
    }
    args.extend(["-g", "25", "-pix_fmt", "yuv420p"]);
    match codecs {
        c if c.starts_with("h265") => args.extend([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
        ]),
        "h264" => args.extend(["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"]),
        _ => args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"]),
    }
    let audio = codecs.split_once('-').map_or("", |(_, a)| a);
    let mut owned: Vec<String> = Vec::new();
    for (i, codec) in audio.split('+').filter(|a| !a.is_empty()).enumerate() {
        let (c, rate) = match codec {
            "aac" => ("aac", "16000"),
            "pcmu" => ("pcm_mulaw", "8000"),
            "pcma" => ("pcm_alaw", "8000"),
            other => panic!("no audio codec {other}"),
        };
        owned.extend([
            "-map".into(),
            "1:a".into(),
            format!("-c:a:{i}"),
            c.into(),
            format!("-ar:a:{i}"),
            rate.into(),
        ]);
    }
    args.extend(owned.iter().map(String::as_str));
    args.extend(["-ac", "1"]);
    let out_s = out.to_str().expect("utf-8");
    args.push(out_s);
    crate::support::tools::make_with_ffmpeg(&args, &format!("the {codecs} clip"));
    out
}

/// gst-rtsp-server serving one clip on a free port.
pub(crate) struct GstServer {
    _child: tokio::process::Child,
    pub(crate) url: String,
}

impl GstServer {
    async fn start(clip: &Path, codecs: &str, auth: Option<(&str, &str, &str)>) -> GstServer {
        Self::start_with(clip, codecs, auth, None).await
    }

    /// Serving RTSPS with the PEM files `(cert, key)`, and `auth` (method, user, password).
    pub(crate) async fn start_tls(
        clip: &Path,
        codecs: &str,
        auth: (&str, &str, &str),
        (cert, key): (&str, &str),
    ) -> GstServer {
        Self::start_with(clip, codecs, Some(auth), Some((cert, key))).await
    }

    async fn start_with(
        clip: &Path,
        codecs: &str,
        auth: Option<(&str, &str, &str)>,
        tls: Option<(&str, &str)>,
    ) -> GstServer {
        let mut cmd = tokio::process::Command::new(SYSTEM_PYTHON);
        cmd.arg(GST_SERVER).arg(clip).arg(codecs);
        if let Some((method, user, password)) = auth {
            cmd.args(["--auth", method, user, password]);
        }
        if let Some((cert, key)) = tls {
            cmd.args(["--tls", cert, key]);
        }
        cmd.stderr(Stdio::inherit());
        let (child, port) = spawn_announcing(cmd, "gst-rtsp-server").await;
        GstServer {
            _child: child,
            url: format!("rtsp://127.0.0.1:{port}/stream"),
        }
    }
}

/// Interop tools this file needs; with RETINA_RECORD_REQUIRE_TOOLS set, all must be there.
pub(crate) fn have_interop_tools() -> bool {
    let python_gi = std::process::Command::new(SYSTEM_PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0')",
        ])
        .status()
        .is_ok_and(|s| s.success());
    installed(python_gi, "python3-gi with gir1.2-gst-rtsp-server-1.0")
        && ["ffmpeg", "ffprobe", "gst-launch-1.0", "gst-discoverer-1.0"]
            .iter()
            .all(|t| have_tool(t))
}

/// Records 4 s from `url` over `transport` into `dir`/rec.mp4.
pub(crate) async fn record_4s(dir: &Path, url: &str, transport: &str) -> Finished {
    record(
        dir,
        &[
            "--url",
            url,
            "--transport",
            transport,
            "--duration",
            "4",
            "rec.mp4",
        ],
    )
    .await
}

async fn gst_case(codecs: &str, transport: &str, expect_audio: bool) {
    if !have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), codecs);
    let server = GstServer::start(&clip, codecs, None).await;
    let run = record_4s(dir.path(), &server.url, transport).await;
    run.assert_success();
    if transport == "tcp" {
        // Nothing can be lost over TCP: a warning here is a false alarm (0.2 warned of one
        // lost packet on every such recording).
        let warnings: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains(" WARN "))
            .collect();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
    check_recording(&dir.path().join("rec.mp4"), 90, expect_audio);
}

cases!(gst_case {
    gst_rtsp_server_tcp_h264_aac: ("h264-aac", "tcp", true),
    gst_rtsp_server_udp_h264_aac: ("h264-aac", "udp", true),
    gst_rtsp_server_tcp_h264_bframes: ("h264", "tcp", false),
    gst_rtsp_server_udp_h264_bframes: ("h264", "udp", false),
    gst_rtsp_server_tcp_h265_aac: ("h265-aac", "tcp", true),
    gst_rtsp_server_udp_h265_aac: ("h265-aac", "udp", true),
    gst_rtsp_server_tcp_h264_pcmu: ("h264-pcmu", "tcp", true),
    gst_rtsp_server_udp_h264_pcmu: ("h264-pcmu", "udp", true),
    gst_rtsp_server_tcp_h264_pcma: ("h264-pcma", "tcp", true),
});

/// The SEI as ffmpeg reads it (its `trace_headers` bitstream filter), not as we do: each SEI
/// user-data message's UUID and payload text, per video packet in decode order.
fn ffmpeg_sei_messages(path: &Path) -> Vec<Vec<(String, String)>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "trace", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:v",
            "-c",
            "copy",
            "-bsf:v",
            "trace_headers",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg trace_headers failed");
    let byte = |line: &str| -> u8 {
        line.rsplit(" = ")
            .next()
            .and_then(|v| v.trim().parse().ok())
            .expect("a traced byte")
    };
    let mut packets: Vec<Vec<(String, String)>> = Vec::new();
    let (mut uuid, mut payload) = (Vec::new(), Vec::new());
    let flush =
        |packets: &mut Vec<Vec<(String, String)>>, uuid: &mut Vec<u8>, payload: &mut Vec<u8>| {
            if !uuid.is_empty() {
                let m = (
                    String::from_utf8_lossy(uuid).into_owned(),
                    String::from_utf8_lossy(payload).into_owned(),
                );
                packets.last_mut().expect("a packet").push(m);
            }
            uuid.clear();
            payload.clear();
        };
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if line.contains("trace_headers") && line.contains("Packet: ") {
            flush(&mut packets, &mut uuid, &mut payload);
            packets.push(Vec::new());
        } else if line.contains("uuid_iso_iec_11578[") {
            if line.contains("uuid_iso_iec_11578[0]") {
                flush(&mut packets, &mut uuid, &mut payload);
            }
            uuid.push(byte(line));
        } else if line.contains("user_data_payload_byte[") {
            payload.push(byte(line));
        }
    }
    flush(&mut packets, &mut uuid, &mut payload);
    packets
}

/// gst-rtsp-server keeps its own clock, which this test does not control: `timing`'s capture
/// times must agree with the same reconstruction done here, independently, from ffmpeg's
/// reading of the SEI (RTP extended over wraps, a least-squares line through the sender
/// reports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gst_rtsp_server_timing_agrees_with_a_fit_of_ffmpegs_sei() {
    if !have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip_secs(dir.path(), "h264-aac", 16);
    let server = GstServer::start(&clip, "h264-aac", None).await;
    let run = record(
        dir.path(),
        &["--url", &server.url, "--duration", "15", "rec.mp4"],
    )
    .await;
    run.assert_success();
    let rec = dir.path().join("rec.mp4");

    let unix = |ntp: u64| {
        (ntp >> 32) as f64 - 2_208_988_800.0 + (ntp & 0xFFFF_FFFF) as f64 / 4_294_967_296.0
    };
    let field = |json: &serde_json::Value, key: &str| json[key].as_u64().expect(key);
    // (extended RTP, receive time) per frame, and (extended RTP, NTP time) per report.
    let mut frames: Vec<(i64, f64)> = Vec::new();
    let mut reports: Vec<(i64, f64)> = Vec::new();
    let mut last: Option<(u32, i64)> = None;
    for packet in ffmpeg_sei_messages(&rec) {
        let mut srs = Vec::new();
        for (uuid, payload) in packet {
            // x264 writes its settings as user data too.
            if !uuid.starts_with("strawlab.org/") {
                continue;
            }
            let json: serde_json::Value = serde_json::from_str(&payload).expect("JSON payload");
            match uuid.as_str() {
                "strawlab.org/o8B" => srs.push((field(&json, "rtp") as u32, field(&json, "ntp"))),
                "strawlab.org/89H" => {
                    let rtp = field(&json, "rtp") as u32;
                    let ext = last.map_or(i64::from(rtp), |(raw, ext)| {
                        ext + i64::from(rtp.wrapping_sub(raw) as i32)
                    });
                    last = Some((rtp, ext));
                    frames.push((ext, unix(field(&json, "recv"))));
                    for &(sr_rtp, ntp) in &srs {
                        reports.push((ext + i64::from(sr_rtp.wrapping_sub(rtp) as i32), unix(ntp)));
                    }
                }
                other => panic!("unexpected user data {other}"),
            }
        }
    }
    reports.sort_by_key(|r| r.0);
    reports.dedup_by(|a, b| a.0 == b.0);
    assert!(
        reports.len() >= 2,
        "gst-rtsp-server sent {} video sender reports",
        reports.len()
    );
    let (x0, y0) = reports[0];
    let n = reports.len() as f64;
    let (mx, my) = reports.iter().fold((0.0, 0.0), |(a, b), &(x, y)| {
        (a + (x - x0) as f64 / n, b + (y - y0) / n)
    });
    let (sxy, sxx) = reports.iter().fold((0.0, 0.0), |(a, b), &(x, y)| {
        let dx = (x - x0) as f64 - mx;
        (a + dx * ((y - y0) - my), b + dx * dx)
    });
    let slope = sxy / sxx;
    let capture = |ext: i64| y0 + my + slope * ((ext - x0) as f64 - mx);

    let rows = crate::support::timing::rows(dir.path(), &["rec.mp4"]).await;
    assert_eq!(rows.len(), frames.len(), "a row per frame ffmpeg sees");
    let mut by_rtp: std::collections::HashMap<u32, (f64, f64)> = std::collections::HashMap::new();
    for &(ext, recv) in &frames {
        by_rtp.insert(ext as u32, (recv, capture(ext)));
    }
    let mut worst = 0.0_f64;
    for r in &rows {
        let (recv, capture) = by_rtp[&r.rtp];
        assert!((r.recv_unix - recv).abs() < 1e-6, "{r:?}: recv {recv}");
        assert_eq!(r.capture_from, "sr");
        worst = worst.max((r.capture_unix.expect("capture") - capture).abs());
    }
    eprintln!(
        "gst-rtsp-server: {} frames, {} sender reports, RTP clock {:+.1} ppm; timing and the \
         independent fit differ by at most {:.1} µs",
        rows.len(),
        reports.len(),
        (1.0 / slope / 90_000.0 - 1.0) * 1e6,
        worst * 1e6
    );
    assert!(worst < 20e-6, "{worst} s apart");
}

/// `retina-record probe` on gst-rtsp-server serving a clip: the video as ffprobe sees the
/// served file, the audio at its rate, over TCP.
async fn gst_probe_case(codecs: &str, audio_rate: u64) {
    if !have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip_secs(dir.path(), codecs, 12);
    let server = GstServer::start(&clip, codecs, None).await;
    let report = probe_json(&[&server.url]).await;
    assert_probe_matches(&report, &ffprobe_video(&clip));
    assert_eq!(report["transport"], "tcp");
    if audio_rate > 0 {
        let audio = report["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["media"] == "audio"))
            .unwrap_or_else(|| panic!("no audio: {report}"));
        assert_eq!(audio["recorded"], true, "{report}");
        assert_eq!(
            audio["audio"]["sample_rate"].as_u64(),
            Some(audio_rate),
            "{report}"
        );
        assert!(audio["frames"].as_u64() > Some(0), "{report}");
    }
}

cases!(gst_probe_case {
    probe_gst_rtsp_server_h264_aac: ("h264-aac", 16000),
    probe_gst_rtsp_server_h265_pcmu: ("h265-pcmu", 8000),
    probe_gst_rtsp_server_h264_bframes: ("h264", 0),
});

/// Two audio streams (AAC, then PCMU): the default takes the first and says so; the flags pick
/// by SDP index, and a wrong index is a usage error naming what the camera offers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_choice_by_sdp_index() {
    if !have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let codecs = "h264-aac+pcmu";
    let clip = make_clip(dir.path(), codecs);
    let server = GstServer::start(&clip, codecs, None).await;
    // Records 2 s into `name` with `extra` flags: the run, and the name of the audio track's
    // sample entry (its variant name: Mp4a, Twos, ...).
    let record_2s = async |extra: &[&str], name: &str| {
        let args = [&["--url", &server.url, "--duration", "2"], extra, &[name]].concat();
        let run = record(dir.path(), &args).await;
        run.assert_success();
        let rec = Recording::open(&dir.path().join(name)).expect("read recording");
        let audio = rec.audio_track().expect("audio track");
        let entry = format!("{:?}", audio.sample_entries.first().expect("sample entry"));
        (run, entry.split('(').next().unwrap_or_default().to_owned())
    };

    let (default, entry) = record_2s(&[], "default.mp4").await;
    assert!(entry == "Mp4a", "{entry}");
    default.assert_says("recording stream 1 (audio mpeg4-generic/16000)");
    default.assert_says("ignoring stream 2 (audio pcmu/8000): already recording stream 1");

    let (chosen, entry) = record_2s(&["--audio-stream", "2"], "chosen.mp4").await;
    assert!(entry == "Twos", "{entry}");
    chosen.assert_says("ignoring stream 1 (audio mpeg4-generic/16000): stream 2 was chosen");
    check_recording(&dir.path().join("chosen.mp4"), 40, true);

    for (flag, n, says) in [
        (
            "--audio-stream",
            "0",
            "--audio-stream 0: stream 0 (video h264/90000) is not an audio stream",
        ),
        (
            "--video-stream",
            "3",
            "--video-stream 3: the camera offers 3 stream(s), numbered from 0",
        ),
    ] {
        let out = format!("bad{flag}.mp4");
        let run = record(dir.path(), &["--url", &server.url, flag, n, &out]).await;
        assert_eq!(run.error_exit(2), format!("error: {says}"));
        assert!(!dir.path().join(&out).exists());
    }
}

async fn auth_case(method: &str) {
    if !have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "h264-aac");
    let server = GstServer::start(&clip, "h264-aac", Some((method, "viewer", "s3cret-pw"))).await;
    // Wrong password: one clear line, exit 1, no password echoed, no retry storm.
    let bad = server.url.replace("rtsp://", "rtsp://viewer:wrong-pw@");
    let started = std::time::Instant::now();
    let run = record(dir.path(), &["--url", &bad, "--duration", "2", "bad.mp4"]).await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up promptly"
    );
    assert!(!run.stderr.contains("wrong-pw"), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.ends_with("rejected the credentials (401 Unauthorized)"),
        "{last}"
    );
    // No credentials at all: says they are needed.
    let run = record(
        dir.path(),
        &["--url", &server.url, "--duration", "2", "none.mp4"],
    )
    .await;
    assert_eq!(run.status.code(), Some(1));
    run.assert_says("requires credentials");
    // Right password, from a file.
    std::fs::write(dir.path().join("pw"), "s3cret-pw\n").expect("write");
    let run = record(
        dir.path(),
        &[
            "--url",
            &server.url,
            "--username",
            "viewer",
            "--password-file",
            "pw",
            "--duration",
            "3",
            "ok.mp4",
        ],
    )
    .await;
    run.assert_success();
    assert!(!run.stderr.contains("s3cret-pw"));
    check_recording(&dir.path().join("ok.mp4"), 65, true);
}

cases!(auth_case {
    gst_rtsp_server_tcp_basic_auth: ("basic"),
    gst_rtsp_server_tcp_digest_auth: ("digest"),
});
