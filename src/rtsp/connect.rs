//! Opening a session: DESCRIBE, SETUP and PLAY (RFC 2326 §10.2, §10.4, §10.5) through retina,
//! with the transport fallback and the camera's refusals turned into one-line errors.

use std::sync::Arc;

use retina::client::{
    Demuxed, Described, PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions,
};

use super::select::{self, Selection};
use crate::config::{RecorderConfig, Transport};
use crate::error::{Error, Result, one_line};
use crate::source::Source;

/// RTSP status for a transport the server will not use (RFC 2326 §11.3.10).
const UNSUPPORTED_TRANSPORT: u16 = 461;

/// DESCRIBE, choose the streams, SETUP each, PLAY.
pub(crate) async fn open(
    config: &RecorderConfig,
    group: &Arc<SessionGroup>,
) -> Result<(Demuxed, Selection)> {
    let source = &config.source;
    let options = SessionOptions::default()
        .creds(source.credentials.clone())
        .session_group(group.clone())
        .user_agent(format!("retina-record/{}", env!("CARGO_PKG_VERSION")))
        .teardown(config.teardown);
    let mut session = Session::describe(source.url.clone(), options)
        .await
        .map_err(|e| camera_error(&e, source))?;
    let selection = select::select(&session, config.video, config.audio)?;
    setup_streams(&mut session, &selection, config).await?;
    // No `enforce_timestamps_with_max_jump_secs`: it rejects any backward step, and RTP
    // timestamps of B-frames step backward in decode order (0.2's abort). Unenforced, retina
    // extends each timestamp by its signed 32-bit difference from the previous one.
    let play = PlayOptions::default()
        .initial_timestamp(config.initial_timestamp)
        .unknown_rtcp_ssrc(config.unknown_rtcp_ssrc);
    let session = session
        .play(play)
        .await
        .map_err(|e| camera_error(&e, source))?
        .demuxed()
        .map_err(|e| camera_error(&e, source))?;
    Ok((session, selection))
}

/// SETUPs the selected streams. With `auto`, TCP first; a `461 Unsupported Transport` (VLC's
/// answer, for one) switches this and later streams to UDP.
async fn setup_streams(
    session: &mut Session<Described>,
    selection: &Selection,
    config: &RecorderConfig,
) -> Result<()> {
    let source = &config.source;
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
        match session.setup(i, options(use_udp)).await {
            Ok(()) => {}
            Err(e)
                if config.transport == Transport::Auto
                    && !use_udp
                    && e.status_code() == Some(UNSUPPORTED_TRANSPORT) =>
            {
                tracing::info!(
                    "camera {} refused RTP over TCP (461 Unsupported Transport); using UDP{}",
                    source.host_port(),
                    if config.allow_loss {
                        ""
                    } else {
                        " (lost or reordered packets stop the recording without --allow-loss)"
                    }
                );
                use_udp = true;
                session
                    .setup(i, options(true))
                    .await
                    .map_err(|e| camera_error(&e, source))?;
            }
            Err(e) => return Err(camera_error(&e, source)),
        }
    }
    Ok(())
}

/// One line about a retina error, naming the camera; 401 and 404 explained.
pub(crate) fn camera_error(e: &retina::Error, source: &Source) -> Error {
    let camera = source.host_port();
    let message = match e.status_code() {
        Some(401) if source.credentials.is_some() => {
            format!("camera {camera} rejected the credentials (401 Unauthorized)")
        }
        Some(401) => format!(
            "camera {camera} requires credentials (401 Unauthorized): pass --username with \
             --password-file, or set RTSP_USERNAME and RTSP_PASSWORD"
        ),
        Some(404) => format!(
            "camera {camera} has no stream at {} (404 Not Found)",
            source.url.path()
        ),
        _ => format!("camera {camera}: {}", one_line(&e.to_string())),
    };
    Error::failure(anyhow::anyhow!(message))
}
