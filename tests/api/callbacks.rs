//! setCallback and the delivery of callback events, against real receivers on
//! 127.0.0.1. Backoff and event age are driven by a manual clock: nothing waits
//! for real minutes (the 3 s limit itself is real time).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use gewe_server::domain::{
    AppId, Clock, InboundText, ManualClock, OutboxEvent, OutboxState, TokenId,
};
use gewe_server::fetch::{Dial, Resolve};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::helpers::{Setup, TestApp, assert_error, spawn_app, spawn_app_with};
use crate::receiver::{Mode, Receiver};

const TOOLS: &str = "/v2/api/tools/setCallback";
const LOGIN: &str = "/gewe/v2/api/login/setCallback";
const PATIENCE: Duration = Duration::from_secs(10);

async fn set_callback(app: &TestApp, path: &str, token: &str, url: &str) -> Value {
    app.call(
        path,
        Some(token),
        json!({ "token": token, "callbackUrl": url }),
    )
    .await
}

async fn owner(app: &TestApp, token: &str) -> TokenId {
    app.state.tokens.authenticate(Some(token)).await.unwrap()
}

async fn callback_url(app: &TestApp, token: &str) -> Option<String> {
    let owner = owner(app, token).await;
    app.state.callbacks.callback_url(owner).await.unwrap()
}

async fn emit_offline(app: &TestApp, token: &str, app_id: &str) -> Option<i64> {
    let owner = owner(app, token).await;
    let app_id = AppId::parse(Some(app_id.to_owned())).unwrap();
    app.state
        .callbacks
        .emit_offline(owner, &app_id)
        .await
        .unwrap()
}

async fn events(app: &TestApp, token: &str) -> Vec<OutboxEvent> {
    let owner = owner(app, token).await;
    let mut events = app.state.callbacks.list(owner, false).await.unwrap();
    events.reverse();
    events
}

/// Polls the token's events until `done` holds for them (real time, bounded).
async fn wait_events(
    app: &TestApp,
    token: &str,
    what: &str,
    done: impl Fn(&[OutboxEvent]) -> bool,
) -> Vec<OutboxEvent> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = events(app, token).await;
        if done(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn offline_body(app_id: &str, wxid: &str) -> String {
    format!("{{\"TypeName\":\"Offline\",\"Appid\":\"{app_id}\",\"Wxid\":\"{wxid}\"}}")
}

async fn wxid(app: &TestApp, token: &str, app_id: &str) -> String {
    app.profile(token, app_id).await["wxid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn manual_setup() -> (Setup, ManualClock) {
    let (clock, hand) = Clock::manual();
    (
        Setup {
            clock: Some(clock),
            ..Setup::default()
        },
        hand,
    )
}

/// A loopback port nobody listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn set_callback_pings_with_the_exact_test_message_on_both_paths() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let receiver = Receiver::start(Mode::Ok).await;

    for path in [
        TOOLS,
        LOGIN,
        "/gewe/v2/api/tools/setCallback",
        "/v2/api/login/setCallback",
    ] {
        let envelope = set_callback(&app, path, &token, &receiver.url()).await;
        assert_eq!(envelope, json!({"ret": 200, "msg": "操作成功"}), "{path}");
    }
    let received = receiver.received();
    assert_eq!(received.len(), 4);
    for ping in received {
        assert_eq!(
            ping.body,
            format!("{{\"testMsg\":\"回调地址链接成功！\",\"token\":\"{token}\"}}")
        );
        assert_eq!(ping.content_type.as_deref(), Some("application/json"));
        assert_eq!(ping.path, "/callback");
    }
    assert_eq!(callback_url(&app, &token).await, Some(receiver.url()));
}

#[tokio::test]
async fn the_body_token_must_be_the_header_token() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let other = app.new_token().await;
    let receiver = Receiver::start(Mode::Ok).await;

    let envelope = app
        .call(
            TOOLS,
            Some(&token),
            json!({ "token": other, "callbackUrl": receiver.url() }),
        )
        .await;
    assert_error(&envelope, "token与header:X-GEWE-TOKEN不一致");
    assert_eq!(envelope["data"]["code"], "token-mismatch");
    let envelope = app
        .call(
            TOOLS,
            Some(&token),
            json!({ "callbackUrl": receiver.url() }),
        )
        .await;
    assert_error(&envelope, "token不可为空");
    let envelope = app
        .call(TOOLS, Some(&token), json!({ "token": token }))
        .await;
    assert_error(&envelope, "callbackUrl不可为空");
    // The header is required like on every route.
    let envelope = app
        .call(
            TOOLS,
            None,
            json!({ "token": token, "callbackUrl": receiver.url() }),
        )
        .await;
    assert_eq!(envelope["ret"], 500);

    assert!(receiver.received().is_empty(), "no ping for a refused call");
    assert_eq!(callback_url(&app, &token).await, None);
}

#[tokio::test]
async fn an_unreachable_url_answers_push_msg_err_and_keeps_the_old_url() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );

    let dead = format!("http://{}/callback", closed_port().await);
    let envelope = set_callback(&app, TOOLS, &token, &dead).await;
    assert_error(&envelope, &format!("{dead} push msg err"));
    assert_eq!(envelope["data"]["code"], "callback-connect", "{envelope}");

    let refusing = Receiver::start(Mode::Status(500)).await;
    let envelope = set_callback(&app, LOGIN, &token, &refusing.url()).await;
    assert_error(&envelope, &format!("{} push msg err", refusing.url()));
    assert_eq!(envelope["data"]["msg"], "回调地址返回HTTP 500");

    for bad in [
        "ftp://example.com/x",
        "not a url",
        "http://user:pw@127.0.0.1/",
    ] {
        let envelope = set_callback(&app, TOOLS, &token, bad).await;
        assert_error(&envelope, &format!("{bad} push msg err"));
        assert_eq!(envelope["data"]["code"], "callback-bad-url", "{envelope}");
    }
    assert_eq!(callback_url(&app, &token).await, Some(receiver.url()));
}

/// Answers one name with an internal address.
struct InternalResolver;

impl Resolve for InternalResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let answer = HashMap::from([("hooks.test", "10.0.0.1".parse::<IpAddr>().unwrap())])
            .get(host)
            .copied();
        Box::pin(async move {
            answer
                .map(|ip| vec![ip])
                .ok_or_else(|| std::io::Error::other("no such test host"))
        })
    }
}

/// Records what it is asked to dial and never opens a socket.
#[derive(Default)]
struct RecordingDialer(Mutex<Vec<SocketAddr>>);

impl Dial for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>> {
        self.0.lock().unwrap().push(addr);
        Box::pin(async { Err(std::io::Error::other("test dialer never connects")) })
    }
}

#[tokio::test]
async fn an_internal_destination_is_refused_without_naming_its_address() {
    let dialer = Arc::new(RecordingDialer::default());
    let app = spawn_app_with(Setup {
        network: Some((Arc::new(InternalResolver), dialer.clone())),
        ..Setup::default()
    })
    .await;
    let token = app.new_token().await;

    for url in [
        "http://hooks.test/cb",
        "http://10.0.0.1/cb",
        "http://169.254.169.254/",
    ] {
        let envelope = set_callback(&app, TOOLS, &token, url).await;
        assert_error(&envelope, &format!("{url} push msg err"));
        assert_eq!(envelope["data"]["code"], "callback-address-not-allowed");
        let reason = envelope["data"]["msg"].as_str().unwrap();
        assert!(reason.contains("GEWE_CALLBACK_ALLOW_NETS"), "{reason}");
        if url.contains("hooks.test") {
            assert!(!reason.contains("10.0.0.1"), "{reason}");
            assert!(!envelope.to_string().contains("10.0.0.1"), "{envelope}");
        }
    }
    assert!(dialer.0.lock().unwrap().is_empty(), "nothing was dialled");
    assert_eq!(callback_url(&app, &token).await, None);
}

#[tokio::test]
async fn offline_is_delivered_once_in_geweshape() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let wxid = wxid(&app, &token, &app_id).await;

    // No callback URL: no event is written.
    assert_eq!(emit_offline(&app, &token, &app_id).await, None);

    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    assert!(emit_offline(&app, &token, &app_id).await.is_some());

    let bodies = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(bodies[1], offline_body(&app_id, &wxid));
    let parsed: Value = serde_json::from_str(&bodies[1]).unwrap();
    assert!(parsed.get("Data").is_none(), "Offline has no Data key");
    let events = wait_events(&app, &token, "delivered", |e| {
        e.len() == 1 && e[0].state == OutboxState::Delivered
    })
    .await;
    assert_eq!(events[0].attempts, 1);
    // And only once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.bodies().len(), 2, "{:?}", receiver.bodies());
}

#[tokio::test]
async fn events_go_to_the_url_current_at_delivery_time() {
    let (setup, hand) = manual_setup();
    let app = spawn_app_with(setup).await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let first = Receiver::start(Mode::Status(503)).await;
    first.set_mode(Mode::Ok);
    assert_eq!(
        set_callback(&app, TOOLS, &token, &first.url()).await["ret"],
        200
    );
    first.set_mode(Mode::Status(503));
    emit_offline(&app, &token, &app_id).await.unwrap();
    wait_events(&app, &token, "a failed attempt", |e| {
        e[0].last_error.is_some()
    })
    .await;

    let second = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, LOGIN, &token, &second.url()).await["ret"],
        200
    );
    hand.advance(Duration::from_secs(3600));
    let bodies = second.wait_for(2, PATIENCE).await;
    assert!(bodies[1].contains("\"Offline\""), "{bodies:?}");
}

#[tokio::test]
async fn callbacks_to_one_receiver_share_a_kept_alive_connection() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    for _ in 0..3 {
        emit_offline(&app, &token, &app_id).await.unwrap();
        let delivered = receiver.received().len() + 1;
        receiver.wait_for(delivered, PATIENCE).await;
    }
    // After the ping, three events one after another: one connection.
    let received = receiver.received();
    assert_eq!(received.len(), 4);
    let peers: std::collections::HashSet<SocketAddr> =
        received[1..].iter().map(|r| r.peer).collect();
    assert_eq!(peers.len(), 1, "{peers:?}");
}

#[tokio::test]
async fn a_receiver_down_then_up_gets_everything_in_order() {
    let (setup, hand) = manual_setup();
    let app = spawn_app_with(setup).await;
    let token = app.new_token().await;
    let one = app.new_account(&token).await;
    let two = app.new_account(&token).await;
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    let addr = receiver.stop();

    let order = [&one, &two, &one, &one, &two];
    for app_id in order {
        emit_offline(&app, &token, app_id).await.unwrap();
    }
    // Both devices' first events fail and wait for their backoff; the rest wait behind them.
    let events = wait_events(&app, &token, "first attempts", |e| {
        e.iter().filter(|e| e.last_error.is_some()).count() == 2
    })
    .await;
    assert!(events.iter().all(|e| e.state == OutboxState::Pending));
    assert_eq!(
        events.iter().map(|e| e.attempts).sum::<i64>(),
        2,
        "{events:?}"
    );
    assert!(
        events[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("callback-connect"),
        "{events:?}"
    );

    // Down "for 30 s" and more, by the clock; then up again on the same port.
    hand.advance(Duration::from_secs(30));
    let receiver = Receiver::start_on(addr, Mode::Ok).await;
    hand.advance(Duration::from_secs(600));
    let bodies = receiver.wait_for(5, PATIENCE).await;
    wait_events(&app, &token, "all delivered", |e| {
        e.iter().all(|e| e.state == OutboxState::Delivered)
    })
    .await;
    // Same-device events carry the same bytes here, so the order itself is
    // checked where it is decided: tests/api/store_contract.rs (claims).
    let arrived: Vec<String> = bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["Appid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(arrived.iter().filter(|a| **a == one).count(), 3);
    assert_eq!(arrived.iter().filter(|a| **a == two).count(), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.bodies().len(), 5, "each event once");
}

#[tokio::test]
async fn a_failure_inside_a_devices_queue_holds_back_what_queues_behind_it() {
    let (setup, hand) = manual_setup();
    let app = spawn_app_with(setup).await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let device = AppId::parse(Some(app_id.clone())).unwrap();
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    let addr = receiver.stop();
    // The first message fails (nobody listens) and waits for its retry; the
    // others queue behind it, to be claimed with it as one queue.
    let say = |n: usize| InboundText {
        from: Some("wxid_queue_sender".to_owned()),
        from_nick_name: None,
        chatroom: None,
        chatroom_name: None,
        content: format!("message {n}"),
        at_self: false,
    };
    app.state.messages.inject(&device, say(1)).await.unwrap();
    wait_events(&app, &token, "the first attempt", |e| {
        e.iter().any(|e| e.last_error.is_some())
    })
    .await;
    for n in 2..=5 {
        app.state.messages.inject(&device, say(n)).await.unwrap();
    }
    // Up again: the 1st message goes, the 2nd is refused once (500).
    let receiver = Receiver::start_on(addr, Mode::FailNth(2)).await;
    hand.advance(Duration::from_secs(600));
    receiver.wait_for(2, PATIENCE).await;
    wait_events(&app, &token, "the refusal recorded", |e| {
        e.iter()
            .any(|e| e.last_error.as_deref().is_some_and(|m| m.contains("500")))
    })
    .await;
    hand.advance(Duration::from_secs(600));
    receiver.wait_for(6, PATIENCE).await;
    let events = wait_events(&app, &token, "all delivered", |e| {
        e.iter().all(|e| e.state == OutboxState::Delivered)
    })
    .await;
    let sent: Vec<String> = receiver
        .bodies()
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["Data"]["Content"]["string"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = [1, 2, 2, 3, 4, 5]
        .iter()
        .map(|n| format!("message {n}"))
        .collect();
    assert_eq!(sent, expected, "nothing behind the refused one went first");
    // Those behind the refusal were handed back untried: one attempt each.
    assert_eq!(
        events.iter().map(|e| e.attempts).collect::<Vec<_>>(),
        [2, 2, 1, 1, 1]
    );
}

#[tokio::test]
async fn an_event_past_its_maximum_age_is_failed_and_can_be_retried() {
    let (setup, hand) = manual_setup();
    let app = spawn_app_with(setup).await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    receiver.set_mode(Mode::Status(502));
    let id = emit_offline(&app, &token, &app_id).await.unwrap();
    wait_events(&app, &token, "a failed attempt", |e| {
        e[0].attempts == 1 && e[0].last_error.is_some()
    })
    .await;

    // A day and a bit later (by the clock) the last attempt fails too: given up.
    for _ in 0..30 {
        hand.advance(Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let events = wait_events(&app, &token, "failed", |e| {
        e[0].state == OutboxState::Failed
    })
    .await;
    assert_eq!(
        events[0].last_error.as_deref(),
        Some("callback-http-status: 回调地址返回HTTP 502")
    );
    let owner = owner(&app, &token).await;
    let failed = app.state.callbacks.list(owner, true).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, id);

    // Fixed receiver, retried by hand: delivered.
    receiver.set_mode(Mode::Ok);
    let attempts = receiver.bodies().len();
    assert!(app.state.callbacks.retry(id).await.unwrap());
    let bodies = receiver.wait_for(attempts + 1, PATIENCE).await;
    assert!(bodies.last().unwrap().contains("Offline"));
    wait_events(&app, &token, "delivered", |e| {
        e[0].state == OutboxState::Delivered
    })
    .await;
    assert!(
        !app.state.callbacks.retry(id).await.unwrap(),
        "delivered stays delivered"
    );
}

#[tokio::test]
async fn slow_redirecting_huge_and_endless_receivers_are_bounded() {
    let app = spawn_app().await;
    let token = app.new_token().await;

    let slow = Receiver::start(Mode::Slow(Duration::from_secs(30))).await;
    let started = Instant::now();
    let envelope = set_callback(&app, TOOLS, &token, &slow.url()).await;
    assert_error(&envelope, &format!("{} push msg err", slow.url()));
    assert_eq!(envelope["data"]["code"], "callback-timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let redirecting = Receiver::start(Mode::Redirect).await;
    let envelope = set_callback(&app, TOOLS, &token, &redirecting.url()).await;
    assert_error(&envelope, &format!("{} push msg err", redirecting.url()));
    assert_eq!(
        envelope["data"]["msg"],
        "回调地址返回HTTP 302(不跟随重定向)"
    );
    let paths: Vec<String> = redirecting.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/callback"], "the redirect was not followed");

    let huge = Receiver::start(Mode::Huge).await;
    let started = Instant::now();
    let envelope = set_callback(&app, TOOLS, &token, &huge.url()).await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let endless = Receiver::start(Mode::Endless).await;
    let started = Instant::now();
    let envelope = set_callback(&app, TOOLS, &token, &endless.url()).await;
    assert_eq!(
        envelope["ret"], 200,
        "a 200 status is an answer: {envelope}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(callback_url(&app, &token).await, Some(endless.url()));
}

#[tokio::test]
async fn a_dead_receiver_of_one_token_does_not_delay_another_tokens_events() {
    let app = spawn_app().await;
    let stuck_token = app.new_token().await;
    let stuck_apps = [
        app.new_account(&stuck_token).await,
        app.new_account(&stuck_token).await,
    ];
    let fine_token = app.new_token().await;
    let fine_app = app.new_account(&fine_token).await;
    let stuck = Receiver::start(Mode::Ok).await;
    let fine = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &stuck_token, &stuck.url()).await["ret"],
        200
    );
    assert_eq!(
        set_callback(&app, TOOLS, &fine_token, &fine.url()).await["ret"],
        200
    );
    stuck.set_mode(Mode::Slow(Duration::from_secs(60)));

    for app_id in &stuck_apps {
        emit_offline(&app, &stuck_token, app_id).await.unwrap();
    }
    stuck.wait_for(3, PATIENCE).await; // both stuck deliveries are in flight
    let started = Instant::now();
    emit_offline(&app, &fine_token, &fine_app).await.unwrap();
    fine.wait_for(2, PATIENCE).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the other token's event waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn two_dispatchers_on_one_data_dir_deliver_each_event_once() {
    let first = spawn_app().await;
    let second = spawn_app_with(Setup {
        data_dir: Some(first.data_dir.clone()),
        ..Setup::default()
    })
    .await;
    let token = first.new_token().await;
    let mut apps = Vec::new();
    for _ in 0..4 {
        apps.push(first.new_account(&token).await);
    }
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&first, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    for round in 0..3 {
        for app_id in &apps {
            let app = if round % 2 == 0 { &first } else { &second };
            emit_offline(app, &token, app_id).await.unwrap();
        }
    }
    receiver.wait_for(1 + 12, PATIENCE).await;
    wait_events(&first, &token, "all delivered", |e| {
        e.len() == 12 && e.iter().all(|e| e.state == OutboxState::Delivered)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.bodies().len(), 13, "each event once");
}

fn gewe(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gewe"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GEWE_DATABASE_URL")
        .envs(crate::services::backend_env(data_dir))
        .output()
        .expect("gewe runs")
}

#[tokio::test]
async fn the_cli_lists_deliveries_and_retries_one() {
    let (setup, hand) = manual_setup();
    let app = spawn_app_with(setup).await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    receiver.set_mode(Mode::Status(500));
    let id = emit_offline(&app, &token, &app_id).await.unwrap();
    wait_events(&app, &token, "a failed attempt", |e| {
        e[0].last_error.is_some()
    })
    .await;

    let output = gewe(&app.data_dir, &["callbacks", "list", "--token", &token]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(
        lines[0],
        "id\tappId\ttype\tattempts\tlast error\tnext try\tstate"
    );
    let fields: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(
        fields[..4],
        [id.to_string().as_str(), app_id.as_str(), "Offline", "1"]
    );
    assert_eq!(fields[4], "callback-http-status: 回调地址返回HTTP 500");
    assert!(fields[5].ends_with('Z'), "{listing}");
    assert_eq!(fields[6], "pending");

    let output = gewe(
        &app.data_dir,
        &["callbacks", "list", "--token", &token, "--failed"],
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().lines().count(),
        1,
        "header only"
    );

    receiver.set_mode(Mode::Ok);
    let output = gewe(&app.data_dir, &["callbacks", "retry", &id.to_string()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The CLI made it due at the system's "now"; the server's manual clock
    // started at the system time and has stood still since: move it past that.
    hand.advance(Duration::from_secs(60));
    receiver.wait_for(3, PATIENCE).await;
    let output = gewe(&app.data_dir, &["callbacks", "retry", "999999"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no callback event 999999"));
}

/// Logging out and being dropped tell the bot: one `Offline` each, written in the
/// same transaction as the state change. Logging out a dropped device says
/// nothing new.
#[tokio::test]
async fn logout_and_kick_deliver_offline_once() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let (first, second) = (app.new_account(&token).await, app.new_account(&token).await);
    let expected = [
        offline_body(&first, &wxid(&app, &token, &first).await),
        offline_body(&second, &wxid(&app, &token, &second).await),
    ];
    let receiver = Receiver::start(Mode::Ok).await;
    assert_eq!(
        set_callback(&app, TOOLS, &token, &receiver.url()).await["ret"],
        200
    );
    let logout = |app_id: String| {
        let app = &app;
        let token = &token;
        async move {
            app.call(
                "/v2/api/login/logout",
                Some(token),
                json!({"appId": app_id}),
            )
            .await
        }
    };
    assert_eq!(logout(first.clone()).await["ret"], 200);
    let kicked = gewe_server::domain::AppId::parse(Some(second.clone())).unwrap();
    app.state.logins.kick(&kicked).await.unwrap();
    assert_eq!(logout(second.clone()).await["ret"], 200);

    let bodies = receiver.wait_for(3, PATIENCE).await;
    let mut offline: Vec<&String> = bodies[1..].iter().collect();
    offline.sort();
    let mut expected: Vec<&String> = expected.iter().collect();
    expected.sort();
    assert_eq!(offline, expected);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.bodies().len(), 3, "{:?}", receiver.bodies());
}
