//! Operator keys: what the control plane's `X-GEWE-OPERATOR-KEY` header must
//! carry. One may be configured (`GEWE_OPERATOR_KEY`); more are made by
//! `gewe operator-key create` and stored only as SHA-256 hashes. A GeWe token
//! is never an operator key: keys carry a prefix no token has.

use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{Clock, Repository, StoreError};

pub const OPERATOR_HEADER: &str = "X-GEWE-OPERATOR-KEY";
/// Every made key starts so: it cannot be mistaken for a 32-hex GeWe token.
pub const KEY_PREFIX: &str = "gop_";
/// A configured key must be at least this long.
pub const MIN_CONFIGURED_LEN: usize = 16;

#[derive(Clone)]
pub struct OperatorKeys {
    repo: Arc<dyn Repository>,
    clock: Clock,
    /// SHA-256 of the configured key.
    configured: Option<[u8; 32]>,
}

impl OperatorKeys {
    pub fn new(repo: Arc<dyn Repository>, clock: Clock, configured: Option<&str>) -> Self {
        OperatorKeys {
            repo,
            clock,
            configured: configured.map(|key| Sha256::digest(key.as_bytes()).into()),
        }
    }

    /// Whether the operator API is on: a key is configured or stored.
    pub async fn enabled(&self) -> Result<bool, StoreError> {
        Ok(self.configured.is_some() || self.repo.count_operator_keys().await? > 0)
    }

    /// Makes a new key, stores its hash and answers the key: the only time it
    /// exists in clear.
    pub async fn create(&self, label: Option<&str>) -> Result<String, StoreError> {
        let mut raw = [0u8; 24];
        rand::rng().fill_bytes(&mut raw);
        let key = format!("{KEY_PREFIX}{}", hex::encode(raw));
        self.repo
            .insert_operator_key(&hash_key(&key), label, self.clock.unix_now())
            .await?;
        Ok(key)
    }

    /// Whether `presented` is an operator key. The configured key is compared
    /// in constant time (by hash, so its length leaks nothing either); stored
    /// keys are found by their hash.
    pub async fn verify(&self, presented: &str) -> Result<bool, StoreError> {
        let presented = presented.trim();
        if presented.is_empty() {
            return Ok(false);
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if let Some(configured) = &self.configured
            && bool::from(configured.ct_eq(&digest))
        {
            return Ok(true);
        }
        if !presented.starts_with(KEY_PREFIX) {
            return Ok(false);
        }
        self.repo.operator_key_exists(&hex::encode(digest)).await
    }
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}
