//! SSRF through `personal/updateHeadImg`, end to end and table-driven.
//!
//! Traffic stays on this machine: loopback targets are real listeners (127.0.0.1
//! and ::1) that must see zero requests; 127.0.0.2 poses as a public picture host
//! through the allow list; every other address goes through a dialer that records
//! it and never opens a socket (it connects to loopback only), and names are
//! answered from a table, like a DNS server an attacker controls.
//!
//! Every probe must get ret 500 with a clear reason and leave the account, its
//! history and the blob folder exactly as they were.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use gewe_server::fetch::{Dial, Resolve};
use serde_json::json;
use tokio::net::TcpStream;

use crate::helpers::{Setup, TestApp, blob_files, spawn_app_with};
use crate::image_host::ImageHost;
use crate::pictures::jpeg;

/// Answers from a fixed table, like a DNS server an attacker controls.
struct TableResolver(HashMap<&'static str, Vec<IpAddr>>);

impl Resolve for TableResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let answer = self.0.get(host).cloned();
        Box::pin(async move { answer.ok_or_else(|| std::io::Error::other("no such test host")) })
    }
}

/// Records every address it is asked to dial; connects only to loopback.
#[derive(Default)]
struct RecordingDialer(Mutex<Vec<SocketAddr>>);

impl RecordingDialer {
    fn dialled(&self) -> Vec<SocketAddr> {
        self.0.lock().unwrap().clone()
    }
}

impl Dial for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>> {
        self.0.lock().unwrap().push(addr);
        Box::pin(async move {
            if addr.ip().is_loopback() {
                TcpStream::connect(addr).await
            } else {
                Err(std::io::Error::other(
                    "test dialer never leaves the machine",
                ))
            }
        })
    }
}

/// The attacker's DNS: names that point inside, or partly inside.
const DNS: &[(&str, &[&str])] = &[
    ("localhost", &["127.0.0.1", "::1"]),
    ("localhost.", &["127.0.0.1"]),
    ("127.0.0.1.nip.io", &["127.0.0.1"]),
    ("metadata.google.internal", &["169.254.169.254"]),
    ("metadata.test", &["169.254.169.254"]),
    ("intranet.test", &["10.1.2.3"]),
    ("router.test", &["192.168.1.1"]),
    ("ula.test", &["fd00::1"]),
    ("linklocal6.test", &["fe80::1"]),
    ("nat64.test", &["64:ff9b::a9fe:a9fe"]),
    ("sixtofour.test", &["2002:7f00:1::1"]),
    ("mixed.test", &["93.184.216.34", "192.168.1.1"]),
    ("mixed6.test", &["2606:4700:4700::1111", "::1"]),
    ("mixedlast.test", &["8.8.8.8", "1.1.1.1", "127.0.0.1"]),
    ("half.test", &["127.0.0.2", "10.0.0.1"]),
    ("loopback3.test", &["127.0.0.3"]),
];

struct Fixture {
    app: TestApp,
    dialer: Arc<RecordingDialer>,
    token: String,
    app_id: String,
}

async fn fixture(allow_nets: Vec<&'static str>) -> Fixture {
    let resolver = TableResolver(
        DNS.iter()
            .map(|(host, ips)| (*host, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect(),
    );
    let dialer = Arc::new(RecordingDialer::default());
    let app = spawn_app_with(Setup {
        allow_nets,
        network: Some((Arc::new(resolver), dialer.clone())),
        ..Setup::default()
    })
    .await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    Fixture {
        app,
        dialer,
        token,
        app_id,
    }
}

/// What a probe must be answered with.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Refused at connect time: `fetch-address-not-allowed`.
    Address,
    /// Refused at the edge, before any fetch: `headImgUrl格式错误`.
    Field,
    /// A redirect target that is not a fetchable URL: `fetch-bad-url`.
    RedirectUrl,
    /// `fetch-too-many-redirects`.
    Redirects,
}

impl Refusal {
    fn expected(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Refusal::Address => ("修改头像失败", "fetch-address-not-allowed", "地址不允许"),
            Refusal::Field => ("headImgUrl格式错误", "invalid-field", "图片地址不合法"),
            Refusal::RedirectUrl => ("修改头像失败", "fetch-bad-url", "图片地址不合法"),
            Refusal::Redirects => ("修改头像失败", "fetch-too-many-redirects", "重定向次数过多"),
        }
    }
}

/// Sends one probe and checks the answer and that nothing changed.
async fn probe(f: &Fixture, url: &str, refusal: Refusal) {
    let before = f.app.profile(&f.token, &f.app_id).await;
    let history = f.app.history_len(&f.app_id).await;
    let blobs = blob_files(&f.app.data_dir);
    let envelope = f
        .app
        .call(
            "/gewe/v2/api/personal/updateHeadImg",
            Some(&f.token),
            json!({"appId": f.app_id, "headImgUrl": url}),
        )
        .await;
    let (msg, code, needle) = refusal.expected();
    assert_eq!(envelope["ret"], 500, "{url}: {envelope}");
    assert_eq!(envelope["msg"], msg, "{url}: {envelope}");
    assert_eq!(envelope["data"]["code"], code, "{url}: {envelope}");
    let detail = envelope["data"]["msg"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{url}: {envelope}");
    // Where a name pointed stays in the server's log: the only addresses the
    // answer may name are those the caller wrote (in the URL parser's spelling).
    let written: Vec<IpAddr> = url
        .match_indices("http")
        .filter_map(|(at, _)| url::Url::parse(&url[at..]).ok())
        .filter_map(|u| u.host_str()?.trim_matches(['[', ']']).parse().ok())
        .collect();
    for word in detail.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':')) {
        if let Ok(named) = word.parse::<IpAddr>() {
            assert!(
                written.contains(&named),
                "{url}: the answer names {word}: {envelope}"
            );
        }
    }
    assert_eq!(
        f.app.profile(&f.token, &f.app_id).await,
        before,
        "{url} changed the profile"
    );
    assert_eq!(f.app.history_len(&f.app_id).await, history, "{url}");
    assert_eq!(blob_files(&f.app.data_dir), blobs, "{url}");
}

fn port(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// Direct destinations with the allow list empty: loopback in every spelling,
/// private, shared, link-local, metadata, multicast, reserved, IPv6 specials,
/// translation forms of internal IPv4, names with internal or mixed answers,
/// and URLs refused by syntax.
fn direct_probes(p4: u16, p6: u16) -> Vec<(String, Refusal)> {
    use Refusal::{Address, Field};
    let mut probes: Vec<(String, Refusal)> = Vec::new();
    let on_v4 = [
        "127.0.0.1",
        "127.0.0.2",
        "127.0.1.1",
        "127.255.255.254",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "127.0.0.1.nip.io",
        "0.0.0.0",
        "0",
        "2130706433",
        "0x7f000001",
        "0x7f.0x0.0x0.0x1",
        "0177.0.0.1",
        "017700000001",
        "127.1",
        "127.0.1",
        "%31%32%37.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:127.0.0.1]",
        "[::127.0.0.1]",
    ];
    for host in on_v4 {
        probes.push((format!("http://{host}:{p4}/files/secret.jpg"), Address));
    }
    for host in ["[::1]", "[::]", "[0:0:0:0:0:0:0:1]"] {
        probes.push((format!("http://{host}:{p6}/files/secret.jpg"), Address));
    }
    let elsewhere = [
        // 6to4, NAT64 (well-known and local-use) and Teredo forms of internal IPv4.
        "[2002:7f00:1::1]",
        "[2002:a9fe:a9fe::1]",
        "[2002:c0a8:101::1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b::a9fe:a9fe]",
        "[64:ff9b::10.0.0.1]",
        "[64:ff9b:1::a00:1]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        // Private, shared (CGNAT), link-local and cloud metadata.
        "10.0.0.1",
        "10.255.255.254",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "192.168.255.254",
        "100.64.0.1",
        "100.127.255.254",
        "169.254.169.254",
        "169.254.170.2",
        "169.254.0.1",
        "192.0.0.192",
        "198.18.0.1",
        // Multicast, broadcast, reserved.
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        // IPv6 link-local, unique-local (incl. AWS IMDS), site-local, multicast,
        // documentation, discard.
        "[fe80::1]",
        "[febf::1]",
        "[fc00::1]",
        "[fd00:ec2::254]",
        "[fec0::1]",
        "[ff02::1]",
        "[ff05::1:3]",
        "[2001:db8::1]",
        "[100::1]",
        // Names whose answer is internal, or mixed public and internal.
        "metadata.google.internal",
        "metadata.test",
        "intranet.test",
        "router.test",
        "ula.test",
        "linklocal6.test",
        "nat64.test",
        "sixtofour.test",
        "mixed.test",
        "mixed6.test",
        "mixedlast.test",
    ];
    for host in elsewhere {
        probes.push((format!("http://{host}/latest/meta-data/"), Address));
    }
    probes.push(("https://169.254.169.254/".to_owned(), Address));
    probes.push(("https://intranet.test:8443/a.jpg".to_owned(), Address));
    let long_path = "a".repeat(2100);
    for url in [
        "file:///etc/passwd".to_owned(),
        "file://localhost/etc/passwd".to_owned(),
        format!("ftp://127.0.0.1:{p4}/a.jpg"),
        format!("gopher://127.0.0.1:{p4}/_GET%20/files/secret.jpg"),
        "data:image/png;base64,iVBORw0KGgo=".to_owned(),
        "dict://127.0.0.1:11211/stats".to_owned(),
        "ldap://127.0.0.1/dc=x".to_owned(),
        "javascript:alert(1)".to_owned(),
        "ws://127.0.0.1/".to_owned(),
        "http://user:pass@example.com/a.jpg".to_owned(),
        format!("http://example.com@127.0.0.1:{p4}/files/secret.jpg"),
        "http://admin@169.254.169.254/".to_owned(),
        format!("http://example.com/{long_path}"),
        format!("http://127.0.0.1:{p4}/{long_path}"),
    ] {
        probes.push((url, Field));
    }
    probes
}

#[tokio::test]
async fn no_internal_destination_is_reachable_and_no_probe_changes_anything() {
    let internal = ImageHost::start().await;
    let internal6 = ImageHost::start_on("::1").await;
    internal.serve("secret.jpg", "image/jpeg", jpeg(64, 64, [9, 9, 9]));
    internal6.serve("secret.jpg", "image/jpeg", jpeg(64, 64, [9, 9, 9]));
    let f = fixture(vec![]).await;

    let probes = direct_probes(port(&internal.base), port(&internal6.base));
    assert!(probes.len() >= 80, "{} probes", probes.len());
    for (url, refusal) in &probes {
        probe(&f, url, *refusal).await;
    }
    println!("ssrf: {} direct probes refused", probes.len());

    assert_eq!(internal.hits(), 0, "127.0.0.1 listener must see no request");
    assert_eq!(internal6.hits(), 0, "::1 listener must see no request");
    assert!(
        f.dialer.dialled().is_empty(),
        "nothing may be dialled: {:?}",
        f.dialer.dialled()
    );
}

/// 127.0.0.2 poses as a public picture host (allowed by the list); its redirects
/// into the inside, redirect chains over the limit and redirects to other
/// schemes are refused, and only 127.0.0.2 is ever dialled.
#[tokio::test]
async fn redirects_from_a_public_host_cannot_reach_inside() {
    let public = ImageHost::start_on("127.0.0.2").await;
    let internal = ImageHost::start().await;
    let internal6 = ImageHost::start_on("::1").await;
    let secret = internal.serve("secret.jpg", "image/jpeg", jpeg(64, 64, [9, 9, 9]));
    let secret6 = internal6.serve("secret.jpg", "image/jpeg", jpeg(64, 64, [9, 9, 9]));
    let ok = public.serve("ok.jpg", "image/jpeg", jpeg(64, 64, [200, 200, 0]));
    let p4 = port(&internal.base);
    let pb = &public.base;
    let f = fixture(vec!["127.0.0.2/32"]).await;

    use Refusal::{Address, RedirectUrl, Redirects};
    let probes: Vec<(String, Refusal, usize)> = vec![
        // (url, refusal, requests the public host serves for it)
        (format!("{pb}/to?{secret}"), Address, 1),
        (format!("{pb}/to?{secret6}"), Address, 1),
        (
            format!("{pb}/to?http://localhost:{p4}/files/secret.jpg"),
            Address,
            1,
        ),
        (
            format!("{pb}/to?http://2130706433:{p4}/files/secret.jpg"),
            Address,
            1,
        ),
        (
            format!("{pb}/to?http://[::ffff:127.0.0.1]:{p4}/files/secret.jpg"),
            Address,
            1,
        ),
        (
            format!("{pb}/to?http://169.254.169.254/latest/meta-data/"),
            Address,
            1,
        ),
        (
            format!("{pb}/to?http://metadata.test/computeMetadata/v1/"),
            Address,
            1,
        ),
        (
            format!("{pb}/to?http://[fd00:ec2::254]/latest/meta-data/"),
            Address,
            1,
        ),
        (format!("{pb}/to?http://127.0.0.3/"), Address, 1),
        // public → public → internal
        (format!("{pb}/to?{pb}/to?{secret}"), Address, 2),
        (format!("{pb}/redirect/4/ok.jpg"), Redirects, 4),
        (format!("{pb}/redirect/20/ok.jpg"), Redirects, 4),
        (format!("{pb}/to?file:///etc/passwd"), RedirectUrl, 1),
        (
            format!("{pb}/to?gopher://127.0.0.1:{p4}/_GET%20/"),
            RedirectUrl,
            1,
        ),
        (
            format!("{pb}/to?http://user:pw@127.0.0.2/files/ok.jpg"),
            RedirectUrl,
            1,
        ),
        // A name answering the allowed host and an internal one is refused whole.
        ("http://half.test/files/ok.jpg".to_owned(), Address, 0),
        // The allow list is exactly 127.0.0.2/32, not the rest of 127/8.
        ("http://loopback3.test/".to_owned(), Address, 0),
        (
            format!("http://127.0.0.3:{p4}/files/secret.jpg"),
            Address,
            0,
        ),
    ];
    for (url, refusal, served) in &probes {
        let hits = public.hits();
        probe(&f, url, *refusal).await;
        assert_eq!(public.hits() - hits, *served, "{url}");
    }
    println!(
        "ssrf: {} redirect and allow-list probes refused",
        probes.len()
    );

    assert_eq!(internal.hits(), 0, "the internal hosts were not reached");
    assert_eq!(internal6.hits(), 0, "the internal hosts were not reached");
    let dialled = f.dialer.dialled();
    assert!(
        dialled
            .iter()
            .all(|a| a.ip() == "127.0.0.2".parse::<IpAddr>().unwrap()),
        "only the allowed host was dialled: {dialled:?}"
    );

    // And the allowed host itself works end to end, redirects within it too.
    for url in [ok, format!("{pb}/redirect/3/ok.jpg")] {
        let envelope = f.app.update_head_img(&f.token, &f.app_id, &url).await;
        assert_eq!(envelope["ret"], 200, "{url}: {envelope}");
    }
}
