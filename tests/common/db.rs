//! The server's database read directly, in the engine of the test's backend:
//! what tests check behind the server's back (rows, invariants, the schema).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::services::shared_data_of;

/// The server's database, in the engine of the test's backend.
pub enum Db {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Db {
    pub async fn open(data_dir: &Path) -> Db {
        match shared_data_of(data_dir) {
            None => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(
                        SqliteConnectOptions::new()
                            .filename(data_dir.join("gewe.db"))
                            .read_only(true),
                    )
                    .await
                    .unwrap(),
            ),
            Some(shared) => Db::Pg(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&shared.database_url)
                    .await
                    .unwrap(),
            ),
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "SQLite",
            Db::Pg(_) => "PostgreSQL",
        }
    }

    /// The engine's own checks: SQLite can verify its file and its foreign keys;
    /// PostgreSQL enforces foreign keys on every write, checked below anyway.
    pub async fn check_engine(&self) {
        let Db::Sqlite(db) = self else { return };
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(integrity, "ok");
        let dangling = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(db)
            .await
            .unwrap();
        assert!(
            dangling.is_empty(),
            "{} rows violate foreign keys",
            dangling.len()
        );
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        match self {
            Db::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(db).await,
            Db::Pg(db) => sqlx::query_scalar(sql).fetch_one(db).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `(avatar_id, source_url)` of every history row of `app_id`, oldest first.
    pub async fn history(&self, app_id: &str) -> Vec<(String, Option<String>)> {
        const SQL: &str = "SELECT avatar_id, source_url FROM avatar_history \
             WHERE app_id = $1 ORDER BY id";
        match self {
            Db::Sqlite(db) => sqlx::query_as(SQL).bind(app_id).fetch_all(db).await,
            Db::Pg(db) => sqlx::query_as(SQL).bind(app_id).fetch_all(db).await,
        }
        .unwrap()
    }

    pub async fn avatar_ids(&self) -> HashSet<String> {
        const SQL: &str = "SELECT id FROM avatars";
        match self {
            Db::Sqlite(db) => sqlx::query_scalar(SQL).fetch_all(db).await,
            Db::Pg(db) => sqlx::query_scalar(SQL).fetch_all(db).await,
        }
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Every `(table, column)` of the schema, migrations' bookkeeping aside.
    pub async fn columns(&self) -> BTreeSet<(String, String)> {
        match self {
            Db::Sqlite(db) => {
                sqlx::query_as(
                    "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                 AND m.name <> '_sqlx_migrations'",
                )
                .fetch_all(db)
                .await
            }
            Db::Pg(db) => {
                sqlx::query_as(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
                )
                .fetch_all(db)
                .await
            }
        }
        .unwrap()
        .into_iter()
        .collect()
    }
}
