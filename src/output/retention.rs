//! Retention: `--keep-for` deletes finished recordings older than a duration, `--keep-size`
//! the oldest while this camera's recordings take more than a size. Only files that this
//! recorder's template names (see `template.rs`) are ever deleted — never another file;
//! directories emptied by it go too. Age is the time since a file was last written (its end).
//! Size counts the template's `.partial` files too (the one being written included), and
//! deletes, oldest first, the leftovers no recorder is writing (those the start could not
//! repair, `repair.rs`), never a live one. Size never costs the newest finished file (a
//! `--keep-size` below one file's size keeps the latest file, not none), nor does making room
//! on a full disk. `--keep-for` never deletes a `.partial`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::template::Template;
use crate::config::{Field, Wording};

/// What to keep.
#[derive(Clone, Debug)]
pub(crate) struct Retention {
    pub template: Template,
    pub keep_for: Option<Duration>,
    pub keep_size: Option<u64>,
    /// How the log names keep_for and keep_size.
    pub wording: Wording,
}

/// A recording found on disk.
struct Found {
    path: PathBuf,
    modified: SystemTime,
    size: u64,
    /// A `.partial`; and whether a recorder is writing it (it holds the file's lock).
    partial: bool,
    live: bool,
}

impl Retention {
    /// Deletes what is past keeping; returns how many files went.
    pub(crate) fn sweep(&self) -> usize {
        let mut found = Vec::new();
        self.collect(&mut found);
        found.sort_by_key(|f| f.modified);
        let now = SystemTime::now();
        let mut total: u64 = found.iter().map(|f| f.size).sum();
        let mut deleted = 0;
        let newest = found.iter().rposition(|f| !f.partial).unwrap_or(0);
        for (i, f) in found.iter().enumerate() {
            if f.live {
                continue;
            }
            let too_old = !f.partial
                && self
                    .keep_for
                    .is_some_and(|keep| now.duration_since(f.modified).is_ok_and(|age| age > keep));
            let too_much =
                (f.partial || i < newest) && self.keep_size.is_some_and(|keep| total > keep);
            if !(too_old || too_much) {
                continue;
            }
            match std::fs::remove_file(&f.path) {
                Ok(()) => {
                    deleted += 1;
                    total -= f.size;
                    let why = self.wording.of(if too_old {
                        Field::KeepFor
                    } else {
                        Field::KeepSize
                    });
                    if f.partial {
                        tracing::warn!(
                            "deleted {}, a leftover that could not be repaired ({why})",
                            f.path.display()
                        );
                    } else {
                        tracing::info!("deleted {} ({why})", f.path.display());
                    }
                    self.remove_empty_dirs(&f.path);
                }
                Err(e) => tracing::warn!("cannot delete {}: {e}", f.path.display()),
            }
        }
        deleted
    }

    /// Deletes the oldest recording but the newest (to make room on a full disk); whether one
    /// went.
    pub(crate) fn delete_oldest(&self) -> bool {
        let mut found = Vec::new();
        self.collect(&mut found);
        // Never the live file, nor the newest finished one.
        found.retain(|f| !f.live);
        found.sort_by_key(|f| f.modified);
        if let Some(newest) = found.iter().rposition(|f| !f.partial) {
            found.remove(newest);
        }
        let Some(oldest) = found.first() else {
            return false;
        };
        match std::fs::remove_file(&oldest.path) {
            Ok(()) => {
                tracing::warn!("deleted {} to make room (disk full)", oldest.path.display());
                self.remove_empty_dirs(&oldest.path);
                true
            }
            Err(e) => {
                tracing::warn!("cannot delete {}: {e}", oldest.path.display());
                false
            }
        }
    }

    /// The recordings the template names, finished or not.
    fn collect(&self, found: &mut Vec<Found>) {
        self.template.walk(&mut |path, meta| {
            let partial = path.extension().is_some_and(|e| e == "partial");
            let live = partial
                && std::fs::File::open(&path)
                    .and_then(|f| super::file::try_lock(&f))
                    .is_ok_and(|free| !free);
            found.push(Found {
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                size: meta.len(),
                path,
                partial,
                live,
            });
        });
    }

    /// Removes the directories between `file` and the template's root that are now empty.
    fn remove_empty_dirs(&self, file: &Path) {
        let root = self.template.root();
        let mut dir = file.parent();
        while let Some(d) = dir {
            if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
                return;
            }
            dir = d.parent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_aged(path: &Path, bytes: usize, age: Duration) -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(path, vec![0u8; bytes])?;
        let f = std::fs::File::options().write(true).open(path)?;
        f.set_modified(SystemTime::now() - age)
    }

    #[test]
    fn deletes_only_its_own_finished_recordings() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let base = dir.path().display();
        let template = Template::parse(&format!("{base}/front/%Y-%m-%d/%H%M%S.mp4"))
            .map_err(std::io::Error::other)?;
        let day = Duration::from_secs(86_400);
        let own_old = dir.path().join("front/2026-11-01/101010.mp4");
        let own_new = dir.path().join("front/2026-11-27/101010.mp4");
        let partial = dir.path().join("front/2026-11-01/111111.mp4.partial");
        let other = dir.path().join("front/2026-11-01/notes.txt");
        let side = dir.path().join("side/2026-11-01/101010.mp4");
        write_aged(&own_old, 10, day * 20)?;
        write_aged(&own_new, 10, day)?;
        write_aged(&partial, 10, day * 20)?;
        write_aged(&other, 10, day * 20)?;
        write_aged(&side, 10, day * 20)?;
        let keep = Retention {
            template,
            keep_for: Some(day * 14),
            keep_size: None,
            wording: Default::default(),
        };
        assert_eq!(keep.sweep(), 1);
        assert!(!own_old.exists() && own_new.exists());
        assert!(partial.exists() && other.exists() && side.exists());
        Ok(())
    }

    #[test]
    fn keeps_size_by_deleting_the_oldest_and_empty_dirs() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let base = dir.path().display();
        let template =
            Template::parse(&format!("{base}/%Y/%H%M%S.mp4")).map_err(std::io::Error::other)?;
        let minute = Duration::from_secs(60);
        let files = ["2024/000001.mp4", "2025/000002.mp4", "2026/000003.mp4"];
        for (i, f) in files.iter().enumerate() {
            write_aged(&dir.path().join(f), 100, minute * (10 - i as u32))?;
        }
        let keep = Retention {
            template,
            keep_for: None,
            keep_size: Some(250),
            wording: Default::default(),
        };
        assert_eq!(keep.sweep(), 1);
        assert!(
            !dir.path().join("2024").exists(),
            "its emptied directory went too"
        );
        assert!(dir.path().join(files[1]).exists() && dir.path().join(files[2]).exists());
        assert!(keep.delete_oldest());
        assert!(!dir.path().join(files[1]).exists());
        // The newest stays, whatever the size or the disk says.
        assert!(!keep.delete_oldest());
        let tiny = Retention {
            keep_size: Some(1),
            ..keep
        };
        assert_eq!(tiny.sweep(), 0);
        assert!(dir.path().join(files[2]).exists());
        Ok(())
    }
}
