"""Map one Douyin shop order (SHOP_ORDER of order.searchList / order.orderDetail) to a UnifiedOrder."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
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

# API_FACTS §4.4 / §6: order_status → unified status.
STATUS_MAP = {
    1: "pending_payment",  # 待确认/待支付
    # 105 已支付 is "paid, not yet released for shipping". Reading it as a group-buy hold (待成团) is an
    # inference the facts mark NOT CONFIRMED, so it maps to plain "paid" and no hold is placed.
    105: "paid",
    2: "paid",  # 备货中
    101: "partially_shipped",  # 部分发货
    3: "shipped",  # 已发货（全部发货）
    4: "cancelled",  # 已取消
    5: "completed",  # 已完成（已收货）
}
# main_status values for a refund that ended the order (发货前 / 发货后 / 收货后退款完结).
CLOSED_MAIN_STATUSES = frozenset({21, 22, 39})
# Per sku order: an after-sale is open (applied, returning, after-sale shipped, exchange ship/receive).
OPEN_AFTER_SALE_STATUSES = frozenset({6, 7, 11, 13, 14})
# …and ended: success, refused, failed/closed, refused after return, cancel success, reverse trade done.
ENDED_AFTER_SALE_STATUSES = frozenset({12, 27, 28, 29, 51, 53})
REFUND_PENDING = 1


# afterSale/List aftersale_type → ticket type (SDK AfterSaleListParam); 8 (维修 repair) has no ticket type.
AFTER_SALE_TYPES = {0: "return_refund", 1: "refund_only", 2: "refund_only", 3: "exchange", 6: "compensation",
                    7: "resend"}
# aftersale_status (standard_aftersale_status) → the platform state a ticket follows.
AFTER_SALE_STATE = {6: "open", 7: "returning", 8: "agreed", 11: "returning", 13: "agreed", 3: "agreed",
                    14: "agreed", 27: "rejected", 29: "rejected", 28: "cancelled"}
AFTER_SALE_SUCCESS = 12  # 售后成功: refunded for the refund types, done for exchange and resend
REFUND_DONE = 3  # refund_status 3 退款成功


def map_douyin_after_sale(item: dict) -> UnifiedAfterSale:
    """One afterSale/List item ({aftersale_info, order_info, text_part}) → UnifiedAfterSale (yuan from fen)."""
    if not isinstance(item, dict) or not isinstance(item.get("aftersale_info"), dict):
        raise PermanentError("Douyin after-sale has no aftersale_info object", code="invalid_payload")
    info = item["aftersale_info"]
    order_info = item.get("order_info") if isinstance(item.get("order_info"), dict) else {}
    text = item.get("text_part") if isinstance(item.get("text_part"), dict) else {}
    after_sale_id = _text(info.get("aftersale_id")).strip()
    if not after_sale_id.isdigit():
        raise PermanentError(f"Douyin after-sale id {after_sale_id!r} is not digits", code="invalid_payload")
    where = f"Douyin after-sale {after_sale_id}"
    order_id = _text(order_info.get("shop_order_id")).strip()
    if not order_id.isdigit():
        raise PermanentError(f"{where}: order_info.shop_order_id {order_id!r} is not digits", code="invalid_payload")
    kind = _int(info, "aftersale_type", where, required=True)
    if kind not in AFTER_SALE_TYPES:
        raise PermanentError(f"{where}: aftersale_type {kind} (e.g. 8 repair) has no after-sales ticket type",
                             code="unsupported_after_sale")
    raw = _int(info, "aftersale_status", where, required=True)
    refund_status = _int(info, "refund_status", where)
    if raw == AFTER_SALE_SUCCESS:
        state = "refunded" if kind in (0, 1, 2, 6) else "agreed"
    elif refund_status == REFUND_DONE:
        state = "refunded"
    elif raw in AFTER_SALE_STATE:
        state = AFTER_SALE_STATE[raw]
    else:
        raise PermanentError(f"{where}: unknown aftersale_status {raw}", code="unknown_status")
    lines = []
    for related in order_info.get("related_order_info") or []:
        if not isinstance(related, dict):
            raise PermanentError(f"{where}: related_order_info entries must be objects", code="invalid_payload")
        quantity = _int(related, "aftersale_item_num", where) or _int(related, "item_num", where)
        if quantity < 1:
            raise PermanentError(f"{where}: a related order without a quantity", code="invalid_payload")
        lines.append(UnifiedAfterSaleLine(quantity=quantity, platform_line_id=_text(related.get("sku_order_id")),
                                          sku=_text(related.get("shop_sku_code"))))
    amount = _fen_int(info, "refund_amount", where) + _fen_int(info, "refund_post_amount", where)
    return UnifiedAfterSale(
        platform_after_sale_id=after_sale_id, platform_order_id=order_id, type=AFTER_SALE_TYPES[kind], status=state,
        raw_status=f"aftersale_status={raw} refund_status={refund_status}",
        updated_at=_time(info, "update_time", where, required=True), lines=lines,
        reason_text=_text(text.get("reason_text")).strip()[:500], refund_amount=_yuan(amount),
        return_tracking_number=_text(info.get("return_logistics_code")).strip()[:64])


def map_douyin_order(shop_order: dict) -> UnifiedOrder:
    """One Douyin shop order → UnifiedOrder (Decimal yuan from fen, aware UTC). Raises PermanentError.

    The order.orderDetail envelope ({"code":10000,…,"data":{"shop_order_detail":{…}}}) is accepted too.
    """
    order = _unwrap(shop_order)
    order_id = _text(order.get("order_id"))
    if not order_id:
        raise PermanentError("Douyin shop order has no order_id", code="invalid_payload")
    where = f"Douyin order {order_id}"
    order_status = _int(order, "order_status", where, required=True)
    status = STATUS_MAP.get(order_status)
    if status is None:
        raise PermanentError(f"{where}: unknown order_status {order_status}", code="unknown_status")
    main_status = _int(order, "main_status", where)
    raw_status = f"{order_status} {_text(order.get('order_status_desc'))}".strip()
    if main_status in CLOSED_MAIN_STATUSES and order_status != 4:
        # A refund ended the order; a cancelled one stays "cancelled" (never paid, or cancelled before).
        status = "closed"
        raw_status = f"{raw_status} / main_status {main_status} {_text(order.get('main_status_desc'))}".strip()

    sku_orders = _sku_orders(order, where)
    lines = [_line(sku_order, where) for sku_order in sku_orders]
    # promotion_amount = shop + platform + talent promotions. The lines carry the share allocated to
    # them; the order keeps whatever was not allocated, so lines − discounts + shipping = total.
    line_discounts = sum((line.discount for line in lines), Decimal("0"))
    order_discount = max(_fen(order, "promotion_amount", where) - line_discounts, Decimal("0.00"))

    after_sales = []
    for sku_order in sku_orders:
        info = sku_order.get("after_sale_info")
        if not isinstance(info, dict):
            continue
        entry = {"platform_line_id": _text(sku_order.get("order_id")),
                 "after_sale_status": _int(info, "after_sale_status", where),
                 "after_sale_type": _int(info, "after_sale_type", where),
                 "refund_status": _int(info, "refund_status", where)}
        # after_sale_status 0 (init) with no refund is the "no after-sale" default every line carries.
        if entry["after_sale_status"] or entry["refund_status"]:
            after_sales.append(entry)
    refund_requested = any(_after_sale_open(entry) for entry in after_sales)

    return UnifiedOrder(
        platform_order_id=order_id,
        status=status,
        raw_status=raw_status,
        currency="CNY",
        total=_fen(order, "pay_amount", where, required=True),
        shipping=_fen(order, "post_amount", where),
        discount=order_discount,
        tax=_fen(order, "tax_amount", where),
        created_at=_time(order, "create_time", where, required=True),
        updated_at=_time(order, "update_time", where, required=True),
        paid_at=_time(order, "pay_time", where),
        payment_id=douyin_payment_id(order),
        lines=lines,
        buyer=UnifiedParty(id=_text(order.get("doudian_open_id"))),
        receiver=_receiver(order),
        buyer_note=_text(order.get("buyer_words")).strip(),
        seller_note=_text(order.get("seller_words")).strip(),
        refund_requested=refund_requested,
        after_sales=after_sales,
    )


def douyin_payment_id(shop_order: dict) -> str:
    """channel_payment_no (the pay channel's serial number; pay_type says which channel), "" while unpaid.
    The shop order carries no fee or commission field: the Douyin bill does."""
    return _text(_unwrap(shop_order).get("channel_payment_no")).strip()[:64]


def _after_sale_open(entry: dict) -> bool:
    if entry["after_sale_status"] in OPEN_AFTER_SALE_STATUSES:
        return True
    # refund_status 1 (待退款) alone also counts, except after an ended after-sale: a buyer who withdraws
    # leaves after_sale_status 28 with refund_status still 1 (SDK field note), and nothing is pending.
    return entry["refund_status"] == REFUND_PENDING and entry["after_sale_status"] not in ENDED_AFTER_SALE_STATUSES


def _unwrap(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise PermanentError(f"Douyin shop order must be a JSON object, got {type(payload).__name__}",
                             code="invalid_payload")
    if "order_id" not in payload and "data" in payload:
        if "code" in payload and str(payload["code"]) != "10000":
            raise PermanentError(f"Douyin answer is an error envelope (code {payload['code']}: "
                                 f"{payload.get('msg', '')})", code="invalid_payload")
        payload = payload["data"]
    if isinstance(payload, dict) and "order_id" not in payload and "shop_order_detail" in payload:
        payload = payload["shop_order_detail"]
    if not isinstance(payload, dict):
        raise PermanentError("Douyin envelope holds no shop order object", code="invalid_payload")
    return payload


def _sku_orders(order: dict, where: str) -> list[dict]:
    sku_orders = order.get("sku_order_list")
    if not isinstance(sku_orders, list) or not sku_orders:
        raise PermanentError(f"{where} has no sku_order_list", code="invalid_payload")
    if not all(isinstance(sku_order, dict) for sku_order in sku_orders):
        raise PermanentError(f"{where}: sku_order_list items must be JSON objects", code="invalid_payload")
    return sku_orders


def _line(sku_order: dict, where: str) -> UnifiedLine:
    line_id = _text(sku_order.get("order_id"))
    where = f"{where} sku order {line_id or '?'}"
    quantity = _int(sku_order, "item_num", where, required=True)
    if quantity < 1:
        raise PermanentError(f"{where}: item_num must be at least 1, got {quantity}", code="invalid_payload")
    unit_fen = _fen_int(sku_order, "origin_amount", where, required=True)  # 商品现价: the unit price
    # Line discount rule: what the line's goods list at (origin_amount × item_num) minus what was paid
    # for them. A sku order's pay_amount includes its share of freight (post_amount), so that share is
    # taken out first; promotions allocated to the line and price changes (modify_amount) both end up
    # here. Never negative (packing or tax fees can make the payment exceed the goods). Without a
    # pay_amount the line carries no discount and the whole promotion stays at order level.
    discount_fen = 0
    if sku_order.get("pay_amount") not in (None, ""):
        goods_paid = (_fen_int(sku_order, "pay_amount", where)
                      - _fen_int(sku_order, "post_amount", where))
        discount_fen = max(unit_fen * quantity - goods_paid, 0)
    sku_id = sku_order.get("sku_id")
    return UnifiedLine(
        sku=(_text(sku_order.get("code")) or _text(sku_order.get("out_sku_id"))).strip(),
        platform_sku_id="" if sku_id in (None, "", 0) else _text(sku_id),
        title=_text(sku_order.get("product_name")),
        quantity=quantity,
        unit_price=_yuan(unit_fen),
        discount=_yuan(discount_fen),
        platform_line_id=line_id,
    )


def _receiver(order: dict) -> UnifiedAddress:
    post_addr = order.get("post_addr") if isinstance(order.get("post_addr"), dict) else {}
    mask_addr = order.get("mask_post_addr") if isinstance(order.get("mask_post_addr"), dict) else {}
    encrypted = {key: value for key, value in (
        ("encrypt_post_receiver", order.get("encrypt_post_receiver")),
        ("encrypt_post_tel", order.get("encrypt_post_tel")),
        ("encrypt_detail", post_addr.get("encrypt_detail"))) if value}
    masked = {key: order[key] for key in ("mask_post_receiver", "mask_post_tel", "mask_post_addr") if order.get(key)}

    def region(name: str) -> str:
        # post_addr carries the region names in the clear; the masked copy has them too on newer apps.
        for source in (post_addr, mask_addr):
            value = source.get(name)
            if isinstance(value, dict) and value.get("name"):
                return _text(value["name"])
        return ""

    # Masked values are what the hub shows; plaintext fields (older apps) only fill a gap. Decryption
    # (order.batchDecrypt) and labels go through the platform, with the ciphertext kept above.
    detail = _text(mask_addr.get("detail")) or _text(post_addr.get("detail"))
    return UnifiedAddress(
        name=_text(order.get("mask_post_receiver")) or _text(order.get("post_receiver")),
        phone=_text(order.get("mask_post_tel")) or _text(order.get("post_tel")),
        country="CN",
        province=region("province"),
        city=region("city"),
        district=region("town"),
        address=f"{region('street')}{detail}",
        encrypted=encrypted,
        masked=masked,
    )


# --- Values --------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(data: dict, key: str, where: str, *, required: bool = False) -> int:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise PermanentError(f"{where}: {key} is missing", code="invalid_payload")
        return 0
    if isinstance(value, bool):
        raise PermanentError(f"{where}: {key} {value!r} is not an integer", code="invalid_payload")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise PermanentError(f"{where}: {key} {value!r} is not an integer", code="invalid_payload")


def _fen_int(data: dict, key: str, where: str, *, required: bool = False) -> int:
    """An amount in integer fen (Douyin sends every amount as int64 fen)."""
    value = data.get(key)
    if isinstance(value, float):
        # A float here means the payload went through something that is not Douyin: refuse it rather
        # than guess whether it is fen or yuan.
        raise PermanentError(f"{where}: {key} {value!r} is not an integer amount in fen", code="invalid_payload")
    return _int(data, key, where, required=required)


def _yuan(fen: int) -> Decimal:
    # scaleb keeps two decimal places exactly (1990 → 19.90), with no float on the way.
    return Decimal(fen).scaleb(-2)


def _fen(data: dict, key: str, where: str, *, required: bool = False) -> Decimal:
    return _yuan(_fen_int(data, key, where, required=required))


def _time(data: dict, key: str, where: str, *, required: bool = False) -> datetime | None:
    """UNIX seconds → aware UTC; 0 is Douyin's "not set"."""
    seconds = _int(data, key, where)
    if seconds <= 0:
        if required:
            raise PermanentError(f"{where}: {key} is missing", code="invalid_payload")
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PermanentError(f"{where}: {key} {seconds} is not a UNIX time in seconds",
                             code="invalid_payload") from None
