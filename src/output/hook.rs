//! `--on-segment-complete`: a command run with `sh -c` for each finished file, told about it
//! through its environment. Recording never waits for it; at most [`MAX_RUNNING`] run at once
//! (a file finished while they all still run gets none, and the log says so); a failing one is
//! logged with its exit status; at the end, running ones are waited for a bounded time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mp4::FileSummary;
use crate::ntp;
use crate::throttle::{Throttle, held_back_note};

/// Hooks that may run at once.
const MAX_RUNNING: usize = 4;

/// Environment variables a hook must not inherit: the camera's credentials.
const WITHHELD: [&str; 2] = ["RTSP_PASSWORD", "RTSP_USERNAME"];

pub(crate) struct Hooks {
    command: Option<String>,
    /// What the front-end calls the hook, for warnings.
    name: &'static str,
    /// The camera's name, for `RETINA_RECORD_CAMERA`.
    camera: String,
    /// More variables to withhold: those holding the password.
    secret_env: Vec<std::ffi::OsString>,
    running: Vec<(Child, PathBuf)>,
    skipped: Throttle,
}

impl Hooks {
    pub(crate) fn new(
        command: Option<String>,
        name: &'static str,
        camera: String,
        secret_env: Vec<std::ffi::OsString>,
    ) -> Hooks {
        Hooks {
            command,
            name,
            camera,
            secret_env,
            running: Vec::new(),
            skipped: Throttle::new(),
        }
    }

    /// Runs the hook for `file`, unless too many still run; `recovered` (a `.partial` a killed
    /// recorder left, repaired) sets `RETINA_RECORD_RECOVERED=1`.
    pub(crate) fn file_finished(&mut self, file: &Path, summary: &FileSummary, recovered: bool) {
        if self.command.is_none() {
            return;
        }
        self.reap();
        let Some(command) = &self.command else {
            return;
        };
        if self.running.len() >= MAX_RUNNING {
            if let Some(held_back) = self.skipped.hit() {
                tracing::warn!(
                    "not running {} for {}: {MAX_RUNNING} are still running{}",
                    self.name,
                    file.display(),
                    held_back_note(held_back)
                );
            }
            return;
        }
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .env("RETINA_RECORD_FILE", &absolute)
            .env("RETINA_RECORD_START", rfc3339(summary.first_recv))
            .env("RETINA_RECORD_END", rfc3339(summary.last_recv))
            .env("RETINA_RECORD_CAMERA", &self.camera)
            .stdin(Stdio::null())
            .env_remove("RETINA_RECORD_RECOVERED")
            // Its output joins the log, never the recording (which may be stdout).
            .stdout(stderr_or_null());
        if recovered {
            cmd.env("RETINA_RECORD_RECOVERED", "1");
        }
        for name in WITHHELD {
            cmd.env_remove(name);
        }
        for name in &self.secret_env {
            cmd.env_remove(name);
        }
        match cmd.spawn() {
            Ok(child) => self.running.push((child, absolute)),
            Err(e) => tracing::warn!("cannot run {}: {e}", self.name),
        }
    }

    /// Notes the hooks that have ended, logging failures.
    fn reap(&mut self) {
        let name = self.name;
        self.running
            .retain_mut(|(child, file)| match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    if !status.success() {
                        tracing::warn!("{} for {} failed: {status}", name, file.display());
                    }
                    false
                }
                Err(e) => {
                    tracing::warn!("{} for {}: {e}", name, file.display());
                    false
                }
            });
    }

    /// Waits up to `limit` for running hooks to end; the rest are left running.
    pub(crate) fn wait(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            self.reap();
            if self.running.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "{} {} command(s) still running; not waiting for them",
                    self.running.len(),
                    self.name
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An NTP-format time as RFC 3339 (UTC).
fn rfc3339(ntp: u64) -> String {
    jiff::Timestamp::from_nanosecond(ntp::to_unix(ntp))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// This process's standard error, for a child to write to.
fn stderr_or_null() -> Stdio {
    use std::os::fd::AsFd as _;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    }
}
