//! The output file, owned by a writer thread.
//!
//! The session task hands frames over a bounded queue; this thread muxes them and writes each
//! fragment with one vectored write followed by `fdatasync`, so the RTSP reader never waits for
//! the disk and a crash (even a power loss) costs at most the fragment being written.
//!
//! Lifecycle: the recording is written to `OUT.partial`. A clean stop finishes the last
//! fragment, appends the `mfra` index, rewrites the header with durations, syncs, and renames
//! the file to `OUT`. Anything else leaves `OUT.partial`, playable up to its last fragment.
//! Neither name is ever overwritten: an existing file is someone's earlier recording.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IoSlice, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio::sync::{mpsc, oneshot};

use crate::mp4::{self, AudioInput, Muxer, Sink as _, Stats, VideoInput};

pub(crate) mod naming;

/// What the session sends to the writer.
pub enum Message {
    Video(VideoInput),
    Audio(AudioInput),
    /// The session was replaced before recording started: drop what the old one left.
    Restart,
}

/// What a finished recording reports.
#[derive(Debug)]
pub struct Outcome {
    pub path: PathBuf,
    pub stats: Stats,
}

/// The session's end of the writer: a bounded queue in, a result out.
pub struct Writer {
    tx: Option<mpsc::Sender<Message>>,
    done: Option<oneshot::Receiver<anyhow::Result<Outcome>>>,
    partial: PathBuf,
}

/// Why a frame could not be queued.
#[derive(Debug)]
pub enum SendError {
    /// The disk has fallen too far behind.
    QueueFull { capacity: usize },
    /// The writer stopped (its error is returned by [`Writer::finish`]).
    WriterGone,
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

/// `OUT.partial`: the name the recording has until it is finished.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name: OsString = out.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

impl Writer {
    /// Creates `OUT.partial` and starts the writer thread.
    ///
    /// `queue` bounds the frames waiting to be written; when it overflows, recording stops
    /// with an error rather than dropping frames silently.
    pub fn start(out: &Path, config: mp4::Config, queue: usize) -> anyhow::Result<Writer> {
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
        let (tx, rx) = mpsc::channel(queue);
        let (done_tx, done_rx) = oneshot::channel();
        let out = out.to_owned();
        let thread_partial = partial.clone();
        std::thread::Builder::new()
            .name("mp4-writer".into())
            .spawn(move || {
                let result = write_recording(file, &thread_partial, &out, config, rx);
                let _ = done_tx.send(result);
            })
            .context("cannot start the writer thread")?;
        Ok(Writer {
            tx: Some(tx),
            done: Some(done_rx),
            partial,
        })
    }

    /// Queues a frame without waiting.
    pub fn send(&self, msg: Message) -> Result<(), SendError> {
        let Some(tx) = &self.tx else {
            return Err(SendError::WriterGone);
        };
        tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull {
                capacity: tx.max_capacity(),
            },
            mpsc::error::TrySendError::Closed(_) => SendError::WriterGone,
        })
    }

    /// Resolves when the writer thread has stopped on its own, i.e. failed.
    pub async fn failed(&mut self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }

    /// Ends the queue and waits for the writer to finish the file.
    pub async fn finish(mut self) -> anyhow::Result<Outcome> {
        drop(self.tx.take());
        match self.done.take() {
            Some(done) => done.await.unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "the writer thread died; {} holds what was written",
                    self.partial.display()
                ))
            }),
            None => bail!("writer already finished"),
        }
    }
}

/// The writer thread's body: mux until the queue closes, then finish the file.
fn write_recording(
    file: File,
    partial: &Path,
    out: &Path,
    config: mp4::Config,
    mut rx: mpsc::Receiver<Message>,
) -> anyhow::Result<Outcome> {
    let mut muxer = Muxer::new(config);
    let mut sink = FileSink {
        file,
        append_pos: mp4::HEADER_SIZE as u64,
        positioned: false,
    };
    let keep = || format!("the fragments written so far are in {}", partial.display());
    while let Some(msg) = rx.blocking_recv() {
        let result = match msg {
            Message::Video(f) => muxer.push_video(f, &mut sink),
            Message::Audio(f) => muxer.push_audio(f, &mut sink),
            Message::Restart => {
                muxer.restart_before_start();
                Ok(())
            }
        };
        if let Err(e) = result {
            // Close the queue first so the session notices at once.
            rx.close();
            return Err(anyhow::anyhow!(
                "writing {} failed: {e}; {}",
                partial.display(),
                keep()
            ));
        }
    }
    let stats = muxer
        .finish(&mut sink)
        .map_err(|e| anyhow::anyhow!("finishing {} failed: {e}; {}", partial.display(), keep()))?;
    if !muxer.has_output() {
        drop(sink);
        let _ = std::fs::remove_file(partial);
        bail!("no frames were recorded, so no file was written");
    }
    let data = crate::mp4::read::Data::File(sink.file.try_clone()?);
    match crate::mp4::build_mfra(&data) {
        Ok(mfra) => sink
            .append(&[&mfra])
            .with_context(|| format!("appending the index to {} failed", partial.display()))?,
        // The file plays without the index; losing the recording over it would be wrong.
        Err(e) => tracing::warn!("not writing an mfra index: {e}"),
    }
    sink.file
        .sync_all()
        .with_context(|| format!("syncing {} failed; {}", partial.display(), keep()))?;
    std::fs::rename(partial, out)
        .with_context(|| format!("renaming {} to {} failed", partial.display(), out.display()))?;
    // Make the rename itself durable.
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Outcome {
        path: out.to_owned(),
        stats,
    })
}

struct FileSink {
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
