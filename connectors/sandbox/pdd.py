"""Pinduoduo sandbox: the /api/router gateway with signing, incremental orders, shipping and stock.

Follows API_FACTS.md §3: form-encoded requests chosen by ``type``, checked for client_id, MD5
signature, access_token and a 10-minute epoch-seconds timestamp; HTTP 200 answers with either an
irregular ``*_response`` root or an ``error_response`` {error_code, error_msg, sub_code, sub_msg}.
Orders are stored in PDD's ORDER shape (money as JSON numbers in yuan, Beijing time strings,
ciphertext receivers with masked copies) keyed by ``order_sn``.

Only 10019 and 52101/52102/52103/70031 are confirmed PDD codes. Every other code below (bad
parameter, unknown API, bad client_id, bad signature, stale timestamp, business refusals) is the
sandbox's own choice, NOT CONFIRMED as PDD's.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import string
import time
import uuid
import zlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

# Not the client's pdd_sign: the sandbox checks signatures with its own implementation so that a
# wrong algorithm in the client cannot pass unseen (API_FACTS §3.2 test vector, test_sandbox_strict.py).
from connectors.pdd.client import RESPONSE_KEYS, SHANGHAI, format_pdd_time, parse_pdd_time
from connectors.sandbox.data import (
    DEFAULT_SKUS,
    GIVEN_NAMES,
    MOBILE_PREFIXES,
    PLACES,
    SURNAMES,
    TITLES,
    house_number,
)
from gateway.sandbox import Request, Response, Sandbox

API_PATH = "/api/router"
MAX_SPAN = 30 * 60  # seconds: increment.get refuses a longer window
TIMESTAMP_SKEW = 10 * 60  # seconds either side of the platform clock
CENT = Decimal("0.01")

# Confirmed by the SDK (API_FACTS §3.3).
TOKEN_EXPIRED = 10019
RATE_LIMITED = 52101
SERVICE_UNAVAILABLE = 52103
# The sandbox's own codes — NOT CONFIRMED as PDD's.
INVALID_PARAMETER = 10000
UNKNOWN_API = 10001
INVALID_CLIENT = 10016
INVALID_SIGN = 10018
INVALID_TIMESTAMP = 10020
BUSINESS_ERROR = 50000  # with a descriptive sub_code (order.not.exist, order.cannot.ship, goods.not.exist…)

MESSAGES = {
    TOKEN_EXPIRED: "access_token已过期", RATE_LIMITED: "API rate-limited", SERVICE_UNAVAILABLE: "service unavailable",
    INVALID_PARAMETER: "公共参数错误或业务参数错误", UNKNOWN_API: "接口不存在", INVALID_CLIENT: "client_id不存在",
    INVALID_SIGN: "签名错误", INVALID_TIMESTAMP: "timestamp已过期", BUSINESS_ERROR: "业务处理失败",
}
# The sandbox's logistics companies (ids as PddConnector.CARRIER_IDS uses them; real ids NOT CONFIRMED).
LOGISTICS_COMPANIES = [
    {"id": 44, "logistics_company": "顺丰快递", "code": "SF"},
    {"id": 115, "logistics_company": "中通快递", "code": "ZTO"},
    {"id": 85, "logistics_company": "圆通快递", "code": "YTO"},
    {"id": 1, "logistics_company": "申通快递", "code": "STO"},
    {"id": 121, "logistics_company": "韵达快递", "code": "YUNDA"},
    {"id": 118, "logistics_company": "邮政EMS", "code": "EMS"},
]
BUYER_MEMOS = ["麻烦发顺丰", "请尽快发货，谢谢", "不要放快递柜", "送人的，不要放价格单"]
B64 = string.ascii_letters + string.digits + "+/"


def sandbox_pdd_sign(params: dict[str, str], secret: str) -> str:
    """PDD's request signature, written from the documented algorithm (API_FACTS §3.2), not the client's.

    The form values exactly as received, every key but ``sign`` in byte order, key and value joined with
    no separator, wrapped in the client secret; upper-case hex MD5.
    """
    digest = hashlib.md5(secret.encode())
    for key in sorted((name for name in params if name != "sign"), key=lambda name: name.encode()):
        digest.update(key.encode())
        digest.update(params[key].encode())
    digest.update(secret.encode())
    return digest.hexdigest().upper()


def _yuan(value: Decimal) -> float:
    """Money as PDD sends it: a JSON number in yuan (198.0, 19.9)."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _mask_name(name: str) -> str:
    return name[0] + "*" if len(name) <= 2 else name[0] + "*" * (len(name) - 2) + name[-1]


def _mask_digits(text: str) -> str:
    return "".join("*" if ch.isdigit() else ch for ch in text)


class PddSandbox(Sandbox):
    platform = "pdd"

    def __init__(self, *, client_id: str | None = None, client_secret: str | None = None,
                 access_token: str | None = None, skus: list[tuple[str, str]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.client_id = client_id or self.credentials.get("client_id") or "pdd-sandbox-client"
        self.client_secret = client_secret or self.credentials.get("client_secret") or "pdd-sandbox-secret"
        self.access_token = access_token or self.credentials.get("access_token") or "pdd-sandbox-token"
        self.catalog = [self._catalog_entry(code, price) for code, price in (skus or DEFAULT_SKUS)]
        self.api_calls: list[dict] = []  # every gateway request that got past the fault switches
        self.stock: dict[tuple[int, str], int] = {}  # (goods_id, sku_id) → quantity
        self.token_expired = False
        self.after_sales: dict[str, dict] = {}  # after-sale id → its refund_list entry

    # --- Helpers for tests ---------------------------------------------------------------------

    def connector_credentials(self) -> dict[str, str]:
        """The credentials a PddConnector needs to talk to this sandbox (after ``start()``)."""
        return {"base_url": self.base_url + API_PATH, "client_id": self.client_id,
                "client_secret": self.client_secret, "access_token": self.access_token}

    def expire_token(self) -> None:
        """From now on every call is answered 10019 (access_token expired) until ``reset``."""
        with self.lock:
            self.token_expired = True

    def update_order(self, order_sn: str, **changes) -> dict:
        """Change a stored order as the platform would, moving ``updated_at`` strictly forward."""
        with self.lock:
            order = self.orders[order_sn]
            order.update(changes)
            self._touch(order)
            return order

    def form_group(self, order_sn: str) -> dict:
        """The group of a 拼团中 order forms: the deal is confirmed and the order may ship."""
        with self.lock:
            order = self.orders[order_sn]
            order.update(group_status=1, confirm_status=1, confirm_time=format_pdd_time(self.now()))
            self._touch(order)
            return order

    def _touch(self, order: dict) -> None:
        updated = self.now().replace(microsecond=0)
        if order.get("updated_at"):
            previous = parse_pdd_time(order["updated_at"])
            if updated <= previous:
                updated = previous + timedelta(seconds=1)
        order["updated_at"] = format_pdd_time(updated)

    # --- Orders ----------------------------------------------------------------------------------

    def order_id(self, order: dict) -> str:
        return str(order["order_sn"])

    @staticmethod
    def _catalog_entry(code: str, price: str) -> dict:
        # Stable ids from the code: SKUs of one product (same code stem) share a goods_id, and
        # every run gives the same ids.
        outer_goods_id = code.rsplit("-", 1)[0] if code.count("-") >= 2 else code
        goods_id = 200000000000 + zlib.crc32(outer_goods_id.encode()) % 10**11
        return {"outer_id": code, "outer_goods_id": outer_goods_id, "price": Decimal(price), "goods_id": goods_id,
                "sku_id": 1000000000000 + zlib.crc32(code.encode()) % 10**12,
                "goods_name": TITLES.get(code, code), "goods_spec": code.rsplit("-", 1)[-1],
                "goods_img": f"https://img.pddpic.com/sandbox/{goods_id}.jpeg"}

    def _new_order_sn(self, created: datetime) -> str:
        while True:
            # yyMMdd of the Beijing creation day, then 15 digits: 240318-422796379670125.
            order_sn = f"{created.astimezone(SHANGHAI):%y%m%d}-{self.rng.randrange(10**14, 10**15)}"
            if order_sn not in self.orders:
                return order_sn

    def _cipher(self, prefix: str, suffix: str, length: int) -> str:
        """Ciphertext-looking text ("~AgAAAA…~0~~" for names and addresses, "$…$0$$" for phones)."""
        return prefix + "AgAAAA" + "".join(self.rng.choices(B64, k=length)) + suffix

    def generate_order(self, *, lines: int | None = None, group_pending: bool | None = None) -> dict:
        rng = self.rng
        now = self.now().replace(microsecond=0)
        created = now - timedelta(minutes=rng.randint(2, 30), seconds=rng.randint(0, 59))
        paid = created + timedelta(seconds=rng.randint(5, 90))
        pending = rng.random() < 0.15 if group_pending is None else group_pending
        count = min(lines or rng.choices([1, 2, 3], weights=[6, 3, 1])[0], len(self.catalog))
        items, goods_amount = [], Decimal("0")
        for entry in rng.sample(self.catalog, count):
            goods_count = rng.choice([1, 1, 1, 2, 3])
            goods_amount += entry["price"] * goods_count
            items.append({"goods_id": entry["goods_id"], "sku_id": entry["sku_id"], "outer_id": entry["outer_id"],
                          "outer_goods_id": entry["outer_goods_id"], "goods_name": entry["goods_name"],
                          "goods_spec": entry["goods_spec"], "goods_price": _yuan(entry["price"]),
                          "goods_count": goods_count, "goods_img": entry["goods_img"]})
        # A shop coupon (店铺券) and a platform subsidy (平台券) now and then; PDD orders are mostly 包邮.
        seller_discount = Decimal("5") if goods_amount >= 59 and rng.random() < 0.3 else Decimal("0")
        platform_discount = Decimal(rng.choice(["2", "3", "10"])) if rng.random() < 0.3 else Decimal("0")
        if seller_discount + platform_discount >= goods_amount:
            seller_discount = platform_discount = Decimal("0")
        discount = seller_discount + platform_discount
        postage = Decimal("6") if rng.random() < 0.1 else Decimal("0")
        province, city, town, _zip, streets = rng.choice(PLACES)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        street = rng.choice(streets) + house_number(rng)
        confirmed = paid + timedelta(minutes=rng.randint(0, 20))
        order = {
            "order_sn": self._new_order_sn(created),
            "order_status": 1, "refund_status": 1, "after_sales_status": 0,
            "confirm_status": 0 if pending else 1, "group_status": 0 if pending else 1,
            "risk_control_status": 0, "trade_type": 0, "is_lucky_flag": 1, "is_pre_sale": 0, "is_stock_out": 0,
            "stock_out_handle_status": -1, "step_order_info": None, "invoice_status": 0,
            "created_time": format_pdd_time(created), "pay_time": format_pdd_time(paid),
            "confirm_time": "" if pending else format_pdd_time(min(confirmed, now)),
            "updated_at": format_pdd_time(now), "shipping_time": "", "receive_time": "",
            "last_ship_time": format_pdd_time((now if pending else confirmed) + timedelta(hours=48)),
            "pay_type": rng.choice(["WEIXIN", "ALIPAY"]), "pay_no": f"4200{rng.randrange(10**24):024d}",
            "goods_amount": _yuan(goods_amount), "discount_amount": _yuan(discount),
            "platform_discount": _yuan(platform_discount), "seller_discount": _yuan(seller_discount),
            "capital_free_discount": 0.0, "order_change_amount": 0.0, "postage": _yuan(postage),
            "pay_amount": _yuan(goods_amount - discount + postage),
            "country": "中国", "country_id": 1, "province": province, "city": city, "town": town,
            "province_id": 0, "city_id": 0, "town_id": 0,
            # Ciphertext while the order waits to ship (PDD: empty once shipped or risk-flagged).
            "receiver_name": self._cipher("~", "~0~~", 24), "receiver_phone": self._cipher("$", "$0$$", 24),
            "receiver_address": self._cipher("~", "~0~~", 44), "address": self._cipher("~", "~0~~", 64),
            "receiver_name_mask": _mask_name(name), "receiver_phone_mask": phone[0] + "*" * 9 + phone[-1],
            "receiver_address_mask": _mask_digits(street),
            "address_mask": f"{province}{city}{town}{_mask_digits(street)}",
            "buyer_memo": rng.choice(BUYER_MEMOS) if rng.random() < 0.2 else "", "remark": "",
            "logistics_id": 0, "tracking_number": "", "extra_delivery_list": [], "resend_delivery_list": [],
            "item_list": items, "gift_list": [],
        }
        return order

    def deliver_webhook(self, topic: str, order: dict) -> None:
        """PDD pushes go over a WebSocket message service, which the hub does not use: nothing is delivered."""

    # --- Faults in PDD's shape -------------------------------------------------------------------

    def rate_limited_response(self) -> Response:
        return self._error(RATE_LIMITED)

    def server_error_response(self) -> Response:
        return self._error(SERVICE_UNAVAILABLE)

    def reset(self) -> None:
        """Forget orders, records, stock, faults, an expired token and a frozen clock."""
        super().reset()
        with self.lock:
            self.api_calls.clear()
            self.stock.clear()
            self.token_expired = False
            self._clock = None
            self.after_sales.clear()

    # --- The gateway -----------------------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        if request.path.rstrip("/") != API_PATH:
            return Response(404, {"error": f"unknown path {request.path}"})
        if request.method != "POST":
            return Response(405, {"error": "the gateway takes POST"}, {"Allow": "POST"})
        params = {**request.query, **request.form()}
        with self.lock:
            self.api_calls.append({"type": params.get("type", ""),
                                   "params": {k: v for k, v in params.items() if k != "sign"}})
        refused = self._check_call(params)
        if refused is not None:
            return refused
        handler = {
            "pdd.order.number.list.increment.get": self._order_number_list_increment_get,
            "pdd.order.information.get": self._order_information_get,
            "pdd.logistics.online.send": self._logistics_online_send,
            "pdd.logistics.companies.get": self._logistics_companies_get,
            "pdd.goods.quantity.update": self._goods_quantity_update,
            "pdd.refund.list.increment.get": self._refund_list_increment_get,
            "pdd.refund.information.get": self._refund_information_get,
            "pdd.refund.agree": self._refund_agree,
        }.get(params["type"])
        if handler is None:
            return self._error(UNKNOWN_API, sub_msg=f"unknown type {params['type']}")
        return handler(params)

    def _check_call(self, params: dict[str, str]) -> Response | None:
        """The gateway's checks before any API runs (None when the call may proceed)."""
        for name in ("type", "client_id", "timestamp", "sign"):
            if not params.get(name):
                return self._error(INVALID_PARAMETER, sub_msg=f"{name} is required")
        if params["client_id"] != self.client_id:
            return self._error(INVALID_CLIENT)
        if not hmac.compare_digest(params["sign"], sandbox_pdd_sign(params, self.client_secret)):
            return self._error(INVALID_SIGN)
        # Against the real clock, not the sandbox clock: clients stamp requests with real time.
        if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > TIMESTAMP_SKEW:
            return self._error(INVALID_TIMESTAMP, sub_msg=f"timestamp {params['timestamp']} is not within 10 minutes")
        # An unknown token is answered like an expired one: 10019 is the one confirmed auth code, and
        # either way the merchant must authorise again.
        if self.token_expired or params.get("access_token") != self.access_token:
            return self._error(TOKEN_EXPIRED, sub_msg="access_token已过期，请刷新")
        if params.get("data_type", "JSON") != "JSON":
            return self._error(INVALID_PARAMETER, sub_msg="this sandbox answers data_type=JSON only")
        return None

    def _ok(self, api_type: str, body: dict) -> Response:
        return Response(200, {RESPONSE_KEYS[api_type][0]: {**body, "request_id": self._request_id()}})

    def _error(self, code: int, *, sub_code: str | None = None, sub_msg: str = "") -> Response:
        return Response(200, {"error_response": {"error_code": code, "error_msg": MESSAGES.get(code, "error"),
                                                 "sub_code": sub_code, "sub_msg": sub_msg,
                                                 "request_id": self._request_id()}})

    def _business(self, sub_code: str, sub_msg: str) -> Response:
        return self._error(BUSINESS_ERROR, sub_code=sub_code, sub_msg=sub_msg)

    def _ints(self, params: dict[str, str], required: tuple[str, ...], defaults: dict[str, int]
              ) -> dict[str, int] | Response:
        values = {}
        for name in (*required, *defaults):
            raw = params.get(name)
            if raw in (None, ""):
                if name in required:
                    return self._error(INVALID_PARAMETER, sub_msg=f"{name} is required")
                values[name] = defaults[name]
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                return self._error(INVALID_PARAMETER, sub_msg=f"{name} must be an integer")
        return values

    @staticmethod
    def _request_id() -> str:
        # Not from self.rng: the seeded generator must give the same orders however many calls came between.
        return uuid.uuid4().hex

    @staticmethod
    def _epoch(order: dict) -> int:
        return int(parse_pdd_time(order["updated_at"]).timestamp())

    # --- APIs ------------------------------------------------------------------------------------

    def _order_number_list_increment_get(self, params: dict[str, str]) -> Response:
        values = self._ints(params, ("start_updated_at", "end_updated_at"), {
            "order_status": 5, "refund_status": 5, "is_lucky_flag": 0, "page": 1, "page_size": 100})
        if isinstance(values, Response):
            return values
        start, end = values["start_updated_at"], values["end_updated_at"]
        if end < start or end - start > MAX_SPAN:
            return self._error(INVALID_PARAMETER, sub_msg="end_updated_at must be after start_updated_at and at "
                                                          "most 30 minutes later")
        if (values["order_status"] not in (1, 2, 3, 5) or values["refund_status"] not in (1, 2, 3, 4, 5)
                or values["is_lucky_flag"] not in (0, 1, 2)):
            return self._error(INVALID_PARAMETER, sub_msg="order_status, refund_status or is_lucky_flag out of range")
        page, page_size = values["page"], values["page_size"]
        if page < 1 or not 1 <= page_size <= 100:
            return self._error(INVALID_PARAMETER, sub_msg="page must be ≥ 1 and page_size between 1 and 100")
        with self.lock:
            matching = [order for order in self.orders.values()
                        if start <= self._epoch(order) <= end
                        and values["order_status"] in (5, order.get("order_status"))
                        and values["refund_status"] in (5, order.get("refund_status"))
                        and values["is_lucky_flag"] in (0, order.get("is_lucky_flag"))]
            matching.sort(key=lambda order: (self._epoch(order), order["order_sn"]), reverse=True)
            # Deep copies: JSON is encoded after the lock is released.
            page_orders = copy.deepcopy(matching[(page - 1) * page_size: page * page_size])
        return self._ok(params["type"], {"total_count": len(matching), "has_next": page * page_size < len(matching),
                                         "order_sn_list": page_orders})

    # --- After-sales (pdd.refund.list.increment.get; API_FACTS "After-sales") -------------------------

    def put_after_sale(self, order_sn: str, *, after_sales_status: int = 2, after_sales_type: int = 2,
                       refund_amount: str = "", reason: str = "不想要了", lines: int | None = None) -> dict:
        """The buyer opens an after-sale on an order's first item (or ``lines`` units of it); updated_time now."""
        with self.lock:
            order = self.orders[order_sn]
            item = order["item_list"][0]
            # Not from self.rng: the seeded generator must give the same orders however many after-sales came between.
            after_sale_id = str(10**11 + uuid.uuid4().int % (9 * 10**11))
            record = {"id": after_sale_id, "order_sn": order_sn, "after_sales_status": after_sales_status,
                      "after_sales_type": after_sales_type, "after_sale_reason": reason,
                      "goods_id": item.get("goods_id"), "sku_id": str(item.get("sku_id", "")),
                      "outer_id": item.get("outer_id", ""), "outer_goods_id": item.get("outer_goods_id", ""),
                      "goods_name": item.get("goods_name", ""), "goods_number": str(lines or item["goods_count"]),
                      "goods_price": str(item.get("goods_price", "")), "order_amount": str(order.get("pay_amount")),
                      "refund_amount": refund_amount or str(order.get("pay_amount")),
                      "discount_amount": str(order.get("discount_amount", 0)), "tracking_number": "",
                      "created_time": format_pdd_time(self.now().replace(microsecond=0)), "updated_time": "",
                      "confirm_time": order.get("confirm_time", ""), "speed_refund_flag": 0}
            self._touch_after_sale(record)
            self.after_sales[after_sale_id] = record
            return copy.deepcopy(record)

    def update_after_sale(self, after_sale_id: str, **changes) -> dict:
        """Change an after-sale as the platform would (status, tracking number…); updated_time moves forward."""
        with self.lock:
            record = self.after_sales[str(after_sale_id)]
            record.update(changes)
            self._touch_after_sale(record)
            return copy.deepcopy(record)

    def _touch_after_sale(self, record: dict) -> None:
        updated = self.now().replace(microsecond=0)
        if record.get("updated_time"):
            updated = max(updated, parse_pdd_time(record["updated_time"]) + timedelta(seconds=1))
        record["updated_time"] = format_pdd_time(updated)

    def _refund_list_increment_get(self, params: dict[str, str]) -> Response:
        values = self._ints(params, ("start_updated_at", "end_updated_at", "after_sales_status", "after_sales_type"),
                            {"page": 1, "page_size": 100})
        if isinstance(values, Response):
            return values
        start, end = values["start_updated_at"], values["end_updated_at"]
        if end < start or end - start > MAX_SPAN:
            return self._error(INVALID_PARAMETER, sub_msg="end_updated_at must be after start_updated_at and at "
                                                          "most 30 minutes later")
        page, page_size = values["page"], values["page_size"]
        if page < 1 or not 1 <= page_size <= 100:
            return self._error(INVALID_PARAMETER, sub_msg="page must be ≥ 1 and page_size between 1 and 100")
        status, kind = values["after_sales_status"], values["after_sales_type"]
        types = {2: (2,), 3: (3,), 4: (4,), 5: (5,)}.get(kind, ())  # 1 all

        def epoch(record: dict) -> int:
            return int(parse_pdd_time(record["updated_time"]).timestamp())

        with self.lock:
            matching = [record for record in self.after_sales.values() if start <= epoch(record) <= end
                        and status in (1, record["after_sales_status"])
                        and (kind == 1 or record["after_sales_type"] in types)]
            matching.sort(key=lambda record: (epoch(record), record["id"]), reverse=True)
            page_records = copy.deepcopy(matching[(page - 1) * page_size: page * page_size])
        return self._ok(params["type"], {"total_count": len(matching), "refund_list": page_records})

    def _order_information_get(self, params: dict[str, str]) -> Response:
        if not params.get("order_sn"):
            return self._error(INVALID_PARAMETER, sub_msg="order_sn is required")
        with self.lock:
            order = copy.deepcopy(self.orders.get(params["order_sn"]))
        if order is None:
            return self._business("order.not.exist", f"order {params['order_sn']} does not exist")
        return self._ok(params["type"], {"order_info": order})

    # --- Refunds (pdd.refund.information.get, pdd.refund.agree; API_FACTS "Refunds") ---------------------

    def _after_sale_of(self, params: dict[str, str]) -> tuple[dict | None, Response | None]:
        if not params.get("after_sales_id") or not params.get("order_sn"):
            return None, self._error(INVALID_PARAMETER, sub_msg="after_sales_id and order_sn are required")
        record = self.after_sales.get(str(params["after_sales_id"]))
        if record is None or record.get("order_sn") != params["order_sn"]:
            return None, self._business("refund.not.exist", f"after-sale {params['after_sales_id']} does not exist")
        return record, None

    def _refund_information_get(self, params: dict[str, str]) -> Response:
        with self.lock:
            record, refused = self._after_sale_of(params)
            if refused is not None:
                return refused
            return self._ok(params["type"], copy.deepcopy(record))

    def _refund_agree(self, params: dict[str, str]) -> Response:
        """Agree once: an after-sale already agreed answers succ false and nothing is refunded again."""
        with self.lock:
            record, refused = self._after_sale_of(params)
            if refused is not None:
                return refused
            if int(record.get("after_sales_status") or 0) not in (2, 3):
                result = {"after_sales_id": record["id"], "order_sn": record["order_sn"], "succ": False,
                          "message": "售后单状态不允许同意退款"}
                return Response(200, {"response": {"result": result}, "request_id": self._request_id()})
            record["after_sales_status"] = 10
            self._touch_after_sale(record)
            amount = str(record.get("refund_amount"))
        self.record_push("refund", after_sales_id=record["id"], order_sn=record["order_sn"], amount=amount)
        result = {"after_sales_id": record["id"], "order_sn": record["order_sn"], "succ": True, "message": "退款操作成功"}
        return Response(200, {"response": {"result": result}, "request_id": self._request_id()})

    def _logistics_online_send(self, params: dict[str, str]) -> Response:
        for name in ("order_sn", "logistics_id", "tracking_number"):
            if not params.get(name):
                return self._error(INVALID_PARAMETER, sub_msg=f"{name} is required")
        order_sn, tracking_number = params["order_sn"], params["tracking_number"]
        try:
            logistics_id = int(params["logistics_id"])
        except ValueError:
            return self._error(INVALID_PARAMETER, sub_msg="logistics_id must be an integer")
        if logistics_id not in {company["id"] for company in LOGISTICS_COMPANIES}:
            return self._business("logistics.company.not.exist", f"logistics_id {logistics_id} is not a company")
        with self.lock:
            order = self.orders.get(order_sn)
            if order is None:
                return self._business("order.not.exist", f"order {order_sn} does not exist")
            if order.get("group_status") != 1 or order.get("confirm_status") != 1:
                return self._business("order.cannot.ship", f"order {order_sn} is not confirmed (group not formed "
                                                           "or cancelled)")
            if order.get("order_status") != 1 or order.get("refund_status") == 4:
                return self._business("order.cannot.ship", f"order {order_sn} is not waiting to ship")
            self._touch(order)
            # PDD returns receiver ciphertext only while an order waits to ship; the masks stay.
            order.update(order_status=2, logistics_id=logistics_id, tracking_number=tracking_number,
                         shipping_time=order["updated_at"], receiver_name="", receiver_phone="",
                         receiver_address="", address="")
        self.record_push("shipment", order_sn=order_sn, logistics_id=logistics_id, tracking_number=tracking_number)
        return self._ok(params["type"], {"is_success": True})

    def _logistics_companies_get(self, params: dict[str, str]) -> Response:
        return self._ok(params["type"], {"logistics_companies": [
            {**company, "available": 1} for company in LOGISTICS_COMPANIES]})

    def _goods_quantity_update(self, params: dict[str, str]) -> Response:
        values = self._ints(params, ("goods_id", "quantity"), {"update_type": 1})
        if isinstance(values, Response):
            return values
        goods_id, quantity, update_type = values["goods_id"], values["quantity"], values["update_type"]
        sku_id, outer_id = params.get("sku_id") or None, params.get("outer_id") or None
        if update_type not in (1, 2):
            return self._error(INVALID_PARAMETER, sub_msg="update_type must be 1 (full) or 2 (incremental)")
        if not sku_id and not outer_id:
            return self._error(INVALID_PARAMETER, sub_msg="sku_id or outer_id is required")
        with self.lock:
            skus = self._known_skus().get(goods_id)
            if skus is None:
                return self._business("goods.not.exist", f"goods {goods_id} does not exist")
            # sku_id wins over outer_id, as on the platform.
            target = (sku_id if sku_id in skus.values() else None) if sku_id else skus.get(outer_id)
            if target is None:
                return self._business("sku.not.exist", f"goods {goods_id} has no SKU {sku_id or outer_id}")
            key = (goods_id, target)
            new = quantity if update_type == 1 else self.stock.get(key, 0) + quantity
            if new < 0:
                return self._error(INVALID_PARAMETER, sub_msg=f"quantity would become {new}")
            self.stock[key] = new
        self.record_push("stock", goods_id=goods_id, sku_id=sku_id, outer_id=outer_id, quantity=quantity,
                         update_type=update_type)
        return self._ok(params["type"], {"is_success": True})

    def _known_skus(self) -> dict[int, dict[str, str]]:
        """goods_id → {outer_id (or sku_id): sku_id}, from the catalog and every stored order."""
        known: dict[int, dict[str, str]] = {}
        for entry in self.catalog:
            known.setdefault(entry["goods_id"], {})[entry["outer_id"]] = str(entry["sku_id"])
        for order in self.orders.values():
            for item in order.get("item_list") or []:
                if item.get("goods_id") and item.get("sku_id"):
                    sku_id = str(item["sku_id"])
                    known.setdefault(int(item["goods_id"]), {})[str(item.get("outer_id") or sku_id)] = sku_id
        return known
