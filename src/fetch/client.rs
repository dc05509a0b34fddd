//! The [`Fetcher`]: one GET, redirects by hand, timeouts and byte limits.

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, LOCATION,
    USER_AGENT,
};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::connector::{ConnectError, Dial, GuardedConnector, Resolve, SystemResolver, TcpDialer};
use super::{BadUrlReason, FetchConfig, FetchError, check_url};

const USER_AGENT_VALUE: &str = concat!("gewe-server/", env!("CARGO_PKG_VERSION"));
const ACCEPT_VALUE: &str = "image/*";
/// Idle keep-alive connections kept per callback receiver (host and port), and
/// for how long: enough for the dispatcher's deliveries in flight.
const POST_IDLE_PER_HOST: usize = 32;
const POST_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// ETags longer than this are not kept (nginx's are 20-odd bytes, S3's 34).
const MAX_ETAG_LEN: usize = 128;

type HttpClient = Client<HttpsConnector<GuardedConnector>, Empty<Bytes>>;
type PostClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// What [`Fetcher::fetch_unless`] found.
#[derive(Debug)]
pub enum Fetched {
    /// The body, and the strong ETag the URL answered it with: only when the URL
    /// answered itself, not through a redirect (whose target may change).
    Body { bytes: Bytes, etag: Option<String> },
    /// 304 Not Modified: the URL still has the bytes of the ETag asked with.
    NotModified,
}

/// Downloads pictures from untrusted URLs, and POSTs callbacks to them. Cheap
/// to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: HttpClient,
    post_client: PostClient,
    config: Arc<FetchConfig>,
    resolver: Arc<dyn Resolve>,
    dialer: Arc<dyn Dial>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// The production fetcher: system resolver, real TCP.
    pub fn new(config: FetchConfig) -> Self {
        Self::with_network(config, Arc::new(SystemResolver), Arc::new(TcpDialer))
    }

    /// A fetcher with injected name resolution and dialling.
    pub fn with_network(
        config: FetchConfig,
        resolver: Arc<dyn Resolve>,
        dialer: Arc<dyn Dial>,
    ) -> Self {
        let guarded = GuardedConnector::new(
            Arc::clone(&resolver),
            Arc::clone(&dialer),
            config.allow_nets.clone(),
            config.connect_timeout,
        );
        // Uses rustls' process-default crypto provider, which is ring (the
        // only provider feature enabled in this crate's dependency tree).
        let https = HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(guarded);
        // Downloads keep no idle pool: they are rare and we should not keep
        // sockets to strangers' servers open. POSTs go to callback receivers, the
        // endpoint a token's owner configured, one event after another: their
        // connections are kept for the next event (as webhook senders do), which
        // spares both sides a connection per callback. No proxy support exists
        // in this client.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https.clone());
        let post_client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(POST_IDLE_PER_HOST)
            .pool_idle_timeout(POST_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(https);
        Self {
            client,
            post_client,
            config: Arc::new(config),
            resolver,
            dialer,
        }
    }

    /// The same network (resolver and dialer) with other limits and another
    /// allow list: callbacks are sent by one of these, with their own settings.
    pub fn reconfigured(&self, config: FetchConfig) -> Self {
        Self::with_network(config, Arc::clone(&self.resolver), Arc::clone(&self.dialer))
    }

    /// The configuration this fetcher was built with.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Download the body of `url` (GET), following at most `max_redirects`
    /// redirects, every hop re-checked. The whole call is bounded by
    /// `total_timeout`.
    pub async fn fetch(&self, url: &::url::Url) -> Result<Bytes, FetchError> {
        match self.fetch_unless(url, None, Vec::new()).await? {
            Fetched::Body { bytes, .. } => Ok(bytes),
            Fetched::NotModified => Err(FetchError::HttpStatus(304)),
        }
    }

    /// [`fetch`](Self::fetch), asking the first URL for its body only if it no
    /// longer matches `etag` (`If-None-Match`, a strong ETag it answered
    /// before). A 304 counts only when it answers that question: to a request
    /// without it, or after a redirect, it is a status like any other non-2xx.
    /// The body is read into `buffer` (emptied first; grown as needed), so a
    /// caller may hand in memory it keeps for downloads.
    pub async fn fetch_unless(
        &self,
        url: &::url::Url,
        etag: Option<&str>,
        buffer: Vec<u8>,
    ) -> Result<Fetched, FetchError> {
        check_url(url).map_err(FetchError::BadUrl)?;
        let condition = etag.and_then(|etag| HeaderValue::from_str(etag).ok());
        let following = self.follow(url, condition, buffer);
        match tokio::time::timeout(self.config.total_timeout, following).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        }
    }

    /// POST `body` as `application/json` to `url` and answer the status when it
    /// is 2xx. Redirects are NOT followed (a 3xx is an [`FetchError::HttpStatus`]
    /// like any other non-2xx). Everything up to the status line is bounded by
    /// `total_timeout`; then at most `max_bytes` of the response body are read
    /// (whatever is left of the same deadline) and the rest is dropped unread:
    /// the receiver has answered, its body is of no interest.
    pub async fn post_json(&self, url: &::url::Url, body: Bytes) -> Result<u16, FetchError> {
        check_url(url).map_err(FetchError::BadUrl)?;
        let deadline = tokio::time::Instant::now() + self.config.total_timeout;
        let request = Request::post(to_uri(url)?)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|_| FetchError::BadUrl(BadUrlReason::Unusable))?;
        let response =
            match tokio::time::timeout_at(deadline, self.post_client.request(request)).await {
                Ok(result) => result.map_err(request_error)?,
                Err(_) => return Err(FetchError::Timeout),
            };
        let status = response.status();
        let limit = usize::try_from(self.config.max_bytes).unwrap_or(usize::MAX);
        let drain = async move {
            let mut body = response.into_body();
            let mut read = 0usize;
            while read < limit {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    _ => break,
                }
            }
        };
        // Bounded in bytes and in time; what the body says does not matter.
        let _ = tokio::time::timeout_at(deadline, drain).await;
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(FetchError::HttpStatus(status.as_u16()))
        }
    }

    async fn follow(
        &self,
        start: &::url::Url,
        mut condition: Option<HeaderValue>,
        buffer: Vec<u8>,
    ) -> Result<Fetched, FetchError> {
        let mut current = start.clone();
        let mut redirects = 0usize;
        loop {
            let asked = condition.is_some();
            let response = self.get(&current, condition.take()).await?;
            let status = response.status();
            if asked && status == StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified);
            }
            if is_redirect(status) {
                if redirects >= self.config.max_redirects {
                    return Err(FetchError::TooManyRedirects {
                        max: self.config.max_redirects,
                    });
                }
                redirects += 1;
                let next = redirect_target(&current, response.headers())?;
                check_url(&next).map_err(FetchError::BadUrl)?;
                tracing::debug!(from = %current, to = %next, "outbound fetch: following redirect");
                drop(response);
                current = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::HttpStatus(status.as_u16()));
            }
            let etag = (redirects == 0)
                .then(|| strong_etag(response.headers()))
                .flatten();
            let bytes = self.read_body(response, buffer).await?;
            return Ok(Fetched::Body { bytes, etag });
        }
    }

    async fn get(
        &self,
        url: &::url::Url,
        if_none_match: Option<HeaderValue>,
    ) -> Result<Response<hyper::body::Incoming>, FetchError> {
        let mut request = Request::get(to_uri(url)?)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, ACCEPT_VALUE);
        if let Some(etag) = if_none_match {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let request = request
            .body(Empty::new())
            .map_err(|_| FetchError::BadUrl(BadUrlReason::Unusable))?;
        self.client.request(request).await.map_err(request_error)
    }

    async fn read_body(
        &self,
        response: Response<hyper::body::Incoming>,
        mut buf: Vec<u8>,
    ) -> Result<Bytes, FetchError> {
        let limit = self.config.max_bytes;
        let too_large = || FetchError::TooLarge { limit };
        let announced = content_length(response.headers());
        if announced.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        // Room for the announced length at once, rather than doubling from a
        // guess (copying a 12 MP download three times over). Trusting the
        // header costs nothing when it lies: memory not yet written to is not
        // resident, and the limit still bounds what is read.
        buf.clear();
        buf.reserve(usize::try_from(announced.unwrap_or(0).min(limit)).unwrap_or(0));
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| FetchError::Protocol {
                reason: "error while reading the response body",
                source: Some(Box::new(err)),
            })?;
            if let Ok(data) = frame.into_data() {
                let total = u64::try_from(buf.len())
                    .unwrap_or(u64::MAX)
                    .saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                if total > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `Location` resolved against the current URL.
fn redirect_target(current: &::url::Url, headers: &HeaderMap) -> Result<::url::Url, FetchError> {
    let protocol = |reason| FetchError::Protocol {
        reason,
        source: None,
    };
    let location = headers
        .get(LOCATION)
        .ok_or_else(|| protocol("redirect without Location"))?;
    let location = std::str::from_utf8(location.as_bytes())
        .map_err(|_| protocol("redirect Location is not UTF-8"))?;
    current
        .join(location)
        .map_err(|_| protocol("redirect Location is not a valid URL"))
}

/// The response's ETag if it is one strong entity tag (RFC 9110 8.8.3:
/// `"…"` of visible ASCII but `"`). A weak one (`W/"…"`) promises equivalent
/// content, not the same bytes, so it cannot stand for a picture's hash.
fn strong_etag(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(ETAG).iter();
    let value = values.next()?.as_bytes();
    let tag = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let visible = |b: &u8| *b == 0x21 || (0x23..=0x7e).contains(b);
    if values.next().is_some() || value.len() > MAX_ETAG_LEN || !tag.iter().all(visible) {
        return None;
    }
    String::from_utf8(value.to_vec()).ok()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn to_uri(url: &::url::Url) -> Result<Uri, FetchError> {
    let mut url = url.clone();
    url.set_fragment(None);
    Uri::try_from(url.as_str()).map_err(|_| FetchError::BadUrl(BadUrlReason::Unusable))
}

/// hyper-util reports connector failures as `legacy::Error` (kind Connect)
/// whose `source()` is the boxed error of the connector stack. Walk the chain
/// to find our own [`ConnectError`]; a connect failure without one came from
/// the TLS layer of `HttpsConnector`.
fn request_error(err: hyper_util::client::legacy::Error) -> FetchError {
    if let Some(inner) = find_connect_error(&err) {
        return inner.to_fetch_error();
    }
    if err.is_connect() {
        return FetchError::Tls {
            source: Box::new(err),
        };
    }
    FetchError::Protocol {
        reason: "request failed",
        source: Some(Box::new(err)),
    }
}

fn find_connect_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a ConnectError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<ConnectError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod etag_tests {
    use super::*;

    fn etag_of(values: &[&[u8]]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ETAG, HeaderValue::from_bytes(value).unwrap());
        }
        strong_etag(&headers)
    }

    #[test]
    fn only_one_well_formed_strong_etag_is_kept() {
        assert_eq!(
            etag_of(&[b"\"5e3c-1a2b\""]).as_deref(),
            Some("\"5e3c-1a2b\"")
        );
        assert_eq!(etag_of(&[b"\"\""]).as_deref(), Some("\"\""));
        let long = format!("\"{}\"", "a".repeat(MAX_ETAG_LEN - 2));
        assert_eq!(etag_of(&[long.as_bytes()]), Some(long.clone()));
        for refused in [
            &b"W/\"5e3c\""[..],
            b"5e3c",
            b"\"5e3c",
            b"\"",
            b"\"a\"b\"",
            b"\"a b\"",
            b"\"caf\xc3\xa9\"",
            format!("\"{}\"", "a".repeat(MAX_ETAG_LEN - 1)).as_bytes(),
        ] {
            assert_eq!(
                etag_of(&[refused]),
                None,
                "{:?}",
                String::from_utf8_lossy(refused)
            );
        }
        assert_eq!(etag_of(&[b"\"a\"", b"\"b\""]), None, "two answers are none");
        assert_eq!(etag_of(&[]), None);
    }
}
