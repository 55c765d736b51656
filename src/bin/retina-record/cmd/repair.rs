//! `retina-record repair`: each `.partial` finished (`retina_record::output::repair`), a line
//! for each saying what was kept and dropped; one that cannot be repaired is left as it was,
//! said in one line, and makes the exit status 1.

use retina_record::error::{Error, Result};
use retina_record::output::repair::{self, Repaired};

use crate::cli::RepairArgs;

pub(crate) fn run(args: &RepairArgs) -> Result<()> {
    let mut failed = 0;
    for file in &args.files {
        match repair::repair(file, args.dry_run) {
            Ok(r) => println!("{}", said(file, &r)),
            Err(e) => {
                tracing::error!("{e:#}");
                failed += 1;
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::failure(anyhow::anyhow!(
            "{n} of {} files could not be repaired (each said above) and were left as they were",
            args.files.len()
        ))),
    }
}

/// `front.mp4.partial: kept 12.040 s (301 frames, 13 fragments), cut a torn last fragment
/// (4,321 bytes); now front.mp4`.
fn said(file: &std::path::Path, r: &Repaired) -> String {
    let dropped = match r.dropped_bytes {
        0 => "nothing torn".to_owned(),
        n => format!("cut a torn last fragment ({n} bytes)"),
    };
    let now = if r.dry_run { "would be" } else { "now" };
    format!(
        "{}: kept {:.3} s ({} frames, {} fragments), {dropped}; {now} {}",
        file.display(),
        r.secs,
        r.frames,
        r.fragments,
        r.out.display()
    )
}
