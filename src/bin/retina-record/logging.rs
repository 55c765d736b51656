//! How the binary logs: tracing events to stderr, one line each, a sentence for a person.
//! Libraries below us (retina) sometimes log multi-line blocks (hexdumps, debug structs), and
//! some log once per packet; at the default levels each of their lines is said as ours are
//! (`rtsp/retina_messages.rs`: one sentence naming the camera, or nothing for bookkeeping), and
//! a repeated one is printed once a minute with a count (retina-record throttles its own).
//! Every event is cut to its first line and [`MAX_MESSAGE_CHARS`] characters.
//! `RUST_LOG=debug` shows everything, as it came, with the module it came from.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use retina_record::rtsp::retina_messages::{camera_in_scope, log_words};

use crate::cli::wording::FLAGS;

/// The longest message (and field list) an event prints unless debugging.
const MAX_MESSAGE_CHARS: usize = 200;

/// Installs the subscriber: `RUST_LOG` if set, else `info` (`warn` when `quiet`). When stderr is
/// systemd's journal (`JOURNAL_STREAM` names it), lines carry no timestamp and no colour (the
/// journal has its own and shows none) but a `<N>` priority prefix (sd-daemon(3)), so that
/// `journalctl -p warning` finds the warnings.
pub(crate) fn init(quiet: bool) {
    // Quiet keeps the one line each stop prints.
    let level = if quiet {
        "warn,retina_record::cmd::record=info"
    } else {
        "info"
    };
    if JOURNAL.get_or_init(stderr_is_journal) == &true {
        install(
            Format::default().without_time().with_ansi(false),
            true,
            level,
        );
    } else {
        install(Format::default(), false, level);
    }
}

fn install<T: FormatTime + Send + Sync + 'static>(
    format: Format<Full, T>,
    journal: bool,
    level: &str,
) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let full = filter
        .max_level_hint()
        .is_some_and(|l| l >= tracing::level_filters::LevelFilter::DEBUG);
    // A line is a sentence: the module it came from is for debugging.
    let format = format.with_target(full);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| AboveStatus)
        // Its report of a failed write is an eprintln!, which panics when stderr's reader has
        // gone (`2>&1 | head`): a closed log must not end the recording.
        .log_internal_errors(false)
        .with_ansi(!journal && std::io::stderr().is_terminal())
        .fmt_fields(OneLine { full })
        .event_format(Throttled {
            inner: format,
            full,
            journal,
            seen: Mutex::new(HashMap::new()),
        })
        .init();
}

/// The status line being drawn, which log lines print above.
static STATUS_LINE: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Log lines print above `bar` from now on.
pub(crate) fn print_above(bar: indicatif::ProgressBar) {
    *STATUS_LINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar);
}

/// No status line any more.
pub(crate) fn print_plainly() {
    *STATUS_LINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// stderr, with the status line (if any) lifted for each log line: tracing-subscriber writes
/// an event in one call.
struct AboveStatus;

impl std::io::Write for AboveStatus {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = STATUS_LINE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Whether stderr is the journal, once `init` has looked.
static JOURNAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// What starts the final `error:` line: its priority, for the journal.
pub(crate) fn error_prefix() -> &'static str {
    if JOURNAL.get() == Some(&true) {
        "<3>"
    } else {
        ""
    }
}

/// Whether stderr is the stream `JOURNAL_STREAM` (`device:inode`) says systemd connected to
/// the journal (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(ours) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok())
    else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", ours.dev(), ours.ino())
}

/// sd-daemon(3)'s priority for a level.
fn priority(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// How often a library's repeated message is printed.
const REPEAT_INTERVAL: Duration = Duration::from_secs(60);

/// Prints a library's event the first time, then at most once per [`REPEAT_INTERVAL`] with a
/// count of those held back.
struct Throttled<F> {
    inner: F,
    full: bool,
    /// Prefix each line with its sd-daemon(3) priority.
    journal: bool,
    /// For each library message (as reworded): when it was last printed, and how many were
    /// held back.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl<S, N, F> FormatEvent<S, N> for Throttled<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Events from the `log` crate (retina's) carry their real target as a field.
        let target = fields.target.as_deref().unwrap_or(meta.target());
        let ours = target.starts_with(env!("CARGO_CRATE_NAME"));
        let journal = match self.journal {
            true => format!("<{}>", priority(meta.level())),
            false => String::new(),
        };
        if self.full || ours {
            writer.write_str(&journal)?;
            return self.inner.format_event(ctx, writer, event);
        }
        // A library's line, said as ours are (`rtsp/retina_messages.rs`), naming the camera.
        let Some(words) = log_words(&fields.text, FLAGS) else {
            return Ok(()); // retina's bookkeeping: debug only
        };
        let Some(held_back) = self.held_back(&words) else {
            return Ok(()); // nothing written: no line
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let shown = shorten(&fields.text, MAX_MESSAGE_CHARS);
        let prefix = line
            .trim_end()
            .strip_suffix(shown.as_str())
            .unwrap_or_default();
        let camera = camera_in_scope().map_or(String::new(), |c| format!("camera {c}: "));
        let more = match held_back {
            0 => String::new(),
            n => format!(" ({n} more like it since the last)"),
        };
        writeln!(writer, "{journal}{prefix}{camera}{words}{more}")
    }
}

impl<F> Throttled<F> {
    /// For a library's event: `None` to hold it back, else how many like it were held back
    /// since it was last printed.
    fn held_back(&self, words: &str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get_mut(words) {
            Some((last, held)) if now.duration_since(*last) < REPEAT_INTERVAL => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                seen.insert(words.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

/// Formats an event's (or span's) fields on one line.
struct OneLine {
    /// Print everything, as it came (debugging).
    full: bool,
}

impl<'w> FormatFields<'w> for OneLine {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut text = Fields::default();
        fields.record(&mut text);
        if self.full {
            return writer.write_str(&text.text);
        }
        writer.write_str(&shorten(&text.text, MAX_MESSAGE_CHARS))
    }
}

/// `message` first, then `name=value` for each other field; the `log` crate's own fields
/// (`log.target`, `log.file`, …) apart.
#[derive(Default)]
struct Fields {
    text: String,
    /// `log.target`: the real target of an event from the `log` crate.
    target: Option<String>,
}

impl Fields {
    fn add(&mut self, name: &str, value: fmt::Arguments<'_>) {
        let sep = if self.text.is_empty() { "" } else { " " };
        let _ = match name {
            "message" => write!(self.text, "{sep}{value}"),
            "log.target" => {
                self.target = Some(value.to_string());
                Ok(())
            }
            name if name.starts_with("log.") => Ok(()),
            name => write!(self.text, "{sep}{name}={value}"),
        };
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.add(field.name(), format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field.name(), format_args!("{value}"));
    }
}

/// The first line of `text`, at most `max` characters, marked `…` where cut.
fn shorten(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or_default().trim_end();
    let cut_line = first.len() < text.trim_end().len();
    match first.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &first[..end]),
        None if cut_line => format!("{first} …"),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_one_short_line() {
        assert_eq!(shorten("one line", 200), "one line");
        assert_eq!(shorten("head\n  0000: 00 01 02\n", 200), "head …");
        assert_eq!(
            shorten(&"x".repeat(250), 200),
            format!("{}…", "x".repeat(200))
        );
        assert_eq!(shorten("µ".repeat(3).as_str(), 2), "µµ…");
    }
}
