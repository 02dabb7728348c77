"""Douyin Shop (抖店) open-platform client: canonical param_json, signing, the envelope, errors and retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from gateway.errors import AuthError, PermanentError, TransientError
from gateway.http import GatewayClient, require_credentials

DEFAULT_GATEWAY = "https://openapi-fxg.jinritemai.com"
SIGN_METHODS = ("hmac-sha256", "md5")
MAX_PAGE_SIZE = 100

SUCCESS = "10000"
RATE_LIMITED = "60000"
# 20000 service unavailable, 20001 internal timeout (API_FACTS §4.3).
SERVICE_ERRORS = frozenset({"20000", "20001"})
# Answers that need an operator: insufficient permission / authorisation closed (30001), a missing
# token (40001), and the credential sub_codes of 40003 (invalid system parameter).
AUTH_CODES = frozenset({"30001"})
AUTH_SUB_CODES = frozenset({
    "isv.access-token-expired", "isv.access-token-no-existed", "isv.access-token-missing",
    # A wrong app_secret or app_key shows up as these; retrying cannot fix either.
    "isv.signature-invalid", "isv.app-key-invalid",
})
# Failures that prove the gateway refused the call before running it: safe to retry even for calls
# that must not run twice (order.logisticsAdd).
REFUSED = frozenset({RATE_LIMITED, "connect", "http_429"})


def canonical_param_json(params: Mapping[str, Any] | None) -> str:
    """The business parameters as Douyin signs and sends them (API_FACTS §4.1).

    Keys sorted at every level (Go marshals maps sorted), compact separators, UTF-8 kept as is and
    no HTML escaping, numbers as numbers. The exact same string must be signed and sent.
    """
    return json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def douyin_sign(*, app_key: str, secret: str, method: str, param_json: str, timestamp: str | int,
                sign_method: str = "hmac-sha256") -> str:
    """Request signature (API_FACTS §4.2), lower-case hex; ``access_token`` is not part of it."""
    pattern = f"app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v2"
    wrapped = f"{secret}{pattern}{secret}".encode()
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), wrapped, hashlib.sha256).hexdigest()
    if sign_method == "md5":
        return hashlib.md5(wrapped).hexdigest()
    raise ValueError(f"unknown Douyin sign_method {sign_method!r}")


def event_sign(app_key: str, body: bytes | str, secret: str) -> str:
    """Push signature (header ``event-sign``, API_FACTS §4.7): lower-hex MD5(app_key + raw body + app_secret)."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    return hashlib.md5(app_key.encode() + raw + secret.encode()).hexdigest()


def api_path(method: str) -> str:
    """order.searchList → order/searchList (the URL path of an API)."""
    return method.strip(".").replace(".", "/")


def _epoch(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("Douyin times need an aware datetime")
        # Floor to the second: Douyin's bounds are whole seconds and the caller trims to its window.
        return int(value.timestamp() // 1)
    return int(value)


class DouyinClient(GatewayClient):
    """One shop's authorised client. ``call`` signs, posts, unwraps ``data`` and retries what is worth it.

    ``sleep`` and ``clock`` are attributes so tests can record waits and pin the request timestamp.
    """

    refused_codes = REFUSED
    # A body cut off mid-way (or undecodable) is the connection's fault too.
    connection_failures = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                           requests.exceptions.ContentDecodingError)
    # An invalid URL in the store's settings: retrying cannot fix it.
    permanent_failures = (requests.RequestException,)

    def __init__(self, *, base_url: str = DEFAULT_GATEWAY, app_key: str, app_secret: str, access_token: str,
                 sign_method: str = "hmac-sha256", timeout: float = 10.0, max_retries: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, http: requests.Session | None = None,
                 sleep: Callable[[float], Any] = time.sleep, clock: Callable[[], float] = time.time):
        if sign_method not in SIGN_METHODS:
            raise ValueError(f"unknown Douyin sign_method {sign_method!r}")
        base_url = base_url.strip().rstrip("/")
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        super().__init__(timeout=timeout, max_retries=max_retries, backoff_base=backoff_base,
                         backoff_max=backoff_max, http=http, sleep=sleep)
        self.base_url = base_url
        self.app_key, self.app_secret, self.access_token = app_key, app_secret, access_token
        self.sign_method = sign_method
        self.clock = clock

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str], **options: Any) -> DouyinClient:
        require_credentials(credentials, ("app_key", "app_secret", "access_token"), platform="Douyin")
        return cls(base_url=credentials.get("base_url") or DEFAULT_GATEWAY, app_key=str(credentials["app_key"]),
                   app_secret=str(credentials["app_secret"]), access_token=str(credentials["access_token"]),
                   sign_method=credentials.get("sign_method") or "hmac-sha256", **options)

    # --- The generic call ------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None, *, retry_ambiguous: bool = True) -> dict:
        """Call one API and return its ``data`` object ({} when the answer carries none).

        ``retry_ambiguous=False`` is for calls that must not run twice (order.logisticsAdd): failures after
        which the call may have been applied (timeouts, 5xx, 20000/20001, broken bodies) are raised at once;
        only answers proving it was refused (60000, HTTP 429, no connection) are retried.
        """
        param_json = canonical_param_json(params)
        return self._with_retries(lambda: self._call_once(method, param_json), retry_ambiguous=retry_ambiguous)

    def signed_query(self, method: str, param_json: str) -> dict[str, str]:
        # Signed per attempt: the timestamp must be fresh (the gateway checks it).
        timestamp = str(int(self.clock()))
        return {"app_key": self.app_key, "method": method, "timestamp": timestamp, "v": "2",
                "sign_method": self.sign_method,
                "sign": douyin_sign(app_key=self.app_key, secret=self.app_secret, method=method,
                                    param_json=param_json, timestamp=timestamp, sign_method=self.sign_method),
                "access_token": self.access_token}

    def _call_once(self, method: str, param_json: str) -> dict:
        url = f"{self.base_url}/{api_path(method)}"
        # No redirects: requests would carry the signed query (and token) to whatever host a redirect names.
        status, body = self.post(url, describe=f"Douyin {method}", params=self.signed_query(method, param_json),
                                 data=param_json.encode("utf-8"), allow_redirects=False,
                                 headers={"Content-Type": "application/json;charset=UTF-8",
                                          "Accept": "application/json", "x-open-no-old-err-code": "1"})
        if not isinstance(body, dict) or "code" not in body:
            raise PermanentError(f"Douyin {method}: HTTP {status}, unexpected answer {str(body)[:200]}",
                                 code="envelope")
        code = str(body.get("code"))
        if code != SUCCESS:
            raise self.error_for(method, body)
        data = body.get("data")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise PermanentError(f"Douyin {method}: data is not an object: {str(data)[:200]}", code="envelope")
        return data

    @staticmethod
    def decode(response: requests.Response) -> Any:
        # The bytes as they came (json detects UTF-8/16/32 itself), not requests' charset guess at the text.
        return json.loads(response.content)

    @staticmethod
    def error_for(method: str, body: Mapping[str, Any]) -> TransientError | PermanentError:
        """The connector error for one non-success envelope (HTTP 200, code ≠ 10000)."""
        code = str(body.get("code", ""))
        sub_code = str(body.get("sub_code") or "")
        text = (f"Douyin {method} code {code} ({body.get('msg', '')})"
                + (f", sub_code {sub_code} ({body.get('sub_msg', '')})" if sub_code else "")
                + (f", log_id {body['log_id']}" if body.get("log_id") else ""))
        if code == RATE_LIMITED or code in SERVICE_ERRORS:
            # Douyin publishes no rate-limit numbers or Retry-After (API_FACTS §7): plain backoff.
            return TransientError(text, code=code, sub_code=sub_code)
        if code in AUTH_CODES or sub_code in AUTH_SUB_CODES or (code == "40001" and "token" in sub_code):
            return AuthError(text, code=code, sub_code=sub_code)
        return PermanentError(text, code=code, sub_code=sub_code)

    # --- The APIs the hub uses ---------------------------------------------------------------------

    def order_search_list(self, *, update_time_start: datetime | int, update_time_end: datetime | int, page: int,
                          size: int = MAX_PAGE_SIZE) -> dict:
        """One page (from 0) of shop orders updated in [start, end], newest first: {page, size, total, shop_order_list}."""
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"size must be 1..{MAX_PAGE_SIZE}")
        data = self.call("order.searchList", {
            "update_time_start": _epoch(update_time_start), "update_time_end": _epoch(update_time_end),
            # order_asc left out: the default (newest first) is what the poller's backwards paging expects.
            "page": page, "size": size, "order_by": "update_time"})
        orders = data.get("shop_order_list")
        if orders is None:
            orders = []
        if not isinstance(orders, list):
            raise PermanentError("Douyin order.searchList: shop_order_list is not a list", code="envelope")
        data["shop_order_list"] = orders
        try:
            data["total"] = int(data.get("total") or 0)
        except (TypeError, ValueError):
            raise PermanentError(f"Douyin order.searchList: total {data.get('total')!r} is not a number",
                                 code="envelope") from None
        return data

    def after_sale_list(self, *, update_start_time: datetime | int, update_end_time: datetime | int, page: int,
                        size: int = MAX_PAGE_SIZE) -> dict:
        """One page (from 0) of after-sales updated in [start, end], newest first: {items, has_more, total, page,
        size} (afterSale/List, API_FACTS "After-sales")."""
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"size must be 1..{MAX_PAGE_SIZE}")
        data = self.call("afterSale.List", {
            "update_start_time": _epoch(update_start_time), "update_end_time": _epoch(update_end_time),
            "page": page, "size": size, "order_by": ["update_time desc"]})
        items = data.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise PermanentError("Douyin afterSale.List: items is not a list", code="envelope")
        data["items"] = items
        try:
            data["total"] = int(data.get("total") or 0)
        except (TypeError, ValueError):
            raise PermanentError(f"Douyin afterSale.List: total {data.get('total')!r} is not a number",
                                 code="envelope") from None
        return data

    def after_sale_detail(self, after_sale_id: str) -> dict:
        """One after-sale (afterSale/Detail): ``process_info.after_sale_info`` holds its status and amounts."""
        # One try per call: the refund outbox retries with its own backoff.
        data = self.call("afterSale.Detail", {"after_sale_id": str(after_sale_id)}, retry_ambiguous=False)
        info = (data.get("process_info") or {}).get("after_sale_info") if isinstance(data, dict) else None
        if not isinstance(info, dict):
            raise PermanentError(f"Douyin afterSale.Detail: no after_sale_info for {after_sale_id}", code="envelope")
        return info

    def after_sale_operate(self, *, type: int, aftersale_id: str, remark: str = "") -> dict:
        """One seller decision on one after-sale (afterSale/operate; ``type`` is Douyin's own parameter name,
        e.g. 201 agree to a refund only). One after-sale per call: a batch fails as a whole."""
        item: dict[str, Any] = {"aftersale_id": str(aftersale_id)}
        if remark:
            item["remark"] = remark
        # Never repeated blindly: after a lost answer the caller reads the after-sale's status first.
        return self.call("afterSale.operate", {"type": int(type), "items": [item]}, retry_ambiguous=False)

    def order_detail(self, shop_order_id: str) -> dict:
        """The full shop order (``data.shop_order_detail``)."""
        data = self.call("order.orderDetail", {"shop_order_id": str(shop_order_id)})
        detail = data.get("shop_order_detail")
        if not isinstance(detail, dict):
            raise PermanentError(f"Douyin order.orderDetail: no shop_order_detail for {shop_order_id}",
                                 code="envelope")
        return detail

    def order_logistics_add(self, *, order_id: str, company_code: str, logistics_code: str) -> dict:
        """Ship the whole shop order with one tracking number."""
        # Sending twice after an ambiguous failure would answer "already shipped" (or ship twice):
        # only refused calls are retried here; the caller checks the order before trying again.
        return self.call("order.logisticsAdd", {"order_id": str(order_id), "company_code": company_code,
                                                "logistics_code": logistics_code}, retry_ambiguous=False)

    def sku_sync_stock(self, *, sku_id: str | int | None = None, code: str | None = None,
                       product_id: str | int | None = None, stock_num: int) -> dict:
        """Overwrite one SKU's stock (absolute, so repeating it is harmless)."""
        if not sku_id and not code:
            raise PermanentError("Douyin sku.syncStock needs sku_id or code", code="unknown_sku")
        if stock_num < 0:
            raise PermanentError(f"Douyin sku.syncStock: stock_num must be ≥ 0, got {stock_num}", code="invalid")
        params: dict[str, Any] = {"stock_num": int(stock_num), "incremental": False}
        # sku_id and product_id are int64 on the wire (SDK SkuSyncStockParam).
        for name, value in (("sku_id", sku_id), ("product_id", product_id)):
            if value in (None, ""):
                continue
            if not str(value).strip().isdigit():
                raise PermanentError(f"Douyin sku.syncStock: {name} must be digits, got {value!r}", code="unknown_sku")
            params[name] = int(str(value).strip())
        if code:
            params["code"] = code
        return self.call("sku.syncStock", params)

    def sku_sync_stock_batch(self, *, product_id: str | int, quantities: Mapping[str | int, int]) -> dict:
        """Overwrite the stock of several SKUs of one product in one call (``quantities``: sku_id → stock_num).
        The platform applies all or none of them (API_FACTS.md §4.6)."""
        if not quantities:
            raise ValueError("no SKU quantities to set")
        wanted = {"product_id": product_id, **{f"sku {sku_id}": sku_id for sku_id in quantities}}
        for name, value in wanted.items():
            if not str(value).strip().isdigit():
                raise PermanentError(f"Douyin sku.syncStockBatch: {name} must be digits, got {value!r}",
                                     code="unknown_sku")
        if any(int(stock_num) < 0 for stock_num in quantities.values()):
            raise PermanentError("Douyin sku.syncStockBatch: stock_num must be ≥ 0", code="invalid")
        params = {"product_id": int(str(product_id).strip()), "incremental": False,
                  "sku_sync_list": [{"sku_id": int(str(sku_id).strip()), "sku_type": 0, "stock_num": int(stock_num)}
                                    for sku_id, stock_num in quantities.items()]}
        return self.call("sku.syncStockBatch", params)
