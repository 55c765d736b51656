//! Every failure a user can hit without a camera misbehaving on purpose: one line on stderr
//! naming what and where (with the next step where there is one), and its exit status.
//! docs/errors.md's table of error lines is this table; failures that need a camera to refuse
//! or misbehave are tested where that camera is (that page names those tests).

use crate::support::rig::{only_error, recorder_command};

/// Runs the recorder with `args` in a scratch directory (holding `taken.mp4`), and asserts
/// exit status `code` and one error line matching `line`, where `*` stands for any text.
async fn fails(args: &[&str], code: i32, line: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("taken.mp4"), b"an earlier recording").expect("write");
    let out = crate::support::lines::output(recorder_command(args).current_dir(dir.path())).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    let got = only_error(&stderr);
    assert!(matches(got, line), "{args:?}:\n  got  {got}\n  want {line}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

/// Whether `text` is `pattern` with each `*` standing for any text.
fn matches(text: &str, pattern: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

cases!(fails {
    error_bad_duration: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--duration",
            "ten",
            "o.mp4"
        ],
        2,
        "error: invalid value 'ten' for '--duration <DURATION>': `ten` is not a duration: use \
         seconds (`90`) or units (`90s`, `10m`, `1h30m`, `7d`) (see --help)"
    ),
    error_not_rtsp: (
        &["--url", "http://127.0.0.1/x", "o.mp4"],
        2,
        "error: --url must be an rtsp:// or rtsps:// URL, not http://"
    ),
    error_bad_transport: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--transport",
            "sctp",
            "o.mp4"
        ],
        2,
        "error: invalid value 'sctp' for '--transport <TRANSPORT>': expected `auto`, `tcp` or \
         `udp` (see --help)"
    ),
    error_password_without_user: (
        &["--url", "rtsp://127.0.0.1:9/x", "--password", "pw", "o.mp4"],
        2,
        "error: a password was given without a username: give --username (or RTSP_USERNAME), \
         or put it in the URL"
    ),
    error_missing_password_file: (
        &[
            "--url",
            "rtsp://u@127.0.0.1:9/x",
            "--password-file",
            "/nonexistent/pass",
            "o.mp4"
        ],
        2,
        "error: cannot read --password-file /nonexistent/pass: No such file or directory (os \
         error 2)"
    ),
    error_start_passed: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--start",
            "00:00:00",
            "o.mp4"
        ],
        2,
        "error: --start 00:00:00 has already passed today (it is now *)"
    ),
    error_segments_need_a_template: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--segment-duration",
            "10m",
            "o.mp4"
        ],
        2,
        "error: --segment-duration needs OUT to be a strftime template, so that each file gets \
         its own name: o.mp4 has no `%` (e.g. 'o-%Y%m%d_%H%M%S.mp4')"
    ),
    error_bad_fragment_duration: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--fragment-duration",
            "0",
            "o.mp4"
        ],
        2,
        "error: invalid value '0' for '--fragment-duration <DURATION>': must be between 100ms \
         and 60s (see --help)"
    ),
    error_bad_size: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--keep-size",
            "12Q",
            "r-%H.mp4"
        ],
        2,
        "error: invalid value '12Q' for '--keep-size <SIZE>': `12Q` is not a size: use bytes or \
         units (`500M`, `200G`, `1.5T`) (see --help)"
    ),
    error_conflicting_flags: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--video-stream",
            "0",
            "--no-video",
            "o.mp4"
        ],
        2,
        "error: the argument '--video-stream <N>' cannot be used with '--no-video' (see --help)"
    ),
    error_pipe_with_segments: (
        &[
            "--url",
            "rtsp://127.0.0.1:9/x",
            "--segment-duration",
            "1m",
            "-"
        ],
        2,
        "error: --segment-duration is for files: OUT `-` writes one stream to stdout"
    ),
    error_unwritable_directory: (
        &["--url", "rtsp://127.0.0.1:9/x", "/proc/nope/o.mp4"],
        1,
        "error: cannot write recordings to /proc/nope: No such file or directory (os error 2)"
    ),
    error_output_exists: (
        &["--url", "rtsp://127.0.0.1:9/x", "taken.mp4"],
        1,
        "error: taken.mp4 already exists; not overwriting an earlier recording"
    ),
    error_unreachable_without_reconnect: (
        &["--url", "rtsp://127.0.0.1:1/x", "--no-reconnect", "o.mp4"],
        1,
        "error: camera 127.0.0.1:1: cannot connect: Connection refused (os error 111)"
    ),
    error_give_up_after: (
        &[
            "--url",
            "rtsp://127.0.0.1:1/x",
            "--give-up-after",
            "1s",
            "o.mp4"
        ],
        1,
        "error: no working connection to camera 127.0.0.1:1 for 1 s (--give-up-after); the last \
         attempt: camera 127.0.0.1:1: cannot connect: Connection refused (os error 111)"
    ),
    error_probe_unreachable: (
        &["probe", "rtsp://127.0.0.1:1/x"],
        1,
        "error: camera 127.0.0.1:1: cannot connect: Connection refused (os error 111)"
    ),
    error_timing_not_mp4: (
        &["timing", "/etc/hostname"],
        1,
        "error: cannot read /etc/hostname: no moov box: not an MP4 recording, or one killed \
         before its first fragment"
    ),
    error_timing_missing: (
        &["timing", "missing.mp4"],
        1,
        "error: missing.mp4: no such file or directory (give files, a directory, a template with % fields, or NAME=GLOB)"
    ),
    error_timing_no_timing_data: (
        &["timing", "taken.mp4"],
        1,
        "error: cannot read taken.mp4: *"
    ),
    error_align_one_file: (
        &["timing", "--align", "taken.mp4"],
        2,
        "error: --align needs two or more cameras: give one INPUT per camera, or a site file"
    ),
    error_unknown_shell: (
        &["completions", "tcsh"],
        2,
        "error: invalid value 'tcsh' for '<SHELL>'* (see --help)"
    ),
});

#[test]
fn the_matcher_matches_only_what_it_should() {
    assert!(matches("error: a b c", "error: a*c"));
    assert!(matches("error: abc", "error: abc"));
    assert!(!matches("error: abcd", "error: abc"));
    assert!(!matches("error: xbc", "error: a*"));
    assert!(matches("error: now 04:01:39)", "error: now *)"));
}

/// `--duration` is wall-clock time also while every attempt to connect fails: the run ends at
/// the deadline (a stop, not the end of whatever back-off wait it falls in), and a camera that
/// recorded nothing in all of it has failed, with its last error. The bound is generous; a
/// run that waited out its back-off (up to 10 s) or a connect timeout would exceed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_is_wall_clock_while_connecting_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let out = crate::support::lines::output(
        recorder_command(&["--url", "rtsp://127.0.0.1:1/x", "--duration", "5", "o.mp4"])
            .current_dir(dir.path()),
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!((5.0..7.5).contains(&took), "took {took:.1} s: {stderr}");
    assert!(stderr.contains("--duration reached"), "{stderr}");
    assert_eq!(
        only_error(&stderr),
        "error: camera 127.0.0.1:1: cannot connect: Connection refused (os error 111)"
    );
}
