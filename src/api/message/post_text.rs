use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::envelope::{ApiError, DataOrError, Envelope};
use crate::api::extract::{Caller, GeweJson};
use crate::domain::{AppId, OutboundText, TEXT_MSG_TYPE};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostTextRequest {
    /// 设备ID
    #[schema(required = true, value_type = String, example = "wx_wR_U4zPj2M_OTS3BCyoE4")]
    app_id: Option<String>,
    /// 好友/群的ID: a friend's wxid, `<id>@chatroom` or `filehelper`
    #[schema(required = true, value_type = String, example = "34757816141@chatroom")]
    to_wxid: Option<String>,
    /// 消息内容
    #[schema(required = true, value_type = String, example = "@猿猴 我在测试艾特内容")]
    content: Option<String>,
    /// @的好友，多个英文逗号分隔 (groups only); `notify@all` for everyone
    #[schema(value_type = Option<String>, example = "wxid_phyyedw9xap22")]
    ats: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostTextData {
    #[schema(example = "34757816141@chatroom")]
    to_wxid: String,
    /// Unix seconds
    #[schema(example = 1703841160)]
    create_time: i64,
    #[schema(example = 640355969)]
    msg_id: i64,
    /// 64-bit: beyond JavaScript's exact integers, as on WeChat
    #[schema(example = 3768973957878705000_i64)]
    new_msg_id: i64,
    /// WeChat's message type: 1, text
    #[serde(rename = "type")]
    #[schema(example = 1)]
    msg_type: i64,
}

/// 发送文字消息
///
/// The account sends a text to a friend, a group it is in, or `filehelper`.
/// The message is recorded (the operator API's journal and message list show
/// it); like GeWe, a message sent through the API produces no callback. A
/// `toWxid` the account does not know, an empty or too long content, and
/// `ats` outside a group are refused with the field named.
#[utoipa::path(
    post,
    path = "/message/postText",
    operation_id = "postText",
    tag = "消息模块",
    security(("X-GEWE-TOKEN" = [])),
    request_body(content = PostTextRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "GeWe envelope: `ret` 200 with the sent message's ids, or 500 with the reason",
         body = Envelope<DataOrError<PostTextData>>, content_type = "application/json",
         examples(
            ("成功" = (value = json!({"ret": 200, "msg": "操作成功", "data": {
                "toWxid": "34757816141@chatroom", "createTime": 1703841160, "msgId": 640355969,
                "newMsgId": 3768973957878705000_i64, "type": 1}}))),
            ("不是好友" = (value = json!({"ret": 500, "msg": "发送文字消息失败",
                "data": {"code": "invalid-field", "msg": "[wxid_nobody]不是该账号的好友或群聊"}}))),
            ("微信已离线" = (value = json!({"ret": 500, "msg": "发送文字消息失败",
                "data": {"code": "-1", "msg": "微信已离线"}}))),
         )),
    ),
)]
pub async fn post_text(
    State(state): State<AppState>,
    Caller(owner): Caller,
    GeweJson(request): GeweJson<PostTextRequest>,
) -> Result<Envelope<PostTextData>, ApiError> {
    let app_id = AppId::parse(request.app_id)?;
    let sent = state
        .messages
        .post_text(
            owner,
            &app_id,
            OutboundText {
                to_wxid: request.to_wxid,
                content: request.content,
                ats: request.ats,
            },
        )
        .await
        .map_err(|e| ApiError::operation("发送文字消息", e))?;
    Ok(Envelope::ok(
        "操作成功",
        PostTextData {
            to_wxid: sent.peer,
            create_time: sent.created_at,
            msg_id: sent.msg_id,
            new_msg_id: sent.new_msg_id,
            msg_type: TEXT_MSG_TYPE,
        },
    ))
}
