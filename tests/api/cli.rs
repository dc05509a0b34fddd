use std::process::Command;

use crate::pictures::{jpeg_with_orientation, two_tone};

fn run(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gewe"));
    command.args(args);
    // `image render` reads no data, so it takes no data options.
    if args.first() != Some(&"image") {
        command.arg("--data-dir").arg(data_dir);
    }
    command
        .env_remove("GEWE_DATABASE_URL")
        .env_remove("GEWE_DATA_DIR")
        .env_remove("GEWE_TOKEN")
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
    gewe(dir.path(), &["token", "create"]);
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

/// Runs `gewe` with extra environment and standard input.
fn run_with(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_gewe"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GEWE_DATABASE_URL")
        .env_remove("GEWE_DATA_DIR")
        .env_remove("GEWE_TOKEN")
        .envs(crate::services::backend_env(data_dir))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("gewe runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn commands_that_read_data_create_none_and_say_where_they_looked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("elsewhere");
    let token = "0123456789abcdef0123456789abcdef";
    for args in [
        &["account", "create", "--token", token][..],
        &["account", "list", "--token", token],
        &["account", "kick", "wx_0123456789abcdef012345"],
        &["token", "list"],
        &["token", "revoke", "1"],
        &["callbacks", "list", "--token", token],
        &["callbacks", "retry", "1"],
        &["login", "confirm", "some-uuid"],
    ] {
        let stderr = gewe_fails(&missing, args);
        assert!(stderr.contains("no database at"), "{args:?}: {stderr}");
        assert!(stderr.contains("creates none"), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("data folder {}", missing.display())),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
        assert_eq!(
            stderr.matches("data folder").count(),
            1,
            "{args:?}: {stderr}"
        );
    }
    // Those that may start from nothing still do.
    gewe(&missing, &["token", "create"]);
    assert!(missing.join("gewe.db").exists());
    // Every error names the database and the data folder in use.
    let stderr = gewe_fails(&missing, &["account", "list", "--token", token]);
    assert!(stderr.contains("unknown token"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "(database sqlite://{}, data folder {})",
            missing.join("gewe.db").display(),
            missing.display()
        )),
        "{stderr}"
    );
}

#[test]
fn broken_data_gets_one_plain_sentence() {
    let dir = tempfile::tempdir().unwrap();
    // --data-dir names a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let stderr = gewe_fails(&file, &["token", "create"]);
    assert!(
        stderr.contains(&format!(
            "the data folder {} is a file, not a folder",
            file.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("is a file").count(), 1, "{stderr}");
    // A damaged database.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::write(damaged.join("gewe.db"), vec![0x5a; 8192]).unwrap();
    let stderr = gewe_fails(&damaged, &["token", "list"]);
    assert!(
        stderr.contains("is not a SQLite database, or it is damaged"),
        "{stderr}"
    );
    assert!(stderr.contains("gewe restore"), "{stderr}");
    assert_eq!(
        stderr.matches("is not a SQLite database").count(),
        1,
        "{stderr}"
    );
    // A PostgreSQL nobody listens for: refused at once, in words that say so.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://gewe:s3cret@127.0.0.1:{port}/gewe");
    let started = std::time::Instant::now();
    let stderr = gewe_fails(dir.path(), &["token", "create", "--database-url", &url]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "PostgreSQL at postgres://127.0.0.1:{port}/gewe refused the connection"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(!stderr.contains("timed out"), "{stderr}");
    assert_eq!(stderr.matches("refused").count(), 1, "{stderr}");
}

#[test]
fn tokens_are_listed_without_themselves_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let first = gewe(dir.path(), &["token", "create", "--label", "ci"]);
    let first = first.trim_end();
    let second = gewe(dir.path(), &["token", "create", "--label", "laptop"]);
    let second = second.trim_end();
    let listing = gewe(dir.path(), &["token", "list"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines[0], "id\tlabel\tcreated\tlast used", "{listing}");
    assert_eq!(lines.len(), 3, "{listing}");
    let columns: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split('\t').collect()).collect();
    assert_eq!(columns[0][1], "ci", "{listing}");
    assert_eq!(columns[1][1], "laptop", "{listing}");
    assert!(
        columns[0][2].ends_with('Z') && columns[0][3] == "never",
        "{listing}"
    );
    assert!(
        !listing.contains(first) && !listing.contains(second),
        "{listing}"
    );

    // A use shows up as its last use.
    gewe(dir.path(), &["account", "list", "--token", first]);
    let listing = gewe(dir.path(), &["token", "list"]);
    let used: Vec<&str> = listing.lines().nth(1).unwrap().split('\t').collect();
    assert!(used[3].ends_with(":00Z"), "{listing}");

    // Revoked: it authenticates no more, and is listed no more.
    let id = columns[0][0];
    assert_eq!(
        gewe(dir.path(), &["token", "revoke", id]),
        format!("token {id} revoked\n")
    );
    let stderr = gewe_fails(dir.path(), &["account", "list", "--token", first]);
    assert!(stderr.contains("unknown token"), "{stderr}");
    assert!(!gewe(dir.path(), &["token", "list"]).contains("\tci\t"));
    let stderr = gewe_fails(dir.path(), &["token", "revoke", id]);
    assert!(stderr.contains(&format!("no token {id}")), "{stderr}");
    gewe(dir.path(), &["account", "list", "--token", second]);
}

#[test]
fn the_token_comes_from_the_environment_or_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let token = gewe(dir.path(), &["token", "create"]);
    let token = token.trim_end();
    let from_env = run_with(
        dir.path(),
        &["account", "create", "--nickname", "环境"],
        &[("GEWE_TOKEN", token)],
        "",
    );
    assert!(
        from_env.status.success(),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    let from_stdin = run_with(
        dir.path(),
        &["account", "list", "--token", "-"],
        &[],
        &format!("{token}\n"),
    );
    assert!(
        from_stdin.status.success(),
        "{}",
        String::from_utf8_lossy(&from_stdin.stderr)
    );
    let listing = String::from_utf8(from_stdin.stdout).unwrap();
    assert!(listing.ends_with("\t环境\n"), "{listing}");
    let empty = run_with(dir.path(), &["account", "list", "--token", "-"], &[], "");
    assert!(!empty.status.success());
    // The help says where else a token may come from.
    let help = gewe(dir.path(), &["account", "list", "--help"]);
    assert!(help.contains("GEWE_TOKEN"), "{help}");
}

#[test]
fn piping_into_a_reader_that_stops_early_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        gewe(dir.path(), &["token", "create"]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_gewe"))
        .args(["token", "list", "--data-dir"])
        .arg(dir.path())
        .env_remove("GEWE_DATABASE_URL")
        .env_remove("GEWE_DATA_DIR")
        .envs(crate::services::backend_env(dir.path()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like `head -0`: the reader is gone before anything is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "{stderr}");
}

#[test]
fn image_render_refuses_what_the_server_would() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jpg");
    std::fs::write(&input, crate::pictures::jpeg(900, 600, [10, 200, 30])).unwrap();
    let out = dir.path().join("out");
    let render = |env: &[(&str, &str)], extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gewe"))
            .args(["image", "render"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let side = render(&[("GEWE_IMAGE_MAX_SIDE", "800")], &[]);
    let stderr = String::from_utf8_lossy(&side.stderr);
    assert!(!side.status.success());
    assert!(
        stderr.contains("the server would refuse this") && stderr.contains("image-too-large"),
        "{stderr}"
    );
    let bytes = render(&[("GEWE_FETCH_MAX_BYTES", "1000")], &[]);
    let stderr = String::from_utf8_lossy(&bytes.stderr);
    assert!(!bytes.status.success());
    assert!(
        stderr.contains("the server would refuse this") && stderr.contains("GEWE_FETCH_MAX_BYTES"),
        "{stderr}"
    );
    // The same settings from the same file the server would read.
    let config = dir.path().join("gewe.toml");
    std::fs::write(&config, "image_max_pixels = 1000\n").unwrap();
    let file = render(&[], &["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&file.stderr);
    assert!(stderr.contains("image-too-large"), "{stderr}");
    assert!(!out.exists(), "nothing is written for a refused picture");
    // Within the limits it renders; size 0 is the shorter side when under 640.
    assert!(render(&[], &[]).status.success());
}

#[test]
fn a_mistyped_settings_file_stops_the_command_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gewe.toml");
    std::fs::write(&config, "listn = \"127.0.0.1:2600\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gewe"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("`listn` is not a setting; did you mean `listen`?"),
        "{stderr}"
    );
}
