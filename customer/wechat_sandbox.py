"""A local WeChat on 127.0.0.1 for the mini-program login: wx.login() codes and the jscode2session endpoint.

Answers ``GET /sns/jscode2session`` as WeChat does (docs/customer-api.md, "WeChat login"): errors come as HTTP 200
with ``errcode`` and ``errmsg``; a good code gives ``openid`` and ``session_key`` (no ``unionid``: the demo app is on
no Open Platform account). Codes stand in for what wx.login() gives a phone: ``POST /_sandbox/login`` with
``{"user": "alice"}`` answers ``{"code": …}``; a code is good once, for five minutes, and only for the app id it was
made for. The same user always gets the same openid for one app id, another one for another app.

Refusals: a wrong app id (40013, NOT CONFIRMED) or secret (40125), an unknown or expired code (40029), a used one
(40163, NOT CONFIRMED), a blocked user (40226; ``POST /_sandbox/login`` with ``"blocked": true`` makes one), the base's
``rate_limit`` fault (45011) and ``server_errors`` fault (-1). Runs with ``manage.py wechat_sandbox --port 8806``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta

from customer.wechat import (
    CODE_TO_SESSION_PATH,
    ERR_CODE_INVALID,
    ERR_CODE_USED,
    ERR_HIGH_RISK_USER,
    ERR_INVALID_APPID,
    ERR_INVALID_APPSECRET,
    ERR_RATE_LIMITED,
    ERR_SYSTEM_BUSY,
)
from gateway.sandbox import Request, Response, Sandbox

DEFAULT_APP_ID = "wx5a1e0d3c9b7f2e41"
DEFAULT_APP_SECRET = "sandbox-wechat-secret"
CODE_LIFETIME = timedelta(minutes=5)


def _error(errcode: int, errmsg: str) -> Response:
    return Response(200, {"errcode": errcode, "errmsg": f"{errmsg}, rid: {secrets.token_hex(8)}"})


class WeChatSandbox(Sandbox):
    platform = "wechat"

    def __init__(self, *, app_id: str = DEFAULT_APP_ID, app_secret: str = DEFAULT_APP_SECRET, **kwargs):
        for unused in ("skus", "webhook_url", "rate_per_minute"):
            kwargs.pop(unused, None)
        super().__init__(**kwargs)
        self.app_id, self.app_secret = app_id, app_secret
        self.codes: dict[str, dict] = {}  # code → {"user", "app_id", "made_at", "used", "blocked"}
        self.exchanges: list[dict] = []  # what the hub asked, secrets left out

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.codes.clear()
            self.exchanges.clear()

    def openid_of(self, user: str, app_id: str | None = None) -> str:
        """WeChat-like openid: 28 characters starting with "o", one per (app, user)."""
        digest = hashlib.sha256(f"{app_id or self.app_id}:{user}".encode()).digest()
        return "o" + base64.urlsafe_b64encode(digest).decode()[:27]

    def code_for(self, user: str, *, app_id: str | None = None, blocked: bool = False) -> str:
        """What wx.login() would give ``user``'s phone now."""
        code = secrets.token_urlsafe(24)[:32]
        with self.lock:
            self.codes[code] = {"user": user, "app_id": app_id or self.app_id, "made_at": self.now(), "used": False,
                                "blocked": blocked}
        return code

    def handle_control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_sandbox/").strip("/")
        if action == "login" and request.method == "POST":
            try:
                data = request.json() or {}
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return Response(400, {"error": "send a JSON object"})
            user = data.get("user")
            if not isinstance(user, str) or not user.strip():
                return Response(400, {"error": "send {\"user\": \"some name\"}"})
            code = self.code_for(user.strip(), app_id=data.get("app_id") or None, blocked=bool(data.get("blocked")))
            return Response(200, {"code": code})
        if action == "exchanges" and request.method == "GET":
            with self.lock:
                return Response(200, {"exchanges": list(self.exchanges)})
        return super().handle_control(request)

    def rate_limited_response(self) -> Response:
        return _error(ERR_RATE_LIMITED, "api minute-quota reach limit  mustslower  retry next minute")

    def server_error_response(self) -> Response:
        return _error(ERR_SYSTEM_BUSY, "system error")

    def handle_api(self, request: Request) -> Response:
        if request.path != CODE_TO_SESSION_PATH:
            return Response(404, {"errcode": 40066, "errmsg": "invalid url"})
        query = request.query
        app_id, code = query.get("appid", ""), query.get("js_code", "")
        with self.lock:
            self.exchanges.append({"appid": app_id, "js_code": code, "grant_type": query.get("grant_type", ""),
                                   "secret_sent": bool(query.get("secret"))})
        if app_id != self.app_id:
            return _error(ERR_INVALID_APPID, "invalid appid")
        if query.get("secret") != self.app_secret:
            return _error(ERR_INVALID_APPSECRET, "invalid appsecret")
        if query.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")  # NOT CONFIRMED
        with self.lock:
            issued = self.codes.get(code)
            if issued is None or issued["app_id"] != app_id or self.now() - issued["made_at"] > CODE_LIFETIME:
                return _error(ERR_CODE_INVALID, "invalid code")
            if issued["used"]:
                return _error(ERR_CODE_USED, "code been used")
            issued["used"] = True
        if issued["blocked"]:
            return _error(ERR_HIGH_RISK_USER, "code blocked")
        return Response(200, {"openid": self.openid_of(issued["user"], app_id),
                              "session_key": base64.b64encode(secrets.token_bytes(16)).decode()})
