"""Screenshots of the console's main pages for the docs (scripts/console-screenshots).
Not a test: it fills a throwaway server with a few accounts and photographs
the pages into the directory given as the first argument."""

import os
import struct
import sys
import time
import zlib

from conftest import (
    CHROMIUM,
    SERVER,
    Receiver,
    api,
    new_account,
    new_token,
    sign_in,
    sign_in_as_operator,
)
from playwright.sync_api import sync_playwright


def gradient_png(size, top, bottom, ring):
    """A square with a vertical gradient and a ring, standard library only."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = []
    c = size / 2
    for y in range(size):
        t = y / (size - 1)
        base = bytes(int(a + (b - a) * t) for a, b in zip(top, bottom))
        row = bytearray(b"\x00")
        for x in range(size):
            d = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
            row += bytes(ring) if size * 0.28 < d < size * 0.36 else base
        rows.append(bytes(row))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def main(out):
    os.makedirs(out, exist_ok=True)
    token = new_token()
    receiver = Receiver()
    api("/tools/setCallback", token, {"token": token, "callbackUrl": receiver.url})
    names = ["小助手", "客服一号", "运营-华东", "Alice", "群管家", "订单通知", "测试号", "<b>不是粗体</b>"]
    colours = [
        ((7, 193, 96), (2, 110, 60), (255, 255, 255)),
        ((64, 120, 255), (20, 40, 140), (255, 220, 80)),
        ((255, 140, 60), (200, 50, 40), (255, 255, 255)),
        ((150, 90, 230), (60, 30, 120), (120, 255, 200)),
        ((40, 40, 50), (90, 90, 110), (250, 200, 60)),
        ((0, 170, 200), (0, 90, 120), (255, 255, 255)),
        ((230, 70, 120), (120, 20, 70), (255, 240, 240)),
        ((250, 210, 60), (220, 150, 20), (60, 60, 60)),
    ]
    apps = [new_account(token, name) for name in names]
    qr = api("/login/getLoginQrCode", token, {"appId": "", "type": "ipad", "regionId": "320000"})
    pending = qr["data"]["appId"]
    api("/login/logout", token, {"appId": apps[6]})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            locale="zh-CN", viewport={"width": 1200, "height": 800}, device_scale_factor=1
        )
        page = context.new_page()
        page.goto(f"{SERVER}/console/login")
        page.screenshot(path=f"{out}/login.png")
        sign_in(page, token)
        # Avatars uploaded through the page, as a person would.
        for i, app_id in enumerate(apps[:6]):
            path = f"/tmp/gewe-shot-{os.getpid()}-{i}.png"
            with open(path, "wb") as f:
                f.write(gradient_png(256, *colours[i]))
            page.goto(f"{SERVER}/console/a/{app_id}")
            page.get_by_label("上传图片", exact=False).set_input_files(path)
            page.get_by_role("button", name="上传并换头像").click()
            page.wait_for_load_state()
            os.remove(path)
        # A second change and a restore on the first account, for its history.
        path = f"/tmp/gewe-shot-{os.getpid()}-x.png"
        with open(path, "wb") as f:
            f.write(gradient_png(256, *colours[7]))
        page.goto(f"{SERVER}/console/a/{apps[0]}")
        page.get_by_label("上传图片", exact=False).set_input_files(path)
        page.get_by_role("button", name="上传并换头像").click()
        page.wait_for_load_state()
        os.remove(path)
        page.locator(".history li").nth(1).get_by_role("button").click()
        page.wait_for_load_state()
        time.sleep(1)
        page.goto(f"{SERVER}/console")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=f"{out}/accounts.png", full_page=True)
        page.goto(f"{SERVER}/console/a/{apps[0]}")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=f"{out}/account.png", full_page=True)
        page.goto(f"{SERVER}/console/a/{pending}")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=f"{out}/login-qr.png", full_page=True)
        page.goto(f"{SERVER}/console/callbacks")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=f"{out}/callbacks.png", full_page=True)
        # The operator's journal: a few GeWe calls of the bot, one request open.
        api("/personal/getProfile", token, {"appId": apps[1]})
        api("/personal/updateProfile", token, {"appId": apps[1], "city": "杭州"})
        api("/personal/getSafetyInfo", token, {"appId": apps[2]})
        api("/login/checkOnline", token, {"appId": apps[3]})
        operator = browser.new_context(
            locale="zh-CN", viewport={"width": 1200, "height": 800}, device_scale_factor=1
        )
        page = operator.new_page()
        sign_in_as_operator(page)
        page.goto(f"{SERVER}/console/journal")
        page.locator("tr.entry").first.locator("details").nth(1).locator("summary").click()
        page.screenshot(path=f"{out}/journal.png", full_page=False)
        browser.close()
    receiver.close()


if __name__ == "__main__":
    main(sys.argv[1])
