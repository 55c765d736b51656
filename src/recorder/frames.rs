//! Retina's items to the muxer's inputs: each video frame with its timing (RTP timestamp,
//! receive time) and the video sender reports (RFC 3550 §6.4.1) received since the frame
//! before; audio in the form it is stored in; lost packets counted or refused.

use anyhow::{Context as _, bail};
use retina::client::Demuxed;
use retina::codec::{AudioFrame, CodecItem, ParametersRef, VideoFrame};

use crate::codec::audio::AudioFormat;
use crate::config::{Field, RecorderConfig, Wording};
use crate::mp4::{AudioInput, VideoInput, entry};
use crate::ntp;
use crate::output::Message;
use crate::rtsp::select::Selection;
use crate::sei::{FrameTiming, SenderReport};
use crate::throttle::{Throttle, held_back_note};

/// Receive times, where they are taken: retina's (when it read the packet), or the bridge's
/// (when the packet arrived from the camera: `rtsp/bridge/`).
struct Arrivals {
    noted: Option<crate::rtsp::bridge::Arrivals>,
    /// The interleaved channels of the video and the audio: retina sets the streams up on
    /// channels 0, 2, … in order.
    video: Option<u8>,
    audio: Option<u8>,
}

impl Arrivals {
    fn of(selection: &Selection) -> Arrivals {
        let video = selection.video.map(|_| 0);
        let audio = selection
            .audio
            .as_ref()
            .map(|_| if video.is_some() { 2 } else { 0 });
        Arrivals {
            noted: selection.arrivals.clone(),
            video,
            audio,
        }
    }

    /// The receive time (NTP format) of the packet on `channel` with RTP time `rtp`: the
    /// bridge's, or retina's `read`.
    fn at(&self, channel: Option<u8>, rtp: u32, read: std::time::SystemTime) -> u64 {
        let noted = self
            .noted
            .as_ref()
            .zip(channel)
            .and_then(|(a, c)| a.of(c, rtp));
        ntp::from_system_time(noted.unwrap_or(read))
    }
}

/// The state that turns one recording's retina items into writer messages; it outlives the
/// sessions of a recording.
pub(crate) struct FrameMapper {
    /// Where receive times come from.
    arrivals: Arrivals,
    /// `host:port`, for messages.
    camera: String,
    video_stream: Option<usize>,
    audio_format: AudioFormat,
    /// Stop at the first loss instead of recording through it.
    stop_on_loss: bool,
    /// How messages name stop_on_loss.
    wording: Wording,
    need_sample_entry: bool,
    pending_reports: Vec<SenderReport>,
    /// Video frames received so far.
    pub video_frames: u64,
    last_video_ts: Option<retina::Timestamp>,
    last_audio_ts: Option<retina::Timestamp>,
    /// RTP packets lost so far (recorded through), after each stream's first frame of a
    /// session: loss before it is only where the session joined the stream.
    pub lost_packets: u64,
    loss_warnings: Throttle,
}

impl FrameMapper {
    pub(super) fn new(selection: &Selection, config: &RecorderConfig) -> FrameMapper {
        FrameMapper {
            camera: config.source.host_port(),
            video_stream: selection.video.map(|v| v.0),
            audio_format: selection.audio.as_ref().map_or(AudioFormat::Coded, |a| a.2),
            stop_on_loss: config.stop_on_loss,
            wording: config.wording,
            need_sample_entry: true,
            arrivals: Arrivals::of(selection),
            pending_reports: Vec::new(),
            video_frames: 0,
            last_video_ts: None,
            last_audio_ts: None,
            lost_packets: 0,
            loss_warnings: Throttle::new(),
        }
    }

    /// Whether the recording has a video stream.
    pub(super) fn records_video(&self) -> bool {
        self.video_stream.is_some()
    }

    /// A new session of the same recording: its streams, parameters and clocks start afresh.
    pub(super) fn new_session(&mut self, selection: &Selection) {
        self.arrivals = Arrivals::of(selection);
        self.video_stream = selection.video.map(|v| v.0);
        if let Some(audio) = &selection.audio {
            self.audio_format = audio.2;
        }
        self.need_sample_entry = true;
        self.pending_reports.clear();
        self.last_video_ts = None;
        self.last_audio_ts = None;
    }
    /// The message for the writer that `item` makes, if any.
    pub(super) fn map(
        &mut self,
        item: CodecItem,
        session: &Demuxed,
    ) -> anyhow::Result<Option<Message>> {
        match item {
            CodecItem::VideoFrame(f) => self.video(f, session).map(Some),
            CodecItem::AudioFrame(f) => self.audio(&f).map(Some),
            CodecItem::Rtcp(rtcp) => {
                let sr = rtcp
                    .pkts()
                    .next()
                    .and_then(|p| p.as_sender_report().ok().flatten());
                match sr {
                    // Only the video stream's reports: another stream's RTP clock is different.
                    Some(sr) if Some(rtcp.stream_id()) == self.video_stream => {
                        self.pending_reports.push(SenderReport {
                            recv: self.arrivals.at(
                                self.arrivals.video.map(|c| c + 1),
                                sr.rtp_timestamp(),
                                rtcp.ctx().received_wall().into(),
                            ),
                            ntp: sr.ntp_timestamp().0,
                            rtp: sr.rtp_timestamp(),
                        });
                    }
                    Some(sr) => tracing::trace!(
                        "sender report of stream {} not stored: {:?}",
                        rtcp.stream_id(),
                        sr.ntp_timestamp()
                    ),
                    None => {}
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn video(&mut self, f: VideoFrame, session: &Demuxed) -> anyhow::Result<Message> {
        self.check_loss(f.loss(), "video", f.timestamp())?;
        self.video_frames += 1;
        let sample_entry = if self.need_sample_entry || f.has_new_parameters() {
            self.video_sample_entry(session, f.stream_id())?
        } else {
            None
        };
        let timing = FrameTiming {
            recv: self.arrivals.at(
                self.arrivals.video,
                f.timestamp().timestamp() as u32,
                f.end_ctx().received_wall().into(),
            ),
            rtp: f.timestamp().timestamp() as u32,
            conn: None,
        };
        Ok(Message::Video(VideoInput {
            pts: f.timestamp().elapsed(),
            is_sync: f.is_random_access_point(),
            sample_entry,
            timing,
            sender_reports: std::mem::take(&mut self.pending_reports),
            data: f.into_data(),
        }))
    }

    /// The sample entry for the stream's current parameters, if retina knows them yet.
    fn video_sample_entry(
        &mut self,
        session: &Demuxed,
        stream: usize,
    ) -> anyhow::Result<Option<Box<mp4_atom::Codec>>> {
        let Some(ParametersRef::Video(p)) = session.streams()[stream].parameters() else {
            return Ok(None);
        };
        let what = "cannot describe the camera's video parameters";
        let bytes = p
            .mp4_sample_entry()
            .build()
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        if !self.need_sample_entry {
            let (width, height) = p.pixel_dimensions();
            tracing::info!(
                "video parameters changed: {}, {width}x{height}",
                p.rfc6381_codec()
            );
        }
        self.need_sample_entry = false;
        let entry = entry::from_bytes(&bytes).with_context(|| what.to_owned())?;
        Ok(Some(Box::new(entry)))
    }

    fn audio(&mut self, f: &AudioFrame) -> anyhow::Result<Message> {
        self.check_loss(f.loss(), "audio", f.timestamp())?;
        let (data, samples) = self
            .audio_format
            .to_sample(f.data(), f.frame_length().get());
        Ok(Message::Audio(AudioInput {
            pts: f.timestamp().elapsed(),
            samples,
            recv: self.arrivals.at(
                self.arrivals.audio,
                f.timestamp().timestamp() as u32,
                f.ctx().received_wall().into(),
            ),
            data,
        }))
    }

    /// Counts lost packets (with `stop_on_loss`, loss after the stream's first frame is an
    /// error naming the gap: seconds into the stream). Loss before it is only where the
    /// session joined the stream.
    fn check_loss(&mut self, loss: u16, kind: &str, ts: retina::Timestamp) -> anyhow::Result<()> {
        let previous = match kind {
            "video" => self.last_video_ts.replace(ts),
            _ => self.last_audio_ts.replace(ts),
        };
        if loss == 0 {
            return Ok(());
        }
        let Some(prev) = previous else {
            tracing::debug!("lost {loss} RTP packet(s) before the {kind} frame at {ts}");
            return Ok(());
        };
        let (from, to) = (prev.timestamp() as u32, ts.timestamp() as u32);
        if self.stop_on_loss {
            tracing::debug!(
                "lost {loss} RTP packet(s) of {kind} between RTP times {from} and {to}"
            );
            bail!(
                "camera {} lost {loss} RTP packet(s) of {kind} {:.3}–{:.3} s into the stream; \
                 stopping ({})",
                self.camera,
                prev.elapsed_secs(),
                ts.elapsed_secs(),
                self.wording.of(Field::StopOnLoss)
            );
        }
        self.lost_packets += u64::from(loss);
        if let Some(held_back) = self.loss_warnings.hit() {
            tracing::warn!(
                "camera {} lost {loss} RTP packet(s) of {kind} between RTP times {from} and {to}; \
                 recording through{}",
                self.camera,
                held_back_note(held_back)
            );
        }
        Ok(())
    }
}
