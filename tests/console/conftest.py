"""Browser tests of the web console: Debian's Chromium driven by Playwright,
against a real `gewe serve` that scripts/console-tests started (SQLite, a temp
data dir, an ephemeral loopback port, manual scan mode)."""

import http.server
import json
import os
import struct
import subprocess
import threading
import urllib.request
import zlib

import pytest
from playwright.sync_api import sync_playwright

SERVER = os.environ["GEWE_CONSOLE_SERVER"]
BIN = os.environ["GEWE_CONSOLE_BIN"]
CHROMIUM = os.environ.get("GEWE_CONSOLE_CHROMIUM", "/usr/bin/chromium")
OPERATOR_KEY = os.environ["GEWE_CONSOLE_OPERATOR_KEY"]


def cli(*args):
    """Runs the server's CLI on the same data dir (GEWE_DATA_DIR is exported)."""
    out = subprocess.run([BIN, *args], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def new_token():
    return cli("token", "create", "--label", "console-test")


def new_account(token, nickname="控制台测试"):
    return cli("account", "create", "--token", token, "--nickname", nickname)


def api(path, token, body):
    """POSTs to a GeWe route; answers the decoded envelope."""
    request = urllib.request.Request(
        f"{SERVER}/v2/api{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-GEWE-TOKEN": token},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def png(width, height, rgb):
    """A solid-colour PNG, written with the standard library."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page, token):
    page.goto(f"{SERVER}/console")
    assert page.url.endswith("/console/login")
    page.get_by_label("GeWe 令牌").fill(token)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{SERVER}/console")


def sign_in_as_operator(page):
    page.goto(f"{SERVER}/console/login")
    page.get_by_label("运营密钥").fill(OPERATOR_KEY)
    page.get_by_role("button", name="以运营者身份进入").click()
    page.wait_for_url(f"{SERVER}/console")


class Receiver:
    """A callback receiver on loopback: answers 200 and keeps every body."""

    def __init__(self):
        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(self.rfile.read(length).decode())
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
