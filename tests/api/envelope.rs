use serde_json::{Value, json};

use crate::helpers::{PREFIXES, assert_error, assert_error_detail, spawn_app};

const ROUTES: [&str; 2] = ["personal/getProfile", "personal/updateHeadImg"];

#[tokio::test]
async fn a_missing_token_is_refused_on_every_route_and_prefix() {
    let app = spawn_app().await;
    for prefix in PREFIXES {
        for route in ROUTES {
            let envelope = app
                .call(&format!("{prefix}/{route}"), None, json!({"appId": "wx_x"}))
                .await;
            assert_eq!(
                envelope,
                json!({"ret": 500, "msg": "header:X-GEWE-TOKEN 不可为空"})
            );
            let empty = app
                .call(&format!("{prefix}/{route}"), Some(""), json!({}))
                .await;
            assert_error(&empty, "header:X-GEWE-TOKEN 不可为空");
        }
    }
}

#[tokio::test]
async fn an_unknown_token_is_refused_without_echoing_it() {
    let app = spawn_app().await;
    for prefix in PREFIXES {
        for route in ROUTES {
            for token in [
                "0123456789abcdef0123456789abcdef",
                "not-a-token-secret-value",
            ] {
                let envelope = app
                    .call(
                        &format!("{prefix}/{route}"),
                        Some(token),
                        json!({"appId": "wx_x"}),
                    )
                    .await;
                assert_eq!(envelope["ret"], 500);
                let msg = envelope["msg"].as_str().unwrap();
                assert!(msg.contains("X-GEWE-TOKEN 不可用或已过期"), "{msg}");
                assert!(
                    !envelope.to_string().contains(token),
                    "token echoed: {envelope}"
                );
            }
        }
    }
}

#[tokio::test]
async fn bad_bodies_get_an_envelope_that_names_the_problem() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let path = app.url("/v2/api/personal/getProfile");
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(&path)
            .header("X-GEWE-TOKEN", &token)
            .header("content-type", content_type)
            .body(body)
    };

    let malformed = app
        .envelope(send(b"{\"appId\":".to_vec(), "application/json"))
        .await;
    assert_error_detail(&malformed, "请求体不是合法的JSON", "EOF");

    let wrong_type = app
        .envelope(send(br#"{"appId":123}"#.to_vec(), "application/json"))
        .await;
    assert_error_detail(&wrong_type, "appId类型错误", "expected a string");

    let not_object = app
        .envelope(send(b"[1,2]".to_vec(), "application/json"))
        .await;
    assert_error_detail(&not_object, "请求参数错误", "JSON对象");

    let missing = app.envelope(send(b"{}".to_vec(), "application/json")).await;
    assert_eq!(missing, json!({"ret": 500, "msg": "appId不可为空"}));

    let null = app
        .envelope(send(br#"{"appId":null}"#.to_vec(), "application/json"))
        .await;
    assert_eq!(null, json!({"ret": 500, "msg": "appId不可为空"}));

    let mut huge = br#"{"appId":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend_from_slice(br#""}"#);
    let too_large = app.envelope(send(huge, "application/json")).await;
    assert_error_detail(&too_large, "请求体过大", "64KiB");

    let form = app
        .envelope(send(
            b"appId=wx_1".to_vec(),
            "application/x-www-form-urlencoded",
        ))
        .await;
    assert_error_detail(&form, "Content-Type错误", "application/json");

    let odd_app_id = app
        .envelope(send(
            json!({"appId": "wx_\u{0}/../x"}).to_string().into_bytes(),
            "application/json",
        ))
        .await;
    assert_error_detail(&odd_app_id, "appId格式错误", "appId");
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_charset_parameters_accepted() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let envelope = app
        .envelope(
            app.client
                .post(app.url("/gewe/v2/api/personal/getProfile"))
                .header("X-GEWE-TOKEN", &token)
                .header("content-type", "application/json;charset=UTF-8")
                .body(json!({"appId": app_id, "proxyIp": "", "regionId": "320000"}).to_string()),
        )
        .await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
}

#[tokio::test]
async fn unknown_paths_are_404_and_every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/gewe/v2/api/personal/noSuchAction"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));

    let response = app
        .client
        .post(app.url("/v2/api/tools/getTokenId"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc_123");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn another_tenants_device_looks_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let alice = app.new_token().await;
    let bob = app.new_token().await;
    let alices_device = app.new_account(&alice).await;
    let nobodys_device = "wx_AAAAAAAAAAAAAAAAAAAAA";

    for prefix in PREFIXES {
        let answer = |app_id: &str| {
            let app_id = app_id.to_owned();
            let path = format!("{prefix}/personal/getProfile");
            let app = &app;
            let bob = &bob;
            async move { app.call(&path, Some(bob), json!({ "appId": app_id })).await }
        };
        let foreign: Value = answer(&alices_device).await;
        let missing: Value = answer(nobodys_device).await;
        assert_eq!(
            foreign,
            json!({"ret": 500, "msg": "获取个人资料失败", "data": {"code": "-1", "msg": format!("[{alices_device}]设备不存在")}})
        );
        assert_eq!(
            missing,
            json!({"ret": 500, "msg": "获取个人资料失败", "data": {"code": "-1", "msg": format!("[{nobodys_device}]设备不存在")}})
        );
    }
}

/// Readiness names the dependency that does not answer: here a blob folder that
/// became a file under the running server (the folder backend only).
#[tokio::test]
async fn readiness_names_the_blob_store_when_it_does_not_answer() {
    if crate::services::backend() != crate::services::Backend::Local {
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let blobs = app.data_dir.join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a folder").unwrap();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let report = response.text().await.unwrap();
    assert!(report.starts_with("blob store: "), "{report}");
    assert!(!report.contains("database"), "{report}");
}
