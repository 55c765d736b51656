//! Packets on the wire: RTP and RTCP sender reports (RFC 3550 §5.1, §6.4.1), TCP-interleaved
//! (RFC 2326 §10.12) or over UDP; video access units split into fragmentation units (H.264
//! FU-A, RFC 6184 §5.8; H.265 FU, RFC 7798 §4.4.3); AAC in `AAC-hbr` mode (RFC 3640 §3.3.6).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt as _;
use tokio::net::UdpSocket;

use super::clip::{AudioCodec, ClipAudio};
use crate::codec::VideoCodec;

/// First RTP timestamp of each stream, by default: they wrap a few seconds into the stream (not
/// at the same second, so that no audio SR can be mistaken for a video one).
pub(crate) const RTP_START: [u32; 2] = [u32::MAX - 2 * 90_000 + 1, u32::MAX - 3 * 16_000 + 1];
/// Each stream's SSRC, by default.
pub(crate) const SSRCS: [u32; 2] = [0x5649_4445, 0x4155_4449];
pub(crate) const FIRST_SEQ: [u16; 2] = [65_000, 30_000];
/// RTP payload type of the video stream (dynamic).
const VIDEO_PAYLOAD_TYPE: u8 = 96;
/// Longest RTP payload sent, by default.
pub(crate) const MAX_PAYLOAD: usize = 1400;

/// The write half of a client's RTSP connection, shared by the responses and the media.
pub(crate) type Writer = Arc<tokio::sync::Mutex<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>>;

/// Where a stream's packets go.
#[derive(Clone)]
pub(crate) enum Dest {
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

/// RFC 3551's static payload types for 8 kHz G.711; a dynamic one otherwise.
pub(crate) fn audio_payload_type(audio: &ClipAudio) -> u8 {
    match (&audio.codec, audio.rate) {
        (AudioCodec::Pcmu, 8000) => 0,
        (AudioCodec::Pcma, 8000) => 8,
        _ => 97,
    }
}

/// One stream's sender: where its packets go and its RTP state.
pub(crate) struct RtpSender {
    /// `None`: the client did not set this stream up.
    pub dest: Option<Dest>,
    pub ssrc: u32,
    /// Leave out this many of the next packets, without using up their sequence numbers: the
    /// receiver sees no loss, just packets that do not fit (a broken fragmentation unit).
    pub skip_next: usize,
    /// Split NAL units longer than this into fragmentation units.
    pub max_payload: usize,
    seq: u16,
    packets: u32,
    octets: u32,
    /// When the latest packet with the marker bit (a frame's last) was about to be handed to
    /// the socket, NTP format: no receiver can have the whole frame earlier.
    pub last_marked_at: u64,
}

impl RtpSender {
    pub(super) fn new(stream: usize, dest: Option<Dest>, ssrc: u32) -> RtpSender {
        RtpSender {
            dest,
            ssrc,
            skip_next: 0,
            max_payload: MAX_PAYLOAD,
            seq: FIRST_SEQ[stream],
            packets: 0,
            octets: 0,
            last_marked_at: 0,
        }
    }

    /// Sends one access unit: each NAL unit whole if it fits, else in fragmentation units. The
    /// marker bit ends the access unit. With `lose`, the sequence numbers are used up without
    /// sending (a lost frame).
    pub(super) async fn send_video(
        &mut self,
        writer: &Writer,
        codec: VideoCodec,
        rtp: u32,
        nals: &[&[u8]],
        lose: bool,
    ) -> anyhow::Result<()> {
        let header_len = codec.header_len();
        for (i, nal) in nals.iter().enumerate() {
            let last_nal = i + 1 == nals.len();
            let fu = codec
                .fu_header(nal)
                .filter(|_| nal.len() > self.max_payload);
            let Some((fu_prefix, nal_type)) = fu else {
                self.send(writer, VIDEO_PAYLOAD_TYPE, last_nal, rtp, nal, lose)
                    .await?;
                continue;
            };
            let chunks: Vec<&[u8]> = nal[header_len..]
                .chunks(self.max_payload.saturating_sub(header_len + 1).max(1))
                .collect();
            for (j, chunk) in chunks.iter().enumerate() {
                let start = if j == 0 { 0x80 } else { 0 };
                let end = if j + 1 == chunks.len() { 0x40 } else { 0 };
                let mut payload = Vec::with_capacity(header_len + 1 + chunk.len());
                payload.extend_from_slice(&fu_prefix);
                payload.push(start | end | nal_type);
                payload.extend_from_slice(chunk);
                let marker = last_nal && end != 0;
                self.send(writer, VIDEO_PAYLOAD_TYPE, marker, rtp, &payload, lose)
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends one audio frame in one packet; an AAC frame gets its AU header.
    pub(super) async fn send_audio(
        &mut self,
        writer: &Writer,
        audio: &ClipAudio,
        rtp: u32,
        frame: &[u8],
    ) -> anyhow::Result<()> {
        let payload = match &audio.codec {
            AudioCodec::Aac(_) => {
                // One AU header (RFC 3640 §3.2.1): 13-bit size (the clip checked it fits),
                // 3-bit index.
                let mut p = Vec::with_capacity(4 + frame.len());
                p.extend_from_slice(&16u16.to_be_bytes());
                p.extend_from_slice(&((frame.len() as u16) << 3).to_be_bytes());
                p.extend_from_slice(frame);
                p
            }
            _ => frame.to_vec(),
        };
        let pt = audio_payload_type(audio);
        self.send(writer, pt, true, rtp, &payload, false).await
    }

    /// One video packet with `payload` as it is.
    pub(super) async fn send_payload(
        &mut self,
        writer: &Writer,
        marker: bool,
        ts: u32,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        self.send(writer, VIDEO_PAYLOAD_TYPE, marker, ts, payload, false)
            .await
    }

    async fn send(
        &mut self,
        writer: &Writer,
        pt: u8,
        marker: bool,
        ts: u32,
        payload: &[u8],
        lose: bool,
    ) -> anyhow::Result<()> {
        if self.skip_next > 0 {
            self.skip_next -= 1;
            return Ok(());
        }
        let mut pkt = Vec::with_capacity(12 + payload.len());
        pkt.push(0x80);
        pkt.push(if marker { 0x80 | pt } else { pt });
        pkt.extend_from_slice(&self.seq.to_be_bytes());
        pkt.extend_from_slice(&ts.to_be_bytes());
        pkt.extend_from_slice(&self.ssrc.to_be_bytes());
        pkt.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        if marker {
            self.last_marked_at = super::ntp_now();
        }
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        if lose {
            return Ok(());
        }
        self.deliver(writer, &pkt, false).await
    }

    /// Moves the sequence numbers back by `by` (the `seq_jump_back_at` quirk).
    pub(super) fn step_back(&mut self, by: u16) {
        self.seq = self.seq.wrapping_sub(by);
    }

    /// Hands `pkt` to the stream's RTP (or, with `rtcp`, RTCP) channel as it is; also for
    /// packets broken on purpose.
    pub(super) async fn deliver(
        &self,
        writer: &Writer,
        pkt: &[u8],
        rtcp: bool,
    ) -> anyhow::Result<()> {
        match &self.dest {
            None => Ok(()),
            Some(Dest::Tcp { channel }) => {
                send_interleaved(writer, channel + u8::from(rtcp), pkt).await
            }
            Some(Dest::Udp {
                rtp,
                rtcp: rtcp_socket,
                peer_rtp,
                peer_rtcp,
            }) => {
                let (socket, peer) = if rtcp {
                    (rtcp_socket, peer_rtcp)
                } else {
                    (rtp, peer_rtp)
                };
                socket.send_to(pkt, peer).await?;
                Ok(())
            }
        }
    }

    /// Sends a sender report (no report blocks) on the stream's RTCP channel.
    pub(super) async fn send_sender_report(
        &self,
        writer: &Writer,
        ntp: u64,
        rtp: u32,
    ) -> anyhow::Result<()> {
        let mut sr = Vec::with_capacity(28);
        sr.extend_from_slice(&[0x80, 200, 0, 6]);
        for w in [
            self.ssrc,
            (ntp >> 32) as u32,
            ntp as u32,
            rtp,
            self.packets,
            self.octets,
        ] {
            sr.extend_from_slice(&w.to_be_bytes());
        }
        self.deliver(writer, &sr, true).await
    }
}

async fn send_interleaved(writer: &Writer, channel: u8, pkt: &[u8]) -> anyhow::Result<()> {
    let len = u16::try_from(pkt.len())?;
    let mut frame = Vec::with_capacity(4 + pkt.len());
    frame.extend_from_slice(&[b'$', channel]);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(pkt);
    writer.lock().await.write_all(&frame).await?;
    Ok(())
}
