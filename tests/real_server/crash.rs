//! Crash consistency: SIGKILL the real server in the middle of ~200 concurrent
//! avatar updates, restart it on the same data dir, and check that nothing that
//! was promised is lost and nothing half-made is visible.
//!
//! Runs on the test process's backend (`GEWE_TEST_BACKEND`): SQLite + blob folder,
//! or PostgreSQL + S3. The checks are the same on both, through SQL and
//! `object_store`; only each engine's own integrity checks differ.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use gewe_server::config::Settings;
use gewe_server::imaging::{AvatarSize, ImageLimits, render_avatar};
use object_store::ObjectStore;
use object_store::aws::S3ConditionalPut;
use object_store::local::LocalFileSystem;
use serde_json::{Value, json};

use crate::common::db::Db;
use crate::gc::{SHORT_GRACE, deleted_of, plant_orphan, run_gc, stored_keys};
use crate::image_host::ImageHost;
use crate::pictures::{close, decode, two_tone};
use crate::services::{services, shared_data_of};
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

/// An `accounts.avatar_id` with no `avatars` row.
const MISSING_AVATARS: &str = "SELECT COUNT(*) FROM accounts a \
     WHERE NOT EXISTS (SELECT 1 FROM avatars v WHERE v.id = a.avatar_id)";
/// A history row naming no account or no avatar.
const DANGLING_HISTORY: &str = "SELECT COUNT(*) FROM avatar_history h \
     WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.app_id = h.app_id) \
        OR NOT EXISTS (SELECT 1 FROM avatars v WHERE v.id = h.avatar_id)";
/// An account whose avatar is not that of its last history row (or that has none).
const POINTER_MISMATCH: &str = "SELECT COUNT(*) FROM accounts a \
     WHERE COALESCE((SELECT h.avatar_id FROM avatar_history h WHERE h.app_id = a.app_id \
                     ORDER BY h.id DESC LIMIT 1), '') <> a.avatar_id";

/// The blob store of `data_dir`: its blob folder or its bucket.
pub fn blob_store(data_dir: &Path) -> Arc<dyn ObjectStore> {
    match shared_data_of(data_dir) {
        None => Arc::new(LocalFileSystem::new_with_prefix(blob_dir(data_dir)).unwrap()),
        Some(shared) => services().s3_store(&shared.bucket, S3ConditionalPut::ETagMatch),
    }
}

/// Files in the blob folder that are no variant (`<size>.jpg`): what the folder
/// stages before its rename, left by the kill. `object_store` does not list them.
fn staging_files(data_dir: &Path) -> usize {
    if shared_data_of(data_dir).is_some() {
        return 0;
    }
    let Ok(dirs) = std::fs::read_dir(blob_dir(data_dir).join("avatars")) else {
        return 0;
    };
    dirs.map(|d| {
        std::fs::read_dir(d.unwrap().path())
            .unwrap()
            .filter(|f| {
                let name = f.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                !AvatarSize::ALL
                    .iter()
                    .any(|s| *name == format!("{}.jpg", s.label()))
            })
            .count()
    })
    .sum()
}

fn blob_dir(data_dir: &Path) -> std::path::PathBuf {
    Settings {
        data_dir: data_dir.to_path_buf(),
        ..Settings::default()
    }
    .blob_dir()
}

fn colours(i: usize) -> ([u8; 3], [u8; 3]) {
    let i = i as u8;
    (
        [i.wrapping_mul(5), 200, 255 - i.wrapping_mul(5)],
        [255 - i.wrapping_mul(3), i.wrapping_mul(5), 40],
    )
}

/// What the test sends: pictures on a loopback host, accounts, and the plan of
/// which account gets which picture.
struct Scenario {
    pictures: Vec<Picture>,
    accounts: Vec<String>,
    /// Each account's avatar before any update.
    initial: HashMap<String, String>,
    /// (appId, picture index), in sending order.
    plan: Vec<(String, usize)>,
    token: String,
}

impl Scenario {
    fn by_url(&self) -> HashMap<&str, &Picture> {
        self.pictures.iter().map(|p| (p.url.as_str(), p)).collect()
    }

    fn by_id(&self) -> HashMap<&str, &Picture> {
        self.pictures.iter().map(|p| (p.id.as_str(), p)).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_answered_update_and_serves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let host = ImageHost::start().await;
    let server = Server::start(dir.path(), SERVER_ENV).await;
    let scenario = prepare(&host, &server, dir.path()).await;
    let outcomes = send_and_kill_mid_stream(server, &scenario).await;
    let done = outcomes.iter().filter(|o| **o == Outcome::Done).count();
    let lost = outcomes.iter().filter(|o| **o == Outcome::Lost).count();

    // Restart on the same data.
    let server = Server::start(dir.path(), SERVER_ENV).await;
    let db = Db::open(dir.path()).await;
    database_is_intact(&db).await;
    let survived_in_flight = answered_updates_survived(&server, &db, &scenario, &outcomes).await;
    let (checked, orphans) = no_half_written_blob_is_served(&server, &db, dir.path()).await;
    let stray_files = staging_files(dir.path());

    println!(
        "crash ({} + {}): {} updates sent, {done} answered ret 200 before SIGKILL, {lost} in flight \
         ({survived_in_flight} of those committed anyway); all {done} answered updates survived; \
         {checked} variants served whole, {orphans} unreferenced avatars, \
         {stray_files} stray staging files",
        db.engine(),
        if shared_data_of(dir.path()).is_some() {
            "S3"
        } else {
            "blob folder"
        },
        scenario.plan.len()
    );

    // Garbage collection after the crash: an orphan planted as a killed update
    // leaves one, then `gewe gc` once everything is past its grace. It leaves
    // no unreferenced blob and deletes no referenced one.
    let store = blob_store(dir.path());
    let planted = plant_orphan(&store, "crash-orphan").await;
    let before = stored_keys(&store).await;
    let referenced = db.avatar_ids().await;
    assert!(!referenced.contains(&planted));
    let unreferenced_before = before
        .iter()
        .filter(|k| !referenced.contains(k.split('/').nth(1).unwrap()))
        .count();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let report = run_gc(dir.path(), SHORT_GRACE).await.unwrap();
    let after_gc = stored_keys(&store).await;
    let deleted: Vec<&String> = before.difference(&after_gc).collect();
    assert_eq!(deleted.len(), deleted_of(&report), "{report}");
    let referenced_deleted = deleted
        .iter()
        .filter(|k| referenced.contains(k.split('/').nth(1).unwrap()))
        .count();
    let (_, unreferenced_after) = no_half_written_blob_is_served(&server, &db, dir.path()).await;
    println!(
        "gc after the crash: {unreferenced_before} unreferenced blobs before (5 planted), \
         {} deleted, {unreferenced_after} unreferenced avatars left, {referenced_deleted} referenced deleted",
        deleted.len()
    );
    assert_eq!(unreferenced_after, 0, "gc left unreferenced avatars");
    assert_eq!(referenced_deleted, 0, "gc deleted referenced blobs");
    assert_eq!(deleted.len(), unreferenced_before);

    // The restarted server takes updates again.
    let after = server
        .update_head_img(
            &scenario.token,
            &scenario.accounts[0],
            &scenario.pictures[49].url,
        )
        .await;
    assert!(after["ret"] == 200, "{after}");
    server.kill();
}

/// Pictures served from `host` (with the ids the server will give them), a token,
/// accounts with their first avatars, and the plan.
async fn prepare(host: &ImageHost, server: &Server, data_dir: &Path) -> Scenario {
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
                .content_id()
                .to_string();
            let url = host.serve(&format!("p{i}.jpg"), "image/jpeg", bytes);
            Picture { url, id, top }
        })
        .collect();
    let token = server.new_token().await;
    let accounts = create_accounts(data_dir, &token, ACCOUNTS).await;
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
    Scenario {
        pictures,
        accounts,
        initial,
        plan,
        token,
    }
}

/// Sends every update of the plan at once and SIGKILLs the server the moment the
/// `KILL_AFTER`-th answer arrives, while the requests around it are still being
/// written. Returns each update's outcome, in plan order.
async fn send_and_kill_mid_stream(server: Server, scenario: &Scenario) -> Vec<Outcome> {
    // Each answer (or failure) is reported here the moment it arrives.
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel::<()>();
    let tasks: Vec<_> = scenario
        .plan
        .iter()
        .map(|(app_id, picture)| {
            let (client, base, token, answered) = (
                server.client.clone(),
                server.base.clone(),
                scenario.token.clone(),
                answered.clone(),
            );
            let body = json!({"appId": app_id, "headImgUrl": scenario.pictures[*picture].url});
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
    outcomes
}

/// The engine's own checks, then the invariants the schema promises, in plain SQL
/// on either engine.
async fn database_is_intact(db: &Db) {
    db.check_engine().await;
    assert_eq!(
        db.count(MISSING_AVATARS).await,
        0,
        "accounts without avatar"
    );
    assert_eq!(db.count(DANGLING_HISTORY).await, 0, "dangling history rows");
    assert_eq!(
        db.count(POINTER_MISMATCH).await,
        0,
        "accounts not showing their last history row"
    );
}

/// Every answered update is visible after the restart; history and pointers
/// agree; the avatar each account shows answers as that picture. Returns how many
/// updates that got no answer were committed anyway.
async fn answered_updates_survived(
    server: &Server,
    db: &Db,
    scenario: &Scenario,
    outcomes: &[Outcome],
) -> usize {
    let (by_url, by_id) = (scenario.by_url(), scenario.by_id());
    let mut survived_in_flight = 0;
    for app_id in &scenario.accounts {
        let history = db.history(app_id).await;
        assert_eq!(history[0], (scenario.initial[app_id].clone(), None));
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
        for ((target, picture), outcome) in scenario.plan.iter().zip(outcomes) {
            if target != app_id {
                continue;
            }
            let url = scenario.pictures[*picture].url.as_str();
            match outcome {
                Outcome::Done => assert!(
                    committed.contains(url),
                    "{app_id}: update to {url} was answered ret 200 but is not in its history"
                ),
                Outcome::Lost if committed.contains(url) => survived_in_flight += 1,
                _ => {}
            }
            expected_possible.insert(scenario.pictures[*picture].id.clone());
        }

        let profile = server.profile(&scenario.token, app_id).await;
        let big = avatar_id(profile["bigHeadImgUrl"].as_str().unwrap());
        let small = avatar_id(profile["smallHeadImgUrl"].as_str().unwrap());
        assert_eq!(big, small, "{app_id}: big and small name one avatar");
        let last = &history.last().unwrap().0;
        assert_eq!(
            &big, last,
            "{app_id}: the account shows its last committed change"
        );
        assert!(
            big == scenario.initial[app_id] || expected_possible.contains(&big),
            "{app_id}: shows a picture nobody sent it"
        );

        // Every URL the profile points to answers, decodes, and is that picture.
        for size in AvatarSize::ALL {
            let url = format!("{}/mmhead/{big}/{}", server.base, size.label());
            let (status, bytes) = server.get(&url).await;
            assert_eq!(status, 200, "{url}");
            let picture = decode(&bytes);
            let side = picture.width();
            let source_side = if big == scenario.initial[app_id] {
                640
            } else {
                180
            };
            assert_eq!(side, size.nominal_px().min(source_side), "{url}");
            if let Some(p) = by_id.get(big.as_str()) {
                let pixel = picture.get_pixel(side / 2, side / 4);
                assert!(close(pixel, p.top), "{url}: {pixel:?} vs {:?}", p.top);
            }
        }
    }
    survived_in_flight
}

/// No half-written blob is served: every stored object is a variant of an avatar
/// (`avatars/<id>/<size>.jpg`), every variant of a referenced avatar is stored,
/// and every stored variant is served as a whole JPEG of its size. Returns the
/// variants checked and the unreferenced avatars.
async fn no_half_written_blob_is_served(
    server: &Server,
    db: &Db,
    data_dir: &Path,
) -> (usize, usize) {
    let referenced = db.avatar_ids().await;
    let listed: Vec<String> = blob_store(data_dir)
        .list(None)
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let mut stored: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for key in &listed {
        let parts: Vec<&str> = key.split('/').collect();
        let size = match parts[..] {
            ["avatars", _, file] => AvatarSize::ALL
                .iter()
                .find(|s| file == format!("{}.jpg", s.label())),
            _ => None,
        };
        let size = size.unwrap_or_else(|| panic!("stray object {key}"));
        stored
            .entry(parts[1].to_owned())
            .or_default()
            .insert(size.label());
    }
    let orphans = stored.keys().filter(|id| !referenced.contains(*id)).count();
    let mut checked = 0;
    let ids: BTreeSet<&String> = stored.keys().chain(&referenced).collect();
    for id in ids {
        for size in AvatarSize::ALL {
            let (status, bytes) = server
                .get(&format!("{}/mmhead/{id}/{}", server.base, size.label()))
                .await;
            let is_stored = stored.get(id).is_some_and(|s| s.contains(size.label()));
            if referenced.contains(id) {
                assert!(
                    is_stored,
                    "referenced avatar {id} misses size {}",
                    size.label()
                );
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
                assert!(!is_stored, "{id}/{}: stored but not served", size.label());
                assert_eq!(status, 404, "{id}/{}", size.label());
            }
        }
    }
    (checked, orphans)
}
