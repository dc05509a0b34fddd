//! What running many instances on one backend relies on: the repository's
//! contract, create-only blobs, instances that share nothing but the data, and
//! redirects to the stored objects.
//!
//! Every case runs on the backend of the test run (see `services`): SQLite and the
//! blob folder under `cargo test`, PostgreSQL and S3 in `./scripts/test`'s second
//! pass. "Two instances" are two servers (two pools, two store clients, two
//! states) given the same data: the same SQLite file and folder, or the same
//! database and bucket.

use std::collections::HashSet;

use futures_util::future::join_all;
use gewe_server::config::Storage;
use gewe_server::domain::AppId;
use gewe_server::imaging::{self, AvatarSize};
use gewe_server::storage::{BlobStore, S3Config};
use object_store::aws::S3ConditionalPut;
use reqwest::redirect::Policy;

use crate::helpers::{Setup, TestApp, TestData, spawn_app, spawn_app_with};
use crate::image_host::ImageHost;
use crate::pictures::{decode, jpeg};
use crate::services::{self, services};

#[tokio::test]
async fn stored_objects_are_never_replaced() {
    let data = TestData::new().await;
    let store = data.store();
    let first = imaging::default_avatar("first");
    let second = imaging::default_avatar("second");
    let variants = |avatar: &imaging::RenderedAvatar| {
        avatar
            .variants
            .iter()
            .map(|v| (v.size, v.jpeg.clone()))
            .collect::<Vec<_>>()
    };
    let id = first.content_id();
    store.put_avatar(id, variants(&first)).await.unwrap();
    // The same key with other bytes (impossible for real, keys name content):
    // create-only, so what is stored stays.
    store.put_avatar(id, variants(&second)).await.unwrap();
    for size in AvatarSize::ALL {
        let stored = store.get_variant(id, size).await.unwrap().unwrap();
        assert!(stored == first.get(size).jpeg, "{size:?} was replaced");
    }

    // An S3-like without conditional puts (AWS_CONDITIONAL_PUT=disabled): the
    // look-then-write fallback keeps the same promise.
    if let Storage::S3(S3Config { bucket, .. }) = &data.settings.storage {
        let fallback =
            BlobStore::from_store(services().s3_store(bucket, S3ConditionalPut::Disabled));
        fallback.put_avatar(id, variants(&second)).await.unwrap();
        let other = second.content_id();
        fallback.put_avatar(other, variants(&second)).await.unwrap();
        fallback.put_avatar(other, variants(&first)).await.unwrap();
        for size in AvatarSize::ALL {
            let kept = store.get_variant(id, size).await.unwrap().unwrap();
            assert!(kept == first.get(size).jpeg, "{size:?} was replaced");
            let written = store.get_variant(other, size).await.unwrap().unwrap();
            assert!(written == second.get(size).jpeg, "{size:?} was replaced");
        }
    }
}

/// A second server on the same data: the database and the bucket (or file and
/// folder) are all the two share.
async fn second_instance(first: &TestApp) -> TestApp {
    spawn_app_with(Setup {
        data_dir: Some(first.data_dir.clone()),
        ..Setup::default()
    })
    .await
}

fn path_of(url: &serde_json::Value) -> String {
    let url = url.as_str().unwrap();
    format!("/mmhead/{}", url.split("/mmhead/").nth(1).unwrap())
}

async fn get_bytes(app: &TestApp, path: &str) -> Vec<u8> {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path} through {}", app.base);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn an_update_through_one_instance_is_seen_and_served_by_the_other() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let host = ImageHost::start().await;
    let token = b.new_token().await;
    let app_id = a.new_account(&token).await;
    let url = host.serve("new.jpg", "image/jpeg", jpeg(700, 700, [200, 30, 30]));

    let before = b.profile(&token, &app_id).await;
    assert_eq!(a.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let through_a = a.profile(&token, &app_id).await;
    let through_b = b.profile(&token, &app_id).await;
    assert_ne!(
        path_of(&before["bigHeadImgUrl"]),
        path_of(&through_b["bigHeadImgUrl"])
    );
    for field in ["bigHeadImgUrl", "smallHeadImgUrl"] {
        assert_eq!(path_of(&through_a[field]), path_of(&through_b[field]));
    }
    assert_eq!(through_a["wxid"], through_b["wxid"]);

    for (field, side) in [("bigHeadImgUrl", 640), ("smallHeadImgUrl", 132)] {
        let path = path_of(&through_b[field]);
        let from_b = get_bytes(&b, &path).await;
        assert!(from_b == get_bytes(&a, &path).await, "{path} differs");
        let picture = decode(&from_b);
        assert_eq!(picture.dimensions(), (side, side));
        assert!(crate::pictures::close(
            picture.get_pixel(side / 2, side / 2),
            [200, 30, 30]
        ));
    }
    assert_eq!(b.history_len(&app_id).await, 2);
}

/// Both instances update one account at once, over and over: many requests
/// switching it back to a picture it had before (one of them changes the avatar,
/// the rest find it done), and two new pictures (both change it, one after the
/// other). Afterwards the pointer, the history and the stored objects all agree.
#[tokio::test]
async fn concurrent_updates_through_two_instances_keep_pointer_history_and_blobs_whole() {
    /// At most 8: the pictures' colours are made from the round.
    const ROUNDS: u8 = 8;
    const SAME: usize = 8;
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let host = ImageHost::start().await;
    let token = a.new_token().await;
    let app_id = b.new_account(&token).await;
    let earlier = [
        host.serve("p.jpg", "image/jpeg", jpeg(96, 96, [250, 0, 0])),
        host.serve("q.jpg", "image/jpeg", jpeg(96, 96, [0, 0, 250])),
    ];
    for url in &earlier {
        assert_eq!(a.update_head_img(&token, &app_id, url).await["ret"], 200);
    }
    let mut expected_history = 3;

    for round in 0..ROUNDS {
        // Back to p, to q, to p, …: never the current one (q, or a new picture).
        let again = &earlier[usize::from(round % 2)];
        let all = (0..SAME).map(|i| {
            let instance = if i % 2 == 0 { &a } else { &b };
            instance.update_head_img(&token, &app_id, again)
        });
        for envelope in join_all(all).await {
            assert_eq!(envelope["ret"], 200, "{envelope}");
        }
        expected_history += 1;

        let colour = |k: u8| [round * 30 + k * 10, 200 - round * 25, k * 100];
        let one = host.serve(
            &format!("one-{round}.jpg"),
            "image/jpeg",
            jpeg(96, 96, colour(1)),
        );
        let two = host.serve(
            &format!("two-{round}.jpg"),
            "image/jpeg",
            jpeg(96, 96, colour(2)),
        );
        let (x, y) = tokio::join!(
            a.update_head_img(&token, &app_id, &one),
            b.update_head_img(&token, &app_id, &two)
        );
        assert_eq!(
            (x["ret"].clone(), y["ret"].clone()),
            (200.into(), 200.into())
        );
        expected_history += 2;
    }

    let profile = b.profile(&token, &app_id).await;
    let big = path_of(&profile["bigHeadImgUrl"]);
    let small = path_of(&profile["smallHeadImgUrl"]);
    let current = big.strip_suffix("/0").unwrap().to_owned();
    assert_eq!(
        small,
        format!("{current}/132"),
        "both URLs name one picture"
    );

    let app_id = AppId::from_trusted(app_id);
    let history = a.state.repo.avatar_history(&app_id).await.unwrap();
    assert_eq!(history.len(), expected_history, "{history:?}");
    for pair in history.windows(2) {
        assert_ne!(
            pair[0].avatar_id, pair[1].avatar_id,
            "a change to the same avatar"
        );
    }
    assert_eq!(
        format!("/mmhead/{}", history.last().unwrap().avatar_id),
        current,
        "the last change is the current avatar"
    );
    // No URL the server ever handed out points at nothing, through either instance.
    let seen: HashSet<_> = history.iter().map(|h| h.avatar_id).collect();
    for id in seen {
        for size in AvatarSize::ALL {
            for instance in [&a, &b] {
                get_bytes(instance, &format!("/mmhead/{id}/{}", size.label())).await;
            }
        }
    }
}

/// `gewe token create` / `account create` on a running server's data, whichever
/// the backend: the CLI reads the same settings (here the `GEWE_*` environment).
#[tokio::test]
async fn the_cli_works_on_the_data_of_running_instances() {
    let app = spawn_app().await;
    let data_dir = app.data_dir.clone();
    let gewe = move |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gewe"))
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("GEWE_DATABASE_URL")
            .envs(services::backend_env(&data_dir))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "gewe {args:?}: {stderr}");
        String::from_utf8(output.stdout)
            .unwrap()
            .trim_end()
            .to_owned()
    };
    let (token, app_id) = tokio::task::spawn_blocking(move || {
        let token = gewe(&["token", "create"]);
        let app_id = gewe(&[
            "account",
            "create",
            "--token",
            &token,
            "--nickname",
            "命令行",
        ]);
        (token, app_id)
    })
    .await
    .unwrap();

    let profile = app.profile(&token, &app_id).await;
    assert_eq!(profile["nickName"], "命令行");
    let default_avatar = path_of(&profile["bigHeadImgUrl"]);
    get_bytes(&app, &default_avatar).await;
}

const CDN: &str = "https://cdn.example.test/gewe";

/// Where a redirect points, read straight from the backend: the bucket (through
/// S3, anonymously) or the blob folder.
async fn object_behind(app: &TestApp, location: &str) -> Vec<u8> {
    let key = location
        .strip_prefix(&format!("{CDN}/"))
        .unwrap_or_else(|| panic!("{location} is not under {CDN}"));
    match services::shared_data_of(&app.data_dir) {
        Some(shared) => {
            let url = format!("{}/{}/{key}", services().s3_endpoint, shared.bucket);
            let response = app.client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            response.bytes().await.unwrap().to_vec()
        }
        None => std::fs::read(app.data_dir.join("blobs").join(key)).unwrap(),
    }
}

#[tokio::test]
async fn with_a_redirect_base_avatars_redirect_to_objects_that_exist() {
    let streaming = spawn_app().await;
    let redirecting = spawn_app_with(Setup {
        data_dir: Some(streaming.data_dir.clone()),
        tweak: |s| s.avatar_redirect_base = Some(format!("{CDN}/").parse().unwrap()),
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    let token = streaming.new_token().await;
    let app_id = streaming.new_account(&token).await;
    let url = host.serve("cdn.jpg", "image/jpeg", jpeg(200, 200, [20, 200, 20]));
    assert_eq!(
        streaming.update_head_img(&token, &app_id, &url).await["ret"],
        200
    );
    let profile = redirecting.profile(&token, &app_id).await;
    let id = path_of(&profile["bigHeadImgUrl"])
        .trim_start_matches("/mmhead/")
        .trim_end_matches("/0")
        .to_owned();

    let client = crate::helpers::http_client_builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    for size in AvatarSize::ALL {
        let path = format!("/mmhead/{id}/{}", size.label());
        let streamed = streaming
            .client
            .get(streaming.url(&path))
            .send()
            .await
            .unwrap();
        let etag = streamed.headers()["etag"].clone();
        let streamed = streamed.bytes().await.unwrap();

        for request in [
            client.get(redirecting.url(&path)),
            client.head(redirecting.url(&path)),
        ] {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 307, "{path}");
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            assert_eq!(location, format!("{CDN}/avatars/{id}/{}.jpg", size.label()));
            assert_eq!(response.headers()["etag"], etag);
            assert_eq!(response.headers()["cache-control"], "public, max-age=86400");
            let object = object_behind(&redirecting, &location).await;
            assert!(object == streamed, "{location} is not what {path} streams");
        }

        let revalidated = client
            .get(redirecting.url(&path))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304);
        assert_eq!(revalidated.headers()["etag"], etag);
    }

    // Never a redirect to nothing.
    let missing = client
        .get(redirecting.url(&format!("/mmhead/{}/0", "0".repeat(32))))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("location").is_none());
}
