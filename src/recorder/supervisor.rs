//! One camera's recording across sessions: connect, ingest until something ends it, decide what
//! comes next, and finish the file whatever happened.
//!
//! Joining a live broadcast (VLC's, say) mid-frame makes retina's depacketizer fail on the
//! first packets; before any video frame that is worth a fresh session rather than the
//! recording, so the supervisor opens up to [`MAX_START_ATTEMPTS`] sessions into one file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use retina::client::{Demuxed, SessionGroup};
use tokio::sync::watch;

use super::frames::FrameMapper;
use super::ingest::{End, Ingest};
use super::{Outcome, log_outcome};
use crate::config::RecorderConfig;
use crate::error::{Error, Result, one_line};
use crate::mp4;
use crate::output::Writer;
use crate::rtsp::connect::{self, camera_error};
use crate::rtsp::select::Selection;

/// Frames that may wait for the disk before recording stops with an error: at 30 fps video
/// plus 50 audio frames/s, about 25 s of slack.
const WRITER_QUEUE_FRAMES: usize = 2048;

/// Sessions tried before the first video frame.
const MAX_START_ATTEMPTS: u32 = 5;

/// Records `config`'s camera into `out` until stopped, the deadline, or a failure; the file
/// is finished in every case.
pub(crate) async fn supervise(
    config: &RecorderConfig,
    out: &Path,
    mut stop: watch::Receiver<bool>,
) -> Result<Outcome> {
    let camera = config.source.host_port();
    let group = Arc::new(SessionGroup::default());
    let (mut session, selection) = tokio::select! {
        r = connect::open(config, &group) => r?,
        Ok(()) = stop.changed() => {
            let stopped = anyhow::anyhow!("stopped while connecting to camera {camera}");
            return Err(Error::failure(stopped));
        }
    };
    let muxing = mp4_config(config, &selection, &session);
    let mut writer = Writer::start(out, muxing, WRITER_QUEUE_FRAMES)?;
    let mut mapper = FrameMapper::new(&selection, config.allow_loss);
    let mut ingest = Ingest {
        writer: &mut writer,
        mapper: &mut mapper,
        stop: &mut stop,
        deadline: config.duration.map(|d| tokio::time::Instant::now() + d),
        stall_timeout: config.stall_timeout,
        camera: &camera,
    };
    let mut attempts = 1;
    let failure = loop {
        match ingest.run(&mut session).await {
            End::Stopped | End::WriterFailed => break None,
            End::Broken(e) if ingest.mapper.video_frames == 0 && attempts < MAX_START_ATTEMPTS => {
                attempts += 1;
                tracing::warn!(
                    "camera {camera}: stream broke before the first frame ({}); \
                     reconnecting (attempt {attempts} of {MAX_START_ATTEMPTS})",
                    one_line(&e.to_string())
                        .split("; ")
                        .next()
                        .unwrap_or_default()
                );
                if ingest.restart().is_err() {
                    break None;
                }
                session = match connect::open(config, &group).await {
                    Ok((s, _)) => s,
                    Err(e) => break Some(e),
                };
            }
            End::Broken(e) => break Some(camera_error(&e, &config.source)),
            End::Failed(e) => break Some(e),
        }
    };
    let lost_packets = mapper.lost_packets;
    finish(writer, session, &group, lost_packets, failure).await
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
        timing: config.timing,
        creation_time: jiff::Timestamp::now(),
    }
}

/// Finishes the file, lets a pending TEARDOWN go out, and reports: a failure names the file
/// that holds what was recorded.
async fn finish(
    writer: Writer,
    session: Demuxed,
    group: &SessionGroup,
    lost_packets: u64,
    failure: Option<Error>,
) -> Result<Outcome> {
    let finished = writer.finish().await;
    drop(session);
    // Never hang on a dead camera.
    if tokio::time::timeout(Duration::from_secs(5), group.await_teardown())
        .await
        .is_err()
    {
        tracing::debug!("TEARDOWN did not complete within 5 s");
    }
    if lost_packets > 0 {
        tracing::warn!("{lost_packets} RTP packet(s) were lost during the recording");
    }
    match (failure, finished) {
        (None, result) => result.map_err(Error::failure),
        (Some(e), Ok(outcome)) => {
            log_outcome(&outcome);
            Err(Error::failure(anyhow::anyhow!(
                "{e}; {} holds the {:.1} s recorded",
                outcome.path.display(),
                outcome.stats.duration_secs
            )))
        }
        (Some(e), Err(finish_err)) => {
            tracing::error!("{finish_err:#}");
            Err(e)
        }
    }
}
