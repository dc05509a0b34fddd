//! The domain: its vocabulary and its services.
//!
//! **Vocabulary** (`ids`, `avatar_id`, `fetchable_url`, `clock`, `store`): validated
//! types, parsed once at the edge (`AppId::parse`, `HeadImgUrl::parse`) so the inside
//! of the server never re-checks them, and the store trait with its records. It
//! imports no other room of the crate; every room may use it.
//!
//! **Services** (`accounts`, `avatars`, `profile`): the operations, using `fetch`, `imaging`
//! and `storage` below them and the store through its trait.

mod accounts;
mod avatar_id;
mod avatars;
mod callbacks;
mod clock;
mod control_store;
mod events;
mod faults;
mod fetchable_url;
mod gc;
mod ids;
mod journal;
mod login;
mod messages;
mod profile;
mod store;

pub use accounts::{AccountDraft, Accounts, Profile};
pub use avatar_id::{AvatarId, AvatarSize};
pub use avatars::{AvatarError, AvatarUpdater, AvatarUpdaterConfig, ChangeLimit};
pub use callbacks::{CallbackError, Callbacks, callback_failure};
pub use clock::{Clock, ManualClock, utc_parts};
pub use control_store::{
    ContactRecord, ControlStore, Direction, FaultDraw, FaultRule, JournalEntry, JournalQuery,
    MessageRecord,
};
pub use events::{AddMsg, EventType, NewEvent, OutboxSignal, TEST_MSG, test_ping};
pub use faults::{FaultAction, FaultPreset, FaultSpec, Faults, RISK_CONTROL_MSG, unit_draw};
pub use fetchable_url::{BadUrlReason, MAX_URL_LEN, check_url};
pub use gc::{BlobGc, GcReport};
pub use ids::{AppId, FieldError, HeadImgUrl, Wxid};
pub use journal::Journal;
pub use login::{
    LoginCheck, LoginConfig, LoginError, LoginInfo, LoginQr, Logins, MIN_EXPIRED_TIME_DONE,
    ScanMode, login_device_name,
};
pub use messages::{
    FILE_HELPER, InboundText, Injected, MAX_TEXT_CHARS, Messages, OutboundText, TEXT_MSG_TYPE,
};
pub use profile::{
    PRIVACY_OPTIONS, ProfileUpdate, Profiles, QrCard, nick_name_units, signature_units,
};
pub use store::{
    AccountRecord, AccountStore, AvatarChange, AvatarRecord, AvatarSource, CallbackStore,
    ChangeReservation, ChangeSlot, ConsoleSessionRecord, ConsoleStore, DeviceRecord, DeviceStore,
    DeviceSummary, HistoryEntry, InstanceTokenStore, KnownSource, Lease, LoginDevice,
    LoginDeviceStore, LoginSessionRecord, LoginSessionStore, LoginStage, LoginState,
    MaintenanceStore, OutboxEvent, OutboxState, OutboxStats, OutboxStore, OwnedDevice, Principal,
    PrivacySetting, ProfileChange, ProfileFieldChange, ProfileStore, RecentChanges, Repository,
    Scanner, SecretStore, StoreError, TokenAdminStore, TokenId, TokenRecord, TokenStore,
};

use crate::storage::StorageError;

/// Errors of the domain layer, mapped to the GeWe envelope in `api::envelope`.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("device {0} not found for this token")]
    DeviceNotFound(AppId),
    #[error("wxid {0} is already taken")]
    WxidTaken(String),
    /// The account is not logged in (logged out, dropped, or no account yet).
    #[error("the account is offline")]
    Offline,
    #[error("the account is already logged in")]
    AlreadyOnline,
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A request field breaks a rule: the GeWe field name and what is wrong.
    #[error("invalid {field}: {detail}")]
    InvalidField { field: &'static str, detail: String },
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Avatar(#[from] AvatarError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
