//! The recordings that the status line, systemd and the metrics follow: one camera, or a
//! site's, summed.

use std::sync::Arc;

use retina_record::recorder::{Progress, Snapshot};

/// The recordings a watcher follows: one camera, or a site's (shown as one, summed).
#[derive(Clone)]
pub(crate) struct Watched(Vec<Arc<Progress>>);

impl Watched {
    pub(crate) fn all(progress: Vec<Arc<Progress>>) -> Watched {
        Watched(progress)
    }

    /// The counters now; a site's named by how many cameras are connected.
    pub(crate) fn snapshot(&self) -> Snapshot {
        match self.0.as_slice() {
            [one] => one.snapshot(),
            all => {
                let each: Vec<Snapshot> = all.iter().map(|p| p.snapshot()).collect();
                let connected = each.iter().filter(|s| s.connected).count();
                let mut sum = Snapshot::combine(&each);
                sum.file = Some(format!("{} cameras, {connected} connected", each.len()).into());
                sum
            }
        }
    }
}
