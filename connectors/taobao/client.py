"""TOP (Taobao Open Platform) gateway client: signing, the request envelope, errors and retries."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests

from connectors.router import RouterClient
from gateway.errors import AuthError, PermanentError, TransientError
from gateway.http import gateway_url, require_credentials

# TOP times (request timestamp, payload times, query windows) are Beijing wall-clock time.
SHANGHAI = ZoneInfo("Asia/Shanghai")
TOP_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DEFAULT_GATEWAY = "https://gw.api.taobao.com/router/rest"
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")

# What the incremental list needs: enough to de-duplicate and order; details come from fullinfo.
LIST_FIELDS = "tid,tid_str,status,modified"
# Everything the mapping reads plus what an operator may want to see in the stored payload.
FULLINFO_FIELDS = ",".join([
    "tid", "tid_str", "status", "type", "created", "pay_time", "modified", "consign_time", "end_time",
    "payment", "total_fee", "post_fee", "discount_fee", "adjust_fee", "received_payment",
    "buyer_nick", "buyer_open_uid", "buyer_message", "seller_memo", "seller_flag",
    "receiver_name", "receiver_state", "receiver_city", "receiver_district", "receiver_town",
    "receiver_address", "receiver_zip", "receiver_mobile", "receiver_phone",
    "shipping_type", "step_trade_status", "step_paid_fee", "promotion_details", "orders",
    "alipay_no", "commission_fee",  # what settlements match on: the Alipay trade number, the commission
])

# trades.sold.increment.get `type`: without it TOP returns only guarantee_trade (fixed + auction),
# auto_delivery, ec, cod and step trades, so every other kind a seller sells would never be imported
# (API_FACTS §2.4). These are the documented types of trades that carry goods or vouchers a seller
# fulfils; insurance_plus and finance (insurance and fund sales) are not goods orders and stay out.
TRADE_TYPES = (
    "fixed", "auction", "guarantee_trade", "step", "auto_delivery", "ec", "cod", "b2c_cod",
    "independent_simple_trade", "independent_shop_trade", "game_equipment", "shopex_trade", "netcn_trade",
    "external_trade", "instant_trade", "hotel_trade", "super_market_trade", "super_market_cod_trade", "taohua",
    "waimai", "o2o_offlinetrade", "nopaid", "eticket", "tmall_i18n", "pre_auth_type",
)

# taobao.refund.get fields the refund push reads (refund_version and refund_phase go into rp.refunds.agree).
REFUND_FIELDS = "refund_id,tid,oid,status,refund_fee,refund_phase,refund_version"

AUTH_CODES = {"26", "27", "28", "29"}  # missing/invalid session, missing/invalid app key
RATE_LIMITED = "7"
SERVICE_UNAVAILABLE = "10"
_BAN_SECONDS = re.compile(r"(\d+)\s*more\s*second", re.IGNORECASE)


def top_sign(params: Mapping[str, Any], secret: str, sign_method: str = "md5") -> str:
    """TOP request signature (API_FACTS §2.2): sorted k+v pairs without `sign` and empty values."""
    joined = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and params[k] not in (None, ""))
    if sign_method == "md5":
        return hashlib.md5((secret + joined + secret).encode()).hexdigest().upper()
    if sign_method == "hmac":
        return hmac.new(secret.encode(), joined.encode(), hashlib.md5).hexdigest().upper()
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), joined.encode(), hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown TOP sign_method {sign_method!r}")


def format_top_time(value: datetime) -> str:
    """An aware datetime as TOP's "yyyy-MM-dd HH:mm:ss" Beijing wall time."""
    if value.tzinfo is None:
        raise ValueError("TOP times need an aware datetime")
    return value.astimezone(SHANGHAI).strftime(TOP_TIME_FORMAT)


def parse_top_time(value: str) -> datetime:
    """TOP's "yyyy-MM-dd HH:mm:ss" Beijing wall time as an aware datetime (raises ValueError)."""
    return datetime.strptime(value.strip(), TOP_TIME_FORMAT).replace(tzinfo=SHANGHAI)


def response_key(method: str) -> str:
    """The success envelope root: taobao.trade.fullinfo.get → trade_fullinfo_get_response."""
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def unwrap_lists(value: Any) -> Any:
    """Flatten non-simplified JSON list wrappers: {"orders": {"order": [...]}} → {"orders": [...]}."""
    if isinstance(value, list):
        return [unwrap_lists(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if isinstance(item, dict) and len(item) == 1:
            (inner_key, inner), = item.items()
            # The XML heritage names a list "<singular>s" holding "<singular>": trades/trade, skus/sku…
            if isinstance(inner, list) and key in (inner_key + "s", inner_key + "es"):
                result[key] = unwrap_lists(inner)
                continue
        result[key] = unwrap_lists(item)
    return result


def _encode(value: Any) -> str | None:
    """A business parameter as the string that is both signed and sent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_top_time(value)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


class TopClient(RouterClient):
    """One seller's authorised TOP client. ``call`` signs, posts, unwraps and retries what is worth it."""

    label = "TOP"
    # Code 7 answers that the app is banned for a while: the call was refused, not run.
    refused_codes = RouterClient.refused_codes | {RATE_LIMITED}

    def __init__(self, *, base_url: str = DEFAULT_GATEWAY, app_key: str, app_secret: str, session: str,
                 sign_method: str = "md5", timeout: float = 10.0, max_retries: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, max_wait: float = 60.0,
                 http: requests.Session | None = None, sleep: Callable[[float], Any] = time.sleep):
        if sign_method not in SIGN_METHODS:
            raise ValueError(f"unknown TOP sign_method {sign_method!r}")
        super().__init__(timeout=timeout, max_retries=max_retries, backoff_base=backoff_base,
                         backoff_max=backoff_max, http=http, sleep=sleep)
        self.base_url = gateway_url(base_url, "/router/rest")
        self.app_key, self.app_secret, self.session = app_key, app_secret, session
        self.sign_method = sign_method
        # A ban longer than this is not slept through: the caller gets TransientError(retry_after=…)
        # and its scheduler comes back later instead of holding a worker.
        self.max_wait = max_wait

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str], **options: Any) -> TopClient:
        require_credentials(credentials, ("app_key", "app_secret", "session"), platform="Taobao")
        return cls(base_url=credentials.get("base_url") or DEFAULT_GATEWAY, app_key=credentials["app_key"],
                   app_secret=credentials["app_secret"], session=credentials["session"],
                   sign_method=credentials.get("sign_method") or "md5", **options)

    # --- What RouterClient.call needs: TOP's signature, response key and list wrappers ------------

    def signed_params(self, method: str, params: Mapping[str, Any]) -> dict[str, str]:
        business = {key: encoded for key, value in params.items() if (encoded := _encode(value)) is not None}
        system = {"method": method, "app_key": self.app_key, "session": self.session,
                  "timestamp": format_top_time(datetime.now(SHANGHAI)), "format": "json", "v": "2.0",
                  "sign_method": self.sign_method}
        signed = {**business, **system}
        signed["sign"] = top_sign(signed, self.app_secret, self.sign_method)
        return signed

    def response_keys(self, method: str) -> tuple[str, ...]:
        return (response_key(method),)

    def unwrap(self, result: dict) -> dict:
        return unwrap_lists(result)

    @staticmethod
    def error_for(method: str, error: Mapping[str, Any]) -> TransientError | PermanentError:
        """The gateway error for one TOP ``error_response`` (HTTP 200)."""
        code = str(error.get("code", ""))
        sub_code = str(error.get("sub_code") or "")
        text = (f"TOP {method} error code {code} ({error.get('msg', '')})"
                + (f", sub_code {sub_code} ({error.get('sub_msg', '')})" if sub_code else ""))
        if code == RATE_LIMITED:
            ban = _BAN_SECONDS.search(f"{error.get('sub_msg', '')} {error.get('msg', '')}")
            return TransientError(text, code=code, retry_after=float(ban.group(1)) if ban else 1.0)
        if code == SERVICE_UNAVAILABLE or sub_code.startswith("isp."):
            return TransientError(text, code=code)
        if code in AUTH_CODES:
            return AuthError(text, code=code)
        return PermanentError(text, code=code)

    # --- The APIs the hub uses ---------------------------------------------------------------------

    def trades_sold_increment_get(self, *, start_modified: datetime | str, end_modified: datetime | str,
                                  page_no: int, page_size: int = 100, fields: str = LIST_FIELDS,
                                  use_has_next: bool = False, types: tuple[str, ...] = TRADE_TYPES) -> dict:
        """One page of trades modified in [start, end] (≤ 1 day), newest first: {total_results, has_next, trades}."""
        result = self.call("taobao.trades.sold.increment.get", fields=fields, start_modified=start_modified,
                           end_modified=end_modified, page_no=page_no, page_size=page_size,
                           use_has_next=use_has_next, type=list(types))
        # An empty page comes without the "trades" key at all.
        result["trades"] = result.get("trades") or []
        return result

    def trade_fullinfo_get(self, tid: str | int, fields: str = FULLINFO_FIELDS) -> dict:
        """The full trade with its orders (lists unwrapped)."""
        result = self.call("taobao.trade.fullinfo.get", tid=tid, fields=fields)
        trade = result.get("trade")
        if not isinstance(trade, dict):
            raise PermanentError(f"TOP taobao.trade.fullinfo.get: no trade in the answer for tid {tid}",
                                 code="envelope")
        return trade

    def logistics_offline_send(self, *, tid: str | int, out_sid: str, company_code: str, is_split: bool = False,
                               sub_tid: str | list[str] | None = None) -> dict:
        """Mark a trade (or, split, the listed sub-order oids) shipped with our own carrier."""
        # Sending twice after an ambiguous failure would ship twice or fail on an already-shipped trade.
        result = self.call("taobao.logistics.offline.send", retry_ambiguous=False, tid=tid, out_sid=out_sid,
                           company_code=company_code, is_split=1 if is_split else None,
                           sub_tid=sub_tid if is_split else None)
        shipping = result.get("shipping") or {}
        if shipping.get("is_success") is not True:
            raise PermanentError(f"TOP taobao.logistics.offline.send: not accepted for tid {tid}: {result}",
                                 code="not_success")
        return shipping

    def item_quantity_update(self, *, num_iid: str | int, quantity: int, sku_id: str | int | None = None,
                             outer_id: str | None = None, type: int = 1) -> dict:
        """Set (type 1) or change (type 2) an item's or SKU's stock (``type`` is TOP's own parameter name)."""
        # type 1 overwrites, so repeating it is harmless; type 2 adds and must not be repeated blindly.
        result = self.call("taobao.item.quantity.update", retry_ambiguous=type == 1, num_iid=num_iid,
                           quantity=quantity, sku_id=sku_id, outer_id=outer_id, type=type)
        return result.get("item") or result

    def skus_quantity_update(self, *, num_iid: str | int, quantities: Mapping[str, int]) -> dict:
        """Overwrite the stock of several SKUs of one item in one call (``quantities``: sku_id → quantity)."""
        if not quantities:
            raise ValueError("no SKU quantities to set")
        pairs = ";".join(f"{sku_id}:{int(quantity)}" for sku_id, quantity in quantities.items())
        # type 1 overwrites, so a retry after an ambiguous failure is harmless.
        result = self.call("taobao.skus.quantity.update", num_iid=num_iid, skuid_quantities=pairs, type=1)
        return result.get("item") or result

    # --- Refunds (API_FACTS "Refunds") ----------------------------------------------------------------

    def refund_get(self, refund_id: str | int, fields: str = REFUND_FIELDS) -> dict:
        """One refund request (taobao.refund.get): its status, amount, phase and version."""
        # One try per call: the refund outbox retries with its own backoff.
        result = self.call("taobao.refund.get", retry_ambiguous=False, refund_id=refund_id, fields=fields)
        refund = result.get("refund")
        if not isinstance(refund, dict):
            raise PermanentError(f"TOP taobao.refund.get: no refund in the answer for {refund_id}", code="envelope")
        return refund

    def rp_refunds_agree(self, *, refund_id: str | int, amount_fen: int, version: str | int, phase: str = "") -> dict:
        """Agree to one refund request (taobao.rp.refunds.agree): refund_infos "refund_id|amount in fen|version|
        phase" (phase onsale/aftersale is for Tmall only)."""
        info = "|".join(str(part) for part in (refund_id, amount_fen, version, phase) if part not in (None, ""))
        # Never repeated blindly: after a lost answer the caller reads the refund's status first.
        result = self.call("taobao.rp.refunds.agree", retry_ambiguous=False, refund_infos=info)
        if result.get("succ") is not True:
            raise PermanentError(f"TOP taobao.rp.refunds.agree: not accepted for refund {refund_id}: "
                                 f"{result.get('msg_code', '')} {result.get('message', '')}".rstrip(),
                                 code=str(result.get("msg_code") or "not_success"))
        return result
