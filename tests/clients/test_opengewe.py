"""opengewe 0.2.1, unchanged, against our server on the cloud prefix (`/gewe/v2/api`).

opengewe is asyncio + aiohttp and stateful: the GeweClient object carries token,
app_id, uuid and callback_url; get_token/get_qrcode set them. It never raises on a
GeWe error: `client.request` returns the answer dict whatever `ret` is (HTTP >= 400,
a non-JSON body or a transport error become `{"ret": <status or 500>, "msg": …}`).
Module methods return either the envelope (personal, account) or a
`(data-or-envelope, ok)` pair (login). One event loop per module, one client per flow.
"""

import asyncio
import contextlib
import os
import tempfile
import time

import pytest

from support import (
    APP_ID_RE, CALLBACK_TEST_MSG, TOKEN_RE, b64_picture, check_jpeg_qr, check_profile,
    check_safety_list, decode_qr, fetch_avatar, make_picture, need,
)


@contextlib.contextmanager
def _cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# Importing opengewe sets up loguru with file sinks under ./logs and reads
# ./main_config.toml: do that in a scratch directory, not in the repository.
_SCRATCH = os.environ.get("GEWE_CLIENTS_SCRATCH") or tempfile.mkdtemp(prefix="opengewe-")
os.makedirs(_SCRATCH, exist_ok=True)
with _cwd(_SCRATCH):
    from opengewe.client import GeweClient  # noqa: E402

MAX_POLLS = 10


@pytest.fixture(scope="module")
def run():
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


def ok(answer):
    """An envelope answered ret 200; returns its data."""
    assert isinstance(answer, dict) and answer.get("ret") == 200, answer
    return answer.get("data")


def test_get_token_id_twice_gives_the_same_token(server, run):
    client = GeweClient(server.cloud_base)
    try:
        first, ok1 = run(client.login.get_token())
        client.set_token("")  # ask again as a fresh start would, without a token
        second, ok2 = run(client.login.get_token())
    finally:
        run(client.close())
    assert ok1 and ok2, (first, second)
    assert TOKEN_RE.match(first), first
    assert second == first, "getTokenId must keep answering the same token"


def test_device_list_without_token_names_the_missing_header(server, run):
    """start_login() decides to fetch a token by these texts."""
    client = GeweClient(server.cloud_base, token="")
    try:
        answer, success = run(client.login.get_device_list())
    finally:
        run(client.close())
    assert not success
    assert answer["ret"] == 500 and "header:X-GEWE-TOKEN 不可为空" in answer["msg"], answer


def test_device_list_with_unknown_token_says_expired(server, run):
    client = GeweClient(server.cloud_base, token="0" * 32)
    try:
        answer, success = run(client.login.get_device_list())
    finally:
        run(client.close())
    assert not success
    assert answer["ret"] == 500 and "不可用或已过期" in answer["msg"], answer


@pytest.fixture(scope="class", autouse=True)
def _close_flow_client(flow, run):
    yield
    if getattr(flow, "client", None) is not None:
        run(flow.client.close())


class _Flow:
    def test_01_get_token(self, server, flow, run):
        flow.client = GeweClient(server.cloud_base)
        token, success = run(flow.client.login.get_token())
        assert success and TOKEN_RE.match(token), token
        assert flow.client.token == token
        flow.token = token


class _PersonalSteps:
    """Every personal route through the client's own methods, then logout."""

    def test_20_get_profile(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        profile = check_profile(ok(run(client.personal.get_profile())))
        if getattr(flow, "wxid", None):
            assert profile["wxid"] == flow.wxid, "getProfile wxid differs from checkLogin's"

    def test_21_update_profile(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        # All six fields + appId; sex is typed str in opengewe (Optional[str]).
        ok(run(client.personal.update_profile(
            nickname="开放客户端", signature="opengewe 0.2.1 签名", country="CN",
            province="Guangdong", city="Shenzhen", sex="1")))
        profile = check_profile(ok(run(client.personal.get_profile())))
        assert (profile["nickName"], profile["signature"], profile["country"],
                profile["province"], profile["city"], profile["sex"]) == (
            "开放客户端", "opengewe 0.2.1 签名", "CN", "Guangdong", "Shenzhen", 1)
        # opengewe leaves out the fields that are None: only {appId, signature} here,
        # as GeWe's doc asks ("修改个人信息需要单独设置每一项"). The rest must stay.
        ok(run(client.personal.update_profile(signature="只改签名")))
        profile = check_profile(ok(run(client.personal.get_profile())))
        assert (profile["nickName"], profile["signature"], profile["country"],
                profile["province"], profile["city"], profile["sex"]) == (
            "开放客户端", "只改签名", "CN", "Guangdong", "Shenzhen", 1)

    def test_22_get_qr_code(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        data = ok(run(client.personal.get_qr_code()))
        check_jpeg_qr(b64_picture(data["qrCode"], data_url=False))

    def test_23_get_safety_info(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        check_safety_list(ok(run(client.personal.get_safety_info())))

    def test_24_privacy_settings_on_and_off(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        ok(run(client.personal.privacy_settings(4, True)))
        ok(run(client.personal.privacy_settings(4, False)))

    def test_25_update_head_img(self, flow, run, loopback):
        client, app_id = need(flow, "client", "app_id")
        before = check_profile(ok(run(client.personal.get_profile())))
        path = f"/pictures/opengewe-{app_id}.jpg"
        url = loopback.serve(path, "image/jpeg", make_picture("JPEG"))
        ok(run(client.personal.update_head_img(url)))
        assert path in loopback.gets, "the server never fetched the picture"
        after = check_profile(ok(run(client.personal.get_profile())))
        assert after["bigHeadImgUrl"] != before["bigHeadImgUrl"]
        assert after["smallHeadImgUrl"] != before["smallHeadImgUrl"]
        assert fetch_avatar(after["bigHeadImgUrl"]) == (640, 640)
        assert fetch_avatar(after["smallHeadImgUrl"]) == (132, 132)

    def test_90_logout(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        ok(run(client.account.logout()))
        assert ok(run(client.account.check_online())) is False


class TestQrLogin(_PersonalSteps, _Flow):
    """A bot's first start: token, QR login of a new device, callback, profile work,
    logout, and a restart with the client's own start_login() on the same device."""

    def test_02_get_login_qr_code(self, flow, run):
        client = need(flow, "client")
        data, success = run(client.login.get_qrcode())  # sends only {"appId": ""}
        assert success, data
        assert APP_ID_RE.match(data["appId"]) and client.app_id == data["appId"], data
        assert client.uuid == data["uuid"] and data["uuid"]
        assert client.login_url == data["qrData"] and data["qrData"]
        picture = b64_picture(data["qrImgBase64"], data_url=True)
        assert decode_qr(picture) == data["qrData"], "qrImgBase64 does not encode qrData"
        flow.app_id = client.app_id

    def test_03_check_login_until_logged_in(self, flow, run):
        client = need(flow, "client")
        need(flow, "app_id")
        for poll in range(MAX_POLLS):
            result, success = run(client.login.check_login())  # sends {appId, uuid}
            if success:
                break
            data = ok(result)
            # start_login() gives up when a not-yet answer has neither nickName nor
            # expiredTime.
            assert data.get("nickName") is not None or data.get("expiredTime") is not None, data
            time.sleep(1)
        assert success, f"no login after {MAX_POLLS} polls: {result}"
        assert result["status"] == 2 and result["loginInfo"].get("wxid"), result
        assert client.uuid is None  # the client forgets the uuid once logged in
        flow.wxid = result["loginInfo"]["wxid"]

    def test_04_device_list_and_online(self, flow, run):
        client, app_id = need(flow, "client", "app_id")
        app_ids, success = run(client.login.get_device_list())
        assert success and app_id in app_ids, app_ids
        assert ok(run(client.account.check_online())) is True

    def test_05_set_callback(self, flow, run, loopback):
        client, token = need(flow, "client", "token")
        path = "/callback/opengewe"
        client.callback_url = loopback.url(path)
        answer, success = run(client.login.set_callback())  # {token, callbackUrl}
        assert success, answer
        headers, body = loopback.wait_for_post(path)
        assert headers.get("content-type", "").startswith("application/json"), headers
        assert body == {"testMsg": CALLBACK_TEST_MSG, "token": token}

    def test_91_restart_with_start_login(self, server, flow, run, loopback):
        """start_login() as a restarting bot runs it: deviceList (token check, appId
        must be listed even when logged out), QR with the same appId, checkLogin every
        3 s until status 2, setCallback."""
        token, app_id = need(flow, "token", "app_id")
        path = "/callback/opengewe-restart"
        bot = GeweClient(server.cloud_base, callback_url=loopback.url(path),
                         app_id=app_id, token=token)
        try:
            success = run(asyncio.wait_for(bot.start_login(), 60))
            assert success, "start_login() returned False; see the captured output"
            assert bot.app_id == app_id, "start_login() moved to another device"
            assert ok(run(bot.account.check_online())) is True
        finally:
            run(bot.close())
        _, body = loopback.wait_for_post(path)
        assert body == {"testMsg": CALLBACK_TEST_MSG, "token": token}


class TestProvisionedAccount(_PersonalSteps, _Flow):
    """An account created by the operator (`gewe account create`), used by the client."""

    def test_02_provision_account(self, server, flow):
        client, token = need(flow, "client", "token")
        flow.app_id = server.create_account(token, "预置账号")
        client.set_app_id(flow.app_id)

    def test_03_device_list_and_online(self, flow, run):
        client, app_id = need(flow, "client", "app_id")
        app_ids, success = run(client.login.get_device_list())
        assert success and app_id in app_ids, app_ids
        assert ok(run(client.account.check_online())) is True
