"""Map one Taobao/Tmall trade (TOP JSON, as trade.fullinfo.get returns it) to a UnifiedOrder."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import (
    PermanentError,
    UnifiedAddress,
    UnifiedAfterSale,
    UnifiedAfterSaleLine,
    UnifiedLine,
    UnifiedOrder,
    UnifiedParty,
)
from connectors.taobao.client import parse_top_time

# API_FACTS §6: trade.status → unified status.
STATUS_MAP = {
    "TRADE_NO_CREATE_PAY": "pending_payment",
    "WAIT_BUYER_PAY": "pending_payment",
    "PAY_PENDING": "pending_payment",
    "WAIT_PRE_AUTH_CONFIRM": "pending_payment",
    # Paid but the platform forbids shipping (group buy not complete): the hub holds it.
    "PAID_FORBID_CONSIGN": "group_pending",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "SELLER_CONSIGNED_PART": "partially_shipped",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "completed",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",  # closed before payment
    "TRADE_CLOSED": "closed",  # closed after payment (fully refunded)
}
# Sub-order refund states in which an after-sale is still open.
OPEN_REFUND_STATUSES = frozenset({"WAIT_SELLER_AGREE", "WAIT_BUYER_RETURN_GOODS", "WAIT_SELLER_CONFIRM_GOODS"})
# Sub-order refund_status → the platform state a ticket follows (API_FACTS §2.5).
REFUND_STATE = {"WAIT_SELLER_AGREE": "open", "WAIT_BUYER_RETURN_GOODS": "returning",
                "WAIT_SELLER_CONFIRM_GOODS": "returning", "SELLER_REFUSE_BUYER": "rejected", "CLOSED": "cancelled",
                "SUCCESS": "refunded"}
# Goods are on their way back only in these; the trade does not say whether a request waiting for the seller
# is a return or a refund only (taobao.refund.get's has_good_return does): it is taken as a refund only.
RETURN_STATES = frozenset({"WAIT_BUYER_RETURN_GOODS", "WAIT_SELLER_CONFIRM_GOODS"})


def map_taobao_trade(trade: dict) -> UnifiedOrder:
    """One TOP trade → UnifiedOrder (Decimal yuan, aware UTC). Raises PermanentError when unmappable."""
    if not isinstance(trade, dict):
        raise PermanentError(f"Taobao trade must be a JSON object, got {type(trade).__name__}", code="invalid_payload")
    tid = _text(trade.get("tid_str")) or _text(trade.get("tid"))
    if not tid:
        raise PermanentError("Taobao trade has no tid (is this the trade or its response envelope?)",
                             code="invalid_payload")
    raw_status = _text(trade.get("status"))
    status = STATUS_MAP.get(raw_status)
    if status is None:
        raise PermanentError(f"Taobao trade {tid}: unknown status {raw_status!r}", code="unknown_status")
    orders = _orders(trade, tid)
    lines = [_line(order, tid) for order in orders]
    updated_at = _time(trade, "modified", tid, required=True)
    # TOP's trade discount_fee includes the sub-orders' own discounts; the unified order keeps
    # only the order-level part (the lines carry theirs).
    order_discount = max(_money(trade, "discount_fee", tid) - sum((line.discount for line in lines), Decimal("0")),
                         Decimal("0"))
    return UnifiedOrder(
        platform_order_id=tid,
        status=status,
        raw_status=raw_status,
        currency="CNY",
        total=_money(trade, "payment", tid, required=True),
        shipping=_money(trade, "post_fee", tid),
        discount=order_discount,
        created_at=_time(trade, "created", tid, required=True),
        updated_at=updated_at,
        paid_at=_time(trade, "pay_time", tid),
        payment_id=taobao_payment_id(trade),
        platform_fee=taobao_platform_fee(trade),
        lines=lines,
        buyer=UnifiedParty(name=_text(trade.get("buyer_nick")), id=_text(trade.get("buyer_open_uid"))),
        receiver=UnifiedAddress(
            name=_text(trade.get("receiver_name")),
            phone=_text(trade.get("receiver_mobile")) or _text(trade.get("receiver_phone")),
            country="CN",
            province=_text(trade.get("receiver_state")),
            city=_text(trade.get("receiver_city")),
            district=_text(trade.get("receiver_district")),
            address=_text(trade.get("receiver_address")),
            zip=_text(trade.get("receiver_zip")),
        ),
        buyer_note=_text(trade.get("buyer_message")).strip(),
        seller_note=_text(trade.get("seller_memo")).strip(),
        refund_requested=any(_text(order.get("refund_status")) in OPEN_REFUND_STATUSES for order in orders),
        after_sale_requests=[after_sale for order, line in zip(orders, lines, strict=True)
                             if (after_sale := _after_sale(order, line, tid, updated_at)) is not None],
    )


def taobao_payment_id(trade: dict) -> str:
    """alipay_no (TOP Trade: 支付宝交易号), the number the Alipay statement names the sale by; "" before the
    Alipay trade exists (TRADE_NO_CREATE_PAY) or when the fields asked for leave it out."""
    return _text(trade.get("alipay_no")).strip()[:64]


def taobao_platform_fee(trade: dict) -> Decimal | None:
    """commission_fee (交易佣金, yuan) once TOP reports it. Before settlement it is absent or 0.00, which says
    nothing about the fee (the settlement or the store's fee rate does), so both mean "unknown"."""
    commission = _money(trade, "commission_fee", _text(trade.get("tid")) or "?")
    return commission if commission > 0 else None


def _after_sale(order: dict, line: UnifiedLine, tid: str, updated_at: datetime) -> UnifiedAfterSale | None:
    """The sub-order's latest refund (refund_id), if it has one. The trade carries no refund time nor amount:
    the trade's modified time orders the versions and the sub-order's paid amount is what is asked."""
    refund_id, status = _text(order.get("refund_id")).strip(), _text(order.get("refund_status")).strip()
    if not refund_id or status in ("", "NO_REFUND"):
        return None
    if status not in REFUND_STATE:
        raise PermanentError(f"Taobao trade {tid} order {line.platform_line_id}: unknown refund_status {status!r}",
                             code="unknown_status")
    return UnifiedAfterSale(
        platform_after_sale_id=refund_id[:64], platform_order_id=tid,
        type="return_refund" if status in RETURN_STATES else "refund_only", status=REFUND_STATE[status],
        raw_status=status, updated_at=updated_at,
        lines=[UnifiedAfterSaleLine(quantity=line.quantity, platform_line_id=line.platform_line_id, sku=line.sku)])


def _orders(trade: dict, tid: str) -> list[dict]:
    # Non-simplified JSON wraps the list ({"order": [...]}); the client hands it over unwrapped.
    orders = trade.get("orders")
    if isinstance(orders, dict):
        orders = orders.get("order")
    if not isinstance(orders, list) or not orders:
        raise PermanentError(f"Taobao trade {tid} has no orders: fetch it with trade.fullinfo.get "
                             "and fields including orders", code="invalid_payload")
    if not all(isinstance(order, dict) for order in orders):
        raise PermanentError(f"Taobao trade {tid}: orders must be JSON objects", code="invalid_payload")
    return orders


def _line(order: dict, tid: str) -> UnifiedLine:
    oid = _text(order.get("oid"))
    where = f"{tid} order {oid or '?'}"
    try:
        quantity = int(order["num"])
    except (KeyError, TypeError, ValueError):
        raise PermanentError(f"Taobao trade {where}: num must be an integer, got {order.get('num')!r}",
                             code="invalid_payload") from None
    if quantity < 1:
        raise PermanentError(f"Taobao trade {where}: num must be at least 1, got {quantity}", code="invalid_payload")
    return UnifiedLine(
        sku=_text(order.get("outer_sku_id")) or _text(order.get("outer_iid")),
        platform_sku_id=_text(order.get("sku_id")) or _text(order.get("num_iid")),
        title=_text(order.get("title")),
        quantity=quantity,
        unit_price=_money(order, "price", where, required=True),
        discount=_money(order, "discount_fee", where),
        platform_line_id=oid,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _money(data: dict, key: str, where: str, *, required: bool = False) -> Decimal:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise PermanentError(f"Taobao trade {where}: {key} is missing", code="invalid_payload")
        return Decimal("0")
    try:
        # str() first: a number that came as a JSON float must not carry binary noise into Decimal.
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PermanentError(f"Taobao trade {where}: {key} {value!r} is not an amount",
                             code="invalid_payload") from None
    if not amount.is_finite():
        raise PermanentError(f"Taobao trade {where}: {key} {value!r} is not an amount", code="invalid_payload")
    return amount


def _time(data: dict, key: str, where: str, *, required: bool = False) -> datetime | None:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise PermanentError(f"Taobao trade {where}: {key} is missing", code="invalid_payload")
        return None
    try:
        return parse_top_time(str(value)).astimezone(UTC)
    except ValueError:
        raise PermanentError(f"Taobao trade {where}: {key} {value!r} is not yyyy-MM-dd HH:mm:ss",
                             code="invalid_payload") from None
