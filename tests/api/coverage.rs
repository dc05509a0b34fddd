//! Every GeWe route answers: implemented, or the not-implemented envelope under
//! both prefixes; `docs/coverage.md` says which, and matches the router.

use std::path::Path;

use serde_json::json;

use crate::helpers::{PREFIXES, spawn_app};

const COVERAGE: &str = "docs/coverage.md";

/// After registering a route: `UPDATE_SNAPSHOTS=1 cargo test --test api coverage`.
#[test]
fn docs_coverage_matches_the_router() {
    let expected = gewe_server::api::coverage_markdown();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COVERAGE);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{COVERAGE} is out of date; rerun with UPDATE_SNAPSHOTS=1"
    );
    for route in [
        "personal/getProfile",
        "personal/updateProfile",
        "personal/getQrCode",
        "personal/getSafetyInfo",
        "personal/privacySettings",
    ] {
        assert!(
            expected.contains(&format!("| `{route}` | "))
                && expected
                    .lines()
                    .any(|l| l.contains(route) && l.ends_with("| implemented |")),
            "{route}"
        );
    }
}

#[tokio::test]
async fn unimplemented_gewe_routes_say_so_under_both_prefixes() {
    let app = spawn_app().await;
    let coverage = gewe_server::api::coverage_markdown();
    let missing: Vec<&str> = coverage
        .lines()
        .filter(|l| l.ends_with("| not implemented |"))
        .map(|l| l.split('`').nth(1).unwrap())
        .collect();
    assert!(missing.contains(&"message/postImage"), "{missing:?}");
    assert!(!missing.contains(&"message/postText"), "{missing:?}");
    assert!(missing.len() > 100);
    for prefix in PREFIXES {
        for route in &missing {
            let envelope = app
                .call(
                    &format!("{prefix}/{route}"),
                    Some("any"),
                    json!({"appId": "wx_1"}),
                )
                .await;
            assert_eq!(
                envelope,
                json!({"ret": 500, "msg": format!("{route} 未实现"), "data": {
                    "code": "not-implemented",
                    "msg": format!("gewe-server does not implement {route} yet")}}),
            );
        }
    }
}

#[tokio::test]
async fn paths_outside_gewes_list_stay_plain_404s() {
    let app = spawn_app().await;
    for path in [
        "/gewe/v2/api/message/postNothing",
        "/v2/api/nosuch/route",
        "/v2/api/personal",
        "/message/postText",
        "/gewe/v2/api/personal/getProfile/extra",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_openapi_document_names_the_missing_routes_without_paths_for_them() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(description.contains("`message/postImage`"), "{description}");
    assert!(!description.contains("`message/postText`"), "{description}");
    assert!(doc["paths"].get("/gewe/v2/api/message/postImage").is_none());
    assert!(doc["paths"].get("/gewe/v2/api/message/postText").is_some());
    assert!(
        doc["paths"]
            .get("/gewe/v2/api/personal/updateProfile")
            .is_some()
    );
}
