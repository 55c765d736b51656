//! What a camera needed that RFC 2326 alone would not have given: learned while connecting,
//! said once in the log, and kept for the camera's later sessions so that a reconnect goes
//! straight to what worked.
//!
//! ffmpeg records all of these with its defaults, so the recorder does too, without a flag:
//!
//! * `RTP-Info` (RFC 2326 §12.33) without `rtptime` for some stream, or naming URLs the SDP
//!   did not, or missing: retina's default policy refuses a multi-stream session then; the
//!   recorder plays again with `permissive`, which lines the streams up by their first packets.
//! * `SETUP` over TCP refused with any error status (461 Unsupported Transport is the
//!   textbook answer; 400, 403, 455 and 501 are seen too): UDP.
//! * UDP set up, and no packet arrives (a NAT or a firewall between): TCP.
//! * `SETUP` answered with a session id other than the first SETUP's (RFC 2326 §12.37 wants
//!   one): the first is kept.
//! * `DESCRIBE` answered with a redirect (3xx, `Location:`, RFC 2326 §11.3.3): followed
//!   (`first_look.rs`).

use serde::Serialize;

use super::retina_messages::status_words;
use crate::error::Error;

/// How long a UDP session may bring nothing before the recorder tries TCP.
pub(crate) const UDP_SILENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// One quirk met and worked around, for `probe --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quirk {
    /// A stable identifier: `no-rtptime`, `tcp-refused`, `udp-silent`, `redirect`.
    pub name: &'static str,
    /// What happened and what was done, as the log said it.
    pub detail: String,
}

/// What retina refused of a camera, that a new attempt works around.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The answer to PLAY gave no `rtptime` for some stream: play permissively.
    NoRtptime,
    /// SETUP answered with another session id than the first SETUP: keep the first.
    SessionIdChanges,
}

/// What one camera has needed so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Workarounds {
    /// What retina refused and a new attempt works around.
    pub learned: Vec<Learned>,
    /// The camera refused RTP over TCP with this status: set up over UDP.
    pub tcp_refused: Option<u16>,
    /// No packet came over UDP: set up over TCP.
    pub udp_silent: bool,
    /// Every quirk met, in order, each once.
    pub met: Vec<Quirk>,
}

impl Workarounds {
    /// Whether `learned` is known of this camera.
    pub(crate) fn knows(&self, learned: Learned) -> bool {
        self.learned.contains(&learned)
    }

    /// Notes `learned`, and says so.
    pub(crate) fn learn(&mut self, camera: &str, learned: Learned) {
        self.learned.push(learned);
        let (name, detail) = match learned {
            Learned::NoRtptime => (
                "no-rtptime",
                "its PLAY answer gives no rtptime (RTP-Info) for every stream; lining the streams \
                 up by their first packets, as ffmpeg does",
            ),
            Learned::SessionIdChanges => (
                "session-id-changes",
                "it answered each SETUP with another session id; keeping the first, as ffmpeg \
                 does",
            ),
        };
        self.met(camera, name, detail.to_owned());
    }

    /// Notes `quirk` and logs it, the first time it is met.
    pub(crate) fn met(&mut self, camera: &str, name: &'static str, detail: String) {
        if self
            .met
            .iter()
            .any(|q| q.name == name && q.detail == detail)
        {
            return;
        }
        tracing::info!("camera {camera}: {detail}");
        self.met.push(Quirk { name, detail });
    }

    /// Nothing came over UDP: TCP from now on. An error (worth retrying later, both ways
    /// again) if the camera refused TCP.
    pub(crate) fn udp_was_silent(&mut self, camera: &str) -> Result<(), Error> {
        let secs = UDP_SILENCE.as_secs();
        if let Some(status) = self.tcp_refused.take() {
            return Err(Error::failure(anyhow::anyhow!(
                "camera {camera} sent nothing over UDP for {secs} s, and refused TCP ({})",
                status_words(status)
            )));
        }
        self.udp_silent = true;
        let detail =
            format!("sent nothing over UDP for {secs} s (a NAT or firewall between?); using TCP");
        self.met(camera, "udp-silent", detail);
        Ok(())
    }
}
