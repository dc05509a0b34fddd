//! The outbox's contract, on the backend of the test run (SQLite under `cargo
//! test`, PostgreSQL in the second pass): per-device order, leases that run out
//! and are taken over, two instances claiming at once, and only tokens with a
//! callback URL getting events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::future::join_all;
use gewe_server::domain::{
    AppId, Lease, NewEvent, OutboxEvent, OutboxState, Repository, StoreError, TokenId, Wxid,
};
use tokio::sync::Barrier;

use crate::helpers::TestData;

const NOW: i64 = 1_750_000_000;

/// A claim with no deliveries to record first (the dispatcher's turn without
/// its first half).
trait Claim {
    async fn claim_events(
        &self,
        now: i64,
        lease: &Lease,
        devices: i64,
        per_device: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError>;
}

impl Claim for Arc<dyn Repository> {
    async fn claim_events(
        &self,
        now: i64,
        lease: &Lease,
        devices: i64,
        per_device: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let (_, claimed) = self
            .settle_and_claim(&[], now, lease, devices, per_device)
            .await?;
        Ok(claimed)
    }
}

fn lease(holder: &str, now: i64) -> Lease {
    Lease {
        holder: holder.to_owned(),
        until: now + 30,
    }
}

fn offline(owner: TokenId, app_id: &AppId, now: i64) -> NewEvent {
    NewEvent::offline(
        owner,
        app_id,
        &Wxid::from_trusted("wxid_contract".to_owned()),
        now,
    )
}

async fn token_with_callback(repo: &Arc<dyn Repository>, name: &str) -> TokenId {
    let owner = repo.insert_token(name, None, NOW).await.unwrap();
    repo.set_callback_url(owner, "http://127.0.0.1:9/cb", NOW)
        .await
        .unwrap();
    owner
}

#[tokio::test]
async fn events_are_written_only_for_tokens_with_a_callback_url() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let without = repo.insert_token("hash-none", None, NOW).await.unwrap();
    let app_id = AppId::generate();
    assert_eq!(
        repo.enqueue_event(&offline(without, &app_id, NOW))
            .await
            .unwrap(),
        None
    );
    let with = token_with_callback(&repo, "hash-with").await;
    let id = repo
        .enqueue_event(&offline(with, &app_id, NOW))
        .await
        .unwrap()
        .unwrap();
    let stored = repo.find_event(id).await.unwrap().unwrap();
    assert_eq!(
        stored.payload,
        offline(with, &app_id, NOW).payload,
        "bytes kept as written"
    );
    assert_eq!(stored.state, OutboxState::Pending);
    assert_eq!(repo.list_events(without, false, 10).await.unwrap(), vec![]);
    // The URL is replaced, not added.
    repo.set_callback_url(with, "http://127.0.0.1:10/cb", NOW)
        .await
        .unwrap();
    assert_eq!(
        repo.callback_url(with).await.unwrap().as_deref(),
        Some("http://127.0.0.1:10/cb")
    );
}

#[tokio::test]
async fn claims_keep_each_devices_order_and_one_in_flight_per_device() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = token_with_callback(&repo, "hash-order").await;
    let (x, y) = (AppId::generate(), AppId::generate());
    let mut ids = Vec::new();
    for app_id in [&x, &x, &y, &x] {
        ids.push(
            repo.enqueue_event(&offline(owner, app_id, NOW))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // Only the head of each device's queue.
    let claimed = repo
        .claim_events(NOW, &lease("a", NOW), 10, 1)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[0], ids[2]]
    );
    assert!(claimed.iter().all(|e| e.attempts == 1));
    assert!(
        repo.claim_events(NOW, &lease("a", NOW), 10, 1)
            .await
            .unwrap()
            .is_empty()
    );

    // x's head waits for a retry: x's later events wait behind it.
    assert!(
        repo.schedule_retry(ids[0], "a", NOW + 60, "callback-connect: down")
            .await
            .unwrap()
    );
    assert_eq!(repo.mark_delivered(&[ids[2]], "a", NOW).await.unwrap(), 1);
    assert!(
        repo.claim_events(NOW + 59, &lease("a", NOW + 59), 10, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = repo
        .claim_events(NOW + 60, &lease("a", NOW + 60), 10, 1)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0]]);
    assert_eq!(claimed[0].attempts, 2);
    assert_eq!(
        claimed[0].last_error.as_deref(),
        Some("callback-connect: down")
    );

    // A failed head no longer holds its device up.
    assert!(
        repo.mark_failed(ids[0], "a", NOW + 60, "too old")
            .await
            .unwrap()
    );
    let claimed = repo
        .claim_events(NOW + 60, &lease("a", NOW + 60), 10, 1)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
    assert_eq!(
        repo.mark_delivered(&[ids[1]], "a", NOW + 60).await.unwrap(),
        1
    );
    let claimed = repo
        .claim_events(NOW + 60, &lease("a", NOW + 60), 10, 1)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[3]]);

    let failed = repo.list_events(owner, true, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, ids[0]);
    assert_eq!(failed[0].state, OutboxState::Failed);
    // Retry by hand: due now, with a fresh age.
    assert!(repo.retry_event(ids[0], NOW + 100).await.unwrap());
    let retried = repo.find_event(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (retried.state, retried.age_from),
        (OutboxState::Pending, NOW + 100)
    );
    assert!(
        !repo.retry_event(ids[1], NOW + 100).await.unwrap(),
        "delivered"
    );
    assert!(
        !repo.retry_event(ids[3], NOW + 60).await.unwrap(),
        "in flight"
    );
}

#[tokio::test]
async fn a_lease_that_runs_out_is_taken_over() {
    let data = TestData::new().await;
    // Two instances on one database; the first "dies" holding a claim.
    let (dead, alive) = (data.repo().await, data.repo().await);
    let owner = token_with_callback(&dead, "hash-lease").await;
    let id = dead
        .enqueue_event(&offline(owner, &AppId::generate(), NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        dead.claim_events(NOW, &lease("dead", NOW), 10, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        alive
            .claim_events(NOW + 29, &lease("alive", NOW + 29), 10, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = alive
        .claim_events(NOW + 30, &lease("alive", NOW + 30), 10, 1)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].id, taken[0].attempts), (id, 2));
    // The late outcome of the dead holder is not recorded; the new holder's is.
    assert_eq!(
        dead.mark_delivered(&[id], "dead", NOW + 31).await.unwrap(),
        0
    );
    assert_eq!(
        alive
            .mark_delivered(&[id], "alive", NOW + 31)
            .await
            .unwrap(),
        1
    );
    // Pruned only once old enough.
    assert_eq!(alive.prune_delivered(NOW + 31).await.unwrap(), 0);
    assert_eq!(alive.prune_delivered(NOW + 32).await.unwrap(), 1);
    assert!(alive.find_event(id).await.unwrap().is_none());
}

#[tokio::test]
async fn deliveries_are_recorded_in_batches_and_only_where_the_lease_is_held() {
    let data = TestData::new().await;
    let (mine, theirs) = (data.repo().await, data.repo().await);
    let owner = token_with_callback(&mine, "hash-batch").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = mine
            .enqueue_event(&offline(owner, &AppId::generate(), NOW))
            .await
            .unwrap()
            .unwrap();
        ids.push(id);
    }
    assert_eq!(
        mine.claim_events(NOW, &lease("mine", NOW), 2, 1)
            .await
            .unwrap()
            .len(),
        2
    );
    let stolen = theirs
        .claim_events(NOW, &lease("theirs", NOW), 10, 1)
        .await
        .unwrap();
    assert_eq!(stolen.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[2]]);

    // One commit for the batch; the event this holder never held is left alone.
    assert_eq!(mine.mark_delivered(&ids, "mine", NOW).await.unwrap(), 2);
    for (id, state) in ids.iter().zip(["delivered", "delivered", "pending"]) {
        let event = mine.find_event(*id).await.unwrap().unwrap();
        assert_eq!(event.state.as_str(), state, "event {id}");
    }
    assert_eq!(mine.mark_delivered(&[], "mine", NOW).await.unwrap(), 0);
}

#[tokio::test]
async fn a_deep_backlog_on_one_device_neither_hides_nor_reorders_the_others() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = token_with_callback(&repo, "hash-backlog").await;
    // Five devices (their appIds sort in random order), each with a queue behind
    // its head; device 0 is first and has 40 events.
    let devices: Vec<AppId> = (0..5).map(|_| AppId::generate()).collect();
    let mut queues: Vec<Vec<i64>> = vec![Vec::new(); devices.len()];
    for round in 0..40 {
        for (d, app_id) in devices.iter().enumerate() {
            if round < 3 || d == 0 {
                let id = repo
                    .enqueue_event(&offline(owner, app_id, NOW))
                    .await
                    .unwrap();
                queues[d].push(id.unwrap());
            }
        }
    }
    // Device 0's head is in flight: none of its 39 later events may go, and
    // every other device's head is found, oldest first, one per device.
    let first = repo
        .claim_events(NOW, &lease("a", NOW), 1, 1)
        .await
        .unwrap();
    let busy = devices
        .iter()
        .position(|d| *d == first[0].app_id)
        .expect("a known device");
    assert_eq!(first[0].id, queues[busy][0]);
    let claimed = repo
        .claim_events(NOW, &lease("a", NOW), 10, 1)
        .await
        .unwrap();
    let mut heads: Vec<i64> = (0..devices.len())
        .filter(|d| *d != busy)
        .map(|d| queues[d][0])
        .collect();
    heads.sort();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), heads);
    // Heads delivered: each device's second event is next, never a third.
    let done: Vec<i64> = claimed.iter().map(|e| e.id).chain([first[0].id]).collect();
    assert_eq!(
        repo.mark_delivered(&done, "a", NOW).await.unwrap(),
        devices.len() as u64
    );
    let claimed = repo
        .claim_events(NOW, &lease("a", NOW), 10, 1)
        .await
        .unwrap();
    let mut seconds: Vec<i64> = queues.iter().map(|q| q[1]).collect();
    seconds.sort();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), seconds);
}

#[tokio::test]
async fn two_instances_claiming_at_once_never_take_the_same_event() {
    const DEVICES: usize = 24;
    let data = TestData::new().await;
    let instances = [data.repo().await, data.repo().await];
    let owner = token_with_callback(&instances[0], "hash-race").await;
    for _ in 0..DEVICES {
        let app_id = AppId::generate();
        for _ in 0..2 {
            instances[0]
                .enqueue_event(&offline(owner, &app_id, NOW))
                .await
                .unwrap();
        }
    }
    let barrier = Arc::new(Barrier::new(8));
    let claims = (0..8).map(|i| {
        let repo = instances[i % 2].clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            repo.claim_events(NOW, &lease(&format!("h{i}"), NOW), 4, 2)
                .await
                .unwrap()
        })
    });
    let claims: Vec<Vec<OutboxEvent>> = join_all(claims)
        .await
        .into_iter()
        .map(|c| c.unwrap())
        .collect();
    let ids: HashSet<i64> = claims.iter().flatten().map(|e| e.id).collect();
    let events = claims.iter().map(Vec::len).sum::<usize>();
    assert_eq!(ids.len(), events, "an event claimed twice");
    let mut holders: HashMap<String, usize> = HashMap::new();
    for (holder, claim) in claims.iter().enumerate() {
        for event in claim {
            let first = *holders.entry(event.app_id.to_string()).or_insert(holder);
            assert_eq!(first, holder, "one device's events with two holders");
        }
    }
    assert!(holders.len() <= DEVICES);
}

#[tokio::test]
async fn a_claim_takes_the_queue_behind_a_head_and_gets_back_what_it_did_not_try() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = token_with_callback(&repo, "hash-queue").await;
    let (x, y) = (AppId::generate(), AppId::generate());
    let mut xs = Vec::new();
    for _ in 0..5 {
        xs.push(
            repo.enqueue_event(&offline(owner, &x, NOW))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let y_head = repo
        .enqueue_event(&offline(owner, &y, NOW))
        .await
        .unwrap()
        .unwrap();
    let claimed = repo
        .claim_events(NOW, &lease("a", NOW), 10, 3)
        .await
        .unwrap();
    let of_x: Vec<i64> = claimed
        .iter()
        .filter(|e| e.app_id == x)
        .map(|e| e.id)
        .collect();
    // SQLite takes the head and what queues behind it; PostgreSQL the head only.
    let taken = if data.settings.database_url.is_some() {
        1
    } else {
        3
    };
    assert_eq!(of_x, xs[..taken]);
    assert!(claimed.iter().any(|e| e.id == y_head));
    assert!(claimed.iter().all(|e| e.attempts == 1));
    assert!(
        repo.claim_events(NOW, &lease("b", NOW), 10, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing of a device while its head is held"
    );

    // The head's attempt failed: the events behind it go back untried, and
    // only by their holder.
    assert!(
        repo.schedule_retry(xs[0], "a", NOW + 60, "callback-connect: down")
            .await
            .unwrap()
    );
    assert_eq!(repo.release_events(&of_x[1..], "b").await.unwrap(), 0);
    assert_eq!(
        repo.release_events(&of_x[1..], "a").await.unwrap(),
        of_x.len() as u64 - 1
    );
    for id in &xs[1..] {
        assert_eq!(repo.find_event(*id).await.unwrap().unwrap().attempts, 0);
    }
    assert!(
        repo.claim_events(NOW + 59, &lease("a", NOW + 59), 10, 10)
            .await
            .unwrap()
            .iter()
            .all(|e| e.app_id != x),
        "the queue waits for its head's retry"
    );
    let again = repo
        .claim_events(NOW + 60, &lease("a", NOW + 60), 10, 10)
        .await
        .unwrap();
    let taken = if data.settings.database_url.is_some() {
        1
    } else {
        5
    };
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), xs[..taken]);
    assert_eq!(again[0].attempts, 2);
}

#[tokio::test]
async fn a_turn_records_its_deliveries_then_claims_what_they_held_up() {
    let data = TestData::new().await;
    let (mine, theirs) = (data.repo().await, data.repo().await);
    let owner = token_with_callback(&mine, "hash-turn").await;
    let x = AppId::generate();
    let mut xs = Vec::new();
    for _ in 0..2 {
        xs.push(
            mine.enqueue_event(&offline(owner, &x, NOW))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let head = mine
        .claim_events(NOW, &lease("mine", NOW), 10, 1)
        .await
        .unwrap();
    assert_eq!(head.iter().map(|e| e.id).collect::<Vec<_>>(), [xs[0]]);
    // Another holder's turn records nothing of mine and claims nothing of x.
    let (held, claimed) = theirs
        .settle_and_claim(&[xs[0]], NOW, &lease("theirs", NOW), 10, 1)
        .await
        .unwrap();
    assert_eq!((held, claimed.len()), (0, 0));
    // Mine: the head is delivered, and what queued behind it is claimed.
    let (held, claimed) = mine
        .settle_and_claim(&[xs[0]], NOW, &lease("mine", NOW), 10, 1)
        .await
        .unwrap();
    assert_eq!(held, 1);
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [xs[1]]);
    let first = mine.find_event(xs[0]).await.unwrap().unwrap();
    assert_eq!(first.state, OutboxState::Delivered);
    let (held, claimed) = mine
        .settle_and_claim(&[], NOW, &lease("mine", NOW), 10, 1)
        .await
        .unwrap();
    assert_eq!((held, claimed.len()), (0, 0));
}
