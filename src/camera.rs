//! A camera on demand: an RTSP server (RFC 2326) that serves built-in or given clips over
//! RTP/RTCP (RFC 3550), TCP-interleaved or UDP, to any number of clients.
//!
//! `retina-record camera` ships it for pipeline testing, `retina-record demo` records from it,
//! and the tests use it for control and fault injection. One piece of code for all three.
//!
//! * H.264 is packetized per RFC 6184 (single NAL units and FU-A), H.265 per RFC 7798 (single
//!   NAL units and FUs), parameter sets in-band before every keyframe as cameras do; AAC per
//!   RFC 3640 (`AAC-hbr`, one AU per packet); G.711 (PCMU, PCMA) and L16 per RFC 3551, 20 ms
//!   per packet.
//! * Clips play in sequence and loop, with RTP timestamps continuing across the joins. The RTP
//!   timestamps start close to 2^32 so they wrap a few seconds in, as a long-running camera's do.
//! * A sender report goes out for each stream once per second of media. Its NTP time comes from a
//!   clock the caller sets: `ntp_base` is the NTP time of media time 0.
//! * With `keep_log`, every frame's send time (after its last packet was handed to the socket)
//!   and every SR is logged, for tests to compare with a recording.
//! * Faults on demand: [`Camera::drop_connections`], [`Camera::stall`]; and the quirks real
//!   cameras have, set up front with [`Quirks`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, watch};

use crate::codec::g711;
use crate::codec::h26x::{self, VideoCodec};
use crate::mp4::read::Recording;
use crate::timing::sei;

/// First RTP timestamp of each stream: they wrap a few seconds into the stream (not at the same
/// second, so that no audio SR can be mistaken for a video one).
const VIDEO_RTP_START: u32 = u32::MAX - 2 * 90_000 + 1;
const AUDIO_RTP_START: u32 = u32::MAX - 3 * 16_000 + 1;
const SSRCS: [u32; 2] = [0x5649_4445, 0x4155_4449];
const FIRST_SEQ: [u16; 2] = [65_000, 30_000];
const MAX_PAYLOAD: usize = 1400;
const SESSION_ID: &str = "12345678";
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The clips built into the binary (see `clips/make-clips.sh`): 320x240 25 fps + AAC-LC 16 kHz
/// mono, 4 s; and the same tone as raw G.711.
const BUILTIN_H264_AAC: &[u8] = include_bytes!("../clips/h264_aac.mp4");
const BUILTIN_H265_AAC: &[u8] = include_bytes!("../clips/h265_aac.mp4");
const TONE_PCMU_8K: &[u8] = include_bytes!("../clips/tone_8k.pcmu");
const TONE_PCMA_16K: &[u8] = include_bytes!("../clips/tone_16k.pcma");

pub struct CameraConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Clips served in sequence, looping.
    pub clips: Vec<Clip>,
    /// 1.0 is real time; 4.0 four times as fast.
    pub speed: f64,
    /// NTP time (64-bit format) of media time 0.
    pub ntp_base: u64,
    /// Serve the clips' audio as a second stream.
    pub audio: bool,
    /// Require HTTP Basic authentication with these.
    pub credentials: Option<(String, String)>,
    /// Keep a [`Log`] of every frame and sender report sent (grows without bound: for tests).
    pub keep_log: bool,
    pub quirks: Quirks,
}

/// What real cameras do that a recorder must survive; all off by default. Times are media
/// seconds since the session's start.
#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// Leave the parameter sets out of the SDP and out of the session's first keyframe: frames,
    /// a keyframe among them, arrive before any parameter set.
    pub no_sdp_parameters: bool,
    /// Start each session at this video frame of the first clip (mid-GOP: the frames before the
    /// next keyframe cannot be decoded). The first sender reports still go out before it.
    pub start_at_frame: usize,
    /// After every Nth video frame, an access unit without a picture (one filler-data NAL unit,
    /// its own timestamp); every Nth AAC frame is sent empty (a zero-size AU).
    pub empty_frames_every: Option<usize>,
    /// Don't send the video frame due at this time (its packets' sequence numbers are used up,
    /// so the receiver sees the loss). It is not logged as sent.
    pub lose_video_frame_at: Option<f64>,
    /// From this time on, both streams' RTP timestamps (and their sender reports) jump by this
    /// many seconds, forward or back: a camera whose clock was reset.
    pub timestamp_jump: Option<(f64, f64)>,
    /// From this time on, audio timestamps are this many seconds earlier (some servers' audio
    /// steps back ~20 ms).
    pub audio_step_back: Option<(f64, f64)>,
}

impl CameraConfig {
    /// Loopback, any free port, real time, audio on, SR clock at the current time.
    pub fn new(clips: Vec<Clip>) -> Self {
        CameraConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clips,
            speed: 1.0,
            ntp_base: sei::ntp_from_system_time(std::time::SystemTime::now()),
            audio: true,
            credentials: None,
            keep_log: false,
            quirks: Quirks::default(),
        }
    }
}

/// A frame as the camera sent it.
#[derive(Clone, Debug)]
pub struct SentFrame {
    /// 0 video, 1 audio.
    pub stream: usize,
    /// The 32-bit RTP timestamp on the wire.
    pub rtp: u32,
    /// Presentation time in the stream's clock since the session start (no wrap).
    pub pts: i64,
    pub keyframe: bool,
    /// Wall time after its last packet was handed to the socket, NTP format.
    pub sent_ntp: u64,
}

/// A sender report as the camera sent it.
#[derive(Clone, Debug)]
pub struct SentReport {
    pub stream: usize,
    /// Video frames the camera had sent before this report: the index of the next one.
    pub after_video_frames: usize,
    pub ntp: u64,
    pub rtp: u32,
}

#[derive(Default)]
pub struct Log {
    pub frames: Vec<SentFrame>,
    pub reports: Vec<SentReport>,
}

struct Shared {
    config: CameraConfig,
    log: Mutex<Log>,
    /// Media seconds sent by the latest session.
    progress: watch::Sender<f64>,
    drop_all: Notify,
    stall_until: Mutex<Option<tokio::time::Instant>>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running camera; dropping it stops it and closes every connection.
pub struct Camera {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.drop_all.notify_waiters();
    }
}

impl Camera {
    pub async fn start(config: CameraConfig) -> anyhow::Result<Camera> {
        if config.clips.is_empty() {
            bail!("the camera needs at least one clip");
        }
        if !(config.speed.is_finite() && config.speed > 0.0) {
            bail!(
                "camera speed must be a positive number, not {}",
                config.speed
            );
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            log: Mutex::new(Log::default()),
            progress: watch::channel(0.0).0,
            drop_all: Notify::new(),
            stall_until: Mutex::new(None),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((conn, peer)) => {
                        tracing::info!("client {peer} connected");
                        let s = s.clone();
                        tokio::spawn(async move {
                            match serve_connection(conn, s).await {
                                Ok(()) => tracing::info!("client {peer} left"),
                                Err(e) => tracing::info!("client {peer} left: {e:#}"),
                            }
                        });
                    }
                    // Out of file descriptors, say: don't spin.
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(Camera { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("rtsp://{}/demo", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the current session has sent `secs` of media.
    pub async fn wait_sent(&self, secs: f64) {
        let mut rx = self.shared.progress.subscribe();
        let _ = rx.wait_for(|&t| t >= secs).await;
    }

    /// What was sent (empty unless `keep_log`).
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.log()
    }

    /// Closes every client connection now.
    pub fn drop_connections(&self) {
        self.shared.drop_all.notify_waiters();
    }

    /// Sends nothing for `d` (media is delayed, not lost).
    pub fn stall(&self, d: Duration) {
        *self
            .shared
            .stall_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(tokio::time::Instant::now() + d);
    }
}

/// The audio codecs the camera serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC with its AudioSpecificConfig.
    Aac(Vec<u8>),
    Pcmu,
    Pcma,
    /// 16-bit big-endian linear PCM.
    L16,
}

/// A clip's audio: frames of `(time at rate, payload)`.
struct ClipAudio {
    codec: AudioCodec,
    rate: u32,
    frames: Vec<(i64, Vec<u8>)>,
}

impl ClipAudio {
    /// Raw samples cut into 20 ms frames, as cameras packetize G.711 (RFC 3551 §4.2).
    fn raw(codec: AudioCodec, rate: u32, bytes_per_sample: usize, samples: &[u8]) -> ClipAudio {
        let per_frame = rate as usize / 50;
        let frames = samples
            .chunks(per_frame * bytes_per_sample)
            .enumerate()
            .map(|(i, chunk)| ((i * per_frame) as i64, chunk.to_vec()))
            .collect();
        ClipAudio {
            codec,
            rate,
            frames,
        }
    }
}

/// A video frame of a clip, at 90 kHz.
struct ClipFrame {
    dts: i64,
    pts: i64,
    keyframe: bool,
    nals: Vec<Vec<u8>>,
}

/// One clip's samples, ready to send.
pub struct Clip {
    codec: VideoCodec,
    /// Sent before every keyframe, and in the SDP: H.264 SPS, PPS; H.265 VPS, SPS, PPS.
    parameter_sets: Vec<Vec<u8>>,
    video: Vec<ClipFrame>,
    audio: Option<ClipAudio>,
    /// Video length at 90 kHz: the timestamp offset of the next loop.
    duration: i64,
}

impl Clip {
    /// The clip built into the binary for `video` (`h264`, `h265`) + `audio` (`aac`, `pcmu`,
    /// `pcma`, `l16`, `none`). PCMU is 8 kHz; PCMA and L16 are 16 kHz, a rate other than
    /// G.711's usual one, on purpose.
    pub fn builtin(video: &str, audio: &str) -> anyhow::Result<Clip> {
        let mp4 = match video {
            "h264" => BUILTIN_H264_AAC,
            "h265" => BUILTIN_H265_AAC,
            other => bail!("the built-in camera has no {other} video (it has: h264, h265)"),
        };
        let mut clip = Clip::from_recording(Recording::from_bytes(mp4)?)?;
        clip.audio = match audio {
            "aac" => clip.audio,
            "none" => None,
            "pcmu" => Some(ClipAudio::raw(AudioCodec::Pcmu, 8000, 1, TONE_PCMU_8K)),
            "pcma" => Some(ClipAudio::raw(AudioCodec::Pcma, 16_000, 1, TONE_PCMA_16K)),
            "l16" => {
                let mut linear = Vec::new();
                g711::expand_be(g711::Law::A, TONE_PCMA_16K, &mut linear);
                Some(ClipAudio::raw(AudioCodec::L16, 16_000, 2, &linear))
            }
            other => bail!(
                "the built-in camera has no {other} audio (it has: aac, pcmu, pcma, l16, none)"
            ),
        };
        Ok(clip)
    }

    /// A clip from a fragmented MP4 file (H.264 or H.265 at 90 kHz, optional AAC).
    pub fn from_file(path: &Path) -> anyhow::Result<Clip> {
        Clip::from_recording(Recording::open(path)?)
            .with_context(|| format!("clip {}", path.display()))
    }

    fn from_recording(rec: Recording) -> anyhow::Result<Clip> {
        let v = rec.video_track().context("no video track")?;
        anyhow::ensure!(v.timescale == 90_000, "video timescale must be 90 kHz");
        let (codec, parameter_sets) = match v.sample_entries.first() {
            Some(mp4_atom::Codec::Avc1(avc1)) => {
                let sps = avc1.avcc.sequence_parameter_sets.first();
                let pps = avc1.avcc.picture_parameter_sets.first();
                let (Some(sps), Some(pps)) = (sps, pps) else {
                    bail!("no SPS/PPS");
                };
                anyhow::ensure!(sps.len() >= 4, "SPS too short");
                (VideoCodec::H264, vec![sps.clone(), pps.clone()])
            }
            Some(mp4_atom::Codec::Hvc1(hvc1)) => {
                let mut sets = Vec::new();
                for t in h26x::H265_PARAMETER_SET_TYPES {
                    let set = hvc1.hvcc.arrays.iter().find(|a| a.nal_unit_type == t);
                    let Some(nal) = set.and_then(|a| a.nalus.first()) else {
                        bail!("no NAL unit of type {t} in hvcC");
                    };
                    sets.push(nal.clone());
                }
                (VideoCodec::H265, sets)
            }
            _ => bail!("video is neither avc1 nor hvc1"),
        };
        let mut video = Vec::new();
        let mut duration = 0;
        for s in rec.track_samples(v.track_id) {
            let data = rec.read_sample(s)?;
            let nals = h26x::nal_units(&data)
                .map(|n| n.map(<[u8]>::to_vec))
                .collect::<Result<_, _>>()?;
            video.push(ClipFrame {
                dts: s.dts as i64,
                pts: s.pts(),
                keyframe: s.is_sync,
                nals,
            });
            duration = duration.max((s.dts + u64::from(s.duration)) as i64);
        }
        anyhow::ensure!(!video.is_empty(), "no video samples");
        // Presentation starts at 0 whatever edit the encoder applied.
        let min_pts = video.iter().map(|f| f.pts).min().unwrap_or(0);
        for f in &mut video {
            f.pts -= min_pts;
        }
        let mut audio = None;
        if let Some(a) = rec.audio_track()
            && let Some(mp4_atom::Codec::Mp4a(mp4a)) = a.sample_entries.first()
            && let Some(ds) = &mp4a.esds.es_desc.dec_config.dec_specific
        {
            let mut config = ds.raw.clone();
            if config.is_empty() {
                config = vec![
                    (ds.profile << 3) | (ds.freq_index >> 1),
                    (ds.freq_index << 7) | (ds.chan_conf << 3),
                ];
            }
            // Only frames that end within the video: a looping clip's audio must not overlap
            // itself at the join (no camera's does).
            let end = duration * i64::from(a.timescale) / 90_000;
            let mut frames = Vec::new();
            for s in rec.track_samples(a.track_id) {
                if s.dts as i64 + i64::from(s.duration) <= end {
                    frames.push((s.dts as i64, rec.read_sample(s)?));
                }
            }
            if !frames.is_empty() {
                audio = Some(ClipAudio {
                    codec: AudioCodec::Aac(config),
                    rate: a.timescale,
                    frames,
                });
            }
        }
        Ok(Clip {
            codec,
            parameter_sets,
            video,
            audio,
            duration,
        })
    }

    fn has_audio(&self) -> bool {
        self.audio.is_some()
    }
}

struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a stream's packets go.
#[derive(Clone)]
enum Dest {
    Tcp {
        channel: u8,
    },
    Udp {
        rtp: Arc<UdpSocket>,
        rtcp: Arc<UdpSocket>,
        peer_rtp: SocketAddr,
        peer_rtcp: SocketAddr,
    },
}

type Writer = Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>;

async fn serve_connection(conn: TcpStream, shared: Arc<Shared>) -> anyhow::Result<()> {
    let peer = conn.peer_addr()?;
    let (mut rd, wr) = conn.into_split();
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(wr));
    let mut buf = Vec::new();
    let mut dests: [Option<Dest>; 2] = [None, None];
    let mut streaming: Option<tokio::task::JoinHandle<()>> = None;
    let result = async {
        loop {
            let req = tokio::select! {
                r = read_request(&mut rd, &mut buf) => r?,
                _ = shared.drop_all.notified() => return Ok(()),
            };
            let Some(req) = req else { return Ok(()) };
            let cseq = req.header("CSeq").unwrap_or("0").to_owned();
            if let Some((user, pass)) = &shared.config.credentials {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                );
                if req.header("Authorization") != Some(expected.as_str()) {
                    respond(&writer, "401 Unauthorized", &cseq, &["WWW-Authenticate: Basic realm=\"retina-record camera\"".into()], "").await?;
                    continue;
                }
            }
            match req.method.as_str() {
                "OPTIONS" => {
                    respond(&writer, "200 OK", &cseq, &["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER".into()], "").await?
                }
                "DESCRIBE" => {
                    let base = format!("{}/", req.url.trim_end_matches('/'));
                    let sdp = sdp(&shared);
                    respond(&writer, "200 OK", &cseq, &[format!("Content-Base: {base}"), "Content-Type: application/sdp".into()], &sdp).await?
                }
                "SETUP" => {
                    let track: usize = req.url.rsplit("trackID=").next().and_then(|t| t.parse().ok()).unwrap_or(9);
                    let transport = req.header("Transport").unwrap_or("").to_owned();
                    let audio = shared.config.audio && shared.config.clips[0].has_audio();
                    if track > 1 || (track == 1 && !audio) {
                        respond(&writer, "404 Not Found", &cseq, &[], "").await?;
                        continue;
                    }
                    let ssrc = SSRCS[track];
                    let (dest, reply) = if let Some(il) = param(&transport, "interleaved") {
                        let channel: u8 = il.split('-').next().and_then(|c| c.parse().ok()).unwrap_or(0);
                        (Dest::Tcp { channel }, format!("RTP/AVP/TCP;unicast;interleaved={il};ssrc={ssrc:08X}"))
                    } else if let Some(ports) = param(&transport, "client_port") {
                        let mut p = ports.split('-').filter_map(|p| p.parse::<u16>().ok());
                        let rtp_port = p.next().unwrap_or(0);
                        let rtcp_port = p.next().unwrap_or(rtp_port.saturating_add(1));
                        let (rtp, rtcp) = udp_pair().await?;
                        let reply = format!(
                            "RTP/AVP;unicast;client_port={rtp_port}-{rtcp_port};server_port={}-{};ssrc={ssrc:08X}",
                            rtp.local_addr()?.port(),
                            rtcp.local_addr()?.port()
                        );
                        (Dest::Udp {
                            rtp: Arc::new(rtp),
                            rtcp: Arc::new(rtcp),
                            peer_rtp: SocketAddr::new(peer.ip(), rtp_port),
                            peer_rtcp: SocketAddr::new(peer.ip(), rtcp_port),
                        }, reply)
                    } else {
                        respond(&writer, "461 Unsupported Transport", &cseq, &[], "").await?;
                        continue;
                    };
                    dests[track] = Some(dest);
                    respond(&writer, "200 OK", &cseq, &[format!("Transport: {reply}"), format!("Session: {SESSION_ID};timeout=60")], "").await?
                }
                "PLAY" => {
                    let base = req.url.trim_end_matches('/').to_owned();
                    let mut infos = Vec::new();
                    for (i, d) in dests.iter().enumerate() {
                        if d.is_some() {
                            let start = if i == 0 { VIDEO_RTP_START } else { AUDIO_RTP_START };
                            infos.push(format!("url={base}/trackID={i};seq={};rtptime={start}", FIRST_SEQ[i]));
                        }
                    }
                    respond(&writer, "200 OK", &cseq, &[format!("Session: {SESSION_ID}"), "Range: npt=0.000-".into(), format!("RTP-Info: {}", infos.join(","))], "").await?;
                    if let Some(t) = streaming.take() {
                        t.abort();
                    }
                    let (s, w, d) = (shared.clone(), writer.clone(), dests.clone());
                    streaming = Some(tokio::spawn(async move {
                        let _ = stream_media(s, w, d).await;
                    }));
                }
                "TEARDOWN" => {
                    if let Some(t) = streaming.take() {
                        t.abort();
                    }
                    respond(&writer, "200 OK", &cseq, &[format!("Session: {SESSION_ID}")], "").await?;
                }
                "GET_PARAMETER" | "SET_PARAMETER" => {
                    respond(&writer, "200 OK", &cseq, &[format!("Session: {SESSION_ID}")], "").await?
                }
                _ => respond(&writer, "501 Not Implemented", &cseq, &[], "").await?,
            }
        }
    }
    .await;
    if let Some(t) = streaming.take() {
        t.abort();
    }
    let _ = writer.lock().await.shutdown().await;
    result
}

fn param<'a>(transport: &'a str, name: &str) -> Option<&'a str> {
    transport
        .split(';')
        .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
}

async fn udp_pair() -> anyhow::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..50 {
        let rtp = UdpSocket::bind("127.0.0.1:0").await?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 0
            && let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)).await
        {
            return Ok((rtp, rtcp));
        }
    }
    anyhow::bail!("no even/odd UDP port pair")
}

/// Reads one RTSP request, skipping any interleaved data the client sends.
async fn read_request(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut Vec<u8>,
) -> anyhow::Result<Option<Request>> {
    loop {
        while buf.first() == Some(&b'$') {
            if buf.len() < 4 {
                break;
            }
            let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < len {
                break;
            }
            buf.drain(..len);
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.lines();
            let mut first = lines.next().unwrap_or("").split_whitespace();
            let method = first.next().unwrap_or("").to_owned();
            let url = first.next().unwrap_or("").to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            let body_len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + body_len {
                buf.drain(..end + 4 + body_len);
                return Ok(Some(Request {
                    method,
                    url,
                    headers,
                }));
            }
        }
        // Requests are small; a client that sends more without finishing one is not a client.
        if buf.len() > MAX_REQUEST_BYTES {
            bail!("request over {MAX_REQUEST_BYTES} bytes");
        }
        let mut chunk = [0u8; 4096];
        let n = rd.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(
    writer: &Writer,
    status: &str,
    cseq: &str,
    headers: &[String],
    body: &str,
) -> anyhow::Result<()> {
    let mut msg = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: retina-record camera\r\n");
    for h in headers {
        msg.push_str(h);
        msg.push_str("\r\n");
    }
    if !body.is_empty() {
        msg.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    msg.push_str("\r\n");
    msg.push_str(body);
    writer.lock().await.write_all(msg.as_bytes()).await?;
    Ok(())
}

fn sdp(shared: &Shared) -> String {
    let clip = &shared.config.clips[0];
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let ps = &clip.parameter_sets;
    let bare = shared.config.quirks.no_sdp_parameters;
    let video = match clip.codec {
        VideoCodec::H264 if bare => {
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n".into()
        }
        VideoCodec::H264 => format!(
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id={:02X}{:02X}{:02X};\
             sprop-parameter-sets={},{}\r\n",
            ps[0][1],
            ps[0][2],
            ps[0][3],
            b64(&ps[0]),
            b64(&ps[1])
        ),
        VideoCodec::H265 if bare => "a=rtpmap:96 H265/90000\r\n".into(),
        VideoCodec::H265 => format!(
            "a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps={};sprop-sps={};sprop-pps={}\r\n",
            b64(&ps[0]),
            b64(&ps[1]),
            b64(&ps[2])
        ),
    };
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=retina-record camera\r\nt=0 0\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\n{video}a=control:trackID=0\r\n"
    );
    if let Some(audio) = clip.audio.as_ref().filter(|_| shared.config.audio) {
        let pt = audio_payload_type(audio);
        let rate = audio.rate;
        let format = match &audio.codec {
            AudioCodec::Aac(config) => {
                let config: String = config.iter().map(|b| format!("{b:02X}")).collect();
                format!(
                    "a=rtpmap:{pt} MPEG4-GENERIC/{rate}/1\r\na=fmtp:{pt} streamtype=5;\
                     profile-level-id=15;mode=AAC-hbr;sizelength=13;indexlength=3;\
                     indexdeltalength=3;config={config}\r\n"
                )
            }
            AudioCodec::Pcmu => format!("a=rtpmap:{pt} PCMU/{rate}\r\n"),
            AudioCodec::Pcma => format!("a=rtpmap:{pt} PCMA/{rate}\r\n"),
            AudioCodec::L16 => format!("a=rtpmap:{pt} L16/{rate}/1\r\n"),
        };
        s.push_str(&format!(
            "m=audio 0 RTP/AVP {pt}\r\nc=IN IP4 0.0.0.0\r\n{format}a=control:trackID=1\r\n"
        ));
    }
    s
}

/// RFC 3551's static payload types for 8 kHz G.711; a dynamic one otherwise.
fn audio_payload_type(audio: &ClipAudio) -> u8 {
    match (&audio.codec, audio.rate) {
        (AudioCodec::Pcmu, 8000) => 0,
        (AudioCodec::Pcma, 8000) => 8,
        _ => 97,
    }
}

/// Per-stream RTP state.
struct RtpState {
    seq: u16,
    packets: u32,
    octets: u32,
}

enum Event<'a> {
    Video(usize, &'a ClipFrame, &'a Clip),
    Audio(usize, &'a (i64, Vec<u8>), &'a ClipAudio),
}

async fn stream_media(
    shared: Arc<Shared>,
    writer: Writer,
    dests: [Option<Dest>; 2],
) -> anyhow::Result<()> {
    let speed = shared.config.speed;
    let quirks = &shared.config.quirks;
    let mut t0 = tokio::time::Instant::now();
    let mut state = [0, 1].map(|i| RtpState {
        seq: FIRST_SEQ[i],
        packets: 0,
        octets: 0,
    });
    let mut next_report = [0i64; 2]; // media second of each stream's next SR
    let mut offset_90k = 0i64;
    let mut first_loop = true;
    let mut lost_one = false;
    let mut keyframes_sent = 0;
    let _ = shared.progress.send(0.0);
    // The camera's clock reset, in seconds, at media time `media`.
    let jump_at = |media: f64| match quirks.timestamp_jump {
        Some((at, by)) if media >= at => by,
        _ => 0.0,
    };
    loop {
        for clip in &shared.config.clips {
            // Merge the clip's video (decode order) and audio by send time.
            let skip = if first_loop { quirks.start_at_frame } else { 0 };
            let start = clip
                .video
                .get(skip)
                .map_or(0.0, |f| f.dts as f64 / 90_000.0);
            let mut events: Vec<(f64, Event<'_>)> = clip
                .video
                .iter()
                .enumerate()
                .skip(skip)
                .map(|(i, f)| (f.dts as f64 / 90_000.0, Event::Video(i, f, clip)))
                .collect();
            if let (Some(audio), Some(_)) = (&clip.audio, &dests[1]) {
                events.extend(audio.frames.iter().enumerate().filter_map(|(i, a)| {
                    let t = a.0 as f64 / f64::from(audio.rate);
                    (t >= start).then_some((t, Event::Audio(i, a, audio)))
                }));
            }
            events.sort_by(|a, b| a.0.total_cmp(&b.0));
            first_loop = false;
            let offset_secs = offset_90k as f64 / 90_000.0;
            for (t, event) in events {
                let media = offset_secs + t;
                let stall = shared
                    .stall_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(until) = stall {
                    let now = tokio::time::Instant::now();
                    if until > now {
                        tokio::time::sleep_until(until).await;
                        t0 += until - now;
                    }
                }
                tokio::time::sleep_until(t0 + Duration::from_secs_f64(media / speed)).await;
                for stream in 0..2 {
                    let Some(dest) = &dests[stream] else { continue };
                    let rate = if stream == 0 {
                        90_000
                    } else {
                        clip.audio.as_ref().map_or(8000, |a| a.rate)
                    };
                    while (next_report[stream] as f64) <= media {
                        let k = next_report[stream];
                        let start = if stream == 0 {
                            VIDEO_RTP_START
                        } else {
                            AUDIO_RTP_START
                        };
                        let ticks = (k as f64 + jump_at(k as f64)) * f64::from(rate);
                        let rtp = start.wrapping_add(ticks as i64 as u32);
                        let ntp = shared.config.ntp_base + ((k as u64) << 32);
                        send_sender_report(&writer, dest, &state[stream], stream, ntp, rtp).await?;
                        if shared.config.keep_log {
                            let mut log = shared.log();
                            let after_video_frames =
                                log.frames.iter().filter(|f| f.stream == 0).count();
                            log.reports.push(SentReport {
                                stream,
                                after_video_frames,
                                ntp,
                                rtp,
                            });
                        }
                        next_report[stream] += 1;
                    }
                }
                match event {
                    Event::Video(i, f, clip) => {
                        let Some(dest) = &dests[0] else { continue };
                        let pts = offset_90k + f.pts + (jump_at(media) * 90_000.0) as i64;
                        let rtp = VIDEO_RTP_START.wrapping_add(pts as u32);
                        let mut nals: Vec<&[u8]> = Vec::new();
                        if f.keyframe {
                            if keyframes_sent > 0 || !quirks.no_sdp_parameters {
                                nals.extend(clip.parameter_sets.iter().map(Vec::as_slice));
                            }
                            keyframes_sent += 1;
                        }
                        nals.extend(f.nals.iter().map(Vec::as_slice));
                        let lose =
                            !lost_one && quirks.lose_video_frame_at.is_some_and(|at| media >= at);
                        lost_one |= lose;
                        let to = if lose { None } else { Some(dest) };
                        send_video(&writer, to, &mut state[0], clip.codec, rtp, &nals).await?;
                        if shared.config.keep_log && !lose {
                            shared.log().frames.push(SentFrame {
                                stream: 0,
                                rtp,
                                pts,
                                keyframe: f.keyframe,
                                sent_ntp: ntp_now(),
                            });
                        }
                        if quirks
                            .empty_frames_every
                            .is_some_and(|n| (i + 1) % n.max(1) == 0)
                        {
                            let filler = clip.codec.filler_nal();
                            let rtp = rtp.wrapping_add(1);
                            send_video(
                                &writer,
                                Some(dest),
                                &mut state[0],
                                clip.codec,
                                rtp,
                                &[filler],
                            )
                            .await?;
                        }
                    }
                    Event::Audio(i, a, audio) => {
                        let Some(dest) = &dests[1] else { continue };
                        let rate = f64::from(audio.rate);
                        let mut secs = offset_secs + a.0 as f64 / rate + jump_at(media);
                        if let Some((at, by)) = quirks.audio_step_back
                            && media >= at
                        {
                            secs -= by;
                        }
                        let pts = (secs * rate).round() as i64;
                        let rtp = AUDIO_RTP_START.wrapping_add(pts as u32);
                        let empty = quirks
                            .empty_frames_every
                            .is_some_and(|n| (i + 1) % n.max(1) == 0);
                        let payload = match &audio.codec {
                            AudioCodec::Aac(_) => {
                                // One AU header (RFC 3640 §3.2.1): 13-bit size, 3-bit index.
                                let au: &[u8] = if empty { &[] } else { &a.1 };
                                let mut p = Vec::with_capacity(4 + au.len());
                                p.extend_from_slice(&16u16.to_be_bytes());
                                p.extend_from_slice(&((au.len() as u16) << 3).to_be_bytes());
                                p.extend_from_slice(au);
                                p
                            }
                            _ => a.1.clone(),
                        };
                        let pt = audio_payload_type(audio);
                        send_rtp(
                            &writer,
                            Some(dest),
                            &mut state[1],
                            1,
                            pt,
                            true,
                            rtp,
                            &payload,
                        )
                        .await?;
                        if shared.config.keep_log {
                            shared.log().frames.push(SentFrame {
                                stream: 1,
                                rtp,
                                pts,
                                keyframe: true,
                                sent_ntp: ntp_now(),
                            });
                        }
                    }
                }
                let _ = shared.progress.send(media);
            }
            offset_90k += clip.duration;
        }
    }
}

async fn send_sender_report(
    writer: &Writer,
    dest: &Dest,
    st: &RtpState,
    stream: usize,
    ntp: u64,
    rtp: u32,
) -> anyhow::Result<()> {
    // RFC 3550 §6.4.1, no report blocks.
    let mut sr = Vec::with_capacity(28);
    sr.extend_from_slice(&[0x80, 200, 0, 6]);
    for w in [
        SSRCS[stream],
        (ntp >> 32) as u32,
        ntp as u32,
        rtp,
        st.packets,
        st.octets,
    ] {
        sr.extend_from_slice(&w.to_be_bytes());
    }
    send_rtcp(writer, dest, &sr).await
}

fn ntp_now() -> u64 {
    sei::ntp_from_system_time(std::time::SystemTime::now())
}

/// Sends one access unit: each NAL unit whole if it fits, else in fragmentation units (H.264
/// FU-A, RFC 6184 §5.8; H.265 FU, RFC 7798 §4.4.3). The marker bit ends the access unit.
/// `dest: None` uses up the sequence numbers without sending (a lost frame).
async fn send_video(
    writer: &Writer,
    dest: Option<&Dest>,
    st: &mut RtpState,
    codec: VideoCodec,
    rtp: u32,
    nals: &[&[u8]],
) -> anyhow::Result<()> {
    let header_len = codec.header_len();
    for (i, nal) in nals.iter().enumerate() {
        let last_nal = i + 1 == nals.len();
        if nal.len() <= MAX_PAYLOAD || nal.len() <= header_len {
            send_rtp(writer, dest, st, 0, 96, last_nal, rtp, nal).await?;
            continue;
        }
        let Some((fu_header_prefix, nal_type)) = codec.fu_header(nal) else {
            continue;
        };
        let chunks: Vec<&[u8]> = nal[header_len..]
            .chunks(MAX_PAYLOAD - header_len - 1)
            .collect();
        for (j, chunk) in chunks.iter().enumerate() {
            let start = if j == 0 { 0x80 } else { 0 };
            let end = if j + 1 == chunks.len() { 0x40 } else { 0 };
            let mut payload = Vec::with_capacity(header_len + 1 + chunk.len());
            payload.extend_from_slice(&fu_header_prefix);
            payload.push(start | end | nal_type);
            payload.extend_from_slice(chunk);
            send_rtp(writer, dest, st, 0, 96, last_nal && end != 0, rtp, &payload).await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn send_rtp(
    writer: &Writer,
    dest: Option<&Dest>,
    st: &mut RtpState,
    stream: usize,
    pt: u8,
    marker: bool,
    ts: u32,
    payload: &[u8],
) -> anyhow::Result<()> {
    let mut pkt = Vec::with_capacity(12 + payload.len());
    pkt.push(0x80);
    pkt.push(if marker { 0x80 | pt } else { pt });
    pkt.extend_from_slice(&st.seq.to_be_bytes());
    pkt.extend_from_slice(&ts.to_be_bytes());
    pkt.extend_from_slice(&SSRCS[stream].to_be_bytes());
    pkt.extend_from_slice(payload);
    st.seq = st.seq.wrapping_add(1);
    st.packets += 1;
    st.octets += payload.len() as u32;
    match dest {
        None => Ok(()),
        Some(Dest::Tcp { channel }) => send_interleaved(writer, *channel, &pkt).await,
        Some(Dest::Udp { rtp, peer_rtp, .. }) => {
            rtp.send_to(&pkt, peer_rtp).await?;
            Ok(())
        }
    }
}

async fn send_rtcp(writer: &Writer, dest: &Dest, pkt: &[u8]) -> anyhow::Result<()> {
    match dest {
        Dest::Tcp { channel } => send_interleaved(writer, channel + 1, pkt).await,
        Dest::Udp {
            rtcp, peer_rtcp, ..
        } => {
            rtcp.send_to(pkt, peer_rtcp).await?;
            Ok(())
        }
    }
}

async fn send_interleaved(writer: &Writer, channel: u8, pkt: &[u8]) -> anyhow::Result<()> {
    let mut frame = Vec::with_capacity(4 + pkt.len());
    frame.extend_from_slice(&[b'$', channel]);
    frame.extend_from_slice(&(pkt.len() as u16).to_be_bytes());
    frame.extend_from_slice(pkt);
    writer.lock().await.write_all(&frame).await?;
    Ok(())
}
