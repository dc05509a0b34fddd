//! Callback events in GeWe's shape (reference §7), built here and nowhere else.
//!
//! An event is serialised once, when it is written to the outbox; the dispatcher
//! sends those stored bytes on every attempt, so a retry is byte-for-byte the
//! same request.

use serde::Serialize;

use super::{AppId, TokenId, Wxid};

/// The body setCallback POSTs before it answers (reference §11).
pub const TEST_MSG: &str = "回调地址链接成功！";

/// `{"testMsg":"回调地址链接成功！","token":"<token>"}`, the setCallback ping.
pub fn test_ping(token: &str) -> String {
    #[derive(Serialize)]
    struct Ping<'a> {
        #[serde(rename = "testMsg")]
        test_msg: &'a str,
        token: &'a str,
    }
    serde_json::to_string(&Ping {
        test_msg: TEST_MSG,
        token,
    })
    .expect("two strings serialise")
}

/// The kinds of callback events this server emits. GeWe documents more
/// (`AddMsg`, `ModContacts`, `DelContacts`); they arrive with the features that
/// cause them, never invented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The device went offline (logout, kick): `{TypeName, Appid, Wxid}`, no `Data`.
    Offline,
    /// A message arrived (here: injected by an operator).
    AddMsg,
}

impl EventType {
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Offline => "Offline",
            Self::AddMsg => "AddMsg",
        }
    }
}

/// `{TypeName, Appid, Wxid[, Data]}` in this key order, as GeWe sends them.
#[derive(Debug, Serialize)]
struct Envelope<'a, D> {
    #[serde(rename = "TypeName")]
    type_name: &'static str,
    #[serde(rename = "Appid")]
    app_id: &'a str,
    #[serde(rename = "Wxid")]
    wxid: &'a str,
    #[serde(rename = "Data", skip_serializing_if = "Option::is_none")]
    data: Option<&'a D>,
}

/// `{"string": …}`, how WeChat wraps user names and contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WxString {
    pub string: String,
}

/// `{"iLen": 0}`: a text message carries no picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImgBuf {
    #[serde(rename = "iLen")]
    pub len: i64,
}

/// The `Data` of a text `AddMsg`, keys in GeWe's order (reference §7).
/// `NewMsgId` is beyond 2^53: it is written as an exact integer, as GeWe does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddMsg {
    pub msg_id: i64,
    pub from_user_name: WxString,
    pub to_user_name: WxString,
    pub msg_type: i64,
    pub content: WxString,
    pub status: i64,
    pub img_status: i64,
    pub img_buf: ImgBuf,
    pub create_time: i64,
    pub msg_source: String,
    pub push_content: String,
    pub new_msg_id: i64,
    pub msg_seq: i64,
}

/// Rings this process's callback dispatcher when an event is committed, so it
/// delivers at once instead of at its next poll. Instances sharing the
/// database still find each other's events by polling.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(std::sync::Arc<tokio::sync::Notify>);

impl OutboxSignal {
    /// After the commit that wrote an event. A ring with nobody waiting is
    /// kept for the next wait, so none is lost.
    pub fn committed(&self) {
        self.0.notify_one();
    }

    /// Until the next ring.
    pub async fn rung(&self) {
        self.0.notified().await;
    }
}

/// An event for the outbox: whom it goes to (the token's callback URL at
/// delivery time), which device's queue it joins, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub owner: TokenId,
    pub app_id: AppId,
    pub type_name: &'static str,
    /// The JSON body, exactly as it will be POSTed.
    pub payload: String,
    /// Unix seconds; the event's age (and so its give-up time) counts from here.
    pub created_at: i64,
}

impl NewEvent {
    /// `{"TypeName":"Offline","Appid":…,"Wxid":…}` — no `Data` key (reference §7).
    pub fn offline(owner: TokenId, app_id: &AppId, wxid: &Wxid, now: i64) -> Self {
        Self::build::<()>(owner, app_id, wxid, EventType::Offline, None, now)
    }

    /// `{"TypeName":"AddMsg",…,"Data":{…}}` for a text message the account got.
    pub fn add_msg(owner: TokenId, app_id: &AppId, wxid: &Wxid, data: &AddMsg, now: i64) -> Self {
        Self::build(owner, app_id, wxid, EventType::AddMsg, Some(data), now)
    }

    fn build<D: Serialize>(
        owner: TokenId,
        app_id: &AppId,
        wxid: &Wxid,
        kind: EventType,
        data: Option<&D>,
        now: i64,
    ) -> Self {
        let payload = serde_json::to_string(&Envelope {
            type_name: kind.type_name(),
            app_id: app_id.as_str(),
            wxid: wxid.as_str(),
            data,
        })
        .expect("strings and a JSON value serialise");
        NewEvent {
            owner,
            app_id: app_id.clone(),
            type_name: kind.type_name(),
            payload,
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_has_no_data_key() {
        let app_id = AppId::from_trusted("wx_abc".to_owned());
        let wxid = Wxid::from_trusted("wxid_abc".to_owned());
        let event = NewEvent::offline(TokenId(1), &app_id, &wxid, 5);
        assert_eq!(
            event.payload,
            "{\"TypeName\":\"Offline\",\"Appid\":\"wx_abc\",\"Wxid\":\"wxid_abc\"}"
        );
        assert_eq!(event.type_name, "Offline");
    }

    #[test]
    fn the_ping_is_byte_exact() {
        assert_eq!(
            test_ping("abc"),
            "{\"testMsg\":\"回调地址链接成功！\",\"token\":\"abc\"}"
        );
    }
}
