"""The example of docs/testing-bots.md: a real gewe-server with the operator API
on, the bot of avatar_bot.py, and the control plane driving it.

    GEWE_BIN=path/to/gewe pytest examples/bot
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from avatar_bot import AvatarBot

KEY = "example-operator-key-0123456789"
TOKEN = "0123456789abcdef0123456789abcdef"
APP_ID = "wx_example_avatar_bot_01"
GROUP = "34757816141@chatroom"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gewe():
    """`gewe serve` on a free loopback port, a throwaway data dir, the operator
    API on, and pictures from 127.0.0.1 allowed."""
    data = tempfile.mkdtemp()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEWE_")}
    env.update(
        GEWE_DATA_DIR=data,
        GEWE_LISTEN=f"127.0.0.1:{port}",
        GEWE_FETCH_ALLOW_NETS="127.0.0.0/8",
        GEWE_OPERATOR_KEY=KEY,
    )
    server = subprocess.Popen(
        [os.environ.get("GEWE_BIN", "gewe"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{origin}/readyz", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            time.sleep(0.1)
    yield origin
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def operate(origin, action, **body):
    answer = requests.post(
        f"{origin}/operator/{action}", json=body, headers={"X-GEWE-OPERATOR-KEY": KEY}, timeout=30
    ).json()
    assert answer["ret"] == 200, (action, answer)
    return answer.get("data")


@pytest.fixture(scope="module")
def bot(gewe):
    # A known state: the bot's token, its account, and the group it is in.
    operate(
        gewe,
        "seed",
        tokens=[
            {
                "token": TOKEN,
                "accounts": [
                    {
                        "appId": APP_ID,
                        "wxid": "wxid_avatarbot01",
                        "nickName": "头像机器人",
                        "groups": [{"id": GROUP, "name": "测试群"}],
                    }
                ],
            }
        ],
    )
    bot = AvatarBot(f"{gewe}/v2/api", TOKEN, APP_ID)
    bot.start()
    bot.register_callback()
    yield bot
    bot.stop()


@pytest.fixture(scope="module")
def picture_url(gewe, bot):
    """A real JPEG on 127.0.0.1: the bot's own generated avatar, served again."""
    folder = tempfile.mkdtemp()
    profile = bot.call("personal/getProfile")["data"]
    with open(os.path.join(folder, "new.jpg"), "wb") as f:
        f.write(requests.get(profile["bigHeadImgUrl"], timeout=30).content)
    handler = lambda *a, **k: SimpleHTTPRequestHandler(*a, directory=folder, **k)  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/new.jpg"
    server.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def wait_for_reply(gewe, after_id):
    """The bot's next postText, from the journal (polled; bounded)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        entries = operate(gewe, "journal", token=TOKEN, route="message/postText", afterId=after_id)[
            "entries"
        ]
        if entries:
            return entries[-1]
        time.sleep(0.1)
    raise AssertionError("the bot never replied")


def last_journal_id(gewe):
    entries = operate(gewe, "journal", token=TOKEN, limit=1)["entries"]
    return entries[-1]["id"] if entries else 0


def test_the_bot_changes_its_avatar_when_asked_in_a_group(gewe, bot, picture_url):
    before = bot.call("personal/getProfile")["data"]["bigHeadImgUrl"]
    mark = last_journal_id(gewe)
    operate(
        gewe,
        "injectMessage",
        appId=APP_ID,
        chatroomId=GROUP,
        fromWxid="wxid_groupmember1",
        fromNickName="小王",
        content=f"换头像 {picture_url}",
        atSelf=True,
    )
    reply = wait_for_reply(gewe, mark)
    assert reply["request"]["toWxid"] == GROUP
    assert reply["request"]["content"] == "头像已更换"
    assert reply["response"]["ret"] == 200
    # The journal shows the call the bot made, with the URL it was given …
    calls = operate(gewe, "journal", token=TOKEN, route="personal/updateHeadImg", afterId=mark)
    assert [c["request"]["headImgUrl"] for c in calls["entries"]] == [picture_url]
    # … and getProfile the new avatar.
    after = bot.call("personal/getProfile")["data"]["bigHeadImgUrl"]
    assert after != before


def test_the_bot_reports_a_risk_control_refusal(gewe, bot, picture_url):
    operate(gewe, "addFault", token=TOKEN, preset="risk-control", times=1)
    mark = last_journal_id(gewe)
    operate(
        gewe,
        "injectMessage",
        appId=APP_ID,
        chatroomId=GROUP,
        fromWxid="wxid_groupmember1",
        content=f"换头像 {picture_url}",
        atSelf=True,
    )
    reply = wait_for_reply(gewe, mark)
    assert reply["request"]["content"] == "换头像失败: 操作过于频繁，请稍后再试"
    assert operate(gewe, "listFaults", token=TOKEN)["rules"][0]["hits"] == 1
