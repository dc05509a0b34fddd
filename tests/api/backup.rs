//! `gewe backup` while the server runs, `gewe restore` into an empty data dir:
//! every account, history row and avatar byte comes back identical. The
//! embedded default only (SQLite + blob folder).

use std::process::Command;

use gewe_server::domain::AvatarSize;

use crate::common::db::Db;
use crate::helpers::{Setup, spawn_app, spawn_app_with};
use crate::image_host::ImageHost;
use crate::pictures::jpeg;
use crate::services::{self, Backend};

fn gewe(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gewe"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GEWE_DATABASE_URL")
        .env_remove("GEWE_STORAGE")
        .output()
        .expect("gewe runs")
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_byte_identical() {
    if services::backend() != Backend::Local {
        return;
    }
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let mut accounts = Vec::new();
    for i in 0..3u8 {
        let app_id = app.new_account(&token).await;
        for k in 0..2u8 {
            let url = host.serve(
                &format!("{i}-{k}.jpg"),
                "image/jpeg",
                jpeg(80, 80, [i * 70, k * 100, 30]),
            );
            assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
        }
        accounts.push(app_id);
    }

    // The server keeps running (and serving) while the copy is taken.
    let backup_dir = tempfile::tempdir().unwrap();
    let target = backup_dir.path().join("copy");
    let output = gewe(&app.data_dir, &["backup", target.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("9 avatars (45 files)"));

    let restored_dir = tempfile::tempdir().unwrap();
    let output = gewe(restored_dir.path(), &["restore", target.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Restoring over data is refused.
    let again = gewe(restored_dir.path(), &["restore", target.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty data dir"));

    let restored = spawn_app_with(Setup {
        data_dir: Some(restored_dir.path().to_owned()),
        ..Setup::default()
    })
    .await;
    let (before, after) = (
        Db::open(&app.data_dir).await,
        Db::open(restored_dir.path()).await,
    );
    assert_eq!(before.columns().await, after.columns().await);
    assert_eq!(before.avatar_ids().await, after.avatar_ids().await);
    for app_id in &accounts {
        assert_eq!(before.history(app_id).await, after.history(app_id).await);
        let (old, new) = (
            app.profile(&token, app_id).await,
            restored.profile(&token, app_id).await,
        );
        let path = |profile: &serde_json::Value| {
            let url = profile["bigHeadImgUrl"].as_str().unwrap();
            url[url.find("/mmhead/").unwrap()..].to_owned()
        };
        assert_eq!(path(&old), path(&new));
        assert_eq!(old["nickName"], new["nickName"]);
        assert_eq!(old["wxid"], new["wxid"]);
    }
    for id in before.avatar_ids().await {
        for size in AvatarSize::ALL {
            let path = format!("/mmhead/{id}/{}", size.label());
            let old = app
                .client
                .get(app.url(&path))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let new = restored
                .client
                .get(restored.url(&path))
                .send()
                .await
                .unwrap();
            assert_eq!(new.status(), 200, "{path}");
            assert!(new.bytes().await.unwrap() == old, "{path} differs");
        }
    }
}
