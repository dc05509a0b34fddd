//! Blob storage for avatar variants, behind `object_store` so a bucket can replace
//! the local folder without the rest of the server noticing.
//!
//! Layout: `avatars/<id>/<size>.jpg`, where `<id>` is derived from the content of all
//! five variants. Objects are written create-only and never change afterwards, which
//! is what lets the server hand them out as immutable, forever-cacheable URLs.
//!
//! Two backends: a local folder (one machine) and an S3 bucket (any number of
//! instances; see `s3`).

mod s3;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

pub use s3::S3Config;

use crate::domain::{AvatarId, AvatarSize};
use crate::telemetry::metrics;

mod cache;
pub use cache::{DEFAULT_CACHE_BYTES, VariantCache};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob store error: {0}")]
    Store(#[from] object_store::Error),
    #[error("cannot prepare blob folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// One stored avatar object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub avatar_id: AvatarId,
    pub key: String,
    /// Last modified, Unix seconds by the store's clock.
    pub modified: i64,
}

/// The avatar id of `avatars/<id>/<size>.jpg`; `None` for any other key.
fn avatar_of_key(key: &str) -> Option<AvatarId> {
    let mut parts = key.split('/');
    let (Some("avatars"), Some(id), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let size = file.strip_suffix(".jpg")?;
    AvatarSize::ALL.iter().find(|s| s.label() == size)?;
    AvatarId::parse(id).ok()
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Where clients can fetch the objects themselves (a CDN or the bucket's public
    /// address), if anywhere: `{base}/avatars/<id>/<size>.jpg`.
    public_base: Option<String>,
    /// Hot variants in memory: reads and ETag checks of cached ones cost no I/O.
    cache: Arc<VariantCache>,
    /// The same store when it is a folder, whose files can be touched in place.
    folder: Option<Arc<LocalFileSystem>>,
}

impl BlobStore {
    /// A folder on the local disk, created if missing.
    pub fn local(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
        // Deleting an avatar's last variant (the garbage collector) removes its
        // folder too.
        let folder = Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true));
        Ok(BlobStore {
            folder: Some(folder.clone()),
            ..Self::from_store(folder)
        })
    }

    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        BlobStore {
            store,
            public_base: None,
            cache: Arc::new(VariantCache::new(DEFAULT_CACHE_BYTES)),
            folder: None,
        }
    }

    /// Declares that the objects can be fetched at `{base}/avatars/<id>/<size>.jpg`.
    pub fn with_public_base(mut self, base: Option<&Url>) -> Self {
        self.public_base = base.map(|b| b.as_str().trim_end_matches('/').to_owned());
        self
    }

    /// The public address of one variant, when a public base is configured.
    pub fn public_url(&self, avatar_id: AvatarId, size: AvatarSize) -> Option<String> {
        let base = self.public_base.as_deref()?;
        Some(format!("{base}/{}", Self::key(avatar_id, size)))
    }

    fn key(avatar_id: AvatarId, size: AvatarSize) -> ObjectPath {
        ObjectPath::from(format!("avatars/{avatar_id}/{}.jpg", size.label()))
    }

    /// Writes every variant (size, JPEG) under `avatar_id`. Each object is written
    /// whole (the folder stages and renames; an S3 PUT is atomic) and only if absent,
    /// so re-sending the same picture writes nothing and a half-finished earlier
    /// attempt is completed. The five are written at once: a folder's writes run
    /// on the blocking pool, which takes them in one go instead of being woken
    /// for each, and S3 PUTs overlap.
    pub async fn put_avatar(
        &self,
        avatar_id: AvatarId,
        variants: Vec<(AvatarSize, Bytes)>,
    ) -> Result<(), StorageError> {
        let puts = variants
            .into_iter()
            .map(|(size, jpeg)| self.put_variant(Self::key(avatar_id, size), jpeg));
        futures_util::future::try_join_all(puts).await?;
        Ok(())
    }

    async fn put_variant(&self, key: ObjectPath, jpeg: Bytes) -> Result<(), StorageError> {
        let payload = PutPayload::from_bytes(jpeg);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.store.put_opts(&key, payload.clone(), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => self.refresh(&key, payload).await,
            // An S3 store configured without conditional puts
            // (`AWS_CONDITIONAL_PUT=disabled`, for S3-likes that reject
            // `If-None-Match`). Look, then write: two writers racing past the
            // look both write the same bytes, because the key names the content,
            // and each PUT replaces the object whole — so a reader never sees
            // anything but that content.
            Err(object_store::Error::NotImplemented { .. }) => {
                if self.exists(&key).await? {
                    self.refresh(&key, payload).await
                } else {
                    self.store.put(&key, payload).await?;
                    Ok(())
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites an existing object with the bytes it holds, so its last-modified
    /// time says "in use now": the garbage collector's grace period counts from
    /// there, so an old unreferenced blob that an update is about to point at
    /// again is not deleted under it. The stored bytes stay (create-only: what
    /// was stored first wins); if the object vanished meanwhile, `ours` is
    /// written.
    async fn refresh(&self, key: &ObjectPath, ours: PutPayload) -> Result<(), StorageError> {
        // In a folder the object's last-modified time is its file's: set it in
        // place rather than reading the bytes and writing them back. Anything
        // but success (the file vanished meanwhile) takes the general way.
        if let Some(folder) = &self.folder {
            let path = folder.path_to_filesystem(key)?;
            let touched = tokio::task::spawn_blocking(move || {
                std::fs::File::open(path)?.set_modified(std::time::SystemTime::now())
            })
            .await;
            if matches!(touched, Ok(Ok(()))) {
                return Ok(());
            }
        }
        let payload = match self.store.get(key).await {
            Ok(stored) => PutPayload::from_bytes(stored.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => ours,
            Err(e) => return Err(e.into()),
        };
        self.store.put(key, payload).await?;
        Ok(())
    }

    /// Every stored avatar object, with its avatar id and last-modified time
    /// (Unix seconds, the store's clock). Keys that are not
    /// `avatars/<id>/<size>.jpg` are left out: nothing here touches them.
    pub async fn list_avatar_objects(&self) -> Result<Vec<StoredObject>, StorageError> {
        let prefix = ObjectPath::from("avatars");
        let mut listing = self.store.list(Some(&prefix));
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(avatar_id) = avatar_of_key(meta.location.as_ref()) {
                objects.push(StoredObject {
                    avatar_id,
                    key: meta.location.to_string(),
                    modified: meta.last_modified.timestamp(),
                });
            }
        }
        Ok(objects)
    }

    /// The last-modified time of one object (Unix seconds), `None` if absent.
    pub async fn modified(&self, object: &StoredObject) -> Result<Option<i64>, StorageError> {
        match self
            .store
            .head(&ObjectPath::from(object.key.as_str()))
            .await
        {
            Ok(meta) => Ok(Some(meta.last_modified.timestamp())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes one object (absent is fine) and forgets its avatar's cached bytes.
    pub async fn delete(&self, object: &StoredObject) -> Result<(), StorageError> {
        self.cache.forget(object.avatar_id);
        match self
            .store
            .delete(&ObjectPath::from(object.key.as_str()))
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Answers when the store does: a HEAD of a key that need not exist.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.exists(&ObjectPath::from("readiness-probe"))
            .await
            .map(drop)
    }

    /// The bytes of one variant if they are in memory: no store is asked.
    pub fn variant_in_memory(&self, avatar_id: AvatarId, size: AvatarSize) -> Option<Bytes> {
        let jpeg = self.cache.get(avatar_id, size)?;
        metrics::variant_cache(true);
        Some(jpeg)
    }

    /// The bytes of one variant, or `None` when no such object exists.
    pub async fn get_variant(
        &self,
        avatar_id: AvatarId,
        size: AvatarSize,
    ) -> Result<Option<Bytes>, StorageError> {
        if let Some(jpeg) = self.cache.get(avatar_id, size) {
            metrics::variant_cache(true);
            return Ok(Some(jpeg));
        }
        metrics::variant_cache(false);
        match self.store.get(&Self::key(avatar_id, size)).await {
            Ok(result) => {
                let jpeg = result.bytes().await?;
                self.cache.insert(avatar_id, size, jpeg.clone());
                Ok(Some(jpeg))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether one variant exists, without reading it.
    pub async fn has_variant(
        &self,
        avatar_id: AvatarId,
        size: AvatarSize,
    ) -> Result<bool, StorageError> {
        if self.cache.get(avatar_id, size).is_some() {
            metrics::variant_cache(true);
            return Ok(true);
        }
        metrics::variant_cache(false);
        self.exists(&Self::key(avatar_id, size)).await
    }

    async fn exists(&self, key: &ObjectPath) -> Result<bool, StorageError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// Storing an avatar whose objects exist keeps their bytes (what was stored
    /// first wins) and restarts their grace: their last-modified time is now.
    #[tokio::test]
    async fn storing_existing_objects_in_a_folder_keeps_them_and_touches_them() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path()).unwrap();
        let id = AvatarId::from_digest(&[7; 32]);
        let first = Bytes::from_static(b"first");
        blobs
            .put_avatar(id, vec![(AvatarSize::S46, first.clone())])
            .await
            .unwrap();
        let key = BlobStore::key(id, AvatarSize::S46);
        let file = dir.path().join(key.as_ref());
        let a_day_ago = SystemTime::now() - Duration::from_secs(86_400);
        std::fs::File::open(&file)
            .unwrap()
            .set_modified(a_day_ago)
            .unwrap();
        let object = StoredObject {
            avatar_id: id,
            key: key.to_string(),
            modified: 0,
        };
        let before = blobs.modified(&object).await.unwrap().unwrap();

        blobs
            .put_avatar(id, vec![(AvatarSize::S46, Bytes::from_static(b"second"))])
            .await
            .unwrap();
        let after = blobs.modified(&object).await.unwrap().unwrap();
        assert!(after >= before + 86_000, "touched: {before} -> {after}");
        assert_eq!(std::fs::read(&file).unwrap(), first);
    }
}
