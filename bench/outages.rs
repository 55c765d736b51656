//! A long recording through outages: the project's camera (in-process, logging every frame it
//! sends) has its connections dropped every few minutes while the release recorder records it
//! in segments; afterwards, every file is read back and compared with the camera's log.
//!
//! ```sh
//! cargo build --release --bin retina-record
//! cargo run --release --example outages -- 30 180    # minutes, seconds between drops
//! ```
//!
//! Prints, per session: frames the camera sent, frames recorded, frames missing between the
//! session's first and last recorded frame (must be 0: loss outside the outages), frames lost
//! at its start (before the first keyframe) and at its end (in flight when it dropped); per
//! outage, the gap on the file's timeline against the gap by the receive clock; and the
//! recorder's CPU time and peak RSS.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use retina_record::camera::{Camera, CameraConfig, Clip, SentFrame};
use retina_record::mp4::read::{Recording, TimedSample};
use retina_record::timing::sessions::of_file as sessions;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let minutes: f64 = args.get(1).map_or(Ok(30.0), |a| a.parse())?;
    let every: f64 = args.get(2).map_or(Ok(180.0), |a| a.parse())?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = Clip::from_file(&root.join("clips/h264_aac.mp4"))?;
    let mut config = CameraConfig::new(vec![clip]);
    config.keep_log = true;
    let cam = Camera::start(config).await?;
    let dir = tempfile::tempdir()?;
    let template = dir.path().join("%H%M%S.mp4");
    let mut recorder = tokio::process::Command::new(root.join("target/release/retina-record"))
        .args(["--url", &cam.url(), "--segment-duration", "10m"])
        .arg(&template)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(dir.path().join("recorder.log"))?)
        .spawn()?;
    let started = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let mut drops = 0;
    while started.elapsed() + Duration::from_secs_f64(every) < total {
        tokio::time::sleep(Duration::from_secs_f64(every)).await;
        cam.drop_connections();
        drops += 1;
        eprintln!(
            "{:>6.0} s: dropped the camera's connections",
            started.elapsed().as_secs_f64()
        );
    }
    tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
    let pid = recorder.id().unwrap_or(0) as i32;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = recorder.wait().await?;
    // SAFETY: getrusage(2) fills in the struct it is given; the recorder is the only child.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let log = std::fs::read_to_string(dir.path().join("recorder.log"))?;

    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    files.sort();
    let mut timing: Vec<TimedSample> = Vec::new();
    for f in &files {
        timing.extend(Recording::open(f)?.video_timing()?);
    }
    let sent = cam.log();
    let video: Vec<&SentFrame> = sent.frames.iter().filter(|f| f.stream == 0).collect();
    let sent_sessions = video.iter().map(|f| f.session).max().map_or(0, |s| s + 1);
    println!(
        "{minutes} min, connections dropped every {every} s ({drops} drops); {} files; recorder \
         exit {status}; {} log lines",
        files.len(),
        log.lines().count()
    );
    println!("session  sent  recorded  missing-inside  lost-at-start  lost-at-end");
    let parts = sessions(&timing);
    anyhow::ensure!(
        parts.len() == sent_sessions,
        "{} recorded sessions, {sent_sessions} sent",
        parts.len()
    );
    let inside_total = session_table(&parts, &video)?;
    outage_table(&parts);
    println!(
        "frames missing outside outages: {inside_total}; recorder CPU {:.2} s (user {:.2} + sys \
         {:.2}), peak RSS {:.1} MiB",
        secs(usage.ru_utime) + secs(usage.ru_stime),
        secs(usage.ru_utime),
        secs(usage.ru_stime),
        usage.ru_maxrss as f64 / 1024.0
    );
    Ok(())
}

/// One row per session: frames sent, recorded, missing inside it and lost at its ends; the
/// frames missing inside sessions, in all.
fn session_table(parts: &[&[TimedSample]], video: &[&SentFrame]) -> anyhow::Result<usize> {
    let mut inside_total = 0;
    for (s, part) in parts.iter().enumerate() {
        let cam_frames: Vec<&&SentFrame> = video.iter().filter(|f| f.session == s).collect();
        let idx: Vec<usize> = part
            .iter()
            .map(|t| {
                let rtp = t.frame().map(|f| f.rtp);
                cam_frames.iter().position(|f| Some(f.rtp) == rtp)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("session {s}: a frame the camera did not send"))?;
        anyhow::ensure!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "session {s}: out of order"
        );
        let (lo, hi) = (idx[0], idx[idx.len() - 1]);
        let inside = (hi - lo + 1) - idx.len();
        inside_total += inside;
        println!(
            "{s:>7}  {:>4}  {:>8}  {:>14}  {:>13}  {:>11}",
            cam_frames.len(),
            idx.len(),
            inside,
            lo,
            cam_frames.len() - 1 - hi
        );
    }
    Ok(inside_total)
}

/// One row per outage: the gap it left on the file's timeline and by the receive clock.
fn outage_table(parts: &[&[TimedSample]]) {
    let ends: Vec<(Option<&TimedSample>, Option<&TimedSample>)> =
        parts.iter().map(|p| (p.first(), p.last())).collect();
    println!("outage  file-gap-s  recv-gap-s");
    let rate = 90_000.0;
    for (n, w) in ends.windows(2).enumerate() {
        let (Some(end), Some(next)) = (w[0].1, w[1].0) else {
            continue;
        };
        let end_pts = (end.sample.pts() + i64::from(end.sample.duration)) as f64 / rate;
        let file_gap = next.sample.pts() as f64 / rate - end_pts;
        let recv = |t: &TimedSample| t.frame().map_or(0, |f| f.recv) as f64 / 4_294_967_296.0;
        println!(
            "{:>6}  {:>10.3}  {:>10.3}",
            n + 1,
            file_gap,
            recv(next) - recv(end)
        );
    }
}
