//! A look at the camera before retina connects: one `OPTIONS` (RFC 2326 §10.1) on a connection
//! of our own, its answer read with a size limit, all within the connect timeout.
//!
//! retina reads an RTSP message until it is complete, however long it is, and parses it afresh
//! as it grows: a camera that answers with a header line that never ends grows the recorder by
//! hundreds of MiB, and the parsing keeps the recorder too busy to notice its own timeout. A
//! camera that does that (or answers nothing, or a byte at a time) is caught here, cheaply: a
//! failed attempt like any other. Once the camera has answered properly, retina takes over.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::config::{Field, RecorderConfig};
use crate::error::Error;

/// The longest answer head (status line and headers), and the longest body, taken.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024;

/// Connects, asks `OPTIONS`, and reads the whole answer, within the connect timeout. A
/// failure is worth retrying.
pub(crate) async fn first_look(config: &RecorderConfig) -> Result<(), Error> {
    let camera = config.source.host_port();
    let fail = |why: String| Error::failure(anyhow::anyhow!("camera {camera}: {why}"));
    let timeout = config.connect_timeout;
    match tokio::time::timeout(timeout, exchange(config)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(fail(why)),
        Err(_) => Err(fail(format!(
            "no complete answer to OPTIONS within {:.0} s ({})",
            timeout.as_secs_f64(),
            config.wording.of(Field::ConnectTimeout)
        ))),
    }
}

async fn exchange(config: &RecorderConfig) -> Result<(), String> {
    let url = &config.source.url;
    let host = url.host_str().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut conn = TcpStream::connect((host, url.port().unwrap_or(554)))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    // No credentials: any complete answer, 401 included, shows the camera speaks RTSP.
    let request = format!(
        "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: retina-record/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    conn.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send OPTIONS: {e}"))?;
    read_answer(&mut conn).await
}

/// Reads one RTSP answer, refusing one longer than the limits.
async fn read_answer(conn: &mut TcpStream) -> Result<(), String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            if !head.starts_with("RTSP/1.0 ") {
                return Err("answered OPTIONS with something other than RTSP".into());
            }
            let body = content_length(&head);
            if body > MAX_BODY {
                return Err(format!("announced a {body}-byte answer to OPTIONS"));
            }
            if buf.len() >= end + 4 + body {
                return Ok(());
            }
        } else if buf.len() > MAX_HEAD {
            return Err(format!(
                "answered OPTIONS with more than {} KiB of headers",
                MAX_HEAD / 1024
            ));
        }
        let n = conn
            .read(&mut chunk)
            .await
            .map_err(|e| format!("connection failed during OPTIONS: {e}"))?;
        if n == 0 {
            return Err("closed the connection without answering OPTIONS".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}
