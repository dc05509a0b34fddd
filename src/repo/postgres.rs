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
        4,
        "callbacks",
        include_str!("../../migrations/postgres/0004_callbacks.sql"),
    ),
];

/// Connections one instance keeps at most; instances × this must stay under the
/// server's `max_connections`.
pub const MAX_CONNECTIONS: u32 = 10;

/// PostgreSQL, for any number of instances sharing one database. Every guarantee
/// lives in the database (transactions, row locks), none in this process.
#[derive(Clone)]
pub struct PgRepo {
    pool: PgPool,
}

impl PgRepo {
    /// Connects to the existing database at `url` and applies migrations. sqlx takes
    /// an advisory lock around them, so instances starting together migrate once.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("gewe-server");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        Ok(PgRepo { pool })
    }
}

super::sql::impl_store!(PgRepo, sqlx::Postgres, for_update = " FOR UPDATE");
super::sql_outbox::impl_outbox!(
    PgRepo,
    sqlx::Postgres,
    skip_locked = " FOR UPDATE SKIP LOCKED"
);
