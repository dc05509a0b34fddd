//! Blob garbage collection with the real binary: `gewe gc` and the periodic
//! sweep of `gewe serve` delete avatar blobs no row references once they are
//! older than the grace period, and never anything younger or referenced. The
//! crash test (`crash.rs`) runs `gewe gc` after its SIGKILL as well.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use gewe_server::imaging::{AvatarSize, default_avatar};
use gewe_server::storage::BlobStore;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::crash::blob_store;
use crate::support::{Server, create_accounts};

/// Settings that make the grace short enough to wait for: longer than the
/// processing deadline, as the server insists.
pub const SHORT_GRACE: &[(&str, &str)] = &[
    ("GEWE_PROCESS_TIMEOUT_MS", "1000"),
    ("GEWE_DECODE_QUEUE_TIMEOUT_MS", "500"),
    ("GEWE_GC_GRACE_SECS", "2"),
];

/// Every object key in the blob store of `data_dir`.
pub async fn stored_keys(store: &Arc<dyn ObjectStore>) -> BTreeSet<String> {
    store
        .list(None)
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

/// Stores the five variants of an avatar no row references (what an update
/// killed between storing and committing leaves); answers its id.
pub async fn plant_orphan(store: &Arc<dyn ObjectStore>, seed: &str) -> String {
    let avatar = default_avatar(seed);
    let id = avatar.content_id().to_string();
    for size in AvatarSize::ALL {
        let key = ObjectPath::from(format!("avatars/{id}/{}.jpg", size.label()));
        let jpeg = avatar.get(size).jpeg.clone();
        store.put(&key, PutPayload::from_bytes(jpeg)).await.unwrap();
    }
    id
}

/// `gewe gc` on the data of `data_dir`: its stdout, or a panic with stderr.
pub async fn run_gc(data_dir: &Path, env: &[(&str, &str)]) -> Result<String, String> {
    crate::support::settings(data_dir).await;
    let out = Command::new(env!("CARGO_BIN_EXE_gewe"))
        .arg("gc")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GEWE_DATABASE_URL")
        .envs(crate::services::backend_env(data_dir))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

/// The number after "deleted " in `gewe gc`'s report.
pub fn deleted_of(report: &str) -> usize {
    report
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {report:?}"))
}

fn keys_of<'a>(keys: &'a BTreeSet<String>, id: &str) -> Vec<&'a String> {
    keys.iter()
        .filter(|k| k.starts_with(&format!("avatars/{id}/")))
        .collect()
}

#[tokio::test]
async fn gc_deletes_old_unreferenced_blobs_and_keeps_young_and_referenced_ones() {
    let dir = tempfile::tempdir().unwrap();
    // A server with its own sweep off (the default interval is an hour).
    let server = Server::start(dir.path(), SHORT_GRACE).await;
    let token = server.new_token().await;
    create_accounts(dir.path(), &token, 2).await;
    let store = blob_store(dir.path());
    let referenced = stored_keys(&store).await;
    assert_eq!(referenced.len(), 10, "two accounts' first avatars");

    // The grace must exceed the processing deadline.
    let refused = run_gc(dir.path(), &[("GEWE_GC_GRACE_SECS", "20")])
        .await
        .unwrap_err();
    assert!(
        refused.contains("GEWE_GC_GRACE_SECS") && refused.contains("GEWE_PROCESS_TIMEOUT_MS"),
        "{refused}"
    );

    let old = plant_orphan(&store, "gc-old").await;
    let reused = plant_orphan(&store, "gc-reused").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let young = plant_orphan(&store, "gc-young").await;
    // An update rendering the same picture again finds the old blobs stored:
    // storing them restarts their grace, so the commit it is about to make
    // will not point at deleted blobs.
    let again = default_avatar("gc-reused");
    BlobStore::from_store(store.clone())
        .put_avatar(
            again.content_id(),
            again
                .variants
                .iter()
                .map(|v| (v.size, v.jpeg.clone()))
                .collect(),
        )
        .await
        .unwrap();

    let report = run_gc(dir.path(), SHORT_GRACE).await.unwrap();
    println!("gc: {}", report.trim());
    assert!(report.contains("younger than"), "{report}");
    assert_eq!(deleted_of(&report), 5, "{report}");
    let after = stored_keys(&store).await;
    assert!(keys_of(&after, &old).is_empty(), "the old orphan is gone");
    assert_eq!(
        keys_of(&after, &young).len(),
        5,
        "the young orphan survives"
    );
    assert_eq!(
        keys_of(&after, &reused).len(),
        5,
        "blobs an update stored again survive"
    );
    assert!(
        referenced.is_subset(&after),
        "nothing referenced was deleted"
    );
    if crate::services::shared_data_of(dir.path()).is_none() {
        let folder = dir.path().join("blobs/avatars").join(&old);
        assert!(!folder.exists(), "its folder went with it");
    }
    server.kill();
}

#[tokio::test]
async fn serve_sweeps_unreferenced_blobs_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = SHORT_GRACE.to_vec();
    env.push(("GEWE_GC_INTERVAL_SECS", "1"));
    let server = Server::start(dir.path(), &env).await;
    let token = server.new_token().await;
    create_accounts(dir.path(), &token, 1).await;
    let store = blob_store(dir.path());
    let referenced = stored_keys(&store).await;
    let orphan = plant_orphan(&store, "swept").await;

    let started = Instant::now();
    while !keys_of(&stored_keys(&store).await, &orphan).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sweep never removed the orphan"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = started.elapsed();
    println!("orphan swept {waited:?} after it was stored (grace 2 s, sweep every 1 s)");
    assert!(waited >= Duration::from_secs(2), "swept within the grace");
    assert_eq!(stored_keys(&store).await, referenced);
    server.kill();
}
