"""Pinduoduo open-platform gateway client: signing, the request envelope, response keys, errors and retries."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests

from connectors.router import RouterClient
from gateway.errors import AuthError, PermanentError, TransientError
from gateway.http import gateway_url, require_credentials

# Payload times are Beijing wall-clock strings; query windows and the request timestamp are epoch seconds.
SHANGHAI = ZoneInfo("Asia/Shanghai")
PDD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DEFAULT_GATEWAY = "https://gw-api.pinduoduo.com/api/router"
GATEWAY_PATH = "/api/router"

# API_FACTS §3.3: the success root is not derivable from the API name, so it is looked up here.
# A tuple lists every key a revision of the platform has used.
RESPONSE_KEYS: dict[str, tuple[str, ...]] = {
    "pdd.order.number.list.increment.get": ("order_sn_increment_get_response",),
    "pdd.order.information.get": ("order_info_get_response",),
    "pdd.order.list.get": ("order_list_get_response",),
    "pdd.logistics.online.send": ("logistics_online_send_response",),
    "pdd.goods.quantity.update": ("goods_quantity_update_response",),
    "pdd.logistics.companies.get": ("logistics_companies_get_response",),
    "pdd.open.decrypt.batch": ("open_decrypt_batch_response", "open_kms_decrypt_batch_response"),
    "pdd.refund.list.increment.get": ("refund_increment_get_response",),
    # pdd.refund.agree answers {"response": {"result": {...}}} (SDK lywzx shouHou/PddRefundAgree.ts).
    "pdd.refund.agree": ("response",),
    # The SDK types pdd.refund.information.get's fields but not its root: this one is the naming guess (NOT CONFIRMED).
    "pdd.refund.information.get": ("refund_information_get_response",),
}

# The only codes the SDK confirms (API_FACTS §3.3); every other code is a permanent refusal.
TOKEN_EXPIRED = "10019"
RATE_LIMITED = frozenset({"52101", "70031"})  # API rate-limited, calling too frequently
UNAVAILABLE = frozenset({"52102", "52103"})  # API temporarily unavailable, service unavailable
RETRYABLE = RATE_LIMITED | UNAVAILABLE


def _encode(value: Any) -> str | None:
    """A parameter as the string that is both signed and sent (None: not sent at all)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return str(epoch_seconds(value))
    if isinstance(value, dict | list | tuple):
        # Object and array parameters travel as JSON text, and are signed as that text.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    # Whether PDD signs empty values is NOT CONFIRMED: empty parameters are simply never sent.
    return text if text != "" else None


def pdd_sign(params: Mapping[str, Any], secret: str) -> str:
    """PDD request signature (API_FACTS §3.2): UPPER(md5(secret + k1v1k2v2… + secret)), keys ASCII-sorted."""
    encoded = {key: text for key, value in params.items() if key != "sign" and (text := _encode(value)) is not None}
    joined = "".join(f"{key}{encoded[key]}" for key in sorted(encoded))
    return hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest().upper()


def epoch_seconds(value: datetime | int) -> int:
    """An aware datetime (or epoch seconds already) as whole epoch seconds, rounded down."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("PDD times need an aware datetime")
        return int(value.timestamp() // 1)
    return int(value)


def parse_pdd_time(value: str) -> datetime:
    """PDD's "yyyy-MM-dd HH:mm:ss" Beijing wall time as an aware datetime (raises ValueError)."""
    return datetime.strptime(value.strip(), PDD_TIME_FORMAT).replace(tzinfo=SHANGHAI)


def format_pdd_time(value: datetime) -> str:
    """An aware datetime as PDD's "yyyy-MM-dd HH:mm:ss" Beijing wall time."""
    if value.tzinfo is None:
        raise ValueError("PDD times need an aware datetime")
    return value.astimezone(SHANGHAI).strftime(PDD_TIME_FORMAT)


def response_key(api_type: str) -> tuple[str, ...]:
    """The success roots of one API; an API outside the table gets the common naming guess."""
    return RESPONSE_KEYS.get(api_type) or (api_type.removeprefix("pdd.").replace(".", "_") + "_response",)


class PddClient(RouterClient):
    """One merchant's authorised PDD client. ``call`` signs, posts, unwraps and retries what is worth it."""

    label = "PDD"
    # 52101/70031 answer that the call was throttled, so it did not run; PDD's errors carry no retry_after,
    # so every wait is the plain backoff.
    refused_codes = RouterClient.refused_codes | RATE_LIMITED

    def __init__(self, *, base_url: str = DEFAULT_GATEWAY, client_id: str, client_secret: str, access_token: str,
                 timeout: float = 10.0, max_retries: int = 5, backoff_base: float = 0.5, backoff_max: float = 30.0,
                 http: requests.Session | None = None, sleep: Callable[[float], Any] = time.sleep):
        super().__init__(timeout=timeout, max_retries=max_retries, backoff_base=backoff_base,
                         backoff_max=backoff_max, http=http, sleep=sleep)
        self.base_url = gateway_url(base_url, GATEWAY_PATH)
        self.client_id, self.client_secret, self.access_token = client_id, client_secret, access_token

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str], **options: Any) -> PddClient:
        require_credentials(credentials, ("client_id", "client_secret", "access_token"), platform="Pinduoduo")
        return cls(base_url=credentials.get("base_url") or DEFAULT_GATEWAY, client_id=credentials["client_id"],
                   client_secret=credentials["client_secret"], access_token=credentials["access_token"], **options)

    # --- What RouterClient.call needs: PDD's signature and response keys ---------------------------

    def signed_params(self, api_type: str, params: Mapping[str, Any]) -> dict[str, str]:
        business = {key: text for key, value in params.items() if (text := _encode(value)) is not None}
        system = {"type": api_type, "client_id": self.client_id, "access_token": self.access_token,
                  "timestamp": str(int(time.time())), "data_type": "JSON", "version": "V1"}
        signed = {**business, **system}
        signed["sign"] = pdd_sign(signed, self.client_secret)
        return signed

    def response_keys(self, api_type: str) -> tuple[str, ...]:
        return response_key(api_type)

    @staticmethod
    def error_for(api_type: str, error: Mapping[str, Any]) -> TransientError | PermanentError:
        """The gateway error for one PDD ``error_response`` (HTTP 200)."""
        code = str(error.get("error_code", ""))
        sub_code = str(error.get("sub_code") or "")
        sub_msg = str(error.get("sub_msg") or "")
        # sub_code is often null while sub_msg still says what was wrong: show whichever is there.
        text = (f"PDD {api_type} error code {code} ({error.get('error_msg', '')})"
                + (f", sub_code {sub_code}" if sub_code else "") + (f": {sub_msg}" if sub_msg else ""))
        if code == TOKEN_EXPIRED:
            return AuthError(f"{text}: the store's access_token has expired; refresh the token "
                             "(or have the merchant authorise the app again)", code=code, sub_code=sub_code)
        if code in RETRYABLE:
            return TransientError(text, code=code, sub_code=sub_code)
        return PermanentError(text, code=code, sub_code=sub_code)

    # --- The APIs the hub uses ---------------------------------------------------------------------

    def order_number_list_increment_get(self, *, start_updated_at: datetime | int, end_updated_at: datetime | int,
                                        page: int, page_size: int = 100, order_status: int = 5,
                                        refund_status: int = 5, is_lucky_flag: int = 0) -> dict:
        """One page of full orders updated in [start, end] (≤ 30 min): {total_count, has_next, order_sn_list}."""
        result = self.call("pdd.order.number.list.increment.get", start_updated_at=epoch_seconds(start_updated_at),
                           end_updated_at=epoch_seconds(end_updated_at), page=page, page_size=page_size,
                           order_status=order_status, refund_status=refund_status, is_lucky_flag=is_lucky_flag)
        result["order_sn_list"] = result.get("order_sn_list") or []
        return result

    def refund_list_increment_get(self, *, start_updated_at: datetime | int, end_updated_at: datetime | int,
                                  page: int, page_size: int = 100) -> dict:
        """One page of after-sales updated in [start, end] (≤ 30 min), of every status and type:
        {total_count, refund_list} (API_FACTS "After-sales")."""
        # after_sales_status and after_sales_type are required; 1 is "全部" for both (the official Java SDK demo
        # and an older field doc; the newer doc lists no "all" status value).
        result = self.call("pdd.refund.list.increment.get", start_updated_at=epoch_seconds(start_updated_at),
                           end_updated_at=epoch_seconds(end_updated_at), page=page, page_size=page_size,
                           after_sales_status=1, after_sales_type=1)
        refunds = result.get("refund_list")
        if refunds is None:
            refunds = []
        if not isinstance(refunds, list):
            raise PermanentError("PDD pdd.refund.list.increment.get: refund_list is not a list", code="envelope")
        result["refund_list"] = refunds
        return result

    def refund_information_get(self, *, after_sales_id: str | int, order_sn: str) -> dict:
        """One after-sale (pdd.refund.information.get): its after_sales_status, type and refund_amount."""
        # One try per call: the refund outbox retries with its own backoff.
        return self.call("pdd.refund.information.get", retry_ambiguous=False, after_sales_id=after_sales_id,
                         order_sn=order_sn)

    def refund_agree(self, *, after_sales_id: str | int, order_sn: str, operate_desc: str = "") -> dict:
        """Agree to the buyer's after-sale (pdd.refund.agree); PDD refunds the amount the after-sale asks for."""
        # Never repeated blindly: after a lost answer the caller reads the after-sale's status first.
        result = self.call("pdd.refund.agree", retry_ambiguous=False, after_sales_id=after_sales_id,
                           order_sn=order_sn, operate_desc=operate_desc or None)
        outcome = result.get("result") if isinstance(result.get("result"), dict) else {}
        if outcome.get("succ") is not True:
            raise PermanentError(f"PDD pdd.refund.agree: not accepted for after-sale {after_sales_id}: "
                                 f"{outcome.get('message', '')}".rstrip(), code="not_success")
        return outcome

    def order_information_get(self, order_sn: str) -> dict:
        """The full order (``order_info``) of one order_sn."""
        result = self.call("pdd.order.information.get", order_sn=order_sn)
        order = result.get("order_info")
        if not isinstance(order, dict):
            raise PermanentError(f"PDD pdd.order.information.get: no order_info in the answer for {order_sn}",
                                 code="envelope")
        return order

    def logistics_online_send(self, *, order_sn: str, logistics_id: int | str, tracking_number: str) -> dict:
        """Mark an order shipped with a carrier (PDD's company id) and tracking number."""
        # Sending twice after an ambiguous failure would fail on an already-shipped order at best.
        result = self.call("pdd.logistics.online.send", retry_ambiguous=False, order_sn=order_sn,
                           logistics_id=logistics_id, tracking_number=tracking_number)
        if result.get("is_success") is not True:
            raise PermanentError(f"PDD pdd.logistics.online.send: not accepted for {order_sn}: {result}",
                                 code="not_success")
        return result

    def goods_quantity_update(self, *, goods_id: int | str, quantity: int, sku_id: int | str | None = None,
                              outer_id: str | None = None, update_type: int = 1) -> dict:
        """Set (update_type 1) or change (2) the stock of one SKU, named by sku_id or outer_id."""
        if sku_id in (None, "") and not outer_id:
            raise PermanentError(f"PDD goods {goods_id}: a stock update needs sku_id or outer_id",
                                 code="invalid_parameter")
        # update_type 1 overwrites, so repeating it is harmless; 2 adds and must not be repeated blindly.
        result = self.call("pdd.goods.quantity.update", retry_ambiguous=update_type == 1, goods_id=goods_id,
                           quantity=quantity, sku_id=sku_id, outer_id=outer_id, update_type=update_type)
        if result.get("is_success") is not True:
            raise PermanentError(f"PDD pdd.goods.quantity.update: not accepted for goods {goods_id}: {result}",
                                 code="not_success")
        return result
