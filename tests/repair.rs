//! `retina-record repair` (issue 27): a killed recording's `.partial` finished as a clean stop
//! would have (durations, index, its name), every synced frame kept; a `.partial` cut at every
//! byte of its last two fragments repaired to its last whole fragment, a torn one said; what
//! is not ours, or is being written, refused in one line and left as it was.

use std::path::Path;
use std::time::Duration;

use retina_record::mp4::read::Recording;
use retina_record::output::repair;

use crate::support::check::decoded_and_played;
use crate::support::lines::output;
use crate::support::rig::{Recorder, Rig, only_error, recorder_command};
use crate::support::timing::rows;

/// A recording killed (SIGKILL) after 4 s of media, as `dir/rec.mp4.partial`.
async fn killed(rig: &Rig) -> std::path::PathBuf {
    rig.record_until_sent(4.0, libc::SIGKILL).await;
    let partial = rig.partial();
    assert!(partial.exists(), "SIGKILL leaves the .partial");
    partial
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recording_is_finished_keeping_every_synced_frame() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let partial = killed(&rig).await;
    let before = Recording::open(&partial).expect("the .partial reads");
    let frames = before.video_timing().expect("timing").len();
    assert!(frames >= 75, "{frames} frames synced before the kill");
    let d = rig.dir.path();
    let run = output(recorder_command(&["repair", "rec.mp4.partial"]).current_dir(d)).await;
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains(&format!("({frames} frames")), "{said}");
    assert!(!partial.exists() && rig.out.exists(), "renamed to rec.mp4");
    let after = Recording::open(&rig.out).expect("the repaired file reads");
    assert!(after.mfra.is_some(), "indexed");
    assert!(after.mvhd.duration > 0, "its duration written");
    assert_eq!(
        after.video_timing().expect("timing").len(),
        frames,
        "every frame kept"
    );
    decoded_and_played(&rig.out, frames);
    assert_eq!(
        rows(d, &["rec.mp4"]).await.len(),
        frames,
        "timing reads every frame"
    );
    // Recording to the same name again is refused while the .partial was there; now it is
    // taken by the repaired file, and a second repair has nothing to do.
    let again = output(recorder_command(&["repair", "rec.mp4.partial"]).current_dir(d)).await;
    assert!(!again.status.success());
}

/// Cut at every byte of its last two fragments, a `.partial` repairs to its last whole
/// fragment (never fewer frames for a longer file, a torn end said); some of the cuts are
/// repaired for real and decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_cut_at_every_byte_of_its_last_two_fragments_repairs() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let partial = killed(&rig).await;
    let bytes = std::fs::read(&partial).expect("read");
    // Where each fragment starts: its prft (the box before its moof).
    let moofs: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"prft")
        .map(|(i, _)| i - 4)
        .collect();
    assert!(moofs.len() >= 3, "fragments: {}", moofs.len());
    let from = moofs[moofs.len() - 2];
    let d = rig.dir.path();
    let cut = d.join("cut.mp4.partial");
    std::fs::write(&cut, &bytes).expect("write");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .expect("open");
    let mut last = usize::MAX;
    for len in (from..=bytes.len()).rev() {
        file.set_len(len as u64).expect("truncate");
        let r = repair::repair(&cut, true).unwrap_or_else(|e| panic!("cut at {len}: {e:#}"));
        let frames = r.frames as usize;
        assert!(
            frames <= last,
            "cut at {len}: {frames} frames, {last} when longer"
        );
        let at_boundary = moofs.contains(&len) || len == bytes.len();
        assert_eq!(r.dropped_bytes == 0, at_boundary, "cut at {len}: torn said");
        last = frames;
    }
    drop(file);
    // A power cut keeps what was synced: the recorder syncs after every fragment, so the file
    // ends at a fragment's end (this kernel has no device-mapper for dm-flakey). At every such
    // point, and at eight cuts inside the last two fragments, a real repair keeps every frame
    // of the whole fragments and decodes clean.
    let whole = Recording::open(&partial).expect("read");
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for &at in moofs.iter().skip(1) {
        cuts.push((at, frames_before(&whole, at as u64)));
    }
    let step = ((bytes.len() - from) / 8).max(1);
    for len in (from..bytes.len()).step_by(step) {
        let whole_before = moofs
            .iter()
            .rev()
            .find(|&&m| m <= len)
            .copied()
            .unwrap_or(0);
        cuts.push((len, frames_before(&whole, whole_before as u64)));
    }
    for (i, (len, frames)) in cuts.into_iter().enumerate() {
        let name = format!("cut{i}.mp4");
        let path = d.join(format!("{name}.partial"));
        std::fs::write(&path, &bytes[..len]).expect("write");
        let r = repair::repair(&path, false).expect("repair");
        assert_eq!(
            r.frames as usize, frames,
            "cut at {len}: every synced frame kept"
        );
        decoded_and_played(&d.join(&name), frames);
        assert_eq!(
            timed_frames(&d.join(&name)),
            frames,
            "cut at {len}: timing reads them"
        );
    }
}

/// The frames `timing` reads from `path`.
fn timed_frames(path: &Path) -> usize {
    let scan = retina_record::timing::scan::scan(&[path.to_owned()]).expect("timing reads it");
    scan.frames().filter(Result::is_ok).count()
}

/// Video frames of `rec` in fragments that end by `at` (a fragment's start).
fn frames_before(rec: &Recording, at: u64) -> usize {
    let video = rec.video_track().expect("video").track_id;
    rec.track_samples(video).filter(|s| s.offset < at).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_ours_or_is_being_written_is_left_as_it_was() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let d = rig.dir.path();
    // Not an MP4; an MP4 that ffmpeg fragmented; a recording being written.
    std::fs::write(d.join("junk.mp4.partial"), vec![7u8; 50_000]).expect("write");
    let clip = concat!(env!("CARGO_MANIFEST_DIR"), "/clips/h264_aac.mp4");
    std::fs::copy(clip, d.join("theirs.mp4.partial")).expect("copy");
    let live = Recorder::spawn(d, &["--url", &rig.cam.url(), "live.mp4"]);
    rig.cam.wait_sent(2.0).await;
    for (name, says) in [
        ("junk.mp4.partial", "not a retina-record 0.3+ recording"),
        ("theirs.mp4.partial", "not a retina-record 0.3+ recording"),
        ("live.mp4.partial", "being written by a running recorder"),
    ] {
        let path = d.join(name);
        let before = std::fs::read(&path).expect("read");
        let run = output(recorder_command(&["repair", name]).current_dir(d)).await;
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        only_error(&stderr);
        if name != "live.mp4.partial" {
            assert_eq!(
                std::fs::read(&path).expect("read"),
                before,
                "{name} untouched"
            );
        }
    }
    live.signal(libc::SIGINT);
    live.wait_within(Duration::from_secs(10))
        .await
        .assert_success();
    assert!(
        Path::new(&d.join("live.mp4")).exists(),
        "the live recording finished itself"
    );
    // A plain OUT whose .partial is there says how to finish it.
    std::fs::copy(d.join("junk.mp4.partial"), d.join("rec.mp4.partial")).expect("copy");
    let run = rig.record(&["--duration", "1"]).await;
    assert!(
        run.error_exit(1).contains("retina-record repair"),
        "{}",
        run.stderr
    );
}

/// A templated recording killed and started again: its leftover is finished at the start,
/// named, given to the hook once (`RETINA_RECORD_RECOVERED=1`); a second recorder on the same
/// directory leaves the first one's live `.partial` alone, and its `--keep-size` counts that
/// file but never deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_template_recording_is_recovered_at_the_next_start() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let d = rig.dir.path();
    let url = rig.cam.url();
    let hook = r#"echo "$RETINA_RECORD_FILE ${RETINA_RECORD_RECOVERED:-0}" >> hooks.txt"#;
    let args = |extra: &[&'static str]| {
        let mut a = vec!["--url", url.as_str(), "--segment-duration", "1h"];
        a.extend_from_slice(extra);
        a.extend(["--on-segment-complete", hook, "rec/%H%M%S.mp4"]);
        a
    };
    let first = Recorder::spawn(d, &args(&[]));
    rig.cam.wait_sent(3.0).await;
    first.signal(libc::SIGKILL);
    first.wait().await;
    let leftover = only_file(&d.join("rec"));
    assert!(
        leftover.to_string_lossy().ends_with(".partial"),
        "{}",
        leftover.display()
    );
    let frames = Recording::open(&leftover)
        .expect("read")
        .video_timing()
        .expect("t")
        .len();
    let again = Recorder::spawn(d, &args(&["--duration", "2"]));
    let run = again.wait_within(Duration::from_secs(20)).await;
    run.assert_success();
    run.assert_says("recovered");
    let recovered =
        std::path::PathBuf::from(leftover.to_string_lossy().trim_end_matches(".partial"));
    assert!(
        recovered.exists() && !leftover.exists(),
        "finished and named"
    );
    decoded_and_played(&recovered, frames);
    let hooks = std::fs::read_to_string(d.join("hooks.txt")).expect("the hook ran");
    let name = recovered
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let told: Vec<&str> = hooks.lines().filter(|l| l.contains(&name)).collect();
    assert_eq!(told.len(), 1, "once: {hooks}");
    assert!(told[0].ends_with(" 1"), "as recovered: {hooks}");
    assert_eq!(
        hooks.lines().filter(|l| l.ends_with(" 0")).count(),
        1,
        "{hooks}"
    );

    // Two recorders on one directory: the second never touches the first's live file.
    let live = Recorder::spawn(d, &args(&[]));
    rig.cam.wait_sent(rig.cam.sent_secs() + 2.0).await;
    let partial = only_partial(&d.join("rec"));
    let second = Recorder::spawn(d, &args(&["--duration", "2", "--keep-size", "1k"]));
    let swept = second.wait_within(Duration::from_secs(20)).await;
    swept.assert_success();
    assert!(partial.exists(), "the live .partial is left alone");
    // Retention counts what was recovered like any recording: under 1 KiB kept, it goes.
    assert!(
        !recovered.exists(),
        "the recovered file is counted by --keep-size"
    );
    swept.assert_says("deleted");
    live.signal(libc::SIGINT);
    live.wait_within(Duration::from_secs(10))
        .await
        .assert_success();
    let finished = std::path::PathBuf::from(partial.to_string_lossy().trim_end_matches(".partial"));
    assert!(
        finished.exists(),
        "the first recorder finished its own file"
    );
}

/// The one file in `dir`.
fn only_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// The one `.partial` in `dir`.
fn only_partial(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// SIGKILL at 20 times drawn at random (seeded), recording 3-s segments: every `.partial` left
/// repairs (or, killed before its first whole fragment, is refused as holding none) to a file
/// that keeps every frame the `.partial` held, is indexed, and decodes clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_twenty_random_times_leaves_only_repairable_files() {
    let rig = Rig::clip("h264_aac.mp4").await;
    let d = rig.dir.path();
    let url = rig.cam.url();
    let mut seed: u64 = 0x5DEE_CE66_D1CE_4E5B;
    let mut repaired = 0;
    for trial in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = 1.3 + (seed % 4000) as f64 / 1000.0;
        let out = format!("t{trial}/%H%M%S.mp4");
        let rec = Recorder::spawn(d, &["--url", &url, "--segment-duration", "3s", &out]);
        // Each recorder is the camera's next session.
        rig.cam.wait_session_sent(trial, after).await;
        rec.signal(libc::SIGKILL);
        rec.wait().await;
        for entry in std::fs::read_dir(d.join(format!("t{trial}")))
            .expect("dir")
            .flatten()
        {
            let path = entry.path();
            if !path.to_string_lossy().ends_with(".partial") {
                continue;
            }
            let held = Recording::open(&path).map(|r| r.video_timing().expect("t").len());
            match repair::repair(&path, false) {
                Ok(r) => {
                    let frames = held.expect("a repairable file reads");
                    assert_eq!(r.frames as usize, frames, "trial {trial}: every frame kept");
                    let done = Recording::open(&r.out).expect("read");
                    assert!(done.mfra.is_some(), "trial {trial}: indexed");
                    decoded_and_played(&r.out, frames);
                    assert_eq!(
                        timed_frames(&r.out),
                        frames,
                        "trial {trial}: timing reads them"
                    );
                    repaired += 1;
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    assert!(why.contains("no whole fragment"), "trial {trial}: {why}");
                }
            }
        }
    }
    assert!(
        repaired >= 15,
        "{repaired} of 20 kills left a file to repair"
    );
}
