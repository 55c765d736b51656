//! Running the recorder as an operator does: shell completions and the manual page from the
//! binary, and the recording piped to another program.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use crate::support::rig::recorder_command;

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
