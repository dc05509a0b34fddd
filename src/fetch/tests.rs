//! End-to-end tests of the fetcher over a fake network.
//!
//! TRAFFIC RULE: packets may only go to 127.0.0.0/8 or ::1. Every test uses
//! [`TableResolver`] (never real DNS) and [`RecordingDialer`], which records
//! each address it is asked for and refuses to open a socket to anything but
//! loopback. So even a broken guard could not send a packet off the machine.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};

use super::*;

// ---------------------------------------------------------------- fake network

#[derive(Default)]
struct TableResolver {
    table: HashMap<String, Vec<IpAddr>>,
    lookups: Mutex<Vec<String>>,
}

impl TableResolver {
    fn new(entries: &[(&str, &[&str])]) -> Self {
        let table = entries
            .iter()
            .map(|(host, ips)| {
                let ips = ips.iter().map(|ip| ip.parse().expect("table ip")).collect();
                ((*host).to_owned(), ips)
            })
            .collect();
        Self {
            table,
            lookups: Mutex::new(Vec::new()),
        }
    }

    fn lookups(&self) -> Vec<String> {
        self.lookups.lock().expect("lock").clone()
    }
}

impl Resolve for TableResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        self.lookups.lock().expect("lock").push(host.to_owned());
        let answer =
            self.table.get(host).cloned().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such test host")
            });
        Box::pin(async move { answer })
    }
}

#[derive(Default)]
struct RecordingDialer {
    dialled: Mutex<Vec<SocketAddr>>,
    /// Non-loopback dials hang forever instead of failing (connect-timeout test).
    hang_non_loopback: bool,
}

impl RecordingDialer {
    fn dialled(&self) -> Vec<SocketAddr> {
        self.dialled.lock().expect("lock").clone()
    }
}

impl Dial for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>> {
        self.dialled.lock().expect("lock").push(addr);
        let hang = self.hang_non_loopback;
        Box::pin(async move {
            if addr.ip().is_loopback() {
                TcpStream::connect(addr).await
            } else if hang {
                std::future::pending().await
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "test dialer never leaves loopback",
                ))
            }
        })
    }
}

struct Net {
    fetcher: Fetcher,
    resolver: Arc<TableResolver>,
    dialer: Arc<RecordingDialer>,
}

fn net_with(config: FetchConfig, table: &[(&str, &[&str])], dialer: RecordingDialer) -> Net {
    let resolver = Arc::new(TableResolver::new(table));
    let dialer = Arc::new(dialer);
    let fetcher = Fetcher::with_network(
        config,
        Arc::clone(&resolver) as Arc<dyn Resolve>,
        Arc::clone(&dialer) as Arc<dyn Dial>,
    );
    Net {
        fetcher,
        resolver,
        dialer,
    }
}

fn net(config: FetchConfig, table: &[(&str, &[&str])]) -> Net {
    net_with(config, table, RecordingDialer::default())
}

fn config() -> FetchConfig {
    FetchConfig {
        connect_timeout: Duration::from_millis(500),
        total_timeout: Duration::from_secs(2),
        ..FetchConfig::default()
    }
}

fn loopback_config() -> FetchConfig {
    FetchConfig {
        allow_nets: vec!["127.0.0.0/8".parse().expect("net")],
        ..config()
    }
}

fn url(text: &str) -> ::url::Url {
    ::url::Url::parse(text).expect("test URL parses")
}

// ---------------------------------------------------------------- loopback server

#[derive(Clone)]
enum Reply {
    /// Write these bytes and close.
    Raw(Vec<u8>),
    /// Write `head`, then one byte every `every`, `count` times.
    Trickle {
        head: Vec<u8>,
        every: Duration,
        count: usize,
    },
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Reply::Raw(out)
}

fn ok(body: &[u8]) -> Reply {
    response("200 OK", &[("Content-Type", "image/png")], body)
}

fn redirect(location: &str) -> Reply {
    response("302 Found", &[("Location", location)], b"")
}

struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    fn url(&self, path: &str) -> ::url::Url {
        url(&format!("http://127.0.0.1:{}{path}", self.port))
    }
}

// tokio's `io-util` feature is not enabled in this crate: use the readiness API.
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A loopback HTTP/1.1 server; `route` maps the request path to a reply.
/// With `read_request = false` it replies without reading (for the TLS test).
async fn serve_with<F>(read_request: bool, route: F) -> Server
where
    F: Fn(&str) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let route = Arc::new(route);
    let (conns, reqs) = (Arc::clone(&connections), Arc::clone(&requests));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            conns.fetch_add(1, Ordering::SeqCst);
            let route = Arc::clone(&route);
            let reqs = Arc::clone(&reqs);
            tokio::spawn(async move {
                let mut head = String::new();
                if read_request {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match read_some(&stream, &mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    head = String::from_utf8_lossy(&buf).into_owned();
                    reqs.lock().expect("lock").push(head.clone());
                }
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                match route(&path) {
                    Reply::Raw(bytes) => {
                        let _ = write_all(&stream, &bytes).await;
                    }
                    Reply::Trickle { head, every, count } => {
                        if write_all(&stream, &head).await.is_err() {
                            return;
                        }
                        for _ in 0..count {
                            tokio::time::sleep(every).await;
                            if write_all(&stream, b"x").await.is_err() {
                                return;
                            }
                        }
                    }
                }
                drop(stream);
            });
        }
    });
    Server {
        port,
        connections,
        requests,
    }
}

async fn serve<F>(route: F) -> Server
where
    F: Fn(&str) -> Reply + Send + Sync + 'static,
{
    serve_with(true, route).await
}

fn assert_refused(err: &FetchError, expected_ip: &str) {
    match err {
        FetchError::AddressNotAllowed { ip, .. } => {
            assert_eq!(*ip, expected_ip.parse::<IpAddr>().expect("ip"), "{err:?}");
        }
        other => panic!("expected AddressNotAllowed({expected_ip}), got {other:?}"),
    }
    assert_eq!(err.code(), "fetch-address-not-allowed");
}

// ---------------------------------------------------------------- literals

#[tokio::test]
async fn every_literal_spelling_is_refused_without_dialling() {
    let cases = [
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0x7f.0.0.1/", "127.0.0.1"),
        ("http://127.000.000.001:8080/", "127.0.0.1"),
        ("https://127.0.0.1/", "127.0.0.1"),
        ("http://[::1]/", "::1"),
        ("http://[0:0:0:0:0:0:0:1]/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:8.8.8.8"),
        ("http://[::127.0.0.1]/", "::127.0.0.1"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::"),
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),
        ("http://[2001::]/", "2001::"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://0/", "0.0.0.0"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("http://[fe80::1]/", "fe80::1"),
        ("http://[fc00::1]/", "fc00::1"),
        ("http://[ff02::1]/", "ff02::1"),
        ("http://224.0.0.1/", "224.0.0.1"),
        ("http://10.0.0.1/", "10.0.0.1"),
        ("https://192.168.1.1:8443/", "192.168.1.1"),
        ("http://255.255.255.255/", "255.255.255.255"),
    ];
    let net = net(config(), &[]);
    for (input, expected) in cases {
        let err = net.fetcher.fetch(&url(input)).await.expect_err(input);
        assert_refused(&err, expected);
    }
    assert!(
        net.dialer.dialled().is_empty(),
        "{:?}",
        net.dialer.dialled()
    );
    assert!(
        net.resolver.lookups().is_empty(),
        "{:?}",
        net.resolver.lookups()
    );
}

#[tokio::test]
async fn refusals_name_the_host_never_where_it_points() {
    let net = net(config(), &[("meta.test", &["169.254.169.254"])]);
    let err = net
        .fetcher
        .fetch(&url("http://10.0.0.1/"))
        .await
        .expect_err("refused");
    assert_eq!(
        err.message(),
        "地址不允许: 10.0.0.1 无法解析，或是内网、保留地址"
    );
    let err = net
        .fetcher
        .fetch(&url("http://meta.test/"))
        .await
        .expect_err("refused");
    assert_eq!(
        err.message(),
        "地址不允许: meta.test 无法解析，或是内网、保留地址"
    );
    assert!(!err.message().contains("169.254"));
}

// ---------------------------------------------------------------- resolver answers

#[tokio::test]
async fn internal_resolver_answers_are_refused_without_dialling() {
    let net = net(
        config(),
        &[
            ("private.test", &["10.0.0.5"]),
            ("metadata.test", &["169.254.169.254"]),
            ("ula.test", &["fd00::1"]),
            ("mapped.test", &["::ffff:10.0.0.1"]),
            ("localhost", &["127.0.0.1", "::1"]),
        ],
    );
    for (host, ip) in [
        ("private.test", "10.0.0.5"),
        ("metadata.test", "169.254.169.254"),
        ("ula.test", "fd00::1"),
        ("mapped.test", "::ffff:10.0.0.1"),
        ("localhost", "127.0.0.1"),
    ] {
        let err = net
            .fetcher
            .fetch(&url(&format!("http://{host}/a.png")))
            .await
            .expect_err(host);
        assert_refused(&err, ip);
    }
    assert!(
        net.dialer.dialled().is_empty(),
        "{:?}",
        net.dialer.dialled()
    );
    assert_eq!(net.resolver.lookups().len(), 5);
}

#[tokio::test]
async fn mixed_public_and_internal_answer_is_refused() {
    let net = net(
        config(),
        &[
            ("mixed.test", &["93.184.216.34", "10.1.2.3"]),
            ("mixed6.test", &["2606:4700::1111", "fe80::1"]),
        ],
    );
    let err = net
        .fetcher
        .fetch(&url("http://mixed.test/"))
        .await
        .expect_err("mixed");
    assert_refused(&err, "10.1.2.3");
    let err = net
        .fetcher
        .fetch(&url("https://mixed6.test/"))
        .await
        .expect_err("mixed6");
    assert_refused(&err, "fe80::1");
    assert!(
        net.dialer.dialled().is_empty(),
        "{:?}",
        net.dialer.dialled()
    );
}

#[tokio::test]
async fn public_answer_is_dialled_only_at_the_checked_address() {
    // The test dialer refuses to leave loopback, so this ends in a connect error,
    // but it proves the public address (and only it) would have been dialled.
    let net = net(config(), &[("public.test", &["93.184.216.34"])]);
    let err = net
        .fetcher
        .fetch(&url("http://public.test:8080/x.png"))
        .await
        .expect_err("test dialer refuses");
    assert_eq!(err.code(), "fetch-connect", "{err:?}");
    assert_eq!(err.message(), "无法连接图片服务器");
    assert_eq!(
        net.dialer.dialled(),
        vec!["93.184.216.34:8080".parse::<SocketAddr>().expect("addr")]
    );
}

#[tokio::test]
async fn dns_failures() {
    let net = net(config(), &[("empty.test", &[])]);
    let err = net
        .fetcher
        .fetch(&url("http://nowhere.test/"))
        .await
        .expect_err("nxdomain");
    assert!(matches!(err, FetchError::Dns { .. }), "{err:?}");
    assert_eq!(err.code(), "fetch-address-not-allowed");
    // Indistinguishable from a refused internal name: nobody learns which exist.
    assert_eq!(
        err.message(),
        "地址不允许: nowhere.test 无法解析，或是内网、保留地址"
    );
    let err = net
        .fetcher
        .fetch(&url("http://empty.test/"))
        .await
        .expect_err("empty");
    assert!(matches!(err, FetchError::Dns { .. }), "{err:?}");
    assert_eq!(err.code(), "fetch-address-not-allowed");
    assert!(net.dialer.dialled().is_empty());
}

// ---------------------------------------------------------------- loopback server

#[tokio::test]
async fn loopback_server_gets_zero_connections_without_allow_list() {
    let server = serve(|_| ok(b"secret")).await;
    let net = net(config(), &[("localhost", &["127.0.0.1"])]);
    for input in [
        format!("http://127.0.0.1:{}/", server.port),
        format!("http://localhost:{}/", server.port),
        format!("http://[::ffff:127.0.0.1]:{}/", server.port),
    ] {
        let err = net.fetcher.fetch(&url(&input)).await.expect_err(&input);
        assert_eq!(err.code(), "fetch-address-not-allowed", "{input}: {err:?}");
    }
    // The production constructor (system resolver, real TCP) refuses too.
    let real = Fetcher::new(FetchConfig::default());
    let err = real.fetch(&server.url("/")).await.expect_err("refused");
    assert_eq!(err.code(), "fetch-address-not-allowed");
    assert_eq!(server.connections(), 0);
    assert!(net.dialer.dialled().is_empty());
}

#[tokio::test]
async fn allow_list_lets_loopback_through() {
    let server = serve(|path| match path {
        "/a.png" => ok(b"tiny body"),
        _ => response("404 Not Found", &[], b""),
    })
    .await;
    let net = net(loopback_config(), &[("localhost", &["127.0.0.1"])]);
    let body = net
        .fetcher
        .fetch(&server.url("/a.png#frag"))
        .await
        .expect("fetched");
    assert_eq!(&body[..], b"tiny body");
    let by_name = url(&format!("http://localhost:{}/a.png", server.port));
    let body = net.fetcher.fetch(&by_name).await.expect("fetched by name");
    assert_eq!(&body[..], b"tiny body");
    assert_eq!(server.connections(), 2);

    let requests = server.requests.lock().expect("lock").clone();
    let first = requests[0].to_ascii_lowercase();
    assert!(first.starts_with("get /a.png http/1.1\r\n"), "{first}");
    assert!(
        first.contains(&format!(
            "user-agent: gewe-server/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{first}"
    );
    assert!(first.contains("accept: image/*\r\n"), "{first}");
    assert!(!first.contains("frag"), "{first}");
    // Origin form on the wire; the server is named by Host, by the name
    // the URL gave (a virtual host serves by it).
    let port = server.port;
    assert!(
        first.contains(&format!("host: 127.0.0.1:{port}\r\n")),
        "{first}"
    );
    let second = requests[1].to_ascii_lowercase();
    assert!(
        second.contains(&format!("host: localhost:{port}\r\n")),
        "{second}"
    );

    // The production constructor works against loopback too when allowed.
    let real = Fetcher::new(loopback_config());
    let body = real.fetch(&server.url("/a.png")).await.expect("fetched");
    assert_eq!(&body[..], b"tiny body");
}

#[tokio::test]
async fn body_exactly_at_the_limit_is_accepted() {
    let server = serve(|_| ok(&[7u8; 1000])).await;
    let net = net(
        FetchConfig {
            max_bytes: 1000,
            ..loopback_config()
        },
        &[],
    );
    let body = net.fetcher.fetch(&server.url("/")).await.expect("fetched");
    assert_eq!(body.len(), 1000);
}

// ---------------------------------------------------------------- redirects

#[tokio::test]
async fn redirect_to_metadata_address_is_refused() {
    let server = serve(|_| redirect("http://169.254.169.254/latest/meta-data/")).await;
    let net = net(loopback_config(), &[]);
    let err = net
        .fetcher
        .fetch(&server.url("/start"))
        .await
        .expect_err("refused");
    assert_refused(&err, "169.254.169.254");
    assert_eq!(server.connections(), 1);
    let dialled = net.dialer.dialled();
    assert_eq!(dialled.len(), 1, "{dialled:?}");
    assert!(dialled[0].ip().is_loopback());
}

#[tokio::test]
async fn redirect_to_name_with_internal_answer_is_refused() {
    let server = serve(|_| redirect("https://rebind.test/x.png")).await;
    let net = net(
        loopback_config(),
        &[("rebind.test", &["8.8.8.8", "192.168.0.1"])],
    );
    let err = net
        .fetcher
        .fetch(&server.url("/start"))
        .await
        .expect_err("refused");
    assert_refused(&err, "192.168.0.1");
    assert_eq!(net.resolver.lookups(), vec!["rebind.test".to_owned()]);
    assert!(net.dialer.dialled().iter().all(|a| a.ip().is_loopback()));
}

fn chain_route(path: &str) -> Reply {
    // /r/N redirects to /r/N-1 (relative Location); /r/0 serves the body.
    match path.strip_prefix("/r/").and_then(|n| n.parse::<u32>().ok()) {
        Some(0) => ok(b"end of chain"),
        Some(n) => redirect(&format!("/r/{}", n - 1)),
        None => response("404 Not Found", &[], b""),
    }
}

#[tokio::test]
async fn three_redirects_are_followed() {
    let server = serve(chain_route).await;
    let net = net(loopback_config(), &[]);
    let body = net
        .fetcher
        .fetch(&server.url("/r/3"))
        .await
        .expect("fetched");
    assert_eq!(&body[..], b"end of chain");
    assert_eq!(server.connections(), 4);
}

#[tokio::test]
async fn four_redirects_are_too_many() {
    let server = serve(chain_route).await;
    let net = net(loopback_config(), &[]);
    let err = net
        .fetcher
        .fetch(&server.url("/r/4"))
        .await
        .expect_err("too many");
    assert!(
        matches!(err, FetchError::TooManyRedirects { max: 3 }),
        "{err:?}"
    );
    assert_eq!(err.code(), "fetch-too-many-redirects");
    assert_eq!(err.message(), "重定向次数过多(最多3次)");
    assert_eq!(server.connections(), 4);
}

#[tokio::test]
async fn bad_redirects() {
    let server = serve(|path| match path {
        "/no-location" => response("301 Moved Permanently", &[], b""),
        "/bad-location" => redirect("http://[::1"),
        "/ftp" => redirect("ftp://example.com/a.png"),
        "/creds" => redirect("http://user:pass@example.com/a.png"),
        _ => response("404 Not Found", &[], b""),
    })
    .await;
    let net = net(loopback_config(), &[]);
    for (path, code) in [
        ("/no-location", "fetch-protocol"),
        ("/bad-location", "fetch-protocol"),
        ("/ftp", "fetch-bad-url"),
        ("/creds", "fetch-bad-url"),
    ] {
        let err = net.fetcher.fetch(&server.url(path)).await.expect_err(path);
        assert_eq!(err.code(), code, "{path}: {err:?}");
    }
    assert!(net.dialer.dialled().iter().all(|a| a.ip().is_loopback()));
}

// ---------------------------------------------------------------- url checks via fetch

#[tokio::test]
async fn check_url_runs_before_any_network_activity() {
    let net = net(config(), &[("host", &["93.184.216.34"])]);
    for input in [
        "file:///etc/passwd",
        "ftp://host/a.png",
        "gopher://host:70/_x",
        "data:image/png;base64,iVBORw0KGgo=",
        "http://user:pass@host/",
    ] {
        let err = net.fetcher.fetch(&url(input)).await.expect_err(input);
        assert_eq!(err.code(), "fetch-bad-url", "{input}: {err:?}");
    }
    let long = format!("http://host/{}", "a".repeat(MAX_URL_LEN));
    let err = net.fetcher.fetch(&url(&long)).await.expect_err("long");
    assert!(
        matches!(err, FetchError::BadUrl(BadUrlReason::TooLong)),
        "{err:?}"
    );
    assert!(net.resolver.lookups().is_empty());
    assert!(net.dialer.dialled().is_empty());
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn content_length_over_the_limit_is_refused_early() {
    // Announces 5000 bytes but sends only the head, then waits: only the
    // Content-Length check can end this before the total timeout.
    let server = serve(|_| Reply::Trickle {
        head: b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_vec(),
        every: Duration::from_secs(5),
        count: 1,
    })
    .await;
    let net = net(
        FetchConfig {
            max_bytes: 1000,
            ..loopback_config()
        },
        &[],
    );
    let started = Instant::now();
    let err = net
        .fetcher
        .fetch(&server.url("/"))
        .await
        .expect_err("too large");
    assert!(
        matches!(err, FetchError::TooLarge { limit: 1000 }),
        "{err:?}"
    );
    assert_eq!(err.code(), "fetch-too-large");
    assert_eq!(err.message(), "图片过大: 超过1000字节");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn streamed_body_past_the_limit_is_refused() {
    // No Content-Length: body delimited by connection close.
    let mut close_delimited = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    close_delimited.extend_from_slice(&[b'a'; 5000]);
    // Chunked: 5 chunks of 300 bytes.
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        chunked.extend_from_slice(b"12c\r\n");
        chunked.extend_from_slice(&[b'b'; 300]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let server = serve(move |path| match path {
        "/close" => Reply::Raw(close_delimited.clone()),
        _ => Reply::Raw(chunked.clone()),
    })
    .await;
    let net = net(
        FetchConfig {
            max_bytes: 1000,
            ..loopback_config()
        },
        &[],
    );
    for path in ["/close", "/chunked"] {
        let err = net.fetcher.fetch(&server.url(path)).await.expect_err(path);
        assert!(
            matches!(err, FetchError::TooLarge { limit: 1000 }),
            "{path}: {err:?}"
        );
    }
}

#[tokio::test]
async fn slow_trickle_hits_the_total_timeout() {
    let server = serve(|_| Reply::Trickle {
        head: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
        every: Duration::from_millis(50),
        count: 100,
    })
    .await;
    let net = net(
        FetchConfig {
            total_timeout: Duration::from_millis(300),
            ..loopback_config()
        },
        &[],
    );
    let started = Instant::now();
    let err = net
        .fetcher
        .fetch(&server.url("/"))
        .await
        .expect_err("timeout");
    let elapsed = started.elapsed();
    assert!(matches!(err, FetchError::Timeout), "{err:?}");
    assert_eq!(err.code(), "fetch-timeout");
    assert_eq!(err.message(), "下载超时");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(1),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn connect_timeout_applies_per_dial() {
    // 192.0.2.0/24 is allow-listed here; the dialer hangs instead of opening a socket.
    let net = net_with(
        FetchConfig {
            allow_nets: vec!["192.0.2.0/24".parse().expect("net")],
            connect_timeout: Duration::from_millis(100),
            ..config()
        },
        &[("slow.test", &["192.0.2.1", "192.0.2.2"])],
        RecordingDialer {
            hang_non_loopback: true,
            ..RecordingDialer::default()
        },
    );
    let started = Instant::now();
    let err = net
        .fetcher
        .fetch(&url("http://slow.test/"))
        .await
        .expect_err("timeout");
    assert!(matches!(err, FetchError::ConnectTimeout), "{err:?}");
    assert_eq!(err.code(), "fetch-timeout");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Both checked addresses were tried, in order.
    assert_eq!(
        net.dialer.dialled(),
        vec![
            "192.0.2.1:80".parse::<SocketAddr>().expect("addr"),
            "192.0.2.2:80".parse::<SocketAddr>().expect("addr"),
        ]
    );
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let net = net(loopback_config(), &[]);
    let err = net
        .fetcher
        .fetch(&url(&format!("http://127.0.0.1:{port}/")))
        .await
        .expect_err("refused");
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!(err.code(), "fetch-connect");
}

#[tokio::test]
async fn http_error_status_never_leaks_the_body() {
    let server = serve(|_| response("404 Not Found", &[], b"SECRET-BODY-TEXT")).await;
    let net = net(loopback_config(), &[]);
    let err = net
        .fetcher
        .fetch(&server.url("/missing"))
        .await
        .expect_err("404");
    assert!(matches!(err, FetchError::HttpStatus(404)), "{err:?}");
    assert_eq!(err.code(), "fetch-http-status");
    assert_eq!(err.message(), "图片服务器返回HTTP 404");
    for text in [err.message(), err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("SECRET"), "{text}");
    }
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let server = serve_with(false, |_| response("400 Bad Request", &[], b"")).await;
    let net = net(loopback_config(), &[]);
    let err = net
        .fetcher
        .fetch(&url(&format!("https://127.0.0.1:{}/", server.port)))
        .await
        .expect_err("tls");
    assert!(matches!(err, FetchError::Tls { .. }), "{err:?}");
    assert_eq!(err.code(), "fetch-tls");
}

#[tokio::test]
async fn garbage_response_is_a_protocol_error() {
    let server = serve(|_| Reply::Raw(b"NOT HTTP AT ALL\r\n\r\n".to_vec())).await;
    let net = net(loopback_config(), &[]);
    let err = net
        .fetcher
        .fetch(&server.url("/"))
        .await
        .expect_err("garbage");
    assert_eq!(err.code(), "fetch-protocol", "{err:?}");
}

#[test]
fn codes_and_messages() {
    let cases: Vec<(FetchError, &str, &str)> = vec![
        (FetchError::Timeout, "fetch-timeout", "下载超时"),
        (
            FetchError::TooLarge {
                limit: 10 * 1024 * 1024,
            },
            "fetch-too-large",
            "图片过大: 超过10MiB",
        ),
        (
            FetchError::HttpStatus(503),
            "fetch-http-status",
            "图片服务器返回HTTP 503",
        ),
        (
            FetchError::BadUrl(BadUrlReason::Userinfo),
            "fetch-bad-url",
            "图片地址不合法: 不能包含用户名或密码",
        ),
    ];
    for (err, code, message) in cases {
        assert_eq!(err.code(), code);
        assert_eq!(err.message(), message);
    }
    let defaults = FetchConfig::default();
    assert!(defaults.allow_nets.is_empty());
    assert_eq!(defaults.connect_timeout, Duration::from_secs(3));
    assert_eq!(defaults.total_timeout, Duration::from_secs(10));
    assert_eq!(defaults.max_bytes, 10 * 1024 * 1024);
    assert_eq!(defaults.max_redirects, 3);
}
