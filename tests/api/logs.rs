//! The log says what failed: every GeWe call's finish line carries the route,
//! `ret` and `data.code` (WARN when `ret` is 500), and never the token or the
//! picture's bytes. Logs are captured in-process: this test runs on a
//! current-thread runtime, so the server's tasks log through the subscriber set
//! as this thread's default.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{Setup, ask_subscribers_every_time, spawn_app, spawn_app_with};
use crate::image_host::ImageHost;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The JSON finish lines of requests to routes ending in `route_suffix`.
    fn finished(&self, route_suffix: &str) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| {
                entry["fields"]["message"] == "request finished"
                    && entry["fields"]["route"]
                        .as_str()
                        .is_some_and(|r| r.ends_with(route_suffix))
            })
            .collect()
    }
}

#[tokio::test]
async fn finish_lines_name_route_ret_and_code_and_never_the_token_or_the_picture() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    ask_subscribers_every_time();
    let _default = tracing::subscriber::set_default(subscriber);

    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;

    // A wrong token: GeWe answers without `data`, the log still names why.
    let wrong = "0123456789abcdef0123456789abcdef";
    let answer = app
        .call(
            "/gewe/v2/api/personal/getProfile",
            Some(wrong),
            json!({ "appId": app_id }),
        )
        .await;
    assert_eq!(answer["ret"], 500, "{answer}");
    let lines = captured.finished("/personal/getProfile");
    assert_eq!(lines.len(), 1, "{}", captured.text());
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(
        lines[0]["fields"]["route"],
        "/gewe/v2/api/personal/getProfile"
    );
    assert_eq!(lines[0]["fields"]["ret"], 500);
    assert_eq!(lines[0]["fields"]["code"], "token-unknown");

    // Not a picture: data.code in the line, the bytes nowhere.
    let marker = "not-a-picture-marker-7c1f";
    let page = host.serve(
        "page.jpg",
        "image/jpeg",
        format!("<html><body>{marker}</body></html>").into_bytes(),
    );
    let answer = app.update_head_img(&token, &app_id, &page).await;
    assert_eq!(answer["ret"], 500, "{answer}");
    let code = answer["data"]["code"].as_str().unwrap().to_owned();
    // A closed port on loopback.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/me.jpg")
    };
    let refused = app.update_head_img(&token, &app_id, &closed).await;
    assert_eq!(refused["ret"], 500, "{refused}");

    let lines = captured.finished("/personal/updateHeadImg");
    assert_eq!(lines.len(), 2, "{}", captured.text());
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["fields"]["ret"], 500);
    assert_eq!(lines[0]["fields"]["code"], code.as_str());
    assert_eq!(lines[1]["level"], "WARN");
    assert_eq!(lines[1]["fields"]["code"], refused["data"]["code"]);
    assert!(lines[1]["fields"]["detail"].is_string(), "{}", lines[1]);

    // Success stays INFO, with ret 200.
    app.profile(&token, &app_id).await;
    let lines = captured.finished("/personal/getProfile");
    assert_eq!(lines.len(), 2, "{}", captured.text());
    assert_eq!(lines[1]["level"], "INFO");
    assert_eq!(lines[1]["fields"]["ret"], 200);

    let all = captured.text();
    assert!(!all.contains(&token), "the token leaked into the log");
    assert!(!all.contains(wrong), "the wrong token leaked into the log");
    assert!(
        !all.contains(marker),
        "the picture's bytes leaked into the log"
    );
}

#[tokio::test]
async fn the_root_page_links_the_docs_and_the_console() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        response.headers()
    );
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"href="/docs""#), "{page}");
    assert!(page.contains(r#"href="/console""#), "{page}");
}

#[tokio::test]
async fn the_start_line_names_the_data_and_a_loopback_public_url_beyond_loopback_is_warned_about() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(captured.clone())
        .finish();
    ask_subscribers_every_time();
    let _default = tracing::subscriber::set_default(subscriber);

    // Listening on every address (nothing is sent to it), links on loopback.
    let app = spawn_app_with(Setup {
        tweak: |s| s.listen = "0.0.0.0:0".parse().unwrap(),
        ..Setup::default()
    })
    .await;
    let lines = || {
        captured
            .text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !lines()
        .iter()
        .any(|l| l["fields"]["code"] == "public-url-loopback")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning: {}",
            captured.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let all = lines();
    let warning = all
        .iter()
        .find(|l| l["fields"]["code"] == "public-url-loopback")
        .unwrap();
    assert_eq!(warning["level"], "WARN");
    let text = warning["fields"]["message"].as_str().unwrap();
    assert!(text.contains("GEWE_PUBLIC_URL"), "{text}");
    let start = all
        .iter()
        .find(|l| l["fields"]["message"] == "gewe-server listening")
        .unwrap();
    assert!(start["fields"]["database"].is_string(), "{start}");
    let data_dir = start["fields"]["data_dir"].as_str().unwrap();
    assert!(
        std::path::Path::new(data_dir).ends_with(app.data_dir.file_name().unwrap()),
        "{start}"
    );

    // On loopback, with links on loopback: no warning.
    let quiet = Captured::default();
    drop(_default);
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(quiet.clone())
        .finish();
    ask_subscribers_every_time();
    let _default = tracing::subscriber::set_default(subscriber);
    let _local = spawn_app().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        quiet.text().contains("gewe-server listening"),
        "{}",
        quiet.text()
    );
    assert!(
        !quiet.text().contains("public-url-loopback"),
        "{}",
        quiet.text()
    );
}

#[tokio::test]
async fn avatar_reads_answered_ahead_of_the_router_keep_their_request_id_and_route() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    ask_subscribers_every_time();
    let _default = tracing::subscriber::set_default(subscriber);

    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let small = app.profile(&token, &app_id).await["smallHeadImgUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = &small[small.find("/mmhead/").unwrap()..];
    let id = path.split('/').nth(2).unwrap().to_owned();
    // The plain path (answered ahead of the router) and the same avatar with
    // its id's first character percent-encoded (left to the router) answer the
    // same bytes, each with the caller's request id, each logged by route.
    let encoded = format!("/mmhead/%{:02X}{}/132", id.as_bytes()[0], &id[1..]);
    let mut bodies = Vec::new();
    for (i, path) in [path.to_owned(), encoded].iter().enumerate() {
        let request_id = format!("avatar-read-{i}");
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .header("x-request-id", &request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-request-id"], request_id.as_str());
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        bodies.push(response.bytes().await.unwrap());
        let line = captured
            .finished("/mmhead/{id}/{size}")
            .into_iter()
            .find(|line| line["span"]["id"] == request_id.as_str());
        let line = line.unwrap_or_else(|| panic!("no finish line for {path}: {}", captured.text()));
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["status"], 200);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert!(bodies[0].starts_with(&[0xFF, 0xD8]));

    // HEAD: the headers of GET, no body.
    let head = app
        .client
        .head(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bodies[0].len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
}
