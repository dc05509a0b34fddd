//! The test control plane's HTTP routes (`/operator/...`), apart from the GeWe
//! surface: each needs `X-GEWE-OPERATOR-KEY`, never a GeWe token, and the whole
//! API is off (404) unless an operator key is configured or stored. Answers use
//! GeWe's envelope, so any GeWe client's JSON handling reads them.

mod faults;
mod inject;
mod journal;
mod messages;
mod reset;
pub mod seed;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiError, AppState, ControlPlane};
use crate::auth::OPERATOR_HEADER;
use crate::domain::{DomainError, TokenId};

/// Every operator action, registered once (routes and OpenAPI paths).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inject::inject_message))
        .routes(routes!(messages::list_messages))
        .routes(routes!(messages::drop_offline))
        .routes(routes!(journal::journal))
        .routes(routes!(journal::clear_journal))
        .routes(routes!(faults::add_fault))
        .routes(routes!(faults::list_faults))
        .routes(routes!(faults::clear_faults))
        .routes(routes!(reset::reset))
        .routes(routes!(seed::seed))
}

/// Proof that the request carries an operator key, with the control plane it
/// operates (present whenever the operator API is on).
pub struct Operator(pub ControlPlane);

/// Why a request is not an operator's.
pub enum Refusal {
    Off,
    NoKey,
    Failed(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Off => (
                StatusCode::NOT_FOUND,
                ApiError::with_detail(
                    "operator API is off",
                    "operator-off",
                    "set GEWE_OPERATOR_KEY or run `gewe operator-key create`, then restart",
                ),
            )
                .into_response(),
            Refusal::NoKey => (
                StatusCode::UNAUTHORIZED,
                ApiError::with_detail(
                    format!("header:{OPERATOR_HEADER} 不可用或已过期"),
                    "operator-key",
                    format!("{OPERATOR_HEADER} is missing or not an operator key"),
                ),
            )
                .into_response(),
            Refusal::Failed(err) => err.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(control) = state.control.clone() else {
            return Err(Refusal::Off);
        };
        let presented = parts
            .headers
            .get(OPERATOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match state.operator_keys.verify(presented).await {
            Ok(true) => Ok(Operator(control)),
            Ok(false) => Err(Refusal::NoKey),
            Err(e) => Err(Refusal::Failed(ApiError::internal(e))),
        }
    }
}

/// The token a request names (its plaintext, as the bot uses it), if any.
async fn named_token(state: &AppState, token: Option<&str>) -> Result<Option<TokenId>, ApiError> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match state.tokens.find(token).await {
        Ok(Some(id)) => Ok(Some(id)),
        Ok(None) => Err(ApiError::with_detail(
            "token不存在",
            "unknown-token",
            "no such token on this server",
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// A domain failure of an operator action, in the envelope.
fn failed(op: &str, err: DomainError) -> ApiError {
    ApiError::operation(op, err)
}
