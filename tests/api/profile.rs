use serde_json::json;

use crate::helpers::{PREFIXES, Setup, spawn_app, spawn_app_with};
use crate::pictures::decode;

const STRING_FIELDS: [&str; 12] = [
    "alias",
    "wxid",
    "nickName",
    "mobile",
    "province",
    "city",
    "signature",
    "country",
    "bigHeadImgUrl",
    "smallHeadImgUrl",
    "regCountry",
    "snsBgImg",
];

#[tokio::test]
async fn get_profile_answers_the_14_documented_fields_with_their_types() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    for prefix in PREFIXES {
        let envelope = app
            .call(
                &format!("{prefix}/personal/getProfile"),
                Some(&token),
                json!({"appId": app_id}),
            )
            .await;
        assert_eq!(envelope["ret"], 200);
        assert_eq!(envelope["msg"], "操作成功");
        let data = envelope["data"].as_object().unwrap();
        assert_eq!(data.len(), 14, "{data:?}");
        for field in STRING_FIELDS {
            assert!(
                data[field].is_string(),
                "{field} must be a string, never null: {data:?}"
            );
        }
        assert!(data["uin"].as_i64().unwrap() > 0);
        assert!(data["sex"].is_i64());
        assert!(data["wxid"].as_str().unwrap().starts_with("wxid_"));
    }
}

#[tokio::test]
async fn a_new_accounts_avatar_urls_already_resolve() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let profile = app.profile(&token, &app_id).await;
    let big = profile["bigHeadImgUrl"].as_str().unwrap();
    let small = profile["smallHeadImgUrl"].as_str().unwrap();
    assert!(big.starts_with(&app.base) && big.ends_with("/0"), "{big}");
    assert!(small.ends_with("/132"), "{small}");
    for (url, side) in [(big, 640), (small, 132)] {
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let picture = decode(&response.bytes().await.unwrap());
        assert_eq!(picture.dimensions(), (side, side));
    }
}

#[tokio::test]
async fn accounts_and_tokens_survive_a_restart() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let before = app.profile(&token, &app_id).await;
    let (data_dir, temp) = app.stop().await;

    let app = spawn_app_with(Setup {
        data_dir: Some(data_dir),
        ..Setup::default()
    })
    .await;
    let after = app.profile(&token, &app_id).await;
    let path_of = |url: &str| url.split("/mmhead/").nth(1).unwrap().to_owned();
    for field in ["wxid", "nickName", "uin"] {
        assert_eq!(before[field], after[field]);
    }
    let avatar = path_of(after["bigHeadImgUrl"].as_str().unwrap());
    assert_eq!(path_of(before["bigHeadImgUrl"].as_str().unwrap()), avatar);
    let response = app
        .client
        .get(after["bigHeadImgUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(temp);
}

/// The default avatar does not reveal whether a wxid exists: its seed is the
/// server secret's HMAC of the wxid, so servers with different secrets draw
/// different identicons for one wxid, and the avatar drawn from the wxid alone
/// (what anyone could compute) is not served.
#[tokio::test]
async fn the_default_avatar_is_not_computable_from_the_wxid() {
    use gewe_server::domain::AccountDraft;
    use gewe_server::imaging;

    let wxid = "wxid_probe_me_123";
    let mut ids = Vec::new();
    for _ in 0..2 {
        // A data dir of its own each: its own database, so its own secret.
        let app = spawn_app().await;
        let token = app.new_token().await;
        let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
        let account = app
            .state
            .accounts
            .create(
                owner,
                AccountDraft {
                    wxid: Some(wxid.to_owned()),
                    ..AccountDraft::default()
                },
            )
            .await
            .unwrap();
        let served = app
            .client
            .get(app.url(&format!("/mmhead/{}/46", account.avatar_id)));
        assert_eq!(served.send().await.unwrap().status(), 200);

        let guessed = imaging::default_avatar(wxid).content_id();
        assert_ne!(account.avatar_id, guessed, "seeded from the wxid alone");
        let probe = app.client.get(app.url(&format!("/mmhead/{guessed}/46")));
        assert_eq!(probe.send().await.unwrap().status(), 404);
        ids.push(account.avatar_id);
    }
    assert_ne!(ids[0], ids[1], "two secrets, one wxid: two identicons");
}
