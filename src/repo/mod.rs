//! The store, implemented for two engines: SQLite (the embedded default) and
//! PostgreSQL (for many instances sharing one database).
//!
//! Every statement is written once, in `sql.rs`, with `$N` placeholders (which
//! sqlx's SQLite driver binds by number too); the engine files hold only what
//! differs: connection options, migrations and row locking.
//!
//! Statements that write go to `writer`, the others to `pool`. On PostgreSQL
//! both are the same pool. On SQLite, which takes one writer at a time,
//! `writer` is one connection: the process's writers queue for it in order,
//! where on separate connections they met SQLite's busy handler, which sleeps
//! 1, 2, 5 … 100 ms between tries and made a busy outbox wait seconds.

mod postgres;
mod sql;
mod sql_console;
mod sql_control;
mod sql_login;
mod sql_maintenance;
mod sql_outbox;
mod sql_personal;
mod sql_tokens;
mod sqlite;

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{ColumnIndex, Decode, Row, SqlSafeStr, Type};

pub use postgres::PgRepo;
pub use sqlite::SqliteRepo;

use crate::domain::{AccountRecord, AppId, AvatarId, HistoryEntry, StoreError, Wxid};

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Backend(Box::new(err))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Backend(Box::new(err))
    }
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

fn conflict_or(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => err.into(),
    }
}

/// An avatar id read back from the database; a malformed one is a corrupt row.
fn avatar_id(text: &str) -> Result<AvatarId, sqlx::Error> {
    AvatarId::parse(text).map_err(|_| sqlx::Error::Decode(format!("bad avatar id {text:?}").into()))
}

/// Decodes a row of `sql::select_accounts!`, from either engine.
fn account_from_row<'r, R>(row: &'r R) -> Result<AccountRecord, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(AccountRecord {
        app_id: AppId::from_trusted(row.try_get("app_id")?),
        wxid: Wxid::from_trusted(row.try_get("wxid")?),
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
        avatar_id: avatar_id(&row.try_get::<String, _>("avatar_id")?)?,
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
        avatar_id: avatar_id(&row.try_get::<String, _>("avatar_id")?)?,
        source_url: row.try_get("source_url")?,
        changed_at: row.try_get("changed_at")?,
    })
}
