//! Every statement of the login lifecycle's store, written once (like `sql.rs`).
//!
//! `impl_login_store!` implements `SecretStore` and `InstanceTokenStore` for one
//! engine's repository type (a struct with a `pool: sqlx::Pool<$db>` field).

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
                .execute(&self.pool)
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
                .execute(&self.pool)
                .await?;
                let id: i64 = sqlx::query_scalar("SELECT id FROM tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::domain::TokenId(id))
            }
        }
    };
}

pub(super) use impl_login_store;
