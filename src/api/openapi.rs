//! The OpenAPI document, generated from the handlers' annotations (collected as
//! the routes are registered, see [`super::router`]) and served at `/openapi.json`,
//! with Swagger UI (assets compiled in, no network) at `/docs`.

use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::PREFIXES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gewe-server",
        description = "A self-hosted server that speaks the GeWe WeChat-bot HTTP API. \
            Every GeWe route answers under `/gewe/v2/api` (cloud GeWe) and `/v2/api` \
            (self-hosted Gewechat), always with HTTP 200 and the envelope \
            `{ret, msg[, data]}`: `ret` 200 is success, 500 failure with \
            `data: {code, msg}` naming the reason.",
    ),
    modifiers(&TokenHeader),
    tags(
        (name = "系统功能", description = "Tokens"),
        (name = "登录模块", description = "Devices (appIds) and their state"),
        (name = "个人模块", description = "The account's own profile and avatar"),
        (name = "头像", description = "Avatar pictures, as getProfile links them"),
        (name = "消息模块", description = "Messages the account sends"),
        (name = "运维", description = "Health checks"),
        (name = "operator", description = "The test control plane (not GeWe): inject messages, \
            read the journal of GeWe calls, make GeWe misbehave, reset and seed. Needs \
            `X-GEWE-OPERATOR-KEY`; off unless an operator key is configured."),
    ),
)]
struct ApiDoc;

struct TokenHeader;

impl Modify for TokenHeader {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let scheme = SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-GEWE-TOKEN",
            "The token from tools/getTokenId or `gewe token create`",
        )));
        let operator = SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-GEWE-OPERATOR-KEY",
            "GEWE_OPERATOR_KEY, or a key from `gewe operator-key create`",
        )));
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("X-GEWE-TOKEN", scheme);
        components.add_security_scheme("X-GEWE-OPERATOR-KEY", operator);
    }
}

/// Info, tags and security scheme; the paths come with the routes.
pub(super) fn base_document() -> OpenApiDoc {
    ApiDoc::openapi()
}

/// Every GeWe route is registered under both prefixes; operation ids must be
/// unique, so the self-hosted copies get their own, and are listed after the rest.
pub(super) fn finish(mut doc: OpenApiDoc) -> OpenApiDoc {
    let missing =
        super::not_implemented::missing(&super::not_implemented::registered(&doc, PREFIXES[0]));
    let listed = missing
        .iter()
        .map(|(route, _)| format!("`{route}`"))
        .collect::<Vec<_>>()
        .join(", ");
    doc.info.description = Some(format!(
        "{}\n\nThe other {} GeWe routes are not implemented yet: under both prefixes they \
         answer HTTP 200 with `{{\"ret\":500,\"msg\":\"<route> 未实现\",\"data\":\
         {{\"code\":\"not-implemented\",\"msg\":\"gewe-server does not implement <route> yet\"}}}}` \
         and are not listed as paths here: {listed}.",
        doc.info.description.take().unwrap_or_default(),
        missing.len(),
    ));
    let self_hosted = PREFIXES[1];
    let (copies, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .partition(|(path, _)| path.starts_with(self_hosted));
    doc.paths.paths.extend(rest);
    doc.paths
        .paths
        .extend(copies.into_iter().map(|(path, mut item)| {
            if let Some(op) = item.post.as_mut() {
                op.operation_id = op.operation_id.take().map(|id| format!("{id}SelfHosted"));
            }
            (path, item)
        }));
    doc
}
