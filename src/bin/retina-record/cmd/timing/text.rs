//! The clock health and the cameras' offsets, for people (aligned text) or scripts (JSON).

use std::io::Write;

use retina_record::timing::align::Alignment;
use retina_record::timing::summary::{ClockOffset, Part, Reports, Summary};

pub(super) fn summary(s: &Summary, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, s)?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    for f in &s.files {
        part(f, out)?;
        writeln!(out)?;
    }
    part(&s.whole, out)
}

fn part(p: &Part, out: &mut impl Write) -> anyhow::Result<()> {
    let title = p.file.as_deref().unwrap_or("whole recording");
    writeln!(out, "{title}")?;
    let mut line = |k: &str, v: String| writeln!(out, "  {k:<16}{v}");
    let mut frames = format!(
        "{} in {:.3} s, {} session{}",
        p.frames,
        p.duration_s,
        p.sessions,
        if p.sessions == 1 { "" } else { "s" }
    );
    if let Some(start) = p.start_unix {
        frames += &format!(", from {}", time(start));
    }
    line("frames", frames)?;
    if p.frames_without_timing > 0 || p.frames_without_capture > 0 || p.truncated {
        line(
            "incomplete",
            format!(
                "{} frames without timing data, {} without a capture time{}",
                p.frames_without_timing,
                p.frames_without_capture,
                if p.truncated {
                    "; ends in a cut-off fragment"
                } else {
                    ""
                }
            ),
        )?;
    }
    if let Some(i) = p.frame_interval_s {
        line(
            "frame interval",
            format!(
                "median {} (min {}, mean {}, max {})",
                ms(i.median),
                ms(i.min),
                ms(i.mean),
                ms(i.max)
            ),
        )?;
    }
    line("gaps", gaps(p))?;
    line("sender reports", reports(&p.sender_reports))?;
    line(
        "RTP clock",
        p.rtp_clock_error_ppm
            .map_or("unknown (fewer than two reports)".to_owned(), |e| {
                format!("{e:+.1} ppm")
            }),
    )?;
    let steps = if p.ntp_steps.is_empty() {
        "none".to_owned()
    } else {
        p.ntp_steps
            .iter()
            .map(|s| format!("{:+.3} s at {}", s.by_s, time(s.at_unix)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    line("NTP steps", steps)?;
    line(
        "camera clock",
        camera_clock(p.camera_minus_receiver_s, &p.clock_offsets),
    )?;
    if let Some(d) = p.camera_clock_drift_ppm {
        line("clock drift", format!("{d:+.1} ppm against this machine's"))?;
    }
    if let Some(l) = p.latency_s {
        line(
            "latency",
            format!("p50 {}, p99 {}, max {}", ms(l.p50), ms(l.p99), ms(l.max)),
        )?;
    }
    if let Some(j) = p.jitter_s {
        line("jitter", format!("{} (RFC 3550)", ms(j)))?;
    }
    Ok(())
}

/// The gaps line: how many, the frames they miss, the longest and the first.
fn gaps(p: &Part) -> String {
    match p.gaps.len() {
        0 => "none".to_owned(),
        n => {
            let missing: u64 = p.gaps.iter().map(|g| g.missing_frames).sum();
            let longest = p.gaps.iter().map(|g| g.length_s).fold(0.0, f64::max);
            let first = &p.gaps[0];
            format!(
                "{n} ({missing} frames missing; longest {longest:.3} s; first after frame {} at {})",
                first.after_frame,
                time(first.at_unix)
            )
        }
    }
}

/// The sender reports line: received, used, how often, and what was left out.
fn reports(r: &Reports) -> String {
    let mut reports = format!("{} received, {} used", r.received, r.used);
    if let Some(i) = r.interval_s {
        reports += &format!(", every {i:.3} s");
    }
    if r.not_video > 0 {
        reports += &format!(", {} another stream's (left out)", r.not_video);
    }
    if r.outliers > 0 {
        reports += &format!(", {} outliers (left out)", r.outliers);
    }
    reports
}

/// The camera clock line: its offset, or each interval's when it stepped.
fn camera_clock(whole: Option<f64>, intervals: &[ClockOffset]) -> String {
    if let Some(o) = whole {
        return format!("{} this machine's (from the least late frames)", offset(o));
    }
    if intervals.is_empty() {
        return "unknown".to_owned();
    }
    intervals
        .iter()
        .map(|i| {
            format!(
                "{} this machine's from {}",
                offset(i.camera_minus_receiver_s),
                time(i.from_unix)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn alignment(
    names: &[String],
    a: &Alignment,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if json {
        let cams: Vec<serde_json::Value> = names
            .iter()
            .zip(&a.cameras)
            .map(|(name, c)| {
                let mut v = serde_json::to_value(c)?;
                v["name"] = name.as_str().into();
                Ok(v)
            })
            .collect::<anyhow::Result<_>>()?;
        let doc = serde_json::json!({
            "schema_version": retina_record::timing::OUTPUT_SCHEMA_VERSION,
            "cameras": cams,
            "rows": a.rows,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    for (i, (name, c)) in names.iter().zip(&a.cameras).enumerate() {
        writeln!(out, "{name}")?;
        let mut line = |k: &str, v: String| writeln!(out, "  {k:<16}{v}");
        line(
            "frames",
            format!("{} in {} session(s)", c.frames, c.sessions),
        )?;
        line(
            "camera clock",
            camera_clock(c.camera_minus_receiver_s, &c.clock_offsets),
        )?;
        if let Some(r) = c.minus_first_camera_s.filter(|_| i > 0) {
            line("vs the first", format!("{} the first camera's", offset(r)))?;
        }
        let ppm = |v: Option<f64>| v.map_or("unknown".to_owned(), |p| format!("{p:+.1} ppm"));
        let mut drift = format!("{} against this machine's", ppm(c.clock_drift_ppm));
        if i > 0 {
            drift += &format!(", {} against the first camera's", ppm(c.drift_vs_first_ppm));
        }
        line("clock drift", drift)?;
        line("RTP clock", ppm(c.rtp_clock_error_ppm))?;
        if let Some(n) = c.unpaired_frames {
            line(
                "unpaired",
                format!("{n} of the first camera's frames have no frame near"),
            )?;
        }
    }
    Ok(())
}

/// `+0.2503 s ahead of` / `0.1000 s behind`.
fn offset(s: f64) -> String {
    if s >= 0.0 {
        format!("{s:.4} s ahead of")
    } else {
        format!("{:.4} s behind", -s)
    }
}

fn ms(s: f64) -> String {
    format!("{:.3} ms", s * 1e3)
}

/// Unix seconds as an RFC 3339 time in UTC, to the millisecond.
fn time(unix: f64) -> String {
    jiff::Timestamp::from_nanosecond((unix * 1e9) as i128)
        .map(|t| t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string())
        .unwrap_or_else(|_| format!("{unix:.3}"))
}
