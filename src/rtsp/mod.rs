//! The recorder's side of RTSP (RFC 2326), through retina: a bounded first look at the camera,
//! opening a session, choosing the camera's streams, working around what real cameras and
//! relays do, and saying retina's errors as sentences.

pub(crate) mod bridge;
pub(crate) mod connect;
mod first_look;
pub mod retina_messages;
pub(crate) mod select;
pub mod tls;
pub mod workarounds;

/// Why a connection failed (to follow `camera HOST:PORT `), and whether that is for good.
pub(crate) type Failed = (String, bool);

/// The TCP connection to `url`'s camera (port 554, or 322 for `rtsps://`, unless it says).
pub(crate) async fn dial(url: &url::Url) -> Result<tokio::net::TcpStream, Failed> {
    let host = url
        .host_str()
        .ok_or(("the URL has no host".to_owned(), true))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = match url.scheme() {
        "rtsps" => tls::DEFAULT_PORT,
        _ => 554,
    };
    tokio::net::TcpStream::connect((host, url.port().unwrap_or(port)))
        .await
        .map_err(|e| (format!("cannot connect: {e}"), false))
}
