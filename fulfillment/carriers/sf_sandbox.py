"""A local SF-Express-like carrier on 127.0.0.1: signed waybill creation, route tracking on a clock, cancel.

Speaks the protocol described in ``fulfillment.carriers.sf`` and refuses what SF refuses where that
is checked (API_FACTS.md, "SF Express"); codes marked NOT CONFIRMED are SF-like only. Runs without Django: ``python -m fulfillment.carriers.sf_sandbox --port
8805`` or ``manage.py sandbox --platform sf``.

- Waybills are kept keyed by ``orderId`` (in the base class's ``orders`` store). As SF does, a
  repeated ``orderId`` is refused with 8016 (重复下单), also after a cancel, and
  ``EXP_RECE_SEARCH_ORDER_RESP`` answers an order's waybill (6150 for an unknown one, 8037 for a
  cancelled one: NOT CONFIRMED what SF answers there). Numbers are "SF" + 13 digits, drawn from the seeded
  generator (the same seed gives the same numbers after a reset). The hand-over code
  (``destRouteLabel``) comes from the receiver's province, city and district only.
- Tracking follows the sandbox clock (``set_clock`` / ``POST /_sandbox/clock``): each waybill's
  events are ``SCHEDULE`` after its creation, and a query shows those whose time has come.
- Cancel (``EXP_RECE_UPDATE_ORDER``, ``dealType`` 2) goes by ``orderId``, as SF's: without one it
  is refused with 6118, for an unknown one with 8018, with a waybill that is not the order's with
  8017, a second time with 8037 (已消单), and once the parcel was picked up with 8044 (NOT
  CONFIRMED). A cancelled waybill is kept (status "cancelled", in the state) but route queries omit
  it, as they omit unknown numbers.
- Control, besides the base's (state, faults, orders, pushed, reset): ``POST /_sandbox/faults``
  also takes ``stall`` and ``exception``, each a list of waybill numbers or ``"*"`` for all; a
  stalled parcel shows only its first event, an exceptional one gets an "exception" event at +20 h
  instead of moving on. ``lost_answers`` n: the next n gateway calls are carried out, but their
  answer is held back ``lost_answer_seconds`` (2 s) so the caller times out first, as when an answer
  is lost on its way back. ``POST /_sandbox/clock`` ``{"now": iso | null}`` or ``{"advance_hours": n}``;
  ``GET /_sandbox/clock``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hmac
import json
import random
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from fulfillment.carriers.sf import (
    API_MESSAGES,
    API_OK,
    BUSINESS_OK,
    CREATE_ORDER,
    DEAL_TYPE_CANCEL,
    ERR_ALREADY_PICKED_UP,
    ERR_DUPLICATE_ORDER,
    ERR_INVALID,
    ERR_ORDER_CANCELLED,
    ERR_ORDER_ID_MISSING,
    ERR_ORDER_NOT_FOUND,
    ERR_ORDER_WAYBILL_MISMATCH,
    ERR_SEARCH_NOT_FOUND,
    ERR_UNREACHABLE,
    MAX_ROUTE_NUMBERS,
    PRO_CODES,
    RES_STATUS_DONE,
    SEARCH_ORDER,
    SEARCH_ROUTES,
    SERVICE_NAMES,
    SERVICE_PATH,
    UPDATE_ORDER,
    format_sf_time,
    sf_digest,
)
from gateway.sandbox import Faults, Request, Response, Sandbox

DEFAULT_PARTNER_ID = "OMS_DEMO"
DEFAULT_CHECKWORD = "sandbox-checkword"
TIMESTAMP_SKEW = timedelta(minutes=10)  # SF-like, NOT CONFIRMED
UNREACHABLE_MARK = "无法送达"  # a receiver address containing it is refused with 8114
EXPRESS_TYPE_SERVICES = {1: "express", 2: "standard", 5: "next_morning"}

# (offset after creation, opCode, what happens); the texts are filled from the waybill's cities.
SCHEDULE = (
    (timedelta(hours=1), "50", "accepted"),
    (timedelta(hours=6), "30", "departed_origin"),
    (timedelta(hours=20), "31", "arrived_destination"),
    (timedelta(hours=30), "44", "out_for_delivery"),
    (timedelta(hours=34), "80", "delivered"),
)
EXCEPTION_AFTER = timedelta(hours=20)
EXCEPTION_OP_CODE = "33"

# SF's city codes are the telephone area codes; cities not listed get a stable made-up one.
CITY_CODES = {
    "北京市": "010",
    "上海市": "021",
    "天津市": "022",
    "重庆市": "023",
    "广州市": "020",
    "深圳市": "755",
    "杭州市": "571",
    "南京市": "025",
    "苏州市": "512",
    "成都市": "028",
    "武汉市": "027",
    "西安市": "029",
    "厦门市": "592",
    "青岛市": "532",
}
DEPT_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0 on a label


def city_code(contact: dict) -> str:
    """A known city's code, else a stable made-up one (from the address when no city is given)."""
    province, city = str(contact.get("province") or ""), str(contact.get("city") or "")
    if city in CITY_CODES:
        return CITY_CODES[city]
    key = f"{province}/{city}" if province or city else str(contact.get("address") or "")
    return f"{zlib.crc32(key.encode()) % 900 + 100}"


def place_name(contact: dict, fallback: str) -> str:
    return str(contact.get("city") or contact.get("province") or fallback)


@dataclass
class SFFaults(Faults):
    stall: list[str] = field(default_factory=list)  # waybill numbers, or ["*"]: never past "accepted"
    exception: list[str] = field(default_factory=list)  # waybill numbers, or ["*"]: exception at +20 h
    lost_answers: int = 0  # next n gateway calls are carried out but answered too late (the caller times out)


def _matches(numbers: list[str], number: str) -> bool:
    return "*" in numbers or number in numbers


class SFSandbox(Sandbox):
    platform = "sf"

    def __init__(
        self,
        *,
        partner_id: str | None = None,
        checkword: str | None = None,
        seed: int = 1,
        skus: list | None = None,  # passed by the sandbox command to every sandbox; no use for a carrier
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.seed = seed
        self.partner_id = partner_id or self.credentials.get("partner_id") or DEFAULT_PARTNER_ID
        self.checkword = checkword or self.credentials.get("checkword") or DEFAULT_CHECKWORD
        self.faults = SFFaults()
        self.api_calls: list[dict] = []  # every gateway call that got past the fault switches
        self.lost_answer_seconds = 2.0  # how long a "lost" answer is held back (longer than a test's timeout)

    # --- Helpers for tests ---------------------------------------------------------------------

    def adapter_config(self) -> dict[str, str]:
        """The config an SFAdapter needs to talk to this sandbox (after ``start()``)."""
        return {"base_url": self.base_url, "partner_id": self.partner_id, "checkword": self.checkword}

    def waybills(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(list(self.orders.values()))

    # --- Base hooks that mean nothing for a carrier ----------------------------------------------

    def order_id(self, order: dict) -> str:
        return str(order["orderId"])

    def generate_order(self) -> dict:
        """No-op: a carrier does not invent waybills; they come from create calls."""
        return {}

    def generate(self, count: int = 1, *, push: bool = True) -> list[dict]:
        """No-op (see generate_order), so ``--initial`` and ``--rate`` do nothing here."""
        return []

    def deliver_webhook(self, topic: str, order: dict) -> None:
        """No-op: tracking is pulled by route queries, nothing is pushed."""

    def reset(self) -> None:
        """Forget waybills, records, faults and a frozen clock; numbers start again from the seed."""
        super().reset()
        with self.lock:
            self.faults = SFFaults()
            self.api_calls.clear()
            self.rng = random.Random(self.seed)
            self._clock = None

    # --- Faults and errors in SF's shape ---------------------------------------------------------

    def rate_limited_response(self) -> Response:
        return self._api_error("A1005")

    # --- Control API ---------------------------------------------------------------------------

    def handle_control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_sandbox/").strip("/")
        if action == "faults" and request.method == "POST":
            return self._set_faults(request)
        if action == "clock":
            return self._clock_control(request)
        response = super().handle_control(request)
        if action == "state" and request.method == "GET" and isinstance(response.body, dict):
            response.body["now"] = self.now().isoformat()
            response.body["frozen_clock"] = self._clock is not None
            response.body["waybills"] = self.waybills()
        return response

    def _set_faults(self, request: Request) -> Response:
        try:
            data = request.json() or {}
        except ValueError:
            return Response(400, {"error": "body must be JSON"})
        if not isinstance(data, dict):
            return Response(400, {"error": "body must be a JSON object"})
        lists: dict[str, list[str]] = {}
        for key in ("stall", "exception"):
            if key not in data:
                continue
            value = data.pop(key)
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                return Response(400, {"error": f'{key} must be a list of waybill numbers or "*"'})
            lists[key] = value
        # The base sets the switches it knows (and refuses unknown ones) from the rest of the body.
        response = super().handle_control(dataclasses.replace(request, body=json.dumps(data).encode()))
        if response.status != 200:
            return response
        with self.lock:
            for key, value in lists.items():
                setattr(self.faults, key, value)
            return Response(200, asdict(self.faults))

    def _clock_control(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                data = request.json() or {}
                if not isinstance(data, dict):
                    return Response(400, {"error": "body must be a JSON object"})
                if "advance_hours" in data:
                    self.set_clock(self.now() + timedelta(hours=float(data["advance_hours"])))
                elif "now" in data:
                    self.set_clock(datetime.fromisoformat(data["now"]) if data["now"] else None)
                else:
                    return Response(
                        400, {"error": 'give "now" (ISO time with offset, or null) or "advance_hours"'}
                    )
            except (TypeError, ValueError) as exc:
                return Response(400, {"error": f"bad clock value: {exc}"})
        elif request.method != "GET":
            return Response(405, {"error": "GET or POST"})
        return Response(200, {"now": self.now().isoformat(), "frozen": self._clock is not None})

    # --- The gateway -----------------------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        response = self._gateway(request)
        with self.lock:
            lost = self.faults.lost_answers > 0
            if lost:
                self.faults.lost_answers -= 1
        if lost:
            # Done, but the caller gives up before the answer arrives: what a retry must cope with.
            time.sleep(self.lost_answer_seconds)
        return response

    def _gateway(self, request: Request) -> Response:
        if request.path.rstrip("/") != SERVICE_PATH or request.method != "POST":
            return Response(404, {"error": f"unknown endpoint {request.method} {request.path}"})
        form = request.form()
        with self.lock:
            self.api_calls.append({k: v for k, v in form.items() if k != "msgDigest"})
        for name in ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData"):
            if not form.get(name):
                return self._api_error("A1001", f"{name} 不能为空")
        if form["partnerID"] != self.partner_id:
            return self._api_error("A1004", f"顾客编码 {form['partnerID']} 无对应服务权限")
        expected = sf_digest(form["msgData"], form["timestamp"], self.checkword)
        if not hmac.compare_digest(form["msgDigest"], expected):
            return self._api_error("A1006")
        # Against the real clock, not the sandbox clock: clients stamp requests with real time.
        if (
            not form["timestamp"].isdigit()
            or abs(datetime.now(UTC) - datetime.fromtimestamp(int(form["timestamp"]) / 1000, UTC))
            > TIMESTAMP_SKEW
        ):
            return self._api_error("A1002")
        handler = {
            CREATE_ORDER: self._create_order,
            SEARCH_ORDER: self._search_order,
            SEARCH_ROUTES: self._search_routes,
            UPDATE_ORDER: self._update_order,
        }.get(form["serviceCode"])
        if handler is None:
            return self._api_error("A1004", f"无 {form['serviceCode']} 服务权限")
        try:
            msg = json.loads(form["msgData"])
        except ValueError:
            return self._fail(ERR_INVALID, "msgData 不是合法的 JSON")
        if not isinstance(msg, dict):
            return self._fail(ERR_INVALID, "msgData 必须是 JSON 对象")
        return handler(msg)

    def _api_error(self, code: str, message: str = "") -> Response:
        return Response(
            200,
            {
                "apiResultCode": code,
                "apiErrorMsg": message or API_MESSAGES.get(code, ""),
                "apiResponseID": uuid.uuid4().hex.upper(),
                "apiResultData": None,
            },
        )

    def _result(self, data: dict) -> Response:
        return Response(
            200,
            {
                "apiResultCode": API_OK,
                "apiErrorMsg": "",
                "apiResponseID": uuid.uuid4().hex.upper(),
                "apiResultData": json.dumps(data, ensure_ascii=False),
            },
        )

    def _ok(self, msg_data: dict) -> Response:
        return self._result(
            {"success": True, "errorCode": BUSINESS_OK, "errorMsg": None, "msgData": msg_data}
        )

    def _fail(self, code: str, message: str) -> Response:
        return self._result({"success": False, "errorCode": code, "errorMsg": message, "msgData": None})

    # --- Create ----------------------------------------------------------------------------------

    def _create_order(self, msg: dict) -> Response:
        order_id = str(msg.get("orderId") or "")
        contacts = {c.get("contactType"): c for c in msg.get("contactInfoList") or [] if isinstance(c, dict)}
        cargo = msg.get("cargoDetails") or []
        if not order_id:
            return self._fail(ERR_INVALID, "orderId 不能为空")
        if 1 not in contacts or 2 not in contacts:
            return self._fail(ERR_INVALID, "contactInfoList 须含寄件方 (1) 和到件方 (2)")
        # Only what a courier cannot do without: the sender's address (an account usually has its
        # sender on file) and the receiver's name, phone and address. Province and city may be folded
        # into the address, as SF-like gateways accept.
        if not contacts[1].get("address"):
            return self._fail(ERR_INVALID, "contactType 1: address 不能为空")
        for name in ("contact", "address"):
            if not contacts[2].get(name):
                return self._fail(ERR_INVALID, f"contactType 2: {name} 不能为空")
        if not (contacts[2].get("mobile") or contacts[2].get("tel")):
            return self._fail(ERR_INVALID, "contactType 2: mobile 或 tel 不能为空")
        if (
            not isinstance(cargo, list)
            or not cargo
            or not all(isinstance(c, dict) and c.get("name") for c in cargo)
        ):
            return self._fail(ERR_INVALID, "cargoDetails 不能为空")
        service = EXPRESS_TYPE_SERVICES.get(msg.get("expressTypeId", 2))
        if service is None:
            return self._fail(ERR_INVALID, f"expressTypeId {msg.get('expressTypeId')} 不支持")
        weight = msg.get("totalWeight")
        if weight is not None and (not isinstance(weight, int | float) or weight <= 0):
            return self._fail(ERR_INVALID, "totalWeight 必须大于 0")
        sender, receiver = contacts[1], contacts[2]
        if UNREACHABLE_MARK in str(receiver.get("address")):
            self.record_push("create", orderId=order_id, refused=ERR_UNREACHABLE)
            return self._fail(ERR_UNREACHABLE, "收件地址超出派送范围，无法送达")
        with self.lock:
            existing = self.orders.get(order_id)
            if existing is None:
                waybill = self._new_waybill(order_id, service, sender, receiver, cargo, weight)
                self.orders[order_id] = waybill
                answer = self._create_answer(waybill)
        if existing is not None:
            # SF never takes an orderId twice, cancelled or not: the caller must look the order up.
            self.record_push(
                "create",
                orderId=order_id,
                waybillNo=existing["waybillNo"],
                repeat=True,
                refused=ERR_DUPLICATE_ORDER,
            )
            return self._fail(ERR_DUPLICATE_ORDER, f"重复下单：订单号 {order_id} 已下过单")
        self.record_push(
            "create", orderId=order_id, waybillNo=waybill["waybillNo"], repeat=False, refused=None
        )
        return self._ok(answer)

    # --- Order search ----------------------------------------------------------------------------

    def _search_order(self, msg: dict) -> Response:
        order_id = str(msg.get("orderId") or "")
        if not order_id:
            return self._fail(ERR_ORDER_ID_MISSING, "订单号不能为空")
        if str(msg.get("searchType", 1)) != "1":
            return self._fail(ERR_INVALID, "sandbox 只支持 searchType 1 (正向单)")
        with self.lock:
            waybill = self.orders.get(order_id)
            if waybill is None:
                return self._fail(ERR_SEARCH_NOT_FOUND, f"找不到该订单 {order_id}")
            if waybill["status"] == "cancelled":
                return self._fail(ERR_ORDER_CANCELLED, f"订单 {order_id} 已消单")
            answer = self._create_answer(waybill)
        self.record_push("search", orderId=order_id, waybillNo=answer["waybillNoInfoList"][0]["waybillNo"])
        return self._ok(answer)

    def _new_waybill(
        self, order_id: str, service: str, sender: dict, receiver: dict, cargo: list, weight
    ) -> dict:
        taken = {w["waybillNo"] for w in self.orders.values()}
        while True:
            number = f"SF1{self.rng.randrange(10**12):012d}"
            if number not in taken:
                break
        origin, dest = city_code(sender), city_code(receiver)
        area = "/".join(str(receiver.get(k) or "") for k in ("province", "city", "county"))
        area = (area if area.strip("/") else str(receiver["address"])).encode()
        crc = zlib.crc32(area)
        dept = DEPT_LETTERS[crc % len(DEPT_LETTERS)] + DEPT_LETTERS[(crc // 97) % len(DEPT_LETTERS)]
        route_label = f"{dest}{dept}-{crc % 1000:03d}"
        return {
            "orderId": order_id,
            "waybillNo": number,
            "status": "created",
            "createdAt": self.now().isoformat(),
            "cancelledAt": None,
            "service": service,
            "sender": copy.deepcopy(sender),
            "receiver": copy.deepcopy(receiver),
            "cargoDetails": copy.deepcopy(cargo),
            "totalWeight": weight,
            "routeLabelData": {
                "waybillNo": number,
                "sourceTransferCode": origin,
                "sourceCityCode": origin,
                "destCityCode": dest,
                "destRouteLabel": route_label,
                "codingMapping": f"{DEPT_LETTERS[crc % 7]}{crc % 90 + 10}",
                "proCode": PRO_CODES[service],
                "proName": SERVICE_NAMES[service],
                "twoDimensionCode": "MMM="
                + json.dumps({"k1": dest, "k2": dept, "k5": number}, separators=(",", ":")),
            },
        }

    @staticmethod
    def _create_answer(waybill: dict) -> dict:
        label = waybill["routeLabelData"]
        return {
            "orderId": waybill["orderId"],
            "originCode": label["sourceCityCode"],
            "destCode": label["destCityCode"],
            "filterResult": 2,  # 2 = can be picked up and delivered (SF-like)
            "waybillNoInfoList": [{"waybillType": 1, "waybillNo": waybill["waybillNo"]}],
            "routeLabelInfo": [
                {"code": "1000", "message": "SUCCESS", "routeLabelData": copy.deepcopy(label)}
            ],
        }

    # --- Routes ----------------------------------------------------------------------------------

    def _search_routes(self, msg: dict) -> Response:
        numbers = msg.get("trackingNumber")
        numbers = [numbers] if isinstance(numbers, str) else numbers
        if str(msg.get("trackingType", 1)) != "1":
            return self._fail(ERR_INVALID, "sandbox 只支持 trackingType 1 (按运单号)")
        if not isinstance(numbers, list) or not numbers or len(numbers) > MAX_ROUTE_NUMBERS:
            return self._fail(ERR_INVALID, f"trackingNumber 须为 1 至 {MAX_ROUTE_NUMBERS} 个运单号")
        now = self.now()
        with self.lock:
            by_number = {w["waybillNo"]: w for w in self.orders.values()}
            faults = copy.deepcopy(self.faults)
            resps = []
            for number in dict.fromkeys(str(n) for n in numbers):
                waybill = by_number.get(number)
                if waybill is None or waybill["status"] == "cancelled":
                    continue
                routes = [route for at, route in self._routes(waybill, faults) if at <= now]
                resps.append({"mailNo": number, "routes": routes})
        return self._ok({"routeResps": resps})

    @staticmethod
    def _routes(waybill: dict, faults: SFFaults) -> list[tuple[datetime, dict]]:
        """The waybill's whole schedule as (time, SF route), given the fault switches."""
        created = datetime.fromisoformat(waybill["createdAt"])
        number = waybill["waybillNo"]
        origin, dest = place_name(waybill["sender"], "始发地"), place_name(waybill["receiver"], "目的地")
        district = str(waybill["receiver"].get("county") or dest)
        texts = {
            "accepted": (origin, "顺丰速运 已收取快件"),
            "departed_origin": (origin, f"快件已发车，离开【{origin}集散中心】"),
            "arrived_destination": (dest, f"快件到达【{dest}集散中心】"),
            "out_for_delivery": (district, "快件交给快递员，正在派送途中"),
            "delivered": (district, "快件已签收，签收人：本人"),
        }
        schedule = list(SCHEDULE)
        if _matches(faults.stall, number):
            schedule = schedule[:1]
        elif _matches(faults.exception, number):
            schedule = [step for step in schedule if step[0] < EXCEPTION_AFTER]
            schedule.append((EXCEPTION_AFTER, EXCEPTION_OP_CODE, "exception"))
            texts["exception"] = (dest, "派件异常：收件人地址不详，待联系收件人")
        routes = []
        for offset, op_code, step in schedule:
            at = created + offset
            place, remark = texts[step]
            routes.append(
                (
                    at,
                    {
                        "acceptTime": format_sf_time(at),
                        "acceptAddress": place,
                        "remark": remark,
                        "opCode": op_code,
                    },
                )
            )
        return routes

    # --- Cancel ----------------------------------------------------------------------------------

    def _update_order(self, msg: dict) -> Response:
        if msg.get("dealType") != DEAL_TYPE_CANCEL:
            return self._fail(ERR_INVALID, "sandbox 只支持 dealType 2 (取消)")
        # SF's key is the orderId (required); the waybill list is optional and must belong to the order.
        order_id = str(msg.get("orderId") or "")
        if not order_id:
            return self._fail(ERR_ORDER_ID_MISSING, "订单号不能为空")
        numbers = [
            str(i.get("waybillNo") or "") for i in msg.get("waybillNoInfoList") or [] if isinstance(i, dict)
        ]
        now = self.now()
        with self.lock:
            waybill = self.orders.get(order_id)
            if waybill is None:
                return self._fail(ERR_ORDER_NOT_FOUND, f"未获取到订单信息：{order_id}")
            if any(number and number != waybill["waybillNo"] for number in numbers):
                return self._fail(ERR_ORDER_WAYBILL_MISMATCH, f"订单号 {order_id} 与运单号不匹配")
            if waybill["status"] == "cancelled":
                return self._fail(ERR_ORDER_CANCELLED, "已消单")
            picked_up = datetime.fromisoformat(waybill["createdAt"]) + SCHEDULE[0][0]
            if now >= picked_up:
                return self._fail(ERR_ALREADY_PICKED_UP, f"运单 {waybill['waybillNo']} 已揽收，不能取消")
            waybill["status"] = "cancelled"
            waybill["cancelledAt"] = now.isoformat()
            answer = {
                "orderId": waybill["orderId"],
                "resStatus": RES_STATUS_DONE,
                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": waybill["waybillNo"]}],
            }
        self.record_push("cancel", orderId=answer["orderId"], waybillNo=waybill["waybillNo"])
        return self._ok(answer)


def main(argv: list[str] | None = None) -> None:
    """Serve the sandbox without Django (``python -m fulfillment.carriers.sf_sandbox --port 8805``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partner-id", default=DEFAULT_PARTNER_ID)
    parser.add_argument("--checkword", default=DEFAULT_CHECKWORD)
    args = parser.parse_args(argv)
    sandbox = SFSandbox(
        host=args.host, port=args.port, seed=args.seed, partner_id=args.partner_id, checkword=args.checkword
    )
    print(f"sf sandbox on {sandbox.start()}", flush=True)
    sandbox.serve_forever()


if __name__ == "__main__":
    main()
