//! A bound on what one camera can make the recorder hold in memory.
//!
//! retina buffers an RTSP message until it is complete and a fragmented frame until it ends,
//! with no limit of its own (its parser has one, but the session does not expose it): a camera
//! that sends a header line that never ends, or fragments of a frame that never ends, would grow
//! the recorder without bound. So the recorder watches its own resident memory (Linux
//! `/proc/self/status`, `VmRSS`) while connecting and while recording, and gives up on a
//! session that has grown it by more than a limit: a failed attempt, retried like any other.
//!
//! Resident memory is the process's, not the session's: with several cameras, every session
//! grows it. So each session's limit is raised by what the other live sessions may hold
//! ([`OTHERS_EACH`] apiece): one camera alone keeps the tight bound; a site of N cameras bounds
//! a hostile one at the limit plus N × that: many cameras starting together grow the process
//! without any of them being the culprit (bench/many-cameras.sh).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Growth allowed while connecting: a DESCRIBE answer is a few KiB.
pub(crate) const HANDSHAKE_LIMIT: u64 = 32 << 20;

/// Growth allowed while recording: room for the writer's queue of a high-bitrate camera.
pub(crate) const SESSION_LIMIT: u64 = 256 << 20;

/// What each other live session may hold without the blame: its camera's buffers and its
/// writer's queue. Measured: 0.9 MiB per 4 Mbit/s camera with 200 in one process; room for
/// cameras several times that.
pub(crate) const OTHERS_EACH: u64 = 8 << 20;

/// Guards alive in this process.
static LIVE: AtomicU64 = AtomicU64::new(0);

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
        LIVE.fetch_add(1, Ordering::Relaxed);
        MemoryGuard {
            baseline: resident_bytes(),
            limit,
        }
    }

    /// How much the process has grown, if more than the limit and the other live sessions'
    /// allowance.
    pub(crate) fn exceeded(&self) -> Option<u64> {
        let grown = resident_bytes()?.saturating_sub(self.baseline?);
        let others = LIVE.load(Ordering::Relaxed).saturating_sub(1);
        (grown > self.limit + others * OTHERS_EACH).then_some(grown)
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

impl Drop for MemoryGuard {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
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

    #[test]
    fn other_sessions_raise_the_bound() {
        let guard = MemoryGuard::new(8 << 20);
        let others: Vec<MemoryGuard> = (0..16).map(|_| MemoryGuard::new(8 << 20)).collect();
        // 64 MiB is within 8 MiB + 16 others × 8 MiB.
        let block = vec![1u8; 64 << 20];
        assert_eq!(guard.exceeded(), None, "blamed for the others' share");
        drop(others);
        assert!(
            guard.exceeded().is_some(),
            "alone again, 64 MiB is over 8 MiB"
        );
        drop(block);
    }
}
