//! `GET /metrics` of the real binary: valid Prometheus text (`promtool check
//! metrics`, Debian package `prometheus`, which scripts/test installs), and the
//! counters move with what the server does. One process per test, so the
//! numbers are exact.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::receiver::{Mode, Receiver};
use crate::image_host::ImageHost;
use crate::pictures::jpeg;
use crate::support::{Server, avatar_id, create_accounts};

/// The value of the series `name{labels…}` (every given label must match; others
/// may be present), or `None` if there is no such series.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let present: Vec<(&str, &str)> = label_text
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once("=\"")?;
                    Some((k, v.trim_end_matches('"')))
                })
                .collect();
            labels
                .iter()
                .all(|l| present.contains(l))
                .then(|| value.parse().ok())?
        })
}

/// `promtool check metrics` on `text`: Prometheus' own linter of the format.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool on the PATH (scripts/ensure-promtool installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- output checked:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_requests_stages_refusals_cache_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    // A failed callback is retried only after a minute: it stays pending.
    let server = Server::start(dir.path(), &[("GEWE_CALLBACK_RETRY_BASE_SECS", "60")]).await;
    let token = server.new_token().await;
    let app_id = create_accounts(dir.path(), &token, 1).await.remove(0);
    let host = ImageHost::start().await;
    let picture = host.serve("me.jpg", "image/jpeg", jpeg(200, 200, [200, 40, 40]));
    let missing = picture.replace("me.jpg", "missing.jpg");

    let done = server.update_head_img(&token, &app_id, &picture).await;
    assert_eq!(done["ret"], 200, "{done}");
    let refused = server.update_head_img(&token, &app_id, &missing).await;
    assert_eq!(refused["data"]["code"], "fetch-http-status", "{refused}");

    // The same variant twice: a cache miss, then a hit.
    let profile = server.profile(&token, &app_id).await;
    let id = avatar_id(profile["smallHeadImgUrl"].as_str().unwrap());
    for _ in 0..2 {
        let (status, _) = server
            .get(&format!("{}/mmhead/{id}/132", server.base))
            .await;
        assert_eq!(status, 200);
    }

    // A callback the bot refuses: one pending event, attempted.
    let receiver = Receiver::start(Mode::Ok).await;
    let set = server
        .call(
            "/v2/api/tools/setCallback",
            Some(&token),
            json!({"token": token, "callbackUrl": receiver.url()}),
        )
        .await;
    assert_eq!(set["ret"], 200, "{set}");
    receiver.set_mode(Mode::Status(503));
    let logout = server
        .call(
            "/v2/api/login/logout",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_eq!(logout["ret"], 200, "{logout}");
    receiver.wait_for(2, Duration::from_secs(20)).await;

    let metrics_url = format!("{}/metrics", server.base);
    // The outcome of the attempt is recorded just after the answer arrives.
    let started = Instant::now();
    let mut text = scrape(&server.client, &metrics_url).await;
    while sample(
        &text,
        "gewe_callback_attempts_total",
        &[("result", "retry")],
    )
    .is_none()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(&server.client, &metrics_url).await;
    }
    promtool_check(&text);
    println!("{text}");

    let route = "/gewe/v2/api/personal/updateHeadImg";
    let requests = |ret: &str| {
        sample(
            &text,
            "gewe_http_requests_total",
            &[("route", route), ("ret", ret), ("status", "200")],
        )
    };
    assert_eq!(requests("200"), Some(1.0), "one update answered ret 200");
    assert_eq!(requests("500"), Some(1.0), "one update answered ret 500");
    assert_eq!(
        sample(
            &text,
            "gewe_http_requests_total",
            &[
                ("route", "/mmhead/{id}/{size}"),
                ("ret", "none"),
                ("status", "200")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "gewe_http_request_duration_seconds_count",
            &[("route", route)]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "gewe_fetch_refusals_total",
            &[("code", "fetch-http-status")]
        ),
        Some(1.0)
    );
    for stage in ["fetch", "decode", "encode", "store", "commit"] {
        assert_eq!(
            sample(
                &text,
                "gewe_avatar_stage_duration_seconds_count",
                &[("stage", stage)]
            ),
            Some(1.0),
            "stage {stage}"
        );
    }
    assert_eq!(
        sample(&text, "gewe_decode_slot_wait_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&text, "gewe_decode_queue_depth", &[]), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "gewe_variant_cache_lookups_total",
            &[("result", "miss")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "gewe_variant_cache_lookups_total",
            &[("result", "hit")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "gewe_callback_outbox_events",
            &[("state", "pending")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "gewe_callback_outbox_events", &[("state", "failed")]),
        Some(0.0)
    );
    assert!(sample(&text, "gewe_callback_outbox_max_pending_attempts", &[]) >= Some(1.0));
    assert!(
        sample(
            &text,
            "gewe_callback_outbox_oldest_pending_age_seconds",
            &[]
        )
        .is_some()
    );
    assert!(
        sample(
            &text,
            "gewe_callback_attempts_total",
            &[("result", "retry")]
        ) >= Some(1.0)
    );
    // No tenant data: no token, appId, avatar id or picture address.
    for secret in [token.as_str(), app_id.as_str(), id.as_str(), "missing.jpg"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    server.kill();
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_main_one() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let metrics_addr = format!("127.0.0.1:{port}");
    let server = Server::start(
        dir.path(),
        &[("GEWE_METRICS_LISTEN", metrics_addr.as_str())],
    )
    .await;
    let (status, _) = server.get(&format!("{}/metrics", server.base)).await;
    assert_eq!(status, 404, "/metrics left the main listener");
    assert!(server.alive().await);
    let text = scrape(&server.client, &format!("http://{metrics_addr}/metrics")).await;
    promtool_check(&text);
    assert_eq!(
        sample(
            &text,
            "gewe_http_requests_total",
            &[("route", "/healthz"), ("ret", "none"), ("status", "200")]
        ),
        Some(1.0),
        "{text}"
    );
    server.kill();
}
