"""What the client tests need around the clients: the server under test, a loopback
HTTP server (pictures out, callbacks in), pictures, a QR decoder, avatar checks.

Nothing here speaks GeWe: every GeWe call in the tests goes through a client's own
method. All traffic stays on 127.0.0.1.
"""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, ImageDraw

TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
APP_ID_RE = re.compile(r"^wx_[A-Za-z0-9_-]+$")
PROFILE_KEYS = {
    "alias", "wxid", "nickName", "mobile", "uin", "sex", "province", "city",
    "signature", "country", "bigHeadImgUrl", "smallHeadImgUrl", "regCountry", "snsBgImg",
}
# What setCallback must POST to the new address before it answers (self-hosted Gewechat).
CALLBACK_TEST_MSG = "回调地址链接成功！"


@dataclass(frozen=True)
class Server:
    """The gewe server scripts/clients started, and how to reach its data."""

    origin: str  # http://127.0.0.1:PORT
    binary: str  # target/debug/gewe, for `gewe account create`
    data_dir: str

    @property
    def self_hosted_base(self):
        return self.origin + "/v2/api"

    @property
    def cloud_base(self):
        return self.origin + "/gewe/v2/api"

    def create_account(self, token, nickname):
        """An operator-provisioned account (README quickstart), owned by `token`."""
        env = dict(os.environ, GEWE_DATA_DIR=self.data_dir)
        env.pop("GEWE_DATABASE_URL", None)
        done = subprocess.run(
            [self.binary, "account", "create", "--token", token, "--nickname", nickname],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, f"gewe account create failed: {done.stderr}"
        app_id = done.stdout.strip()
        assert APP_ID_RE.match(app_id), f"gewe account create printed {done.stdout!r}"
        return app_id


class Loopback:
    """A small HTTP server on 127.0.0.1: GETs answer from `files`, POSTs are recorded
    (the callback receiver) and answered `SUCCESS`, as bot frameworks do."""

    def __init__(self):
        self.files = {}  # path -> (content type, bytes)
        self.gets = []  # paths asked for
        self.posts = []  # (path, headers with lower-case names, body bytes)
        self._cond = threading.Condition()
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with loopback._cond:
                    loopback.gets.append(self.path)
                    loopback._cond.notify_all()
                found = loopback.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                content_type, body = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self._read_body()
                with loopback._cond:
                    # Header names are case-insensitive (HTTP/1.1 clients may send any case).
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    loopback.posts.append((self.path, headers, body))
                    loopback._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"SUCCESS")

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def serve(self, path, content_type, body):
        self.files[path] = (content_type, body)
        return self.url(path)

    def wait_for_post(self, path, timeout=5.0):
        """The first JSON body POSTed to `path`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for got_path, headers, body in self.posts:
                    if got_path == path:
                        return headers, json.loads(body)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"nothing was POSTed to {path} within {timeout}s "
                        f"(POSTs seen: {[p for p, _, _ in self.posts]})"
                    )
                self._cond.wait(left)

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()


_picture_count = 0


def make_picture(fmt):
    """A real picture (PNG or JPEG, 960×720, not square), different on every call so
    the content-addressed avatar URL must change."""
    global _picture_count
    _picture_count += 1
    seed = (os.getpid() * 7919 + _picture_count * 104729 + time.time_ns()) % 2**24
    r, g, b = seed >> 16, (seed >> 8) & 0xFF, seed & 0xFF
    image = Image.new("RGB", (960, 720))
    draw = ImageDraw.Draw(image)
    for y in range(720):
        draw.line([(0, y), (959, y)], fill=((r + y) % 256, (g + y // 2) % 256, b))
    draw.ellipse([280, 160, 680, 560], fill=(255 - r, 255 - g, 255 - b))
    draw.rectangle([40, 40, 200, 200], fill=(b, r, g))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def decode_qr(picture):
    """The text of the QR code(s) in `picture` (bytes), decoded by zbarimg."""
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbarimg is missing (Debian: apt-get install zbar-tools)"
    with tempfile.NamedTemporaryFile(suffix=".img") as f:
        f.write(picture)
        f.flush()
        done = subprocess.run([zbarimg, "--raw", "-q", f.name], capture_output=True, timeout=30)
    assert done.returncode == 0, f"zbarimg found no QR code (exit {done.returncode}): {done.stderr!r}"
    return done.stdout.decode("utf-8").strip()


def b64_picture(value, data_url):
    """Bytes of a base64 picture; `data_url`: whether a `data:image/…;base64,` prefix is
    expected (login QR) or must be absent (personal getQrCode)."""
    assert isinstance(value, str) and value, f"not a non-empty string: {value!r}"
    if data_url:
        head, sep, value = value.partition(",")
        assert sep and head.startswith("data:image/") and head.endswith(";base64"), head
    else:
        assert not value.startswith("data:"), "expected raw base64 without a data: prefix"
    return base64.b64decode(value, validate=True)


def check_jpeg_qr(picture):
    """`picture` is a JPEG holding a QR code; returns the QR text."""
    assert picture[:3] == b"\xff\xd8\xff", f"not a JPEG: starts {picture[:8]!r}"
    assert Image.open(io.BytesIO(picture)).format == "JPEG"
    text = decode_qr(picture)
    assert text, "empty QR content"
    return text


def fetch_avatar(url):
    """GET an avatar URL: 200, image/jpeg, a real JPEG. Returns its (width, height)."""
    assert url.startswith("http://127.0.0.1:"), f"avatar URL is not on this server: {url}"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        content_type = response.headers.get("Content-Type", "")
        body = response.read()
    assert content_type.split(";")[0].strip() == "image/jpeg", content_type
    image = Image.open(io.BytesIO(body))
    assert image.format == "JPEG"
    image.load()
    return image.size


def check_profile(data):
    """The 14 getProfile fields with GeWe's types (alias may be null, as in GeWe's doc)."""
    assert isinstance(data, dict), data
    assert set(data) >= PROFILE_KEYS, f"missing: {PROFILE_KEYS - set(data)}"
    assert data["alias"] is None or isinstance(data["alias"], str)
    for key in PROFILE_KEYS - {"alias", "uin", "sex"}:
        assert isinstance(data[key], str), f"{key} is {data[key]!r}"
    assert isinstance(data["uin"], int) and not isinstance(data["uin"], bool)
    assert data["sex"] in (0, 1, 2)
    assert data["wxid"]
    return data


def check_safety_list(data):
    assert isinstance(data, dict) and isinstance(data.get("list"), list), data
    assert data["list"], "getSafetyInfo: empty device list"
    for record in data["list"]:
        assert isinstance(record.get("uuid"), str) and record["uuid"], record
        assert isinstance(record.get("deviceName"), str), record
        assert isinstance(record.get("deviceType"), str), record
        assert isinstance(record.get("lastTime"), int), record


def need(flow, *names):
    """Fail (not error) a step whose earlier step did not leave what it needs."""
    missing = [n for n in names if getattr(flow, n, None) is None]
    if missing:
        raise AssertionError(f"an earlier step of this flow failed: no {', '.join(missing)}")
    values = [getattr(flow, n) for n in names]
    return values[0] if len(values) == 1 else values
