//! The web console at `/console`: server-rendered pages (askama templates,
//! escaped by default) over the domain services, with vendored htmx and a few
//! lines of our own script embedded in the binary. Nothing is fetched at run
//! time; the pages work offline like `/docs`.
//!
//! Every page needs a signed-in session ([`session`]); every form carries the
//! session's CSRF token and is refused from another site. The session's
//! [`Principal`] decides what a page shows: a token sees its own devices; the
//! operator (signed in with an operator key, while the operator API is on)
//! sees every token's, and the operator pages (journal, fault rules, message
//! injection), which a token session never sees.

mod operator;
mod pages;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use url::Url;

use crate::auth::{OperatorKeys, Tokens};
use crate::domain::{
    Accounts, AppId, AvatarUpdater, Callbacks, Clock, DomainError, Faults, Journal, Logins,
    Messages, Principal, Profiles, Repository, StoreError, TokenId,
};

pub use session::{SESSION_COOKIE, csrf_for};

/// The domain services the console works with, cheap to clone.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

pub struct Inner {
    pub repo: Arc<dyn Repository>,
    pub tokens: Tokens,
    pub accounts: Accounts,
    pub avatars: AvatarUpdater,
    pub logins: Logins,
    pub profiles: Profiles,
    pub callbacks: Callbacks,
    pub clock: Clock,
    pub settings: ConsoleSettings,
    /// The operator's tools: `Some` only while the operator API is on.
    pub operator: Option<OperatorTools>,
}

/// What operator sessions work with; the keys sign them in.
#[derive(Clone)]
pub struct OperatorTools {
    pub keys: OperatorKeys,
    pub journal: Journal,
    pub faults: Faults,
    pub messages: Messages,
}

/// What the console takes from the server's settings.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Cookies get `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Where `/mmhead` redirects avatar pictures to (S3 public base), if anywhere:
    /// the Content-Security-Policy allows pictures from there.
    pub avatar_origin: Option<String>,
    /// The largest upload accepted (the download limit).
    pub max_upload_bytes: u64,
}

impl ConsoleSettings {
    pub fn new(
        public_url: &Url,
        avatar_redirect_base: Option<&Url>,
        max_upload_bytes: u64,
    ) -> Self {
        ConsoleSettings {
            secure_cookies: public_url.scheme() == "https",
            avatar_origin: avatar_redirect_base.map(|u| u.origin().ascii_serialization()),
            max_upload_bytes,
        }
    }

    /// Scripts and styles from our own files only; pictures from here, `data:`
    /// (QR codes) and the avatar redirect base; forms post only here; no framing.
    fn content_security_policy(&self) -> String {
        let avatars = self
            .avatar_origin
            .as_deref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{avatars}; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    }
}

impl std::ops::Deref for Console {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Console {
    pub fn new(inner: Inner) -> Self {
        Console(Arc::new(inner))
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No live session: to the sign-in page.
    SignIn,
    /// A form without this session's CSRF token, or from another site.
    CrossSite,
    NotFound,
    /// A page for token sessions opened by the operator (operator views come
    /// with the operator key).
    TokenOnly,
    /// An operator page opened by a token session (or with the operator API off).
    OperatorOnly,
    BadRequest(String),
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::DeviceNotFound(_) => PageError::NotFound,
            other => match view::user_message(&other) {
                Some(text) => PageError::BadRequest(text),
                None => PageError::Internal(other.to_string()),
            },
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            PageError::SignIn => return Redirect::to("/console/login").into_response(),
            PageError::CrossSite => (
                StatusCode::FORBIDDEN,
                "跨站请求被拒绝：请从控制台页面重新提交。".to_owned(),
            ),
            PageError::NotFound => (StatusCode::NOT_FOUND, "没有这个设备。".to_owned()),
            PageError::TokenOnly => (StatusCode::FORBIDDEN, "此页面需要用令牌登录。".to_owned()),
            PageError::OperatorOnly => (
                StatusCode::FORBIDDEN,
                "此页面仅限运营者（用运营密钥登录）。".to_owned(),
            ),
            PageError::BadRequest(text) => (StatusCode::BAD_REQUEST, text),
            PageError::Internal(cause) => {
                tracing::error!(%cause, "console page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "服务器内部错误，请查看日志。".to_owned(),
                )
            }
        };
        (status, view::message_page(&text)).into_response()
    }
}

/// The token whose devices the session sees.
pub(crate) fn owner(principal: Principal) -> Result<TokenId, PageError> {
    principal.token().ok_or(PageError::TokenOnly)
}

/// The token owning `app_id` as this session may act on it: a token session
/// its own token (the domain then refuses other tokens' devices); the operator
/// whichever token owns the device.
pub(crate) async fn owner_of(
    console: &Console,
    principal: Principal,
    app_id: &AppId,
) -> Result<TokenId, PageError> {
    if let Some(token) = principal.token() {
        return Ok(token);
    }
    if let Some(device) = console.repo.find_device(app_id).await? {
        return Ok(device.owner);
    }
    console
        .repo
        .account_owner(app_id)
        .await?
        .ok_or(PageError::NotFound)
}

const HTMX: &str = include_str!("../../assets/htmx.min.js");
const SCRIPT: &str = include_str!("../../assets/console.js");
const STYLE: &str = include_str!("../../assets/console.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The console's routes, state applied; every answer carries the security headers.
pub fn router(console: Console) -> Router {
    let csp = HeaderValue::from_str(&console.settings.content_security_policy())
        .expect("the policy is ASCII");
    let upload_limit =
        usize::try_from(console.settings.max_upload_bytes).unwrap_or(usize::MAX / 2) + 64 * 1024;
    Router::new()
        .route("/console", get(pages::accounts))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route(
            "/console/login",
            get(pages::sign_in_page).post(pages::sign_in),
        )
        .route("/console/logout", post(pages::sign_out))
        .route("/console/devices", post(pages::new_device))
        .route("/console/a/{app_id}", get(pages::account))
        .route("/console/a/{app_id}/profile", post(pages::edit_profile))
        .route(
            "/console/a/{app_id}/avatar/url",
            post(pages::avatar_from_url),
        )
        .route(
            "/console/a/{app_id}/avatar/upload",
            post(pages::avatar_upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/console/a/{app_id}/avatar/restore",
            post(pages::avatar_restore),
        )
        .route("/console/a/{app_id}/privacy", post(pages::privacy))
        .route("/console/a/{app_id}/qr.jpg", get(pages::contact_card))
        .route("/console/a/{app_id}/login", get(pages::login_panel))
        .route("/console/a/{app_id}/login/qr", post(pages::login_qr))
        .route("/console/a/{app_id}/login/scan", post(pages::login_scan))
        .route(
            "/console/a/{app_id}/login/confirm",
            post(pages::login_confirm),
        )
        .route("/console/callbacks", get(pages::callbacks))
        .route("/console/callbacks/{id}/retry", post(pages::retry_callback))
        .route("/console/journal", get(operator::journal))
        .route(
            "/console/faults",
            get(operator::faults).post(operator::add_fault),
        )
        .route("/console/faults/clear", post(operator::clear_faults))
        .route(
            "/console/inject",
            get(operator::inject_page).post(operator::inject),
        )
        .route(
            "/console/assets/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .layer(axum::middleware::map_response(
            move |mut response: Response| {
                let csp = csp.clone();
                async move {
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
                    headers.insert(
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    );
                    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                    headers.insert(
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("same-origin"),
                    );
                    headers
                        .entry(header::CACHE_CONTROL)
                        .or_insert(HeaderValue::from_static("no-store"));
                    response
                }
            },
        ))
        .with_state(console)
}
