//! Validated domain types and the operations on accounts and avatars.
//!
//! Values are parsed once at the edge (`AppId::parse`, `HeadImgUrl::parse`) so the
//! inside of the server never re-checks them.

mod accounts;
mod avatars;
mod ids;

pub use accounts::{AccountDraft, Accounts, Profile};
pub use avatars::{AvatarError, AvatarUpdater, AvatarUpdaterConfig, ChangeLimit};
pub use ids::{AppId, FieldError, HeadImgUrl, Wxid};

use crate::repo::RepoError;
use crate::storage::StorageError;

/// Errors of the domain layer, mapped to the GeWe envelope in `api::error`.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("device {0} not found for this token")]
    DeviceNotFound(AppId),
    #[error("wxid {0} is already taken")]
    WxidTaken(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Avatar(#[from] AvatarError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Seconds since the Unix epoch, the time unit GeWe uses on the wire.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
