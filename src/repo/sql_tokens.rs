//! Every statement of the operator's side of tokens (`gewe token list`,
//! `gewe token revoke`, last use), written once (like `sql.rs`).
//!
//! `impl_token_admin!` implements `TokenAdminStore` for one engine's repository
//! type (a struct with `pool` and `writer` `sqlx::Pool<$db>` fields).

macro_rules! impl_token_admin {
    ($repo:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::domain::TokenAdminStore for $repo {
            async fn list_tokens(
                &self,
            ) -> Result<Vec<$crate::domain::TokenRecord>, $crate::domain::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT id, label, created_at, last_used_at FROM tokens \
                     WHERE revoked_at IS NULL ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::domain::TokenRecord {
                            id: $crate::domain::TokenId(row.try_get("id")?),
                            label: row.try_get("label")?,
                            created_at: row.try_get("created_at")?,
                            last_used_at: row.try_get("last_used_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            async fn revoke_token(
                &self,
                id: $crate::domain::TokenId,
                now: i64,
            ) -> Result<bool, $crate::domain::StoreError> {
                let done = sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id.0)
                .execute(&self.writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch_token(
                &self,
                id: $crate::domain::TokenId,
                now: i64,
            ) -> Result<(), $crate::domain::StoreError> {
                sqlx::query(
                    "UPDATE tokens SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                )
                .bind(now)
                .bind(id.0)
                .execute(&self.writer)
                .await?;
                Ok(())
            }
        }
    };
}

pub(super) use impl_token_admin;
