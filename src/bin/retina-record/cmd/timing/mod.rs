//! `retina-record timing`: a recording's timing data as the user asked for it — a row per
//! frame, the clocks' health, several cameras lined up, or a plot. The library reads and fits
//! (`retina_record::timing`); this formats.

mod frames;
mod plot;
mod text;

use std::io::{self, Write};

use retina_record::error::{Error, Result};
use retina_record::timing::{align, recording, summary};

use crate::cli::TimingArgs;

pub(crate) fn run(args: &TimingArgs) -> Result<()> {
    let recordings = if args.align {
        if args.files.len() < 2 {
            return Err(Error::usage(
                "--align needs two or more files, one per camera",
            ));
        }
        args.files
            .iter()
            .map(|f| read(std::slice::from_ref(f)))
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![read(&args.files)?]
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = write(args, &recordings, &mut out).and_then(|()| out.flush().map_err(Into::into));
    match written {
        Ok(()) => Ok(()),
        // A reader that has seen enough (`| head`) is not a failure.
        Err(e) if reader_gone(&e) => Ok(()),
        Err(e) => Err(Error::failure(e)),
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

fn write(
    args: &TimingArgs,
    recordings: &[recording::RecordingTiming],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if args.align {
        let aligned = align::align(recordings, args.align_by);
        return if args.summary {
            text::alignment(&args.files, &aligned, args.json, out)
        } else {
            frames::pairs(&aligned, args.json, out)
        };
    }
    let timing = &recordings[0];
    if let Some(path) = &args.plot {
        plot::draw(timing, path)?;
    }
    if args.summary {
        text::summary(&summary::summarise(timing), args.json, out)
    } else if args.plot.is_none() {
        frames::rows(timing, args.json, out)
    } else {
        Ok(())
    }
}

/// Reads one recording, warning about files that end early or have frames without timing.
fn read(files: &[std::path::PathBuf]) -> Result<recording::RecordingTiming> {
    let timing = recording::read(files).map_err(Error::failure)?;
    for f in &timing.files {
        if f.truncated {
            tracing::warn!(
                "{} ends in a cut-off fragment (a killed recording?): its frames up to there are read",
                f.path.display()
            );
        }
        if f.frames_without_timing > 0 {
            tracing::warn!(
                "{}: {} frames have no timing data and are left out",
                f.path.display(),
                f.frames_without_timing
            );
        }
    }
    Ok(timing)
}
