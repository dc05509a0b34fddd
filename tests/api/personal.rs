//! The personal module beyond getProfile/updateHeadImg: updateProfile (with its
//! limits and history), getQrCode (decoded by a real QR decoder), getSafetyInfo
//! and privacySettings — on whichever backend the run uses.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{PREFIXES, TestApp, assert_error, spawn_app};
use crate::image_host::ImageHost;
use crate::pictures::jpeg;

async fn account(app: &TestApp) -> (String, String) {
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    (token, app_id)
}

async fn update(app: &TestApp, prefix: &str, token: &str, body: Value) -> Value {
    app.call(
        &format!("{prefix}/personal/updateProfile"),
        Some(token),
        body,
    )
    .await
}

fn assert_field_error(envelope: &Value, field: &str) {
    assert_error(envelope, "修改个人信息失败");
    assert_eq!(envelope["data"]["code"], "invalid-field", "{envelope}");
    let detail = envelope["data"]["msg"].as_str().unwrap();
    assert!(detail.contains(field), "{field} not named in {envelope}");
}

fn app_id_of(app_id: &str) -> gewe_server::domain::AppId {
    gewe_server::domain::AppId::parse(Some(app_id.to_owned())).unwrap()
}

#[tokio::test]
async fn update_profile_changes_what_is_given_and_nothing_else() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    let before = app.profile(&token, &app_id).await;
    // gewechat-client style: all seven keys, empty strings and null for the rest.
    let envelope = update(
        &app,
        PREFIXES[1],
        &token,
        json!({"appId": app_id, "nickName": "  小助手  ", "country": "", "province": null,
               "city": "", "sex": null, "signature": ""}),
    )
    .await;
    assert_eq!(envelope, json!({"ret": 200, "msg": "操作成功"}));
    let after = app.profile(&token, &app_id).await;
    assert_eq!(after["nickName"], "小助手");
    for field in [
        "country",
        "province",
        "city",
        "sex",
        "signature",
        "wxid",
        "uin",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }

    // opengewe style: sex as a string; gewe-http style: sex as a number; 0 is a value.
    for (sex, expected) in [
        (json!("1"), 1),
        (json!(2), 2),
        (json!(0), 0),
        (json!(" 2 "), 2),
    ] {
        let envelope = update(
            &app,
            PREFIXES[0],
            &token,
            json!({"appId": app_id, "sex": sex}),
        )
        .await;
        assert_eq!(envelope["ret"], 200, "{envelope}");
        assert_eq!(app.profile(&token, &app_id).await["sex"], expected);
    }
    let envelope = update(
        &app,
        PREFIXES[0],
        &token,
        json!({"appId": app_id, "country": "CN", "province": "Jiangsu", "city": "Xuzhou",
               "signature": "<script>alert(1)</script> & \"quotes\""}),
    )
    .await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
    let after = app.profile(&token, &app_id).await;
    assert_eq!(after["province"], "Jiangsu");
    assert_eq!(after["city"], "Xuzhou");
    assert_eq!(
        after["signature"], "<script>alert(1)</script> & \"quotes\"",
        "stored and returned verbatim"
    );

    // Every changed field is in the history, with old and new values.
    let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
    let history = app
        .state
        .profiles
        .history(owner, &app_id_of(&app_id))
        .await
        .unwrap();
    let fields: Vec<_> = history
        .iter()
        .map(|c| (c.field.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("nickName", "小助手"),
            ("sex", "1"),
            ("sex", "2"),
            ("sex", "0"),
            ("sex", "2"),
            ("province", "Jiangsu"),
            ("city", "Xuzhou"),
            ("signature", "<script>alert(1)</script> & \"quotes\""),
        ]
        .as_slice()
    );
    assert_eq!(history[0].old_value, before["nickName"].as_str().unwrap());
    let db = crate::common::db::Db::open(&app.data_dir).await;
    assert_eq!(db.count("SELECT COUNT(*) FROM profile_history").await, 8);

    // Setting the same values again changes nothing and records nothing.
    let envelope = update(
        &app,
        PREFIXES[0],
        &token,
        json!({"appId": app_id, "city": "Xuzhou", "sex": 2}),
    )
    .await;
    assert_eq!(envelope["ret"], 200);
    assert_eq!(db.count("SELECT COUNT(*) FROM profile_history").await, 8);
}

#[tokio::test]
async fn nicknames_are_counted_as_wechat_counts_them() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    let ok = [
        "字".repeat(16),
        "a".repeat(32),
        format!("{}{}", "字".repeat(15), "ab"),
        "😀".repeat(16),
        "👨‍👩‍👧".repeat(16),
    ];
    for name in ok {
        let envelope = update(
            &app,
            PREFIXES[0],
            &token,
            json!({"appId": app_id, "nickName": name}),
        )
        .await;
        assert_eq!(envelope["ret"], 200, "{name}: {envelope}");
        assert_eq!(
            app.profile(&token, &app_id).await["nickName"],
            name.as_str()
        );
    }
    let too_long = [
        "字".repeat(17),
        "a".repeat(33),
        format!("{}{}", "字".repeat(16), "a"),
        "😀".repeat(17),
    ];
    for name in too_long {
        let envelope = update(
            &app,
            PREFIXES[0],
            &token,
            json!({"appId": app_id, "nickName": name}),
        )
        .await;
        assert_field_error(&envelope, "nickName");
    }
    // Signature: 30 CJK or 60 ASCII.
    let envelope = update(
        &app,
        PREFIXES[0],
        &token,
        json!({"appId": app_id, "signature": "签".repeat(30)}),
    )
    .await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
    let envelope = update(
        &app,
        PREFIXES[0],
        &token,
        json!({"appId": app_id, "signature": "签".repeat(31)}),
    )
    .await;
    assert_field_error(&envelope, "signature");
}

#[tokio::test]
async fn bad_profile_updates_are_refused_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    let before = app.profile(&token, &app_id).await;
    let cases = [
        (json!({"sex": 3}), "sex"),
        (json!({"sex": "male"}), "sex"),
        (json!({"sex": "-1"}), "sex"),
        (json!({"city": "c".repeat(33)}), "city"),
        (json!({"country": "x".repeat(100_000 / 2)}), ""),
        (json!({"province": "江苏\u{0}"}), "province"),
        (json!({"nickName": "a\nb"}), "nickName"),
        (json!({"signature": "x".repeat(61)}), "signature"),
        (json!({"nickName": "ok", "city": "c".repeat(40)}), "city"),
    ];
    for (fields, field) in cases {
        let mut body = fields.clone();
        body["appId"] = json!(app_id);
        let envelope = update(&app, PREFIXES[0], &token, body).await;
        assert_eq!(envelope["ret"], 500, "{fields}: {envelope}");
        if !field.is_empty() {
            assert_field_error(&envelope, field);
        }
    }
    // Wrong JSON types are named too.
    for (body, field) in [
        (json!({"appId": app_id, "nickName": 5}), "nickName"),
        (json!({"appId": app_id, "sex": 1.5}), "sex"),
        (json!({"appId": app_id, "sex": true}), "sex"),
        (json!({"appId": app_id, "city": ["x"]}), "city"),
    ] {
        let envelope = update(&app, PREFIXES[0], &token, body).await;
        assert_eq!(envelope["ret"], 500, "{envelope}");
        assert_eq!(envelope["msg"], format!("{field}类型错误"), "{envelope}");
    }
    assert_eq!(app.profile(&token, &app_id).await, before);
}

#[tokio::test]
async fn another_tenants_device_does_not_exist_for_any_personal_route() {
    let app = spawn_app().await;
    let (_, app_id) = account(&app).await;
    let stranger = app.new_token().await;
    let routes = [
        (
            "updateProfile",
            json!({"appId": app_id, "nickName": "x"}),
            "修改个人信息失败",
        ),
        (
            "getQrCode",
            json!({"appId": app_id}),
            "获取自己的二维码失败",
        ),
        (
            "getSafetyInfo",
            json!({"appId": app_id}),
            "获取设备记录失败",
        ),
        (
            "privacySettings",
            json!({"appId": app_id, "option": 4, "open": true}),
            "隐私设置失败",
        ),
    ];
    for prefix in PREFIXES {
        for (route, body, msg) in &routes {
            let envelope = app
                .call(
                    &format!("{prefix}/personal/{route}"),
                    Some(&stranger),
                    body.clone(),
                )
                .await;
            assert_error(&envelope, msg);
            assert_eq!(envelope["data"]["code"], "-1");
            assert_eq!(envelope["data"]["msg"], format!("[{app_id}]设备不存在"));
        }
    }
}

/// Every QR code a real decoder (rqrr) finds in a JPEG.
fn scan(jpeg: &[u8]) -> Vec<String> {
    let image = image::load_from_memory(jpeg).unwrap().to_luma8();
    let (w, h) = image.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            image.get_pixel(x as u32, y as u32).0[0]
        });
    prepared
        .detect_grids()
        .iter()
        .map(|grid| grid.decode().expect("a found grid decodes").1)
        .collect()
}

async fn qr_code(app: &TestApp, prefix: &str, token: &str, app_id: &str) -> Vec<u8> {
    let envelope = app
        .call(
            &format!("{prefix}/personal/getQrCode"),
            Some(token),
            json!({"appId": app_id}),
        )
        .await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
    assert_eq!(envelope["msg"], "操作成功");
    let text = envelope["data"]["qrCode"].as_str().unwrap();
    assert!(!text.starts_with("data:"), "no data: prefix");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn get_qr_code_is_a_scannable_contact_card_that_follows_the_avatar() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    let (other_token, other) = account(&app).await;

    let first = qr_code(&app, PREFIXES[0], &token, &app_id).await;
    assert_eq!(&first[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    assert!(first.len() < 100 * 1024, "{} bytes", first.len());
    let content = scan(&first);
    assert_eq!(content.len(), 1, "{content:?}");
    let content = content[0].clone();
    let id = content.strip_prefix("https://u.wechat.com/").unwrap();
    assert_eq!(id.len(), 23, "{content}");
    let wxid = app.profile(&token, &app_id).await["wxid"].clone();
    assert!(!content.contains(wxid.as_str().unwrap()));

    // Same account, same card (also under the other prefix); another account, another code.
    assert_eq!(qr_code(&app, PREFIXES[1], &token, &app_id).await, first);
    let other_card = qr_code(&app, PREFIXES[0], &other_token, &other).await;
    assert_ne!(scan(&other_card), std::slice::from_ref(&content));

    // A new avatar: a new card, same content.
    let host = ImageHost::start().await;
    let url = host.serve("red.jpg", "image/jpeg", jpeg(300, 300, [255, 0, 0]));
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let second = qr_code(&app, PREFIXES[0], &token, &app_id).await;
    assert_ne!(second, first, "the new avatar shows");
    assert_eq!(scan(&second), std::slice::from_ref(&content));
    // The centre of the card is the new avatar's red.
    let card = image::load_from_memory(&second).unwrap().to_rgb8();
    let (w, h) = card.dimensions();
    let centre = card.get_pixel(w / 2, h / 2).0;
    assert!(
        centre[0] > 200 && centre[1] < 60 && centre[2] < 60,
        "{centre:?}"
    );

    // The content survives a restart: the server secret is stored.
    let (data_dir, _temp) = app.stop().await;
    let app = crate::helpers::spawn_app_with(crate::helpers::Setup {
        data_dir: Some(data_dir),
        ..Default::default()
    })
    .await;
    assert_eq!(
        scan(&qr_code(&app, PREFIXES[0], &token, &app_id).await),
        [content]
    );
}

#[tokio::test]
async fn get_safety_info_lists_login_devices_newest_first() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    let envelope = app
        .call(
            "/gewe/v2/api/personal/getSafetyInfo",
            Some(&token),
            json!({"appId": app_id}),
        )
        .await;
    assert_eq!(envelope["ret"], 200, "{envelope}");
    let list = envelope["data"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 1, "a created account starts with one device");
    let first = &list[0];
    assert_eq!(first["deviceName"], "iPad");
    assert_eq!(first["deviceType"], "iPad iOS17.2");
    let uuid = first["uuid"].as_str().unwrap();
    assert!(uuid.len() == 32 && uuid.chars().all(|c| c.is_ascii_hexdigit()));
    let created = first["lastTime"].as_i64().unwrap();
    assert!(created > 1_700_000_000);

    // What the login engineer's code will do on each login.
    let id = app_id_of(&app_id);
    let repo = &app.state.repo;
    repo.record_login_device(
        &id,
        "f7e4bda161f7a6a7361ca62141cded23",
        "MacBook",
        "iMac OSX",
        created + 10,
    )
    .await
    .unwrap();
    repo.record_login_device(
        &id,
        "087b139951b776e0416b5015d0b98109",
        "iPhone 13 Pro",
        "iPhone iOS17.2",
        created + 5,
    )
    .await
    .unwrap();
    // A known device logging in again moves to the top.
    repo.record_login_device(&id, uuid, "iPad", "iPad iOS17.3", created + 20)
        .await
        .unwrap();
    for prefix in PREFIXES {
        let envelope = app
            .call(
                &format!("{prefix}/personal/getSafetyInfo"),
                Some(&token),
                json!({"appId": app_id}),
            )
            .await;
        let list = envelope["data"]["list"].as_array().unwrap();
        let order: Vec<_> = list
            .iter()
            .map(|d| d["deviceName"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["iPad", "MacBook", "iPhone 13 Pro"]);
        assert_eq!(list[0]["deviceType"], "iPad iOS17.3");
        assert_eq!(list[0]["lastTime"], created + 20);
    }
}

#[tokio::test]
async fn privacy_settings_persist_including_open_false() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    for (option, open) in [
        (4, true),
        (7, false),
        (8, true),
        (25, false),
        (38, true),
        (39, false),
        (40, true),
        (8, false),
    ] {
        let envelope = app
            .call(
                "/v2/api/personal/privacySettings",
                Some(&token),
                json!({"appId": app_id, "option": option, "open": open}),
            )
            .await;
        assert_eq!(envelope, json!({"ret": 200, "msg": "操作成功"}));
    }
    let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
    let settings: Vec<_> = app
        .state
        .profiles
        .privacy_settings(owner, &app_id_of(&app_id))
        .await
        .unwrap()
        .iter()
        .map(|s| (s.option, s.open))
        .collect();
    assert_eq!(
        settings,
        [
            (4, true),
            (7, false),
            (8, false),
            (25, false),
            (38, true),
            (39, false),
            (40, true)
        ]
    );

    for (body, msg) in [
        (
            json!({"appId": app_id, "option": 5, "open": true}),
            "隐私设置失败",
        ),
        (json!({"appId": app_id, "option": 4}), "open不可为空"),
        (json!({"appId": app_id, "open": true}), "option不可为空"),
        (
            json!({"appId": app_id, "option": 4, "open": null}),
            "open不可为空",
        ),
        (
            json!({"appId": app_id, "option": 4, "open": "yes"}),
            "open类型错误",
        ),
        (
            json!({"appId": app_id, "option": "4", "open": true}),
            "option类型错误",
        ),
    ] {
        let envelope = app
            .call("/gewe/v2/api/personal/privacySettings", Some(&token), body)
            .await;
        assert_error(&envelope, msg);
    }
}

#[tokio::test]
async fn concurrent_profile_updates_all_land_and_each_is_recorded_once() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    let names: Vec<String> = (0..12).map(|i| format!("并发{i}")).collect();
    let calls = names.iter().map(|name| {
        update(
            &app,
            PREFIXES[0],
            &token,
            json!({"appId": app_id, "nickName": name}),
        )
    });
    for envelope in futures_util::future::join_all(calls).await {
        assert_eq!(envelope["ret"], 200, "{envelope}");
    }
    let owner = app.state.tokens.authenticate(Some(&token)).await.unwrap();
    let history = app
        .state
        .profiles
        .history(owner, &app_id_of(&app_id))
        .await
        .unwrap();
    assert_eq!(history.len(), names.len());
    // A chain: each change starts from the value the one before it wrote.
    for pair in history.windows(2) {
        assert_eq!(pair[1].old_value, pair[0].new_value);
    }
    let last = &history.last().unwrap().new_value;
    assert_eq!(
        app.profile(&token, &app_id).await["nickName"],
        last.as_str()
    );
}
