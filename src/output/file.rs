//! One recording file on disk: written as `OUT.partial`, one `fdatasync` per fragment, and on a
//! clean finish indexed (`mfra`), synced and renamed to `OUT`, the rename made durable too.
//! Neither name is ever overwritten: an existing file is someone's earlier recording.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IoSlice, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::mp4::{self, Sink as _};

/// `OUT.partial`: the name the recording has until it is finished.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name: OsString = out.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// Refuses to record into `out` when it or its `.partial` exists: either is someone's earlier
/// recording.
pub(crate) fn refuse_existing(out: &Path) -> anyhow::Result<()> {
    for path in [out.to_owned(), partial_path(out)] {
        if path.exists() {
            bail!(
                "{} already exists; not overwriting an earlier recording",
                path.display()
            );
        }
    }
    Ok(())
}

/// A recording being written.
pub(crate) struct PartialFile {
    sink: FileSink,
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
                         move it away or choose another output name",
                        partial.display()
                    )
                } else {
                    anyhow::Error::new(e).context(format!("cannot create {}", partial.display()))
                }
            })?;
        Ok(PartialFile {
            sink: FileSink {
                file,
                append_pos: mp4::HEADER_SIZE as u64,
                positioned: false,
            },
            partial,
            out: out.to_owned(),
        })
    }

    /// Where the muxer writes.
    pub(super) fn sink(&mut self) -> &mut FileSink {
        &mut self.sink
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

    /// Removes a file that holds no recording.
    pub(super) fn discard(self) {
        let partial = self.partial;
        drop(self.sink);
        let _ = std::fs::remove_file(partial);
    }

    /// Appends the `mfra` index, syncs, and renames `OUT.partial` to `OUT`; returns `OUT`.
    pub(super) fn finish(mut self) -> anyhow::Result<PathBuf> {
        let partial = self.partial.display();
        let data = mp4::read::Data::File(self.sink.file.try_clone()?);
        match mp4::build_mfra(&data) {
            Ok(mfra) => self
                .sink
                .append(&[&mfra])
                .with_context(|| format!("appending the index to {partial} failed"))?,
            // The file plays without the index; losing the recording over it would be wrong.
            Err(e) => tracing::warn!("not writing an mfra index: {e}"),
        }
        self.sink
            .file
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

/// The file as the muxer sees it: a header region rewritten in place, fragments appended.
pub(crate) struct FileSink {
    file: File,
    append_pos: u64,
    /// Whether the file cursor is at `append_pos` (header writes are positioned and leave
    /// the cursor alone, so one seek suffices).
    positioned: bool,
}

impl mp4::Sink for FileSink {
    fn write_header(&mut self, header: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(header, 0)?;
        self.file.sync_data()
    }

    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
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
            let n = file.write_vectored(bufs)?;
            if n == 0 {
                self.positioned = false;
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.append_pos += n as u64;
            IoSlice::advance_slices(&mut bufs, n);
        }
        self.file.sync_data()
    }
}
