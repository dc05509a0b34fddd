use axum::extract::State;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::ClientAddr;
use crate::auth::{IssueError, Issuing, PER_CALL_LIMIT, PER_CALL_WINDOW_SECS};

/// 获取tokenId
///
/// Self-hosted Gewechat style; needs no token, and the body is ignored (clients send
/// nothing or `{}`). `GEWE_TOKEN_ISSUING` picks the answer: `instance` (the default)
/// is the instance's one token, the same on every call, after restarts and on every
/// instance sharing the database; `per-call` issues a new token each call (at most
/// 10 a minute per client address); `off` refuses. Unless the setting is given,
/// issuing is refused while the server listens beyond loopback.
#[utoipa::path(
    post,
    path = "/tools/getTokenId",
    operation_id = "getTokenId",
    tag = "系统功能",
    responses(
        (status = 200, description = "GeWe envelope with the token in `data`, or 500 with the reason",
         body = Envelope<DataOrError<String>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "执行成功", "data": "c9ffbedb9aeb471db49d92453ea21a17"}))),
            ("未开启" = (value = json!({"ret": 500, "msg": "获取tokenId失败", "data": {"code": "token-issuing-disabled",
                "msg": "服务器监听在非回环地址，未设置GEWE_TOKEN_ISSUING时不通过HTTP发放token：请设置GEWE_TOKEN_ISSUING=instance|per-call|off，或由管理员执行 gewe token create"}}))),
         )),
    ),
)]
pub async fn get_token_id(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
) -> Result<Envelope<String>, ApiError> {
    const FAILED: &str = "获取tokenId失败";
    let token = match state.token_issuing {
        Issuing::Instance => state
            .tokens
            .instance_token()
            .await
            .map_err(ApiError::internal)?,
        Issuing::PerCall => match state.tokens.issue_per_call(client).await {
            Ok(issued) => issued.token,
            Err(IssueError::RateLimited { retry_after_secs }) => {
                return Err(ApiError::with_detail(
                    FAILED,
                    "rate-limited",
                    format!(
                        "获取token过于频繁：每个地址每{PER_CALL_WINDOW_SECS}秒最多{PER_CALL_LIMIT}个\
                         (GEWE_TOKEN_ISSUING=per-call)，请在{retry_after_secs}秒后重试"
                    ),
                ));
            }
            Err(IssueError::Store(e)) => return Err(ApiError::internal(e)),
        },
        Issuing::Off => {
            return Err(ApiError::with_detail(
                FAILED,
                "token-issuing-disabled",
                "本服务器已关闭通过HTTP获取token(GEWE_TOKEN_ISSUING=off)，请由管理员执行 gewe token create",
            ));
        }
        Issuing::NotOnLoopback => {
            return Err(ApiError::with_detail(
                FAILED,
                "token-issuing-disabled",
                "服务器监听在非回环地址，未设置GEWE_TOKEN_ISSUING时不通过HTTP发放token：\
                 请设置GEWE_TOKEN_ISSUING=instance|per-call|off，或由管理员执行 gewe token create",
            ));
        }
    };
    Ok(Envelope::ok("执行成功", token))
}
