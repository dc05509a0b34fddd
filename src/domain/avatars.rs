use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use sha2::{Digest, Sha256};

use super::{
    AppId, AvatarChange, AvatarId, AvatarRecord, AvatarSize, AvatarSource, ChangeReservation,
    ChangeSlot, Clock, DomainError, HeadImgUrl, Repository, TokenId,
};
use crate::fetch::{FetchError, Fetched, Fetcher};
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
            format!(
                "{text:?} is not a limit: write it as N/S, at most N changes in S seconds, \
                 both above 0, e.g. \"5/3600\""
            )
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
    /// The largest picture accepted as an upload (the console): the same as the
    /// largest download (`GEWE_FETCH_MAX_BYTES`).
    pub max_upload_bytes: u64,
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
            max_upload_bytes: 10 * 1024 * 1024,
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

    /// `personal/updateHeadImg`: replaces the avatar of `owner`'s logged-in
    /// account `app_id` with the picture at `url`. On any error the account is
    /// left exactly as it was.
    pub async fn update_online_from_url(
        &self,
        owner: TokenId,
        app_id: &AppId,
        url: &HeadImgUrl,
    ) -> Result<AvatarChange, DomainError> {
        // Ownership (and login) first: nothing is fetched on behalf of someone
        // else's device.
        super::accounts::online_account(self.repo.as_ref(), owner, app_id).await?;
        self.under_limit(app_id, |slot| self.change_avatar(owner, app_id, url, slot))
            .await
    }

    /// Replaces the avatar of `app_id` with the picture at `url`, logged in or
    /// not (the console). On any error the account is left exactly as it was.
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
        self.under_limit(app_id, |slot| self.change_avatar(owner, app_id, url, slot))
            .await
    }

    /// Replaces the avatar of `app_id` with an uploaded picture (the console):
    /// the same limits, change limit, decode pipeline and transaction as
    /// [`update_from_url`](Self::update_from_url), with no fetch. `source` names
    /// where it came from in the history (`upload:<file name>`).
    pub async fn update_from_upload(
        &self,
        owner: TokenId,
        app_id: &AppId,
        bytes: Bytes,
        source: &str,
    ) -> Result<AvatarChange, DomainError> {
        if self.repo.find_account(owner, app_id).await?.is_none() {
            return Err(DomainError::DeviceNotFound(app_id.clone()));
        }
        let limit = self.config.max_upload_bytes;
        if bytes.len() as u64 > limit {
            return Err(AvatarError::Fetch(FetchError::TooLarge { limit }).into());
        }
        self.under_limit(app_id, |slot| async move {
            let deadline = self.config.process_timeout;
            let (avatar, source_hash, stored) = tokio::time::timeout(deadline, async {
                let source_hash = hex::encode(Sha256::digest(&bytes));
                if let Some(avatar) = self.repo.avatar_for_source(&source_hash).await? {
                    return Ok((avatar, source_hash, true));
                }
                let rendered = self.render(bytes).await?;
                let avatar = persist_avatar(&self.storage, &rendered).await?;
                Ok::<_, DomainError>((avatar, source_hash, false))
            })
            .await
            .map_err(|_| AvatarError::Timeout(deadline))??;
            let source = AvatarSource {
                url: source,
                hash: Some(&source_hash),
                etag: None,
                stored,
                slot,
            };
            self.commit(owner, app_id, &avatar, &source).await
        })
        .await
    }

    /// Uses an avatar the account had before again: a normal change (change
    /// limit, history row `restore:<id>`), with nothing downloaded or decoded.
    pub async fn restore(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar_id: AvatarId,
    ) -> Result<AvatarChange, DomainError> {
        if self.repo.find_account(owner, app_id).await?.is_none() {
            return Err(DomainError::DeviceNotFound(app_id.clone()));
        }
        let had_it = self
            .repo
            .avatar_history(app_id)
            .await?
            .iter()
            .any(|entry| entry.avatar_id == avatar_id);
        let avatar = match self.repo.find_avatar(avatar_id).await? {
            Some(avatar) if had_it => avatar,
            _ => {
                return Err(DomainError::InvalidInput(format!(
                    "头像{avatar_id}不在该账号的头像历史中"
                )));
            }
        };
        let url = format!("restore:{avatar_id}");
        self.under_limit(app_id, |slot| {
            let source = AvatarSource {
                url: &url,
                hash: None,
                etag: None,
                stored: true,
                slot,
            };
            async move { self.commit(owner, app_id, &avatar, &source).await }
        })
        .await
    }

    /// Runs `change` in this account's turn, under a change-limit slot: a
    /// refused change costs no work. A committed change took the slot with it;
    /// a failed one gives it back before the next update of this account gets
    /// its turn (an abandoned request, when the guard drops).
    async fn under_limit<F, Fut>(
        &self,
        app_id: &AppId,
        change: F,
    ) -> Result<AvatarChange, DomainError>
    where
        F: FnOnce(Option<ChangeSlot>) -> Fut,
        Fut: std::future::Future<Output = Result<AvatarChange, DomainError>>,
    {
        let _turn = self.account_turn(app_id).await?;
        let mut slot = self.reserve_change(app_id).await?;
        let result = change(slot.held()).await;
        match &result {
            Ok(_) => slot.consumed(),
            Err(_) => slot.release().await,
        }
        result
    }

    /// The one transaction of a change: the pointer, its history row, the
    /// picture's source and the slot, together.
    async fn commit(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar: &AvatarRecord,
        source: &AvatarSource<'_>,
    ) -> Result<AvatarChange, DomainError> {
        let committing = std::time::Instant::now();
        let change = self
            .repo
            .set_avatar(owner, app_id, avatar, source, self.clock.unix_now())
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        metrics::avatar_stage(Stage::Commit, committing.elapsed());
        Ok(change)
    }

    /// Fetch → decode → variants → blobs → one transaction (which also deletes
    /// `slot`, the change-limit slot reserved for this change).
    async fn change_avatar(
        &self,
        owner: TokenId,
        app_id: &AppId,
        url: &HeadImgUrl,
        slot: Option<ChangeSlot>,
    ) -> Result<AvatarChange, DomainError> {
        let deadline = self.config.process_timeout;
        let (avatar, source_hash, etag, stored, current) = tokio::time::timeout(deadline, async {
            // The same URL again, whose server said which bytes it had: asked
            // whether they changed, a 304 keeps the avatar made from them. Read
            // in this account's turn, with what the account points at now.
            let known = self
                .repo
                .known_source(owner, app_id, url.as_url().as_str())
                .await?;
            // The permit lives until the picture is decoded: that is how long the
            // downloaded bytes stay in memory.
            let _download = self.wait_for(&self.downloads).await?;
            let fetching = std::time::Instant::now();
            let fetched = self
                .fetcher
                .fetch_unless(
                    url.as_url(),
                    known.as_ref().map(|k| k.etag.as_str()),
                    imaging::buffers::for_download(),
                )
                .await
                .map_err(|e| {
                    metrics::fetch_refused(e.code());
                    AvatarError::from(e)
                })?;
            metrics::avatar_stage(Stage::Fetch, fetching.elapsed());
            let (bytes, etag) = match (fetched, known) {
                (Fetched::Body { bytes, etag }, _) => (bytes, etag),
                (Fetched::NotModified, Some(known)) => {
                    return Ok((known.avatar, None, None, true, known.account_avatar));
                }
                (Fetched::NotModified, None) => {
                    return Err(AvatarError::from(FetchError::HttpStatus(304)).into());
                }
            };
            let source_hash = hex::encode(Sha256::digest(&bytes));
            // The same picture again (a bot re-sending a URL, or the same file
            // at another address): its avatar exists, nothing to decode.
            if let Some(avatar) = self.repo.avatar_for_source(&source_hash).await? {
                imaging::buffers::recycle(bytes);
                return Ok((avatar, Some(source_hash), etag, true, None));
            }
            let rendered = self.render(bytes).await?;
            // Blobs are complete before the database points at them, so no URL
            // ever names a missing object; an interrupted commit leaves only
            // unreferenced blobs.
            let storing = std::time::Instant::now();
            let avatar = persist_avatar(&self.storage, &rendered).await?;
            metrics::avatar_stage(Stage::Store, storing.elapsed());
            Ok::<_, DomainError>((avatar, Some(source_hash), etag, false, None))
        })
        .await
        .map_err(|_| AvatarError::Timeout(deadline))??;

        // A 304 for the avatar the account already has (a bot sending the same
        // URL again): nothing to write. No other update of this account ran here
        // since that read (this is its turn); one on another instance overlaps
        // this one in time, and may be ordered after it.
        if current == Some(avatar.id) && slot.is_none() {
            return Ok(AvatarChange::Unchanged);
        }
        // A 304 brought no bytes: nothing new to remember of the source.
        let source = AvatarSource {
            url: url.as_url().as_str(),
            hash: source_hash.as_deref(),
            etag: etag.as_deref(),
            stored,
            slot,
        };
        self.commit(owner, app_id, &avatar, &source).await
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

    /// Takes a change-limit slot for `app_id` in the database (see
    /// [`Repository::reserve_avatar_change`](super::AccountStore::reserve_avatar_change)):
    /// the committed changes in the window and the slots other updates hold,
    /// on any instance sharing the database, count against the limit together,
    /// so racing updates cannot pass it. A slot left by a process that died
    /// stops counting once the longest an update can take has passed.
    async fn reserve_change(&self, app_id: &AppId) -> Result<SlotGuard, DomainError> {
        let Some(limit) = self.config.change_limit else {
            return Ok(SlotGuard::none(&self.repo));
        };
        let window = i64::try_from(limit.window_secs).unwrap_or(i64::MAX);
        let now = self.clock.unix_now();
        let longest = self.config.queue_timeout + self.config.process_timeout;
        let expires_at = now
            .saturating_add(i64::try_from(longest.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(SLOT_GRACE_SECS);
        let reservation = self
            .repo
            .reserve_avatar_change(
                app_id,
                now.saturating_sub(window),
                u64::from(limit.max),
                now,
                expires_at,
            )
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        let recent = match reservation {
            ChangeReservation::Reserved(slot) => {
                return Ok(SlotGuard {
                    repo: self.repo.clone(),
                    slot: Some(slot),
                });
            }
            ChangeReservation::Full(recent) => recent,
        };
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
            let rendered = imaging::render_avatar(&bytes, &limits);
            imaging::buffers::recycle(bytes);
            rendered
        })
        .await
        .map_err(|e| AvatarError::Worker(e.to_string()))?
        .map_err(AvatarError::from)
    }
}

/// Seconds a change-limit slot outlives the longest an update may take (wait for
/// a download permit + fetch and processing), for the commit itself.
const SLOT_GRACE_SECS: i64 = 60;

/// A change-limit slot held by an update in progress. Unless the change
/// committed (which deleted the slot in its transaction), dropping the guard
/// gives the slot back: on an error, and when the request is abandoned.
struct SlotGuard {
    repo: Arc<dyn Repository>,
    slot: Option<ChangeSlot>,
}

impl SlotGuard {
    fn none(repo: &Arc<dyn Repository>) -> Self {
        SlotGuard {
            repo: repo.clone(),
            slot: None,
        }
    }

    fn held(&self) -> Option<ChangeSlot> {
        self.slot
    }

    fn consumed(&mut self) {
        self.slot = None;
    }

    async fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            release(self.repo.as_ref(), slot).await;
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let repo = self.repo.clone();
        runtime.spawn(async move { release(repo.as_ref(), slot).await });
    }
}

async fn release(repo: &dyn Repository, slot: ChangeSlot) {
    if let Err(e) = repo.release_avatar_change(slot).await {
        // It stops counting when it expires.
        tracing::warn!(error = %e, slot = slot.0, "could not release an avatar change slot");
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
