"""gewechat-client 0.2.2, unchanged, against our server on the self-hosted prefix
(`/v2/api`, the base its README documents).

The client answers every call with the whole envelope dict and raises RuntimeError
whenever `ret != 200` or the HTTP status is 4xx/5xx (util/http_util.post_json), so a
call that returns at all has answered `ret == 200`. Its token is fixed when the
client is built (X-GEWE-TOKEN only when it is truthy): a client without token asks
for one, and a second client is built with it.
"""

import threading
import time

import pytest
from gewechat_client.client import GewechatClient

from support import (
    APP_ID_RE, CALLBACK_TEST_MSG, TOKEN_RE, b64_picture, check_jpeg_qr, check_profile,
    check_safety_list, decode_qr, fetch_avatar, make_picture, need,
)

REGION_ID = "320000"  # get_qr/login refuse an empty regionId client-side
MAX_POLLS = 10


def test_get_token_id_twice_gives_the_same_token(server):
    anonymous = GewechatClient(server.self_hosted_base, None)
    first = anonymous.get_token()
    second = anonymous.get_token()
    assert TOKEN_RE.match(first["data"]), first
    assert second["data"] == first["data"], "getTokenId must keep answering the same token"


def test_wrong_token_raises_with_gewe_text(server):
    client = GewechatClient(server.self_hosted_base, "0" * 32)
    with pytest.raises(RuntimeError, match="不可用或已过期"):
        client.get_profile("wx_aaaaaaaaaaaaaaaaaaaaa")


class _TokenStep:
    def test_01_get_token(self, server, flow):
        answer = GewechatClient(server.self_hosted_base, None).get_token()
        assert answer["ret"] == 200 and TOKEN_RE.match(answer["data"]), answer
        flow.token = answer["data"]
        flow.client = GewechatClient(server.self_hosted_base, flow.token)


class _PersonalSteps:
    """Every personal route through the client's own methods, then logout."""

    def test_20_get_profile(self, flow):
        client, app_id = need(flow, "client", "app_id")
        profile = check_profile(client.get_profile(app_id)["data"])
        if getattr(flow, "wxid", None):
            assert profile["wxid"] == flow.wxid, "getProfile wxid differs from checkLogin's"

    def test_21_update_profile(self, flow):
        client, app_id = need(flow, "client", "app_id")
        # update_profile(app_id, city, country, nick_name, province, sex, signature):
        # always all seven keys; sex passed as GeWe's doc example does, an int.
        answer = client.update_profile(app_id, "Hangzhou", "CN", "客户端测试", "Zhejiang", 2, "gewechat-client 0.2.2 签名")
        assert answer["ret"] == 200
        profile = check_profile(client.get_profile(app_id)["data"])
        assert (profile["city"], profile["country"], profile["nickName"], profile["province"],
                profile["sex"], profile["signature"]) == (
            "Hangzhou", "CN", "客户端测试", "Zhejiang", 2, "gewechat-client 0.2.2 签名")

    def test_22_get_qr_code(self, flow):
        client, app_id = need(flow, "client", "app_id")
        data = client.get_qr_code(app_id)["data"]
        check_jpeg_qr(b64_picture(data["qrCode"], data_url=False))

    def test_23_get_safety_info(self, flow):
        client, app_id = need(flow, "client", "app_id")
        check_safety_list(client.get_safety_info(app_id)["data"])

    def test_24_privacy_settings_on_and_off(self, flow):
        client, app_id = need(flow, "client", "app_id")
        assert client.privacy_settings(app_id, 4, True)["ret"] == 200
        assert client.privacy_settings(app_id, 4, False)["ret"] == 200

    def test_25_update_head_img(self, flow, loopback):
        client, app_id = need(flow, "client", "app_id")
        before = check_profile(client.get_profile(app_id)["data"])
        path = f"/pictures/gewechat-{app_id}.png"
        url = loopback.serve(path, "image/png", make_picture("PNG"))
        answer = client.update_head_img(app_id, url)
        assert answer["ret"] == 200
        assert path in loopback.gets, "the server never fetched the picture"
        after = check_profile(client.get_profile(app_id)["data"])
        assert after["bigHeadImgUrl"] != before["bigHeadImgUrl"]
        assert after["smallHeadImgUrl"] != before["smallHeadImgUrl"]
        assert fetch_avatar(after["bigHeadImgUrl"]) == (640, 640)
        assert fetch_avatar(after["smallHeadImgUrl"]) == (132, 132)

    def test_90_logout(self, flow):
        client, app_id = need(flow, "client", "app_id")
        assert client.logout(app_id)["ret"] == 200
        assert client.check_online(app_id)["data"] is False


class TestQrLogin(_PersonalSteps, _TokenStep):
    """A bot's first start: token, QR login of a new device, callback, profile work,
    logout, and a re-login of the same device with the client's own login()."""

    def test_02_get_login_qr_code(self, flow):
        client = need(flow, "client")
        answer = client.get_qr("", REGION_ID)  # sends {appId:"", type:"ipad", regionId}
        data = answer["data"]
        assert APP_ID_RE.match(data["appId"]), data
        assert data["uuid"] and isinstance(data["uuid"], str)
        assert isinstance(data["qrData"], str) and data["qrData"]
        picture = b64_picture(data["qrImgBase64"], data_url=True)
        assert decode_qr(picture) == data["qrData"], "qrImgBase64 does not encode qrData"
        flow.app_id, flow.uuid = data["appId"], data["uuid"]

    def test_03_check_login_until_logged_in(self, flow):
        client, app_id, uuid = need(flow, "client", "app_id", "uuid")
        statuses = []
        for _ in range(MAX_POLLS):
            data = client.check_qr(app_id, uuid)["data"]  # sends autoSliding=false
            # login() compares expiredTime with 5 on every answer and takes a truthy
            # `url` for a face check.
            assert isinstance(data.get("expiredTime"), int) and not data.get("url"), data
            statuses.append(data["status"])
            if data["status"] == 2:
                break
            assert data["status"] in (0, 1), data
            time.sleep(1)
        assert statuses[-1] == 2, f"no login after {MAX_POLLS} polls: {statuses}"
        assert statuses == sorted(statuses), f"status went backwards: {statuses}"
        # login() re-fetches the QR code whenever expiredTime <= 5, even at status 2.
        assert data["expiredTime"] > 5, data
        info = data["loginInfo"]
        assert isinstance(info, dict) and info.get("wxid"), data
        flow.wxid = info["wxid"]

    def test_04_check_online(self, flow):
        client, app_id = need(flow, "client", "app_id")
        assert client.check_online(app_id)["data"] is True

    def test_05_set_callback(self, flow, loopback):
        client, token = need(flow, "client", "token")
        path = "/callback/gewechat-client"
        answer = client.set_callback(token, loopback.url(path))
        assert answer["ret"] == 200
        headers, body = loopback.wait_for_post(path)
        assert headers.get("content-type", "").startswith("application/json"), headers
        assert body == {"testMsg": CALLBACK_TEST_MSG, "token": token}

    def test_91_relogin_with_login_helper(self, flow):
        """client.login(app_id, region_id): the canned loop bots use (checkOnline, then
        QR with the same appId, then checkLogin every 5 s until status 2)."""
        client, app_id = need(flow, "client", "app_id")
        result = {}

        def run():
            result["value"] = client.login(app_id, REGION_ID)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "login() still looping after 60 s"
        assert "value" in result, "login() raised; see the captured output"
        new_app_id, error, login_info = result["value"]
        assert (new_app_id, error) == (app_id, ""), result["value"]
        assert login_info and login_info.get("wxid") == flow.wxid, login_info
        assert client.check_online(app_id)["data"] is True


class TestProvisionedAccount(_PersonalSteps, _TokenStep):
    """An account created by the operator (`gewe account create`), used by the client."""

    def test_02_provision_account(self, server, flow):
        flow.app_id = server.create_account(need(flow, "token"), "预置账号")

    def test_03_check_online(self, flow):
        client, app_id = need(flow, "client", "app_id")
        assert client.check_online(app_id)["data"] is True
