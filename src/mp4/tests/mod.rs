//! The muxer and reader without a network: a recording muxed in-process from a fixture clip's
//! real H.264/AAC samples reads back exactly, the muxer survives hostile timestamps, and the
//! reader and SEI parser survive truncated and corrupted files (deterministic mutation fuzzers:
//! cargo-fuzz needs nightly Rust).
//!
//! `round_trip.rs`: what is muxed reads back; `fuzz.rs`: what is broken fails cleanly. The
//! helpers here are theirs.

use std::io::Write as _;
use std::time::Duration;

use super::read::{Recording, Track};
use super::{AudioInput, Muxer, Sink, Stored, VideoInput};
use crate::codec::VideoCodec;
use crate::ntp;
use crate::sei::{FrameTiming, SenderReport};

/// The files a muxer made, in memory.
mod fuzz;
mod round_trip;
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
    fn end_file(&mut self, _summary: &crate::mp4::FileSummary) -> std::io::Result<()> {
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
