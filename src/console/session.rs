//! Console sign-in: sessions stored (hashed) in the database, the cookie that
//! carries the session id, and the CSRF synchroniser token tied to it.
//!
//! A session id is 256 random bits; the database keeps only its SHA-256, like
//! tokens. The CSRF token of a session is derived from its id (so it needs no
//! storage and dies with the session); before sign-in, a short-lived random
//! cookie plays the session's part for the sign-in form.

use axum::http::{HeaderMap, HeaderValue, header};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{ConsoleSessionRecord, Principal, Repository, StoreError};

/// The session cookie.
pub const SESSION_COOKIE: &str = "gewe_console";
/// The sign-in form's cookie, before there is a session.
pub const PRE_COOKIE: &str = "gewe_console_pre";
/// How long a sign-in lasts.
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;

/// A signed-in browser: who it acts as, and the session id its cookie carries.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    id: String,
}

impl Session {
    /// The CSRF token every form of this session must send back.
    pub fn csrf(&self) -> String {
        csrf_for(&self.id)
    }

    pub fn hash(&self) -> String {
        hash_id(&self.id)
    }
}

pub fn new_id() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The synchroniser token of a session (or pre-session) id: one-way, so the
/// token in a page reveals nothing of the cookie.
pub fn csrf_for(id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"gewe-server console csrf v1\0");
    hasher.update(id.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Compares in time independent of where the strings differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request, if it is there and id-shaped.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/console`, Secure
/// when the public URL is https. `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are hex")
}

/// The session the request's cookie names, if it is live.
pub async fn current(
    repo: &dyn Repository,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Session>, StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(repo
        .find_console_session(&hash_id(&id), now)
        .await?
        .map(|record| Session {
            principal: record.principal,
            id,
        }))
}

/// Starts a session for `principal`; answers its id (for the cookie).
pub async fn start(
    repo: &dyn Repository,
    principal: Principal,
    now: i64,
) -> Result<String, StoreError> {
    // Expired sessions go when new ones come.
    repo.prune_console_sessions(now).await?;
    let id = new_id();
    repo.insert_console_session(
        &hash_id(&id),
        &ConsoleSessionRecord {
            principal,
            created_at: now,
            expires_at: now + SESSION_TTL_SECS,
        },
    )
    .await?;
    Ok(id)
}

/// Whether a form post comes from our own pages: a browser's
/// `Sec-Fetch-Site` and `Origin` (when sent) must name this site.
pub fn same_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match text("origin") {
        None => true,
        Some(origin) => {
            let host = text("host").unwrap_or_default();
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_depends_on_the_session_and_hides_it() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert_eq!(csrf_for(&a), csrf_for(&a));
        assert!(!a.contains(&csrf_for(&a)));
        assert!(same(&csrf_for(&a), &csrf_for(&a)));
        assert!(!same(&csrf_for(&a), &csrf_for(&b)));
    }

    #[test]
    fn foreign_origins_are_not_same_site() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        assert!(same_site(&headers(&[("host", "127.0.0.1:2531")])));
        assert!(same_site(&headers(&[
            ("host", "127.0.0.1:2531"),
            ("origin", "http://127.0.0.1:2531")
        ])));
        assert!(!same_site(&headers(&[
            ("host", "127.0.0.1:2531"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_site(&headers(&[
            ("host", "127.0.0.1:2531"),
            ("origin", "null")
        ])));
        assert!(!same_site(&headers(&[
            ("host", "127.0.0.1:2531"),
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
