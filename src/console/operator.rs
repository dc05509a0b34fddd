//! The operator's pages: the journal of GeWe calls, the fault rules and a form
//! to inject a message. Only operator sessions see them; a token session gets
//! 403, and so does everyone while the operator API is off.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::pages::{checked, chrome, see_other, signed_in};
use super::session::Session;
use super::view::{self, html};
use super::{Console, OperatorTools, PageError};
use crate::domain::{
    AppId, DomainError, FaultPreset, FaultRule, FaultSpec, InboundText, JournalQuery, Principal,
    TokenId,
};

/// Journal entries shown, newest first.
const JOURNAL_SHOWN: i64 = 200;

/// The operator's tools, for an operator session only.
fn tools<'a>(console: &'a Console, session: &Session) -> Result<&'a OperatorTools, PageError> {
    match (session.principal, &console.operator) {
        (Principal::Operator, Some(tools)) => Ok(tools),
        _ => Err(PageError::OperatorOnly),
    }
}

/// Every token's name (label and id) by id.
async fn token_names(console: &Console) -> Result<HashMap<TokenId, String>, PageError> {
    Ok(console
        .repo
        .token_labels()
        .await?
        .into_iter()
        .map(|(id, label)| (id, view::token_name(id, label)))
        .collect())
}

fn name_of(names: &HashMap<TokenId, String>, owner: Option<TokenId>) -> String {
    match owner {
        Some(id) => names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{}", id.0)),
        None => "(无令牌)".to_owned(),
    }
}

/// The token a filter names: `#12` or `12` (its id), else its label.
async fn token_filter(console: &Console, text: &str) -> Result<Option<TokenId>, PageError> {
    let text = text.trim();
    let digits = text.strip_prefix('#').unwrap_or(text);
    if let Ok(id) = digits.parse::<i64>() {
        return Ok(Some(TokenId(id)));
    }
    Ok(console
        .repo
        .token_labels()
        .await?
        .into_iter()
        .find(|(_, label)| label.as_deref() == Some(text))
        .map(|(id, _)| id))
}

/// A JSON body pretty-printed (the journal keeps it compact); other text as is.
fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

fn blank_to_none(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

// ---------------------------------------------------------------- journal

#[derive(Deserialize)]
pub struct JournalFilter {
    route: Option<String>,
    app_id: Option<String>,
    token: Option<String>,
}

pub async fn journal(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(filter): Query<JournalFilter>,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    let tools = tools(&console, &session)?;
    let route = blank_to_none(filter.route);
    let app_id = blank_to_none(filter.app_id);
    let token = blank_to_none(filter.token);
    let mut notice = None;
    let owner = match &token {
        Some(text) => match token_filter(&console, text).await? {
            Some(id) => Some(id),
            None => {
                notice = Some(format!("没有标签为“{text}”的令牌"));
                None
            }
        },
        None => None,
    };
    let entries = if notice.is_some() {
        Vec::new()
    } else {
        tools
            .journal
            .query(JournalQuery {
                owner,
                route: route.clone().map(|r| r.trim_start_matches('/').to_owned()),
                app_id: app_id.clone(),
                since_ms: None,
                after_id: None,
                limit: JOURNAL_SHOWN,
            })
            .await?
    };
    let names = token_names(&console).await?;
    let rows = entries
        .into_iter()
        .rev()
        .map(|e| view::JournalRow {
            id: e.id,
            time: format!(
                "{}.{:03} UTC",
                view::time(e.at_ms.div_euclid(1000)).trim_end_matches(" UTC"),
                e.at_ms.rem_euclid(1000)
            ),
            route: e.route,
            app_id: e.app_id.unwrap_or_default(),
            token: name_of(&names, e.owner),
            request: pretty(&e.request),
            response: pretty(&e.response),
            duration_ms: e.duration_ms,
        })
        .collect();
    Ok(html(&view::JournalPage {
        chrome: chrome(&session),
        route: route.unwrap_or_default(),
        app_id: app_id.unwrap_or_default(),
        token: token.unwrap_or_default(),
        notice,
        rows,
    }))
}

// ---------------------------------------------------------------- faults

pub async fn faults(
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    faults_page(&console, &session, None, StatusCode::OK).await
}

fn describe(rule: &FaultRule) -> String {
    let mut parts = Vec::new();
    if rule.delay_ms > 0 {
        parts.push(format!("延迟 {} ms", rule.delay_ms));
    }
    if rule.close {
        parts.push("断开连接".to_owned());
    }
    if let Some(answer) = &rule.answer {
        parts.push(format!("回答 {answer}"));
    }
    if parts.is_empty() {
        parts.push("照常处理".to_owned());
    }
    parts.join("，")
}

async fn faults_page(
    console: &Console,
    session: &Session,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tools = tools(console, session)?;
    let names = token_names(console).await?;
    let rows = tools
        .faults
        .list(None)
        .await?
        .into_iter()
        .map(|rule| view::FaultRow {
            id: rule.id,
            action: describe(&rule),
            route: rule.route.clone(),
            app_id: rule.app_id.clone().unwrap_or_default(),
            token: match rule.owner {
                Some(_) => name_of(&names, rule.owner),
                None => "全部".to_owned(),
            },
            hits: rule.hits,
            remaining: rule
                .remaining
                .map(|r| r.to_string())
                .unwrap_or_else(|| "不限".to_owned()),
            probability: rule
                .probability
                .map(|p| format!("{p} (种子 {})", rule.seed))
                .unwrap_or_else(|| "全部".to_owned()),
            expires: rule.expires_at.map(view::time).unwrap_or_default(),
        })
        .collect();
    Ok((
        status,
        html(&view::FaultsPage {
            chrome: chrome(session),
            notice,
            rows,
            presets: &FaultPreset::NAMES,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct FaultForm {
    #[serde(default)]
    csrf: String,
    preset: Option<String>,
    route: Option<String>,
    app_id: Option<String>,
    times: Option<String>,
    probability: Option<String>,
    seed: Option<String>,
    delay_ms: Option<String>,
    close: Option<String>,
}

/// A number field: empty is absent, anything else must parse.
fn number<T: std::str::FromStr>(name: &str, text: Option<String>) -> Result<Option<T>, String> {
    match blank_to_none(text) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} 不是数字: {t}")),
    }
}

pub async fn add_fault(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<FaultForm>,
) -> Result<Response, PageError> {
    let session = checked(&console, &headers, &form.csrf).await?;
    let tools = tools(&console, &session)?;
    let spec = (|| {
        Ok::<_, String>(FaultSpec {
            owner: None,
            route: blank_to_none(form.route),
            app_id: blank_to_none(form.app_id),
            preset: blank_to_none(form.preset),
            answer: None,
            delay_ms: number("延迟", form.delay_ms)?,
            close: form.close.is_some_and(|c| c == "true" || c == "on"),
            times: number("次数", form.times)?,
            probability: number("概率", form.probability)?,
            seed: number("种子", form.seed)?,
            ttl_secs: None,
        })
    })();
    let outcome = match spec {
        Ok(spec) => tools.faults.add(spec).await.map(drop),
        Err(text) => Err(DomainError::InvalidInput(text)),
    };
    match outcome {
        Ok(()) => Ok(see_other("/console/faults")),
        Err(e) => match view::user_message(&e) {
            Some(text) => {
                faults_page(
                    &console,
                    &session,
                    Some(text),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn clear_faults(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let session = checked(&console, &headers, &form.csrf).await?;
    let tools = tools(&console, &session)?;
    tools.faults.clear(None).await?;
    Ok(see_other("/console/faults"))
}

// ---------------------------------------------------------------- inject

#[derive(Deserialize, Default)]
pub struct InjectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    app_id: String,
    from: Option<String>,
    nick_name: Option<String>,
    chatroom: Option<String>,
    at_self: Option<String>,
    #[serde(default)]
    content: String,
}

fn inject_view(
    session: &Session,
    form: InjectForm,
    notice: Option<String>,
    injected: Option<view::InjectedView>,
) -> view::InjectPage {
    view::InjectPage {
        chrome: chrome(session),
        notice,
        injected,
        app_id: form.app_id,
        from: form.from.unwrap_or_default(),
        nick_name: form.nick_name.unwrap_or_default(),
        chatroom: form.chatroom.unwrap_or_default(),
        content: form.content,
    }
}

pub async fn inject_page(
    State(console): State<Console>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let session = signed_in(&console, &headers).await?;
    tools(&console, &session)?;
    Ok(html(&inject_view(
        &session,
        InjectForm::default(),
        None,
        None,
    )))
}

pub async fn inject(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<InjectForm>,
) -> Result<Response, PageError> {
    let session = checked(&console, &headers, &form.csrf).await?;
    let tools = tools(&console, &session)?;
    let outcome = match AppId::parse(Some(form.app_id.trim().to_owned())) {
        Ok(app_id) => {
            tools
                .messages
                .inject(
                    &app_id,
                    InboundText {
                        from: blank_to_none(form.from.clone()),
                        from_nick_name: blank_to_none(form.nick_name.clone()),
                        chatroom: blank_to_none(form.chatroom.clone()),
                        chatroom_name: None,
                        content: form.content.clone(),
                        at_self: form
                            .at_self
                            .as_deref()
                            .is_some_and(|v| v == "true" || v == "on"),
                    },
                )
                .await
        }
        Err(_) => Err(DomainError::InvalidInput("appId 不合法".to_owned())),
    };
    match outcome {
        Ok(injected) => {
            let shown = view::InjectedView {
                msg_id: injected.message.msg_id,
                new_msg_id: injected.message.new_msg_id,
                msg_seq: injected.message.msg_seq,
                create_time: view::time(injected.message.created_at),
                from_wxid: injected.from_wxid,
                to_wxid: injected.to_wxid,
                chatroom: injected.chatroom.unwrap_or_default(),
                event_id: injected
                    .event_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "(令牌未设置回调地址，不推送)".to_owned()),
            };
            // The form stays filled but for the content, for the next message.
            let form = InjectForm {
                content: String::new(),
                ..form
            };
            Ok(html(&inject_view(&session, form, None, Some(shown))))
        }
        Err(e) => {
            let text = view::user_message(&e).ok_or_else(|| PageError::from(e))?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                html(&inject_view(&session, form, Some(text), None)),
            )
                .into_response())
        }
    }
}
