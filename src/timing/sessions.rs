//! The one rule that splits a recording's frames into the RTSP sessions they were received in
//! (`docs/timing-sei.md`, "which session a frame's RTP time counts in"): RTP times, and the
//! sender reports that map them to the camera's clock, compare only within a session. The
//! product (`recording::read`) and the tests split by this rule alike.

use std::ops::Range;

use crate::mp4::read::TimedSample;

/// What the rule reads of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameKey {
    /// Which file of the recording the frame is in (0 for a single file).
    pub file: usize,
    /// Its `89H`'s `conn`, if it has one.
    pub conn: Option<u64>,
}

/// One RTSP session's frames: a range of the frames given to [`sessions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSpan {
    /// The frames' indices.
    pub frames: Range<usize>,
}

/// Splits frames (in decode order) into sessions: a session starts where a `conn` differs from
/// the session's (a new file repeats it, which does not split; a frame without one stays in the
/// session before). Files from before 0.3 carry no `conn`: each of those is its own session.
pub fn sessions(frames: impl IntoIterator<Item = FrameKey>) -> Vec<SessionSpan> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut current: Option<FrameKey> = None;
    let mut len = 0;
    for (i, key) in frames.into_iter().enumerate() {
        len = i + 1;
        let Some(session) = current else {
            current = Some(key);
            continue;
        };
        let new = match (session.conn, key.conn) {
            (_, Some(c)) => Some(c) != session.conn,
            (None, None) => key.file != session.file,
            (Some(_), None) => false,
        };
        if new {
            spans.push(SessionSpan { frames: start..i });
            start = i;
            current = Some(key);
        }
    }
    if len > start {
        spans.push(SessionSpan { frames: start..len });
    }
    spans
}

/// One file's video samples ([`crate::mp4::read::Recording::video_timing`]) split by the same
/// rule.
pub fn of_file(timing: &[TimedSample]) -> Vec<&[TimedSample]> {
    let keys = timing.iter().map(|t| FrameKey {
        file: 0,
        conn: t.frame().and_then(|f| f.conn),
    });
    sessions(keys)
        .into_iter()
        .map(|span| &timing[span.frames])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(keys: &[(usize, Option<u64>)]) -> Vec<Range<usize>> {
        let keys = keys.iter().map(|&(file, conn)| FrameKey { file, conn });
        sessions(keys).into_iter().map(|s| s.frames).collect()
    }

    #[test]
    fn conn_changes_split_and_new_files_repeating_it_do_not() {
        let keys = [
            (0, Some(1)),
            (0, None),
            (1, Some(1)),
            (1, None),
            (1, Some(2)),
            (2, Some(2)),
        ];
        assert_eq!(split(&keys), [0..4, 4..6]);
    }

    #[test]
    fn each_file_without_conn_is_its_own_session() {
        assert_eq!(split(&[(0, None), (0, None), (1, None)]), [0..2, 2..3]);
        // A 0.3 file after a 0.2 one starts a session at its first `conn`.
        assert_eq!(split(&[(0, None), (1, Some(5)), (1, None)]), [0..1, 1..3]);
    }

    #[test]
    fn no_frames_no_sessions() {
        assert!(split(&[]).is_empty());
        assert_eq!(split(&[(3, None)]), vec![0..1]);
    }
}
