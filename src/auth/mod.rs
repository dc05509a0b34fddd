//! API tokens: issued as 32 lowercase hex characters (the self-hosted Gewechat
//! shape), stored only as a SHA-256 hash.
//!
//! A token carries 128 random bits, so a fast unsalted hash is enough: nobody can
//! enumerate the input space, and lookups stay a single indexed query.

use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{Clock, Repository, StoreError, TokenId};

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
}

impl Tokens {
    pub fn new(repo: Arc<dyn Repository>, clock: Clock) -> Self {
        Tokens { repo, clock }
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

    /// Resolves the value of an `X-GEWE-TOKEN` header to its owner.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<TokenId, AuthError> {
        let token = header
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if !is_token_shaped(token) {
            return Err(AuthError::Unknown);
        }
        self.repo
            .find_token(&hash_token(token))
            .await?
            .ok_or(AuthError::Unknown)
    }
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
    fn only_32_hex_chars_look_like_tokens() {
        assert!(is_token_shaped("c9ffbedb9aeb471db49d92453ea21a17"));
        assert!(!is_token_shaped("c9ffbedb9aeb471db49d92453ea21a1"));
        assert!(!is_token_shaped("g9ffbedb9aeb471db49d92453ea21a17"));
    }
}
