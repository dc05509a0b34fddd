//! Hostile requests: malformed JSON, wrong types for every field, oversized
//! bodies, missing and unknown tokens, another tenant's device, unicode and
//! control characters, very long values. Each must be answered with a GeWe
//! envelope (HTTP 200, ret 500, a message naming the problem) and change nothing:
//! profile, history and blob folder stay as they were, no picture is fetched.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use gewe_server::fetch::{Dial, Resolve};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::helpers::{Setup, TestApp, blob_files, spawn_app_with};
use crate::image_host::ImageHost;
use crate::pictures::jpeg;

/// No DNS at all (a unicode host name must not become a real query) and
/// connections to loopback only.
struct LoopbackOnly;

impl Resolve for LoopbackOnly {
    fn resolve(&self, _host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async { Err(std::io::Error::other("no DNS in this test")) })
    }
}

impl Dial for LoopbackOnly {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>> {
        Box::pin(async move {
            if addr.ip().is_loopback() {
                TcpStream::connect(addr).await
            } else {
                Err(std::io::Error::other("test dialer stays on loopback"))
            }
        })
    }
}

const PROFILE: &str = "/gewe/v2/api/personal/getProfile";
const UPDATE: &str = "/gewe/v2/api/personal/updateHeadImg";

struct World {
    app: TestApp,
    host: ImageHost,
    token: String,
    app_id: String,
    picture: String,
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    profile: Value,
    history: usize,
    blobs: usize,
    fetches: usize,
}

impl World {
    async fn snapshot(&self) -> Snapshot {
        Snapshot {
            profile: self.app.profile(&self.token, &self.app_id).await,
            history: self.app.history_len(&self.app_id).await,
            blobs: blob_files(&self.app.data_dir),
            fetches: self.host.hits(),
        }
    }

    /// Sends raw bytes and returns the envelope (HTTP 200 and the JSON content
    /// type are checked by `TestApp::envelope`).
    async fn send(
        &self,
        route: &str,
        token: Option<HeaderValue>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Value {
        let mut request = self.app.client.post(self.app.url(route)).body(body);
        if let Some(token) = token {
            request = request.header("X-GEWE-TOKEN", token);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.app.envelope(request).await
    }

    fn token(&self) -> Option<HeaderValue> {
        Some(HeaderValue::from_str(&self.token).unwrap())
    }
}

async fn world() -> World {
    let app = spawn_app_with(Setup {
        network: Some((Arc::new(LoopbackOnly), Arc::new(LoopbackOnly))),
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    let picture = host.serve("a.jpg", "image/jpeg", jpeg(200, 200, [250, 10, 10]));
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    World {
        app,
        host,
        token,
        app_id,
        picture,
    }
}

/// One hostile request and the top-level message it must get.
struct Case {
    label: String,
    route: &'static str,
    token: Option<HeaderValue>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    msg: String,
    /// `data.code`, when the answer carries one.
    code: Option<&'static str>,
}

fn json_case(
    label: impl Into<String>,
    route: &'static str,
    token: Option<HeaderValue>,
    body: Value,
    msg: impl Into<String>,
    code: Option<&'static str>,
) -> Case {
    Case {
        label: label.into(),
        route,
        token,
        content_type: Some("application/json"),
        body: body.to_string().into_bytes(),
        msg: msg.into(),
        code,
    }
}

fn raw_case(
    label: impl Into<String>,
    route: &'static str,
    token: Option<HeaderValue>,
    body: &[u8],
    msg: &str,
    code: Option<&'static str>,
) -> Case {
    Case {
        label: label.into(),
        route,
        token,
        content_type: Some("application/json"),
        body: body.to_vec(),
        msg: msg.to_owned(),
        code,
    }
}

fn cases(w: &World) -> Vec<Case> {
    let token = w.token();
    let app_id = w.app_id.as_str();
    let picture = w.picture.as_str();
    let mut cases = Vec::new();

    // Malformed JSON, on both routes.
    for route in [PROFILE, UPDATE] {
        for (label, body) in [
            ("truncated", &b"{\"appId\":"[..]),
            ("unquoted key", b"{appId: \"wx_x\"}"),
            ("trailing comma", b"{\"appId\":\"wx_x\",}"),
            ("trailing garbage", b"{\"appId\":\"wx_x\"} trailing"),
            ("two objects", b"{\"appId\":\"a\"}{\"appId\":\"b\"}"),
            ("invalid UTF-8", b"{\"appId\":\"wx_\xff\xfe\"}"),
            ("lone surrogate", b"{\"appId\":\"wx_\\ud800\"}"),
            ("bad escape", b"{\"appId\":\"wx_\\x41\"}"),
            ("NaN", b"{\"appId\":NaN}"),
            ("single quotes", b"{'appId':'wx_x'}"),
        ] {
            cases.push(raw_case(
                format!("{route}: {label}"),
                route,
                token.clone(),
                body,
                "请求体不是合法的JSON",
                Some("invalid-json"),
            ));
        }
        // Deep nesting in an ignored field is skipped without recursion; in a
        // known field it is a type error at the first bracket.
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(30_000), "]".repeat(30_000));
        cases.push(raw_case(
            format!("{route}: ignored field nested 30000 deep"),
            route,
            token.clone(),
            deep.as_bytes(),
            "appId不可为空",
            None,
        ));
        let deep = format!("{{\"appId\":{}{}}}", "[".repeat(30_000), "]".repeat(30_000));
        cases.push(raw_case(
            format!("{route}: appId nested 30000 deep"),
            route,
            token.clone(),
            deep.as_bytes(),
            "appId类型错误",
            Some("invalid-field-type"),
        ));
        for (label, body) in [
            ("array", &b"[{\"appId\":\"wx_x\"}]"[..]),
            ("string", b"\"wx_x\""),
            ("number", b"42"),
            ("null", b"null"),
        ] {
            cases.push(raw_case(
                format!("{route}: body is {label}"),
                route,
                token.clone(),
                body,
                "请求参数错误",
                Some("invalid-body"),
            ));
        }
        // 1 MB: refused unread.
        let mut huge = b"{\"appId\":\"".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        huge.extend_from_slice(b"\"}");
        cases.push(raw_case(
            format!("{route}: 1 MB body"),
            route,
            token.clone(),
            &huge,
            "请求体过大",
            Some("body-too-large"),
        ));
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            cases.push(Case {
                label: format!("{route}: content type {content_type:?}"),
                route,
                token: token.clone(),
                content_type,
                body: json!({"appId": app_id}).to_string().into_bytes(),
                msg: "Content-Type错误".to_owned(),
                code: Some("unsupported-media-type"),
            });
        }
    }

    // Wrong types for every field of every route.
    let wrong: [Value; 8] = [
        json!(123),
        json!(-1.5),
        json!(true),
        json!([]),
        json!([app_id]),
        json!({}),
        json!({"appId": app_id}),
        json!(1e308),
    ];
    for bad in &wrong {
        cases.push(json_case(
            format!("getProfile appId = {bad}"),
            PROFILE,
            token.clone(),
            json!({"appId": bad}),
            "appId类型错误",
            Some("invalid-field-type"),
        ));
        cases.push(json_case(
            format!("updateHeadImg appId = {bad}"),
            UPDATE,
            token.clone(),
            json!({"appId": bad, "headImgUrl": picture}),
            "appId类型错误",
            Some("invalid-field-type"),
        ));
        cases.push(json_case(
            format!("updateHeadImg headImgUrl = {bad}"),
            UPDATE,
            token.clone(),
            json!({"appId": app_id, "headImgUrl": bad}),
            "headImgUrl类型错误",
            Some("invalid-field-type"),
        ));
    }

    // Tokens: missing, empty, unknown, odd bytes, very long, another tenant's.
    for route in [PROFILE, UPDATE] {
        let body = json!({"appId": app_id, "headImgUrl": picture});
        for (label, header, msg) in [
            ("no token", None, "header:X-GEWE-TOKEN 不可为空"),
            (
                "blank token",
                Some(HeaderValue::from_static("   ")),
                "header:X-GEWE-TOKEN 不可为空",
            ),
            (
                "unknown token",
                Some(HeaderValue::from_static("0123456789abcdef0123456789abcdef")),
                "header:X-GEWE-TOKEN 不可用或已过期",
            ),
            (
                "token with non-ASCII bytes",
                Some(HeaderValue::from_bytes(b"\xe4\xbd\xa0\xe5\xa5\xbd").unwrap()),
                "header:X-GEWE-TOKEN 不可用或已过期",
            ),
            (
                "token 8000 chars",
                Some(HeaderValue::from_str(&"f".repeat(8000)).unwrap()),
                "header:X-GEWE-TOKEN 不可用或已过期",
            ),
            (
                "token with SQL",
                Some(HeaderValue::from_static("' OR '1'='1")),
                "header:X-GEWE-TOKEN 不可用或已过期",
            ),
        ] {
            cases.push(json_case(
                format!("{route}: {label}"),
                route,
                header,
                body.clone(),
                msg,
                None,
            ));
        }
    }

    // Unicode, control characters and length in appId.
    let long_ids = ["a".repeat(65), "a".repeat(10_000), "a".repeat(60_000)];
    let odd_ids = [
        "wx_测试设备",
        "wx_\u{202e}gpj.exe",
        "wx_\u{1F600}",
        "wx_\u{0}",
        "wx_a\tb",
        "wx_a\r\nX-Injected: 1",
        "wx_\u{7f}",
        "wx_\u{85}",
        "wx_\u{feff}",
        "../../etc/passwd",
        "wx_x' OR '1'='1",
        "wx_%00",
    ];
    let app_ids = odd_ids
        .iter()
        .map(|s| (*s).to_owned())
        .chain(long_ids.iter().cloned());
    for bad in app_ids {
        let shown: String = bad.chars().take(24).collect();
        cases.push(json_case(
            format!("getProfile appId {shown:?} ({} bytes)", bad.len()),
            PROFILE,
            token.clone(),
            json!({"appId": bad}),
            "appId格式错误",
            Some("invalid-field"),
        ));
        cases.push(json_case(
            format!("updateHeadImg appId {shown:?} ({} bytes)", bad.len()),
            UPDATE,
            token.clone(),
            json!({"appId": bad, "headImgUrl": picture}),
            "appId格式错误",
            Some("invalid-field"),
        ));
    }

    // Control characters inside headImgUrl: the URL parser would silently drop
    // tabs and newlines and fetch something else; the edge refuses them.
    for bad in [
        format!("{picture}\u{0}"),
        picture.replacen("files", "fi\nles", 1),
        picture.replacen("files", "fi\tles", 1),
        picture.replacen("files", "fi\rles", 1),
        format!("{picture}\r\nX-Injected: 1"),
        picture.replacen("127", "1\u{7}27", 1),
        picture.replacen("files", "fi\u{85}les", 1),
    ] {
        cases.push(json_case(
            format!("headImgUrl {bad:?}"),
            UPDATE,
            token.clone(),
            json!({"appId": app_id, "headImgUrl": bad}),
            "headImgUrl格式错误",
            Some("invalid-field"),
        ));
    }
    for bad in [
        "http://",
        "http://[::1",
        "http://exa mple.com/",
        "http://%zz/",
        "   ",
    ] {
        let msg = if bad.trim().is_empty() {
            "headImgUrl不可为空"
        } else {
            "headImgUrl格式错误"
        };
        cases.push(json_case(
            format!("headImgUrl {bad:?}"),
            UPDATE,
            token.clone(),
            json!({"appId": app_id, "headImgUrl": bad}),
            msg,
            (msg == "headImgUrl格式错误").then_some("invalid-field"),
        ));
    }
    cases
}

#[tokio::test]
async fn hostile_requests_get_an_envelope_and_change_nothing() {
    let w = world().await;
    let before = w.snapshot().await;
    let cases = cases(&w);
    assert!(cases.len() >= 100, "{} cases", cases.len());
    for case in &cases {
        let envelope = w
            .send(
                case.route,
                case.token.clone(),
                case.content_type,
                case.body.clone(),
            )
            .await;
        let label = &case.label;
        assert_eq!(envelope["ret"], 500, "{label}: {envelope}");
        assert_eq!(envelope["msg"], case.msg.as_str(), "{label}: {envelope}");
        match case.code {
            Some(code) => assert_eq!(envelope["data"]["code"], code, "{label}: {envelope}"),
            None => assert!(envelope.get("data").is_none(), "{label}: {envelope}"),
        }
        // Nothing the caller sent is reflected at length.
        assert!(
            envelope.to_string().len() < 1024,
            "{label}: answer of {} bytes",
            envelope.to_string().len()
        );
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a hostile request changed the store"
    );
    println!("requests: {} hostile requests answered", cases.len());

    // The server is still fine and the account still works.
    let ok = w.app.update_head_img(&w.token, &w.app_id, &w.picture).await;
    assert_eq!(ok, json!({"ret": 200, "msg": "操作成功"}));
}

/// Another tenant's appId is answered exactly like a missing device, for reads
/// and writes, and nothing is fetched on its behalf.
#[tokio::test]
async fn another_tenants_device_is_neither_read_nor_written_nor_fetched_for() {
    let w = world().await;
    let mallory = w.app.new_token().await;
    let mallorys_own = w.app.new_account(&mallory).await;
    let before = w.snapshot().await;
    for (route, body, msg) in [
        (PROFILE, json!({"appId": w.app_id}), "获取个人资料失败"),
        (
            UPDATE,
            json!({"appId": w.app_id, "headImgUrl": w.picture}),
            "修改头像失败",
        ),
    ] {
        let envelope = w
            .send(
                route,
                Some(HeaderValue::from_str(&mallory).unwrap()),
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(
            envelope,
            json!({"ret": 500, "msg": msg, "data": {"code": "-1", "msg": format!("[{}]设备不存在", w.app_id)}})
        );
    }
    assert_eq!(w.snapshot().await, before);
    assert_eq!(
        w.host.hits(),
        0,
        "nothing fetched for another tenant's device"
    );
    // Mallory's own device is unaffected by her failed attempts.
    assert_eq!(w.app.history_len(&mallorys_own).await, 1);
}

/// Unicode that is legitimate in a URL (an IDN host, a CJK path) is accepted by
/// the edge and fails only where it really fails (no DNS here, no such file).
#[tokio::test]
async fn unicode_urls_fail_for_real_reasons_and_change_nothing() {
    let w = world().await;
    let before = w.snapshot().await;
    let port = w.host.base.rsplit(':').next().unwrap();
    let cases = [
        (
            "http://例子.测试/头像.jpg".to_owned(),
            "fetch-address-not-allowed",
        ),
        (
            format!("http://127.0.0.1:{port}/files/头像.jpg"),
            "fetch-http-status",
        ),
        (
            format!("http://127.0.0.1:{port}/files/\u{202e}gpj.jpg"),
            "fetch-http-status",
        ),
    ];
    for (url, code) in &cases {
        let envelope = w.app.update_head_img(&w.token, &w.app_id, url).await;
        assert_eq!(envelope["ret"], 500, "{url}: {envelope}");
        assert_eq!(envelope["data"]["code"], *code, "{url}: {envelope}");
    }
    let after = w.snapshot().await;
    assert_eq!(
        after.fetches,
        before.fetches + 2,
        "the two loopback URLs were fetched"
    );
    assert_eq!(
        Snapshot {
            fetches: before.fetches,
            ..after
        },
        before
    );
}

/// A body refused unread (its Content-Length is over the limit) stays on the
/// connection, so the server cannot use the connection again. It must say so
/// in the answer (`Connection: close`): a client that sent its next request on
/// the connection would find it closed unanswered (`IncompleteMessage`), and a
/// POST is not retried. A body read to its end keeps the connection open.
#[tokio::test]
async fn a_body_refused_unread_is_answered_with_connection_close() {
    use tokio::io::AsyncWriteExt;

    let w = world().await;
    let address = w.app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let post = |length: usize| {
        format!(
            "POST /gewe/v2/api/personal/getProfile HTTP/1.1\r\nhost: test\r\n\
             x-gewe-token: {}\r\ncontent-type: application/json\r\n\
             content-length: {length}\r\n\r\n",
            w.token
        )
    };

    let body = json!({"appId": w.app_id}).to_string();
    let read = format!("{}{body}", post(body.len()));
    stream.write_all(read.as_bytes()).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(!answer.contains("\r\nconnection: close\r\n"), "{answer}");

    stream.write_all(post(2_000_000).as_bytes()).await.unwrap();
    // Past the limit, but not all of it: the rest never comes.
    stream.write_all(&vec![b'a'; 300_000]).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
}

/// The status line and headers of the next answer on `stream`, lowercased;
/// the body, if any, is read past and left out.
async fn read_head(stream: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;

    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !seen.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => seen.push(byte[0]),
            }
        }
        let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        let _ = stream.read_exact(&mut body).await;
        head
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("answered within the deadline")
}
