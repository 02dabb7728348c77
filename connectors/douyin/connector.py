"""The Douyin (抖店) connector: polls order.searchList by update_time, verifies pushes, ships and sets stock."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from connectors.base import (
    AuthError,
    Connector,
    PermanentError,
    RawOrder,
    SignatureError,
    StockPush,
    WebhookDelivery,
    split_windows,
)
from connectors.douyin.client import MAX_PAGE_SIZE, DouyinClient, event_sign
from connectors.douyin.mapping import map_douyin_order

PAGE_SIZE = MAX_PAGE_SIZE

# The hub's carrier codes → Douyin company_code (from /order/logisticsCompanyList). These are the codes
# the sandbox uses and that third-party code shows; the real list was NOT CONFIRMED from the facts, so
# a store can override them with a "carrier_codes" mapping in its credentials. Unknown codes pass
# through lower-cased.
CARRIER_CODES = {
    "SF": "shunfeng", "ZTO": "zhongtong", "YTO": "yuantong", "STO": "shentong", "YUNDA": "yunda", "EMS": "ems",
}

# Message tags that name an order whose state changed (API_FACTS §4.7). Every one is only a notice:
# the inbox worker fetches the full order. Besides the order-lifecycle tags, 104 (logistics changed),
# 109 (amount changed) and 113 (seller remark) change what the mapping reads, so they count too.
ORDER_TAGS = frozenset({"100", "101", "102", "103", "104", "105", "106", "108", "109", "110", "113"})
AFTER_SALE_TAGS = frozenset(str(tag) for tag in range(200, 228))
# Where a message's data names the order and when it changed, in order of preference.
ORDER_ID_KEYS = ("p_id", "shop_order_id", "order_id")
TIME_KEYS = ("update_time", "cancel_time", "pay_time", "create_time")

ACK = '{"code":0,"msg":"success"}'
# afterSale/operate type 201: agree to a refund only after shipping (doudian SDK AfterSaleTypeConstant); after-sale
# type 1 is a refund only, status 12 a successful after-sale (afterSale/Detail).
OPERATE_AGREE_REFUND = 201
REFUND_ONLY_TYPE = 1
AFTER_SALE_SUCCESS = 12


class DouyinConnector(Connector):
    platform: ClassVar[str] = "douyin"
    max_window: ClassVar[timedelta] = timedelta(days=1)

    map_order = staticmethod(map_douyin_order)

    def make_client(self) -> DouyinClient:
        return DouyinClient.from_credentials(self.credentials, timeout=self.timeout)

    # --- Polling -----------------------------------------------------------------------------------

    def poll(self, *, start: datetime, end: datetime) -> Iterator[RawOrder]:
        """Every shop order updated in [start, end), each once per poll, as the list returns it."""
        seen: set[str] = set()
        for window_start, window_end in split_windows(start, end, self.max_window):
            for order in self._window_orders(window_start, window_end):
                raw = _raw_order(order, where="order.searchList")
                # Douyin's bounds are whole seconds and inclusive; the contract is [start, end), so an
                # order updated at the boundary second belongs to the next window.
                if not window_start <= raw.updated_at < window_end or raw.platform_order_id in seen:
                    continue
                seen.add(raw.platform_order_id)
                yield raw

    def _window_orders(self, start: datetime, end: datetime) -> Iterator[dict]:
        first = self.client.order_search_list(update_time_start=start, update_time_end=end, page=0, size=PAGE_SIZE)
        yield from first["shop_order_list"]
        pages = math.ceil(first["total"] / PAGE_SIZE)
        if pages <= 1:
            return
        # Pages are 0-based and sorted by update_time, newest first. An order updated while we page leaves
        # this window and shifts every later order one place forward; reading from the last page back to
        # page 0 (TOP's advice for the same kind of listing) means such a shift only moves orders onto
        # pages already read (seen again, de-duplicated), never past one still to come.
        for page in range(pages - 1, -1, -1):
            data = self.client.order_search_list(update_time_start=start, update_time_end=end, page=page,
                                                 size=PAGE_SIZE)
            yield from data["shop_order_list"]

    def fetch_order(self, platform_order_id: str) -> RawOrder:
        order_id = str(platform_order_id).strip()
        if not order_id.isdigit():
            raise PermanentError(f"Douyin order id must be digits, got {platform_order_id!r}", code="invalid_id")
        return _raw_order(self.client.order_detail(order_id), where="order.orderDetail")

    # --- Push --------------------------------------------------------------------------------------

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> list[WebhookDelivery]:
        app_key = str(self.credentials.get("app_key") or "")
        secret = str(self.credentials.get("app_secret") or "")
        if not app_key or not secret:
            raise AuthError("Douyin store has no app_key/app_secret to verify pushes with", code="credentials")
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        body = bytes(body)
        received = lowered.get("event-sign", "").strip().lower()
        if not received:
            raise SignatureError("Douyin push without an event-sign header", code="signature")
        if not hmac.compare_digest(lowered.get("app-id", "").strip().encode(), app_key.encode()):
            raise SignatureError("Douyin push app-id is not this store's app_key", code="signature")
        if not hmac.compare_digest(event_sign(app_key, body, secret).encode(), received.encode()):
            raise SignatureError("Douyin push event-sign does not match the body", code="signature")
        try:
            messages = json.loads(body)
        except ValueError:
            raise PermanentError("Douyin push body is not JSON", code="bad_payload") from None
        if not isinstance(messages, list):
            raise PermanentError("Douyin push body is not a JSON array of messages", code="bad_payload")
        return [delivery for message in messages if (delivery := _delivery(message)) is not None]

    def webhook_ack(self) -> tuple[str, str]:
        return ACK, "application/json"

    # --- Push-back (used by shipments and the stock push) ------------------------------------------

    def ship(self, *, platform_order_id: str, tracking_number: str, carrier_code: str,
             line_ids: Sequence[str] | None = None) -> dict:
        """Ship the whole order with one tracking number (order.logisticsAdd)."""
        if line_ids:
            # Part of an order ships through order.logisticsAddMultiPack / SinglePack with per-sku-order
            # quantities, which this connector does not implement yet.
            raise PermanentError("Douyin partial shipments (some sku orders only) are not supported; ship the "
                                 "whole order", code="partial_unsupported")
        company_code = self.company_code(carrier_code)
        try:
            data = self.client.order_logistics_add(order_id=platform_order_id, company_code=company_code,
                                                   logistics_code=tracking_number)
        except AuthError:
            raise
        except PermanentError as exc:
            # After a lost answer the retry is refused because the order already shipped: if it shipped
            # with this very tracking number, that is the confirmation we were waiting for.
            if self._shipped_with(platform_order_id, tracking_number):
                return {"already_shipped": True, "company_code": company_code, "error": exc.message}
            raise
        return {"company_code": company_code, **data}

    def company_code(self, carrier_code: str) -> str:
        code = carrier_code.strip()
        overrides = self.credentials.get("carrier_codes")
        table = {**CARRIER_CODES, **(overrides if isinstance(overrides, Mapping) else {})}
        return str(table.get(code.upper(), code.lower()))

    def _shipped_with(self, platform_order_id: str, tracking_number: str) -> bool:
        try:
            order = self.client.order_detail(platform_order_id)
        except PermanentError:
            return False
        logistics = order.get("logistics_info") if isinstance(order.get("logistics_info"), list) else []
        return any(isinstance(item, dict) and str(item.get("tracking_no", "")).strip() == tracking_number.strip()
                   for item in logistics)

    def refund(self, *, platform_order_id: str, platform_after_sale_id: str, amount, currency: str, key: str,
               line_ids: Sequence[str] | None = None) -> dict:
        """Agree to the buyer's refund-only after-sale ``platform_after_sale_id`` (afterSale/operate type 201).

        Douyin refunds what the after-sale asks for (the call takes no amount), so the hub's amount must be that
        amount. The after-sale is read first (afterSale/Detail): one already refunded (our earlier agree whose
        answer was lost) is not agreed again; Douyin has no idempotency key. The operate type for refunding a
        return after its goods came back is NOT CONFIRMED, so only refund-only after-sales are agreed here.
        """
        after_sale_id = str(platform_after_sale_id or "").strip()
        if not after_sale_id.isdigit():
            raise PermanentError("Douyin refunds only a buyer's after-sale: the ticket has no Douyin after-sale id",
                                 code="no_after_sale")
        info = self.client.after_sale_detail(after_sale_id)
        if int(info.get("after_sale_status") or 0) == AFTER_SALE_SUCCESS or int(info.get("refund_status") or 0) == 3:
            return {"platform_refund_id": after_sale_id, "already": True, "after_sale": info}
        if int(info.get("after_sale_type") if info.get("after_sale_type") is not None else -1) != REFUND_ONLY_TYPE:
            raise PermanentError(f"Douyin after-sale {after_sale_id} is not a refund only: agree to it in the Douyin "
                                 "backend (its operate type is not confirmed)", code="operate_type_unconfirmed")
        asked = Decimal(int(info.get("refund_total_amount") or 0)) / 100
        if Decimal(amount) != asked:
            raise PermanentError(f"Douyin after-sale {after_sale_id} asks for {asked}, the hub refunds {amount}: "
                                 "Douyin cannot agree to another amount", code="amount_mismatch")
        data = self.client.after_sale_operate(type=OPERATE_AGREE_REFUND, aftersale_id=after_sale_id,
                                              remark=f"OMS {key}")
        return {"platform_refund_id": after_sale_id, **(data if isinstance(data, dict) else {})}

    def set_stock(self, *, platform_product_id: str, quantity: int, platform_sku_id: str | None = None,
                  sku: str | None = None) -> dict:
        """Overwrite one SKU's sellable quantity (sku.syncStock, absolute): by sku_id, else by merchant code."""
        return self.client.sku_sync_stock(sku_id=platform_sku_id or None, code=None if platform_sku_id else sku,
                                          product_id=platform_product_id or None, stock_num=quantity)

    # Several SKUs of one product go in one sku.syncStockBatch; the number one call may carry is NOT CONFIRMED
    # (API_FACTS.md §4.6): 20 keeps a call small.
    stock_batch_size: ClassVar[int] = 20

    def set_stock_many(self, pushes: list[StockPush]) -> None:
        """One sku.syncStockBatch per product for two or more of its SKUs (by sku_id), sku.syncStock for a lone
        one. The batch is all or nothing, so a refusal fails every SKU of it."""
        self.set_stock_per_product(pushes, lambda product_id, quantities: self.client.sku_sync_stock_batch(
            product_id=product_id, quantities=quantities))


def _raw_order(order: Any, *, where: str) -> RawOrder:
    if not isinstance(order, dict) or not str(order.get("order_id") or "").strip():
        raise PermanentError(f"Douyin {where}: a shop order without order_id", code="invalid_payload")
    order_id = str(order["order_id"]).strip()
    updated = _epoch_time(order.get("update_time"))
    if updated is None:
        raise PermanentError(f"Douyin {where}: order {order_id} has no usable update_time "
                             f"({order.get('update_time')!r})", code="invalid_payload")
    return RawOrder(platform_order_id=order_id, updated_at=updated, payload=order)


def _epoch_time(value: Any) -> datetime | None:
    """UNIX seconds (int or digit string) → aware UTC; None for 0, missing or anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _delivery(message: Any) -> WebhookDelivery | None:
    """One push message → a delivery naming its order, or None for a tag the hub does not follow."""
    if not isinstance(message, dict) or "tag" not in message:
        raise PermanentError("Douyin push message is not an object with a tag", code="bad_payload")
    tag = str(message["tag"]).strip()
    if tag not in ORDER_TAGS and tag not in AFTER_SALE_TAGS:
        return None  # product changes (400…), test pushes, tags added later: not order news
    data = message.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise PermanentError(f"Douyin push tag {tag}: data is not JSON", code="bad_payload") from None
    if not isinstance(data, dict):
        raise PermanentError(f"Douyin push tag {tag}: data is not a JSON object", code="bad_payload")
    order_id = next((str(data[key]).strip() for key in ORDER_ID_KEYS if str(data.get(key) or "").strip()), "")
    if not order_id.isdigit():
        raise PermanentError(f"Douyin push tag {tag} names no order ({str(data)[:200]})", code="bad_payload")
    msg_id = str(message.get("msg_id") or "").strip()
    if not msg_id:
        # msg_id is what repeats across redeliveries of one event; without it identical messages
        # still collapse into one through their content.
        digest = hashlib.sha256(f"{tag}\n{message.get('data')}".encode()).hexdigest()
        msg_id = f"sha256:{digest}"
    updated_at = next((parsed for key in TIME_KEYS if (parsed := _epoch_time(data.get(key))) is not None), None)
    return WebhookDelivery(delivery_id=msg_id, topic=tag, platform_order_id=order_id, updated_at=updated_at,
                           payload=data, needs_fetch=True)
