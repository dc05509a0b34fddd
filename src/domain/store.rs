//! The store: what the domain needs from a database, in the domain's words.
//! `repo` implements it for SQLite and PostgreSQL; nothing here knows SQL.
//!
//! Every time a store method records is passed in by the caller (`now`, Unix
//! seconds from the domain's [`Clock`](super::Clock)), so one clock rules them all.

use async_trait::async_trait;

use super::{AppId, AvatarId, NewEvent, Wxid};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (named) already exists.
    #[error("unique constraint violated: {0}")]
    Conflict(&'static str),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Row id of a token; the token itself is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId(pub i64);

/// An account's profile as GeWe's getProfile describes it, with the avatar as an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub app_id: AppId,
    pub wxid: Wxid,
    pub nick_name: String,
    pub alias: String,
    pub mobile: String,
    pub uin: i64,
    pub sex: i64,
    pub province: String,
    pub city: String,
    pub signature: String,
    pub country: String,
    pub reg_country: String,
    pub sns_bg_img: String,
    pub avatar_id: AvatarId,
}

/// A stored avatar: the id of its content-addressed variant set and the side of its
/// largest (`/0`) variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvatarRecord {
    pub id: AvatarId,
    pub side: u32,
}

/// One avatar an account has had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub avatar_id: AvatarId,
    /// The picture address it came from; `None` for the account's first avatar.
    pub source_url: Option<String>,
    pub changed_at: i64,
}

/// Recent avatar changes of one account, for the per-account change limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentChanges {
    pub count: u64,
    /// `changed_at` (Unix seconds) of the oldest change counted.
    pub oldest: Option<i64>,
}

/// Whether `set_avatar` moved the pointer or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarChange {
    Changed,
    Unchanged,
}

/// The whole store, as the rest of the server holds it (`Arc<dyn Repository>`).
/// Each capability has its own part, so each lands in its own room.
#[async_trait]
pub trait Repository:
    TokenStore + AccountStore + CallbackStore + OutboxStore + Send + Sync + 'static
{
    /// Answers when the database does.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// API tokens, by hash.
#[async_trait]
pub trait TokenStore {
    async fn insert_token(
        &self,
        token_hash: &str,
        label: Option<&str>,
        now: i64,
    ) -> Result<TokenId, StoreError>;
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenId>, StoreError>;
}

/// Accounts (devices) and their avatars.
#[async_trait]
pub trait AccountStore {
    /// Creates the account with its first avatar and first history row, atomically.
    async fn insert_account(
        &self,
        owner: TokenId,
        account: &AccountRecord,
        avatar: &AvatarRecord,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The account, only if `owner` owns it: other tenants' devices do not exist.
    async fn find_account(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Option<AccountRecord>, StoreError>;
    async fn list_accounts(&self, owner: TokenId) -> Result<Vec<AccountRecord>, StoreError>;

    /// Points the account at `avatar` and appends a history row, in one transaction.
    /// Returns `None` when the account is not `owner`'s.
    async fn set_avatar(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar: &AvatarRecord,
        source_url: &str,
        now: i64,
    ) -> Result<Option<AvatarChange>, StoreError>;

    /// Every avatar the account has had, oldest first (callers check ownership).
    async fn avatar_history(&self, app_id: &AppId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Avatar changes of `app_id` committed after `since` (Unix seconds): history
    /// rows with a source URL, so the account's first avatar does not count.
    /// Read from the database, so the count holds across server instances.
    async fn avatar_changes_since(
        &self,
        app_id: &AppId,
        since: i64,
    ) -> Result<RecentChanges, StoreError>;
}

/// The one callback URL of each token (setCallback).
#[async_trait]
pub trait CallbackStore {
    /// Sets (or replaces) the token's callback URL.
    async fn set_callback_url(&self, owner: TokenId, url: &str, now: i64)
    -> Result<(), StoreError>;
    async fn callback_url(&self, owner: TokenId) -> Result<Option<String>, StoreError>;
}

/// Where an outbox event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for its (next) attempt.
    Pending,
    /// A 2xx answer came back; pruned after a while.
    Delivered,
    /// Given up (past its maximum age); kept until retried by hand.
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: i64,
    pub owner: TokenId,
    pub app_id: AppId,
    pub type_name: String,
    /// The exact bytes every attempt sends.
    pub payload: String,
    pub state: OutboxState,
    /// Attempts started so far (a claim counts as one).
    pub attempts: i64,
    pub created_at: i64,
    /// Where its age counts from: `created_at`, or the last retry by hand.
    pub age_from: i64,
    /// When the next attempt is due (Unix seconds); meaningful while pending.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub finished_at: Option<i64>,
}

/// Who holds a claim on outbox events, and until when (Unix seconds). A lease
/// that runs out (its holder died) makes the event claimable again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub until: i64,
}

/// The transactional outbox of callback events.
///
/// Events are written by the store transaction of the change that causes them
/// (the engines' `outbox_insert` helper, callable from any statement file), and
/// only for tokens that have a callback URL. The dispatcher claims them with
/// leases, per device in order: an event is claimable only when no older event
/// of the same appId is still pending.
#[async_trait]
pub trait OutboxStore {
    /// Writes `event` on its own (for changes with no other row to write);
    /// `None` when its token has no callback URL, so nothing was written.
    async fn enqueue_event(&self, event: &NewEvent) -> Result<Option<i64>, StoreError>;

    /// Claims up to `limit` due events (`next_attempt_at <= now`, no live
    /// lease), at most one per appId and only the oldest pending one of it,
    /// oldest first; each claim counts as an attempt. Safe across instances
    /// sharing the database.
    async fn claim_events(
        &self,
        now: i64,
        lease: &Lease,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Marks a claimed event delivered; false when `holder` no longer holds it.
    async fn mark_delivered(&self, id: i64, holder: &str, now: i64) -> Result<bool, StoreError>;

    /// Releases a claimed event for another attempt at `next_attempt_at`.
    async fn schedule_retry(
        &self,
        id: i64,
        holder: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// Gives a claimed event up: kept as failed, visible, until retried.
    async fn mark_failed(
        &self,
        id: i64,
        holder: &str,
        now: i64,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// The token's events, newest first (at most `limit`); only failed ones
    /// with `failed_only`.
    async fn list_events(
        &self,
        owner: TokenId,
        failed_only: bool,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    async fn find_event(&self, id: i64) -> Result<Option<OutboxEvent>, StoreError>;

    /// Makes a failed or pending event due now, with a fresh age (so a failed
    /// one gets a whole new retry window). False when there is no such event
    /// or it was already delivered.
    async fn retry_event(&self, id: i64, now: i64) -> Result<bool, StoreError>;

    /// Deletes delivered events finished before `before`; answers how many.
    async fn prune_delivered(&self, before: i64) -> Result<u64, StoreError>;
}
