use std::sync::Arc;

use rand::Rng;

use super::avatars::persist_avatar;
use super::{
    AccountRecord, AppId, AvatarRecord, Clock, DeviceSummary, DomainError, FieldError,
    HistoryEntry, LoginDevice, LoginState, Repository, StoreError, TokenId, Wxid,
};
use crate::imaging;
use crate::storage::BlobStore;

/// What a caller may choose when creating an account; the rest gets plausible values.
#[derive(Debug, Clone, Default)]
pub struct AccountDraft {
    pub wxid: Option<String>,
    pub nick_name: Option<String>,
    pub alias: Option<String>,
    pub mobile: Option<String>,
    pub sex: Option<i64>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub signature: Option<String>,
    pub country: Option<String>,
}

/// An account's profile as GeWe's getProfile describes it, with the avatar as an id.
pub type Profile = AccountRecord;

/// The device an account created here "logged in" from: an iPad, as GeWe's own
/// devices are, with a fresh 32-hex uuid.
fn first_login_device(now: i64) -> LoginDevice {
    LoginDevice {
        uuid: hex::encode(rand::random::<[u8; 16]>()),
        device_name: "iPad".to_owned(),
        device_type: "iPad iOS17.2".to_owned(),
        last_time: now,
    }
}

#[derive(Clone)]
pub struct Accounts {
    repo: Arc<dyn Repository>,
    storage: BlobStore,
    clock: Clock,
}

impl Accounts {
    pub fn new(repo: Arc<dyn Repository>, storage: BlobStore, clock: Clock) -> Self {
        Accounts {
            repo,
            storage,
            clock,
        }
    }

    /// Creates an online account owned by `owner`, with a generated default avatar
    /// that is stored and served like any uploaded one.
    pub async fn create(
        &self,
        owner: TokenId,
        draft: AccountDraft,
    ) -> Result<Profile, DomainError> {
        self.create_as(owner, AppId::generate(), draft).await
    }

    /// Like [`Accounts::create`], with the appId chosen by the caller (fixtures).
    pub async fn create_as(
        &self,
        owner: TokenId,
        app_id: AppId,
        draft: AccountDraft,
    ) -> Result<Profile, DomainError> {
        let wxid = match draft.wxid {
            Some(w) => Wxid::parse(&w).map_err(|e| match e {
                FieldError::Invalid { detail, .. } => DomainError::InvalidInput(detail),
                FieldError::Missing(field) => DomainError::InvalidInput(format!("{field}不可为空")),
            })?,
            None => Wxid::generate(),
        };
        if let Some(sex) = draft.sex
            && !(0..=2).contains(&sex)
        {
            return Err(DomainError::InvalidInput(
                "sex只能是0(未知)、1(男)或2(女)".into(),
            ));
        }
        let avatar = identicon_avatar(self.repo.as_ref(), &self.storage, &wxid).await?;
        let record = AccountRecord {
            app_id,
            nick_name: draft.nick_name.unwrap_or_else(|| default_nick_name(&wxid)),
            wxid,
            alias: draft.alias.unwrap_or_default(),
            mobile: draft.mobile.unwrap_or_default(),
            uin: new_uin(),
            sex: draft.sex.unwrap_or(0),
            province: draft.province.unwrap_or_default(),
            city: draft.city.unwrap_or_default(),
            signature: draft.signature.unwrap_or_default(),
            country: draft.country.unwrap_or_else(|| "CN".to_owned()),
            reg_country: "CN".to_owned(),
            sns_bg_img: String::new(),
            avatar_id: avatar.id,
        };
        let now = self.clock.unix_now();
        let device = first_login_device(now);
        match self
            .repo
            .insert_account_with_device(owner, &record, &avatar, &device, now)
            .await
        {
            Ok(()) => Ok(record),
            Err(StoreError::Conflict(_)) => Err(DomainError::WxidTaken(record.wxid.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The profile of `app_id`, if `owner` owns it. A device of another tenant is
    /// reported exactly like one that does not exist.
    pub async fn profile(&self, owner: TokenId, app_id: &AppId) -> Result<Profile, DomainError> {
        self.repo
            .find_account(owner, app_id)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))
    }

    /// The profile of `app_id` when its account is logged in: the one check every
    /// route that needs an online account makes. A device of another tenant does
    /// not exist; a device that is logged out, dropped or has no account yet
    /// answers [`DomainError::Offline`] (`微信已离线`).
    pub async fn online_profile(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Profile, DomainError> {
        online_account(self.repo.as_ref(), owner, app_id).await
    }

    /// Whether `owner`'s device `app_id` is logged in (checkOnline).
    pub async fn is_online(&self, owner: TokenId, app_id: &AppId) -> Result<bool, DomainError> {
        let device = self
            .repo
            .find_device(app_id)
            .await?
            .filter(|d| d.owner == owner)
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        Ok(device.state == LoginState::Online && device.wxid.is_some())
    }

    /// The appIds of `owner`'s devices, with or without an account, oldest first.
    pub async fn device_ids(&self, owner: TokenId) -> Result<Vec<AppId>, DomainError> {
        Ok(self.repo.list_devices(owner).await?)
    }

    /// One page of `owner`'s devices for the console grid (paged in the
    /// database), and how many there are in all.
    pub async fn page(
        &self,
        owner: TokenId,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<DeviceSummary>, u64), DomainError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (page, total) = self.repo.device_page(owner, offset, limit).await?;
        Ok((page, u64::try_from(total).unwrap_or(0)))
    }

    pub async fn list(&self, owner: TokenId) -> Result<Vec<Profile>, DomainError> {
        Ok(self.repo.list_accounts(owner).await?)
    }

    /// Every avatar the account has had, oldest first.
    pub async fn avatar_history(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Vec<HistoryEntry>, DomainError> {
        self.profile(owner, app_id).await?;
        Ok(self.repo.avatar_history(app_id).await?)
    }
}

/// The nickname an account gets when nobody chose one: `微信用户` and the wxid's
/// last four characters.
pub(super) fn default_nick_name(wxid: &Wxid) -> String {
    let w = wxid.as_str();
    format!("微信用户{}", &w[w.len() - 4..])
}

/// A new account's default avatar: an identicon stored and served like any
/// uploaded picture. Its seed is an HMAC of the wxid under the server secret, so
/// nobody without the secret can compute a wxid's default avatar id and probe
/// `/mmhead/<id>/…` to learn whether that wxid exists here.
pub(super) async fn identicon_avatar(
    repo: &dyn Repository,
    storage: &BlobStore,
    wxid: &Wxid,
) -> Result<AvatarRecord, DomainError> {
    let secret = repo.server_secret().await?;
    let seed = identicon_seed(&secret, wxid);
    let avatar = tokio::task::spawn_blocking(move || imaging::default_avatar(&seed))
        .await
        .map_err(|e| DomainError::Internal(format!("default avatar task failed: {e}")))?;
    persist_avatar(storage, &avatar).await
}

/// The identicon seed of `wxid` on the server holding `secret`.
pub(super) fn identicon_seed(secret: &[u8; 32], wxid: &Wxid) -> String {
    let mut message = b"identicon:".to_vec();
    message.extend_from_slice(wxid.as_str().as_bytes());
    hex::encode(super::profile::hmac_sha256(secret, &message))
}

/// A new account's random `uin`.
pub(super) fn new_uin() -> i64 {
    rand::rng().random_range(1..=i64::from(i32::MAX))
}

/// The account of `owner`'s device `app_id`, if it is logged in: every GeWe call
/// that acts as the account needs this (`微信已离线` otherwise). A device of
/// another tenant is reported exactly like one that does not exist.
pub(super) async fn online_account(
    repo: &dyn Repository,
    owner: TokenId,
    app_id: &AppId,
) -> Result<Profile, DomainError> {
    online_account_of(repo, app_id, Some(owner))
        .await
        .map(|(_, account)| account)
}

/// The account of device `app_id` if it is logged in, with its owner: of
/// `owner`'s devices only when given (any token's otherwise, for the
/// operator), from one read of the device.
pub(super) async fn online_account_of(
    repo: &dyn Repository,
    app_id: &AppId,
    owner: Option<TokenId>,
) -> Result<(TokenId, Profile), DomainError> {
    let (device, account) = repo
        .find_device_account(app_id)
        .await?
        .filter(|(d, _)| owner.is_none_or(|owner| d.owner == owner))
        .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
    if device.state != LoginState::Online || device.wxid.is_none() {
        return Err(DomainError::Offline);
    }
    let account = account.ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
    Ok((device.owner, account))
}
