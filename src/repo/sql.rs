//! Every statement of the store, written once.
//!
//! `impl_store!` implements the domain's store traits for one engine's repository
//! type; each engine file invokes it with its sqlx database type and the one
//! clause that differs between the dialects (row locking).

/// `SELECT <every account column> FROM accounts <rest>`, as one `&'static str`;
/// rows decode with `account_from_row`.
macro_rules! select_accounts {
    ($rest:literal) => {
        concat!(
            "SELECT app_id, wxid, nick_name, alias, mobile, uin, sex, province, city, ",
            "signature, country, reg_country, sns_bg_img, avatar_id FROM accounts ",
            $rest
        )
    };
}

/// Implements `Repository`, `TokenStore` and `AccountStore` for `$repo` (a struct
/// with `pool` and `writer` `sqlx::Pool<$db>` fields). `$for_update` is appended to the read of
/// the row an avatar change rewrites: PostgreSQL's `FOR UPDATE`, nothing for
/// SQLite, where the transaction's first write already holds the database lock.
macro_rules! impl_store {
    ($repo:ident, $db:ty, for_update = $for_update:literal) => {
        #[async_trait::async_trait]
        impl $crate::domain::Repository for $repo {
            async fn ping(&self) -> Result<(), $crate::domain::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::TokenStore for $repo {
            async fn insert_token(
                &self,
                token_hash: &str,
                label: Option<&str>,
                now: i64,
            ) -> Result<$crate::domain::TokenId, $crate::domain::StoreError> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tokens (token_hash, label, created_at) VALUES ($1, $2, $3) \
                     RETURNING id",
                )
                .bind(token_hash)
                .bind(label)
                .bind(now)
                .fetch_one(&self.writer)
                .await
                .map_err(|e| super::conflict_or(e, "token"))?;
                Ok($crate::domain::TokenId(id))
            }

            async fn find_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::domain::TokenId>, $crate::domain::StoreError> {
                let id: Option<i64> =
                    sqlx::query_scalar(
                    "SELECT id FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(id.map($crate::domain::TokenId))
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::AccountStore for $repo {
            async fn insert_account(
                &self,
                owner: $crate::domain::TokenId,
                account: &$crate::domain::AccountRecord,
                avatar: &$crate::domain::AvatarRecord,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                insert_account_rows(&mut tx, owner, account, avatar, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_account(
                &self,
                owner: $crate::domain::TokenId,
                app_id: &$crate::domain::AppId,
            ) -> Result<Option<$crate::domain::AccountRecord>, $crate::domain::StoreError> {
                let row = sqlx::query(super::sql::select_accounts!(
                    "WHERE app_id = $1 AND token_id = $2"
                ))
                .bind(app_id.as_str())
                .bind(owner.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(super::account_from_row).transpose()?)
            }

            async fn list_accounts(
                &self,
                owner: $crate::domain::TokenId,
            ) -> Result<Vec<$crate::domain::AccountRecord>, $crate::domain::StoreError> {
                let rows = sqlx::query(super::sql::select_accounts!(
                    "WHERE token_id = $1 ORDER BY created_at, app_id"
                ))
                .bind(owner.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(super::account_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn set_avatar(
                &self,
                owner: $crate::domain::TokenId,
                app_id: &$crate::domain::AppId,
                avatar: &$crate::domain::AvatarRecord,
                source: &$crate::domain::AvatarSource<'_>,
                now: i64,
            ) -> Result<Option<$crate::domain::AvatarChange>, $crate::domain::StoreError> {
                use $crate::domain::AvatarChange;
                let new_id = avatar.id.to_string();
                // Only the pointer moves (the avatar is stored, the source brought
                // nothing new, no change-limit slot): one statement, which the
                // history trigger makes whole, outside any transaction.
                if source.stored && source.hash.is_none() && source.slot.is_none() {
                    let moved =
                        move_avatar(&self.writer, owner, app_id, &new_id, source.url, now).await?;
                    if moved {
                        return Ok(Some(AvatarChange::Changed));
                    }
                    let owned: Option<String> = sqlx::query_scalar(
                        "SELECT app_id FROM accounts WHERE app_id = $1 AND token_id = $2",
                    )
                    .bind(app_id.as_str())
                    .bind(owner.0)
                    .fetch_optional(&self.pool)
                    .await?;
                    return Ok(owned.map(|_| AvatarChange::Unchanged));
                }
                let mut tx = self.writer.begin().await?;
                // The avatar row first, then the account row, in every writer: updates
                // queue but never deadlock. On SQLite the first write (this one, or
                // the UPDATE below) takes the database's write lock before anything
                // is read, so concurrent updates queue instead of failing with
                // BUSY_SNAPSHOT.
                if !source.stored {
                    insert_avatar(&mut tx, avatar, now).await?;
                }
                let moved = move_avatar(&mut *tx, owner, app_id, &new_id, source.url, now).await?;
                // Nothing moved: the pointer was already there, or the account is
                // not the owner's.
                if !moved {
                    let owned: Option<String> = sqlx::query_scalar(concat!(
                        "SELECT app_id FROM accounts WHERE app_id = $1 AND token_id = $2",
                        $for_update
                    ))
                    .bind(app_id.as_str())
                    .bind(owner.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if owned.is_none() {
                        return Ok(None);
                    }
                }
                if let Some(hash) = source.hash {
                    sqlx::query(
                        "INSERT INTO avatar_sources (source_hash, avatar_id, created_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (source_hash) DO NOTHING",
                    )
                    .bind(hash)
                    .bind(&new_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let validator = match source.etag {
                        Some(etag) => sqlx::query(
                            "INSERT INTO source_validators (url, etag, source_hash, seen_at) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (url) DO UPDATE SET \
                             etag = excluded.etag, source_hash = excluded.source_hash, \
                             seen_at = excluded.seen_at",
                        )
                        .bind(source.url)
                        .bind(etag)
                        .bind(hash)
                        .bind(now),
                        None => sqlx::query("DELETE FROM source_validators WHERE url = $1")
                            .bind(source.url),
                    };
                    validator.execute(&mut *tx).await?;
                }
                if let Some(slot) = source.slot {
                    sqlx::query("DELETE FROM avatar_change_slots WHERE id = $1")
                        .bind(slot.0)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Some(if moved {
                    AvatarChange::Changed
                } else {
                    AvatarChange::Unchanged
                }))
            }

            async fn avatar_for_source(
                &self,
                source_hash: &str,
            ) -> Result<Option<$crate::domain::AvatarRecord>, $crate::domain::StoreError> {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT a.id, a.side FROM avatar_sources s \
                     JOIN avatars a ON a.id = s.avatar_id WHERE s.source_hash = $1",
                )
                .bind(source_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some((id, side)) = row else {
                    return Ok(None);
                };
                Ok(Some($crate::domain::AvatarRecord {
                    id: super::avatar_id(&id)?,
                    side: u32::try_from(side).unwrap_or(0),
                }))
            }

            async fn known_source(
                &self,
                owner: $crate::domain::TokenId,
                app_id: &$crate::domain::AppId,
                url: &str,
            ) -> Result<Option<$crate::domain::KnownSource>, $crate::domain::StoreError> {
                let row: Option<(String, String, i64, Option<String>)> = sqlx::query_as(
                    "SELECT v.etag, a.id, a.side, \
                     (SELECT avatar_id FROM accounts WHERE app_id = $2 AND token_id = $3) \
                     FROM source_validators v \
                     JOIN avatar_sources s ON s.source_hash = v.source_hash \
                     JOIN avatars a ON a.id = s.avatar_id WHERE v.url = $1",
                )
                .bind(url)
                .bind(app_id.as_str())
                .bind(owner.0)
                .fetch_optional(&self.pool)
                .await?;
                let Some((etag, id, side, account_avatar)) = row else {
                    return Ok(None);
                };
                Ok(Some($crate::domain::KnownSource {
                    etag,
                    avatar: $crate::domain::AvatarRecord {
                        id: super::avatar_id(&id)?,
                        side: u32::try_from(side).unwrap_or(0),
                    },
                    account_avatar: account_avatar
                        .as_deref()
                        .map(super::avatar_id)
                        .transpose()?,
                }))
            }

            async fn avatar_history(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Vec<$crate::domain::HistoryEntry>, $crate::domain::StoreError> {
                let rows = sqlx::query(
                    "SELECT avatar_id, source_url, changed_at FROM avatar_history \
                     WHERE app_id = $1 ORDER BY id",
                )
                .bind(app_id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(super::history_from_row)
                    .collect::<Result<_, _>>()?)
            }

            async fn reserve_avatar_change(
                &self,
                app_id: &$crate::domain::AppId,
                since: i64,
                max: u64,
                now: i64,
                expires_at: i64,
            ) -> Result<Option<$crate::domain::ChangeReservation>, $crate::domain::StoreError>
            {
                use $crate::domain::{ChangeReservation, ChangeSlot, RecentChanges};
                let mut tx = self.writer.begin().await?;
                // The account row's lock, taken by a write in both engines: on
                // PostgreSQL a row lock every reserver (and set_avatar's FOR
                // UPDATE) queues on; on SQLite the database's write lock, taken
                // before anything is read, so the count below cannot go stale.
                let locked = sqlx::query(
                    "UPDATE accounts SET updated_at = updated_at WHERE app_id = $1",
                )
                .bind(app_id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if locked == 0 {
                    return Ok(None);
                }
                sqlx::query("DELETE FROM avatar_change_slots WHERE app_id = $1 AND expires_at <= $2")
                    .bind(app_id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let (committed, oldest_change): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(changed_at) FROM avatar_history \
                     WHERE app_id = $1 AND changed_at > $2 AND source_url IS NOT NULL",
                )
                .bind(app_id.as_str())
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
                let (held, oldest_slot): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(reserved_at) FROM avatar_change_slots WHERE app_id = $1",
                )
                .bind(app_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
                let taken = u64::try_from(committed.saturating_add(held)).unwrap_or(0);
                if taken >= max {
                    return Ok(Some(ChangeReservation::Full(RecentChanges {
                        count: taken,
                        oldest: oldest_change.into_iter().chain(oldest_slot).min(),
                    })));
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO avatar_change_slots (app_id, reserved_at, expires_at) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(app_id.as_str())
                .bind(now)
                .bind(expires_at)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(ChangeReservation::Reserved(ChangeSlot(id))))
            }

            async fn release_avatar_change(
                &self,
                slot: $crate::domain::ChangeSlot,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query("DELETE FROM avatar_change_slots WHERE id = $1")
                    .bind(slot.0)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn avatar_changes_since(
                &self,
                app_id: &$crate::domain::AppId,
                since: i64,
            ) -> Result<$crate::domain::RecentChanges, $crate::domain::StoreError> {
                let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(changed_at) FROM avatar_history \
                     WHERE app_id = $1 AND changed_at > $2 AND source_url IS NOT NULL",
                )
                .bind(app_id.as_str())
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::domain::RecentChanges {
                    count: u64::try_from(count).unwrap_or(0),
                    oldest,
                })
            }
        }

        /// The account, its first avatar and first history row, inside `tx` (other
        /// store parts add their first rows to the same transaction).
        async fn insert_account_rows(
            tx: &mut sqlx::Transaction<'_, $db>,
            owner: $crate::domain::TokenId,
            account: &$crate::domain::AccountRecord,
            avatar: &$crate::domain::AvatarRecord,
            now: i64,
        ) -> Result<(), $crate::domain::StoreError> {
            insert_avatar(tx, avatar, now).await?;
            sqlx::query(
                "INSERT INTO accounts (app_id, token_id, wxid, nick_name, alias, mobile, uin, \
                 sex, province, city, signature, country, reg_country, sns_bg_img, avatar_id, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
            )
            .bind(account.app_id.as_str())
            .bind(owner.0)
            .bind(account.wxid.as_str())
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
            .bind(avatar.id.to_string())
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(|e| super::conflict_or(e, "wxid"))?;
            Ok(())
        }

        async fn insert_avatar(
            tx: &mut sqlx::Transaction<'_, $db>,
            avatar: &$crate::domain::AvatarRecord,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO avatars (id, side, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(avatar.id.to_string())
            .bind(i64::from(avatar.side))
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Points the owner's account at `new_id` if it points elsewhere; true when
        /// it moved. The history row is the trigger's (migration 0012). On
        /// PostgreSQL a second instance moving the same account waits on the row
        /// lock and re-checks the condition against the pointer this one wrote, so
        /// one history row is appended, not two.
        async fn move_avatar<'e, E: sqlx::Executor<'e, Database = $db>>(
            executor: E,
            owner: $crate::domain::TokenId,
            app_id: &$crate::domain::AppId,
            new_id: &str,
            source_url: &str,
            now: i64,
        ) -> Result<bool, sqlx::Error> {
            let moved = sqlx::query(
                "UPDATE accounts SET avatar_id = $1, avatar_source_url = $2, updated_at = $3 \
                 WHERE app_id = $4 AND token_id = $5 AND avatar_id <> $1",
            )
            .bind(new_id)
            .bind(source_url)
            .bind(now)
            .bind(app_id.as_str())
            .bind(owner.0)
            .execute(executor)
            .await?;
            Ok(moved.rows_affected() > 0)
        }
    };
}

pub(super) use {impl_store, select_accounts};
