//! One RTSP session's life: items from retina to the writer, without ever waiting for the disk,
//! until something ends it — a stop, the deadline, a silent camera, the writer, the stream.

use futures::StreamExt as _;
use retina::client::Demuxed;
use tokio::sync::watch;
use tokio::time::Instant;

use super::frames::FrameMapper;
use crate::error::Error;
use crate::output::{Message, SendError, Writer};

/// Why a session's ingest ended.
pub(crate) enum End {
    /// A stop signal or the deadline.
    Stopped,
    /// The writer stopped on its own; its error comes from finishing it.
    WriterFailed,
    /// Retina reported an error on the stream (which may be worth a fresh session).
    Broken(retina::Error),
    /// The recording cannot go on: the camera went away or went silent, packets were lost, the
    /// disk fell behind.
    Failed(Error),
}

/// What one session's ingest works with.
pub(crate) struct Ingest<'a> {
    pub writer: &'a mut Writer,
    pub mapper: &'a mut FrameMapper,
    pub stop: &'a mut watch::Receiver<bool>,
    pub deadline: Option<Instant>,
    pub stall_timeout: std::time::Duration,
    /// `host:port`, for messages.
    pub camera: &'a str,
}

impl Ingest<'_> {
    /// Moves `session`'s items to the writer until something ends it.
    pub(super) async fn run(&mut self, session: &mut Demuxed) -> End {
        let stall = tokio::time::sleep(self.stall_timeout);
        tokio::pin!(stall);
        let mut last_item = Instant::now();
        loop {
            tokio::select! {
                biased;
                Ok(()) = self.stop.changed() => return End::Stopped,
                _ = sleep_until(self.deadline) => {
                    tracing::info!("--duration reached");
                    return End::Stopped;
                }
                () = &mut stall => {
                    // Re-armed lazily: items only note their time, the timer checks it.
                    let quiet_until = last_item + self.stall_timeout;
                    if quiet_until > Instant::now() {
                        stall.as_mut().reset(quiet_until);
                        continue;
                    }
                    return End::Failed(Error::failure(anyhow::anyhow!(
                        "camera {} sent nothing for {:.0} s (--stall-timeout)",
                        self.camera,
                        self.stall_timeout.as_secs_f64()
                    )));
                }
                _ = self.writer.failed() => return End::WriterFailed,
                item = session.next() => match item {
                    None => {
                        let ended = anyhow::anyhow!("camera {} ended the stream", self.camera);
                        return End::Failed(Error::failure(ended));
                    }
                    Some(Err(e)) => return End::Broken(e),
                    Some(Ok(item)) => {
                        last_item = Instant::now();
                        if let Err(e) = self.forward(item, session) {
                            return End::Failed(e);
                        }
                    }
                },
            }
        }
    }

    fn forward(&mut self, item: retina::codec::CodecItem, session: &Demuxed) -> Result<(), Error> {
        let Some(message) = self.mapper.map(item, session)? else {
            return Ok(());
        };
        match self.writer.send(message) {
            Ok(()) => Ok(()),
            Err(SendError::QueueFull { capacity }) => Err(Error::failure(anyhow::anyhow!(
                "the disk is not keeping up: {capacity} frames are waiting to be written"
            ))),
            // The writer's own error is reported when it is finished.
            Err(SendError::WriterGone) => Ok(()),
        }
    }

    /// Tells the writer that the session was replaced before recording started.
    pub(super) fn restart(&mut self) -> Result<(), SendError> {
        self.mapper.restart();
        self.writer.send(Message::Restart)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
