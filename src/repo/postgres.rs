use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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
];

/// PostgreSQL, for any number of instances sharing one database. Every guarantee
/// lives in the database (transactions, row locks), none in this process.
#[derive(Clone)]
pub struct PgRepo {
    pool: PgPool,
}

impl PgRepo {
    /// Connects to the existing database at `url` and applies migrations. sqlx takes
    /// an advisory lock around them, so instances starting together migrate once.
    /// `max_connections` per instance; instances × this must stay under the
    /// server's `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("gewe-server");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        Ok(PgRepo { pool })
    }
}

super::sql::impl_store!(PgRepo, sqlx::Postgres, for_update = " FOR UPDATE");
super::sql_login::impl_login_store!(PgRepo, sqlx::Postgres);
super::sql_personal::impl_personal_store!(PgRepo, sqlx::Postgres, for_update = " FOR UPDATE");
super::sql_outbox::impl_outbox!(
    PgRepo,
    sqlx::Postgres,
    skip_locked = " FOR UPDATE SKIP LOCKED"
);
super::sql_maintenance::impl_maintenance!(PgRepo, sqlx::Postgres);
