//! The database, behind one interface so the engine can change without the
//! domain noticing: SQLite (the embedded default) or PostgreSQL (for many
//! instances sharing one database).
//!
//! The two engines share what is the same text in both (the account columns, row
//! decoding, migration embedding); their SQL stays separate where the dialects or
//! the locking differ.

use std::borrow::Cow;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{ColumnIndex, Decode, Row, SqlSafeStr, Type};

/// `SELECT <every account column> FROM accounts <rest>`, as one `&'static str`.
macro_rules! select_accounts {
    ($($rest:literal)*) => {
        concat!(
            "SELECT app_id, wxid, nick_name, alias, mobile, uin, sex, province, city, signature, ",
            "country, reg_country, sns_bg_img, avatar_id FROM accounts ",
            $($rest),*
        )
    };
}

mod postgres;
mod sqlite;

pub use postgres::PgRepo;
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

/// Migrations compiled into the binary (version, name, SQL), so an installed `gewe`
/// needs no files beside it.
type EmbeddedMigrations = [(i64, &'static str, &'static str)];

fn migrator(embedded: &'static EmbeddedMigrations) -> Migrator {
    let migrations = embedded
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

fn conflict_or(err: sqlx::Error, what: &str) -> RepoError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            RepoError::Conflict(what.to_owned())
        }
        _ => RepoError::Database(err),
    }
}

/// Decodes a row of `select_accounts!`, from either engine.
fn account_from_row<'r, R>(row: &'r R) -> Result<AccountRecord, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(AccountRecord {
        app_id: AppId::from_trusted(row.try_get("app_id")?),
        wxid: row.try_get("wxid")?,
        nick_name: row.try_get("nick_name")?,
        alias: row.try_get("alias")?,
        mobile: row.try_get("mobile")?,
        uin: row.try_get("uin")?,
        sex: row.try_get("sex")?,
        province: row.try_get("province")?,
        city: row.try_get("city")?,
        signature: row.try_get("signature")?,
        country: row.try_get("country")?,
        reg_country: row.try_get("reg_country")?,
        sns_bg_img: row.try_get("sns_bg_img")?,
        avatar_id: row.try_get("avatar_id")?,
    })
}

/// Decodes a row of `SELECT avatar_id, source_url, changed_at FROM avatar_history`.
fn history_from_row<'r, R>(row: &'r R) -> Result<HistoryEntry, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(HistoryEntry {
        avatar_id: row.try_get("avatar_id")?,
        source_url: row.try_get("source_url")?,
        changed_at: row.try_get("changed_at")?,
    })
}
