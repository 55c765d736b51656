//! The third-party tools the tests check with: whether each is installed, and wrappers for
//! ffmpeg, ffprobe and GStreamer.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Set (CI does) to turn a missing tool into a failure instead of a skip.
const REQUIRE_TOOLS_ENV: &str = "RETINA_RECORD_REQUIRE_TOOLS";

/// Passes `found` through; when `what` (a tool or set of tools) was not found, fails the test if
/// [`REQUIRE_TOOLS_ENV`] is set, and otherwise says that what needs it is skipped.
pub fn installed(found: bool, what: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os(REQUIRE_TOOLS_ENV).is_none(),
            "{what} is not installed, and {REQUIRE_TOOLS_ENV} says it is required"
        );
        eprintln!("SKIPPED: {what} is not installed");
    }
    found
}

/// Whether `tool` can run; with [`REQUIRE_TOOLS_ENV`] set, its absence fails the test.
pub fn have_tool(tool: &str) -> bool {
    // ffmpeg's tools take `-version`, gst-launch `--version`, gst-discoverer only `--help`.
    let arg = match tool {
        "gst-discoverer-1.0" => "--help",
        t if t.starts_with("gst-") => "--version",
        _ => "-version",
    };
    let ok = std::process::Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    installed(ok, tool)
}

/// Runs `ffmpeg -v error <input_args> -i input <output_args>`, asserting that it succeeds and
/// prints no error; returns what it wrote to stdout.
fn ffmpeg(input_args: &[&str], input: &Path, output_args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(input_args)
        .arg("-i")
        .arg(input)
        .args(output_args)
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg failed to decode {}: {errors}",
        input.display()
    );
    out.stdout
}

/// ffprobe's `entries` of `path`'s stream `stream` (`v:0`, `a:0`) in format `of`, `extra` flags
/// choosing more.
fn ffprobe(path: &Path, stream: &str, entries: &str, of: &str, extra: &[&str]) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args(extra)
        .args(["-show_entries", entries, "-of", of])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Decodes the whole file with ffmpeg: every error it prints fails; returns the number of
/// video frames decoded. `None` when ffmpeg is not installed (and not required).
pub fn ffmpeg_decoded_video_frames(path: &Path) -> Option<u64> {
    if !have_tool("ffmpeg") || !have_tool("ffprobe") {
        return None;
    }
    ffmpeg(&[], path, &["-f", "null", "-"]);
    let count = "stream=nb_read_frames";
    let text = ffprobe(path, "v:0", count, "csv=p=0", &["-count_frames"]);
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("ffprobe frame count: {text:?}")),
    )
}

/// The first audio track as ffmpeg decodes it.
pub struct DecodedAudio {
    pub codec_name: String,
    pub sample_rate: u32,
    /// Mono 16-bit samples, at `sample_rate`.
    pub samples: Vec<i16>,
    pub decoded_secs: f64,
}

/// Decodes the first audio track with ffmpeg (asserting it reports no error); `None` without
/// ffmpeg/ffprobe.
pub fn ffmpeg_audio(path: &Path) -> Option<DecodedAudio> {
    if !have_tool("ffmpeg") || !have_tool("ffprobe") {
        return None;
    }
    let entries = "stream=codec_name,sample_rate";
    let text = ffprobe(path, "a:0", entries, "csv=p=0", &[]);
    let (codec_name, rate) = text
        .split_once(',')
        .unwrap_or_else(|| panic!("ffprobe audio stream: {text:?}"));
    let sample_rate: u32 = rate.parse().expect("sample rate");
    let samples = ffmpeg_mono_s16(&[], path, &["-map", "0:a:0"]);
    Some(DecodedAudio {
        codec_name: codec_name.to_owned(),
        sample_rate,
        decoded_secs: samples.len() as f64 / f64::from(sample_rate),
        samples,
    })
}

/// ffmpeg's decoding of `input` (read with `input_args`, e.g. a raw format) to mono 16-bit
/// samples, `output_args` choosing what; asserts that ffmpeg reports no error.
pub fn ffmpeg_mono_s16(input_args: &[&str], input: &Path, output_args: &[&str]) -> Vec<i16> {
    let output_args = [output_args, &["-ac", "1", "-f", "s16le", "-"]].concat();
    ffmpeg(input_args, input, &output_args)
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// ffprobe's view of each decoded video frame, in output (presentation) order.
#[derive(Debug)]
pub struct ProbedFrame {
    pub pts_time: f64,
    pub width: u32,
    pub has_unregistered_sei: bool,
}

pub fn ffprobe_video_frames(path: &Path) -> Option<Vec<ProbedFrame>> {
    if !have_tool("ffprobe") {
        return None;
    }
    let entries = "frame=pts_time,width:side_data=side_data_type";
    let text = ffprobe(path, "v:0", entries, "json", &["-show_frames"]);
    // Minimal JSON walk: frames are objects in order; fields are simple.
    let mut frames = Vec::new();
    for chunk in text.split("\"pts_time\"").skip(1) {
        let pts: f64 = chunk
            .trim_start_matches([':', ' ', '"'])
            .split('"')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("pts_time");
        let end = chunk.find("\"pts_time\"").unwrap_or(chunk.len());
        let body = &chunk[..end];
        let width = body
            .split("\"width\":")
            .nth(1)
            .and_then(|w| w.trim_start().split([',', '\n', '}']).next())
            .and_then(|w| w.trim().parse().ok())
            .unwrap_or(0);
        frames.push(ProbedFrame {
            pts_time: pts,
            width,
            has_unregistered_sei: body.contains("User Data Unregistered"),
        });
    }
    Some(frames)
}

/// gst-discoverer-1.0 reads it, and qtdemux ! decodebin decodes it to the end without error.
pub fn gstreamer_plays(path: &Path) {
    let out = std::process::Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("discoverer");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Done discovering"),
        "gst-discoverer: {text}"
    );
    assert!(
        !text.contains("An error was encountered"),
        "gst-discoverer: {text}"
    );
    let location = format!("location={}", path.display());
    let out = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "filesrc",
            &location,
            "!",
            "qtdemux",
            "!",
            "decodebin",
            "!",
            "fakesink",
        ])
        .output()
        .expect("gst-launch");
    assert!(
        out.status.success(),
        "GStreamer qtdemux ! decodebin failed on {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program` with `args` (30 s at most), asserting that it succeeds; returns its stdout.
async fn run_tool(program: &str, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} took over 30 s"))
    .expect("run");
    stdout_of_success(&out, &format!("{program} {args:?}"))
}

/// Asserts that the process `what` whose output is `out` succeeded (showing stdout and stderr
/// otherwise); returns its stdout.
pub fn stdout_of_success(out: &std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// ffprobe's `codec_name[,width,height]` line for each stream at the RTSP `url`.
pub async fn ffprobe_streams(url: &str, transport: &str) -> Vec<String> {
    let stdout = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            url,
        ],
    )
    .await;
    stdout.lines().map(|l| l.trim().to_owned()).collect()
}

/// GStreamer's rtspsrc depacketizes and decodes 50 frames of `video` (h264, h265) at the RTSP
/// `url`, then EOS: exit 0 only if frames arrived and decoded.
pub async fn gstreamer_decodes(url: &str, transport: &str, video: &str) {
    let location = format!("location={url}");
    let protocols = format!("protocols={transport}");
    let depay = format!("rtp{video}depay");
    let parse = format!("{video}parse");
    let dec = format!("avdec_{video}");
    run_tool(
        "gst-launch-1.0",
        &[
            "-q",
            "rtspsrc",
            &location,
            &protocols,
            "!",
            &depay,
            "!",
            &parse,
            "!",
            &dec,
            "!",
            "fakesink",
            "num-buffers=50",
        ],
    )
    .await;
}

/// What ffprobe says of a file's first video stream: what `retina-record probe` must find in
/// the stream served from it.
#[derive(Debug)]
pub struct ProbedVideo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub b_frames: bool,
    /// Median packets from one keyframe to the next.
    pub gop: u64,
}

pub fn ffprobe_video(path: &Path) -> ProbedVideo {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,width,height,avg_frame_rate,has_b_frames")
        .args(["-of", "default=nw=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = stdout_of_success(&out, "ffprobe");
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("ffprobe gave no {k}: {text}"))
            .to_owned()
    };
    let (num, den) = field("avg_frame_rate")
        .split_once('/')
        .map(|(n, d)| {
            (
                n.parse::<f64>().expect("num"),
                d.parse::<f64>().expect("den"),
            )
        })
        .expect("a rate");
    let flags = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let keys: Vec<usize> = stdout_of_success(&flags, "ffprobe")
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('K'))
        .map(|(i, _)| i)
        .collect();
    let mut gaps: Vec<usize> = keys.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    ProbedVideo {
        codec: field("codec_name"),
        width: field("width").parse().expect("width"),
        height: field("height").parse().expect("height"),
        fps: num / den,
        b_frames: field("has_b_frames") != "0",
        gop: gaps.get(gaps.len() / 2).copied().unwrap_or(0) as u64,
    }
}

/// `retina-record probe --json ARGS` (which must succeed), parsed.
pub async fn probe_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["probe", "--json", "--duration", "3"];
    all.extend_from_slice(args);
    let out = crate::support::lines::output(&mut super::rig::recorder_command(&all)).await;
    let stdout = stdout_of_success(&out, "retina-record probe");
    serde_json::from_str(&stdout).expect("probe's JSON")
}

/// Asserts that `report`'s first video stream is what ffprobe found in the served file.
#[track_caller]
pub fn assert_probe_matches(report: &serde_json::Value, served: &ProbedVideo) {
    let streams = report["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["media"] == "video")
        .unwrap_or_else(|| panic!("no video stream: {report}"));
    // RTP's encoding names against ffmpeg's codec names.
    let codec = match served.codec.as_str() {
        "hevc" => "h265",
        other => other,
    };
    assert_eq!(video["codec"].as_str(), Some(codec), "{report}");
    assert_eq!(video["recorded"], true, "{report}");
    let v = &video["video"];
    assert_eq!(
        v["width"].as_u64(),
        Some(u64::from(served.width)),
        "{report}"
    );
    assert_eq!(
        v["height"].as_u64(),
        Some(u64::from(served.height)),
        "{report}"
    );
    let fps = v["fps"].as_f64().expect("fps");
    assert!(
        (fps - served.fps).abs() < 0.1,
        "{fps} fps, ffprobe {}",
        served.fps
    );
    assert_eq!(v["b_frames"].as_bool(), Some(served.b_frames), "{report}");
    assert_eq!(v["gop_frames"].as_u64(), Some(served.gop), "{report}");
    assert!(video["frames"].as_u64().expect("frames") > 0);
}

/// Runs ffmpeg with `args` to make `what` (a test's input), asserting it did.
pub fn make_with_ffmpeg(args: &[&str], what: &str) {
    let status = std::process::Command::new("ffmpeg")
        .args(args)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg could not make {what}");
}
