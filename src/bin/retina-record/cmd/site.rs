//! Several cameras in one process (`--config site.toml`, several `--url`s): each camera its own
//! supervisor, as a task on the one runtime, so that a camera failing, reconnecting or being
//! refused never stops or slows another; all start at the same moment and stop on the same
//! signal or deadline; systemd, the status line and the metrics endpoint watch all of them.

use std::sync::Arc;
use std::time::Duration;

use retina_record::config::RecorderConfig;
use retina_record::error::{Error, Result};
use retina_record::output;
use retina_record::recorder::{self, Outcome, Progress};
use tokio::sync::watch;
use tracing::Instrument as _;

use super::record;
use crate::cli::Args;
use crate::cli::site::Camera;
use crate::metrics;
use crate::status::StatusLine;
use crate::systemd;
use crate::watched::Watched;

/// One camera's recording.
struct Running {
    name: String,
    progress: Arc<Progress>,
    task: tokio::task::JoinHandle<Result<Option<Outcome>>>,
}

pub(crate) async fn run(
    args: &Args,
    cameras: Vec<Camera>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    // Every camera's config first: one bad camera refuses the site before anything connects.
    let start = match args.start {
        Some(t) => Some(record::start_time_today(t).map_err(Error::usage)?),
        None => None,
    };
    let mut configs = Vec::with_capacity(cameras.len());
    for camera in &cameras {
        let mut config = record::config(&camera.args).map_err(|e| {
            Error::usage(format!("{}: camera `{}`: {e}", camera.origin, camera.name))
        })?;
        config.name = Some(camera.name.clone());
        config.start = start.clone();
        config.duration = None; // the site's own deadline stops every camera at once
        configs.push(config);
    }
    let progress: Vec<Arc<Progress>> = cameras.iter().map(|_| Arc::default()).collect();
    let endpoint = match args.metrics {
        Some(addr) => {
            let watched = cameras
                .iter()
                .zip(&progress)
                .map(|(c, p)| (c.name.clone(), p.clone()))
                .collect();
            let outputs = configs.iter().map(output::recordings_dir).collect();
            Some(metrics::serve(addr, watched, outputs).await?)
        }
        None => None,
    };
    tracing::info!("recording {} cameras", cameras.len());

    let (site_stop, stopped) = watch::channel(false);
    let deadline = args.duration.map(|d| {
        let wait = start.as_ref().map_or(Duration::ZERO, |s| {
            Duration::try_from(s.timestamp().duration_since(jiff::Timestamp::now()))
                .unwrap_or_default()
        });
        tokio::time::Instant::now() + wait + d
    });
    let relay = tokio::spawn(relay_stop(stop.clone(), deadline, site_stop));
    let watched = Watched::all(progress.clone());
    let notifier = tokio::spawn(systemd::notify(watched.clone(), stop.clone()));
    let status = (!args.quiet).then(|| StatusLine::start(watched)).flatten();

    let running: Vec<Running> = cameras
        .iter()
        .zip(configs)
        .zip(progress)
        .map(|((camera, config), progress)| Running {
            name: camera.name.clone(),
            task: tokio::spawn(one_camera(config, stopped.clone(), progress.clone())),
            progress,
        })
        .collect();
    let mut failed = Vec::new();
    let mut reasons = Vec::new();
    for r in running {
        let recorded = r.task.await.unwrap_or_else(|e| {
            Err(Error::failure(anyhow::anyhow!(
                "the recording task ended abnormally: {e}"
            )))
        });
        reasons.push((r.name, r.progress, recorded));
    }
    let by_deadline = *stopped.borrow() && !*stop.borrow();
    relay.abort();
    notifier.abort();
    drop(status);
    if let Some(endpoint) = endpoint {
        endpoint.abort();
    }
    for (name, progress, recorded) in reasons {
        let span = tracing::info_span!("camera", name = %name);
        let _entered = span.enter();
        let reason = match &recorded {
            Err(_) => "failed",
            Ok(_) if *stop.borrow() => "stop signal",
            Ok(_) if by_deadline => "--duration reached",
            Ok(_) => "the camera ended the stream",
        };
        if let Ok(Some(outcome)) = &recorded {
            recorder::log_outcome(outcome);
        }
        record::stopped(&progress.snapshot(), reason);
        if recorded.is_err() {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::failure(anyhow::anyhow!(
            "{} of {} cameras failed for good: {} (each one's error is above)",
            failed.len(),
            cameras.len(),
            failed.join(", ")
        )))
    }
}

/// One camera, logging as itself; its failure is logged when it happens, while the others go
/// on.
async fn one_camera(
    config: RecorderConfig,
    stop: watch::Receiver<bool>,
    progress: Arc<Progress>,
) -> Result<Option<Outcome>> {
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

/// Stops every camera on the stop signal or at the site's deadline.
async fn relay_stop(
    mut stop: watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
    site_stop: watch::Sender<bool>,
) {
    let until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        Ok(_) = stop.wait_for(|&s| s) => {}
        () = until => tracing::info!("--duration reached"),
    }
    let _ = site_stop.send(true);
}
