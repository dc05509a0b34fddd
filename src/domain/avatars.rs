use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use sha2::{Digest, Sha256};

use super::{
    AppId, AvatarChange, AvatarRecord, AvatarSize, AvatarSource, Clock, DomainError, HeadImgUrl,
    Repository, TokenId,
};
use crate::fetch::{FetchError, Fetcher};
use crate::imaging::{self, ImageError, ImageLimits, RenderedAvatar};
use crate::storage::BlobStore;
use crate::telemetry::metrics::{self, Stage};

/// Why an avatar could not be made from a picture address.
#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("all decode slots busy for {0:?}")]
    Busy(Duration),
    #[error("fetch and processing took longer than {0:?}")]
    Timeout(Duration),
    #[error("image worker failed: {0}")]
    Worker(String),
    #[error("more than {} avatar changes in {} s; retry in {retry_after_secs} s", .limit.max, .limit.window_secs)]
    RateLimited {
        limit: ChangeLimit,
        retry_after_secs: u64,
    },
}

/// At most `max` avatar changes per account in any `window_secs` seconds
/// (`GEWE_AVATAR_CHANGE_LIMIT="5/3600"`). WeChat applies risk control to
/// accounts that change their avatar often; this lets a deployment do the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChangeLimit {
    pub max: u32,
    pub window_secs: u64,
}

impl std::str::FromStr for ChangeLimit {
    type Err = String;

    /// `"<max changes>/<window seconds>"`, both positive, e.g. `"5/3600"`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("avatar change limit must look like \"5/3600\" (changes/seconds), got {text:?}")
        };
        let (max, window) = text.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let window_secs: u64 = window.trim().parse().map_err(|_| bad())?;
        if max == 0 || window_secs == 0 || i64::try_from(window_secs).is_err() {
            return Err(bad());
        }
        Ok(ChangeLimit { max, window_secs })
    }
}

impl TryFrom<String> for ChangeLimit {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ChangeLimit> for String {
    fn from(limit: ChangeLimit) -> String {
        format!("{}/{}", limit.max, limit.window_secs)
    }
}

#[derive(Debug, Clone)]
pub struct AvatarUpdaterConfig {
    pub limits: ImageLimits,
    /// Pictures decoded at once; more wait for a slot.
    pub decode_slots: usize,
    /// How long a request waits for a decode slot before it is told the server is busy.
    pub queue_timeout: Duration,
    /// One deadline over download and processing together.
    pub process_timeout: Duration,
    /// Per-account limit on avatar changes; `None` (the default) means no limit.
    pub change_limit: Option<ChangeLimit>,
    /// Downloads in progress at once. A download may hold up to the fetch size
    /// limit in memory until its picture is decoded, so this × that limit bounds
    /// the memory downloads can take.
    pub download_permits: usize,
}

impl Default for AvatarUpdaterConfig {
    fn default() -> Self {
        AvatarUpdaterConfig {
            limits: ImageLimits::default(),
            decode_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_timeout: Duration::from_secs(10),
            process_timeout: Duration::from_secs(20),
            change_limit: None,
            download_permits: 6,
        }
    }
}

/// `personal/updateHeadImg`: fetch → decode → variants → blobs → one transaction.
#[derive(Clone)]
pub struct AvatarUpdater {
    fetcher: Fetcher,
    repo: Arc<dyn Repository>,
    storage: BlobStore,
    slots: Arc<Semaphore>,
    downloads: Arc<Semaphore>,
    /// One update in flight per account: a bot retrying a failing URL in a loop
    /// costs one download at a time.
    turns: Arc<Mutex<HashMap<AppId, Weak<tokio::sync::Mutex<()>>>>>,
    config: AvatarUpdaterConfig,
    clock: Clock,
}

impl AvatarUpdater {
    pub fn new(
        fetcher: Fetcher,
        repo: Arc<dyn Repository>,
        storage: BlobStore,
        config: AvatarUpdaterConfig,
        clock: Clock,
    ) -> Self {
        AvatarUpdater {
            fetcher,
            repo,
            storage,
            slots: Arc::new(Semaphore::new(config.decode_slots.max(1))),
            downloads: Arc::new(Semaphore::new(config.download_permits.max(1))),
            turns: Arc::default(),
            config,
            clock,
        }
    }

    /// Replaces the avatar of `app_id` with the picture at `url`. On any error the
    /// account is left exactly as it was.
    pub async fn update_from_url(
        &self,
        owner: TokenId,
        app_id: &AppId,
        url: &HeadImgUrl,
    ) -> Result<AvatarChange, DomainError> {
        // Ownership first: nothing is fetched on behalf of someone else's device.
        if self.repo.find_account(owner, app_id).await?.is_none() {
            return Err(DomainError::DeviceNotFound(app_id.clone()));
        }
        let _turn = self.account_turn(app_id).await?;
        // Risk control before any fetch: a refused change costs no download.
        self.check_change_limit(app_id).await?;
        let deadline = self.config.process_timeout;
        let (avatar, source_hash) = tokio::time::timeout(deadline, async {
            // The permit lives until the picture is decoded: that is how long the
            // downloaded bytes stay in memory.
            let _download = self.wait_for(&self.downloads).await?;
            let fetching = std::time::Instant::now();
            let bytes = self.fetcher.fetch(url.as_url()).await.map_err(|e| {
                metrics::fetch_refused(e.code());
                AvatarError::from(e)
            })?;
            metrics::avatar_stage(Stage::Fetch, fetching.elapsed());
            let source_hash = hex::encode(Sha256::digest(&bytes));
            // The same picture again (a bot re-sending a URL, or the same file
            // at another address): its avatar exists, nothing to decode.
            if let Some(avatar) = self.repo.avatar_for_source(&source_hash).await? {
                return Ok((avatar, source_hash));
            }
            let rendered = self.render(bytes).await?;
            // Blobs are complete before the database points at them, so no URL
            // ever names a missing object; an interrupted commit leaves only
            // unreferenced blobs.
            let storing = std::time::Instant::now();
            let avatar = persist_avatar(&self.storage, &rendered).await?;
            metrics::avatar_stage(Stage::Store, storing.elapsed());
            Ok::<_, DomainError>((avatar, source_hash))
        })
        .await
        .map_err(|_| AvatarError::Timeout(deadline))??;

        let source = AvatarSource {
            url: url.as_url().as_str(),
            hash: &source_hash,
        };
        let committing = std::time::Instant::now();
        let change = self
            .repo
            .set_avatar(owner, app_id, &avatar, &source, self.clock.unix_now())
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        metrics::avatar_stage(Stage::Commit, committing.elapsed());
        Ok(change)
    }

    /// Waits (up to the queue timeout) until no other update of `app_id` runs here.
    async fn account_turn(
        &self,
        app_id: &AppId,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, AvatarError> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.retain(|_, lock| lock.strong_count() > 0);
            match turns.get(app_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    turns.insert(app_id.clone(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        let wait = self.config.queue_timeout;
        tokio::time::timeout(wait, lock.lock_owned())
            .await
            .map_err(|_| AvatarError::Busy(wait))
    }

    async fn wait_for(
        &self,
        permits: &Arc<Semaphore>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, AvatarError> {
        let wait = self.config.queue_timeout;
        tokio::time::timeout(wait, permits.clone().acquire_owned())
            .await
            .map_err(|_| AvatarError::Busy(wait))?
            .map_err(|_| AvatarError::Worker("permits closed".into()))
    }

    /// Counts committed changes in the database, so several server instances
    /// sharing it enforce one limit. Concurrent requests at the boundary may each
    /// pass before either commits (the check is not part of `set_avatar`'s
    /// transaction).
    async fn check_change_limit(&self, app_id: &AppId) -> Result<(), DomainError> {
        let Some(limit) = self.config.change_limit else {
            return Ok(());
        };
        let window = i64::try_from(limit.window_secs).unwrap_or(i64::MAX);
        let now = self.clock.unix_now();
        let recent = self
            .repo
            .avatar_changes_since(app_id, now.saturating_sub(window))
            .await?;
        if recent.count < u64::from(limit.max) {
            return Ok(());
        }
        let frees_at = recent.oldest.unwrap_or(now).saturating_add(window);
        let retry_after_secs = u64::try_from(frees_at.saturating_sub(now))
            .unwrap_or(0)
            .max(1);
        Err(AvatarError::RateLimited {
            limit,
            retry_after_secs,
        }
        .into())
    }

    /// Decodes and renders on a blocking thread, holding one of the bounded decode
    /// slots for as long as the CPU work runs (even if the caller gives up).
    pub async fn render(&self, bytes: Bytes) -> Result<RenderedAvatar, AvatarError> {
        let queued = metrics::DecodeQueued::enter();
        let waiting = std::time::Instant::now();
        let permit = self.wait_for(&self.slots).await?;
        drop(queued);
        metrics::decode_slot_waited(waiting.elapsed());
        let limits = self.config.limits;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _entered = span.enter();
            imaging::render_avatar(&bytes, &limits)
        })
        .await
        .map_err(|e| AvatarError::Worker(e.to_string()))?
        .map_err(AvatarError::from)
    }
}

/// Stores a rendered avatar under its content id and describes it for the database.
pub(super) async fn persist_avatar(
    storage: &BlobStore,
    avatar: &RenderedAvatar,
) -> Result<AvatarRecord, DomainError> {
    let id = avatar.content_id();
    let variants = avatar.variants.iter().map(|v| (v.size, v.jpeg.clone()));
    storage.put_avatar(id, variants.collect()).await?;
    Ok(AvatarRecord {
        id,
        side: avatar.get(AvatarSize::Big).side,
    })
}
