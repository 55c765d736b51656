//! The recording's files: segments cut at keyframes on wall-clock boundaries, names from
//! templates (never overwriting), the hook told of each finished file, and retention deleting
//! only what it owns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use retina_record::camera::{SentFrame, SentReport};
use retina_record::mp4::read::{Recording, TimedSample};
use retina_record::ntp;
use retina_record::sei::{SenderReport, TimingMessage};

use crate::support::{self, Recorder, Rig, config};

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Seconds since the Unix epoch of an NTP-format time.
fn unix_secs(ntp: u64) -> f64 {
    ntp::to_unix(ntp) as f64 / 1e9
}

/// The sender reports in a frame's timing messages.
fn reports(t: &TimedSample) -> Vec<SenderReport> {
    t.messages
        .iter()
        .filter_map(|m| match m {
            TimingMessage::SenderReport(sr) => Some(*sr),
            TimingMessage::Frame(_) => None,
        })
        .collect()
}

/// One finished segment, read back.
struct Segment {
    path: PathBuf,
    rec: Recording,
    timing: Vec<TimedSample>,
}

/// The files of a segmented recording, checked against what the camera sent (one session):
/// every video frame from the first recorded to the last is in exactly one file, in order;
/// each file starts with a keyframe received at or after the boundary that ended the file
/// before it (whose keyframes all came before it); each later file's first frame has the
/// latest video sender report, and otherwise reports are where the camera sent them; video
/// and audio decode times run on from file to file without a gap or an overlap.
fn check_segments(segments: &[Segment], every: f64, frames: &[&SentFrame], srs: &[&SentReport]) {
    let boundary_after = |recv: u64| ((unix_secs(recv) / every).floor() + 1.0) * every;
    let mut next_idx = None;
    let mut ends = None;
    for (i, seg) in segments.iter().enumerate() {
        let name = seg.path.display();
        let first = &seg.timing[0];
        assert!(first.sample.is_sync, "{name} starts with a keyframe");
        let first_recv = first.frame().expect("89H").recv;
        if let Some(end) = ends {
            assert!(
                unix_secs(first_recv) >= end,
                "{name} starts at {} s, before the boundary at {end} s",
                unix_secs(first_recv)
            );
        }
        let end = boundary_after(first_recv);
        for t in &seg.timing {
            let f = t.frame().expect("one 89H per frame");
            if t.sample.is_sync {
                assert!(unix_secs(f.recv) < end, "{name}: a keyframe past its end");
            }
            let idx = frames
                .iter()
                .position(|s| s.rtp == f.rtp)
                .unwrap_or_else(|| panic!("{name}: rtp {} was never sent", f.rtp));
            if let Some(next) = next_idx {
                assert_eq!(idx, next, "{name}: frames in order, none lost or repeated");
            }
            next_idx = Some(idx + 1);
            let fresh: Vec<(u32, u64)> = srs
                .iter()
                .filter(|r| r.after_video_frames == idx)
                .map(|r| (r.rtp, r.ntp))
                .collect();
            let expected = if i > 0 && std::ptr::eq(t, first) && fresh.is_empty() {
                let latest = srs
                    .iter()
                    .rfind(|r| r.after_video_frames <= idx)
                    .expect("a sender report before the cut");
                vec![(latest.rtp, latest.ntp)]
            } else {
                fresh
            };
            let got: Vec<(u32, u64)> = reports(t).iter().map(|r| (r.rtp, r.ntp)).collect();
            assert_eq!(
                got, expected,
                "{name}: sender reports of frame rtp {}",
                f.rtp
            );
        }
        ends = Some(end);
    }
    for pair in segments.windows(2) {
        for (a, b) in pair[0].rec.tracks.iter().zip(&pair[1].rec.tracks) {
            let last = pair[0]
                .rec
                .track_samples(a.track_id)
                .last()
                .expect("sample");
            let next = pair[1]
                .rec
                .track_samples(b.track_id)
                .next()
                .expect("sample");
            assert_eq!(
                last.dts + u64::from(last.duration),
                next.dts,
                "track {} runs on from {} to {}",
                a.track_id,
                pair[0].path.display(),
                pair[1].path.display()
            );
        }
    }
}

/// What a hook saw: its environment, as `env` printed it.
fn hook_env(file: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("{}.env", file.display()))
        .unwrap_or_else(|e| panic!("no hook ran for {}: {e}", file.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// 60 s in segments of 10 s, with a hook: `--segment-duration`'s whole contract, and the
/// hook's environment (the camera's password is not in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_of_10s_over_a_minute_lose_and_repeat_nothing() {
    let mut camera = config("h264_aac.mp4");
    camera.credentials = Some(("admin".into(), "horse-staple".into()));
    let rig = Rig::new(camera).await;
    let template = rig.dir.path().join("front/%Y-%m-%d/%H%M%S.mp4");
    let url = rig.cam.url();
    let args = [
        "--url",
        &url,
        "--segment-duration",
        "10s",
        "--on-segment-complete",
        r#"env > "$RETINA_RECORD_FILE.env""#,
        template.to_str().expect("utf-8"),
    ];
    let env = [
        ("RTSP_USERNAME", "admin"),
        ("RTSP_PASSWORD", "horse-staple"),
    ];
    let rec = Recorder::spawn_with_env(rig.dir.path(), &args, &env);
    rig.cam.wait_sent(60.0).await;
    rec.signal(libc::SIGTERM);
    let run = rec.wait().await;
    run.assert_success();
    assert!(files_under(rig.dir.path(), ".partial").is_empty());
    let paths = files_under(rig.dir.path(), ".mp4");
    // 60 s cross 6 boundaries; the first and last files are partial ones.
    assert!((6..=7).contains(&paths.len()), "{paths:?}");
    let mut segments: Vec<Segment> = paths
        .into_iter()
        .map(|path| {
            let rec = Recording::open(&path).expect("a segment reads");
            assert!(
                rec.mfra.is_some() && !rec.truncated,
                "{} finished",
                path.display()
            );
            let timing = rec.video_timing().expect("timing");
            Segment { path, rec, timing }
        })
        .collect();
    segments.sort_by_key(|s| s.timing[0].frame().map(|f| f.recv));
    let log = rig.cam.log();
    let frames: Vec<&SentFrame> = log.frames.iter().filter(|f| f.stream == 0).collect();
    let srs: Vec<&SentReport> = log.reports.iter().filter(|r| r.stream == 0).collect();
    check_segments(&segments, 10.0, &frames, &srs);
    let total: usize = segments.iter().map(|s| s.timing.len()).sum();
    assert!(total as f64 > 58.0 * 25.0, "{total} frames");
    for seg in &segments[1..segments.len() - 1] {
        // The timeline runs on across files: a file's media is from its first sample's time.
        let video = seg.rec.video_track().expect("video");
        let start = seg.rec.track_samples(video.track_id).map(|s| s.dts).min();
        let start = start.expect("samples") as f64 / f64::from(video.timescale);
        let secs = seg.rec.track_duration_secs(video) - start;
        assert!(
            (9.0..=11.0).contains(&secs),
            "{}: {secs} s",
            seg.path.display()
        );
    }
    for seg in &segments {
        let decoded = support::ffmpeg_decoded_video_frames(&seg.path).expect("ffmpeg");
        assert_eq!(decoded as usize, seg.timing.len(), "{}", seg.path.display());
        support::ffmpeg_audio(&seg.path).expect("ffmpeg decodes the audio");
        // The hook ran once per file, after it was finished, and was told about it.
        let env = hook_env(&seg.path);
        let abs = std::path::absolute(&seg.path).expect("absolute");
        assert_eq!(env["RETINA_RECORD_FILE"], abs.to_string_lossy());
        assert!(env.contains_key("RETINA_RECORD_CAMERA"), "{env:?}");
        let when = |k: &str| -> f64 {
            let t: jiff::Timestamp = env[k].parse().expect("RFC 3339");
            t.as_millisecond() as f64 / 1e3
        };
        let first = unix_secs(seg.timing[0].frame().expect("89H").recv);
        let last = seg
            .timing
            .iter()
            .map(|t| t.frame().expect("89H").recv)
            .max();
        assert!(
            (when("RETINA_RECORD_START") - first).abs() < 0.002,
            "{env:?}"
        );
        assert!((when("RETINA_RECORD_END") - unix_secs(last.expect("frames"))).abs() < 0.002);
        let dump = std::fs::read_to_string(format!("{}.env", seg.path.display())).expect("env");
        assert!(
            !dump.contains("horse-staple"),
            "the password reached the hook"
        );
        assert!(!env.contains_key("RTSP_PASSWORD") && !env.contains_key("RTSP_USERNAME"));
    }
    assert!(!run.stderr.contains("horse-staple"));
    assert!(run.stderr.lines().count() < 20, "quiet: {}", run.stderr);
}

/// A template's name that is taken gets a suffix, never an overwrite; its directories are
/// created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_names_get_a_suffix_and_nothing_is_overwritten() {
    let rig = Rig::clip("h264_aac.mp4").await;
    // One name a day: every segment's name is taken by the one before.
    let template = rig.dir.path().join("new/dir/cam-%Y%m%d.mp4");
    let today = jiff::Zoned::now().strftime("%Y%m%d").to_string();
    let existing = rig.dir.path().join(format!("new/dir/cam-{today}.mp4"));
    std::fs::create_dir_all(existing.parent().expect("dir")).expect("mkdir");
    std::fs::write(&existing, b"someone else's").expect("write");
    let rec = rig.spawn_to(&template, &["--segment-duration", "1s"]);
    rig.cam.wait_sent(3.5).await;
    rec.signal(libc::SIGINT);
    rec.wait().await.assert_success();
    assert_eq!(std::fs::read(&existing).expect("kept"), b"someone else's");
    let files = files_under(rig.dir.path(), ".mp4");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 4, "{names:?}");
    // Sorted, `-` before `.`: cam-DATE-1.mp4 … cam-DATE-9.mp4, then the one that was there.
    let n = names.len() - 1;
    assert!(n < 10);
    let mut expected: Vec<String> = (1..=n).map(|i| format!("cam-{today}-{i}.mp4")).collect();
    expected.push(format!("cam-{today}.mp4"));
    assert_eq!(names, expected);
    for file in &files[..n] {
        let timing = Recording::open(file).expect("a recording").video_timing();
        assert!(timing.expect("timing")[0].sample.is_sync);
    }
}

/// Sets a file's modification time `age` in the past, making its directories.
fn write_aged(path: &Path, bytes: &[u8], age: Duration) {
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::now() - age).expect("mtime");
}

/// `--keep-for` deletes this recording's old finished files (and their emptied directories),
/// at start and after each file; nothing else: not another camera's, not a `.partial`, not
/// another file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_what_it_owns() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let dir = rig.dir.path();
    let day = Duration::from_secs(86_400);
    let old = day * 30;
    let own_old = dir.join("cams/back/2026-10-01/101010.mp4");
    let own_suffixed = dir.join("cams/back/2026-10-02/101010-1.mp4");
    let own_recent = dir.join("cams/back/2026-11-20/101010.mp4");
    let kept = [
        dir.join("cams/back/2026-10-01/101011.mp4.partial"),
        dir.join("cams/back/2026-10-01/notes.txt"),
        dir.join("cams/back/2026-10-01/1010.mp4"),
        dir.join("cams/back/keep/101010.mp4"),
        dir.join("cams/front/2026-10-01/101010.mp4"),
    ];
    for path in [&own_old, &own_suffixed].into_iter().chain(&kept) {
        write_aged(path, b"old", old);
    }
    write_aged(&own_recent, b"recent", day * 2);
    let template = dir.join("cams/back/%Y-%m-%d/%H%M%S.mp4");
    let url = rig.cam.url();
    let run = support::record(
        dir,
        &[
            "--url",
            &url,
            "--duration",
            "3",
            "--keep-for",
            "7d",
            template.to_str().expect("utf-8"),
        ],
    )
    .await;
    run.assert_success();
    assert!(!own_old.exists() && !own_suffixed.exists());
    assert!(
        !dir.join("cams/back/2026-10-02").exists(),
        "emptied dir went"
    );
    assert!(own_recent.exists());
    for path in &kept {
        assert!(path.exists(), "{} was deleted", path.display());
    }
    run.assert_says("(--keep-for)");
    // The new recording is there, finished.
    let new: Vec<PathBuf> = files_under(&dir.join("cams/back"), ".mp4")
        .into_iter()
        .filter(|p| p != &own_recent && !kept.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    rig.checked(&new[0], "the new recording");
}

/// `--keep-size` deletes the oldest of this recording's files while they take more than the
/// size, but never the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_size_deletes_the_oldest_first() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let dir = rig.dir.path();
    let template = dir.join("rec/%H%M%S.mp4");
    let rec = rig.spawn_to(
        &template,
        &[
            "--segment-duration",
            "1s",
            "--keep-size",
            "150K",
            "--on-segment-complete",
            r#"echo "$RETINA_RECORD_FILE" >> finished.txt"#,
        ],
    );
    rig.cam.wait_sent(6.5).await;
    rec.signal(libc::SIGINT);
    let run = rec.wait().await;
    run.assert_success();
    // The hooks ran in order of finishing (each is quick, the files a second apart).
    let finished: Vec<PathBuf> = std::fs::read_to_string(dir.join("finished.txt"))
        .expect("hooks ran")
        .lines()
        .map(PathBuf::from)
        .collect();
    let left = files_under(&dir.join("rec"), ".mp4");
    assert!(finished.len() >= 5, "{finished:?}");
    let total: u64 = left
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .sum();
    assert!(
        total <= 150 * 1024 || left.len() == 1,
        "{total} bytes left in {left:?}"
    );
    // What is left is the newest files, the latest among them; what went, the oldest.
    let kept_from = finished.len() - left.len();
    let mut newest: Vec<PathBuf> = finished[kept_from..].to_vec();
    newest.sort();
    assert_eq!(left, newest, "deleted oldest first: {finished:?}");
    let deleted = run.stderr.matches("(--keep-size)").count();
    assert_eq!(deleted, kept_from, "{}", run.stderr);
    for path in &left {
        assert!(Recording::open(path).expect("reads").mfra.is_some());
    }
}
