//! What the output is to be, decided (and checked) before anything connects: a plain name or a
//! template, the hook, retention — and whether the files can be written at all, so that a
//! wrong directory fails at once with one line rather than after the camera has answered.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use super::naming::Naming;
use super::retention::Retention;
use super::template::Template;
use super::{file, naming};
use crate::config::{self, Field, RecorderConfig};
use crate::error::{Error, Result};

/// Where a recording goes and what happens to each finished file.
#[derive(Clone, Debug)]
pub(crate) struct OutputPlan {
    pub naming: Naming,
    /// The command run with each finished file.
    pub hook: Option<String>,
    /// How the hook's and retention's warnings name their settings.
    pub wording: crate::config::Wording,
    /// The camera's name, for the hook.
    pub camera: String,
    /// Environment variables that hold the camera's password (a site file's `password-env`),
    /// withheld from the hook like `RTSP_PASSWORD`: their names, never their values.
    pub secret_env: Vec<std::ffi::OsString>,
    pub retention: Option<Retention>,
}

impl OutputPlan {
    /// The output, for the log: the file name, or the template.
    pub(crate) fn describe(&self) -> String {
        match &self.naming {
            Naming::Plain(path) => path.display().to_string(),
            Naming::Template(t) => format!("files named {}", t.pattern()),
            Naming::Stdout => "stdout".to_owned(),
        }
    }
}

/// The output `config` asks for, checked: names, directories (created), writability.
pub(crate) async fn plan(config: &RecorderConfig) -> Result<OutputPlan> {
    config.check()?;
    let camera = camera(config).await;
    let naming = match &config.out {
        Some(out) if out.as_os_str() == "-" => Naming::Stdout,
        Some(out) if config::is_template(out) => {
            let text = out.to_string_lossy();
            Naming::Template(Template::parse(&text).map_err(|why| {
                Error::usage(format!("{} {text:?}: {why}", config.wording.of(Field::Out)))
            })?)
        }
        Some(out) => Naming::Plain(out.clone()),
        None => Naming::Template(
            Template::parse(&naming::default_template(&camera)).map_err(Error::usage)?,
        ),
    };
    let retention = match &naming {
        Naming::Template(t) if config.keep_for.is_some() || config.keep_size.is_some() => {
            Some(Retention {
                template: t.clone(),
                keep_for: config.keep_for,
                keep_size: config.keep_size,
                wording: config.wording,
            })
        }
        Naming::Template(_) => None,
        Naming::Stdout => {
            if std::io::stdout().is_terminal() {
                return Err(Error::usage(format!(
                    "{} `-` writes the recording to stdout, which is a terminal: pipe it to a \
                     program (`- | ffplay -`) or give a file name",
                    config.wording.of(Field::Out)
                )));
            }
            None
        }
        Naming::Plain(out) => {
            file::refuse_existing(out).map_err(Error::failure)?;
            None
        }
    };
    let first = match &naming {
        Naming::Plain(out) => Some(out.clone()),
        Naming::Template(t) => Some(t.expand(&jiff::Zoned::now())),
        Naming::Stdout => None,
    };
    if let Some(first) = first {
        check_writable(&first).map_err(Error::failure)?;
    }
    Ok(OutputPlan {
        naming,
        hook: config.on_segment_complete.clone(),
        wording: config.wording,
        camera,
        secret_env: secret_env(config),
        retention,
    })
}

/// The directory every recording of `config` lies under: a template's fixed leading part (as
/// retention walks it), a plain file's directory, or the current directory (default names).
pub fn recordings_dir(config: &RecorderConfig) -> PathBuf {
    let dir = match &config.out {
        Some(out) if config::is_template(out) => Template::parse(&out.to_string_lossy())
            .map(|t| t.root().to_owned())
            .unwrap_or_default(),
        Some(out) => out.parent().map(Path::to_owned).unwrap_or_default(),
        None => PathBuf::new(),
    };
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// The names of the environment variables whose value is the camera's password.
fn secret_env(config: &RecorderConfig) -> Vec<std::ffi::OsString> {
    let Some(secret) = config.source.secret().filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    std::env::vars_os()
        .filter(|(_, value)| value.as_encoded_bytes() == secret.as_bytes())
        .map(|(name, _)| name)
        .collect()
}

/// The camera's name, for default file names and the hook: looked up only if either needs it.
async fn camera(config: &RecorderConfig) -> String {
    if let Some(name) = &config.name {
        name.clone()
    } else if config.out.is_none() || config.on_segment_complete.is_some() {
        naming::camera_name(&config.source.url).await
    } else {
        String::new()
    }
}

/// Creates `file`'s directory if need be, and makes sure a file can be created in it.
fn check_writable(file: &Path) -> anyhow::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let cannot =
        |e: std::io::Error| anyhow::anyhow!("cannot write recordings to {}: {e}", dir.display());
    // create_dir_all would say "File exists" for a file in the way.
    if let Some(file) = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir()) {
        anyhow::bail!(
            "cannot write recordings to {}: {} is not a directory",
            dir.display(),
            file.display()
        );
    }
    std::fs::create_dir_all(&dir).map_err(cannot)?;
    // Unique within the process too: a site's cameras check their directories at once.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".retina-record-{}-{n}.probe", std::process::id()));
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(cannot)?;
    std::fs::remove_file(&probe).map_err(cannot)?;
    Ok(())
}
