//! The files of one recording, as the muxer writes them: each named when its first frame comes
//! (a plain name, or a template's for that frame's local time), created with its directories,
//! finished (index, sync, rename), announced to the hook, and followed by retention.
//!
//! A full disk (ENOSPC, EDQUOT) is not the end: the fragment that did not fit is taken back,
//! media is dropped (a gap, like an outage) until a write succeeds again, the log says so once,
//! and retention, if set, deletes the oldest recording to make room.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::file::{PartialFile, is_full};
use super::hook::Hooks;
use super::naming::Naming;
use super::plan::OutputPlan;
use super::progress::Progress;
use super::retention::Retention;
use super::template::untaken;
use crate::config::Field;
use crate::mp4::{self, FileSummary, Stored};
use crate::ntp;

/// A spell of full disk.
struct Full {
    since: Instant,
    dropped: u64,
}

pub(crate) struct Files {
    naming: Naming,
    current: Option<PartialFile>,
    /// The file begun but not yet created: the disk was too full for it.
    uncreated: Option<PathBuf>,
    /// The latest header the muxer gave, for a file created late.
    header: Vec<u8>,
    hooks: Hooks,
    retention: Option<Retention>,
    /// The latest file finished.
    last: Option<PathBuf>,
    full: Option<Full>,
    progress: Arc<Progress>,
}

impl Files {
    pub(crate) fn new(plan: OutputPlan, progress: Arc<Progress>) -> Files {
        Files {
            naming: plan.naming,
            current: None,
            uncreated: None,
            header: Vec::new(),
            hooks: Hooks::new(
                plan.hook,
                plan.wording.of(Field::OnSegmentComplete),
                plan.camera,
                plan.secret_env,
            ),
            retention: plan.retention,
            last: None,
            full: None,
            progress,
        }
    }

    /// Finishes the `.partial` files the template names that no recorder is writing (a
    /// killed recorder's), each handed to the hook as recovered; a line for each.
    pub(crate) fn recover(&mut self) {
        let Naming::Template(template) = &self.naming else {
            return;
        };
        let mut leftovers = Vec::new();
        template.walk(&mut |path, _| {
            if path.extension().is_some_and(|e| e == "partial") {
                leftovers.push(path);
            }
        });
        leftovers.sort();
        for partial in leftovers {
            let live = std::fs::File::open(&partial)
                .and_then(|f| super::file::try_lock(&f))
                .map_or(true, |free| !free);
            if live {
                continue;
            }
            match super::repair::repair(&partial, false) {
                Ok(r) => {
                    tracing::info!(
                        "recovered {} as {}: {:.3} s, {} frames{}",
                        partial.display(),
                        r.out.display(),
                        r.secs,
                        r.frames,
                        match r.dropped_bytes {
                            0 => String::new(),
                            n => format!(", a torn last fragment ({n} bytes) cut off"),
                        }
                    );
                    let summary = FileSummary {
                        first_recv: r.first_recv,
                        last_recv: r.last_recv,
                    };
                    self.hooks.file_finished(&r.out, &summary, true);
                }
                Err(e) => tracing::warn!("not recovered: {e:#}"),
            }
        }
    }

    /// The latest file finished.
    pub(crate) fn last(&self) -> Option<&Path> {
        self.last.as_deref()
    }

    /// Says where what was written so far is, for errors.
    pub(crate) fn kept(&self) -> String {
        match &self.current {
            Some(f) => f.kept(),
            None => "no file was open".to_owned(),
        }
    }

    /// The file being written, for errors.
    pub(crate) fn current(&self) -> String {
        self.current
            .as_ref()
            .map_or_else(String::new, |f| f.partial().display().to_string())
    }

    /// Waits (a bounded time) for the hooks still running.
    pub(crate) fn wait_for_hooks(&mut self) {
        self.hooks.wait(std::time::Duration::from_secs(30));
    }

    /// The file being written; creates it if it was begun on a full disk (`None` while the
    /// disk is still full).
    fn open(&mut self) -> std::io::Result<Option<&mut PartialFile>> {
        if self.current.is_none()
            && let Some(path) = self.uncreated.take()
        {
            match create(&path) {
                Ok(mut file) => {
                    if !self.header.is_empty()
                        && file.write_header(&self.header)? == Stored::Dropped
                    {
                        self.uncreated = Some(path);
                        return Ok(None);
                    }
                    self.current = Some(file);
                }
                Err(e) if is_full(&e) => {
                    self.uncreated = Some(path);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        match self.current.as_mut() {
            Some(file) => Ok(Some(file)),
            None => Err(std::io::Error::other("no file is open")),
        }
    }

    /// Notes whether a write reached the disk; on a full disk, makes room if it may.
    fn stored(&mut self, stored: Stored) -> Stored {
        match (stored, &mut self.full) {
            (Stored::Written, None) => {}
            (Stored::Written, Some(full)) => {
                tracing::warn!(
                    "writing again: the disk was full for {:.0} s, {} fragment(s) of media \
                     dropped",
                    full.since.elapsed().as_secs_f64(),
                    full.dropped
                );
                self.full = None;
            }
            (Stored::Dropped, Some(full)) => full.dropped += 1,
            (Stored::Dropped, None) => {
                tracing::warn!(
                    "the disk is full: {} is kept up to its last whole fragment; media is \
                     dropped until there is room{}",
                    self.current(),
                    if self.retention.is_some() {
                        "; deleting the oldest recordings to make it"
                    } else {
                        ""
                    }
                );
                self.full = Some(Full {
                    since: Instant::now(),
                    dropped: 1,
                });
            }
        }
        if stored == Stored::Dropped
            && let Some(retention) = &self.retention
            && retention.delete_oldest()
        {
            self.progress.files_deleted(1);
        }
        stored
    }
}

impl mp4::Sink for Files {
    fn begin_file(&mut self, first_recv: u64) -> std::io::Result<()> {
        let path = match &self.naming {
            Naming::Plain(path) => path.clone(),
            Naming::Template(template) => untaken(&template.expand(&local_time(first_recv))),
            Naming::Stdout => return Err(std::io::Error::other("stdout is not a file")),
        };
        self.current = None;
        self.progress.file(path.clone());
        self.uncreated = Some(path);
        self.header.clear();
        // Created now, so that a file that cannot be is an error at once; on a full disk,
        // when there is room.
        self.open().map(|_| ())
    }

    fn write_header(&mut self, header: &[u8]) -> std::io::Result<Stored> {
        self.header.clear();
        self.header.extend_from_slice(header);
        let stored = match self.open()? {
            Some(file) => file.write_header(header)?,
            None => Stored::Dropped,
        };
        // A header is rewritten in place: that it fits says nothing of room for more.
        match stored {
            Stored::Written => Ok(stored),
            Stored::Dropped => Ok(self.stored(stored)),
        }
    }

    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<Stored> {
        let stored = match self.open()? {
            Some(file) => file.append(parts)?,
            None => Stored::Dropped,
        };
        if stored == Stored::Written {
            let len = parts.iter().map(|p| p.len() as u64).sum();
            self.progress.written(len, true);
        }
        Ok(self.stored(stored))
    }

    fn end_file(&mut self, summary: &FileSummary) -> std::io::Result<()> {
        let Some(file) = self.current.take() else {
            if let Some(path) = self.uncreated.take() {
                tracing::warn!("{} was never created: the disk stayed full", path.display());
            }
            return Ok(());
        };
        if file.is_empty() {
            tracing::warn!(
                "{} holds no media (the disk stayed full); deleting it",
                file.partial().display()
            );
            return file.discard();
        }
        let path = file.finish().map_err(std::io::Error::other)?;
        if matches!(self.naming, Naming::Template(_)) {
            tracing::info!("finished {}", path.display());
        }
        self.progress.file_written();
        self.hooks.file_finished(&path, summary, false);
        if let Some(retention) = &self.retention {
            self.progress.files_deleted(retention.sweep());
        }
        self.last = Some(path);
        Ok(())
    }
}

/// Creates `path` as a `.partial` recording, with its directories.
/// Errors say what failed, and still whether the disk was full.
fn create(path: &Path) -> std::io::Result<PartialFile> {
    let error = |full: bool, message: String| {
        let kind = match full {
            true => std::io::ErrorKind::StorageFull,
            false => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, message)
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| error(is_full(&e), format!("cannot create {}: {e}", dir.display())))?;
    }
    PartialFile::create(path).map_err(|e| {
        let full = e.downcast_ref::<std::io::Error>().is_some_and(is_full);
        error(full, format!("{e:#}"))
    })
}

/// An NTP-format time in the local time zone.
fn local_time(ntp: u64) -> jiff::Zoned {
    let at = jiff::Timestamp::from_nanosecond(ntp::to_unix(ntp))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    at.to_zoned(jiff::tz::TimeZone::system())
}
