//! Stop requests: SIGINT (Ctrl-C), SIGTERM (`systemctl stop`) and SIGHUP (terminal closed) all
//! ask for a clean stop, which finishes the file. A second signal exits at once (status 130),
//! keeping the fragments already written in `OUT.partial`.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Exit status after a second signal, as shells report death by SIGINT.
pub const EXIT_IMMEDIATE: i32 = 130;

/// Installs the signal handlers; the receiver turns `true` on the first signal.
pub fn listen() -> std::io::Result<watch::Receiver<bool>> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let (tx, rx) = watch::channel(false);
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
                let _ = tx.send(true);
            } else {
                tracing::warn!("{name} again: quitting now; fragments already written are kept");
                std::process::exit(EXIT_IMMEDIATE);
            }
        }
    });
    Ok(rx)
}
