//! The recorder: one camera, from a [`RecorderConfig`] to a finished file.
//!
//! [`record`] names the output and waits for the start time; the supervisor (`supervisor.rs`)
//! owns the recording across RTSP sessions; each session's ingest (`ingest.rs`) moves retina's
//! items, turned into muxer inputs by the frame mapper (`frames.rs`), to the writer thread.

mod backoff;
mod frames;
mod ingest;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Field, RecorderConfig};
use crate::error::Result;
use crate::output;
use crate::source::redacted;
use crate::stop::{self, Stop};

pub use crate::output::Outcome;
pub use crate::output::{Progress, Snapshot};

/// Records as `config` says until stopped (a reason on `stop`), the configured duration, or a
/// failure that no reconnection fixes, which still finishes the file. `Ok(None)`: stopped
/// before anything was recorded (a deadline that passes while the camera cannot be reached is
/// that attempt's failure).
pub async fn record(config: RecorderConfig, stop: Stop) -> Result<Option<Outcome>> {
    record_observed(config, stop, Arc::default()).await
}

/// As [`record`], with its counters kept in `progress` for a watcher to read.
pub async fn record_observed(
    config: RecorderConfig,
    mut stop: Stop,
    progress: Arc<Progress>,
) -> Result<Option<Outcome>> {
    let source = &config.source;
    let plan = output::plan(&config).await?;
    tracing::info!("recording {} to {}", redacted(&source.url), plan.describe());
    if let Some(retention) = plan.retention.clone() {
        // Before anything connects: old recordings go even if the camera never answers.
        if let Ok(deleted) = tokio::task::spawn_blocking(move || retention.sweep()).await {
            progress.files_deleted(deleted);
        }
    }
    if let Some(start) = &config.start {
        let wait = start.timestamp().duration_since(jiff::Timestamp::now());
        let wait = Duration::try_from(wait).unwrap_or_default();
        tracing::info!(
            "waiting until {} ({:.0} s) to start",
            start.time(),
            wait.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            Ok(()) = stop.changed() => return Ok(None),
        }
    }
    let deadline = config.duration.map(|d| tokio::time::Instant::now() + d);
    let stop = stop::with_deadline(stop, deadline, config.wording.of(Field::Duration));
    let result = supervisor::supervise(&config, &plan, stop, progress).await;
    result.map_err(|e| e.scrub(source.secret()))
}

/// Logs what a recording wrote and what it had to drop or correct.
pub fn log_outcome(o: &Outcome) {
    let s = &o.stats;
    let wrote = if s.files > 1 {
        format!("{} files, the last {}", s.files, o.path.display())
    } else {
        o.path.display().to_string()
    };
    tracing::info!(
        "wrote {wrote}: {:.1} s, {} video frames, {} audio frames, {} sender reports, {} \
         fragments, {} sample description(s)",
        s.duration_secs,
        s.video_frames,
        s.audio_frames,
        s.sender_reports,
        s.fragments,
        s.sample_descriptions
    );
    // One line each, so that none grows past a line with large counts.
    if s.dropped_audio_before_start > 0 {
        tracing::info!(
            "audio: dropped {} frame(s) from before the first video keyframe",
            s.dropped_audio_before_start
        );
    }
    if s.dropped_audio_backward > 0 {
        tracing::info!(
            "audio: dropped {} frame(s) that overlapped the previous one too far",
            s.dropped_audio_backward
        );
    }
    if s.shifted_audio > 0 {
        tracing::info!(
            "audio: {} small step(s) back in time corrected by moving the audio that follows later",
            s.shifted_audio
        );
    }
    if s.dropped_empty > 0 {
        tracing::info!(
            "dropped {} empty frame(s) (video without a picture, audio without data)",
            s.dropped_empty
        );
    }
    if o.reconnects > 0 {
        tracing::info!(
            "reconnected {} time(s); each outage is a gap in the recording",
            o.reconnects
        );
    }
    if s.dropped_disk_full > 0 {
        tracing::warn!(
            "{} frame(s) dropped while the disk was full (a gap in the recording)",
            s.dropped_disk_full
        );
    }
    if s.timestamp_jumps > 0 {
        tracing::warn!(
            "the camera's timestamps jumped {} time(s) (see above)",
            s.timestamp_jumps
        );
    }
}
