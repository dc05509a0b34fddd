use serde_json::json;

use crate::helpers::{PREFIXES, spawn_app};

#[tokio::test]
async fn check_online_answers_true_for_own_devices_only() {
    let app = spawn_app().await;
    let alice = app.new_token().await;
    let bob = app.new_token().await;
    let device = app.new_account(&alice).await;
    for prefix in PREFIXES {
        let path = format!("{prefix}/login/checkOnline");
        let own = app
            .call(&path, Some(&alice), json!({"appId": device}))
            .await;
        assert_eq!(own, json!({"ret": 200, "msg": "操作成功", "data": true}));
        let foreign = app.call(&path, Some(&bob), json!({"appId": device})).await;
        assert_eq!(
            foreign,
            json!({"ret": 500, "msg": "查询在线状态失败", "data": {"code": "-1", "msg": format!("[{device}]设备不存在")}})
        );
    }
}

#[tokio::test]
async fn device_list_lists_the_tokens_devices_and_nobody_elses() {
    let app = spawn_app().await;
    let alice = app.new_token().await;
    let bob = app.new_token().await;
    let first = app.new_account(&alice).await;
    let second = app.new_account(&alice).await;
    app.new_account(&bob).await;
    for prefix in PREFIXES {
        let path = format!("{prefix}/login/deviceList");
        let listed = app.call(&path, Some(&alice), json!({})).await;
        assert_eq!(
            (&listed["ret"], &listed["msg"]),
            (&json!(200), &json!("操作成功"))
        );
        // Accounts made within the same second have no defined order between them.
        let mut devices: Vec<String> = serde_json::from_value(listed["data"].clone()).unwrap();
        devices.sort();
        let mut expected = vec![first.clone(), second.clone()];
        expected.sort();
        assert_eq!(devices, expected);
        let other = app.call(&path, Some(&bob), json!({})).await;
        assert_eq!(other["data"].as_array().unwrap().len(), 1);
        let fresh = app.new_token().await;
        assert_eq!(
            app.call(&path, Some(&fresh), json!({})).await["data"],
            json!([])
        );
    }
}
