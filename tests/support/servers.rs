//! Third-party RTSP servers for `tests/servers.rs`, each run as a child process on free ports:
//! rtsp-streaming-server (npm), a relay fed by ffmpeg's RTSP muxer, and live555's proxy server
//! (PyPI's `liblivemedia`) re-serving gst-rtsp-server; and the clips (made here with ffmpeg)
//! they serve. Readiness is an event each time: the server printing its ports, then the stream
//! answering (ffprobe reading its streams, or DESCRIBE answered 200).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::rig::spawn_announcing;
use super::tools::installed;

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
/// The venv `.ci/run` installs PyPI's `liblivemedia` (live555 built as a Python module) into.
pub const LIVE555_PYTHON: &str = "/opt/live555/bin/python";
/// Debian's Python, which has the GStreamer bindings (python3-gi), for gst-rtsp-server.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// What a clip holds: H.264 or H.265 video, with or without B-frames, and optionally AAC,
/// G.711 µ-law or A-law audio (8 kHz mono).
#[derive(Clone, Copy, Debug)]
pub struct Media {
    /// `h264` or `h265`.
    pub video: &'static str,
    pub b_frames: bool,
    /// `aac`, `pcmu` or `pcma`.
    pub audio: Option<&'static str>,
}

impl Media {
    /// The number of RTSP streams it is served as.
    pub fn streams(self) -> usize {
        1 + usize::from(self.audio.is_some())
    }

    /// `tests/interop/gst_rtsp_server.py`'s name for it (`h264-aac`, `h265`).
    pub fn gst_codecs(self) -> String {
        match self.audio {
            Some(a) => format!("{}-{a}", self.video),
            None => self.video.to_owned(),
        }
    }

    /// The SDP's encoding name of the audio, as `probe` reports it.
    pub fn rtp_audio(self) -> Option<&'static str> {
        self.audio.map(|a| match a {
            "aac" => "mpeg4-generic",
            other => other,
        })
    }

    /// ffprobe's codec names of the recording's streams: video, then audio (G.711 is stored
    /// as 16-bit linear PCM, `twos`).
    pub fn recorded_codecs(self) -> Vec<&'static str> {
        let video = match self.video {
            "h265" => "hevc",
            other => other,
        };
        let audio = self.audio.map(|a| match a {
            "aac" => "aac",
            _ => "pcm_s16be",
        });
        std::iter::once(video).chain(audio).collect()
    }
}

/// Makes a `secs` s 320x240 25 fps clip of `media` (a keyframe every second; B-frames: 2
/// between references) with ffmpeg, as Matroska in `dir`.
pub fn make_clip(dir: &Path, media: Media, secs: u32) -> PathBuf {
    let name = format!(
        "{}{}-{}.mkv",
        media.video,
        if media.b_frames { "-bframes" } else { "" },
        media.audio.unwrap_or("none")
    );
    let out = dir.join(name);
    let video = format!("testsrc2=size=320x240:rate=25:duration={secs}");
    let sine = format!("sine=frequency=440:sample_rate=8000:duration={secs}");
    let mut args: Vec<&str> = vec!["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", &video];
    if media.audio.is_some() {
        args.extend(["-f", "lavfi", "-i", &sine]);
    }
    args.extend(["-g", "25", "-pix_fmt", "yuv420p"]);
    let bf = if media.b_frames { "2" } else { "0" };
    let x265 = format!("log-level=error:bframes={bf}");
    match media.video {
        "h264" => args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-bf", bf]),
        "h265" => args.extend([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            &x265,
        ]),
        other => panic!("no video codec {other}"),
    }
    if let Some(audio) = media.audio {
        let codec = match audio {
            "aac" => "aac",
            "pcmu" => "pcm_mulaw",
            "pcma" => "pcm_alaw",
            other => panic!("no audio codec {other}"),
        };
        args.extend(["-c:a", codec, "-ar", "8000", "-ac", "1"]);
    }
    let out_s = out.to_str().expect("utf-8");
    args.push(out_s);
    crate::support::tools::make_with_ffmpeg(&args, &format!("the {media:?} clip"));
    out
}

/// Whether `node` runs and `npm ci --prefix tests/interop` installed rtsp-streaming-server;
/// with RETINA_RECORD_REQUIRE_TOOLS set, their absence fails.
pub fn have_streaming_server() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let package = Path::new(INTEROP).join("node_modules/rtsp-streaming-server/package.json");
    installed(
        node && package.exists(),
        "node or tests/interop/node_modules/rtsp-streaming-server (npm ci --prefix tests/interop)",
    )
}

/// Whether live555's proxy can run (PyPI's `liblivemedia` in [`LIVE555_PYTHON`]'s venv).
pub fn have_live555() -> bool {
    let ok = std::process::Command::new(LIVE555_PYTHON)
        .args(["-c", "import liblivemedia; liblivemedia.ProxyServer"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    installed(
        ok,
        "live555's proxy (liblivemedia from PyPI in /opt/live555, .ci/run)",
    )
}

/// rtsp-streaming-server (`tests/interop/rtsp_streaming_server.mjs`) with ffmpeg publishing a
/// clip to it in a loop, in real time, with its own RTP packetizers. The relay takes no RTP over
/// TCP, from publishers (501) or clients (461): both sides are UDP.
pub struct StreamingServer {
    _relay: tokio::process::Child,
    publisher: tokio::process::Child,
    /// Where clients read the clip: `rtsp://127.0.0.1:CLIENT_PORT/cam`.
    pub url: String,
    /// Where ffmpeg publishes it.
    pub publish_url: String,
}

impl StreamingServer {
    /// Starts the relay and the publisher; returns once ffprobe reads all `streams` of the
    /// clip from the relay's client port.
    pub async fn start(clip: &Path, streams: usize) -> StreamingServer {
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(format!("{INTEROP}/rtsp_streaming_server.mjs"))
            .stderr(Stdio::inherit());
        let (relay, ports) = spawn_announcing(cmd, "rtsp-streaming-server").await;
        let (publish, client) = ports
            .split_once(' ')
            .unwrap_or_else(|| panic!("rtsp-streaming-server announced {ports:?}"));
        let publish_url = format!("rtsp://127.0.0.1:{publish}/cam");
        let url = format!("rtsp://127.0.0.1:{client}/cam");
        let publisher = tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(clip)
            .args([
                "-c",
                "copy",
                "-f",
                "rtsp",
                "-rtsp_transport",
                "udp",
                &publish_url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start ffmpeg");
        let mut server = StreamingServer {
            _relay: relay,
            publisher,
            url,
            publish_url,
        };
        server.wait_readable(streams).await;
        // The relay serves the SDP ffmpeg announced: ffmpeg's packetizers are what is read.
        let sdp = describe(&server.url).await.expect("DESCRIBE of the relay");
        assert!(sdp.contains("a=tool:libavformat"), "{sdp}");
        server
    }

    /// Waits (30 s at most) until ffprobe reads `streams` streams at the relay's client URL:
    /// the relay answers DESCRIBE once ffmpeg has ANNOUNCEd, and is readable once it RECORDs.
    async fn wait_readable(&mut self, streams: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.publisher.try_wait().expect("ffmpeg") {
                panic!(
                    "ffmpeg stopped publishing to {}: {status}",
                    self.publish_url
                );
            }
            let out = tokio::time::timeout(
                Duration::from_secs(15),
                tokio::process::Command::new("ffprobe")
                    .args(["-v", "quiet", "-rtsp_transport", "udp"])
                    .args(["-show_entries", "stream=codec_name", "-of", "csv=p=0"])
                    .arg(&self.url)
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .output(),
            )
            .await;
            if let Ok(Ok(out)) = out
                && out.status.success()
                && String::from_utf8_lossy(&out.stdout).lines().count() == streams
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ffprobe did not read {streams} stream(s) at {} within 30 s",
                self.url
            );
            // Until ffmpeg has announced, the relay answers 404 at once: try again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// live555's proxy server (`tests/interop/live555_proxy.py`) re-serving gst-rtsp-server
/// (`tests/interop/gst_rtsp_server.py`), which serves a clip once through (not looped).
pub struct Live555Proxy {
    _backend: tokio::process::Child,
    _proxy: tokio::process::Child,
    /// The proxy's URL: `rtsp://127.0.0.1:PORT/cam`.
    pub url: String,
}

impl Live555Proxy {
    /// Starts gst-rtsp-server on `clip` of `media` and the proxy in front of it; returns once
    /// the proxy answers DESCRIBE with 200 (it has the back end's SDP).
    pub async fn start(clip: &Path, media: Media) -> Live555Proxy {
        let mut cmd = tokio::process::Command::new(SYSTEM_PYTHON);
        cmd.arg(format!("{INTEROP}/gst_rtsp_server.py"))
            .arg(clip)
            .arg(media.gst_codecs())
            .stderr(Stdio::inherit());
        let (backend, port) = spawn_announcing(cmd, "gst-rtsp-server").await;
        let mut cmd = tokio::process::Command::new(LIVE555_PYTHON);
        cmd.arg(format!("{INTEROP}/live555_proxy.py"))
            .arg(format!("rtsp://127.0.0.1:{port}/stream"))
            .stderr(Stdio::inherit());
        let (proxy, url) = spawn_announcing(cmd, "live555's proxy").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let sdp = loop {
            if let Some(answer) = describe(&url).await {
                break answer;
            }
            assert!(
                Instant::now() < deadline,
                "live555's proxy did not serve {url} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The stream is live555's own, not the back end's passed through.
        assert!(
            sdp.contains("a=tool:LIVE555 Streaming Media v2024.06.26"),
            "{sdp}"
        );
        Live555Proxy {
            _backend: backend,
            _proxy: proxy,
            url,
        }
    }
}

/// The answer to a DESCRIBE of `url` (`rtsp://127.0.0.1:PORT/…`), headers and SDP, if it is
/// `200 OK`.
pub async fn describe(url: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url
        .strip_prefix("rtsp://")
        .and_then(|rest| rest.split('/').next())
        .expect("rtsp://HOST:PORT/ URL");
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n");
    conn.write_all(request.as_bytes()).await.ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |reply: &[u8]| {
        let text = String::from_utf8_lossy(reply);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(str::to_owned)
            })
            .map_or(Some(0), |n| n.trim().parse::<usize>().ok())?;
        (body.len() >= length).then_some(())
    };
    while complete(&reply).is_none() {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => reply.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.starts_with("RTSP/1.0 200").then_some(text)
}
