//! Callbacks and the outbox: every statement once, for both engines.
//!
//! `impl_outbox!` implements `CallbackStore` and `OutboxStore` for one engine's
//! repository type, and defines `outbox_insert`, the helper any other statement
//! file of the same engine calls INSIDE its own transaction to write the event a
//! change causes (logout and kick write `Offline` this way), e.g.
//!
//! ```ignore
//! let mut tx = self.writer.begin().await?;
//! // … the change itself …
//! outbox_insert(&mut tx, &NewEvent::offline(owner, app_id, &wxid, now)).await?;
//! tx.commit().await?;
//! ```
//!
//! Per appId, id order is delivery order: writers of one device's events hold
//! that device's row (`FOR UPDATE` on PostgreSQL) while they insert, so ids of
//! one appId commit in order.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::domain::{AppId, OutboxEvent, OutboxState, TokenId};

/// Deliveries marked by one statement: far under SQLite's 32766 and
/// PostgreSQL's 65535 bound values.
pub(super) const MARK_CHUNK: usize = 500;

/// Every outbox column a record needs, for `SELECT` and `RETURNING` alike.
macro_rules! outbox_columns {
    () => {
        "id, token_id, app_id, type_name, payload, state, attempts, created_at, age_from, \
         next_attempt_at, last_error, finished_at"
    };
}

/// Decodes a row of [`outbox_columns!`], from either engine.
pub(super) fn outbox_from_row<'r, R>(row: &'r R) -> Result<OutboxEvent, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database>,
{
    let state: String = row.try_get("state")?;
    Ok(OutboxEvent {
        id: row.try_get("id")?,
        owner: TokenId(row.try_get("token_id")?),
        app_id: AppId::from_trusted(row.try_get("app_id")?),
        type_name: row.try_get("type_name")?,
        payload: row.try_get("payload")?,
        state: OutboxState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad outbox state {state:?}").into()))?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        age_from: row.try_get("age_from")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Implements `CallbackStore` and `OutboxStore` for `$repo` (a struct with a
/// `pool` and a `writer` `sqlx::Pool<$db>` field), and defines `outbox_insert` in the engine's
/// module. `$skip_locked` ends the claim's inner `SELECT`: PostgreSQL's
/// `FOR UPDATE SKIP LOCKED` (instances claim different rows without waiting);
/// nothing for SQLite, where the claiming `UPDATE` holds the database's write
/// lock from its first step, so two claims never see the same free row.
/// `$per_device_cap` bounds how many events of one device a claim takes: any
/// number on SQLite; 1 (the head) on PostgreSQL, where an instance claiming
/// with a newer snapshot than another's would skip the rows the other has
/// locked and take the event behind them that the other did not see yet,
/// delivering it first.
macro_rules! impl_outbox {
    (
        $repo:ident,
        $db:ty,
        skip_locked = $skip_locked:literal,
        per_device_cap = $per_device_cap:expr
    ) => {
        /// Writes `event` to the outbox inside `tx`, if its token has a callback
        /// URL (answering the new id); nothing otherwise.
        pub(super) async fn outbox_insert(
            tx: &mut sqlx::Transaction<'_, $db>,
            event: &$crate::domain::NewEvent,
        ) -> Result<Option<i64>, sqlx::Error> {
            sqlx::query_scalar(
                "INSERT INTO outbox (token_id, app_id, type_name, payload, state, attempts, \
                 created_at, age_from, next_attempt_at) \
                 SELECT $1, $2, $3, $4, 'pending', 0, $5, $5, $5 \
                 WHERE EXISTS (SELECT 1 FROM callbacks WHERE token_id = $1) \
                 RETURNING id",
            )
            .bind(event.owner.0)
            .bind(event.app_id.as_str())
            .bind(event.type_name)
            .bind(&event.payload)
            .bind(event.created_at)
            .fetch_optional(&mut **tx)
            .await
        }

        /// Claims as `OutboxStore::settle_and_claim` says, on `conn` (the writer).
        async fn outbox_claim(
            conn: &mut <$db as sqlx::Database>::Connection,
            now: i64,
            lease: &$crate::domain::Lease,
            devices: i64,
            per_device: i64,
        ) -> Result<Vec<$crate::domain::OutboxEvent>, $crate::domain::StoreError> {
            // Only each appId's oldest pending event, its head, may be
            // tried (callbacks of one device arrive in order). Heads are
            // found by skipping through the (state, app_id, id) index one
            // appId at a time, so a claim costs a few lookups per device
            // with events waiting, not a visit to every waiting event: a
            // deep backlog (a slow or dead receiver) used to make every
            // claim, on the database's one writer, slower for everyone.
            // With a due head come the events queued behind it, up to the
            // `per_device`-th: they were never tried (only heads are), so
            // whoever holds the head holds the device, and a backlog drains
            // in a few claims instead of one claim per event.
            // The CASTs keep the limits values, not constants SQLite's
            // planner looks at: a bare `LIMIT $4` made it prepare the
            // statement anew for every new number of free slots.
            let rows = sqlx::query(concat!(
                "UPDATE outbox SET lease_holder = $1, lease_until = $2, \
                 attempts = attempts + 1 \
                 WHERE id IN (WITH RECURSIVE apps(app_id) AS ( \
                   SELECT (SELECT MIN(f.app_id) FROM outbox f WHERE f.state = 'pending') \
                   UNION ALL \
                   SELECT (SELECT MIN(n.app_id) FROM outbox n \
                     WHERE n.state = 'pending' AND n.app_id > apps.app_id) \
                   FROM apps WHERE apps.app_id IS NOT NULL), \
                 heads AS (SELECT o.id, o.app_id FROM outbox o \
                   WHERE o.id IN (SELECT (SELECT MIN(h.id) FROM outbox h \
                     WHERE h.state = 'pending' AND h.app_id = apps.app_id) \
                     FROM apps WHERE apps.app_id IS NOT NULL) \
                   AND o.next_attempt_at <= $3 \
                   AND (o.lease_until IS NULL OR o.lease_until <= $3) \
                   ORDER BY o.id LIMIT CAST($4 AS BIGINT)",
                $skip_locked,
                ") SELECT q.id FROM heads JOIN outbox q ON q.app_id = heads.app_id \
                 WHERE q.state = 'pending' AND q.id >= heads.id \
                 AND (q.lease_until IS NULL OR q.lease_until <= $3) \
                 AND q.id < COALESCE((SELECT b.id FROM outbox b \
                   WHERE b.state = 'pending' AND b.app_id = heads.app_id \
                   ORDER BY b.id LIMIT 1 OFFSET CAST($5 AS BIGINT)), \
                   9223372036854775807)) RETURNING ",
                super::sql_outbox::outbox_columns!()
            ))
            .bind(&lease.holder)
            .bind(lease.until)
            .bind(now)
            .bind(devices)
            .bind(per_device.clamp(1, $per_device_cap))
            .fetch_all(&mut *conn)
            .await?;
            let mut events = rows
                .iter()
                .map(super::sql_outbox::outbox_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            events.sort_by_key(|e| e.id);
            Ok(events)
        }

        /// Marks as `OutboxStore::mark_delivered` says, on `conn` (the writer).
        async fn outbox_mark_delivered(
            conn: &mut <$db as sqlx::Database>::Connection,
            ids: &[i64],
            holder: &str,
            now: i64,
        ) -> Result<u64, $crate::domain::StoreError> {
            // One statement per batch: one round trip to the one writer,
            // however many deliveries came back together (in chunks well
            // under either engine's limit on bound values). Each statement
            // stands alone: ids a failed one leaves pending are sent again.
            let mut held = 0;
            for chunk in ids.chunks(super::sql_outbox::MARK_CHUNK) {
                let mut sql = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE outbox SET state = 'delivered', last_error = NULL, \
                     lease_holder = NULL, lease_until = NULL, finished_at = ",
                );
                sql.push_bind(now)
                    .push(" WHERE state = 'pending' AND lease_holder = ")
                    .push_bind(holder)
                    .push(" AND id IN (");
                let mut listed = sql.separated(", ");
                for id in chunk {
                    listed.push_bind(*id);
                }
                sql.push(")");
                held += sql.build().execute(&mut *conn).await?.rows_affected();
            }
            Ok(held)
        }

        #[async_trait::async_trait]
        impl $crate::domain::CallbackStore for $repo {
            async fn set_callback_url(
                &self,
                owner: $crate::domain::TokenId,
                url: &str,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query(
                    "INSERT INTO callbacks (token_id, url, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (token_id) DO UPDATE SET url = excluded.url, \
                     updated_at = excluded.updated_at",
                )
                .bind(owner.0)
                .bind(url)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn callback_url(
                &self,
                owner: $crate::domain::TokenId,
            ) -> Result<Option<String>, $crate::domain::StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT url FROM callbacks WHERE token_id = $1")
                        .bind(owner.0)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::OutboxStore for $repo {
            async fn enqueue_event(
                &self,
                event: &$crate::domain::NewEvent,
            ) -> Result<Option<i64>, $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                let id = outbox_insert(&mut tx, event).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn settle_and_claim(
                &self,
                delivered: &[i64],
                now: i64,
                lease: &$crate::domain::Lease,
                devices: i64,
                per_device: i64,
            ) -> Result<(u64, Vec<$crate::domain::OutboxEvent>), $crate::domain::StoreError> {
                // One wait for the writer, not two: under load the wait behind
                // other transactions, not the statements, is what a turn costs.
                let mut conn = self.writer.acquire().await?;
                let held = outbox_mark_delivered(&mut conn, delivered, &lease.holder, now).await?;
                let claimed = outbox_claim(&mut conn, now, lease, devices, per_device).await?;
                Ok((held, claimed))
            }

            async fn release_events(
                &self,
                ids: &[i64],
                holder: &str,
            ) -> Result<u64, $crate::domain::StoreError> {
                let mut released = 0;
                for chunk in ids.chunks(super::sql_outbox::MARK_CHUNK) {
                    let mut sql = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE outbox SET lease_holder = NULL, lease_until = NULL, \
                         attempts = attempts - 1 WHERE state = 'pending' AND lease_holder = ",
                    );
                    sql.push_bind(holder).push(" AND id IN (");
                    let mut listed = sql.separated(", ");
                    for id in chunk {
                        listed.push_bind(*id);
                    }
                    sql.push(")");
                    released += sql.build().execute(&self.writer).await?.rows_affected();
                }
                Ok(released)
            }

            async fn mark_delivered(
                &self,
                ids: &[i64],
                holder: &str,
                now: i64,
            ) -> Result<u64, $crate::domain::StoreError> {
                let mut conn = self.writer.acquire().await?;
                outbox_mark_delivered(&mut conn, ids, holder, now).await
            }

            async fn schedule_retry(
                &self,
                id: i64,
                holder: &str,
                next_attempt_at: i64,
                error: &str,
            ) -> Result<bool, $crate::domain::StoreError> {
                let done = sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $3, last_error = $4, \
                     lease_holder = NULL, lease_until = NULL \
                     WHERE id = $1 AND lease_holder = $2 AND state = 'pending'",
                )
                .bind(id)
                .bind(holder)
                .bind(next_attempt_at)
                .bind(error)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn mark_failed(
                &self,
                id: i64,
                holder: &str,
                now: i64,
                error: &str,
            ) -> Result<bool, $crate::domain::StoreError> {
                let done = sqlx::query(
                    "UPDATE outbox SET state = 'failed', finished_at = $3, last_error = $4, \
                     lease_holder = NULL, lease_until = NULL \
                     WHERE id = $1 AND lease_holder = $2 AND state = 'pending'",
                )
                .bind(id)
                .bind(holder)
                .bind(now)
                .bind(error)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_events(
                &self,
                owner: $crate::domain::TokenId,
                failed_only: bool,
                limit: i64,
            ) -> Result<Vec<$crate::domain::OutboxEvent>, $crate::domain::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    super::sql_outbox::outbox_columns!(),
                    " FROM outbox WHERE token_id = $1 AND (state = 'failed' OR $2 = 0) \
                     ORDER BY id DESC LIMIT $3"
                ))
                .bind(owner.0)
                .bind(i64::from(failed_only))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(super::sql_outbox::outbox_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn find_event(
                &self,
                id: i64,
            ) -> Result<Option<$crate::domain::OutboxEvent>, $crate::domain::StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    super::sql_outbox::outbox_columns!(),
                    " FROM outbox WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row
                    .as_ref()
                    .map(super::sql_outbox::outbox_from_row)
                    .transpose()?)
            }

            async fn retry_event(
                &self,
                id: i64,
                now: i64,
            ) -> Result<bool, $crate::domain::StoreError> {
                // A pending event in flight (live lease) is left alone: clearing
                // its lease could send it twice at once.
                let done = sqlx::query(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = $2, age_from = $2, \
                     finished_at = NULL, lease_holder = NULL, lease_until = NULL \
                     WHERE id = $1 AND (state = 'failed' OR (state = 'pending' \
                     AND (lease_until IS NULL OR lease_until <= $2)))",
                )
                .bind(id)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn prune_delivered(
                &self,
                before: i64,
            ) -> Result<u64, $crate::domain::StoreError> {
                let done = sqlx::query(
                    "DELETE FROM outbox WHERE state = 'delivered' AND finished_at < $1",
                )
                .bind(before)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(super) use {impl_outbox, outbox_columns};
