//! The store's contract, on the backend of the test run (SQLite under `cargo
//! test`, PostgreSQL in `./scripts/test`'s second pass): what every engine must
//! do the same, including under two instances racing on one database.

use std::sync::Arc;

use futures_util::future::join_all;
use gewe_server::config::Settings;
use gewe_server::domain::{
    AccountRecord, AppId, AvatarChange, AvatarId, AvatarRecord, AvatarSource, HistoryEntry,
    KnownSource, RecentChanges, StoreError, TokenId, Wxid,
};
use gewe_server::startup::open_repo;
use tokio::sync::Barrier;

use crate::common::db::Db;
use crate::helpers::TestData;
use crate::services::{self, Backend};

const NOW: i64 = 1_750_000_000;

fn avatar(n: u32) -> AvatarRecord {
    AvatarRecord {
        id: AvatarId::parse(&format!("{n:032x}")).unwrap(),
        side: 640,
    }
}

fn account(wxid: &str, avatar: &AvatarRecord) -> AccountRecord {
    AccountRecord {
        app_id: AppId::generate(),
        wxid: Wxid::parse(wxid).unwrap(),
        nick_name: "小助手".to_owned(),
        alias: "alias".to_owned(),
        mobile: "13800000000".to_owned(),
        uin: i64::from(i32::MAX),
        sex: 2,
        province: "Guangdong".to_owned(),
        city: "Shenzhen".to_owned(),
        signature: "签名".to_owned(),
        country: "CN".to_owned(),
        reg_country: "CN".to_owned(),
        sns_bg_img: String::new(),
        avatar_id: avatar.id,
    }
}

/// A picture address, and (standing in for the SHA-256 of its bytes) a hash
/// derived from it.
fn source(url: &'static str) -> AvatarSource<'static> {
    AvatarSource {
        url,
        hash: Some(url.rsplit('/').next().unwrap()),
        etag: None,
        stored: false,
        slot: None,
    }
}

/// A source that brings nothing to remember (a 304, or a restore from the
/// history): only the pointer moves.
fn known(url: &'static str) -> AvatarSource<'static> {
    AvatarSource {
        url,
        hash: None,
        etag: None,
        stored: true,
        slot: None,
    }
}

fn ids(history: &[HistoryEntry]) -> Vec<AvatarId> {
    history.iter().map(|h| h.avatar_id).collect()
}

#[tokio::test]
async fn repository_keeps_tokens_unique_and_accounts_to_their_owner() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let alice = repo
        .insert_token("hash-alice", Some("ci"), NOW)
        .await
        .unwrap();
    let bob = repo.insert_token("hash-bob", None, NOW).await.unwrap();
    assert_ne!(alice, bob);
    assert_eq!(repo.find_token("hash-alice").await.unwrap(), Some(alice));
    assert_eq!(repo.find_token("hash-nobody").await.unwrap(), None);
    assert!(matches!(
        repo.insert_token("hash-alice", None, NOW).await,
        Err(StoreError::Conflict(_))
    ));

    let first = account("wxid_repo_first", &avatar(1));
    let second = account("wxid_repo_second", &avatar(2));
    repo.insert_account(alice, &first, &avatar(1), NOW)
        .await
        .unwrap();
    repo.insert_account(alice, &second, &avatar(2), NOW)
        .await
        .unwrap();
    let taken = account("wxid_repo_first", &avatar(3));
    assert!(matches!(
        repo.insert_account(bob, &taken, &avatar(3), NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        repo.find_account(bob, &taken.app_id)
            .await
            .unwrap()
            .is_none(),
        "a refused account leaves nothing behind"
    );

    assert_eq!(
        repo.find_account(alice, &first.app_id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(repo.find_account(bob, &first.app_id).await.unwrap(), None);
    assert_eq!(
        repo.find_account(TokenId(i64::MAX), &first.app_id)
            .await
            .unwrap(),
        None
    );
    let mut listed = repo.list_accounts(alice).await.unwrap();
    listed.sort_by(|a, b| a.wxid.as_str().cmp(b.wxid.as_str()));
    assert_eq!(listed, vec![first.clone(), second]);
    assert_eq!(repo.list_accounts(bob).await.unwrap(), vec![]);

    // Someone else's device: nothing moves, nothing is appended.
    assert_eq!(
        repo.set_avatar(
            bob,
            &first.app_id,
            &avatar(9),
            &source("http://x/9.jpg"),
            NOW
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        repo.find_account(alice, &first.app_id)
            .await
            .unwrap()
            .unwrap()
            .avatar_id,
        avatar(1).id
    );
    assert_eq!(
        ids(&repo.avatar_history(&first.app_id).await.unwrap()),
        [avatar(1).id]
    );
    let stored = Db::open(&data.settings.data_dir).await.avatar_ids().await;
    assert!(
        !stored.contains(&avatar(9).id.to_string()),
        "a refused change stores nothing"
    );
    assert!(stored.contains(&avatar(1).id.to_string()));
    repo.ping().await.unwrap();
}

#[tokio::test]
async fn repository_moves_the_pointer_and_appends_history_together() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = repo.insert_token("hash-owner", None, NOW).await.unwrap();
    let record = account("wxid_repo_history", &avatar(1));
    repo.insert_account(owner, &record, &avatar(1), NOW)
        .await
        .unwrap();
    let app_id = &record.app_id;

    let set = |id: u32, url: &'static str| {
        let repo = repo.clone();
        async move {
            repo.set_avatar(owner, app_id, &avatar(id), &source(url), NOW)
                .await
        }
    };
    assert_eq!(
        set(2, "http://x/2.jpg").await.unwrap(),
        Some(AvatarChange::Changed)
    );
    assert_eq!(
        set(2, "http://x/2b.jpg").await.unwrap(),
        Some(AvatarChange::Unchanged)
    );
    // Back to a picture stored before: its avatar row already exists.
    assert_eq!(
        set(1, "http://x/1.jpg").await.unwrap(),
        Some(AvatarChange::Changed)
    );
    let unknown = AppId::generate();
    assert_eq!(
        repo.set_avatar(owner, &unknown, &avatar(3), &source("http://x/3.jpg"), NOW)
            .await
            .unwrap(),
        None
    );

    // Only the pointer moves: one statement, and the history row still comes with it.
    let again = |id: u32, app_id: &AppId| {
        let (repo, app_id) = (repo.clone(), app_id.clone());
        async move {
            repo.set_avatar(
                owner,
                &app_id,
                &avatar(id),
                &known("http://x/again.jpg"),
                NOW,
            )
            .await
        }
    };
    assert_eq!(again(2, app_id).await.unwrap(), Some(AvatarChange::Changed));
    assert_eq!(
        again(2, app_id).await.unwrap(),
        Some(AvatarChange::Unchanged)
    );
    assert_eq!(again(2, &unknown).await.unwrap(), None);
    assert_eq!(again(1, app_id).await.unwrap(), Some(AvatarChange::Changed));

    let history = repo.avatar_history(app_id).await.unwrap();
    assert_eq!(
        ids(&history),
        [
            avatar(1).id,
            avatar(2).id,
            avatar(1).id,
            avatar(2).id,
            avatar(1).id
        ]
    );
    let sources: Vec<_> = history.iter().map(|h| h.source_url.as_deref()).collect();
    assert_eq!(
        sources,
        [
            None,
            Some("http://x/2.jpg"),
            Some("http://x/1.jpg"),
            Some("http://x/again.jpg"),
            Some("http://x/again.jpg")
        ]
    );
    assert!(history.iter().all(|h| h.changed_at == NOW));
    assert_eq!(
        repo.find_account(owner, app_id)
            .await
            .unwrap()
            .unwrap()
            .avatar_id,
        avatar(1).id
    );
    let stored = Db::open(&data.settings.data_dir).await.avatar_ids().await;
    assert!(stored.contains(&avatar(2).id.to_string()));
    assert!(repo.avatar_history(&unknown).await.unwrap().is_empty());
}

/// Many writers, through two instances, all switching one account back to an
/// avatar it had before, at the same moment: exactly one of them moves the pointer
/// and appends to the history. (A stored avatar, because writers of a brand-new
/// one already queue on inserting its row.) Without a lock on the account row
/// (PostgreSQL's `FOR UPDATE`), several read the old pointer and each appends.
#[tokio::test]
async fn repository_updates_racing_from_two_instances_change_once() {
    const ROUNDS: u32 = 12;
    const WRITERS: usize = 8;
    let data = TestData::new().await;
    let instances = [data.repo().await, data.repo().await];
    let owner = instances[0]
        .insert_token("hash-race", None, NOW)
        .await
        .unwrap();
    let record = account("wxid_repo_race", &avatar(0));
    instances[1]
        .insert_account(owner, &record, &avatar(0), NOW)
        .await
        .unwrap();
    instances[0]
        .set_avatar(
            owner,
            &record.app_id,
            &avatar(1),
            &source("http://x/1.jpg"),
            NOW,
        )
        .await
        .unwrap();

    let mut expected = vec![avatar(0).id, avatar(1).id];
    for round in 0..ROUNDS {
        let target = avatar(round % 2);
        let barrier = Arc::new(Barrier::new(WRITERS));
        let writers = (0..WRITERS).map(|i| {
            let repo = instances[i % 2].clone();
            let barrier = barrier.clone();
            let app_id = record.app_id.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                // Half of them move the pointer alone (one statement), half in a
                // transaction that writes the source too.
                let source = if i % 4 < 2 {
                    known("http://x/again.jpg")
                } else {
                    source("http://x/again.jpg")
                };
                repo.set_avatar(owner, &app_id, &target, &source, NOW)
                    .await
                    .unwrap()
                    .unwrap()
            })
        });
        let changes = join_all(writers).await;
        let changed = changes
            .iter()
            .filter(|c| *c.as_ref().unwrap() == AvatarChange::Changed)
            .count();
        assert_eq!(changed, 1, "round {round}: {changes:?}");
        expected.push(target.id);
    }

    let history = instances[1].avatar_history(&record.app_id).await.unwrap();
    assert_eq!(ids(&history), expected);
}

/// Both engines' migrations end with the same tables and columns. Checked in the
/// PostgreSQL pass, where both engines are at hand.
#[tokio::test]
async fn both_engines_have_the_same_tables_and_columns() {
    if services::backend() != Backend::PgS3 {
        return;
    }
    let postgres = TestData::new().await;
    postgres.repo().await;
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = Settings {
        data_dir: sqlite_dir.path().to_owned(),
        ..Settings::default()
    };
    open_repo(&sqlite).await.unwrap();
    let pg_columns = Db::open(&postgres.settings.data_dir).await.columns().await;
    let sqlite_columns = Db::open(sqlite_dir.path()).await.columns().await;
    assert!(pg_columns.len() > 10, "{pg_columns:?}");
    assert_eq!(sqlite_columns, pg_columns);
}

/// A picture's hash leads back to the avatar rendered from it, once committed.
#[tokio::test]
async fn repository_remembers_which_picture_made_which_avatar() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = repo.insert_token("hash-sources", None, NOW).await.unwrap();
    let record = account("wxid_repo_sources", &avatar(1));
    repo.insert_account(owner, &record, &avatar(1), NOW)
        .await
        .unwrap();
    assert_eq!(repo.avatar_for_source("2.jpg").await.unwrap(), None);
    let stranger = repo.insert_token("hash-stranger", None, NOW).await.unwrap();
    repo.set_avatar(
        stranger,
        &record.app_id,
        &avatar(2),
        &source("http://x/2.jpg"),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        repo.avatar_for_source("2.jpg").await.unwrap(),
        None,
        "a refused change remembers nothing"
    );
    repo.set_avatar(
        owner,
        &record.app_id,
        &avatar(2),
        &source("http://x/2.jpg"),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        repo.avatar_for_source("2.jpg").await.unwrap(),
        Some(avatar(2))
    );
}

/// The ETag a URL answered is kept with the change that used its bytes,
/// replaced by the next, and forgotten when the URL answers none.
#[tokio::test]
async fn repository_remembers_the_etag_each_url_answered() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = repo.insert_token("hash-etags", None, NOW).await.unwrap();
    let record = account("wxid_repo_etags", &avatar(1));
    repo.insert_account(owner, &record, &avatar(1), NOW)
        .await
        .unwrap();
    let url = "http://x/tagged.jpg";
    let tagged = |etag, hash, n| {
        let source = AvatarSource {
            hash: Some(hash),
            etag,
            ..source(url)
        };
        let repo = Arc::clone(&repo);
        let app_id = record.app_id.clone();
        async move {
            repo.set_avatar(owner, &app_id, &avatar(n), &source, NOW)
                .await
                .unwrap()
        }
    };
    let app_id = &record.app_id;
    assert_eq!(repo.known_source(owner, app_id, url).await.unwrap(), None);
    tagged(Some("\"v1\""), "hash-v1", 2).await;
    // With the avatar the asking account points at now (none: not the asker's).
    let known = |etag: &str, n, current: Option<u32>| KnownSource {
        etag: etag.to_owned(),
        avatar: avatar(n),
        account_avatar: current.map(|c| avatar(c).id),
    };
    assert_eq!(
        repo.known_source(owner, app_id, url).await.unwrap(),
        Some(known("\"v1\"", 2, Some(2)))
    );
    tagged(Some("\"v2\""), "hash-v2", 3).await;
    assert_eq!(
        repo.known_source(owner, app_id, url).await.unwrap(),
        Some(known("\"v2\"", 3, Some(3)))
    );
    let stranger = repo.insert_token("hash-stranger", None, NOW).await.unwrap();
    assert_eq!(
        repo.known_source(stranger, app_id, url).await.unwrap(),
        Some(known("\"v2\"", 3, None))
    );
    let other = "http://x/other.jpg";
    assert_eq!(repo.known_source(owner, app_id, other).await.unwrap(), None);
    tagged(None, "hash-v3", 4).await;
    assert_eq!(repo.known_source(owner, app_id, url).await.unwrap(), None);
}

/// `GEWE_DATABASE_MAX_CONNECTIONS` bounds what one instance opens, under load.
#[tokio::test]
async fn an_instance_opens_at_most_its_connection_limit() {
    if services::backend() != Backend::PgS3 {
        return;
    }
    let mut data = TestData::new().await;
    data.settings.database_max_connections = 3;
    let repo = data.repo().await;
    let pings = (0..40).map(|_| {
        let repo = repo.clone();
        tokio::spawn(async move { repo.ping().await.unwrap() })
    });
    join_all(pings).await;
    let Db::Pg(pool) = Db::open(&data.settings.data_dir).await else {
        unreachable!("the PostgreSQL pass")
    };
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'gewe-server'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((1..=3).contains(&open), "{open} connections");
}

/// Change-limit slots: twenty reservations racing from four instances against a
/// limit of 5 take exactly 5; a released slot and an expired one are free
/// again; committing a change deletes its slot, and the change then counts
/// instead (once, not twice).
#[tokio::test]
async fn repository_reserves_change_slots_strictly_across_instances() {
    use gewe_server::domain::{ChangeReservation, ChangeSlot};

    const LIMIT: u64 = 5;
    let data = TestData::new().await;
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(data.repo().await);
    }
    let owner = instances[0]
        .insert_token("hash-slots", None, NOW)
        .await
        .unwrap();
    let record = account("wxid_repo_slots", &avatar(0));
    instances[0]
        .insert_account(owner, &record, &avatar(0), NOW)
        .await
        .unwrap();
    let since = NOW - 3600;
    let expires = NOW + 60;

    let barrier = Arc::new(Barrier::new(20));
    let racers = (0..20).map(|i| {
        let repo = instances[i % 4].clone();
        let barrier = barrier.clone();
        let app_id = record.app_id.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            repo.reserve_avatar_change(&app_id, since, LIMIT, NOW, expires)
                .await
                .unwrap()
                .unwrap()
        })
    });
    let slots: Vec<ChangeSlot> = join_all(racers)
        .await
        .into_iter()
        .filter_map(|r| match r.unwrap() {
            ChangeReservation::Reserved(slot) => Some(slot),
            ChangeReservation::Full(recent) => {
                assert_eq!(recent.count, LIMIT);
                assert_eq!(recent.oldest, Some(NOW));
                None
            }
        })
        .collect();
    assert_eq!(slots.len(), LIMIT as usize, "{slots:?}");

    let reserve = |repo: &Arc<dyn gewe_server::domain::Repository>, now: i64| {
        let (repo, app_id) = (repo.clone(), record.app_id.clone());
        async move {
            repo.reserve_avatar_change(&app_id, since, LIMIT, now, now + 60)
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Released: one is free again, and only one.
    instances[1].release_avatar_change(slots[0]).await.unwrap();
    let ChangeReservation::Reserved(again) = reserve(&instances[2], NOW).await else {
        panic!("a released slot is free");
    };
    assert!(matches!(
        reserve(&instances[3], NOW).await,
        ChangeReservation::Full(_)
    ));

    // A commit deletes its slot and counts as a change: still full, not over.
    let committed = AvatarSource {
        slot: Some(again),
        ..source("http://x/slot.jpg")
    };
    instances[0]
        .set_avatar(owner, &record.app_id, &avatar(7), &committed, NOW)
        .await
        .unwrap();
    assert!(matches!(
        reserve(&instances[0], NOW).await,
        ChangeReservation::Full(RecentChanges { count: 5, .. })
    ));
    instances[0].release_avatar_change(slots[1]).await.unwrap();
    assert!(matches!(
        reserve(&instances[1], NOW).await,
        ChangeReservation::Reserved(_)
    ));

    // Slots left by a process that died stop counting once expired; the
    // committed change still counts.
    let later = expires;
    let mut taken = 0;
    while let ChangeReservation::Reserved(_) = reserve(&instances[taken % 4], later).await {
        taken += 1;
        assert!(taken <= LIMIT as usize);
    }
    assert_eq!(taken, LIMIT as usize - 1);

    // No such account.
    assert_eq!(
        instances[0]
            .reserve_avatar_change(&AppId::generate(), since, LIMIT, NOW, expires)
            .await
            .unwrap(),
        None
    );
}
