//! What the pages show: askama templates (in `templates/`, HTML-escaped by
//! default) and the plain values they are filled with.

use askama::Template;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use crate::domain::{AvatarError, DomainError, LoginError, LoginState, TokenId};

/// What every page's frame needs.
pub struct Chrome {
    pub csrf: String,
    pub signed_in: bool,
    /// An operator session: the nav shows the operator pages.
    pub operator: bool,
}

/// Renders a template into an HTML answer.
pub fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "template error",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: Chrome,
    text: &'a str,
}

pub fn message_page(text: &str) -> Response {
    html(&MessagePage {
        chrome: Chrome {
            csrf: String::new(),
            signed_in: false,
            operator: false,
        },
        text,
    })
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub error: Option<String>,
    /// The operator API is on: the operator key's form is shown.
    pub operator_on: bool,
}

pub struct Tile {
    pub app_id: String,
    pub nick_name: String,
    pub wxid: String,
    pub avatar: Option<String>,
    pub state: &'static str,
    pub state_label: &'static str,
    /// The owning token (operator sessions only).
    pub owner: Option<String>,
}

#[derive(Template)]
#[template(path = "accounts.html")]
pub struct AccountsPage {
    pub chrome: Chrome,
    pub tiles: Vec<Tile>,
    pub page: u64,
    pub pages: u64,
    pub total: u64,
    pub prev: Option<u64>,
    pub next: Option<u64>,
}

pub struct ProfileView {
    pub nick_name: String,
    pub wxid: String,
    pub sex: i64,
    pub country: String,
    pub province: String,
    pub city: String,
    pub signature: String,
}

pub struct SizeView {
    pub label: &'static str,
    pub px: u32,
    pub url: String,
}

pub struct HistoryView {
    pub avatar_id: String,
    pub thumb: String,
    pub time: String,
    pub source: String,
    pub current: bool,
}

pub struct PrivacyView {
    pub option: i64,
    pub label: &'static str,
    pub state_label: &'static str,
    pub next_open: bool,
    pub next_label: &'static str,
}

pub struct DeviceView {
    pub name: String,
    pub kind: String,
    pub time: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub chrome: Chrome,
    pub app_id: String,
    pub notice: Option<String>,
    pub state: &'static str,
    pub state_label: &'static str,
    pub online: bool,
    pub profile: Option<ProfileView>,
    pub sizes: Vec<SizeView>,
    pub history: Vec<HistoryView>,
    pub privacy: Vec<PrivacyView>,
    pub devices: Vec<DeviceView>,
    pub login_panel: Option<String>,
    pub max_upload_mb: String,
}

#[derive(Template)]
#[template(path = "login_panel.html")]
pub struct LoginPanel {
    pub app_id: String,
    pub csrf: String,
    /// Refreshes itself (htmx) while something may change.
    pub poll: bool,
    pub stage_label: &'static str,
    pub uuid: Option<String>,
    pub qr: Option<String>,
    pub left_secs: i64,
    pub can_scan: bool,
    pub can_confirm: bool,
    pub can_new_qr: bool,
    pub scanner: Option<String>,
}

pub struct EventView {
    pub id: i64,
    pub app_id: String,
    pub kind: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub attempts: i64,
    pub error: String,
    pub created: String,
    pub finished: String,
    pub retry: bool,
}

#[derive(Template)]
#[template(path = "callbacks.html")]
pub struct CallbacksPage {
    pub chrome: Chrome,
    pub url: Option<String>,
    pub events: Vec<EventView>,
    pub notice: Option<String>,
}

/// A token as the operator's pages name it: its label and id, or its id.
pub fn token_name(id: TokenId, label: Option<String>) -> String {
    match label.filter(|l| !l.trim().is_empty()) {
        Some(label) => format!("{label} (#{})", id.0),
        None => format!("#{}", id.0),
    }
}

pub struct JournalRow {
    pub id: i64,
    pub time: String,
    pub route: String,
    pub app_id: String,
    pub token: String,
    pub request: String,
    pub response: String,
    pub duration_ms: i64,
}

#[derive(Template)]
#[template(path = "journal.html")]
pub struct JournalPage {
    pub chrome: Chrome,
    pub route: String,
    pub app_id: String,
    pub token: String,
    pub notice: Option<String>,
    pub rows: Vec<JournalRow>,
}

pub struct FaultRow {
    pub id: i64,
    pub route: String,
    pub app_id: String,
    pub token: String,
    pub action: String,
    pub hits: i64,
    pub remaining: String,
    pub probability: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "faults.html")]
pub struct FaultsPage {
    pub chrome: Chrome,
    pub notice: Option<String>,
    pub rows: Vec<FaultRow>,
    pub presets: &'static [&'static str],
}

pub struct InjectedView {
    pub msg_id: i64,
    pub new_msg_id: i64,
    pub msg_seq: i64,
    pub create_time: String,
    pub from_wxid: String,
    pub to_wxid: String,
    pub chatroom: String,
    pub event_id: String,
}

#[derive(Template)]
#[template(path = "inject.html")]
pub struct InjectPage {
    pub chrome: Chrome,
    pub notice: Option<String>,
    pub injected: Option<InjectedView>,
    /// The form as last sent (kept after a refusal).
    pub app_id: String,
    pub from: String,
    pub nick_name: String,
    pub chatroom: String,
    pub content: String,
}

pub fn state_names(state: LoginState, bound: bool) -> (&'static str, &'static str) {
    match (state, bound) {
        (_, false) => ("new", "待登录"),
        (LoginState::Online, true) => ("online", "在线"),
        (LoginState::Offline, true) => ("offline", "已退出"),
        (LoginState::Dropped, true) => ("dropped", "掉线"),
    }
}

pub fn privacy_label(option: i64) -> &'static str {
    match option {
        4 => "加我为朋友时需要验证",
        7 => "向我推荐通讯录朋友",
        8 => "可通过手机号搜索到我",
        25 => "可通过微信号搜索到我",
        38 => "可通过群聊添加我",
        39 => "可通过我的二维码添加我",
        40 => "可通过名片添加我",
        _ => "未知选项",
    }
}

/// Unix seconds as `2026-11-25 22:53:18 UTC`.
pub fn time(unix: i64) -> String {
    let (year, month, day, hour, minute, second) = crate::domain::utc_parts(unix);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// A domain error a person can act on, in words; `None` for internal failures.
pub fn user_message(err: &DomainError) -> Option<String> {
    Some(match err {
        DomainError::DeviceNotFound(_) => "没有这个设备。".to_owned(),
        DomainError::WxidTaken(wxid) => format!("wxid {wxid} 已被占用"),
        DomainError::Offline => "微信已离线".to_owned(),
        DomainError::AlreadyOnline => "微信已登录，请勿重复登录。".to_owned(),
        DomainError::Login(e) => match e {
            LoginError::UnknownQr(_) => "二维码不存在，请重新获取登录二维码".to_owned(),
            LoginError::QrExpired(_) => "二维码已过期，请重新获取登录二维码".to_owned(),
            LoginError::CaptchaRequired => "本次登录需要输入安全验证码".to_owned(),
            LoginError::WrongWxid => "扫码的微信与设备绑定的微信不同".to_owned(),
            LoginError::LoggedOut => "微信已退出登录，请重新扫码登录".to_owned(),
            LoginError::NotDropped => "微信在线，无需断线重连".to_owned(),
            LoginError::NotBound => "设备尚未登录过微信，请先扫码登录".to_owned(),
            LoginError::NotWaiting => "二维码已被扫描".to_owned(),
        },
        DomainError::InvalidInput(detail) | DomainError::InvalidField { detail, .. } => {
            detail.clone()
        }
        DomainError::Avatar(e) => match e {
            // An upload over the size limit is refused like a download would be.
            AvatarError::Fetch(e) if e.code() == "fetch-too-large" => {
                format!("图片过大: {}", e.message())
            }
            AvatarError::Fetch(e) => format!("图片下载失败: {}", e.message()),
            AvatarError::Image(e) => format!("图片无法使用: {}", e.message()),
            AvatarError::Busy(_) => "系统繁忙，图片处理排队超时，请稍后再试".to_owned(),
            AvatarError::Timeout(t) => format!("处理超时: 超过{}秒", t.as_secs_f32()),
            AvatarError::RateLimited {
                limit,
                retry_after_secs,
            } => format!(
                "修改头像过于频繁: 每{}秒最多修改{}次，请在{}秒后重试",
                limit.window_secs, limit.max, retry_after_secs
            ),
            AvatarError::Worker(_) => return None,
        },
        DomainError::Internal(_) | DomainError::Storage(_) | DomainError::Store(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_795_996_398), "2026-11-29 23:53:18 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn user_strings_are_escaped() {
        let page = SignInPage {
            chrome: Chrome {
                csrf: "c".into(),
                signed_in: false,
                operator: false,
            },
            error: Some("<img src=x onerror=alert(1)>".into()),
            operator_on: true,
        };
        let html = page.render().unwrap();
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;") || html.contains("&lt;img"));
        assert!(!html.contains("<img src=x"));
    }
}
