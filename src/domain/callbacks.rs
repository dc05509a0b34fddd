//! Callbacks: the token's callback URL (setCallback, which pings before it
//! answers) and the events that go there through the outbox.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    AppId, Clock, DomainError, NewEvent, OutboxEvent, OutboxSignal, Repository, TokenId, check_url,
    test_ping,
};
use crate::fetch::{FetchError, Fetcher};

/// Why setCallback did not take the URL.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The ping did not get a 2xx answer: GeWe's `<url> push msg err`.
    #[error("push to callback URL failed: {code}: {reason}")]
    Push { code: &'static str, reason: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// A sending failure as a stable code and plain words for the bot's author.
///
/// Never names an address the host resolved to (the caller knows its URL,
/// not our network): a refused destination is reported by its host only, with
/// the setting that would allow it.
pub fn callback_failure(err: &FetchError) -> (&'static str, String) {
    match err {
        FetchError::BadUrl(reason) => (
            "callback-bad-url",
            format!("回调地址不合法: {}", reason.chinese()),
        ),
        FetchError::AddressNotAllowed { host, .. } => (
            "callback-address-not-allowed",
            format!(
                "回调地址不允许: {host}是内网或保留地址；如需推送到内网，请用 GEWE_CALLBACK_ALLOW_NETS 放行其网段"
            ),
        ),
        FetchError::Dns { host, .. } => ("callback-dns", format!("无法解析回调地址的域名: {host}")),
        FetchError::Connect { .. } => ("callback-connect", "无法连接回调地址".to_owned()),
        FetchError::ConnectTimeout => ("callback-timeout", "连接回调地址超时".to_owned()),
        FetchError::Timeout => ("callback-timeout", "回调地址未在时限内响应".to_owned()),
        FetchError::HttpStatus(status) if (300..400).contains(status) => (
            "callback-http-status",
            format!("回调地址返回HTTP {status}(不跟随重定向)"),
        ),
        FetchError::HttpStatus(status) => {
            ("callback-http-status", format!("回调地址返回HTTP {status}"))
        }
        FetchError::Tls { .. } => ("callback-tls", "与回调地址的TLS握手失败".to_owned()),
        FetchError::TooLarge { .. }
        | FetchError::TooManyRedirects { .. }
        | FetchError::Protocol { .. } => ("callback-protocol", "回调地址响应不合法".to_owned()),
    }
}

#[derive(Clone)]
pub struct Callbacks {
    repo: Arc<dyn Repository>,
    fetcher: Fetcher,
    clock: Clock,
    signal: OutboxSignal,
}

impl Callbacks {
    /// `fetcher` is the callback sender (its own allow list and limits).
    pub fn new(
        repo: Arc<dyn Repository>,
        fetcher: Fetcher,
        clock: Clock,
        signal: OutboxSignal,
    ) -> Self {
        Callbacks {
            repo,
            fetcher,
            clock,
            signal,
        }
    }

    /// Reads the outbox's size and age into the metrics (done at each scrape,
    /// so every instance sharing the database reports the same outbox).
    pub async fn record_outbox_metrics(&self) -> Result<(), DomainError> {
        let stats = self.repo.outbox_stats().await?;
        let age = stats
            .oldest_pending_created_at
            .map_or(0, |created| self.clock.unix_now().saturating_sub(created));
        crate::telemetry::metrics::outbox(
            stats.pending,
            stats.failed,
            age,
            stats.max_pending_attempts,
        );
        Ok(())
    }

    /// POSTs the test message to `url` and, on a 2xx answer, makes it the
    /// token's callback URL. On failure the old URL stays.
    pub async fn set_callback(
        &self,
        owner: TokenId,
        token: &str,
        url: &str,
    ) -> Result<(), CallbackError> {
        let parsed = ::url::Url::parse(url.trim()).map_err(|_| CallbackError::Push {
            code: "callback-bad-url",
            reason: "回调地址不是合法的URL".to_owned(),
        })?;
        check_url(&parsed).map_err(|reason| {
            let (code, reason) = callback_failure(&FetchError::BadUrl(reason));
            CallbackError::Push { code, reason }
        })?;
        let body = Bytes::from(test_ping(token));
        if let Err(err) = self.fetcher.post_json(&parsed, body).await {
            tracing::info!(error = %err, "setCallback ping failed");
            let (code, reason) = callback_failure(&err);
            return Err(CallbackError::Push { code, reason });
        }
        self.repo
            .set_callback_url(owner, parsed.as_str(), self.clock.unix_now())
            .await
            .map_err(DomainError::from)?;
        Ok(())
    }

    pub async fn callback_url(&self, owner: TokenId) -> Result<Option<String>, DomainError> {
        Ok(self.repo.callback_url(owner).await?)
    }

    /// Writes an `Offline` event for `app_id` (when its token has a callback
    /// URL). Until logout and kick write it in their own transaction, this is
    /// how it is emitted on its own. Answers the event id, if one was written.
    pub async fn emit_offline(
        &self,
        owner: TokenId,
        app_id: &AppId,
    ) -> Result<Option<i64>, DomainError> {
        let account = self
            .repo
            .find_account(owner, app_id)
            .await?
            .ok_or_else(|| DomainError::DeviceNotFound(app_id.clone()))?;
        let event = NewEvent::offline(owner, app_id, &account.wxid, self.clock.unix_now());
        let id = self.repo.enqueue_event(&event).await?;
        if id.is_some() {
            self.signal.committed();
        }
        Ok(id)
    }

    /// The token's deliveries, newest first.
    pub async fn list(
        &self,
        owner: TokenId,
        failed_only: bool,
    ) -> Result<Vec<OutboxEvent>, DomainError> {
        Ok(self.repo.list_events(owner, failed_only, 1000).await?)
    }

    /// The token's newest `limit` deliveries, newest first.
    pub async fn recent(
        &self,
        owner: TokenId,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, DomainError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self.repo.list_events(owner, false, limit).await?)
    }

    /// Retries event `id` if it is `owner`'s; false when it is not (or was
    /// already delivered).
    pub async fn retry_owned(&self, owner: TokenId, id: i64) -> Result<bool, DomainError> {
        match self.repo.find_event(id).await? {
            Some(event) if event.owner == owner => self.retry(id).await,
            _ => Ok(false),
        }
    }

    /// Makes event `id` due now with a fresh retry window.
    pub async fn retry(&self, id: i64) -> Result<bool, DomainError> {
        Ok(self.repo.retry_event(id, self.clock.unix_now()).await?)
    }
}
