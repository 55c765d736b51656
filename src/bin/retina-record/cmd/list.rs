//! `retina-record list`: per camera, the continuous spans of what was recorded and the gaps
//! between them (receive and capture times), with their files; read from the files' indexes
//! (`retina_record::export::spans`), not their frames.

use std::io::Write as _;

use retina_record::error::{Error, Result};
use retina_record::export::spans::{self, Listing, Span};

use super::export::{cameras, local_span};
use crate::cli::export::ListArgs;

pub(crate) fn run(args: &ListArgs) -> Result<()> {
    let cameras = cameras(&args.recordings)?;
    let mut listed = Vec::new();
    for c in &cameras {
        let listing = spans::list(&c.files)
            .map_err(|e| Error::failure(e.context(format!("camera {}", c.name))))?;
        let cut_off = listing.truncated.iter().map(|p| {
            format!(
                "camera {}: {} ends in a cut-off fragment (a killed recording?): listed up to there",
                c.name,
                p.display()
            )
        });
        super::timing::warn_some(&c.name, "cut-off files", cut_off);
        let unreadable =
            (listing.unreadable.iter()).map(|e| format!("camera {}: {e}: left out", c.name));
        super::timing::warn_some(&c.name, "files that cannot be read", unreadable);
        listed.push((c.name.clone(), listing));
    }
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        json(&listed).to_string() + "\n"
    } else {
        listed.iter().map(|(n, l)| text(n, l)).collect()
    };
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| Error::failure(anyhow::Error::from(e))),
    }
}

/// Seconds from `a` to `b` (Unix nanoseconds).
fn secs(a: i128, b: i128) -> f64 {
    (b - a) as f64 / 1e9
}

fn text(name: &str, l: &Listing) -> String {
    let gaps = l.spans.len().saturating_sub(1);
    let mut s = format!(
        "camera {name}: {} span{}, {gaps} gap{}\n",
        l.spans.len(),
        if l.spans.len() == 1 { "" } else { "s" },
        if gaps == 1 { "" } else { "s" }
    );
    for (i, span) in l.spans.iter().enumerate() {
        if i > 0 {
            let before = &l.spans[i - 1];
            let by_capture = before
                .end_capture()
                .zip(span.first.capture)
                .map_or(String::new(), |(a, b)| {
                    format!(", {:.3} s by capture time", secs(a, b))
                });
            let gap = secs(before.end_recv(), span.first.recv);
            s += &if gap < 0.0 {
                format!(
                    "  overlap of {:.3} s by receive time: files received at once (a copy, or \
                     another camera's?)\n",
                    -gap
                )
            } else {
                format!("  gap of {gap:.3} s by receive time{by_capture}\n")
            };
        }
        s += &span_line(span);
    }
    s
}

fn span_line(span: &Span) -> String {
    let capture = span.first.capture.zip(span.end_capture()).map_or(
        "capture time unknown (no sender reports)".to_owned(),
        |(a, b)| format!("captured {}", local_span(a, b)),
    );
    let files = match span.files.as_slice() {
        [one] => one.display().to_string(),
        [first, .., last] => format!(
            "{} files, {} to {}",
            span.files.len(),
            first.display(),
            last.display()
        ),
        [] => String::new(),
    };
    format!(
        "  received {} ({:.3} s), {capture}; in {files}\n",
        local_span(span.first.recv, span.end_recv()),
        secs(span.first.recv, span.end_recv()),
    )
}

fn json(listed: &[(String, Listing)]) -> serde_json::Value {
    let ns = |t: i128| serde_json::json!(t as f64 / 1e9);
    let cameras: Vec<_> = listed
        .iter()
        .map(|(name, l)| {
            let spans: Vec<_> = l
                .spans
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "start_recv_unix": ns(s.first.recv),
                        "end_recv_unix": ns(s.end_recv()),
                        "start_capture_unix": s.first.capture.map(ns),
                        "end_capture_unix": s.end_capture().map(ns),
                        "secs": secs(s.first.recv, s.end_recv()),
                        "files": s.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let gaps: Vec<_> = l
                .spans
                .windows(2)
                .map(|w| {
                    serde_json::json!({
                        "after_span": 0,
                        "recv_secs": secs(w[0].end_recv(), w[1].first.recv),
                        "capture_secs": w[0].end_capture().zip(w[1].first.capture).map(|(a, b)| secs(a, b)),
                    })
                })
                .enumerate()
                .map(|(i, mut g)| {
                    g["after_span"] = serde_json::json!(i);
                    g
                })
                .collect();
            serde_json::json!({"name": name, "spans": spans, "gaps": gaps})
        })
        .collect();
    serde_json::json!({ "cameras": cameras })
}
