//! With the allow list empty, nothing internal is reachable. Traffic stays on this
//! machine: loopback targets are real listeners that must see zero requests; every
//! other address goes through a dialer that records it and never opens a socket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use gewe_server::fetch::{Dial, Resolve};
use serde_json::json;
use tokio::net::TcpStream;

use crate::helpers::{Setup, TestApp, assert_error_detail, spawn_app_with};
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

struct Fixture {
    app: TestApp,
    dialer: Arc<RecordingDialer>,
    token: String,
    app_id: String,
}

async fn fixture(allow_nets: Vec<&'static str>, table: Vec<(&'static str, Vec<&str>)>) -> Fixture {
    let resolver = TableResolver(
        table
            .into_iter()
            .map(|(host, ips)| (host, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
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

async fn assert_refused(f: &Fixture, url: &str) {
    let before = f.app.profile(&f.token, &f.app_id).await;
    let envelope = f
        .app
        .call(
            "/gewe/v2/api/personal/updateHeadImg",
            Some(&f.token),
            json!({"appId": f.app_id, "headImgUrl": url}),
        )
        .await;
    assert_error_detail(&envelope, "修改头像失败", "地址不允许");
    assert_eq!(
        envelope["data"]["code"], "fetch-address-not-allowed",
        "{url}: {envelope}"
    );
    assert_eq!(
        f.app.profile(&f.token, &f.app_id).await,
        before,
        "{url} changed the profile"
    );
}

#[tokio::test]
async fn loopback_listeners_receive_nothing_whatever_the_spelling() {
    let host = ImageHost::start().await;
    let url = host.serve("a.jpg", "image/jpeg", jpeg(64, 64, [1, 2, 3]));
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let f = fixture(
        vec![],
        vec![
            ("localhost", vec!["127.0.0.1"]),
            ("rebind.test", vec!["127.0.0.1"]),
        ],
    )
    .await;
    for host in [
        "127.0.0.1",
        "localhost",
        "rebind.test",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ] {
        assert_refused(&f, &format!("http://{host}:{port}/files/a.jpg")).await;
    }
    assert_eq!(host.hits(), 0, "the loopback listener must see no request");
    assert!(
        f.dialer.dialled().is_empty(),
        "nothing dialled: {:?}",
        f.dialer.dialled()
    );
}

#[tokio::test]
async fn internal_answers_from_dns_are_refused_without_dialling() {
    let f = fixture(
        vec![],
        vec![
            ("metadata.test", vec!["169.254.169.254"]),
            ("intranet.test", vec!["10.1.2.3"]),
            ("ula.test", vec!["fd00::1"]),
            ("mixed.test", vec!["93.184.216.34", "192.168.1.1"]),
        ],
    )
    .await;
    for host in ["metadata.test", "intranet.test", "ula.test", "mixed.test"] {
        assert_refused(&f, &format!("http://{host}/avatar.jpg")).await;
    }
    for literal in [
        "169.254.169.254",
        "10.0.0.1",
        "[fe80::1]",
        "[fc00::1]",
        "224.0.0.1",
        "0.0.0.0",
        "[::1]",
    ] {
        assert_refused(&f, &format!("http://{literal}/avatar.jpg")).await;
    }
    assert!(
        f.dialer.dialled().is_empty(),
        "nothing dialled: {:?}",
        f.dialer.dialled()
    );
}

/// 127.0.0.2 poses as a public picture host (allowed by the list); it redirects to
/// an internal address, which must be refused without being dialled.
#[tokio::test]
async fn a_redirect_to_an_internal_address_is_refused() {
    let public = ImageHost::start_on("127.0.0.2").await;
    let internal = ImageHost::start().await;
    let secret = internal.serve("secret.jpg", "image/jpeg", jpeg(64, 64, [9, 9, 9]));
    let f = fixture(
        vec!["127.0.0.2/32"],
        vec![("metadata.test", vec!["169.254.169.254"])],
    )
    .await;

    assert_refused(&f, &format!("{}/to?{secret}", public.base)).await;
    assert_refused(
        &f,
        &format!("{}/to?http://metadata.test/latest/meta-data/", public.base),
    )
    .await;
    assert_refused(
        &f,
        &format!(
            "{}/to?http://169.254.169.254/latest/meta-data/",
            public.base
        ),
    )
    .await;
    assert_eq!(public.hits(), 3, "the allowed host was reached");
    assert_eq!(internal.hits(), 0, "the internal host was not");
    assert!(
        f.dialer
            .dialled()
            .iter()
            .all(|a| a.ip().to_string() == "127.0.0.2"),
        "only the allowed host was dialled: {:?}",
        f.dialer.dialled()
    );

    // And the allowed host itself works end to end.
    let ok = public.serve("ok.jpg", "image/jpeg", jpeg(64, 64, [200, 200, 0]));
    let envelope = f.app.update_head_img(&f.token, &f.app_id, &ok).await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
}
