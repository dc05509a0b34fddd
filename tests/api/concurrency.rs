//! Concurrent updates of one account: every answer is true, and the avatar and
//! its history never interleave.
//!
//! The property, exactly: the history rows after the account's first are the
//! sequence of committed changes in commit order. So
//! * every ret-200 answer whose picture differed from the avatar at its commit
//!   has exactly one row, carrying its own URL and that picture's content id;
//! * no row repeats the avatar before it (an unchanged resend writes no row);
//! * the account points at the last row's avatar, and its big and small URLs
//!   name that same avatar.
//!
//! With 50 different pictures every commit is a change, so the rows are exactly
//! the 50 answers; with repeated pictures the count depends on the order, and
//! only the properties above can be asserted.

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use gewe_server::domain::{AppId, AvatarId};
use gewe_server::imaging::{ImageLimits, render_avatar};
use serde_json::Value;

use crate::helpers::{Setup, TestApp, spawn_app_with};
use crate::image_host::ImageHost;
use crate::pictures::{close, decode, jpeg};

const SIDE: u32 = 160;

/// Generous waits: this test is about ordering, not about overload, and the
/// machine may be busy with other work.
async fn spawn_patient_app() -> TestApp {
    spawn_app_with(Setup {
        tweak: |s| {
            s.decode_queue_timeout_ms = 120_000;
            s.process_timeout_ms = 240_000;
        },
        ..Setup::default()
    })
    .await
}

fn colour(i: usize) -> [u8; 3] {
    let i = i as u8;
    [
        i.wrapping_mul(5),
        255 - i.wrapping_mul(5),
        i.wrapping_mul(37),
    ]
}

struct Pictures {
    /// url → (content id, colour)
    by_url: HashMap<String, (AvatarId, [u8; 3])>,
    urls: Vec<String>,
}

fn pictures(host: &ImageHost, count: usize) -> Pictures {
    let mut by_url = HashMap::new();
    let mut urls = Vec::new();
    for i in 0..count {
        let bytes = jpeg(SIDE, SIDE, colour(i));
        let id = render_avatar(&bytes, &ImageLimits::default())
            .unwrap()
            .content_id();
        let url = host.serve(&format!("p{i}.jpg"), "image/jpeg", bytes);
        by_url.insert(url.clone(), (id, colour(i)));
        urls.push(url);
    }
    Pictures { by_url, urls }
}

fn id_of(url: &str, suffix: &str) -> String {
    let rest = url.split("/mmhead/").nth(1).unwrap();
    rest.strip_suffix(suffix).unwrap().to_owned()
}

/// Fires one update per URL at once; returns the answers in request order.
async fn fire(app: &TestApp, token: &str, app_id: &str, urls: &[String]) -> Vec<Value> {
    join_all(
        urls.iter()
            .map(|url| async move { app.update_head_img(token, app_id, url).await }),
    )
    .await
}

/// Checks the invariants common to both tests; returns the changed rows' urls.
async fn check_history(app: &TestApp, token: &str, app_id: &str, pics: &Pictures) -> Vec<String> {
    let history = app
        .state
        .repo
        .avatar_history(&AppId::parse(Some(app_id.to_owned())).unwrap())
        .await
        .unwrap();
    let (first, changes) = history.split_first().unwrap();
    assert_eq!(first.source_url, None, "the account's first avatar");
    let mut previous = first.avatar_id;
    let mut urls = Vec::new();
    for row in changes {
        let url = row.source_url.clone().expect("a change names its source");
        let (id, _) = &pics.by_url[&url];
        assert_eq!(&row.avatar_id, id, "row for {url} carries its own picture");
        assert_ne!(row.avatar_id, previous, "a row that changes nothing");
        previous = row.avatar_id;
        urls.push(url);
    }

    let profile = app.profile(token, app_id).await;
    let big = profile["bigHeadImgUrl"].as_str().unwrap();
    let small = profile["smallHeadImgUrl"].as_str().unwrap();
    assert_eq!(
        id_of(big, "/0"),
        id_of(small, "/132"),
        "big and small match"
    );
    assert_eq!(
        id_of(big, "/0"),
        previous.to_string(),
        "the account shows the last change"
    );

    // The served variants are the last change's picture, at both sizes.
    let expected = pics.by_url[urls.last().unwrap()].1;
    for (url, side) in [(big, 640u32), (small, 132)] {
        let bytes = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let picture = decode(&bytes);
        assert_eq!(picture.width(), side.min(SIDE));
        let centre = picture.get_pixel(picture.width() / 2, picture.height() / 2);
        assert!(close(centre, expected), "{url}: {centre:?} vs {expected:?}");
    }
    urls
}

#[tokio::test]
async fn fifty_concurrent_updates_with_fifty_pictures_all_land_in_order() {
    let app = spawn_patient_app().await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let pics = pictures(&host, 50);

    let answers = fire(&app, &token, &app_id, &pics.urls).await;
    for (url, answer) in pics.urls.iter().zip(&answers) {
        assert_eq!(answer["ret"], 200, "{url}: {answer}");
    }

    let changed = check_history(&app, &token, &app_id, &pics).await;
    // Every picture differed from every other, so every answer is one row.
    assert_eq!(changed.len(), 50, "one history row per answer");
    let distinct: HashSet<&String> = changed.iter().collect();
    assert_eq!(
        distinct,
        pics.urls.iter().collect(),
        "each answer exactly once"
    );
}

#[tokio::test]
async fn concurrent_repeats_of_ten_pictures_never_record_a_non_change() {
    let app = spawn_patient_app().await;
    let host = ImageHost::start().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let pics = pictures(&host, 10);
    let urls: Vec<String> = (0..50).map(|i| pics.urls[i % 10].clone()).collect();

    let answers = fire(&app, &token, &app_id, &urls).await;
    for (url, answer) in urls.iter().zip(&answers) {
        assert_eq!(answer["ret"], 200, "{url}: {answer}");
    }
    let changed = check_history(&app, &token, &app_id, &pics).await;
    assert!(changed.len() <= 50);
    let seen: HashSet<&String> = changed.iter().collect();
    assert_eq!(seen.len(), 10, "every picture was committed at least once");
}
