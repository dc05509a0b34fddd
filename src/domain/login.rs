//! The login lifecycle, with the WeChat phone emulated: login QRs, the scan (by
//! itself in `auto` mode, by an operator's `gewe login confirm` in `manual`),
//! an optional security code, binding a device to its wxid, logout, WeChat
//! dropping a device (`gewe account kick`), reconnection and dialogLogin.
//!
//! All state lives in the database (devices, login_sessions), so any instance
//! answers any poll; time comes only from the domain clock.

use std::sync::Arc;

use rand::Rng;

use super::accounts::{default_nick_name, identicon_avatar, new_uin};
use super::{
    AccountRecord, AppId, AvatarId, AvatarRecord, Clock, DeviceRecord, DomainError, FieldError,
    LoginSessionRecord, LoginStage, LoginState, Repository, Scanner, StoreError, TokenId, Wxid,
};
use crate::imaging;
use crate::storage::BlobStore;

/// Who scans login QRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    /// The emulated phone scans by itself: the first poll sees status 1, the next 2.
    #[default]
    Auto,
    /// Nothing happens until `gewe login confirm <uuid>`.
    Manual,
}

#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// Seconds a login QR stays valid.
    pub qr_ttl_secs: i64,
    pub scan: ScanMode,
    /// A security code every login must be given (`captchCode`), when set.
    pub captcha: Option<String>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            qr_ttl_secs: 240,
            scan: ScanMode::Auto,
            captcha: None,
        }
    }
}

/// Why a login step failed, beyond the shared domain errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error("login QR {0} unknown")]
    UnknownQr(String),
    #[error("login QR {0} expired")]
    QrExpired(String),
    #[error("this login needs the security code")]
    CaptchaRequired,
    #[error("the scanning wxid is not the one the device is bound to")]
    WrongWxid,
    #[error("the device was logged out; reconnection needs a dropped device")]
    LoggedOut,
    #[error("the device is online; nothing to reconnect")]
    NotDropped,
    #[error("the device has no account yet")]
    NotBound,
    #[error("the login QR is not waiting for a scan")]
    NotWaiting,
}

/// A new login QR.
#[derive(Debug, Clone)]
pub struct LoginQr {
    pub app_id: AppId,
    pub uuid: String,
    /// `http://weixin.qq.com/x/<uuid>`, what the picture encodes.
    pub qr_data: String,
    /// The QR picture, JPEG.
    pub qr_jpeg: Vec<u8>,
}

/// `loginInfo` of a completed login.
#[derive(Debug, Clone)]
pub struct LoginInfo {
    pub uin: i64,
    pub wxid: String,
    pub nick_name: String,
    pub mobile: String,
    pub alias: String,
}

/// What checkLogin answers.
#[derive(Debug, Clone)]
pub struct LoginCheck {
    pub uuid: String,
    /// 0 waiting, 1 scanned, 2 logged in.
    pub status: u8,
    /// Seconds left; at status 2 the seconds left when the login completed,
    /// never below [`MIN_EXPIRED_TIME_DONE`].
    pub expired_time: i64,
    /// The scanning account (status 1 and 2).
    pub nick_name: Option<String>,
    pub avatar_id: Option<AvatarId>,
    pub login_info: Option<LoginInfo>,
}

/// Clients read `expiredTime <= 5` as "QR expired" before they look at the
/// status, so a completed login never reports less.
pub const MIN_EXPIRED_TIME_DONE: i64 = 6;

#[derive(Clone)]
pub struct Logins {
    repo: Arc<dyn Repository>,
    storage: BlobStore,
    clock: Clock,
    config: LoginConfig,
}

impl Logins {
    pub fn new(
        repo: Arc<dyn Repository>,
        storage: BlobStore,
        clock: Clock,
        config: LoginConfig,
    ) -> Self {
        Logins {
            repo,
            storage,
            clock,
            config,
        }
    }

    /// `owner`'s device, or `DeviceNotFound` (another tenant's device too).
    async fn device(&self, owner: TokenId, app_id: &AppId) -> Result<DeviceRecord, DomainError> {
        self.repo
            .find_device(app_id)
            .await?
            .filter(|d| d.owner == owner)
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))
    }

    /// getLoginQrCode: a QR for `app_id`, or for a new offline device when `None`.
    pub async fn qr_code(
        &self,
        owner: TokenId,
        app_id: Option<AppId>,
        device_type: Option<String>,
    ) -> Result<LoginQr, DomainError> {
        let app_id = match app_id {
            None => {
                let app_id = AppId::generate();
                self.repo
                    .insert_device(owner, &app_id, self.clock.unix_now())
                    .await?;
                app_id
            }
            Some(app_id) => {
                let device = self.device(owner, &app_id).await?;
                if device.state == LoginState::Online {
                    return Err(DomainError::AlreadyOnline);
                }
                app_id
            }
        };
        let uuid = self.open_session(owner, &app_id, device_type).await?;
        let qr_data = format!("http://weixin.qq.com/x/{uuid}");
        let content = qr_data.clone();
        let qr_jpeg = tokio::task::spawn_blocking(move || imaging::login_qr_jpeg(&content))
            .await
            .map_err(|e| DomainError::Internal(format!("QR task failed: {e}")))?
            .map_err(|e| DomainError::Internal(format!("QR picture failed: {}", e.message())))?;
        Ok(LoginQr {
            app_id,
            uuid,
            qr_data,
            qr_jpeg,
        })
    }

    /// dialogLogin: a login prompt on the phone of the account the device is
    /// bound to; completed like a QR (checkLogin with the returned uuid).
    pub async fn dialog_login(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<String, DomainError> {
        let device = self.device(owner, app_id).await?;
        if device.wxid.is_none() {
            return Err(LoginError::NotBound.into());
        }
        if device.state == LoginState::Online {
            return Err(DomainError::AlreadyOnline);
        }
        self.open_session(owner, app_id, None).await
    }

    async fn open_session(
        &self,
        owner: TokenId,
        app_id: &AppId,
        device_type: Option<String>,
    ) -> Result<String, DomainError> {
        let now = self.clock.unix_now();
        let device_type = match device_type.as_deref().map(str::trim) {
            Some(t) if t.eq_ignore_ascii_case("mac") => "mac",
            _ => "ipad",
        };
        let session = LoginSessionRecord {
            uuid: new_uuid(),
            app_id: app_id.clone(),
            owner,
            device_type: device_type.to_owned(),
            stage: LoginStage::Waiting,
            scanner: None,
            captcha: None,
            created_at: now,
            expires_at: now + self.config.qr_ttl_secs,
            completed_at: None,
        };
        self.repo.insert_login_session(&session).await?;
        Ok(session.uuid)
    }

    /// The session `uuid` of `owner`'s device `app_id`; anything else is unknown.
    async fn session(
        &self,
        owner: TokenId,
        app_id: &AppId,
        uuid: &str,
    ) -> Result<LoginSessionRecord, DomainError> {
        self.repo
            .find_login_session(uuid)
            .await?
            .filter(|s| s.owner == owner && &s.app_id == app_id)
            .ok_or_else(|| LoginError::UnknownQr(uuid.to_owned()).into())
    }

    /// checkLogin: one poll of the emulated phone.
    pub async fn check(
        &self,
        owner: TokenId,
        app_id: &AppId,
        uuid: &str,
        captcha_code: Option<&str>,
    ) -> Result<LoginCheck, DomainError> {
        // A few rounds at most: another poll may move the session under us.
        for _ in 0..4 {
            let session = self.session(owner, app_id, uuid).await?;
            let now = self.clock.unix_now();
            if session.stage == LoginStage::Done {
                return self.logged_in(&session).await;
            }
            if now >= session.expires_at {
                return Err(LoginError::QrExpired(uuid.to_owned()).into());
            }
            let left = session.expires_at - now;
            match session.stage {
                LoginStage::Waiting if self.config.scan == ScanMode::Manual => {
                    return Ok(waiting(uuid, left));
                }
                LoginStage::Waiting => {
                    let device = self.device(owner, app_id).await?;
                    let scanner = self.scanner(&device, None, None).await?;
                    if self
                        .repo
                        .advance_login_session(
                            uuid,
                            LoginStage::Waiting,
                            LoginStage::Shown,
                            Some(&scanner),
                            None,
                        )
                        .await?
                    {
                        return Ok(scanned(uuid, left, &scanner));
                    }
                }
                LoginStage::Scanned => {
                    if self
                        .repo
                        .advance_login_session(
                            uuid,
                            LoginStage::Scanned,
                            LoginStage::Shown,
                            None,
                            None,
                        )
                        .await?
                        && let Some(scanner) = &session.scanner
                    {
                        return Ok(scanned(uuid, left, scanner));
                    }
                }
                LoginStage::Shown => {
                    if let Some(done) = self.complete(&session, captcha_code, now).await? {
                        return Ok(done);
                    }
                }
                LoginStage::Done => unreachable!("answered above"),
            }
        }
        Err(DomainError::Internal(format!(
            "login QR {uuid} kept changing under concurrent polls"
        )))
    }

    /// The poll after status 1: checks the security code and the device's
    /// binding, then logs in. `None` when another poll completed it first.
    async fn complete(
        &self,
        session: &LoginSessionRecord,
        captcha_code: Option<&str>,
        now: i64,
    ) -> Result<Option<LoginCheck>, DomainError> {
        let required = session
            .captcha
            .as_deref()
            .or(self.config.captcha.as_deref());
        if let Some(required) = required
            && captcha_code.map(str::trim) != Some(required)
        {
            return Err(LoginError::CaptchaRequired.into());
        }
        let scanner = session
            .scanner
            .clone()
            .ok_or_else(|| DomainError::Internal("scanned login QR without a scanner".into()))?;
        let device = self.device(session.owner, &session.app_id).await?;
        let new_account = match &device.wxid {
            Some(bound) if bound != &scanner.wxid => return Err(LoginError::WrongWxid.into()),
            Some(_) => None,
            None => Some(AccountRecord {
                app_id: session.app_id.clone(),
                wxid: scanner.wxid.clone(),
                nick_name: scanner.nick_name.clone(),
                alias: String::new(),
                mobile: String::new(),
                uin: new_uin(),
                sex: 0,
                province: String::new(),
                city: String::new(),
                signature: String::new(),
                country: "CN".to_owned(),
                reg_country: "CN".to_owned(),
                sns_bg_img: String::new(),
                avatar_id: scanner.avatar.id,
            }),
        };
        let completed = self
            .repo
            .complete_login(
                &session.uuid,
                session.owner,
                &session.app_id,
                &scanner.wxid,
                new_account.as_ref().map(|a| (a, &scanner.avatar)),
                now,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::WxidTaken(scanner.wxid.to_string()),
                e => e.into(),
            })?;
        if !completed {
            return Ok(None);
        }
        self.record_login_device(session, now).await?;
        let done = LoginSessionRecord {
            stage: LoginStage::Done,
            completed_at: Some(now),
            ..session.clone()
        };
        self.logged_in(&done).await.map(Some)
    }

    /// Each completed login becomes a login device (uuid, name, type, time), as
    /// `personal/getSafetyInfo` lists them.
    async fn record_login_device(
        &self,
        session: &LoginSessionRecord,
        now: i64,
    ) -> Result<(), DomainError> {
        let name = login_device_name(&session.device_type);
        self.repo
            .record_login_device(
                &session.app_id,
                &session.uuid,
                name,
                &session.device_type,
                now,
            )
            .await?;
        Ok(())
    }

    /// The status-2 answer of a completed session.
    async fn logged_in(&self, session: &LoginSessionRecord) -> Result<LoginCheck, DomainError> {
        let account = self
            .repo
            .find_account(session.owner, &session.app_id)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(session.app_id.clone()))?;
        let left = session.expires_at - session.completed_at.unwrap_or(session.created_at);
        Ok(status_two(
            &session.uuid,
            left.max(MIN_EXPIRED_TIME_DONE),
            account,
        ))
    }

    /// Who the emulated phone is: the given wxid (confirm --wxid), else the
    /// account the device is bound to, else a new identity. A known account
    /// shows its own nickname and avatar; a new one gets a generated nickname
    /// (unless given) and an identicon avatar.
    async fn scanner(
        &self,
        device: &DeviceRecord,
        wxid: Option<Wxid>,
        nick_name: Option<String>,
    ) -> Result<Scanner, DomainError> {
        if let Some(bound) = &device.wxid
            && wxid.as_ref().is_none_or(|w| w == bound)
            && let Some(account) = self.repo.find_account(device.owner, &device.app_id).await?
        {
            return Ok(Scanner {
                wxid: account.wxid,
                nick_name: account.nick_name,
                avatar: AvatarRecord {
                    id: account.avatar_id,
                    side: 0,
                },
            });
        }
        let wxid = wxid.unwrap_or_else(Wxid::generate);
        let avatar = identicon_avatar(self.repo.as_ref(), &self.storage, &wxid).await?;
        Ok(Scanner {
            nick_name: nick_name.unwrap_or_else(|| default_nick_name(&wxid)),
            wxid,
            avatar,
        })
    }

    /// `gewe login confirm`: the operator scans QR `uuid` (manual mode, or to
    /// choose the account in auto mode), as `wxid`/`nick_name` when given, and
    /// may require a security code. Returns the appId.
    pub async fn confirm(
        &self,
        uuid: &str,
        wxid: Option<String>,
        nick_name: Option<String>,
        captcha: Option<String>,
    ) -> Result<AppId, DomainError> {
        let session = self
            .repo
            .find_login_session(uuid)
            .await?
            .ok_or_else(|| LoginError::UnknownQr(uuid.to_owned()))?;
        if self.clock.unix_now() >= session.expires_at {
            return Err(LoginError::QrExpired(uuid.to_owned()).into());
        }
        if session.stage != LoginStage::Waiting {
            return Err(LoginError::NotWaiting.into());
        }
        let wxid = wxid
            .map(|w| {
                Wxid::parse(&w).map_err(|e| match e {
                    FieldError::Invalid { detail, .. } => DomainError::InvalidInput(detail),
                    FieldError::Missing(f) => DomainError::InvalidInput(format!("{f}不可为空")),
                })
            })
            .transpose()?;
        let device = self.device(session.owner, &session.app_id).await?;
        let scanner = self.scanner(&device, wxid, nick_name).await?;
        let captcha = captcha
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if !self
            .repo
            .advance_login_session(
                uuid,
                LoginStage::Waiting,
                LoginStage::Scanned,
                Some(&scanner),
                captcha.as_deref(),
            )
            .await?
        {
            return Err(LoginError::NotWaiting.into());
        }
        Ok(session.app_id)
    }

    /// The device's newest login QR, if any (the console shows it live).
    pub async fn latest_session(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Option<LoginSessionRecord>, DomainError> {
        self.device(owner, app_id).await?;
        Ok(self
            .repo
            .latest_login_session(app_id)
            .await?
            .filter(|s| s.owner == owner))
    }

    /// The device's state, if `owner`'s.
    pub async fn device_state(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<DeviceRecord, DomainError> {
        self.device(owner, app_id).await
    }

    /// The QR picture (JPEG) of a login QR's content.
    pub async fn qr_picture(&self, uuid: &str) -> Result<Vec<u8>, DomainError> {
        let content = format!("http://weixin.qq.com/x/{uuid}");
        tokio::task::spawn_blocking(move || imaging::login_qr_jpeg(&content))
            .await
            .map_err(|e| DomainError::Internal(format!("QR task failed: {e}")))?
            .map_err(|e| DomainError::Internal(format!("QR picture failed: {}", e.message())))
    }

    /// logout: the device goes offline (from online or dropped); already offline
    /// is fine.
    pub async fn logout(&self, owner: TokenId, app_id: &AppId) -> Result<(), DomainError> {
        let device = self.device(owner, app_id).await?;
        if device.state != LoginState::Offline {
            self.repo
                .set_login_state(
                    app_id,
                    device.state,
                    LoginState::Offline,
                    self.clock.unix_now(),
                )
                .await?;
        }
        Ok(())
    }

    /// `gewe account kick`: WeChat drops the online device (its first night).
    pub async fn kick(&self, app_id: &AppId) -> Result<(), DomainError> {
        let device = self
            .repo
            .find_device(app_id)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        let moved = device.state == LoginState::Online
            && self
                .repo
                .set_login_state(
                    app_id,
                    LoginState::Online,
                    LoginState::Dropped,
                    self.clock.unix_now(),
                )
                .await?;
        if moved {
            Ok(())
        } else {
            Err(DomainError::Offline)
        }
    }

    /// reconnection: a dropped device comes back online; answers like checkLogin
    /// status 2.
    pub async fn reconnect(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<LoginCheck, DomainError> {
        let device = self.device(owner, app_id).await?;
        match (device.state, &device.wxid) {
            (_, None) => return Err(LoginError::NotBound.into()),
            (LoginState::Offline, _) => return Err(LoginError::LoggedOut.into()),
            (LoginState::Online, _) => return Err(LoginError::NotDropped.into()),
            (LoginState::Dropped, Some(_)) => {}
        }
        let now = self.clock.unix_now();
        if !self
            .repo
            .set_login_state(app_id, LoginState::Dropped, LoginState::Online, now)
            .await?
        {
            return Err(LoginError::NotDropped.into());
        }
        let account = self
            .repo
            .find_account(owner, app_id)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        Ok(status_two(&new_uuid(), self.config.qr_ttl_secs, account))
    }
}

fn waiting(uuid: &str, left: i64) -> LoginCheck {
    LoginCheck {
        uuid: uuid.to_owned(),
        status: 0,
        expired_time: left,
        nick_name: None,
        avatar_id: None,
        login_info: None,
    }
}

fn scanned(uuid: &str, left: i64, scanner: &Scanner) -> LoginCheck {
    LoginCheck {
        uuid: uuid.to_owned(),
        status: 1,
        expired_time: left,
        nick_name: Some(scanner.nick_name.clone()),
        avatar_id: Some(scanner.avatar.id),
        login_info: None,
    }
}

fn status_two(uuid: &str, expired_time: i64, account: AccountRecord) -> LoginCheck {
    LoginCheck {
        uuid: uuid.to_owned(),
        status: 2,
        expired_time,
        nick_name: Some(account.nick_name.clone()),
        avatar_id: Some(account.avatar_id),
        login_info: Some(LoginInfo {
            uin: account.uin,
            wxid: account.wxid.to_string(),
            nick_name: account.nick_name,
            mobile: account.mobile,
            alias: account.alias,
        }),
    }
}

/// A QR uuid like WeChat's: 20 characters from `[A-Za-z0-9]`, the last path
/// segment of `qrData`.
fn new_uuid() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The device name getSafetyInfo shows for a login's `type`.
pub fn login_device_name(device_type: &str) -> &'static str {
    match device_type {
        "mac" => "Mac",
        _ => "iPad",
    }
}
