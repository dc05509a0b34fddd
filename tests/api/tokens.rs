use std::time::Duration;

use gewe_server::config::{Settings, TokenIssuing};
use gewe_server::domain::Clock;
use serde_json::json;

use crate::helpers::{PREFIXES, Setup, assert_error_detail, spawn_app, spawn_app_with};

#[tokio::test]
async fn get_token_id_answers_the_one_instance_token_under_both_prefixes() {
    let app = spawn_app().await;
    let mut seen = Vec::new();
    for prefix in PREFIXES {
        // Clients send `{}` or nothing at all.
        let with_body = app
            .call(&format!("{prefix}/tools/getTokenId"), None, json!({}))
            .await;
        let without_body = app
            .envelope(
                app.client
                    .post(app.url(&format!("{prefix}/tools/getTokenId"))),
            )
            .await;
        for envelope in [with_body, without_body] {
            assert_eq!(envelope["ret"], 200, "{envelope}");
            assert_eq!(envelope["msg"], "执行成功");
            let token = envelope["data"].as_str().unwrap().to_owned();
            assert_eq!(token.len(), 32);
            assert!(
                token
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{token}"
            );
            seen.push(token);
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "every call answers the same token: {seen:?}");
    // It is a real token, and CLI-made tokens keep working beside it.
    let instance = &seen[0];
    let cli_made = app.new_token().await;
    assert_ne!(&cli_made, instance);
    for token in [instance, &cli_made] {
        let listed = app
            .call("/v2/api/login/deviceList", Some(token), json!({}))
            .await;
        assert_eq!(listed["ret"], 200, "{listed}");
    }
}

#[tokio::test]
async fn the_instance_token_survives_a_restart_and_is_shared_by_instances() {
    let app = spawn_app().await;
    let token = app.instance_token().await;
    let app_id = app.new_account(&token).await;
    // A second instance on the same data, running at the same time.
    let twin = spawn_app_with(Setup {
        data_dir: Some(app.data_dir.clone()),
        ..Setup::default()
    })
    .await;
    assert_eq!(twin.instance_token().await, token);
    twin.stop().await;

    let (data_dir, _keep) = app.stop().await;
    let restarted = spawn_app_with(Setup {
        data_dir: Some(data_dir),
        ..Setup::default()
    })
    .await;
    assert_eq!(restarted.instance_token().await, token);
    // The device made before the restart is still the token's.
    let listed = restarted
        .call("/v2/api/login/deviceList", Some(&token), json!({}))
        .await;
    assert_eq!(listed["data"], json!([app_id]), "{listed}");
}

#[tokio::test]
async fn issued_tokens_authenticate_and_are_stored_only_hashed() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let instance = app.instance_token().await;
    let app_id = app.new_account(&token).await;
    assert_eq!(
        app.profile(&token, &app_id).await["wxid"]
            .as_str()
            .unwrap()
            .len(),
        19
    );

    let (data_dir, _keep) = app.stop().await;
    for entry in std::fs::read_dir(&data_dir).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            for needle in [token.as_bytes(), instance.as_bytes()] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "plaintext token found in {}",
                    entry.path().display()
                );
            }
        }
    }
}

#[tokio::test]
async fn per_call_issuing_makes_new_tokens_at_most_ten_a_minute_per_address() {
    let (clock, hand) = Clock::manual();
    let app = spawn_app_with(Setup {
        token_issuing: Some(TokenIssuing::PerCall),
        clock: Some(clock),
        ..Setup::default()
    })
    .await;
    let mut seen = Vec::new();
    for i in 0..10 {
        let prefix = PREFIXES[i % 2];
        let envelope = app
            .call(&format!("{prefix}/tools/getTokenId"), None, json!({}))
            .await;
        assert_eq!(envelope["ret"], 200, "{envelope}");
        seen.push(envelope["data"].as_str().unwrap().to_owned());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10, "every call issues a new token");

    let refused = app.call("/v2/api/tools/getTokenId", None, json!({})).await;
    assert_error_detail(&refused, "获取tokenId失败", "GEWE_TOKEN_ISSUING=per-call");
    assert_eq!(refused["data"]["code"], "rate-limited");

    hand.advance(Duration::from_secs(61));
    let again = app.call("/v2/api/tools/getTokenId", None, json!({})).await;
    assert_eq!(again["ret"], 200, "{again}");
}

#[tokio::test]
async fn token_issuing_can_be_switched_off() {
    let app = spawn_app_with(Setup {
        token_issuing: Some(TokenIssuing::Off),
        ..Setup::default()
    })
    .await;
    for prefix in PREFIXES {
        let envelope = app
            .call(&format!("{prefix}/tools/getTokenId"), None, json!({}))
            .await;
        assert_error_detail(&envelope, "获取tokenId失败", "gewe token create");
    }
}

#[test]
fn anonymous_issuing_is_on_by_default_only_on_loopback() {
    use gewe_server::auth::Issuing;
    use gewe_server::startup::token_issuing;
    let at = |listen: &str, mode: Option<TokenIssuing>| {
        token_issuing(&Settings {
            listen: listen.parse().unwrap(),
            token_issuing: mode,
            ..Settings::default()
        })
    };
    assert_eq!(at("127.0.0.1:2531", None), Issuing::Instance);
    assert_eq!(at("[::1]:2531", None), Issuing::Instance);
    assert_eq!(at("0.0.0.0:2531", None), Issuing::NotOnLoopback);
    assert_eq!(at("192.168.1.5:2531", None), Issuing::NotOnLoopback);
    assert_eq!(
        at("0.0.0.0:2531", Some(TokenIssuing::Instance)),
        Issuing::Instance
    );
    assert_eq!(
        at("0.0.0.0:2531", Some(TokenIssuing::PerCall)),
        Issuing::PerCall
    );
    assert_eq!(at("127.0.0.1:2531", Some(TokenIssuing::Off)), Issuing::Off);
}
