//! The documentation's examples, run, so that an example that stops working fails the tests.
//!
//! The convention (also in `tests/README.md`): every fenced block tagged `sh` in `README.md` and
//! `docs/*.md` is executed; blocks that cannot run on a test machine or inside a test
//! (systemctl, kubectl, `.ci/run` itself, installing into `/usr` or a home directory,
//! benchmarks) are tagged `sh,no-run`, and the text beside them says why; output samples are
//! `text`; other files are `toml`, `ini`, `python` or `json`. Any other tag, or none, fails.
//!
//! Each page runs top to bottom in a fresh temporary directory of its own, so that its blocks
//! build on each other (record, then `retina-record timing out.mp4`):
//! - a `toml` block whose first line is `# NAME.toml` is written to that file there;
//! - each command of an `sh` block (`\` continuations joined; blank and `#` lines skipped;
//!   `export` lines kept as a prelude for the block's later commands) runs with `bash -c` in
//!   a process group of its own, the built binary first on `PATH` as `retina-record`, and
//!   `cargo run --release --` read as `retina-record`;
//! - every `rtsp://…` URL, in commands and site files, becomes the URL of a built-in camera
//!   (`retina-record camera`) started for the page, so the docs can show real-looking URLs;
//! - a command still running after [`RUN_FOR`] gets SIGTERM (the recorder finishes its file on
//!   it) and must then exit 0; any other failure fails the test, naming the file, line and
//!   command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::rig::{recorder_command, spawn_announcing};

/// How long a command may run before it is sent SIGTERM: the one deliberate timer here.
const RUN_FOR: Duration = Duration::from_secs(5);

/// Every page, as a test of its own (`docs::PAGE`), with the number of commands it must run at
/// least; [`every_page_is_listed_and_enough_commands_run`] checks the list against the files.
macro_rules! pages {
    ($($name:ident: ($file:literal, $min:literal),)*) => {
        const PAGES: &[(&str, usize)] = &[$(($file, $min)),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_page($file, $min).await;
            }
        )*
    };
}

pages! {
    readme: ("README.md", 8),
    summary: ("docs/SUMMARY.md", 0),
    introduction: ("docs/introduction.md", 1),
    recording: ("docs/recording.md", 6),
    service: ("docs/service.md", 2),
    segments: ("docs/segments.md", 3),
    many_cameras: ("docs/many-cameras.md", 2),
    past_one_machine: ("docs/past-one-machine.md", 2),
    timing: ("docs/timing.md", 10),
    codecs: ("docs/codecs.md", 0),
    errors: ("docs/errors.md", 0),
    file_format: ("docs/file-format.md", 0),
    timing_sei: ("docs/timing-sei.md", 0),
    timing_output: ("docs/timing-output.md", 0),
    export: ("docs/export.md", 7),
    performance: ("docs/performance.md", 0),
    test_camera: ("docs/test-camera.md", 6),
}

/// The tags a fenced block may have.
const TAGS: &[&str] = &["sh", "sh,no-run", "text", "toml", "ini", "python", "json"];

/// What a page asks the runner to do, in order.
#[derive(Debug)]
enum Step {
    /// Write `contents` to the file `name` in the page's directory.
    File { name: String, contents: String },
    /// Run `command` (from the line `line`) after the `export` lines `prelude`.
    Run {
        line: usize,
        prelude: Vec<String>,
        command: String,
    },
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A fenced block: the line of its opening fence, its tag, its lines with their numbers.
struct Block {
    line: usize,
    tag: String,
    body: Vec<(usize, String)>,
}

/// The fenced blocks of a markdown text. Panics, naming the line, on a block without a known
/// tag or one never closed.
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(tag) = trimmed.strip_prefix("```") {
                    let tag = tag.trim();
                    assert!(
                        TAGS.contains(&tag),
                        "{file}:{n}: a fenced block tagged {tag:?}: tag it one of {TAGS:?} \
                         (`sh` runs in the tests; output samples are `text`)"
                    );
                    open = Some(Block {
                        line: n,
                        tag: tag.to_owned(),
                        body: Vec::new(),
                    });
                }
            }
            Some(block) => {
                if trimmed.trim_end() == "```" {
                    out.push(open.take().expect("open"));
                } else {
                    block.body.push((n, line.to_owned()));
                }
            }
        }
    }
    if let Some(block) = open {
        panic!("{file}:{}: a fenced block that is never closed", block.line);
    }
    out
}

/// The steps of a page: its `toml` files to write and its `sh` commands to run, in order.
fn steps(file: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for Block { line: n, tag, body } in blocks(file, &read(file)) {
        match tag.as_str() {
            "toml" => {
                let first = body.first().map(|(_, l)| l.trim()).unwrap_or_default();
                if let Some(name) = first.strip_prefix("# ").filter(|f| f.ends_with(".toml")) {
                    assert!(
                        !name.contains('/'),
                        "{file}:{n}: {name}: runnable examples use relative paths in the page's directory"
                    );
                    let contents: Vec<&str> = body.iter().map(|(_, l)| l.as_str()).collect();
                    steps.push(Step::File {
                        name: name.to_owned(),
                        contents: contents.join("\n") + "\n",
                    });
                }
            }
            "sh" => commands(&body, &mut steps),
            _ => {}
        }
    }
    steps
}

/// The commands of one `sh` block's `body`, appended to `steps`.
fn commands(body: &[(usize, String)], steps: &mut Vec<Step>) {
    let mut prelude = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for (n, line) in body {
        if current.is_none() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if t.starts_with("export ") {
                prelude.push(t.to_owned());
                continue;
            }
        }
        let (_, lines) = current.get_or_insert_with(|| (*n, Vec::new()));
        lines.push(line.trim().to_owned());
        if !line.trim_end().ends_with('\\') {
            let (line, lines) = current.take().expect("a command");
            steps.push(Step::Run {
                line,
                prelude: prelude.clone(),
                command: lines.join("\n"),
            });
        }
    }
    assert!(current.is_none(), "an sh block ends in a `\\` continuation");
}

/// `text` with `cargo run --release --` read as `retina-record` and every `rtsp://…` URL
/// replaced by `camera` (user-info and path with it).
fn rewrite(text: &str, camera: Option<&str>) -> String {
    let text = text.replace("cargo run --release --", "retina-record");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("rtsp://") {
        out.push_str(&rest[..i]);
        let url = &rest[i..];
        let end = url
            .find(|c: char| c.is_whitespace() || "\"'`()<>".contains(c))
            .unwrap_or(url.len());
        out.push_str(camera.expect("a camera for the page's rtsp:// URLs"));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// Runs every step of the page `file` in a fresh directory; at least `min` commands.
async fn run_page(file: &str, min: usize) {
    let steps = steps(file);
    let dir = tempfile::tempdir().expect("tempdir");
    let needs_camera = steps.iter().any(|s| match s {
        Step::File { contents, .. } => contents.contains("rtsp://"),
        Step::Run { command, .. } => command.contains("rtsp://"),
    });
    // The camera announces its URL on stdout: that line is the event to wait for.
    let camera = if needs_camera {
        let mut cmd = recorder_command(&["camera", "--listen", "127.0.0.1:0"]);
        cmd.stderr(Stdio::null());
        Some(spawn_announcing(cmd, "retina-record camera").await)
    } else {
        None
    };
    let url = camera.as_ref().map(|(_, url)| url.as_str());
    let bin = Path::new(env!("CARGO_BIN_EXE_retina-record"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("the binary's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for step in &steps {
        match step {
            Step::File { name, contents } => {
                std::fs::write(dir.path().join(name), rewrite(contents, url)).expect("write");
            }
            Step::Run {
                line,
                prelude,
                command,
            } => {
                run(
                    file,
                    *line,
                    prelude,
                    &rewrite(command, url),
                    dir.path(),
                    &path,
                )
                .await;
                ran += 1;
            }
        }
    }
    assert!(
        ran >= min,
        "{file}: ran {ran} commands, expected at least {min}: are its `sh` blocks still there?"
    );
}

/// Runs one command with `bash -c` in `dir`, in its own process group; SIGTERM after
/// [`RUN_FOR`]. It must exit 0.
async fn run(file: &str, line: usize, prelude: &[String], command: &str, dir: &Path, path: &str) {
    // With a trap, bash waits for the command to finish on SIGTERM and exits with its status.
    let script = format!("trap : TERM\n{}\n{command}\n", prelude.join("\n"));
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RTSP_USERNAME")
        .env_remove("RTSP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().expect("spawn bash");
    let pgid = child.id().expect("running") as i32;
    let mut output = std::pin::pin!(child.wait_with_output());
    let (output, stopped) = match tokio::time::timeout(RUN_FOR, &mut output).await {
        Ok(output) => (output.expect("wait"), false),
        Err(_) => {
            // SAFETY: kill(2) on the process group we started; no memory is involved.
            assert_eq!(unsafe { libc::kill(-pgid, libc::SIGTERM) }, 0, "kill");
            let output = tokio::time::timeout(Duration::from_secs(60), output)
                .await
                .unwrap_or_else(|_| panic!("{file}:{line}: `{command}` ignored SIGTERM"));
            (output.expect("wait"), true)
        }
    };
    let how = if stopped {
        format!("was still running after {RUN_FOR:?}, got SIGTERM, and exited with")
    } else {
        "exited with".to_owned()
    };
    assert!(
        output.status.success(),
        "{file}:{line}: `{command}` {how} {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    crate::support::lines::assert_sentences(&stderr, &format!("{file}:{line}: `{command}`"));
    println!("{file}:{line}: `{command}` {how} {}", output.status);
}

/// README.md and every page in docs/, by path from the repository's root.
fn markdown_files() -> BTreeSet<String> {
    let mut files = BTreeSet::from(["README.md".to_owned()]);
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if name.ends_with(".md") {
            files.insert(format!("docs/{name}"));
        }
    }
    files
}

#[test]
fn every_page_is_listed_and_enough_commands_run() {
    let listed: BTreeSet<String> = PAGES.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(listed, markdown_files(), "list every page in `pages!`");
    let total: usize = PAGES
        .iter()
        .map(|(f, _)| {
            steps(f)
                .iter()
                .filter(|s| matches!(s, Step::Run { .. }))
                .count()
        })
        .sum();
    // A broken extractor finds nothing, and would pass every page.
    assert!(total > 20, "only {total} commands in README.md and docs/");
}

#[test]
fn the_readme_is_a_front_door() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: move the detail into docs/"
    );
}

/// The anchors a markdown file's headings make, as GitHub and mdBook make them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            let heading = line.trim_start_matches('#').trim().to_lowercase();
            let slug: String = heading
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect();
            out.insert(slug);
        }
    }
    out
}

/// The relative link targets of a markdown text, outside code, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code is not a link: drop it before looking.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let target = &rest[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            let target = &target[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((i + 1, target.to_owned()));
            }
            rest = &rest[at + 2 + end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut files = markdown_files();
    files.extend(["tests/README.md".to_owned(), "bench/README.md".to_owned()]);
    let docs = root().join("docs");
    for file in &files {
        let text = read(file);
        let here = root().join(file);
        let base = here.parent().expect("a directory");
        for (line, link) in links(&text) {
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target: PathBuf = if path.is_empty() {
                here.clone()
            } else {
                base.join(path)
            };
            assert!(target.exists(), "{file}:{line}: {link}: no such file");
            let target = target.canonicalize().expect("canonical");
            if file.starts_with("docs/") {
                assert!(
                    target.starts_with(docs.canonicalize().expect("docs/")),
                    "{file}:{line}: {link}: the book cannot link outside docs/ (name the path instead)"
                );
            }
            if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&target).expect("read"));
                assert!(
                    headings.contains(anchor),
                    "{file}:{line}: {link}: no heading makes #{anchor}"
                );
            }
        }
    }
}
