//! One row per frame (CSV with a header, or JSON lines), and one row per aligned frame, each
//! written as it is read. The columns are `docs/timing-output.md`'s.

use std::io::Write;

use retina_record::timing::align::Row;
use retina_record::timing::scan::Scan;
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

pub(super) fn rows(scan: &Scan, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let names: Vec<String> = scan
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let mut sink = if json {
        Sink::Json(out)
    } else {
        Sink::Csv(Box::new(csv::Writer::from_writer(out)))
    };
    for f in scan.frames() {
        let f = f?;
        let row = FrameRow {
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
        };
        match &mut sink {
            Sink::Csv(w) => w.serialize(row)?,
            Sink::Json(out) => json_line(&row, &mut **out)?,
        }
    }
    sink.finish()
}

/// Where rows go: a CSV writer (which writes the header with the first row), or JSON lines.
enum Sink<'w, W: Write> {
    Csv(Box<csv::Writer<&'w mut W>>),
    Json(&'w mut W),
}

impl<W: Write> Sink<'_, W> {
    /// Flushes what the CSV writer holds.
    fn finish(self) -> anyhow::Result<()> {
        if let Sink::Csv(mut w) = self {
            w.flush()?;
        }
        Ok(())
    }
}

fn json_line(value: &impl Serialize, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Aligned frames, flattened into columns `a_frame,a_time_unix,b_frame,b_time_unix,
/// b_minus_a_s,c_frame,…`: a letter per camera, the reference first.
pub(super) struct Pairs<'w, W: Write> {
    sink: Sink<'w, W>,
}

fn letter(i: usize) -> char {
    char::from(b'a' + (i % 26) as u8)
}

impl<'w, W: Write> Pairs<'w, W> {
    pub(super) fn new(cameras: usize, json: bool, out: &'w mut W) -> anyhow::Result<Self> {
        if json {
            return Ok(Pairs {
                sink: Sink::Json(out),
            });
        }
        let mut w = csv::Writer::from_writer(out);
        let mut header = vec!["a_frame".to_owned(), "a_time_unix".to_owned()];
        for i in 1..cameras {
            let l = letter(i);
            header.extend([
                format!("{l}_frame"),
                format!("{l}_time_unix"),
                format!("{l}_minus_a_s"),
            ]);
        }
        w.write_record(&header)?;
        Ok(Pairs {
            sink: Sink::Csv(Box::new(w)),
        })
    }

    pub(super) fn row(&mut self, r: &Row) -> anyhow::Result<()> {
        let w = match &mut self.sink {
            Sink::Csv(w) => w,
            Sink::Json(out) => {
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
                return json_line(&o, &mut **out);
            }
        };
        let opt = |v: Option<String>| v.unwrap_or_default();
        let mut rec = vec![r.frame.to_string(), opt(r.time_unix_nanos.map(fmt_secs))];
        for m in &r.others {
            rec.push(opt(m.map(|m| m.frame.to_string())));
            rec.push(opt(m.map(|m| fmt_secs(m.time_unix_nanos))));
            rec.push(opt(m.map(|m| fmt_micros(m.diff_s))));
        }
        w.write_record(&rec)?;
        Ok(())
    }

    pub(super) fn finish(self) -> anyhow::Result<()> {
        self.sink.finish()
    }
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
