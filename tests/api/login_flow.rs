//! The login lifecycle with the emulated phone: QR, scan, captcha, expiry,
//! binding, logout, kick, reconnection, dialogLogin, offline errors.

use std::time::Duration;

use gewe_server::domain::{Clock, ScanMode};
use serde_json::{Value, json};

use crate::helpers::{PREFIXES, Setup, TestApp, assert_error_detail, spawn_app, spawn_app_with};

const QR: &str = "/v2/api/login/getLoginQrCode";
const CHECK: &str = "/v2/api/login/checkLogin";

fn manual(settings: &mut gewe_server::config::Settings) {
    settings.login_scan = ScanMode::Manual;
}

/// getLoginQrCode as gewechat-client sends it; returns `data`.
async fn qr(app: &TestApp, token: &str, app_id: &str) -> Value {
    let envelope = app
        .call(
            QR,
            Some(token),
            json!({"appId": app_id, "type": "ipad", "regionId": "320000", "proxyIp": ""}),
        )
        .await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
    envelope["data"].clone()
}

async fn check(app: &TestApp, token: &str, app_id: &str, uuid: &str) -> Value {
    app.call(
        CHECK,
        Some(token),
        json!({"appId": app_id, "uuid": uuid, "autoSliding": false}),
    )
    .await
}

fn status(envelope: &Value) -> i64 {
    assert_eq!(envelope["ret"], 200, "{envelope}");
    let data = &envelope["data"];
    assert!(
        data["expiredTime"].is_i64(),
        "expiredTime is a number: {envelope}"
    );
    data["status"].as_i64().unwrap()
}

/// From an empty appId to status 2 in auto mode; returns (appId, wxid).
async fn login_new_device(app: &TestApp, token: &str) -> (String, String) {
    let data = qr(app, token, "").await;
    let app_id = data["appId"].as_str().unwrap().to_owned();
    let uuid = data["uuid"].as_str().unwrap().to_owned();
    assert_eq!(status(&check(app, token, &app_id, &uuid).await), 1);
    let done = check(app, token, &app_id, &uuid).await;
    assert_eq!(status(&done), 2, "{done}");
    (
        app_id,
        done["data"]["loginInfo"]["wxid"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn online(app: &TestApp, token: &str, app_id: &str) -> Value {
    app.call(
        "/v2/api/login/checkOnline",
        Some(token),
        json!({"appId": app_id}),
    )
    .await["data"]
        .clone()
}

#[tokio::test]
async fn auto_mode_logs_a_new_device_in_from_an_empty_app_id() {
    let app = spawn_app().await;
    let token = app.instance_token().await;
    let data = qr(&app, &token, "").await;
    let app_id = data["appId"].as_str().unwrap().to_owned();
    let uuid = data["uuid"].as_str().unwrap().to_owned();
    assert!(app_id.starts_with("wx_"), "{data}");
    assert_eq!(data["qrData"], format!("http://weixin.qq.com/x/{uuid}"));
    let picture = data["qrImgBase64"].as_str().unwrap();
    assert!(
        picture.starts_with("data:image/jpg;base64,/9j/"),
        "{picture:.40}"
    );

    // A new device exists, offline, with no account yet.
    let listed = app
        .call("/v2/api/login/deviceList", Some(&token), json!({}))
        .await;
    assert_eq!(listed["data"], json!([app_id]));
    assert_eq!(online(&app, &token, &app_id).await, json!(false));
    let profile = app
        .call(
            "/gewe/v2/api/personal/getProfile",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_eq!(
        profile,
        json!({"ret": 500, "msg": "获取个人资料失败", "data": {"code": "-1", "msg": "微信已离线"}})
    );

    let scanned = check(&app, &token, &app_id, &uuid).await;
    assert_eq!(status(&scanned), 1, "{scanned}");
    let nick = scanned["data"]["nickName"].as_str().unwrap().to_owned();
    assert!(nick.starts_with("微信用户"), "{scanned}");
    let avatar = scanned["data"]["headImgUrl"].as_str().unwrap().to_owned();
    assert!(avatar.contains("/mmhead/"), "{scanned}");
    assert_eq!(scanned["data"]["loginInfo"], Value::Null);
    let picture = app.client.get(&avatar).send().await.unwrap();
    assert_eq!(picture.status(), 200);

    let done = check(&app, &token, &app_id, &uuid).await;
    assert_eq!(status(&done), 2, "{done}");
    assert!(done["data"]["expiredTime"].as_i64().unwrap() > 5, "{done}");
    let info = &done["data"]["loginInfo"];
    for key in ["wxid", "nickName", "mobile", "alias"] {
        assert!(info[key].is_string(), "{key} is a string: {done}");
    }
    assert!(info["uin"].is_i64(), "{done}");
    assert_eq!(info["nickName"], nick.as_str());
    assert_eq!(done["data"]["headImgUrl"], avatar.as_str());
    // Polling again keeps answering status 2.
    assert_eq!(status(&check(&app, &token, &app_id, &uuid).await), 2);

    assert_eq!(online(&app, &token, &app_id).await, json!(true));
    let profile = app.profile(&token, &app_id).await;
    assert_eq!(profile["wxid"], info["wxid"]);
    assert_eq!(profile["nickName"], nick.as_str());
    assert_eq!(profile["bigHeadImgUrl"], avatar.as_str());

    // Online now: frameworks match this exact answer to skip logging in.
    for prefix in PREFIXES {
        let again = app
            .call(
                &format!("{prefix}/login/getLoginQrCode"),
                Some(&token),
                json!({"appId": app_id}),
            )
            .await;
        assert_eq!(
            again,
            json!({"ret": 500, "msg": "微信已登录，请勿重复登录。"})
        );
    }
}

#[tokio::test]
async fn manual_mode_waits_for_the_operator_and_logs_in_as_named() {
    let app = spawn_app_with(Setup {
        tweak: manual,
        ..Setup::default()
    })
    .await;
    let token = app.instance_token().await;
    let data = qr(&app, &token, "").await;
    let (app_id, uuid) = (
        data["appId"].as_str().unwrap(),
        data["uuid"].as_str().unwrap(),
    );
    for _ in 0..3 {
        let waiting = check(&app, &token, app_id, uuid).await;
        assert_eq!(status(&waiting), 0, "{waiting}");
        assert_eq!(waiting["data"]["headImgUrl"], Value::Null);
        assert_eq!(waiting["data"]["nickName"], Value::Null);
        assert_eq!(waiting["data"]["loginInfo"], Value::Null);
        assert_eq!(waiting["data"]["uuid"], uuid);
    }
    let confirmed = app
        .state
        .logins
        .confirm(
            uuid,
            Some("wxid_operator01".into()),
            Some("值班机器人".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(confirmed.to_string(), app_id);
    let scanned = check(&app, &token, app_id, uuid).await;
    assert_eq!(status(&scanned), 1);
    assert_eq!(scanned["data"]["nickName"], "值班机器人");
    let done = check(&app, &token, app_id, uuid).await;
    assert_eq!(status(&done), 2, "{done}");
    assert_eq!(done["data"]["loginInfo"]["wxid"], "wxid_operator01");
    assert_eq!(app.profile(&token, app_id).await["nickName"], "值班机器人");
}

#[tokio::test]
async fn a_security_code_is_asked_for_until_it_is_given() {
    let app = spawn_app_with(Setup {
        tweak: manual,
        ..Setup::default()
    })
    .await;
    let token = app.instance_token().await;
    let data = qr(&app, &token, "").await;
    let (app_id, uuid) = (
        data["appId"].as_str().unwrap(),
        data["uuid"].as_str().unwrap(),
    );
    app.state
        .logins
        .confirm(uuid, None, None, Some("246810".into()))
        .await
        .unwrap();
    assert_eq!(status(&check(&app, &token, app_id, uuid).await), 1);
    let asked = json!({"ret": 500, "msg": "检测登录失败",
        "data": {"code": "-1", "msg": "本次登录需要输入安全验证码"}});
    assert_eq!(check(&app, &token, app_id, uuid).await, asked);
    let wrong = app
        .call(
            CHECK,
            Some(&token),
            json!({"appId": app_id, "uuid": uuid, "captchCode": "111111"}),
        )
        .await;
    assert_eq!(wrong, asked);
    assert_eq!(online(&app, &token, app_id).await, json!(false));
    let right = app
        .call(
            CHECK,
            Some(&token),
            json!({"appId": app_id, "uuid": uuid, "captchCode": "246810"}),
        )
        .await;
    assert_eq!(status(&right), 2, "{right}");
    assert_eq!(online(&app, &token, app_id).await, json!(true));
}

#[tokio::test]
async fn a_qr_counts_down_and_expires_by_the_clock() {
    let (clock, hand) = Clock::manual();
    let app = spawn_app_with(Setup {
        clock: Some(clock),
        tweak: manual,
        ..Setup::default()
    })
    .await;
    let token = app.instance_token().await;
    let data = qr(&app, &token, "").await;
    let (app_id, uuid) = (
        data["appId"].as_str().unwrap(),
        data["uuid"].as_str().unwrap(),
    );
    let first = check(&app, &token, app_id, uuid).await;
    assert_eq!(first["data"]["expiredTime"], 240, "{first}");
    hand.advance(Duration::from_secs(100));
    let later = check(&app, &token, app_id, uuid).await;
    assert_eq!(later["data"]["expiredTime"], 140, "{later}");
    hand.advance(Duration::from_secs(140));
    let expired = check(&app, &token, app_id, uuid).await;
    assert_error_detail(&expired, "检测登录失败", "已过期");
    assert!(
        app.state
            .logins
            .confirm(uuid, None, None, None)
            .await
            .is_err(),
        "an expired QR cannot be confirmed"
    );
    // A new QR for the same device works.
    let fresh = qr(&app, &token, app_id).await;
    assert_eq!(fresh["appId"], app_id);
    assert_eq!(
        status(&check(&app, &token, app_id, fresh["uuid"].as_str().unwrap()).await),
        0
    );

    let unknown = check(&app, &token, app_id, "NoSuchUuid0000000000").await;
    assert_error_detail(&unknown, "检测登录失败", "不存在");
}

#[tokio::test]
async fn unknown_and_foreign_devices_do_not_exist_for_get_login_qr_code() {
    let app = spawn_app().await;
    let alice = app.instance_token().await;
    let bob = app.new_token().await;
    let (bobs, _) = login_new_device(&app, &bob).await;
    for app_id in ["wx_c1S4-3qQlshHufGvRYpc2", bobs.as_str()] {
        let envelope = app.call(QR, Some(&alice), json!({"appId": app_id})).await;
        assert_eq!(
            envelope,
            json!({"ret": 500, "msg": "获取二维码失败",
                   "data": {"code": "-1", "msg": format!("[{app_id}]设备不存在")}})
        );
    }
    // Nor can another token poll someone else's QR.
    let logout = app
        .call("/v2/api/login/logout", Some(&bob), json!({"appId": bobs}))
        .await;
    assert_eq!(logout, json!({"ret": 200, "msg": "操作成功"}));
    let data = qr(&app, &bob, &bobs).await;
    let foreign = check(&app, &alice, &bobs, data["uuid"].as_str().unwrap()).await;
    assert_error_detail(&foreign, "检测登录失败", "不存在");
}

#[tokio::test]
async fn logout_takes_the_device_offline_and_it_logs_back_in_as_the_same_wxid() {
    let app = spawn_app().await;
    let token = app.instance_token().await;
    let (app_id, wxid) = login_new_device(&app, &token).await;
    for prefix in PREFIXES {
        let out = app
            .call(
                &format!("{prefix}/login/logout"),
                Some(&token),
                json!({"appId": app_id}),
            )
            .await;
        assert_eq!(out, json!({"ret": 200, "msg": "操作成功"}));
    }
    assert_eq!(online(&app, &token, &app_id).await, json!(false));
    let profile = app
        .call(
            "/v2/api/personal/getProfile",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_eq!(
        profile,
        json!({"ret": 500, "msg": "获取个人资料失败", "data": {"code": "-1", "msg": "微信已离线"}})
    );
    let head = app
        .update_head_img(&token, &app_id, "http://127.0.0.1:9/none.jpg")
        .await;
    assert_eq!(
        head,
        json!({"ret": 500, "msg": "修改头像失败", "data": {"code": "-1", "msg": "微信已离线"}})
    );
    // The whole personal module acts as the account: offline, it refuses too.
    for (route, body) in [
        (
            "updateProfile",
            json!({"appId": app_id, "nickName": "离线"}),
        ),
        ("getQrCode", json!({"appId": app_id})),
        ("getSafetyInfo", json!({"appId": app_id})),
        (
            "privacySettings",
            json!({"appId": app_id, "option": 4, "open": true}),
        ),
    ] {
        let answer = app
            .call(&format!("/v2/api/personal/{route}"), Some(&token), body)
            .await;
        assert_eq!(answer["ret"], 500, "{route}: {answer}");
        assert_eq!(
            answer["data"],
            json!({"code": "-1", "msg": "微信已离线"}),
            "{route}"
        );
    }
    // Still the token's device.
    let listed = app
        .call("/v2/api/login/deviceList", Some(&token), json!({}))
        .await;
    assert_eq!(listed["data"], json!([app_id]));
    // Reconnection is for dropped devices, not logged-out ones.
    let reconnect = app
        .call(
            "/v2/api/login/reconnection",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_error_detail(&reconnect, "断线重连失败", "已退出登录");

    // Logging in again with the device's appId: the phone is the bound account.
    let data = qr(&app, &token, &app_id).await;
    let uuid = data["uuid"].as_str().unwrap();
    assert_eq!(data["appId"], app_id.as_str());
    assert_eq!(status(&check(&app, &token, &app_id, uuid).await), 1);
    let done = check(&app, &token, &app_id, uuid).await;
    assert_eq!(status(&done), 2);
    assert_eq!(done["data"]["loginInfo"]["wxid"], wxid.as_str());
    assert_eq!(online(&app, &token, &app_id).await, json!(true));
}

#[tokio::test]
async fn a_bound_device_refuses_another_wxid() {
    let app = spawn_app().await;
    let token = app.instance_token().await;
    let (app_id, wxid) = login_new_device(&app, &token).await;
    app.call(
        "/v2/api/login/logout",
        Some(&token),
        json!({"appId": app_id}),
    )
    .await;
    let data = qr(&app, &token, &app_id).await;
    let uuid = data["uuid"].as_str().unwrap();
    app.state
        .logins
        .confirm(uuid, Some("wxid_someoneelse1".into()), None, None)
        .await
        .unwrap();
    assert_eq!(status(&check(&app, &token, &app_id, uuid).await), 1);
    let refused = check(&app, &token, &app_id, uuid).await;
    assert_eq!(
        refused,
        json!({"ret": 500, "msg": "检测登录失败，扫码登录的微信与设备绑定微信不同，请使用当前设备所属的微信登录。"})
    );
    assert_eq!(online(&app, &token, &app_id).await, json!(false));
    assert_eq!(
        app.state
            .accounts
            .profile(
                app.state.tokens.authenticate(Some(&token)).await.unwrap(),
                &app_id.parse_app_id()
            )
            .await
            .unwrap()
            .wxid
            .to_string(),
        wxid
    );
}

#[tokio::test]
async fn a_kicked_device_reconnects_and_cli_accounts_stay_online() {
    let app = spawn_app().await;
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    assert_eq!(online(&app, &token, &app_id).await, json!(true));
    let not_dropped = app
        .call(
            "/v2/api/login/reconnection",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_error_detail(&not_dropped, "断线重连失败", "无需断线重连");

    app.state.logins.kick(&app_id.parse_app_id()).await.unwrap();
    assert_eq!(online(&app, &token, &app_id).await, json!(false));
    let profile = app
        .call(
            "/v2/api/personal/getProfile",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_error_detail(&profile, "获取个人资料失败", "微信已离线");

    for prefix in PREFIXES {
        let back = app
            .call(
                &format!("{prefix}/login/reconnection"),
                Some(&token),
                json!({"appId": app_id}),
            )
            .await;
        if prefix == PREFIXES[0] {
            assert_eq!(back["ret"], 200, "{back}");
            assert_eq!(back["data"]["status"], 2);
            assert!(back["data"]["expiredTime"].as_i64().unwrap() > 5);
            assert!(back["data"]["loginInfo"]["wxid"].is_string(), "{back}");
        } else {
            assert_error_detail(&back, "断线重连失败", "无需断线重连");
        }
    }
    assert_eq!(online(&app, &token, &app_id).await, json!(true));
    assert_eq!(
        app.profile(&token, &app_id).await["wxid"]
            .as_str()
            .unwrap()
            .len(),
        19
    );
}

#[tokio::test]
async fn dialog_login_needs_a_bound_offline_device() {
    let app = spawn_app().await;
    let token = app.instance_token().await;
    // A device with no account yet.
    let fresh = qr(&app, &token, "").await["appId"]
        .as_str()
        .unwrap()
        .to_owned();
    let unbound = app
        .call(
            "/v2/api/login/dialogLogin",
            Some(&token),
            json!({"appId": fresh, "regionId": "320000"}),
        )
        .await;
    assert_error_detail(&unbound, "弹框登录失败", "请先扫码登录");

    let (app_id, wxid) = login_new_device(&app, &token).await;
    let online_now = app
        .call(
            "/v2/api/login/dialogLogin",
            Some(&token),
            json!({"appId": app_id, "regionId": "320000"}),
        )
        .await;
    assert_eq!(
        online_now,
        json!({"ret": 500, "msg": "微信已登录，请勿重复登录。"})
    );

    app.call(
        "/v2/api/login/logout",
        Some(&token),
        json!({"appId": app_id}),
    )
    .await;
    let prompt = app
        .call(
            "/gewe/v2/api/login/dialogLogin",
            Some(&token),
            json!({"appId": app_id, "regionId": "320000"}),
        )
        .await;
    assert_eq!(prompt["ret"], 200, "{prompt}");
    assert_eq!(prompt["data"]["appId"], app_id.as_str());
    let uuid = prompt["data"]["uuid"].as_str().unwrap();
    assert_eq!(status(&check(&app, &token, &app_id, uuid).await), 1);
    let done = check(&app, &token, &app_id, uuid).await;
    assert_eq!(status(&done), 2);
    assert_eq!(done["data"]["loginInfo"]["wxid"], wxid.as_str());
    assert_eq!(online(&app, &token, &app_id).await, json!(true));

    let unknown = app
        .call(
            "/v2/api/login/dialogLogin",
            Some(&token),
            json!({"appId": "wx_c1S4-3qQlshHufGvRYpc2"}),
        )
        .await;
    assert_error_detail(&unknown, "弹框登录失败", "设备不存在");
}

#[tokio::test]
async fn a_login_survives_a_restart() {
    let app = spawn_app().await;
    let token = app.instance_token().await;
    let (app_id, wxid) = login_new_device(&app, &token).await;
    let (data_dir, _keep) = app.stop().await;
    let app = spawn_app_with(Setup {
        data_dir: Some(data_dir),
        ..Setup::default()
    })
    .await;
    assert_eq!(app.instance_token().await, token);
    assert_eq!(online(&app, &token, &app_id).await, json!(true));
    assert_eq!(app.profile(&token, &app_id).await["wxid"], wxid.as_str());
}

trait ParseAppId {
    fn parse_app_id(&self) -> gewe_server::domain::AppId;
}
impl ParseAppId for String {
    fn parse_app_id(&self) -> gewe_server::domain::AppId {
        gewe_server::domain::AppId::parse(Some(self.clone())).unwrap()
    }
}
