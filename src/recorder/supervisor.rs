//! One camera's recording across RTSP sessions: connect, ingest until something ends the
//! session, then reconnect with back-off (or, with `--no-reconnect` or an error no retry can
//! fix, stop), writing every session into the same recording; finish the file whatever
//! happened.
//!
//! An outage is a gap in the recording's timeline as long as it lasted by the wall clock; each
//! session is named in the timing data (`docs/timing-sei.md`, `conn`), because each has its own
//! RTP clock.

use std::sync::Arc;
use std::time::Duration;

use retina::client::{Demuxed, SessionGroup};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::frames::FrameMapper;
use super::ingest::{End, Ingest};
use super::{Outcome, Progress, log_outcome};
use crate::config::{Field, RecorderConfig};
use crate::error::{Error, Result};
use crate::mp4;
use crate::ntp;
use crate::output::{Message, OutputPlan, Writer};
use crate::rtsp::connect;
use crate::rtsp::retina_messages::for_camera;
use crate::rtsp::select::Selection;
use crate::rtsp::workarounds::{UDP_SILENCE, Workarounds};
use crate::stop::{Stop, StopReason};
use crate::throttle::{Throttle, held_back_note};

/// Frames that may wait for the disk before recording stops with an error: at 30 fps video
/// plus 50 audio frames/s, about 25 s of slack.
const WRITER_QUEUE_FRAMES: usize = 2048;

/// Failed attempts in a row that are each logged; after them, one line a minute.
const LOGGED_ATTEMPTS: u32 = 5;

/// What comes next, after a step.
enum Next<T> {
    Go(T),
    /// A stop: a signal or the deadline.
    Stop,
    /// Try again (if reconnecting).
    Retry(Error),
    /// Try again at once, another way (a workaround was learned).
    Again,
    /// The end: no retry can help.
    Fatal(Error),
}

/// The recording of one camera, across sessions.
struct Supervisor<'a> {
    config: &'a RecorderConfig,
    plan: &'a OutputPlan,
    progress: Arc<Progress>,
    camera: String,
    stop: Stop,
    group: Arc<SessionGroup>,
    backoff: Backoff,
    /// Created with the first session that opens: its streams decide the tracks.
    writer: Option<(Writer, FrameMapper, mp4::Config)>,
    sessions: u64,
    /// When the last session that delivered frames ended (or the recorder started).
    last_working: Instant,
    failures_in_a_row: u32,
    retry_warnings: Throttle,
    bad_packets: u64,
    bad_packet_warnings: Throttle,
    /// Why the latest attempt failed, for a deadline that passes during an outage.
    last_error: Option<Error>,
    /// What this camera has needed to connect, kept for its later sessions.
    workarounds: Workarounds,
}

/// Records `config`'s camera into `out` until stopped, the deadline, or a failure no retry
/// fixes; the file is finished in every case. `Ok(None)`: stopped before anything was recorded.
pub(crate) async fn supervise(
    config: &RecorderConfig,
    plan: &OutputPlan,
    stop: Stop,
    progress: Arc<Progress>,
) -> Result<Option<Outcome>> {
    let mut s = Supervisor {
        config,
        plan,
        progress,
        camera: config.source.host_port(),
        stop,
        group: Arc::new(SessionGroup::default()),
        backoff: Backoff::new(config.reconnect_max_delay),
        writer: None,
        sessions: 0,
        last_working: Instant::now(),
        failures_in_a_row: 0,
        retry_warnings: Throttle::new(),
        bad_packets: 0,
        bad_packet_warnings: Throttle::new(),
        last_error: None,
        workarounds: Workarounds::default(),
    };
    for_camera(s.camera.clone(), async move {
        let failure = s.run().await;
        s.finish(failure).await
    })
    .await
}

impl Supervisor<'_> {
    /// Sessions until the end; `Some`: the failure that ended the recording.
    async fn run(&mut self) -> Option<Error> {
        loop {
            let why = match self.connect().await {
                Next::Go((session, selection)) => match self.record(session, selection).await {
                    Next::Go(()) | Next::Stop => return None,
                    Next::Again => continue,
                    Next::Retry(e) => e,
                    Next::Fatal(e) => return Some(e),
                },
                Next::Stop => return None,
                Next::Again => continue,
                Next::Retry(e) => e,
                Next::Fatal(e) => return Some(e),
            };
            if !self.config.reconnect {
                return Some(why);
            }
            if let Some(limit) = self.config.give_up_after
                && self.last_working.elapsed() >= limit
            {
                return Some(Error::failure(anyhow::anyhow!(
                    "no working connection to camera {} for {:.0} s ({}); the last attempt: {why}",
                    self.camera,
                    limit.as_secs_f64(),
                    self.config.wording.of(Field::GiveUpAfter)
                )));
            }
            if !self.wait_to_retry(why).await {
                return None;
            }
        }
    }

    /// Opens a session, unless stopped first.
    async fn connect(&mut self) -> Next<(Demuxed, Selection)> {
        tokio::select! {
            biased;
            Ok(()) = self.stop.changed() => Next::Stop,
            opened = connect::open(
                self.config, &self.group, self.sessions > 0, &mut self.workarounds
            ) => match opened {
                Ok(s) => Next::Go(s),
                Err(e) if e.permanent => Next::Fatal(e.error),
                Err(e) => Next::Retry(e.error),
            },
        }
    }

    /// Records one session into the recording until it ends.
    async fn record(&mut self, mut session: Demuxed, selection: Selection) -> Next<()> {
        let muxing = mp4_config(self.config, &selection, &session);
        if let Err(e) = self.start_session(&selection, muxing) {
            return Next::Fatal(e);
        }
        let Some((writer, mapper, _)) = self.writer.as_mut() else {
            return Next::Stop;
        };
        let mut ingest = Ingest {
            writer,
            mapper,
            stop: &mut self.stop,
            stall_timeout: self.config.stall_timeout,
            udp_silence: selection.udp.then_some(UDP_SILENCE),
            wording: self.config.wording,
            camera: &self.camera,
            bad_packets: &mut self.bad_packets,
            bad_packet_warnings: &mut self.bad_packet_warnings,
            progress: &self.progress,
        };
        self.progress.connected(true);
        let (end, report) = ingest.run(&mut session).await;
        self.progress.connected(false);
        drop(session); // its TEARDOWN goes out in the background (the session group)
        if report.frames > 0 {
            self.backoff.reset();
            self.failures_in_a_row = 0;
            self.last_working = Instant::now();
        }
        match end {
            End::Stopped | End::WriterFailed => Next::Stop,
            End::UdpSilent => self.udp_was_silent(),
            End::Dropped(e) => Next::Retry(e),
            End::Fatal(e) => Next::Fatal(e),
        }
    }

    /// Nothing came over UDP: TCP from now on, at once; unless the camera refused TCP, when
    /// both are worth trying again after the back-off.
    fn udp_was_silent(&mut self) -> Next<()> {
        match self.workarounds.udp_was_silent(&self.camera) {
            Ok(()) => Next::Again,
            Err(e) => Next::Retry(e),
        }
    }

    /// The first session creates the writer; later ones must bring the same kinds of streams.
    fn start_session(&mut self, selection: &Selection, muxing: mp4::Config) -> Result<()> {
        self.sessions += 1;
        let conn = ntp::from_system_time(std::time::SystemTime::now());
        match &mut self.writer {
            None => {
                let mapper = FrameMapper::new(selection, self.config);
                let writer = Writer::start(
                    self.plan.clone(),
                    muxing.clone(),
                    WRITER_QUEUE_FRAMES,
                    self.progress.clone(),
                )?;
                self.writer = Some((writer, mapper, muxing));
            }
            Some((_, mapper, first)) => {
                self.progress.reconnected();
                if first.video != muxing.video || first.audio != muxing.audio {
                    return Err(Error::failure(anyhow::anyhow!(
                        "camera {}: after reconnecting, it offers other streams than the \
                         recording has (codec, clock rate or audio format changed)",
                        self.camera
                    )));
                }
                mapper.new_session(selection);
                tracing::info!("camera {}: reconnected", self.camera);
            }
        }
        if let Some((writer, _, _)) = &self.writer {
            // A writer that already failed reports its error when finished.
            let _ = writer.send(Message::NewSession { conn });
        }
        Ok(())
    }

    /// Logs why, then waits the back-off delay. `false`: stopped (or the deadline passed)
    /// meanwhile.
    async fn wait_to_retry(&mut self, why: Error) -> bool {
        let delay = self.backoff.next_delay();
        self.failures_in_a_row += 1;
        let n = self.failures_in_a_row;
        if n <= LOGGED_ATTEMPTS {
            tracing::warn!("{why}; reconnecting in {:.1} s", delay.as_secs_f64());
        } else if let Some(held_back) = self.retry_warnings.hit() {
            tracing::warn!(
                "{why}; still reconnecting ({n} attempts in a row, the next in {:.1} s){}",
                delay.as_secs_f64(),
                held_back_note(held_back)
            );
        }
        self.last_error = Some(why);
        tokio::select! {
            biased;
            Ok(()) = self.stop.changed() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// Finishes the file, lets pending TEARDOWNs go out, and reports: a failure names the
    /// file that holds what was recorded.
    async fn finish(self, failure: Option<Error>) -> Result<Option<Outcome>> {
        let finished = match self.writer {
            Some((writer, mapper, _)) => {
                self.progress.lost_packets(mapper.lost_packets);
                if mapper.lost_packets > 0 {
                    let n = mapper.lost_packets;
                    tracing::warn!("camera {}: {n} RTP packet(s) were lost", self.camera);
                }
                Some(writer.finish().await)
            }
            None => None,
        };
        // Never hang on a dead camera.
        if tokio::time::timeout(Duration::from_secs(5), self.group.await_teardown())
            .await
            .is_err()
        {
            tracing::debug!("TEARDOWN did not complete within 5 s");
        }
        if self.bad_packets > 0 {
            tracing::info!("skipped {} bad packet(s)", self.bad_packets);
        }
        let reconnects = self.sessions.saturating_sub(1);
        let failure = failure.or_else(|| {
            // The deadline passed in an outage that began before anything was recorded.
            let deadline = *self.stop.borrow() == Some(StopReason::Deadline);
            let nothing = finished.is_none() && deadline;
            nothing.then_some(self.last_error).flatten()
        });
        match (failure, finished) {
            (None, None) => Ok(None),
            (None, Some(result)) => {
                let mut outcome = result.map_err(Error::failure)?;
                outcome.reconnects = reconnects;
                Ok(Some(outcome))
            }
            (Some(e), Some(Ok(mut outcome))) => {
                outcome.reconnects = reconnects;
                log_outcome(&outcome);
                Err(Error::failure(anyhow::anyhow!(
                    "{e}; {} holds the {:.1} s recorded",
                    outcome.path.display(),
                    outcome.stats.duration_secs
                )))
            }
            (Some(e), Some(Err(finish_err))) => {
                tracing::error!("{finish_err:#}");
                Err(e)
            }
            (Some(e), None) => Err(e),
        }
    }
}

/// What the muxer is told before the first frame.
fn mp4_config(config: &RecorderConfig, selection: &Selection, session: &Demuxed) -> mp4::Config {
    mp4::Config {
        video: selection.video.map(|(i, codec)| mp4::VideoConfig {
            codec,
            clock_rate: session.streams()[i].clock_rate_hz(),
        }),
        audio: selection.audio.as_ref().map(|(_, a, _)| a.clone()),
        fragment_duration: config.fragment_duration,
        segment_duration: config.segment_duration,
        timing: config.timing,
        creation_time: jiff::Timestamp::now(),
    }
}
