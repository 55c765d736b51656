//! The RTSP side of the camera (RFC 2326): one task per client connection, answering OPTIONS,
//! DESCRIBE (with an SDP, RFC 8866), SETUP (interleaved TCP or UDP), PLAY, TEARDOWN and
//! GET_PARAMETER, with optional Basic authentication (RFC 7617).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::bail;
use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UdpSocket;

use super::clip::AudioCodec;
use super::rtp::{self, Dest, FIRST_SEQ, Writer};
use super::schedule::Schedule;
use super::{RtpInfo, Shared};
use crate::codec::VideoCodec;

const SESSION_ID: &str = "12345678";
/// Requests are small; a client that sends more without finishing one is not a client.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

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

/// One client's connection.
struct Connection {
    shared: Arc<Shared>,
    writer: Writer,
    peer: SocketAddr,
    /// Where each stream goes, once set up: 0 video, 1 audio.
    dests: [Option<Dest>; 2],
    streaming: Option<tokio::task::JoinHandle<()>>,
    /// Where UDP goes when it must never arrive (the `udp_unreachable` quirk).
    sinks: Vec<UdpSocket>,
}

/// Serves one client until it leaves, misbehaves, or the camera drops every connection.
pub(crate) async fn serve_connection<S>(
    conn: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, wr) = tokio::io::split(conn);
    let mut c = Connection {
        shared: shared.clone(),
        writer: Arc::new(tokio::sync::Mutex::new(Box::new(wr))),
        peer,
        dests: [None, None],
        streaming: None,
        sinks: Vec::new(),
    };
    let mut buf = Vec::new();
    let result = async {
        loop {
            let req = tokio::select! {
                r = read_request(&mut rd, &mut buf) => r?,
                _ = shared.drop_all.notified() => return Ok(()),
            };
            let Some(req) = req else { return Ok(()) };
            c.handle(&req).await?;
        }
    }
    .await;
    c.stop_streaming();
    let _ = c.writer.lock().await.shutdown().await;
    result
}

impl Connection {
    async fn handle(&mut self, req: &Request) -> anyhow::Result<()> {
        let cseq = req.header("CSeq").unwrap_or("0").to_owned();
        // As a load balancer in front of cameras does: before authentication.
        if let Some(location) = self.redirect(req)
            && matches!(req.method.as_str(), "OPTIONS" | "DESCRIBE")
        {
            let location = format!("Location: {location}");
            return self.respond("302 Found", &cseq, &[location], "").await;
        }
        if !self.authorized(req) {
            let challenge = "WWW-Authenticate: Basic realm=\"retina-record camera\"".to_owned();
            return self
                .respond("401 Unauthorized", &cseq, &[challenge], "")
                .await;
        }
        let session = format!("Session: {SESSION_ID}");
        match req.method.as_str() {
            "OPTIONS" => {
                let public = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER";
                self.respond("200 OK", &cseq, &[public.into()], "").await
            }
            "DESCRIBE" => {
                let headers = [
                    format!("Content-Base: {}/", req.url.trim_end_matches('/')),
                    "Content-Type: application/sdp".into(),
                ];
                let sdp = sdp(&self.shared);
                self.respond("200 OK", &cseq, &headers, &sdp).await
            }
            "SETUP" => self.setup(req, &cseq).await,
            "PLAY" => self.play(req, &cseq).await,
            "TEARDOWN" => {
                self.stop_streaming();
                self.respond("200 OK", &cseq, &[session], "").await
            }
            "GET_PARAMETER" | "SET_PARAMETER" => {
                self.respond("200 OK", &cseq, &[session], "").await
            }
            _ => self.respond("501 Not Implemented", &cseq, &[], "").await,
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some((user, pass)) = &self.shared.config.credentials else {
            return true;
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        req.header("Authorization") == Some(format!("Basic {token}").as_str())
    }

    /// Where the `redirects` quirk sends a request for `req.url`, if anywhere.
    fn redirect(&self, req: &Request) -> Option<String> {
        if !self.shared.config.quirks.redirects {
            return None;
        }
        let url = url::Url::parse(&req.url).ok()?;
        let mut parts = url.path().trim_start_matches('/').splitn(3, '/');
        let (first, second) = (parts.next()?, parts.next()?);
        let rest = |n: usize| -> String {
            let mut p = url.path().trim_start_matches('/').splitn(n + 1, '/');
            p.nth(n).unwrap_or_default().to_owned()
        };
        let port = url.port().unwrap_or(554);
        match first {
            "loop" => Some(req.url.clone()),
            "elsewhere" => Some(format!("rtsp://localhost:{port}/{}", rest(1))),
            "redirect" => match second.parse::<usize>().ok()? {
                0 | 1 => Some(format!("/{}", rest(2))),
                n => Some(format!("/redirect/{}/{}", n - 1, rest(2))),
            },
            _ => None,
        }
    }

    async fn setup(&mut self, req: &Request, cseq: &str) -> anyhow::Result<()> {
        let track = req
            .url
            .rsplit("trackID=")
            .next()
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(9);
        let audio = self.shared.config.audio && self.shared.config.clips[0].has_audio();
        if track > 1 || (track == 1 && !audio) {
            return self.respond("404 Not Found", cseq, &[], "").await;
        }
        let transport = req.header("Transport").unwrap_or("");
        if let Some(status) = self.shared.config.quirks.refuse_tcp_setup
            && param(transport, "interleaved").is_some()
        {
            let status = format!("{status} Refused");
            return self.respond(&status, cseq, &[], "").await;
        }
        let Some((dest, reply)) = self.transport(track, transport).await? else {
            return self
                .respond("461 Unsupported Transport", cseq, &[], "")
                .await;
        };
        self.dests[track] = Some(dest);
        let headers = [
            format!("Transport: {reply}"),
            format!("Session: {SESSION_ID};timeout=60"),
        ];
        self.respond("200 OK", cseq, &headers, "").await
    }

    /// Where `track` goes for a `Transport` header, and the header to answer with; `None` for
    /// a transport the camera does not offer.
    async fn transport(
        &mut self,
        track: usize,
        transport: &str,
    ) -> anyhow::Result<Option<(Dest, String)>> {
        let ssrc = self.shared.config.ssrcs[track];
        if let Some(il) = param(transport, "interleaved") {
            let channel = il
                .split('-')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let reply = format!("RTP/AVP/TCP;unicast;interleaved={il};ssrc={ssrc:08X}");
            return Ok(Some((Dest::Tcp { channel }, reply)));
        }
        let Some(ports) = param(transport, "client_port") else {
            return Ok(None);
        };
        let mut p = ports.split('-').filter_map(|p| p.parse::<u16>().ok());
        let rtp_port = p.next().unwrap_or(0);
        let rtcp_port = p.next().unwrap_or(rtp_port.saturating_add(1));
        let (rtp, rtcp) = udp_pair().await?;
        let reply = format!(
            "RTP/AVP;unicast;client_port={rtp_port}-{rtcp_port};server_port={}-{};ssrc={ssrc:08X}",
            rtp.local_addr()?.port(),
            rtcp.local_addr()?.port()
        );
        let (mut peer_rtp, mut peer_rtcp) = (
            SocketAddr::new(self.peer.ip(), rtp_port),
            SocketAddr::new(self.peer.ip(), rtcp_port),
        );
        if self.shared.config.quirks.udp_unreachable {
            let sink = UdpSocket::bind("127.0.0.1:0").await?;
            (peer_rtp, peer_rtcp) = (sink.local_addr()?, sink.local_addr()?);
            self.sinks.push(sink);
        }
        let dest = Dest::Udp {
            rtp: Arc::new(rtp),
            rtcp: Arc::new(rtcp),
            peer_rtp,
            peer_rtcp,
        };
        Ok(Some((dest, reply)))
    }

    async fn play(&mut self, req: &Request, cseq: &str) -> anyhow::Result<()> {
        let base = req.url.trim_end_matches('/');
        let how = self.shared.config.quirks.rtp_info;
        let infos: Vec<String> = (0..2)
            .filter(|&i| self.dests[i].is_some())
            .map(|i| {
                let (seq, rtptime) = (FIRST_SEQ[i], self.shared.config.rtp_start[i]);
                match how {
                    RtpInfo::NoRtptime => format!("url={base}/trackID={i};seq={seq}"),
                    RtpInfo::NoSeq => format!("url={base}/trackID={i};rtptime={rtptime}"),
                    RtpInfo::OtherUrls => format!(
                        "url=rtsp://upstream.invalid/live/track{i};seq={seq};rtptime={rtptime}"
                    ),
                    RtpInfo::Full | RtpInfo::Missing => {
                        format!("url={base}/trackID={i};seq={seq};rtptime={rtptime}")
                    }
                }
            })
            .collect();
        let mut headers = vec![format!("Session: {SESSION_ID}"), "Range: npt=0.000-".into()];
        if how != RtpInfo::Missing {
            headers.push(format!("RTP-Info: {}", infos.join(",")));
        }
        self.respond("200 OK", cseq, &headers, "").await?;
        self.stop_streaming();
        let schedule = Schedule::new(self.shared.clone(), self.writer.clone(), self.dests.clone());
        self.streaming = Some(tokio::spawn(async move {
            let _ = schedule.run().await;
        }));
        Ok(())
    }

    fn stop_streaming(&mut self) {
        if let Some(t) = self.streaming.take() {
            t.abort();
        }
    }

    async fn respond(
        &self,
        status: &str,
        cseq: &str,
        headers: &[String],
        body: &str,
    ) -> anyhow::Result<()> {
        let mut msg =
            format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: retina-record camera\r\n");
        for h in headers {
            msg.push_str(h);
            msg.push_str("\r\n");
        }
        if !body.is_empty() {
            msg.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        msg.push_str("\r\n");
        msg.push_str(body);
        self.writer.lock().await.write_all(msg.as_bytes()).await?;
        Ok(())
    }
}

/// A parameter of a `Transport` header (RFC 2326 §12.39).
fn param<'a>(transport: &'a str, name: &str) -> Option<&'a str> {
    transport
        .split(';')
        .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Two UDP sockets on consecutive ports, the first even (RFC 3550 §11).
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
    bail!("no even/odd UDP port pair")
}

/// Reads one RTSP request, skipping any interleaved data the client sends.
async fn read_request(
    rd: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> anyhow::Result<Option<Request>> {
    loop {
        while buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < len {
                break;
            }
            buf.drain(..len);
        }
        if let Some(request) = parse_request(buf) {
            return Ok(Some(request));
        }
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

/// Takes one whole request (head and body) off the front of `buf`, if there is one.
fn parse_request(buf: &mut Vec<u8>) -> Option<Request> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
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
    let total = end.checked_add(4)?.checked_add(body_len)?;
    if buf.len() < total {
        return None;
    }
    buf.drain(..total);
    Some(Request {
        method,
        url,
        headers,
    })
}

/// The session description: the video stream, and the audio stream if served.
fn sdp(shared: &Shared) -> String {
    let clip = &shared.config.clips[0];
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=retina-record camera\r\nt=0 0\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\n{}a=control:trackID=0\r\n",
        video_format(clip, shared.config.quirks.no_sdp_parameters)
    );
    if let Some(audio) = clip.audio.as_ref().filter(|_| shared.config.audio) {
        let pt = rtp::audio_payload_type(audio);
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

/// The video stream's `rtpmap` and `fmtp` (RFC 6184 §8.1, RFC 7798 §7.1); without parameter
/// sets when the `no_sdp_parameters` quirk says so.
fn video_format(clip: &super::Clip, bare: bool) -> String {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let ps = &clip.parameter_sets;
    match clip.codec {
        VideoCodec::H264 if bare => {
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n".into()
        }
        VideoCodec::H264 => format!(
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;\
             profile-level-id={:02X}{:02X}{:02X};sprop-parameter-sets={},{}\r\n",
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
    }
}
