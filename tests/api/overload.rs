//! Overload and risk control: a saturated decoder answers "busy" after a bounded
//! wait instead of queueing without end, and the optional per-account change
//! limit refuses frequent avatar changes, before any fetch, across instances.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use gewe_server::domain::Clock;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::Value;

use crate::helpers::{Setup, TestApp, blob_files, spawn_app_with};
use crate::image_host::ImageHost;
use crate::pictures::{encode, jpeg};

/// A large smooth picture: small to send, slow to decode and resize.
fn slow_picture() -> Vec<u8> {
    let image = RgbImage::from_fn(2500, 2500, |x, y| {
        Rgb([(x / 10) as u8, (y / 10) as u8, ((x + y) / 20) as u8])
    });
    encode(DynamicImage::ImageRgb8(image), ImageFormat::Png)
}

#[tokio::test]
async fn saturated_decoding_answers_busy_after_a_bounded_wait() {
    let app = spawn_app_with(Setup {
        tweak: |s| {
            s.decode_slots = 1;
            s.decode_queue_timeout_ms = 200;
            s.process_timeout_ms = 120_000;
        },
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let url = host.serve("slow.png", "image/png", slow_picture());
    let mut accounts = Vec::new();
    for _ in 0..8 {
        accounts.push(app.new_account(&token).await);
    }

    let started = Instant::now();
    let answers: Vec<(Value, Duration)> = join_all(accounts.iter().map(|app_id| {
        let (app, token, url) = (&app, &token, &url);
        async move {
            let sent = Instant::now();
            let answer = app.update_head_img(token, app_id, url).await;
            (answer, sent.elapsed())
        }
    }))
    .await;
    let total = started.elapsed();

    let mut busy = 0;
    for ((answer, took), app_id) in answers.iter().zip(&accounts) {
        if answer["ret"] == 200 {
            continue;
        }
        busy += 1;
        assert_eq!(answer["msg"], "修改头像失败", "{answer}");
        assert_eq!(answer["data"]["code"], "busy", "{answer}");
        assert!(
            answer["data"]["msg"].as_str().unwrap().contains("系统繁忙"),
            "{answer}"
        );
        // Waited for a slot, but only about the queue timeout (plus the
        // download; generous, the machine may be busy with other work).
        assert!(*took >= Duration::from_millis(200), "{took:?}");
        assert!(*took < Duration::from_secs(10), "{took:?}");
        assert_eq!(
            app.history_len(app_id).await,
            1,
            "a busy answer changed nothing"
        );
    }
    let done = answers.len() - busy;
    let slowest_done = answers
        .iter()
        .filter(|(a, _)| a["ret"] == 200)
        .map(|(_, took)| *took)
        .max();
    println!("overload: {busy} busy, {done} done (slowest {slowest_done:?}), {total:?} in all");
    assert!(
        busy >= 1,
        "one decode slot, eight slow pictures: some must be told busy"
    );
    assert!(done >= 1, "the slot holder finishes");

    // Capacity comes back: the server answers and decodes again.
    let small = host.serve("small.jpg", "image/jpeg", jpeg(64, 64, [1, 200, 1]));
    assert_eq!(
        app.update_head_img(&token, &accounts[0], &small).await["ret"],
        200
    );
}

async fn limited_app(data_dir: Option<std::path::PathBuf>) -> TestApp {
    spawn_app_with(Setup {
        data_dir,
        tweak: |s| s.avatar_change_limit = Some("3/3600".parse().unwrap()),
        ..Setup::default()
    })
    .await
}

fn assert_rate_limited(answer: &Value) {
    assert_eq!(answer["ret"], 500, "{answer}");
    assert_eq!(answer["msg"], "修改头像失败", "{answer}");
    assert_eq!(answer["data"]["code"], "rate-limited", "{answer}");
    let detail = answer["data"]["msg"].as_str().unwrap();
    assert!(detail.contains("修改头像过于频繁，请稍后再试"), "{detail}");
    assert!(detail.contains("每3600秒最多修改3次"), "{detail}");
    // "请在N秒后重试" with 0 < N <= 3600.
    let seconds: u64 = detail
        .rsplit("请在")
        .next()
        .and_then(|s| s.strip_suffix("秒后重试"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no retry time in {detail}"));
    assert!((1..=3600).contains(&seconds), "{detail}");
}

#[tokio::test]
async fn frequent_avatar_changes_are_refused_before_any_fetch() {
    let app = limited_app(None).await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let other = app.new_account(&token).await;
    let urls: Vec<String> = (0..5u8)
        .map(|i| {
            host.serve(
                &format!("{i}.jpg"),
                "image/jpeg",
                jpeg(64, 64, [i * 50, 0, 0]),
            )
        })
        .collect();

    for url in &urls[..2] {
        assert_eq!(app.update_head_img(&token, &app_id, url).await["ret"], 200);
    }
    // Resending the current picture is not a change and does not count.
    assert_eq!(
        app.update_head_img(&token, &app_id, &urls[1]).await["ret"],
        200
    );
    assert_eq!(
        app.update_head_img(&token, &app_id, &urls[2]).await["ret"],
        200
    );
    assert_eq!(app.history_len(&app_id).await, 4);

    let profile = app.profile(&token, &app_id).await;
    let blobs = blob_files(&app.data_dir);
    let hits = host.hits();
    let refused = app.update_head_img(&token, &app_id, &urls[3]).await;
    assert_rate_limited(&refused);
    assert_eq!(host.hits(), hits, "refused before any fetch");
    assert_eq!(app.profile(&token, &app_id).await, profile);
    assert_eq!(app.history_len(&app_id).await, 4);
    assert_eq!(blob_files(&app.data_dir), blobs);

    // The limit is per account.
    assert_eq!(
        app.update_head_img(&token, &other, &urls[4]).await["ret"],
        200
    );
}

/// Two servers on one database share one count: the limit is not per process.
#[tokio::test]
async fn the_change_limit_holds_across_instances_sharing_a_database() {
    let first = limited_app(None).await;
    let second = limited_app(Some(first.data_dir.clone())).await;
    let host = ImageHost::start().await;
    let token = first.new_token().await;
    let app_id = first.new_account(&token).await;
    let urls: Vec<String> = (0..4u8)
        .map(|i| {
            host.serve(
                &format!("{i}.jpg"),
                "image/jpeg",
                jpeg(64, 64, [0, i * 60, 0]),
            )
        })
        .collect();

    assert_eq!(
        first.update_head_img(&token, &app_id, &urls[0]).await["ret"],
        200
    );
    assert_eq!(
        second.update_head_img(&token, &app_id, &urls[1]).await["ret"],
        200
    );
    assert_eq!(
        first.update_head_img(&token, &app_id, &urls[2]).await["ret"],
        200
    );
    assert_rate_limited(&second.update_head_img(&token, &app_id, &urls[3]).await);
    assert_rate_limited(&first.update_head_img(&token, &app_id, &urls[3]).await);

    // Off by default: an instance without the setting does not limit.
    let unlimited = spawn_app_with(Setup {
        data_dir: Some(first.data_dir.clone()),
        ..Setup::default()
    })
    .await;
    assert_eq!(
        unlimited.update_head_img(&token, &app_id, &urls[3]).await["ret"],
        200
    );
}

/// The window slides: once the oldest change is older than the window, one more
/// change is allowed.
#[tokio::test]
async fn the_change_limit_window_slides() {
    let (clock, hand) = Clock::manual();
    let app = spawn_app_with(Setup {
        clock: Some(clock),
        tweak: |s| s.avatar_change_limit = Some("1/2".parse().unwrap()),
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let a = host.serve("a.jpg", "image/jpeg", jpeg(64, 64, [255, 0, 0]));
    let b = host.serve("b.jpg", "image/jpeg", jpeg(64, 64, [0, 0, 255]));

    assert_eq!(app.update_head_img(&token, &app_id, &a).await["ret"], 200);
    let refused = app.update_head_img(&token, &app_id, &b).await;
    assert_eq!(refused["data"]["code"], "rate-limited", "{refused}");
    hand.advance(Duration::from_secs(1));
    let still = app.update_head_img(&token, &app_id, &b).await;
    assert_eq!(still["data"]["code"], "rate-limited", "{still}");
    hand.advance(Duration::from_millis(1100));
    assert_eq!(app.update_head_img(&token, &app_id, &b).await["ret"], 200);
}

/// Downloads are bounded in number: with a budget of three times the size
/// limit, no more than three pictures are ever being downloaded at once, however
/// many updates arrive; the rest wait their turn and still succeed.
#[tokio::test]
async fn downloads_in_flight_stay_within_the_memory_budget() {
    let app = spawn_app_with(Setup {
        tweak: |s| {
            s.fetch_max_bytes = 1024 * 1024;
            s.download_budget_bytes = 3 * 1024 * 1024;
        },
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    host.serve("p.jpg", "image/jpeg", jpeg(64, 64, [0, 90, 200]));
    let url = format!("{}/delayed/p.jpg", host.base);
    let token = app.new_token().await;
    let mut accounts = Vec::new();
    for _ in 0..9 {
        accounts.push(app.new_account(&token).await);
    }
    let answers = join_all(
        accounts
            .iter()
            .map(|app_id| app.update_head_img(&token, app_id, &url)),
    )
    .await;
    for answer in &answers {
        assert_eq!(answer["ret"], 200, "{answer}");
    }
    assert_eq!(host.delayed_peak(), 3, "downloads at once");
}

/// One update per account at a time: a bot firing the same update in a loop
/// costs one download at a time, and the change limit cannot be raced past.
#[tokio::test]
async fn one_update_per_account_runs_at_a_time_and_the_limit_holds() {
    let app = spawn_app_with(Setup {
        tweak: |s| s.avatar_change_limit = Some("5/3600".parse().unwrap()),
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let urls: Vec<String> = (0..20u8)
        .map(|i| {
            host.serve(
                &format!("{i}.jpg"),
                "image/jpeg",
                jpeg(64, 64, [i * 12, 0, 255 - i * 12]),
            );
            format!("{}/delayed/{i}.jpg", host.base)
        })
        .collect();
    let answers = join_all(
        urls[..4]
            .iter()
            .map(|url| app.update_head_img(&token, &app_id, url)),
    )
    .await;
    assert!(answers.iter().all(|a| a["ret"] == 200), "{answers:?}");
    assert_eq!(host.delayed_peak(), 1, "downloads for one account at once");

    // 16 more at once against a limit of 5 changes: exactly one more succeeds.
    let answers = join_all(
        urls[4..]
            .iter()
            .map(|url| app.update_head_img(&token, &app_id, url)),
    )
    .await;
    let succeeded = answers.iter().filter(|a| a["ret"] == 200).count();
    assert_eq!(succeeded, 1, "{answers:?}");
    for refused in answers.iter().filter(|a| a["ret"] != 200) {
        assert_eq!(refused["data"]["code"], "rate-limited", "{refused}");
    }
    assert_eq!(app.history_len(&app_id).await, 6);
}

/// The limit is strict across instances too: four servers sharing one database
/// each get five concurrent updates of one account (20 different pictures, each
/// download taking a second, so updates on different servers overlap) against a
/// limit of 5 changes: exactly 5 succeed, the other 15 are refused as
/// rate-limited, and a failed update gives its slot back.
#[tokio::test]
async fn twenty_concurrent_updates_on_four_instances_make_exactly_five_changes() {
    let tweak: fn(&mut gewe_server::config::Settings) =
        |s| s.avatar_change_limit = Some("5/3600".parse().unwrap());
    let first = spawn_app_with(Setup {
        tweak,
        ..Setup::default()
    })
    .await;
    let mut instances = vec![first];
    for _ in 0..3 {
        let data_dir = Some(instances[0].data_dir.clone());
        instances.push(
            spawn_app_with(Setup {
                data_dir,
                tweak,
                ..Setup::default()
            })
            .await,
        );
    }
    let host = ImageHost::start().await;
    let token = instances[0].new_token().await;
    let app_id = instances[0].new_account(&token).await;

    // A failed update (the picture is missing) holds no slot afterwards.
    let missing = format!("{}/files/missing.jpg", host.base);
    let failed = instances[1]
        .update_head_img(&token, &app_id, &missing)
        .await;
    assert_eq!(failed["ret"], 500, "{failed}");
    assert_ne!(failed["data"]["code"], "rate-limited", "{failed}");

    let urls: Vec<String> = (0..20u8)
        .map(|i| {
            host.serve(
                &format!("{i}.jpg"),
                "image/jpeg",
                jpeg(64, 64, [i * 12, 255 - i * 12, 0]),
            );
            format!("{}/delayed/{i}.jpg", host.base)
        })
        .collect();
    let answers = join_all(urls.iter().enumerate().map(|(i, url)| {
        let app = &instances[i % instances.len()];
        app.update_head_img(&token, &app_id, url)
    }))
    .await;
    let succeeded = answers.iter().filter(|a| a["ret"] == 200).count();
    assert_eq!(succeeded, 5, "{answers:?}");
    for refused in answers.iter().filter(|a| a["ret"] != 200) {
        assert_rate_limited_5(refused);
    }
    assert_eq!(instances[0].history_len(&app_id).await, 6);
}

fn assert_rate_limited_5(answer: &Value) {
    assert_eq!(answer["ret"], 500, "{answer}");
    assert_eq!(answer["data"]["code"], "rate-limited", "{answer}");
    let detail = answer["data"]["msg"].as_str().unwrap();
    assert!(detail.contains("每3600秒最多修改5次"), "{detail}");
}
