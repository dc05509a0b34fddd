//! `gewe backup DIR` and `gewe restore DIR` for the embedded default (SQLite and
//! the blob folder).
//!
//! A backup is taken while the server runs: SQLite's `VACUUM INTO` writes a
//! transactionally consistent copy of the database, and then every blob that
//! copy references is copied. Blobs are written before the database points at
//! them and never change afterwards (their key names their content), so every
//! blob the copy needs already exists, whole. The result is a folder laid out
//! like a data dir: `gewe.db` and `blobs/avatars/<id>/<size>.jpg`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::config::{Settings, Storage};
use crate::domain::{AvatarId, AvatarSize};
use crate::storage::BlobStore;

const DATABASE_FILE: &str = "gewe.db";

/// What a backup or restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub avatars: usize,
    pub files: usize,
}

/// The SQLite file of the settings; refuses PostgreSQL and S3, whose own tools
/// (pg_dump, bucket versioning or replication) are the right ones.
fn embedded_database(settings: &Settings) -> anyhow::Result<PathBuf> {
    if settings.storage != Storage::Local {
        bail!(
            "backup covers the embedded default only: GEWE_STORAGE is s3, back the bucket up with its own tools"
        );
    }
    let url = settings.database_url();
    let Some(path) = url.expose_secret().strip_prefix("sqlite://") else {
        bail!("backup covers the embedded default only: {url} is not SQLite; use pg_dump");
    };
    Ok(PathBuf::from(path))
}

async fn open_read_only(path: &Path) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Every avatar id the database at `path` references.
async fn referenced_avatars(path: &Path) -> anyhow::Result<Vec<AvatarId>> {
    let mut db = open_read_only(path).await?;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM avatars ORDER BY id")
        .fetch_all(&mut db)
        .await?;
    ids.iter()
        .map(|id| {
            AvatarId::parse(id)
                .map_err(|_| anyhow::anyhow!("bad avatar id {id:?} in {}", path.display()))
        })
        .collect()
}

/// Copies every variant of `avatars` from one blob store to another.
async fn copy_blobs(
    from: &BlobStore,
    to: &BlobStore,
    avatars: &[AvatarId],
) -> anyhow::Result<usize> {
    let mut files = 0;
    for &id in avatars {
        let mut variants = Vec::with_capacity(AvatarSize::ALL.len());
        for size in AvatarSize::ALL {
            let jpeg = from
                .get_variant(id, size)
                .await?
                .with_context(|| format!("avatar {id} misses its {} variant", size.label()))?;
            variants.push((size, jpeg));
        }
        files += variants.len();
        to.put_avatar(id, variants).await?;
    }
    Ok(files)
}

fn must_be_empty(dir: &Path, what: &str) -> anyhow::Result<()> {
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!(
            "{what} {} is not empty: choose an empty or new folder",
            dir.display()
        );
    }
    Ok(())
}

/// Writes a consistent copy of the data of `settings` into `target` (empty or new).
pub async fn backup(settings: &Settings, target: &Path) -> anyhow::Result<Copied> {
    let database = embedded_database(settings)?;
    if !database.exists() {
        bail!(
            "no database at {}: nothing to back up (check --data-dir)",
            database.display()
        );
    }
    must_be_empty(target, "backup folder")?;
    std::fs::create_dir_all(target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    let copy = target.join(DATABASE_FILE);
    let mut db = open_read_only(&database).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(copy.to_string_lossy().into_owned())
        .execute(&mut db)
        .await
        .context("cannot copy the database")?;
    let avatars = referenced_avatars(&copy).await?;
    let from = BlobStore::local(&settings.blob_dir())?;
    let to = BlobStore::local(&target.join("blobs"))?;
    let files = copy_blobs(&from, &to, &avatars).await?;
    Ok(Copied {
        avatars: avatars.len(),
        files,
    })
}

/// Restores the backup in `source` into the (empty or new) data dir of `settings`.
pub async fn restore(settings: &Settings, source: &Path) -> anyhow::Result<Copied> {
    let database = embedded_database(settings)?;
    let backup_db = source.join(DATABASE_FILE);
    if !backup_db.is_file() {
        bail!(
            "{} holds no backup ({DATABASE_FILE} missing)",
            source.display()
        );
    }
    if database.exists() {
        bail!(
            "{} exists: restore only into an empty data dir",
            database.display()
        );
    }
    must_be_empty(&settings.blob_dir(), "blob folder")?;
    let avatars = referenced_avatars(&backup_db).await?;
    let from = BlobStore::local(&source.join("blobs"))?;
    let to = BlobStore::local(&settings.blob_dir())?;
    let files = copy_blobs(&from, &to, &avatars).await?;
    if let Some(parent) = database.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // The database last: until it is in place, the data dir holds no data.
    let staging = database.with_extension("db.restoring");
    std::fs::copy(&backup_db, &staging)
        .with_context(|| format!("cannot write {}", staging.display()))?;
    std::fs::rename(&staging, &database)?;
    Ok(Copied {
        avatars: avatars.len(),
        files,
    })
}
