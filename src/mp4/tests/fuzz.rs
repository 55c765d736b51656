//! Deterministic mutation fuzzers (cargo-fuzz needs nightly Rust): truncated and corrupted
//! files never panic the reader or the SEI parser, and hostile timestamps never the muxer.

use std::time::Duration;

use crate::codec::VideoCodec;
use crate::mp4::read::Recording;
use crate::mp4::{AudioInput, VideoInput};
use crate::sei::{self, FrameTiming, SenderReport};

/// The files a muxer made, in memory.
use super::*;

/// Reads everything the reader and the timing toolkit offer; Ok or Err are both fine, a panic
/// is not.
fn read_all(bytes: &[u8]) {
    if let Ok(rec) = Recording::from_bytes(bytes.to_vec()) {
        let _ = rec.video_timing();
        for s in rec.samples.iter().take(50) {
            let data = rec
                .read_sample(s)
                .expect("samples the reader returns lie inside the file");
            let _ = sei::leading_timing_messages(&data, VideoCodec::H264);
        }
    }
    if let Ok(scan) = crate::timing::scan::scan_bytes(vec![("fuzzed.mp4".into(), bytes.to_vec())]) {
        let _ = scan.frames().count();
        let _ = crate::timing::summary::summarise(&scan);
    }
    let _ = crate::mp4::build_mfra(&crate::mp4::read::Data::Bytes(bytes.to_vec().into()));
    let _ = crate::export::spans::of_bytes(bytes.to_vec());
}

/// Repairs `bytes` as a `.partial`, and exports the whole of them (written to a file, as
/// `export` reads them); Ok or Err are both fine, a panic is not, and a failed export leaves
/// nothing behind.
fn export_all(bytes: &[u8], dir: &std::path::Path, n: usize) {
    use crate::export::{By, cut};
    // The same bytes as a killed recording's leftover: repaired or refused, never a panic.
    let leftover = dir.join(format!("left-{n}.mp4.partial"));
    std::fs::write(&leftover, bytes).expect("write");
    if let Ok(r) = crate::output::repair::repair(&leftover, false) {
        assert!(
            r.out.exists() && !leftover.exists(),
            "a repair names its file"
        );
    }
    let input = dir.join(format!("in-{n}.mp4"));
    std::fs::write(&input, bytes).expect("write");
    let Ok(scan) = crate::timing::scan::scan(std::slice::from_ref(&input)) else {
        return;
    };
    let everything = cut::Interval {
        from: i128::MIN / 2,
        to: i128::MAX / 2,
    };
    let Ok(cut) = cut::cut(&scan, By::Recv, everything, false) else {
        return;
    };
    let out = dir.join(format!("out-{n}.mp4"));
    if crate::export::write::write(&scan, &cut.pieces[0], &out).is_err() {
        assert!(!out.exists(), "a failed export leaves no file");
    }
    assert!(
        !crate::output::partial_path(&out).exists(),
        "nor a .partial"
    );
}

/// Mutates `bytes` at random, mostly at `targets` (where fields that carry sizes, offsets and
/// times are), with bit flips, random bytes and extreme 32- and 64-bit values; sometimes cuts
/// it short.
fn mutate(bytes: &[u8], targets: &[usize], rng: &mut XorShift) -> Vec<u8> {
    let extremes = [
        0u64,
        1,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
        u64::MAX,
        i64::MAX as u64,
    ];
    let mut b = bytes.to_vec();
    for _ in 0..=rng.below(6) {
        let i = if rng.below(4) == 0 || targets.is_empty() {
            rng.below(b.len())
        } else {
            (targets[rng.below(targets.len())] + rng.below(32)).min(b.len() - 1)
        };
        match rng.below(4) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = rng.next() as u8,
            2 => {
                let v = extremes[rng.below(extremes.len())].to_be_bytes();
                let end = (i + 4).min(b.len());
                b[i..end].copy_from_slice(&v[4..4 + end - i]);
            }
            _ => {
                let v = extremes[rng.below(extremes.len())].to_be_bytes();
                let end = (i + 8).min(b.len());
                b[i..end].copy_from_slice(&v[..end - i]);
            }
        }
    }
    if rng.below(4) == 0 {
        b.truncate(rng.below(b.len()));
    }
    b
}

/// Where in `bytes` the boxes named `kinds` start.
fn box_positions(bytes: &[u8], kinds: &[&[u8; 4]]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| kinds.iter().any(|k| &k[..] == *w))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn truncated_files_read_up_to_their_last_whole_fragment() {
    let (bytes, frames) = mux_fixture("h264_aac.mp4");
    let mut last = 0;
    for cut in (0..bytes.len()).step_by(997) {
        let file = write_temp(&bytes[..cut]);
        match Recording::open(file.path()) {
            Ok(rec) => {
                let n = rec.video_timing().expect("whole fragments decode").len();
                assert!(n >= last && n <= frames, "cut at {cut}: {n} frames");
                last = n;
            }
            Err(_) => assert_eq!(last, 0, "cut at {cut}: readable before, not now"),
        }
    }
    assert!(last > frames * 9 / 10);
}

#[test]
fn corrupted_files_never_panic_the_reader() {
    let (bytes, _) = mux_fixture("h264_bframes.mp4");
    let targets = box_positions(
        &bytes,
        &[
            b"tfhd", b"tfdt", b"trun", b"moof", b"mdat", b"mfra", b"moov", b"stsd", b"prft",
        ],
    );
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..fuzz_cases(3000) {
        read_all(&mutate(&bytes, &targets, &mut rng));
    }
}

#[test]
fn corrupted_files_never_panic_the_export_or_repair() {
    let (bytes, _) = mux_fixture("h264_aac.mp4");
    let targets = box_positions(
        &bytes,
        &[b"tfhd", b"tfdt", b"trun", b"moof", b"mfra", b"mdat"],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    for n in 0..fuzz_cases(300) {
        export_all(&mutate(&bytes, &targets, &mut rng), dir.path(), n);
    }
}

/// retina-record 0.2's files are not fragmented: their samples are in the `moov`'s tables.
#[test]
fn corrupted_sample_tables_never_panic_the_reader() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/retina-record-0.2.2.mp4");
    let bytes = std::fs::read(path).expect("fixture");
    let targets = box_positions(
        &bytes,
        &[
            b"stts", b"ctts", b"stss", b"stsz", b"stsc", b"stco", b"co64", b"mdat", b"moov",
            b"mdhd", b"elst",
        ],
    );
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for _ in 0..fuzz_cases(1000) {
        read_all(&mutate(&bytes, &targets, &mut rng));
    }
}

#[test]
fn sei_parser_survives_random_input() {
    let mut rng = XorShift(42);
    let mut valid = Vec::new();
    sei::append_sender_report_sei(
        &mut valid,
        VideoCodec::H264,
        SenderReport {
            recv: 1,
            ntp: 2,
            rtp: 3,
        },
    );
    for _ in 0..fuzz_cases(20_000) {
        let mut nal = valid[4..].to_vec();
        for _ in 0..=rng.below(4) {
            let i = rng.below(nal.len());
            nal[i] = rng.next() as u8;
        }
        nal.truncate(rng.below(nal.len() + 1));
        let _ = sei::parse_timing_nal(&nal, VideoCodec::H264);
        let _ = sei::parse_timing_nal(&nal, VideoCodec::H265);
    }
}

/// The muxer takes the camera's timestamps and frames as they come: hostile ones (jumps both
/// ways by any amount, repeats, extremes, empty or picture-less frames) must neither panic it
/// nor produce a file whose decode times go backward.
#[test]
fn muxer_survives_hostile_timestamps_and_frames() {
    let src = fixture("h264_aac.mp4");
    let v = src.video_track().expect("video").clone();
    let a = src.audio_track().expect("audio").clone();
    let video: Vec<(bool, Vec<u8>)> = src
        .track_samples(v.track_id)
        .take(30)
        .map(|s| (s.is_sync, src.read_sample(s).expect("sample")))
        .collect();
    let audio: Vec<Vec<u8>> = src
        .track_samples(a.track_id)
        .take(30)
        .map(|s| src.read_sample(s).expect("sample"))
        .collect();
    let steps: [i64; 12] = [
        3600,
        3600,
        3600,
        -7200,
        0,
        30 * 90_000,
        -30 * 90_000,
        i64::from(i32::MAX),
        i64::from(i32::MIN),
        i64::MAX / 2,
        i64::MIN / 2,
        1,
    ];
    let mut rng = XorShift(0x0123_4567_89AB_CDEF);
    for round in 0..200 {
        // Every other round in segments: files end wherever the random receive times say.
        let segment = (round % 2 == 1).then_some(Duration::from_secs(1));
        let mut muxer = h264_muxer(&a, Duration::from_millis(200), segment);
        let mut sink = VecSink::default();
        let (mut vpts, mut apts) = (0i64, 0i64);
        for i in 0..120 {
            if rng.below(3) == 0 {
                apts = apts.saturating_add(steps[rng.below(steps.len())] / 5);
                let data = match rng.below(8) {
                    0 => Vec::new(),
                    _ => audio[rng.below(audio.len())].clone(),
                };
                let samples = [0, 1024, 160][rng.below(3)];
                let frame = AudioInput {
                    pts: apts,
                    samples,
                    recv: rng.next(),
                    data,
                };
                muxer.push_audio(frame, &mut sink).expect("push audio");
                continue;
            }
            if rng.below(30) == 0 {
                // A reconnection: a new session, its own clock.
                muxer.new_session(i, &mut sink).expect("new session");
                vpts = rng.next() as i64 >> rng.below(64);
            }
            vpts = vpts.saturating_add(steps[rng.below(steps.len())]);
            let (is_sync, data) = match rng.below(10) {
                0 => (false, Vec::new()),
                1 => (false, vec![0, 0, 0, 4, 0x0C, 0xFF, 0xFF, 0x80]), // filler only
                _ => video[rng.below(video.len())].clone(),
            };
            let frame = VideoInput {
                pts: vpts,
                is_sync,
                sample_entry: (i == 0).then(|| Box::new(v.sample_entries[0].clone())),
                timing: FrameTiming {
                    recv: rng.next(),
                    rtp: vpts as u32,
                    conn: None,
                },
                sender_reports: Vec::new(),
                data,
            };
            muxer.push_video(frame, &mut sink).expect("push video");
        }
        muxer.finish(&mut sink).expect("finish");
        assert!(
            sink.files.is_empty() || sink.ended,
            "round {round}: last file ended"
        );
        for bytes in sink.files {
            let rec = Recording::from_bytes(bytes).expect("reads back");
            for track in &rec.tracks {
                let dts: Vec<u64> = rec.track_samples(track.track_id).map(|s| s.dts).collect();
                assert!(
                    dts.windows(2).all(|w| w[0] < w[1]),
                    "round {round}: decode times of track {} go backward: {dts:?}",
                    track.track_id
                );
            }
        }
    }
}
