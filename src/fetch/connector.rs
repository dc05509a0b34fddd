//! The guarded connector: resolve, check every address, dial only checked addresses.
//!
//! It sits under `hyper_rustls::HttpsConnector`, so it sees the host of every
//! connection the client opens (first request and every redirect hop alike).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::net::TcpStream;

use super::FetchError;
use super::policy::is_allowed;

/// Name resolution, injectable so tests never touch real DNS.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// Opening a TCP connection, injectable so tests can record what would have
/// been dialled without opening a socket.
pub trait Dial: Send + Sync + 'static {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>>;
}

/// The system resolver: `tokio::net::lookup_host` (getaddrinfo, honours /etc/hosts).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// The real dialer: `tokio::net::TcpStream::connect`, with Nagle's algorithm
/// off (a request goes out whole; on a kept-alive callback connection a small
/// write must not wait for the receiver's delayed ACK).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dial for TcpDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    }
}

/// Error of the guarded connector. hyper-util boxes it inside its own
/// `legacy::Error`; `client.rs` finds it again by walking `source()`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect target has no usable host or port")]
    BadTarget,
    #[error("address not allowed: {host} -> {ip}")]
    NotAllowed { host: String, ip: IpAddr },
    #[error("cannot resolve {host}")]
    Dns {
        host: String,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("cannot connect")]
    Connect {
        #[source]
        source: std::io::Error,
    },
    #[error("connect timed out")]
    Timeout,
}

impl ConnectError {
    /// The matching [`FetchError`] (by reference: hyper-util owns the original).
    pub(crate) fn to_fetch_error(&self) -> FetchError {
        match self {
            Self::BadTarget => FetchError::BadUrl(super::BadUrlReason::Unusable),
            Self::NotAllowed { host, ip } => FetchError::AddressNotAllowed {
                host: host.clone(),
                ip: *ip,
            },
            Self::Dns { host, source } => FetchError::Dns {
                host: host.clone(),
                source: source.as_ref().map(copy_io_error),
            },
            Self::Connect { source } => FetchError::Connect {
                source: copy_io_error(source),
            },
            Self::Timeout => FetchError::ConnectTimeout,
        }
    }
}

fn copy_io_error(err: &std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), err.to_string())
}

/// A `tower_service::Service<Uri>` that resolves, checks and dials.
#[derive(Clone)]
pub(crate) struct GuardedConnector {
    shared: Arc<Shared>,
}

struct Shared {
    resolver: Arc<dyn Resolve>,
    dialer: Arc<dyn Dial>,
    allow_nets: Vec<IpNet>,
    connect_timeout: Duration,
}

impl GuardedConnector {
    pub(crate) fn new(
        resolver: Arc<dyn Resolve>,
        dialer: Arc<dyn Dial>,
        allow_nets: Vec<IpNet>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                resolver,
                dialer,
                allow_nets,
                connect_timeout,
            }),
        }
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { shared.connect(&dst).await.map(TokioIo::new) })
    }
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

/// Host and port of the connect target. IPv6 literals come bracketed.
fn target(dst: &Uri) -> Result<(Host, u16), ConnectError> {
    let raw = dst.host().ok_or(ConnectError::BadTarget)?;
    let port = match (dst.port_u16(), dst.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        _ => return Err(ConnectError::BadTarget),
    };
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(ConnectError::BadTarget)?;
        let ip = inner.parse().map_err(|_| ConnectError::BadTarget)?;
        return Ok((Host::Ip(ip), port));
    }
    if raw.is_empty() {
        return Err(ConnectError::BadTarget);
    }
    // Only the canonical dotted quad is taken as a literal here (the URL
    // parser has already normalised odd spellings). Anything else goes to the
    // resolver, whose answers are checked all the same.
    match raw.parse::<Ipv4Addr>() {
        Ok(v4) => Ok((Host::Ip(IpAddr::V4(v4)), port)),
        Err(_) => Ok((Host::Name(raw.to_owned()), port)),
    }
}

impl Shared {
    async fn connect(&self, dst: &Uri) -> Result<TcpStream, ConnectError> {
        let (host, port) = target(dst)?;
        let (host_text, candidates) = match host {
            Host::Ip(ip) => (ip.to_string(), vec![ip]),
            Host::Name(name) => {
                let answer =
                    self.resolver
                        .resolve(&name)
                        .await
                        .map_err(|source| ConnectError::Dns {
                            host: name.clone(),
                            source: Some(source),
                        })?;
                let mut unique: Vec<IpAddr> = Vec::with_capacity(answer.len());
                for ip in answer {
                    if !unique.contains(&ip) {
                        unique.push(ip);
                    }
                }
                (name, unique)
            }
        };
        if candidates.is_empty() {
            return Err(ConnectError::Dns {
                host: host_text,
                source: None,
            });
        }
        // Every address must pass; one bad answer condemns the whole name.
        if let Some(&ip) = candidates
            .iter()
            .find(|&&ip| !is_allowed(ip, &self.allow_nets))
        {
            tracing::warn!(host = %host_text, %ip, "outbound fetch refused: address not allowed");
            return Err(ConnectError::NotAllowed {
                host: host_text,
                ip,
            });
        }
        // Dial only the addresses checked above, in order.
        let mut last = ConnectError::Timeout;
        for ip in candidates {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(self.connect_timeout, self.dialer.dial(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(source)) => {
                    tracing::debug!(%addr, error = %source, "outbound fetch: connect failed");
                    last = ConnectError::Connect { source };
                }
                Err(_) => {
                    tracing::debug!(%addr, "outbound fetch: connect timed out");
                    last = ConnectError::Timeout;
                }
            }
        }
        Err(last)
    }
}
