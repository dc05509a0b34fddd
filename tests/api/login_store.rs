//! The login lifecycle's store contract, on the backend of the test run: the
//! server secret made once under a race, state transitions that happen once.

use futures_util::future::join_all;
use gewe_server::domain::{AppId, LoginState};

use crate::helpers::TestData;

const NOW: i64 = 1_750_000_000;

#[tokio::test]
async fn the_server_secret_is_made_once_even_when_instances_race() {
    let data = TestData::new().await;
    // Opened one after the other (migrations), then racing for the secret.
    let mut repos = Vec::new();
    for _ in 0..4 {
        repos.push(data.repo().await);
    }
    let secrets = join_all(repos.iter().map(|r| r.server_secret())).await;
    let first = *secrets[0].as_ref().unwrap();
    assert_ne!(first, [0u8; 32]);
    for secret in &secrets {
        assert_eq!(secret.as_ref().unwrap(), &first);
    }
    // And again later, from a new connection.
    assert_eq!(data.repo().await.server_secret().await.unwrap(), first);
}

#[tokio::test]
async fn instance_tokens_are_inserted_once() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let hash = "a".repeat(64);
    let ids = join_all((0..4).map(|_| repo.ensure_token(&hash, Some("instance"), NOW))).await;
    let first = ids[0].as_ref().unwrap();
    assert!(ids.iter().all(|id| id.as_ref().unwrap() == first));
    assert_eq!(repo.find_token(&hash).await.unwrap().as_ref(), Some(first));
}

#[tokio::test]
async fn a_login_state_transition_happens_once() {
    let data = TestData::new().await;
    let repo = data.repo().await;
    let owner = repo.insert_token(&"b".repeat(64), None, NOW).await.unwrap();
    let app_id = AppId::generate();
    repo.insert_device(owner, &app_id, NOW).await.unwrap();
    let device = repo.find_device(&app_id).await.unwrap().unwrap();
    assert_eq!(
        (device.owner, device.wxid, device.state),
        (owner, None, LoginState::Offline)
    );
    assert_eq!(
        repo.list_devices(owner).await.unwrap(),
        vec![app_id.clone()]
    );

    // Offline → online is not a transition set_login_state makes from "online".
    assert!(
        !repo
            .set_login_state(&app_id, LoginState::Online, LoginState::Dropped, NOW)
            .await
            .unwrap()
    );
    let racers =
        join_all((0..4).map(|_| {
            repo.set_login_state(&app_id, LoginState::Offline, LoginState::Dropped, NOW + 1)
        }))
        .await;
    let moved = racers.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(moved, 1, "exactly one racer moves the device");
    assert_eq!(
        repo.find_device(&app_id).await.unwrap().unwrap().state,
        LoginState::Dropped
    );
}
