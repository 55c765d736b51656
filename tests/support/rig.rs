//! The test rig: the camera and its configuration, a scratch directory, and the recorder binary
//! run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use retina_record::camera::{Camera, CameraConfig, Clip};
use retina_record::mp4::read::Recording;

use super::check::check_against_camera;

pub fn clip_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clips")
        .join(name)
}

pub fn clip(name: &str) -> Clip {
    Clip::from_file(&clip_path(name)).expect("clip")
}

/// A camera serving `clip_name` from `clips/`, logging what it sends, its SR clock at a fixed
/// point.
pub fn config(clip_name: &str) -> CameraConfig {
    logged(clip(clip_name))
}

/// A camera serving `clip`, logging what it sends, its SR clock at a fixed point.
pub fn logged(clip: Clip) -> CameraConfig {
    let mut c = CameraConfig::new(vec![clip]);
    c.keep_log = true;
    c.ntp_base = Some(0xE000_0000_0000_0000);
    c
}

/// A camera, a scratch directory, and the recording's path in it.
pub struct Rig {
    pub cam: Camera,
    pub dir: tempfile::TempDir,
    pub out: PathBuf,
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

    pub fn partial(&self) -> PathBuf {
        retina_record::output::partial_path(&self.out)
    }

    /// Starts the recorder on this camera and output, with `extra` flags.
    pub fn spawn(&self, extra: &[&str]) -> Recorder {
        self.spawn_to(&self.out, extra)
    }

    /// Starts the recorder on this camera, writing to `out` (a path or a template), with
    /// `extra` flags.
    pub fn spawn_to(&self, out: &Path, extra: &[&str]) -> Recorder {
        self.spawn_full(out, extra, &[])
    }

    /// Starts the recorder on this camera and output, with `extra` flags and `env` set.
    pub fn spawn_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Recorder {
        self.spawn_full(&self.out, extra, env)
    }

    fn spawn_full(&self, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Recorder {
        let url = self.cam.url();
        let out = out.to_str().expect("utf-8 path");
        let mut args = vec!["--url", &url];
        args.extend_from_slice(extra);
        args.push(out);
        Recorder::spawn_with_env(self.dir.path(), &args, env)
    }

    pub async fn record(&self, extra: &[&str]) -> Finished {
        self.spawn(extra).wait().await
    }

    /// Records until the camera has sent `secs` of media, then sends the recorder `sig`.
    pub async fn record_until_sent(&self, secs: f64, sig: i32) -> Finished {
        let rec = self.spawn(&[]);
        self.cam.wait_sent(secs).await;
        rec.signal(sig);
        rec.wait().await
    }

    /// The recording at `path` (`what` says why it must read), checked against what the camera
    /// sent ([`check_against_camera`]); with its number of video frames and seconds of video.
    #[track_caller]
    pub fn checked(&self, path: &Path, what: &str) -> (Recording, usize, f64) {
        let rec = Recording::open(path).expect(what);
        let (frames, secs) = check_against_camera(&rec, &self.cam);
        (rec, frames, secs)
    }
}

/// The recorder binary with `args`, as a user runs it: no `RUST_BACKTRACE`, nothing on stdin.
pub fn recorder_command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_retina-record"));
    cmd.args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    cmd
}

/// A recorder process whose stderr goes to a file in the test's directory.
pub struct Recorder {
    child: tokio::process::Child,
    log: PathBuf,
}

pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stderr: String,
}

impl Finished {
    /// The end of a run whose stderr went to `log`: every line of it a sentence.
    #[track_caller]
    pub fn new(status: std::process::ExitStatus, log: &Path) -> Finished {
        let stderr = std::fs::read_to_string(log).unwrap_or_default();
        super::lines::assert_sentences(&stderr, "the recorder");
        Finished { status, stderr }
    }

    /// Asserts a clean exit (status 0).
    #[track_caller]
    pub fn assert_success(&self) {
        assert!(self.status.success(), "recorder failed: {}", self.stderr);
    }

    /// Asserts that the recorder's log says `text`.
    #[track_caller]
    pub fn assert_says(&self, text: &str) {
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }

    /// Asserts exit status `code`; returns the one `error:` line a failure must print (asserts
    /// there is exactly one).
    #[track_caller]
    pub fn error_exit(&self, code: i32) -> &str {
        assert_eq!(self.status.code(), Some(code), "{}", self.stderr);
        only_error(&self.stderr)
    }
}

/// The one `error:` line in `stderr` (asserts there is exactly one).
#[track_caller]
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
        let mut cmd = recorder_command(args);
        cmd.current_dir(dir)
            .env("RUST_LOG", "info")
            .env_remove("RTSP_USERNAME")
            .env_remove("RTSP_PASSWORD")
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
        signal(&self.child, sig);
    }

    /// Waits (up to 30 s) until the recorder's log says `text`: the log is the event.
    pub async fn wait_for_log(&self, text: &str) {
        let started = std::time::Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the recorder did not say {text:?} within 30 s: {log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the end, sampling the process's peak memory (`VmHWM`) as it runs; returns the
    /// peak in bytes too (at least the largest any child of this test process reached: under
    /// nextest, each test is a process of its own).
    pub async fn wait_measuring(mut self) -> (Finished, u64) {
        let pid = self.child.id().expect("running");
        let mut peak = 0;
        let started = std::time::Instant::now();
        let status = loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "recorder still running"
            );
            if let Some(kib) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                })
            {
                peak = peak.max(kib * 1024);
            }
            let sampled = tokio::time::timeout(Duration::from_millis(20), self.child.wait());
            if let Ok(status) = sampled.await {
                break status.expect("wait");
            }
        };
        // SAFETY: getrusage(2) writes into the struct it is given.
        let children = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
            u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
        };
        (Finished::new(status, &self.log), peak.max(children))
    }

    pub async fn wait(self) -> Finished {
        self.wait_within(Duration::from_secs(60)).await
    }

    /// Waits for the recorder to exit; it must within `limit`.
    pub async fn wait_within(mut self, limit: Duration) -> Finished {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("recorder did not exit within {limit:?}"))
            .expect("wait");
        Finished::new(status, &self.log)
    }
}

/// Sends `sig` to `child` with kill(2), asserting that it was delivered.
pub fn signal(child: &tokio::process::Child, sig: i32) {
    let pid = child.id().expect("running") as i32;
    // SAFETY: kill(2) with a pid we own; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill failed");
}

/// Runs the recorder in `dir` with `args` to its end.
pub async fn record(dir: &Path, args: &[&str]) -> Finished {
    Recorder::spawn(dir, args).wait().await
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
    let line = tokio::time::timeout(Duration::from_secs(20), async {
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
