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
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

pub use s3::S3Config;

use crate::domain::{AvatarId, AvatarSize};

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

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Where clients can fetch the objects themselves (a CDN or the bucket's public
    /// address), if anywhere: `{base}/avatars/<id>/<size>.jpg`.
    public_base: Option<String>,
    /// Hot variants in memory: reads and ETag checks of cached ones cost no I/O.
    cache: Arc<VariantCache>,
}

impl BlobStore {
    /// A folder on the local disk, created if missing.
    pub fn local(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self::from_store(Arc::new(store)))
    }

    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        BlobStore {
            store,
            public_base: None,
            cache: Arc::new(VariantCache::new(DEFAULT_CACHE_BYTES)),
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
    /// attempt is completed.
    pub async fn put_avatar(
        &self,
        avatar_id: AvatarId,
        variants: Vec<(AvatarSize, Bytes)>,
    ) -> Result<(), StorageError> {
        for (size, jpeg) in variants {
            let key = Self::key(avatar_id, size);
            let payload = PutPayload::from_bytes(jpeg);
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self.store.put_opts(&key, payload.clone(), options).await {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                // An S3 store configured without conditional puts
                // (`AWS_CONDITIONAL_PUT=disabled`, for S3-likes that reject
                // `If-None-Match`). Look, then write: two writers racing past the
                // look both write the same bytes, because the key names the content,
                // and each PUT replaces the object whole — so a reader never sees
                // anything but that content.
                Err(object_store::Error::NotImplemented { .. }) => {
                    if !self.exists(&key).await? {
                        self.store.put(&key, payload).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Answers when the store does: a HEAD of a key that need not exist.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.exists(&ObjectPath::from("readiness-probe"))
            .await
            .map(drop)
    }

    /// The bytes of one variant, or `None` when no such object exists.
    pub async fn get_variant(
        &self,
        avatar_id: AvatarId,
        size: AvatarSize,
    ) -> Result<Option<Bytes>, StorageError> {
        if let Some(jpeg) = self.cache.get(avatar_id, size) {
            return Ok(Some(jpeg));
        }
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
            return Ok(true);
        }
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
