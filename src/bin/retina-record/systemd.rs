//! systemd's service notifications (sd_notify(3), through the sd-notify crate: no libsystemd),
//! when run by a `Type=notify` unit (`NOTIFY_SOCKET` set): `READY=1` once the first fragment is
//! durable on disk, so that `systemctl start` returning means "recording"; `STATUS=` with the
//! counters; `WATCHDOG=1` at half of `WATCHDOG_USEC` while fragments keep becoming durable —
//! a camera that stalls or a writer that hangs stops it, and systemd restarts the recorder;
//! `STOPPING=1` on a stop signal. For several cameras, the counters are summed: ready at the
//! first durable fragment, alive while any camera's fragments keep coming (each camera's own
//! health is in the metrics).

use std::time::Duration;

use retina_record::stop::Stop;
use sd_notify::NotifyState;

use crate::watched::Watched;

/// How often `STATUS=` is refreshed without a watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Notifies systemd about `progress` until `stop`; returns at once outside systemd.
pub(crate) async fn notify(progress: Watched, mut stop: Stop) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut ticks = tokio::time::interval(every);
    let mut ready = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || stop.borrow().is_some() {
                    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
                    return;
                }
            }
        }
        let now = progress.snapshot();
        let status = crate::status::counters(&now);
        let mut states = vec![NotifyState::Status(&status)];
        if !ready && now.fragments > 0 {
            ready = true;
            states.push(NotifyState::Ready);
        }
        // Before the first fragment the recorder is starting (TimeoutStartSec= bounds that);
        // after it, only fragments that keep coming show it is alive.
        let alive = match (ready, now.since_durable) {
            (false, _) => true,
            (true, Some(ago)) => watchdog.is_some_and(|w| ago < w),
            (true, None) => false,
        };
        if watchdog.is_some() && alive {
            states.push(NotifyState::Watchdog);
        }
        send(&states);
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("cannot notify systemd: {e}");
    }
}
