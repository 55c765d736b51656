//! One recording file on disk: written as `OUT.partial`, one `fdatasync` per fragment, and on a
//! clean finish indexed (`mfra`), synced and renamed to `OUT`, the rename made durable too.
//! Neither name is ever overwritten: an existing file is someone's earlier recording.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IoSlice, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::mp4::{self, Stored};

/// `OUT.partial`: the name the recording has until it is finished.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name: OsString = out.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// Refuses to record into `out` when it or its `.partial` exists: either is someone's earlier
/// recording.
pub(crate) fn refuse_existing(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} already exists; not overwriting an earlier recording",
            out.display()
        );
    }
    let partial = partial_path(out);
    if partial.exists() {
        bail!(
            "{} already exists (a recording that did not finish?); finish it with \
             `retina-record repair {}`, or choose another name",
            partial.display(),
            partial.display()
        );
    }
    Ok(())
}

/// Names `from` `to` unless `to` exists (a hard link cannot replace a file), then unlinks
/// `from` and makes both durable in `to`'s directory: a finished export or repair.
pub(crate) fn link_into_place(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::hard_link(from, to).with_context(|| {
        format!(
            "cannot name {} {} (it exists? it is never overwritten)",
            from.display(),
            to.display()
        )
    })?;
    std::fs::remove_file(from)?;
    let dir = to.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Takes `file`'s advisory lock (flock(2), exclusive), held until it is closed; `Ok(false)`
/// when another open file holds it: a recorder writing it.
pub(crate) fn try_lock(file: &File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether `e` says the disk (or the user's quota) is full.
pub(crate) fn is_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// A recording being written.
pub(crate) struct PartialFile {
    file: File,
    append_pos: u64,
    /// Whether the file cursor is at `append_pos` (header writes are positioned and leave
    /// the cursor alone, so one seek suffices).
    positioned: bool,
    /// A header that did not fit on a full disk, to write before the next fragment.
    pending_header: Option<Vec<u8>>,
    partial: PathBuf,
    out: PathBuf,
}

impl PartialFile {
    /// Creates `OUT.partial`, never replacing anything.
    pub(super) fn create(out: &Path) -> anyhow::Result<PartialFile> {
        let partial = partial_path(out);
        refuse_existing(out)?;
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "{} already exists (an earlier recording that did not finish?); \
                         finish it with `retina-record repair {}`, or choose another name",
                        partial.display(),
                        partial.display()
                    )
                } else {
                    anyhow::Error::new(e).context(format!("cannot create {}", partial.display()))
                }
            })?;
        // Held while the file is open: no repair (here or in another recorder) touches a
        // file being written. A file system without locks still records.
        let _ = try_lock(&file);
        Ok(PartialFile {
            file,
            append_pos: mp4::HEADER_SIZE as u64,
            positioned: false,
            pending_header: None,
            partial,
            out: out.to_owned(),
        })
    }

    pub(super) fn partial(&self) -> &Path {
        &self.partial
    }

    /// Says where what was written so far is, for errors.
    pub(super) fn kept(&self) -> String {
        format!(
            "the fragments written so far are in {}",
            self.partial.display()
        )
    }

    /// (Re)writes the header region, made durable.
    pub(super) fn write_header(&mut self, header: &[u8]) -> std::io::Result<Stored> {
        match self
            .file
            .write_all_at(header, 0)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.pending_header = None;
                Ok(Stored::Written)
            }
            Err(e) if is_full(&e) => {
                self.pending_header = Some(header.to_vec());
                Ok(Stored::Dropped)
            }
            Err(e) => Err(e),
        }
    }

    /// Appends `parts` with one vectored write and makes them durable; on a full disk, takes
    /// back what part of them was written.
    pub(super) fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<Stored> {
        if let Some(header) = self.pending_header.take()
            && self.write_header(&header)? == Stored::Dropped
        {
            return Ok(Stored::Dropped);
        }
        let start = self.append_pos;
        match self.write_parts(parts).and_then(|()| self.file.sync_data()) {
            Ok(()) => Ok(Stored::Written),
            Err(e) if is_full(&e) => {
                // Nothing half-written stays: the file ends at its last whole fragment.
                self.file.set_len(start)?;
                self.append_pos = start;
                self.positioned = false;
                Ok(Stored::Dropped)
            }
            Err(e) => {
                // The recording ends; leave it whole if the disk still lets us.
                let _ = self.file.set_len(start);
                Err(e)
            }
        }
    }

    fn write_parts(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        use std::io::{Seek as _, SeekFrom};
        let mut file = &self.file;
        if !self.positioned {
            file.seek(SeekFrom::Start(self.append_pos))?;
            self.positioned = true;
        }
        // One vectored write per fragment: the parts are never copied into one buffer.
        // Looping only matters for short writes, which local files rarely do.
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            let n = match file.write_vectored(bufs) {
                Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => Ok(n),
                Err(e) => Err(e),
            }
            .inspect_err(|_| self.positioned = false)?;
            self.append_pos += n as u64;
            IoSlice::advance_slices(&mut bufs, n);
        }
        Ok(())
    }

    /// Whether no fragment is in the file (all of them met a full disk).
    pub(super) fn is_empty(&self) -> bool {
        self.append_pos <= mp4::HEADER_SIZE as u64
    }

    /// Deletes the `.partial` (it holds no media).
    pub(super) fn discard(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.partial)
    }

    /// Appends the `mfra` index, syncs, and renames `OUT.partial` to `OUT`; returns `OUT`.
    pub(super) fn finish(mut self) -> anyhow::Result<PathBuf> {
        let partial = self.partial.display().to_string();
        let data = mp4::read::Data::File(self.file.try_clone()?);
        match mp4::build_mfra(&data).map(|mfra| self.append(&[&mfra])) {
            Ok(Ok(Stored::Written)) => {}
            Ok(Ok(Stored::Dropped)) => tracing::warn!("no room for {partial}'s mfra index"),
            Ok(Err(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("appending the index to {partial} failed")));
            }
            // The file plays without the index; losing the recording over it would be wrong.
            Err(e) => tracing::warn!("not writing an mfra index: {e}"),
        }
        self.file
            .sync_all()
            .with_context(|| format!("syncing {partial} failed; {}", self.kept()))?;
        let out = self.out.display();
        std::fs::rename(&self.partial, &self.out)
            .with_context(|| format!("renaming {partial} to {out} failed"))?;
        // Make the rename itself durable.
        let dir = match self.out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(self.out)
    }
}
