use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::image_host::ImageHost;
use crate::pictures::jpeg;

/// SIGTERM lets an in-flight updateHeadImg finish and be answered, then exits 0.
#[tokio::test]
async fn sigterm_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = env!("CARGO_BIN_EXE_gewe");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    };
    let token = run(&["token", "create"]);
    let app_id = run(&["account", "create", "--token", &token]);

    let mut server = Command::new(bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("GEWE_FETCH_ALLOW_NETS", "127.0.0.0/8")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = crate::helpers::http_client_builder().build().unwrap();
    for _ in 0..100 {
        if client.get(format!("{base}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let host = ImageHost::start().await;
    host.serve("slow.jpg", "image/jpeg", jpeg(300, 300, [0, 90, 180]));
    let request = client
        .post(format!("{base}/gewe/v2/api/personal/updateHeadImg"))
        .header("X-GEWE-TOKEN", &token)
        .json(&json!({"appId": app_id, "headImgUrl": format!("{}/delayed/slow.jpg", host.base)}))
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let answer: Value = in_flight
        .await
        .unwrap()
        .expect("answered, not dropped")
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"ret": 200, "msg": "操作成功"}));
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "the server is gone"
    );
}
