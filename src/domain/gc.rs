//! The blob garbage collector: deletes avatar blobs no row references.
//!
//! Such blobs are left by updates that failed or were killed between storing
//! their variants and committing (blobs are stored before the database points at
//! them, so that no URL ever names a missing object). A blob is deleted only when
//! no row names its avatar AND the store's last-modified time of the object is
//! older than the grace period, which is longer than the processing deadline: an
//! update in flight has stored its blobs less than a deadline ago, so it is never
//! robbed. An update that finds its blobs already stored rewrites them
//! (`BlobStore::put_avatar`), which restarts their grace.
//!
//! Ages are measured with the wall clock against the store's clock (the blob's
//! last-modified), not the domain's injectable clock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AvatarId, DomainError, Repository};
use crate::storage::{BlobStore, StoredObject};
use crate::telemetry::metrics;

/// What one sweep saw and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Stored avatar objects listed.
    pub objects: usize,
    /// Objects of referenced avatars (kept).
    pub referenced: usize,
    /// Objects of unreferenced avatars younger than the grace (kept).
    pub young: usize,
    /// Objects deleted.
    pub deleted: usize,
}

#[derive(Clone)]
pub struct BlobGc {
    repo: Arc<dyn Repository>,
    storage: BlobStore,
    grace: Duration,
}

fn wall_clock_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl BlobGc {
    pub fn new(repo: Arc<dyn Repository>, storage: BlobStore, grace: Duration) -> Self {
        BlobGc {
            repo,
            storage,
            grace,
        }
    }

    fn old_enough(&self, modified: i64) -> bool {
        let grace = i64::try_from(self.grace.as_secs()).unwrap_or(i64::MAX);
        // A blob from the future (clock skew) is young.
        wall_clock_now().saturating_sub(modified) > grace
    }

    /// One pass: list the blobs, then read the references (so a commit that
    /// lands between the two is seen), then delete the old unreferenced ones,
    /// each checked again just before its deletion.
    pub async fn sweep(&self) -> Result<GcReport, DomainError> {
        let result = self.sweep_inner().await;
        metrics::gc_sweep(result.as_ref().ok().map(|r| r.deleted as u64));
        result
    }

    async fn sweep_inner(&self) -> Result<GcReport, DomainError> {
        let objects = self.storage.list_avatar_objects().await?;
        let mut report = GcReport {
            objects: objects.len(),
            ..GcReport::default()
        };
        let mut by_avatar: HashMap<AvatarId, Vec<StoredObject>> = HashMap::new();
        for object in objects {
            by_avatar.entry(object.avatar_id).or_default().push(object);
        }
        let referenced: HashSet<String> =
            self.repo.avatar_references().await?.into_iter().collect();
        for (avatar_id, objects) in by_avatar {
            if referenced.contains(&avatar_id.to_string()) {
                report.referenced += objects.len();
                continue;
            }
            for object in objects {
                if !self.old_enough(object.modified) {
                    report.young += 1;
                    continue;
                }
                // Listed old, but an update may have rewritten it since.
                match self.storage.modified(&object).await? {
                    Some(modified) if self.old_enough(modified) => {
                        self.storage.delete(&object).await?;
                        report.deleted += 1;
                    }
                    Some(_) => report.young += 1,
                    None => {}
                }
            }
        }
        if report.deleted > 0 {
            tracing::info!(
                deleted = report.deleted,
                objects = report.objects,
                "blob gc: unreferenced avatar blobs deleted"
            );
        }
        Ok(report)
    }
}
