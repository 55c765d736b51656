//! Opening a session: DESCRIBE, SETUP and PLAY (RFC 2326 §10.2, §10.4, §10.5) through retina,
//! each step bounded by the connect timeout, with the transport fallback and the camera's
//! refusals turned into one-line errors that say whether a retry could help.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use retina::client::{
    Demuxed, Described, InitialTimestampPolicy, PlayOptions, Session, SessionGroup,
    SessionIdPolicy, SessionOptions, SetupOptions,
};

use super::bridge;
use super::retina_messages::{error_words, status_words};
use super::select::{self, Selection};
use super::workarounds::{Learned, Workarounds};
use crate::config::{Field, RecorderConfig, Transport};
use crate::error::Error;
use crate::memory::{HANDSHAKE_LIMIT, MemoryGuard, mib};
use crate::source::Source;

/// RTSP status for a transport the server will not use (RFC 2326 §11.3.10).
pub(crate) const UNSUPPORTED_TRANSPORT: u16 = 461;

/// Why a session could not be opened (or went on), and whether trying again could help.
pub(crate) struct ConnectError {
    pub error: Error,
    /// Trying again cannot help: the camera refused us, has no such stream, or offers nothing
    /// that can be recorded; or the configuration is wrong.
    pub permanent: bool,
    /// A way the camera differs that retina refused, and that another attempt can work around.
    learned: Option<Learned>,
}

impl ConnectError {
    fn permanent(error: Error) -> ConnectError {
        ConnectError::new(error, true)
    }

    pub(crate) fn new(error: Error, permanent: bool) -> ConnectError {
        ConnectError {
            error,
            permanent,
            learned: None,
        }
    }
}

/// Looks at the camera (`first_look.rs`, which follows redirects), then DESCRIBE, choose the
/// streams (saying which unless `quiet`), SETUP each, PLAY, working around what the camera
/// needs (`workarounds.rs`); given up on when the camera makes the recorder hold more than
/// [`HANDSHAKE_LIMIT`] (see `memory.rs`).
pub(crate) async fn open(
    config: &RecorderConfig,
    group: &Arc<SessionGroup>,
    quiet: bool,
    workarounds: &mut Workarounds,
) -> Result<(Demuxed, Selection), ConnectError> {
    let source = super::first_look::first_look(config, workarounds).await?;
    let guard = MemoryGuard::new(HANDSHAKE_LIMIT);
    let camera = config.source.host_port();
    let mut quiet = quiet;
    loop {
        let opened = tokio::select! {
            opened = handshake(config, &source, group, quiet, workarounds) => opened,
            grown = guard.exceeded_after(Duration::from_millis(100)) => Err(ConnectError::new(
                Error::failure(anyhow::anyhow!(
                    "camera {camera} sent {} MiB without finishing an answer; giving up on \
                     this attempt",
                    mib(grown)
                )),
                false,
            )),
        };
        match opened {
            Err(ConnectError {
                learned: Some(learned),
                ..
            }) if !workarounds.knows(learned) => {
                workarounds.learn(&camera, learned);
                quiet = true;
            }
            opened => return opened,
        }
    }
}

async fn handshake(
    config: &RecorderConfig,
    source: &Source,
    group: &Arc<SessionGroup>,
    quiet: bool,
    workarounds: &mut Workarounds,
) -> Result<(Demuxed, Selection), ConnectError> {
    // After a redirect, errors are about where it led (its credentials, its path).
    let redirected;
    let config = match source.url == config.source.url {
        true => config,
        false => {
            redirected = RecorderConfig {
                source: source.clone(),
                ..config.clone()
            };
            &redirected
        }
    };
    let options = SessionOptions::default()
        .creds(source.credentials.clone())
        .session_group(group.clone())
        .user_agent(format!("retina-record/{}", env!("CARGO_PKG_VERSION")))
        .teardown(config.teardown)
        .session_id(match workarounds.knows(Learned::SessionIdChanges) {
            true => SessionIdPolicy::UseFirst,
            false => SessionIdPolicy::Default,
        });
    let bridge = bridge_for(config, source).await?;
    let url = bridge.as_ref().map_or(&source.url, |b| &b.url).clone();
    let describe = Session::describe(url, options);
    let mut session = step(config, "DESCRIBE", describe).await?;
    let mut selection = select::select(&session, config.video, config.audio, config.wording, quiet)
        .map_err(ConnectError::permanent)?;
    selection.udp = setup_streams(&mut session, &selection, config, workarounds).await?;
    if let Some(bridge) = bridge {
        selection.arrivals = Some(bridge.arrivals);
        selection.certificate = bridge.certificate;
    }
    // No `enforce_timestamps_with_max_jump_secs`: it rejects any backward step, and RTP
    // timestamps of B-frames step backward in decode order (0.2's abort). Unenforced, retina
    // extends each timestamp by its signed 32-bit difference from the previous one.
    let policy = match config.initial_timestamp {
        InitialTimestampPolicy::Default if workarounds.knows(Learned::NoRtptime) => {
            InitialTimestampPolicy::Permissive
        }
        policy => policy,
    };
    let play = PlayOptions::default()
        .initial_timestamp(policy)
        .unknown_rtcp_ssrc(config.unknown_rtcp_ssrc);
    let session = step(config, "PLAY", session.play(play)).await?;
    let session = session.demuxed().map_err(|e| camera_error(&e, config))?;
    Ok((session, selection))
}

/// The bridge (`rtsp/bridge/`) retina connects through, if any: for `rtsps://` (retina speaks
/// plain TCP) or kernel receive times.
async fn bridge_for(
    config: &RecorderConfig,
    source: &Source,
) -> Result<Option<bridge::Bridge>, ConnectError> {
    if !bridged(config) {
        return Ok(None);
    }
    let what = match source.tls() {
        true => "the TLS handshake",
        false => "connecting",
    };
    let bridged = timed(config, what, bridge::bridge(config, &source.url));
    let camera = config.source.host_port();
    let bridge = bridged.await?.map_err(|(why, permanent)| {
        ConnectError::new(
            Error::failure(anyhow::anyhow!("camera {camera} {why}")),
            permanent,
        )
    })?;
    Ok(Some(bridge))
}

/// Whether retina reaches the camera through the bridge: over TLS, or for kernel times.
fn bridged(config: &RecorderConfig) -> bool {
    config.source.tls() || config.kernel_timestamps
}

/// One step of the handshake, bounded by the connect timeout.
async fn step<T>(
    config: &RecorderConfig,
    what: &str,
    fut: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, ConnectError> {
    timed(config, what, fut)
        .await?
        .map_err(|e| camera_error(&e, config))
}

/// `fut`, or a (retryable) error once the connect timeout has passed.
async fn timed<T>(
    config: &RecorderConfig,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, ConnectError> {
    tokio::time::timeout(config.connect_timeout, fut)
        .await
        .map_err(|_| {
            let error = Error::failure(anyhow::anyhow!(
                "camera {} did not answer {what} within {:.0} s ({})",
                config.source.host_port(),
                config.connect_timeout.as_secs_f64(),
                config.wording.of(Field::ConnectTimeout)
            ));
            ConnectError::new(error, false)
        })
}

/// SETUPs the selected streams. With `auto`, TCP first; a refusal with any error status (461
/// Unsupported Transport is VLC's; 400, 403, 455 and 501 are seen too) switches this and later
/// streams, and the camera's later sessions, to UDP. With `udp`, UDP, unless the camera sent
/// nothing over it before (then TCP). Whether UDP was used.
async fn setup_streams(
    session: &mut Session<Described>,
    selection: &Selection,
    config: &RecorderConfig,
    workarounds: &mut Workarounds,
) -> Result<bool, ConnectError> {
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
    let mut use_udp = match config.transport {
        // Through the bridge, RTP is interleaved: over UDP it would be SRTP (`rtsp/tls.rs`), or
        // pass by the bridge's kernel times.
        _ if bridged(config) => false,
        Transport::Tcp => false,
        Transport::Udp => !workarounds.udp_silent,
        Transport::Auto => workarounds.tcp_refused.is_some(),
    };
    for i in selection.indices() {
        let fallback = config.transport == Transport::Auto && !use_udp && !bridged(config);
        let status = match timed(config, "SETUP", session.setup(i, options(use_udp))).await? {
            Ok(()) => continue,
            Err(e) => match e.status_code() {
                Some(status) if fallback && status >= 400 && status != 401 => status,
                _ => return Err(camera_error(&e, config)),
            },
        };
        workarounds.tcp_refused = Some(status);
        let detail = format!(
            "refused RTP over TCP ({}); using UDP, recording through lost packets (counted)",
            status_words(status)
        );
        workarounds.met(&config.source.host_port(), "tcp-refused", detail);
        use_udp = true;
        step(config, "SETUP", session.setup(i, options(true))).await?;
    }
    Ok(use_udp)
}

/// One line about a retina error, naming the camera; 401, 403, 404 and a refused transport
/// explained, and each marked permanent: no retry makes a camera accept a wrong password or
/// serve a missing path.
pub(crate) fn camera_error(e: &retina::Error, config: &RecorderConfig) -> ConnectError {
    let source = &config.source;
    let name = |f: Field| config.wording.of(f);
    let camera = source.host_port();
    let (message, permanent) = match e.status_code() {
        Some(401) if source.credentials.is_some() => (
            format!("camera {camera} rejected the credentials (401 Unauthorized)"),
            true,
        ),
        Some(401) => (
            format!(
                "camera {camera} requires credentials (401 Unauthorized): give {} and {}",
                name(Field::Username),
                name(Field::PasswordFile)
            ),
            true,
        ),
        Some(403) => (
            format!("camera {camera} refused access (403 Forbidden)"),
            true,
        ),
        Some(404) => (
            format!(
                "camera {camera} has no stream at {} (404 Not Found)",
                source.url.path()
            ),
            true,
        ),
        Some(UNSUPPORTED_TRANSPORT) => (
            format!(
                "camera {camera} refused the transport ({}){}",
                status_words(UNSUPPORTED_TRANSPORT),
                match config.transport {
                    Transport::Tcp => format!("; try {} auto or udp", name(Field::Transport)),
                    Transport::Udp => format!("; try {} auto or tcp", name(Field::Transport)),
                    Transport::Auto => String::new(),
                }
            ),
            true,
        ),
        _ => (format!("camera {camera} {}", error_words(e)), false),
    };
    let default_policy = matches!(config.initial_timestamp, InitialTimestampPolicy::Default);
    let text = e.to_string();
    let learned = if default_policy && text.contains("Expected rtptime on PLAY") {
        Some(Learned::NoRtptime)
    } else if text.contains("session id changed from") {
        Some(Learned::SessionIdChanges)
    } else {
        None
    };
    ConnectError {
        error: Error::failure(anyhow::anyhow!(message)),
        permanent,
        learned,
    }
}
