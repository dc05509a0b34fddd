//! `GET|HEAD /mmhead/<id>/<size>`: avatar variants, named like WeChat's
//! `wx.qlogo.cn/mmhead/…/<size>` links.
//!
//! An id names content that never changes, so responses are cacheable forever and
//! a new avatar is a new URL: nothing stale can be shown after an update.
//!
//! With a public base for the blobs configured (`GEWE_AVATAR_REDIRECT_BASE`), the
//! bytes are not streamed through the server: the answer is a redirect to the
//! object, given only once the object is known to exist.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{AppState, Services};
use crate::domain::{AvatarId, AvatarSize};
use crate::storage::StorageError;

const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";
/// The object behind a redirect never changes, but the base may be reconfigured
/// (a new CDN): redirects are cached for a day, not forever.
const CACHE_REDIRECT: &str = "public, max-age=86400";

/// 头像图片
///
/// One size of an avatar. Ids name content that never changes, so answers are
/// cacheable forever; `If-None-Match` with the ETag gets 304.
#[utoipa::path(
    get,
    path = "/mmhead/{id}/{size}",
    operation_id = "getAvatar",
    tag = "头像",
    params(
        ("id" = String, Path, description = "Avatar content id (32 hex characters), from getProfile's URLs"),
        ("size" = String, Path, description = "`0` (640 px, or smaller when the picture was), `132`, `96`, `64` or `46`"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg", body = Vec<u8>,
         headers(("ETag" = String), ("Cache-Control" = String, description = "public, max-age=31536000, immutable"))),
        (status = 304, description = "The cached copy is current"),
        (status = 307, description = "With GEWE_AVATAR_REDIRECT_BASE set: the stored object's public address",
         headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such avatar or size"),
    ),
)]
pub async fn serve_variant(
    State(state): State<AppState>,
    Path((id, size)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match parse(&id, &size) {
        Some((id, size)) => answer(&state, id, size, &headers).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The route as registered, as metrics and logs name it.
pub const ROUTE: &str = "/mmhead/{id}/{size}";

/// The avatar a `/mmhead/<id>/<size>` path names, when it names one in plain
/// form. Anything else (other paths, percent-encoded or malformed segments) is
/// left to the router, which answers it like every other request.
pub fn from_path(path: &str) -> Option<(AvatarId, AvatarSize)> {
    let (id, size) = path.strip_prefix("/mmhead/")?.split_once('/')?;
    parse(id, size)
}

fn parse(id: &str, size: &str) -> Option<(AvatarId, AvatarSize)> {
    Some((AvatarId::parse(id).ok()?, AvatarSize::from_label(size)?))
}

/// The answer for one avatar variant, given the request's headers.
pub async fn answer(
    state: &Services,
    id: AvatarId,
    size: AvatarSize,
    headers: &HeaderMap,
) -> Response {
    match state.storage.variant_in_memory(id, size) {
        Some(jpeg) => answer_in_memory(state, id, size, headers, jpeg),
        None => answer_from_store(state, id, size, headers).await,
    }
}

/// The answer for a variant whose bytes are in memory: at once, no store asked.
pub fn answer_in_memory(
    state: &Services,
    id: AvatarId,
    size: AvatarSize,
    headers: &HeaderMap,
    jpeg: Bytes,
) -> Response {
    let etag = etag(id, size);
    let revalidating = matches_if_none_match(headers, etag.as_bytes());
    found(revalidating, state.storage.public_url(id, size), etag, jpeg)
}

/// The answer for a variant not in memory: the store is asked.
///
/// The store's futures are large, and each layer between the connection and
/// here (panic guard, span, request context) would copy them on every read, so
/// they are boxed here, on the way to the store only.
pub async fn answer_from_store(
    state: &Services,
    id: AvatarId,
    size: AvatarSize,
    headers: &HeaderMap,
) -> Response {
    let etag = etag(id, size);
    let revalidating = matches_if_none_match(headers, etag.as_bytes());
    let location = state.storage.public_url(id, size);
    Box::pin(read_store(state, id, size, revalidating, location, etag)).await
}

async fn read_store(
    state: &Services,
    id: AvatarId,
    size: AvatarSize,
    revalidating: bool,
    location: Option<String>,
    etag: HeaderValue,
) -> Response {
    if revalidating || location.is_some() {
        return match state.storage.has_variant(id, size).await {
            Ok(true) => found(revalidating, location, etag, Bytes::new()),
            Ok(false) => StatusCode::NOT_FOUND.into_response(),
            Err(e) => storage_failure(e),
        };
    }
    match state.storage.get_variant(id, size).await {
        Ok(Some(jpeg)) => found(false, None, etag, jpeg),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => storage_failure(e),
    }
}

/// The answer for a variant that exists: 304 when the client's copy is
/// current, else a redirect to its object when there is a public base for the
/// blobs, else the JPEG.
fn found(revalidating: bool, location: Option<String>, etag: HeaderValue, jpeg: Bytes) -> Response {
    if revalidating {
        return cached(StatusCode::NOT_MODIFIED, etag, Body::empty());
    }
    if let Some(location) = location {
        return redirect(&location, etag);
    }
    let mut response = cached(StatusCode::OK, etag, Body::from(jpeg));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    response
}

/// `"<id>-<size>"`, put together without formatting machinery: it is made
/// for every read.
fn etag(id: AvatarId, size: AvatarSize) -> HeaderValue {
    let label = size.label().as_bytes();
    let mut tag = Vec::with_capacity(35 + label.len());
    tag.push(b'"');
    tag.extend_from_slice(&id.hex_digits());
    tag.push(b'-');
    tag.extend_from_slice(label);
    tag.push(b'"');
    HeaderValue::from_maybe_shared(Bytes::from(tag))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// A response cacheable forever, with its ETag.
fn cached(status: StatusCode, etag: HeaderValue, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_FOREVER),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::ETAG, etag);
    response
}

/// 307: the same method at the object's address (a HEAD stays a HEAD).
fn redirect(location: &str, etag: HeaderValue) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = cached(StatusCode::TEMPORARY_REDIRECT, etag, Body::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_REDIRECT),
    );
    headers.insert(header::LOCATION, location);
    response
}

fn storage_failure(err: StorageError) -> Response {
    tracing::error!(error = %err, "cannot read avatar from blob storage");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored.
fn matches_if_none_match(headers: &HeaderMap, etag: &[u8]) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|candidate| candidate.trim())
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/").as_bytes() == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let etag = b"\"abc-0\"";
        for value in ["\"abc-0\"", "W/\"abc-0\"", "\"x\", \"abc-0\"", "*"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            assert!(matches_if_none_match(&headers, etag), "{value}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"abc-132\""),
        );
        assert!(!matches_if_none_match(&headers, etag));
    }
}
