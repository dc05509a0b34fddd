use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{EmbeddedMigrations, migrator};
use crate::domain::StoreError;

const MIGRATIONS: &EmbeddedMigrations = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "personal",
        include_str!("../../migrations/sqlite/0002_personal.sql"),
    ),
    (
        3,
        "login",
        include_str!("../../migrations/sqlite/0003_login.sql"),
    ),
    (
        4,
        "callbacks",
        include_str!("../../migrations/sqlite/0004_callbacks.sql"),
    ),
    (
        5,
        "avatar_sources",
        include_str!("../../migrations/sqlite/0005_avatar_sources.sql"),
    ),
    (
        6,
        "control_plane",
        include_str!("../../migrations/sqlite/0006_control_plane.sql"),
    ),
    (
        7,
        "console",
        include_str!("../../migrations/sqlite/0007_console.sql"),
    ),
    (
        8,
        "avatar_change_slots",
        include_str!("../../migrations/sqlite/0008_avatar_change_slots.sql"),
    ),
    (
        9,
        "token_admin",
        include_str!("../../migrations/sqlite/0009_token_admin.sql"),
    ),
    (
        10,
        "journal_filters",
        include_str!("../../migrations/sqlite/0010_journal_filters.sql"),
    ),
    (
        11,
        "source_validators",
        include_str!("../../migrations/sqlite/0011_source_validators.sql"),
    ),
    (
        12,
        "history_triggers",
        include_str!("../../migrations/sqlite/0012_history_triggers.sql"),
    ),
];

/// The embedded default: one SQLite file in WAL mode, shared safely with the CLI
/// while the server runs (writers wait on each other instead of failing).
#[derive(Clone)]
pub struct SqliteRepo {
    pool: SqlitePool,
    writer: SqlitePool,
}

impl SqliteRepo {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit we answered ret 200 for survives power loss, not just a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(SqliteRepo { pool, writer })
    }
}

super::sql::impl_store!(SqliteRepo, sqlx::Sqlite, for_update = "");
super::sql_login::impl_login_store!(SqliteRepo, sqlx::Sqlite);
super::sql_personal::impl_personal_store!(SqliteRepo, sqlx::Sqlite, for_update = "");
super::sql_outbox::impl_outbox!(
    SqliteRepo,
    sqlx::Sqlite,
    skip_locked = "",
    per_device_cap = i64::MAX
);
super::sql_control::impl_control_store!(SqliteRepo, sqlx::Sqlite, lock_device = "");
super::sql_console::impl_console_store!(SqliteRepo, sqlx::Sqlite);
super::sql_tokens::impl_token_admin!(SqliteRepo, sqlx::Sqlite);
super::sql_maintenance::impl_maintenance!(SqliteRepo, sqlx::Sqlite);
