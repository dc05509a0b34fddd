use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::{AppId, DomainError, HeadImgUrl};
use crate::fetch::{FetchError, Fetcher};
use crate::imaging::{self, AvatarSize, ImageError, ImageLimits, RenderedAvatar};
use crate::repo::{AvatarChange, AvatarRecord, Repository, TokenId};
use crate::storage::BlobStore;

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
}

impl Default for AvatarUpdaterConfig {
    fn default() -> Self {
        AvatarUpdaterConfig {
            limits: ImageLimits::default(),
            decode_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_timeout: Duration::from_secs(10),
            process_timeout: Duration::from_secs(20),
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
    config: AvatarUpdaterConfig,
}

impl AvatarUpdater {
    pub fn new(
        fetcher: Fetcher,
        repo: Arc<dyn Repository>,
        storage: BlobStore,
        config: AvatarUpdaterConfig,
    ) -> Self {
        AvatarUpdater {
            fetcher,
            repo,
            storage,
            slots: Arc::new(Semaphore::new(config.decode_slots.max(1))),
            config,
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
        let deadline = self.config.process_timeout;
        let rendered = tokio::time::timeout(deadline, async {
            let bytes = self.fetcher.fetch(url.as_url()).await?;
            self.render(bytes).await
        })
        .await
        .map_err(|_| AvatarError::Timeout(deadline))??;

        // Blobs are complete before the database points at them, so no URL ever
        // names a missing object; an interrupted commit leaves only unreferenced blobs.
        let avatar = persist_avatar(&self.storage, &rendered).await?;
        self.repo
            .set_avatar(owner, app_id, &avatar, url.as_url().as_str())
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))
    }

    /// Decodes and renders on a blocking thread, holding one of the bounded decode
    /// slots for as long as the CPU work runs (even if the caller gives up).
    pub async fn render(&self, bytes: Bytes) -> Result<RenderedAvatar, AvatarError> {
        let wait = self.config.queue_timeout;
        let permit = tokio::time::timeout(wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AvatarError::Busy(wait))?
            .map_err(|_| AvatarError::Worker("decode slots closed".into()))?;
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
    storage.put_avatar(&id, avatar).await?;
    Ok(AvatarRecord {
        id,
        side: avatar.get(AvatarSize::Big).side,
    })
}
