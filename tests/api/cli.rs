use std::process::Command;

use crate::pictures::{jpeg_with_orientation, two_tone};

fn run(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gewe"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GEWE_DATABASE_URL")
        .envs(crate::services::backend_env(data_dir))
        .output()
        .expect("gewe runs")
}

/// Runs `gewe`, expecting success; returns its stdout.
fn gewe(data_dir: &std::path::Path, args: &[&str]) -> String {
    let output = run(data_dir, args);
    assert!(
        output.status.success(),
        "gewe {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `gewe`, expecting failure; returns its stderr.
fn gewe_fails(data_dir: &std::path::Path, args: &[&str]) -> String {
    let output = run(data_dir, args);
    assert!(!output.status.success(), "gewe {args:?} should fail");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn token_and_account_commands_print_only_what_was_made() {
    let dir = tempfile::tempdir().unwrap();
    let token = gewe(dir.path(), &["token", "create", "--label", "ci"]);
    let token = token.trim_end();
    assert_eq!(token.len(), 32, "{token:?}");

    let app_id = gewe(
        dir.path(),
        &[
            "account",
            "create",
            "--token",
            token,
            "--wxid",
            "wxid_cli_test",
            "--nickname",
            "测试",
        ],
    );
    let app_id = app_id.trim_end();
    assert!(
        app_id.starts_with("wx_") && app_id.len() == 24,
        "{app_id:?}"
    );

    let listing = gewe(dir.path(), &["account", "list", "--token", token]);
    assert_eq!(listing, format!("{app_id}\twxid_cli_test\t测试\n"));

    let other = gewe(dir.path(), &["token", "create"]);
    assert_eq!(
        gewe(
            dir.path(),
            &["account", "list", "--token", other.trim_end()]
        ),
        ""
    );
}

#[test]
fn unknown_tokens_and_taken_wxids_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = "0123456789abcdef0123456789abcdef";
    let stderr = gewe_fails(dir.path(), &["account", "create", "--token", unknown]);
    assert!(stderr.contains("unknown token"), "{stderr}");

    let token = gewe(dir.path(), &["token", "create"]);
    let create = [
        "account",
        "create",
        "--token",
        token.trim_end(),
        "--wxid",
        "wxid_twice",
    ];
    gewe(dir.path(), &create);
    let stderr = gewe_fails(dir.path(), &create);
    assert!(stderr.contains("wxid_twice"), "{stderr}");
}

#[test]
fn image_render_writes_the_five_variants() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jpg");
    std::fs::write(
        &input,
        jpeg_with_orientation(two_tone(900, 600, [255, 0, 0], [0, 0, 255]), 6),
    )
    .unwrap();
    let out = dir.path().join("out");
    let report = gewe(
        dir.path(),
        &[
            "image",
            "render",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(report.lines().count(), 5, "{report}");
    for (name, side) in [("0", 600), ("132", 132), ("96", 96), ("64", 64), ("46", 46)] {
        let picture = image::open(out.join(format!("{name}.jpg"))).unwrap();
        assert_eq!((picture.width(), picture.height()), (side, side), "{name}");
    }

    let bad = dir.path().join("page.jpg");
    std::fs::write(&bad, b"<html><body>not a picture</body></html>").unwrap();
    let stderr = gewe_fails(
        dir.path(),
        &[
            "image",
            "render",
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(stderr.contains("image-unsupported-format"), "{stderr}");
}

/// The CLI works on the data dir of a running server, and the server sees its
/// changes at once.
#[tokio::test]
async fn the_cli_and_a_running_server_share_the_data_dir() {
    let app = crate::helpers::spawn_app().await;
    let data_dir = app.data_dir.clone();
    let token = tokio::task::spawn_blocking(move || gewe(&data_dir, &["token", "create"]))
        .await
        .unwrap();
    let token = token.trim_end().to_owned();
    let data_dir = app.data_dir.clone();
    let args_token = token.clone();
    let app_id = tokio::task::spawn_blocking(move || {
        gewe(
            &data_dir,
            &[
                "account",
                "create",
                "--token",
                &args_token,
                "--nickname",
                "并发",
            ],
        )
    })
    .await
    .unwrap();
    let profile = app.profile(&token, app_id.trim_end()).await;
    assert_eq!(profile["nickName"], "并发");
    let big = profile["bigHeadImgUrl"].as_str().unwrap();
    assert_eq!(app.client.get(big).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn account_show_prints_profile_privacy_settings_and_login_devices() {
    // The server first: it attaches the test backend to the data dir the CLI uses.
    let app = crate::helpers::spawn_app().await;
    let data_dir = app.data_dir.clone();
    let cli = move |args: Vec<String>| {
        let data_dir = data_dir.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                gewe(&data_dir, &args)
            })
            .await
            .unwrap()
            .trim_end()
            .to_owned()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let token = cli(args(&["token", "create"])).await;
    let app_id = cli(args(&[
        "account",
        "create",
        "--token",
        &token,
        "--nickname",
        "小助手",
    ]))
    .await;
    for (option, open) in [(4, false), (39, true)] {
        let envelope = app
            .call(
                "/gewe/v2/api/personal/privacySettings",
                Some(&token),
                serde_json::json!({"appId": app_id, "option": option, "open": open}),
            )
            .await;
        assert_eq!(envelope["ret"], 200, "{envelope}");
    }

    let shown = cli(args(&["account", "show", &app_id, "--token", &token])).await;
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines.contains(&format!("appId\t{app_id}").as_str()),
        "{shown}"
    );
    assert!(lines.contains(&"nickName\t小助手"), "{shown}");
    assert!(
        lines.iter().any(|l| l.starts_with("wxid\twxid_")),
        "{shown}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("privacy\t4\tclosed\t")),
        "{shown}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("privacy\t39\topen\t")),
        "{shown}"
    );
    let devices: Vec<_> = lines.iter().filter(|l| l.starts_with("device\t")).collect();
    assert_eq!(devices.len(), 1, "{shown}");
    assert!(devices[0].contains("\tiPad\tiPad iOS17.2\t"), "{shown}");

    // Another token's account does not exist for this one.
    let other = cli(args(&["token", "create"])).await;
    let data_dir = app.data_dir.clone();
    let err = tokio::task::spawn_blocking(move || {
        gewe_fails(&data_dir, &["account", "show", &app_id, "--token", &other])
    })
    .await
    .unwrap();
    assert!(err.contains("not found"), "{err}");
}
