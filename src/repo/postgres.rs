use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};

use super::{EmbeddedMigrations, migrator};
use crate::domain::StoreError;

const MIGRATIONS: &EmbeddedMigrations = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "personal",
        include_str!("../../migrations/postgres/0002_personal.sql"),
    ),
    (
        3,
        "login",
        include_str!("../../migrations/postgres/0003_login.sql"),
    ),
    (
        4,
        "callbacks",
        include_str!("../../migrations/postgres/0004_callbacks.sql"),
    ),
    (
        5,
        "avatar_sources",
        include_str!("../../migrations/postgres/0005_avatar_sources.sql"),
    ),
    (
        6,
        "control_plane",
        include_str!("../../migrations/postgres/0006_control_plane.sql"),
    ),
    (
        7,
        "console",
        include_str!("../../migrations/postgres/0007_console.sql"),
    ),
    (
        8,
        "avatar_change_slots",
        include_str!("../../migrations/postgres/0008_avatar_change_slots.sql"),
    ),
    (
        9,
        "token_admin",
        include_str!("../../migrations/postgres/0009_token_admin.sql"),
    ),
    (
        10,
        "journal_filters",
        include_str!("../../migrations/postgres/0010_journal_filters.sql"),
    ),
    (
        11,
        "source_validators",
        include_str!("../../migrations/postgres/0011_source_validators.sql"),
    ),
    (
        12,
        "history_triggers",
        include_str!("../../migrations/postgres/0012_history_triggers.sql"),
    ),
];

/// PostgreSQL, for any number of instances sharing one database. Every guarantee
/// lives in the database (transactions, row locks), none in this process.
#[derive(Clone)]
pub struct PgRepo {
    pool: PgPool,
    /// The same pool: PostgreSQL takes many writers at once.
    writer: PgPool,
}

impl PgRepo {
    /// Connects to the existing database at `url` and applies migrations. sqlx takes
    /// an advisory lock around them, so instances starting together migrate once.
    /// `max_connections` per instance; instances × this must stay under the
    /// server's `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("gewe-server");
        // One connection first: a refused connection or a wrong password fails
        // at once with its reason, where the pool would retry until its acquire
        // timeout and then say only that it timed out.
        PgConnection::connect_with(&options).await?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        Ok(PgRepo {
            writer: pool.clone(),
            pool,
        })
    }
}

super::sql::impl_store!(PgRepo, sqlx::Postgres, for_update = " FOR UPDATE");
super::sql_login::impl_login_store!(PgRepo, sqlx::Postgres);
super::sql_personal::impl_personal_store!(PgRepo, sqlx::Postgres, for_update = " FOR UPDATE");
super::sql_outbox::impl_outbox!(
    PgRepo,
    sqlx::Postgres,
    skip_locked = " FOR UPDATE SKIP LOCKED",
    per_device_cap = 1
);
super::sql_control::impl_control_store!(
    PgRepo,
    sqlx::Postgres,
    lock_device = "UPDATE devices SET updated_at = updated_at WHERE app_id = $1"
);
super::sql_console::impl_console_store!(PgRepo, sqlx::Postgres);
super::sql_tokens::impl_token_admin!(PgRepo, sqlx::Postgres);
super::sql_maintenance::impl_maintenance!(PgRepo, sqlx::Postgres);
