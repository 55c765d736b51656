//! The bridge between retina (plain TCP, a URL) and a camera it cannot reach alone: over TLS
//! (`rtsps://`), or read with the kernel's receive times (`--kernel-timestamps`; over TLS
//! always). A loopback listener takes this process's one connection; bytes are copied both
//! ways, one copy each, and the time each RTP packet and sender report arrived from the camera
//! noted on the way (`arrivals.rs`): the kernel's receive time of its last TCP segment
//! (`kernel_time.rs`), or, should the socket refuse to give it, the time it reached us.

use std::net::SocketAddr;

use futures::FutureExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::{Failed, tls};
use crate::config::RecorderConfig;

mod arrivals;
mod kernel_time;

pub(crate) use arrivals::Arrivals;
use arrivals::Framing;
use kernel_time::{KernelTime, Stamped};

/// A loopback listener for retina's one connection, and the camera's connection it is bridged
/// to.
pub(crate) struct Bridge {
    /// `rtsp://127.0.0.1:PORT/…`: the camera's URL, for retina, through the bridge.
    pub url: url::Url,
    /// When each RTP packet and sender report arrived from the camera.
    pub arrivals: Arrivals,
    /// Over TLS: the fingerprint (`sha256:HEX`) of the certificate the camera presented.
    pub certificate: Option<String>,
}

/// Connects to `url`'s camera (over TLS for `rtsps://`, its certificate checked; with the
/// kernel's receive times if `config` asks), then opens a loopback listener whose one
/// connection, once it proves to be this process's, is bridged to it (in a task of its own,
/// until either side closes).
pub(crate) async fn bridge(config: &RecorderConfig, url: &url::Url) -> Result<Bridge, Failed> {
    let tcp = super::dial(url).await?;
    // Over TLS the bridge is there anyway, and the kernel's times cost nothing more (measured:
    // `bench/README.md`), so it always takes them.
    let kernel = config.kernel_timestamps || url.scheme() == "rtsps";
    let stamped = Stamped::new(tcp, kernel);
    let (camera, kernel) = stamped.map_err(|e| (format!("cannot be read: {e}"), false))?;
    let bridged = |e: std::io::Error| (format!("cannot be bridged: {e}"), false);
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bridged)?;
    let local = listener.local_addr().map_err(bridged)?;
    let mut plain = url.clone();
    let _ = plain.set_scheme("rtsp");
    let _ = plain.set_host(Some("127.0.0.1"));
    let _ = plain.set_port(Some(local.port()));
    let arrivals = Arrivals::default();
    let link = Link {
        listener,
        local,
        wait: config.connect_timeout,
        arrivals: arrivals.clone(),
        kernel,
    };
    let name = config.source.host_port();
    let done = move |r: std::io::Result<()>| match r {
        Ok(()) => {}
        Err(why) => tracing::debug!("camera {name}: the bridge ended: {why}"),
    };
    let mut certificate = None;
    match url.scheme() {
        "rtsps" => {
            let tls = tls::over(config, url, camera).await?;
            let chain = tls.get_ref().1.peer_certificates();
            certificate = chain.and_then(|c| c.first()).map(|c| tls::fingerprint(c));
            tokio::spawn(async move { done(link.serve(tls).await) });
        }
        _ => {
            tokio::spawn(async move { done(link.serve(camera).await) });
        }
    }
    Ok(Bridge {
        url: plain,
        arrivals,
        certificate,
    })
}

/// The bridge's loopback side, and where it notes arrivals.
struct Link {
    listener: TcpListener,
    local: SocketAddr,
    /// How long to wait for retina's connection (it failed before connecting if none comes).
    wait: std::time::Duration,
    arrivals: Arrivals,
    /// The kernel's receive times, when asked for; else the time the bytes reached us.
    kernel: Option<KernelTime>,
}

impl Link {
    /// Bridges the first connection of this process's to `camera`, noting when each packet
    /// arrived from it.
    async fn serve<S>(self, camera: S) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let conn = loop {
            let (conn, peer) = tokio::time::timeout(self.wait, self.listener.accept()).await??;
            if ours(peer, self.local) {
                break conn;
            }
            tracing::warn!("refused a connection to the bridge from {peer}: not this process");
        };
        drop(self.listener);
        let (mut from_retina, mut to_retina) = conn.into_split();
        let (mut from_camera, mut to_camera) = tokio::io::split(camera);
        let upstream = async {
            tokio::io::copy(&mut from_retina, &mut to_camera).await?;
            to_camera.shutdown().await
        };
        let downstream = async {
            let mut framing = Framing::default();
            let mut buf = vec![0u8; 64 * 1024];
            let at = || {
                let kernel = self.kernel.as_ref().and_then(KernelTime::latest);
                kernel.unwrap_or_else(std::time::SystemTime::now)
            };
            loop {
                let mut n = from_camera.read(&mut buf).await?;
                if n == 0 {
                    return to_retina.shutdown().await;
                }
                framing.take(&buf[..n], at(), &self.arrivals);
                // And what has arrived since (TLS gives a record at a time): one write for all.
                while n < buf.len() {
                    match from_camera.read(&mut buf[n..]).now_or_never() {
                        Some(Ok(0)) | None => break,
                        Some(Ok(m)) => {
                            framing.take(&buf[n..n + m], at(), &self.arrivals);
                            n += m;
                        }
                        Some(Err(e)) => return Err(e),
                    }
                }
                to_retina.write_all(&buf[..n]).await?;
            }
        };
        tokio::try_join!(upstream, downstream).map(|_| ())
    }
}

/// Whether the TCP connection from `peer` to `local` is one of this process's sockets: its
/// inode (in `/proc/net/tcp`) among our file descriptors (`/proc/self/fd`).
fn ours(peer: SocketAddr, local: SocketAddr) -> bool {
    let (SocketAddr::V4(peer), SocketAddr::V4(local)) = (peer, local) else {
        return false;
    };
    let hex = |a: std::net::SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (want_local, want_remote) = (hex(peer), hex(local));
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let inode = table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&want_local.as_str()) && f.get(2) == Some(&want_remote.as_str()))
            .then(|| f.get(9).map(|s| (*s).to_owned()))
            .flatten()
    });
    let Some(inode) = inode else { return false };
    let socket = format!("socket:[{inode}]");
    std::fs::read_dir("/proc/self/fd").is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn only_this_process_may_use_the_bridge() -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?;
        let _client = TcpStream::connect(local).await?;
        let (_conn, peer) = listener.accept().await?;
        assert!(ours(peer, local));
        let stranger = SocketAddr::from(([127, 0, 0, 1], 1));
        assert!(!ours(stranger, local));
        Ok(())
    }
}
