//! The recording session: RTSP (RFC 2326) through retina, frames to the writer.
//!
//! One task does everything network-side: DESCRIBE/SETUP/PLAY, then pulls frames and RTCP
//! packets from retina, attaches each video frame's timing (its RTP timestamp and the wall
//! time its last packet was read) and any video sender reports received since the previous
//! frame, and queues it for the writer thread without ever waiting for the disk.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt as _;
use retina::client::{PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, ParametersRef};
use tokio::sync::watch;

use crate::cli::{self, Args, Source, Transport};
use crate::codec::{VideoCodec, g711};
use crate::mp4::{self, AudioInput, VideoInput};
use crate::output::{self, Message, Outcome, SendError, Writer};
use crate::timing::sei::{self, FrameTiming, SenderReport};

/// Frames that may wait for the disk before recording stops with an error: at 30 fps video
/// plus 50 audio frames/s, about 25 s of slack.
const WRITER_QUEUE_FRAMES: usize = 2048;

/// An error in how the tool was called (exit status 2), as opposed to one while recording.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Marks an error as bad usage (exit status 2).
pub fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError(e.to_string()))
}

/// `retina-record --url …`: records, then logs what was written.
pub async fn run(args: &Args, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    match record(args, stop).await? {
        Some(outcome) => log_outcome(&outcome),
        None => tracing::info!("stopped before the start time; nothing recorded"),
    }
    Ok(())
}

/// Records as `args` say until stopped. `Ok(None)`: stopped before recording began.
pub async fn record(
    args: &Args,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Outcome>> {
    let source = args.source().map_err(usage)?;
    let start = match args.start {
        Some(t) => Some(start_time_today(t).map_err(usage)?),
        None => None,
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => {
            let name = cli::camera_name(&source.url).await;
            let at = start.clone().unwrap_or_else(jiff::Zoned::now);
            cli::default_out_name(&at, &name)
        }
    };
    for path in [out.clone(), output::partial_path(&out)] {
        if path.exists() {
            bail!(
                "{} already exists; not overwriting an earlier recording",
                path.display()
            );
        }
    }
    tracing::info!(
        "recording {} to {}",
        cli::redacted(&source.url),
        out.display()
    );
    if let Some(start) = start {
        let wait = start.timestamp().duration_since(jiff::Timestamp::now());
        let wait = Duration::try_from(wait).unwrap_or_default();
        tracing::info!(
            "waiting until {} ({:.0} s) to start",
            start.time(),
            wait.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            Ok(()) = stop.changed() => return Ok(None),
        }
    }
    let secret = source.credentials.as_ref().map(|c| c.password.clone());
    let result = connect_and_record(args, &source, &out, stop).await;
    result.map(Some).map_err(|e| scrub(e, secret.as_deref()))
}

/// The next occurrence of `t` today; an error if it has passed.
fn start_time_today(t: jiff::civil::Time) -> anyhow::Result<jiff::Zoned> {
    let now = jiff::Zoned::now();
    let start = now
        .date()
        .to_datetime(t)
        .to_zoned(now.time_zone().clone())
        .context("cannot place --start in the local time zone")?;
    if start < now {
        bail!(
            "--start {t} has already passed today (it is now {})",
            now.time().round(jiff::Unit::Second).unwrap_or(now.time())
        );
    }
    Ok(start)
}

/// Removes a password from an error's text, whatever put it there.
fn scrub(e: anyhow::Error, secret: Option<&str>) -> anyhow::Error {
    match secret.filter(|s| !s.is_empty()) {
        Some(s) if format!("{e:#}").contains(s) => {
            let text = format!("{e:#}").replace(s, "***");
            if e.downcast_ref::<UsageError>().is_some() {
                usage(text)
            } else {
                anyhow!(text)
            }
        }
        _ => e,
    }
}

async fn connect_and_record(
    args: &Args,
    source: &Source,
    out: &std::path::Path,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Outcome> {
    let camera = cli::host_port(&source.url);
    let group = Arc::new(SessionGroup::default());
    let (mut session, selection) = tokio::select! {
        r = open_session(args, source, &group) => r?,
        Ok(()) = stop.changed() => bail!("stopped while connecting to camera {camera}"),
    };

    let config = mp4::Config {
        video: selection.video.map(|i| mp4::VideoConfig {
            codec: selection.codec,
            clock_rate: session.streams()[i].clock_rate_hz(),
        }),
        audio: selection.audio.as_ref().map(|(_, a, _)| a.clone()),
        fragment_duration: args.fragment_duration,
        timing: !args.no_timing_info,
        creation_time: jiff::Timestamp::now(),
    };
    let mut writer = Writer::start(out, config, WRITER_QUEUE_FRAMES)?;
    let mut state = LoopState {
        video_stream: selection.video,
        audio_format: selection.audio.as_ref().map_or(AudioFormat::Coded, |a| a.2),
        allow_loss: args.allow_loss,
        need_sample_entry: true,
        pending_reports: Vec::new(),
        video_frames: 0,
        last_video_ts: None,
        last_audio_ts: None,
        lost_packets: 0,
    };
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut attempts = 1;
    let stall = tokio::time::sleep(args.stall_timeout);
    tokio::pin!(stall);
    let mut last_item = tokio::time::Instant::now();
    let failure: Option<anyhow::Error> = loop {
        tokio::select! {
            biased;
            Ok(()) = stop.changed() => break None,
            _ = sleep_until(deadline) => {
                tracing::info!("--duration reached");
                break None;
            }
            () = &mut stall => {
                // Re-armed lazily: items only note their time, the timer checks it.
                let quiet_until = last_item + args.stall_timeout;
                if quiet_until > tokio::time::Instant::now() {
                    stall.as_mut().reset(quiet_until);
                    continue;
                }
                break Some(anyhow!(
                    "camera {camera} sent nothing for {:.0} s (--stall-timeout)",
                    args.stall_timeout.as_secs_f64()
                ));
            }
            _ = writer.failed() => break None, // its error comes from finish() below
            item = session.next() => match item {
                None => break Some(anyhow!("camera {camera} ended the stream")),
                // Joining a live broadcast (VLC's, say) mid-frame makes retina's depacketizer
                // fail on the first packets. Before any video frame, that is worth a fresh
                // session rather than the recording.
                Some(Err(e)) if state.video_frames == 0 && attempts < MAX_START_ATTEMPTS => {
                    attempts += 1;
                    tracing::warn!(
                        "camera {camera}: stream broke before the first frame ({}); \
                         reconnecting (attempt {attempts} of {MAX_START_ATTEMPTS})",
                        one_line(&e.to_string()).split("; ").next().unwrap_or_default()
                    );
                    if writer.send(Message::Restart).is_err() {
                        break None;
                    }
                    state.restart();
                    session = match open_session(args, source, &group).await {
                        Ok((s, _)) => s,
                        Err(e) => break Some(e),
                    };
                }
                Some(Err(e)) => break Some(camera_error(&e, source)),
                Some(Ok(item)) => {
                    last_item = tokio::time::Instant::now();
                    if let Err(e) = state.handle(item, &session, &writer) {
                        break Some(e);
                    }
                }
            },
        }
    };
    let finished = writer.finish().await;
    drop(session);
    // Let a pending TEARDOWN go out, but never hang on a dead camera.
    if tokio::time::timeout(Duration::from_secs(5), group.await_teardown())
        .await
        .is_err()
    {
        tracing::debug!("TEARDOWN did not complete within 5 s");
    }
    if state.lost_packets > 0 {
        tracing::warn!(
            "{} RTP packet(s) were lost during the recording",
            state.lost_packets
        );
    }
    match (failure, finished) {
        (None, result) => result,
        (Some(e), Ok(outcome)) => {
            log_outcome(&outcome);
            Err(anyhow!(
                "{e:#}; {} holds the {:.1} s recorded",
                outcome.path.display(),
                outcome.stats.duration_secs
            ))
        }
        (Some(e), Err(finish_err)) => {
            tracing::error!("{finish_err:#}");
            Err(e)
        }
    }
}

/// Sessions tried before the first video frame (see the main loop).
const MAX_START_ATTEMPTS: u32 = 5;

/// DESCRIBE, SETUP, PLAY.
async fn open_session(
    args: &Args,
    source: &Source,
    group: &Arc<SessionGroup>,
) -> anyhow::Result<(retina::client::Demuxed, Selection)> {
    let options = SessionOptions::default()
        .creds(source.credentials.clone())
        .session_group(group.clone())
        .user_agent(format!("retina-record/{}", env!("CARGO_PKG_VERSION")))
        .teardown(args.teardown);
    let mut session = Session::describe(source.url.clone(), options)
        .await
        .map_err(|e| camera_error(&e, source))?;
    let selection = select_streams(args, &session)?;
    setup_streams(
        &mut session,
        &selection,
        args.transport,
        args.allow_loss,
        source,
    )
    .await?;
    // No `enforce_timestamps_with_max_jump_secs`: it rejects any backward step, and RTP
    // timestamps of B-frames step backward in decode order (0.2's abort). Unenforced, retina
    // extends each timestamp by its signed 32-bit difference from the previous one.
    let play = PlayOptions::default()
        .initial_timestamp(args.initial_timestamp)
        .unknown_rtcp_ssrc(args.unknown_rtcp_ssrc);
    let session = session
        .play(play)
        .await
        .map_err(|e| camera_error(&e, source))?
        .demuxed()
        .map_err(|e| camera_error(&e, source))?;
    Ok((session, selection))
}

/// SETUPs the selected streams. With `auto`, TCP first; a `461 Unsupported Transport` (VLC's
/// answer, for one) switches this and later streams to UDP.
async fn setup_streams(
    session: &mut Session<retina::client::Described>,
    selection: &Selection,
    transport: Transport,
    allow_loss: bool,
    source: &Source,
) -> anyhow::Result<()> {
    const UNSUPPORTED_TRANSPORT: u16 = 461;
    let options = |udp: bool| {
        let t = if udp {
            retina::client::Transport::Udp(Default::default())
        } else {
            retina::client::Transport::Tcp(Default::default())
        };
        SetupOptions::default()
            .transport(t)
            .frame_format(retina::codec::FrameFormat::MP4)
    };
    let mut use_udp = transport == Transport::Udp;
    for &i in selection
        .video
        .iter()
        .chain(selection.audio.iter().map(|a| &a.0))
    {
        match session.setup(i, options(use_udp)).await {
            Ok(()) => {}
            Err(e)
                if transport == Transport::Auto
                    && !use_udp
                    && e.status_code() == Some(UNSUPPORTED_TRANSPORT) =>
            {
                tracing::info!(
                    "camera {} refused RTP over TCP (461 Unsupported Transport); using UDP{}",
                    cli::host_port(&source.url),
                    if allow_loss {
                        ""
                    } else {
                        " (lost or reordered packets stop the recording without --allow-loss)"
                    }
                );
                use_udp = true;
                session
                    .setup(i, options(true))
                    .await
                    .map_err(|e| camera_error(&e, source))?;
            }
            Err(e) => return Err(camera_error(&e, source)),
        }
    }
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

pub fn log_outcome(o: &Outcome) {
    let s = &o.stats;
    tracing::info!(
        "wrote {}: {:.1} s, {} video frames, {} audio frames, {} sender reports, {} fragments, \
         {} sample description(s)",
        o.path.display(),
        s.duration_secs,
        s.video_frames,
        s.audio_frames,
        s.sender_reports,
        s.fragments,
        s.sample_descriptions
    );
    if s.dropped_audio_before_start + s.dropped_audio_backward + s.shifted_audio > 0 {
        tracing::info!(
            "audio: dropped {} frame(s) from before the first video keyframe and {} that \
             overlapped the previous one too far; {} small step(s) back in time corrected by \
             moving the audio that follows later",
            s.dropped_audio_before_start,
            s.dropped_audio_backward,
            s.shifted_audio
        );
    }
    if s.dropped_empty > 0 {
        tracing::info!(
            "dropped {} empty frame(s) (video without a picture, audio without data)",
            s.dropped_empty
        );
    }
    if s.timestamp_jumps > 0 {
        tracing::warn!(
            "the camera's timestamps jumped {} time(s) (see above)",
            s.timestamp_jumps
        );
    }
}

struct Selection {
    video: Option<usize>,
    codec: VideoCodec,
    audio: Option<(usize, mp4::AudioConfig, AudioFormat)>,
}

/// How a stream's audio frames become MP4 samples.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AudioFormat {
    /// Access units as received (AAC).
    Coded,
    /// 16-bit big-endian samples as received (L16).
    L16 { channels: u32 },
    /// G.711 codes expanded to 16-bit linear PCM.
    G711 { law: g711::Law, channels: u32 },
}

/// Picks the video and audio streams to record: the ones `--video-stream`/`--audio-stream`
/// name, else the first of each kind that can be stored without transcoding. Logs what it took,
/// what it ignored and why.
fn select_streams(
    args: &Args,
    session: &Session<retina::client::Described>,
) -> anyhow::Result<Selection> {
    let streams = session.streams();
    let describe = |i: usize, s: &retina::client::Stream| {
        format!(
            "stream {i} ({} {}/{})",
            s.media(),
            s.encoding_name(),
            s.clock_rate_hz()
        )
    };
    for (flag, chosen, media, a_media) in [
        ("--video-stream", args.video_stream, "video", "a video"),
        ("--audio-stream", args.audio_stream, "audio", "an audio"),
    ] {
        match chosen.map(|n| (n, streams.get(n))) {
            Some((n, None)) => {
                return Err(usage(format!(
                    "{flag} {n}: the camera offers {} stream(s), numbered from 0",
                    streams.len()
                )));
            }
            Some((n, Some(s))) if s.media() != media => {
                return Err(usage(format!(
                    "{flag} {n}: {} is not {a_media} stream",
                    describe(n, s)
                )));
            }
            _ => {}
        }
    }
    let mut video = None;
    let mut codec = VideoCodec::H264;
    let mut audio = None;
    for (i, s) in streams.iter().enumerate() {
        let what = describe(i, s);
        let (skip_flag, chosen, taken) = match s.media() {
            "video" => (
                args.no_video.then_some("--no-video"),
                args.video_stream,
                video,
            ),
            "audio" => (
                args.no_audio.then_some("--no-audio"),
                args.audio_stream,
                audio.as_ref().map(|a: &(usize, _, _)| a.0),
            ),
            _ => {
                tracing::info!("ignoring {what}: not audio or video");
                continue;
            }
        };
        if let Some(flag) = skip_flag {
            tracing::info!("ignoring {what}: {flag}");
            continue;
        }
        match (chosen, taken) {
            (Some(n), _) if n != i => {
                tracing::info!("ignoring {what}: stream {n} was chosen");
                continue;
            }
            (None, Some(t)) => {
                tracing::info!("ignoring {what}: already recording stream {t}");
                continue;
            }
            _ => {}
        }
        let storable = match s.media() {
            "video" => s.encoding_name().parse::<VideoCodec>().map(|c| {
                video = Some(i);
                codec = c;
            }),
            _ => audio_config(s).map(|(config, format)| {
                audio = Some((i, config, format));
            }),
        };
        match storable {
            Ok(()) => tracing::info!("recording {what}"),
            Err(why) if chosen.is_some() => {
                return Err(usage(format!("{what} cannot be recorded: {why}")));
            }
            Err(why) => tracing::info!("ignoring {what}: {why}"),
        }
    }
    if video.is_none() && audio.is_none() {
        bail!("the camera offers no stream that can be recorded (see the log above)");
    }
    Ok(Selection {
        video,
        codec,
        audio,
    })
}

/// How an audio stream is stored, or why it cannot be.
fn audio_config(s: &retina::client::Stream) -> Result<(mp4::AudioConfig, AudioFormat), String> {
    let Some(ParametersRef::Audio(params)) = s.parameters() else {
        return Err("its parameters are unknown".into());
    };
    let channels = u32::from(params.channels().get());
    let format = match s.encoding_name() {
        "pcmu" => AudioFormat::G711 {
            law: g711::Law::Mu,
            channels,
        },
        "pcma" => AudioFormat::G711 {
            law: g711::Law::A,
            channels,
        },
        "l16" => AudioFormat::L16 { channels },
        _ => AudioFormat::Coded,
    };
    let sample_entry = match s.encoding_name() {
        "pcmu" | "pcma" | "l16" => {
            mp4::pcm_sample_entry(params.clock_rate(), params.channels().get())?
        }
        other => {
            let bytes = params.mp4_sample_entry().build().map_err(|_| {
                format!("{other} audio cannot be stored in MP4 without transcoding")
            })?;
            mp4::sample_entry_from_bytes(&bytes)
                .map_err(|e| format!("its sample entry is unusable: {e}"))?
        }
    };
    let config = mp4::AudioConfig {
        clock_rate: params.clock_rate(),
        sample_entry,
    };
    Ok((config, format))
}

struct LoopState {
    video_stream: Option<usize>,
    audio_format: AudioFormat,
    allow_loss: bool,
    need_sample_entry: bool,
    pending_reports: Vec<SenderReport>,
    video_frames: u64,
    last_video_ts: Option<retina::Timestamp>,
    last_audio_ts: Option<retina::Timestamp>,
    lost_packets: u64,
}

impl LoopState {
    /// Forgets what belonged to an abandoned session.
    fn restart(&mut self) {
        self.need_sample_entry = true;
        self.pending_reports.clear();
        self.last_video_ts = None;
        self.last_audio_ts = None;
    }

    fn handle(
        &mut self,
        item: CodecItem,
        session: &retina::client::Demuxed,
        writer: &Writer,
    ) -> anyhow::Result<()> {
        match item {
            CodecItem::VideoFrame(f) => {
                self.check_loss(f.loss(), "video", f.timestamp())?;
                self.video_frames += 1;
                let sample_entry = if self.need_sample_entry || f.has_new_parameters() {
                    match session.streams()[f.stream_id()].parameters() {
                        Some(ParametersRef::Video(p)) => {
                            let bytes = p.mp4_sample_entry().build().map_err(|e| {
                                anyhow!("cannot describe the camera's video parameters: {e}")
                            })?;
                            if !self.need_sample_entry {
                                tracing::info!(
                                    "video parameters changed: {}, {}x{}",
                                    p.rfc6381_codec(),
                                    p.pixel_dimensions().0,
                                    p.pixel_dimensions().1
                                );
                            }
                            self.need_sample_entry = false;
                            Some(Box::new(mp4::sample_entry_from_bytes(&bytes).map_err(
                                |e| anyhow!("cannot describe the camera's video parameters: {e}"),
                            )?))
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                let timing = FrameTiming {
                    recv: sei::ntp_from_system_time(f.end_ctx().received_wall().into()),
                    rtp: f.timestamp().timestamp() as u32,
                };
                let input = VideoInput {
                    pts: f.timestamp().elapsed(),
                    is_sync: f.is_random_access_point(),
                    sample_entry,
                    timing,
                    sender_reports: std::mem::take(&mut self.pending_reports),
                    data: f.into_data(),
                };
                self.send(writer, Message::Video(input))
            }
            CodecItem::AudioFrame(f) => {
                self.check_loss(f.loss(), "audio", f.timestamp())?;
                // Retina counts a PCM frame's length in samples of all channels together.
                let (data, samples) = match self.audio_format {
                    AudioFormat::Coded => (f.data().to_vec(), f.frame_length().get()),
                    AudioFormat::L16 { channels } => {
                        (f.data().to_vec(), f.frame_length().get() / channels)
                    }
                    AudioFormat::G711 { law, channels } => {
                        let mut pcm = Vec::new();
                        g711::expand_be(law, f.data(), &mut pcm);
                        (pcm, f.frame_length().get() / channels)
                    }
                };
                let input = AudioInput {
                    pts: f.timestamp().elapsed(),
                    samples,
                    data,
                };
                self.send(writer, Message::Audio(input))
            }
            CodecItem::Rtcp(rtcp) => {
                let sr = rtcp
                    .pkts()
                    .next()
                    .and_then(|p| p.as_sender_report().ok().flatten());
                match sr {
                    // Only the video stream's reports: another stream's RTP clock is different.
                    Some(sr) if Some(rtcp.stream_id()) == self.video_stream => {
                        self.pending_reports.push(SenderReport {
                            recv: sei::ntp_from_system_time(rtcp.ctx().received_wall().into()),
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
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Counts lost packets; without `--allow-loss`, loss after the first frame is an error
    /// naming the gap: the frames on either side, as RTP times and seconds into the stream.
    fn check_loss(&mut self, loss: u16, kind: &str, ts: retina::Timestamp) -> anyhow::Result<()> {
        let previous = match kind {
            "video" => self.last_video_ts.replace(ts),
            _ => self.last_audio_ts.replace(ts),
        };
        if loss == 0 {
            return Ok(());
        }
        self.lost_packets += u64::from(loss);
        // Loss before the first frame is just joining mid-stream.
        match previous {
            Some(prev) if !self.allow_loss => bail!(
                "lost {loss} RTP packet(s) of the {kind} stream between its frames at RTP time \
                 {} ({:.3} s into the stream) and {} ({:.3} s); pass --allow-loss to record \
                 through loss",
                prev.timestamp() as u32,
                prev.elapsed_secs(),
                ts.timestamp() as u32,
                ts.elapsed_secs()
            ),
            _ => tracing::debug!("lost {loss} RTP packet(s) before the {kind} frame at {ts}"),
        }
        Ok(())
    }

    fn send(&self, writer: &Writer, msg: Message) -> anyhow::Result<()> {
        match writer.send(msg) {
            Ok(()) => Ok(()),
            Err(SendError::QueueFull { capacity }) => {
                bail!("the disk is not keeping up: {capacity} frames are waiting to be written")
            }
            // The writer's own error is reported when it is finished.
            Err(SendError::WriterGone) => Ok(()),
        }
    }
}

/// One line about a retina error, naming the camera; 401s explained.
fn camera_error(e: &retina::Error, source: &Source) -> anyhow::Error {
    let camera = cli::host_port(&source.url);
    match e.status_code() {
        Some(401) if source.credentials.is_some() => {
            anyhow!("camera {camera} rejected the credentials (401 Unauthorized)")
        }
        Some(401) => anyhow!(
            "camera {camera} requires credentials (401 Unauthorized): pass --username with \
             --password-file, or set RTSP_USERNAME and RTSP_PASSWORD"
        ),
        Some(404) => anyhow!(
            "camera {camera} has no stream at {} (404 Not Found)",
            source.url.path()
        ),
        _ => anyhow!("camera {camera}: {}", one_line(&e.to_string())),
    }
}

/// Joins a multi-line message (retina's carry connection and packet context on extra lines).
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
