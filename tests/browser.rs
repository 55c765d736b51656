//! Third-party players out: headless Chromium (driven by playwright-core) plays recordings,
//! finished and killed, to their end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use retina_record::camera::Camera;
use retina_record::mp4::read::Recording;

use crate::support::rig::{Recorder, config};
use crate::support::tools::{installed, stdout_of_success};

const PLAYER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/play_in_chromium.mjs"
);

const PLAYWRIGHT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/node_modules/playwright-core"
);

pub(crate) fn have_chromium() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Path::new(PLAYWRIGHT).exists()
        && std::process::Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    installed(
        ok,
        "Chromium, node or tests/interop/node_modules/playwright-core (npm ci)",
    )
}

/// Serves `dir`'s files over HTTP/1.0 on loopback (whole files, no ranges: enough to play a
/// file front to back). Returns the port.
pub(crate) async fn serve_dir(dir: PathBuf) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 2048];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req);
                let name = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let path = dir.join(name);
                let (status, body, kind) = match (name.contains(".."), std::fs::read(&path)) {
                    (false, Ok(body)) => {
                        let kind = if name.ends_with(".html") {
                            "text/html"
                        } else {
                            "video/mp4"
                        };
                        ("200 OK", body, kind)
                    }
                    _ => ("404 Not Found", Vec::new(), "text/plain"),
                };
                let head = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            });
        }
    });
    port
}

/// A page whose <video> plays `file` and reports in `window.result`.
fn write_player_page(dir: &Path, file: &str) -> String {
    let page = format!("play-{file}.html");
    let html = format!(
        r#"<!doctype html>
<video id="v" src="{file}" muted playsinline></video>
<script>
  const v = document.getElementById("v");
  let maxTime = 0, advances = 0;
  const report = (extra) => {{
    window.result = Object.assign({{ maxTime, advances, duration: v.duration }}, extra);
  }};
  v.addEventListener("timeupdate", () => {{
    if (v.currentTime > maxTime) {{ maxTime = v.currentTime; advances++; }}
  }});
  v.addEventListener("ended", () => report({{ ended: true, error: null }}));
  v.addEventListener("error", () => report({{
    ended: false,
    error: v.error ? `${{v.error.code}} ${{v.error.message}}` : "error",
  }}));
  v.play().catch((e) => report({{ ended: false, error: `play(): ${{e}}` }}));
</script>
"#
    );
    std::fs::write(dir.join(&page), html).expect("write page");
    page
}

/// Plays `file` in headless Chromium; it must reach the end, time advancing, no error.
pub(crate) async fn chromium_plays(dir: &Path, port: u16, file: &str, media_secs: f64) {
    let page = write_player_page(dir, file);
    let url = format!("http://127.0.0.1:{port}/{page}");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(PLAYER)
            .arg(&url)
            .arg("40000")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished in time")
    .expect("node");
    let report = stdout_of_success(&out, &format!("Chromium did not play {file} to the end"));
    let number = |key: &str| -> f64 {
        report
            .split(&format!("\"{key}\":"))
            .nth(1)
            .and_then(|v| v.split([',', '}']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(number("advances") >= 5.0, "currentTime advanced: {report}");
    assert!(
        (number("maxTime") - media_secs).abs() < 0.3,
        "played to {} of {media_secs} s: {report}",
        number("maxTime")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_finished_and_killed_h264_recordings() {
    if !have_chromium() {
        return;
    }
    // One camera per recording, so that "4 s sent" means this recording's session.
    let cam = Camera::start(config("h264_aac.mp4")).await.expect("camera");
    let cam2 = Camera::start(config("h264_aac.mp4")).await.expect("camera");
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, url2) = (cam.url(), cam2.url());
    let finished = Recorder::spawn(
        dir.path(),
        &["--url", &url, "--duration", "4", "finished.mp4"],
    );
    let killed = Recorder::spawn(dir.path(), &["--url", &url2, "killed.mp4"]);
    cam2.wait_sent(4.0).await;
    killed.signal(libc::SIGKILL);
    killed.wait().await;
    let run = finished.wait().await;
    run.assert_success();

    let port = serve_dir(dir.path().to_owned()).await;
    for file in ["finished.mp4", "killed.mp4.partial"] {
        let rec = Recording::open(&dir.path().join(file)).expect("recording");
        let secs = rec.track_duration_secs(rec.video_track().expect("video"));
        assert!(secs >= 3.0, "{file}: {secs} s");
        chromium_plays(dir.path(), port, file, secs).await;
    }
}
