//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/openapi.json`, with Swagger UI (assets compiled in, no network) at `/docs`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, PathItem};
use utoipa::{Modify, OpenApi};

use super::{PREFIXES, health, login, mmhead, personal, tools};

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
    paths(
        tools::get_token_id::get_token_id,
        login::check_online::check_online,
        login::device_list::device_list,
        personal::get_profile::get_profile,
        personal::update_head_img::update_head_img,
        mmhead::serve_variant,
        health::alive,
        health::ready,
    ),
    modifiers(&TokenHeader),
    tags(
        (name = "系统功能", description = "Tokens"),
        (name = "登录模块", description = "Devices (appIds) and their state"),
        (name = "个人模块", description = "The account's own profile and avatar"),
        (name = "头像", description = "Avatar pictures, as getProfile links them"),
        (name = "运维", description = "Health checks"),
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
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("X-GEWE-TOKEN", scheme);
    }
}

/// The document, with every GeWe route listed under both prefixes (annotations name
/// the cloud prefix; the self-hosted copy gets its own operation ids).
pub fn document() -> OpenApiDoc {
    let mut doc = ApiDoc::openapi();
    let [cloud, self_hosted] = PREFIXES;
    let copies: Vec<(String, PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix(cloud)?;
            let mut item = item.clone();
            if let Some(op) = item.post.as_mut() {
                op.operation_id = op.operation_id.as_ref().map(|id| format!("{id}SelfHosted"));
            }
            Some((format!("{self_hosted}{rest}"), item))
        })
        .collect();
    doc.paths.paths.extend(copies);
    doc
}
