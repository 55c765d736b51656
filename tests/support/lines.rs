//! Every line the binary prints to stderr is a sentence for a person: one line, under 200
//! characters (after the log's timestamp and level), without Rust `Debug` output and without
//! retina's connection context. Every test that runs the binary passes its stderr through
//! [`assert_sentences`]: [`Finished`](super::rig::Finished) does, and [`output`] for the runs
//! that take the whole output.

/// The longest message a line may carry.
const MAX_CHARS: usize = 200;

/// What gives away text that was not written for a person.
const NOT_FOR_PEOPLE: &[&str] = &["Some(", "Ok(", "Err(", "(me)->", "conn: ", "msg: "];

/// The message of a log line: without `2026-12-06T22:00:00.123456Z  INFO ` (or the journal's
/// `<6>` priority).
fn message(line: &str) -> &str {
    let line = line.trim_start_matches(|c: char| c == '<' || c == '>' || c.is_ascii_digit());
    let mut words = line.splitn(2, ' ');
    let first = words.next().unwrap_or_default();
    let stamped = first.len() > 20 && first.contains('T') && first.ends_with('Z');
    if !stamped {
        return line;
    }
    let rest = words.next().unwrap_or_default().trim_start();
    ["ERROR ", "WARN ", "INFO ", "DEBUG ", "TRACE "]
        .iter()
        .find_map(|l| rest.strip_prefix(l))
        .unwrap_or(rest)
}

/// The first `Debug` shape in `text`: a `Some(`-like tuple, or `Name { field: …`.
fn debug_shape(text: &str) -> Option<&'static str> {
    if let Some(p) = NOT_FOR_PEOPLE.iter().find(|p| text.contains(*p)) {
        return Some(p);
    }
    let strukt = text.match_indices(" { ").any(|(i, _)| {
        let named = text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let field = text[i + 3..].split_once(':').is_some_and(|(f, _)| {
            !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        named && field
    });
    strukt.then_some("Name { field: … }")
}

/// Asserts that every line of `stderr` is a sentence for a person; `what` names the run.
#[track_caller]
pub fn assert_sentences(stderr: &str, what: &str) {
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let text = message(line);
        let chars = text.chars().count();
        assert!(
            chars < MAX_CHARS,
            "{what}: a line of {chars} characters (the limit is {MAX_CHARS}): {line}"
        );
        if let Some(shape) = debug_shape(text) {
            panic!("{what}: a line with Rust Debug output or retina's context ({shape}): {line}");
        }
    }
}

/// Runs `cmd` (the binary) to its end, asserting its stderr is sentences.
pub async fn output(cmd: &mut tokio::process::Command) -> std::process::Output {
    let out = cmd.output().await.expect("run retina-record");
    assert_sentences(&String::from_utf8_lossy(&out.stderr), "retina-record");
    out
}

#[test]
fn the_check_catches_what_it_is_for() {
    let bad = [
        "2026-12-06T21:57:49.123456Z  WARN camera c:554: (Some(Url { scheme: \"rtsp\" }))",
        "error: camera c:554: boom; conn: 127.0.0.1:1(me)->127.0.0.1:2@2026",
        "error: bad Seq { init: PlayResponseHeader }",
    ];
    for line in bad {
        let caught = std::panic::catch_unwind(|| assert_sentences(line, "test"));
        assert!(caught.is_err(), "not caught: {line}");
    }
    let long = format!("2026-12-06T21:57:49.123456Z  INFO {}", "x".repeat(200));
    assert!(std::panic::catch_unwind(|| assert_sentences(&long, "test")).is_err());
    let fine = "2026-12-06T21:57:49.123456Z  INFO camera c:554: OUT needs `{camera}` in it";
    assert_sentences(fine, "test");
    assert_sentences(
        &format!("2026-12-06T21:57:49.123456Z  INFO {}", "x".repeat(150)),
        "t",
    );
}
