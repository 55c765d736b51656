//! `retina-record export`: the same interval of time from one camera or several, each into an
//! MP4 of its own, bytes copied (`retina_record::export`). The interval is found from each
//! file's index first (`export::spans`), so that only the files near it are read.

use std::path::{Path, PathBuf};

use retina_record::error::{Error, Result};
use retina_record::export::spans::{self, FileSpans};
use retina_record::export::{By, cut, write};
use retina_record::timing::files::{self, CameraFiles};
use retina_record::timing::scan;

use crate::cli::export::{ExportArgs, Recordings};

/// By capture time, files whose frames are this near the interval are read too: the clock
/// fit's sender reports reach this far either side of a frame (`timing::clock`). By receive
/// time, only the files the interval is in.
const NEAR_S: i128 = 600;

/// The cameras `rec` names, each with its files.
pub(crate) fn cameras(rec: &Recordings) -> Result<Vec<CameraFiles>> {
    if let Some(site) = &rec.site.config {
        return super::timing::site_cameras(site, &rec.site.only);
    }
    if !rec.cameras.is_empty() {
        return rec
            .cameras
            .iter()
            .map(|c| {
                let Some((name, input)) = c.split_once('=') else {
                    return Err(Error::usage(format!(
                        "--camera {c}: give it as NAME=INPUT (`front=rec/front`)"
                    )));
                };
                let mut found = files::find(input).map_err(Error::failure)?;
                found.name = name.to_owned();
                Ok(found)
            })
            .collect();
    }
    if rec.inputs.is_empty() {
        return Err(Error::usage(
            "give the recordings: files, a directory or a template, --camera NAME=INPUT, or --config",
        ));
    }
    let mut all = Vec::new();
    let mut name = None;
    for input in &rec.inputs {
        let found = files::find(input).map_err(Error::failure)?;
        name.get_or_insert(found.name);
        all.extend(found.files);
    }
    all.sort();
    all.dedup();
    let name = if rec.inputs.len() == 1 { name } else { None };
    Ok(vec![CameraFiles {
        name: name.unwrap_or_else(|| "recording".to_owned()),
        files: all,
    }])
}

/// Unix nanoseconds as this machine's local time, to the millisecond.
pub(crate) fn local_time(t: i128) -> String {
    match jiff::Timestamp::from_nanosecond(t) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S%.3f %Z")
            .to_string(),
        Err(_) => format!("{:.3} (Unix time)", t as f64 / 1e9),
    }
}

/// From `a` to `b` (Unix nanoseconds) in local time, the date and zone once when they are
/// the same: `2026-12-07 14:03:12.000 to 14:03:42.000 UTC`.
pub(crate) fn local_span(a: i128, b: i128) -> String {
    let zoned = |t: i128| {
        jiff::Timestamp::from_nanosecond(t)
            .ok()
            .map(|ts| ts.to_zoned(jiff::tz::TimeZone::system()))
    };
    match (zoned(a), zoned(b)) {
        (Some(x), Some(y)) if x.date() == y.date() && x.offset() == y.offset() => format!(
            "{} to {}",
            x.strftime("%Y-%m-%d %H:%M:%S%.3f"),
            y.strftime("%H:%M:%S%.3f %Z")
        ),
        _ => format!("{} to {}", local_time(a), local_time(b)),
    }
}

/// One camera's export, as written.
struct Exported {
    camera: String,
    by: By,
    files: Vec<(cut::Piece, write::Written)>,
}

impl Exported {
    /// Its first and last frame's times, by its clock.
    fn span(&self) -> (i128, i128) {
        let time = |f: &retina_record::timing::frames::FrameTime| cut::time_of(f, self.by);
        let first = self.files.first().and_then(|(p, _)| time(&p.first));
        let last = self.files.last().and_then(|(p, _)| time(&p.last));
        (first.unwrap_or(0), last.unwrap_or(0))
    }
}

/// Which frames of a camera to export.
#[derive(Clone, Copy)]
enum Window {
    /// Those in the interval asked for.
    Asked(i128, i128),
    /// From the frame nearest the first time to the frame nearest the second (another
    /// camera's first and last frames).
    Nearest((i128, i128)),
}

pub(crate) fn run(args: &ExportArgs) -> Result<()> {
    let cameras = cameras(&args.recordings)?;
    if cameras.is_empty() {
        return Err(Error::usage("the site file has no cameras to export"));
    }
    let template = args.output.to_string_lossy().into_owned();
    if cameras.len() > 1 && !template.contains("{camera}") {
        return Err(Error::usage(format!(
            "{} cameras need a name for each file: put {{camera}} in -o (`clip-{{camera}}.mp4`)",
            cameras.len()
        )));
    }
    let mut listed = Vec::with_capacity(cameras.len());
    for c in &cameras {
        let (each, unreadable) = spans::each_file(&c.files)
            .map_err(|e| Error::failure(e.context(format!("camera {}", c.name))))?;
        let lines = (unreadable.iter()).map(|e| format!("camera {}: {e:#}: left out", c.name));
        super::timing::warn_some(&c.name, "files that cannot be read", lines);
        listed.push(each);
    }
    let (from, to) = interval(args, &listed[0])?;
    let outs: Vec<PathBuf> = cameras
        .iter()
        .map(|c| PathBuf::from(template.replace("{camera}", &c.name)))
        .collect();
    // Nothing is written when any file would have to be overwritten.
    for out in &outs {
        for path in [out.clone(), retina_record::output::partial_path(out)] {
            if path.exists() {
                return Err(Error::failure(anyhow::anyhow!(
                    "{} already exists; not overwriting it: choose another -o",
                    path.display()
                )));
            }
        }
    }
    let mut done: Vec<Exported> = Vec::new();
    for ((c, each), out) in cameras.iter().zip(&listed).zip(&outs) {
        // The other cameras are cut to the first one's frames: from their frame nearest its
        // first to their frame nearest its last.
        let window = match done.first() {
            None => Window::Asked(from, to),
            Some(first) => Window::Nearest(first.span()),
        };
        done.push(export_camera(args, c, each, window, out)?);
    }
    report(args, &done, &template)
}

/// The interval asked for, as Unix nanoseconds, resolved against the first camera's first
/// frame by the clock asked for.
fn interval(args: &ExportArgs, first: &[FileSpans]) -> Result<(i128, i128)> {
    let edge = first.iter().flat_map(|f| &f.spans).map(|s| &s.0).next();
    let Some(edge) = edge else {
        return Err(Error::failure(anyhow::anyhow!(
            "the recordings have no frames"
        )));
    };
    let start = match args.by {
        By::Capture => edge.capture.unwrap_or(edge.recv),
        By::Recv => edge.recv,
    };
    let from = args.from.resolve(start).map_err(Error::failure)?;
    let to = match (args.to, args.duration) {
        (Some(t), _) => t.resolve(start).map_err(Error::failure)?,
        (None, Some(d)) => from + d.as_nanos() as i128,
        (None, None) => return Err(Error::usage("give --to or --duration")),
    };
    if to <= from {
        return Err(Error::usage(format!(
            "the interval ends ({}) before it starts ({}): check --from and --to",
            local_time(to),
            local_time(from)
        )));
    }
    Ok((from, to))
}

/// The files of a camera near `(from, to)`: by capture time, those within [`NEAR_S`] of it,
/// moved by each file's own offset from receive time; by receive time, those it is in.
fn near(each: &[FileSpans], by: By, (from, to): (i128, i128)) -> Vec<PathBuf> {
    let margin = match by {
        By::Capture => NEAR_S * 1_000_000_000,
        By::Recv => 0,
    };
    each.iter()
        .filter(|f| {
            let (Some(first), Some(last)) = (f.spans.first(), f.spans.last()) else {
                return false;
            };
            let offset = match by {
                By::Capture => first.0.capture.map_or(0, |c| c - first.0.recv),
                By::Recv => 0,
            };
            let (a, b) = (first.0.recv + offset, last.1.recv + offset);
            a <= to + margin && b >= from - margin
        })
        .map(|f| f.path.clone())
        .collect()
}

fn export_camera(
    args: &ExportArgs,
    c: &CameraFiles,
    each: &[FileSpans],
    window: Window,
    out: &Path,
) -> Result<Exported> {
    let camera = &c.name;
    let fail = |e: anyhow::Error| Error::failure(e.context(format!("camera {camera}")));
    let (from, to) = match window {
        Window::Asked(from, to) => (from, to),
        Window::Nearest((first, last)) => (first, last),
    };
    let files = near(each, args.by, (from, to));
    if files.is_empty() {
        return Err(no_frames(camera, args.by, (from, to), each));
    }
    let scan = scan::scan(&files).map_err(fail)?;
    if let Some(o) = scan.overlaps.iter().find(|o| o.secs > 1.0) {
        return Err(Error::failure(anyhow::anyhow!(
            "camera {camera}: {} and {} were received over the same {:.1} s: files of two \
             cameras? Give each with --camera NAME=INPUT",
            o.first.display(),
            o.second.display(),
            o.secs
        )));
    }
    let (from, to) = match window {
        Window::Asked(..) => (from, to),
        Window::Nearest(_) => {
            let half = (scan.frame_interval().unwrap_or(0.04) * 0.5e9) as i128;
            (from - half, to + half)
        }
    };
    let by = cut::effective(&scan, args.by);
    if by != args.by {
        tracing::warn!(
            "camera {camera}: its files have no sender reports (recorded by 0.2?): cut by receive time"
        );
    }
    let interval = cut::Interval { from, to };
    let Ok(cut) = cut::cut(&scan, by, interval, args.split_on_gap) else {
        return Err(no_frames(camera, by, (from, to), each));
    };
    let many = cut.pieces.len() > 1;
    let mut written = Vec::new();
    for (i, piece) in cut.pieces.into_iter().enumerate() {
        let path = if many {
            numbered(out, i + 1)
        } else {
            out.to_owned()
        };
        let w = write::write(&scan, &piece, &path).map_err(fail)?;
        written.push((piece, w));
    }
    Ok(Exported {
        camera: camera.clone(),
        by,
        files: written,
    })
}

/// `OUT-N.ext`.
fn numbered(out: &Path, n: usize) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    out.with_file_name(name)
}

fn no_frames(camera: &str, by: By, (from, to): (i128, i128), each: &[FileSpans]) -> Error {
    let edges = each.iter().flat_map(|f| &f.spans);
    let time = |e: &spans::Edge| match by {
        By::Capture => e.capture.unwrap_or(e.recv),
        By::Recv => e.recv,
    };
    let first = edges.clone().next().map(|s| time(&s.0));
    let last = edges.last().map(|s| time(&s.1));
    let holds = match first.zip(last) {
        Some((a, b)) => format!("; it holds {}", local_span(a, b)),
        None => String::new(),
    };
    Error::failure(anyhow::anyhow!(
        "camera {camera}: no frames from {} by {}{holds}",
        local_span(from, to),
        by.name()
    ))
}

fn report(args: &ExportArgs, done: &[Exported], template: &str) -> Result<()> {
    let reference = done
        .first()
        .and_then(|e| e.files.first())
        .and_then(|(p, _)| cut::time_of(&p.first, args.by));
    let cameras: Vec<_> = done
        .iter()
        .map(|e| {
            let files: Vec<_> = e
                .files
                .iter()
                .map(|(p, w)| file_json(p, w, e.by, reference))
                .collect();
            serde_json::json!({"name": e.camera, "by": e.by.name(), "files": files})
        })
        .collect();
    let json = serde_json::json!({ "cameras": cameras });
    if done.len() > 1 {
        let beside = PathBuf::from(template.replace("{camera}", "cameras")).with_extension("json");
        let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
        std::fs::write(&beside, text).map_err(|e| {
            Error::failure(anyhow::anyhow!("cannot write {}: {e}", beside.display()))
        })?;
    }
    if args.json {
        println!("{json}");
        return Ok(());
    }
    for e in done {
        for (p, w) in &e.files {
            println!(
                "camera {}: wrote {} ({} frames, {:.3} s, {:.1} MB): {} by {}",
                e.camera,
                w.path.display(),
                w.shown,
                w.secs,
                w.bytes as f64 / 1e6,
                cut::time_of(&p.first, e.by)
                    .zip(cut::time_of(&p.last, e.by))
                    .map_or("?".into(), |(a, b)| local_span(a, b)),
                e.by.name()
            );
        }
    }
    Ok(())
}

fn file_json(
    p: &cut::Piece,
    w: &write::Written,
    by: By,
    reference: Option<i128>,
) -> serde_json::Value {
    let s = |t: Option<i128>| t.map(|t| t as f64 / 1e9);
    let first = cut::time_of(&p.first, by);
    serde_json::json!({
        "path": w.path.display().to_string(),
        "frames": w.shown,
        "secs": w.secs,
        "first_capture_unix": s(p.first.capture.map(|c| c.0)),
        "last_capture_unix": s(p.last.capture.map(|c| c.0)),
        "first_recv_unix": p.first.recv_unix_nanos as f64 / 1e9,
        "last_recv_unix": p.last.recv_unix_nanos as f64 / 1e9,
        "offset_to_reference_s": first.zip(reference).map(|(a, b)| (a - b) as f64 / 1e9),
        "source_files": p.parts.iter().map(|x| x.path.display().to_string()).collect::<Vec<_>>(),
    })
}
