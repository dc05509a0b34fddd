//! Connections that never finish: the real binary under a low hard open-files
//! limit (it raises its soft limit only that far), with timeouts of a couple of
//! seconds. Stalled clients beyond what the process can hold must not make it
//! stop answering for good, and SIGTERM must end it even while a client trickles.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::Server;

/// Small enough that the stalled connections below exhaust it several times over.
const OPEN_FILES: u64 = 96;
const STALLED: usize = 150;

const TIMEOUTS: &[(&str, &str)] = &[
    ("GEWE_HEADER_TIMEOUT_MS", "2000"),
    ("GEWE_BODY_TIMEOUT_MS", "2000"),
];

/// Opens `count` connections that each send `prefix` and then nothing more.
/// Connections the server refuses at once are counted but not kept.
async fn stall(base: &str, count: usize, prefix: &[u8]) -> Vec<TcpStream> {
    let addr = base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..count {
        if let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await
            && stream.write_all(prefix).await.is_ok()
        {
            held.push(stream);
        }
    }
    held
}

/// Polls `/healthz` until it answers; how long that took, if within `limit`.
async fn answered_within(server: &Server, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let attempt = server
            .client
            .get(format!("{}/healthz", server.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if matches!(attempt, Ok(r) if r.status() == 200) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test]
async fn half_sent_headers_are_dropped_and_the_server_answers_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_open_files(dir.path(), TIMEOUTS, Some(OPEN_FILES)).await;
    let stalled = stall(
        &server.base,
        STALLED,
        b"GET /healthz HTTP/1.1\r\nHost: gewe\r\nX-Slow: ",
    )
    .await;
    assert!(!stalled.is_empty());
    // Without a header deadline the held connections would keep every slot for
    // as long as the clients like; with it, they are dropped after ~2 s.
    let waited = answered_within(&server, Duration::from_secs(30)).await;
    assert!(
        waited.is_some(),
        "no answer while {} stalled connections are held",
        stalled.len()
    );
    assert!(server.running(), "the server exited");
    drop(stalled);
    server.kill();
}

#[tokio::test]
async fn trickled_bodies_are_cut_off_and_the_server_answers_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_open_files(dir.path(), TIMEOUTS, Some(OPEN_FILES)).await;
    // A real token, so the handler gets as far as reading the body.
    let token = server.new_token().await;
    let upload = format!(
        "POST /v2/api/login/deviceList HTTP/1.1\r\nHost: gewe\r\nX-GEWE-TOKEN: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"a\":"
    );
    let stalled = stall(&server.base, STALLED, upload.as_bytes()).await;
    assert!(!stalled.is_empty());
    let waited = answered_within(&server, Duration::from_secs(30)).await;
    assert!(
        waited.is_some(),
        "no answer while {} trickling uploads are held",
        stalled.len()
    );
    assert!(server.running(), "the server exited");
    drop(stalled);
    server.kill();
}

#[tokio::test]
async fn sigterm_ends_the_process_even_while_a_client_trickles() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GEWE_BODY_TIMEOUT_MS", "600000"),
        ("GEWE_HEADER_TIMEOUT_MS", "600000"),
        ("GEWE_SHUTDOWN_GRACE_MS", "1000"),
    ];
    let mut server = Server::start(dir.path(), &env).await;
    let token = server.new_token().await;
    let upload = format!(
        "POST /v2/api/login/deviceList HTTP/1.1\r\nHost: gewe\r\nX-GEWE-TOKEN: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    let mut trickler = stall(&server.base, 1, upload.as_bytes()).await;
    let mut stream = trickler.pop().expect("connected");
    let keep_trickling = tokio::spawn(async move {
        for _ in 0..300 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let exited = tokio::task::spawn_blocking(move || {
        let exited = server.exited_within(Duration::from_secs(15));
        if !exited {
            server.kill();
        }
        exited
    })
    .await
    .unwrap();
    keep_trickling.abort();
    assert!(exited, "SIGTERM did not end the process within 15 s");
}
