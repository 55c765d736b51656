//! Shared test helpers: the camera, running the recorder binary, and checking recordings
//! with the project's reader and with ffmpeg/ffprobe.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Stdio;

use retina_record::camera::{self, Clip};

use retina_record::mp4::read::Recording;
use retina_record::timing::sei::TimingMessage;

pub use retina_record::camera::{Camera, CameraConfig};

pub fn clip_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clips")
        .join(name)
}

pub fn clip(name: &str) -> Clip {
    Clip::from_file(&clip_path(name)).expect("clip")
}

/// A camera serving `clip`, logging what it sends, its SR clock at a fixed point.
pub fn config(clip_name: &str) -> CameraConfig {
    let mut c = CameraConfig::new(vec![clip(clip_name)]);
    c.keep_log = true;
    c.ntp_base = 0xE000_0000_0000_0000;
    c
}

/// A camera, a scratch directory, and the recording's path in it.
pub struct Rig {
    pub cam: Camera,
    pub dir: tempfile::TempDir,
    pub out: std::path::PathBuf,
}

impl Rig {
    pub async fn new(config: CameraConfig) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("rec.mp4");
        Rig {
            cam: Camera::start(config).await.expect("camera"),
            dir,
            out,
        }
    }

    pub async fn clip(name: &str) -> Rig {
        Self::new(config(name)).await
    }

    pub fn partial(&self) -> std::path::PathBuf {
        retina_record::output::partial_path(&self.out)
    }

    /// Starts the recorder on this camera and output, with `extra` flags.
    pub fn spawn(&self, extra: &[&str]) -> Recorder {
        let url = self.cam.url();
        let out = self.out.to_str().expect("utf-8 path");
        let mut args = vec!["--url", &url];
        args.extend_from_slice(extra);
        args.push(out);
        Recorder::spawn(self.dir.path(), &args)
    }

    pub async fn record(&self, extra: &[&str]) -> Finished {
        self.spawn(extra).wait().await
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
    let run = rig.record(&["--duration", "5"]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let rec = Recording::open(&rig.out).expect("read");
    let (frames, _) = check_against_camera(&rec, &rig.cam);
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
    if let Some(probed) = ffprobe_video_frames(&rig.out) {
        let widths: std::collections::BTreeSet<u32> = probed.iter().map(|f| f.width).collect();
        assert_eq!(widths.into_iter().collect::<Vec<_>>(), vec![320, 352]);
    }
    if let Some(decoded) = ffmpeg_decoded_video_frames(&rig.out) {
        assert_eq!(decoded as usize, frames);
    }
    rec
}

/// Set (CI does) to turn a missing ffmpeg/ffprobe into a failure instead of a skip.
pub const REQUIRE_TOOLS_ENV: &str = "RETINA_RECORD_REQUIRE_TOOLS";

pub fn recorder_bin() -> &'static str {
    env!("CARGO_BIN_EXE_retina-record")
}

/// A recorder process whose stderr goes to a file in the test's directory.
pub struct Recorder {
    pub child: tokio::process::Child,
    pub log: PathBuf,
}

pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stderr: String,
}

impl Finished {
    /// The one `error:` line a failure must print (asserts there is exactly one).
    pub fn only_error(&self) -> &str {
        only_error(&self.stderr)
    }
}

/// The one `error:` line in `stderr` (asserts there is exactly one).
pub fn only_error(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "expected exactly one error line: {stderr}");
    errors[0]
}

impl Recorder {
    pub fn spawn(dir: &Path, args: &[&str]) -> Recorder {
        Self::spawn_with_env(dir, args, &[])
    }

    pub fn spawn_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Recorder {
        let log = dir.join(format!("recorder-{}.log", rand_suffix()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = tokio::process::Command::new(recorder_bin());
        cmd.args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RTSP_USERNAME")
            .env_remove("RTSP_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Recorder {
            child: cmd.spawn().expect("spawn recorder"),
            log,
        }
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill failed");
    }

    pub async fn wait(mut self) -> Finished {
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .expect("recorder did not exit within 60 s")
            .expect("wait");
        let stderr = std::fs::read_to_string(&self.log).unwrap_or_default();
        Finished { status, stderr }
    }
}

/// Starts a server that announces itself (URL or port) on its first stdout line; returns the
/// process (killed when dropped) and that line.
pub async fn spawn_announcing(
    mut cmd: tokio::process::Command,
    what: &str,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        tokio::io::BufReader::new(stdout).lines().next_line().await
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not start within 20 s"))
    .expect("read stdout")
    .unwrap_or_else(|| panic!("{what} exited without announcing itself"));
    (child, line.trim().to_owned())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub async fn record(dir: &Path, args: &[&str]) -> Finished {
    Recorder::spawn(dir, args).wait().await
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
    if !ok {
        assert!(
            std::env::var_os(REQUIRE_TOOLS_ENV).is_none(),
            "{tool} is not installed, and {REQUIRE_TOOLS_ENV} says it is required"
        );
        eprintln!("SKIPPED PART: {tool} is not installed");
    }
    ok
}

/// Decodes the whole file with ffmpeg: every error it prints fails; returns the number of
/// video frames decoded. `None` when ffmpeg is not installed (and not required).
pub fn ffmpeg_decoded_video_frames(path: &Path) -> Option<u64> {
    if !have_tool("ffmpeg") || !have_tool("ffprobe") {
        return None;
    }
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg failed to decode {}: {errors}",
        path.display()
    );
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.trim()
            .parse()
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
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "stream=codec_name,sample_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
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
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(input_args)
        .arg("-i")
        .arg(input)
        .args(output_args)
        .args(["-ac", "1", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg failed to decode {}: {errors}",
        input.display()
    );
    out.stdout
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
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_frames"])
        .args([
            "-show_entries",
            "frame=pts_time,width:side_data=side_data_type",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
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

/// Checks a recording against what the camera sent: every video frame between the first and
/// last recorded ones is there, presented at its own RTP time, with exactly one `89H` holding
/// its RTP timestamp and a receive time just after the camera sent it; every video sender
/// report is there as `o8B`, in the first frame after it, and no audio report is.
///
/// Returns (video frames, seconds of video).
pub fn check_against_camera(rec: &Recording, cam: &Camera) -> (usize, f64) {
    let log = cam.log();
    let cam_video: Vec<&camera::SentFrame> = log.frames.iter().filter(|f| f.stream == 0).collect();
    let timing = rec.video_timing().expect("video timing");
    assert!(!timing.is_empty(), "no video frames recorded");

    let mut recorded_idx = Vec::new();
    let mut all_reports = Vec::new();
    let mut delays = Vec::new();
    for timed in &timing {
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
        // Received after it was sent (5 ms slack: the camera notes the time after its write
        // returns, and the reader may already have it), and not absurdly later.
        let five_ms = (5u64 << 32) / 1000;
        assert!(
            t.recv + five_ms >= sent && t.recv - sent.min(t.recv) < (5u64 << 32),
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

    // Sender reports: exactly the camera's video SRs sent before the last recorded frame.
    let video_srs: Vec<_> = log.reports.iter().filter(|r| r.stream == 0).collect();
    let audio_srs: Vec<_> = log.reports.iter().filter(|r| r.stream == 1).collect();
    for (_, sr) in &all_reports {
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
    for (idx, sr) in &all_reports {
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
    let v = rec.video_track().expect("video");
    (timing.len(), rec.track_duration_secs(v))
}
