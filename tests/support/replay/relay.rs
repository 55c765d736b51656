//! The replay rig's media: a session of its own with the built-in camera, whose RTP and RTCP
//! go to the recorder as interleaved data on the recorder's channels, with the captured
//! payload type, SSRC and RTP-Info bases (and PCMU turned into PCMA where the SDP says PCMA).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;

use super::{Info, Message, Relayed, rtp_info};

/// How one camera track reaches one recorder stream.
#[derive(Clone, Debug)]
pub(super) struct Route {
    /// The camera's track: 0 video, 1 audio (on the camera's channels 0-1, 2-3).
    pub(super) track: u8,
    /// The recorder's RTP channel (RTCP on the next).
    pub(super) channel: u8,
    pub(super) pt: u8,
    /// The captured RTP-Info's values, the SSRC the SETUP answer gave if it gave none.
    pub(super) info: Info,
    pub(super) alaw: bool,
    /// Added to the camera's sequence numbers and timestamps: the captured RTP-Info's
    /// values less the camera's.
    pub(super) deltas: (u16, u32),
}

/// Plays the routes' tracks from the camera and relays them until the recorder goes.
pub(super) async fn relay(
    cam: std::net::SocketAddr,
    mut routes: Vec<Route>,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    relayed: Arc<Relayed>,
) {
    let Ok(mut up) = TcpStream::connect(cam).await else {
        return;
    };
    let base = format!("rtsp://{cam}/demo");
    let mut cseq = 0;
    let mut tracks: Vec<u8> = routes.iter().map(|r| r.track).collect();
    tracks.dedup();
    for t in &tracks {
        cseq += 1;
        let req = format!(
            "SETUP {base}/trackID={t} RTSP/1.0\r\nCSeq: {cseq}\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved={}-{}\r\n\r\n",
            2 * t,
            2 * t + 1
        );
        if exchange(&mut up, &req).await.is_none() {
            return;
        }
    }
    let req = format!(
        "PLAY {base}/ RTSP/1.0\r\nCSeq: {}\r\nSession: 12345678\r\n\r\n",
        cseq + 1
    );
    let Some(played) = exchange(&mut up, &req).await else {
        return;
    };
    for r in &mut routes {
        let own = rtp_info(&played, Some(&format!("trackID={}", r.track)), false);
        let (seq, time) = (own.seq.unwrap_or(0), own.rtptime.unwrap_or(0));
        r.deltas = (
            r.info.seq.map_or(0, |s| s.wrapping_sub(seq)),
            r.info.rtptime.map_or(0, |t| t.wrapping_sub(time)),
        );
    }
    let _ = forward(up, &routes, &writer, &relayed).await;
}

/// Sends a request to the camera and reads its answer (the camera's have no body).
async fn exchange(up: &mut TcpStream, req: &str) -> Option<Message> {
    up.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if up.read(&mut b).await.ok()? == 0 {
            return None;
        }
        buf.push(b[0]);
    }
    let m = Message::parse(&String::from_utf8_lossy(&buf));
    m.head[0].contains(" 200 ").then_some(m)
}

async fn forward(
    mut up: TcpStream,
    routes: &[Route],
    writer: &Mutex<OwnedWriteHalf>,
    relayed: &Relayed,
) -> std::io::Result<()> {
    let mut header = [0u8; 4];
    loop {
        up.read_exact(&mut header).await?;
        if header[0] != b'$' {
            return Err(std::io::Error::other("the camera sent other than data"));
        }
        let mut data = vec![0u8; usize::from(u16::from_be_bytes([header[2], header[3]]))];
        up.read_exact(&mut data).await?;
        let (track, rtcp) = (header[1] / 2, header[1] % 2 == 1);
        let Some(r) = routes.iter().find(|r| r.track == track) else {
            continue;
        };
        if rtcp {
            rewrite_rtcp(&mut data, r);
        } else {
            rewrite_rtp(&mut data, r);
            if r.track != 0 {
                relayed.audio_packets.fetch_add(1, Ordering::Relaxed);
            } else if data[1] & 0x80 != 0 {
                relayed.video_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut frame = vec![b'$', r.channel + u8::from(rtcp)];
        frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
        frame.extend_from_slice(&data);
        writer.lock().await.write_all(&frame).await?;
    }
}

fn rewrite_rtp(p: &mut [u8], r: &Route) {
    if p.len() < 12 {
        return;
    }
    p[1] = (p[1] & 0x80) | (r.pt & 0x7f);
    let seq = u16::from_be_bytes([p[2], p[3]]).wrapping_add(r.deltas.0);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]).wrapping_add(r.deltas.1);
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    if let Some(ssrc) = r.info.ssrc {
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
    if r.alaw {
        let mut start = 12 + 4 * usize::from(p[0] & 0x0f);
        if p[0] & 0x10 != 0 && p.len() >= start + 4 {
            start += 4 + 4 * usize::from(u16::from_be_bytes([p[start + 2], p[start + 3]]));
        }
        for b in p.iter_mut().skip(start) {
            *b = linear_to_alaw(ulaw_to_linear(*b));
        }
    }
}

/// Each packet of a compound RTCP packet: a sender report's SSRC and RTP time, a source
/// description's first SSRC, as the route rewrites RTP.
fn rewrite_rtcp(p: &mut [u8], r: &Route) {
    let mut at = 0;
    while at + 8 <= p.len() {
        let len = 4 * (1 + usize::from(u16::from_be_bytes([p[at + 2], p[at + 3]])));
        let pt = p[at + 1];
        if let Some(ssrc) = r.info.ssrc
            && (pt == 200 || pt == 202)
        {
            p[at + 4..at + 8].copy_from_slice(&ssrc.to_be_bytes());
        }
        if pt == 200 && at + 20 <= p.len() {
            let ts = u32::from_be_bytes([p[at + 16], p[at + 17], p[at + 18], p[at + 19]]);
            p[at + 16..at + 20].copy_from_slice(&ts.wrapping_add(r.deltas.1).to_be_bytes());
        }
        at += len;
    }
}

/// G.711 µ-law to linear (ITU-T G.711).
fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// Linear to G.711 A-law (ITU-T G.711).
fn linear_to_alaw(pcm: i16) -> u8 {
    let mut v = i32::from(pcm) >> 3;
    let mask = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    const END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let Some(seg) = END.iter().position(|&e| v <= e) else {
        return 0x7f ^ mask;
    };
    let quant = if seg < 2 { v >> 1 } else { v >> seg } & 0x0f;
    ((seg as u8) << 4 | quant as u8) ^ mask
}

#[cfg(test)]
mod tests {
    use super::{linear_to_alaw, ulaw_to_linear};

    /// G.711 A-law to linear (ITU-T G.711), to check the conversion by.
    fn alaw_to_linear(a: u8) -> i32 {
        let a = a ^ 0x55;
        let seg = i32::from((a & 0x70) >> 4);
        let t = (i32::from(a & 0x0f) << 4) + 8;
        let t = if seg == 0 {
            t
        } else {
            (t + 0x100) << (seg - 1)
        };
        if a & 0x80 != 0 { t } else { -t }
    }

    #[test]
    fn every_pcmu_code_becomes_the_nearest_pcma_one() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(linear_to_alaw(0), 0xd5);
        for u in 0..=255u8 {
            let linear = i32::from(ulaw_to_linear(u));
            let a = alaw_to_linear(linear_to_alaw(linear as i16));
            // A-law's step at that level: 1/32 of the value, 16 at the least.
            let step = (linear.abs() / 32).max(16);
            assert!(
                (a - linear).abs() <= step,
                "µ-law {u:#04x}: {linear} became {a}"
            );
        }
    }
}
