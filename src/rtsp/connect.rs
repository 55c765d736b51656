//! Opening a session: DESCRIBE, SETUP and PLAY (RFC 2326 §10.2, §10.4, §10.5) through retina,
//! each step bounded by the connect timeout, with the transport fallback and the camera's
//! refusals turned into one-line errors that say whether a retry could help.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use retina::client::{
    Demuxed, Described, PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions,
};

use super::select::{self, Selection};
use crate::config::{Field, RecorderConfig, Transport};
use crate::error::{Error, one_line};
use crate::memory::{HANDSHAKE_LIMIT, MemoryGuard, mib};

/// RTSP status for a transport the server will not use (RFC 2326 §11.3.10).
const UNSUPPORTED_TRANSPORT: u16 = 461;

/// Why a session could not be opened (or went on), and whether trying again could help.
pub(crate) struct ConnectError {
    pub error: Error,
    /// Trying again cannot help: the camera refused us, has no such stream, or offers nothing
    /// that can be recorded; or the configuration is wrong.
    pub permanent: bool,
}

impl ConnectError {
    fn permanent(error: Error) -> ConnectError {
        ConnectError {
            error,
            permanent: true,
        }
    }
}

/// Looks at the camera (`first_look.rs`), then DESCRIBE, choose the streams (saying which unless
/// `quiet`), SETUP each, PLAY; given up on when the camera makes the recorder hold more than
/// [`HANDSHAKE_LIMIT`] (see `memory.rs`).
pub(crate) async fn open(
    config: &RecorderConfig,
    group: &Arc<SessionGroup>,
    quiet: bool,
) -> Result<(Demuxed, Selection), ConnectError> {
    super::first_look::first_look(config)
        .await
        .map_err(|error| ConnectError {
            error,
            permanent: false,
        })?;
    let guard = MemoryGuard::new(HANDSHAKE_LIMIT);
    tokio::select! {
        opened = handshake(config, group, quiet) => opened,
        grown = guard.exceeded_after(Duration::from_millis(100)) => Err(ConnectError {
            error: Error::failure(anyhow::anyhow!(
                "camera {} sent {} MiB without finishing an answer; giving up on this attempt",
                config.source.host_port(),
                mib(grown)
            )),
            permanent: false,
        }),
    }
}

async fn handshake(
    config: &RecorderConfig,
    group: &Arc<SessionGroup>,
    quiet: bool,
) -> Result<(Demuxed, Selection), ConnectError> {
    let source = &config.source;
    let options = SessionOptions::default()
        .creds(source.credentials.clone())
        .session_group(group.clone())
        .user_agent(format!("retina-record/{}", env!("CARGO_PKG_VERSION")))
        .teardown(config.teardown);
    let describe = Session::describe(source.url.clone(), options);
    let mut session = step(config, "DESCRIBE", describe).await?;
    let mut selection = select::select(&session, config.video, config.audio, config.wording, quiet)
        .map_err(ConnectError::permanent)?;
    selection.udp = setup_streams(&mut session, &selection, config).await?;
    // No `enforce_timestamps_with_max_jump_secs`: it rejects any backward step, and RTP
    // timestamps of B-frames step backward in decode order (0.2's abort). Unenforced, retina
    // extends each timestamp by its signed 32-bit difference from the previous one.
    let play = PlayOptions::default()
        .initial_timestamp(config.initial_timestamp)
        .unknown_rtcp_ssrc(config.unknown_rtcp_ssrc);
    let session = step(config, "PLAY", session.play(play)).await?;
    let session = session.demuxed().map_err(|e| camera_error(&e, config))?;
    Ok((session, selection))
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
        .map_err(|_| ConnectError {
            error: Error::failure(anyhow::anyhow!(
                "camera {} did not answer {what} within {:.0} s ({})",
                config.source.host_port(),
                config.connect_timeout.as_secs_f64(),
                config.wording.of(Field::ConnectTimeout)
            )),
            permanent: false,
        })
}

/// SETUPs the selected streams. With `auto`, TCP first; a `461 Unsupported Transport` (VLC's
/// answer, for one) switches this and later streams to UDP. Whether UDP was used.
async fn setup_streams(
    session: &mut Session<Described>,
    selection: &Selection,
    config: &RecorderConfig,
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
    let mut use_udp = config.transport == Transport::Udp;
    for i in selection.indices() {
        let fallback = config.transport == Transport::Auto && !use_udp;
        match timed(config, "SETUP", session.setup(i, options(use_udp))).await? {
            Ok(()) => continue,
            Err(e) if fallback && e.status_code() == Some(UNSUPPORTED_TRANSPORT) => {}
            Err(e) => return Err(camera_error(&e, config)),
        }
        tracing::info!(
            "camera {} refused RTP over TCP (461 Unsupported Transport); using UDP{}",
            config.source.host_port(),
            if config.allow_loss {
                String::new()
            } else {
                format!(
                    " (lost or reordered packets stop the recording without {})",
                    config.wording.of(Field::AllowLoss)
                )
            }
        );
        use_udp = true;
        step(config, "SETUP", session.setup(i, options(true))).await?;
    }
    Ok(use_udp)
}

/// One line about a retina error, naming the camera; 401, 404 and 461 explained, and each
/// marked permanent: no retry makes a camera accept a wrong password or serve a missing path.
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
                "camera {camera} refused the transport ({UNSUPPORTED_TRANSPORT} Unsupported \
                 Transport){}",
                match config.transport {
                    Transport::Tcp => format!("; try {} auto or udp", name(Field::Transport)),
                    Transport::Udp => format!("; try {} auto or tcp", name(Field::Transport)),
                    Transport::Auto => String::new(),
                }
            ),
            true,
        ),
        _ => (
            format!("camera {camera}: {}", one_line(&e.to_string())),
            false,
        ),
    };
    ConnectError {
        error: Error::failure(anyhow::anyhow!(message)),
        permanent,
    }
}
