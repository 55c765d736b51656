//! OUT `-`: the recording as a stream on stdout, for `| ffplay -` or `| ffmpeg -i - …`. The
//! same fragments and timing SEI as a file, but a pipe cannot be rewritten, synced or renamed:
//! the header goes out once (its durations stay unknown, as in any live fragmented MP4; a
//! sample description added mid-stream is carried in-band at keyframes), there is no
//! `.partial`, no `mfra` index and no fsync. A reader that closes the pipe ends the recording
//! cleanly.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::sync::Arc;

use super::progress::Progress;
use crate::mp4::{self, FileSummary, Stored};

pub(crate) struct Pipe {
    out: std::fs::File,
    progress: Arc<Progress>,
    header_sent: bool,
    bytes: u64,
    /// The reader closed the pipe: nothing more is written.
    closed: bool,
}

impl Pipe {
    /// Stdout, unbuffered (its own descriptor: std's stdout is line-buffered, for text).
    pub(crate) fn stdout(progress: Arc<Progress>) -> std::io::Result<Pipe> {
        let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
        progress.file("-".into());
        Ok(Pipe {
            out: std::fs::File::from(fd),
            progress,
            header_sent: false,
            bytes: 0,
            closed: false,
        })
    }

    /// Whether the reader has gone.
    pub(crate) fn closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn write(&mut self, parts: &[&[u8]], fragment: bool) -> std::io::Result<Stored> {
        if self.closed {
            return Ok(Stored::Written);
        }
        for part in parts {
            if let Err(e) = self.out.write_all(part) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    self.closed = true;
                    tracing::info!("the reader closed stdout: stopping");
                }
                return Err(e);
            }
            self.bytes += part.len() as u64;
        }
        let len = parts.iter().map(|p| p.len() as u64).sum();
        self.progress.written(len, fragment);
        Ok(Stored::Written)
    }
}

impl mp4::Sink for Pipe {
    fn begin_file(&mut self, _first_recv: u64) -> std::io::Result<()> {
        Ok(())
    }

    fn write_header(&mut self, header: &[u8]) -> std::io::Result<Stored> {
        if self.header_sent {
            // Rewritten in place in a file; what was sent stays.
            return Ok(Stored::Written);
        }
        self.header_sent = true;
        self.write(&[header], false)
    }

    fn append(&mut self, parts: &[&[u8]]) -> std::io::Result<Stored> {
        self.write(parts, true)
    }

    fn end_file(&mut self, _summary: &FileSummary) -> std::io::Result<()> {
        Ok(())
    }
}
