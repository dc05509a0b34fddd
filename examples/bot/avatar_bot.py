"""A small GeWe bot: in a group, "@bot 换头像 <picture URL>" changes the bot's
avatar, and the bot answers in the group. It talks GeWe over plain HTTP, so the
same code runs against GeWe itself and against gewe-server.

    bot = AvatarBot(base="http://127.0.0.1:2531/v2/api", token=..., app_id=...)
    bot.start(port=0)          # receives callbacks on 127.0.0.1:<bot.port>
    bot.register_callback()    # tools/setCallback, as frameworks do at start-up
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

COMMAND = re.compile(r"^换头像\s+(\S+)$")


class AvatarBot:
    def __init__(self, base, token, app_id):
        self.base = base.rstrip("/")
        self.token = token
        self.app_id = app_id
        self.wxid = None
        self.server = None

    # --- GeWe calls -----------------------------------------------------------
    def call(self, route, **body):
        response = requests.post(
            f"{self.base}/{route}",
            json={"appId": self.app_id, **body},
            headers={"X-GEWE-TOKEN": self.token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def reply(self, to, text):
        return self.call("message/postText", toWxid=to, content=text)

    # --- callbacks --------------------------------------------------------------
    def start(self, port=0):
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"SUCCESS")
                bot.on_callback(json.loads(body))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.wxid = self.call("personal/getProfile")["data"]["wxid"]

    @property
    def port(self):
        return self.server.server_address[1]

    def register_callback(self):
        answer = requests.post(
            f"{self.base}/tools/setCallback",
            json={"token": self.token, "callbackUrl": f"http://127.0.0.1:{self.port}/callback"},
            headers={"X-GEWE-TOKEN": self.token},
            timeout=30,
        ).json()
        assert answer["ret"] == 200, answer

    def stop(self):
        self.server.shutdown()

    def on_callback(self, event):
        if event.get("TypeName") != "AddMsg" or event["Data"].get("MsgType") != 1:
            return
        data = event["Data"]
        room = data["FromUserName"]["string"]
        if not room.endswith("@chatroom"):
            return
        # Group texts are "<sender wxid>:\n<text>"; only messages that @ the bot count.
        _sender, _, text = data["Content"]["string"].partition(":\n")
        if f"<![CDATA[{self.wxid}]]>" not in data.get("MsgSource", ""):
            return
        text = re.sub(r"^@\S+\u2005", "", text).strip()
        match = COMMAND.match(text)
        if not match:
            return
        answer = self.call("personal/updateHeadImg", headImgUrl=match.group(1))
        if answer["ret"] == 200:
            self.reply(room, "头像已更换")
        else:
            self.reply(room, f"换头像失败: {answer.get('data', {}).get('msg', answer['msg'])}")
