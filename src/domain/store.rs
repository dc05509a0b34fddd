//! The store: what the domain needs from a database, in the domain's words.
//! `repo` implements it for SQLite and PostgreSQL; nothing here knows SQL.
//!
//! Every time a store method records is passed in by the caller (`now`, Unix
//! seconds from the domain's [`Clock`](super::Clock)), so one clock rules them all.

use async_trait::async_trait;

use super::{AppId, AvatarId, ControlStore, NewEvent, Wxid};

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

/// What a picture URL answered when an avatar was last made from it: its strong
/// ETag, and the avatar of the bytes that came with it; with the avatar the
/// account asking points at now (`None` when it is not the asker's), so that a
/// 304 for that very avatar needs no further read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSource {
    pub etag: String,
    pub avatar: AvatarRecord,
    pub account_avatar: Option<AvatarId>,
}

/// One avatar an account has had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub avatar_id: AvatarId,
    /// The picture address it came from; `None` for the account's first avatar.
    pub source_url: Option<String>,
    pub changed_at: i64,
}

/// Where a new avatar came from: the picture's address and the SHA-256 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvatarSource<'a> {
    pub url: &'a str,
    /// `None` when no picture was decoded (an earlier avatar used again): nothing
    /// new to remember for `avatar_for_source`.
    pub hash: Option<&'a str>,
    /// The strong ETag `url` answered these bytes with, when `hash` is set: kept
    /// for the next fetch of `url` (none: what `url` had before is forgotten).
    pub etag: Option<&'a str>,
    /// `avatar` was found in the store (avatars are never deleted): the commit
    /// has no avatar row to write.
    pub stored: bool,
    /// The change-limit slot this change was reserved under, if any: deleted by
    /// the same transaction that commits the change.
    pub slot: Option<ChangeSlot>,
}

/// An avatar change reserved under the per-account change limit (a row id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChangeSlot(pub i64);

/// What [`AccountStore::reserve_avatar_change`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeReservation {
    Reserved(ChangeSlot),
    /// No slot left: the changes committed in the window and the slots still
    /// held add up to the limit. `oldest` is the earliest of both.
    Full(RecentChanges),
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
    TokenStore
    + AccountStore
    + ProfileStore
    + LoginDeviceStore
    + SecretStore
    + InstanceTokenStore
    + DeviceStore
    + LoginSessionStore
    + CallbackStore
    + OutboxStore
    + ControlStore
    + ConsoleStore
    + TokenAdminStore
    + MaintenanceStore
    + Send
    + Sync
    + 'static
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

/// A token as `gewe token list` shows it: never the token, not even its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub label: Option<String>,
    pub created_at: i64,
    /// Unix seconds of its last use, to the minute; `None`: never used.
    pub last_used_at: Option<i64>,
}

/// The operator's side of tokens: list, revoke, and when each was last used.
#[async_trait]
pub trait TokenAdminStore {
    /// Every token not revoked, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes token `id`: it no longer authenticates. `false` when there is no
    /// such token or it was revoked already.
    async fn revoke_token(&self, id: TokenId, now: i64) -> Result<bool, StoreError>;
    /// Records that token `id` was used at `now`.
    async fn touch_token(&self, id: TokenId, now: i64) -> Result<(), StoreError>;
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

    /// Points the account at `avatar`, appends a history row and remembers that
    /// `source_hash` (SHA-256 of the picture's bytes, hex) renders to it and
    /// which ETag its URL answered them with, in one transaction, which also
    /// deletes the source's change-limit slot (changed or not). Returns `None`
    /// when the account is not `owner`'s.
    async fn set_avatar(
        &self,
        owner: TokenId,
        app_id: &AppId,
        avatar: &AvatarRecord,
        source: &AvatarSource<'_>,
        now: i64,
    ) -> Result<Option<AvatarChange>, StoreError>;

    /// The avatar already rendered from a picture with this SHA-256, if any.
    async fn avatar_for_source(
        &self,
        source_hash: &str,
    ) -> Result<Option<AvatarRecord>, StoreError>;

    /// The ETag `url` last answered and the avatar made from its bytes, if it
    /// answered one, with the avatar `owner`'s account `app_id` points at now.
    async fn known_source(
        &self,
        owner: TokenId,
        app_id: &AppId,
        url: &str,
    ) -> Result<Option<KnownSource>, StoreError>;

    /// Every avatar the account has had, oldest first (callers check ownership).
    async fn avatar_history(&self, app_id: &AppId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Takes a slot for one avatar change of `app_id` if, counting the changes
    /// committed after `since` (as [`Self::avatar_changes_since`] does) and the
    /// unexpired slots held, fewer than `max` are taken. Counted and taken under
    /// the account row's lock, so callers racing on any instance sharing the
    /// database never take more than `max`. Expired slots (`expires_at <= now`,
    /// left by a process that died) are dropped. `None` when there is no such
    /// account.
    async fn reserve_avatar_change(
        &self,
        app_id: &AppId,
        since: i64,
        max: u64,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<ChangeReservation>, StoreError>;

    /// Gives a slot back (the update failed); a slot already gone is no error.
    async fn release_avatar_change(&self, slot: ChangeSlot) -> Result<(), StoreError>;

    /// Avatar changes of `app_id` committed after `since` (Unix seconds): history
    /// rows with a source URL, so the account's first avatar does not count.
    /// Read from the database, so the count holds across server instances.
    async fn avatar_changes_since(
        &self,
        app_id: &AppId,
        since: i64,
    ) -> Result<RecentChanges, StoreError>;
}

/// Secrets made once per database and shared by every instance using it.
#[async_trait]
pub trait SecretStore {
    /// The server's 32 random bytes, created on first use. Race-safe: instances
    /// asking at once all get the one secret that was stored first.
    async fn server_secret(&self) -> Result<[u8; 32], StoreError>;
}

/// Tokens whose plaintext is derived, not random: stored by hash like any other,
/// but inserted idempotently.
#[async_trait]
pub trait InstanceTokenStore {
    /// The id of the token with this hash, inserting it if it is not there yet.
    async fn ensure_token(
        &self,
        token_hash: &str,
        label: Option<&str>,
        now: i64,
    ) -> Result<TokenId, StoreError>;
}

/// Whether a device's account is logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginState {
    Online,
    /// Logged out (`login/logout`): a new login (QR or dialogLogin) is needed.
    Offline,
    /// Dropped by WeChat (`gewe account kick`): `login/reconnection` brings it back.
    Dropped,
}

impl LoginState {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginState::Online => "online",
            LoginState::Offline => "offline",
            LoginState::Dropped => "dropped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "online" => Some(LoginState::Online),
            "offline" => Some(LoginState::Offline),
            "dropped" => Some(LoginState::Dropped),
            _ => None,
        }
    }
}

/// A device (appId): its owner, the wxid it is bound to once an account logged in
/// on it, and its login state. Accounts made by `gewe account create` are devices
/// bound to their wxid and online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub app_id: AppId,
    pub owner: TokenId,
    pub wxid: Option<Wxid>,
    pub state: LoginState,
}

/// Where a login QR (or dialogLogin prompt) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStage {
    /// Nobody scanned yet (status 0).
    Waiting,
    /// Scanned (auto mode, or `gewe login confirm`); no poll has seen it yet.
    Scanned,
    /// A poll answered status 1; the next one completes the login.
    Shown,
    /// Logged in (status 2).
    Done,
}

impl LoginStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginStage::Waiting => "waiting",
            LoginStage::Scanned => "scanned",
            LoginStage::Shown => "shown",
            LoginStage::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting" => Some(LoginStage::Waiting),
            "scanned" => Some(LoginStage::Scanned),
            "shown" => Some(LoginStage::Shown),
            "done" => Some(LoginStage::Done),
            _ => None,
        }
    }
}

/// The account that scanned a login QR, as the emulated phone presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    pub wxid: Wxid,
    pub nick_name: String,
    /// Its avatar: the account's own when it exists, else a generated one.
    pub avatar: AvatarRecord,
}

/// One login QR (or dialogLogin prompt), by its uuid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSessionRecord {
    pub uuid: String,
    pub app_id: AppId,
    pub owner: TokenId,
    /// `ipad` or `mac`, from getLoginQrCode's `type`.
    pub device_type: String,
    pub stage: LoginStage,
    pub scanner: Option<Scanner>,
    /// The code checkLogin must be given as `captchCode` before it completes.
    pub captcha: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the login completed; set with `LoginStage::Done`.
    pub completed_at: Option<i64>,
}

/// Devices and their login state. Each transition is one store method running one
/// transaction, so an event row (the callback outbox) can join it.
#[async_trait]
pub trait DeviceStore {
    /// A new device with no account yet: unbound and offline.
    async fn insert_device(
        &self,
        owner: TokenId,
        app_id: &AppId,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The device, whoever owns it (callers compare `owner`).
    async fn find_device(&self, app_id: &AppId) -> Result<Option<DeviceRecord>, StoreError>;

    /// The device, whoever owns it, with its account when it has one of the
    /// same owner: what an online route checks, in one read.
    async fn find_device_account(
        &self,
        app_id: &AppId,
    ) -> Result<Option<(DeviceRecord, Option<AccountRecord>)>, StoreError>;

    /// The appIds of `owner`'s devices, bound or not, oldest first.
    async fn list_devices(&self, owner: TokenId) -> Result<Vec<AppId>, StoreError>;

    /// Moves the device from `from` to `to` in one transaction; `false` (and
    /// nothing written) when it was not in `from`.
    async fn set_login_state(
        &self,
        app_id: &AppId,
        from: LoginState,
        to: LoginState,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// Login QR sessions, and completing a login.
#[async_trait]
pub trait LoginSessionStore {
    async fn insert_login_session(&self, session: &LoginSessionRecord) -> Result<(), StoreError>;

    async fn find_login_session(
        &self,
        uuid: &str,
    ) -> Result<Option<LoginSessionRecord>, StoreError>;

    /// Moves the session from stage `from` to `to` (recording `scanner` and
    /// `captcha` when given); `false` when another poll moved it first.
    async fn advance_login_session(
        &self,
        uuid: &str,
        from: LoginStage,
        to: LoginStage,
        scanner: Option<&Scanner>,
        captcha: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Completes a login in one transaction: the session `Shown` → `Done`, the
    /// account created when `new_account` is given (with its avatar and first
    /// history row), the device bound to the account's wxid and online. `false`
    /// (nothing written) when another poll completed it first.
    async fn complete_login(
        &self,
        uuid: &str,
        owner: TokenId,
        device: &AppId,
        wxid: &Wxid,
        new_account: Option<(&AccountRecord, &AvatarRecord)>,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// The profile fields updateProfile may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    pub nick_name: Option<String>,
    pub country: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub sex: Option<i64>,
    pub signature: Option<String>,
}

/// One profile field as one updateProfile call changed it (a `profile_history` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFieldChange {
    /// The GeWe field name: `nickName`, `country`, `province`, `city`, `sex`, `signature`.
    pub field: String,
    pub old_value: String,
    pub new_value: String,
    pub changed_at: i64,
}

/// One privacySettings option as last set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacySetting {
    pub option: i64,
    pub open: bool,
    pub updated_at: i64,
}

/// A device an account has logged in from (getSafetyInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDevice {
    /// 32 lowercase hex characters.
    pub uuid: String,
    pub device_name: String,
    pub device_type: String,
    /// Unix seconds of the last login from this device.
    pub last_time: i64,
}

/// Profile changes (with their history) and privacy settings.
#[async_trait]
pub trait ProfileStore {
    /// Applies `change` to the account if `owner` owns it, and appends one
    /// `profile_history` row per field whose value actually changed, in one
    /// transaction. Returns the fields changed, or `None` when the account is not
    /// `owner`'s.
    async fn update_profile(
        &self,
        owner: TokenId,
        app_id: &AppId,
        change: &ProfileChange,
        now: i64,
    ) -> Result<Option<Vec<ProfileFieldChange>>, StoreError>;

    /// Every profile change of the account, oldest first (callers check ownership).
    async fn profile_history(&self, app_id: &AppId) -> Result<Vec<ProfileFieldChange>, StoreError>;

    /// Sets one privacy option (callers check ownership).
    async fn set_privacy(
        &self,
        app_id: &AppId,
        option: i64,
        open: bool,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The options ever set, by option number.
    async fn privacy_settings(&self, app_id: &AppId) -> Result<Vec<PrivacySetting>, StoreError>;
}

/// The devices accounts log in from.
#[async_trait]
pub trait LoginDeviceStore {
    /// Creates the account like [`AccountStore::insert_account`] and records its
    /// first login device, in the same transaction.
    async fn insert_account_with_device(
        &self,
        owner: TokenId,
        account: &AccountRecord,
        avatar: &AvatarRecord,
        device: &LoginDevice,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Records a login of `app_id` from device `uuid` at `now`: a new device is
    /// added, a known one gets the new name, type and `last_time` (callers check
    /// ownership).
    async fn record_login_device(
        &self,
        app_id: &AppId,
        uuid: &str,
        device_name: &str,
        device_type: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The account's login devices, newest login first.
    async fn login_devices(&self, app_id: &AppId) -> Result<Vec<LoginDevice>, StoreError>;
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

    /// One dispatcher turn, in one visit to the writer: marks `delivered`
    /// (claimed under `lease.holder`) as [`OutboxStore::mark_delivered`] does,
    /// then claims the due heads (the oldest pending event of an appId, with
    /// `next_attempt_at <= now` and no live lease) of up to `devices` appIds,
    /// oldest first, each with the events queued behind it up to
    /// `per_device` in all (an engine may take fewer, never a gap). Each
    /// claimed event counts as an attempt. Safe across instances sharing the
    /// database. Answers how many of `delivered` were still held, and the
    /// claim in id order.
    async fn settle_and_claim(
        &self,
        delivered: &[i64],
        now: i64,
        lease: &Lease,
        devices: i64,
        per_device: i64,
    ) -> Result<(u64, Vec<OutboxEvent>), StoreError>;

    /// Hands claimed events back untried (they were queued behind one whose
    /// attempt failed): no lease, and the attempt their claim counted undone.
    /// Answers how many of them `holder` still held.
    async fn release_events(&self, ids: &[i64], holder: &str) -> Result<u64, StoreError>;

    /// Marks claimed events delivered, all in one commit (under load the
    /// commits, not the statements, are what a database can do so many of per
    /// second). Answers how many of them `holder` still held.
    async fn mark_delivered(&self, ids: &[i64], holder: &str, now: i64) -> Result<u64, StoreError>;

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

/// Who a console session acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// Signed in with a GeWe token: sees that token's devices only.
    Token(TokenId),
    /// Signed in with the operator key: sees every token's devices.
    Operator,
}

impl Principal {
    /// The stored name of the kind (`console_sessions.principal`).
    pub fn kind(self) -> &'static str {
        match self {
            Principal::Token(_) => "token",
            Principal::Operator => "operator",
        }
    }

    /// The token whose devices this principal sees; `None` for the operator.
    pub fn token(self) -> Option<TokenId> {
        match self {
            Principal::Token(id) => Some(id),
            Principal::Operator => None,
        }
    }
}

/// A console sign-in as stored: the session id itself is never stored, only
/// its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    pub principal: Principal,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One tile of the console's accounts grid: a device with its account, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    pub app_id: AppId,
    pub wxid: Option<Wxid>,
    pub nick_name: Option<String>,
    pub avatar_id: Option<AvatarId>,
    pub state: LoginState,
}

/// A device in the operator's grid: whose it is, too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDevice {
    pub owner: TokenId,
    /// The owning token's label, if it has one.
    pub owner_label: Option<String>,
    pub device: DeviceSummary,
}

/// The web console: its sign-in sessions and the pages' paged reads.
#[async_trait]
pub trait ConsoleStore {
    async fn insert_console_session(
        &self,
        session_hash: &str,
        session: &ConsoleSessionRecord,
    ) -> Result<(), StoreError>;

    /// The session, if it exists and has not expired at `now`.
    async fn find_console_session(
        &self,
        session_hash: &str,
        now: i64,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError>;

    async fn delete_console_session(&self, session_hash: &str) -> Result<(), StoreError>;

    /// Deletes sessions expired before `now`; answers how many.
    async fn prune_console_sessions(&self, now: i64) -> Result<u64, StoreError>;

    /// One page of `owner`'s devices (with or without an account), oldest first,
    /// and how many there are in all.
    async fn device_page(
        &self,
        owner: TokenId,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<DeviceSummary>, i64), StoreError>;

    /// One page of every token's devices (the operator's grid), oldest first,
    /// and how many there are in all.
    async fn device_page_all(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<OwnedDevice>, i64), StoreError>;

    /// Every token's id and label, oldest first (labels for the operator's pages).
    async fn token_labels(&self) -> Result<Vec<(TokenId, Option<String>)>, StoreError>;

    /// The avatar with this id, if it was ever stored.
    async fn find_avatar(&self, id: AvatarId) -> Result<Option<AvatarRecord>, StoreError>;

    /// The newest login QR of the device, if any (expired ones included).
    async fn latest_login_session(
        &self,
        app_id: &AppId,
    ) -> Result<Option<LoginSessionRecord>, StoreError>;
}

/// The outbox at a glance, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub failed: u64,
    /// `created_at` of the oldest pending event, if any.
    pub oldest_pending_created_at: Option<i64>,
    /// Most attempts any pending event has had (0 when none is pending).
    pub max_pending_attempts: i64,
}

/// What operating the server needs to see: the outbox's size for the metrics,
/// and every avatar id the database references for the blob garbage collector.
#[async_trait]
pub trait MaintenanceStore {
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// Every avatar id any row names: avatars, accounts, history, source hashes,
    /// login scans in progress. A blob of any other id is garbage once old enough.
    async fn avatar_references(&self) -> Result<Vec<String>, StoreError>;
}
