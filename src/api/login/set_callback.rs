use axum::extract::State;
use axum::http::HeaderMap;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope, ErrorDetail};
use crate::api::extract::{Caller, GeweJson};
use crate::api::tools::set_callback::{SetCallbackRequest, handle};

/// 设置消息回调地址 (cloud path)
///
/// The cloud GeWe path of `tools/setCallback`: same body, same ping, same answers.
#[utoipa::path(
    post,
    path = "/login/setCallback",
    operation_id = "loginSetCallback",
    tag = "登录模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = SetCallbackRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: success without data, or the push failure's reason",
         body = Envelope<ErrorDetail>, content_type = "application/json",
         example = json!({"ret": 500, "msg": "http://127.0.0.1:9/cb push msg err",
                          "data": {"code": "callback-connect", "msg": "无法连接回调地址"}})),
    ),
)]
pub async fn login_set_callback(
    State(state): State<AppState>,
    Caller(owner): Caller,
    headers: HeaderMap,
    GeweJson(request): GeweJson<SetCallbackRequest>,
) -> Result<Envelope<()>, ApiError> {
    handle(&state, owner, &headers, request).await
}
