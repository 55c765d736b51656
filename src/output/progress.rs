//! What a running recording has done so far, for whoever watches it (the status line, systemd's
//! notifications): counters that the writer thread and the supervisor update, read at any time
//! without stopping them.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A recording's counters, shared between it and its watchers.
#[derive(Debug)]
pub struct Progress {
    start: Instant,
    frames: AtomicU64,
    bytes: AtomicU64,
    fragments: AtomicU64,
    reconnects: AtomicU64,
    lost_packets: AtomicU64,
    /// Milliseconds from `start` to the latest durable fragment; 0: none yet.
    last_durable_ms: AtomicU64,
    file: Mutex<Option<PathBuf>>,
}

/// The counters at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Since the recording started.
    pub elapsed: Duration,
    /// Video frames handed to the writer.
    pub frames: u64,
    /// Bytes written (fragments and headers; durable for files).
    pub bytes: u64,
    /// Fragments written, each synced to disk (for a file) before it counts.
    pub fragments: u64,
    /// Reconnections to the camera.
    pub reconnects: u64,
    /// RTP packets lost (as of the end of the latest session).
    pub lost_packets: u64,
    /// How long ago the latest fragment became durable; `None` before the first.
    pub since_durable: Option<Duration>,
    /// The file being written (`-` for stdout).
    pub file: Option<PathBuf>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            start: Instant::now(),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            fragments: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            lost_packets: AtomicU64::new(0),
            last_durable_ms: AtomicU64::new(0),
            file: Mutex::new(None),
        }
    }
}

impl Progress {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let durable = self.last_durable_ms.load(Ordering::Acquire);
        let elapsed = self.start.elapsed();
        Snapshot {
            elapsed,
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            fragments: self.fragments.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            lost_packets: self.lost_packets.load(Ordering::Relaxed),
            since_durable: (durable > 0)
                .then(|| elapsed.saturating_sub(Duration::from_millis(durable))),
            file: self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    pub(crate) fn frame(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// `bytes` are written; `fragment`: a fragment, now durable (on disk, or in the pipe).
    pub(crate) fn written(&self, bytes: u64, fragment: bool) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if fragment {
            self.fragments.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_durable_ms.store(ms.max(1), Ordering::Release);
        }
    }

    pub(crate) fn lost_packets(&self, total: u64) {
        self.lost_packets.store(total, Ordering::Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn file(&self, path: PathBuf) {
        *self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(path);
    }
}
