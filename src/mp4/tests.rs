//! The muxer and reader without a network: a recording muxed in-process from a fixture clip's
//! real H.264/AAC samples reads back exactly, the muxer survives hostile timestamps, and the
//! reader and SEI parser survive truncated and corrupted files (deterministic mutation fuzzers:
//! cargo-fuzz needs nightly Rust).

use crate::ntp;
use std::io::Write as _;
use std::time::Duration;

use super::read::{Recording, Track};
use super::{AudioInput, Muxer, Sink, Stored, VideoInput};
use crate::codec::VideoCodec;
use crate::sei::{self, FrameTiming, SenderReport, TimingMessage};

/// The files a muxer made, in memory.
#[derive(Default)]
struct VecSink {
    files: Vec<Vec<u8>>,
    /// Whether the last file was ended.
    ended: bool,
}

impl VecSink {
    fn current(&mut self) -> std::io::Result<&mut Vec<u8>> {
        match self.files.last_mut() {
            Some(file) if !self.ended => Ok(file),
            _ => Err(std::io::Error::other("write outside a file")),
        }
    }

    /// The only file made (empty if none).
    fn single(mut self) -> Vec<u8> {
        assert!(self.files.len() <= 1, "{} files", self.files.len());
        self.files.pop().unwrap_or_default()
    }
}

impl Sink for VecSink {
    fn begin_file(&mut self, _first_recv: u64) -> std::io::Result<()> {
        self.files.push(Vec::new());
        self.ended = false;
        Ok(())
    }
    fn write_header(&mut self, header: &[u8]) -> std::io::Result<Stored> {
        let file = self.current()?;
        if file.len() < header.len() {
            file.resize(header.len(), 0);
        }
        file[..header.len()].copy_from_slice(header);
        Ok(Stored::Written)
    }
    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<Stored> {
        let file = self.current()?;
        for p in parts {
            file.extend_from_slice(p);
        }
        Ok(Stored::Written)
    }
    fn end_file(&mut self, _summary: &super::FileSummary) -> std::io::Result<()> {
        self.current()?;
        self.ended = true;
        Ok(())
    }
}

fn fixture(name: &str) -> Recording {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clips")
        .join(name);
    Recording::open(&path).expect("fixture")
}

/// A muxer for H.264 at 90 kHz and `audio`'s first sample entry, with timing SEI.
fn h264_muxer(
    audio: &Track,
    fragment_duration: Duration,
    segment_duration: Option<Duration>,
) -> Muxer {
    Muxer::new(super::Config {
        video: Some(super::VideoConfig {
            codec: VideoCodec::H264,
            clock_rate: 90_000,
        }),
        audio: Some(super::AudioConfig {
            clock_rate: audio.timescale,
            sample_entry: audio.sample_entries[0].clone(),
        }),
        fragment_duration,
        segment_duration,
        timing: true,
        creation_time: jiff::Timestamp::now(),
    })
}

/// Muxes a fixture's samples as the session would hand them over; returns the finished file.
/// Every keyframe comes with a sender report.
fn mux_fixture(name: &str) -> (Vec<u8>, usize) {
    let (sink, frames) = mux_fixture_into(name, None);
    (sink.single(), frames)
}

/// The NTP time of `ticks` at `rate` after 2026-11-24T00:00:00 UTC, a wall-clock midnight.
fn ntp_after_midnight(ticks: i64, rate: u32) -> u64 {
    const MIDNIGHT_UNIX_SECS: i128 = 1_795_478_400;
    let nanos =
        MIDNIGHT_UNIX_SECS * 1_000_000_000 + i128::from(ticks) * 1_000_000_000 / i128::from(rate);
    ntp::from_unix(nanos)
}

/// As [`mux_fixture`], received from a wall-clock midnight on, cut into files of `segment`
/// if given; then only the first keyframe comes with a sender report (so any later file's
/// report is the muxer's repeat).
fn mux_fixture_into(name: &str, segment: Option<Duration>) -> (VecSink, usize) {
    let src = fixture(name);
    let v = src.video_track().expect("video").clone();
    let a = src.audio_track().expect("audio").clone();
    let mut muxer = h264_muxer(&a, Duration::from_millis(500), segment);
    let mut sink = VecSink::default();
    // Interleave by time as a camera would send them.
    let mut samples: Vec<_> = src.samples.iter().collect();
    samples.sort_by_key(|s| {
        let ts = if s.track_id == v.track_id {
            v.timescale
        } else {
            a.timescale
        };
        (s.dts as u128 * 1_000_000 / u128::from(ts), s.track_id)
    });
    let mut first = true;
    let mut video_frames = 0;
    for s in samples {
        let data = src.read_sample(s).expect("sample");
        if s.track_id == v.track_id {
            video_frames += 1;
            let pts = s.pts();
            let report = s.is_sync && (first || segment.is_none());
            muxer
                .push_video(
                    VideoInput {
                        pts,
                        is_sync: s.is_sync,
                        sample_entry: first.then(|| Box::new(v.sample_entries[0].clone())),
                        timing: FrameTiming {
                            recv: ntp_after_midnight(s.dts as i64, v.timescale),
                            rtp: pts as u32,
                            conn: None,
                        },
                        sender_reports: if report {
                            vec![SenderReport {
                                recv: 7,
                                ntp: 8,
                                rtp: pts as u32,
                            }]
                        } else {
                            Vec::new()
                        },
                        data,
                    },
                    &mut sink,
                )
                .expect("push video");
            first = false;
        } else {
            muxer
                .push_audio(
                    AudioInput {
                        pts: s.dts as i64,
                        samples: s.duration,
                        recv: ntp_after_midnight(s.dts as i64, a.timescale),
                        data,
                    },
                    &mut sink,
                )
                .expect("push audio");
        }
    }
    muxer.finish(&mut sink).expect("finish");
    (sink, video_frames)
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp");
    f.write_all(bytes).expect("write");
    f
}

#[test]
fn muxed_b_frame_clip_reads_back_exactly() {
    let src = fixture("h264_bframes.mp4");
    let (bytes, frames) = mux_fixture("h264_bframes.mp4");
    let file = write_temp(&bytes);
    let rec = Recording::open(file.path()).expect("read back");
    assert!(!rec.truncated);
    let timing = rec.video_timing().expect("timing");
    assert_eq!(timing.len(), frames);
    // Same frames, same presentation times, same bytes after our SEI.
    let src_video: Vec<_> = src.track_samples(1).collect();
    for (timed, orig) in timing.iter().zip(&src_video) {
        let (sample, msgs) = (&timed.sample, &timed.messages);
        let media_start = rec.video_track().expect("video").media_start as i64;
        assert_eq!(sample.pts() - media_start, orig.pts() - src_video[0].pts());
        assert!(matches!(msgs.last(), Some(TimingMessage::Frame(f)) if f.rtp == orig.pts() as u32));
        assert_eq!(timed.sender_reports().count(), usize::from(orig.is_sync));
        let data = rec.read_sample(sample).expect("data");
        let original = src.read_sample(orig).expect("orig");
        assert!(
            data.ends_with(&original),
            "frame bytes preserved after the SEI"
        );
        assert_eq!(sample.is_sync, orig.is_sync);
    }
    // Audio from before the first video frame's presentation time is dropped; the rest is kept.
    let audio = rec.audio_track().expect("audio");
    let video_start = src_video[0].pts() as u64; // 90 kHz
    let kept = src
        .track_samples(2)
        .filter(|s| s.dts * 90_000 / 16_000 >= video_start)
        .count();
    assert_eq!(rec.track_samples(audio.track_id).count(), kept);
}

/// Segments end at the first keyframe at or after each wall-clock boundary: every frame and
/// audio sample lands in exactly one file, each file starts with a keyframe and reads back on
/// its own, and each later file's first frame repeats the last sender report.
#[test]
fn segments_split_at_keyframes_losing_and_repeating_nothing() {
    let (whole, frames) = mux_fixture("h264_aac.mp4");
    let whole = Recording::from_bytes(whole).expect("single file");
    let (sink, _) = mux_fixture_into("h264_aac.mp4", Some(Duration::from_secs(1)));
    assert!(sink.ended);
    // Keyframes every second from 0 s: one file per second.
    assert_eq!(sink.files.len(), 4);
    let (mut rtp, mut audio) = (Vec::new(), Vec::new());
    for (i, bytes) in sink.files.into_iter().enumerate() {
        let rec = Recording::from_bytes(bytes).expect("segment reads back");
        assert!(!rec.truncated);
        let timing = rec.video_timing().expect("timing");
        let first = timing.first().expect("a frame");
        assert!(first.sample.is_sync, "file {i} starts with a keyframe");
        let reports: Vec<usize> = timing.iter().map(|t| t.sender_reports().count()).collect();
        assert_eq!(
            reports[0], 1,
            "file {i}: a sender report with the first frame"
        );
        assert!(
            reports[1..].iter().all(|&n| n == 0),
            "file {i}: {reports:?}"
        );
        rtp.extend(timing.iter().filter_map(|t| t.frame()).map(|f| f.rtp));
        let a = rec.audio_track().expect("audio");
        audio.extend(
            rec.track_samples(a.track_id)
                .map(|s| rec.read_sample(s).expect("audio")),
        );
    }
    let whole_rtp: Vec<u32> = (whole.video_timing().expect("timing").iter())
        .filter_map(|t| t.frame())
        .map(|f| f.rtp)
        .collect();
    assert_eq!(rtp.len(), frames);
    assert_eq!(rtp, whole_rtp, "every frame once, in order");
    let a = whole.audio_track().expect("audio");
    let whole_audio: Vec<Vec<u8>> = whole
        .track_samples(a.track_id)
        .map(|s| whole.read_sample(s).expect("audio"))
        .collect();
    assert_eq!(audio.len(), whole_audio.len());
    assert!(audio == whole_audio, "every audio sample once, in order");
}

/// Small, fast pseudo-random numbers: the fuzzer must be repeatable.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How many cases a fuzzer runs: `default`, or `RETINA_RECORD_FUZZ_CASES` (for a long run,
/// e.g. 1000000 with `cargo test --release`).
fn fuzz_cases(default: usize) -> usize {
    std::env::var("RETINA_RECORD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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
        let named = [("fuzzed.mp4".into(), rec)];
        if let Ok(timing) = crate::timing::recording::from_recordings(&named) {
            let _ = crate::timing::summary::summarise(&timing);
        }
    }
    let _ = super::build_mfra(&super::read::Data::Bytes(bytes.to_vec().into()));
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

/// The version byte of each box of type `kind` in `bytes` (found by its fourcc: a test
/// shortcut, fine for files this small and regular).
fn box_versions(bytes: &[u8], kind: &[u8; 4]) -> Vec<u8> {
    bytes
        .windows(5)
        .filter(|w| &w[..4] == kind)
        .map(|w| w[4])
        .collect()
}

/// ISO/IEC 14496-12 §8.8.12, §8.4.2, §8.3.2, §8.8.11: times beyond 32 bits need version 1 of
/// `tfdt`, `mdhd`, `tkhd`, `mvhd`, `mehd` and `tfra`. A video track of 13.4 h at 90 kHz (frames 9 s apart,
/// each a steady step) goes past 2^32 ticks: every such box is version 1, and the times read
/// back whole.
#[test]
fn tracks_longer_than_2_32_ticks_use_64_bit_boxes() {
    const STEP: i64 = 9 * 90_000;
    let src = fixture("h264_aac.mp4");
    let v = src.video_track().expect("video").clone();
    let keyframe = src
        .track_samples(v.track_id)
        .find(|s| s.is_sync)
        .map(|s| src.read_sample(s).expect("sample"))
        .expect("a keyframe");
    let frames = (u64::from(u32::MAX) / STEP as u64 + 3) as i64;
    let mut muxer = Muxer::new(super::Config {
        video: Some(super::VideoConfig {
            codec: VideoCodec::H264,
            clock_rate: 90_000,
        }),
        audio: None,
        fragment_duration: Duration::from_secs(20),
        segment_duration: None,
        timing: true,
        creation_time: jiff::Timestamp::now(),
    });
    let mut sink = VecSink::default();
    for i in 0..frames {
        let frame = VideoInput {
            pts: i * STEP,
            is_sync: true,
            sample_entry: (i == 0).then(|| Box::new(v.sample_entries[0].clone())),
            timing: FrameTiming {
                recv: ntp_after_midnight(i * STEP, 90_000),
                rtp: (i * STEP) as u32,
                conn: None,
            },
            sender_reports: Vec::new(),
            data: keyframe.clone(),
        };
        muxer.push_video(frame, &mut sink).expect("push video");
    }
    muxer.finish(&mut sink).expect("finish");
    let mut bytes = sink.single();
    let mfra = super::build_mfra(&super::read::Data::Bytes(bytes.clone().into())).expect("mfra");
    bytes.extend_from_slice(&mfra);
    let rec = Recording::from_bytes(bytes.clone()).expect("reads back");
    let last = rec.samples.last().expect("samples");
    let end = (frames - 1) as u64 * STEP as u64;
    assert!(end > u64::from(u32::MAX));
    assert_eq!(last.dts, end, "decode times read back whole");
    assert_eq!(rec.samples.len() as i64, frames);
    let track = rec.video_track().expect("video");
    assert_eq!(track.media_start, 0);
    let tfra = rec.mfra.as_ref().expect("mfra").tfra.first().expect("tfra");
    assert_eq!(tfra.entries.last().map(|e| e.time), Some(end));
    for kind in [b"tfdt", b"mdhd", b"tkhd", b"mvhd", b"mehd", b"tfra"] {
        let versions = box_versions(&bytes, kind);
        assert!(!versions.is_empty(), "{}", String::from_utf8_lossy(kind));
        assert!(
            versions.iter().all(|&v| v == 1),
            "{}: {versions:?}",
            String::from_utf8_lossy(kind)
        );
    }
    assert_eq!(track.duration, end + STEP as u64, "mdhd's duration, 64-bit");
}

/// §8.8.11, §8.1.1: a file over 4 GiB indexes its later fragments with 64-bit `tfra`
/// offsets, and a box over 4 GiB has a 64-bit size. The file is sparse: a 4.5 GiB `free` box
/// (a hole on disk) between a recording's fragments, the index built from the file as the
/// recorder builds it when it finishes.
#[test]
fn files_over_4_gib_index_their_fragments_with_64_bit_offsets() {
    use mp4_atom::{Atom as _, Decode as _, Encode as _};
    use std::io::{Seek as _, SeekFrom};
    let (bytes, frames) = mux_fixture("h264_aac.mp4");
    // The top-level boxes: split before the third moof.
    let mut offsets = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let mut rest = &bytes[pos..];
        let header = mp4_atom::Header::decode(&mut rest).expect("box header");
        let header_len = bytes.len() - pos - rest.len();
        if header.kind == mp4_atom::Moof::KIND {
            offsets.push(pos);
        }
        pos += header_len + header.size.expect("sized");
    }
    let split = offsets[2];
    const HOLE: u64 = 9 << 29; // 4.5 GiB
    let mut free_header = Vec::new();
    mp4_atom::Header {
        kind: mp4_atom::Free::KIND,
        size: Some(HOLE as usize),
    }
    .encode(&mut free_header)
    .expect("free header");
    assert_eq!(free_header.len(), 16, "a 64-bit box size");
    let mut file = tempfile::tempfile().expect("temp");
    file.write_all(&bytes[..split]).expect("write");
    file.write_all(&free_header).expect("write");
    file.seek(SeekFrom::Current(HOLE as i64)).expect("seek");
    file.write_all(&bytes[split..]).expect("write");
    let data = super::read::Data::File(file.try_clone().expect("clone"));
    let mfra = super::build_mfra(&data).expect("index");
    file.write_all(&mfra).expect("write");
    let rec = Recording::open(std::path::Path::new(&format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    )))
    .expect("reads back");
    assert_eq!(rec.video_timing().expect("timing").len(), frames);
    let whole = Recording::from_bytes(bytes).expect("unsplit");
    let moved = 16 + HOLE;
    for (a, b) in rec.samples.iter().zip(&whole.samples) {
        let expected = if b.offset >= split as u64 {
            b.offset + moved
        } else {
            b.offset
        };
        assert_eq!(a.offset, expected);
        assert_eq!(
            rec.read_sample(a).expect("read"),
            whole.read_sample(b).expect("read")
        );
    }
    let tfra = &rec.mfra.as_ref().expect("mfra").tfra[0];
    assert!(
        tfra.entries
            .iter()
            .any(|e| e.moof_offset > u64::from(u32::MAX))
    );
    assert_eq!(
        box_versions(&mfra, b"tfra"),
        [1, 1],
        "both tracks' tfra are 64-bit"
    );
}
