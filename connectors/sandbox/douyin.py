"""Douyin Shop (抖店) sandbox: per-API paths with signed queries, canonical param_json bodies, and signed pushes.

Follows API_FACTS.md §4: ``POST /{api path}?app_key&method&timestamp&v=2&sign_method&sign&access_token``
with the business parameters as a canonical JSON body; every answer is HTTP 200 with the
``{"code","msg","sub_code","sub_msg","log_id","data"}`` envelope (10000 = success). Shop orders are
stored in their wire shape (amounts in fen, times in UNIX seconds, ciphertext plus masked receiver).
Pushes are JSON arrays of ``{"tag","msg_id","data"}`` with ``app-id`` and ``event-sign`` headers.

Where the facts leave a detail open (messages other than 60000, business sub_codes, the carrier code
list, the masking format) the sandbox picks something plausible and says so in a comment.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import threading
import uuid
import zlib
from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

# Not the client's douyin_sign / event_sign: the sandbox signs and checks with its own implementation so
# that a wrong algorithm in the client cannot pass unseen (API_FACTS §4.2/§4.7 vectors, test_sandbox_strict.py).
from connectors.douyin.client import api_path, canonical_param_json
from connectors.sandbox.data import BUYER_MESSAGES, SHARED_SKUS, SHARED_TITLES, SURNAMES, house_number
from gateway.sandbox import Request, Response, Sandbox

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMESTAMP_SKEW = timedelta(minutes=10)
METHODS = ("order.searchList", "order.orderDetail", "order.logisticsAdd", "sku.syncStock", "sku.syncStockBatch")
METHODS += ("afterSale.List",)  # the after-sale list (API_FACTS "After-sales")
METHODS += ("afterSale.Detail", "afterSale.operate")  # the refund decision (API_FACTS "Refunds")
PATHS = {"/" + api_path(method): method for method in METHODS}
SIGN_METHODS = ("hmac-sha256", "md5")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10  # when a caller leaves size out (the facts give no default)

# Only 10000 and 60000's text come from the facts; the other messages are the sandbox's wording.
MESSAGES = {
    10000: "success", 20000: "服务暂不可用", 20001: "服务内部超时", 30001: "权限不足", 40001: "缺少必选参数",
    40002: "缺少业务参数", 40003: "非法的参数", 40004: "非法的业务参数", 50002: "业务处理失败",
    60000: "触发限流，请稍后重试", 70000: "API已下线或不存在",
}
STATUS_DESC = {1: "待支付", 105: "已支付", 2: "备货中", 101: "部分发货", 3: "已发货", 4: "已取消", 5: "已完成"}
SHIPPABLE = (105, 2, 101)
# The message tag a status change announces (API_FACTS §4.7).
STATUS_TAGS = {105: "101", 2: "101", 101: "108", 3: "102", 4: "106", 5: "103"}
# The hub-side topics put_order and the control API use → Douyin tags.
TOPIC_TAGS = {"orders/create": "100", "orders/paid": "101", "orders/cancelled": "106", "orders/fulfilled": "102",
              "orders/partially_fulfilled": "108", "orders/completed": "103"}
# company_code → name, as /order/logisticsCompanyList would list them. The codes are the ones
# third-party code shows for these carriers; the real list is NOT CONFIRMED.
CARRIERS = {"shunfeng": "顺丰速运", "zhongtong": "中通快递", "yuantong": "圆通速递", "shentong": "申通快递",
            "yunda": "韵达快递", "ems": "EMS", "jd": "京东物流", "jtexpress": "极兔速递",
            "youzhengguonei": "邮政快递包裹"}

DEFAULT_SKUS = [*SHARED_SKUS, ("PHN-CASE-15P-CLR", "29.90")]
TITLES = {**SHARED_TITLES, "PHN-CASE-15P-CLR": "透明防摔手机壳 适用15 Pro"}
# (province, id, city, id, district (town), id, [(street, id)], [roads]) — real places and GB codes.
PLACES = [
    ("浙江省", "33", "杭州市", "330100", "西湖区", "330106", [("西溪街道", "330106004"), ("文新街道", "330106013")],
     ["文三路", "古墩路", "天目山路"]),
    ("上海市", "31", "上海市", "310100", "浦东新区", "310115", [("张江镇", "310115125"), ("陆家嘴街道", "310115004")],
     ["张江路", "世纪大道", "陆家嘴环路"]),
    ("北京市", "11", "北京市", "110100", "朝阳区", "110105", [("建外街道", "110105001"), ("望京街道", "110105026")],
     ["建国路", "望京街", "朝阳北路"]),
    ("广东省", "44", "广州市", "440100", "天河区", "440106", [("天河南街道", "440106004"), ("石牌街道", "440106012")],
     ["天河路", "体育西路", "华夏路"]),
    ("广东省", "44", "深圳市", "440300", "南山区", "440305", [("粤海街道", "440305007"), ("南头街道", "440305001")],
     ["高新南一道", "深南大道", "后海大道"]),
    ("江苏省", "32", "南京市", "320100", "鼓楼区", "320106", [("湖南路街道", "320106007"), ("宁海路街道", "320106008")],
     ["中山北路", "湖南路", "北京西路"]),
    ("四川省", "51", "成都市", "510100", "武侯区", "510107", [("浆洗街街道", "510107001"), ("玉林街道", "510107007")],
     ["人民南路四段", "科华北路", "武侯祠大街"]),
    ("湖北省", "42", "武汉市", "420100", "洪山区", "420111", [("珞南街道", "420111002"), ("关山街道", "420111003")],
     ["珞喻路", "光谷大道", "雄楚大道"]),
]
# Douyin's own, shorter lists: the same seed must keep generating the same orders.
GIVEN_NAMES = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "杰", "晨", "欣怡", "子涵", "浩然"]
MOBILE_PREFIXES = ["135", "136", "137", "138", "139", "150", "151", "158", "159", "176", "177", "185", "186", "188"]
SELLER_WORDS = ["老客户，送试饮装", "改发顺丰", "已电话确认地址"]
FREE_SHIPPING_FROM = 9900  # fen
POST_AMOUNT = 800  # fen
SHOP_ID = 4463798


def sandbox_douyin_sign(*, app_key: str, secret: str, method: str, param_json: str, timestamp: str,
                        sign_method: str) -> str:
    """Douyin's request signature, written from the documented algorithm (API_FACTS §4.2), not the client's.

    secret + "app_key"…"method"…"param_json"…"timestamp"…"v" "2" + secret, then HMAC-SHA256 keyed with
    the secret (hmac-sha256) or a plain MD5 (md5); lower-case hex. access_token is not signed.
    """
    parts = [secret]
    for name, value in (("app_key", app_key), ("method", method), ("param_json", param_json),
                        ("timestamp", timestamp), ("v", "2")):
        parts += [name, value]
    parts.append(secret)
    message = "".join(parts).encode("utf-8")
    if sign_method == "md5":
        return hashlib.md5(message).hexdigest()
    return hmac.HMAC(secret.encode("utf-8"), message, "sha256").hexdigest()


def sandbox_event_sign(*, app_key: str, body: bytes, secret: str) -> str:
    """The ``event-sign`` header of a push (API_FACTS §4.7): lower-hex MD5 of app_key, raw body, app_secret."""
    digest = hashlib.md5()
    for part in (app_key.encode("utf-8"), body, secret.encode("utf-8")):
        digest.update(part)
    return digest.hexdigest()


def _fen(price: str | Decimal) -> int:
    return int((Decimal(str(price)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _cipher(kind: str, plain: str) -> str:
    """A stand-in for Douyin ciphertext (only decryptable by the platform; the hub keeps it as is)."""
    digest = hashlib.sha256(f"{kind}:{plain}".encode()).digest()
    return f"#{base64.b64encode(digest[:9]).decode()}#{base64.b64encode(digest).decode()}~1#"


class DouyinSandbox(Sandbox):
    """An emulated Douyin shop (API_FACTS.md §4)."""

    platform = "douyin"

    def __init__(self, *, app_key: str | None = None, app_secret: str | None = None,
                 access_token: str | None = None, skus: list[tuple[str, str]] | None = None, **kwargs):
        super().__init__(**kwargs)
        given = self.credentials
        self.app_key = app_key or given.get("app_key") or "douyin-sandbox-key"
        self.app_secret = app_secret or given.get("app_secret") or "douyin-sandbox-secret"
        self.access_token = access_token or given.get("access_token") or "douyin-sandbox-token"
        self.catalog = [self._catalog_entry(str(code), str(price)) for code, price, *_ in (skus or DEFAULT_SKUS)]
        # The latest API requests that got past the fault switches (bounded: a sandbox may run for days).
        self.api_calls: deque[dict] = deque(maxlen=5000)
        self.stock: dict[int, int] = {}  # sku_id → stock_num
        self.token_expired = False
        self.after_sales: dict[str, dict] = {}  # aftersale_id → its afterSale/List item
        self._msg_ids: OrderedDict[tuple[str, str, int], str] = OrderedDict()
        self.credentials.update(self.connector_credentials())

    # --- Clock, credentials and helpers for tests ----------------------------------------------

    def epoch(self) -> int:
        return int(self.now().timestamp())

    def expire_token(self) -> None:
        """From now on the access token is answered as expired (40003 isv.access-token-expired)."""
        with self.lock:
            self.token_expired = True

    def connector_credentials(self) -> dict[str, str]:
        """The credentials a DouyinConnector needs to talk to this sandbox (valid once it is started)."""
        return {"base_url": self.base_url, "app_key": self.app_key, "app_secret": self.app_secret,
                "access_token": self.access_token}

    def start(self) -> str:
        url = super().start()
        self.credentials.update(self.connector_credentials())  # the port is known only now
        return url

    def reset(self) -> None:
        """Forget orders, records, stock, faults, an expired token and a frozen clock."""
        super().reset()
        with self.lock:
            self.api_calls.clear()
            self.stock.clear()
            self.token_expired = False
            self._clock = None
            self._msg_ids.clear()
            self.after_sales.clear()

    def update_order(self, order_id: str | int, *, tag: str | None = None, **changes) -> dict:
        """Change a stored shop order as the platform would: update_time moves strictly forward, then a push.

        An ``order_status`` change also sets its descriptions, main_status and the sku orders' status
        (unless given), and pushes the tag that status announces; other changes push ``tag`` or "105".
        """
        with self.lock:
            current = self.orders.get(str(order_id))
            if current is None:
                raise KeyError(f"no sandbox order {order_id}")
            order = copy.deepcopy(current)
            order.update(changes)
            status = changes.get("order_status")
            if status is not None:
                self._set_status(order, int(status), keep=changes)
            self._touch(order)
            self.orders[self.order_id(order)] = order
        if self.webhook_url:
            self.push(tag or (STATUS_TAGS.get(int(status), "105") if status is not None else "105"), order)
        return order

    def _set_status(self, order: dict, status: int, *, keep: dict) -> None:
        order["order_status"] = status
        if "order_status_desc" not in keep:
            order["order_status_desc"] = STATUS_DESC.get(status, "")
        if "main_status" not in keep:
            order["main_status"], order["main_status_desc"] = status, STATUS_DESC.get(status, "")
        now = self.epoch()
        if status in (105, 2) and not order.get("pay_time"):
            order["pay_time"] = now
        if status == 4 and not order.get("cancel_time"):
            order["cancel_time"] = now
        if status == 5 and not order.get("finish_time"):
            order["finish_time"] = now
        if "sku_order_list" not in keep:
            for sku_order in order.get("sku_order_list") or []:
                sku_order.update(order_status=status, order_status_desc=STATUS_DESC.get(status, ""),
                                 main_status=status, main_status_desc=STATUS_DESC.get(status, ""))

    def _touch(self, order: dict) -> None:
        """update_time := now, and strictly later than before (a change always makes a new version)."""
        stamp = max(self.epoch(), int(order.get("update_time") or 0) + 1)
        order["update_time"] = stamp
        for sku_order in order.get("sku_order_list") or []:
            sku_order["update_time"] = stamp

    # --- Catalogue and orders ------------------------------------------------------------------

    @staticmethod
    def _catalog_entry(code: str, price: str) -> dict:
        # Stable ids from the code: SKUs of one product (same code stem) share a product_id, like the
        # specs of one Douyin product, and every run gives the same ids. product_id is 19 digits.
        stem = code.rsplit("-", 1)[0] if code.count("-") >= 2 else code
        spec = code.rsplit("-", 1)[1] if code.count("-") >= 2 else "默认"
        product_id = 3500000000000000000 + zlib.crc32(stem.encode())
        return {"code": code, "price_fen": _fen(price), "title": TITLES.get(code, code), "spec": spec,
                "product_id": product_id, "sku_id": 1700000000000000 + zlib.crc32(code.encode()) % 10**13}

    def sku(self, code: str) -> dict:
        """The catalogue entry of one merchant code (product_id, sku_id, price_fen…)."""
        for entry in self.catalog:
            if entry["code"] == code:
                return dict(entry)
        raise KeyError(code)

    def order_id(self, order: dict) -> str:
        return str(order["order_id"])

    def _new_id(self, taken: set[str]) -> str:
        # Douyin order ids are 19-digit strings; sku orders get their own from the same space.
        while True:
            value = str(self.rng.randrange(6 * 10**18, 7 * 10**18))
            if value not in taken and value not in self.orders:
                taken.add(value)
                return value

    def generate_order(self, *, status: int | None = None, lines: int | None = None) -> dict:
        rng = self.rng
        now = self.epoch()
        status = status if status is not None else (1 if rng.random() < 0.15 else 2)
        paid = status != 1
        created = now - rng.randint(5, 90) if paid else now
        taken: set[str] = set()
        order_id = self._new_id(taken)
        count = min(lines or rng.choices([1, 2, 3], weights=[6, 3, 1])[0], len(self.catalog))
        items = []
        for entry in rng.sample(self.catalog, count):
            items.append((entry, rng.choice([1, 1, 1, 2, 3])))
        goods = sum(entry["price_fen"] * num for entry, num in items)
        # A shop coupon (满199减20), allocated to the lines in proportion to their value (the last line
        # takes the rounding rest), and a flat freight below 99 元 carried by the first line. Each sku
        # order's pay_amount = origin_amount × item_num − its promotion + its freight, so the mapping's
        # line discounts add up to the order's promotion_amount.
        promotion = 2000 if goods >= 19900 and rng.random() < 0.5 else 0
        post_amount = 0 if goods >= FREE_SHIPPING_FROM else POST_AMOUNT
        shares, left = [], promotion
        for index, (entry, num) in enumerate(items):
            last = index == len(items) - 1
            share = left if last or not promotion else promotion * entry["price_fen"] * num // goods
            shares.append(share)
            left -= share
        place = rng.choice(PLACES)
        province, province_id, city, city_id, town, town_id, streets, roads = place
        street, street_id = rng.choice(streets)
        road = rng.choice(roads)
        detail = road + house_number(rng)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)
        mobile = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        region = {"province": {"name": province, "id": province_id}, "city": {"name": city, "id": city_id},
                  "town": {"name": town, "id": town_id}, "street": {"name": street, "id": street_id}}
        desc = STATUS_DESC[status]
        sku_orders = []
        for index, ((entry, num), share) in enumerate(zip(items, shares, strict=True)):
            line_post = post_amount if index == 0 else 0
            sum_amount = entry["price_fen"] * num
            sku_orders.append({
                # One sku order of every shop order carries the shop order's own id (SDK field docs).
                "order_id": order_id if index == 0 else self._new_id(taken), "parent_order_id": order_id,
                "order_level": 3, "order_status": status, "order_status_desc": desc, "main_status": status,
                "main_status_desc": desc, "trade_type": 0, "trade_type_desc": "普通", "order_type": 0,
                "biz": 2, "biz_desc": "小店", "product_id": entry["product_id"],
                "product_id_str": str(entry["product_id"]), "sku_id": entry["sku_id"], "code": entry["code"],
                "out_sku_id": "", "out_product_id": "", "product_name": entry["title"],
                "spec": [{"name": "规格", "value": entry["spec"]}], "item_num": num,
                "origin_amount": entry["price_fen"], "sum_amount": sum_amount,
                "order_amount": sum_amount + line_post, "pay_amount": sum_amount - share + line_post,
                "post_amount": line_post, "promotion_amount": share, "modify_amount": 0, "tax_amount": 0,
                "after_sale_info": {"after_sale_status": 0, "after_sale_type": 0, "refund_status": 0},
                "inventory_list": [], "given_product_type": "MASTER", "goods_type": 0,
                "create_time": created, "pay_time": now if paid else 0, "update_time": now, "finish_time": 0,
                "exp_ship_time": created + 48 * 3600 if paid else 0,
            })
        return {
            "shop_id": SHOP_ID, "shop_name": "茶与器官方旗舰店", "order_id": order_id, "order_level": 2,
            "biz": 2, "biz_desc": "小店", "order_type": 0, "order_type_desc": "普通订单", "trade_type": 0,
            "order_status": status, "order_status_desc": desc, "main_status": status, "main_status_desc": desc,
            "create_time": created, "pay_time": now if paid else 0, "update_time": now, "finish_time": 0,
            "order_expire_time": 0 if paid else created + 30 * 60, "exp_ship_time": created + 48 * 3600 if paid else 0,
            "ship_time": 0, "cancel_reason": "", "b_type": 2, "b_type_desc": "抖音", "sub_b_type": 1,
            "sub_b_type_desc": "app内-原生", "pay_type": rng.choice([1, 2]) if paid else 0,
            "channel_payment_no": f"4200{rng.randrange(10**24):024d}" if paid else "",
            "order_amount": goods + post_amount, "pay_amount": goods - promotion + post_amount,
            "post_amount": post_amount, "post_origin_amount": post_amount, "post_promotion_amount": 0,
            "post_insurance_amount": 0, "modify_amount": 0, "modify_post_amount": 0,
            "promotion_amount": promotion, "promotion_shop_amount": promotion, "promotion_platform_amount": 0,
            "promotion_talent_amount": 0, "promotion_pay_amount": 0, "total_promotion_amount": promotion,
            "tax_amount": 0,
            "buyer_words": rng.choice(BUYER_MESSAGES) if rng.random() < 0.2 else "",
            "seller_words": rng.choice(SELLER_WORDS) if rng.random() < 0.1 else "", "seller_remark_stars": 0,
            "doudian_open_id": "1@#" + base64.b64encode(rng.randbytes(24)).decode(),
            # Newer apps get no plaintext receiver: ciphertext for order.batchDecrypt plus masked copies.
            "post_receiver": "", "post_tel": "",
            "encrypt_post_receiver": _cipher("name", name), "encrypt_post_tel": _cipher("tel", mobile),
            "post_addr": {**copy.deepcopy(region), "detail": "", "encrypt_detail": _cipher("detail", detail)},
            # The masking format is the sandbox's (NOT CONFIRMED): surname + stars, 3+4 digits, road + stars.
            "mask_post_receiver": name[0] + "*" * (len(name) - 1),
            "mask_post_tel": f"{mobile[:3]}****{mobile[-4:]}",
            "mask_post_addr": {**copy.deepcopy(region), "detail": f"{road}****"},
            "logistics_info": [], "sku_order_list": sku_orders,
        }

    # --- Pushes ------------------------------------------------------------------------------------

    def _tag(self, topic: str, order: dict) -> str:
        if topic.isdigit():
            return topic
        if topic in TOPIC_TAGS:
            return TOPIC_TAGS[topic]
        # A generic update: the tag of a state the order is in that has one, else 105 (an order change).
        return {101: "108", 3: "102", 4: "106", 5: "103"}.get(int(order.get("order_status") or 0), "105")

    def push(self, topic: str, order: dict) -> None:
        # One event per push: duplicate (and held-back) deliveries of it carry the same msg_id.
        key = (self._tag(topic, order), self.order_id(order), int(order.get("update_time") or 0))
        with self.lock:
            # Not from self.rng: the seeded generator must give the same orders however many pushes came between.
            self._msg_ids[key] = str(10**18 + uuid.uuid4().int % (9 * 10**18))
            while len(self._msg_ids) > 10000:
                self._msg_ids.popitem(last=False)
        super().push(topic, order)

    def message_data(self, tag: str, order: dict) -> dict:
        """The ``data`` object of one push (ids as int64 numbers, as the SDK's message structs have them)."""
        data = {"p_id": int(order["order_id"]),
                "s_ids": [int(s["order_id"]) for s in order.get("sku_order_list") or [] if str(s.get("order_id")).isdigit()],
                "shop_id": order.get("shop_id", SHOP_ID), "order_status": order.get("order_status"),
                "update_time": order.get("update_time")}
        if tag == "100":
            data.update(create_time=order.get("create_time"), order_type=order.get("order_type", 0),
                        biz=order.get("biz", 2))
        elif tag in ("101", "110"):
            data.update(pay_amount=order.get("pay_amount"), pay_time=order.get("pay_time"),
                        pay_type=order.get("pay_type"))
        elif tag in ("102", "108"):
            latest = (order.get("logistics_info") or [{}])[-1]
            data["logistics_msg"] = {"express_company_id": latest.get("company", ""),
                                     "logistics_code": latest.get("tracking_no", "")}
        elif tag == "106":
            data.update(cancel_reason=order.get("cancel_reason", ""), cancel_time=order.get("cancel_time"))
        return data

    def deliver_webhook(self, topic: str, order: dict) -> None:
        tag = self._tag(topic, order)
        key = (tag, self.order_id(order), int(order.get("update_time") or 0))
        with self.lock:
            msg_id = self._msg_ids.get(key) or str(10**18 + uuid.uuid4().int % (9 * 10**18))
        data = json.dumps(self.message_data(tag, order), separators=(",", ":"), ensure_ascii=False)
        body = json.dumps([{"tag": tag, "msg_id": msg_id, "data": data}], separators=(",", ":"),
                          ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "app-id": self.app_key,
                   "event-sign": sandbox_event_sign(app_key=self.app_key, body=body, secret=self.app_secret)}
        self.post_webhook(body=body, headers=headers, topic=tag, order_id=self.order_id(order))

    def _push_later(self, tag: str, order: dict) -> None:
        # Changes made through the API push from another thread, as the platform does: the API call must
        # not wait for (or deadlock with) a hub that calls back into this sandbox while receiving the push.
        if self.webhook_url:
            threading.Thread(target=self.push, args=(tag, order), name="douyin-sandbox-push", daemon=True).start()

    # --- Faults in Douyin's shape ----------------------------------------------------------------

    def rate_limited_response(self) -> Response:
        return self._error(60000)

    def server_error_response(self) -> Response:
        return self._error(20000, sub_code="isp.service-error", sub_msg="服务暂不可用，请稍后重试")

    # --- The gateway -----------------------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        method = PATHS.get(path)
        if method is None:
            return Response(404, self._envelope(70000, sub_code="isv.api-not-exist", sub_msg=f"unknown path {path}"))
        if request.method != "POST":
            return Response(405, self._envelope(40003, sub_code="isv.http-method-invalid",
                                                sub_msg="only POST is supported"))
        query = request.query
        with self.lock:
            self.api_calls.append({"method": query.get("method", ""), "path": path,
                                   "query": {k: v for k, v in query.items() if k != "sign"},
                                   "headers": dict(request.headers), "body": request.body.decode("utf-8", "replace")})
        refused, params = self._check_call(method, request)
        if refused is not None:
            return refused
        handler = {
            "order.searchList": self._order_search_list,
            "order.orderDetail": self._order_detail,
            "order.logisticsAdd": self._order_logistics_add,
            "sku.syncStock": self._sku_sync_stock,
            "sku.syncStockBatch": self._sku_sync_stock_batch,
            "afterSale.List": self._after_sale_list,
            "afterSale.Detail": self._after_sale_detail,
            "afterSale.operate": self._after_sale_operate,
        }[method]
        return handler(params)

    def _check_call(self, method: str, request: Request) -> tuple[Response | None, dict]:
        """The gateway's checks before any API runs: (refusal, None) or (None, business params)."""
        query = request.query
        # 40001 for a missing system parameter, 40003 for an invalid one (API_FACTS §4.3); the sub_codes
        # for app_key, method, timestamp and v are the sandbox's, in the documented pattern.
        if not query.get("app_key"):
            return self._error(40001, sub_code="isv.app-key-missing"), {}
        if query["app_key"] != self.app_key:
            return self._error(40003, sub_code="isv.app-key-invalid"), {}
        if not query.get("method"):
            return self._error(40001, sub_code="isv.method-missing"), {}
        if query["method"] != method:
            return self._error(40003, sub_code="isv.method-invalid",
                               sub_msg=f"method {query['method']} does not match the path"), {}
        if query.get("v") != "2":
            return self._error(40003, sub_code="isv.parameter-format-invalid", sub_msg="v must be 2"), {}
        if not query.get("timestamp"):
            return self._error(40001, sub_code="isv.timestamp-missing"), {}
        sent = self._parse_timestamp(query["timestamp"])
        # Against the real clock, not the sandbox clock: clients stamp requests with real time.
        if sent is None or abs(datetime.now(UTC) - sent) > TIMESTAMP_SKEW:
            return self._error(40003, sub_code="isv.timestamp-invalid",
                               sub_msg=f"timestamp {query['timestamp']} is not within ±10 minutes"), {}
        if not query.get("sign"):
            return self._error(40001, sub_code="isv.signature-missing"), {}
        sign_method = query.get("sign_method") or "md5"  # md5 is the legacy default when absent
        if sign_method not in SIGN_METHODS:
            return self._error(40003, sub_code="isv.parameter-format-invalid",
                               sub_msg=f"unknown sign_method {sign_method}"), {}
        try:
            param_json = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return self._error(40003, sub_code="isv.parameter-format-invalid", sub_msg="body is not UTF-8"), {}
        expected = sandbox_douyin_sign(app_key=self.app_key, secret=self.app_secret, method=method,
                                       param_json=param_json, timestamp=query["timestamp"], sign_method=sign_method)
        if not hmac.compare_digest(query["sign"].lower().encode(), expected.encode()):
            return self._error(40003, sub_code="isv.signature-invalid"), {}
        if not query.get("access_token"):
            return self._error(40001, sub_code="isv.access-token-missing"), {}
        if query["access_token"] != self.access_token:
            return self._error(40003, sub_code="isv.access-token-no-existed"), {}
        if self.token_expired:
            return self._error(40003, sub_code="isv.access-token-expired", sub_msg="access_token已过期"), {}
        try:
            params = json.loads(param_json) if param_json.strip() else {}
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return self._error(40003, sub_code="isv.parameter-format-invalid",
                               sub_msg="param_json must be a JSON object"), {}
        if param_json.strip() and canonical_param_json(params) != param_json:
            # The signature covers the string as sent; a non-canonical string means the client signed
            # something other than what the gateway re-serialises.
            return self._error(40003, sub_code="isv.parameter-format-invalid",
                               sub_msg="param_json must be canonical (sorted keys, compact)"), {}
        return None, params

    @staticmethod
    def _parse_timestamp(value: str) -> datetime | None:
        value = value.strip()
        if value.isdigit():  # the official SDK: UNIX seconds
            try:
                return datetime.fromtimestamp(int(value), UTC)
            except (OverflowError, OSError, ValueError):
                return None
        try:  # legacy clients: Beijing wall time
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI).astimezone(UTC)
        except ValueError:
            return None

    @staticmethod
    def _log_id() -> str:
        # Not from self.rng (see push). Shaped like Douyin's: a timestamp then hex.
        return datetime.now(SHANGHAI).strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:20].upper()

    def _envelope(self, code: int, *, sub_code: str = "", sub_msg: str = "", data: dict | None = None) -> dict:
        return {"code": code, "msg": MESSAGES.get(code, "error"), "sub_code": sub_code, "sub_msg": sub_msg,
                "log_id": self._log_id(), "data": data if data is not None else {}}

    def _ok(self, data: dict) -> Response:
        return Response(200, self._envelope(10000, data=data))

    def _error(self, code: int, *, sub_code: str = "", sub_msg: str = "") -> Response:
        return Response(200, self._envelope(code, sub_code=sub_code, sub_msg=sub_msg))

    def _missing(self, params: dict, *names: str) -> Response | None:
        for name in names:
            if params.get(name) in (None, ""):
                return self._error(40002, sub_code="isv.missing-parameter", sub_msg=f"{name} is required")
        return None

    def _invalid(self, message: str) -> Response:
        return self._error(40004, sub_code="isv.parameter-invalid", sub_msg=message)

    def _failed(self, message: str) -> Response:
        # Business failures: the facts give 50002 but no sub_codes; this one is the sandbox's.
        return self._error(50002, sub_code="isv.business-failed", sub_msg=message)

    @staticmethod
    def _as_int(value, *, default: int | None = None) -> int | None:
        if value in (None, ""):
            return default
        if isinstance(value, bool):
            raise ValueError("boolean")
        return int(value)

    # --- APIs ------------------------------------------------------------------------------------

    def _order_search_list(self, params: dict) -> Response:
        try:
            page = self._as_int(params.get("page"), default=0)
            size = self._as_int(params.get("size"), default=DEFAULT_PAGE_SIZE)
            bounds = {name: self._as_int(params.get(name)) for name in
                      ("update_time_start", "update_time_end", "create_time_start", "create_time_end")}
        except (TypeError, ValueError):
            return self._invalid("page, size and the time bounds must be integers")
        if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
            return self._invalid(f"page must be ≥ 0 and size between 1 and {MAX_PAGE_SIZE}")
        order_by = params.get("order_by") or "create_time"
        if order_by not in ("create_time", "update_time"):
            return self._invalid("order_by must be create_time or update_time")
        ascending = params.get("order_asc") is True

        def inside(order: dict) -> bool:
            for field in ("update_time", "create_time"):
                value = int(order.get(field) or 0)
                start, end = bounds[f"{field}_start"], bounds[f"{field}_end"]
                if (start is not None and value < start) or (end is not None and value > end):
                    return False
            return True

        with self.lock:
            matching = [order for order in self.orders.values() if inside(order)]
            matching.sort(key=lambda order: (int(order.get(order_by) or 0), order["order_id"]), reverse=not ascending)
            page_orders = copy.deepcopy(matching[page * size:(page + 1) * size])
        return self._ok({"page": page, "size": size, "total": len(matching), "shop_order_list": page_orders})

    # --- After-sales (afterSale/List; API_FACTS "After-sales") ------------------------------------

    def put_after_sale(self, order_id: str, *, aftersale_type: int = 1, aftersale_status: int = 6,
                       refund_amount: int | None = None, reason: str = "不想要了", item_num: int | None = None) -> dict:
        """The buyer opens an after-sale on the order's first sku order (fen amounts, UNIX seconds)."""
        with self.lock:
            order = self.orders[str(order_id)]
            sku_order = order["sku_order_list"][0]
            # Not from self.rng: the seeded generator must give the same orders however many after-sales came between.
            aftersale_id = str(7 * 10**18 + uuid.uuid4().int % 10**18)
            num = item_num or sku_order["item_num"]
            now = self.epoch()
            item = {
                "aftersale_info": {
                    "aftersale_id": aftersale_id, "aftersale_order_type": 1, "aftersale_type": aftersale_type,
                    "aftersale_status": aftersale_status, "related_id": str(sku_order["order_id"]),
                    "apply_time": now, "create_time": now, "update_time": 0, "status_deadline": now + 48 * 3600,
                    "refund_amount": refund_amount if refund_amount is not None else sku_order["pay_amount"],
                    "refund_post_amount": 0, "aftersale_num": num, "refund_status": 1, "return_logistics_code": "",
                    "return_logistics_company_name": "", "remark": ""},
                "order_info": {"shop_order_id": str(order["order_id"]), "related_order_info": [{
                    "sku_order_id": str(sku_order["order_id"]), "order_status": sku_order["order_status"],
                    "pay_amount": sku_order["pay_amount"], "post_amount": sku_order["post_amount"],
                    "item_num": sku_order["item_num"], "product_name": sku_order["product_name"],
                    "shop_sku_code": sku_order["code"], "aftersale_item_num": num,
                    "aftersale_pay_amount": refund_amount if refund_amount is not None else sku_order["pay_amount"]}]},
                "text_part": {"reason_text": reason, "aftersale_status_text": ""},
            }
            self._touch_after_sale(item)
            self.after_sales[aftersale_id] = item
            return copy.deepcopy(item)

    def update_after_sale(self, aftersale_id: str, **changes) -> dict:
        """Change an after-sale's ``aftersale_info`` fields as the platform would; update_time moves forward."""
        with self.lock:
            item = self.after_sales[str(aftersale_id)]
            item["aftersale_info"].update(changes)
            self._touch_after_sale(item)
            return copy.deepcopy(item)

    def _touch_after_sale(self, item: dict) -> None:
        info = item["aftersale_info"]
        info["update_time"] = max(self.epoch(), int(info.get("update_time") or 0) + 1)

    def _after_sale_list(self, params: dict) -> Response:
        try:
            page = self._as_int(params.get("page"), default=0)
            size = self._as_int(params.get("size"), default=DEFAULT_PAGE_SIZE)
            start = self._as_int(params.get("update_start_time"))
            end = self._as_int(params.get("update_end_time"))
        except (TypeError, ValueError):
            return self._invalid("page, size and the time bounds must be integers")
        if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
            return self._invalid(f"page must be ≥ 0 and size between 1 and {MAX_PAGE_SIZE}")
        order_by = params.get("order_by") or ["apply_time desc"]
        if not isinstance(order_by, list) or not order_by:
            return self._invalid("order_by is a list such as [\"update_time desc\"]")
        field, _space, direction = str(order_by[0]).partition(" ")
        if field not in ("update_time", "apply_time", "status_deadline") or direction not in ("asc", "desc"):
            return self._invalid("order_by: <update_time|apply_time|status_deadline> <asc|desc>")

        def inside(item: dict) -> bool:
            value = int(item["aftersale_info"]["update_time"])
            return (start is None or value >= start) and (end is None or value <= end)

        with self.lock:
            matching = [item for item in self.after_sales.values() if inside(item)]
            matching.sort(key=lambda item: (int(item["aftersale_info"][field]), item["aftersale_info"]["aftersale_id"]),
                          reverse=direction == "desc")
            items = copy.deepcopy(matching[page * size:(page + 1) * size])
        return self._ok({"items": items, "has_more": (page + 1) * size < len(matching), "total": len(matching),
                         "page": page, "size": size})

    # --- Refunds (afterSale/Detail, afterSale/operate; API_FACTS "Refunds") ---------------------------

    def _after_sale_detail(self, params: dict) -> Response:
        missing = self._missing(params, "after_sale_id")
        if missing:
            return missing
        with self.lock:
            item = self.after_sales.get(str(params["after_sale_id"]))
            if item is None:
                return self._failed(f"售后单不存在: {params['after_sale_id']}")
            info = item["aftersale_info"]
            after_sale_info = {
                "after_sale_id": info["aftersale_id"], "after_sale_status": info["aftersale_status"],
                "after_sale_type": info["aftersale_type"], "refund_status": info.get("refund_status", 1),
                "refund_total_amount": int(info.get("refund_amount") or 0) + int(info.get("refund_post_amount") or 0),
                "refund_post_amount": int(info.get("refund_post_amount") or 0), "update_time": info["update_time"],
                "apply_time": info.get("apply_time")}
        return self._ok({"process_info": {"after_sale_info": after_sale_info,
                                          "order_info": copy.deepcopy(item.get("order_info") or {})}})

    def _after_sale_operate(self, params: dict) -> Response:
        """type 201 agrees to a refund only waiting for the seller (status 6): refunded at once (status 12,
        refund_status 3). Any other state is refused with the documented 售后状态错误, so an after-sale is refunded
        once however often the call comes. Other operate types are not modelled."""
        items = params.get("items")
        if params.get("type") in (None, "") or not isinstance(items, list) or len(items) != 1 \
                or not isinstance(items[0], dict) or not items[0].get("aftersale_id"):
            return self._invalid("type and one item with aftersale_id are required (one after-sale per call)")
        if str(params["type"]) != "201":
            return self._invalid(f"operate type {params['type']} is not modelled by this sandbox")
        aftersale_id = str(items[0]["aftersale_id"])
        with self.lock:
            item = self.after_sales.get(aftersale_id)
            if item is None:
                return self._error(20000, sub_code="isp.service-error:10000", sub_msg="存在无效的售后单")
            info = item["aftersale_info"]
            if int(info.get("aftersale_status") or 0) != 6 or int(info.get("aftersale_type") or 0) != 1:
                return self._error(50002, sub_code="isv.business-failed:20309541", sub_msg="售后状态错误")
            info.update(aftersale_status=12, refund_status=3)
            self._touch_after_sale(item)
            amount = int(info.get("refund_amount") or 0) + int(info.get("refund_post_amount") or 0)
        self.record_push("refund", aftersale_id=aftersale_id, amount=f"{Decimal(amount) / 100:.2f}")
        return self._ok({"items": [{"aftersale_id": int(aftersale_id), "status_code": 0, "status_msg": "success"}]})

    def _order_detail(self, params: dict) -> Response:
        missing = self._missing(params, "shop_order_id")
        if missing:
            return missing
        with self.lock:
            order = copy.deepcopy(self.orders.get(str(params["shop_order_id"])))
        if order is None:
            return self._failed(f"订单不存在: {params['shop_order_id']}")
        return self._ok({"shop_order_detail": order})

    def _order_logistics_add(self, params: dict) -> Response:
        missing = self._missing(params, "order_id", "company_code", "logistics_code")
        if missing:
            return missing
        order_id, company_code = str(params["order_id"]), str(params["company_code"])
        tracking = str(params["logistics_code"])
        if company_code not in CARRIERS:
            return self._invalid(f"物流公司编码不存在: {company_code}")
        with self.lock:
            current = self.orders.get(order_id)
            if current is None:
                return self._failed(f"订单不存在: {order_id}")
            # Copy on write, like update_order: a version handed out earlier never changes under its holder.
            order = copy.deepcopy(current)
            status = int(order.get("order_status") or 0)
            if status in (3, 5):
                return self._failed(f"订单已发货: {order_id}")
            if status not in SHIPPABLE:
                return self._failed(f"订单状态{STATUS_DESC.get(status, status)}，不可发货: {order_id}")
            now = self.epoch()
            self._set_status(order, 3, keep={})
            order["ship_time"] = now
            order.setdefault("logistics_info", []).append({
                "tracking_no": tracking, "company": company_code, "company_name": CARRIERS[company_code],
                "ship_time": now, "delivery_id": str(10**18 + uuid.uuid4().int % (9 * 10**18)),
                "product_info": [{"sku_order_id": s["order_id"], "product_name": s.get("product_name", ""),
                                  "product_count": s.get("item_num", 1), "sku_id": s.get("sku_id"),
                                  "outer_sku_id": s.get("code", "")}
                                 for s in order.get("sku_order_list") or []]})
            for sku_order in order.get("sku_order_list") or []:
                sku_order["ship_time"] = now
            self._touch(order)
            self.orders[order_id] = order
            snapshot = copy.deepcopy(order)
        self.record_push("shipment", order_id=order_id, company_code=company_code, logistics_code=tracking)
        self._push_later("102", snapshot)
        return self._ok({})

    def _known_skus(self) -> dict[int, dict]:
        """sku_id → {code, product_id}, from the catalogue and every stored order."""
        known = {entry["sku_id"]: {"code": entry["code"], "product_id": entry["product_id"]} for entry in self.catalog}
        for order in self.orders.values():
            for sku_order in order.get("sku_order_list") or []:
                if str(sku_order.get("sku_id") or "").isdigit():
                    known.setdefault(int(sku_order["sku_id"]), {"code": sku_order.get("code") or "",
                                                                "product_id": int(sku_order.get("product_id") or 0)})
        return known

    def _sku_sync_stock_batch(self, params: dict) -> Response:
        """Several SKUs of one product (``sku_sync_list`` of {sku_id, sku_type, stock_num}); all succeed or none
        is applied (API_FACTS.md §4.6). Only ordinary stock (sku_type 0) is emulated."""
        entries = params.get("sku_sync_list")
        if params.get("product_id") in (None, "") or not isinstance(entries, list) or not entries:
            return self._error(40002, sub_code="isv.missing-parameter",
                               sub_msg="product_id and sku_sync_list are required")
        incremental = params.get("incremental") is True
        if incremental and not params.get("idempotent_id"):
            return self._error(40002, sub_code="isv.missing-parameter",
                               sub_msg="idempotent_id is required when incremental is true")
        try:
            product_id = self._as_int(params.get("product_id"))
            wanted = [(self._as_int(entry.get("sku_id")), self._as_int(entry.get("stock_num")),
                       self._as_int(entry.get("sku_type") or 0)) for entry in entries]
        except (AttributeError, TypeError, ValueError):
            return self._invalid("product_id, sku_id, sku_type and stock_num must be integers")
        with self.lock:
            known = self._known_skus()
            planned = []
            for sku_id, stock_num, sku_type in wanted:
                info = known.get(sku_id)
                if info is None:
                    return self._failed(f"sku不存在: {sku_id}")
                if info["product_id"] != product_id:
                    return self._invalid(f"sku {sku_id} 不属于商品 {product_id}")
                if sku_type != 0 or stock_num is None:
                    return self._invalid("only sku_type 0 with stock_num is emulated")
                new = (self.stock.get(sku_id, 0) + stock_num) if incremental else stock_num
                if new < 0:
                    return self._invalid(f"库存不能小于0: {new}")
                planned.append((sku_id, stock_num, new))
            for sku_id, _stock_num, new in planned:
                self.stock[sku_id] = new
        for sku_id, stock_num, _new in planned:  # one record per SKU, as sku.syncStock writes them
            self.record_push("stock", sku_id=sku_id, code=None, product_id=product_id, stock_num=stock_num,
                             incremental=incremental, api="sku.syncStockBatch")
        return self._ok({})

    def _sku_sync_stock(self, params: dict) -> Response:
        if params.get("sku_id") in (None, "") and not params.get("code"):
            return self._error(40002, sub_code="isv.missing-parameter", sub_msg="sku_id or code is required")
        if "stock_num" not in params:
            return self._error(40002, sub_code="isv.missing-parameter", sub_msg="stock_num is required")
        try:
            sku_id = self._as_int(params.get("sku_id"))
            product_id = self._as_int(params.get("product_id"))
            stock_num = self._as_int(params.get("stock_num"))
        except (TypeError, ValueError):
            return self._invalid("sku_id, product_id and stock_num must be integers")
        incremental = params.get("incremental") is True
        if incremental and not params.get("idempotent_id"):
            return self._error(40002, sub_code="isv.missing-parameter",
                               sub_msg="idempotent_id is required when incremental is true")
        code = params.get("code") or None
        with self.lock:
            known = self._known_skus()
            if sku_id is None:
                matches = [sid for sid, info in known.items() if info["code"] == code
                           and (product_id is None or info["product_id"] == product_id)]
                if len(matches) != 1:
                    return self._failed(f"sku不存在: code {code}" if not matches
                                        else f"code {code} 对应多个sku，请传 product_id")
                sku_id = matches[0]
            info = known.get(sku_id)
            if info is None:
                return self._failed(f"sku不存在: {sku_id}")
            if product_id is not None and info["product_id"] != product_id:
                return self._invalid(f"sku {sku_id} 不属于商品 {product_id}")
            new = (self.stock.get(sku_id, 0) + stock_num) if incremental else stock_num
            if new < 0:
                return self._invalid(f"库存不能小于0: {new}")
            self.stock[sku_id] = new
        self.record_push("stock", sku_id=params.get("sku_id"), code=code, product_id=params.get("product_id"),
                         stock_num=stock_num, incremental=incremental)
        return self._ok({})
