//! Fault rules: make GeWe misbehave on purpose, so a bot's error paths can be
//! tested. A rule takes some calls of one route (optionally of one appId or one
//! token) and answers them with a given envelope, after a delay, or by closing
//! the connection. Which calls a fraction takes comes from a seeded sequence,
//! so a test run is reproducible.

use std::sync::Arc;

use super::{Clock, DomainError, FaultRule, Repository, TokenId};

/// What a rule does to a call it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Wait `delay_ms`, then answer `answer` (the route is not called) or, with
    /// no answer, call the route as usual.
    Answer {
        delay_ms: u64,
        answer: Option<String>,
    },
    /// Wait `delay_ms`, then close the connection without a word.
    Close { delay_ms: u64 },
}

impl FaultRule {
    pub fn action(&self) -> FaultAction {
        let delay_ms = u64::try_from(self.delay_ms).unwrap_or(0);
        if self.close {
            FaultAction::Close { delay_ms }
        } else {
            FaultAction::Answer {
                delay_ms,
                answer: self.answer.clone(),
            }
        }
    }
}

/// The ready-made rules for what bots must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPreset {
    /// WeChat's risk control refuses the call (updateHeadImg by default).
    RiskControl,
    /// `微信已离线`, GeWe's answer for a device that dropped.
    Offline,
    /// GeWe answers, but only after 5 s.
    Slow,
    /// The connection closes without an answer.
    Disconnect,
}

impl FaultPreset {
    pub const NAMES: [&'static str; 4] = ["risk-control", "offline", "slow", "disconnect"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "risk-control" => Some(Self::RiskControl),
            "offline" => Some(Self::Offline),
            "slow" => Some(Self::Slow),
            "disconnect" => Some(Self::Disconnect),
            _ => None,
        }
    }
}

/// The text risk control answers with (WeChat's "too often" refusal).
pub const RISK_CONTROL_MSG: &str = "操作过于频繁，请稍后再试";
/// The delay of the `slow` preset.
pub const SLOW_DELAY_MS: i64 = 5_000;
/// The longest delay a rule may ask for.
pub const MAX_DELAY_MS: i64 = 120_000;

/// A rule as an operator asks for it; checked by [`Faults::add`].
#[derive(Debug, Clone, Default)]
pub struct FaultSpec {
    pub owner: Option<TokenId>,
    /// `module/action`; the preset's default when absent.
    pub route: Option<String>,
    pub app_id: Option<String>,
    pub preset: Option<String>,
    /// A whole GeWe envelope (JSON object) to answer with.
    pub answer: Option<serde_json::Value>,
    pub delay_ms: Option<i64>,
    pub close: bool,
    /// The next N calls; unlimited when absent.
    pub times: Option<i64>,
    /// A fraction of the calls, 0 < p ≤ 1.
    pub probability: Option<f64>,
    pub seed: Option<i64>,
    /// The rule ends after this many seconds.
    pub ttl_secs: Option<i64>,
}

#[derive(Clone)]
pub struct Faults {
    repo: Arc<dyn Repository>,
    clock: Clock,
}

impl Faults {
    pub fn new(repo: Arc<dyn Repository>, clock: Clock) -> Self {
        Faults { repo, clock }
    }

    /// Checks and stores a rule; answers it as stored.
    pub async fn add(&self, spec: FaultSpec) -> Result<FaultRule, DomainError> {
        let mut rule = self.rule_from(spec)?;
        rule.id = self.repo.insert_fault(&rule).await?;
        Ok(rule)
    }

    pub async fn list(&self, owner: Option<TokenId>) -> Result<Vec<FaultRule>, DomainError> {
        Ok(self.repo.list_faults(owner).await?)
    }

    pub async fn clear(&self, owner: Option<TokenId>) -> Result<u64, DomainError> {
        Ok(self.repo.clear_faults(owner).await?)
    }

    /// The rule that takes this call, if any (its use is counted).
    pub async fn take(
        &self,
        owner: Option<TokenId>,
        route: &str,
        app_id: Option<&str>,
    ) -> Result<Option<FaultRule>, DomainError> {
        Ok(self
            .repo
            .take_fault(owner, route, app_id, self.clock.unix_now(), &takes)
            .await?)
    }

    fn rule_from(&self, spec: FaultSpec) -> Result<FaultRule, DomainError> {
        let preset = spec
            .preset
            .as_deref()
            .map(|name| {
                FaultPreset::parse(name).ok_or_else(|| {
                    invalid(
                        "preset",
                        format!(
                            "unknown preset {name:?}; one of {}",
                            FaultPreset::NAMES.join(", ")
                        ),
                    )
                })
            })
            .transpose()?;
        let route = match (spec.route, preset) {
            (Some(route), _) => checked_route(route.trim())?,
            (None, Some(FaultPreset::RiskControl)) => "personal/updateHeadImg".to_owned(),
            (None, _) => {
                return Err(invalid(
                    "route",
                    "route is required, e.g. personal/updateHeadImg".into(),
                ));
            }
        };
        let operation = operation_name(&route);
        let mut answer = match (spec.answer, preset) {
            (Some(answer), _) => Some(checked_answer(answer)?),
            (None, Some(FaultPreset::RiskControl)) => {
                Some(envelope(operation, "-2", RISK_CONTROL_MSG))
            }
            (None, Some(FaultPreset::Offline)) => Some(envelope(operation, "-1", "微信已离线")),
            (None, _) => None,
        };
        let close = spec.close || preset == Some(FaultPreset::Disconnect);
        if close {
            answer = None;
        }
        let delay_ms = match (spec.delay_ms, preset) {
            (Some(ms), _) => ms,
            (None, Some(FaultPreset::Slow)) => SLOW_DELAY_MS,
            (None, _) => 0,
        };
        if !(0..=MAX_DELAY_MS).contains(&delay_ms) {
            return Err(invalid(
                "delayMs",
                format!("delayMs must be between 0 and {MAX_DELAY_MS}"),
            ));
        }
        if answer.is_none() && !close && delay_ms == 0 {
            return Err(invalid(
                "answer",
                "a rule needs an answer, a delay, close or a preset".into(),
            ));
        }
        if let Some(times) = spec.times
            && times < 1
        {
            return Err(invalid("times", "times must be at least 1".into()));
        }
        if let Some(p) = spec.probability
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(invalid(
                "probability",
                "probability must be in (0, 1]".into(),
            ));
        }
        let now = self.clock.unix_now();
        let expires_at = match spec.ttl_secs {
            Some(ttl) if ttl < 1 => {
                return Err(invalid("ttlSecs", "ttlSecs must be at least 1".into()));
            }
            Some(ttl) => Some(now.saturating_add(ttl)),
            None => None,
        };
        Ok(FaultRule {
            id: 0,
            owner: spec.owner,
            route,
            app_id: spec.app_id.filter(|a| !a.trim().is_empty()),
            answer: answer.map(|a| a.to_string()),
            delay_ms,
            close,
            remaining: spec.times,
            probability: spec.probability,
            seed: spec.seed.unwrap_or(0),
            draws: 0,
            hits: 0,
            expires_at,
            created_at: now,
        })
    }
}

/// Whether a matching rule takes the call: always, or when the rule's next
/// draw from its seeded sequence falls under its probability.
pub fn takes(rule: &FaultRule) -> bool {
    match rule.probability {
        None => true,
        Some(p) => unit_draw(rule.seed, rule.draws) < p,
    }
}

/// The `index`-th number in [0, 1) of the sequence `seed` names (SplitMix64):
/// the same seed gives the same calls on every run.
pub fn unit_draw(seed: i64, index: i64) -> f64 {
    let mut z = (seed as u64).wrapping_add(
        (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1_u64 << 53) as f64
}

fn invalid(field: &'static str, detail: String) -> DomainError {
    DomainError::InvalidField { field, detail }
}

fn checked_route(route: &str) -> Result<String, DomainError> {
    let route = route.trim_start_matches('/');
    let ok = route.split('/').count() == 2
        && route
            .split('/')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(route.to_owned())
    } else {
        Err(invalid(
            "route",
            format!("route must be module/action, e.g. personal/updateHeadImg ({route:?})"),
        ))
    }
}

fn checked_answer(answer: serde_json::Value) -> Result<serde_json::Value, DomainError> {
    let ret_ok = answer
        .as_object()
        .and_then(|o| o.get("ret"))
        .is_some_and(serde_json::Value::is_i64);
    if ret_ok {
        Ok(answer)
    } else {
        Err(invalid(
            "answer",
            "answer must be a GeWe envelope, a JSON object with a numeric ret".into(),
        ))
    }
}

fn envelope(operation: &str, code: &str, msg: &str) -> serde_json::Value {
    serde_json::json!({"ret": 500, "msg": format!("{operation}失败"), "data": {"code": code, "msg": msg}})
}

/// The operation GeWe names in a failure's `msg` (`修改头像失败`).
fn operation_name(route: &str) -> &'static str {
    match route {
        "personal/updateHeadImg" => "修改头像",
        "personal/updateProfile" => "修改个人信息",
        "personal/getProfile" => "获取个人资料",
        "personal/getQrCode" => "获取自己的二维码",
        "personal/getSafetyInfo" => "获取设备记录",
        "personal/privacySettings" => "隐私设置",
        "message/postText" => "发送文字消息",
        "login/checkOnline" => "检查在线",
        _ => "操作",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_roughly_uniform() {
        let a: Vec<f64> = (0..1000).map(|i| unit_draw(42, i)).collect();
        let b: Vec<f64> = (0..1000).map(|i| unit_draw(42, i)).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
        let under_half = a.iter().filter(|x| **x < 0.5).count();
        assert!((400..600).contains(&under_half), "{under_half}");
        assert_ne!(a, (0..1000).map(|i| unit_draw(43, i)).collect::<Vec<_>>());
    }

    #[test]
    fn routes_are_module_slash_action() {
        assert!(checked_route("personal/updateHeadImg").is_ok());
        assert!(checked_route("/message/postText").is_ok());
        assert!(checked_route("personal").is_err());
        assert!(checked_route("personal/update HeadImg").is_err());
    }
}
