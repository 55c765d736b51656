//! A look at the camera before retina connects: `OPTIONS` and `DESCRIBE` (RFC 2326 §10.1,
//! §10.2) on a connection of our own, each answer read with a size limit, all within the
//! connect timeout, following redirects (3xx with `Location:`, RFC 2326 §11.3.3).
//!
//! retina reads an RTSP message until it is complete, however long it is, and parses it afresh
//! as it grows: a camera that answers with a header line that never ends grows the recorder by
//! hundreds of MiB, and the parsing keeps the recorder too busy to notice its own timeout. A
//! camera that does that (or answers nothing, or a byte at a time) is caught here, cheaply: a
//! failed attempt like any other. retina does not follow redirects either: relays and load
//! balancers in front of cameras answer `DESCRIBE` with `302 Found`, so the redirect is
//! followed here (at most [`MAX_REDIRECTS`] hops, the credentials kept only for the same host)
//! and retina is given where it led. Once the camera has answered properly, retina takes over.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::connect::ConnectError;
use super::workarounds::Workarounds;
use super::{Failed, tls};
use crate::config::{Field, RecorderConfig};
use crate::error::Error;
use crate::source::{Source, redacted};

/// A connection to the camera: plain TCP, or TLS for `rtsps://`.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// The longest answer head (status line and headers), and the longest body, taken.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024;
/// Redirects followed before the attempt fails (a loop, most likely).
pub(crate) const MAX_REDIRECTS: usize = 5;

/// What the camera answered.
struct Answer {
    status: u16,
    location: Option<String>,
}

/// Where one look ended: the source to give retina, or where to look next.
enum Look {
    Here,
    Redirected(url::Url),
}

/// Looks at the camera (and where it redirects to), within the connect timeout; returns the
/// source retina should connect to. A failure is worth retrying, but a certificate that
/// fails its check.
pub(crate) async fn first_look(
    config: &RecorderConfig,
    workarounds: &mut Workarounds,
) -> Result<Source, ConnectError> {
    let camera = config.source.host_port();
    let fail = |(why, permanent): Failed| {
        let error = Error::failure(anyhow::anyhow!("camera {camera}: {why}"));
        ConnectError::new(error, permanent)
    };
    let timeout = config.connect_timeout;
    let mut step = "OPTIONS";
    let looked = tokio::time::timeout(timeout, follow(config, &mut step)).await;
    let (source, hops) = match looked {
        Ok(Ok(found)) => found,
        Ok(Err(failed)) => return Err(fail(failed)),
        Err(_) => {
            let why = format!(
                "no complete answer to {step} within {:.0} s ({})",
                timeout.as_secs_f64(),
                config.wording.of(Field::ConnectTimeout)
            );
            return Err(fail((why, false)));
        }
    };
    if !hops.is_empty() {
        let kept = if source.credentials.is_some() || config.source.credentials.is_none() {
            ""
        } else {
            " (another host: without the credentials)"
        };
        let via = match hops.len() {
            1 => String::new(),
            n => format!(" in {n} hops"),
        };
        let detail = format!(
            "redirected to {}{via}{kept}; following",
            redacted(&source.url)
        );
        workarounds.met(&camera, "redirect", detail);
    }
    Ok(source)
}

/// Looks at each URL in turn until one is not a redirect; `step` says what is being waited
/// for, should the time run out.
async fn follow(
    config: &RecorderConfig,
    step: &mut &'static str,
) -> Result<(Source, Vec<url::Url>), Failed> {
    let mut source = config.source.clone();
    let mut hops = Vec::new();
    loop {
        match look(config, &source.url, step).await? {
            Look::Here => return Ok((source, hops)),
            Look::Redirected(to) if hops.len() == MAX_REDIRECTS => {
                let why = format!(
                    "redirected more than {MAX_REDIRECTS} times (the last to {}): a loop?",
                    redacted(&to)
                );
                return Err((why, false));
            }
            Look::Redirected(to) => {
                source.credentials = match to.host_str() == config.source.url.host_str() {
                    true => config.source.credentials.clone(),
                    false => None,
                };
                source.url = to.clone();
                hops.push(to);
            }
        }
    }
}

/// Connects to `url`, asks `OPTIONS` then `DESCRIBE`, and reads each whole answer.
async fn look(
    config: &RecorderConfig,
    url: &url::Url,
    step: &mut &'static str,
) -> Result<Look, Failed> {
    *step = "OPTIONS";
    let mut conn = connect(config, url).await?;
    let retry = |why: String| (why, false);
    let mut buf = Vec::with_capacity(4096);
    // No credentials: any complete answer, 401 included, shows the camera speaks RTSP.
    for (cseq, method) in [(1, "OPTIONS"), (2, "DESCRIBE")] {
        *step = method;
        let accept = if method == "DESCRIBE" {
            "Accept: application/sdp\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{accept}User-Agent: retina-record/{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        conn.write_all(request.as_bytes())
            .await
            .map_err(|e| retry(format!("cannot send {method}: {e}")))?;
        let answer = read_answer(&mut conn, &mut buf, method)
            .await
            .map_err(retry)?;
        if let Some(to) = redirect(url, &answer, method).map_err(retry)? {
            return Ok(Look::Redirected(to));
        }
    }
    Ok(Look::Here)
}

/// A connection to `url`'s camera: TLS for `rtsps://` (its certificate checked).
async fn connect(config: &RecorderConfig, url: &url::Url) -> Result<Box<dyn Conn>, Failed> {
    if url.scheme() == "rtsps" {
        return Ok(Box::new(tls::connect(config, url).await?));
    }
    Ok(Box::new(super::dial(url).await?))
}

/// Where a 3xx answer sends us: `Location`, resolved against `url`, an `rtsp://` URL.
fn redirect(url: &url::Url, answer: &Answer, method: &str) -> Result<Option<url::Url>, String> {
    if !(300..400).contains(&answer.status) {
        return Ok(None);
    }
    let status = answer.status;
    let location = answer
        .location
        .as_deref()
        .ok_or_else(|| format!("answered {method} with {status}, a redirect without Location"))?;
    let mut to = url
        .join(location)
        .map_err(|_| format!("answered {method} with {status}, to a Location that is no URL"))?;
    if !matches!(to.scheme(), "rtsp" | "rtsps") {
        return Err(format!(
            "redirected {method} to a {}:// URL; only rtsp:// and rtsps:// can be followed",
            to.scheme()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        ));
    }
    // Credentials come from the user, never from a server's Location.
    let _ = to.set_username("");
    let _ = to.set_password(None);
    Ok(Some(to))
}

/// Reads one RTSP answer, refusing one longer than the limits; takes it off `buf`.
async fn read_answer(
    conn: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    method: &str,
) -> Result<Answer, String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .strip_prefix("RTSP/1.0 ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| format!("answered {method} with something other than RTSP"))?;
            let body = header(&head, "Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if body > MAX_BODY {
                return Err(format!("announced a {body}-byte answer to {method}"));
            }
            if buf.len() >= end + 4 + body {
                buf.drain(..end + 4 + body);
                let location = header(&head, "Location").map(str::to_owned);
                return Ok(Answer { status, location });
            }
        } else if buf.len() > MAX_HEAD {
            return Err(format!(
                "answered {method} with more than {} KiB of headers",
                MAX_HEAD / 1024
            ));
        }
        let n = conn
            .read(&mut chunk)
            .await
            .map_err(|e| format!("connection failed during {method}: {e}"))?;
        if n == 0 {
            return Err(format!("closed the connection without answering {method}"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, location: Option<&str>) -> Answer {
        Answer {
            status,
            location: location.map(str::to_owned),
        }
    }

    #[test]
    fn redirects_resolve_against_the_url_and_drop_user_info() -> Result<(), String> {
        let url = url::Url::parse("rtsp://cam:554/a/b").map_err(|e| e.to_string())?;
        let to = redirect(&url, &answer(302, Some("/c")), "DESCRIBE")?;
        assert_eq!(
            to.map(|u| u.to_string()).as_deref(),
            Some("rtsp://cam:554/c")
        );
        let to = redirect(&url, &answer(301, Some("rtsp://u:p@other/x")), "DESCRIBE")?;
        assert_eq!(to.map(|u| u.to_string()).as_deref(), Some("rtsp://other/x"));
        assert!(redirect(&url, &answer(200, None), "DESCRIBE")?.is_none());
        assert!(redirect(&url, &answer(302, None), "DESCRIBE").is_err());
        let http = redirect(&url, &answer(302, Some("http://x/")), "DESCRIBE");
        assert!(http.is_err_and(|e| e.contains("http://")));
        Ok(())
    }
}
