//! The timing drawn: latency over time (top) and how far each sender report lies off the clock
//! fit (bottom), one colour per file, as an SVG (plotters' SVG backend: no system libraries).

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;
use retina_record::timing::recording::RecordingTiming;

const SIZE: (u32, u32) = (1200, 800);

/// A series per file: (seconds into the recording, value).
type Series = Vec<Vec<(f64, f64)>>;

pub(super) fn draw(timing: &RecordingTiming, path: &Path) -> anyhow::Result<()> {
    let (latency, residuals) = series(timing);
    let names: Vec<String> = timing
        .files()
        .iter()
        .map(|f| {
            f.path.file_name().map_or_else(
                || f.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    panel(&top, "latency (receive − capture)", "ms", &latency, &names)?;
    panel(
        &bottom,
        "sender reports off the clock fit",
        "µs",
        &residuals,
        &names,
    )?;
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Latency (ms) at each frame's receive time, and each report's residual (µs) at its time,
/// in seconds since the first frame was received.
fn series(timing: &RecordingTiming) -> (Series, Series) {
    let n = timing.files().len();
    let start = timing
        .frames
        .iter()
        .map(|f| f.recv_unix_nanos)
        .min()
        .unwrap_or(0);
    let since = |nanos: i128| (nanos - start) as f64 / 1e9;
    let mut latency = vec![Vec::new(); n];
    for f in &timing.frames {
        if let Some(l) = f.latency() {
            latency[f.file].push((since(f.recv_unix_nanos), l * 1e3));
        }
    }
    let mut residuals = vec![Vec::new(); n];
    for (k, s) in timing.sessions().iter().enumerate() {
        let Some(fit) = &s.fit else { continue };
        // A session's reports are drawn in the colour of the file its first frame is in.
        let file = timing
            .frames
            .iter()
            .find(|f| f.session == k)
            .map_or(0, |f| f.file);
        for (rtp, r) in fit.residuals() {
            let (at, _) = fit.capture(rtp);
            residuals[file].push((since(at), r * 1e6));
        }
    }
    (latency, residuals)
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    series: &Series,
    names: &[String],
) -> anyhow::Result<()> {
    let points = series.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (0.0_f64, 1.0_f64, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if y0 > y1 {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the recording")
        .y_desc(unit)
        .draw()
        .map_err(plot_error)?;
    for (i, s) in series.iter().enumerate() {
        if s.is_empty() {
            continue;
        }
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(s.iter().map(|&p| Circle::new(p, 2, colour.filled())))
            .map_err(plot_error)?
            .label(names.get(i).map_or("", String::as_str))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, colour.filled()));
    }
    if names.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
    }
    Ok(())
}

/// plotters' errors borrow the backend; ours is a line of text.
fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {e}")
}
