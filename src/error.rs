//! Failures as the user sees them: one line, an exit status, and never a credential.

use std::fmt;

/// Whose mistake a failure is, which decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad usage: a flag, a URL, a stream index, a start time, a clip. Exit status 2.
    Usage,
    /// The recording (or serving) failed: the camera, the network, the disk. Exit status 1.
    Failure,
}

/// A failure of a run: its kind and what happened, shown as one line.
pub struct Error {
    kind: ErrorKind,
    inner: anyhow::Error,
}

/// A result whose error is an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Bad usage (exit status 2).
    pub fn usage(message: impl fmt::Display) -> Error {
        Error {
            kind: ErrorKind::Usage,
            inner: anyhow::anyhow!("{message}"),
        }
    }

    /// A failure while running (exit status 1).
    pub fn failure(e: impl Into<anyhow::Error>) -> Error {
        Error {
            kind: ErrorKind::Failure,
            inner: e.into(),
        }
    }

    /// Whose mistake it was.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The process exit status for this failure: 2 for bad usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Failure => 1,
        }
    }

    /// Removes `secret` (a password) from the message, whatever put it there: the last line of
    /// defence behind never formatting one in the first place.
    pub(crate) fn scrub(self, secret: Option<&str>) -> Error {
        match secret.filter(|s| !s.is_empty()) {
            Some(s) if format!("{:#}", self.inner).contains(s) => Error {
                kind: self.kind,
                inner: anyhow::anyhow!("{}", format!("{:#}", self.inner).replace(s, "***")),
            },
            _ => self,
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::failure(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::failure(e)
    }
}

/// One line: the message and its causes, joined with `: `, each multi-line part joined with
/// `; ` (retina's errors carry connection and packet context on extra lines).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&one_line(&format!("{:#}", self.inner)))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.inner, self.kind)
    }
}

impl std::error::Error for Error {}

/// Joins a multi-line message into one line.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decide_the_exit_status() {
        assert_eq!(Error::usage("bad flag").exit_code(), 2);
        assert_eq!(
            Error::failure(anyhow::anyhow!("camera gone")).exit_code(),
            1
        );
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        let e = Error::failure(anyhow::anyhow!("camera c:554: boom\n  conn: x\n\n  at y"));
        assert_eq!(e.to_string(), "camera c:554: boom; conn: x; at y");
    }

    #[test]
    fn scrub_removes_the_secret_and_keeps_the_kind() {
        let e = Error::usage("rtsp://u:hunter2@cam/ refused").scrub(Some("hunter2"));
        assert_eq!(e.to_string(), "rtsp://u:***@cam/ refused");
        assert_eq!(e.kind(), ErrorKind::Usage);
        let e = Error::failure(anyhow::anyhow!("x")).scrub(Some(""));
        assert_eq!(e.to_string(), "x");
    }
}
