//! API tokens: issued as 32 lowercase hex characters (the self-hosted Gewechat
//! shape), stored only as a SHA-256 hash.
//!
//! A token carries 128 random bits, so a fast unsalted hash is enough: nobody can
//! enumerate the input space, and lookups stay a single indexed query.

mod operator;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub use operator::{KEY_PREFIX, MIN_CONFIGURED_LEN, OPERATOR_HEADER, OperatorKeys};

use crate::domain::{Clock, Repository, StoreError, TokenId, TokenRecord};

/// How `tools/getTokenId` answers anonymous callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuing {
    /// The instance's one token, derived from the server secret: the same on
    /// every call, after restarts and on every instance sharing the database.
    Instance,
    /// A new random token on every call, rate-limited per client address.
    PerCall,
    /// Not over HTTP: `gewe token create` only.
    Off,
    /// Not set, and the server listens beyond loopback: refused until the
    /// operator sets `GEWE_TOKEN_ISSUING` explicitly.
    NotOnLoopback,
}

impl Issuing {
    pub fn describe(self) -> &'static str {
        match self {
            Issuing::Instance => "instance (one token for the whole instance)",
            Issuing::PerCall => "per-call (a new token on every call, rate-limited)",
            Issuing::Off => "off (gewe token create only)",
            Issuing::NotOnLoopback => {
                "refused: the server listens beyond loopback and GEWE_TOKEN_ISSUING is not set"
            }
        }
    }
}

/// Per-call issues allowed per client address in [`PER_CALL_WINDOW_SECS`].
pub const PER_CALL_LIMIT: usize = 10;
pub const PER_CALL_WINDOW_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Too many per-call issues from one address; retry after this many seconds.
    #[error("too many tokens issued to this address")]
    RateLimited { retry_after_secs: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The label of the instance token's row in `tokens`.
pub const INSTANCE_LABEL: &str = "instance";

/// Why `gewe token revoke` did not revoke.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no token {0} (or it was revoked already): `gewe token list` shows the tokens")]
    NotFound(i64),
    #[error(
        "token {0} is the instance token, derived from the server secret, so tools/getTokenId \
         would hand it out again: set GEWE_TOKEN_ISSUING=per-call or off to stop that instead"
    )]
    Instance(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("X-GEWE-TOKEN header missing")]
    Missing,
    #[error("X-GEWE-TOKEN unknown")]
    Unknown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly issued token: the only moment its plaintext exists.
pub struct IssuedToken {
    pub token: String,
    pub id: TokenId,
}

#[derive(Clone)]
pub struct Tokens {
    repo: Arc<dyn Repository>,
    clock: Clock,
    /// The instance token, once derived and its hash stored.
    instance: Arc<OnceCell<String>>,
    /// Per-call issue times (Unix seconds) by client address.
    per_call: Arc<Mutex<HashMap<IpAddr, VecDeque<i64>>>>,
    /// The minute each token's last use was recorded in by this process, so a
    /// busy token costs one write a minute, not one per request.
    touched: Arc<Mutex<HashMap<TokenId, i64>>>,
}

impl Tokens {
    pub fn new(repo: Arc<dyn Repository>, clock: Clock) -> Self {
        Tokens {
            repo,
            clock,
            instance: Arc::default(),
            per_call: Arc::default(),
            touched: Arc::default(),
        }
    }

    /// The instance's one token: derived from the server secret in the database,
    /// so it is the same on every call, after a restart, on every instance sharing
    /// the database and after a restore. Its hash is stored (once) like any other.
    pub async fn instance_token(&self) -> Result<String, StoreError> {
        let token = self
            .instance
            .get_or_try_init(|| async {
                let secret = self.repo.server_secret().await?;
                let token = derive_instance_token(&secret);
                self.repo
                    .ensure_token(
                        &hash_token(&token),
                        Some(INSTANCE_LABEL),
                        self.clock.unix_now(),
                    )
                    .await?;
                Ok::<_, StoreError>(token)
            })
            .await?;
        Ok(token.clone())
    }

    /// A new random token for `client`, at most [`PER_CALL_LIMIT`] per address in
    /// [`PER_CALL_WINDOW_SECS`] (counted in this process, by the domain clock).
    pub async fn issue_per_call(&self, client: Option<IpAddr>) -> Result<IssuedToken, IssueError> {
        if let Some(ip) = client {
            let now = self.clock.unix_now();
            let mut seen = self.per_call.lock().unwrap_or_else(|e| e.into_inner());
            // Forget idle addresses so the map stays small.
            seen.retain(|_, times| times.back().is_some_and(|t| now - t < PER_CALL_WINDOW_SECS));
            let times = seen.entry(ip).or_default();
            while times
                .front()
                .is_some_and(|t| now - t >= PER_CALL_WINDOW_SECS)
            {
                times.pop_front();
            }
            if times.len() >= PER_CALL_LIMIT {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(IssueError::RateLimited {
                    retry_after_secs: (oldest + PER_CALL_WINDOW_SECS - now).max(1),
                });
            }
            times.push_back(now);
        }
        Ok(self.issue(None).await?)
    }

    pub async fn issue(&self, label: Option<&str>) -> Result<IssuedToken, StoreError> {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let id = self
            .repo
            .insert_token(&hash_token(&token), label, self.clock.unix_now())
            .await?;
        Ok(IssuedToken { token, id })
    }

    /// A token chosen by the caller (a fixture file): stored if new, answered
    /// by id either way. `None` when it is not 32 hex characters.
    pub async fn ensure(
        &self,
        token: &str,
        label: Option<&str>,
    ) -> Result<Option<TokenId>, StoreError> {
        if !is_token_shaped(token) {
            return Ok(None);
        }
        let id = self
            .repo
            .ensure_token(&hash_token(token), label, self.clock.unix_now())
            .await?;
        Ok(Some(id))
    }

    /// The owner of `token`, if it is one.
    pub async fn find(&self, token: &str) -> Result<Option<TokenId>, StoreError> {
        if !is_token_shaped(token.trim()) {
            return Ok(None);
        }
        self.repo.find_token(&hash_token(token.trim())).await
    }

    /// Resolves the value of an `X-GEWE-TOKEN` header to its owner.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<TokenId, AuthError> {
        let token = header
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if !is_token_shaped(token) {
            return Err(AuthError::Unknown);
        }
        let id = self
            .repo
            .find_token(&hash_token(token))
            .await?
            .ok_or(AuthError::Unknown)?;
        self.record_use(id).await;
        Ok(id)
    }

    /// Records the token's use, to the minute, at most once a minute per process.
    /// A failure here fails no request: it is only logged.
    async fn record_use(&self, id: TokenId) {
        let now = self.clock.unix_now();
        let minute = now - now.rem_euclid(60);
        let due = {
            let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
            touched.insert(id, minute) != Some(minute)
        };
        if due && let Err(e) = self.repo.touch_token(id, minute).await {
            tracing::warn!(token_id = id.0, error = %e, "cannot record the token's last use");
        }
    }

    /// Every token not revoked, oldest first: never the token itself.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.repo.list_tokens().await
    }

    /// Revokes token `id` (as `list` numbers them): it stops authenticating at once.
    pub async fn revoke(&self, id: i64) -> Result<(), RevokeError> {
        let tokens = self.repo.list_tokens().await?;
        match tokens.iter().find(|t| t.id.0 == id) {
            None => Err(RevokeError::NotFound(id)),
            Some(t) if t.label.as_deref() == Some(INSTANCE_LABEL) => Err(RevokeError::Instance(id)),
            Some(t) => {
                if self.repo.revoke_token(t.id, self.clock.unix_now()).await? {
                    Ok(())
                } else {
                    Err(RevokeError::NotFound(id))
                }
            }
        }
    }
}

/// 32 hex characters from the secret; one-way, so the token reveals nothing of it.
fn derive_instance_token(secret: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"gewe-server instance token v1\0");
    hasher.update(secret);
    hex::encode(&hasher.finalize()[..16])
}

fn is_token_shaped(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Tokens compare case-insensitively, as hex should.
fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.to_ascii_lowercase().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_is_stable_and_hides_the_token() {
        let token = "c9ffbedb9aeb471db49d92453ea21a17";
        let hash = hash_token(token);
        assert_eq!(hash, hash_token(&token.to_ascii_uppercase()));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(token));
    }

    #[test]
    fn instance_tokens_are_token_shaped_and_depend_on_the_secret() {
        let a = derive_instance_token(&[1; 32]);
        assert!(is_token_shaped(&a));
        assert_eq!(a, derive_instance_token(&[1; 32]));
        assert_ne!(a, derive_instance_token(&[2; 32]));
    }

    #[test]
    fn only_32_hex_chars_look_like_tokens() {
        assert!(is_token_shaped("c9ffbedb9aeb471db49d92453ea21a17"));
        assert!(!is_token_shaped("c9ffbedb9aeb471db49d92453ea21a1"));
        assert!(!is_token_shaped("g9ffbedb9aeb471db49d92453ea21a17"));
    }
}
