//! When each RTP packet and RTCP sender report reached the bridge: the interleaved framing of
//! RFC 2326 §10.12 (`$`, channel, 16-bit length) read as the bytes pass, RTP and sender-report
//! headers (RFC 3550 §5.1, §6.4.1) read for their RTP times.

use std::sync::Arc;
use std::time::SystemTime;

/// When each interleaved RTP packet and RTCP sender report came out of the TLS connection, by
/// channel and RTP time: the receive time the timing data wants, taken where the bytes arrive
/// from the camera, not after the hop through the bridge (`docs/timing-sei.md`). The latest
/// [`KEPT`] are kept.
#[derive(Clone, Default)]
pub(crate) struct Arrivals(Arc<std::sync::Mutex<std::collections::VecDeque<Arrival>>>);

#[derive(Clone, Copy)]
struct Arrival {
    channel: u8,
    rtp: u32,
    at: SystemTime,
}

/// Packets remembered: seconds of any camera's stream, far more than retina holds.
const KEPT: usize = 4096;

impl Arrivals {
    fn note(&self, channel: u8, rtp: u32, at: SystemTime) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match all.back_mut() {
            // A frame's next packet: the frame arrived when its last one did.
            Some(last) if last.channel == channel && last.rtp == rtp => last.at = at,
            _ => {
                all.push_back(Arrival { channel, rtp, at });
                if all.len() > KEPT {
                    all.pop_front();
                }
            }
        }
    }

    /// When the last packet on `channel` with RTP time `rtp` came out of TLS.
    pub(crate) fn of(&self, channel: u8, rtp: u32) -> Option<SystemTime> {
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter()
            .rev()
            .find(|a| a.channel == channel && a.rtp == rtp)
            .map(|a| a.at)
    }
}

/// Where the bridge is in the byte stream from the camera: RTSP messages and interleaved
/// frames (`$`, channel, 16-bit length; RFC 2326 §10.12), one after another.
#[derive(Default)]
pub(super) struct Framing {
    /// The head of the message being read: an interleaved frame's 4 bytes and up to 20 of its
    /// packet, or an RTSP message's text up to its blank line.
    head: Vec<u8>,
    /// Bytes of the current message still to come (after its head).
    remaining: usize,
    /// The interleaved frame's channel, while in one.
    channel: Option<u8>,
}

/// An RTP header's first 8 bytes, an RTCP sender report's first 20 (RFC 3550 §5.1, §6.4.1).
const PACKET_HEAD: usize = 20;

impl Framing {
    /// Takes the next bytes from the camera, which came out of TLS `at`.
    pub(super) fn take(&mut self, mut bytes: &[u8], at: SystemTime, arrivals: &Arrivals) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                if let Some(channel) = self.channel {
                    let want = (4 + PACKET_HEAD).saturating_sub(self.head.len()).min(n);
                    self.head.extend_from_slice(&bytes[..want]);
                    if n == self.remaining {
                        self.packet_done(channel, at, arrivals);
                    }
                }
                self.remaining -= n;
                bytes = &bytes[n..];
                continue;
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            self.head.push(b);
            if self.head[0] == b'$' {
                if self.head.len() == 4 {
                    self.channel = Some(self.head[1]);
                    self.remaining = usize::from(u16::from_be_bytes([self.head[2], self.head[3]]));
                    if self.remaining == 0 {
                        self.head.clear();
                        self.channel = None;
                    }
                }
            } else if self.head.ends_with(b"\r\n\r\n") || self.head.len() > 65536 {
                let text = String::from_utf8_lossy(&self.head);
                self.remaining = text
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("Content-Length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                self.head.clear();
                self.channel = None;
            }
        }
    }

    fn packet_done(&mut self, channel: u8, at: SystemTime, arrivals: &Arrivals) {
        let p = &self.head[4..];
        let word = |i: usize| {
            p.get(i..i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let rtp = match channel % 2 {
            0 => word(4),
            // A sender report (packet type 200): its RTP time.
            _ if p.get(1) == Some(&200) => word(16),
            _ => None,
        };
        if let Some(rtp) = rtp {
            arrivals.note(channel, rtp, at);
        }
        self.head.clear();
        self.channel = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_noted_when_their_last_byte_came() {
        use std::time::Duration;
        let t = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let rtp = |ts: u32| {
            let mut p = vec![0x80, 96, 0, 1];
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&[0; 8]);
            p
        };
        let frame = |channel: u8, packet: &[u8]| {
            let mut f = vec![b'$', channel];
            f.extend_from_slice(&(packet.len() as u16).to_be_bytes());
            f.extend_from_slice(packet);
            f
        };
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend_from_slice(&[0; 12]);
        sr.extend_from_slice(&77u32.to_be_bytes());
        sr.extend_from_slice(&[0; 8]);
        let mut stream = b"RTSP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n$$$$$".to_vec();
        let answer = stream.len();
        stream.extend(frame(0, &rtp(1000)));
        stream.extend(frame(0, &rtp(1000)));
        stream.extend(frame(2, &rtp(5)));
        stream.extend(frame(1, &sr));
        stream.extend(frame(0, &rtp(4000)));
        let (arrivals, mut framing) = (Arrivals::default(), Framing::default());
        // In chunks of 7 bytes, the nth at n ms.
        for (n, chunk) in stream.chunks(7).enumerate() {
            framing.take(chunk, t(n as u64), &arrivals);
        }
        let done = |end: usize| t(((end - 1) / 7) as u64);
        let after_second = answer + 2 * 20;
        assert_eq!(arrivals.of(0, 1000), Some(done(after_second)));
        assert_eq!(arrivals.of(2, 5), Some(done(after_second + 20)));
        assert_eq!(arrivals.of(1, 77), Some(done(after_second + 20 + 32)));
        assert_eq!(arrivals.of(0, 4000), Some(done(stream.len())));
        assert_eq!(arrivals.of(0, 5), None);
    }
}
