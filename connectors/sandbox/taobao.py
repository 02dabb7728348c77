"""Taobao/Tmall TOP sandbox: the /router/rest gateway with signing, incremental trades, shipping and stock.

Follows API_FACTS.md §2: form-encoded requests (query or body) checked for app key, signature
(md5 / hmac / hmac-sha256), session and a ±10 minute timestamp; HTTP 200 answers with either a
``<api>_response`` root or an ``error_response``; non-simplified list wrappers ({"trade": [...]}).
Trades are stored in their wire shape (``orders`` as {"order": [...]}) keyed by ``tid_str``.
Where the facts leave a detail open (business sub_codes of shipping and stock errors) the sandbox
picks a plausible ``isv.*`` sub_code and says so in a comment.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import string
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from connectors.sandbox.data import (
    BUYER_MESSAGES,
    DEFAULT_SKUS,
    GIVEN_NAMES,
    MOBILE_PREFIXES,
    PLACES,
    SURNAMES,
    TITLES,
    house_number,
)

# Not the client's top_sign: the sandbox checks signatures with its own implementation so that a
# wrong algorithm in the client cannot pass unseen (API_FACTS §2.2 test vectors, tests/connectors/test_sandbox_strict.py).
from connectors.taobao.client import format_top_time, parse_top_time, response_key
from gateway.sandbox import Request, Response, Sandbox

API_PATH = "/router/rest"
MAX_SPAN = timedelta(days=1)
TIMESTAMP_SKEW = timedelta(minutes=10)
CENT = Decimal("0.01")

MESSAGES = {
    7: "App Call Limited", 10: "Service Currently Unavailable", 21: "Missing Method", 22: "Invalid Method",
    23: "Invalid Format", 24: "Missing Signature", 25: "Invalid Signature", 26: "Missing Session",
    27: "Invalid Session", 28: "Missing App Key", 29: "Invalid App Key", 30: "Missing Timestamp",
    31: "Invalid Timestamp", 40: "Missing Required Arguments", 41: "Invalid Arguments", 50: "Remote service error",
}
# The gateway's sign_method values and the digest each one names (API_FACTS §2.1).
SIGN_DIGESTS = {"md5": "md5", "hmac": "md5", "hmac-sha256": "sha256"}
# trades.sold.increment.get `type`: the documented values, and what TOP answers when `type` is left
# out: only guarantee_trade (itself only a query shorthand for fixed + auction), auto_delivery, ec,
# cod and step. Trades of every other type are simply not returned (API_FACTS §2.4).
TRADE_TYPES = frozenset({
    "fixed", "auction", "guarantee_trade", "step", "independent_simple_trade", "independent_shop_trade",
    "auto_delivery", "ec", "cod", "game_equipment", "shopex_trade", "netcn_trade", "external_trade",
    "instant_trade", "b2c_cod", "hotel_trade", "super_market_trade", "super_market_cod_trade", "taohua", "waimai",
    "o2o_offlinetrade", "nopaid", "eticket", "tmall_i18n", "insurance_plus", "finance", "pre_auth_type",
})
DEFAULT_TRADE_TYPES = ("guarantee_trade", "auto_delivery", "ec", "cod", "step")
GUARANTEE_TRADE = ("fixed", "auction")
# company_code values as taobao.logistics.companies.get lists them for the usual express companies.
# POST and ZJS are the documentation's own examples; the rest is the sandbox's list (the full table
# comes from the platform's API and is NOT CONFIRMED here).
LOGISTICS_COMPANIES = {
    "SF": "顺丰速运", "ZTO": "中通快递", "YTO": "圆通速递", "STO": "申通快递", "YUNDA": "韵达快递",
    "EMS": "EMS", "POSTB": "邮政快递包裹", "POST": "中国邮政", "ZJS": "宅急送", "JD": "京东快递",
    "HTKY": "百世快递", "DBKD": "德邦快递", "JTSD": "极兔速递", "OTHER": "其他",
}
SHIPPABLE = ("WAIT_SELLER_SEND_GOODS", "SELLER_CONSIGNED_PART")
UNPAID = ("TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM")

NICK_WORDS = ["爱喝茶的猫", "小橙子", "tb", "阿狸", "茶友", "lucky", "大白", "晴天"]
SELLER_MEMOS = ["老客户，送试饮装", "改为发顺丰", "已电话确认地址"]


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def sandbox_top_sign(params: dict[str, str], secret: str, sign_method: str) -> str:
    """TOP's request signature, written from the documented algorithm (API_FACTS §2.2), not the client's.

    Every parameter but ``sign`` with a non-empty value, keys in byte order, key and value joined with no
    separator; md5 wraps the string in the secret, hmac and hmac-sha256 key the HMAC with it. Upper-case hex.
    """
    digest = SIGN_DIGESTS[sign_method]
    message = bytearray()
    for key in sorted(params, key=lambda name: name.encode()):
        if key != "sign" and params[key] != "":
            message += key.encode() + str(params[key]).encode()
    key_bytes = secret.encode()
    if sign_method == "md5":
        return hashlib.new(digest, key_bytes + bytes(message) + key_bytes).hexdigest().upper()
    return hmac.HMAC(key_bytes, bytes(message), digest).hexdigest().upper()


class TaobaoSandbox(Sandbox):
    platform = "taobao"

    def __init__(self, *, app_key: str | None = None, app_secret: str | None = None, session: str | None = None,
                 skus: list[tuple[str, str]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.app_key = app_key or self.credentials.get("app_key") or "12345678"
        self.app_secret = app_secret or self.credentials.get("app_secret") or "sandbox-secret"
        self.session = session or self.credentials.get("session") or "sandbox-session"
        self.catalog = [self._catalog_entry(code, price) for code, price in (skus or DEFAULT_SKUS)]
        self.api_calls: list[dict] = []  # every gateway request that got past the fault switches
        self.stock: dict[tuple[int, str], int] = {}  # (num_iid, sku_id or outer_id or "") → quantity
        # Buyers' refund requests by refund_id, in taobao.refund.get's shape (open_refund_request makes them).
        self.refund_requests: dict[str, dict] = {}

    # --- Helpers for tests ---------------------------------------------------------------------

    def connector_credentials(self) -> dict[str, str]:
        """The credentials a TaobaoConnector needs to talk to this sandbox (after ``start()``)."""
        return {"base_url": self.base_url + API_PATH, "app_key": self.app_key, "app_secret": self.app_secret,
                "session": self.session}

    def update_trade(self, tid: str | int, **changes) -> dict:
        """Change a stored trade as the platform would, moving ``modified`` strictly forward."""
        with self.lock:
            trade = self.orders[str(tid)]
            trade.update(changes)
            if "status" in changes and "orders" not in changes:
                # A whole-trade status change applies to its sub-orders, as on the platform.
                for order in self._orders_of(trade):
                    order["status"] = changes["status"]
            self._touch(trade)
            return trade

    def _touch(self, trade: dict) -> None:
        modified = self.now().replace(microsecond=0)
        if trade.get("modified"):
            previous = parse_top_time(trade["modified"])
            if modified <= previous:
                modified = previous + timedelta(seconds=1)
        trade["modified"] = format_top_time(modified)

    @staticmethod
    def _orders_of(trade: dict) -> list[dict]:
        orders = trade.get("orders") or []
        return orders.get("order", []) if isinstance(orders, dict) else orders

    def open_refund_request(self, tid: str | int, *, oid: str | int | None = None,
                            refund_fee: Decimal | str | None = None) -> dict:
        """The buyer asks for a refund on one sub-order (default: the first): the sub-order carries its
        refund_id and WAIT_SELLER_AGREE, as the order payload shows it; returns the request."""
        with self.lock:
            trade = self.orders[str(tid)]
            orders = self._orders_of(trade)
            order = next(o for o in orders if oid is None or str(o.get("oid")) == str(oid))
            refund_id = str(self._new_id(set()))
            fee = Decimal(str(refund_fee if refund_fee is not None else order.get("payment") or "0"))
            order.update(refund_id=refund_id, refund_status="WAIT_SELLER_AGREE")
            self._touch(trade)
            request = {"refund_id": refund_id, "tid": trade.get("tid"), "oid": order.get("oid"),
                       "status": "WAIT_SELLER_AGREE", "refund_fee": _money(fee), "refund_phase": "onsale",
                       "refund_version": str(int(self.now().timestamp() * 1000)), "created": trade["modified"]}
            self.refund_requests[refund_id] = request
            return dict(request)

    # --- Orders ----------------------------------------------------------------------------------

    def order_id(self, order: dict) -> str:
        return str(order.get("tid_str") or order["tid"])

    @staticmethod
    def _catalog_entry(code: str, price: str) -> dict:
        # Stable ids from the code: SKUs of one product (same code stem) share a num_iid, like
        # variants of one Taobao item, and every run gives the same ids.
        outer_iid = code.rsplit("-", 1)[0] if code.count("-") >= 2 else code
        return {"outer_sku_id": code, "outer_iid": outer_iid, "price": Decimal(price),
                "num_iid": 600000000000 + zlib.crc32(outer_iid.encode()) % 10**11,
                "sku_id": str(5000000000000 + zlib.crc32(code.encode()) % 10**12),
                "title": TITLES.get(code, code)}

    def _new_id(self, taken: set[int]) -> int:
        # 18–19 digits, yet inside int64 as TOP's ids are.
        while True:
            value = self.rng.randrange(10**17, 9 * 10**18)
            if value not in taken and str(value) not in self.orders:
                taken.add(value)
                return value

    def generate_order(self, *, lines: int | None = None, status: str | None = None,
                       trade_type: str = "fixed") -> dict:
        rng = self.rng
        now = self.now().replace(microsecond=0)
        taken: set[int] = set()
        tid = self._new_id(taken)
        status = status or ("WAIT_BUYER_PAY" if rng.random() < 0.15 else "WAIT_SELLER_SEND_GOODS")
        created = now - timedelta(minutes=rng.randint(2, 30), seconds=rng.randint(0, 59))
        count = min(lines or rng.choices([1, 2, 3], weights=[6, 3, 1])[0], len(self.catalog))
        orders, subtotal, line_discounts = [], Decimal("0"), Decimal("0")
        for item in rng.sample(self.catalog, count):
            num = rng.choice([1, 1, 1, 2, 3])
            gross = item["price"] * num
            # Some items carry a shop discount (限时折扣): 5 % off, on the sub-order.
            discount = (gross * Decimal("0.05")).quantize(CENT) if rng.random() < 0.3 else Decimal("0")
            subtotal += gross
            line_discounts += discount
            orders.append({
                "oid": self._new_id(taken), "num_iid": item["num_iid"], "sku_id": item["sku_id"],
                "outer_iid": item["outer_iid"], "outer_sku_id": item["outer_sku_id"], "title": item["title"],
                "num": num, "price": _money(item["price"]), "total_fee": _money(gross - discount),
                "payment": _money(gross - discount), "discount_fee": _money(discount), "adjust_fee": "0.00",
                "status": status, "refund_status": "NO_REFUND",
            })
        # An order-level promotion (满300减20); the trade's discount_fee covers it and the line discounts.
        promotion = Decimal("20.00") if subtotal - line_discounts >= 300 and rng.random() < 0.5 else Decimal("0")
        post_fee = Decimal("0") if subtotal >= 99 else Decimal("8.00")
        discount = line_discounts + promotion
        province, city, district, zip_code, streets = rng.choice(PLACES)
        trade = {
            "tid": tid, "tid_str": str(tid), "status": status, "type": trade_type, "shipping_type": "express",
            "created": format_top_time(created), "modified": format_top_time(now),
            "payment": _money(subtotal - discount + post_fee), "total_fee": _money(subtotal),
            "post_fee": _money(post_fee), "discount_fee": _money(discount), "adjust_fee": "0.00",
            "received_payment": "0.00", "seller_flag": 0,
            "buyer_nick": f"{rng.choice(NICK_WORDS)}{rng.randint(1, 9999)}",
            "buyer_open_uid": "AAH" + "".join(rng.choices(string.ascii_letters + string.digits, k=21)),
            "buyer_message": rng.choice(BUYER_MESSAGES) if rng.random() < 0.2 else "",
            "seller_memo": rng.choice(SELLER_MEMOS) if rng.random() < 0.1 else "",
            "receiver_name": rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
            "receiver_mobile": rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}",
            "receiver_phone": "", "receiver_state": province, "receiver_city": city,
            "receiver_district": district, "receiver_zip": zip_code,
            "receiver_address": rng.choice(streets) + house_number(rng),
            "orders": {"order": orders},
        }
        if status not in UNPAID:
            trade["pay_time"] = format_top_time(created + timedelta(seconds=rng.randint(5, 90)))
        if status != "TRADE_NO_CREATE_PAY":  # the one status in which no Alipay trade was created yet
            # The Alipay trade number (date, 2200, digits), derived from the tid so that the random stream, and
            # with it every seeded run, stays as it was.
            trade["alipay_no"] = f"{created:%Y%m%d}2200{tid % 10**16:016d}"
        if promotion:
            trade["promotion_details"] = {"promotion_detail": [
                {"id": tid, "promotion_name": "满300减20", "discount_fee": _money(promotion)}]}
        return trade

    def deliver_webhook(self, topic: str, order: dict) -> None:
        """TOP pushes go through TMC, which the hub does not use: nothing is delivered."""

    # --- Faults in TOP's shape -------------------------------------------------------------------

    def rate_limited_response(self) -> Response:
        return Response(200, {"error_response": {
            "code": 7, "msg": "App Call Limited", "sub_code": "accesscontrol.limited-by-app-access-count",
            "sub_msg": "This ban will last for 1 more seconds", "request_id": self._request_id()}})

    def server_error_response(self) -> Response:
        if self.faults.down:  # a gateway that is down does not answer in TOP's format at all
            return Response(503, b"<html><body>503 Service Unavailable</body></html>",
                            {"Content-Type": "text/html"})
        return self._error(10, sub_code="isp.remote-service-error", sub_msg="remote service temporarily failed")

    def reset(self) -> None:
        """Forget trades, records, stock, faults and a frozen clock (a started server keeps serving)."""
        super().reset()
        with self.lock:
            self.api_calls.clear()
            self.stock.clear()
            self.refund_requests.clear()
            self._clock = None

    # --- The gateway -----------------------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        if request.path.rstrip("/") != API_PATH:
            return Response(404, {"error": f"unknown path {request.path}"})
        # The official SDK puts system params in the query and business params in the body.
        params = {**request.query, **(request.form() if request.method == "POST" else {})}
        with self.lock:
            self.api_calls.append({"method": params.get("method", ""),
                                   "params": {k: v for k, v in params.items() if k != "sign"}})
        refused = self._check_call(params)
        if refused is not None:
            return refused
        handler = {
            "taobao.trades.sold.increment.get": self._trades_sold_increment_get,
            "taobao.trade.fullinfo.get": self._trade_fullinfo_get,
            "taobao.logistics.offline.send": self._logistics_offline_send,
            "taobao.item.quantity.update": self._item_quantity_update,
            "taobao.skus.quantity.update": self._skus_quantity_update,
            "taobao.refund.get": self._refund_get,
            "taobao.rp.refunds.agree": self._rp_refunds_agree,
        }.get(params["method"])
        if handler is None:
            return self._error(22, sub_msg=f"unknown method {params['method']}")
        return handler(params)

    def _check_call(self, params: dict[str, str]) -> Response | None:
        """The gateway's checks before any API runs (None when the call may proceed)."""
        if not params.get("method"):
            return self._error(21)
        if not params.get("app_key"):
            return self._error(28)
        if params["app_key"] != self.app_key:
            return self._error(29)
        if not params.get("sign"):
            return self._error(24)
        sign_method = params.get("sign_method") or "md5"
        if sign_method not in SIGN_DIGESTS:
            return self._error(25, sub_msg=f"unknown sign_method {sign_method}")
        expected = sandbox_top_sign(params, self.app_secret, sign_method)
        if not hmac.compare_digest(params["sign"], expected):
            return self._error(25)
        if not params.get("session"):
            return self._error(26)
        if params["session"] != self.session:
            return self._error(27)
        if not params.get("timestamp"):
            return self._error(30)
        # Against the real clock, not the sandbox clock: clients stamp requests with real time.
        sent = self._parse_timestamp(params["timestamp"])
        if sent is None or abs(datetime.now(UTC) - sent) > TIMESTAMP_SKEW:
            return self._error(31, sub_msg=f"timestamp {params['timestamp']} is not within ±10 minutes")
        if params.get("format", "xml") != "json":
            return self._error(23, sub_msg="this sandbox answers format=json only")
        return None

    @staticmethod
    def _parse_timestamp(value: str) -> datetime | None:
        if value.isdigit():  # the 2021 official Python SDK sends epoch milliseconds
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        try:
            return parse_top_time(value).astimezone(UTC)
        except ValueError:
            return None

    def _ok(self, method: str, body: dict) -> Response:
        return Response(200, {response_key(method): {**body, "request_id": self._request_id()}})

    def _error(self, code: int, *, sub_code: str = "", sub_msg: str = "") -> Response:
        error = {"code": code, "msg": MESSAGES.get(code, "Error")}
        if sub_code:
            error["sub_code"] = sub_code
        if sub_msg:
            error["sub_msg"] = sub_msg
        error["request_id"] = self._request_id()
        return Response(200, {"error_response": error})

    def _missing(self, params: dict[str, str], *names: str) -> Response | None:
        for name in names:
            if not params.get(name):
                return self._error(40, sub_code="isv.missing-parameter", sub_msg=f"{name} is required")
        return None

    def _invalid(self, message: str) -> Response:
        return self._error(41, sub_code="isv.invalid-parameter", sub_msg=message)

    @staticmethod
    def _request_id() -> str:
        # Not from self.rng: the seeded generator must give the same trades however many calls came between.
        return uuid.uuid4().hex[:13]

    # --- APIs ------------------------------------------------------------------------------------

    def _trades_sold_increment_get(self, params: dict[str, str]) -> Response:
        missing = self._missing(params, "fields", "start_modified", "end_modified")
        if missing:
            return missing
        try:
            start, end = parse_top_time(params["start_modified"]), parse_top_time(params["end_modified"])
        except ValueError:
            return self._invalid("start_modified and end_modified must be yyyy-MM-dd HH:mm:ss")
        if end < start or end - start > MAX_SPAN:
            return self._invalid("end_modified must be after start_modified and at most one day later")
        try:
            page_no, page_size = int(params.get("page_no") or 1), int(params.get("page_size") or 40)
        except ValueError:
            return self._invalid("page_no and page_size must be integers")
        if page_no < 1 or not 1 <= page_size <= 100:
            return self._invalid("page_no must be ≥ 1 and page_size between 1 and 100")
        types = [name.strip() for name in (params.get("type") or "").split(",") if name.strip()]
        unknown = sorted(set(types) - TRADE_TYPES)
        if unknown:
            # TOP's answer to an undocumented type is NOT CONFIRMED; refusing it keeps a typo from
            # silently dropping a whole trade type.
            return self._invalid(f"unknown trade type {','.join(unknown)}")
        wanted = set(types or DEFAULT_TRADE_TYPES)
        if "guarantee_trade" in wanted:
            wanted.update(GUARANTEE_TRADE)
        fields = {name.strip() for name in params["fields"].split(",")}
        with self.lock:
            matching = [(parse_top_time(trade["modified"]), int(trade["tid"]), trade)
                        for trade in self.orders.values()
                        if start <= parse_top_time(trade["modified"]) <= end
                        and (trade.get("type") or "fixed") in wanted]
            matching.sort(key=lambda item: item[:2], reverse=True)
            page = [self._wire_trade(trade, fields)
                    for _modified, _tid, trade in matching[(page_no - 1) * page_size: page_no * page_size]]
        body: dict = {"has_next": page_no * page_size < len(matching)}
        if params.get("use_has_next") != "true":  # has_next alone is what makes the query cheaper
            body["total_results"] = len(matching)
        if page:
            body["trades"] = {"trade": page}
        return self._ok(params["method"], body)

    def _wire_trade(self, trade: dict, fields: set[str]) -> dict:
        """A deep copy with only the requested fields (JSON is encoded after the lock is released)."""
        wire = {key: copy.deepcopy(value) for key, value in trade.items() if key in fields}
        if isinstance(wire.get("orders"), list):  # a trade stored through the control API as a plain list
            wire["orders"] = {"order": wire["orders"]}
        return wire

    def _trade_fullinfo_get(self, params: dict[str, str]) -> Response:
        missing = self._missing(params, "fields", "tid")
        if missing:
            return missing
        fields = {name.strip() for name in params["fields"].split(",")}
        with self.lock:
            trade = self.orders.get(params["tid"])
            wire = self._wire_trade(trade, fields) if trade else None
        if wire is None:
            return self._error(50, sub_code="isv.trade-not-exist", sub_msg=f"trade {params['tid']} does not exist")
        return self._ok(params["method"], {"trade": wire})

    def _logistics_offline_send(self, params: dict[str, str]) -> Response:
        missing = self._missing(params, "tid", "out_sid", "company_code")
        if missing:
            return missing
        is_split = params.get("is_split") in ("1", "true")
        sub_tids = [oid.strip() for oid in (params.get("sub_tid") or "").split(",") if oid.strip()]
        if is_split and not sub_tids:
            return self._invalid("sub_tid is required when is_split=1")
        if params["company_code"] not in LOGISTICS_COMPANIES:
            # The exact sub_code TOP gives an unknown company_code is NOT CONFIRMED; this one is plausible.
            return self._error(50, sub_code="isv.logistics-company-not-exist",
                               sub_msg=f"company_code {params['company_code']} 物流公司不存在")
        with self.lock:
            trade = self.orders.get(params["tid"])
            if trade is None:
                return self._error(50, sub_code="isv.trade-not-exist",
                                   sub_msg=f"trade {params['tid']} does not exist")
            if trade.get("status") not in SHIPPABLE:
                # The exact sub_code for "wrong state" is not in the facts; this one is plausible.
                return self._error(50, sub_code="isv.logistics-offline-service-error",
                                   sub_msg=f"trade {params['tid']} is {trade.get('status')}, not waiting to ship")
            orders = self._orders_of(trade)
            unshipped = [order for order in orders if order.get("status") in SHIPPABLE]
            if is_split:
                by_oid = {str(order.get("oid")): order for order in unshipped}
                unknown = [oid for oid in sub_tids if oid not in by_oid]
                if unknown:
                    return self._invalid(f"sub_tid {','.join(unknown)} is not an unshipped sub-order of this trade")
                shipping = [by_oid[oid] for oid in sub_tids]
            else:
                shipping = unshipped
            self._touch(trade)
            stamp = trade["modified"]
            for order in shipping:
                order.update(status="WAIT_BUYER_CONFIRM_GOODS", consign_time=stamp, invoice_no=params["out_sid"],
                             logistics_company=params["company_code"])
            done = all(order.get("status") not in SHIPPABLE for order in orders)
            trade["status"] = "WAIT_BUYER_CONFIRM_GOODS" if done else "SELLER_CONSIGNED_PART"
            trade["consign_time"] = stamp
        self.record_push("shipment", tid=params["tid"], out_sid=params["out_sid"],
                         company_code=params["company_code"], is_split=is_split,
                         sub_tid=params.get("sub_tid") or None)
        return self._ok(params["method"], {"shipping": {"is_success": True}})

    def _refund_get(self, params: dict[str, str]) -> Response:
        missing = self._missing(params, "refund_id", "fields")
        if missing:
            return missing
        with self.lock:
            request = self.refund_requests.get(params["refund_id"])
            if request is None:
                # The exact sub_code for an unknown refund is NOT CONFIRMED; this one is plausible.
                return self._error(50, sub_code="isv.refund-not-exist",
                                   sub_msg=f"refund {params['refund_id']} does not exist")
            fields = {name.strip() for name in params["fields"].split(",")}
            return self._ok(params["method"], {"refund": {k: v for k, v in request.items() if k in fields}})

    def _rp_refunds_agree(self, params: dict[str, str]) -> Response:
        """Agree to refunds "refund_id|amount in fen|version|phase", comma separated. A refund already agreed
        is not refunded again (its result says so), so the refund record below is made once per request."""
        missing = self._missing(params, "refund_infos")
        if missing:
            return missing
        results, done = [], 0
        for info in params["refund_infos"].split(","):
            parts = info.strip().split("|")
            if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
                return self._invalid(f"refund_infos {info!r} is not refund_id|amount|version[|phase]")
            refund_id, fen, version = parts[0], int(parts[1]), parts[2]
            with self.lock:
                request = self.refund_requests.get(refund_id)
                if request is None:
                    results.append({"refund_id": refund_id, "succ": False, "message": "退款不存在"})
                    continue
                if request["status"] == "SUCCESS":
                    results.append({"refund_id": refund_id, "succ": False, "message": "退款已成功，不能重复操作"})
                    continue
                if version != request["refund_version"]:
                    results.append({"refund_id": refund_id, "succ": False, "message": "退款版本已过期"})
                    continue
                if Decimal(fen) / 100 > Decimal(request["refund_fee"]):
                    results.append({"refund_id": refund_id, "succ": False, "message": "退款金额超过申请金额"})
                    continue
                request["status"] = "SUCCESS"
                trade = self.orders.get(str(request["tid"]))
                if trade is not None:
                    for order in self._orders_of(trade):
                        if str(order.get("refund_id")) == refund_id:
                            order["refund_status"] = "SUCCESS"
                    self._touch(trade)
            self.record_push("refund", refund_id=refund_id, tid=str(request["tid"]), amount=_money(Decimal(fen) / 100))
            results.append({"refund_id": refund_id, "succ": True, "message": "退款成功"})
            done += 1
        code = "OP_SUCC" if done == len(results) else ("SOME_OP_SUCC" if done else "OP_FAILURE_UE")
        return self._ok(params["method"], {"succ": done == len(results), "msg_code": code,
                                           "message": results[0]["message"] if len(results) == 1 else code,
                                           "results": {"refund_mapping_result": results}})

    def _item_quantity_update(self, params: dict[str, str]) -> Response:
        missing = self._missing(params, "num_iid", "quantity")
        if missing:
            return missing
        try:
            num_iid, quantity, kind = int(params["num_iid"]), int(params["quantity"]), int(params.get("type") or 1)
        except ValueError:
            return self._invalid("num_iid, quantity and type must be integers")
        if kind not in (1, 2):
            return self._invalid("type must be 1 (overwrite) or 2 (increment)")
        sku_id, outer_id = params.get("sku_id") or None, params.get("outer_id") or None
        with self.lock:
            skus = self._known_skus().get(num_iid)
            # The facts give no sub_codes for stock errors; these isv.* names are the sandbox's own.
            if skus is None:
                return self._error(50, sub_code="isv.item-not-exist", sub_msg=f"item {num_iid} does not exist")
            if (sku_id and sku_id not in skus.values()) or (outer_id and not sku_id and outer_id not in skus):
                return self._error(50, sub_code="isv.sku-not-exist",
                                   sub_msg=f"item {num_iid} has no SKU {sku_id or outer_id}")
            target = sku_id or (skus[outer_id] if outer_id else "")  # sku_id wins over outer_id
            key = (num_iid, target)
            new = quantity if kind == 1 else self.stock.get(key, 0) + quantity
            if new < 0:
                return self._invalid(f"quantity would become {new}")
            self.stock[key] = new
            modified = format_top_time(self.now())
            item = {"iid": str(num_iid), "num_iid": num_iid, "modified": modified,
                    "num": sum(q for (iid, _sku), q in self.stock.items() if iid == num_iid)}
            if target:
                item["skus"] = {"sku": [{"sku_id": int(target) if target.isdigit() else target, "quantity": new, "modified": modified}]}
        self.record_push("stock", num_iid=num_iid, sku_id=sku_id, outer_id=outer_id, quantity=quantity, type=kind)
        return self._ok(params["method"], {"item": item})

    def _skus_quantity_update(self, params: dict[str, str]) -> Response:
        """Several SKUs of one item: ``skuid_quantities`` "sku_id:quantity;…" (or ``outerid_quantities`` by merchant
        code), ``type`` 1 overwrite / 2 add. Every SKU is checked first and the call applies all or none (the facts
        do not say whether TOP applies the valid rest; the sandbox takes the stricter reading)."""
        missing = self._missing(params, "num_iid")
        if missing:
            return missing
        listed = params.get("skuid_quantities") or params.get("outerid_quantities") or ""
        by_outer = not params.get("skuid_quantities")
        try:
            num_iid, kind = int(params["num_iid"]), int(params.get("type") or 1)
            wanted = [(part.rsplit(":", 1)[0], int(part.rsplit(":", 1)[1])) for part in listed.split(";") if part]
        except (ValueError, IndexError):
            return self._invalid("num_iid, type and each quantity must be integers (id:quantity;id:quantity)")
        if not wanted:
            return self._error(40, sub_code="isv.missing-parameter",
                               sub_msg="skuid_quantities or outerid_quantities is required")
        if kind not in (1, 2):
            return self._invalid("type must be 1 (overwrite) or 2 (increment)")
        with self.lock:
            skus = self._known_skus().get(num_iid)
            if skus is None:
                return self._error(50, sub_code="isv.item-not-exist", sub_msg=f"item {num_iid} does not exist")
            planned = []
            for target, quantity in wanted:
                sku_id = skus.get(target) if by_outer else (target if target in skus.values() else None)
                if sku_id is None:
                    return self._error(50, sub_code="isv.sku-not-exist", sub_msg=f"item {num_iid} has no SKU {target}")
                new = quantity if kind == 1 else self.stock.get((num_iid, sku_id), 0) + quantity
                if new < 0:
                    return self._invalid(f"quantity of {target} would become {new}")
                planned.append((sku_id, quantity, new))
            modified = format_top_time(self.now())
            for sku_id, _quantity, new in planned:
                self.stock[(num_iid, sku_id)] = new
            item = {"iid": str(num_iid), "num_iid": num_iid, "modified": modified,
                    "num": sum(q for (iid, _sku), q in self.stock.items() if iid == num_iid),
                    "skus": {"sku": [{"sku_id": int(sku_id) if sku_id.isdigit() else sku_id, "quantity": new,
                                      "modified": modified} for sku_id, _quantity, new in planned]}}
        for sku_id, quantity, _new in planned:  # one record per SKU, as item.quantity.update writes them
            self.record_push("stock", num_iid=num_iid, sku_id=sku_id, outer_id=None, quantity=quantity, type=kind,
                             api="taobao.skus.quantity.update")
        return self._ok(params["method"], {"item": item})

    def _known_skus(self) -> dict[int, dict[str, str]]:
        """num_iid → {outer_sku_id: sku_id}, from the catalog and every stored trade."""
        known: dict[int, dict[str, str]] = {}
        for entry in self.catalog:
            known.setdefault(entry["num_iid"], {})[entry["outer_sku_id"]] = entry["sku_id"]
        for trade in self.orders.values():
            for order in self._orders_of(trade):
                if order.get("num_iid"):
                    skus = known.setdefault(int(order["num_iid"]), {})
                    if order.get("sku_id"):
                        skus[str(order.get("outer_sku_id") or order["sku_id"])] = str(order["sku_id"])
        return known
