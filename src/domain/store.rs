//! The store: what the domain needs from a database, in the domain's words.
//! `repo` implements it for SQLite and PostgreSQL; nothing here knows SQL.
//!
//! Every time a store method records is passed in by the caller (`now`, Unix
//! seconds from the domain's [`Clock`](super::Clock)), so one clock rules them all.

use async_trait::async_trait;

use super::{AppId, AvatarId, Wxid};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (named) already exists.
    #[error("unique constraint violated: {0}")]
    Conflict(&'static str),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Row id of a token; the token itself is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId(pub i64);

/// An account's profile as GeWe's getProfile describes it, with the avatar as an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub app_id: AppId,
    pub wxid: Wxid,
    pub nick_name: String,
    pub alias: String,
    pub mobile: String,
    pub uin: i64,
    pub sex: i64,
    pub province: String,
    pub city: String,
    pub signature: String,
    pub country: String,
    pub reg_country: String,
    pub sns_bg_img: String,
    pub avatar_id: AvatarId,
}

/// A stored avatar: the id of its content-addressed variant set and the side of its
/// largest (`/0`) variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvatarRecord {
    pub id: AvatarId,
    pub side: u32,
}

/// One avatar an account has had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub avatar_id: AvatarId,
    /// The picture address it came from; `None` for the account's first avatar.
    pub source_url: Option<String>,
    pub changed_at: i64,
}

/// Recent avatar changes of one account, for the per-account change limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentChanges {
    pub count: u64,
    /// `changed_at` (Unix seconds) of the oldest change counted.
    pub oldest: Option<i64>,
}

/// Whether `set_avatar` moved the pointer or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarChange {
    Changed,
    Unchanged,
}

/// The whole store, as the rest of the server holds it (`Arc<dyn Repository>`).
/// Each capability has its own part, so each lands in its own room.
#[async_trait]
pub trait Repository:
    TokenStore + AccountStore + SecretStore + InstanceTokenStore + Send + Sync + 'static
{
    /// Answers when the database does.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// API tokens, by hash.
#[async_trait]
pub trait TokenStore {
    async fn insert_token(
        &self,
        token_hash: &str,
        label: Option<&str>,
        now: i64,
    ) -> Result<TokenId, StoreError>;
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenId>, StoreError>;
}

/// Accounts (devices) and their avatars.
#[async_trait]
pub trait AccountStore {
    /// Creates the account with its first avatar and first history row, atomically.
    async fn insert_account(
        &self,
        owner: TokenId,
        account: &AccountRecord,
        avatar: &AvatarRecord,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The account, only if `owner` owns it: other tenants' devices do not exist.
    async fn find_account(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Option<AccountRecord>, StoreError>;
    async fn list_accounts(&self, owner: TokenId) -> Result<Vec<AccountRecord>, StoreError>;

    /// Points the account at `avatar` and appends a history row, in one transaction.
    /// Returns `None` when the account is not `owner`'s.
    async fn set_avatar(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar: &AvatarRecord,
        source_url: &str,
        now: i64,
    ) -> Result<Option<AvatarChange>, StoreError>;

    /// Every avatar the account has had, oldest first (callers check ownership).
    async fn avatar_history(&self, app_id: &AppId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Avatar changes of `app_id` committed after `since` (Unix seconds): history
    /// rows with a source URL, so the account's first avatar does not count.
    /// Read from the database, so the count holds across server instances.
    async fn avatar_changes_since(
        &self,
        app_id: &AppId,
        since: i64,
    ) -> Result<RecentChanges, StoreError>;
}

/// Secrets made once per database and shared by every instance using it.
#[async_trait]
pub trait SecretStore {
    /// The server's 32 random bytes, created on first use. Race-safe: instances
    /// asking at once all get the one secret that was stored first.
    async fn server_secret(&self) -> Result<[u8; 32], StoreError>;
}

/// Tokens whose plaintext is derived, not random: stored by hash like any other,
/// but inserted idempotently.
#[async_trait]
pub trait InstanceTokenStore {
    /// The id of the token with this hash, inserting it if it is not there yet.
    async fn ensure_token(
        &self,
        token_hash: &str,
        label: Option<&str>,
        now: i64,
    ) -> Result<TokenId, StoreError>;
}
