//! Extractors that answer in the GeWe envelope when a request is unusable.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;

use super::AppState;
use super::envelope::ApiError;
use crate::domain::TokenId;

/// GeWe request bodies are small JSON objects; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const TOKEN_HEADER: &str = "X-GEWE-TOKEN";

/// The owner of the `X-GEWE-TOKEN` the request carries.
pub struct Caller(pub TokenId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(TOKEN_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        Ok(Caller(state.tokens.authenticate(header).await?))
    }
}

/// The address of the peer, when the server was started with connect info
/// (`gewe serve` is); `None` otherwise.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// A JSON body parsed into `T`, with errors that name the problem. An empty body
/// counts as `{}`, and unknown fields are ignored (clients send `proxyIp`).
pub struct GeweJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for GeweJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
        let body = read_body(request.into_body(), state.body_timeout).await?;
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        if body != b"{}" && !content_type.as_deref().is_some_and(is_json_media_type) {
            return Err(ApiError::with_detail(
                "Content-Type错误",
                "unsupported-media-type",
                format!(
                    "请求体须为JSON，Content-Type应为application/json，收到: {}",
                    content_type.as_deref().unwrap_or("(无)")
                ),
            ));
        }
        // serde would happily read a struct from a JSON array; GeWe bodies are objects.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::with_detail(
                "请求参数错误",
                "invalid-body",
                "请求体须为JSON对象，例如 {\"appId\":\"wx_…\"}",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_data() {
                ApiError::with_detail(
                    format!("{path}类型错误"),
                    "invalid-field-type",
                    inner.to_string(),
                )
            } else {
                ApiError::with_detail("请求体不是合法的JSON", "invalid-json", inner.to_string())
            }
        })?;
        deserializer.end().map_err(|e| {
            ApiError::with_detail("请求体不是合法的JSON", "invalid-json", e.to_string())
        })?;
        Ok(GeweJson(value))
    }
}

/// A GeWe request body, whole: at most [`MAX_BODY_BYTES`], within `timeout`
/// (a client trickling its body must not hold the request, and a connection,
/// for ever).
pub async fn read_body(
    body: axum::body::Body,
    timeout: std::time::Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let read = axum::body::to_bytes(body, MAX_BODY_BYTES);
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| {
            ApiError::with_detail(
                "读取请求体超时",
                "body-timeout",
                format!("请求体须在{}秒内发送完毕", timeout.as_secs_f32()),
            )
        })?
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::with_detail(
                    "请求体过大",
                    "body-too-large",
                    format!("请求体不能超过{}KiB", MAX_BODY_BYTES / 1024),
                )
            } else {
                ApiError::with_detail("读取请求体失败", "body-read", e.to_string())
            }
        })
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence == "application/json" || essence.ends_with("+json")
}
