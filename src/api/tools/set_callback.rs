use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope, ErrorDetail};
use crate::api::extract::{Caller, GeweJson, TOKEN_HEADER};
use crate::domain::{CallbackError, TokenId};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCallbackRequest {
    /// The caller's token again; must equal the `X-GEWE-TOKEN` header
    #[schema(required = true, value_type = String, example = "c9ffbedb9aeb471db49d92453ea21a17")]
    token: Option<String>,
    /// Where events are POSTed (one URL per token; replaces the previous one)
    #[schema(required = true, value_type = String, example = "http://127.0.0.1:9919/v2/api/callback/collect")]
    callback_url: Option<String>,
}

/// 设置消息回调地址
///
/// Before answering, POSTs `{"testMsg":"回调地址链接成功！","token":"<token>"}` to
/// `callbackUrl` (3 s limit; redirects not followed). A 2xx answer makes it the
/// token's callback URL; anything else answers `<url> push msg err` with the
/// reason and keeps the previous URL. Internal destinations are refused unless
/// allowed by `GEWE_CALLBACK_ALLOW_NETS` (loopback is allowed while the server
/// listens on loopback only). Registered under `tools/` (self-hosted Gewechat)
/// and `login/` (cloud GeWe); both do the same.
#[utoipa::path(
    post,
    path = "/tools/setCallback",
    operation_id = "setCallback",
    tag = "系统功能",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = SetCallbackRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: success without data, or the push failure's reason",
         body = Envelope<ErrorDetail>, content_type = "application/json",
         example = json!({"ret": 200, "msg": "操作成功"})),
    ),
)]
pub async fn set_callback(
    State(state): State<AppState>,
    Caller(owner): Caller,
    headers: HeaderMap,
    GeweJson(request): GeweJson<SetCallbackRequest>,
) -> Result<Envelope<()>, ApiError> {
    handle(&state, owner, &headers, request).await
}

/// The one implementation behind both paths.
pub(in crate::api) async fn handle(
    state: &AppState,
    owner: TokenId,
    headers: &HeaderMap,
    request: SetCallbackRequest,
) -> Result<Envelope<()>, ApiError> {
    let token = request
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new("token不可为空"))?;
    let header = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if !token.eq_ignore_ascii_case(header) {
        return Err(ApiError::with_detail(
            "token与header:X-GEWE-TOKEN不一致",
            "token-mismatch",
            "请求体中的token须与请求头X-GEWE-TOKEN相同：回调地址属于该token",
        ));
    }
    let url = request
        .callback_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::new("callbackUrl不可为空"))?;
    match state.callbacks.set_callback(owner, token, url).await {
        Ok(()) => Ok(Envelope::done("操作成功")),
        Err(CallbackError::Push { code, reason }) => Err(ApiError::with_detail(
            format!("{url} push msg err"),
            code,
            reason,
        )),
        Err(CallbackError::Domain(e)) => Err(ApiError::operation("设置回调地址", e)),
    }
}
