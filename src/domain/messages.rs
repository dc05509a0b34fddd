//! Text messages: the ones an operator injects (the account receives them and
//! its bot gets an `AddMsg` callback) and the ones a bot sends with
//! message/postText (recorded; like GeWe, no callback).

use std::sync::Arc;

use rand::Rng;

use super::accounts::{identicon_avatar, online_account, online_account_of};
use super::events::{AddMsg, ImgBuf, WxString};
use super::{
    AppId, Clock, ContactRecord, Direction, DomainError, MessageRecord, NewEvent, OutboxSignal,
    Repository, StoreError, TokenId, Wxid,
};
use crate::storage::BlobStore;

/// WeChat's text message type.
pub const TEXT_MSG_TYPE: i64 = 1;
/// The longest text accepted, in characters. WeChat's own limit is not
/// documented; this is the order of what its clients allow in one message.
pub const MAX_TEXT_CHARS: usize = 16_384;
/// The conversation every account has with itself.
pub const FILE_HELPER: &str = "filehelper";
/// How many a contact's or group's name may hold, in characters.
const MAX_NAME_CHARS: usize = 64;

/// A text message an operator makes an account receive.
#[derive(Debug, Clone, Default)]
pub struct InboundText {
    /// The sender's wxid; a new one is made up when absent.
    pub from: Option<String>,
    /// The sender's nickname; kept from before, or made up, when absent.
    pub from_nick_name: Option<String>,
    /// `<id>@chatroom`: the message was said in this group.
    pub chatroom: Option<String>,
    pub chatroom_name: Option<String>,
    pub content: String,
    /// The sender @-mentions the account (groups only).
    pub at_self: bool,
}

/// What an injection generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub message: MessageRecord,
    /// The sender.
    pub from_wxid: String,
    /// The account's wxid.
    pub to_wxid: String,
    pub chatroom: Option<String>,
    /// The outbox event carrying the `AddMsg`; `None` when the token has no
    /// callback URL (nothing will be sent).
    pub event_id: Option<i64>,
    /// The callback body, exactly as it will be POSTed.
    pub payload: String,
}

/// message/postText's input, after the edge parsed the appId.
#[derive(Debug, Clone, Default)]
pub struct OutboundText {
    pub to_wxid: Option<String>,
    pub content: Option<String>,
    /// Comma-separated wxids the message @-mentions (groups), or `notify@all`.
    pub ats: Option<String>,
}

#[derive(Clone)]
pub struct Messages {
    repo: Arc<dyn Repository>,
    storage: BlobStore,
    clock: Clock,
    signal: OutboxSignal,
}

impl Messages {
    pub fn new(
        repo: Arc<dyn Repository>,
        storage: BlobStore,
        clock: Clock,
        signal: OutboxSignal,
    ) -> Self {
        Messages {
            repo,
            storage,
            clock,
            signal,
        }
    }

    /// The owner of `app_id`'s account, for callers that act on any token's
    /// accounts (the operator).
    pub async fn owner_of(&self, app_id: &AppId) -> Result<TokenId, DomainError> {
        self.repo
            .account_owner(app_id)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))
    }

    /// The account receives `text`: contacts and the group are created as
    /// needed, the message is stored, and its `AddMsg` event is written to the
    /// outbox in the same transaction.
    pub async fn inject(&self, app_id: &AppId, text: InboundText) -> Result<Injected, DomainError> {
        let (owner, account) = online_account_of(self.repo.as_ref(), app_id, None).await?;
        let content = checked_content(Some(text.content))?;
        let sender = match text.from {
            Some(from) => parse_wxid("from", &from)?,
            None => Wxid::generate(),
        };
        if sender == account.wxid {
            return Err(invalid("from", "不能是账号自己的wxid".into()));
        }
        let chatroom = text
            .chatroom
            .map(|room| parse_chatroom("chatroomId", &room))
            .transpose()?;
        if text.at_self && chatroom.is_none() {
            return Err(invalid("atSelf", "只有群消息可以@账号".into()));
        }
        let from_contact = self
            .contact(app_id, sender.as_str(), text.from_nick_name.as_deref())
            .await?;
        if let Some(room) = &chatroom {
            self.contact(app_id, room, text.chatroom_name.as_deref())
                .await?;
        }
        let now = self.clock.unix_now();
        let nick = &from_contact.nick_name;
        let (peer, content, push_content) = match &chatroom {
            None => (
                sender.to_string(),
                content.clone(),
                format!("{nick} : {content}"),
            ),
            Some(room) => {
                let said = if text.at_self && !content.contains(&format!("@{}", account.nick_name))
                {
                    // WeChat puts the mention in the text, ended by a
                    // four-per-em space.
                    format!("@{}\u{2005}{content}", account.nick_name)
                } else {
                    content.clone()
                };
                let push = if text.at_self {
                    format!("{nick}在群聊中@了你")
                } else {
                    format!("{nick} : {said}")
                };
                (room.clone(), format!("{sender}:\n{said}"), push)
            }
        };
        let msg_source = msg_source(text.at_self.then_some(account.wxid.as_str()));
        loop {
            let ids = MessageIds::generate();
            let message = MessageRecord {
                app_id: app_id.clone(),
                direction: Direction::Inbound,
                peer: peer.clone(),
                sender: sender.to_string(),
                content: content.clone(),
                msg_id: ids.msg_id,
                new_msg_id: ids.new_msg_id,
                msg_seq: ids.msg_seq,
                created_at: now,
            };
            let data = AddMsg {
                msg_id: ids.msg_id,
                from_user_name: WxString {
                    string: peer.clone(),
                },
                to_user_name: WxString {
                    string: account.wxid.to_string(),
                },
                msg_type: TEXT_MSG_TYPE,
                content: WxString {
                    string: content.clone(),
                },
                status: 3,
                img_status: 1,
                img_buf: ImgBuf { len: 0 },
                create_time: now,
                msg_source: msg_source.clone(),
                push_content: push_content.clone(),
                new_msg_id: ids.new_msg_id,
                msg_seq: ids.msg_seq,
            };
            let event = NewEvent::add_msg(owner, app_id, &account.wxid, &data, now);
            match self.repo.insert_message(&message, Some(&event)).await {
                Ok(event_id) => {
                    if event_id.is_some() {
                        self.signal.committed();
                    }
                    return Ok(Injected {
                        message,
                        from_wxid: sender.to_string(),
                        to_wxid: account.wxid.to_string(),
                        chatroom,
                        event_id,
                        payload: event.payload,
                    });
                }
                // A 64-bit id taken already: draw again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// message/postText: the account sends `text` to a friend, a group or
    /// itself (`filehelper`). Recorded; no callback, as on GeWe.
    pub async fn post_text(
        &self,
        owner: TokenId,
        app_id: &AppId,
        text: OutboundText,
    ) -> Result<MessageRecord, DomainError> {
        let account = online_account(self.repo.as_ref(), owner, app_id).await?;
        let to = text
            .to_wxid
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("toWxid", "toWxid不可为空".into()))?;
        let content = checked_content(text.content)?;
        if to != FILE_HELPER && self.repo.find_contact(app_id, &to).await?.is_none() {
            return Err(invalid("toWxid", format!("[{to}]不是该账号的好友或群聊")));
        }
        if let Some(ats) = text.ats.as_deref().filter(|a| !a.trim().is_empty())
            && !to.ends_with("@chatroom")
        {
            return Err(invalid(
                "ats",
                format!("只有群消息可以@成员，toWxid [{to}] 不是群聊 (ats: {ats})"),
            ));
        }
        loop {
            let ids = MessageIds::generate();
            let message = MessageRecord {
                app_id: app_id.clone(),
                direction: Direction::Outbound,
                peer: to.clone(),
                sender: account.wxid.to_string(),
                content: content.clone(),
                msg_id: ids.msg_id,
                new_msg_id: ids.new_msg_id,
                msg_seq: ids.msg_seq,
                created_at: self.clock.unix_now(),
            };
            match self.repo.insert_message(&message, None).await {
                Ok(_) => return Ok(message),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The account's messages, both ways, oldest first (the newest `limit`).
    pub async fn list(
        &self,
        app_id: &AppId,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, DomainError> {
        Ok(self.repo.list_messages(app_id, limit).await?)
    }

    pub async fn contacts(&self, app_id: &AppId) -> Result<Vec<ContactRecord>, DomainError> {
        Ok(self.repo.list_contacts(app_id).await?)
    }

    /// The friend `wxid` of the account (a fixture's): created if new,
    /// renamed when a different name is given.
    pub async fn friend(
        &self,
        app_id: &AppId,
        wxid: &str,
        nick_name: Option<&str>,
    ) -> Result<ContactRecord, DomainError> {
        let wxid = parse_wxid("wxid", wxid)?;
        self.contact(app_id, wxid.as_str(), nick_name).await
    }

    /// The group `<id>@chatroom` of the account (a fixture's).
    pub async fn group(
        &self,
        app_id: &AppId,
        id: &str,
        name: Option<&str>,
    ) -> Result<ContactRecord, DomainError> {
        let id = parse_chatroom("id", id)?;
        self.contact(app_id, &id, name).await
    }

    /// The contact (or group) `wxid` of the account: created with an
    /// identicon avatar if new, renamed when a different name is given.
    async fn contact(
        &self,
        app_id: &AppId,
        wxid: &str,
        nick_name: Option<&str>,
    ) -> Result<ContactRecord, DomainError> {
        let nick_name = nick_name.map(|n| checked_name("nickName", n)).transpose()?;
        let existing = self.repo.find_contact(app_id, wxid).await?;
        if let Some(contact) = &existing
            && nick_name.as_ref().is_none_or(|n| *n == contact.nick_name)
        {
            return Ok(contact.clone());
        }
        let name = nick_name.unwrap_or_else(|| default_contact_name(wxid));
        let avatar = identicon_avatar(
            self.repo.as_ref(),
            &self.storage,
            &Wxid::from_trusted(wxid.to_owned()),
        )
        .await?;
        let now = self.clock.unix_now();
        self.repo
            .upsert_contact(app_id, wxid, &name, &avatar, now)
            .await?;
        Ok(self
            .repo
            .find_contact(app_id, wxid)
            .await?
            .unwrap_or(ContactRecord {
                wxid: wxid.to_owned(),
                nick_name: name,
                avatar_id: avatar.id,
                created_at: now,
            }))
    }
}

/// The ids WeChat gives a message: `MsgId` and `MsgSeq` are 32-bit-ish,
/// `NewMsgId` is a 64-bit number beyond JavaScript's exact range (2^53), as on
/// WeChat, so clients that parse it as a double notice here, not in production.
struct MessageIds {
    msg_id: i64,
    new_msg_id: i64,
    msg_seq: i64,
}

impl MessageIds {
    fn generate() -> Self {
        let mut rng = rand::rng();
        MessageIds {
            msg_id: rng.random_range(100_000_000..=i64::from(i32::MAX)),
            new_msg_id: rng.random_range((1_i64 << 60)..=i64::MAX),
            msg_seq: rng.random_range(100_000_000..=i64::from(i32::MAX)),
        }
    }
}

/// `MsgSource` as WeChat writes it; with the mentioned wxid in `atuserlist`.
fn msg_source(at: Option<&str>) -> String {
    let mut source = String::from("<msgsource>\n");
    if let Some(wxid) = at {
        source.push_str(&format!("\t<atuserlist><![CDATA[{wxid}]]></atuserlist>\n"));
    }
    let signature: String = {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = rand::rng();
        (0..8)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    source.push_str(&format!(
        "\t<signature>v1_{signature}</signature>\n\t<tmp_node>\n\t\t<publisher-id></publisher-id>\n\t</tmp_node>\n</msgsource>\n"
    ));
    source
}

fn invalid(field: &'static str, detail: String) -> DomainError {
    DomainError::InvalidField { field, detail }
}

fn checked_content(content: Option<String>) -> Result<String, DomainError> {
    let content = content
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| invalid("content", "content不可为空".into()))?;
    let chars = content.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(invalid(
            "content",
            format!("content过长: 最多{MAX_TEXT_CHARS}个字符, 当前{chars}"),
        ));
    }
    Ok(content)
}

fn checked_name(field: &'static str, name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            field,
            format!("{field}须为1到{MAX_NAME_CHARS}个字符且不含控制字符"),
        ));
    }
    Ok(name.to_owned())
}

fn parse_wxid(field: &'static str, value: &str) -> Result<Wxid, DomainError> {
    Wxid::parse(value.trim()).map_err(|_| {
        invalid(
            field,
            format!("{field}不是合法的wxid: 6到32个字母、数字、_或-，以字母开头 ({value})"),
        )
    })
}

/// `<digits or letters>@chatroom`.
fn parse_chatroom(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    let ok = value.strip_suffix("@chatroom").is_some_and(|id| {
        (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            field,
            format!("{field}须为 <群号>@chatroom，例如 34757816141@chatroom ({value})"),
        ))
    }
}

/// A contact's name when nobody gave one: `微信用户` and the id's last four
/// characters, or `群聊` and the group number's.
fn default_contact_name(wxid: &str) -> String {
    match wxid.strip_suffix("@chatroom") {
        Some(id) => format!("群聊{}", tail(id)),
        None => format!("微信用户{}", tail(wxid)),
    }
}

fn tail(text: &str) -> &str {
    let start = text.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_msg_ids_are_beyond_javascript_integers() {
        for _ in 0..100 {
            let ids = MessageIds::generate();
            assert!(ids.new_msg_id > (1_i64 << 53));
            assert!(ids.msg_id > 0 && ids.msg_seq > 0);
        }
    }

    #[test]
    fn mentions_go_into_the_atuserlist() {
        let source = msg_source(Some("wxid_bot123"));
        assert!(source.contains("<atuserlist><![CDATA[wxid_bot123]]></atuserlist>"));
        assert!(!msg_source(None).contains("atuserlist"));
    }

    #[test]
    fn chatroom_ids_are_checked() {
        assert!(parse_chatroom("chatroomId", "34757816141@chatroom").is_ok());
        assert!(parse_chatroom("chatroomId", "34757816141").is_err());
        assert!(parse_chatroom("chatroomId", "a b@chatroom").is_err());
        assert!(parse_chatroom("chatroomId", "@chatroom").is_err());
    }

    #[test]
    fn default_names_use_the_last_four_characters() {
        assert_eq!(default_contact_name("wxid_abcdef1234"), "微信用户1234");
        assert_eq!(default_contact_name("34757816141@chatroom"), "群聊6141");
    }
}
