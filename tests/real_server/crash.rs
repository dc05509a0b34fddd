//! Crash consistency: SIGKILL the real server in the middle of ~200 concurrent
//! avatar updates, restart it on the same data dir, and check that nothing that
//! was promised is lost and nothing half-made is visible.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use gewe_server::imaging::{AvatarSize, ImageLimits, render_avatar};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::image_host::ImageHost;
use crate::pictures::{close, decode, two_tone};
use crate::support::{Server, avatar_id, create_accounts};

const PICTURES: usize = 50;
const ACCOUNTS: usize = 20;
const PER_ACCOUNT: usize = 10;
/// Kill once this many answers have come back.
const KILL_AFTER: usize = 60;

const SERVER_ENV: &[(&str, &str)] = &[
    ("GEWE_DECODE_QUEUE_TIMEOUT_MS", "120000"),
    ("GEWE_PROCESS_TIMEOUT_MS", "240000"),
];

struct Picture {
    url: String,
    id: String,
    top: [u8; 3],
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done,
    Refused(Value),
    /// No answer: the server died while it was in flight.
    Lost,
}

fn colours(i: usize) -> ([u8; 3], [u8; 3]) {
    let i = i as u8;
    (
        [i.wrapping_mul(5), 200, 255 - i.wrapping_mul(5)],
        [255 - i.wrapping_mul(3), i.wrapping_mul(5), 40],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_answered_update_and_serves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let host = ImageHost::start().await;
    let pictures: Vec<Picture> = (0..PICTURES)
        .map(|i| {
            let (top, bottom) = colours(i);
            let bytes = crate::pictures::encode(
                image::DynamicImage::ImageRgb8(two_tone(180, 180, top, bottom)),
                image::ImageFormat::Jpeg,
            );
            // What the server will make of it: same pipeline, same machine.
            let id = render_avatar(&bytes, &ImageLimits::default())
                .unwrap()
                .content_id();
            let url = host.serve(&format!("p{i}.jpg"), "image/jpeg", bytes);
            Picture { url, id, top }
        })
        .collect();
    let by_id: HashMap<&str, &Picture> = pictures.iter().map(|p| (p.id.as_str(), p)).collect();
    let by_url: HashMap<&str, &Picture> = pictures.iter().map(|p| (p.url.as_str(), p)).collect();

    let server = Server::start(dir.path(), SERVER_ENV);
    let token = server.new_token().await;
    let accounts = create_accounts(dir.path(), &token, ACCOUNTS).await;
    let initial: HashMap<String, String> = {
        let mut initial = HashMap::new();
        for app_id in &accounts {
            let profile = server.profile(&token, app_id).await;
            initial.insert(
                app_id.clone(),
                avatar_id(profile["bigHeadImgUrl"].as_str().unwrap()),
            );
        }
        initial
    };

    // Every account gets PER_ACCOUNT different pictures, so every committed
    // update is a change with its own history row.
    let plan: Vec<(String, usize)> = (0..PER_ACCOUNT)
        .flat_map(|k| {
            accounts
                .iter()
                .enumerate()
                .map(move |(a, app_id)| (app_id.clone(), (a * 7 + k * 5) % PICTURES))
        })
        .collect();
    // Each answer (or failure) is reported here the moment it arrives.
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel::<()>();
    let tasks: Vec<_> = plan
        .iter()
        .map(|(app_id, picture)| {
            let (client, base, token, answered) = (
                server.client.clone(),
                server.base.clone(),
                token.clone(),
                answered.clone(),
            );
            let body = json!({"appId": app_id, "headImgUrl": pictures[*picture].url});
            tokio::spawn(async move {
                let response = client
                    .post(format!("{base}/gewe/v2/api/personal/updateHeadImg"))
                    .header("X-GEWE-TOKEN", token)
                    .json(&body)
                    .send()
                    .await;
                let outcome = match response {
                    Ok(r) => match r.json::<Value>().await {
                        Ok(answer) if answer["ret"] == 200 => Outcome::Done,
                        Ok(answer) => Outcome::Refused(answer),
                        Err(_) => Outcome::Lost,
                    },
                    Err(_) => Outcome::Lost,
                };
                let _ = answered.send(());
                outcome
            })
        })
        .collect();

    // Mid-stream: SIGKILL the moment the KILL_AFTER-th answer arrives, while
    // the requests around it are still being written.
    let waited = tokio::time::timeout(Duration::from_secs(240), async {
        for _ in 0..KILL_AFTER {
            answers.recv().await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the server never answered {KILL_AFTER} updates"
    );
    server.kill();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let done = outcomes.iter().filter(|o| **o == Outcome::Done).count();
    let lost = outcomes.iter().filter(|o| **o == Outcome::Lost).count();
    let refused: Vec<&Value> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Refused(answer) => Some(answer),
            _ => None,
        })
        .collect();
    assert!(refused.is_empty(), "unexpected refusals: {refused:?}");
    assert!(done >= KILL_AFTER / 2, "answered before the kill: {done}");
    assert!(
        lost > 0,
        "the kill came after the last answer; nothing was in flight"
    );

    // Restart on the same data.
    let server = Server::start(dir.path(), SERVER_ENV);

    // 1. The database is intact.
    let db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.path().join("gewe.db"))
                .read_only(true),
        )
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let dangling = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&db)
        .await
        .unwrap();
    assert!(
        dangling.is_empty(),
        "{} rows violate foreign keys",
        dangling.len()
    );

    // 2. Every answered update is visible; history and pointers agree.
    let mut survived_in_flight = 0;
    for app_id in &accounts {
        let rows = sqlx::query(
            "SELECT avatar_id, source_url FROM avatar_history WHERE app_id = ? ORDER BY id",
        )
        .bind(app_id)
        .fetch_all(&db)
        .await
        .unwrap();
        let history: Vec<(String, Option<String>)> = rows
            .iter()
            .map(|r| (r.get("avatar_id"), r.get("source_url")))
            .collect();
        assert_eq!(history[0], (initial[app_id].clone(), None));
        for (id, url) in &history[1..] {
            let url = url.as_deref().unwrap();
            assert_eq!(
                &by_url[url].id, id,
                "history row for {url} carries its own picture"
            );
        }
        let committed: HashSet<&str> = history[1..]
            .iter()
            .map(|(_, url)| url.as_deref().unwrap())
            .collect();
        let mut expected_possible: HashSet<String> = HashSet::new();
        for ((target, picture), outcome) in plan.iter().zip(&outcomes) {
            if target != app_id {
                continue;
            }
            let url = pictures[*picture].url.as_str();
            match outcome {
                Outcome::Done => assert!(
                    committed.contains(url),
                    "{app_id}: update to {url} was answered ret 200 but is not in its history"
                ),
                Outcome::Lost if committed.contains(url) => survived_in_flight += 1,
                _ => {}
            }
            expected_possible.insert(pictures[*picture].id.clone());
        }

        let profile = server.profile(&token, app_id).await;
        let big = avatar_id(profile["bigHeadImgUrl"].as_str().unwrap());
        let small = avatar_id(profile["smallHeadImgUrl"].as_str().unwrap());
        assert_eq!(big, small, "{app_id}: big and small name one avatar");
        let last = &history.last().unwrap().0;
        assert_eq!(
            &big, last,
            "{app_id}: the account shows its last committed change"
        );
        assert!(
            big == initial[app_id] || expected_possible.contains(&big),
            "{app_id}: shows a picture nobody sent it"
        );

        // 3. Every URL the profile points to answers, decodes, and is that picture.
        for size in AvatarSize::ALL {
            let url = format!("{}/mmhead/{big}/{}", server.base, size.label());
            let (status, bytes) = server.get(&url).await;
            assert_eq!(status, 200, "{url}");
            let picture = decode(&bytes);
            let side = picture.width();
            let source_side = if big == initial[app_id] { 640 } else { 180 };
            assert_eq!(side, size.nominal_px().min(source_side), "{url}");
            if let Some(p) = by_id.get(big.as_str()) {
                let pixel = picture.get_pixel(side / 2, side / 4);
                assert!(close(pixel, p.top), "{url}: {pixel:?} vs {:?}", p.top);
            }
        }
    }

    // 4. No half-written blob is served: every variant in the blob folder,
    //    referenced or not, is either absent or a whole JPEG of the right size.
    let referenced: HashSet<String> = sqlx::query("SELECT id FROM avatars")
        .fetch_all(&db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("id"))
        .collect();
    let mut stray_files = 0;
    let mut orphans = 0;
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path().join("blobs/avatars")).unwrap() {
        let entry = entry.unwrap();
        let id = entry.file_name().to_string_lossy().into_owned();
        let files: Vec<String> = std::fs::read_dir(entry.path())
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        stray_files += files
            .iter()
            .filter(|f| {
                !AvatarSize::ALL
                    .iter()
                    .any(|s| **f == format!("{}.jpg", s.label()))
            })
            .count();
        if !referenced.contains(&id) {
            orphans += 1;
        }
        for size in AvatarSize::ALL {
            let (status, bytes) = server
                .get(&format!("{}/mmhead/{id}/{}", server.base, size.label()))
                .await;
            if referenced.contains(&id) {
                assert_eq!(
                    status,
                    200,
                    "referenced avatar {id} misses size {}",
                    size.label()
                );
            }
            if status == 200 {
                let picture = image::load_from_memory(&bytes)
                    .unwrap_or_else(|e| panic!("{id}/{}: served but broken: {e}", size.label()));
                let nominal = size.nominal_px();
                assert!(picture.width() == picture.height() && picture.width() <= nominal);
                if size != AvatarSize::Big {
                    assert_eq!(picture.width(), nominal);
                }
                checked += 1;
            } else {
                assert_eq!(status, 404, "{id}/{}", size.label());
            }
        }
    }

    println!(
        "crash: {} updates sent, {done} answered ret 200 before SIGKILL, {lost} in flight \
         ({survived_in_flight} of those committed anyway); all {done} answered updates survived; \
         {checked} variants served whole, {orphans} unreferenced avatar dirs, {stray_files} stray staging files",
        plan.len()
    );

    // The restarted server takes updates again.
    let after = server
        .update_head_img(&token, &accounts[0], &pictures[49].url)
        .await;
    assert!(after["ret"] == 200, "{after}");
    server.kill();
}
