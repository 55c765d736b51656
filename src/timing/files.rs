//! Which files are one camera's: the user names them by file, directory, recording template
//! (`front/%Y-%m-%d/%H%M%S.mp4`, as recording takes it) or `NAME=GLOB`, and this finds them.
//! A `.partial` (a file being written, or a killed recording's) counts: it is read to its last
//! whole fragment. Their order is not decided here but by their timing data ([`super::scan`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::output::template::Template;

/// One camera's files.
#[derive(Clone, Debug)]
pub struct CameraFiles {
    /// What the camera is called in output: NAME, the directory's name, the template, or the
    /// file's.
    pub name: String,
    /// Its files, sorted by name.
    pub files: Vec<PathBuf>,
}

/// The files `input` names: a file, a directory (every `.mp4` below it), a template, a glob,
/// or `NAME=` before either of the last two.
pub fn find(input: &str) -> anyhow::Result<CameraFiles> {
    let path = Path::new(input);
    if path.is_file() {
        return Ok(CameraFiles {
            name: path
                .file_name()
                .map_or_else(|| input.to_owned(), |n| n.to_string_lossy().into_owned()),
            files: vec![path.to_owned()],
        });
    }
    if path.is_dir() {
        let mut files = Vec::new();
        below(path, &mut files);
        return named(input, dir_name(path), files);
    }
    if let Some((name, rest)) = input.split_once('=').filter(|(n, _)| is_name(n)) {
        return pattern(rest, name.to_owned());
    }
    pattern(input, input.to_owned())
}

/// The files of a camera recorded to `template` (a site file's `output`).
pub fn of_template(name: &str, template: &str) -> anyhow::Result<CameraFiles> {
    let t = Template::parse(template).map_err(|why| anyhow::anyhow!("{template:?}: {why}"))?;
    let mut files = Vec::new();
    t.walk(&mut |p, _| files.push(p));
    named(template, name.to_owned(), files)
}

/// The files of camera `name` recorded to `out` as a site file gives it: a template, one
/// file (and its `.partial`), or nothing (the default name, in the current directory).
pub fn of_output(name: &str, out: Option<&Path>) -> anyhow::Result<CameraFiles> {
    let Some(out) = out else {
        return of_template(name, &crate::output::naming::default_template(name));
    };
    if crate::config::is_template(out) {
        return of_template(name, &out.to_string_lossy());
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let files = [out.to_owned(), PathBuf::from(partial)]
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    named(&out.display().to_string(), name.to_owned(), files)
}

/// A template (it has a `%`) or a glob.
fn pattern(text: &str, name: String) -> anyhow::Result<CameraFiles> {
    if text.contains('%') {
        return of_template(&name, text);
    }
    if !text.contains(['*', '?', '[']) {
        bail!(
            "{text}: no such file or directory (give files, a directory, a template with % fields, or NAME=GLOB)"
        );
    }
    let files = glob::glob(text)
        .with_context(|| format!("{text}: not a glob pattern"))?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    named(text, name, files)
}

fn named(what: &str, name: String, mut files: Vec<PathBuf>) -> anyhow::Result<CameraFiles> {
    if files.is_empty() {
        bail!("{what}: no recordings found there");
    }
    files.sort();
    Ok(CameraFiles { name, files })
}

/// Every recording (`.mp4`, `.mp4.partial`) below `dir`.
fn below(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            below(&path, files);
        } else if name.ends_with(".mp4") || name.ends_with(".mp4.partial") {
            files.push(path);
        }
    }
}

fn dir_name(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// A camera's name: letters, digits, `-`, `_` and `.`, as a site file's.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_templates_and_globs() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        for f in [
            "front/2026-12-07/101000.mp4",
            "front/2026-12-07/102000.mp4",
            "front/2026-12-07/103000.mp4.partial",
            "front/2026-12-07/notes.txt",
            "side/a.mp4",
        ] {
            std::fs::create_dir_all(d.join(f).parent().context("parent")?)?;
            std::fs::write(d.join(f), b"")?;
        }
        let s = |p: &str| d.join(p).display().to_string();
        let t = find(&s("front/%Y-%m-%d/%H%M%S.mp4"))?;
        assert_eq!(t.files.len(), 3, "{:?}", t.files);
        let by_dir = find(&s("front"))?;
        assert_eq!((by_dir.name.as_str(), by_dir.files.len()), ("front", 3));
        let glob = find(&format!("side={}", s("*/a.mp4")))?;
        assert_eq!((glob.name.as_str(), glob.files.len()), ("side", 1));
        let named_template = find(&format!("front={}", s("front/%Y-%m-%d/%H%M%S.mp4")))?;
        assert_eq!(named_template.name, "front");
        assert_eq!(find(&s("side/a.mp4"))?.files, [d.join("side/a.mp4")]);
        let missing = find(&s("nowhere.mp4")).expect_err("no such file");
        assert!(missing.to_string().contains("no such file"), "{missing}");
        let empty = find(&s("*.mov")).expect_err("nothing matches");
        assert!(empty.to_string().contains("no recordings found"), "{empty}");
        Ok(())
    }
}
