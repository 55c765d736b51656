//! Stop requests: SIGINT (Ctrl-C), SIGTERM (`systemctl stop`) and SIGHUP (terminal closed) all
//! ask for a clean stop, which finishes the file. A second signal exits at once (status 130),
//! keeping the fragments already written in `OUT.partial`. A recording's duration is a stop too,
//! with its own reason ([`with_deadline`], the one place a duration becomes a stop).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Exit status after a second signal, as shells report death by SIGINT.
pub const EXIT_IMMEDIATE: i32 = 130;

/// Why a recording is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A signal (or whatever else the program that records takes for one).
    Signal,
    /// The recording's duration has passed.
    Deadline,
}

/// A stop request: `None` until one comes.
pub type Stop = watch::Receiver<Option<StopReason>>;

/// A stop that never comes, and the sender that can still make it come.
pub fn channel() -> (watch::Sender<Option<StopReason>>, Stop) {
    watch::channel(None)
}

/// Installs the signal handlers; the receiver turns `Some(Signal)` on the first signal.
pub fn listen() -> std::io::Result<Stop> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let (tx, rx) = channel();
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = sigint.recv() => "SIGINT",
                _ = sigterm.recv() => "SIGTERM",
                _ = sighup.recv() => "SIGHUP",
            };
            seen += 1;
            if seen == 1 {
                tracing::info!("{name}: stopping; finishing the recording (again to quit at once)");
                let _ = tx.send(Some(StopReason::Signal));
            } else {
                tracing::warn!("{name} again: quitting now; fragments already written are kept");
                std::process::exit(EXIT_IMMEDIATE);
            }
        }
    });
    Ok(rx)
}

/// `stop`, or a [`StopReason::Deadline`] stop at `deadline` if that comes first (logged as
/// "`what` reached"). Every recording's duration becomes a stop here: a site's cameras share
/// one, and a single recording's is the same.
pub fn with_deadline(
    mut stop: Stop,
    deadline: Option<tokio::time::Instant>,
    what: &'static str,
) -> Stop {
    let Some(deadline) = deadline else {
        return stop;
    };
    let (tx, rx) = watch::channel(*stop.borrow());
    tokio::spawn(async move {
        let reason = tokio::select! {
            Ok(reason) = stop.wait_for(Option::is_some) => *reason,
            () = tokio::time::sleep_until(deadline) => {
                tracing::info!("{what} reached");
                Some(StopReason::Deadline)
            }
            // Nobody listens any more: the recording ended first.
            () = tx.closed() => return,
        };
        let _ = tx.send(reason);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_a_stop_with_its_reason() {
        let (_tx, stop) = channel();
        let at = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut stop = with_deadline(stop, Some(at), "the test's duration");
        let reason = stop.wait_for(Option::is_some).await.map(|r| *r);
        assert_eq!(reason.ok(), Some(Some(StopReason::Deadline)));
        assert!(tokio::time::Instant::now() >= at);
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_before_the_deadline_wins() {
        let (tx, stop) = channel();
        let at = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut stop = with_deadline(stop, Some(at), "the test's duration");
        let _ = tx.send(Some(StopReason::Signal));
        let reason = stop.wait_for(Option::is_some).await.map(|r| *r);
        assert_eq!(reason.ok(), Some(Some(StopReason::Signal)));
        assert!(tokio::time::Instant::now() < at);
    }
}
