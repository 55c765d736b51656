//! The disk under the recording: a full one (a real tmpfs, mounted for the test) is a gap, not
//! an end; other write errors end the run with one line; an output that cannot be written
//! fails before anything connects.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use retina_record::camera::SentFrame;
use retina_record::mp4::read::Recording;

use crate::support::rig::{Finished, only_error, recorder_command};
use crate::support::tools::installed;
use crate::support::{self, Rig};

/// A tmpfs mounted on a fresh directory for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with mount(8) `options` (`size=2m`); `None` when this process may not
    /// mount (it is not root) and the tests do not require it.
    fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "retina-record-test"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        installed(mounted, "a tmpfs mount (mount(8), as root)").then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free.
    fn free(&self) -> u64 {
        // SAFETY: statvfs(3) fills in the struct it is given; the path is NUL-terminated.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            let path =
                std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).expect("path");
            assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0, "statvfs");
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }

    /// Fills the file system with one file until about `leave` bytes are free (0: until a
    /// write fails for want of space, whatever else is writing); returns its path.
    fn fill(&self, leave: u64) -> PathBuf {
        use std::io::Write as _;
        let ballast = self.path().join("ballast");
        let mut file = std::fs::File::create(&ballast).expect("ballast");
        let page = [0xA5u8; 4096];
        while leave == 0 || self.free() > leave {
            match file.write(&page) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        ballast
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(self.path())
            .status();
    }
}

/// Waits (up to 30 s) until the recording at `path` holds a whole fragment.
async fn wait_for_media(path: &Path) {
    let started = Instant::now();
    while !Recording::open(path).is_ok_and(|r| !r.samples.is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The positions among the camera's video frames of the recording's, which must come in
/// order, each once; returns them.
fn positions(rec: &Recording, frames: &[&SentFrame]) -> Vec<usize> {
    let timing = rec.video_timing().expect("timing");
    let idx: Vec<usize> = timing
        .iter()
        .map(|t| {
            let rtp = t.frame().expect("89H").rtp;
            frames
                .iter()
                .position(|f| f.rtp == rtp)
                .unwrap_or_else(|| panic!("rtp {rtp} was never sent"))
        })
        .collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "in order, once each");
    idx
}

/// The camera's video frames.
fn video_frames(rig: &Rig) -> Vec<SentFrame> {
    let log = rig.cam.log();
    log.frames
        .iter()
        .filter(|f| f.stream == 0)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_gap_and_writing_resumes_when_there_is_room() {
    let Some(disk) = Tmpfs::mount("size=2m") else {
        return;
    };
    let rig = Rig::clip("h264_aac.mp4").await;
    let out = disk.path().join("rec.mp4");
    let rec = rig.spawn_to(&out, &[]);
    // Once the first fragment is on disk, nothing more fits.
    let partial = retina_record::output::partial_path(&out);
    wait_for_media(&partial).await;
    let ballast = disk.fill(0);
    rec.wait_for_log("the disk is full").await;
    // What was written stays a valid recording, and stays put while nothing fits.
    let before = Recording::open(&partial).expect("valid while the disk is full");
    assert!(!before.truncated && !before.samples.is_empty());
    rig.cam.wait_sent(rig.cam.sent_secs() + 2.0).await;
    let still = Recording::open(&partial).expect("still valid");
    assert!(!still.truncated);
    assert_eq!(still.samples.len(), before.samples.len());
    std::fs::remove_file(&ballast).expect("free the space");
    rec.wait_for_log("writing again").await;
    rig.cam.wait_sent(rig.cam.sent_secs() + 2.0).await;
    rec.signal(libc::SIGINT);
    let run = rec.wait().await;
    run.assert_success();
    assert_eq!(
        run.stderr.matches("the disk is full").count(),
        1,
        "{}",
        run.stderr
    );
    run.assert_says("dropped while the disk was full");
    let recording = Recording::open(&out).expect("finished");
    assert!(recording.mfra.is_some());
    let frames = video_frames(&rig);
    let frames: Vec<&SentFrame> = frames.iter().collect();
    let idx = positions(&recording, &frames);
    // One gap: the frames that arrived while the disk was full (at least the 2 s waited, at
    // 25 frames a second); it resumes at a keyframe.
    let gaps: Vec<(usize, usize)> = idx
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}: {}", run.stderr);
    let (last_before, first_after) = gaps[0];
    assert!(first_after - last_before > 50, "{gaps:?}: {}", run.stderr);
    assert!(frames[first_after].keyframe, "resumes at a keyframe");
    assert!(frames[idx[0]].keyframe);
    let decoded = support::ffmpeg_decoded_video_frames(&out).expect("ffmpeg");
    assert_eq!(decoded as usize, idx.len());
    support::ffmpeg_audio(&out).expect("ffmpeg decodes the audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_full_disk_retention_deletes_the_oldest_recordings_to_make_room() {
    let Some(disk) = Tmpfs::mount("size=2m") else {
        return;
    };
    let rig = Rig::clip("h264_aac.mp4").await;
    let ballast = disk.fill(300 * 1024);
    let ballast_len = std::fs::metadata(&ballast).expect("ballast").len();
    let template = disk.path().join("cam/%H%M%S.mp4");
    let rec = rig.spawn_to(&template, &["--segment-duration", "1s", "--keep-for", "7d"]);
    rec.wait_for_log("to make room (disk full)").await;
    rig.cam.wait_sent(rig.cam.sent_secs() + 3.0).await;
    rec.signal(libc::SIGINT);
    let run = rec.wait().await;
    run.assert_success();
    // The recording went on by itself; nothing but its own files was touched.
    assert_eq!(
        std::fs::metadata(&ballast).expect("kept").len(),
        ballast_len
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(disk.path().join("cam"))
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "mp4")),
        "{files:?}"
    );
    let frames = video_frames(&rig);
    let frames: Vec<&SentFrame> = frames.iter().collect();
    let mut last = 0;
    for path in &files {
        let rec = Recording::open(path).expect("each file is valid");
        assert!(!rec.truncated);
        last = last.max(*positions(&rec, &frames).last().expect("frames"));
    }
    // The newest file holds the last seconds the camera sent.
    assert!(frames.len() - last < 3 * 25, "{} of {}", last, frames.len());
}

/// A write error other than a full disk (here EFBIG: the file-size limit, with SIGXFSZ
/// ignored, as a process may run) ends the run: exit 1, one line, the fragments kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_write_errors_end_the_run_with_one_line() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    let out = rig.out.to_str().expect("utf-8");
    let mut cmd = recorder_command(&["--url", &url, out]);
    let log = rig.dir.path().join("recorder.log");
    cmd.current_dir(rig.dir.path())
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true);
    // SAFETY: between fork and exec, only async-signal-safe calls (signal, setrlimit).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 150_000,
                rlim_max: 150_000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = tokio::time::timeout(Duration::from_secs(30), cmd.status())
        .await
        .expect("ended by the limit")
        .expect("ran");
    let run = Finished::new(status, &log);
    let error = run.error_exit(1);
    assert!(
        error.contains("File too large") && error.contains(".partial"),
        "{error}"
    );
    let kept = Recording::open(&rig.partial()).expect("the fragments written are kept");
    assert!(!kept.truncated && !kept.samples.is_empty());
}

/// An output that cannot be written is one line within a second, before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_cannot_be_written_fails_before_connecting() {
    let camera = TcpListener::bind("127.0.0.1:0").expect("listen");
    camera.set_nonblocking(true).expect("nonblocking");
    let url = format!("rtsp://{}/stream", camera.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("file"), b"").expect("file");
    std::fs::write(dir.path().join("taken.mp4"), b"").expect("taken");
    std::fs::write(dir.path().join("half.mp4.partial"), b"").expect("partial");
    let read_only = Tmpfs::mount("size=1m,ro");
    let mut cases = vec![
        ("file/rec.mp4".to_owned(), "file is not a directory"),
        ("file/%Y/%H%M%S.mp4".to_owned(), "file is not a directory"),
        ("taken.mp4".to_owned(), "taken.mp4 already exists"),
        ("half.mp4".to_owned(), "half.mp4.partial already exists"),
    ];
    if let Some(ro) = &read_only {
        let out = ro.path().join("%Y/rec.mp4");
        cases.push((out.display().to_string(), "Read-only file system"));
    }
    for (out, says) in cases {
        let started = Instant::now();
        let run = support::record(dir.path(), &["--url", &url, &out]).await;
        let took = started.elapsed();
        let error = run.error_exit(1);
        assert!(error.contains(says), "{out}: {error}");
        assert!(took < Duration::from_secs(1), "{out}: {took:?}");
        match camera.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{out}: the recorder connected first: {other:?}"),
        }
        assert_eq!(only_error(&run.stderr), error);
    }
    // Nothing was created or overwritten.
    assert_eq!(
        std::fs::read(dir.path().join("taken.mp4")).expect("kept"),
        b""
    );
    assert!(!dir.path().join("half.mp4").exists());
}

/// An export onto a full disk fails with one line and leaves nothing: no file, no `.partial`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_onto_a_full_disk_fails_in_one_line_and_leaves_nothing() {
    let Some(disk) = Tmpfs::mount("size=2m") else {
        return;
    };
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/retina-record-0.2.2.mp4"
    );
    disk.fill(64 * 1024);
    let out = disk.path().join("clip.mp4");
    let out_arg = out.to_str().expect("utf-8");
    let args = [
        "export",
        "--from",
        "+0s",
        "--duration",
        "5s",
        "-o",
        out_arg,
        fixture,
    ];
    let run = crate::support::lines::output(&mut recorder_command(&args)).await;
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let error = only_error(&stderr);
    assert!(error.contains("No space left"), "{error}");
    assert!(!out.exists(), "no file");
    assert!(
        !retina_record::output::partial_path(&out).exists(),
        "no .partial"
    );
}
