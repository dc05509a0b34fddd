//! The control plane's statements, written once: operator keys, contacts,
//! messages, the journal and fault rules.
//!
//! `impl_control_store!` implements `ControlStore` for one engine's repository
//! type; messages write their callback event through the engine's
//! `outbox_insert` (from `sql_outbox.rs`) in the same transaction.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::domain::{
    AppId, ContactRecord, Direction, FaultRule, JournalEntry, MessageRecord, TokenId,
};

macro_rules! fault_columns {
    () => {
        "id, token_id, route, app_id, answer, delay_ms, close, remaining, probability, seed, \
         draws, hits, expires_at, created_at"
    };
}

macro_rules! journal_columns {
    () => {
        "id, token_id, at_ms, route, app_id, request, response, duration_ms"
    };
}

macro_rules! message_columns {
    () => {
        "app_id, direction, peer, sender, content, msg_id, new_msg_id, msg_seq, created_at"
    };
}

/// The live rules that match a call: `$1` token (or NULL), `$2` route, `$3`
/// appId (or NULL), `$4` now.
macro_rules! live_fault_match {
    () => {
        "(token_id IS NULL OR token_id = $1) AND route = $2 \
         AND (app_id IS NULL OR app_id = $3) AND (expires_at IS NULL OR expires_at > $4) \
         AND (remaining IS NULL OR remaining > 0)"
    };
}

pub(super) use {fault_columns, journal_columns, live_fault_match, message_columns};

fn bad(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(what.to_owned().into())
}

pub(super) fn contact_from_row<'r, R>(row: &'r R) -> Result<ContactRecord, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let avatar: String = row.try_get("avatar_id")?;
    Ok(ContactRecord {
        wxid: row.try_get("wxid")?,
        nick_name: row.try_get("nick_name")?,
        avatar_id: super::avatar_id(&avatar)?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn message_from_row<'r, R>(row: &'r R) -> Result<MessageRecord, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let direction: String = row.try_get("direction")?;
    Ok(MessageRecord {
        app_id: AppId::from_trusted(row.try_get("app_id")?),
        direction: Direction::parse(&direction).ok_or_else(|| bad("bad message direction"))?,
        peer: row.try_get("peer")?,
        sender: row.try_get("sender")?,
        content: row.try_get("content")?,
        msg_id: row.try_get("msg_id")?,
        new_msg_id: row.try_get("new_msg_id")?,
        msg_seq: row.try_get("msg_seq")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn journal_from_row<'r, R>(row: &'r R) -> Result<JournalEntry, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database>,
{
    Ok(JournalEntry {
        id: row.try_get("id")?,
        owner: row.try_get::<Option<i64>, _>("token_id")?.map(TokenId),
        at_ms: row.try_get("at_ms")?,
        route: row.try_get("route")?,
        app_id: row.try_get("app_id")?,
        request: row.try_get("request")?,
        response: row.try_get("response")?,
        duration_ms: row.try_get("duration_ms")?,
    })
}

pub(super) fn fault_from_row<'r, R>(row: &'r R) -> Result<FaultRule, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database>,
    f64: Type<R::Database>,
    Option<f64>: Decode<'r, R::Database>,
{
    Ok(FaultRule {
        id: row.try_get("id")?,
        owner: row.try_get::<Option<i64>, _>("token_id")?.map(TokenId),
        route: row.try_get("route")?,
        app_id: row.try_get("app_id")?,
        answer: row.try_get("answer")?,
        delay_ms: row.try_get("delay_ms")?,
        close: row.try_get::<i64, _>("close")? != 0,
        remaining: row.try_get("remaining")?,
        probability: row.try_get("probability")?,
        seed: row.try_get("seed")?,
        draws: row.try_get("draws")?,
        hits: row.try_get("hits")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Implements `ControlStore` for `$repo` (a struct with `pool` and `writer`
/// `sqlx::Pool<$db>` fields) in an engine module that also invoked `impl_outbox!`.
/// `$lock_device` (binding the appId as `$1`) is what a message's transaction
/// runs first so that one device's events commit in id order, as logout and
/// kick hold the device's row: PostgreSQL's row lock; nothing on SQLite, whose
/// first write takes the database's one write lock, ids included, until commit.
macro_rules! impl_control_store {
    ($repo:ident, $db:ty, lock_device = $lock_device:literal) => {
        #[async_trait::async_trait]
        impl $crate::domain::ControlStore for $repo {
            async fn insert_operator_key(
                &self,
                key_hash: &str,
                label: Option<&str>,
                now: i64,
            ) -> Result<i64, $crate::domain::StoreError> {
                sqlx::query_scalar(
                    "INSERT INTO operator_keys (key_hash, label, created_at) VALUES ($1, $2, $3) \
                     RETURNING id",
                )
                .bind(key_hash)
                .bind(label)
                .bind(now)
                .fetch_one(&self.writer)
                .await
                .map_err(|e| super::conflict_or(e, "operator key"))
            }

            async fn operator_key_exists(
                &self,
                key_hash: &str,
            ) -> Result<bool, $crate::domain::StoreError> {
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM operator_keys WHERE key_hash = $1")
                        .bind(key_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(found.is_some())
            }

            async fn count_operator_keys(&self) -> Result<i64, $crate::domain::StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM operator_keys")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn account_owner(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Option<$crate::domain::TokenId>, $crate::domain::StoreError> {
                let owner: Option<i64> =
                    sqlx::query_scalar("SELECT token_id FROM accounts WHERE app_id = $1")
                        .bind(app_id.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(owner.map($crate::domain::TokenId))
            }

            async fn find_contact(
                &self,
                app_id: &$crate::domain::AppId,
                wxid: &str,
            ) -> Result<Option<$crate::domain::ContactRecord>, $crate::domain::StoreError> {
                let row = sqlx::query(
                    "SELECT wxid, nick_name, avatar_id, created_at FROM contacts \
                     WHERE app_id = $1 AND wxid = $2",
                )
                .bind(app_id.as_str())
                .bind(wxid)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row
                    .as_ref()
                    .map(super::sql_control::contact_from_row)
                    .transpose()?)
            }

            async fn upsert_contact(
                &self,
                app_id: &$crate::domain::AppId,
                wxid: &str,
                nick_name: &str,
                avatar: &$crate::domain::AvatarRecord,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                sqlx::query(
                    "INSERT INTO avatars (id, side, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(avatar.id.to_string())
                .bind(i64::from(avatar.side))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO contacts (app_id, wxid, nick_name, avatar_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (app_id, wxid) DO UPDATE SET nick_name = excluded.nick_name",
                )
                .bind(app_id.as_str())
                .bind(wxid)
                .bind(nick_name)
                .bind(avatar.id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_contacts(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Vec<$crate::domain::ContactRecord>, $crate::domain::StoreError> {
                let rows = sqlx::query(
                    "SELECT wxid, nick_name, avatar_id, created_at FROM contacts \
                     WHERE app_id = $1 ORDER BY wxid",
                )
                .bind(app_id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(super::sql_control::contact_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn insert_message(
                &self,
                message: &$crate::domain::MessageRecord,
                event: Option<&$crate::domain::NewEvent>,
            ) -> Result<Option<i64>, $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                if !$lock_device.is_empty() {
                    sqlx::query($lock_device)
                        .bind(message.app_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(concat!(
                    "INSERT INTO messages (",
                    super::sql_control::message_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(message.app_id.as_str())
                .bind(message.direction.as_str())
                .bind(&message.peer)
                .bind(&message.sender)
                .bind(&message.content)
                .bind(message.msg_id)
                .bind(message.new_msg_id)
                .bind(message.msg_seq)
                .bind(message.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| super::conflict_or(e, "message id"))?;
                let event_id = match event {
                    Some(event) => outbox_insert(&mut tx, event).await?,
                    None => None,
                };
                tx.commit().await?;
                Ok(event_id)
            }

            async fn list_messages(
                &self,
                app_id: &$crate::domain::AppId,
                limit: i64,
            ) -> Result<Vec<$crate::domain::MessageRecord>, $crate::domain::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    super::sql_control::message_columns!(),
                    " FROM (SELECT * FROM messages WHERE app_id = $1 ORDER BY id DESC LIMIT $2) \
                     AS newest ORDER BY id"
                ))
                .bind(app_id.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(super::sql_control::message_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn append_journal(
                &self,
                entry: &$crate::domain::JournalEntry,
                trim_to: Option<i64>,
            ) -> Result<(), $crate::domain::StoreError> {
                let owner = entry.owner.map(|o| o.0);
                sqlx::query(
                    "INSERT INTO journal (token_id, at_ms, route, app_id, request, response, \
                     duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(owner)
                .bind(entry.at_ms)
                .bind(&entry.route)
                .bind(entry.app_id.as_deref())
                .bind(&entry.request)
                .bind(&entry.response)
                .bind(entry.duration_ms)
                .execute(&self.writer)
                .await?;
                if let Some(keep) = trim_to {
                    // `= $1` and `IS NULL` written out, not `IS NOT DISTINCT FROM`,
                    // which PostgreSQL cannot answer from the index.
                    let keep = keep.max(1);
                    let trim = match owner {
                        Some(owner) => sqlx::query(
                            "DELETE FROM journal WHERE token_id = $1 AND id <= \
                             (SELECT id FROM journal WHERE token_id = $1 \
                              ORDER BY id DESC LIMIT 1 OFFSET $2)",
                        )
                        .bind(owner)
                        .bind(keep),
                        None => sqlx::query(
                            "DELETE FROM journal WHERE token_id IS NULL AND id <= \
                             (SELECT id FROM journal WHERE token_id IS NULL \
                              ORDER BY id DESC LIMIT 1 OFFSET $1)",
                        )
                        .bind(keep),
                    };
                    trim.execute(&self.writer).await?;
                }
                Ok(())
            }

            async fn query_journal(
                &self,
                query: &$crate::domain::JournalQuery,
            ) -> Result<Vec<$crate::domain::JournalEntry>, $crate::domain::StoreError> {
                // Only the filters given are written, so each is a plain
                // condition the planner can answer from an index (`id > …` from
                // the key, `token_id = …` from journal_token); `$n IS NULL OR …`
                // would read the whole table whenever fewer rows match than
                // the limit, as an `afterId` poll does.
                let mut sql = sqlx::QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    super::sql_control::journal_columns!(),
                    " FROM (SELECT * FROM journal WHERE 1 = 1"
                ));
                if let Some(owner) = query.owner {
                    sql.push(" AND token_id = ").push_bind(owner.0);
                }
                if let Some(route) = &query.route {
                    sql.push(" AND route = ").push_bind(route.clone());
                }
                if let Some(app_id) = &query.app_id {
                    sql.push(" AND app_id = ").push_bind(app_id.clone());
                }
                if let Some(since_ms) = query.since_ms {
                    sql.push(" AND at_ms >= ").push_bind(since_ms);
                }
                if let Some(after_id) = query.after_id {
                    sql.push(" AND id > ").push_bind(after_id);
                }
                sql.push(" ORDER BY id DESC LIMIT ")
                    .push_bind(query.limit)
                    .push(") AS newest ORDER BY id");
                let rows = sql.build().fetch_all(&self.pool).await?;
                Ok(rows
                    .iter()
                    .map(super::sql_control::journal_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn clear_journal(
                &self,
                owner: Option<$crate::domain::TokenId>,
            ) -> Result<u64, $crate::domain::StoreError> {
                Ok(
                    sqlx::query("DELETE FROM journal WHERE $1 IS NULL OR token_id = $1")
                        .bind(owner.map(|o| o.0))
                        .execute(&self.writer)
                        .await?
                        .rows_affected(),
                )
            }

            async fn insert_fault(
                &self,
                rule: &$crate::domain::FaultRule,
            ) -> Result<i64, $crate::domain::StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO fault_rules (token_id, route, app_id, answer, delay_ms, close, \
                     remaining, probability, seed, draws, hits, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $11) RETURNING id",
                )
                .bind(rule.owner.map(|o| o.0))
                .bind(&rule.route)
                .bind(rule.app_id.as_deref())
                .bind(rule.answer.as_deref())
                .bind(rule.delay_ms)
                .bind(i64::from(rule.close))
                .bind(rule.remaining)
                .bind(rule.probability)
                .bind(rule.seed)
                .bind(rule.expires_at)
                .bind(rule.created_at)
                .fetch_one(&self.writer)
                .await?)
            }

            async fn list_faults(
                &self,
                owner: Option<$crate::domain::TokenId>,
            ) -> Result<Vec<$crate::domain::FaultRule>, $crate::domain::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    super::sql_control::fault_columns!(),
                    " FROM fault_rules WHERE $1 IS NULL OR token_id = $1 OR token_id IS NULL \
                     ORDER BY id"
                ))
                .bind(owner.map(|o| o.0))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(super::sql_control::fault_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn clear_faults(
                &self,
                owner: Option<$crate::domain::TokenId>,
            ) -> Result<u64, $crate::domain::StoreError> {
                Ok(
                    sqlx::query("DELETE FROM fault_rules WHERE $1 IS NULL OR token_id = $1")
                        .bind(owner.map(|o| o.0))
                        .execute(&self.writer)
                        .await?
                        .rows_affected(),
                )
            }

            async fn take_fault(
                &self,
                owner: Option<$crate::domain::TokenId>,
                route: &str,
                app_id: Option<&str>,
                now: i64,
                draw: $crate::domain::FaultDraw<'_>,
            ) -> Result<Option<$crate::domain::FaultRule>, $crate::domain::StoreError> {
                // Most calls match no rule: a plain read answers them without
                // taking any write lock.
                let candidates: i64 = sqlx::query_scalar(concat!(
                    "SELECT COUNT(*) FROM fault_rules WHERE ",
                    super::sql_control::live_fault_match!()
                ))
                .bind(owner.map(|o| o.0))
                .bind(route)
                .bind(app_id)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                if candidates == 0 {
                    return Ok(None);
                }
                let mut tx = self.writer.begin().await?;
                // Counting a draw first takes SQLite's write lock and PostgreSQL's
                // row locks, so racing calls see each other's counts.
                let rows = sqlx::query(concat!(
                    "UPDATE fault_rules SET draws = draws + 1 WHERE ",
                    super::sql_control::live_fault_match!(),
                    " RETURNING ",
                    super::sql_control::fault_columns!()
                ))
                .bind(owner.map(|o| o.0))
                .bind(route)
                .bind(app_id)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                let mut rules = rows
                    .iter()
                    .map(super::sql_control::fault_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                rules.sort_by_key(|r| r.id);
                // The draw a rule makes is the one its count was before this call.
                let taken = rules.into_iter().find(|rule| {
                    let mut before = rule.clone();
                    before.draws -= 1;
                    draw(&before)
                });
                if let Some(rule) = &taken {
                    sqlx::query(
                        "UPDATE fault_rules SET hits = hits + 1, \
                         remaining = CASE WHEN remaining IS NULL THEN NULL ELSE remaining - 1 END \
                         WHERE id = $1",
                    )
                    .bind(rule.id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(taken)
            }

            async fn reset_owner(
                &self,
                owner: $crate::domain::TokenId,
            ) -> Result<u64, $crate::domain::StoreError> {
                // Children first: their rows name the accounts being deleted.
                const BY_ACCOUNT: [&str; 7] = [
                    "DELETE FROM avatar_change_slots WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                    "DELETE FROM contacts WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                    "DELETE FROM messages WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                    "DELETE FROM avatar_history WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                    "DELETE FROM profile_history WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                    "DELETE FROM login_devices WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                    "DELETE FROM privacy_settings WHERE app_id IN (SELECT app_id FROM accounts WHERE token_id = $1)",
                ];
                const BY_TOKEN: [&str; 4] = [
                    "DELETE FROM login_sessions WHERE token_id = $1",
                    "DELETE FROM outbox WHERE token_id = $1",
                    "DELETE FROM journal WHERE token_id = $1",
                    "DELETE FROM fault_rules WHERE token_id = $1",
                ];
                let mut tx = self.writer.begin().await?;
                for statement in BY_ACCOUNT {
                    sqlx::query(statement).bind(owner.0).execute(&mut *tx).await?;
                }
                let accounts = sqlx::query("DELETE FROM accounts WHERE token_id = $1")
                    .bind(owner.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let devices = sqlx::query("DELETE FROM devices WHERE token_id = $1")
                    .bind(owner.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                for statement in BY_TOKEN {
                    sqlx::query(statement).bind(owner.0).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(accounts.max(devices))
            }
        }
    };
}

pub(super) use impl_control_store;
