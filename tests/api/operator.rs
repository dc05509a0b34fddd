//! The test control plane: the operator API's key, injected messages and their
//! `AddMsg` callbacks, message/postText, the journal, fault rules, reset and
//! fixtures. Run on both backends (the PG+S3 pass reruns this binary).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, spawn_app, spawn_app_with};
use crate::receiver::{Mode, Receiver};

const KEY: &str = "operator-key-for-tests-0123456789";
const HEADER: &str = "X-GEWE-OPERATOR-KEY";
const PATIENCE: Duration = Duration::from_secs(10);

async fn spawn_operated() -> TestApp {
    spawn_app_with(Setup {
        tweak: |s| s.operator_key = Some(KEY.into()),
        ..Setup::default()
    })
    .await
}

async fn operate(app: &TestApp, action: &str, body: Value) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/operator/{action}")))
        .header(HEADER, KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn ok(app: &TestApp, action: &str, body: Value) -> Value {
    let answer = operate(app, action, body).await;
    assert_eq!(answer["ret"], 200, "{action}: {answer}");
    answer["data"].clone()
}

/// A token with an online account whose callbacks go to a fresh receiver.
async fn bot(app: &TestApp) -> (String, String, Receiver) {
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let receiver = Receiver::start(Mode::Ok).await;
    let set = app
        .call(
            "/v2/api/tools/setCallback",
            Some(&token),
            json!({"token": token, "callbackUrl": receiver.url()}),
        )
        .await;
    assert_eq!(set["ret"], 200, "{set}");
    receiver.wait_for(1, PATIENCE).await;
    (token, app_id, receiver)
}

#[tokio::test]
async fn the_operator_api_is_off_without_a_key_and_refuses_wrong_keys() {
    let off = spawn_app().await;
    let response = off
        .client
        .post(off.url("/operator/journal"))
        .header(HEADER, KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["code"], "operator-off", "{body}");

    let app = spawn_operated().await;
    let token = app.new_token().await;
    for presented in [
        None,
        Some("wrong-key-wrong-key-wrong"),
        Some(token.as_str()),
    ] {
        let mut request = app
            .client
            .post(app.url("/operator/journal"))
            .json(&json!({}));
        if let Some(key) = presented {
            request = request.header(HEADER, key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{presented:?}");
    }
    // The key in the GeWe header is no key either.
    let response = app
        .client
        .post(app.url("/operator/journal"))
        .header("X-GEWE-TOKEN", KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_stored_operator_key_turns_the_api_on_and_works() {
    let first = spawn_app().await;
    let key = first.state.operator_keys.create(Some("ci")).await.unwrap();
    assert!(key.starts_with("gop_"));
    let (data_dir, temp) = first.stop().await;
    let app = spawn_app_with(Setup {
        data_dir: Some(data_dir),
        ..Setup::default()
    })
    .await;
    let response = app
        .client
        .post(app.url("/operator/journal"))
        .header(HEADER, &key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(temp);
}

#[tokio::test]
async fn an_injected_private_message_reaches_the_bot_in_gewes_exact_shape() {
    let app = spawn_operated().await;
    let (token, app_id, receiver) = bot(&app).await;
    let profile = app.profile(&token, &app_id).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let injected = ok(
        &app,
        "injectMessage",
        json!({"appId": app_id, "fromWxid": "wxid_friend0001", "fromNickName": "朝夕。",
               "content": "你好"}),
    )
    .await;
    let bodies = receiver.wait_for(2, PATIENCE).await;
    let raw = &bodies[1];
    // Key order and wrappers, byte for byte where GeWe fixes them.
    let prefix = format!(
        "{{\"TypeName\":\"AddMsg\",\"Appid\":\"{app_id}\",\"Wxid\":\"{}\",\"Data\":{{\"MsgId\":{},\
         \"FromUserName\":{{\"string\":\"wxid_friend0001\"}},\"ToUserName\":{{\"string\":\"{}\"}},\
         \"MsgType\":1,\"Content\":{{\"string\":\"你好\"}},\"Status\":3,\"ImgStatus\":1,\
         \"ImgBuf\":{{\"iLen\":0}},\"CreateTime\":",
        profile["wxid"].as_str().unwrap(),
        injected["msgId"],
        profile["wxid"].as_str().unwrap(),
    );
    assert!(raw.starts_with(&prefix), "{raw}\nexpected prefix {prefix}");
    let new_msg_id = injected["newMsgId"].as_i64().unwrap();
    assert!(new_msg_id > (1_i64 << 53));
    // The 64-bit id is written as an exact integer, not rounded.
    assert!(
        raw.contains(&format!(
            "\"PushContent\":\"朝夕。 : 你好\",\"NewMsgId\":{new_msg_id},\"MsgSeq\":{}}}}}",
            injected["msgSeq"]
        )),
        "{raw}"
    );
    let event: Value = serde_json::from_str(raw).unwrap();
    let created = event["Data"]["CreateTime"].as_i64().unwrap();
    assert!(
        (before..=before + 5).contains(&created),
        "CreateTime is now"
    );
    assert!(
        event["Data"]["MsgSource"]
            .as_str()
            .unwrap()
            .starts_with("<msgsource>")
    );
    assert_eq!(injected["fromWxid"], "wxid_friend0001");
    assert!(injected["eventId"].is_i64());
}

#[tokio::test]
async fn injected_messages_are_sent_when_committed_not_at_the_next_poll() {
    // The dispatcher looks at the outbox once at start, then not for an hour:
    // only the commit's signal can send these in time.
    let app = spawn_app_with(Setup {
        tweak: |s| {
            s.operator_key = Some(KEY.into());
            s.callback_poll_ms = 3_600_000;
        },
        ..Setup::default()
    })
    .await;
    let (_token, app_id, receiver) = bot(&app).await;
    for n in 0..3 {
        ok(
            &app,
            "injectMessage",
            json!({"appId": app_id, "fromWxid": "wxid_friend0001", "content": format!("m{n}")}),
        )
        .await;
    }
    let bodies = receiver.wait_for(4, PATIENCE).await;
    // In the order they were injected.
    let contents: Vec<String> = bodies[1..]
        .iter()
        .map(|raw| {
            let event: Value = serde_json::from_str(raw).unwrap();
            event["Data"]["Content"]["string"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(contents, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn a_group_mention_carries_the_sender_prefix_the_atuserlist_and_the_push_text() {
    let app = spawn_operated().await;
    let (token, app_id, receiver) = bot(&app).await;
    let wxid = app.profile(&token, &app_id).await["wxid"]
        .as_str()
        .unwrap()
        .to_owned();
    let nick = app.profile(&token, &app_id).await["nickName"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &app,
        "injectMessage",
        json!({"appId": app_id, "fromWxid": "wxid_member001", "fromNickName": "小王",
               "chatroomId": "34757816141@chatroom", "chatroomName": "测试群",
               "content": "换头像", "atSelf": true}),
    )
    .await;
    let bodies = receiver.wait_for(2, PATIENCE).await;
    let event: Value = serde_json::from_str(&bodies[1]).unwrap();
    let data = &event["Data"];
    assert_eq!(data["FromUserName"]["string"], "34757816141@chatroom");
    assert_eq!(data["ToUserName"]["string"], wxid.as_str());
    assert_eq!(
        data["Content"]["string"],
        format!("wxid_member001:\n@{nick}\u{2005}换头像")
    );
    assert_eq!(data["PushContent"], "小王在群聊中@了你");
    assert!(
        data["MsgSource"]
            .as_str()
            .unwrap()
            .contains(&format!("<atuserlist><![CDATA[{wxid}]]></atuserlist>")),
        "{data}"
    );
    // The group and the member are now the account's contacts: postText to the
    // group works, and produces no callback.
    let sent = app
        .call(
            "/gewe/v2/api/message/postText",
            Some(&token),
            json!({"appId": app_id, "toWxid": "34757816141@chatroom", "content": "好的",
                   "ats": "wxid_member001"}),
        )
        .await;
    assert_eq!(sent["ret"], 200, "{sent}");
    assert_eq!(sent["data"]["toWxid"], "34757816141@chatroom");
    assert_eq!(sent["data"]["type"], 1);
    assert!(sent["data"]["newMsgId"].as_i64().unwrap() > (1_i64 << 53));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.bodies().len(), 2, "postText makes no callback");
    let messages = ok(&app, "listMessages", json!({"appId": app_id})).await;
    let list = messages["messages"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["direction"], "out");
    assert_eq!(list[1]["content"], "好的");
}

#[tokio::test]
async fn post_text_refuses_strangers_empty_and_overlong_content_and_offline_accounts() {
    let app = spawn_operated().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    let post = |to: &'static str, content: String| {
        let app_id = app_id.clone();
        let token = token.clone();
        let app = &app;
        async move {
            app.call(
                "/v2/api/message/postText",
                Some(&token),
                json!({"appId": app_id, "toWxid": to, "content": content}),
            )
            .await
        }
    };
    let stranger = post("wxid_nobody0001", "hi".into()).await;
    assert_eq!(stranger["ret"], 500);
    assert_eq!(stranger["msg"], "发送文字消息失败");
    assert!(
        stranger["data"]["msg"]
            .as_str()
            .unwrap()
            .contains("wxid_nobody0001")
    );
    let empty = post("filehelper", "  ".into()).await;
    assert_eq!(empty["data"]["msg"], "content不可为空", "{empty}");
    let long = post("filehelper", "字".repeat(16_385)).await;
    assert!(
        long["data"]["msg"].as_str().unwrap().contains("过长"),
        "{long}"
    );
    assert_eq!(post("filehelper", "备忘".into()).await["ret"], 200);
    ok(&app, "dropOffline", json!({"appId": app_id})).await;
    let offline = post("filehelper", "hi".into()).await;
    assert_eq!(offline["data"]["msg"], "微信已离线", "{offline}");
    assert_eq!(offline["data"]["code"], "-1");
}

#[tokio::test]
async fn the_journal_keeps_every_call_per_token_redacted_and_filterable() {
    let app = spawn_operated().await;
    let a = app.new_token().await;
    let b = app.new_token().await;
    let app_a = app.new_account(&a).await;
    let app_b = app.new_account(&b).await;
    app.profile(&a, &app_a).await;
    app.profile(&b, &app_b).await;
    app.call(
        "/v2/api/tools/setCallback",
        Some(&a),
        json!({"token": a, "callbackUrl": "http://127.0.0.1:9/unreachable"}),
    )
    .await;
    let entries = ok(&app, "journal", json!({"token": a})).await["entries"].clone();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["route"], "personal/getProfile");
    assert_eq!(entries[0]["appId"], app_a.as_str());
    assert_eq!(entries[0]["response"]["ret"], 200);
    assert_eq!(entries[1]["route"], "tools/setCallback");
    assert_eq!(entries[1]["request"]["token"], "[redacted]");
    assert!(
        !entries[1].to_string().contains(&a),
        "the token never shows"
    );
    let by_route = ok(&app, "journal", json!({"route": "personal/getProfile"})).await;
    assert_eq!(by_route["entries"].as_array().unwrap().len(), 2);
    let by_app = ok(&app, "journal", json!({"appId": app_b})).await;
    assert_eq!(by_app["entries"].as_array().unwrap().len(), 1);
    let later = ok(&app, "journal", json!({"since": i64::MAX / 2})).await;
    assert!(later["entries"].as_array().unwrap().is_empty());
    assert_eq!(
        ok(&app, "clearJournal", json!({"token": a})).await["deleted"],
        2
    );
    let left = ok(&app, "journal", json!({})).await;
    assert_eq!(
        left["entries"].as_array().unwrap().len(),
        1,
        "b's call stays"
    );
}

#[tokio::test]
async fn the_journal_is_bounded_per_token() {
    let app = spawn_app_with(Setup {
        tweak: |s| {
            s.operator_key = Some(KEY.into());
            s.journal_limit = 10;
        },
        ..Setup::default()
    })
    .await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    for _ in 0..130 {
        app.profile(&token, &app_id).await;
    }
    let entries = ok(&app, "journal", json!({"token": token, "limit": 1000})).await;
    let count = entries["entries"].as_array().unwrap().len();
    // Trimmed every 64 calls: never more than the limit plus one step.
    assert!((10..10 + 64).contains(&count), "{count} entries kept");
}

#[tokio::test]
async fn a_risk_control_fault_answers_only_where_it_says_and_only_as_often() {
    let app = spawn_operated().await;
    let token = app.new_token().await;
    let other = app.new_token().await;
    let target = app.new_account(&token).await;
    let sibling = app.new_account(&token).await;
    let foreign = app.new_account(&other).await;
    let rule = ok(
        &app,
        "addFault",
        json!({"token": token, "preset": "risk-control", "appId": target, "times": 2}),
    )
    .await;
    assert_eq!(rule["route"], "personal/updateHeadImg");
    let url = "http://127.0.0.1:9/never-fetched.jpg";
    for _ in 0..2 {
        let refused = app.update_head_img(&token, &target, url).await;
        assert_eq!(refused["msg"], "修改头像失败", "{refused}");
        assert_eq!(
            refused["data"]["msg"],
            gewe_server::domain::RISK_CONTROL_MSG
        );
    }
    // Used up: the route answers for itself again (the closed port).
    let third = app.update_head_img(&token, &target, url).await;
    assert_ne!(
        third["data"]["msg"],
        gewe_server::domain::RISK_CONTROL_MSG,
        "{third}"
    );
    // Other appIds of the token, and other tokens, never matched.
    let rule2 = ok(
        &app,
        "addFault",
        json!({"token": token, "preset": "offline", "route": "personal/getProfile", "appId": target}),
    )
    .await;
    assert!(rule2["id"].is_i64());
    assert!(app.profile(&token, &sibling).await["wxid"].is_string());
    assert!(app.profile(&other, &foreign).await["wxid"].is_string());
    let dropped = app
        .call(
            "/gewe/v2/api/personal/getProfile",
            Some(&token),
            json!({"appId": target}),
        )
        .await;
    assert_eq!(dropped["data"]["msg"], "微信已离线");
    let rules = ok(&app, "listFaults", json!({"token": token})).await;
    assert_eq!(rules["rules"][0]["hits"], 2);
    assert_eq!(rules["rules"][0]["remaining"], 0);
    assert_eq!(ok(&app, "clearFaults", json!({})).await["deleted"], 2);
    app.profile(&token, &target).await;
}

#[tokio::test]
async fn a_fraction_is_reproducible_from_its_seed() {
    async fn pattern(seed: i64) -> Vec<bool> {
        let app = spawn_operated().await;
        let token = app.new_token().await;
        let app_id = app.new_account(&token).await;
        ok(
            &app,
            "addFault",
            json!({"route": "personal/getSafetyInfo", "preset": "offline",
                   "probability": 0.5, "seed": seed}),
        )
        .await;
        let mut taken = Vec::new();
        for _ in 0..24 {
            let answer = app
                .call(
                    "/gewe/v2/api/personal/getSafetyInfo",
                    Some(&token),
                    json!({"appId": app_id}),
                )
                .await;
            taken.push(answer["ret"] == 500);
        }
        taken
    }
    let first = pattern(7).await;
    assert_eq!(first, pattern(7).await, "same seed, same calls");
    assert!(
        first.iter().any(|t| *t) && first.iter().any(|t| !*t),
        "{first:?}"
    );
    assert_ne!(first, pattern(8).await);
}

#[tokio::test]
async fn a_close_rule_drops_the_connection_and_a_delay_rule_waits() {
    let app = spawn_operated().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    ok(
        &app,
        "addFault",
        json!({"route": "personal/getProfile", "preset": "disconnect", "times": 1}),
    )
    .await;
    let dropped = app
        .client
        .post(app.url("/v2/api/personal/getProfile"))
        .header("X-GEWE-TOKEN", &token)
        .json(&json!({"appId": app_id}))
        .send()
        .await;
    assert!(dropped.is_err(), "no answer at all: {dropped:?}");
    ok(
        &app,
        "addFault",
        json!({"route": "personal/getProfile", "delayMs": 300, "times": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    app.profile(&token, &app_id).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let entries = ok(&app, "journal", json!({"token": token})).await;
    assert!(
        entries
            .to_string()
            .contains("connection closed by fault rule")
    );
}

#[tokio::test]
async fn reset_removes_what_a_token_owns_and_leaves_other_tokens_alone() {
    let app = spawn_operated().await;
    let (token, app_id, _receiver) = bot(&app).await;
    let other = app.new_token().await;
    let kept = app.new_account(&other).await;
    ok(
        &app,
        "injectMessage",
        json!({"appId": app_id, "content": "hi"}),
    )
    .await;
    app.profile(&other, &kept).await;
    ok(
        &app,
        "addFault",
        json!({"token": token, "route": "personal/getProfile", "delayMs": 1}),
    )
    .await;
    let reset = ok(&app, "reset", json!({"token": token})).await;
    assert_eq!(reset["removed"], 1);
    let gone = app
        .call(
            "/v2/api/personal/getProfile",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert!(
        gone["data"]["msg"].as_str().unwrap().contains("设备不存在"),
        "{gone}"
    );
    assert!(app.profile(&other, &kept).await["wxid"].is_string());
    let rules = ok(&app, "listFaults", json!({})).await;
    assert!(rules["rules"].as_array().unwrap().is_empty());
    let journal = ok(&app, "journal", json!({"token": other})).await;
    assert!(
        !journal["entries"].as_array().unwrap().is_empty(),
        "other journal kept"
    );
    // The token itself still works, and its callback URL stays.
    let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
    assert!(
        app.state
            .callbacks
            .callback_url(owner)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_fixture_applied_twice_changes_nothing_the_second_time() {
    let app = spawn_operated().await;
    let fixture = json!({"tokens": [{
        "token": "0123456789abcdef0123456789abcdef", "label": "ci",
        "accounts": [{"appId": "wx_fixture_bot_0000001", "wxid": "wxid_fixturebot01",
                      "nickName": "测试机器人", "city": "Nanjing",
                      "contacts": [{"wxid": "wxid_fixturefriend", "nickName": "老朋友"}],
                      "groups": [{"id": "1234567@chatroom", "name": "测试群"}]}]}]});
    let first = ok(&app, "seed", fixture.clone()).await;
    assert_eq!(
        first,
        json!({"tokens": 1, "accountsCreated": 1, "accountsUpdated": 0, "contacts": 2})
    );
    let second = ok(&app, "seed", fixture).await;
    assert_eq!(second["accountsCreated"], 0);
    assert_eq!(second["accountsUpdated"], 0);
    let profile = app
        .profile("0123456789abcdef0123456789abcdef", "wx_fixture_bot_0000001")
        .await;
    assert_eq!(profile["wxid"], "wxid_fixturebot01");
    assert_eq!(profile["nickName"], "测试机器人");
    let history = app
        .state
        .profiles
        .history(
            app.state
                .tokens
                .authenticate(Some("0123456789abcdef0123456789abcdef"))
                .await
                .unwrap(),
            &gewe_server::domain::AppId::parse(Some("wx_fixture_bot_0000001".into())).unwrap(),
        )
        .await
        .unwrap();
    assert!(history.is_empty(), "no change recorded: {history:?}");
    let sent = app
        .call(
            "/v2/api/message/postText",
            Some("0123456789abcdef0123456789abcdef"),
            json!({"appId": "wx_fixture_bot_0000001", "toWxid": "1234567@chatroom", "content": "hi"}),
        )
        .await;
    assert_eq!(sent["ret"], 200, "{sent}");
    let bad = operate(&app, "seed", json!({"tokens": [{"token": "short"}]})).await;
    assert_eq!(bad["data"]["code"], "invalid-fixture", "{bad}");
}
