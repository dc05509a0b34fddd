//! Every statement of the login lifecycle's store, written once (like `sql.rs`).
//!
//! `impl_login_store!` implements `SecretStore`, `InstanceTokenStore`,
//! `DeviceStore` and `LoginSessionStore` for one engine's repository type (a
//! struct with `pool` and `writer` `sqlx::Pool<$db>` fields). It is invoked next to
//! `impl_store!`, whose `insert_account_rows` it shares, so an account is written by one statement.

/// `SELECT <every login_sessions column> FROM login_sessions <rest>`.
macro_rules! select_login_sessions {
    ($rest:literal) => {
        concat!(
            "SELECT uuid, app_id, token_id, device_type, stage, scan_wxid, scan_nick_name, ",
            "scan_avatar_id, scan_avatar_side, captcha, created_at, expires_at, completed_at ",
            "FROM login_sessions ",
            $rest
        )
    };
}

macro_rules! impl_login_store {
    ($repo:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::domain::SecretStore for $repo {
            async fn server_secret(&self) -> Result<[u8; 32], $crate::domain::StoreError> {
                // Get-or-create without a race: every caller offers a fresh secret,
                // the first insert wins, and everyone reads the winner.
                let mut offered = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut offered);
                sqlx::query(
                    "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind("server")
                .bind(hex::encode(offered))
                .execute(&self.writer)
                .await?;
                let stored: String =
                    sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
                        .bind("server")
                        .fetch_one(&self.pool)
                        .await?;
                let mut secret = [0u8; 32];
                hex::decode_to_slice(stored.trim(), &mut secret).map_err(|e| {
                    sqlx::Error::Decode(format!("server secret is not 32 hex bytes: {e}").into())
                })?;
                Ok(secret)
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::InstanceTokenStore for $repo {
            async fn ensure_token(
                &self,
                token_hash: &str,
                label: Option<&str>,
                now: i64,
            ) -> Result<$crate::domain::TokenId, $crate::domain::StoreError> {
                sqlx::query(
                    "INSERT INTO tokens (token_hash, label, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (token_hash) DO NOTHING",
                )
                .bind(token_hash)
                .bind(label)
                .bind(now)
                .execute(&self.writer)
                .await?;
                let id: i64 = sqlx::query_scalar("SELECT id FROM tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::domain::TokenId(id))
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::DeviceStore for $repo {
            async fn insert_device(
                &self,
                owner: $crate::domain::TokenId,
                app_id: &$crate::domain::AppId,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query(
                    "INSERT INTO devices (app_id, token_id, wxid, login_state, created_at, updated_at) \
                     VALUES ($1, $2, NULL, $3, $4, $4)",
                )
                .bind(app_id.as_str())
                .bind(owner.0)
                .bind($crate::domain::LoginState::Offline.as_str())
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(|e| super::conflict_or(e, "appId"))?;
                Ok(())
            }

            async fn find_device(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Option<$crate::domain::DeviceRecord>, $crate::domain::StoreError> {
                Ok(self.find_device_account(app_id).await?.map(|(device, _)| device))
            }

            async fn find_device_account(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<
                Option<($crate::domain::DeviceRecord, Option<$crate::domain::AccountRecord>)>,
                $crate::domain::StoreError,
            > {
                // One statement, as every online route asks this first: the device
                // with its owner's account, or an account with no device row (made
                // by `gewe account create`, online). Both branches end in the
                // same `a.*`, which `account_from_row` reads by name.
                let row = sqlx::query(
                    "SELECT d.token_id AS device_owner, d.wxid AS device_wxid, \
                     d.login_state AS device_state, a.* FROM devices d LEFT JOIN accounts a \
                     ON a.app_id = d.app_id AND a.token_id = d.token_id WHERE d.app_id = $1 \
                     UNION ALL SELECT a.token_id, a.wxid, 'online', a.* FROM accounts a \
                     WHERE a.app_id = $1 AND NOT EXISTS (SELECT 1 FROM devices WHERE app_id = $1)",
                )
                .bind(app_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                use sqlx::Row as _;
                let state: String = row.try_get("device_state")?;
                let state = $crate::domain::LoginState::parse(&state).ok_or_else(|| {
                    sqlx::Error::Decode(format!("bad login state {state:?}").into())
                })?;
                let device = $crate::domain::DeviceRecord {
                    app_id: app_id.clone(),
                    owner: $crate::domain::TokenId(row.try_get("device_owner")?),
                    wxid: row
                        .try_get::<Option<String>, _>("device_wxid")?
                        .map($crate::domain::Wxid::from_trusted),
                    state,
                };
                let account = match row.try_get::<Option<String>, _>("app_id")? {
                    Some(_) => Some(super::account_from_row(&row)?),
                    None => None,
                };
                Ok(Some((device, account)))
            }

            async fn list_devices(
                &self,
                owner: $crate::domain::TokenId,
            ) -> Result<Vec<$crate::domain::AppId>, $crate::domain::StoreError> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT app_id FROM ( \
                       SELECT app_id, created_at FROM accounts WHERE token_id = $1 \
                       UNION ALL \
                       SELECT app_id, created_at FROM devices WHERE token_id = $1 \
                     ) AS known GROUP BY app_id ORDER BY MIN(created_at), app_id",
                )
                .bind(owner.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map($crate::domain::AppId::from_trusted).collect())
            }

            async fn set_login_state(
                &self,
                app_id: &$crate::domain::AppId,
                from: $crate::domain::LoginState,
                to: $crate::domain::LoginState,
                now: i64,
            ) -> Result<bool, $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                // An account made by `gewe account create` gets its device row
                // (online, bound to its wxid) on its first transition.
                sqlx::query(
                    "INSERT INTO devices (app_id, token_id, wxid, login_state, created_at, updated_at) \
                     SELECT app_id, token_id, wxid, $2, created_at, $3 FROM accounts WHERE app_id = $1 \
                     ON CONFLICT (app_id) DO NOTHING",
                )
                .bind(app_id.as_str())
                .bind($crate::domain::LoginState::Online.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let moved = sqlx::query(
                    "UPDATE devices SET login_state = $1, updated_at = $2 \
                     WHERE app_id = $3 AND login_state = $4",
                )
                .bind(to.as_str())
                .bind(now)
                .bind(app_id.as_str())
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !moved {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // Leaving online tells the bot, in the same transaction: the
                // device row's update above holds its lock, so one device's
                // events commit in order. Dropped → offline says nothing new.
                if from == $crate::domain::LoginState::Online && to != from {
                    let (token_id, wxid): (i64, Option<String>) =
                        sqlx::query_as("SELECT token_id, wxid FROM devices WHERE app_id = $1")
                            .bind(app_id.as_str())
                            .fetch_one(&mut *tx)
                            .await?;
                    if let Some(wxid) = wxid {
                        let event = $crate::domain::NewEvent::offline(
                            $crate::domain::TokenId(token_id),
                            app_id,
                            &$crate::domain::Wxid::from_trusted(wxid),
                            now,
                        );
                        outbox_insert(&mut tx, &event).await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::LoginSessionStore for $repo {
            async fn insert_login_session(
                &self,
                session: &$crate::domain::LoginSessionRecord,
            ) -> Result<(), $crate::domain::StoreError> {
                let scanner = session.scanner.as_ref();
                sqlx::query(
                    "INSERT INTO login_sessions (uuid, app_id, token_id, device_type, stage, \
                     scan_wxid, scan_nick_name, scan_avatar_id, scan_avatar_side, captcha, \
                     created_at, expires_at, completed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&session.uuid)
                .bind(session.app_id.as_str())
                .bind(session.owner.0)
                .bind(&session.device_type)
                .bind(session.stage.as_str())
                .bind(scanner.map(|s| s.wxid.as_str().to_owned()))
                .bind(scanner.map(|s| s.nick_name.clone()))
                .bind(scanner.map(|s| s.avatar.id.to_string()))
                .bind(scanner.map(|s| i64::from(s.avatar.side)))
                .bind(session.captcha.as_deref())
                .bind(session.created_at)
                .bind(session.expires_at)
                .bind(session.completed_at)
                .execute(&self.writer)
                .await
                .map_err(|e| super::conflict_or(e, "uuid"))?;
                Ok(())
            }

            async fn find_login_session(
                &self,
                uuid: &str,
            ) -> Result<Option<$crate::domain::LoginSessionRecord>, $crate::domain::StoreError>
            {
                use sqlx::Row;
                let Some(row) = sqlx::query(super::sql_login::select_login_sessions!(
                    "WHERE uuid = $1"
                ))
                .bind(uuid)
                .fetch_optional(&self.pool)
                .await?
                else {
                    return Ok(None);
                };
                let stage: String = row.try_get("stage")?;
                let stage = $crate::domain::LoginStage::parse(&stage).ok_or_else(|| {
                    sqlx::Error::Decode(format!("bad login stage {stage:?}").into())
                })?;
                let scan_wxid: Option<String> = row.try_get("scan_wxid")?;
                let scan_avatar_id: Option<String> = row.try_get("scan_avatar_id")?;
                let scanner = match (scan_wxid, scan_avatar_id) {
                    (Some(wxid), Some(avatar_id)) => Some($crate::domain::Scanner {
                        wxid: $crate::domain::Wxid::from_trusted(wxid),
                        nick_name: row
                            .try_get::<Option<String>, _>("scan_nick_name")?
                            .unwrap_or_default(),
                        avatar: $crate::domain::AvatarRecord {
                            id: super::avatar_id(&avatar_id)?,
                            side: u32::try_from(
                                row.try_get::<Option<i64>, _>("scan_avatar_side")?
                                    .unwrap_or(0),
                            )
                            .unwrap_or(0),
                        },
                    }),
                    _ => None,
                };
                Ok(Some($crate::domain::LoginSessionRecord {
                    uuid: row.try_get("uuid")?,
                    app_id: $crate::domain::AppId::from_trusted(row.try_get("app_id")?),
                    owner: $crate::domain::TokenId(row.try_get("token_id")?),
                    device_type: row.try_get("device_type")?,
                    stage,
                    scanner,
                    captcha: row.try_get("captcha")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    completed_at: row.try_get("completed_at")?,
                }))
            }

            async fn advance_login_session(
                &self,
                uuid: &str,
                from: $crate::domain::LoginStage,
                to: $crate::domain::LoginStage,
                scanner: Option<&$crate::domain::Scanner>,
                captcha: Option<&str>,
            ) -> Result<bool, $crate::domain::StoreError> {
                let done = sqlx::query(
                    "UPDATE login_sessions SET stage = $1, \
                     scan_wxid = COALESCE($2, scan_wxid), \
                     scan_nick_name = COALESCE($3, scan_nick_name), \
                     scan_avatar_id = COALESCE($4, scan_avatar_id), \
                     scan_avatar_side = COALESCE($5, scan_avatar_side), \
                     captcha = COALESCE($6, captcha) \
                     WHERE uuid = $7 AND stage = $8",
                )
                .bind(to.as_str())
                .bind(scanner.map(|s| s.wxid.as_str().to_owned()))
                .bind(scanner.map(|s| s.nick_name.clone()))
                .bind(scanner.map(|s| s.avatar.id.to_string()))
                .bind(scanner.map(|s| i64::from(s.avatar.side)))
                .bind(captcha)
                .bind(uuid)
                .bind(from.as_str())
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(done == 1)
            }

            async fn complete_login(
                &self,
                uuid: &str,
                owner: $crate::domain::TokenId,
                device: &$crate::domain::AppId,
                wxid: &$crate::domain::Wxid,
                new_account: Option<(
                    &$crate::domain::AccountRecord,
                    &$crate::domain::AvatarRecord,
                )>,
                now: i64,
            ) -> Result<bool, $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                let completed = sqlx::query(
                    "UPDATE login_sessions SET stage = $1, completed_at = $2 \
                     WHERE uuid = $3 AND stage = $4",
                )
                .bind($crate::domain::LoginStage::Done.as_str())
                .bind(now)
                .bind(uuid)
                .bind($crate::domain::LoginStage::Shown.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !completed {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Some((account, avatar)) = new_account {
                    insert_account_rows(&mut tx, owner, account, avatar, now).await?;
                }
                sqlx::query(
                    "INSERT INTO devices (app_id, token_id, wxid, login_state, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (app_id) DO UPDATE SET wxid = excluded.wxid, \
                     login_state = excluded.login_state, updated_at = excluded.updated_at",
                )
                .bind(device.as_str())
                .bind(owner.0)
                .bind(wxid.as_str())
                .bind($crate::domain::LoginState::Online.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(super) use {impl_login_store, select_login_sessions};
