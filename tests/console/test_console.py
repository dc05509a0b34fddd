"""The console in a real browser: sign in, avatars, profile, login, callbacks,
escaping and cross-site refusal."""

import base64
import re
import time
import urllib.error
import urllib.request

from conftest import SERVER, api, new_account, new_token, png, sign_in


def current_avatar_id(page):
    src = page.locator("img.avatar.s0").get_attribute("src")
    return re.fullmatch(r"/mmhead/([0-9a-f]{32})/0", src).group(1)


def profile_avatar_id(token, app_id):
    answer = api("/personal/getProfile", token, {"appId": app_id})
    assert answer["ret"] == 200, answer
    return re.search(r"/mmhead/([0-9a-f]{32})/0$", answer["data"]["bigHeadImgUrl"]).group(1)


def test_sign_in_shows_the_accounts_and_no_token_in_urls(page):
    token = new_token()
    app_id = new_account(token, "登录测试")
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, token)
    tile = page.locator(f'a[href="/console/a/{app_id}"]')
    assert "登录测试" in tile.inner_text()
    assert "在线" in tile.inner_text()
    # The grid shows the 132 px variant, and it loads.
    img = tile.locator("img")
    assert re.fullmatch(r"/mmhead/[0-9a-f]{32}/132", img.get_attribute("src"))
    page.wait_for_function("img => img.complete && img.naturalWidth == 132", arg=img.element_handle())
    assert all(token not in url for url in requests)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["gewe_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert token not in session["value"]
    # A wrong token is refused; signing out ends the session.
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(f"{SERVER}/console/login")
    page.goto(f"{SERVER}/console")
    assert page.url.endswith("/console/login")
    page.get_by_label("GeWe 令牌").fill("0" * 32)
    page.get_by_role("button", name="登录").click()
    assert "令牌无效" in page.locator("[role=alert]").inner_text()


def test_upload_drop_and_restore_avatars(page, tmp_path):
    token = new_token()
    app_id = new_account(token)
    sign_in(page, token)
    page.goto(f"{SERVER}/console/a/{app_id}")
    first = current_avatar_id(page)
    assert page.locator(".sizes img").count() == 5

    # Upload through the plain file input.
    picture = tmp_path / "red.png"
    picture.write_bytes(png(300, 300, (220, 30, 30)))
    page.get_by_label(re.compile("上传图片")).set_input_files(str(picture))
    page.get_by_role("button", name="上传并换头像").click()
    page.wait_for_load_state()
    uploaded = current_avatar_id(page)
    assert uploaded != first
    assert profile_avatar_id(token, app_id) == uploaded
    page.wait_for_function(
        "() => [...document.querySelectorAll('.sizes img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "upload:red.png" in page.locator(".history").inner_text()

    # Drop a picture on the upload form (the drag-and-drop path).
    blue = base64.b64encode(png(200, 200, (30, 30, 220))).decode()
    with page.expect_navigation():
        page.evaluate(
            """b64 => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], 'blue.png', {type: 'image/png'}));
                const form = document.querySelector('form[data-drop]');
                form.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
            }""",
            blue,
        )
    dropped = current_avatar_id(page)
    assert dropped not in (first, uploaded)
    assert profile_avatar_id(token, app_id) == dropped

    # Use the first (generated) avatar again: a change with its own history row.
    rows_before = page.locator(".history li").count()
    page.locator(".history li", has=page.locator(f'input[value="{first}"]')).get_by_role(
        "button", name=re.compile("重新使用")
    ).click()
    page.wait_for_load_state()
    assert current_avatar_id(page) == first
    assert profile_avatar_id(token, app_id) == first
    assert page.locator(".history li").count() == rows_before + 1
    assert f"restore:{first}" in page.locator(".history li.current").inner_text()


def test_a_picture_that_is_not_one_is_refused_with_the_reason(page, tmp_path):
    token = new_token()
    app_id = new_account(token)
    sign_in(page, token)
    page.goto(f"{SERVER}/console/a/{app_id}")
    before = current_avatar_id(page)
    text = tmp_path / "notes.png"
    text.write_bytes(b"just some text, not a picture")
    page.get_by_label(re.compile("上传图片")).set_input_files(str(text))
    page.get_by_role("button", name="上传并换头像").click()
    assert "图片无法使用" in page.locator("[role=alert]").inner_text()
    assert profile_avatar_id(token, app_id) == before


def test_edit_the_profile_and_the_xss_nickname_stays_text(page):
    token = new_token()
    app_id = new_account(token)
    sign_in(page, token)
    page.goto(f"{SERVER}/console/a/{app_id}")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    nasty = "<img src=x onerror=alert(1)>"
    page.get_by_label("昵称").fill(nasty)
    page.get_by_label("城市").fill("深圳")
    page.get_by_label("性别").select_option("2")
    page.get_by_label("个性签名").fill("你好 <b>世界</b>")
    page.get_by_role("button", name="保存资料").click()
    page.wait_for_load_state()
    answer = api("/personal/getProfile", token, {"appId": app_id})["data"]
    assert (answer["nickName"], answer["city"], answer["sex"]) == (nasty, "深圳", 2)
    assert answer["signature"] == "你好 <b>世界</b>"
    # Shown as text everywhere: the heading, the form, the grid.
    assert page.locator("h1").inner_text().startswith(nasty)
    assert page.get_by_label("昵称").input_value() == nasty
    page.goto(f"{SERVER}/console")
    assert nasty in page.locator(f'a[href="/console/a/{app_id}"] .nick').inner_text()
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("b", has_text="世界").count() == 0
    assert dialogs == []
    # WeChat's rules apply: a 17-character Chinese nickname is refused, with why.
    page.goto(f"{SERVER}/console/a/{app_id}")
    page.get_by_label("昵称").fill("字" * 17)
    page.get_by_role("button", name="保存资料").click()
    assert "nickName过长" in page.locator("[role=alert]").inner_text()
    assert api("/personal/getProfile", token, {"appId": app_id})["data"]["nickName"] == nasty


def test_privacy_switch_and_contact_card(page):
    token = new_token()
    app_id = new_account(token)
    sign_in(page, token)
    page.goto(f"{SERVER}/console/a/{app_id}")
    row = page.locator("tr", has_text="加我为朋友时需要验证")
    row.get_by_role("button").click()
    page.wait_for_load_state()
    assert "开" in page.locator("tr", has_text="加我为朋友时需要验证").inner_text()
    card = page.get_by_alt_text(re.compile("名片二维码"))
    page.wait_for_function("img => img.complete && img.naturalWidth > 200", arg=card.element_handle())
    assert page.locator("h2", has_text="登录设备").count() == 1


def test_confirm_a_pending_login(page):
    token = new_token()
    qr = api("/login/getLoginQrCode", token, {"appId": "", "type": "ipad", "regionId": "320000"})
    assert qr["ret"] == 200, qr
    app_id, uuid = qr["data"]["appId"], qr["data"]["uuid"]
    sign_in(page, token)
    tile = page.locator(f'a[href="/console/a/{app_id}"]')
    assert "待登录" in tile.inner_text()
    tile.click()
    panel = page.locator("#login-panel")
    assert "等待扫码" in panel.inner_text()
    assert uuid in panel.inner_text()
    qr_img = panel.get_by_alt_text("登录二维码")
    assert qr_img.get_attribute("src").startswith("data:image/jpeg;base64,")
    page.get_by_label("扫码昵称").fill("扫码的人")
    page.get_by_role("button", name="模拟手机: 扫码").click()
    page.wait_for_load_state()
    assert "已扫码" in page.locator("#login-panel").inner_text()
    # The bot's poll sees the scan.
    check = api("/login/checkLogin", token, {"appId": app_id, "uuid": uuid})
    assert check["data"]["status"] == 1, check
    # The phone confirms: the login completes.
    page.get_by_role("button", name="模拟手机: 确认登录").click()
    page.wait_for_load_state()
    assert page.locator("h1 .state").inner_text() == "在线"
    assert page.locator("h1").inner_text().startswith("扫码的人")
    check = api("/login/checkLogin", token, {"appId": app_id, "uuid": uuid})
    assert check["data"]["status"] == 2, check
    assert api("/login/checkOnline", token, {"appId": app_id})["data"] is True


def test_login_status_updates_by_itself(page):
    token = new_token()
    qr = api("/login/getLoginQrCode", token, {"appId": "", "type": "ipad", "regionId": "320000"})
    app_id, uuid = qr["data"]["appId"], qr["data"]["uuid"]
    sign_in(page, token)
    page.goto(f"{SERVER}/console/a/{app_id}")
    assert "等待扫码" in page.locator("#login-panel").inner_text()
    # Scanned elsewhere (the CLI's emulated phone): the open page follows.
    from conftest import cli

    cli("login", "confirm", uuid)
    page.locator("#login-panel .stage", has_text="已扫码").wait_for(timeout=10_000)


def test_callback_deliveries_are_listed(page, receiver):
    token = new_token()
    app_id = new_account(token)
    answer = api("/tools/setCallback", token, {"token": token, "callbackUrl": receiver.url})
    assert answer["ret"] == 200, answer
    assert api("/login/logout", token, {"appId": app_id})["ret"] == 200
    deadline = time.time() + 15
    while not any("Offline" in b or app_id in b for b in receiver.bodies[1:]):
        assert time.time() < deadline, receiver.bodies
        time.sleep(0.2)
    sign_in(page, token)
    page.get_by_role("link", name="回调").click()
    assert receiver.url in page.locator("section", has_text="回调地址").inner_text()
    row = page.locator("tr.event", has_text=app_id)
    row.locator(".state.delivered").wait_for()
    assert "已送达" in row.inner_text()


def post(path, data, headers):
    request = urllib.request.Request(f"{SERVER}{path}", data=data.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_cross_site_posts_are_refused(page, browser):
    token = new_token()
    app_id = new_account(token, "原来的名字")
    sign_in(page, token)
    page.goto(f"{SERVER}/console/a/{app_id}")
    csrf = page.locator('input[name="csrf"]').first.input_value()
    cookie = next(c for c in page.context.cookies() if c["name"] == "gewe_console")["value"]
    jar = {"Cookie": f"gewe_console={cookie}", "Content-Type": "application/x-www-form-urlencoded"}
    path = f"/console/a/{app_id}/profile"
    # No token, a wrong token, a foreign Origin: all refused, nothing changed.
    assert post(path, "nick_name=a", jar) == 403
    assert post(path, "nick_name=b&csrf=" + "0" * 32, jar) == 403
    assert post(path, f"nick_name=c&csrf={csrf}", {**jar, "Origin": "http://evil.example"}) == 403
    assert post(path, f"nick_name=d&csrf={csrf}", {**jar, "Sec-Fetch-Site": "cross-site"}) == 403
    # The same form from the page's own origin, with its token, works.
    assert post(path, f"nick_name=ok&csrf={csrf}", {**jar, "Origin": SERVER}) in (200, 303)
    assert api("/personal/getProfile", token, {"appId": app_id})["data"]["nickName"] == "ok"

    # A real cross-site page in the browser: its auto-submitting form is refused
    # (SameSite=Strict keeps the cookie home, and the form has no token).
    evil = browser.new_context()
    evil_page = evil.new_page()
    evil.add_cookies([{**c} for c in page.context.cookies()])
    evil_page.set_content(
        f"""<form id=f method=post action="{SERVER}{path}">
              <input name=nick_name value=pwned></form>"""
    )
    with evil_page.expect_navigation():
        evil_page.evaluate("document.getElementById('f').submit()")
    assert "跨站请求被拒绝" in evil_page.content() or evil_page.url.endswith("/console/login")
    evil.close()
    assert api("/personal/getProfile", token, {"appId": app_id})["data"]["nickName"] == "ok"


def test_pages_carry_a_strict_content_security_policy(page):
    token = new_token()
    sign_in(page, token)
    response = page.goto(f"{SERVER}/console")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "img-src 'self' data:" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.reload()
    page.wait_for_load_state("networkidle")
    assert violations == []
