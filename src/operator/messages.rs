use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Operator, failed};
use crate::api::extract::GeweJson;
use crate::api::{ApiError, AppState, DataOrError, Envelope, ErrorDetail};
use crate::domain::AppId;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMessagesRequest {
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// The newest this many (default 100, at most 1000)
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// `in` (received) or `out` (sent with postText)
    direction: &'static str,
    /// The friend's wxid or the group's id
    peer: String,
    sender: String,
    content: String,
    msg_id: i64,
    new_msg_id: i64,
    create_time: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagesData {
    /// Oldest first
    messages: Vec<MessageView>,
}

/// List an account's messages
///
/// Both ways: injected (received) and sent through message/postText.
#[utoipa::path(
    post,
    path = "/operator/listMessages",
    operation_id = "operatorListMessages",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = ListMessagesRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The messages, or ret 500 with the reason",
         body = Envelope<DataOrError<MessagesData>>, content_type = "application/json"),
    ),
)]
pub async fn list_messages(
    _: Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<ListMessagesRequest>,
) -> Result<Envelope<MessagesData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    state
        .messages
        .owner_of(&app_id)
        .await
        .map_err(|e| failed("查询消息", e))?;
    let messages = state
        .messages
        .list(&app_id, request.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(|e| failed("查询消息", e))?;
    Ok(Envelope::ok(
        "操作成功",
        MessagesData {
            messages: messages
                .into_iter()
                .map(|m| MessageView {
                    direction: m.direction.as_str(),
                    peer: m.peer,
                    sender: m.sender,
                    content: m.content,
                    msg_id: m.msg_id,
                    new_msg_id: m.new_msg_id,
                    create_time: m.created_at,
                })
                .collect(),
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropOfflineRequest {
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
}

/// Drop an account offline
///
/// WeChat drops the online device (as it does to new devices on their first
/// night): the bot gets an `Offline` callback, calls that need the account
/// answer `微信已离线`, and `login/reconnection` brings it back.
#[utoipa::path(
    post,
    path = "/operator/dropOffline",
    operation_id = "operatorDropOffline",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = DropOfflineRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "ret 200 once dropped, or 500 with the reason",
         body = Envelope<ErrorDetail>, content_type = "application/json"),
    ),
)]
pub async fn drop_offline(
    _: Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<DropOfflineRequest>,
) -> Result<Envelope<()>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    state
        .messages
        .owner_of(&app_id)
        .await
        .map_err(|e| failed("掉线", e))?;
    state
        .logins
        .kick(&app_id)
        .await
        .map_err(|e| failed("掉线", e))?;
    Ok(Envelope::done("操作成功"))
}
