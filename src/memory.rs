//! A bound on what one camera can make the recorder hold in memory.
//!
//! retina buffers an RTSP message until it is complete and a fragmented frame until it ends,
//! with no limit of its own (its parser has one, but the session does not expose it): a camera
//! that sends a header line that never ends, or fragments of a frame that never ends, would grow
//! the recorder without bound. So the recorder watches its own resident memory (Linux
//! `/proc/self/status`, `VmRSS`) while connecting and while recording, and gives up on a
//! session that has grown it by more than a limit: a failed attempt, retried like any other.

use std::time::Duration;

/// Growth allowed while connecting: a DESCRIBE answer is a few KiB.
pub(crate) const HANDSHAKE_LIMIT: u64 = 32 << 20;

/// Growth allowed while recording: room for the writer's queue of a high-bitrate camera.
pub(crate) const SESSION_LIMIT: u64 = 256 << 20;

/// The process's resident memory, in bytes; `None` where `/proc` does not say.
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Watches for growth beyond a limit from the moment it was made.
pub(crate) struct MemoryGuard {
    baseline: Option<u64>,
    limit: u64,
}

impl MemoryGuard {
    pub(crate) fn new(limit: u64) -> MemoryGuard {
        MemoryGuard {
            baseline: resident_bytes(),
            limit,
        }
    }

    /// How much the process has grown, if more than the limit.
    pub(crate) fn exceeded(&self) -> Option<u64> {
        let grown = resident_bytes()?.saturating_sub(self.baseline?);
        (grown > self.limit).then_some(grown)
    }

    /// Resolves once the limit is exceeded (checking every `every`), with the growth; never
    /// where memory cannot be read.
    pub(crate) async fn exceeded_after(&self, every: Duration) -> u64 {
        if self.baseline.is_none() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(every).await;
            if let Some(grown) = self.exceeded() {
                return grown;
            }
        }
    }
}

/// `bytes` as MiB, for messages.
pub(crate) fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_its_own_growth() {
        let Some(before) = resident_bytes() else {
            panic!("/proc/self/status has no VmRSS here");
        };
        assert!(before > 1 << 20, "{before}");
        let guard = MemoryGuard::new(8 << 20);
        assert_eq!(guard.exceeded(), None);
        // Touch 64 MiB so that it is resident.
        let block = vec![1u8; 64 << 20];
        let grown = guard
            .exceeded()
            .expect("64 MiB more is over an 8 MiB limit");
        assert!(grown >= 56 << 20, "{grown}");
        drop(block);
    }
}
