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
//! * A sender report goes out for each stream once per second of media. Its NTP time is this
//!   machine's clock at the session's start plus the media time since (or a fixed point the
//!   caller sets with `ntp_base`); `clock.rs` makes it err as real cameras' clocks do (an offset,
//!   RTP drift, an NTP step, send jitter) and writes the truth about every frame to a file.
//! * With `keep_log`, every frame's send time (just before its last packet went to the socket)
//!   and every SR is logged, for tests to compare with a recording.
//! * Faults on demand: [`Camera::drop_connections`], [`Camera::stall`]; and the quirks real
//!   cameras have, set up front with [`Quirks`].
//!
//! It stands below the recorder and imports none of it: only MP4 reading (for clips), codec
//! knowledge and the NTP clock. `clip.rs` loads what it serves, `rtsp.rs` answers each client,
//! `schedule.rs` paces a session's media and applies the quirks, `rtp.rs` puts packets on the
//! wire.

mod clip;
mod clock;
mod rtp;
mod rtsp;
mod schedule;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::ntp;

pub use clip::{BuiltinAudio, Clip};
pub use clock::CameraClock;
pub use tls::CameraTls;

/// What the camera serves, and how.
pub struct CameraConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Clips served in sequence, looping.
    pub clips: Vec<Clip>,
    /// 1.0 is real time; 4.0 four times as fast.
    pub speed: f64,
    /// NTP time (64-bit format) of media time 0 in every session; `None`: this machine's clock
    /// (plus `clock.offset`) when the session starts.
    pub ntp_base: Option<u64>,
    /// How the camera's clocks err.
    pub clock: CameraClock,
    /// Write a CSV row for every video frame sent here: `session,rtp,capture_unix,sent_unix`.
    pub truth: Option<std::path::PathBuf>,
    /// Serve the clips' audio as a second stream.
    pub audio: bool,
    /// Require HTTP Basic authentication with these.
    pub credentials: Option<(String, String)>,
    /// Keep a [`Log`] of every frame and sender report sent (grows without bound: for tests).
    pub keep_log: bool,
    /// First RTP timestamp of the video and audio streams in every session.
    pub rtp_start: [u32; 2],
    /// SSRC of the video and audio streams.
    pub ssrcs: [u32; 2],
    /// What real cameras do, on demand.
    pub quirks: Quirks,
    /// Serve RTSPS (RTSP over TLS) with this certificate instead of plain RTSP.
    pub tls: Option<CameraTls>,
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
    /// Start each session in the middle of its first frame, as a live broadcast joined late
    /// does: its first packets are left out, with no gap in the sequence numbers.
    pub start_mid_frame: bool,
    /// The video frame due at this time is sent as fragmentation units without the first one
    /// (no gap in the sequence numbers): a broken FU-A. It is not logged as sent.
    pub broken_fu_a_at: Option<f64>,
    /// From this time on, the video is one frame that never ends: FU-A fragments without an end
    /// bit, one per frame due, and no audio.
    pub endless_fu_a_at: Option<f64>,
    /// From this time on, every video frame is cut short: the first fragment of one, then
    /// fragments from the middle of the next ones (each with its own timestamp), and no audio.
    /// This sequence makes retina 0.4's H.264 depacketizer panic.
    pub cut_frames_at: Option<f64>,
    /// From this time on, video packets carry another SSRC (a camera whose encoder restarted
    /// under the same session). Frames sent after it are not logged.
    pub ssrc_change_at: Option<f64>,
    /// At this time, the video's RTP sequence numbers step back by 1000 (over TCP, where
    /// nothing can arrive out of order, a broken sender).
    pub seq_jump_back_at: Option<f64>,
    /// At this time, one malformed RTCP packet (a sender report cut short) on each stream.
    pub malformed_rtcp_at: Option<f64>,
    /// At this time, one malformed RTP packet (RTP version 1) on the video stream.
    pub malformed_rtp_at: Option<f64>,
    /// What the `RTP-Info` header of the answer to PLAY says (RFC 2326 §12.33).
    pub rtp_info: RtpInfo,
    /// Refuse `SETUP` of RTP over TCP (interleaved) with this status, as many servers do with
    /// 461, and others with 400, 403, 455 or 501.
    pub refuse_tcp_setup: Option<u16>,
    /// Set up RTP over UDP, then send it where it never arrives: a NAT or a firewall between.
    pub udp_unreachable: bool,
    /// Answer OPTIONS and DESCRIBE of `/redirect/N/PATH` with `302 Found` to
    /// `/redirect/N-1/PATH` (to `/PATH` from 1), of `/loop/PATH` with a redirect to itself, and
    /// of `/elsewhere/PATH` with one to `rtsp://localhost:PORT/PATH` (another host name).
    pub redirects: bool,
}

/// What a camera's `RTP-Info` says, as cameras and relays say it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RtpInfo {
    /// `url`, `seq` and `rtptime` for every stream, as RFC 2326 asks.
    #[default]
    Full,
    /// `url` and `seq` only.
    NoRtptime,
    /// `url` and `rtptime` only.
    NoSeq,
    /// `url`s other than those the SDP gave (a relay naming its upstream's).
    OtherUrls,
    /// No `RTP-Info` header at all.
    Missing,
}

impl Quirks {
    /// Whether frame `i` of a stream (0-based) is one of every `empty_frames_every`.
    fn empty_at(&self, i: usize) -> bool {
        self.empty_frames_every
            .is_some_and(|n| (i + 1).is_multiple_of(n.max(1)))
    }
}

impl CameraConfig {
    /// Loopback, any free port, real time, audio on, SR clock at the current time.
    pub fn new(clips: Vec<Clip>) -> Self {
        CameraConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clips,
            speed: 1.0,
            ntp_base: None,
            clock: CameraClock::default(),
            truth: None,
            audio: true,
            credentials: None,
            keep_log: false,
            rtp_start: rtp::RTP_START,
            ssrcs: rtp::SSRCS,
            quirks: Quirks::default(),
            tls: None,
        }
    }
}

/// A frame as the camera sent it.
#[derive(Clone, Debug)]
pub struct SentFrame {
    /// Which session (PLAY) of the camera's, from 0.
    pub session: usize,
    /// 0 video, 1 audio.
    pub stream: usize,
    /// The 32-bit RTP timestamp on the wire.
    pub rtp: u32,
    /// Presentation time in the stream's clock since the session start (no wrap).
    pub pts: i64,
    /// A video keyframe (every audio frame counts as one).
    pub keyframe: bool,
    /// Wall time just before its last packet was handed to the socket, NTP format: nothing
    /// can have received the whole frame earlier.
    pub sent_ntp: u64,
}

/// A sender report as the camera sent it.
#[derive(Clone, Debug)]
pub struct SentReport {
    /// Which session (PLAY) of the camera's, from 0.
    pub session: usize,
    /// 0 video, 1 audio.
    pub stream: usize,
    /// Video frames the camera had sent in this session before this report: the index of the
    /// next one among them.
    pub after_video_frames: usize,
    /// The report's NTP timestamp field.
    pub ntp: u64,
    /// The report's RTP timestamp field.
    pub rtp: u32,
}

/// What the camera sent, for tests to compare a recording with.
#[derive(Default)]
pub struct Log {
    /// Frames of both streams, in sending order.
    pub frames: Vec<SentFrame>,
    /// Sender reports of both streams, in sending order.
    pub reports: Vec<SentReport>,
}

pub(crate) struct Shared {
    pub config: CameraConfig,
    log: Mutex<Log>,
    /// The latest session to send, and the media seconds it has sent.
    pub progress: watch::Sender<(usize, f64)>,
    /// Sessions (PLAYs) so far, all clients together.
    pub sessions: std::sync::atomic::AtomicUsize,
    pub drop_all: Notify,
    pub stall_until: Mutex<Option<tokio::time::Instant>>,
    pub truth: Option<clock::Truth>,
}

impl Shared {
    pub(crate) fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running camera; dropping it stops it and closes every connection.
pub struct Camera {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accepting task; `None` once stopped.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Camera {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        self.shared.drop_all.notify_waiters();
    }
}

impl Camera {
    /// Starts listening and serving; fails on a config it cannot serve or an address it
    /// cannot bind.
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
        let truth = config
            .truth
            .as_deref()
            .map(clock::Truth::create)
            .transpose()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let acceptor = config.tls.as_ref().map(CameraTls::acceptor).transpose()?;
        let shared = Arc::new(Shared {
            config,
            log: Mutex::new(Log::default()),
            progress: watch::channel((0, 0.0)).0,
            sessions: std::sync::atomic::AtomicUsize::new(0),
            drop_all: Notify::new(),
            stall_until: Mutex::new(None),
            truth,
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((conn, peer)) => {
                        tracing::info!("client {peer} connected");
                        let s = s.clone();
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let served = match acceptor {
                                None => rtsp::serve_connection(conn, peer, s).await,
                                Some(a) => match a.accept(conn).await {
                                    Ok(tls) => rtsp::serve_connection(tls, peer, s).await,
                                    Err(e) => Err(anyhow::anyhow!("TLS handshake: {e}")),
                                },
                            };
                            match served {
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
        Ok(Camera {
            addr,
            shared,
            task: Some(task),
        })
    }

    /// The URL to record: `rtsp://ADDR/demo` (`rtsps://` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.shared.config.tls.is_some() {
            "rtsps"
        } else {
            "rtsp"
        };
        format!("{scheme}://{}/demo", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the current session has sent `secs` of media.
    pub async fn wait_sent(&self, secs: f64) {
        let mut rx = self.shared.progress.subscribe();
        let _ = rx.wait_for(|&(_, t)| t >= secs).await;
    }

    /// How much media the current session has sent, in seconds.
    pub fn sent_secs(&self) -> f64 {
        self.shared.progress.borrow().1
    }

    /// Waits until session `session` (counted from 0, all clients together) has sent `secs`
    /// of media, or a later session has begun.
    pub async fn wait_session_sent(&self, session: usize, secs: f64) {
        let mut rx = self.shared.progress.subscribe();
        let _ = rx
            .wait_for(|&(s, t)| s > session || (s == session && t >= secs))
            .await;
    }

    /// What was sent (empty unless `keep_log`).
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.log()
    }

    /// Stops listening and closes every connection, as a camera that reboots does; returns
    /// once its address is free again. Its log stays.
    pub async fn stop(&mut self) {
        self.shared.drop_all.notify_waiters();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
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

/// Now, in the 64-bit NTP format.
fn ntp_now() -> u64 {
    ntp::from_system_time(std::time::SystemTime::now())
}
