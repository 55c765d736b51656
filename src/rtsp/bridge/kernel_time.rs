//! The camera-facing TCP socket of the bridge, read with `recvmsg` so that, when asked, each
//! read carries the kernel's receive time of its last segment (`SO_TIMESTAMPNS`, Linux's
//! socket(7); for TCP, tcp(7): the time of the last skb the read took). A thread's wake-up
//! after a busy moment on the machine (milliseconds under disk load) then no longer lands in
//! the receive times of the timing data. retina's own sockets cannot give this.

use std::io;
use std::os::fd::AsRawFd as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connection whose reads note the kernel's receive time, if it was asked to; read a
/// buffer at a time, because rustls reads 4 KiB at a time (one system call each, the bridge's
/// main cost over TLS).
pub(crate) struct Stamped {
    tcp: TcpStream,
    kernel: Option<KernelTime>,
    control: Vec<u8>,
    /// What the last read took and nobody has read yet: `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

/// The most one read of the camera's socket takes: a loopback segment's worth.
const READ: usize = 64 * 1024;

/// The kernel's receive time of the latest segment read (nanoseconds since 1970; 0: none yet).
#[derive(Clone, Default)]
pub(crate) struct KernelTime(Arc<AtomicU64>);

impl KernelTime {
    pub(crate) fn latest(&self) -> Option<SystemTime> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)),
        }
    }
}

impl Stamped {
    /// `tcp`, its reads stamped by the kernel when `kernel` (else plain reads): the time
    /// stamps, for whoever reads what comes out.
    pub(crate) fn new(tcp: TcpStream, kernel: bool) -> io::Result<(Self, Option<KernelTime>)> {
        let kernel = match kernel {
            true => {
                setsockopt(&tcp, sockopt::ReceiveTimestampns, &true)?;
                Some(KernelTime::default())
            }
            false => None,
        };
        let control = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let stamped = Stamped {
            tcp,
            kernel: kernel.clone(),
            control,
            buf: vec![0; READ].into_boxed_slice(),
            start: 0,
            end: 0,
        };
        Ok((stamped, kernel))
    }
}

/// One `recvmsg` of `tcp` into `into`: how many bytes, and the kernel's receive time of the
/// last of them (nanoseconds since 1970) if it came with them.
fn receive(tcp: &TcpStream, into: &mut [u8], control: &mut [u8]) -> io::Result<(usize, u64)> {
    let mut iov = [io::IoSliceMut::new(into)];
    let msg = recvmsg::<()>(tcp.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())?;
    let mut at = 0;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmTimestampns(t) = c {
            let (s, ns) = (u64::try_from(t.tv_sec()), u64::try_from(t.tv_nsec()));
            at = s.unwrap_or(0) * 1_000_000_000 + ns.unwrap_or(0);
        }
    }
    Ok((msg.bytes, at))
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            // Everything buffered came with this read: its time is theirs.
            this.end = ready!(this.fill(cx))?;
            this.start = 0;
        }
        let n = buf.remaining().min(this.end - this.start);
        buf.put_slice(&this.buf[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl Stamped {
    /// One read of the socket into the buffer, noting its time: how many bytes (0 at the end).
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(kernel) = &self.kernel else {
            let mut into = ReadBuf::new(&mut self.buf);
            ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut into))?;
            return Poll::Ready(Ok(into.filled().len()));
        };
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            let (tcp, control, into) = (&self.tcp, &mut self.control, &mut self.buf);
            // `try_io` clears the readiness on WouldBlock, so the next poll waits.
            match tcp.try_io(Interest::READABLE, || receive(tcp, into, control)) {
                Ok((n, at)) => {
                    if at > 0 {
                        kernel.0.store(at, Ordering::Relaxed);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// Both ends of a loopback TCP connection: the client's, the server's.
    async fn connected() -> io::Result<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        Ok((client, listener.accept().await?.0))
    }

    /// Bytes read long after they arrived carry the time they arrived, not the read's.
    #[tokio::test]
    async fn reads_carry_the_kernels_arrival_time() -> io::Result<()> {
        let (mut client, server) = connected().await?;
        let (mut stamped, kernel) = Stamped::new(server, true)?;
        let kernel = kernel.ok_or(io::Error::other("no kernel times"))?;
        assert_eq!(kernel.latest(), None);
        let sent = SystemTime::now();
        client.write_all(b"a frame").await?;
        // Not a wait for an event: the delay between arrival and read is what is measured.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0; 16];
        assert_eq!(stamped.read(&mut buf).await?, 7);
        let read = SystemTime::now();
        let arrived = kernel.latest().ok_or(io::Error::other("no stamp"))?;
        assert!(
            arrived >= sent,
            "arrived {arrived:?} before it was sent {sent:?}"
        );
        let waited = read.duration_since(arrived).unwrap_or_default();
        assert!(
            waited >= Duration::from_millis(50),
            "stamped {waited:?} before the read"
        );
        Ok(())
    }

    #[tokio::test]
    async fn without_kernel_times_reads_are_plain() -> io::Result<()> {
        let (mut client, server) = connected().await?;
        let (mut stamped, kernel) = Stamped::new(server, false)?;
        assert!(kernel.is_none());
        client.write_all(b"bytes").await?;
        stamped.write_all(b"back").await?;
        let mut buf = [0; 8];
        assert_eq!(stamped.read(&mut buf).await?, 5);
        assert_eq!(client.read(&mut buf).await?, 4);
        Ok(())
    }
}
