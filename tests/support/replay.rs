//! A replay rig: an RTSP server that answers as a real camera did, from the text captures in
//! `tests/fixtures/cameras/` (their sources in its README), with media that fits the captured
//! SDP: the built-in camera's RTP and RTCP, relayed on the recorder's channels with the
//! captured payload types, SSRCs and RTP-Info bases.
//!
//! Only what a coherent session needs is rewritten: each answer's CSeq (to the request's), the
//! `interleaved` channels of a SETUP answer (to the ones asked for; a captured UDP transport
//! becomes TCP, its other parameters kept). URLs, Content-Base, RTP-Info, SSRCs, session ids
//! and header spellings stay as captured. An answer the capture lacks is made up, minimal:
//! OPTIONS (`Public`), SETUP (`Session`, `Transport`), PLAY (`Session`, `Range`, no RTP-Info),
//! GET_PARAMETER and TEARDOWN (`Session`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use retina_record::camera::{BuiltinAudio, Camera, CameraConfig, Clip};
use retina_record::codec::VideoCodec;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

mod relay;
use relay::{Route, relay};

/// The session id of made-up answers when the capture gives none.
const MADE_UP_SESSION: &str = "8a9b0c1d";

/// Where a capture's session description comes from.
#[derive(Clone, Copy, Debug)]
pub enum Describe {
    /// A whole DESCRIBE answer (or a refusal), as captured.
    Answer(&'static str),
    /// An SDP alone: the answer's head is made up (CSeq, Content-Type, Content-Length).
    Sdp(&'static str),
}

/// One camera's captured answers, each a file in `tests/fixtures/cameras/`.
#[derive(Clone, Copy, Debug)]
pub struct Capture {
    /// The URL path (and query) the recorder is given: the capture's own.
    pub path: &'static str,
    pub options: Option<&'static str>,
    pub describe: Describe,
    /// The answers to the SETUPs, in order; the last one answers any later SETUP too.
    pub setups: &'static [&'static str],
    pub play: Option<&'static str>,
    pub teardown: Option<&'static str>,
}

/// A stream of the captured SDP (its first format).
#[derive(Clone, Debug)]
pub struct Stream {
    pub media: String,
    pub pt: u8,
    /// Lower case: `h264`, `mpeg4-generic`, `pcmu`.
    pub encoding: String,
    pub rate: u32,
    pub control: Option<String>,
    pub fmtp: String,
}

/// What the built-in camera can send for a captured stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    Video(VideoCodec),
    /// The camera's audio as it is (AAC-LC 16 kHz mono, or PCMU 8 kHz).
    Audio(BuiltinAudio),
    /// The camera's PCMU, converted to A-law sample by sample: PCMA 8 kHz.
    PcmuAsPcma,
}

impl Stream {
    pub fn feed(&self) -> Option<Feed> {
        let config = self.fmtp.to_ascii_lowercase();
        match (self.media.as_str(), self.encoding.as_str(), self.rate) {
            ("video", "h264", 90_000) => Some(Feed::Video(VideoCodec::H264)),
            ("video", "h265", 90_000) => Some(Feed::Video(VideoCodec::H265)),
            ("audio", "mpeg4-generic", 16_000) if has_param(&config, "config", "1408") => {
                Some(Feed::Audio(BuiltinAudio::Aac))
            }
            ("audio", "pcmu", 8000) => Some(Feed::Audio(BuiltinAudio::Pcmu)),
            ("audio", "pcma", 8000) => Some(Feed::PcmuAsPcma),
            _ => None,
        }
    }
}

fn has_param(fmtp: &str, name: &str, value: &str) -> bool {
    fmtp.split(';')
        .filter_map(|p| p.split_once('='))
        .any(|(k, v)| k.trim() == name && v.trim() == value)
}

/// The streams of an SDP, in order.
pub fn streams(sdp: &str) -> Vec<Stream> {
    let mut out: Vec<Stream> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split_whitespace();
            let media = words.next().unwrap_or("").to_ascii_lowercase();
            let pt: u8 = words.nth(2).and_then(|p| p.parse().ok()).unwrap_or(255);
            let (encoding, rate) = match pt {
                0 => ("pcmu", 8000),
                8 => ("pcma", 8000),
                _ => ("", 0),
            };
            out.push(Stream {
                media,
                pt,
                encoding: encoding.into(),
                rate,
                control: None,
                fmtp: String::new(),
            });
            continue;
        }
        let Some(s) = out.last_mut() else { continue };
        if let Some(map) = line.strip_prefix(&format!("a=rtpmap:{} ", s.pt)) {
            let mut parts = map.trim().split('/');
            s.encoding = parts.next().unwrap_or("").to_ascii_lowercase();
            s.rate = parts
                .next()
                .and_then(|r| r.trim().parse().ok())
                .unwrap_or(0);
        } else if let Some(f) = line.strip_prefix(&format!("a=fmtp:{} ", s.pt)) {
            s.fmtp = f.to_owned();
        } else if let Some(c) = line.strip_prefix("a=control:") {
            s.control = Some(c.trim().to_owned());
        }
    }
    out
}

/// An RTSP message as text: its first line and header lines as captured, and its body.
#[derive(Clone, Debug)]
struct Message {
    head: Vec<String>,
    body: String,
}

impl Message {
    fn parse(text: &str) -> Message {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        Message {
            head: head.split("\r\n").map(str::to_owned).collect(),
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head[1..].iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// Sets `name` to `value`, keeping the captured spelling of the name; appended if absent.
    fn set(&mut self, name: &str, value: &str) {
        let at = self.head[1..].iter().position(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        });
        match at {
            Some(i) => {
                let spelled = self.head[i + 1].split_once(':').expect("a header").0;
                self.head[i + 1] = format!("{spelled}: {value}");
            }
            None => self.head.push(format!("{name}: {value}")),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        format!("{}\r\n\r\n{}", self.head.join("\r\n"), self.body).into_bytes()
    }

    /// The session id of a `Session` header (without its `;timeout=`).
    fn session(&self) -> Option<String> {
        let v = self.header("Session")?;
        Some(v.split(';').next().unwrap_or(v).trim().to_owned())
    }
}

fn made_up(lines: &[String]) -> Message {
    let mut head = vec!["RTSP/1.0 200 OK".to_owned()];
    head.extend_from_slice(lines);
    Message {
        head,
        body: String::new(),
    }
}

/// A capture file's text.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cameras")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A capture, read.
struct Loaded {
    options: Option<Message>,
    describe: Message,
    streams: Vec<Stream>,
    /// What the camera feeds each stream: the first video stream it can feed, the first audio.
    feeds: Vec<Option<Feed>>,
    /// The camera that can: the first fed video's codec, the first fed audio's.
    camera: Option<(VideoCodec, BuiltinAudio)>,
    setups: Vec<Message>,
    play: Option<Message>,
    teardown: Option<Message>,
}

impl Loaded {
    fn load(c: &Capture) -> Loaded {
        let read = |name: &str| Message::parse(&fixture(name));
        let describe = match c.describe {
            Describe::Answer(name) => read(name),
            Describe::Sdp(name) => {
                let sdp = fixture(name);
                let mut m = made_up(&[
                    "CSeq: 0".into(),
                    "Content-Type: application/sdp".into(),
                    format!("Content-Length: {}", sdp.len()),
                ]);
                m.body = sdp;
                m
            }
        };
        let streams = streams(&describe.body);
        let (mut video, mut audio) = (None, None);
        let feeds = streams
            .iter()
            .map(|s| {
                s.feed().filter(|f| match *f {
                    Feed::Video(v) => video.is_none() && video.replace(v).is_none(),
                    Feed::Audio(a) => audio.is_none() && audio.replace(a).is_none(),
                    Feed::PcmuAsPcma => {
                        audio.is_none() && audio.replace(BuiltinAudio::Pcmu).is_none()
                    }
                })
            })
            .collect();
        Loaded {
            options: c.options.map(read),
            camera: video.map(|v| (v, audio.unwrap_or(BuiltinAudio::None))),
            feeds,
            streams,
            describe,
            setups: c.setups.iter().map(|n| read(n)).collect(),
            play: c.play.map(read),
            teardown: c.teardown.map(read),
        }
    }
}

/// What the rig relayed, all connections together.
#[derive(Default, Debug)]
pub struct Relayed {
    /// Video RTP packets that ended a frame (marker bit).
    pub video_frames: AtomicUsize,
    pub audio_packets: AtomicUsize,
}

/// The replay server on a free loopback port, serving until dropped.
pub struct Replay {
    /// The URL to record: this server, the capture's path.
    pub url: String,
    pub relayed: Arc<Relayed>,
    /// Feeds the captured streams it can; `None` when the SDP has no video it can feed.
    _camera: Option<Camera>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Replay {
    pub async fn start(capture: &Capture) -> Replay {
        let loaded = Arc::new(Loaded::load(capture));
        let camera = match loaded.camera {
            Some((video, audio)) => {
                let clip = Clip::builtin(video, audio).expect("built-in clip");
                let mut config = CameraConfig::new(vec![clip]);
                config.audio = audio != BuiltinAudio::None;
                Some(Camera::start(config).await.expect("camera"))
            }
            None => None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "rtsp://{}{}",
            listener.local_addr().expect("addr"),
            capture.path
        );
        let relayed = Arc::new(Relayed::default());
        let upstream = camera.as_ref().map(|c| c.addr());
        let (l, r) = (loaded.clone(), relayed.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, l.clone(), upstream, r.clone()));
            }
        });
        Replay {
            url,
            relayed,
            _camera: camera,
            task,
        }
    }
}

struct Request {
    method: String,
    url: String,
    cseq: String,
    transport: String,
}

/// Reads one request, skipping the interleaved data (RTCP receiver reports) the client sends;
/// `None` at the end of the connection.
async fn read_request(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        if buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() >= len {
                buf.drain(..len);
                continue;
            }
        } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let m = Message::parse(&String::from_utf8_lossy(&buf[..end + 4]));
            let body = m.header("Content-Length").and_then(|l| l.parse().ok());
            let total = end + 4 + body.unwrap_or(0usize);
            if buf.len() >= total {
                buf.drain(..total);
                let mut first = m.head[0].split(' ');
                let header = |n| m.header(n).unwrap_or("").to_owned();
                return Some(Request {
                    method: first.next().unwrap_or("").to_owned(),
                    url: first.next().unwrap_or("").to_owned(),
                    cseq: header("CSeq"),
                    transport: header("Transport"),
                });
            }
        }
        let mut chunk = [0u8; 4096];
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One recorder connection: its set-up streams (index in the SDP, channel asked for, the
/// answer given), the relay once it plays.
struct Connection {
    loaded: Arc<Loaded>,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    set_up: Vec<(usize, u8, Message)>,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            r.abort();
        }
    }
}

async fn serve(
    conn: TcpStream,
    loaded: Arc<Loaded>,
    upstream: Option<std::net::SocketAddr>,
    relayed: Arc<Relayed>,
) {
    let (mut rd, wr) = conn.into_split();
    let mut c = Connection {
        loaded,
        writer: Arc::new(Mutex::new(wr)),
        set_up: Vec::new(),
        relay: None,
    };
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut rd, &mut buf).await {
        let mut answer = c.answer(&req).unwrap_or_else(|| made_up(&[]));
        answer.set("CSeq", &req.cseq);
        let mut w = c.writer.lock().await;
        if w.write_all(&answer.bytes()).await.is_err() {
            return;
        }
        drop(w);
        if req.method == "PLAY"
            && let (Some(cam), None) = (upstream, &c.relay)
        {
            c.relay = Some(tokio::spawn(relay(
                cam,
                c.routes(),
                c.writer.clone(),
                relayed.clone(),
            )));
        }
    }
}

impl Connection {
    fn session(&self) -> String {
        let from_setup = self.set_up.last().and_then(|(_, _, m)| m.session());
        from_setup
            .or_else(|| self.loaded.describe.session())
            .unwrap_or_else(|| MADE_UP_SESSION.to_owned())
    }

    fn answer(&mut self, req: &Request) -> Option<Message> {
        let l = self.loaded.clone();
        let id = self.session();
        let session = || format!("Session: {id}");
        match req.method.as_str() {
            "OPTIONS" => l.options.clone().or_else(|| {
                let public = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER";
                Some(made_up(&[public.into()]))
            }),
            "DESCRIBE" => Some(l.describe.clone()),
            "SETUP" => Some(self.setup(req)),
            "PLAY" => l
                .play
                .clone()
                .or_else(|| Some(made_up(&[session(), "Range: npt=0.000-".into()]))),
            "TEARDOWN" => {
                if let Some(r) = self.relay.take() {
                    r.abort();
                }
                l.teardown.clone().or_else(|| Some(made_up(&[session()])))
            }
            "GET_PARAMETER" | "SET_PARAMETER" => Some(made_up(&[session()])),
            _ => Some(Message::parse("RTSP/1.0 501 Not Implemented\r\n\r\n")),
        }
    }

    /// The captured SETUP answer, for the stream the URL names, on the channels asked for.
    fn setup(&mut self, req: &Request) -> Message {
        let stream = self.stream_of(&req.url);
        let channel = param(&req.transport, "interleaved")
            .and_then(|il| il.split('-').next()?.parse().ok())
            .unwrap_or(2 * self.set_up.len() as u8);
        let n = self.set_up.len();
        let mut answer = match self.loaded.setups.get(n).or(self.loaded.setups.last()) {
            Some(m) => m.clone(),
            None => made_up(&[
                format!("Session: {};timeout=60", self.session()),
                "Transport: RTP/AVP/TCP;unicast".into(),
            ]),
        };
        let transport = answer.header("Transport").unwrap_or("").to_owned();
        answer.set("Transport", &over_tcp(&transport, channel));
        self.set_up.push((stream, channel, answer.clone()));
        answer
    }

    /// The SDP stream a SETUP URL names: the longest control it ends with; else the first not
    /// yet set up.
    fn stream_of(&self, url: &str) -> usize {
        let url = url.trim_end_matches('/');
        let named = self
            .loaded
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.control.as_deref()?.trim_end_matches('/'))))
            .filter(|(_, c)| !c.is_empty() && url.ends_with(c))
            .max_by_key(|(_, c)| c.len())
            .map(|(i, _)| i);
        named.unwrap_or_else(|| {
            (0..self.loaded.streams.len())
                .find(|i| !self.set_up.iter().any(|s| s.0 == *i))
                .unwrap_or(0)
        })
    }

    /// How each set-up stream the camera can feed is relayed.
    fn routes(&self) -> Vec<Route> {
        let play = self.loaded.play.as_ref();
        let single = self.set_up.len() == 1;
        self.set_up
            .iter()
            .filter_map(|(i, channel, setup)| {
                let s = &self.loaded.streams[*i];
                let feed = self.loaded.feeds[*i]?;
                let track = match feed {
                    Feed::Video(_) => 0,
                    _ => 1,
                };
                let info = play
                    .map(|p| rtp_info(p, s.control.as_deref(), single))
                    .unwrap_or_default();
                let setup_ssrc = setup.header("Transport").and_then(setup_ssrc);
                let ssrc = info.ssrc.or(setup_ssrc);
                Some(Route {
                    track,
                    channel: *channel,
                    pt: s.pt,
                    info: Info { ssrc, ..info },
                    alaw: feed == Feed::PcmuAsPcma,
                    deltas: (0, 0),
                })
            })
            .collect()
    }
}

/// A `Transport` value for interleaved TCP on `channel`: `RTP/AVP/TCP`, `interleaved=` set,
/// UDP ports dropped; every other parameter as captured.
fn over_tcp(transport: &str, channel: u8) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut interleaved = false;
    for (i, p) in transport.split(';').enumerate() {
        let name = p.trim().split('=').next().unwrap_or("");
        if i == 0 {
            parts.push("RTP/AVP/TCP".into());
        } else if name == "interleaved" {
            parts.push(format!("interleaved={}-{}", channel, channel + 1));
            interleaved = true;
        } else if name != "client_port" && name != "server_port" {
            parts.push(p.to_owned());
        }
    }
    if !interleaved {
        parts.push(format!("interleaved={}-{}", channel, channel + 1));
    }
    parts.join(";")
}

/// A parameter of a `;`-separated list (a `Transport` value, an RTP-Info entry), trimmed.
fn param<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.split(';')
        .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::trim)
}

/// The SSRC a SETUP answer gives, when the camera's packets carry it: 5 to 8 hex digits. Shorter
/// values (`ssrc=0`, `ssrc=A046`, `ssrc=0x6f7c`) come from cameras whose packets carry another,
/// as retina's parser notes; with those the camera's own SSRC is kept.
fn setup_ssrc(transport: &str) -> Option<u32> {
    let v = param(transport, "ssrc")?;
    let hex = v.len() > 4 && v.len() <= 8 && v.chars().all(|c| c.is_ascii_hexdigit());
    hex.then(|| u32::from_str_radix(v, 16).ok()).flatten()
}

#[derive(Clone, Copy, Default, Debug)]
struct Info {
    seq: Option<u16>,
    rtptime: Option<u32>,
    ssrc: Option<u32>,
}

/// The RTP-Info entry of a PLAY answer for the stream with `control` (its URL ends with it;
/// with one stream set up, a lone entry is its); the values it gives.
fn rtp_info(play: &Message, control: Option<&str>, single: bool) -> Info {
    let header = play.header("RTP-Info").unwrap_or("");
    let entries: Vec<&str> = header.split(',').filter(|e| !e.is_empty()).collect();
    let names = |e: &&&str| {
        let u = param(e, "url").unwrap_or("").trim_end_matches('/');
        control.is_some_and(|c| !u.is_empty() && (u.ends_with(c) || c.ends_with(u)))
    };
    let lone = entries.first().filter(|_| single && entries.len() == 1);
    let Some(entry) = entries.iter().find(names).or(lone) else {
        return Info::default();
    };
    // Hex, as RFC 2326 has it, or decimal when too long for hex (Dahua's).
    let ssrc = param(entry, "ssrc").and_then(|v| match v.len() {
        ..=8 => u32::from_str_radix(v, 16).ok(),
        _ => v.parse().ok(),
    });
    Info {
        seq: param(entry, "seq").and_then(|v| v.parse().ok()),
        rtptime: param(entry, "rtptime").and_then(|v| v.parse().ok()),
        ssrc,
    }
}
