"""Map one Pinduoduo ORDER object (order_info, or an entry of the increment list) to a UnifiedOrder."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connectors.base import (
    PermanentError,
    UnifiedAddress,
    UnifiedAfterSale,
    UnifiedAfterSaleLine,
    UnifiedLine,
    UnifiedOrder,
)
from connectors.pdd.client import parse_pdd_time

CENT = Decimal("0.01")

# order_status (发货状态) → the unified status once the order is confirmed and not cancelled (API_FACTS §6).
ORDER_STATUS_MAP = {1: "paid", 2: "shipped", 3: "completed"}
REFUND_SUCCESS = 4  # refund_status 4 退款成功
OPEN_REFUND_STATUSES = frozenset({2, 3})  # 售后处理中, 退款中
OPEN_AFTER_SALES_STATUSES = frozenset(range(2, 9))  # 2..8: requested, pending, refunding, rejected-awaiting…
NO_REFUND = 1  # 无售后或售后关闭

# after_sales_status words as the SDK field docs give them, for the after-sales module and the timeline.
AFTER_SALES_STATUS = {
    0: "无售后", 2: "买家申请退款，待商家处理", 3: "退货退款，待商家处理", 4: "商家同意退款，退款中",
    5: "平台同意退款，退款中", 6: "驳回退款，待买家处理", 7: "已同意退货退款，待用户发货", 8: "平台处理中",
    9: "平台拒绝退款，退款关闭", 10: "退款成功", 11: "买家撤销", 12: "买家逾期未处理，退款失败",
    13: "买家逾期，超过有效期", 14: "换货补寄待商家处理", 15: "换货补寄待用户处理", 16: "换货补寄成功",
    17: "换货补寄失败", 18: "换货补寄待用户确认完成", 21: "待商家同意维修", 22: "待用户确认发货", 24: "维修关闭",
    25: "维修成功", 27: "待用户确认收货", 31: "已同意拒收退款，待用户拒收", 32: "补寄待商家发货",
}
# The kind of after-sale, where the order-level status alone says it; the rest (4–6, 8–13: refunding,
# rejected, closed…) applies to refunds and returns alike and is left "" for the refund API to tell.
AFTER_SALES_TYPE = {
    2: "refund", 31: "refund", 3: "return_refund", 7: "return_refund",
    **dict.fromkeys((14, 15, 16, 17, 18, 32), "exchange_resend"),
    **dict.fromkeys((21, 22, 24, 25, 27), "repair"),
}


# pdd.refund.list.increment.get after_sales_type → ticket type; 6 (维修 repair) has no ticket type.
REFUND_LIST_TYPES = {2: "refund_only", 3: "return_refund", 4: "exchange", 5: "resend"}
# after_sales_status → the platform state a ticket follows (the status words are AFTER_SALES_STATUS above).
REFUND_LIST_STATE = {
    2: "open", 3: "open", 8: "open", 14: "open",
    4: "agreed", 5: "agreed", 15: "agreed", 16: "agreed", 18: "agreed", 31: "agreed", 32: "agreed",
    7: "returning",
    10: "refunded",
    6: "rejected", 9: "rejected",
    11: "cancelled", 12: "cancelled", 13: "cancelled", 17: "cancelled",
}


def map_pdd_after_sale(refund: dict) -> UnifiedAfterSale:
    """One refund_list entry of pdd.refund.list.increment.get → UnifiedAfterSale. PDD names the item by its
    sku_id / outer_id (its orders have no line ids) with goods_number units; refund_amount is read as yuan like
    the order amounts (API_FACTS "After-sales": the unit is NOT CONFIRMED)."""
    if not isinstance(refund, dict):
        raise PermanentError(f"PDD after-sale must be a JSON object, got {type(refund).__name__}",
                             code="invalid_payload")
    after_sale_id = _text(refund.get("id")).strip()
    if not after_sale_id.isdigit():
        raise PermanentError(f"PDD after-sale id {after_sale_id!r} is not digits", code="invalid_payload")
    where = f"{_text(refund.get('order_sn')).strip() or '?'} after-sale {after_sale_id}"
    order_sn = _text(refund.get("order_sn")).strip()
    if not order_sn:
        raise PermanentError(f"PDD after-sale {after_sale_id} has no order_sn", code="invalid_payload")
    kind = _int(refund, "after_sales_type", where, required=True)
    if kind not in REFUND_LIST_TYPES:
        raise PermanentError(f"PDD order {where}: after_sales_type {kind} (e.g. 6 repair) has no after-sales "
                             "ticket type", code="unsupported_after_sale")
    status = _int(refund, "after_sales_status", where, required=True)
    if status not in REFUND_LIST_STATE:
        raise PermanentError(f"PDD order {where}: unknown after_sales_status {status}", code="unknown_status")
    quantity = _int(refund, "goods_number", where) or 0
    lines = [UnifiedAfterSaleLine(quantity=quantity, platform_sku_id=_text(refund.get("sku_id")).strip(),
                                  sku=_text(refund.get("outer_id")).strip())] if quantity > 0 else []
    return UnifiedAfterSale(
        platform_after_sale_id=after_sale_id, platform_order_id=order_sn, type=REFUND_LIST_TYPES[kind],
        status=REFUND_LIST_STATE[status],
        raw_status=f"after_sales_status={status} {AFTER_SALES_STATUS.get(status, '')}".strip(),
        updated_at=_time(refund, "updated_time", where, required=True), lines=lines,
        reason_text=_text(refund.get("after_sale_reason")).strip()[:500],
        refund_amount=_money(refund, "refund_amount", where) if refund.get("refund_amount") not in (None, "") else None,
        return_tracking_number=_text(refund.get("tracking_number")).strip()[:64])


def map_pdd_order(order_info: dict) -> UnifiedOrder:
    """One PDD order → UnifiedOrder (Decimal yuan, aware UTC). Raises PermanentError when unmappable."""
    if not isinstance(order_info, dict):
        raise PermanentError(f"PDD order must be a JSON object, got {type(order_info).__name__}",
                             code="invalid_payload")
    order_sn = _text(order_info.get("order_sn")).strip()
    if not order_sn:
        raise PermanentError("PDD order has no order_sn (is this the order or its response envelope?)",
                             code="invalid_payload")
    order_status = _int(order_info, "order_status", order_sn, required=True)
    confirm_status = _int(order_info, "confirm_status", order_sn, required=True)
    group_status = _int(order_info, "group_status", order_sn, required=True)
    refund_status = _int(order_info, "refund_status", order_sn) or NO_REFUND
    after_sales_status = _int(order_info, "after_sales_status", order_sn) or 0
    status = _status(order_info, order_sn, order_status=order_status, confirm_status=confirm_status,
                     group_status=group_status, refund_status=refund_status)
    return UnifiedOrder(
        platform_order_id=order_sn,
        status=status,
        raw_status=(f"order_status={order_status} confirm_status={confirm_status} group_status={group_status} "
                    f"refund_status={refund_status} after_sales_status={after_sales_status}"),
        currency="CNY",
        total=_money(order_info, "pay_amount", order_sn, required=True),
        shipping=_money(order_info, "postage", order_sn),
        # discount_amount = platform + seller + 团长免单, all order-level: PDD lines carry no discount.
        discount=_money(order_info, "discount_amount", order_sn),
        created_at=_time(order_info, "created_time", order_sn, required=True),
        updated_at=_time(order_info, "updated_at", order_sn, required=True),
        paid_at=_time(order_info, "pay_time", order_sn),
        payment_id=pdd_payment_id(order_info),
        lines=[_line(item, order_sn) for item in _items(order_info, order_sn)],
        receiver=_receiver(order_info),
        buyer_note=_text(order_info.get("buyer_memo")).strip(),
        seller_note=_text(order_info.get("remark")).strip(),
        refund_requested=(refund_status in OPEN_REFUND_STATUSES
                          or after_sales_status in OPEN_AFTER_SALES_STATUSES),
        after_sales=_after_sales(after_sales_status, refund_status),
    )


def pdd_payment_id(order_info: dict) -> str:
    """pay_no (支付单号): the payment's number at the pay channel (pay_type: WEIXIN, ALIPAY…). The order payload
    reports no fee: PDD's bill (货款明细) does."""
    return _text(order_info.get("pay_no")).strip()[:64]


def _status(order_info: dict, order_sn: str, *, order_status: int, confirm_status: int, group_status: int,
            refund_status: int) -> str:
    # Cancelled first: a failed group or a cancelled deal never ships, whatever order_status says.
    if confirm_status == 2 or group_status == 2:
        return "cancelled"
    shipped = (order_status in (2, 3) or bool(_text(order_info.get("shipping_time")))
               or bool(_text(order_info.get("tracking_number"))))
    # Refunded in full before anything left: the order is over. After a shipment the refund is an
    # after-sale of a shipped order and the order keeps its shipping status.
    if refund_status == REFUND_SUCCESS and not shipped:
        return "cancelled"
    # 拼团中 / 未成交: paid, but PDD does not let it ship until the group forms (a hold in the hub).
    if group_status == 0 or confirm_status == 0:
        return "group_pending"
    status = ORDER_STATUS_MAP.get(order_status)
    if status is None:
        raise PermanentError(f"PDD order {order_sn}: unknown order_status {order_status}", code="unknown_status")
    return status


def _after_sales(after_sales_status: int, refund_status: int) -> list[dict]:
    """PDD keeps one after-sale state per order (not per line): one entry for the whole order, if any."""
    if after_sales_status == 0 and refund_status == NO_REFUND:
        return []
    return [{"platform_line_id": "", "status": str(after_sales_status),
             "type": AFTER_SALES_TYPE.get(after_sales_status, ""), "refund_status": str(refund_status),
             "description": AFTER_SALES_STATUS.get(after_sales_status, "")}]


def _items(order_info: dict, order_sn: str) -> list[dict]:
    items = order_info.get("item_list")
    if not isinstance(items, list) or not items:
        raise PermanentError(f"PDD order {order_sn} has no item_list", code="invalid_payload")
    if not all(isinstance(item, dict) for item in items):
        raise PermanentError(f"PDD order {order_sn}: item_list entries must be JSON objects", code="invalid_payload")
    return items


def _line(item: dict, order_sn: str) -> UnifiedLine:
    goods_id, sku_id = _text(item.get("goods_id")).strip(), _text(item.get("sku_id")).strip()
    where = f"{order_sn} item {goods_id or '?'}:{sku_id or '?'}"
    if not goods_id or not sku_id:
        raise PermanentError(f"PDD order {where}: goods_id and sku_id are required", code="invalid_payload")
    quantity = _int(item, "goods_count", where, required=True)
    if quantity < 1:
        raise PermanentError(f"PDD order {where}: goods_count must be at least 1, got {quantity}",
                             code="invalid_payload")
    return UnifiedLine(
        sku=_text(item.get("outer_id")).strip() or _text(item.get("outer_goods_id")).strip(),
        platform_sku_id=sku_id,
        title=_text(item.get("goods_name")),
        quantity=quantity,
        unit_price=_money(item, "goods_price", where, required=True),
        discount=Decimal("0"),
        platform_line_id=f"{goods_id}:{sku_id}",
    )


def _receiver(order_info: dict) -> UnifiedAddress:
    # The hub never decrypts: ciphertext is kept for the platform's waybill flow, the masked copies are
    # what people see. PDD sends empty ciphertext once an order has shipped or is risk-flagged.
    encrypted = _present({"name": order_info.get("receiver_name"), "phone": order_info.get("receiver_phone"),
                          "address": order_info.get("receiver_address"), "full_address": order_info.get("address")})
    masked = _present({"name": order_info.get("receiver_name_mask"), "phone": order_info.get("receiver_phone_mask"),
                       "address": order_info.get("receiver_address_mask"),
                       "full_address": order_info.get("address_mask")})
    country = _text(order_info.get("country")).strip()
    return UnifiedAddress(
        name=masked.get("name", ""),
        phone=masked.get("phone", ""),
        country="CN" if country in ("", "中国") else country,
        province=_text(order_info.get("province")).strip(),
        city=_text(order_info.get("city")).strip(),
        district=_text(order_info.get("town")).strip(),
        # receiver_address is the street part (省市区 not prefixed), which is what the district fields need.
        address=masked.get("address") or masked.get("full_address", ""),
        encrypted=encrypted,
        masked=masked,
    )


def _present(values: dict[str, Any]) -> dict[str, str]:
    return {key: text for key, value in values.items() if (text := _text(value).strip())}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(data: dict, key: str, where: str, *, required: bool = False) -> int | None:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise PermanentError(f"PDD order {where}: {key} is missing", code="invalid_payload")
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise PermanentError(f"PDD order {where}: {key} must be an integer, got {value!r}", code="invalid_payload")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PermanentError(f"PDD order {where}: {key} must be an integer, got {value!r}",
                             code="invalid_payload") from None


def _money(data: dict, key: str, where: str, *, required: bool = False) -> Decimal:
    """Yuan as PDD sends it (a JSON number such as 188.0, sometimes a string) → Decimal to the fen."""
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise PermanentError(f"PDD order {where}: {key} is missing", code="invalid_payload")
        return Decimal("0")
    if isinstance(value, bool):
        raise PermanentError(f"PDD order {where}: {key} {value!r} is not an amount", code="invalid_payload")
    try:
        # str() first: repr of a JSON double is its shortest decimal form (19.9 → "19.9"), never
        # the binary expansion Decimal(float) would give.
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PermanentError(f"PDD order {where}: {key} {value!r} is not an amount", code="invalid_payload") from None
    if not amount.is_finite():
        raise PermanentError(f"PDD order {where}: {key} {value!r} is not an amount", code="invalid_payload")
    # Order amounts are whole fen; more digits can only be double noise from the platform's own
    # arithmetic (0.30000000000000004), which rounds back to the fen it stands for.
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _time(data: dict, key: str, where: str, *, required: bool = False) -> datetime | None:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise PermanentError(f"PDD order {where}: {key} is missing", code="invalid_payload")
        return None
    try:
        return parse_pdd_time(str(value)).astimezone(UTC)
    except ValueError:
        raise PermanentError(f"PDD order {where}: {key} {value!r} is not yyyy-MM-dd HH:mm:ss",
                             code="invalid_payload") from None
