"""SF-Express-like (丰桥-style) carrier client: the signed /std/service envelope and ``SFAdapter``.

The protocol, as the adapter speaks it and ``sf_sandbox.SFSandbox`` answers it. It follows the shape
of SF's 丰桥 API as its pages and public SDKs describe it. The duplicate-order answer, the order
search and the cancel message are checked (API_FACTS.md, "SF Express"); codes marked NOT CONFIRMED
are SF-like only. Check them before pointing a real account here.

Request: ``POST {base_url}/std/service``, ``application/x-www-form-urlencoded``, fields

- ``partnerID`` (顾客编码), ``requestID`` (uuid4, new per attempt), ``serviceCode``,
  ``timestamp`` (ms since the epoch), ``msgData`` (a JSON string) and
- ``msgDigest = base64(md5(quote_plus(msgData + timestamp + checkword).encode("utf-8")).digest())``.

Response (HTTP 200): ``{"apiResultCode", "apiErrorMsg", "apiResponseID", "apiResultData"}``;
``apiResultCode`` is ``A1000`` when the gateway accepted the call, another ``A…`` code when it
refused it (``API_MESSAGES``). ``apiResultData`` is a JSON *string*:
``{"success": bool, "errorCode": "S0000" | business code, "errorMsg": str | null, "msgData": {…}}``.

Services (SF's 丰桥 names; what is checked against SF's pages and SDKs is in API_FACTS.md, "SF
Express"):

- ``EXP_RECE_CREATE_ORDER``: msgData ``orderId`` (our shipment number), ``expressTypeId``
  (``EXPRESS_TYPES``), ``contactInfoList`` (``contactType`` 1 sender / 2 receiver), ``cargoDetails``,
  ``totalWeight`` (kg, 3 decimals), ``monthlyCard``, ``isReturnRoutelabel`` 1. Answers
  ``waybillNoInfoList`` [{"waybillType": 1, "waybillNo": "SF" + 13 digits}] and ``routeLabelInfo``
  [{"routeLabelData": {"destRouteLabel", "sourceTransferCode", "twoDimensionCode", "codingMapping",
  "proCode", …}}]. A repeated ``orderId`` is refused with ``8016`` (重复下单), also after a cancel:
  SF never reuses an order number. So a retry after a lost answer gets 8016, and the adapter then
  asks ``EXP_RECE_SEARCH_ORDER_RESP`` for the waybill SF already made and adopts it.
- ``EXP_RECE_SEARCH_ORDER_RESP``: ``orderId``, ``searchType`` 1 (a forward order). Answers the same
  shape as a create (``waybillNoInfoList``, ``routeLabelInfo``).
- ``EXP_RECE_SEARCH_ROUTES``: ``trackingType`` 1 (by waybill number), ``trackingNumber`` (a list,
  at most ``MAX_ROUTE_NUMBERS``). Answers ``routeResps`` [{"mailNo", "routes": [{"acceptTime"
  (Beijing time, "yyyy-MM-dd HH:mm:ss"), "acceptAddress", "remark", "opCode"}]}]; unknown or
  cancelled numbers have no entry.
- ``EXP_RECE_UPDATE_ORDER`` with ``dealType`` 2: cancel. ``orderId`` is required (6118 without
  it, 8018 for one SF does not know); ``waybillNoInfoList`` is optional and, when sent, must match
  the order (8017). Answers ``resStatus`` 2 when done; cancelling a cancelled order answers 8037
  (已消单), which the adapter takes as done.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_plus

import requests

from fulfillment.carriers.base import (
    ACCEPTED,
    DELIVERED,
    EXCEPTION,
    IN_TRANSIT,
    OUT_FOR_DELIVERY,
    CarrierAdapter,
    CarrierAuthError,
    CarrierError,
    CarrierPermanentError,
    CarrierTransientError,
    TrackingEvent,
    Waybill,
    WaybillRequest,
)
from gateway.errors import AuthError, GatewayError, PermanentError, TransientError
from gateway.http import FORM_HEADERS, GatewayClient, gateway_url

SERVICE_PATH = "/std/service"
CREATE_ORDER = "EXP_RECE_CREATE_ORDER"
SEARCH_ROUTES = "EXP_RECE_SEARCH_ROUTES"
SEARCH_ORDER = "EXP_RECE_SEARCH_ORDER_RESP"
SEARCH_TYPE_FORWARD = 1  # searchType 1: a forward (not a return) order
UPDATE_ORDER = "EXP_RECE_UPDATE_ORDER"
DEAL_TYPE_CANCEL = 2
MAX_ROUTE_NUMBERS = 10  # per route query; SF-like, NOT CONFIRMED
DEFAULT_TIMEOUT = 10.0

# SF's times carry no zone: Beijing time. A fixed offset is exact (China has had no DST since 1991)
# and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
SF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Our service → expressTypeId. SF-like, NOT CONFIRMED: third-party SDKs give 1 = 顺丰特快 (express),
# 2 = 顺丰标快 (standard); 5 = 顺丰次晨 is our pick for next_morning.
EXPRESS_TYPES = {"express": 1, "standard": 2, "next_morning": 5}
SERVICE_NAMES = {"express": "顺丰特快", "standard": "顺丰标快", "next_morning": "顺丰次晨"}
PRO_CODES = {"express": "T4", "standard": "T6", "next_morning": "T1"}  # printed product mark; NOT CONFIRMED

# Gateway (apiResultCode) codes; SF-like, NOT CONFIRMED against the real SF API.
API_OK = "A1000"
API_MESSAGES = {
    "A1000": "统一接入平台校验成功，调用后端服务成功",
    "A1001": "必传参数不可为空",
    "A1002": "请求时效已过期",
    "A1003": "IP无效",
    "A1004": "无对应服务权限",
    "A1005": "流量受控",
    "A1006": "数字签名无效",
    "A1007": "重复请求",
    "A1009": "目标服务异常或不可达",
    "A1099": "系统异常",
}
API_AUTH_CODES = frozenset({"A1003", "A1004", "A1006"})  # partner, IP or signature: an operator must act
API_TRANSIENT_CODES = frozenset(
    {"A1005", "A1007", "A1009", "A1099"}
)  # a new attempt (new requestID) may pass

# Business (apiResultData.errorCode) codes. Checked against SF's pages and SDKs (API_FACTS.md, "SF
# Express"): 8016, 8037, 8253, 6118, 8017, 8018. The others are SF-like and NOT CONFIRMED.
BUSINESS_OK = "S0000"
# SF's 1010 is "sender address missing"; used here for any malformed msgData (NOT CONFIRMED as generic).
ERR_INVALID = "1010"
ERR_DUPLICATE_ORDER = "8016"  # 重复下单: the orderId was used before (also when that order was cancelled)
ERR_ORDER_CANCELLED = "8037"  # 已消单: the order is cancelled already (cancelling it again answers this)
ERR_ORDER_CANCELLED_ALT = "8253"  # 订单已取消: the update page's other "already cancelled" code
ERR_ORDER_ID_MISSING = "6118"  # 订单号不能为空
ERR_ORDER_WAYBILL_MISMATCH = "8017"  # 订单号与运单号不匹配
ERR_ORDER_NOT_FOUND = "8018"  # 未获取到订单信息: no order with this orderId (cancel)
# 找不到该订单: SF lists it; that the order search answers it is NOT CONFIRMED.
ERR_SEARCH_NOT_FOUND = "6150"
# Too late to cancel (picked up). SF's code for it is NOT CONFIRMED; 8044 is 此订单已经处理中 in old SF lists.
ERR_ALREADY_PICKED_UP = "8044"
ERR_UNREACHABLE = "8114"  # the receiver's address is outside the delivery area; NOT CONFIRMED
# A cancel answered with one of these found the order cancelled already: done, as the interface promises.
CANCELLED_CODES = frozenset({ERR_ORDER_CANCELLED, ERR_ORDER_CANCELLED_ALT})
RES_STATUS_DONE = 2  # EXP_RECE_UPDATE_ORDER resStatus: 1 = orderId and waybill do not match, 2 = done

# Route opCode → normalised event code; SF-like, NOT CONFIRMED. An opCode not listed is still a scan,
# i.e. the parcel is being handled: in_transit (so the "no update for N days" alert is not raised).
OP_CODES = {
    "50": ACCEPTED,  # 顺丰已收取快件
    "30": IN_TRANSIT,  # 已发车 / 离开中转场
    "31": IN_TRANSIT,  # 到达中转场
    "44": OUT_FOR_DELIVERY,  # 派送中
    "80": DELIVERED,  # 已签收
    "33": EXCEPTION,  # 派件异常 (地址不详, 拒收…)
}


def sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """msgDigest: base64(md5(quote_plus(msgData + timestamp + checkword), utf-8)).

    quote_plus is what this protocol fixes; SF's own Java SDK uses URLEncoder, which differs on "*"
    and "~" (NOT CONFIRMED whether that matters to the real gateway).
    """
    signed = quote_plus(msg_data + timestamp + checkword).encode("utf-8")
    return base64.b64encode(hashlib.md5(signed).digest()).decode("ascii")


def format_sf_time(value: datetime) -> str:
    return value.astimezone(BEIJING).strftime(SF_TIME_FORMAT)


def parse_sf_time(value: str) -> datetime:
    """An SF time (Beijing, no zone) as an aware UTC datetime (ValueError when malformed)."""
    return datetime.strptime(value, SF_TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


class SFClient(GatewayClient):
    """One SF gateway account: signs, posts, unwraps the two envelopes, retries transient failures.

    Raises the gateway errors (TransientError / PermanentError / AuthError) so the shared retry
    loop of ``GatewayClient`` applies; ``SFAdapter`` turns them into carrier errors.
    """

    def __init__(
        self,
        *,
        url: str,
        partner_id: str,
        checkword: str,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 5.0,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            http=http,
        )
        self.url, self.partner_id, self.checkword = url, partner_id, checkword
        self.clock = clock

    def call(self, service_code: str, msg_data: Mapping[str, Any]) -> dict:
        """The business ``msgData`` of one call, retried on transient failures: queries and cancels are
        idempotent, and a create repeated after a lost answer is refused (8016) and then recovered by
        ``SFAdapter`` from the order search, so no call here can make a second waybill."""
        return self._with_retries(lambda: self.call_once(service_code, msg_data), retry_ambiguous=True)

    def call_once(self, service_code: str, msg_data: Mapping[str, Any]) -> dict:
        body = json.dumps(msg_data, ensure_ascii=False, separators=(",", ":"))
        timestamp = str(int(self.clock() * 1000))
        form = {
            "partnerID": self.partner_id,
            "requestID": str(uuid.uuid4()),
            "serviceCode": service_code,
            "timestamp": timestamp,
            "msgDigest": sf_digest(body, timestamp, self.checkword),
            "msgData": body,
        }
        status, payload = self.post(self.url, describe=f"SF {service_code}", data=form, headers=FORM_HEADERS)
        return self.unwrap(service_code, status, payload)

    @staticmethod
    def unwrap(service_code: str, status: int, payload: Any) -> dict:
        describe = f"SF {service_code}"
        if status in (401, 403):
            raise AuthError(f"{describe}: HTTP {status}", code=f"http_{status}")
        if status != 200 or not isinstance(payload, dict):
            raise PermanentError(f"{describe}: unexpected answer (HTTP {status})", code=f"http_{status}")
        api_code = str(payload.get("apiResultCode") or "")
        if api_code != API_OK:
            message = f"{describe}: {api_code} {payload.get('apiErrorMsg') or API_MESSAGES.get(api_code, '')}"
            if api_code in API_AUTH_CODES:
                raise AuthError(message, code=api_code)
            if api_code in API_TRANSIENT_CODES:
                raise TransientError(message, code=api_code)
            raise PermanentError(message, code=api_code or "invalid_response")
        result = payload.get("apiResultData")
        try:
            data = json.loads(result) if isinstance(result, str) else result
        except ValueError as exc:
            # A cut-off answer from a proxy; the call is idempotent, so the next attempt is safe.
            raise TransientError(f"{describe}: apiResultData is not JSON", code="invalid_json") from exc
        if not isinstance(data, dict):
            raise TransientError(f"{describe}: apiResultData missing", code="invalid_response")
        if not data.get("success"):
            code = str(data.get("errorCode") or "unknown")
            raise PermanentError(f"{describe} refused: {data.get('errorMsg') or ''} ({code})", code=code)
        return data.get("msgData") or {}


@contextmanager
def carrier_errors() -> Iterator[None]:
    """Gateway errors (from the shared gateway client) as carrier errors, code kept."""
    try:
        yield
    except AuthError as exc:
        raise CarrierAuthError(exc.message, code=exc.code) from exc
    except TransientError as exc:
        raise CarrierTransientError(exc.message, code=exc.code) from exc
    except PermanentError as exc:
        raise CarrierPermanentError(exc.message, code=exc.code) from exc
    except GatewayError as exc:
        raise CarrierError(exc.message, code=exc.code) from exc


def _phone_field(phone: str) -> str:
    # SF keeps mobiles and landlines in separate fields; a mainland mobile is 11 digits starting with 1.
    digits = re.sub(r"[\s\-()]", "", phone)
    return "mobile" if re.fullmatch(r"(\+?86)?1\d{10}", digits) else "tel"


class SFAdapter(CarrierAdapter):
    """SF-like carrier account. Config: base_url, partner_id, checkword; optional timeout (s, default
    10), monthly_card (月结卡号), max_retries (default 2, with jittered backoff)."""

    kind = "sf"

    def __init__(self, config: Mapping[str, Any] | None = None, *, http: requests.Session | None = None):
        super().__init__(config)
        missing = [key for key in ("base_url", "partner_id", "checkword") if not self.config.get(key)]
        if missing:
            raise CarrierAuthError(f"SF carrier config misses {', '.join(missing)}", code="credentials")
        try:
            timeout = float(self.config.get("timeout") or DEFAULT_TIMEOUT)
            max_retries = int(self.config.get("max_retries", 2))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CarrierPermanentError(f"SF carrier config: {exc}", code="config") from exc
        self.client = SFClient(
            url=gateway_url(str(self.config["base_url"]), SERVICE_PATH),
            partner_id=str(self.config["partner_id"]),
            checkword=str(self.config["checkword"]),
            timeout=timeout,
            max_retries=max_retries,
            http=http,
        )

    # --- Waybills ------------------------------------------------------------------------------

    def create_waybill(self, request: WaybillRequest) -> Waybill:
        if request.service not in EXPRESS_TYPES:
            raise CarrierPermanentError(f"SF has no service {request.service!r}", code="unknown_service")
        if request.weight_grams < 0:
            raise CarrierPermanentError("weight cannot be negative", code="invalid_weight")
        msg: dict[str, Any] = {
            "language": "zh-CN",
            "orderId": request.order_ref,
            "expressTypeId": EXPRESS_TYPES[request.service],
            "payMethod": 1,  # sender pays (the shop), on the monthly account when one is set
            "parcelQty": 1,
            "isReturnRoutelabel": 1,
            "contactInfoList": [self._contact(request.sender, 1), self._contact(request.receiver, 2)],
            # SF wants at least one cargo line; a shipment without item names goes as generic goods.
            "cargoDetails": [{"name": name, "count": count} for name, count in request.items]
            or [{"name": "商品", "count": 1}],
        }
        if request.weight_grams > 0:  # 0 = not weighed yet; SF wants a weight > 0 when one is given
            msg["totalWeight"] = round(request.weight_grams / 1000, 3)
        if self.config.get("monthly_card"):
            msg["monthlyCard"] = str(self.config["monthly_card"])
        try:
            with carrier_errors():
                data = self.client.call(CREATE_ORDER, msg)
        except CarrierPermanentError as exc:
            if exc.code != ERR_DUPLICATE_ORDER:
                raise
            # SF made this order before and refuses the repeat: typically our retry after an answer that
            # was lost (timeout, cut body). The waybill exists and is billable, so adopt it, never fail.
            return self._recover_waybill(request, refused=exc)
        return self._waybill(request, data)

    def _recover_waybill(self, request: WaybillRequest, *, refused: CarrierPermanentError) -> Waybill:
        """The waybill SF already made for ``request.order_ref`` (after 8016), from the order search."""
        msg = {"language": "zh-CN", "orderId": request.order_ref, "searchType": SEARCH_TYPE_FORWARD}
        try:
            with carrier_errors():
                data = self.client.call(SEARCH_ORDER, msg)
        except CarrierPermanentError as exc:
            if isinstance(exc, CarrierAuthError):
                raise
            # E.g. the order was cancelled at SF: its number can never be used again. Keep SF's 8016, the
            # reason the create failed, and say what the search answered.
            raise CarrierPermanentError(
                f"{refused.message}; its waybill could not be recovered: {exc.message}", code=refused.code
            ) from exc
        return self._waybill(request, data, recovered=True)

    @staticmethod
    def _waybill(request: WaybillRequest, data: Mapping[str, Any], *, recovered: bool = False) -> Waybill:
        """A Waybill from a create or an order-search answer (both carry the same fields)."""
        numbers = [
            str(info.get("waybillNo") or "")
            for info in data.get("waybillNoInfoList") or []
            # waybillType 1 = the parent waybill (母单)
            if isinstance(info, dict) and str(info.get("waybillType", 1)) == "1"
        ]
        if not numbers or not numbers[0]:
            # Asking again is safe (a repeat is refused and then recovered) and usually gets the full answer.
            raise CarrierTransientError(
                f"SF answered no waybill number for {request.order_ref}", code="invalid_response"
            )
        labels = data.get("routeLabelInfo") or [{}]
        route = (labels[0] or {}).get("routeLabelData") or {}
        dest_route = str(route.get("destRouteLabel") or "")
        label = {
            "dest_route_code": dest_route,
            "origin_code": str(route.get("sourceTransferCode") or data.get("originCode") or ""),
            "service_name": SERVICE_NAMES[request.service],
            "pro_code": str(route.get("proCode") or ""),
            "coding_mapping": str(route.get("codingMapping") or ""),
            "two_dimension_code": str(route.get("twoDimensionCode") or ""),
        }
        return Waybill(tracking_number=numbers[0], handover_code=dest_route, label=label, recovered=recovered)

    @staticmethod
    def _contact(address, contact_type: int) -> dict[str, Any]:
        return {
            "contactType": contact_type,
            "contact": address.name,
            _phone_field(address.phone): address.phone,
            "country": address.country,
            "province": address.province,
            "city": address.city,
            "county": address.district,
            "address": address.address,
        }

    def cancel_waybill(self, tracking_number: str, *, order_ref: str = "") -> None:
        """Cancel by SF's key, the ``orderId`` (our shipment number); the waybill goes along so SF checks
        they belong together. An order SF reports as cancelled already counts as done."""
        if not order_ref:
            # SF refuses a cancel without orderId (6118): say so before a call that cannot succeed.
            raise CarrierPermanentError(
                f"SF cancels by order number; none given for waybill {tracking_number}",
                code="order_ref_required",
            )
        msg = {
            "language": "zh-CN",
            "orderId": order_ref,
            "dealType": DEAL_TYPE_CANCEL,
            "waybillNoInfoList": [{"waybillType": 1, "waybillNo": tracking_number}]
            if tracking_number
            else [],
        }
        try:
            with carrier_errors():
                data = self.client.call(UPDATE_ORDER, msg)
        except CarrierPermanentError as exc:
            if exc.code in CANCELLED_CODES:
                return  # a retried cancel whose first answer was lost, or cancelled by other means
            raise
        if str(data.get("resStatus")) != str(RES_STATUS_DONE):
            raise CarrierPermanentError(
                f"SF did not cancel order {order_ref} (resStatus {data.get('resStatus')!r}: order and waybill "
                "do not match)",
                code=ERR_ORDER_WAYBILL_MISMATCH,
            )

    # --- Tracking ------------------------------------------------------------------------------

    def query_tracking(self, tracking_numbers: list[str]) -> dict[str, list[TrackingEvent]]:
        wanted = list(dict.fromkeys(number for number in tracking_numbers if number))
        found: dict[str, list[TrackingEvent]] = {}
        for start in range(0, len(wanted), MAX_ROUTE_NUMBERS):
            chunk = wanted[start : start + MAX_ROUTE_NUMBERS]
            msg = {"language": "zh-CN", "trackingType": 1, "trackingNumber": chunk, "methodType": 1}
            with carrier_errors():
                data = self.client.call(SEARCH_ROUTES, msg)
            for resp in data.get("routeResps") or []:
                number = str(resp.get("mailNo") or "")
                if number in chunk:
                    found[number] = self._events(number, resp.get("routes") or [])
        return found

    @staticmethod
    def _events(number: str, routes: list[dict]) -> list[TrackingEvent]:
        events = []
        for route in routes:
            try:
                occurred_at = parse_sf_time(str(route.get("acceptTime") or ""))
            except ValueError as exc:
                # Not dropped silently: a broken feed must show up, not look like a quiet parcel.
                raise CarrierPermanentError(
                    f"SF route of {number} has a bad acceptTime {route.get('acceptTime')!r}",
                    code="invalid_response",
                ) from exc
            events.append(
                TrackingEvent(
                    tracking_number=number,
                    occurred_at=occurred_at,
                    code=OP_CODES.get(str(route.get("opCode") or ""), IN_TRANSIT),
                    description=str(route.get("remark") or ""),
                    location=str(route.get("acceptAddress") or ""),
                )
            )
        events.sort(key=lambda event: event.occurred_at)  # stable: same-second scans keep SF's order
        return events
