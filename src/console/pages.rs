//! The console's handlers: read the session, check the form, call the domain,
//! render a template (or redirect after a change that worked).

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, body::Bytes};
use base64::Engine;
use serde::Deserialize;

use super::session::{self, PRE_COOKIE, SESSION_COOKIE, Session};
use super::view::{self, Chrome, html};
use super::{Console, PageError, owner, owner_of};
use crate::domain::{
    AppId, AvatarId, AvatarSize, DeviceSummary, DomainError, HeadImgUrl, LoginStage, LoginState,
    OutboxState, PRIVACY_OPTIONS, Principal, ProfileUpdate, TokenId,
};

/// Tiles per page of the accounts grid.
const PAGE_SIZE: u64 = 48;
/// History thumbnails shown, newest first.
const HISTORY_SHOWN: usize = 60;
/// Callback deliveries shown, newest first.
const EVENTS_SHOWN: usize = 100;

fn mmhead(id: AvatarId, size: AvatarSize) -> String {
    format!("/mmhead/{id}/{}", size.label())
}

pub(super) async fn signed_in(
    console: &Console,
    headers: &HeaderMap,
) -> Result<Session, PageError> {
    session::current(console.repo.as_ref(), headers, console.clock.unix_now())
        .await?
        .ok_or(PageError::SignIn)
}

/// A form post of this session: from our own site, with its CSRF token.
pub(super) async fn checked(
    console: &Console,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, PageError> {
    let session = signed_in(console, headers).await?;
    if !session::same_site(headers) || !session::same(csrf, &session.csrf()) {
        return Err(PageError::CrossSite);
    }
    Ok(session)
}

pub(super) fn chrome(session: &Session) -> Chrome {
    Chrome {
        csrf: session.csrf(),
        signed_in: true,
        operator: session.principal == Principal::Operator,
    }
}

fn app_id(raw: String) -> Result<AppId, PageError> {
    AppId::parse(Some(raw)).map_err(|_| PageError::NotFound)
}

/// What every form about one device checks first: a signed-in, same-site
/// session with its CSRF token, the device the path names, and the token that
/// owns it as that session may see it.
async fn device_form(
    console: &Console,
    headers: &HeaderMap,
    raw: String,
    csrf: &str,
) -> Result<(Session, AppId, TokenId), PageError> {
    let session = checked(console, headers, csrf).await?;
    let app_id = app_id(raw)?;
    let owner = owner_of(console, session.principal, &app_id).await?;
    Ok((session, app_id, owner))
}

pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn account_url(app_id: &AppId) -> String {
    format!("/console/a/{app_id}")
}

// ---------------------------------------------------------------- sign in

pub async fn sign_in_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Ok(Some(_)) =
        session::current(console.repo.as_ref(), &headers, console.clock.unix_now()).await
    {
        return see_other("/console");
    }
    sign_in_form(&console, &headers, None, StatusCode::OK)
}

/// The sign-in form, with a pre-session cookie its CSRF token is tied to.
fn sign_in_form(
    console: &Console,
    headers: &HeaderMap,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let pre = session::cookie(headers, PRE_COOKIE).unwrap_or_else(session::new_id);
    let page = view::SignInPage {
        chrome: Chrome {
            csrf: session::csrf_for(&pre),
            signed_in: false,
            operator: false,
        },
        error,
        operator_on: console.operator.is_some(),
    };
    let cookie = session::set_cookie(PRE_COOKIE, &pre, 3600, console.settings.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], html(&page)).into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    /// A GeWe token (the token form) …
    token: Option<String>,
    /// … or an operator key (the operator form): each is checked only as what
    /// its form says it is, so neither is ever taken for the other.
    operator_key: Option<String>,
    #[serde(default)]
    csrf: String,
}

pub async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    let pre = session::cookie(&headers, PRE_COOKIE);
    let tied = pre.is_some_and(|pre| session::same(&form.csrf, &session::csrf_for(&pre)));
    if !tied || !session::same_site(&headers) {
        return Err(PageError::CrossSite);
    }
    let refused = |text: &str| {
        Ok(sign_in_form(
            &console,
            &headers,
            Some(text.to_owned()),
            StatusCode::UNAUTHORIZED,
        ))
    };
    let principal = match (form.token, form.operator_key) {
        (Some(token), None) => match console.tokens.authenticate(Some(&token)).await {
            Ok(owner) => Principal::Token(owner),
            Err(crate::auth::AuthError::Store(e)) => return Err(e.into()),
            Err(_) => return refused("令牌无效：请检查 X-GEWE-TOKEN 的值。"),
        },
        (None, Some(key)) => {
            let Some(tools) = &console.operator else {
                return refused("运营接口未开启：设置 GEWE_OPERATOR_KEY 后重启。");
            };
            if !tools.keys.verify(&key).await? {
                return refused("运营密钥无效。");
            }
            Principal::Operator
        }
        _ => return Err(PageError::BadRequest("请填写令牌或运营密钥".to_owned())),
    };
    let id = session::start(console.repo.as_ref(), principal, console.clock.unix_now()).await?;
    let secure = console.settings.secure_cookies;
    let mut response = see_other("/console");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &id, session::SESSION_TTL_SECS, secure),
    );
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(PRE_COOKIE, &"0".repeat(64), 0, secure),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let session = checked(&console, &headers, &form.csrf).await?;
    console.repo.delete_console_session(&session.hash()).await?;
    let mut response = see_other("/console/login");
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            SESSION_COOKIE,
            &"0".repeat(64),
            0,
            console.settings.secure_cookies,
        ),
    );
    Ok(response)
}

// ---------------------------------------------------------------- accounts grid

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<u64>,
}

pub async fn accounts(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    let page = query.page.unwrap_or(1).max(1);
    let offset = (page - 1).saturating_mul(PAGE_SIZE);
    // A token sees its own devices; the operator every token's, with whose.
    let (devices, total): (Vec<(Option<String>, DeviceSummary)>, u64) = match session.principal {
        Principal::Token(owner) => {
            let (devices, total) = console.accounts.page(owner, offset, PAGE_SIZE).await?;
            (devices.into_iter().map(|d| (None, d)).collect(), total)
        }
        Principal::Operator => {
            let (devices, total) = console
                .repo
                .device_page_all(
                    i64::try_from(offset).unwrap_or(i64::MAX),
                    i64::try_from(PAGE_SIZE).unwrap_or(i64::MAX),
                )
                .await?;
            let devices = devices
                .into_iter()
                .map(|d| (Some(view::token_name(d.owner, d.owner_label)), d.device))
                .collect();
            (devices, u64::try_from(total).unwrap_or(0))
        }
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let tiles = devices
        .into_iter()
        .map(|(owner, d)| {
            let (state, state_label) = view::state_names(d.state, d.wxid.is_some());
            view::Tile {
                app_id: d.app_id.to_string(),
                nick_name: d.nick_name.unwrap_or_else(|| "(新设备)".to_owned()),
                wxid: d.wxid.map(|w| w.to_string()).unwrap_or_default(),
                avatar: d.avatar_id.map(|id| mmhead(id, AvatarSize::S132)),
                state,
                state_label,
                owner,
            }
        })
        .collect();
    Ok(html(&view::AccountsPage {
        chrome: chrome(&session),
        tiles,
        page,
        pages,
        total,
        prev: (page > 1).then(|| page - 1),
        next: (page < pages).then(|| page + 1),
    }))
}

pub async fn new_device(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let session = checked(&console, &headers, &form.csrf).await?;
    let owner = owner(session.principal)?;
    let qr = console.logins.qr_code(owner, None, None).await?;
    Ok(see_other(&account_url(&qr.app_id)))
}

// ---------------------------------------------------------------- account page

pub async fn account(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    let app_id = app_id(raw)?;
    account_page(&console, &session, &app_id, None, StatusCode::OK).await
}

/// The account page, with `notice` (a refused change) on top.
async fn account_page(
    console: &Console,
    session: &Session,
    app_id: &AppId,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let owner = owner_of(console, session.principal, app_id).await?;
    let device = console.logins.device_state(owner, app_id).await?;
    let bound = device.wxid.is_some();
    let (state, state_label) = view::state_names(device.state, bound);
    let online = bound && device.state == LoginState::Online;
    let account = match console.accounts.profile(owner, app_id).await {
        Ok(account) => Some(account),
        Err(DomainError::DeviceNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let mut page = view::AccountPage {
        chrome: chrome(session),
        app_id: app_id.to_string(),
        notice,
        state,
        state_label,
        online,
        profile: None,
        sizes: Vec::new(),
        history: Vec::new(),
        privacy: Vec::new(),
        devices: Vec::new(),
        login_panel: None,
        max_upload_mb: format!(
            "{:.0}",
            console.settings.max_upload_bytes as f64 / (1024.0 * 1024.0)
        ),
    };
    if let Some(account) = account {
        page.sizes = AvatarSize::ALL
            .iter()
            .map(|&size| view::SizeView {
                label: size.label(),
                px: size.nominal_px(),
                url: mmhead(account.avatar_id, size),
            })
            .collect();
        let history = console.accounts.avatar_history(owner, app_id).await?;
        page.history = history
            .iter()
            .rev()
            .take(HISTORY_SHOWN)
            .enumerate()
            .map(|(newest, entry)| view::HistoryView {
                avatar_id: entry.avatar_id.to_string(),
                thumb: mmhead(entry.avatar_id, AvatarSize::S96),
                time: view::time(entry.changed_at),
                source: entry
                    .source_url
                    .clone()
                    .unwrap_or_else(|| "初始头像".to_owned()),
                // The newest row is the avatar in use.
                current: newest == 0 && entry.avatar_id == account.avatar_id,
            })
            .collect();
        if online {
            let set = console.profiles.privacy_settings(owner, app_id).await?;
            page.privacy = PRIVACY_OPTIONS
                .iter()
                .map(|&option| {
                    let open = set.iter().find(|s| s.option == option).map(|s| s.open);
                    view::PrivacyView {
                        option,
                        label: view::privacy_label(option),
                        state_label: match open {
                            Some(true) => "开",
                            Some(false) => "关",
                            None => "未设置",
                        },
                        next_open: open != Some(true),
                        next_label: if open == Some(true) {
                            "关闭"
                        } else {
                            "开启"
                        },
                    }
                })
                .collect();
            page.devices = console
                .profiles
                .login_devices(owner, app_id)
                .await?
                .into_iter()
                .map(|d| view::DeviceView {
                    name: d.device_name,
                    kind: d.device_type,
                    time: view::time(d.last_time),
                })
                .collect();
        }
        page.profile = Some(view::ProfileView {
            nick_name: account.nick_name,
            wxid: account.wxid.to_string(),
            sex: account.sex,
            country: account.country,
            province: account.province,
            city: account.city,
            signature: account.signature,
        });
    }
    if !online {
        page.login_panel = Some(login_panel_html(console, session, owner, app_id).await?);
    }
    Ok((status, html(&page)).into_response())
}

/// A change refused by the domain shows the page again with the reason;
/// anything else is an error page.
async fn after_change(
    console: &Console,
    session: &Session,
    app_id: &AppId,
    outcome: Result<(), DomainError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(see_other(&account_url(app_id))),
        Err(e) => match view::user_message(&e) {
            Some(text) if !matches!(e, DomainError::DeviceNotFound(_)) => {
                account_page(
                    console,
                    session,
                    app_id,
                    Some(text),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            _ => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    nick_name: Option<String>,
    sex: Option<String>,
    country: Option<String>,
    province: Option<String>,
    city: Option<String>,
    signature: Option<String>,
}

pub async fn edit_profile(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ProfileForm>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    let update = ProfileUpdate {
        nick_name: form.nick_name,
        country: form.country,
        province: form.province,
        city: form.city,
        sex: form.sex,
        signature: form.signature,
    };
    let outcome = console.profiles.update(owner, &app_id, update).await;
    after_change(&console, &session, &app_id, outcome.map(drop)).await
}

#[derive(Deserialize)]
pub struct UrlForm {
    #[serde(default)]
    csrf: String,
    url: String,
}

pub async fn avatar_from_url(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<UrlForm>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    let outcome = match HeadImgUrl::parse(Some(form.url)) {
        Ok(url) => console
            .avatars
            .update_from_url(owner, &app_id, &url)
            .await
            .map(drop),
        Err(crate::domain::FieldError::Invalid { detail, .. }) => {
            Err(DomainError::InvalidInput(detail))
        }
        Err(crate::domain::FieldError::Missing(_)) => {
            Err(DomainError::InvalidInput("请填写图片地址".to_owned()))
        }
    };
    after_change(&console, &session, &app_id, outcome).await
}

/// The upload form: the picture in `file`, the token in `csrf` (read first:
/// nothing is decoded for a form that fails the check).
pub async fn avatar_upload(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let (mut csrf, mut file, mut name) = (String::new(), None::<Bytes>, String::new());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                // Still refuse a cross-site post as such, when it can be told.
                signed_in(&console, &headers).await?;
                return Err(PageError::BadRequest(format!(
                    "图片过大: 最多{}字节",
                    console.settings.max_upload_bytes
                )));
            }
            Err(e) => return Err(PageError::BadRequest(format!("上传失败: {e}"))),
        };
        match field.name() {
            Some("csrf") => {
                csrf = field
                    .text()
                    .await
                    .map_err(|e| PageError::BadRequest(e.to_string()))?;
            }
            Some("file") => {
                name = field.file_name().unwrap_or("").chars().take(100).collect();
                let bytes = field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        PageError::BadRequest(format!(
                            "图片过大: 最多{}字节",
                            console.settings.max_upload_bytes
                        ))
                    } else {
                        PageError::BadRequest(format!("上传失败: {e}"))
                    }
                })?;
                file = Some(bytes);
            }
            _ => {}
        }
    }
    let session = checked(&console, &headers, &csrf).await?;
    let app_id = app_id(raw)?;
    let owner = owner_of(&console, session.principal, &app_id).await?;
    let outcome = match file {
        Some(bytes) if !bytes.is_empty() => {
            let source = format!("upload:{name}");
            console
                .avatars
                .update_from_upload(owner, &app_id, bytes, &source)
                .await
                .map(drop)
        }
        _ => Err(DomainError::InvalidInput("请选择一张图片".to_owned())),
    };
    after_change(&console, &session, &app_id, outcome).await
}

#[derive(Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    csrf: String,
    avatar_id: String,
}

pub async fn avatar_restore(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<RestoreForm>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    let avatar_id = AvatarId::parse(&form.avatar_id)
        .map_err(|_| PageError::BadRequest("头像编号不合法".to_owned()))?;
    let outcome = console.avatars.restore(owner, &app_id, avatar_id).await;
    after_change(&console, &session, &app_id, outcome.map(drop)).await
}

#[derive(Deserialize)]
pub struct PrivacyForm {
    #[serde(default)]
    csrf: String,
    option: i64,
    open: bool,
}

pub async fn privacy(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<PrivacyForm>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    let outcome = console
        .profiles
        .set_privacy(owner, &app_id, form.option, form.open)
        .await;
    after_change(&console, &session, &app_id, outcome).await
}

/// The contact card (getQrCode's picture).
pub async fn contact_card(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    let app_id = app_id(raw)?;
    let owner = owner_of(&console, session.principal, &app_id).await?;
    let card = console.profiles.qr_card(owner, &app_id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        card.jpeg,
    )
        .into_response())
}

// ---------------------------------------------------------------- login

async fn login_panel_html(
    console: &Console,
    session: &Session,
    owner: TokenId,
    app_id: &AppId,
) -> Result<String, PageError> {
    let device = console.logins.device_state(owner, app_id).await?;
    let online = device.wxid.is_some() && device.state == LoginState::Online;
    let latest = console.logins.latest_session(owner, app_id).await?;
    let now = console.clock.unix_now();
    let mut panel = view::LoginPanel {
        app_id: app_id.to_string(),
        csrf: session.csrf(),
        poll: false,
        stage_label: "没有登录二维码",
        uuid: None,
        qr: None,
        left_secs: 0,
        can_scan: false,
        can_confirm: false,
        can_new_qr: !online,
        scanner: None,
    };
    if online {
        panel.stage_label = "已登录";
    } else if let Some(login) = latest {
        let expired = now >= login.expires_at && login.stage != LoginStage::Done;
        panel.left_secs = (login.expires_at - now).max(0);
        panel.scanner = login.scanner.as_ref().map(|s| s.nick_name.clone());
        panel.stage_label = match login.stage {
            _ if expired => "二维码已过期",
            LoginStage::Waiting => "等待扫码",
            LoginStage::Scanned | LoginStage::Shown => "已扫码，等待确认",
            LoginStage::Done => "已登录过，设备现已离线",
        };
        if !expired && login.stage != LoginStage::Done {
            panel.poll = true;
            panel.can_scan = login.stage == LoginStage::Waiting;
            panel.can_confirm = matches!(login.stage, LoginStage::Scanned | LoginStage::Shown);
            if login.stage == LoginStage::Waiting {
                let jpeg = console.logins.qr_picture(&login.uuid).await?;
                panel.qr = Some(format!(
                    "data:image/jpeg;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(jpeg)
                ));
            }
            panel.uuid = Some(login.uuid);
        }
    }
    askama::Template::render(&panel).map_err(|e| PageError::Internal(e.to_string()))
}

/// The login panel alone: htmx polls it while a login is under way.
pub async fn login_panel(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    let app_id = app_id(raw)?;
    let owner = owner_of(&console, session.principal, &app_id).await?;
    let body = login_panel_html(&console, &session, owner, &app_id).await?;
    Ok(axum::response::Html(body).into_response())
}

pub async fn login_qr(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    let outcome = console
        .logins
        .qr_code(owner, Some(app_id.clone()), None)
        .await;
    after_change(&console, &session, &app_id, outcome.map(drop)).await
}

#[derive(Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    csrf: String,
    uuid: String,
    nick_name: Option<String>,
    captcha: Option<String>,
}

/// The emulated phone scans the QR (`gewe login confirm`).
pub async fn login_scan(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ScanForm>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    // Only this token's device's QR.
    let ours = console
        .logins
        .latest_session(owner, &app_id)
        .await?
        .is_some_and(|s| s.uuid == form.uuid);
    if !ours {
        return Err(PageError::NotFound);
    }
    let nick_name = form.nick_name.filter(|n| !n.trim().is_empty());
    let outcome = console
        .logins
        .confirm(&form.uuid, None, nick_name, form.captcha)
        .await;
    after_change(&console, &session, &app_id, outcome.map(drop)).await
}

/// The emulated phone confirms: polls as a client would until the login
/// completes (a bot polling checkLogin at the same time sees status 2 too).
pub async fn login_confirm(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ScanForm>,
) -> Result<Response, PageError> {
    let (session, app_id, owner) = device_form(&console, &headers, raw, &form.csrf).await?;
    let captcha = form.captcha.filter(|c| !c.trim().is_empty());
    let mut outcome = Ok(());
    for _ in 0..3 {
        match console
            .logins
            .check(owner, &app_id, &form.uuid, captcha.as_deref())
            .await
        {
            Ok(check) if check.status == 2 => {
                outcome = Ok(());
                break;
            }
            Ok(_) => outcome = Err(DomainError::InvalidInput("尚未扫码".to_owned())),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    after_change(&console, &session, &app_id, outcome).await
}

// ---------------------------------------------------------------- callbacks

pub async fn callbacks(
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    callbacks_page(&console, &session, None).await
}

async fn callbacks_page(
    console: &Console,
    session: &Session,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let owner = owner(session.principal)?;
    let url = console.callbacks.callback_url(owner).await?;
    let events = console
        .callbacks
        .recent(owner, EVENTS_SHOWN)
        .await?
        .into_iter()
        .map(|e| view::EventView {
            id: e.id,
            app_id: e.app_id.to_string(),
            kind: e.type_name,
            state: e.state.as_str(),
            state_label: match e.state {
                OutboxState::Pending => "待发送",
                OutboxState::Delivered => "已送达",
                OutboxState::Failed => "失败",
            },
            attempts: e.attempts,
            error: e.last_error.unwrap_or_default(),
            created: view::time(e.created_at),
            finished: e.finished_at.map(view::time).unwrap_or_default(),
            retry: e.state == OutboxState::Failed,
        })
        .collect();
    Ok(html(&view::CallbacksPage {
        chrome: chrome(session),
        url,
        events,
        notice,
    }))
}

pub async fn retry_callback(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let session = checked(&console, &headers, &form.csrf).await?;
    let owner = owner(session.principal)?;
    if console.callbacks.retry_owned(owner, id).await? {
        Ok(see_other("/console/callbacks"))
    } else {
        callbacks_page(&console, &session, Some("该回调无法重试".to_owned())).await
    }
}
