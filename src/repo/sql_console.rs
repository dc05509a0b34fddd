//! Every statement of the web console's store, written once (like `sql.rs`).
//!
//! `impl_console_store!` implements `ConsoleStore` for one engine's repository
//! type (a struct with `pool` and `writer` `sqlx::Pool<$db>` fields).

use crate::domain::{AppId, DeviceSummary, LoginState, Wxid};

/// One tile of the console's grid, from the columns both grid queries select.
pub(super) fn device_summary(
    app_id: String,
    wxid: Option<String>,
    nick_name: Option<String>,
    avatar_id: Option<String>,
    state: &str,
) -> Result<DeviceSummary, sqlx::Error> {
    Ok(DeviceSummary {
        app_id: AppId::from_trusted(app_id),
        wxid: wxid.map(Wxid::from_trusted),
        nick_name,
        avatar_id: avatar_id.as_deref().map(super::avatar_id).transpose()?,
        state: LoginState::parse(state)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad login state {state:?}").into()))?,
    })
}

macro_rules! impl_console_store {
    ($repo:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::domain::ConsoleStore for $repo {
            async fn insert_console_session(
                &self,
                session_hash: &str,
                session: &$crate::domain::ConsoleSessionRecord,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query(
                    "INSERT INTO console_sessions \
                     (session_hash, principal, token_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(session_hash)
                .bind(session.principal.kind())
                .bind(session.principal.token().map(|t| t.0))
                .bind(session.created_at)
                .bind(session.expires_at)
                .execute(&self.writer)
                .await
                .map_err(|e| super::conflict_or(e, "console session"))?;
                Ok(())
            }

            async fn find_console_session(
                &self,
                session_hash: &str,
                now: i64,
            ) -> Result<Option<$crate::domain::ConsoleSessionRecord>, $crate::domain::StoreError>
            {
                let row: Option<(String, Option<i64>, i64, i64)> = sqlx::query_as(
                    "SELECT principal, token_id, created_at, expires_at FROM console_sessions \
                     WHERE session_hash = $1 AND expires_at > $2",
                )
                .bind(session_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some((kind, token_id, created_at, expires_at)) = row else {
                    return Ok(None);
                };
                let principal = match (kind.as_str(), token_id) {
                    ("token", Some(id)) => {
                        $crate::domain::Principal::Token($crate::domain::TokenId(id))
                    }
                    ("operator", None) => $crate::domain::Principal::Operator,
                    _ => {
                        return Err(sqlx::Error::Decode(
                            format!("bad console principal {kind:?}").into(),
                        )
                        .into());
                    }
                };
                Ok(Some($crate::domain::ConsoleSessionRecord {
                    principal,
                    created_at,
                    expires_at,
                }))
            }

            async fn delete_console_session(
                &self,
                session_hash: &str,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn prune_console_sessions(
                &self,
                now: i64,
            ) -> Result<u64, $crate::domain::StoreError> {
                let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn device_page(
                &self,
                owner: $crate::domain::TokenId,
                offset: i64,
                limit: i64,
            ) -> Result<(Vec<$crate::domain::DeviceSummary>, i64), $crate::domain::StoreError>
            {
                // Accounts with no devices row are bound and online (made by
                // `gewe account create`); devices with no account are waiting
                // for their first login.
                let rows: Vec<(String, Option<String>, Option<String>, Option<String>, String)> =
                    sqlx::query_as(
                        "SELECT app_id, wxid, nick_name, avatar_id, state FROM ( \
                           SELECT a.app_id, a.wxid, a.nick_name, a.avatar_id, \
                                  COALESCE(d.login_state, 'online') AS state, a.created_at \
                           FROM accounts a LEFT JOIN devices d ON d.app_id = a.app_id \
                           WHERE a.token_id = $1 \
                           UNION ALL \
                           SELECT d.app_id, NULL, NULL, NULL, d.login_state, d.created_at \
                           FROM devices d WHERE d.token_id = $1 \
                             AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.app_id = d.app_id) \
                         ) AS known ORDER BY created_at, app_id LIMIT $2 OFFSET $3",
                    )
                    .bind(owner.0)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM accounts WHERE token_id = $1) + \
                            (SELECT COUNT(*) FROM devices d WHERE d.token_id = $1 \
                             AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.app_id = d.app_id))",
                )
                .bind(owner.0)
                .fetch_one(&self.pool)
                .await?;
                let mut page = Vec::with_capacity(rows.len());
                for (app_id, wxid, nick_name, avatar_id, state) in rows {
                    page.push(super::sql_console::device_summary(
                        app_id, wxid, nick_name, avatar_id, &state,
                    )?);
                }
                Ok((page, total))
            }

            async fn device_page_all(
                &self,
                offset: i64,
                limit: i64,
            ) -> Result<(Vec<$crate::domain::OwnedDevice>, i64), $crate::domain::StoreError>
            {
                type Row = (i64, Option<String>, String, Option<String>, Option<String>, Option<String>, String);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT known.token_id, t.label, app_id, wxid, nick_name, avatar_id, state FROM ( \
                       SELECT a.token_id, a.app_id, a.wxid, a.nick_name, a.avatar_id, \
                              COALESCE(d.login_state, 'online') AS state, a.created_at \
                       FROM accounts a LEFT JOIN devices d ON d.app_id = a.app_id \
                       UNION ALL \
                       SELECT d.token_id, d.app_id, NULL, NULL, NULL, d.login_state, d.created_at \
                       FROM devices d \
                       WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.app_id = d.app_id) \
                     ) AS known LEFT JOIN tokens t ON t.id = known.token_id \
                     ORDER BY known.created_at, app_id LIMIT $1 OFFSET $2",
                )
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM accounts) + \
                            (SELECT COUNT(*) FROM devices d \
                             WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.app_id = d.app_id))",
                )
                .fetch_one(&self.pool)
                .await?;
                let mut page = Vec::with_capacity(rows.len());
                for (owner, owner_label, app_id, wxid, nick_name, avatar_id, state) in rows {
                    page.push($crate::domain::OwnedDevice {
                        owner: $crate::domain::TokenId(owner),
                        owner_label,
                        device: super::sql_console::device_summary(
                            app_id, wxid, nick_name, avatar_id, &state,
                        )?,
                    });
                }
                Ok((page, total))
            }

            async fn token_labels(
                &self,
            ) -> Result<Vec<($crate::domain::TokenId, Option<String>)>, $crate::domain::StoreError>
            {
                let rows: Vec<(i64, Option<String>)> =
                    sqlx::query_as("SELECT id, label FROM tokens ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, label)| ($crate::domain::TokenId(id), label))
                    .collect())
            }

            async fn find_avatar(
                &self,
                id: $crate::domain::AvatarId,
            ) -> Result<Option<$crate::domain::AvatarRecord>, $crate::domain::StoreError> {
                let side: Option<i64> = sqlx::query_scalar("SELECT side FROM avatars WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(side.map(|side| $crate::domain::AvatarRecord {
                    id,
                    side: u32::try_from(side).unwrap_or(0),
                }))
            }

            async fn latest_login_session(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Option<$crate::domain::LoginSessionRecord>, $crate::domain::StoreError>
            {
                let uuid: Option<String> = sqlx::query_scalar(
                    "SELECT uuid FROM login_sessions WHERE app_id = $1 \
                     ORDER BY created_at DESC, uuid LIMIT 1",
                )
                .bind(app_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                match uuid {
                    Some(uuid) => $crate::domain::LoginSessionStore::find_login_session(self, &uuid).await,
                    None => Ok(None),
                }
            }
        }
    };
}

pub(super) use impl_console_store;
