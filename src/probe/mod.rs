//! `retina-record probe`: what a camera sends and whether it can be recorded, before recording.
//!
//! It connects exactly as the recorder does (`rtsp::connect`, with the same workarounds),
//! listens for a few seconds, and reports each stream as the SDP describes it (RFC 8866 §5.14)
//! and as its frames show it: resolution, profile and level (from the SPS as retina parses it:
//! H.264 §7.3.2.1.1, H.265 §7.3.2.2), frame rate, GOP length and B-frames from the frames'
//! timestamps and random-access points; audio rate and channels; RTCP sender reports (RFC 3550
//! §6.4.1) and what they say of the camera's clock; bitrates.

mod profile;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use retina::client::{Demuxed, SessionGroup};
use retina::codec::{CodecItem, ParametersRef};
use serde::Serialize;

use crate::codec::VideoCodec;
use crate::config::RecorderConfig;
use crate::error::Result;
use crate::ntp;
use crate::rtsp::connect;
use crate::rtsp::retina_messages::for_camera;
use crate::rtsp::select::Selection;
use crate::rtsp::workarounds::{Quirk, UDP_SILENCE, Workarounds};
use crate::source::redacted;

/// What a camera sends.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The URL, without credentials.
    pub url: String,
    /// `tcp` (interleaved) or `udp` (asked for, or the camera refused TCP).
    pub transport: &'static str,
    /// How long it listened, seconds.
    pub listened_s: f64,
    /// Every stream the camera offers, in SDP order.
    pub streams: Vec<Stream>,
    /// The camera's clock minus this machine's, from its first sender report (its NTP time
    /// minus when it arrived: network delay makes this read low by that much).
    pub camera_minus_receiver_s: Option<f64>,
    /// Packets that completed no frame (retina could not use them), skipped as the recorder
    /// skips them.
    pub skipped_packets: u64,
    /// What the camera needed that RFC 2326 alone would not have given, and what was done
    /// (`rtsp/workarounds.rs`), as the recorder would do it.
    pub quirks: Vec<Quirk>,
    /// Over TLS: the fingerprint of the camera's certificate (`sha256:HEX`), which
    /// `--tls-fingerprint` takes to pin it.
    pub certificate: Option<String>,
}

/// One stream.
#[derive(Clone, Debug, Serialize)]
pub struct Stream {
    /// Its index in the SDP (`--video-stream`, `--audio-stream`).
    pub index: usize,
    /// `video`, `audio`, …
    pub media: String,
    /// The RTP encoding name: `h264`, `h265`, `mpeg4-generic` (AAC), `pcmu`, …
    pub codec: String,
    /// RTP clock rate, Hz.
    pub clock_rate: u32,
    /// Whether a recording takes it by default.
    pub recorded: bool,
    /// The recorder's decision about it, as it logs it.
    pub decision: String,
    /// What its frames showed (streams that are recorded only: the others are not set up).
    pub video: Option<Video>,
    /// Its audio format.
    pub audio: Option<Audio>,
    /// Frames received.
    pub frames: u64,
    /// Its bitrate over the time listened, kbit/s.
    pub kbit_per_s: Option<f64>,
    /// Sender reports received.
    pub sender_reports: u64,
    /// Their median interval, seconds.
    pub sender_report_interval_s: Option<f64>,
}

/// A video stream, as its parameters and frames show it.
#[derive(Clone, Debug, Serialize)]
pub struct Video {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// RFC 6381 codec string (`avc1.64001F`).
    pub rfc6381: String,
    /// `High`, `Main`, …
    pub profile: Option<String>,
    /// `3.1`, …
    pub level: Option<String>,
    /// Frames per second, from the timestamps.
    pub fps: Option<f64>,
    /// Frames from one random-access point to the next (the median seen); `None` with fewer
    /// than two.
    pub gop_frames: Option<u64>,
    /// Frames whose timestamps step back in decode order: B-frames.
    pub b_frames: bool,
}

/// An audio stream.
#[derive(Clone, Debug, Serialize)]
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels, when the SDP or the parameters say.
    pub channels: Option<u16>,
}

/// What was seen of one stream while listening.
#[derive(Default)]
struct Seen {
    frames: u64,
    bytes: u64,
    timestamps: Vec<i64>,
    keyframes: Vec<u64>,
    reports: Vec<SystemTime>,
}

/// Connects as the recorder would, listens for `listen`, and reports.
pub async fn probe(config: &RecorderConfig, listen: Duration) -> Result<Report> {
    listen_to(config, listen)
        .await
        .map_err(|e| e.scrub(config.source.secret()))
}

async fn listen_to(config: &RecorderConfig, listen: Duration) -> Result<Report> {
    let group = Arc::new(SessionGroup::default());
    let mut workarounds = Workarounds::default();
    let camera = config.source.host_port();
    for_camera(camera.clone(), async {
        loop {
            let (session, selection) = connect::open(config, &group, true, &mut workarounds)
                .await
                .map_err(|e| e.error)?;
            let Some(mut report) = listen_once(config, session, &selection, listen).await else {
                // Nothing over UDP: as the recorder does, TCP (unless the camera refused it).
                workarounds.udp_was_silent(&camera)?;
                continue;
            };
            report.quirks = workarounds.met;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), group.await_teardown()).await;
            });
            return Ok(report);
        }
    })
    .await
}

/// Listens to one session; `None`: it was over UDP and nothing came.
async fn listen_once(
    config: &RecorderConfig,
    mut session: Demuxed,
    selection: &Selection,
    listen: Duration,
) -> Option<Report> {
    let mut seen: Vec<Seen> = (0..selection.offered.len())
        .map(|_| Seen::default())
        .collect();
    let codecs: Vec<Option<VideoCodec>> = selection
        .offered
        .iter()
        .map(|o| o.encoding.parse().ok())
        .collect();
    let mut clock_offset = None;
    let mut skipped = 0;
    let mut anything = false;
    let started = tokio::time::Instant::now();
    let deadline = tokio::time::sleep(listen);
    tokio::pin!(deadline);
    let udp_silence = tokio::time::sleep(UDP_SILENCE);
    tokio::pin!(udp_silence);
    loop {
        let item = tokio::select! {
            () = &mut udp_silence, if selection.udp && !anything => return None,
            // Listened more briefly than that: nothing at all over UDP is silence still.
            () = &mut deadline => match selection.udp && !anything {
                true => return None,
                false => break,
            },
            item = session.next() => item,
        };
        anything = true;
        match item {
            None => break,
            Some(Ok(item)) => note(&mut seen, &codecs, &mut clock_offset, item),
            // As the recorder does: a bad packet costs its frame, not the session.
            Some(Err(_)) => skipped += 1,
        }
    }
    let listened = started.elapsed();
    let streams = report_streams(&session, &selection.offered, &seen, listened);
    drop(session);
    Some(Report {
        url: redacted(&config.source.url),
        transport: if selection.udp { "udp" } else { "tcp" },
        listened_s: listened.as_secs_f64(),
        streams,
        camera_minus_receiver_s: clock_offset,
        skipped_packets: skipped,
        quirks: Vec::new(),
        certificate: selection.certificate.clone(),
    })
}

/// Takes note of one item.
fn note(
    seen: &mut [Seen],
    codecs: &[Option<VideoCodec>],
    clock_offset: &mut Option<f64>,
    item: CodecItem,
) {
    match item {
        CodecItem::VideoFrame(f) => {
            // An H.265 CRA picture is a random-access point too (retina marks IDR only), as
            // ffprobe and the recorder count it.
            let irap = codecs
                .get(f.stream_id())
                .copied()
                .flatten()
                .and_then(|c| c.first_slice(f.data()))
                .is_some_and(|(t, _)| t.is_irap());
            if let Some(s) = seen.get_mut(f.stream_id()) {
                if f.is_random_access_point() || irap {
                    s.keyframes.push(s.frames);
                }
                s.frames += 1;
                s.bytes += f.data().len() as u64;
                s.timestamps.push(f.timestamp().elapsed());
            }
        }
        CodecItem::AudioFrame(f) => {
            if let Some(s) = seen.get_mut(f.stream_id()) {
                s.frames += 1;
                s.bytes += f.data().len() as u64;
            }
        }
        CodecItem::Rtcp(rtcp) => {
            let sr = rtcp
                .pkts()
                .next()
                .and_then(|p| p.as_sender_report().ok().flatten());
            if let (Some(sr), Some(s)) = (sr, seen.get_mut(rtcp.stream_id())) {
                let received: SystemTime = rtcp.ctx().received_wall().into();
                s.reports.push(received);
                if clock_offset.is_none() {
                    let ntp = ntp::to_unix(sr.ntp_timestamp().0);
                    let recv = ntp::to_unix(ntp::from_system_time(received));
                    *clock_offset = Some((ntp - recv) as f64 / 1e9);
                }
            }
        }
        _ => {}
    }
}

fn report_streams(
    session: &Demuxed,
    offered: &[crate::rtsp::select::Offered],
    seen: &[Seen],
    listened: Duration,
) -> Vec<Stream> {
    offered
        .iter()
        .zip(seen)
        .enumerate()
        .map(|(index, (o, s))| {
            let params = session.streams().get(index).and_then(|st| st.parameters());
            let video = match params {
                Some(ParametersRef::Video(p)) => {
                    let (width, height) = p.pixel_dimensions();
                    let rfc6381 = p.rfc6381_codec().to_owned();
                    let (profile, level) = profile::describe(&rfc6381);
                    Some(Video {
                        width,
                        height,
                        profile,
                        level,
                        rfc6381,
                        fps: fps(&s.timestamps, o.clock_rate),
                        gop_frames: gop(&s.keyframes),
                        b_frames: s.timestamps.windows(2).any(|w| w[1] < w[0]),
                    })
                }
                _ => None,
            };
            let audio = match params {
                Some(ParametersRef::Audio(p)) => Some(Audio {
                    sample_rate: p.clock_rate(),
                    channels: Some(p.channels().get()),
                }),
                _ if o.media == "audio" => Some(Audio {
                    sample_rate: o.clock_rate,
                    channels: o.channels,
                }),
                _ => None,
            };
            let secs = listened.as_secs_f64();
            Stream {
                index,
                media: o.media.clone(),
                codec: o.encoding.clone(),
                clock_rate: o.clock_rate,
                recorded: o.decision.starts_with("recording"),
                decision: o.decision.clone(),
                video,
                audio,
                frames: s.frames,
                kbit_per_s: (s.frames > 0 && secs > 0.0)
                    .then(|| s.bytes as f64 * 8.0 / 1000.0 / secs),
                sender_reports: s.reports.len() as u64,
                sender_report_interval_s: median(
                    s.reports
                        .windows(2)
                        .filter_map(|w| w[1].duration_since(w[0]).ok())
                        .map(|d| d.as_secs_f64())
                        .collect(),
                ),
            }
        })
        .collect()
}

/// Frames per second: the clock rate over the median step between presentation times.
fn fps(timestamps: &[i64], clock_rate: u32) -> Option<f64> {
    let mut sorted = timestamps.to_vec();
    sorted.sort_unstable();
    let steps: Vec<f64> = sorted
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64)
        .filter(|&d| d > 0.0)
        .collect();
    let step = median(steps)?;
    Some(f64::from(clock_rate) / step)
}

/// Frames between consecutive random-access points, the median.
fn gop(keyframes: &[u64]) -> Option<u64> {
    let gaps: Vec<f64> = keyframes.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    median(gaps).map(|g| g.round() as u64)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}
