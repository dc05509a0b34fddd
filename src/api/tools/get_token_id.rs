use axum::extract::State;

use crate::api::AppState;
use crate::api::envelope::{ApiError, Envelope};

/// `POST {prefix}/tools/getTokenId` — issues a new token; needs none. The body is
/// ignored (clients send nothing or `{}`).
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
