//! `retina-record --url …`: flags to a [`RecorderConfig`], recorded, what was written logged.

use std::sync::Arc;

use anyhow::Context as _;
use retina_record::config::{RecorderConfig, StreamChoice};
use retina_record::error::{Error, Result};
use retina_record::recorder::{self, Progress, Snapshot};
use retina_record::source::{Login, Source};
use tokio::sync::watch;

use crate::cli::Args;
use crate::status::StatusLine;
use crate::systemd;
use crate::watched::Watched;

pub(crate) async fn run(args: &Args, stop: watch::Receiver<bool>) -> Result<()> {
    let config = config(args)?;
    let deadline = config.duration;
    let progress = Arc::new(Progress::default());
    let watched = Watched::one(progress.clone());
    let notifier = tokio::spawn(systemd::notify(watched.clone(), stop.clone()));
    let status = (!args.quiet).then(|| StatusLine::start(watched)).flatten();
    let recorded = recorder::record_observed(config, stop.clone(), progress.clone()).await;
    notifier.abort();
    drop(status);
    let reason = match &recorded {
        Err(_) => "failed (below)",
        Ok(_) if *stop.borrow() => "stop signal",
        Ok(_) if deadline.is_some() => "--duration reached",
        Ok(_) => "the camera ended the stream",
    };
    match &recorded {
        Ok(Some(outcome)) => recorder::log_outcome(outcome),
        Ok(None) => tracing::info!("stopped before anything was recorded; nothing written"),
        Err(_) => {}
    }
    stopped(&progress.snapshot(), reason);
    recorded.map(|_| ())
}

/// One line at every stop, whatever came before it.
pub(crate) fn stopped(now: &Snapshot, reason: &str) {
    let file = now
        .file
        .as_ref()
        .map_or_else(|| "nothing written".to_owned(), |f| f.display().to_string());
    tracing::info!(
        "stopped after {:.1} s ({reason}): {file}, {} frames, {:.1} MiB, {} packets lost, {} \
         reconnects",
        now.elapsed.as_secs_f64(),
        now.frames,
        now.bytes as f64 / 1_048_576.0,
        now.lost_packets,
        now.reconnects
    );
}

/// The recorder's config from the flags; every error is bad usage.
pub(crate) fn config(args: &Args) -> Result<RecorderConfig> {
    let login = Login {
        username: args.username.clone(),
        password: args.password.clone(),
        password_file: args.password_file.clone(),
    };
    let url = args
        .url
        .first()
        .ok_or_else(|| Error::usage("--url is required"))?;
    let mut config = RecorderConfig::new(Source::resolve(url, &login)?);
    config.out = args.out.clone();
    config.segment_duration = args.segment_duration;
    config.on_segment_complete = args.on_segment_complete.clone();
    config.keep_for = args.keep_for;
    config.keep_size = args.keep_size;
    config.start = match args.start {
        Some(t) => Some(start_time_today(t).map_err(Error::usage)?),
        None => None,
    };
    config.duration = args.duration;
    config.stall_timeout = args.stall_timeout;
    config.reconnect = !args.no_reconnect;
    config.reconnect_max_delay = args.reconnect_max_delay;
    config.give_up_after = args.give_up_after;
    config.connect_timeout = args.connect_timeout;
    config.fragment_duration = args.fragment_duration;
    config.transport = args.transport;
    config.video = stream_choice(args.no_video, args.video_stream);
    config.audio = stream_choice(args.no_audio, args.audio_stream);
    config.allow_loss = args.allow_loss;
    config.timing = !args.no_timing_info;
    config.teardown = args.teardown;
    config.initial_timestamp = args.initial_timestamp;
    config.unknown_rtcp_ssrc = args.unknown_rtcp_ssrc;
    Ok(config)
}

fn stream_choice(skip: bool, index: Option<usize>) -> StreamChoice {
    match (skip, index) {
        (true, _) => StreamChoice::Skip,
        (false, Some(n)) => StreamChoice::Index(n),
        (false, None) => StreamChoice::FirstStorable,
    }
}

/// The next occurrence of `t` today; an error if it has passed.
pub(crate) fn start_time_today(t: jiff::civil::Time) -> anyhow::Result<jiff::Zoned> {
    let now = jiff::Zoned::now();
    let start = now
        .date()
        .to_datetime(t)
        .to_zoned(now.time_zone().clone())
        .context("cannot place --start in the local time zone")?;
    if start < now {
        anyhow::bail!(
            "--start {t} has already passed today (it is now {})",
            now.time().round(jiff::Unit::Second).unwrap_or(now.time())
        );
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::args;

    #[test]
    fn flag_defaults_are_the_librarys() -> anyhow::Result<()> {
        let from_flags = config(&args(&["--url", "rtsp://cam/s"])?)?;
        let from_code = RecorderConfig::new(Source::resolve("rtsp://cam/s", &Login::default())?);
        assert_eq!(format!("{from_flags:?}"), format!("{from_code:?}"));
        Ok(())
    }

    #[test]
    fn flags_become_the_config() -> anyhow::Result<()> {
        let c = config(&args(&[
            "--url",
            "rtsp://u:p@cam/s",
            "--username",
            "v",
            "--password",
            "q",
            "--no-video",
            "--audio-stream",
            "2",
            "--transport",
            "udp",
            "--no-timing-info",
            "o.mp4",
        ])?)?;
        let credentials = c.source.credentials.context("credentials")?;
        assert_eq!(
            (credentials.username.as_str(), credentials.password.as_str()),
            ("v", "q")
        );
        assert_eq!(
            (c.video, c.audio),
            (StreamChoice::Skip, StreamChoice::Index(2))
        );
        assert_eq!(c.transport, retina_record::config::Transport::Udp);
        assert!(!c.timing);
        assert_eq!(c.out, Some("o.mp4".into()));
        Ok(())
    }

    #[test]
    fn bad_urls_are_usage_errors_without_the_password() -> anyhow::Result<()> {
        let Err(e) = config(&args(&["--url", "http://user:hunter2@cam/s"])?) else {
            anyhow::bail!("accepted");
        };
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        Ok(())
    }
}
