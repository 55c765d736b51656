//! RTSP servers that misbehave during the handshake, for what the test camera cannot do: it
//! always answers properly.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How a fake server answers each request.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Accepts the connection and never answers.
    Silent,
    /// Answers one byte a second.
    Trickle,
    /// Starts an answer whose header line never ends, as fast as it can send.
    EndlessHeader,
    /// Answers OPTIONS properly, and nothing after it (a DESCRIBE is never answered).
    OptionsOnly,
}

/// A fake server on a free loopback port, serving until dropped.
pub struct FakeServer {
    pub url: String,
    /// Notified on every connection accepted.
    pub accepted: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub async fn start(how: Misbehaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("rtsp://{}/stream", listener.local_addr().expect("addr"));
        let accepted = Arc::new(Notify::new());
        let notify = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                notify.notify_waiters();
                tokio::spawn(serve(conn, how));
            }
        });
        FakeServer {
            url,
            accepted,
            task,
        }
    }
}

async fn serve(mut conn: tokio::net::TcpStream, how: Misbehaviour) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = conn.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let options = buf[..n].starts_with(b"OPTIONS ");
        let answer = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n";
        let result = match how {
            Misbehaviour::Silent => Ok(()),
            Misbehaviour::OptionsOnly if options => conn.write_all(answer).await,
            Misbehaviour::OptionsOnly => Ok(()),
            Misbehaviour::Trickle => trickle(&mut conn, answer).await,
            Misbehaviour::EndlessHeader => endless(&mut conn).await,
        };
        if result.is_err() {
            return;
        }
    }
}

async fn trickle(conn: &mut tokio::net::TcpStream, answer: &[u8]) -> std::io::Result<()> {
    for b in answer {
        conn.write_all(&[*b]).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

async fn endless(conn: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    conn.write_all(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nX-Never-Ends: ")
        .await?;
    let junk = vec![b'a'; 64 * 1024];
    loop {
        conn.write_all(&junk).await?;
    }
}
