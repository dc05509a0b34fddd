//! The personal module's statements, written once: profile changes and their
//! history, privacy settings, login devices, server secrets.
//!
//! `impl_personal_store!` implements `ProfileStore`, `LoginDeviceStore` and
//! `SecretStore` for one engine's repository type, next to `sql::impl_store!`
//! (whose `insert_account_rows` it reuses), with the same `for_update` clause.

macro_rules! impl_personal_store {
    ($repo:ident, $db:ty, for_update = $for_update:literal) => {
        #[async_trait::async_trait]
        impl $crate::domain::ProfileStore for $repo {
            async fn update_profile(
                &self,
                owner: $crate::domain::TokenId,
                app_id: &$crate::domain::AppId,
                change: &$crate::domain::ProfileChange,
                now: i64,
            ) -> Result<Option<Vec<$crate::domain::ProfileFieldChange>>, $crate::domain::StoreError>
            {
                let mut tx = self.writer.begin().await?;
                // A write first, changing nothing: it takes SQLite's write lock
                // before the read (so concurrent changes queue on the busy timeout
                // instead of failing with BUSY_SNAPSHOT) and PostgreSQL's row lock
                // (so each history row's old value is what the change before it
                // wrote). It also checks ownership.
                let owned = sqlx::query(
                    "UPDATE accounts SET updated_at = updated_at WHERE app_id = $1 AND token_id = $2",
                )
                .bind(app_id.as_str())
                .bind(owner.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if owned == 0 {
                    return Ok(None);
                }
                let row: Option<(String, String, String, String, i64, String)> =
                    sqlx::query_as(concat!(
                        "SELECT nick_name, country, province, city, sex, signature \
                         FROM accounts WHERE app_id = $1 AND token_id = $2",
                        $for_update
                    ))
                    .bind(app_id.as_str())
                    .bind(owner.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((nick_name, country, province, city, sex, signature)) = row else {
                    return Ok(None);
                };
                let mut changes = Vec::new();
                let mut pick = |field: &str, old: String, new: &Option<String>| -> String {
                    match new {
                        Some(new) if *new != old => {
                            changes.push($crate::domain::ProfileFieldChange {
                                field: field.to_owned(),
                                old_value: old,
                                new_value: new.clone(),
                                changed_at: now,
                            });
                            new.clone()
                        }
                        _ => old,
                    }
                };
                let nick_name = pick("nickName", nick_name, &change.nick_name);
                let country = pick("country", country, &change.country);
                let province = pick("province", province, &change.province);
                let city = pick("city", city, &change.city);
                let sex: i64 = pick("sex", sex.to_string(), &change.sex.map(|s| s.to_string()))
                    .parse()
                    .unwrap_or(sex);
                let signature = pick("signature", signature, &change.signature);
                if changes.is_empty() {
                    return Ok(Some(changes));
                }
                sqlx::query(
                    "UPDATE accounts SET nick_name = $1, country = $2, province = $3, city = $4, \
                     sex = $5, signature = $6, updated_at = $7 WHERE app_id = $8",
                )
                .bind(&nick_name)
                .bind(&country)
                .bind(&province)
                .bind(&city)
                .bind(sex)
                .bind(&signature)
                .bind(now)
                .bind(app_id.as_str())
                .execute(&mut *tx)
                .await?;
                for c in &changes {
                    sqlx::query(
                        "INSERT INTO profile_history (app_id, field, old_value, new_value, \
                         changed_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(app_id.as_str())
                    .bind(&c.field)
                    .bind(&c.old_value)
                    .bind(&c.new_value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(Some(changes))
            }

            async fn profile_history(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Vec<$crate::domain::ProfileFieldChange>, $crate::domain::StoreError> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT field, old_value, new_value, changed_at FROM profile_history \
                     WHERE app_id = $1 ORDER BY id",
                )
                .bind(app_id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(field, old_value, new_value, changed_at)| {
                        $crate::domain::ProfileFieldChange {
                            field,
                            old_value,
                            new_value,
                            changed_at,
                        }
                    })
                    .collect())
            }

            async fn set_privacy(
                &self,
                app_id: &$crate::domain::AppId,
                option: i64,
                open: bool,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query(
                    "INSERT INTO privacy_settings (app_id, option_id, is_open, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, option_id) \
                     DO UPDATE SET is_open = excluded.is_open, updated_at = excluded.updated_at",
                )
                .bind(app_id.as_str())
                .bind(option)
                .bind(open)
                .bind(now)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn privacy_settings(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Vec<$crate::domain::PrivacySetting>, $crate::domain::StoreError> {
                let rows: Vec<(i64, bool, i64)> = sqlx::query_as(
                    "SELECT option_id, is_open, updated_at FROM privacy_settings \
                     WHERE app_id = $1 ORDER BY option_id",
                )
                .bind(app_id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(option, open, updated_at)| $crate::domain::PrivacySetting {
                        option,
                        open,
                        updated_at,
                    })
                    .collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::domain::LoginDeviceStore for $repo {
            async fn insert_account_with_device(
                &self,
                owner: $crate::domain::TokenId,
                account: &$crate::domain::AccountRecord,
                avatar: &$crate::domain::AvatarRecord,
                device: &$crate::domain::LoginDevice,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                insert_account_rows(&mut tx, owner, account, avatar, now).await?;
                upsert_login_device(
                    &mut tx,
                    &account.app_id,
                    &device.uuid,
                    &device.device_name,
                    &device.device_type,
                    device.last_time,
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_login_device(
                &self,
                app_id: &$crate::domain::AppId,
                uuid: &str,
                device_name: &str,
                device_type: &str,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                let mut tx = self.writer.begin().await?;
                upsert_login_device(&mut tx, app_id, uuid, device_name, device_type, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn login_devices(
                &self,
                app_id: &$crate::domain::AppId,
            ) -> Result<Vec<$crate::domain::LoginDevice>, $crate::domain::StoreError> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT uuid, device_name, device_type, last_time FROM login_devices \
                     WHERE app_id = $1 ORDER BY last_time DESC, uuid",
                )
                .bind(app_id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(uuid, device_name, device_type, last_time)| {
                        $crate::domain::LoginDevice {
                            uuid,
                            device_name,
                            device_type,
                            last_time,
                        }
                    })
                    .collect())
            }
        }

        async fn upsert_login_device(
            tx: &mut sqlx::Transaction<'_, $db>,
            app_id: &$crate::domain::AppId,
            uuid: &str,
            device_name: &str,
            device_type: &str,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO login_devices (app_id, uuid, device_name, device_type, last_time) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, uuid) DO UPDATE SET \
                 device_name = excluded.device_name, device_type = excluded.device_type, \
                 last_time = excluded.last_time",
            )
            .bind(app_id.as_str())
            .bind(uuid)
            .bind(device_name)
            .bind(device_type)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
    };
}

pub(super) use impl_personal_store;
