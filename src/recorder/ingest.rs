//! One RTSP session's life: items from retina to the writer, without ever waiting for the disk,
//! until something ends it — a stop (a signal or the deadline), a silent camera, the writer, the
//! stream.
//!
//! A bad packet is not the end of a session: retina's depacketizers drop the access unit they
//! were building and start afresh after an error ("so the caller can try to recover"), so the
//! ingest logs it (throttled), counts it, and goes on; what it costs is the frames up to the
//! next access-unit boundary. Only a run of errors with nothing good between them ends the
//! session.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use retina::client::Demuxed;
use retina::codec::CodecItem;
use tokio::time::Instant;

use super::frames::FrameMapper;
use crate::config::{Field, Wording};
use crate::error::{Error, one_line};
use crate::memory::{MemoryGuard, SESSION_LIMIT, mib};
use crate::output::{Progress, SendError, Writer};
use crate::rtsp::retina_messages::error_words;
use crate::stop::Stop;
use crate::throttle::{Throttle, held_back_note};

/// This many retina errors in a row, with no good item between them, end the session.
const MAX_ERRORS_IN_A_ROW: u32 = 50;

/// Why a session's ingest ended.
pub(crate) enum End {
    /// A stop: a signal or the deadline.
    Stopped,
    /// The writer stopped on its own; its error comes from finishing it.
    WriterFailed,
    /// The session is gone (the connection dropped, the stream ended, the camera went silent,
    /// or sent nothing but errors): a new one may work.
    Dropped(Error),
    /// The recording cannot go on: packets lost with `--stop-on-loss`, the disk falling behind.
    Fatal(Error),
    /// Nothing at all came over UDP: a NAT or a firewall between, most likely.
    UdpSilent,
}

/// What one session's ingest works with.
pub(crate) struct Ingest<'a> {
    pub writer: &'a mut Writer,
    pub mapper: &'a mut FrameMapper,
    pub stop: &'a mut Stop,
    pub stall_timeout: Duration,
    /// Over UDP: how long the session may bring nothing at all before it is given up as
    /// [`End::UdpSilent`].
    pub udp_silence: Option<Duration>,
    /// How messages name the stall timeout.
    pub wording: Wording,
    /// `host:port`, for messages.
    pub camera: &'a str,
    /// Bad packets skipped over (the whole recording's).
    pub bad_packets: &'a mut u64,
    pub bad_packet_warnings: &'a mut Throttle,
    /// Where the lost packets are counted for watchers, as they are lost.
    pub progress: &'a Progress,
}

/// What the ingest has seen of a session so far.
struct Seen {
    report: SessionTally,
    last_frame: Instant,
    /// Items since the last frame of the watched stream: RTCP, other frames, and errors
    /// (packets that completed nothing).
    other_items: u64,
    errors_in_a_row: u32,
    /// Any item at all (or no need to know: not UDP).
    anything: bool,
}

/// What a session brought.
#[derive(Default)]
pub(crate) struct SessionTally {
    /// Audio and video frames.
    pub frames: u64,
}

impl Ingest<'_> {
    /// Moves `session`'s items to the writer until something ends it.
    pub(super) async fn run(&mut self, session: &mut Demuxed) -> (End, SessionTally) {
        let mut seen = Seen {
            report: SessionTally::default(),
            last_frame: Instant::now(),
            other_items: 0,
            errors_in_a_row: 0,
            anything: self.udp_silence.is_none(),
        };
        let stall = tokio::time::sleep(self.stall_timeout);
        tokio::pin!(stall);
        // The guard lives across items: a future made afresh in each turn of the loop would
        // restart its timer with every packet, and never fire.
        let guard = MemoryGuard::new(SESSION_LIMIT);
        let memory = guard.exceeded_after(Duration::from_secs(1));
        tokio::pin!(memory);
        let udp_silence = tokio::time::sleep(self.udp_silence.unwrap_or_default());
        tokio::pin!(udp_silence);
        let end = loop {
            tokio::select! {
                biased;
                Ok(()) = self.stop.changed() => break End::Stopped,
                grown = &mut memory => {
                    break End::Dropped(Error::failure(anyhow::anyhow!(
                        "camera {}: the session made the recorder hold {} MiB more (a message \
                         or a fragmented frame that never ends?); dropping it",
                        self.camera,
                        mib(grown)
                    )));
                }
                () = &mut stall => {
                    // Re-armed lazily: frames only note their time, the timer checks it.
                    let quiet_until = seen.last_frame + self.stall_timeout;
                    if quiet_until > Instant::now() {
                        stall.as_mut().reset(quiet_until);
                        continue;
                    }
                    break End::Dropped(self.silent(seen.other_items));
                }
                () = &mut udp_silence, if !seen.anything => break End::UdpSilent,
                _ = self.writer.failed() => break End::WriterFailed,
                item = AssertUnwindSafe(session.next()).catch_unwind() => {
                    if let Some(end) = self.take(item, session, &mut seen) {
                        break end;
                    }
                }
            }
        };
        (end, seen.report)
    }

    /// Takes one item from retina (or its end, or its panic); `Some`: the session is over.
    fn take(
        &mut self,
        item: std::thread::Result<Option<Result<CodecItem, retina::Error>>>,
        session: &Demuxed,
        seen: &mut Seen,
    ) -> Option<End> {
        seen.anything = true;
        match item {
            // retina 0.4 can panic on some packet sequences (a depacketizer error while it
            // holds a frame): contain it, drop the session, connect afresh.
            Err(panic) => Some(End::Dropped(Error::failure(anyhow::anyhow!(
                "camera {}: retina failed on the stream ({}); dropping the session",
                self.camera,
                panic_message(panic.as_ref())
            )))),
            Ok(None) => {
                let ended = anyhow::anyhow!("camera {} ended the stream", self.camera);
                Some(End::Dropped(Error::failure(ended)))
            }
            Ok(Some(Err(e))) => {
                seen.errors_in_a_row += 1;
                seen.other_items += 1;
                self.bad_packet(&e, seen.errors_in_a_row)
            }
            Ok(Some(Ok(item))) => {
                seen.errors_in_a_row = 0;
                // The stall timer watches the video, if recorded: audio flowing on while the
                // video broke (a new SSRC, say) is no recording to keep.
                let keeps_alive = match &item {
                    CodecItem::VideoFrame(_) => true,
                    CodecItem::AudioFrame(_) => !self.mapper.records_video(),
                    _ => false,
                };
                if keeps_alive {
                    seen.last_frame = Instant::now();
                    seen.other_items = 0;
                } else {
                    seen.other_items += 1;
                }
                if matches!(item, CodecItem::VideoFrame(_) | CodecItem::AudioFrame(_)) {
                    seen.report.frames += 1;
                }
                self.forward(item, session).err()
            }
        }
    }

    /// Why the stall timer fired: nothing at all came, or things came but no frame completed.
    fn silent(&self, other_items: u64) -> Error {
        let secs = self.stall_timeout.as_secs_f64();
        let camera = self.camera;
        let setting = self.wording.of(Field::StallTimeout);
        Error::failure(if other_items == 0 {
            anyhow::anyhow!("camera {camera} sent nothing for {secs:.0} s ({setting})")
        } else {
            let what = if self.mapper.records_video() {
                "video frame"
            } else {
                "frame"
            };
            anyhow::anyhow!(
                "camera {camera} completed no {what} for {secs:.0} s ({setting}), though other \
                 packets or reports kept arriving"
            )
        })
    }

    /// Skips over a bad packet, or ends the session after a run of them.
    fn bad_packet(&mut self, e: &retina::Error, errors_in_a_row: u32) -> Option<End> {
        let what = error_words(e);
        if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
            return Some(End::Dropped(Error::failure(anyhow::anyhow!(
                "camera {} {what}, and {errors_in_a_row} errors came in a row",
                self.camera
            ))));
        }
        *self.bad_packets += 1;
        if let Some(held_back) = self.bad_packet_warnings.hit() {
            tracing::warn!(
                "camera {} {what}; skipping to the next frame{}",
                self.camera,
                held_back_note(held_back)
            );
        }
        tracing::debug!("camera {}: {}", self.camera, one_line(&e.to_string()));
        None
    }

    fn forward(&mut self, item: CodecItem, session: &Demuxed) -> Result<(), End> {
        let lost = self.mapper.lost_packets;
        let mapped = self.mapper.map(item, session);
        if self.mapper.lost_packets != lost {
            self.progress.lost_packets(self.mapper.lost_packets);
        }
        let message = match mapped {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(()),
            Err(e) => return Err(End::Fatal(Error::failure(e))),
        };
        match self.writer.send(message) {
            Ok(()) => Ok(()),
            Err(SendError::QueueFull { capacity }) => {
                Err(End::Fatal(Error::failure(anyhow::anyhow!(
                    "the disk is not keeping up: {capacity} frames are waiting to be written"
                ))))
            }
            // The writer's own error is reported when it is finished.
            Err(SendError::WriterGone) => Ok(()),
        }
    }
}

/// The start of the message a panic carried (the panic hook logged it whole).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    let head = text.split(": ").next().unwrap_or(text);
    head.chars().take(60).collect()
}
