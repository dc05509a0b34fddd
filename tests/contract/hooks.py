"""Schemathesis hooks for the contract runs (loaded through SCHEMATHESIS_HOOKS).

Generated bodies keep their shape, but a real appId, a real token, a picture on
loopback and a callback receiver on loopback are swapped in where the fields are
present (setCallback pings its URL before answering, so a random URL would only
ever reach the error path), so the tester reaches the
success path and not only the error paths. Every GeWe answer is logged, so the
script can prove the success path was reached.
"""

import json
import os

import schemathesis

TOKEN = os.environ["GEWE_CONTRACT_TOKEN"]
APP_ID = os.environ["GEWE_CONTRACT_APP_ID"]
PICTURE_URL = os.environ["GEWE_CONTRACT_PICTURE_URL"]
# logout gets a spare account, so the run does not log the main one out (every
# later getProfile/updateHeadImg would then answer 微信已离线).
SPARE_APP_ID = os.environ.get("GEWE_CONTRACT_SPARE_APP_ID", APP_ID)
CALLBACK_URL = os.environ["GEWE_CONTRACT_CALLBACK_URL"]
LOG = os.environ["GEWE_CONTRACT_LOG"]
PRIVACY_OPTIONS = [4, 7, 8, 25, 38, 39, 40]
LOGGED = (
    "updateHeadImg",
    "getProfile",
    "getTokenId",
    "updateProfile",
    "getQrCode",
    "getSafetyInfo",
    "privacySettings",
    "setCallback",
)


@schemathesis.hook
def map_headers(context, headers):
    if headers is not None and "X-GEWE-TOKEN" in headers:
        headers["X-GEWE-TOKEN"] = TOKEN
    return headers


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict):
        if isinstance(body.get("appId"), str):
            path = getattr(getattr(context, "operation", None), "path", "") or ""
            body["appId"] = SPARE_APP_ID if path.endswith("/login/logout") else APP_ID
        if isinstance(body.get("headImgUrl"), str):
            body["headImgUrl"] = PICTURE_URL
        # privacySettings: a documented option with a boolean `open`, so the
        # success path is reached (the error paths are in tests/api/personal.rs).
        if isinstance(body.get("option"), int) and isinstance(body.get("open"), bool):
            if body["option"] not in PRIVACY_OPTIONS:
                body["option"] = PRIVACY_OPTIONS[body["option"] % len(PRIVACY_OPTIONS)]
        if isinstance(body.get("callbackUrl"), str):
            body["callbackUrl"] = CALLBACK_URL
        if isinstance(body.get("token"), str):
            body["token"] = TOKEN
    return body


@schemathesis.hook
def after_call(context, case, response):
    if case.path.split("/")[-1] not in LOGGED:
        return
    try:
        ret = json.loads(response.content).get("ret")
    except (ValueError, AttributeError):
        ret = "not-json"
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(f"{case.path} {ret}\n")
