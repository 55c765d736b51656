//! The cameras of one command line: a site file (`--config site.toml`), several `--url`s, or
//! one (a site of one), turned into each camera's flags as if it had been recorded alone.
//!
//! The file's keys are the flags' long names and each value goes through its flag's own clap
//! parser, so a key cannot drift from its flag; every error names the file, the line and the
//! key, and comes before anything connects (TOML: <https://toml.io/en/v1.0.0>).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::{CommandFactory as _, FromArgMatches as _};
use retina_record::error::{Error, Result};
use serde::Deserialize;
use toml::Spanned;

use super::Args;
use super::wording::{FLAGS, SITE_KEYS};
use retina_record::config::Wording;

/// One camera's flags, and how they were given.
#[derive(Debug)]
pub(crate) struct CameraFlags {
    /// Its name; `None` for the one camera of a plain `--url` (named for its host later).
    pub name: Option<String>,
    pub args: Args,
    /// Where it was configured, for errors found later: `site.toml:12`, or `--url`.
    pub origin: String,
    /// How its errors name its settings: as flags, or as the site file's keys.
    pub wording: Wording,
}

impl CameraFlags {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// Flags about the process, or the same for every camera: the command line's, never a file's.
const PROCESS_WIDE: &[&str] = &[
    "config", "only", "shard", "metrics", "quiet", "start", "duration", "help", "version",
];
/// Credentials, which never pass through an argument list (clap's errors quote values).
const PASSWORD: &str = "password";
const PASSWORD_ENV: &str = "password-env";
/// The key for OUT, which has no long name.
const OUTPUT: &str = "output";
/// The placeholder in OUT for the camera's name.
const PLACEHOLDER: &str = "{camera}";

/// The cameras `args` asks for, each camera's flags complete: one for a plain `--url`.
pub(crate) fn cameras(args: &Args) -> Result<Vec<CameraFlags>> {
    let all = match &args.config {
        Some(path) => from_file(args, path)?,
        None if args.url.len() > 1 || args.metrics.is_some() || !args.only.is_empty() => {
            from_urls(args)?
        }
        None => {
            if args.shard.is_some() {
                return Err(Error::usage("--shard needs --config or several --url"));
            }
            return Ok(vec![CameraFlags {
                name: None,
                args: args.clone(),
                origin: "--url".to_owned(),
                wording: FLAGS,
            }]);
        }
    };
    let chosen = choose(all, args)?;
    distinct_outputs(&chosen)?;
    Ok(chosen)
}

/// Applies `--only` and `--shard`.
fn choose(all: Vec<CameraFlags>, args: &Args) -> Result<Vec<CameraFlags>> {
    for name in &args.only {
        if !all.iter().any(|c| c.name() == name) {
            let names: Vec<&str> = all.iter().map(CameraFlags::name).collect();
            return Err(Error::usage(format!(
                "--only: no camera named `{name}` (there are: {})",
                names.join(", ")
            )));
        }
    }
    let chosen: Vec<CameraFlags> = all
        .into_iter()
        .filter(|c| args.only.is_empty() || args.only.iter().any(|o| o == c.name()))
        .filter(|c| args.shard.is_none_or(|(k, n)| shard_of(c.name(), n) == k))
        .collect();
    if chosen.is_empty() {
        return Err(Error::usage(
            "no camera to record: --shard leaves this shard none",
        ));
    }
    Ok(chosen)
}

/// The shard a camera belongs to: FNV-1a (64 bits) of its name, modulo `n` — stable across
/// releases and machines, and adding a camera moves no other.
pub(crate) fn shard_of(name: &str, n: u64) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % n
}

/// Two cameras writing the same files would destroy each other's recordings.
fn distinct_outputs(cameras: &[CameraFlags]) -> Result<()> {
    let mut seen: BTreeMap<&Path, &CameraFlags> = BTreeMap::new();
    for c in cameras {
        let Some(out) = &c.args.out else { continue };
        if let Some(other) = seen.insert(out, c) {
            return Err(Error::usage(format!(
                "{}: cameras `{}` and `{}` would both write {}: put {PLACEHOLDER} in the output",
                c.origin,
                other.name(),
                c.name(),
                out.display()
            )));
        }
    }
    Ok(())
}

/// Several `--url`s: the other flags apply to each camera, named for its URL's host.
fn from_urls(args: &Args) -> Result<Vec<CameraFlags>> {
    let mut names: Vec<String> = Vec::new();
    for url in &args.url {
        let parsed = url::Url::parse(url)
            .map_err(|_| Error::usage("--url: not a URL (expected rtsp://host/path)"))?;
        let host = sanitize(parsed.host_str().unwrap_or("camera"));
        let mut name = host.clone();
        if names.contains(&name)
            && let Some(port) = parsed.port()
        {
            name = format!("{host}-{port}");
        }
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{host}-{n}");
            n += 1;
        }
        names.push(name);
    }
    Ok(args
        .url
        .iter()
        .zip(names)
        .map(|(url, name)| {
            let mut one = args.clone();
            one.given.clear();
            one.url = vec![url.clone()];
            one.out = args.out.as_deref().map(|o| with_name(o, &name));
            CameraFlags {
                name: Some(name),
                args: one,
                origin: "--url".to_owned(),
                wording: FLAGS,
            }
        })
        .collect())
}

/// The site file's shape; each table's keys and values keep where they were written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    #[serde(default)]
    defaults: Table,
    #[serde(default)]
    camera: BTreeMap<Spanned<String>, Spanned<Table>>,
}

type Table = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The file's text, to turn byte offsets into lines.
struct SiteText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl SiteText<'_> {
    /// `site.toml:12`.
    fn at(&self, span: &Range<usize>) -> String {
        let line = self.text[..span.start.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1;
        format!("{}:{line}", self.path.display())
    }

    fn error(&self, span: &Range<usize>, what: impl std::fmt::Display) -> Error {
        Error::usage(format!("{}: {what}", self.at(span)))
    }
}

fn from_file(args: &Args, path: &Path) -> Result<Vec<CameraFlags>> {
    if let Some(flag) = args
        .given
        .iter()
        .find(|id| !PROCESS_WIDE.contains(&long_name(id).as_str()))
    {
        return Err(Error::usage(format!(
            "--{} cannot be combined with --config: put it in the file's [defaults] (the file \
             is the whole configuration)",
            long_name(flag)
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
    let src = SiteText { path, text: &text };
    let file: SiteFile = toml::from_str(&text).map_err(|e| {
        let message = retina_record::error::one_line(e.message());
        match e.span() {
            Some(span) => src.error(&span, message),
            None => Error::usage(format!("{}: {message}", path.display())),
        }
    })?;
    if file.camera.is_empty() {
        return Err(Error::usage(format!(
            "{}: no camera: add a [camera.NAME] table with a url",
            path.display()
        )));
    }
    let world_readable = world_readable(path);
    for key in file.defaults.keys() {
        if key.get_ref() == "url" {
            return Err(src.error(
                &key.span(),
                "url: belongs in each [camera.NAME] table, not in [defaults]",
            ));
        }
    }
    let mut cameras = Vec::new();
    for (name, table) in &file.camera {
        check_name(name.get_ref()).map_err(|e| src.error(&name.span(), e))?;
        let mut keys: BTreeMap<&str, (&Spanned<String>, &Spanned<toml::Value>)> = BTreeMap::new();
        for (k, v) in file.defaults.iter().chain(table.get_ref()) {
            keys.insert(k.get_ref(), (k, v));
        }
        if !keys.contains_key("url") {
            return Err(src.error(&name.span(), format!("camera `{}`: no url", name.get_ref())));
        }
        let camera = camera_from_table(&src, name, &keys, world_readable)?;
        cameras.push(camera);
    }
    Ok(cameras)
}

/// One camera's table (over the defaults) as flags, checked by clap.
fn camera_from_table(
    src: &SiteText<'_>,
    name: &Spanned<String>,
    keys: &BTreeMap<&str, (&Spanned<String>, &Spanned<toml::Value>)>,
    world_readable: bool,
) -> Result<CameraFlags> {
    let command = Args::command();
    let mut argv: Vec<String> = vec!["retina-record".to_owned()];
    let mut out = None;
    let mut password = None;
    for (&key, &(k, v)) in keys {
        let span = k.span();
        let err = |what: String| src.error(&span, format!("{key}: {what}"));
        let value = match v.get_ref() {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            toml::Value::Boolean(_) => None,
            _ => return Err(err("expected a string, a number or true/false".to_owned())),
        };
        match key {
            OUTPUT => {
                let o = value.ok_or_else(|| err("expected a file name or template".into()))?;
                out = Some(with_name(Path::new(&o), name.get_ref()));
            }
            PASSWORD | PASSWORD_ENV => {
                password = Some(credential(key, value, world_readable).map_err(err)?);
            }
            _ => argv
                .extend(to_flag(&command, key, value, v.get_ref(), world_readable).map_err(err)?),
        }
    }
    if password.is_some() && keys.contains_key("password-file") {
        return Err(src.error(
            &name.span(),
            format!(
                "camera `{}`: give one of password-file, password and password-env",
                name.get_ref()
            ),
        ));
    }
    // Only the file speaks for the camera: not RTSP_USERNAME or RTSP_PASSWORD.
    let command = command
        .mut_arg("username", |a| a.env(clap::builder::Resettable::Reset))
        .mut_arg("password", |a| a.env(clap::builder::Resettable::Reset));
    let mut args = command
        .try_get_matches_from(&argv)
        .and_then(|m| Args::from_arg_matches(&m))
        .map_err(|e| {
            src.error(
                &name.span(),
                format!("camera `{}`: {}", name.get_ref(), clap_message(&e)),
            )
        })?;
    args.out = out;
    args.connection.password = password;
    Ok(CameraFlags {
        name: Some(name.get_ref().clone()),
        args,
        origin: src.at(&name.span()),
        wording: SITE_KEYS,
    })
}

/// The password that `password` (the file must not be world-readable) or `password-env` (a
/// variable's name) gives.
fn credential(
    key: &str,
    value: Option<String>,
    world_readable: bool,
) -> std::result::Result<String, String> {
    if key == PASSWORD {
        if world_readable {
            return Err(
                "every user can read this file: `chmod o-r` it, or use password-file or \
                        password-env"
                    .to_owned(),
            );
        }
        return value.ok_or_else(|| "expected a string".to_owned());
    }
    let var = value.ok_or_else(|| "expected a variable's name".to_owned())?;
    let Some(p) = std::env::var_os(&var) else {
        return Err(format!("the environment has no {var}"));
    };
    p.into_string().map_err(|_| format!("{var} is not UTF-8"))
}

/// A key that is a flag's long name as that flag (none for `false`), its value checked by the
/// flag's own clap parser so that the error is about this key.
fn to_flag(
    command: &clap::Command,
    key: &str,
    value: Option<String>,
    raw: &toml::Value,
    world_readable: bool,
) -> std::result::Result<Option<String>, String> {
    if key == "url"
        && world_readable
        && let Some(url) = &value
        && url::Url::parse(url).is_ok_and(|u| u.password().is_some())
    {
        return Err(
            "holds a password, and every user can read this file: `chmod o-r` it, or \
                    use password-file or password-env"
                .to_owned(),
        );
    }
    if PROCESS_WIDE.contains(&key) {
        return Err(format!(
            "is the same for every camera: give --{key} on the command line"
        ));
    }
    let Some(arg) = command
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !a.is_hide_set())
    else {
        return Err(format!(
            "unknown key (keys are the flags' long names, and {OUTPUT}, {PASSWORD_ENV})"
        ));
    };
    let takes_value = arg.get_action().takes_values();
    match (value, raw) {
        (None, toml::Value::Boolean(on)) if !takes_value => Ok(on.then(|| format!("--{key}"))),
        (None, _) => Err("expected a value, not true/false".into()),
        (Some(_), _) if !takes_value => Err("expected true or false".into()),
        (Some(value), _) => {
            let flag = format!("--{key}={value}");
            command
                .clone()
                .try_get_matches_from(["retina-record", "--url=rtsp://camera/", &flag])
                .map_err(|e| clap_message(&e))?;
            Ok(Some(flag))
        }
    }
}

/// Names go into file names, hooks' environment and metrics' labels.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "camera name `{name}`: use letters, digits, `-`, `_` and `.` (not first)"
        ))
    }
}

/// A host name as a camera name.
fn sanitize(host: &str) -> String {
    let name: String = host
        .trim_matches(|c| c == '[' || c == ']')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_start_matches('.').to_owned()
}

/// OUT with `{camera}` replaced by the name (which has no `%`, so strftime leaves it alone).
fn with_name(out: &Path, name: &str) -> PathBuf {
    match out.to_str() {
        Some(s) => PathBuf::from(s.replace(PLACEHOLDER, name)),
        None => out.to_owned(),
    }
}

/// The first line of clap's message, without its `error: `.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// An id as its flag's long name (`password_file` → `password-file`).
fn long_name(id: &str) -> String {
    id.replace('_', "-")
}

fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}
