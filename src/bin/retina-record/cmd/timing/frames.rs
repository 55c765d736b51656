//! One row per frame (CSV with a header, or JSON lines), and one row per aligned frame.

use std::io::Write;

use retina_record::timing::align::Alignment;
use retina_record::timing::recording::RecordingTiming;
use serde::Serialize;

/// A frame as the user sees it. Times are Unix seconds to the microsecond; `capture_from` says
/// how the capture time was told (`none`: it could not be, and is left empty).
#[derive(Serialize)]
struct FrameRow<'a> {
    file: &'a str,
    frame: usize,
    pts_s: Micros,
    keyframe: bool,
    rtp: u32,
    recv_unix: Micros,
    capture_unix: Option<Micros>,
    capture_from: &'static str,
    latency_s: Option<Micros>,
    session: usize,
    sample_description: u32,
}

/// Seconds, rounded to the microsecond: written as the shortest decimal that reads back the
/// same (at most six decimals), in CSV and JSON alike.
struct Micros(f64);

impl Serialize for Micros {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((self.0 * 1e6).round() / 1e6)
    }
}

fn secs(nanos: i128) -> Micros {
    Micros(nanos as f64 / 1e9)
}

pub(super) fn rows(
    timing: &RecordingTiming,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let names: Vec<String> = timing
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let rows = timing.frames.iter().map(|f| FrameRow {
        file: &names[f.file],
        frame: f.index,
        pts_s: Micros(f.pts),
        keyframe: f.keyframe,
        rtp: f.rtp,
        recv_unix: secs(f.recv_unix_nanos),
        capture_unix: f.capture.map(|c| secs(c.0)),
        capture_from: f.capture.map_or("none", |c| c.1.name()),
        latency_s: f.latency().map(Micros),
        session: f.session,
        sample_description: f.sample_description,
    });
    emit(rows, json, out)
}

/// A frame of the first recording and its nearest in each other, flattened into columns
/// `a_frame,a_time_unix,b_frame,b_time_unix,b_minus_a_s,c_frame,…`.
pub(super) fn pairs(aligned: &Alignment, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let others = aligned.rows.first().map_or(0, |r| r.others.len());
    let letter = |i: usize| char::from(b'a' + i as u8);
    if json {
        for r in &aligned.rows {
            let mut o = serde_json::Map::new();
            o.insert("a_frame".into(), r.frame.into());
            o.insert("a_time_unix".into(), json_secs(r.time_unix_nanos));
            for (i, m) in r.others.iter().enumerate() {
                let l = letter(i + 1);
                o.insert(format!("{l}_frame"), m.map(|m| m.frame).into());
                o.insert(
                    format!("{l}_time_unix"),
                    json_secs(m.map(|m| m.time_unix_nanos)),
                );
                o.insert(
                    format!("{l}_minus_a_s"),
                    serde_json::to_value(m.map(|m| Micros(m.diff_s)))?,
                );
            }
            serde_json::to_writer(&mut *out, &o)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["a_frame".to_owned(), "a_time_unix".to_owned()];
    for i in 1..=others {
        let l = letter(i);
        header.extend([
            format!("{l}_frame"),
            format!("{l}_time_unix"),
            format!("{l}_minus_a_s"),
        ]);
    }
    w.write_record(&header)?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in &aligned.rows {
        let mut rec = vec![r.frame.to_string(), opt(r.time_unix_nanos.map(fmt_secs))];
        for m in &r.others {
            rec.push(opt(m.map(|m| m.frame.to_string())));
            rec.push(opt(m.map(|m| fmt_secs(m.time_unix_nanos))));
            rec.push(opt(m.map(|m| fmt_micros(m.diff_s))));
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

fn fmt_secs(nanos: i128) -> String {
    fmt_micros(nanos as f64 / 1e9)
}

fn fmt_micros(secs: f64) -> String {
    ((secs * 1e6).round() / 1e6).to_string()
}

fn json_secs(nanos: Option<i128>) -> serde_json::Value {
    serde_json::to_value(nanos.map(secs)).unwrap_or_default()
}

/// Writes `rows` as CSV with a header, or as JSON lines.
fn emit<T: Serialize>(
    rows: impl Iterator<Item = T>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if json {
        for r in rows {
            serde_json::to_writer(&mut *out, &r)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let mut w = csv::Writer::from_writer(out);
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}
