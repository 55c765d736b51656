//! `retina-record --url …` and `--config site.toml`: each camera's flags to a
//! [`RecorderConfig`], every camera recorded as its own supervisor task on the one runtime (so
//! that one failing, reconnecting or being refused never stops or slows another), one stop for
//! all (a signal or `--duration`), systemd, the status line and the metrics watching them, and
//! what each wrote logged. One camera is a site of one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use retina_record::config::{RecorderConfig, StreamChoice, Wording};
use retina_record::error::{Error, Result};
use retina_record::output;
use retina_record::recorder::{self, Outcome, Progress, Snapshot};
use retina_record::stop::{self, Stop, StopReason};
use tracing::Instrument as _;

use crate::cli::Args;
use crate::cli::site::CameraFlags;
use crate::metrics;
use crate::status::StatusLine;
use crate::systemd;
use crate::watched::Watched;

/// One camera's recording.
struct Running {
    name: Option<String>,
    progress: Arc<Progress>,
    task: tokio::task::JoinHandle<Result<Option<Outcome>>>,
}

pub(crate) async fn run(args: &Args, cameras: Vec<CameraFlags>, signal: Stop) -> Result<()> {
    // Every camera's config first: one bad camera refuses the site before anything connects.
    let start = match args.start {
        Some(t) => Some(start_time_today(t).map_err(Error::usage)?),
        None => None,
    };
    let mut configs = Vec::with_capacity(cameras.len());
    for camera in &cameras {
        let mut config = config(&camera.args, camera.wording).map_err(|e| match &camera.name {
            Some(name) => Error::usage(format!("{}: camera `{name}`: {e}", camera.origin)),
            None => e,
        })?;
        config.name = camera.name.clone();
        config.start = start.clone();
        configs.push(config);
    }
    let progress: Vec<Arc<Progress>> = cameras.iter().map(|_| Arc::default()).collect();
    let endpoint = match args.metrics {
        Some(addr) => {
            let watched = cameras
                .iter()
                .zip(&progress)
                .map(|(c, p)| (c.name.clone().unwrap_or_default(), p.clone()))
                .collect();
            let outputs = configs.iter().map(output::recordings_dir).collect();
            Some(metrics::serve(addr, watched, outputs).await?)
        }
        None => None,
    };
    if cameras.len() > 1 {
        tracing::info!("recording {} cameras", cameras.len());
    }
    let deadline = args.duration.map(|d| {
        let wait = start.as_ref().map_or(Duration::ZERO, |s| {
            Duration::try_from(s.timestamp().duration_since(jiff::Timestamp::now()))
                .unwrap_or_default()
        });
        tokio::time::Instant::now() + wait + d
    });
    let stop = stop::with_deadline(signal.clone(), deadline, "--duration");
    let watched = Watched::all(progress.clone());
    let notifier = tokio::spawn(systemd::notify(watched.clone(), signal));
    let status = (!args.quiet).then(|| StatusLine::start(watched)).flatten();
    let several = cameras.len() > 1;
    let running: Vec<Running> = configs
        .into_iter()
        .zip(progress)
        .map(|(config, progress)| Running {
            name: config.name.clone(),
            task: tokio::spawn(one_camera(config, stop.clone(), progress.clone(), several)),
            progress,
        })
        .collect();
    let mut ended = Vec::with_capacity(running.len());
    for r in running {
        let recorded = r.task.await.unwrap_or_else(|e| {
            Err(Error::failure(anyhow::anyhow!(
                "the recording task ended abnormally: {e}"
            )))
        });
        ended.push((r.name, r.progress, recorded));
    }
    notifier.abort();
    drop(status);
    if let Some(endpoint) = endpoint {
        endpoint.abort();
    }
    let reason = *stop.borrow();
    report(ended, reason)
}

/// One camera, logging as itself when there are several; its failure is logged when it
/// happens, while the others go on.
async fn one_camera(
    config: RecorderConfig,
    stop: Stop,
    progress: Arc<Progress>,
    several: bool,
) -> Result<Option<Outcome>> {
    if !several {
        return recorder::record_observed(config, stop, progress).await;
    }
    let span = tracing::info_span!("camera", name = config.name.as_deref().unwrap_or("?"));
    async move {
        let recorded = recorder::record_observed(config, stop, progress).await;
        if let Err(e) = &recorded {
            tracing::error!("{e}; the other cameras go on");
        }
        recorded
    }
    .instrument(span)
    .await
}

type Ended = (Option<String>, Arc<Progress>, Result<Option<Outcome>>);

/// Logs what each camera wrote and why it stopped; the result is the one camera's, or says
/// which of several failed.
fn report(ended: Vec<Ended>, reason: Option<StopReason>) -> Result<()> {
    let total = ended.len();
    let mut failed = Vec::new();
    let mut only_error = None;
    for (name, progress, recorded) in ended {
        let span = name
            .as_ref()
            .map(|n| tracing::info_span!("camera", name = %n));
        let _entered = span.as_ref().map(|s| s.enter());
        let why = match (&recorded, reason) {
            (Err(_), _) if total > 1 => "failed (above)",
            (Err(_), _) => "failed (below)",
            (Ok(_), Some(StopReason::Signal)) => "stop signal",
            (Ok(_), Some(StopReason::Deadline)) => "--duration reached",
            (Ok(_), None) => "the camera ended the stream",
        };
        match &recorded {
            Ok(Some(outcome)) => recorder::log_outcome(outcome),
            Ok(None) if total == 1 => {
                tracing::info!("stopped before anything was recorded; nothing written");
            }
            _ => {}
        }
        stopped(&progress.snapshot(), why);
        if let Err(e) = recorded {
            failed.push(name.unwrap_or_default());
            only_error = Some(e);
        }
    }
    match (failed.len(), only_error) {
        (0, _) | (_, None) => Ok(()),
        (_, Some(e)) if total == 1 => Err(e),
        (n, Some(_)) => Err(Error::failure(anyhow::anyhow!(
            "{n} of {total} cameras failed for good: {} (each one's error is above)",
            failed.join(", ")
        ))),
    }
}

/// One line at every stop, whatever came before it.
fn stopped(now: &Snapshot, reason: &str) {
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

/// One camera's config from its flags, the settings that go together checked here, where the
/// flags become the config; every error is bad usage, naming the settings as `wording` does.
pub(crate) fn config(args: &Args, wording: Wording) -> Result<RecorderConfig> {
    let url = args
        .url
        .first()
        .ok_or_else(|| Error::usage("--url is required"))?;
    let mut config = super::connecting(url, &args.connection, wording)?;
    config.out = args.out.clone();
    config.segment_duration = args.segment_duration;
    config.on_segment_complete = args.on_segment_complete.clone();
    config.keep_for = args.keep_for;
    config.keep_size = args.keep_size;
    // Not config.duration: --duration is the run's, one deadline for every camera (`run`).
    config.stall_timeout = args.stall_timeout;
    config.reconnect = !args.no_reconnect;
    config.reconnect_max_delay = args.reconnect_max_delay;
    config.give_up_after = args.give_up_after;
    config.fragment_duration = args.fragment_duration;
    config.video = stream_choice(args.no_video, args.video_stream);
    config.audio = stream_choice(args.no_audio, args.audio_stream);
    config.stop_on_loss = args.stop_on_loss;
    config.timing = !args.no_timing_info;
    config.check()?;
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
fn start_time_today(t: jiff::civil::Time) -> anyhow::Result<jiff::Zoned> {
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
    use crate::cli::wording::{FLAGS, SITE_KEYS};
    use retina_record::source::{Login, Source};

    #[test]
    fn flag_defaults_are_the_librarys() -> anyhow::Result<()> {
        let from_flags = config(&args(&["--url", "rtsp://cam/s"])?, FLAGS)?;
        let source = Source::resolve("rtsp://cam/s", &Login::default(), Wording::default())?;
        let from_code = RecorderConfig::new(source);
        assert_eq!(format!("{from_flags:?}"), format!("{from_code:?}"));
        Ok(())
    }

    #[test]
    fn flags_become_the_config() -> anyhow::Result<()> {
        let c = config(
            &args(&[
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
            ])?,
            FLAGS,
        )?;
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
        let Err(e) = config(&args(&["--url", "http://user:hunter2@cam/s"])?, FLAGS) else {
            anyhow::bail!("accepted");
        };
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        Ok(())
    }

    /// A combination is refused where the flags become the config, in the words the user
    /// gave it in: a flag on the command line, a key in a site file.
    #[test]
    fn combinations_are_refused_in_the_users_words() -> anyhow::Result<()> {
        let given = args(&["--url", "rtsp://cam/s", "--keep-for", "1d", "o.mp4"])?;
        for (wording, says) in [
            (FLAGS, "--keep-for needs OUT to be a strftime template"),
            (SITE_KEYS, "keep-for needs output to be a strftime template"),
        ] {
            let Err(e) = config(&given, wording) else {
                anyhow::bail!("accepted");
            };
            assert!(e.to_string().starts_with(says), "{e}");
        }
        let piped = args(&[
            "--url",
            "rtsp://cam/s",
            "--on-segment-complete",
            "true",
            "-",
        ])?;
        let Err(e) = config(&piped, SITE_KEYS) else {
            anyhow::bail!("accepted");
        };
        assert_eq!(
            e.to_string(),
            "on-segment-complete is for files: output `-` writes one stream to stdout"
        );
        Ok(())
    }
}
