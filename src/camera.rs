//! A camera on demand: an RTSP server (RFC 2326) that serves built-in or given clips over
//! RTP/RTCP (RFC 3550), TCP-interleaved or UDP, to any number of clients.
//!
//! `retina-record camera` ships it for pipeline testing, `retina-record demo` records from it,
//! and the tests use it for control and fault injection. One piece of code for all three.
//!
//! * H.264 is packetized per RFC 6184 (single NAL units and FU-A, parameter sets in-band before
//!   every keyframe, as cameras do); AAC per RFC 3640 (`AAC-hbr`, one AU per packet).
//! * Clips play in sequence and loop, with RTP timestamps continuing across the joins. The RTP
//!   timestamps start close to 2^32 so they wrap a few seconds in, as a long-running camera's do.
//! * A sender report goes out for each stream once per second of media. Its NTP time comes from a
//!   clock the caller sets: `ntp_base` is the NTP time of media time 0.
//! * With `keep_log`, every frame's send time (after its last packet was handed to the socket)
//!   and every SR is logged, for tests to compare with a recording.
//! * Faults on demand: [`Camera::drop_connections`], [`Camera::stall`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, watch};

use crate::reader::{Recording, nal_units};

/// First RTP timestamp of each stream: they wrap a few seconds into the stream (not at the same
/// second, so that no audio SR can be mistaken for a video one).
const VIDEO_RTP_START: u32 = u32::MAX - 2 * 90_000 + 1;
const AUDIO_RTP_START: u32 = u32::MAX - 3 * 16_000 + 1;
const SSRCS: [u32; 2] = [0x5649_4445, 0x4155_4449];
const FIRST_SEQ: [u16; 2] = [65_000, 30_000];
const MAX_PAYLOAD: usize = 1400;
const SESSION_ID: &str = "12345678";
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The clip built into the binary: H.264 Main 320x240 25 fps + AAC-LC 16 kHz mono, 4 s.
const BUILTIN_H264_AAC: &[u8] = include_bytes!("../clips/h264_aac.mp4");

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
}

impl CameraConfig {
    /// Loopback, any free port, real time, audio on, SR clock at the current time.
    pub fn new(clips: Vec<Clip>) -> Self {
        CameraConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clips,
            speed: 1.0,
            ntp_base: crate::sei::ntp_from_system_time(std::time::SystemTime::now()),
            audio: true,
            credentials: None,
            keep_log: false,
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

/// `retina-record camera`: serves until the first stop signal.
pub async fn serve(
    args: &crate::cli::CameraArgs,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let clip = match &args.clip {
        Some(path) => Clip::from_file(path).map_err(crate::session::usage)?,
        None => Clip::builtin(&args.video, &args.audio).map_err(crate::session::usage)?,
    };
    let mut config = CameraConfig::new(vec![clip]);
    config.listen = args.listen;
    config.audio = args.audio != "none";
    config.speed = args.speed;
    let cam = Camera::start(config).await.map_err(crate::session::usage)?;
    let url = if cam.addr().ip().is_unspecified() {
        format!("rtsp://<this host>:{}/demo", cam.addr().port())
    } else {
        cam.url()
    };
    // The URL alone on stdout, for scripts; the explanation on stderr with the logs.
    println!("{url}");
    tracing::info!(
        "serving {url} over TCP and UDP until Ctrl-C; record it with: \
         retina-record --url {url} out.mp4"
    );
    let _ = stop.changed().await;
    tracing::info!("stopped");
    Ok(())
}

/// One clip's samples, ready to send.
pub struct Clip {
    sps: Vec<u8>,
    pps: Vec<u8>,
    /// (decode time, presentation time, keyframe, NAL units) at 90 kHz.
    video: Vec<(i64, i64, bool, Vec<Vec<u8>>)>,
    /// (time, AU) at the audio rate.
    audio: Vec<(i64, Vec<u8>)>,
    audio_rate: u32,
    audio_config: Vec<u8>,
    /// Video length at 90 kHz: the timestamp offset of the next loop.
    duration: i64,
}

impl Clip {
    /// The clip built into the binary for `video` + `audio` (`none` for no audio).
    pub fn builtin(video: &str, audio: &str) -> anyhow::Result<Clip> {
        match (video, audio) {
            ("h264", "aac" | "none") => {
                Clip::from_recording(Recording::from_bytes(BUILTIN_H264_AAC)?)
            }
            ("h264", other) => {
                bail!("the built-in camera has no {other} audio yet (it has: aac, none)")
            }
            (other, _) => bail!("the built-in camera has no {other} video yet (it has: h264)"),
        }
    }

    /// A clip from a fragmented MP4 file (H.264 at 90 kHz, optional AAC).
    pub fn from_file(path: &Path) -> anyhow::Result<Clip> {
        Clip::from_recording(Recording::open(path)?)
            .with_context(|| format!("clip {}", path.display()))
    }

    fn from_recording(rec: Recording) -> anyhow::Result<Clip> {
        let v = rec.video_track().context("no video track")?;
        anyhow::ensure!(v.timescale == 90_000, "video timescale must be 90 kHz");
        let Some(mp4_atom::Codec::Avc1(avc1)) = v.sample_entries.first() else {
            bail!("video is not avc1");
        };
        let (Some(sps), Some(pps)) = (
            avc1.avcc.sequence_parameter_sets.first(),
            avc1.avcc.picture_parameter_sets.first(),
        ) else {
            bail!("no SPS/PPS");
        };
        anyhow::ensure!(sps.len() >= 4, "SPS too short");
        let mut video = Vec::new();
        let mut duration = 0;
        for s in rec.track_samples(v.track_id) {
            let data = rec.read_sample(s)?;
            let nals = nal_units(&data)
                .map(|n| n.map(<[u8]>::to_vec))
                .collect::<Result<_, _>>()?;
            video.push((s.dts as i64, s.pts(), s.is_sync, nals));
            duration = duration.max((s.dts + u64::from(s.duration)) as i64);
        }
        anyhow::ensure!(!video.is_empty(), "no video samples");
        // Presentation starts at 0 whatever edit the encoder applied.
        let min_pts = video.iter().map(|f| f.1).min().unwrap_or(0);
        for f in &mut video {
            f.1 -= min_pts;
        }
        let (mut audio, mut audio_rate, mut audio_config) = (Vec::new(), 16_000, Vec::new());
        if let Some(a) = rec.audio_track() {
            audio_rate = a.timescale;
            if let Some(mp4_atom::Codec::Mp4a(mp4a)) = a.sample_entries.first()
                && let Some(ds) = &mp4a.esds.es_desc.dec_config.dec_specific
            {
                audio_config = ds.raw.clone();
                if audio_config.is_empty() {
                    audio_config = vec![
                        (ds.profile << 3) | (ds.freq_index >> 1),
                        (ds.freq_index << 7) | (ds.chan_conf << 3),
                    ];
                }
            }
            for s in rec.track_samples(a.track_id) {
                audio.push((s.dts as i64, rec.read_sample(s)?));
            }
        }
        Ok(Clip {
            sps: sps.clone(),
            pps: pps.clone(),
            video,
            audio,
            audio_rate,
            audio_config,
            duration,
        })
    }

    fn has_audio(&self) -> bool {
        !self.audio.is_empty() && !self.audio_config.is_empty()
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
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=retina-record camera\r\nt=0 0\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id={:02X}{:02X}{:02X};sprop-parameter-sets={},{}\r\n\
         a=control:trackID=0\r\n",
        clip.sps[1],
        clip.sps[2],
        clip.sps[3],
        b64(&clip.sps),
        b64(&clip.pps)
    );
    if shared.config.audio && clip.has_audio() {
        let config: String = clip
            .audio_config
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        s.push_str(&format!(
            "m=audio 0 RTP/AVP 97\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:97 MPEG4-GENERIC/{}/1\r\n\
             a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;sizelength=13;indexlength=3;\
             indexdeltalength=3;config={config}\r\na=control:trackID=1\r\n",
            clip.audio_rate
        ));
    }
    s
}

/// Per-stream RTP state.
struct RtpState {
    seq: u16,
    packets: u32,
    octets: u32,
}

enum Event<'a> {
    Video(&'a (i64, i64, bool, Vec<Vec<u8>>), &'a Clip),
    Audio(&'a (i64, Vec<u8>), u32),
}

async fn stream_media(
    shared: Arc<Shared>,
    writer: Writer,
    dests: [Option<Dest>; 2],
) -> anyhow::Result<()> {
    let speed = shared.config.speed;
    let mut t0 = tokio::time::Instant::now();
    let mut state = [0, 1].map(|i| RtpState {
        seq: FIRST_SEQ[i],
        packets: 0,
        octets: 0,
    });
    let mut next_report = [0i64; 2]; // media second of each stream's next SR
    let mut offset_90k = 0i64;
    let _ = shared.progress.send(0.0);
    loop {
        for clip in &shared.config.clips {
            // Merge the clip's video (decode order) and audio by send time.
            let mut events: Vec<(f64, Event<'_>)> = clip
                .video
                .iter()
                .map(|f| (f.0 as f64 / 90_000.0, Event::Video(f, clip)))
                .collect();
            if dests[1].is_some() {
                events.extend(clip.audio.iter().map(|a| {
                    (
                        a.0 as f64 / f64::from(clip.audio_rate),
                        Event::Audio(a, clip.audio_rate),
                    )
                }));
            }
            events.sort_by(|a, b| a.0.total_cmp(&b.0));
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
                        i64::from(clip.audio_rate)
                    };
                    while (next_report[stream] as f64) <= media {
                        let k = next_report[stream];
                        let start = if stream == 0 {
                            VIDEO_RTP_START
                        } else {
                            AUDIO_RTP_START
                        };
                        let rtp = start.wrapping_add((k * rate) as u32);
                        let ntp = shared.config.ntp_base + ((k as u64) << 32);
                        let st = &state[stream];
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
                        send_rtcp(&writer, dest, &sr).await?;
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
                    Event::Video(f, clip) => {
                        let Some(dest) = &dests[0] else { continue };
                        let pts = offset_90k + f.1;
                        let rtp = VIDEO_RTP_START.wrapping_add(pts as u32);
                        let mut nals: Vec<&[u8]> = Vec::new();
                        if f.2 {
                            nals.push(&clip.sps);
                            nals.push(&clip.pps);
                        }
                        nals.extend(f.3.iter().map(Vec::as_slice));
                        send_h264(&writer, dest, &mut state[0], rtp, &nals).await?;
                        if shared.config.keep_log {
                            shared.log().frames.push(SentFrame {
                                stream: 0,
                                rtp,
                                pts,
                                keyframe: f.2,
                                sent_ntp: ntp_now(),
                            });
                        }
                    }
                    Event::Audio(a, rate) => {
                        let Some(dest) = &dests[1] else { continue };
                        let pts = offset_90k * i64::from(rate) / 90_000 + a.0;
                        let rtp = AUDIO_RTP_START.wrapping_add(pts as u32);
                        let au = &a.1;
                        let mut payload = Vec::with_capacity(4 + au.len());
                        payload.extend_from_slice(&16u16.to_be_bytes());
                        payload.extend_from_slice(&((au.len() as u16) << 3).to_be_bytes());
                        payload.extend_from_slice(au);
                        send_rtp(&writer, dest, &mut state[1], 1, 97, true, rtp, &payload).await?;
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

fn ntp_now() -> u64 {
    crate::sei::ntp_from_system_time(std::time::SystemTime::now())
}

async fn send_h264(
    writer: &Writer,
    dest: &Dest,
    st: &mut RtpState,
    rtp: u32,
    nals: &[&[u8]],
) -> anyhow::Result<()> {
    for (i, nal) in nals.iter().enumerate() {
        let last_nal = i + 1 == nals.len();
        if nal.len() <= MAX_PAYLOAD {
            send_rtp(writer, dest, st, 0, 96, last_nal, rtp, nal).await?;
            continue;
        }
        // FU-A (RFC 6184 §5.8).
        let indicator = (nal[0] & 0xE0) | 28;
        let nal_type = nal[0] & 0x1F;
        let chunks: Vec<&[u8]> = nal[1..].chunks(MAX_PAYLOAD - 2).collect();
        for (j, chunk) in chunks.iter().enumerate() {
            let start = if j == 0 { 0x80 } else { 0 };
            let end = if j + 1 == chunks.len() { 0x40 } else { 0 };
            let mut payload = Vec::with_capacity(2 + chunk.len());
            payload.extend_from_slice(&[indicator, start | end | nal_type]);
            payload.extend_from_slice(chunk);
            send_rtp(writer, dest, st, 0, 96, last_nal && end != 0, rtp, &payload).await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn send_rtp(
    writer: &Writer,
    dest: &Dest,
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
        Dest::Tcp { channel } => send_interleaved(writer, *channel, &pkt).await,
        Dest::Udp { rtp, peer_rtp, .. } => {
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
