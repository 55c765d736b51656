//! Interop with VLC's RTSP server, a live broadcast that refuses RTP over TCP: probed and
//! recorded over UDP, by `--transport auto`'s fallback and by asking, and refused over TCP with
//! one clear line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::interop::{have_interop_tools, make_clip_secs, record_4s};
use crate::support::check::check_recording;
use crate::support::rig::Finished;
use crate::support::tools::{assert_probe_matches, ffprobe_video, installed, probe_json};

/// VLC refuses RTP over TCP: probe says so by reporting UDP, and still reads the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_vlc_over_udp() {
    if !have_vlc() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip_secs(dir.path(), "h264-aac", 30);
    let server = VlcServer::start(&clip).await;
    let report = probe_json(&[&server.url]).await;
    assert_eq!(report["transport"], "udp", "{report}");
    assert_probe_matches(&report, &ffprobe_video(&clip));
}

/// VLC's RTSP server (`cvlc --sout '#rtp{sdp=rtsp://…}'`), a live broadcast that refuses
/// interleaved TCP. VLC will not run as root, so as root it runs as `nobody`, under `runuser`
/// in a process group of its own, which is killed whole when the server is dropped (killing
/// `runuser` alone left VLC running).
struct VlcServer {
    _child: tokio::process::Child,
    group: i32,
    url: String,
}

impl Drop for VlcServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this server started; no memory is involved.
        unsafe { libc::kill(-self.group, libc::SIGKILL) };
    }
}

impl VlcServer {
    async fn start(clip: &Path) -> VlcServer {
        use std::os::unix::fs::PermissionsExt as _;
        // Readable by `nobody`.
        let dir = clip.parent().expect("dir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(clip, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("rtsp://127.0.0.1:{port}/stream");
        let sout = format!("#rtp{{sdp={url}}}");
        // SAFETY: getuid(2) has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        let mut cmd = tokio::process::Command::new(if root { "runuser" } else { "cvlc" });
        if root {
            cmd.args(["-u", "nobody", "--", "cvlc"]);
        }
        cmd.args(["-q", "--intf", "dummy"])
            .arg(clip)
            .args(["--sout", &sout]);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start cvlc");
        let group = child.id().expect("running") as i32;
        // VLC says nothing when it is ready. It listens before its stream is set up (and
        // answers DESCRIBE with 500 until then), so ready means a 200 to DESCRIBE.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !describe_succeeds(port, &url).await {
            assert!(
                std::time::Instant::now() < deadline,
                "VLC did not serve {url} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        VlcServer {
            _child: child,
            group,
            url,
        }
    }
}

/// Whether a DESCRIBE of `url` gets `200 OK`.
async fn describe_succeeds(port: u16, url: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n");
    if conn.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut reply)).await;
    matches!(read, Ok(Ok(n)) if reply[..n].starts_with(b"RTSP/1.0 200"))
}

fn have_vlc() -> bool {
    let ok = std::process::Command::new("cvlc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    installed(ok, "VLC (cvlc)") && have_interop_tools()
}

/// Records 4 s from VLC over `transport`: the run and its directory. `None` without VLC.
async fn vlc_case(transport: &str) -> Option<(Finished, tempfile::TempDir)> {
    if !have_vlc() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Longer than the recording: VLC ends its RTSP sessions when the input ends.
    let clip = make_clip_secs(dir.path(), "h264-aac", 30);
    let server = VlcServer::start(&clip).await;
    Some((record_4s(dir.path(), &server.url, transport).await, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_auto_falls_back_to_udp_h264_aac() {
    let Some((run, dir)) = vlc_case("auto").await else {
        return;
    };
    run.assert_success();
    run.assert_says("refused RTP over TCP (461 Unsupported Transport); using UDP");
    // VLC's broadcast is joined mid-stream: up to a second before the first keyframe.
    check_recording(&dir.path().join("rec.mp4"), 60, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_udp_h264_aac() {
    let Some((run, dir)) = vlc_case("udp").await else {
        return;
    };
    run.assert_success();
    check_recording(&dir.path().join("rec.mp4"), 60, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlc_tcp_is_refused_with_one_clear_line() {
    let Some((run, dir)) = vlc_case("tcp").await else {
        return;
    };
    let error = run.error_exit(1);
    assert!(error.contains("461"), "{error}");
    assert!(!dir.path().join("rec.mp4.partial").exists());
}
