//! Fixtures: a file (TOML or JSON) of tokens, accounts, contacts and groups
//! with fixed ids, so a CI run starts from a known state. Applying the same
//! file twice changes nothing: what exists and matches is left alone.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Operator;
use crate::api::extract::GeweJson;
use crate::api::{ApiError, AppState, DataOrError, Envelope, Services};
use crate::domain::{AccountDraft, AppId, DomainError, ProfileUpdate};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub tokens: Vec<TokenFixture>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenFixture {
    /// 32 hex characters: the token the bot will use
    #[schema(example = "0123456789abcdef0123456789abcdef")]
    pub token: String,
    pub label: Option<String>,
    #[serde(default)]
    pub accounts: Vec<AccountFixture>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountFixture {
    #[schema(example = "wx_fixture_bot_0000001")]
    pub app_id: String,
    #[schema(example = "wxid_fixturebot01")]
    pub wxid: String,
    pub nick_name: Option<String>,
    pub alias: Option<String>,
    pub mobile: Option<String>,
    pub sex: Option<i64>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub signature: Option<String>,
    pub country: Option<String>,
    #[serde(default)]
    pub contacts: Vec<ContactFixture>,
    #[serde(default)]
    pub groups: Vec<GroupFixture>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactFixture {
    pub wxid: String,
    pub nick_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupFixture {
    /// `<id>@chatroom`
    pub id: String,
    pub name: Option<String>,
}

/// What applying a fixture did.
#[derive(Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeedReport {
    pub tokens: u64,
    pub accounts_created: u64,
    pub accounts_updated: u64,
    pub contacts: u64,
}

impl Fixture {
    /// A fixture file's text: TOML, or JSON when it starts with `{`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("fixture (JSON): {e}"))
        } else {
            toml::from_str(text).map_err(|e| format!("fixture (TOML): {e}"))
        }
    }
}

/// Applies `fixture`: creates what is missing, brings profiles in line, and
/// leaves what matches alone.
pub async fn apply(services: &Services, fixture: &Fixture) -> Result<SeedReport, SeedError> {
    let mut report = SeedReport::default();
    for token in &fixture.tokens {
        let owner = services
            .tokens
            .ensure(token.token.trim(), token.label.as_deref())
            .await
            .map_err(|e| SeedError::Failed(e.to_string()))?
            .ok_or_else(|| {
                SeedError::Invalid(format!("token {:?} is not 32 hex characters", token.token))
            })?;
        report.tokens += 1;
        for account in &token.accounts {
            let app_id = AppId::parse(Some(account.app_id.clone())).map_err(|e| {
                SeedError::Invalid(format!(
                    "appId {:?} is not a valid appId ({e:?})",
                    account.app_id
                ))
            })?;
            match services.messages.owner_of(&app_id).await {
                Ok(existing) if existing != owner => {
                    return Err(SeedError::Invalid(format!(
                        "appId {app_id} belongs to another token"
                    )));
                }
                Ok(_) => {
                    let current = services.accounts.profile(owner, &app_id).await?;
                    if current.wxid.as_str() != account.wxid {
                        return Err(SeedError::Invalid(format!(
                            "appId {app_id} is bound to wxid {}, not {}",
                            current.wxid, account.wxid
                        )));
                    }
                    let changed = services
                        .profiles
                        .update(
                            owner,
                            &app_id,
                            ProfileUpdate {
                                nick_name: account.nick_name.clone(),
                                country: account.country.clone(),
                                province: account.province.clone(),
                                city: account.city.clone(),
                                sex: account.sex.map(|s| s.to_string()),
                                signature: account.signature.clone(),
                            },
                        )
                        .await?;
                    if !changed.is_empty() {
                        report.accounts_updated += 1;
                    }
                }
                Err(DomainError::DeviceNotFound(_)) => {
                    services
                        .accounts
                        .create_as(
                            owner,
                            app_id.clone(),
                            AccountDraft {
                                wxid: Some(account.wxid.clone()),
                                nick_name: account.nick_name.clone(),
                                alias: account.alias.clone(),
                                mobile: account.mobile.clone(),
                                sex: account.sex,
                                province: account.province.clone(),
                                city: account.city.clone(),
                                signature: account.signature.clone(),
                                country: account.country.clone(),
                            },
                        )
                        .await?;
                    report.accounts_created += 1;
                }
                Err(e) => return Err(e.into()),
            }
            for contact in &account.contacts {
                services
                    .messages
                    .friend(&app_id, contact.wxid.trim(), contact.nick_name.as_deref())
                    .await?;
                report.contacts += 1;
            }
            for group in &account.groups {
                services
                    .messages
                    .group(&app_id, group.id.trim(), group.name.as_deref())
                    .await?;
                report.contacts += 1;
            }
        }
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// Apply a fixture
///
/// The same document `gewe seed FILE` reads (here as JSON): tokens, accounts
/// with fixed appIds, wxids and profiles, their contacts and groups. Applying
/// it twice changes nothing.
#[utoipa::path(
    post,
    path = "/operator/seed",
    operation_id = "operatorSeed",
    tag = "operator",
    security(("X-GEWE-OPERATOR-KEY" = [])),
    request_body(content = Fixture, content_type = "application/json"),
    responses(
        (status = 200, description = "What was created or changed, or ret 500 with the reason",
         body = Envelope<DataOrError<SeedReport>>, content_type = "application/json"),
    ),
)]
pub async fn seed(
    _: Operator,
    State(state): State<AppState>,
    GeweJson(fixture): GeweJson<Fixture>,
) -> Result<Envelope<SeedReport>, ApiError> {
    let report = apply(&state, &fixture).await.map_err(|e| match e {
        SeedError::Invalid(detail) => ApiError::with_detail("导入失败", "invalid-fixture", detail),
        SeedError::Failed(cause) => ApiError::internal(cause),
        SeedError::Domain(err) => ApiError::operation("导入", err),
    })?;
    Ok(Envelope::ok("操作成功", report))
}
