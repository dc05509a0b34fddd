use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{
    AccountRecord, AvatarChange, AvatarRecord, EmbeddedMigrations, HistoryEntry, RecentChanges,
    RepoError, Repository, TokenId, account_from_row, conflict_or, history_from_row, migrator,
};
use crate::domain::{AppId, unix_now};

const MIGRATIONS: &EmbeddedMigrations = &[(
    1,
    "init",
    include_str!("../../migrations/sqlite/0001_init.sql"),
)];

/// The embedded default: one SQLite file in WAL mode, shared safely with the CLI
/// while the server runs (writers wait on each other instead of failing).
#[derive(Clone)]
pub struct SqliteRepo {
    pool: SqlitePool,
}

impl SqliteRepo {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, RepoError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit we answered ret 200 for survives power loss, not just a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        Ok(SqliteRepo { pool })
    }

    pub fn url_for_file(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }
}

#[async_trait]
impl Repository for SqliteRepo {
    async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_token(
        &self,
        token_hash: &str,
        label: Option<&str>,
    ) -> Result<TokenId, RepoError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (token_hash, label, created_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(token_hash)
        .bind(label)
        .bind(unix_now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "token"))?;
        Ok(TokenId(id))
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenId>, RepoError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(TokenId))
    }

    async fn insert_account(
        &self,
        owner: TokenId,
        account: &AccountRecord,
        avatar: &AvatarRecord,
    ) -> Result<(), RepoError> {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        insert_avatar(&mut tx, avatar, now).await?;
        sqlx::query(
            "INSERT INTO accounts (app_id, token_id, wxid, nick_name, alias, mobile, uin, sex, province, \
             city, signature, country, reg_country, sns_bg_img, avatar_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(account.app_id.as_str())
        .bind(owner.0)
        .bind(&account.wxid)
        .bind(&account.nick_name)
        .bind(&account.alias)
        .bind(&account.mobile)
        .bind(account.uin)
        .bind(account.sex)
        .bind(&account.province)
        .bind(&account.city)
        .bind(&account.signature)
        .bind(&account.country)
        .bind(&account.reg_country)
        .bind(&account.sns_bg_img)
        .bind(&avatar.id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "wxid"))?;
        append_history(&mut tx, &account.app_id, &avatar.id, None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_account(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Option<AccountRecord>, RepoError> {
        let row = sqlx::query(select_accounts!("WHERE app_id = ? AND token_id = ?"))
            .bind(app_id.as_str())
            .bind(owner.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(account_from_row).transpose()?)
    }

    async fn list_accounts(&self, owner: TokenId) -> Result<Vec<AccountRecord>, RepoError> {
        let rows = sqlx::query(select_accounts!(
            "WHERE token_id = ? ORDER BY created_at, app_id"
        ))
        .bind(owner.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(account_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn set_avatar(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar: &AvatarRecord,
        source_url: &str,
    ) -> Result<Option<AvatarChange>, RepoError> {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        // A write first, so this transaction takes SQLite's write lock before it
        // reads: concurrent updates then queue instead of failing with BUSY_SNAPSHOT.
        insert_avatar(&mut tx, avatar, now).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT avatar_id FROM accounts WHERE app_id = ? AND token_id = ?")
                .bind(app_id.as_str())
                .bind(owner.0)
                .fetch_optional(&mut *tx)
                .await?;
        let change = match current {
            None => return Ok(None),
            Some(current) if current == avatar.id => AvatarChange::Unchanged,
            Some(_) => {
                sqlx::query("UPDATE accounts SET avatar_id = ?, updated_at = ? WHERE app_id = ?")
                    .bind(&avatar.id)
                    .bind(now)
                    .bind(app_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                append_history(&mut tx, app_id, &avatar.id, Some(source_url), now).await?;
                AvatarChange::Changed
            }
        };
        tx.commit().await?;
        Ok(Some(change))
    }

    async fn avatar_exists(&self, avatar_id: &str) -> Result<bool, RepoError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM avatars WHERE id = ?")
            .bind(avatar_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn avatar_history(&self, app_id: &AppId) -> Result<Vec<HistoryEntry>, RepoError> {
        let rows = sqlx::query(
            "SELECT avatar_id, source_url, changed_at FROM avatar_history WHERE app_id = ? ORDER BY id",
        )
        .bind(app_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(history_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn avatar_changes_since(
        &self,
        app_id: &AppId,
        since: i64,
    ) -> Result<RecentChanges, RepoError> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(changed_at) FROM avatar_history \
             WHERE app_id = ? AND changed_at > ? AND source_url IS NOT NULL",
        )
        .bind(app_id.as_str())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(RecentChanges {
            count: u64::try_from(count).unwrap_or(0),
            oldest,
        })
    }
}

async fn insert_avatar(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    avatar: &AvatarRecord,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO avatars (id, side, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&avatar.id)
    .bind(avatar.side as i64)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn append_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    app_id: &AppId,
    avatar_id: &str,
    source_url: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO avatar_history (app_id, avatar_id, source_url, changed_at) VALUES (?, ?, ?, ?)")
        .bind(app_id.as_str())
        .bind(avatar_id)
        .bind(source_url)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
