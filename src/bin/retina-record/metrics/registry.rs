//! The metrics' registry: each recording's [`Progress`] counters read (lock-free) into
//! prometheus-client's families at each scrape and encoded in the OpenMetrics text format
//! (<https://prometheus.io/docs/specs/om/open_metrics_spec/>), so recording costs nothing more
//! with metrics on; and the free space of the filesystems the recordings go to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use retina_record::recorder::{Progress, Snapshot};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabel {
    camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: String,
}

type Counters = Family<CameraLabel, Counter>;
type Seconds = Family<CameraLabel, Gauge<f64, AtomicU64>>;

/// The registry and the metrics in it, refreshed at each scrape.
pub(super) struct Metrics {
    registry: Registry,
    cameras: Vec<(CameraLabel, Arc<Progress>)>,
    outputs: Vec<PathBuf>,
    frames: Counters,
    bytes: Counters,
    lost_packets: Counters,
    dropped_frames: Counters,
    reconnects: Counters,
    files_written: Counters,
    files_deleted: Counters,
    connected: Family<CameraLabel, Gauge>,
    since_frame: Seconds,
    since_durable: Seconds,
    disk_free: Family<PathLabel, Gauge<i64, AtomicI64>>,
}

impl Metrics {
    pub(super) fn new(cameras: Vec<(String, Arc<Progress>)>, outputs: Vec<PathBuf>) -> Metrics {
        let mut registry = Registry::with_prefix("retina_record");
        let mut counter = |name: &str, help: &str, unit: Option<Unit>| {
            let family = Counters::default();
            match unit {
                Some(unit) => registry.register_with_unit(name, help, unit, family.clone()),
                None => registry.register(name, help, family.clone()),
            }
            family
        };
        let frames = counter("frames", "Video frames recorded", None);
        let bytes = counter("written", "Bytes written", Some(Unit::Bytes));
        let lost_packets = counter("lost_packets", "RTP packets lost", None);
        let dropped_frames = counter(
            "dropped_frames",
            "Frames received but not stored (before the first keyframe, empty, disk full)",
            None,
        );
        let reconnects = counter("reconnects", "Reconnections to the camera", None);
        let files_written = counter("files_written", "Files finished", None);
        let files_deleted = counter("files_deleted", "Files deleted by retention", None);
        let connected = Family::<CameraLabel, Gauge>::default();
        registry.register(
            "connected",
            "1 while a session with the camera is playing",
            connected.clone(),
        );
        let since_frame = Seconds::default();
        registry.register_with_unit(
            "last_frame_age",
            "Since the latest video frame (before the first: since the start)",
            Unit::Seconds,
            since_frame.clone(),
        );
        let since_durable = Seconds::default();
        registry.register_with_unit(
            "last_durable_fragment_age",
            "Since the latest fragment reached the disk (before the first: since the start)",
            Unit::Seconds,
            since_durable.clone(),
        );
        let disk_free = Family::<PathLabel, Gauge<i64, AtomicI64>>::default();
        registry.register_with_unit(
            "disk_free",
            "Space free to this process on each output filesystem",
            Unit::Bytes,
            disk_free.clone(),
        );
        Metrics {
            registry,
            cameras: cameras
                .into_iter()
                .map(|(camera, p)| (CameraLabel { camera }, p))
                .collect(),
            outputs: one_per_filesystem(outputs),
            frames,
            bytes,
            lost_packets,
            dropped_frames,
            reconnects,
            files_written,
            files_deleted,
            connected,
            since_frame,
            since_durable,
            disk_free,
        }
    }

    /// The text a scrape gets.
    pub(super) fn encode(&self) -> String {
        for (label, progress) in &self.cameras {
            let s: Snapshot = progress.snapshot();
            let set = |family: &Counters, v: u64| {
                family
                    .get_or_create(label)
                    .inner()
                    .store(v, Ordering::Relaxed);
            };
            set(&self.frames, s.frames);
            set(&self.bytes, s.bytes);
            set(&self.lost_packets, s.lost_packets);
            set(&self.dropped_frames, s.dropped_frames);
            set(&self.reconnects, s.reconnects);
            set(&self.files_written, s.files_written);
            set(&self.files_deleted, s.files_deleted);
            self.connected
                .get_or_create(label)
                .set(i64::from(s.connected));
            let age = |d: Option<Duration>| d.unwrap_or(s.elapsed).as_secs_f64();
            self.since_frame
                .get_or_create(label)
                .set(age(s.since_frame));
            self.since_durable
                .get_or_create(label)
                .set(age(s.since_durable));
        }
        for dir in &self.outputs {
            if let Some(free) = free_space(dir) {
                let label = PathLabel {
                    path: dir.display().to_string(),
                };
                self.disk_free.get_or_create(&label).set(free);
            }
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Several cameras usually share a filesystem: one gauge each, named for the first directory
/// on it.
fn one_per_filesystem(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut by_fs: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut unknown = Vec::new();
    for dir in dirs {
        match rustix::fs::statvfs(existing(&dir)).ok() {
            Some(st) => {
                by_fs.entry(st.f_fsid).or_insert(dir);
            }
            // Not created yet and no parent: keep it, it may appear.
            None => unknown.push(dir),
        }
    }
    let mut all: Vec<PathBuf> = by_fs.into_values().collect();
    unknown.dedup();
    all.extend(unknown);
    all
}

/// `dir`, or its nearest ancestor that exists (recordings' directories are made as needed).
fn existing(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|d| !d.as_os_str().is_empty() && d.exists())
        .unwrap_or(Path::new("."))
}

/// Bytes free to an unprivileged writer on `dir`'s filesystem.
fn free_space(dir: &Path) -> Option<i64> {
    let st = rustix::fs::statvfs(existing(dir)).ok()?;
    i64::try_from(st.f_bavail.saturating_mul(st.f_frsize)).ok()
}
