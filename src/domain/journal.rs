//! The journal: every GeWe call while the operator API is on, so a test can
//! assert what its bot did ("called updateHeadImg with this URL", "replied
//! with this text"). Bounded per token; bodies capped; `token` fields redacted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{DomainError, JournalEntry, JournalQuery, Repository, TokenId};

/// Bodies are kept up to this many bytes.
pub const MAX_BODY_CHARS: usize = 16 * 1024;
/// A query answers at most this many entries.
pub const MAX_QUERY_LIMIT: i64 = 1_000;
/// Trimming runs every this many entries of a token, so the bound is exceeded
/// by less than this.
const TRIM_EVERY: u32 = 64;

#[derive(Clone)]
pub struct Journal {
    repo: Arc<dyn Repository>,
    keep: i64,
    since_trim: Arc<Mutex<HashMap<Option<TokenId>, u32>>>,
}

impl Journal {
    /// A journal keeping the last `keep` calls of each token.
    pub fn new(repo: Arc<dyn Repository>, keep: i64) -> Self {
        Journal {
            repo,
            keep: keep.max(1),
            since_trim: Arc::default(),
        }
    }

    pub fn keep(&self) -> i64 {
        self.keep
    }

    /// Records one call; the bodies are redacted and capped here.
    pub async fn record(&self, mut entry: JournalEntry) -> Result<(), DomainError> {
        entry.request = cap(&redact(&entry.request));
        entry.response = cap(&entry.response);
        let trim = {
            let mut counts = self.since_trim.lock().unwrap_or_else(|e| e.into_inner());
            let count = counts.entry(entry.owner).or_default();
            *count += 1;
            if *count >= TRIM_EVERY {
                *count = 0;
                true
            } else {
                false
            }
        };
        self.repo
            .append_journal(&entry, trim.then_some(self.keep))
            .await?;
        Ok(())
    }

    pub async fn query(&self, mut query: JournalQuery) -> Result<Vec<JournalEntry>, DomainError> {
        query.limit = query.limit.clamp(1, MAX_QUERY_LIMIT);
        Ok(self.repo.query_journal(&query).await?)
    }

    pub async fn clear(&self, owner: Option<TokenId>) -> Result<u64, DomainError> {
        Ok(self.repo.clear_journal(owner).await?)
    }
}

/// The request body with every `token` field's value replaced (at any depth);
/// a body that is not JSON is kept as it is.
pub fn redact(body: &str) -> String {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.eq_ignore_ascii_case("token") {
                        *v = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut value) => {
            walk(&mut value);
            value.to_string()
        }
        Err(_) if body.contains("token") => "[not JSON; withheld because it names a token]".into(),
        Err(_) => body.to_owned(),
    }
}

/// At most [`MAX_BODY_CHARS`] bytes, cut at a character boundary, with a note
/// of what was cut.
pub fn cap(body: &str) -> String {
    if body.len() <= MAX_BODY_CHARS {
        return body.to_owned();
    }
    let mut end = MAX_BODY_CHARS;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes]", &body[..end], body.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_fields_are_redacted_at_any_depth() {
        let body =
            r#"{"appId":"wx_1","token":"abc","nested":{"Token":"def","list":[{"token":"x"}]}}"#;
        let redacted = redact(body);
        assert!(!redacted.contains("abc") && !redacted.contains("def"));
        assert!(!redacted.contains("\"x\""));
        assert!(redacted.contains("wx_1"));
    }

    #[test]
    fn numbers_beyond_2_53_survive_redaction() {
        let redacted = redact(r#"{"newMsgId":7773749793478223190}"#);
        assert!(redacted.contains("7773749793478223190"), "{redacted}");
    }

    #[test]
    fn long_bodies_are_cut_at_a_character_boundary() {
        let body = "汉".repeat(MAX_BODY_CHARS);
        let capped = cap(&body);
        assert!(capped.len() < body.len());
        assert!(capped.contains("more bytes"));
    }
}
