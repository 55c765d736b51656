//! `retina-record completions SHELL` and `retina-record man`: generated from the same clap
//! definitions as the parser (clap_complete, clap_mangen), so they cannot drift from it.

use std::io::Write as _;

use clap::CommandFactory as _;
use retina_record::error::{Error, Result};

use crate::cli::Args;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<()> {
    print(&completion_script(shell))
}

pub(crate) fn man() -> Result<()> {
    print(&man_page().map_err(Error::failure)?)
}

fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "retina-record", &mut out);
    out
}

/// The main page, then one page per subcommand (`retina-record-camera`, …).
fn man_page() -> std::io::Result<Vec<u8>> {
    let command = Args::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("retina-record-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name)
            .bin_name(format!("retina-record {}", sub.get_name()));
        clap_mangen::Man::new(page).render(&mut out)?;
    }
    Ok(out)
}

/// Writes to stdout; a reader that closes it early (`| head`) is not a failure.
fn print(bytes: &[u8]) -> Result<()> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::failure(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every long flag of the command and of each subcommand, as `--name`.
    fn all_flags(command: &clap::Command) -> Vec<String> {
        let mut flags: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        for sub in command.get_subcommands() {
            flags.extend(all_flags(sub));
        }
        flags
    }

    #[test]
    fn completions_name_every_flag_and_subcommand() {
        let command = Args::command();
        let flags = all_flags(&command);
        assert!(flags.contains(&"--segment-duration".to_owned()));
        assert!(flags.contains(&"--align-by".to_owned()));
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let script = String::from_utf8(completion_script(shell)).expect("utf-8");
            for flag in &flags {
                // fish lists long flags as `-l name`.
                let fish = format!("-l {}", &flag[2..]);
                assert!(
                    script.contains(flag.as_str()) || script.contains(&fish),
                    "{shell}: no {flag}"
                );
            }
            for sub in ["camera", "demo", "timing", "completions", "man"] {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn the_man_page_names_every_flag_and_subcommand() {
        // roff writes `-` as `\-`.
        let page = String::from_utf8(man_page().expect("render"))
            .expect("utf-8")
            .replace("\\-", "-");
        for flag in all_flags(&Args::command()) {
            assert!(page.contains(&flag), "no {flag}");
        }
        for sub in ["camera", "demo", "timing", "completions", "man"] {
            assert!(
                page.contains(&format!("retina-record-{sub}")),
                "no page for {sub}"
            );
        }
    }
}
