//! The personal module's service: profile changes (checked against WeChat's
//! limits, kept in a history), privacy settings, login devices, and the contact
//! card QR picture.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{
    AppId, AvatarId, AvatarSize, Clock, DomainError, LoginDevice, PrivacySetting, ProfileChange,
    ProfileFieldChange, Repository, TokenId, Wxid,
};
use crate::imaging;
use crate::storage::BlobStore;

/// The privacySettings options GeWe documents: 4 加我为朋友时需要验证, 7 向我推荐
/// 通讯录朋友, 8 添加我的方式-手机号, 25 -微信号, 38 -群聊, 39 -我的二维码, 40 -名片.
pub const PRIVACY_OPTIONS: [i64; 7] = [4, 7, 8, 25, 38, 39, 40];

// WeChat's length rules, as its clients count them. WeChat counts a Chinese
// character (and any other non-ASCII character, emoji included) as two units and
// an ASCII character as one:
// - nickname: at most 16 Chinese characters or 32 ASCII characters, i.e. 32 units;
// - signature (个性签名): at most 30 Chinese characters or 60 ASCII characters,
//   i.e. 60 units, "中英文混合输入时，系统会按照1个汉字=2个英文字符的比例计算总长度".
// Sources (third-party write-ups of the app's behaviour; Tencent publishes no
// specification): nctoro.com/gongnue/38763.html ("最多16个汉字或32个英文字符"),
// nctoro.com/gongnue/279189.html and www.nctoro.com/a171871 (signature "30个汉字/60个
// 字符", emoji taking two positions). Some pages quote 20 汉字 for nicknames
// (nctoro.com/gongnue/66536.html); we follow the more commonly quoted, stricter 16.
// Region fields have no published limit: 32 characters each.

/// Nickname limit in WeChat units (16 CJK or 32 ASCII characters).
pub const NICK_NAME_MAX_UNITS: usize = 32;
/// Signature limit in WeChat units (30 CJK or 60 ASCII characters).
pub const SIGNATURE_MAX_UNITS: usize = 60;
/// Country, province and city: at most this many characters.
pub const REGION_MAX_CHARS: usize = 32;

/// Length of `text` as WeChat counts it: ASCII 1, anything else 2. Characters that
/// only modify the one before them (zero-width joiner, variation selectors,
/// combining marks, emoji skin tones and tags) count 0, so an emoji sequence such
/// as 👍🏽 or 👨‍👩‍👧 counts like one emoji per visible picture part.
fn wechat_units(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            c if c.is_ascii() => 1,
            '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{0300}'..='\u{036F}' => 0,
            '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}' => 0,
            _ => 2,
        })
        .sum::<usize>()
        // A ZWJ sequence's joined parts: each part after a ZWJ is drawn as one
        // picture with the one before it.
        - 2 * text
            .chars()
            .zip(text.chars().skip(1))
            .filter(|(a, b)| *a == '\u{200D}' && !b.is_ascii())
            .count()
}

/// A nickname's length in WeChat units (limit [`NICK_NAME_MAX_UNITS`]).
pub fn nick_name_units(text: &str) -> usize {
    wechat_units(text)
}

/// A signature's length in WeChat units (limit [`SIGNATURE_MAX_UNITS`]).
pub fn signature_units(text: &str) -> usize {
    wechat_units(text)
}

/// updateProfile's fields as the caller sent them. `None`, `""` (and text that is
/// only spaces) leave a field unchanged; `sex` is the decimal text of a number.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub nick_name: Option<String>,
    pub country: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub sex: Option<String>,
    pub signature: Option<String>,
}

fn invalid(field: &'static str, detail: String) -> DomainError {
    DomainError::InvalidField { field, detail }
}

/// Trims `value`; `None` for absent or empty. Refuses control characters.
fn text_field(field: &'static str, value: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(
            field,
            format!("{field}不能包含控制字符(U+{:04X})", u32::from(c)),
        ));
    }
    Ok(Some(value.to_owned()))
}

impl ProfileUpdate {
    /// The change this update asks for, checked against WeChat's limits.
    pub fn check(self) -> Result<ProfileChange, DomainError> {
        let nick_name = text_field("nickName", self.nick_name)?;
        if let Some(name) = &nick_name {
            let units = nick_name_units(name);
            if units > NICK_NAME_MAX_UNITS {
                return Err(invalid(
                    "nickName",
                    format!(
                        "nickName过长: 最多16个汉字或32个英文字符(汉字和表情计2, 英文计1), 当前{units}"
                    ),
                ));
            }
        }
        let signature = text_field("signature", self.signature)?;
        if let Some(text) = &signature {
            let units = signature_units(text);
            if units > SIGNATURE_MAX_UNITS {
                return Err(invalid(
                    "signature",
                    format!(
                        "signature过长: 最多30个汉字或60个英文字符(汉字和表情计2, 英文计1), 当前{units}"
                    ),
                ));
            }
        }
        let region = |field: &'static str, value| -> Result<Option<String>, DomainError> {
            let value = text_field(field, value)?;
            if let Some(text) = &value {
                let chars = text.chars().count();
                if chars > REGION_MAX_CHARS {
                    return Err(invalid(
                        field,
                        format!("{field}过长: 最多{REGION_MAX_CHARS}个字符, 当前{chars}"),
                    ));
                }
            }
            Ok(value)
        };
        let country = region("country", self.country)?;
        let province = region("province", self.province)?;
        let city = region("city", self.city)?;
        let sex = match self.sex.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => match text.parse::<i64>() {
                Ok(sex @ 0..=2) => Some(sex),
                _ => {
                    return Err(invalid(
                        "sex",
                        format!("sex只能是0(未知)、1(男)或2(女)，收到: {text:?}"),
                    ));
                }
            },
        };
        Ok(ProfileChange {
            nick_name,
            country,
            province,
            city,
            sex,
            signature,
        })
    }
}

/// A rendered contact card: what its QR code says, and the JPEG.
#[derive(Debug, Clone)]
pub struct QrCard {
    pub content: String,
    pub jpeg: Bytes,
}

/// Cards kept in memory at most; beyond that the cache starts over.
const CARD_CACHE_ENTRIES: usize = 1024;

type CardCache = Mutex<HashMap<(AvatarId, String), Bytes>>;

#[derive(Clone)]
pub struct Profiles {
    repo: Arc<dyn Repository>,
    storage: BlobStore,
    clock: Clock,
    /// The server secret, read once at start.
    secret: [u8; 32],
    /// Rendered cards by (avatar, content): a card is a pure function of both.
    cards: Arc<CardCache>,
}

impl Profiles {
    /// Reads (creating on first start) the server secret.
    pub async fn new(
        repo: Arc<dyn Repository>,
        storage: BlobStore,
        clock: Clock,
    ) -> Result<Self, DomainError> {
        let secret = repo.server_secret().await?;
        Ok(Profiles {
            repo,
            storage,
            clock,
            secret,
            cards: Arc::default(),
        })
    }

    /// The account, if `owner`'s and logged in.
    async fn owned(&self, owner: TokenId, app_id: &AppId) -> Result<super::Profile, DomainError> {
        super::accounts::online_account(self.repo.as_ref(), owner, app_id).await
    }

    /// Applies `update` (checked first), recording each changed field in the
    /// profile history. Returns the fields that changed.
    pub async fn update(
        &self,
        owner: TokenId,
        app_id: &AppId,
        update: ProfileUpdate,
    ) -> Result<Vec<ProfileFieldChange>, DomainError> {
        let change = update.check()?;
        self.owned(owner, app_id).await?;
        let now = self.clock.unix_now();
        self.repo
            .update_profile(owner, app_id, &change, now)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))
    }

    /// Every profile change of the account, oldest first.
    pub async fn history(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Vec<ProfileFieldChange>, DomainError> {
        self.owned(owner, app_id).await?;
        Ok(self.repo.profile_history(app_id).await?)
    }

    /// Sets one of GeWe's privacy options.
    pub async fn set_privacy(
        &self,
        owner: TokenId,
        app_id: &AppId,
        option: i64,
        open: bool,
    ) -> Result<(), DomainError> {
        if !PRIVACY_OPTIONS.contains(&option) {
            return Err(invalid(
                "option",
                format!("option只能是4、7、8、25、38、39或40，收到: {option}"),
            ));
        }
        self.owned(owner, app_id).await?;
        let now = self.clock.unix_now();
        Ok(self.repo.set_privacy(app_id, option, open, now).await?)
    }

    pub async fn privacy_settings(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Vec<PrivacySetting>, DomainError> {
        self.owned(owner, app_id).await?;
        Ok(self.repo.privacy_settings(app_id).await?)
    }

    /// The account's login devices, newest first.
    pub async fn login_devices(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Vec<LoginDevice>, DomainError> {
        self.owned(owner, app_id).await?;
        Ok(self.repo.login_devices(app_id).await?)
    }

    /// What the account's contact QR code says: the same for the same account,
    /// unguessable and untraceable to the wxid without the server secret.
    pub fn card_content(&self, wxid: &Wxid) -> String {
        let mut message = b"contact-card:".to_vec();
        message.extend_from_slice(wxid.as_str().as_bytes());
        imaging::contact_card_content(&hmac_sha256(&self.secret, &message))
    }

    /// The account's contact card with its current avatar in the centre.
    pub async fn qr_card(&self, owner: TokenId, app_id: &AppId) -> Result<QrCard, DomainError> {
        let account = self.owned(owner, app_id).await?;
        let content = self.card_content(&account.wxid);
        let key = (account.avatar_id, content);
        if let Some(jpeg) = self.cards.lock().expect("card cache").get(&key).cloned() {
            return Ok(QrCard {
                content: key.1,
                jpeg,
            });
        }
        let mut avatar = None;
        for size in [AvatarSize::S132, AvatarSize::S96, AvatarSize::Big] {
            if let Some(bytes) = self.storage.get_variant(account.avatar_id, size).await? {
                avatar = Some(bytes);
                break;
            }
        }
        let avatar = avatar.ok_or_else(|| {
            DomainError::Internal(format!(
                "avatar {} has no stored variant",
                account.avatar_id
            ))
        })?;
        let text = key.1.clone();
        let jpeg = tokio::task::spawn_blocking(move || imaging::contact_card_jpeg(&text, &avatar))
            .await
            .map_err(|e| DomainError::Internal(format!("card task failed: {e}")))?
            .map_err(|e| DomainError::Internal(format!("cannot render card: {}", e.message())))?;
        let jpeg = Bytes::from(jpeg);
        let mut cards = self.cards.lock().expect("card cache");
        if cards.len() >= CARD_CACHE_ENTRIES {
            cards.clear();
        }
        cards.insert(key.clone(), jpeg.clone());
        Ok(QrCard {
            content: key.1,
            jpeg,
        })
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under a 32-byte key.
pub(super) fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    hmac_sha256_any(key, message)
}

fn hmac_sha256_any(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1 and 2 of RFC 4231.
        assert_eq!(
            hex::encode(hmac_sha256_any(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex::encode(hmac_sha256_any(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn wechat_counts_cjk_and_emoji_as_two() {
        assert_eq!(wechat_units("abc"), 3);
        assert_eq!(wechat_units("小助手"), 6);
        assert_eq!(wechat_units("😀"), 2);
        assert_eq!(wechat_units("👍🏽"), 2);
        assert_eq!(wechat_units("👨\u{200D}👩\u{200D}👧"), 2);
        assert_eq!(wechat_units("❤\u{FE0F}"), 2);
        assert_eq!(wechat_units(&"字".repeat(16)), NICK_NAME_MAX_UNITS);
    }

    #[test]
    fn empty_and_absent_fields_change_nothing_and_zero_is_a_sex() {
        let change = ProfileUpdate {
            nick_name: Some(String::new()),
            country: Some("  ".into()),
            sex: Some("0".into()),
            ..ProfileUpdate::default()
        }
        .check()
        .unwrap();
        assert_eq!(
            change,
            ProfileChange {
                sex: Some(0),
                ..ProfileChange::default()
            }
        );
    }

    #[test]
    fn limits_name_the_field() {
        let err = |u: ProfileUpdate| match u.check() {
            Err(DomainError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let long = |n| Some("a".repeat(n));
        assert_eq!(
            err(ProfileUpdate {
                nick_name: Some("字".repeat(17)),
                ..Default::default()
            }),
            "nickName"
        );
        assert!(
            ProfileUpdate {
                nick_name: long(32),
                ..Default::default()
            }
            .check()
            .is_ok()
        );
        assert_eq!(
            err(ProfileUpdate {
                signature: long(61),
                ..Default::default()
            }),
            "signature"
        );
        assert_eq!(
            err(ProfileUpdate {
                city: long(33),
                ..Default::default()
            }),
            "city"
        );
        assert_eq!(
            err(ProfileUpdate {
                province: Some("a\u{7}b".into()),
                ..Default::default()
            }),
            "province"
        );
        assert_eq!(
            err(ProfileUpdate {
                sex: Some("3".into()),
                ..Default::default()
            }),
            "sex"
        );
    }
}
