use axum::extract::State;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};

/// 获取tokenId
///
/// Issues a new token (self-hosted Gewechat style); needs none. The body is ignored
/// (clients send nothing or `{}`). Operators can switch this off and issue tokens
/// with `gewe token create` instead.
#[utoipa::path(
    post,
    path = "/tools/getTokenId",
    operation_id = "getTokenId",
    tag = "系统功能",
    responses(
        (status = 200, description = "GeWe envelope with the new token in `data`",
         body = Envelope<DataOrError<String>>, content_type = "application/json",
         example = json!({"ret": 200, "msg": "执行成功", "data": "c9ffbedb9aeb471db49d92453ea21a17"})),
    ),
)]
pub async fn get_token_id(State(state): State<AppState>) -> Result<Envelope<String>, ApiError> {
    if !state.token_issuing {
        return Err(ApiError::with_detail(
            "获取tokenId失败",
            "token-issuing-disabled",
            "本服务器已关闭通过HTTP获取token，请由管理员执行 gewe token create",
        ));
    }
    let issued = state.tokens.issue(None).await.map_err(ApiError::internal)?;
    Ok(Envelope::ok("执行成功", issued.token))
}
