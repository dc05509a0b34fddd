//! Callback events survive SIGKILL: events written while the bot's receiver was
//! down are still delivered by the restarted server once it is back.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Server, create_accounts};

/// A bot's callback endpoint on loopback: answers with the status it is set to,
/// and keeps every body it was sent.
#[derive(Clone, Default)]
struct Receiver {
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn receive(State(receiver): State<Receiver>, body: String) -> StatusCode {
    if let Ok(value) = serde_json::from_str(&body) {
        receiver.bodies.lock().unwrap().push(value);
    }
    StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.status.store(200, Ordering::SeqCst);
        let app = Router::new()
            .route("/callback", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn offline_app_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["TypeName"] == "Offline")
            .map(|b| b["Appid"].as_str().unwrap_or_default().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

#[tokio::test]
async fn pending_callbacks_survive_sigkill_and_are_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GEWE_CALLBACK_RETRY_BASE_SECS", "1"),
        ("GEWE_CALLBACK_RETRY_CAP_SECS", "2"),
    ];
    let server = Server::start(dir.path(), &env).await;
    let token = server.new_token().await;
    let mut accounts = create_accounts(dir.path(), &token, 3).await;
    accounts.sort();
    let (receiver, url) = Receiver::start().await;
    let answer = server
        .call(
            "/v2/api/tools/setCallback",
            Some(&token),
            json!({"token": token, "callbackUrl": url}),
        )
        .await;
    assert_eq!(answer["ret"], 200, "{answer}");

    // The bot goes down; three devices log out meanwhile.
    receiver.status.store(503, Ordering::SeqCst);
    for app_id in &accounts {
        let answer = server
            .call(
                "/v2/api/login/logout",
                Some(&token),
                json!({"appId": app_id}),
            )
            .await;
        assert_eq!(answer["ret"], 200, "{answer}");
    }
    server.kill();

    // Back up, and a new server process on the same data.
    receiver.status.store(200, Ordering::SeqCst);
    let attempts_before = receiver.bodies.lock().unwrap().len();
    let server = Server::start(dir.path(), &env).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let mut delivered = receiver.offline_app_ids();
        delivered.dedup();
        if delivered == accounts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut delivered = receiver.offline_app_ids();
    delivered.dedup();
    assert_eq!(
        delivered, accounts,
        "every Offline reached the bot after the restart"
    );
    assert!(
        receiver.bodies.lock().unwrap().len() > attempts_before,
        "delivered by the restarted process"
    );
    server.kill();
}
