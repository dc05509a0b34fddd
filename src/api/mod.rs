//! The HTTP surface: GeWe routes under both URL prefixes, avatar serving, health.
//! Handlers stay thin: parse at the edge, call the domain, wrap in the envelope.

pub mod control;
mod envelope;
pub mod extract;
mod health;
mod home;
mod login;
mod message;
mod metrics;
pub mod middleware;
mod mmhead;
pub mod not_implemented;
pub mod openapi;
mod personal;
mod tools;
mod unread_body;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use tower_service::Service;
use url::Url;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use control::{CloseConnection, ControlPlane};
pub use envelope::{ApiError, DataOrError, Envelope, ErrorDetail, JSON_UTF8};

use crate::auth::{Issuing, OperatorKeys, Tokens};
use crate::domain::{
    Accounts, AvatarId, AvatarSize, AvatarUpdater, Callbacks, Logins, Messages, OutboxSignal,
    Profiles, Repository,
};
use crate::storage::BlobStore;

/// Cloud GeWe and self-hosted Gewechat put the same routes under different prefixes.
pub const PREFIXES: [&str; 2] = ["/gewe/v2/api", "/v2/api"];

/// Everything a handler may reach, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub repo: Arc<dyn Repository>,
    pub storage: BlobStore,
    pub tokens: Tokens,
    pub accounts: Accounts,
    pub avatars: AvatarUpdater,
    pub logins: Logins,
    pub profiles: Profiles,
    pub callbacks: Callbacks,
    pub messages: Messages,
    /// Rung when an event is committed; the dispatcher waits on it.
    pub outbox_signal: OutboxSignal,
    pub operator_keys: OperatorKeys,
    /// The journal and fault rules; `None` while the operator API is off.
    pub control: Option<ControlPlane>,
    pub avatar_urls: AvatarUrls,
    pub token_issuing: Issuing,
    /// How long a client may take to send a request body.
    pub body_timeout: std::time::Duration,
    /// Whether `GET /metrics` is on the main listener (no `GEWE_METRICS_LISTEN`).
    pub metrics_on_main_listener: bool,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// Builds the links getProfile hands out: `{public base}/mmhead/<id>/<size>`.
#[derive(Debug, Clone)]
pub struct AvatarUrls {
    base: String,
}

impl AvatarUrls {
    pub fn new(public_url: &Url) -> Self {
        AvatarUrls {
            base: public_url.as_str().trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self, avatar_id: AvatarId, size: AvatarSize) -> String {
        format!("{}/mmhead/{avatar_id}/{}", self.base, size.label())
    }
}

/// Every GeWe action, each registered once: this one list yields the routes
/// under both prefixes and their OpenAPI paths. A new action is one handler file
/// and one line here.
fn gewe_actions() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tools::get_token_id::get_token_id))
        .routes(routes!(login::get_login_qr_code::get_login_qr_code))
        .routes(routes!(login::check_login::check_login))
        .routes(routes!(login::dialog_login::dialog_login))
        .routes(routes!(login::reconnection::reconnection))
        .routes(routes!(login::logout::logout))
        .routes(routes!(tools::set_callback::set_callback))
        .routes(routes!(login::set_callback::login_set_callback))
        .routes(routes!(login::check_online::check_online))
        .routes(routes!(login::device_list::device_list))
        .routes(routes!(personal::get_profile::get_profile))
        .routes(routes!(personal::update_head_img::update_head_img))
        .routes(routes!(personal::update_profile::update_profile))
        .routes(routes!(personal::get_qr_code::get_qr_code))
        .routes(routes!(personal::get_safety_info::get_safety_info))
        .routes(routes!(personal::privacy_settings::privacy_settings))
        .routes(routes!(message::post_text::post_text))
}

/// The whole surface, routes and document together, with `extra` (the
/// operator API, wired in by `startup`) merged in.
fn surface(extra: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let mut surface = OpenApiRouter::with_openapi(openapi::base_document());
    for prefix in PREFIXES {
        let actions = gewe_actions();
        let fallbacks = not_implemented::routes(&actions);
        surface = surface.nest(prefix, actions.merge(fallbacks));
    }
    surface
        .routes(routes!(mmhead::serve_variant))
        .routes(routes!(health::alive))
        .routes(routes!(health::ready))
        .merge(extra)
}

/// `docs/coverage.md` as the router makes it: every GeWe route, implemented or not.
pub fn coverage_markdown() -> String {
    not_implemented::coverage_markdown(&not_implemented::registered(
        gewe_actions().get_openapi(),
        "",
    ))
}

pub fn router(state: AppState) -> Router {
    router_with(state, OpenApiRouter::new(), Router::new())
}

/// The server's router: the GeWe surface and `extra` routes (the operator
/// API), documented together, with other pages (the console) beside them, all
/// under the same per-request context.
pub fn router_with(state: AppState, extra: OpenApiRouter<AppState>, pages: Router) -> Router {
    let (mut routes, document) = surface(extra).split_for_parts();
    if state.metrics_on_main_listener {
        routes = routes.route("/metrics", get(metrics::serve_metrics));
    }
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi::finish(document)))
        .route("/", axum::routing::get(home::page))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            control::gewe_calls,
        ))
        .with_state(state)
        .merge(pages)
        .layer(axum::middleware::from_fn(middleware::request_context))
}

/// What a listener answers with: its router, and on the main listener the
/// avatar reads ahead of it.
///
/// `GET|HEAD /mmhead/<id>/<size>` is most of a deployment's traffic and
/// needs none of the router's layers (no envelope, no journal, no fault
/// rules), so a plain avatar path is answered here, in the same request
/// context (request id, log line, metrics) as routed requests. Everything
/// else, odd spellings of that path included, goes through the router.
/// Cloned per request, so one reference count.
#[derive(Clone)]
pub struct Served(Arc<Listening>);

struct Listening {
    router: Router,
    avatars: Option<AppState>,
}

impl Served {
    /// The main listener: the router, avatars answered ahead of it.
    pub fn with_avatars(router: Router, state: AppState) -> Self {
        Served(Arc::new(Listening {
            router,
            avatars: Some(state),
        }))
    }

    /// A listener that only routes (the metrics listener).
    pub fn routed(router: Router) -> Self {
        Served(Arc::new(Listening {
            router,
            avatars: None,
        }))
    }

    /// The answer to one request from `peer`. An avatar read touches neither
    /// the body nor the peer address, so only routed requests pay for boxing
    /// the one and recording the other.
    pub async fn answer<B>(self, request: axum::http::Request<B>, peer: SocketAddr) -> Response
    where
        B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if let Some(state) = &self.0.avatars
            && matches!(*request.method(), Method::GET | Method::HEAD)
            && let Some((id, size)) = mmhead::from_path(request.uri().path())
        {
            // Looked up once, before the context: the map lookup recovers a
            // poisoned lock, so nothing outside the panic guard can panic.
            if let Some(jpeg) = state.storage.variant_in_memory(id, size) {
                return middleware::in_context_now(&request, mmhead::ROUTE, || {
                    mmhead::answer_in_memory(state, id, size, request.headers(), jpeg)
                });
            }
            return Box::pin(middleware::in_context(
                request,
                Some(mmhead::ROUTE),
                |request| async move {
                    mmhead::answer_from_store(state, id, size, request.headers()).await
                },
            ))
            .await;
        }
        let (parts, body) = request.into_parts();
        let (body, read) = unread_body::watch(body);
        let mut request = axum::http::Request::from_parts(parts, Body::new(body));
        request.extensions_mut().insert(ConnectInfo(peer));
        // Boxed, so that the router's large future does not size every
        // avatar read's. A Router is always ready: no poll_ready needed.
        let Ok(mut response) = Box::pin(self.0.router.clone().call(request)).await;
        read.close_if_unread(&mut response);
        response
    }
}

/// `GET /metrics` alone, for its own listen address (`GEWE_METRICS_LISTEN`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::serve_metrics))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}
