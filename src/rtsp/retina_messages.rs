//! retina's errors and log lines, said as the recorder says everything: one sentence about the
//! camera, in the camera's terms, without retina's connection context (`conn: …(me)->…`) or
//! Rust `Debug` output (`Some(Url { … })`). README.md's error table lists what maps to what.
//!
//! retina's error kinds are private, but each kind's `Display` has a fixed shape (retina 0.4's
//! `error.rs`): a description, then a blank line and the context. The description is what is
//! mapped; the context is kept for `RUST_LOG=debug`.

use crate::wording::{Field, Wording};

tokio::task_local! {
    /// The camera (`host:port`) whose recording (or probe) the current task works for: retina
    /// logs without saying which camera, and the log says it for it.
    static CAMERA: String;
}

/// Runs `fut` as work for `camera`, so that library log lines can name it.
pub(crate) async fn for_camera<F: std::future::Future>(camera: String, fut: F) -> F::Output {
    CAMERA.scope(camera, fut).await
}

/// The camera the current task works for, if any.
pub fn camera_in_scope() -> Option<String> {
    CAMERA.try_with(Clone::clone).ok()
}

/// Reason phrases of the RTSP status codes cameras answer with (RFC 2326 §7.1.1).
fn reason(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        451 => "Parameter Not Understood",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        457 => "Invalid Range",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// `461 Unsupported Transport`, or the bare number for an unusual status.
pub(crate) fn status_words(status: u16) -> String {
    match reason(status) {
        "" => status.to_string(),
        r => format!("{status} {r}"),
    }
}

/// What went wrong, as a clause that follows `camera HOST:PORT `: "answered SETUP with 455
/// Method Not Valid in This State", "cannot be reached: Connection refused (os error 111)".
pub(crate) fn error_words(e: &retina::Error) -> String {
    let text = e.to_string();
    let head = text.split("\n\n").next().unwrap_or_default().trim();
    if let Some((status, method, description)) = response_error(head) {
        return match status {
            200..=299 => format!("answered {method} in a way that cannot be used: {description}"),
            _ => format!("answered {method} with {}", status_words(status)),
        };
    }
    let prefixed = [
        ("Unable to connect to RTSP server: ", "cannot be reached: "),
        ("Error reading from RTSP peer: ", "broke the connection: "),
        ("Error writing to RTSP peer: ", "broke the connection: "),
        (
            "Error receiving UDP packet: ",
            "cannot be received over UDP: ",
        ),
        (
            "RTSP framing error: ",
            "sent an RTSP message that cannot be read: ",
        ),
        (
            "Received interleaved data on unassigned channel ",
            "sent data on a channel never set up: ",
        ),
        ("Failed precondition: ", "sent what cannot be used: "),
        ("Invalid argument: ", "cannot be asked for that: "),
        ("Unsupported: ", "sent what retina cannot read: "),
        ("Internal error: ", "made retina fail: "),
    ];
    for (theirs, ours) in prefixed {
        if let Some(rest) = head.strip_prefix(theirs) {
            return format!("{ours}{}", plain(rest.trim_end_matches(':')));
        }
    }
    match head {
        "Timeout" => "did not answer in time".into(),
        // A packet's error: the depacketizer's description.
        _ => format!("sent a packet that cannot be used: {}", plain(head)),
    }
}

/// `(status, method, description)` of retina's "STATUS response to METHOD CSeq=N: WHAT".
fn response_error(head: &str) -> Option<(u16, &str, String)> {
    let (status, rest) = head.split_once(" response to ")?;
    let status = status.parse().ok()?;
    let (method, rest) = rest.split_once(" CSeq=")?;
    let description = rest.split_once(": ").map_or("", |(_, d)| d);
    Some((status, method, plain(description)))
}

/// One of retina's log lines (its first line), as the recorder says it; `None`: not worth
/// saying above debug level (the recorder says it better itself, or it is retina's bookkeeping).
pub fn log_words(message: &str, wording: Wording) -> Option<String> {
    let transport = wording.of(Field::Transport);
    let mapped: &[(&str, &str)] = &[
        (
            "Ignoring bad H.264 format-specific-params",
            "its SDP's H.264 parameters cannot be used; taking them from the stream",
        ),
        (
            "Ignoring bad H.265 format-specific-params",
            "its SDP's H.265 parameters cannot be used; taking them from the stream",
        ),
        (
            "FU-A header",
            "it sent a fragment marked both first and last; taking it as a whole NAL unit",
        ),
        (
            "FU header",
            "it sent a fragment marked both first and last; taking it as a whole NAL unit",
        ),
        (
            "FU-A has inconsistent NAL header",
            "it sent fragments of one NAL unit with different headers",
        ),
        (
            "FU has inconsistent NAL header",
            "it sent fragments of one NAL unit with different headers",
        ),
        (
            "Ignoring trailing data in SPS",
            "its SPS has trailing data; ignoring it",
        ),
        (
            "Ignoring trailing data in PPS",
            "its PPS has trailing data; ignoring it",
        ),
        (
            "Skipping out-of-order seq",
            "a packet arrived out of order and was skipped",
        ),
        (
            "saw unknown rtcp ssrc",
            "it sent RTCP for an SSRC the session does not know; ignoring it",
        ),
        (
            "Ignoring data on unassigned RTSP interleaved data channel",
            "it sends data on a channel that was not set up; ignoring it",
        ),
        (
            "keepalive failed",
            "it refused a keepalive; the session may end and be reconnected",
        ),
        (
            "Unable to parse OPTIONS response",
            "its answer to a keepalive cannot be read; ignoring it",
        ),
        (
            "Received RTSP request in Playing state",
            "it sent an RTSP request while playing; answered 501 Not Implemented",
        ),
        (
            "RTP-Info contains unknown stream",
            "its PLAY answer's RTP-Info names a stream its SDP does not; ignoring that entry",
        ),
        (
            "Unparseable rtptime in RTP-Info",
            "its PLAY answer's rtptime cannot be read; ignoring it",
        ),
    ];
    let quiet = [
        "no depacketizer for",
        "ignoring PLAY seq=",
        "Unable to find stale live555",
    ];
    if quiet.iter().any(|q| message.starts_with(q)) {
        return None;
    }
    if let Some((_, ours)) = mapped
        .iter()
        .find(|(theirs, _)| message.starts_with(theirs))
    {
        return Some((*ours).to_owned());
    }
    if message.starts_with("Connecting via TCP to known-broken RTSP server")
        || message.starts_with("saw unexpected RTSP packet")
    {
        return Some(format!(
            "its RTSP server is an old live555, which breaks TCP sessions; if recording stops, \
             try {transport} udp"
        ));
    }
    Some(format!(
        "retina says: {}",
        plain(message.lines().next().unwrap_or_default())
    ))
}

/// `text` up to the first piece of Rust `Debug` output (`Some(…)`, `Url { … }`, `Ok(…)`), with
/// a parenthesis opened just before it dropped too.
pub fn plain(text: &str) -> String {
    let cut = debug_shape_at(text).unwrap_or(text.len());
    let kept = text[..cut].trim_end();
    let kept = kept.strip_suffix('(').unwrap_or(kept);
    kept.trim_end_matches([' ', ',', ':', ';']).to_owned()
}

/// Where the first `Debug` shape in `text` starts.
fn debug_shape_at(text: &str) -> Option<usize> {
    let tuple = ["Some(", "Ok(", "Err("]
        .iter()
        .filter_map(|p| text.find(p))
        .min();
    // `Name { field: …`: a word, a space, a brace.
    let strukt = text.find(" { ").map(|i| {
        let before = &text[..i];
        before
            .rfind(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(0, |j| j + 1)
    });
    tuple.into_iter().chain(strukt).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_cut_away() {
        assert_eq!(
            plain(
                "Expected rtptime on PLAY with mode Default, missing on stream 0 (Some(Url { \
                 scheme: \"rtsp\" })). Consider setting initial timestamp mode permissive."
            ),
            "Expected rtptime on PLAY with mode Default, missing on stream 0"
        );
        assert_eq!(plain("bad seq Seq { init: 3 }"), "bad seq");
        assert_eq!(plain("nothing odd here"), "nothing odd here");
    }

    #[test]
    fn response_errors_name_the_method_and_status() {
        let (status, method, d) =
            response_error("455 response to SETUP CSeq=3: Method Not Valid In This State")
                .unwrap_or((0, "", String::new()));
        assert_eq!((status, method), (455, "SETUP"));
        assert_eq!(d, "Method Not Valid In This State");
        assert_eq!(status_words(461), "461 Unsupported Transport");
        assert_eq!(status_words(599), "599");
    }

    #[test]
    fn retina_log_lines_become_sentences() {
        let w = Wording::default();
        assert_eq!(
            log_words("ignoring PLAY seq=0 on stream 1 due to policy Default", w),
            None
        );
        let said = log_words("saw unexpected RTSP packet. This is presumed…", w);
        assert!(said.is_some_and(|s| s.contains("transport udp")));
        let other = log_words("something new Thing { a: 1 }\nmore", w);
        assert_eq!(other.as_deref(), Some("retina says: something new"));
    }
}
