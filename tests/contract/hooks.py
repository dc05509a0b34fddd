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
CALLBACK_URL = os.environ["GEWE_CONTRACT_CALLBACK_URL"]
LOG = os.environ["GEWE_CONTRACT_LOG"]


@schemathesis.hook
def map_headers(context, headers):
    if headers is not None and "X-GEWE-TOKEN" in headers:
        headers["X-GEWE-TOKEN"] = TOKEN
    return headers


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict):
        if isinstance(body.get("appId"), str):
            body["appId"] = APP_ID
        if isinstance(body.get("headImgUrl"), str):
            body["headImgUrl"] = PICTURE_URL
        if isinstance(body.get("callbackUrl"), str):
            body["callbackUrl"] = CALLBACK_URL
        if isinstance(body.get("token"), str):
            body["token"] = TOKEN
    return body


@schemathesis.hook
def after_call(context, case, response):
    if not case.path.split("/")[-1] in ("updateHeadImg", "getProfile", "getTokenId", "setCallback"):
        return
    try:
        ret = json.loads(response.content).get("ret")
    except (ValueError, AttributeError):
        ret = "not-json"
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(f"{case.path} {ret}\n")
