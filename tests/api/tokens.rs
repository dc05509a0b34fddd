use serde_json::json;

use crate::helpers::{PREFIXES, Setup, assert_error_detail, spawn_app, spawn_app_with};

#[tokio::test]
async fn get_token_id_issues_32_hex_tokens_under_both_prefixes() {
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
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "every call issues a new token");
}

#[tokio::test]
async fn issued_tokens_authenticate_and_are_stored_only_hashed() {
    let app = spawn_app().await;
    let token = app.new_token().await;
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
            let needle = token.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext token found in {}",
                entry.path().display()
            );
        }
    }
}

#[tokio::test]
async fn token_issuing_can_be_switched_off() {
    let app = spawn_app_with(Setup {
        token_issuing: false,
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
