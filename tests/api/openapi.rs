use std::path::Path;

use serde_json::Value;

use crate::helpers::spawn_app;

const SNAPSHOT: &str = "tests/snapshots/openapi.json";

/// Any change to the wire contract shows up in review as a diff of this file.
/// After an intended change: `UPDATE_SNAPSHOTS=1 cargo test --test api openapi`.
#[tokio::test]
async fn the_generated_document_matches_the_snapshot() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == pretty,
        "{SNAPSHOT} is out of date; review the change and rerun with UPDATE_SNAPSHOTS=1"
    );
}

#[tokio::test]
async fn every_gewe_route_is_documented_under_both_prefixes() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for route in [
        "tools/getTokenId",
        "personal/getProfile",
        "personal/updateHeadImg",
    ] {
        for prefix in crate::helpers::PREFIXES {
            let path = format!("{prefix}/{route}");
            assert!(doc["paths"][&path]["post"].is_object(), "{path} missing");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["X-GEWE-TOKEN"],
        serde_json::json!({"type": "apiKey", "in": "header", "name": "X-GEWE-TOKEN",
            "description": "The token from tools/getTokenId or `gewe token create`"})
    );
}

/// Swagger UI's page and assets come from the binary: no network needed.
#[tokio::test]
async fn the_docs_page_is_served_with_its_assets() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page must not load anything from the internet"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.unwrap();
        assert!(body.len() > 100, "{asset}");
        if asset == "swagger-initializer.js" {
            assert!(body.contains("/openapi.json"), "{body}");
        }
    }
}
