//! `retina-record demo`: the built-in camera, recorded for 10 s through the normal recording
//! path (the very code `--url` runs, configured in code), then a summary of what was written
//! and how to look at it.

use std::path::PathBuf;
use std::time::Duration;

use retina_record::camera::{BuiltinAudio, Camera, CameraConfig, Clip};
use retina_record::codec::VideoCodec;
use retina_record::config::RecorderConfig;
use retina_record::error::{Error, Result};
use retina_record::mp4::read::Recording;
use retina_record::recorder::{self, Outcome};
use retina_record::source::Source;
use retina_record::stop::Stop;

use crate::cli::DemoArgs;

const DEMO_DURATION: Duration = Duration::from_secs(10);

pub(crate) async fn run(args: &DemoArgs, stop: Stop) -> Result<()> {
    let cam = Camera::start(CameraConfig::new(vec![Clip::builtin(
        VideoCodec::H264,
        BuiltinAudio::Aac,
    )?]))
    .await?;
    let out = args.out.clone().unwrap_or_else(|| {
        let now = jiff::Zoned::now();
        PathBuf::from(format!("demo-{}.mp4", now.strftime("%Y%m%d_%H%M%S")))
    });
    let url = cam.url();
    let mut config = RecorderConfig::new(Source::from_url(
        url::Url::parse(&url).map_err(|e| Error::failure(anyhow::anyhow!("{url}: {e}")))?,
    ));
    config.out = Some(out);
    config.duration = Some(DEMO_DURATION);
    println!(
        "Recording {} s from the built-in camera at {url} ...",
        DEMO_DURATION.as_secs()
    );
    match recorder::record(config, stop).await? {
        Some(outcome) => summarize(&outcome).map_err(Error::failure),
        None => Ok(()),
    }
}

/// What was written, and the commands to look at it.
fn summarize(outcome: &Outcome) -> anyhow::Result<()> {
    let rec = Recording::open(&outcome.path)?;
    let timing = rec.video_timing()?;
    let timed = timing
        .iter()
        .filter(|t| t.frames().next().is_some())
        .count();
    let size = std::fs::metadata(&outcome.path)?.len();
    let s = &outcome.stats;
    let path = outcome.path.display();
    println!(
        "\nWrote {path}: {:.1} s, {} video frames ({} with timing data), {} audio frames, \
         {} sender reports, {} fragments, {:.1} KiB.",
        s.duration_secs,
        s.video_frames,
        timed,
        s.audio_frames,
        s.sender_reports,
        s.fragments,
        size as f64 / 1024.0
    );
    if let Some(f) = timing.first().and_then(|t| t.frames().next()) {
        println!(
            "First frame: RTP time {}, received {} (NTP {}).",
            f.rtp,
            retina::NtpTimestamp(f.recv),
            f.recv
        );
    }
    println!(
        "\nLook at it:\n  \
         ffprobe -hide_banner {path}\n  \
         ffmpeg -v error -i {path} -f null -            # decodes every frame; prints nothing\n  \
         ffmpeg -v quiet -i {path} -map 0:v:0 -c copy -bsf:v h264_mp4toannexb -f h264 - \\\n    \
         | grep -a -o 'strawlab.org/[0-9A-Za-z]*{{[^}}]*}}' | head   # the timing data"
    );
    Ok(())
}
