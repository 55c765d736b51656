//! Recordings muxed in-process read back exactly: B-frames, segments, and the 64-bit boxes and
//! offsets of long or large files (ISO/IEC 14496-12 §8.8.12 `tfdt` v1, §8.8.10 `tfra` v1).

use std::io::Write as _;
use std::time::Duration;

use crate::codec::VideoCodec;
use crate::mp4::read::Recording;
use crate::mp4::{Muxer, VideoInput};
use crate::sei::{FrameTiming, TimingMessage};

/// The files a muxer made, in memory.
use super::*;

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
/// `tfdt`, `mdhd`, `tkhd`, `mvhd`, `mehd` and `tfra`. A video track of 13.4 h at 90 kHz (frames
/// 9 s apart, each a steady step) goes past 2^32 ticks: every such box is version 1, and the
/// times read back whole.
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
    let mut muxer = Muxer::new(crate::mp4::Config {
        video: Some(crate::mp4::VideoConfig {
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
    let mfra =
        crate::mp4::build_mfra(&crate::mp4::read::Data::Bytes(bytes.clone().into())).expect("mfra");
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
    let data = crate::mp4::read::Data::File(file.try_clone().expect("clone"));
    let mfra = crate::mp4::build_mfra(&data).expect("index");
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
