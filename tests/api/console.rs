//! The web console over HTTP, in process: sign-in cookies and their flags, CSRF
//! and cross-site refusal, escaping, sessions that outlive a restart, and the
//! accounts grid's speed with 1 000 accounts. (The browser tests are in
//! tests/console/, run by scripts/console-tests.)

use std::time::{Duration, Instant};

use gewe_server::domain::{AccountRecord, AppId, NewEvent, OutboxState, Wxid};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{Setup, TestApp, http_client_builder, spawn_app, spawn_app_with};

/// Form posts without reqwest's `form` feature.
trait FormOf {
    fn form_of<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormOf for reqwest::RequestBuilder {
    fn form_of<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            body.append_pair(k.as_ref(), v.as_ref());
        }
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish())
    }
}

fn client() -> reqwest::Client {
    http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie_value<'a>(set_cookies: &'a [String], name: &str) -> Option<&'a str> {
    set_cookies.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap())
    })
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 32].to_owned()
}

/// Signs in with `token` the way a browser does; answers the session cookie
/// and every `Set-Cookie` of the answer.
async fn sign_in(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let client = client();
    let form = client.get(app.url("/console/login")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let pre = cookie_value(&set_cookies(form.headers()), "gewe_console_pre")
        .unwrap()
        .to_owned();
    let csrf = csrf_in(&form.text().await.unwrap());
    let answer = client
        .post(app.url("/console/login"))
        .header("cookie", format!("gewe_console_pre={pre}"))
        .form_of(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()["location"], "/console");
    let cookies = set_cookies(answer.headers());
    let session = cookie_value(&cookies, "gewe_console").unwrap().to_owned();
    (session, cookies)
}

async fn get(app: &TestApp, session: &str, path: &str) -> reqwest::Response {
    client()
        .get(app.url(path))
        .header("cookie", format!("gewe_console={session}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_behind_https() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let (session, cookies) = sign_in(&app, &token).await;
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("gewe_console="))
        .unwrap();
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(&token) && !session.contains(&token));
    // Pages carry the policy.
    let page = get(&app, &session, "/console").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("img-src 'self' data:"));
    assert!(!csp.contains("unsafe"));

    let https = spawn_app_with(Setup {
        tweak: |s| s.public_url = Some("https://gewe.example/".parse().unwrap()),
        ..Setup::default()
    })
    .await;
    let token = https.new_token().await;
    let (_, cookies) = sign_in(&https, &token).await;
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("gewe_console="))
        .unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn forms_without_the_sessions_token_or_from_another_site_are_refused() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let (session, _) = sign_in(&app, &token).await;
    let page = get(&app, &session, &format!("/console/a/{app_id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let path = format!("/console/a/{app_id}/profile");
    let post = |form: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut request = client()
            .post(app.url(&path))
            .header("cookie", format!("gewe_console={session}"))
            .form_of(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let name = |n: &str| ("nick_name", n.to_owned());
    for (form, origin) in [
        (vec![name("a")], None),
        (vec![name("b"), ("csrf", "0".repeat(32))], None),
        (
            vec![name("c"), ("csrf", csrf.clone())],
            Some("http://evil.example"),
        ),
        (vec![name("d"), ("csrf", csrf.clone())], Some("null")),
    ] {
        let answer = post(form, origin).await.unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        assert!(answer.text().await.unwrap().contains("跨站请求被拒绝"));
    }
    // Another session's token does not fit this one.
    let (other, _) = sign_in(&app, &token).await;
    let other_csrf = csrf_in(&get(&app, &other, "/console").await.text().await.unwrap());
    assert_ne!(other_csrf, csrf);
    let answer = post(vec![name("e"), ("csrf", other_csrf)], None)
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_ne!(app.profile(&token, &app_id).await["nickName"], "e");

    // The sign-in form itself needs its pre-session cookie's token.
    let answer = client()
        .post(app.url("/console/login"))
        .form_of(&[("token", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(cookie_value(&set_cookies(answer.headers()), "gewe_console").is_none());

    // Same site, right token: changed.
    let answer = post(vec![name("好名字"), ("csrf", csrf)], Some(""))
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::FORBIDDEN,
        "an empty Origin is not ours"
    );
    let csrf = csrf_in(&page);
    let answer = client()
        .post(app.url(&path))
        .header("cookie", format!("gewe_console={session}"))
        .header("origin", app.base.clone())
        .form_of(&[("nick_name", "好名字"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.profile(&token, &app_id).await["nickName"], "好名字");
}

#[tokio::test]
async fn user_strings_are_escaped_in_every_page() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let nasty = "<img src=x onerror=alert(1)>";
    let answer = app
        .call(
            "/v2/api/personal/updateProfile",
            Some(&token),
            json!({ "appId": app_id, "nickName": nasty, "signature": "\"'><script>x</script>" }),
        )
        .await;
    assert_eq!(answer["ret"], 200, "{answer}");
    let (session, _) = sign_in(&app, &token).await;
    for path in ["/console".to_owned(), format!("/console/a/{app_id}")] {
        let page = get(&app, &session, &path).await.text().await.unwrap();
        assert!(
            page.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path}"
        );
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(!page.contains("<script>x"), "{path}");
    }
}

#[tokio::test]
async fn sessions_live_in_the_database_hashed_and_survive_a_restart() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let (session, _) = sign_in(&app, &token).await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let hash = hex::encode(Sha256::digest(session.as_bytes()));
    assert!(
        app.state
            .repo
            .find_console_session(&hash, now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        app.state
            .repo
            .find_console_session(&session, now)
            .await
            .unwrap()
            .is_none()
    );

    let (data_dir, temp) = app.stop().await;
    let app = spawn_app_with(Setup {
        data_dir: Some(data_dir),
        ..Setup::default()
    })
    .await;
    assert_eq!(
        get(&app, &session, "/console").await.status(),
        StatusCode::OK
    );
    // Signing out ends it for good.
    let csrf = csrf_in(&get(&app, &session, "/console").await.text().await.unwrap());
    let answer = client()
        .post(app.url("/console/logout"))
        .header("cookie", format!("gewe_console={session}"))
        .form_of(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let after = get(&app, &session, "/console").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()["location"], "/console/login");
    drop(temp);
}

#[tokio::test]
async fn the_grid_of_1000_accounts_pages_in_sql_and_renders_fast() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let first = app.new_account(&token).await;
    let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
    let template = app
        .state
        .repo
        .find_account(owner, &AppId::parse(Some(first)).unwrap())
        .await
        .unwrap()
        .unwrap();
    let avatar = app
        .state
        .repo
        .find_avatar(template.avatar_id)
        .await
        .unwrap()
        .unwrap();
    for i in 1..1000 {
        let record = AccountRecord {
            app_id: AppId::generate(),
            wxid: Wxid::generate(),
            nick_name: format!("账号{i:04}"),
            ..template.clone()
        };
        app.state
            .repo
            .insert_account(owner, &record, &avatar, 1_700_000_000 + i)
            .await
            .unwrap();
    }
    let (session, _) = sign_in(&app, &token).await;
    let first_page = get(&app, &session, "/console").await.text().await.unwrap();
    assert!(first_page.contains("共 1000 个设备"));
    assert!(first_page.contains("第 1 / 21 页"));
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let page = get(&app, &session, "/console?page=20").await;
        assert_eq!(page.status(), StatusCode::OK);
        let body = page.text().await.unwrap();
        best = best.min(started.elapsed());
        assert_eq!(body.matches("class=\"tile\"").count(), 48);
        assert!(
            body.contains(&format!("账号{:04}", 19 * 48 + 1)),
            "page 20 starts at the 913th"
        );
    }
    println!("accounts grid, page 20 of 1000 accounts: {best:?} (best of 5, debug build)");
    assert!(best < Duration::from_millis(50), "{best:?}");
    let last = get(&app, &session, "/console?page=21")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(last.matches("class=\"tile\"").count(), 1000 - 20 * 48);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_from_the_callbacks_page_by_its_owner_only() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = AppId::parse(Some(app.new_account(&token).await)).unwrap();
    let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
    let repo = &app.state.repo;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    // Nobody listens on the discard port; an event past its maximum age is
    // given up after its first attempt.
    repo.set_callback_url(owner, "http://127.0.0.1:9/callback", now)
        .await
        .unwrap();
    let wxid = Wxid::generate();
    let id = repo
        .enqueue_event(&NewEvent::offline(owner, &app_id, &wxid, now - 30 * 86_400))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while repo.find_event(id).await.unwrap().unwrap().state != OutboxState::Failed {
        assert!(Instant::now() < deadline, "the dispatcher gave it up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (session, _) = sign_in(&app, &token).await;
    let page = get(&app, &session, "/console/callbacks")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("http://127.0.0.1:9/callback"));
    assert!(
        page.contains("失败") && page.contains("无法连接回调地址"),
        "{page}"
    );
    let retry = format!("/console/callbacks/{id}/retry");
    assert!(page.contains(&retry));

    // Another token's session cannot retry it.
    let intruder = app.new_token().await;
    let (other, _) = sign_in(&app, &intruder).await;
    let other_csrf = csrf_in(&get(&app, &other, "/console").await.text().await.unwrap());
    let answer = client()
        .post(app.url(&retry))
        .header("cookie", format!("gewe_console={other}"))
        .form_of(&[("csrf", other_csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.text().await.unwrap().contains("该回调无法重试"));
    assert_eq!(
        repo.find_event(id).await.unwrap().unwrap().state,
        OutboxState::Failed
    );

    let answer = client()
        .post(app.url(&retry))
        .header("cookie", format!("gewe_console={session}"))
        .form_of(&[("csrf", csrf_in(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let event = repo.find_event(id).await.unwrap().unwrap();
    assert!(event.age_from >= now, "a fresh retry window: {event:?}");
}

const OPERATOR_KEY: &str = "operator-key-for-console-tests-0123";

async fn spawn_operated() -> TestApp {
    spawn_app_with(Setup {
        tweak: |s| s.operator_key = Some(OPERATOR_KEY.into()),
        ..Setup::default()
    })
    .await
}

/// Posts the sign-in form with one field (`token` or `operator_key`) the way a
/// browser does; answers the raw answer.
async fn try_sign_in(app: &TestApp, field: &str, value: &str) -> reqwest::Response {
    let client = client();
    let form = client.get(app.url("/console/login")).send().await.unwrap();
    let pre = cookie_value(&set_cookies(form.headers()), "gewe_console_pre")
        .unwrap()
        .to_owned();
    let csrf = csrf_in(&form.text().await.unwrap());
    client
        .post(app.url("/console/login"))
        .header("cookie", format!("gewe_console_pre={pre}"))
        .form_of(&[(field, value), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

async fn operator_session(app: &TestApp) -> String {
    let answer = try_sign_in(app, "operator_key", OPERATOR_KEY).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    cookie_value(&set_cookies(answer.headers()), "gewe_console")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_operator_key_signs_in_as_the_operator_who_sees_every_tokens_accounts() {
    let app = spawn_operated().await;
    let (a, b) = (app.new_token().await, app.new_token().await);
    let (app_a, app_b) = (app.new_account(&a).await, app.new_account(&b).await);
    let session = operator_session(&app).await;
    let grid = get(&app, &session, "/console").await;
    assert_eq!(grid.status(), StatusCode::OK);
    let grid = grid.text().await.unwrap();
    assert!(grid.contains(&format!("/console/a/{app_a}")), "{grid}");
    assert!(grid.contains(&format!("/console/a/{app_b}")), "{grid}");
    assert!(grid.contains("令牌: "), "owners shown");
    assert!(grid.contains("/console/journal"), "operator nav");
    for path in [
        format!("/console/a/{app_b}"),
        "/console/journal".into(),
        "/console/faults".into(),
        "/console/inject".into(),
    ] {
        assert_eq!(
            get(&app, &session, &path).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn operator_sign_in_refuses_a_wrong_key_and_a_gewe_token_and_vice_versa() {
    let app = spawn_operated().await;
    let token = app.new_token().await;
    let wrong = try_sign_in(&app, "operator_key", "not-the-operator-key-at-all").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_value(&set_cookies(wrong.headers()), "gewe_console").is_none());
    let as_key = try_sign_in(&app, "operator_key", &token).await;
    assert_eq!(as_key.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_value(&set_cookies(as_key.headers()), "gewe_console").is_none());
    // The operator key is no GeWe token: not in the console's token form…
    let as_token = try_sign_in(&app, "token", OPERATOR_KEY).await;
    assert_eq!(as_token.status(), StatusCode::UNAUTHORIZED);
    // … nor on the GeWe API.
    let answer: serde_json::Value = app
        .client
        .post(app.url("/v2/api/personal/getProfile"))
        .header("X-GEWE-TOKEN", OPERATOR_KEY)
        .json(&json!({"appId": "wx_whatever"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(answer["ret"], 200, "{answer}");

    // With the operator API off there is no operator form, and no operator.
    let off = spawn_app().await;
    let form = client()
        .get(off.url("/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!form.contains("operator_key"));
    let refused = try_sign_in(&off, "operator_key", OPERATOR_KEY).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_sessions_get_403_on_operator_pages() {
    let app = spawn_operated().await;
    let token = app.new_token().await;
    let (session, _) = sign_in(&app, &token).await;
    let grid = get(&app, &session, "/console").await.text().await.unwrap();
    assert!(!grid.contains("/console/journal"), "no operator nav");
    for path in ["/console/journal", "/console/faults", "/console/inject"] {
        assert_eq!(
            get(&app, &session, path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let csrf = csrf_in(&grid);
    for (path, form) in [
        ("/console/faults", vec![("preset", "risk-control")]),
        ("/console/faults/clear", vec![]),
        (
            "/console/inject",
            vec![("app_id", "wx_x"), ("content", "hi")],
        ),
    ] {
        let mut pairs = form;
        pairs.push(("csrf", csrf.as_str()));
        let answer = client()
            .post(app.url(path))
            .header("cookie", format!("gewe_console={session}"))
            .form_of(&pairs)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let rules: serde_json::Value = app
        .client
        .post(app.url("/operator/listFaults"))
        .header("X-GEWE-OPERATOR-KEY", OPERATOR_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rules["data"]["rules"], json!([]), "{rules}");
}
