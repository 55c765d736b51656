//! The status line: on a terminal, one line on stderr that updates in place (indicatif) with
//! the file, frames, frame rate, bitrate, size, reconnects and how long ago the last fragment
//! became durable. Log lines print above it (the logger suspends it for each). Not drawn when
//! stderr is not a terminal, or with `--quiet`.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use retina_record::recorder::Snapshot;

use crate::watched::Watched;

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_secs(1);

/// A drawn status line; cleared when dropped.
pub(crate) struct StatusLine {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl StatusLine {
    /// Starts drawing the counters, if stderr is a terminal.
    pub(crate) fn start(progress: Watched) -> Option<StatusLine> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            // wide_msg: cut to the terminal's width, so that the line never wraps.
            ProgressStyle::with_template("{spinner} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        crate::logging::print_above(bar.clone());
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            let mut before: Option<Snapshot> = None;
            loop {
                ticks.tick().await;
                let now = progress.snapshot();
                drawn.set_message(line(&now, before.as_ref()));
                drawn.tick();
                before = Some(now);
            }
        });
        Some(StatusLine { bar, task })
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
        crate::logging::print_plainly();
    }
}

/// The line: elapsed time, then the counters, with rates over the last interval.
fn line(now: &Snapshot, before: Option<&Snapshot>) -> String {
    let secs = now.elapsed.as_secs();
    let elapsed = format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let rates = before.map_or_else(String::new, |b| {
        let dt = (now.elapsed - b.elapsed).as_secs_f64().max(1e-3);
        format!(
            ", {:.1} fps, {:.0} kbit/s",
            (now.frames - b.frames) as f64 / dt,
            (now.bytes - b.bytes) as f64 * 8.0 / 1000.0 / dt
        )
    });
    format!("{elapsed} {}{rates}", counters(now))
}

/// The counters on one line: the status line's, and systemd's `STATUS=`.
pub(crate) fn counters(s: &Snapshot) -> String {
    let file = match (&s.file, s.frames) {
        (Some(f), _) => f.display().to_string(),
        (None, 0) => "connecting".to_owned(),
        (None, _) => "first fragment pending".to_owned(),
    };
    let durable = s.since_durable.map_or_else(String::new, |d| {
        format!(", durable {:.1} s ago", d.as_secs_f64())
    });
    let lost = match s.lost_packets {
        0 => String::new(),
        n => format!(", {n} packets lost"),
    };
    format!(
        "{file}: {} frames, {:.1} MiB, {} reconnects{lost}{durable}",
        s.frames,
        s.bytes as f64 / 1_048_576.0,
        s.reconnects
    )
}
