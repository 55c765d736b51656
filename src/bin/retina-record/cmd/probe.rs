//! `retina-record probe URL`: flags to a config, the library's probe, its report as text or
//! JSON on stdout.

use retina_record::error::{Error, Result};
use retina_record::probe::{self, Report};

use crate::cli::ProbeArgs;
use crate::cli::wording::FLAGS;

pub(crate) async fn run(args: &ProbeArgs) -> Result<()> {
    let config = super::connecting(&args.url, &args.connection, FLAGS)?;
    let report = probe::probe(&config, args.duration).await?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(Error::failure)? + "\n"
    } else {
        text(&report)
    };
    print!("{text}");
    Ok(())
}

fn text(r: &Report) -> String {
    let mut out = format!(
        "{}: {} stream(s), over {}, listened {:.1} s\n",
        r.url,
        r.streams.len(),
        r.transport.to_uppercase(),
        r.listened_s
    );
    for s in &r.streams {
        out += &format!(
            "stream {}: {} {}/{}: {}\n",
            s.index, s.media, s.codec, s.clock_rate, s.decision
        );
        if let Some(v) = &s.video {
            let fps = v.fps.map_or("? fps".to_owned(), |f| format!("{f:.2} fps"));
            let gop = v
                .gop_frames
                .map_or("GOP unknown (under two keyframes)".to_owned(), |g| {
                    format!("GOP {g} frames")
                });
            out += &format!(
                "  {}x{}, {} {} level {}, {fps}, {gop}, {}\n",
                v.width,
                v.height,
                v.rfc6381,
                v.profile.as_deref().unwrap_or("?"),
                v.level.as_deref().unwrap_or("?"),
                if v.b_frames {
                    "B-frames"
                } else {
                    "no B-frames"
                }
            );
        }
        if let Some(a) = &s.audio {
            let channels = a
                .channels
                .map_or("? channels".to_owned(), |c| format!("{c} channel(s)"));
            out += &format!("  {} Hz, {channels}\n", a.sample_rate);
        }
        if s.recorded {
            let rate = s
                .kbit_per_s
                .map_or("-".to_owned(), |k| format!("{k:.0} kbit/s"));
            let reports = match s.sender_report_interval_s {
                Some(i) => format!("{} sender reports, every {i:.1} s", s.sender_reports),
                None => format!("{} sender report(s)", s.sender_reports),
            };
            out += &format!("  {} frames, {rate}, {reports}\n", s.frames);
        }
    }
    if let Some(pin) = &r.certificate {
        out += &format!("certificate {pin} (pin it with --tls-fingerprint)\n");
    }
    for q in &r.quirks {
        out += &format!("worked around ({}): {}\n", q.name, q.detail);
    }
    if r.skipped_packets > 0 {
        out += &format!(
            "{} packet(s) completed no frame and were skipped\n",
            r.skipped_packets
        );
    }
    match r.camera_minus_receiver_s {
        Some(o) => {
            out += &format!(
                "camera clock minus this machine's: {o:+.3} s (from its first sender report)\n"
            )
        }
        None => {
            out += "no sender reports: capture times cannot be told from this camera's recordings\n"
        }
    }
    out
}
