//! What a running recording has done so far, for whoever watches it (the status line, systemd's
//! notifications, the metrics endpoint): counters that the writer thread and the supervisor
//! update, read at any time without stopping them.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    dropped_frames: AtomicU64,
    files_written: AtomicU64,
    files_deleted: AtomicU64,
    connected: AtomicBool,
    /// Milliseconds from `start` to the latest durable fragment; 0: none yet.
    last_durable_ms: AtomicU64,
    /// Milliseconds from `start` to the latest video frame; 0: none yet.
    last_frame_ms: AtomicU64,
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
    /// RTP packets lost.
    pub lost_packets: u64,
    /// Frames the muxer could not store: empty ones, audio from before the first keyframe or
    /// overlapping the previous frame, frames that met a full disk.
    pub dropped_frames: u64,
    /// Files finished (renamed from `.partial`, indexed).
    pub files_written: u64,
    /// Files deleted by retention (`--keep-for`, `--keep-size`, a full disk).
    pub files_deleted: u64,
    /// Whether a session with the camera is playing.
    pub connected: bool,
    /// How long ago the latest fragment became durable; `None` before the first.
    pub since_durable: Option<Duration>,
    /// How long ago the latest video frame came; `None` before the first.
    pub since_frame: Option<Duration>,
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
            dropped_frames: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
            files_deleted: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            last_durable_ms: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            file: Mutex::new(None),
        }
    }
}

impl Progress {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let elapsed = self.start.elapsed();
        let ago = |ms: &AtomicU64| match ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(elapsed.saturating_sub(Duration::from_millis(ms))),
        };
        Snapshot {
            elapsed,
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            fragments: self.fragments.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            lost_packets: self.lost_packets.load(Ordering::Relaxed),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
            files_written: self.files_written.load(Ordering::Relaxed),
            files_deleted: self.files_deleted.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            since_durable: ago(&self.last_durable_ms),
            since_frame: ago(&self.last_frame_ms),
            file: self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    pub(crate) fn frame(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.last_frame_ms.store(self.ms_now(), Ordering::Release);
    }

    /// Milliseconds since `start`, at least 1 (0 means "never").
    fn ms_now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// `bytes` are written; `fragment`: a fragment, now durable (on disk, or in the pipe).
    pub(crate) fn written(&self, bytes: u64, fragment: bool) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if fragment {
            self.fragments.fetch_add(1, Ordering::Relaxed);
            self.last_durable_ms.store(self.ms_now(), Ordering::Release);
        }
    }

    pub(crate) fn lost_packets(&self, total: u64) {
        self.lost_packets.store(total, Ordering::Relaxed);
    }

    /// The muxer's count of frames it could not store, so far.
    pub(crate) fn dropped_frames(&self, total: u64) {
        self.dropped_frames.store(total, Ordering::Relaxed);
    }

    pub(crate) fn file_written(&self) {
        self.files_written.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn files_deleted(&self, n: usize) {
        self.files_deleted.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn connected(&self, playing: bool) {
        self.connected.store(playing, Ordering::Relaxed);
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

impl Snapshot {
    /// Several recordings' counters as one (a site's, for systemd and the status line): sums,
    /// the most recent durable fragment and frame, connected if any is; no single file.
    pub fn combine(all: &[Snapshot]) -> Snapshot {
        let sum = |f: fn(&Snapshot) -> u64| all.iter().map(f).sum();
        Snapshot {
            elapsed: all.iter().map(|s| s.elapsed).max().unwrap_or_default(),
            frames: sum(|s| s.frames),
            bytes: sum(|s| s.bytes),
            fragments: sum(|s| s.fragments),
            reconnects: sum(|s| s.reconnects),
            lost_packets: sum(|s| s.lost_packets),
            dropped_frames: sum(|s| s.dropped_frames),
            files_written: sum(|s| s.files_written),
            files_deleted: sum(|s| s.files_deleted),
            connected: all.iter().any(|s| s.connected),
            since_durable: all.iter().filter_map(|s| s.since_durable).min(),
            since_frame: all.iter().filter_map(|s| s.since_frame).min(),
            file: None,
        }
    }
}
