//! The writer thread: the session task hands frames over a bounded queue and never waits for
//! the disk; this thread muxes them and writes each fragment (one vectored write, then
//! `fdatasync`), so a crash, even a power loss, costs at most the fragment being written.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::sync::{mpsc, oneshot};

use super::naming::Naming;
use super::pipe::Pipe;
use super::plan::OutputPlan;
use super::progress::Progress;
use super::series::Files;
use crate::mp4::{self, AudioInput, Muxer, Sink, Stats, VideoInput};

/// What the session sends to the writer.
pub(crate) enum Message {
    Video(VideoInput),
    Audio(AudioInput),
    /// A new RTSP session of the same recording begins; `conn` names it in the timing data.
    NewSession {
        conn: u64,
    },
}

/// What a finished recording reports.
#[derive(Debug)]
pub struct Outcome {
    /// The finished file.
    pub path: PathBuf,
    /// What went into it.
    pub stats: Stats,
    /// How many times the recorder reconnected to the camera.
    pub reconnects: u64,
}

/// The session's end of the writer: a bounded queue in, a result out.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Message>>,
    done: Option<oneshot::Receiver<anyhow::Result<Outcome>>>,
}

/// Why a frame could not be queued.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The disk has fallen too far behind.
    QueueFull { capacity: usize },
    /// The writer stopped (its error is returned by [`Writer::finish`]).
    WriterGone,
}

impl Writer {
    /// Starts the writer thread; files are created as their first frames come.
    ///
    /// `queue` bounds the frames waiting to be written; when it overflows, recording stops
    /// with an error rather than dropping frames silently.
    pub(crate) fn start(
        plan: OutputPlan,
        config: mp4::Config,
        queue: usize,
        progress: Arc<Progress>,
    ) -> anyhow::Result<Writer> {
        let output = match plan.naming {
            Naming::Stdout => {
                Output::Pipe(Pipe::stdout(progress.clone()).context("cannot write to stdout")?)
            }
            _ => Output::Files(Box::new(Files::new(plan, progress.clone()))),
        };
        let (tx, rx) = mpsc::channel(queue);
        let (done_tx, done_rx) = oneshot::channel();
        // The thread logs as part of the recording's span (a site's camera name).
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("mp4-writer".into())
            .spawn(move || {
                let _entered = span.enter();
                let mut output = output;
                // A killed recorder's leftovers first, while the camera is connected to.
                if let Output::Files(files) = &mut output {
                    files.recover();
                }
                let _ = done_tx.send(write_recording(output, config, rx, &progress));
            })
            .context("cannot start the writer thread")?;
        Ok(Writer {
            tx: Some(tx),
            done: Some(done_rx),
        })
    }

    /// Queues a frame without waiting.
    pub(crate) fn send(&self, msg: Message) -> Result<(), SendError> {
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
    pub(crate) async fn failed(&mut self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }

    /// Ends the queue and waits for the writer to finish the file.
    pub(crate) async fn finish(mut self) -> anyhow::Result<Outcome> {
        drop(self.tx.take());
        match self.done.take() {
            Some(done) => done.await.unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "the writer thread died; the .partial file holds what was written"
                ))
            }),
            None => bail!("writer already finished"),
        }
    }
}

/// Where the muxer writes: the recording's files, or stdout.
enum Output {
    Files(Box<Files>),
    Pipe(Pipe),
}

impl Output {
    fn sink(&mut self) -> &mut dyn Sink {
        match self {
            Output::Files(f) => f.as_mut(),
            Output::Pipe(p) => p,
        }
    }

    /// Where what was written so far is, for errors.
    fn describe(&self) -> String {
        match self {
            Output::Files(f) => format!("{}; {}", f.current(), f.kept()),
            Output::Pipe(p) => format!("stdout; {} bytes were written to it", p.bytes()),
        }
    }

    /// A pipe whose reader has gone: the end of the recording, not a failure.
    fn reader_gone(&self) -> bool {
        matches!(self, Output::Pipe(p) if p.closed())
    }
}

/// The writer thread's body: mux until the queue closes (or stdout's reader goes), then
/// finish the file.
fn write_recording(
    mut output: Output,
    config: mp4::Config,
    mut rx: mpsc::Receiver<Message>,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let mut muxer = Muxer::new(config);
    while let Some(msg) = rx.blocking_recv() {
        let sink = output.sink();
        let result = match msg {
            Message::Video(f) => {
                progress.frame();
                muxer.push_video(f, sink)
            }
            Message::Audio(f) => muxer.push_audio(f, sink),
            Message::NewSession { conn } => muxer.new_session(conn, sink),
        };
        progress.dropped_frames(muxer.stats().dropped());
        if let Err(e) = result {
            // Close the queue first so the session notices at once.
            rx.close();
            if output.reader_gone() {
                break;
            }
            bail!("writing {} failed: {e}", output.describe());
        }
    }
    let finished = muxer.finish(output.sink());
    let path = match &mut output {
        Output::Files(files) => {
            files.wait_for_hooks();
            files.last().map(ToOwned::to_owned)
        }
        Output::Pipe(p) => (p.bytes() > 0).then(|| PathBuf::from("-")),
    };
    let stats =
        finished.map_err(|e| anyhow::anyhow!("finishing {} failed: {e}", output.describe()))?;
    let Some(path) = path else {
        bail!("no frames were recorded, so no file was written");
    };
    Ok(Outcome {
        path,
        stats,
        reconnects: 0,
    })
}
