//! The database, behind one interface so the engine can change without the
//! domain noticing.

mod sqlite;

use async_trait::async_trait;

pub use sqlite::SqliteRepo;

use crate::domain::AppId;

/// Errors of the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Row id of a token; the token itself is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub app_id: AppId,
    pub wxid: String,
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
    pub avatar_id: String,
}

/// A stored avatar: the id of its content-addressed variant set and the side of its
/// largest (`/0`) variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarRecord {
    pub id: String,
    pub side: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub avatar_id: String,
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

#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// Answers when the database does.
    async fn ping(&self) -> Result<(), RepoError>;

    async fn insert_token(
        &self,
        token_hash: &str,
        label: Option<&str>,
    ) -> Result<TokenId, RepoError>;
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenId>, RepoError>;

    /// Creates the account with its first avatar and first history row, atomically.
    async fn insert_account(
        &self,
        owner: TokenId,
        account: &AccountRecord,
        avatar: &AvatarRecord,
    ) -> Result<(), RepoError>;

    /// The account, only if `owner` owns it: other tenants' devices do not exist.
    async fn find_account(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Option<AccountRecord>, RepoError>;
    async fn list_accounts(&self, owner: TokenId) -> Result<Vec<AccountRecord>, RepoError>;

    /// Points the account at `avatar` and appends a history row, in one transaction.
    /// Returns `None` when the account is not `owner`'s.
    async fn set_avatar(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar: &AvatarRecord,
        source_url: &str,
    ) -> Result<Option<AvatarChange>, RepoError>;

    async fn avatar_exists(&self, avatar_id: &str) -> Result<bool, RepoError>;
    async fn avatar_history(&self, app_id: &AppId) -> Result<Vec<HistoryEntry>, RepoError>;

    /// Avatar changes of `app_id` committed after `since` (Unix seconds): history
    /// rows with a source URL, so the account's first avatar does not count.
    /// Read from the database, so the count holds across server instances.
    async fn avatar_changes_since(
        &self,
        app_id: &AppId,
        since: i64,
    ) -> Result<RecentChanges, RepoError>;
}
