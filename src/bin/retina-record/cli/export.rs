//! `export` and `list`: the flags that cut recordings by time and say what they hold.

use std::path::PathBuf;
use std::time::Duration;

use retina_record::export::{By, TimeSpec};

use super::parse;

/// Which recordings: one camera's files, or several cameras by name, or a site file's.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Recordings {
    /// One camera's recordings: files, directories (every .mp4 below), a recording template
    /// (`front/%Y-%m-%d/%H%M%S.mp4`) or a glob, in any order.
    #[arg(value_name = "INPUT", conflicts_with = "cameras")]
    pub inputs: Vec<String>,

    /// A camera, as NAME=INPUT (an INPUT as above); again for each camera.
    #[arg(long = "camera", value_name = "NAME=INPUT", conflicts_with = "config")]
    pub cameras: Vec<String>,

    #[command(flatten)]
    pub site: SiteCameras,
}

/// A site file's cameras, for the commands that read recordings (`timing`, `export`, `list`).
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct SiteCameras {
    /// The cameras of this site file (as recorded with `--config`): each one's files are
    /// where its `output` says.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs")]
    pub config: Option<PathBuf>,

    /// With --config: only these cameras (names, comma-separated), in this order.
    #[arg(
        long,
        value_name = "NAME,…",
        value_delimiter = ',',
        requires = "config"
    )]
    pub only: Vec<String>,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub recordings: Recordings,

    /// Where the interval starts: an RFC 3339 time (`2026-12-07T14:03:12Z`), a local time of
    /// day on the recording's first day (`14:03:12.5`), or a time after its first frame
    /// (`+90s`).
    #[arg(long, value_name = "T", value_parser = parse::time_spec, allow_hyphen_values = true)]
    pub from: TimeSpec,

    /// Where it ends (that instant not included), written as --from.
    #[arg(long, value_name = "T", value_parser = parse::time_spec, required_unless_present = "duration")]
    pub to: Option<TimeSpec>,

    /// How long it is, instead of --to (`30s`, `1m30s`).
    #[arg(long, value_name = "D", value_parser = parse::duration, conflicts_with = "to")]
    pub duration: Option<Duration>,

    /// Which clock the times are on: `capture` (when the camera captured each frame, by its
    /// clock, from its sender reports) or `recv` (when this machine received it).
    #[arg(long, value_name = "CLOCK", default_value = "capture", value_parser = parse::by())]
    pub by: By,

    /// Write a file for each continuous piece (`OUT-1.mp4`, `OUT-2.mp4`, …) instead of one
    /// file keeping the gaps.
    #[arg(long)]
    pub split_on_gap: bool,

    /// The file to write (an MP4, its moov first); with several cameras, a name with
    /// `{camera}` in it (`clip-{camera}.mp4`), and a JSON of what each holds beside them,
    /// `{camera}` read as `cameras`.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Print what was written as JSON (one object) instead of a line per file.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub recordings: Recordings,

    /// JSON (one object) instead of text.
    #[arg(long)]
    pub json: bool,
}
