//! What the test control plane needs from the store: operator keys, contacts,
//! messages, the journal of GeWe calls and fault rules, in the domain's words.

use async_trait::async_trait;

use super::{AppId, AvatarId, AvatarRecord, NewEvent, StoreError, TokenId};

/// A friend (`wxid_…`) or a group (`…@chatroom`) an account knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub wxid: String,
    pub nick_name: String,
    pub avatar_id: AvatarId,
    pub created_at: i64,
}

/// Which way a message went, seen from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Injected by an operator: the account received it (an `AddMsg` callback).
    Inbound,
    /// Sent by the bot through message/postText.
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "in",
            Self::Outbound => "out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "in" => Some(Self::Inbound),
            "out" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// One message, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub app_id: AppId,
    pub direction: Direction,
    /// The conversation: the friend's wxid or the group's id.
    pub peer: String,
    /// Who wrote it: the friend, the group member, or the account itself.
    pub sender: String,
    pub content: String,
    pub msg_id: i64,
    /// WeChat's 64-bit message id; unique.
    pub new_msg_id: i64,
    pub msg_seq: i64,
    pub created_at: i64,
}

/// One GeWe call, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: i64,
    /// The caller's token; `None` when the call carried no usable token.
    pub owner: Option<TokenId>,
    /// Unix milliseconds when the call arrived.
    pub at_ms: i64,
    /// `module/action`, e.g. `personal/updateHeadImg`.
    pub route: String,
    pub app_id: Option<String>,
    /// The request body (capped, `token` fields redacted).
    pub request: String,
    /// The answer body (capped).
    pub response: String,
    pub duration_ms: i64,
}

/// Which journal entries a query wants, newest last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalQuery {
    pub owner: Option<TokenId>,
    pub route: Option<String>,
    pub app_id: Option<String>,
    /// Only calls at or after this Unix millisecond.
    pub since_ms: Option<i64>,
    /// Only entries with a larger id (for polling).
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// A fault rule: which calls it takes, and what they get instead.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub id: i64,
    /// Only this token's calls; `None`: every token's.
    pub owner: Option<TokenId>,
    /// `module/action`.
    pub route: String,
    pub app_id: Option<String>,
    /// The body to answer instead of calling the route.
    pub answer: Option<String>,
    /// Wait this long first (then answer, or call the route).
    pub delay_ms: i64,
    /// Close the connection without an answer.
    pub close: bool,
    /// Calls it still takes; `None`: unlimited.
    pub remaining: Option<i64>,
    /// The fraction of matching calls it takes; `None`: all.
    pub probability: Option<f64>,
    /// Seeds the draws of `probability`, so a run is reproducible.
    pub seed: i64,
    /// Matching calls seen so far (the index of the next draw).
    pub draws: i64,
    /// Calls it took.
    pub hits: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// Decides, for a matching rule as it stands, whether it takes this call.
pub type FaultDraw<'a> = &'a (dyn Fn(&FaultRule) -> bool + Send + Sync);

/// The control plane's part of the store.
#[async_trait]
pub trait ControlStore {
    async fn insert_operator_key(
        &self,
        key_hash: &str,
        label: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError>;
    async fn operator_key_exists(&self, key_hash: &str) -> Result<bool, StoreError>;
    async fn count_operator_keys(&self) -> Result<i64, StoreError>;

    /// The token owning `app_id`'s account, for the operator (who acts on
    /// every token's accounts).
    async fn account_owner(&self, app_id: &AppId) -> Result<Option<TokenId>, StoreError>;

    async fn find_contact(
        &self,
        app_id: &AppId,
        wxid: &str,
    ) -> Result<Option<ContactRecord>, StoreError>;
    /// Creates the contact, or renames it; its avatar row is stored if new.
    async fn upsert_contact(
        &self,
        app_id: &AppId,
        wxid: &str,
        nick_name: &str,
        avatar: &AvatarRecord,
        now: i64,
    ) -> Result<(), StoreError>;
    async fn list_contacts(&self, app_id: &AppId) -> Result<Vec<ContactRecord>, StoreError>;

    /// Stores a message and, in the same transaction, the callback event it
    /// causes (when the token has a callback URL): answers the event id.
    async fn insert_message(
        &self,
        message: &MessageRecord,
        event: Option<&NewEvent>,
    ) -> Result<Option<i64>, StoreError>;
    /// The account's messages, oldest first, at most `limit` (the newest ones).
    async fn list_messages(
        &self,
        app_id: &AppId,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// Appends a call to the journal; with `trim_to`, then keeps only that many
    /// of its token's newest entries.
    async fn append_journal(
        &self,
        entry: &JournalEntry,
        trim_to: Option<i64>,
    ) -> Result<(), StoreError>;
    async fn query_journal(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, StoreError>;
    /// Forgets the token's calls (every call with `None`); answers how many.
    async fn clear_journal(&self, owner: Option<TokenId>) -> Result<u64, StoreError>;

    async fn insert_fault(&self, rule: &FaultRule) -> Result<i64, StoreError>;
    /// The rules that apply to the token (its own and the global ones); every
    /// rule with `None`.
    async fn list_faults(&self, owner: Option<TokenId>) -> Result<Vec<FaultRule>, StoreError>;
    async fn clear_faults(&self, owner: Option<TokenId>) -> Result<u64, StoreError>;
    /// The first live rule (oldest first) matching the call that `draw` lets
    /// take it. Every matching rule looked at counts a draw, and the rule taken
    /// counts a hit and uses one of its calls, in one transaction, so racing
    /// calls never use a call twice.
    async fn take_fault(
        &self,
        owner: Option<TokenId>,
        route: &str,
        app_id: Option<&str>,
        now: i64,
        draw: FaultDraw<'_>,
    ) -> Result<Option<FaultRule>, StoreError>;

    /// Deletes everything `owner` owns but the token itself and its callback
    /// URL: accounts and devices with their history, contacts and messages,
    /// login sessions, pending and past events, journal and fault rules.
    /// Answers how many accounts or devices went.
    async fn reset_owner(&self, owner: TokenId) -> Result<u64, StoreError>;
}
