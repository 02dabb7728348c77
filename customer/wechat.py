"""WeChat mini-program login: the code-to-session call (jscode2session) and what its error codes mean for a buyer.

The mini-program calls wx.login() on the phone and sends us the one-time code; we exchange it at WeChat for the
user's openid (docs/customer-api.md, "WeChat login", has the request and answer as WeChat documents them).
The session_key WeChat also answers is dropped at once: the hub decrypts no WeChat user data, and a key that is
never kept cannot leak.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from django.conf import settings

from gateway.errors import GatewayError
from gateway.http import GatewayClient

logger = logging.getLogger(__name__)

CODE_TO_SESSION_PATH = "/sns/jscode2session"
# errcode values documented for jscode2session (developers.weixin.qq.com, auth.code2Session).
ERR_SYSTEM_BUSY = -1
ERR_CODE_INVALID = 40029
ERR_RATE_LIMITED = 45011  # 100 calls per user per minute
ERR_HIGH_RISK_USER = 40226
# Not in the page above but answered by WeChat, as developers report: a code used twice, a wrong secret.
ERR_CODE_USED = 40163  # NOT CONFIRMED beyond developer reports
ERR_INVALID_APPSECRET = 40125
ERR_INVALID_APPID = 40013  # NOT CONFIRMED


class WeChatLoginError(Exception):
    """Why a login code gave no openid: ``reason`` is one of the REASON_* values below."""

    def __init__(self, reason: str, message: str, *, errcode: int | None = None):
        super().__init__(message)
        self.reason, self.message, self.errcode = reason, message, errcode


# What a failed exchange means for the buyer (and for the HTTP answer the customer API gives).
REASON_CODE_INVALID = "code_invalid"  # call wx.login again
REASON_BLOCKED = "blocked"  # WeChat blocks this user's logins (high risk)
REASON_RATE_LIMITED = "rate_limited"
REASON_UNAVAILABLE = "unavailable"  # WeChat busy or unreachable, or our app id/secret wrong: not the buyer's fault

ERRCODE_REASONS = {
    ERR_CODE_INVALID: REASON_CODE_INVALID,
    ERR_CODE_USED: REASON_CODE_INVALID,
    ERR_HIGH_RISK_USER: REASON_BLOCKED,
    ERR_RATE_LIMITED: REASON_RATE_LIMITED,
    ERR_SYSTEM_BUSY: REASON_UNAVAILABLE,
}


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str  # empty unless the mini-program is bound to an Open Platform account


def wechat_login_configured() -> bool:
    return bool(settings.OMS_WECHAT_APP_ID and settings.OMS_WECHAT_APP_SECRET)


class WeChatClient(GatewayClient):
    """The one WeChat server API the hub calls. No retries: a code is single-use, and after an ambiguous failure
    the mini-program simply calls wx.login again."""

    def __init__(self, *, base_url: str, app_id: str, app_secret: str, timeout: float = 5.0,
                 http: requests.Session | None = None):
        super().__init__(timeout=timeout, max_retries=0, backoff_base=0.5, backoff_max=1.0, http=http)
        self.base_url, self.app_id, self.app_secret = base_url.rstrip("/"), app_id, app_secret

    @classmethod
    def from_settings(cls) -> WeChatClient:
        return cls(base_url=settings.OMS_WECHAT_API_BASE, app_id=settings.OMS_WECHAT_APP_ID,
                   app_secret=settings.OMS_WECHAT_APP_SECRET, timeout=settings.OMS_WECHAT_TIMEOUT)

    def code_to_session(self, code: str) -> WeChatSession:
        """Exchange a wx.login() code for the user's openid; raises WeChatLoginError."""
        params = {"appid": self.app_id, "secret": self.app_secret, "js_code": code,
                  "grant_type": "authorization_code"}
        try:
            _status, body = self.get(self.base_url + CODE_TO_SESSION_PATH, params=params,
                                     describe="WeChat jscode2session")
        except GatewayError as exc:
            logger.warning("WeChat login: %s", exc)
            raise WeChatLoginError(REASON_UNAVAILABLE, str(exc)) from exc
        if not isinstance(body, dict):
            raise WeChatLoginError(REASON_UNAVAILABLE, "WeChat jscode2session: the answer is not a JSON object")
        errcode = body.get("errcode") or 0
        if not isinstance(errcode, int):
            raise WeChatLoginError(REASON_UNAVAILABLE, f"WeChat jscode2session: errcode {errcode!r}")
        if errcode:
            reason = ERRCODE_REASONS.get(errcode, REASON_UNAVAILABLE)
            if reason == REASON_UNAVAILABLE:
                # Our side is wrong (app id or secret, a new code we do not know): the operator must see it.
                logger.error("WeChat login refused with errcode %s: %s", errcode, body.get("errmsg", ""))
            raise WeChatLoginError(reason, f"WeChat errcode {errcode}: {body.get('errmsg', '')}", errcode=errcode)
        openid = body.get("openid")
        if not isinstance(openid, str) or not 0 < len(openid) <= 128:
            raise WeChatLoginError(REASON_UNAVAILABLE, "WeChat jscode2session: no openid in the answer")
        unionid = body.get("unionid")
        return WeChatSession(openid=openid, unionid=unionid if isinstance(unionid, str) else "")
