//! The HTTP surface: GeWe routes under both URL prefixes, avatar serving, health.
//! Handlers stay thin: parse at the edge, call the domain, wrap in the envelope.

mod envelope;
mod extract;
mod health;
mod login;
pub mod middleware;
mod mmhead;
pub mod openapi;
mod personal;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use url::Url;
use utoipa_swagger_ui::SwaggerUi;

pub use envelope::{ApiError, Envelope, JSON_UTF8};

use crate::auth::Tokens;
use crate::domain::{Accounts, AvatarUpdater};
use crate::imaging::AvatarSize;
use crate::repo::Repository;
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
    pub avatar_urls: AvatarUrls,
    pub token_issuing: bool,
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

    pub fn url(&self, avatar_id: &str, size: AvatarSize) -> String {
        format!("{}/mmhead/{avatar_id}/{}", self.base, size.label())
    }
}

pub fn router(state: AppState) -> Router {
    let gewe = Router::new()
        .route("/tools/getTokenId", post(tools::get_token_id))
        .route("/login/checkOnline", post(login::check_online))
        .route("/login/deviceList", post(login::device_list))
        .route("/personal/getProfile", post(personal::get_profile))
        .route("/personal/updateHeadImg", post(personal::update_head_img));
    let mut app = Router::new();
    for prefix in PREFIXES {
        app = app.nest(prefix, gewe.clone());
    }
    app.route("/mmhead/{id}/{size}", get(mmhead::serve_variant))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi::document()))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}
