"""The operator's console in a real browser: sign in with the operator key,
every token's accounts, the journal, fault rules and message injection; token
sessions never see them."""

import re

from conftest import SERVER, api, new_account, new_token, sign_in, sign_in_as_operator


def test_the_operator_sees_the_accounts_of_two_tokens(page):
    first, second = new_token(), new_token()
    app_a = new_account(first, "甲令牌的号")
    app_b = new_account(second, "乙令牌的号")
    sign_in_as_operator(page)
    for app_id, nick in ((app_a, "甲令牌的号"), (app_b, "乙令牌的号")):
        tile = page.locator(f'a[href="/console/a/{app_id}"]')
        # The grid pages oldest first: go to the page with the tile.
        while tile.count() == 0:
            page.get_by_role("link", name="下一页").click()
            page.wait_for_load_state()
        assert nick in tile.inner_text()
        assert re.search(r"令牌: console-test \(#\d+\)", tile.locator(".owner").inner_text())
    # Any token's account page opens.
    page.goto(f"{SERVER}/console/a/{app_b}")
    assert page.locator("h1").inner_text().startswith("乙令牌的号")
    nav = page.get_by_role("navigation", name="主导航")
    for name in ("调用日志", "故障规则", "注入消息"):
        assert nav.get_by_role("link", name=name).count() == 1


def test_inject_a_message_and_see_gewe_calls_in_the_journal(page):
    token = new_token()
    app_id = new_account(token, "收消息的号")
    sign_in_as_operator(page)
    page.get_by_role("link", name="注入消息").click()
    page.get_by_label("appId").fill(app_id)
    page.get_by_label("发送者昵称").fill("<script>alert(1)</script>")
    page.get_by_label("内容").fill("你好 <b>机器人</b>")
    page.get_by_role("button", name="注入").click()
    page.wait_for_load_state()
    shown = page.locator(".injected")
    assert re.fullmatch(r"\d+", shown.locator(".msg-id").inner_text())
    assert re.fullmatch(r"\d+", shown.locator(".new-msg-id").inner_text())
    # The journal records GeWe calls: make one and find it, newest first.
    answer = api("/personal/getProfile", token, {"appId": app_id})
    assert answer["ret"] == 200, answer
    page.get_by_role("link", name="调用日志").click()
    page.get_by_label("appId").fill(app_id)
    page.get_by_role("button", name="筛选").click()
    page.wait_for_load_state()
    rows = page.locator("tr.entry")
    assert rows.count() >= 1
    newest = rows.first
    assert "personal/getProfile" in newest.locator(".route").inner_text()
    assert "console-test" in newest.inner_text()
    # Request and response fold away, and show as text.
    newest.get_by_text("响应").click()
    assert "收消息的号" in newest.locator("details").nth(1).locator("pre").inner_text()
    assert token not in page.content()
    # A filter on another route finds nothing from this account.
    page.get_by_label("接口").fill("message/postText")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_load_state()
    assert page.locator("tr.entry").count() == 0


def test_add_a_risk_control_rule_and_see_it_listed(page):
    token = new_token()
    app_id = new_account(token, "风控测试")
    sign_in_as_operator(page)
    page.get_by_role("link", name="故障规则").click()
    page.get_by_label("预设").select_option("risk-control")
    page.get_by_label("appId").fill(app_id)
    page.get_by_label("次数").fill("1")
    page.get_by_role("button", name="添加规则").click()
    page.wait_for_load_state()
    rule = page.locator("tr.rule", has_text=app_id)
    assert "personal/updateHeadImg" in rule.locator(".route").inner_text()
    assert "操作过于频繁" in rule.locator(".action").inner_text()
    assert rule.locator(".remaining").inner_text() == "1"
    assert rule.locator(".hits").inner_text() == "0"
    # The bot's next updateHeadImg meets it; the page counts the hit.
    answer = api("/personal/updateHeadImg", token, {"appId": app_id, "headImgUrl": "http://127.0.0.1:1/x.png"})
    assert answer["ret"] == 500 and "操作过于频繁" in str(answer), answer
    page.reload()
    rule = page.locator("tr.rule", has_text=app_id)
    assert rule.locator(".hits").inner_text() == "1"
    assert rule.locator(".remaining").inner_text() == "0"
    # A rule with nothing to do is refused with the reason (by the server).
    page.get_by_label("预设").select_option("")
    page.get_by_role("button", name="添加规则").click()
    page.locator("[role=alert]").wait_for()
    assert "route" in page.locator("[role=alert]").inner_text()


def test_token_sessions_get_403_on_operator_pages(page):
    token = new_token()
    sign_in(page, token)
    nav = page.get_by_role("navigation", name="主导航")
    assert nav.get_by_role("link", name="调用日志").count() == 0
    for path in ("/console/journal", "/console/faults", "/console/inject"):
        response = page.goto(f"{SERVER}{path}")
        assert response.status == 403, path
        assert "仅限运营者" in page.locator("[role=alert]").inner_text()
