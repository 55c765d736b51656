//! `retina-record timing`: a recording's timing data as the user asked for it — a row per
//! frame, the clocks' health, several cameras lined up, or a plot. The library finds each
//! camera's files, reads and fits (`retina_record::timing`), a frame at a time; this formats.

mod frames;
mod plot;
mod text;

use std::io::{self, Write};

use clap::Parser as _;
use retina_record::error::{Error, Result};
use retina_record::timing::files::{self, CameraFiles};
use retina_record::timing::scan::{self, Scan};
use retina_record::timing::{align, recording, summary};

use crate::cli::{Args, TimingArgs, site};

/// Lines of one kind of warning about a camera's files; the rest are counted.
const WARNINGS_OF_A_KIND: usize = 3;

/// A camera: its name and its files, scanned.
pub(super) struct Camera {
    pub name: String,
    pub scan: Scan,
}

pub(crate) fn run(args: &TimingArgs) -> Result<()> {
    let too_few = |n: usize| args.align && n < 2;
    if args.site.config.is_none() && too_few(args.inputs.len()) {
        return Err(Error::usage(
            "--align needs two or more cameras: give one INPUT per camera, or a site file",
        ));
    }
    let named = cameras(args)?;
    if too_few(named.len()) {
        return Err(Error::usage(
            "--align needs two or more cameras: give one INPUT per camera, or a site file",
        ));
    }
    if !args.align && named.len() > 1 {
        return Err(Error::usage(format!(
            "the site file has {} cameras: pick one with --only NAME, or line them up with --align",
            named.len()
        )));
    }
    let cameras = named
        .into_iter()
        .map(|c| {
            let scan = scan::scan(&c.files).map_err(Error::failure)?;
            warn_about(&c.name, &scan);
            Ok(Camera { name: c.name, scan })
        })
        .collect::<Result<Vec<_>>>()?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = write(args, cameras, &mut out).and_then(|()| out.flush().map_err(Into::into));
    match written {
        Ok(()) => Ok(()),
        // A reader that has seen enough (`| head`) is not a failure.
        Err(e) if reader_gone(&e) => Ok(()),
        Err(e) => Err(Error::failure(e)),
    }
}

/// The cameras the arguments name, each with its files.
fn cameras(args: &TimingArgs) -> Result<Vec<CameraFiles>> {
    if let Some(site) = &args.site.config {
        return site_cameras(site, &args.site.only);
    }
    let found = args
        .inputs
        .iter()
        .map(|i| files::find(i).map_err(Error::failure))
        .collect::<Result<Vec<_>>>()?;
    if args.align {
        return Ok(found);
    }
    let name = match found.as_slice() {
        [one] => one.name.clone(),
        _ => "recording".to_owned(),
    };
    let mut all: Vec<_> = found.into_iter().flat_map(|c| c.files).collect();
    all.sort();
    all.dedup();
    Ok(vec![CameraFiles { name, files: all }])
}

/// The site file's cameras (those of `only`, in its order), each with the files its output
/// names.
pub(crate) fn site_cameras(path: &std::path::Path, only: &[String]) -> Result<Vec<CameraFiles>> {
    let mut argv = vec![
        "retina-record".into(),
        "--config".into(),
        path.as_os_str().to_owned(),
    ];
    if !only.is_empty() {
        argv.extend(["--only".into(), only.join(",").into()]);
    }
    let args = Args::try_parse_from(argv).map_err(|e| Error::usage(e.to_string()))?;
    let mut chosen = site::cameras(&args)?;
    chosen.sort_by_key(|c| {
        let name = c.name.as_deref().unwrap_or_default();
        only.iter().position(|o| o == name)
    });
    chosen
        .iter()
        .map(|c| {
            let name = c.name.as_deref().unwrap_or_default();
            files::of_output(name, c.args.out.as_deref())
                .map_err(|e| Error::usage(format!("{}: camera `{name}`: {e}", c.origin)))
        })
        .collect()
}

/// Warns of files that end early, have frames without timing, are there twice or overlap.
fn warn_about(camera: &str, scan: &Scan) {
    let truncated = scan.files.iter().filter(|f| f.truncated).map(|f| {
        format!(
            "{} ends in a cut-off fragment (a killed recording?): its frames up to there are read",
            f.path.display()
        )
    });
    warn_some(camera, "cut-off files", truncated);
    let without = scan
        .files
        .iter()
        .filter(|f| f.frames_without_timing > 0)
        .map(|f| {
            format!(
                "{}: {} frames have no timing data and are left out",
                f.path.display(),
                f.frames_without_timing
            )
        });
    warn_some(camera, "files with frames without timing data", without);
    let duplicates = scan.duplicates.iter().map(|(kept, dropped)| {
        format!(
            "{} holds the same frames as {}: read once",
            dropped.display(),
            kept.display()
        )
    });
    warn_some(camera, "duplicate files", duplicates);
    let overlaps = scan.overlaps.iter().map(|o| {
        format!(
            "{} overlaps {} by {:.3} s: two cameras' files, or a copy? Their frames are all read",
            o.second.display(),
            o.first.display(),
            o.secs
        )
    });
    warn_some(camera, "overlapping files", overlaps);
}

/// The first few `lines` as warnings, and how many more there were.
pub(crate) fn warn_some(camera: &str, kind: &str, lines: impl Iterator<Item = String>) {
    let mut more = 0;
    for (i, line) in lines.enumerate() {
        if i < WARNINGS_OF_A_KIND {
            tracing::warn!("{line}");
        } else {
            more += 1;
        }
    }
    if more > 0 {
        tracing::warn!("camera {camera}: {more} more {kind}");
    }
}

/// Whether writing failed because stdout's reader closed it (the csv and JSON writers wrap
/// the I/O error in their own).
fn reader_gone(e: &anyhow::Error) -> bool {
    let broken = |io: &io::Error| io.kind() == io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(broken)
            || c.downcast_ref::<csv::Error>()
                .is_some_and(|e| match e.kind() {
                    csv::ErrorKind::Io(io) => broken(io),
                    _ => false,
                })
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

fn write(args: &TimingArgs, cameras: Vec<Camera>, out: &mut impl Write) -> anyhow::Result<()> {
    if args.align {
        let (names, scans): (Vec<String>, Vec<Scan>) =
            cameras.into_iter().map(|c| (c.name, c.scan)).unzip();
        if args.summary {
            let aligned = align::align(&scans, args.align_by, |_| Ok(()))?;
            return text::alignment(&names, &aligned, args.json, out);
        }
        let mut pairs = frames::Pairs::new(scans.len(), args.json, out)?;
        align::align(&scans, args.align_by, |row| pairs.row(row))?;
        return pairs.finish();
    }
    let Some(camera) = cameras.into_iter().next() else {
        return Ok(());
    };
    if let Some(path) = &args.plot {
        // A plot draws every frame: it is for a recording that fits in memory.
        plot::draw(
            &recording::RecordingTiming::from_scan(camera.scan.clone())?,
            path,
        )?;
    }
    if args.summary {
        text::summary(&summary::summarise(&camera.scan)?, args.json, out)
    } else if args.plot.is_none() {
        frames::rows(&camera.scan, args.json, out)
    } else {
        Ok(())
    }
}
