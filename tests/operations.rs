//! Running the recorder as an operator does: shell completions and the manual page from the
//! binary, and the recording piped to another program.

use std::process::Stdio;

use retina_record::mp4::read::Recording;
use tokio::io::AsyncWriteExt as _;

use crate::support::Rig;
use crate::support::check::check_against_camera;
use crate::support::rig::{only_error, recorder_command};

async fn output_of(args: &[&str]) -> std::process::Output {
    recorder_command(args).output().await.expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_valid_bash_and_the_man_page_renders() {
    let bash = output_of(&["completions", "bash"]).await;
    assert!(bash.status.success());
    let mut check = tokio::process::Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut stdin = check.stdin.take().expect("stdin");
    stdin.write_all(&bash.stdout).await.expect("write");
    drop(stdin);
    assert!(check.wait().await.expect("bash -n").success(), "bash -n");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = output_of(&["completions", shell]).await;
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let bad = output_of(&["completions", "tcsh"]).await;
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    let man = output_of(&["man"]).await;
    assert!(man.status.success());
    let page = String::from_utf8(man.stdout).expect("utf-8");
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..40]
    );
    if crate::support::have_tool("man") {
        let rendered = std::process::Command::new("sh")
            .args(["-c", "retina-record man | man -l - | col -b"])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin_dir(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("MANWIDTH", "100")
            .output()
            .expect("man");
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(text.contains("--segment-duration"), "{text}");
    }
}

fn bin_dir() -> String {
    std::path::Path::new(env!("CARGO_BIN_EXE_retina-record"))
        .parent()
        .expect("bin dir")
        .display()
        .to_string()
}

/// Runs `script` in bash with the recorder on PATH; its output.
fn bash(script: &str) -> std::process::Output {
    std::process::Command::new("bash")
        .args(["-c", script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("bash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_piped_to_ffprobe_and_read_back() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    // Through a real pipe, as a user runs it.
    let out = bash(&format!(
        "set -o pipefail; retina-record --url {url} --duration 3 - 2>/dev/null | ffprobe -v \
         error -count_frames -select_streams v -show_entries stream=nb_read_frames -of \
         csv=p=0 -"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probed: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ffprobe's frame count");
    assert!((60..=80).contains(&probed), "{probed} frames in 3 s");

    // The bytes themselves: the same fragments and timing SEI as a file (from a camera of
    // its own, whose log holds this recording's frames only).
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    let run = recorder_command(&["--url", &url, "--duration", "3", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("record");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("to stdout"), "{stderr}");
    let rec = Recording::from_bytes(run.stdout).expect("read the stream");
    assert!(rec.mfra.is_none(), "no index on a pipe");
    let (frames, _) = check_against_camera(&rec, &rig.cam);
    assert!(frames >= 60, "{frames}");
    assert!(!rig.dir.path().join("-").exists() && !rig.dir.path().join("-.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_closed_early_is_a_clean_stop() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let url = rig.cam.url();
    let out = bash(&format!(
        "retina-record --url {url} - | head -c 100000 >/dev/null; echo ${{PIPESTATUS[0]}}"
    ));
    let status = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.trim(), "0", "{stderr}");
    assert!(
        stderr.contains("the reader closed stdout: stopping"),
        "{stderr}"
    );

    let refused = recorder_command(&["--url", &url, "--segment-duration", "1m", "-"])
        .stdout(Stdio::piped())
        .output()
        .await
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        only_error(&stderr),
        "error: --segment-duration is for files: OUT `-` writes one stream to stdout"
    );
}
