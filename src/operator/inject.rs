use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Operator, failed};
use crate::api::extract::GeweJson;
use crate::api::{ApiError, AppState, DataOrError, Envelope};
use crate::domain::{AppId, InboundText};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InjectRequest {
    /// The account that receives the message
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// The sender; made up when absent. Created as a contact on first use.
    #[schema(value_type = Option<String>, example = "wxid_phyyedw9xap22")]
    from_wxid: Option<String>,
    /// The sender's nickname; renames the contact when it differs
    #[schema(value_type = Option<String>, example = "朝夕。")]
    from_nick_name: Option<String>,
    /// Say it in this group (`<id>@chatroom`); created on first use
    #[schema(value_type = Option<String>, example = "34757816141@chatroom")]
    chatroom_id: Option<String>,
    #[schema(value_type = Option<String>, example = "测试群")]
    chatroom_name: Option<String>,
    #[schema(required = true, value_type = String, example = "换头像 https://example.com/me.jpg")]
    content: Option<String>,
    /// The sender @-mentions the account (groups only)
    #[serde(default)]
    at_self: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InjectData {
    msg_id: i64,
    /// 64-bit, exact
    new_msg_id: i64,
    msg_seq: i64,
    create_time: i64,
    from_wxid: String,
    to_wxid: String,
    chatroom_id: Option<String>,
    /// The outbox event carrying the AddMsg; null when the token has no callback URL
    event_id: Option<i64>,
}

/// Inject a text message
///
/// The account receives a text from a friend or in a group: its bot gets an
/// `AddMsg` callback in GeWe's exact shape (through the outbox, like every
/// event). Contacts and groups named are created with identicon avatars.
#[utoipa::path(
    post,
    path = "/operator/injectMessage",
    operation_id = "operatorInjectMessage",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = InjectRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The ids generated, or ret 500 with the reason",
         body = Envelope<DataOrError<InjectData>>, content_type = "application/json"),
        (status = 401, description = "No operator key"),
        (status = 404, description = "The operator API is off"),
    ),
)]
pub async fn inject_message(
    _: Operator,
    State(state): State<AppState>,
    GeweJson(request): GeweJson<InjectRequest>,
) -> Result<Envelope<InjectData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let injected = state
        .messages
        .inject(
            &app_id,
            InboundText {
                from: request.from_wxid,
                from_nick_name: request.from_nick_name,
                chatroom: request.chatroom_id,
                chatroom_name: request.chatroom_name,
                content: request.content.unwrap_or_default(),
                at_self: request.at_self,
            },
        )
        .await
        .map_err(|e| failed("注入消息", e))?;
    Ok(Envelope::ok(
        "操作成功",
        InjectData {
            msg_id: injected.message.msg_id,
            new_msg_id: injected.message.new_msg_id,
            msg_seq: injected.message.msg_seq,
            create_time: injected.message.created_at,
            from_wxid: injected.from_wxid,
            to_wxid: injected.to_wxid,
            chatroom_id: injected.chatroom,
            event_id: injected.event_id,
        },
    ))
}
