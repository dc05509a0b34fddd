//! How the server reaches the outside world.
//!
//! The server downloads pictures from URLs that strangers hand it
//! (`personal/updateHeadImg {headImgUrl}`), so every outbound request goes
//! through this module and nothing else. The defences, in order:
//!
//! 1. [`check_url`]: http/https only, no userinfo, a host, at most 2048 bytes.
//!    Applied to the first URL and to every redirect target.
//! 2. A custom connector (`connector.rs`) under the TLS layer: it resolves the
//!    host itself (through the injectable [`Resolve`]), refuses the whole name
//!    if ANY answer is not allowed (see [`is_global`] and
//!    [`FetchConfig::allow_nets`]), and then dials only the addresses it
//!    checked (through the injectable [`Dial`]). No second lookup happens
//!    between check and connect, so DNS rebinding cannot swap the address.
//! 3. Redirects are followed by hand ([`Fetcher::fetch`]), each hop re-checked
//!    and re-connected through the same connector.
//! 4. Limits: one timeout around the whole download, a connect timeout per
//!    dial, a byte limit enforced on `Content-Length` and while streaming.
//!
//! No environment proxies are consulted (hyper-util's client has none).

mod client;
mod connector;
mod policy;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

pub use crate::domain::{BadUrlReason, MAX_URL_LEN, check_url};
pub use client::{Fetched, Fetcher};
pub use connector::{Dial, Resolve, SystemResolver, TcpDialer};
pub use policy::is_global;

/// Boxed error used as the (optional) cause inside [`FetchError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Limits and exemptions for outbound fetches.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Networks exempt from the non-global rule (config `GEWE_FETCH_ALLOW_NETS`; default empty).
    pub allow_nets: Vec<ipnet::IpNet>,
    /// Per-address TCP connect timeout (default 3 s).
    pub connect_timeout: Duration,
    /// The whole download, including every redirect hop and the body (default 10 s).
    pub total_timeout: Duration,
    /// Largest accepted body in bytes (default 10 MiB).
    pub max_bytes: u64,
    /// Most redirects followed (default 3).
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_nets: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(10),
            max_bytes: 10 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// Everything that can go wrong while fetching. Never carries the remote body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL (first or a redirect target) failed [`check_url`].
    #[error("bad url: {0}")]
    BadUrl(BadUrlReason),
    /// The host is, or resolves to, an address that is neither global nor allow-listed.
    #[error("address not allowed: {host} -> {ip}")]
    AddressNotAllowed { host: String, ip: IpAddr },
    /// Name resolution failed or returned nothing.
    #[error("cannot resolve {host}")]
    Dns {
        host: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// Every allowed address refused the TCP connection.
    #[error("cannot connect")]
    Connect {
        #[source]
        source: std::io::Error,
    },
    /// A single TCP connect took longer than `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The whole download took longer than `total_timeout`.
    #[error("download timed out")]
    Timeout,
    /// The body (announced or streamed) exceeds `max_bytes`.
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The final response was not 2xx.
    #[error("http status {0}")]
    HttpStatus(u16),
    /// More than `max_redirects` redirects.
    #[error("more than {max} redirects")]
    TooManyRedirects { max: usize },
    /// The TLS handshake failed (bad certificate, not TLS, ...).
    #[error("tls handshake failed")]
    Tls {
        #[source]
        source: BoxError,
    },
    /// The server spoke broken HTTP (bad redirect, truncated body, ...).
    #[error("protocol error: {reason}")]
    Protocol {
        reason: &'static str,
        #[source]
        source: Option<BoxError>,
    },
}

impl FetchError {
    /// Stable kebab-case machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "fetch-bad-url",
            // One code and one text for both: telling them apart would tell a
            // caller which internal names exist. The log has the details.
            Self::AddressNotAllowed { .. } | Self::Dns { .. } => "fetch-address-not-allowed",
            Self::Connect { .. } => "fetch-connect",
            Self::ConnectTimeout | Self::Timeout => "fetch-timeout",
            Self::TooLarge { .. } => "fetch-too-large",
            Self::HttpStatus(_) => "fetch-http-status",
            Self::TooManyRedirects { .. } => "fetch-too-many-redirects",
            Self::Tls { .. } => "fetch-tls",
            Self::Protocol { .. } => "fetch-protocol",
        }
    }

    /// Plain Chinese words for the API client.
    pub fn message(&self) -> String {
        match self {
            Self::BadUrl(reason) => format!("图片地址不合法: {}", reason.chinese()),
            Self::AddressNotAllowed { host, .. } | Self::Dns { host, .. } => {
                format!("地址不允许: {host} 无法解析，或是内网、保留地址")
            }
            Self::Connect { .. } => "无法连接图片服务器".to_owned(),
            Self::ConnectTimeout => "连接图片服务器超时".to_owned(),
            Self::Timeout => "下载超时".to_owned(),
            Self::TooLarge { limit } => format!("图片过大: 超过{}", human_size(*limit)),
            Self::HttpStatus(status) => format!("图片服务器返回HTTP {status}"),
            Self::TooManyRedirects { max } => format!("重定向次数过多(最多{max}次)"),
            Self::Tls { .. } => "与图片服务器的TLS握手失败".to_owned(),
            Self::Protocol { .. } => "图片服务器响应不合法".to_owned(),
        }
    }
}

/// `10485760` → `10MiB`, `2048` → `2KiB`, `1000` → `1000字节`.
fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{}KiB", bytes / KIB)
    } else {
        format!("{bytes}字节")
    }
}
